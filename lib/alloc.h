/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * alloc - the allocator: chunk slots, chunk choice, the first chunk, zeroing, statistics,
 * and the kernel's two locks:
 *   pcpu_lock        short lock (kernel: pcpu_lock spinlock): area maps, slots, the reverse
 *                    map, counters and stats. Never held across a system call.
 *   pcpu_alloc_mutex (kernel: pcpu_alloc_mutex): chunk creation and destruction, population
 *                    and depopulation, the balance work. Holding it guarantees no chunk
 *                    disappears, so page work can drop the short lock.
 * Lock order: pcpu_alloc_mutex before pcpu_lock.
 */
#ifndef PCPU_ALLOC_H
#define PCPU_ALLOC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "chunk.h"
#include "config.h"

#define PCPU_NR_SETS 2               /* chunk sets: 0 plain, 1 accounted (PCPU_ACCOUNT) */
#define PCPU_SLOT_FAIL_THRESHOLD 3

extern pthread_mutex_t pcpu_lock;
extern pthread_mutex_t pcpu_alloc_mutex;

/* Slots of one chunk set (kernel: pcpu_chunk_lists). */
struct pcpu_chunk_set {
	struct list_head *slots;     /* [pcpu_nr_slots] */
	int nr_empty_pop_pages;      /* over its non-isolated chunks */
	int nr_chunks;
};
extern struct pcpu_chunk_set pcpu_sets[PCPU_NR_SETS];
extern int pcpu_nr_slots, pcpu_sidelined_slot, pcpu_free_slot, pcpu_to_depopulate_slot;

/* The first chunk: one mapping, <static | reserved | dynamic> in each unit. */
struct pcpu_first_chunk {
	struct pcpu_chunk *dyn;       /* the dynamic region, on the slot lists of set 0 */
	struct pcpu_chunk *reserved;  /* the reserved region (NULL when reserved_size is 0) */
	char *base;
	size_t static_size, reserved_size, dyn_size, size; /* size: populated bytes per unit */
	size_t static_used;           /* bump pointer of the static region */
};
extern struct pcpu_first_chunk pcpu_first;

/* Global statistics, under pcpu_lock (kernel: pcpu_stats). */
struct pcpu_global_stats {
	uint64_t nr_alloc, nr_dealloc, nr_cur_alloc, nr_max_alloc;
	uint64_t nr_chunks, nr_max_chunks;
	size_t min_alloc_size, max_alloc_size;
	uint64_t nowait_failures;
	uint64_t zeroed_bytes;
};
extern struct pcpu_global_stats pcpu_gstats;

extern bool pcpu_initialized;
extern bool pcpu_atomic_alloc_failed;

/* pcpu_ensure_init - initialise once (lazily). Return 0 or -errno. */
int pcpu_ensure_init(void);

/* pcpu_chunk_slot / pcpu_chunk_relocate - kernel: pcpu_chunk_slot(), pcpu_chunk_relocate(). */
int pcpu_chunk_slot(const struct pcpu_chunk *c);
void pcpu_chunk_relocate(struct pcpu_chunk *c, int oslot);
void pcpu_chunk_move(struct pcpu_chunk *c, int slot);

/* Apply a change of @c's empty populated pages (after an area map call) to its set. */
void pcpu_update_empty_pages(struct pcpu_chunk *c, int before);

/*
 * pcpu_populate_area - populate every unpopulated page of [off, off + size) of @c; called
 * with pcpu_alloc_mutex held and pcpu_lock NOT held. Return 0 or -ENOMEM.
 */
int pcpu_populate_area(struct pcpu_chunk *c, int off, int size);

/* pcpu_zero_area - zero [off, off+size) in every unit, never writing an untouched page. */
void pcpu_zero_area(struct pcpu_chunk *c, int off, int size);

/*
 * pcpu_free_area_locked - free the allocation at @off of @c, relocating it; pcpu_lock held.
 * Return the bytes freed.
 */
int pcpu_free_area_locked(struct pcpu_chunk *c, int off);

/* pcpu_bad_free - report a free of something that is not a live allocation, then abort. */
__attribute__((noreturn)) void pcpu_bad_free(const void *p, const char *why);

/* Every chunk, for stats and verify: calls @fn for each chunk (pcpu_lock held). */
void pcpu_for_each_chunk(void (*fn)(struct pcpu_chunk *c, void *arg), void *arg);

/* pcpu_verify_locked - pcpu_verify() with pcpu_lock held. */
int pcpu_verify_locked(char *why, size_t len);

#endif /* PCPU_ALLOC_H */
