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
 *   pcpu_drain_mutex serialises the zeroing of queued areas (see "zeroing queue" below), so
 *                    that one area is zeroed by one thread; held while zeroing, never
 *                    across population or chunk creation.
 * Lock order: pcpu_alloc_mutex, pcpu_drain_mutex, pcpu_lock (the balancer's own lock is
 * taken with none of these held, except by the fork handlers, which take it last).
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
extern pthread_mutex_t pcpu_drain_mutex;

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
 * The zeroing queue. Free space in a chunk's map is always zero in every unit (fresh pages
 * are zero, depopulated pages come back zero), so allocation never zeroes. pcpu_free()
 * does not zero either: it leaves the area allocated in the map, sets its start granule in
 * chunk->queued (a second free of it is still a bad free) and puts the chunk on
 * pcpu_zero_queue. The balancer (or an allocating caller with no clean space left, or
 * balance=off callers in batches) zeroes queued areas and only then frees them in the map.
 * All under pcpu_lock.
 */
extern struct list_head pcpu_zero_queue;
extern long pcpu_queued_areas, pcpu_queued_bytes; /* bytes per unit */

/* pcpu_area_queued - true when the allocation at @off of @c was freed and awaits zeroing. */
static inline bool pcpu_area_queued(const struct pcpu_chunk *c, int off)
{
	return c->queued && bit_test(c->queued, off / PCPU_MIN_ALLOC_SIZE);
}

/*
 * pcpu_chunk_nr_live - @c's live allocations: its map's allocated areas less those queued
 * (freed, waiting to be zeroed). What statistics count; pcpu_lock held.
 */
static inline int pcpu_chunk_nr_live(const struct pcpu_chunk *c)
{
	return c->map.nr_alloc - c->nr_queued;
}

/*
 * pcpu_free_queued_locked - free a queued area, now zero in every unit, in the map
 * (pcpu_lock held). Return true when that left balance work (a second free chunk, or a
 * chunk to reclaim, which it isolates): kernel: the tail of free_percpu().
 */
bool pcpu_free_queued_locked(struct pcpu_chunk *c, int off);

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

/* pcpu_stats_count_alloc - count an allocation of @size bytes made outside pcpu_alloc(). */
void pcpu_stats_count_alloc(int size);

/* static.c: storage of PCPU_DEFINE variables (see there). */
enum {
	PCPU_REGION_NONE,     /* not a handle of libpcpu */
	PCPU_REGION_STATIC,   /* the first chunk's static region */
	PCPU_REGION_RESERVED, /* the first chunk's reserved region */
	PCPU_REGION_DYNAMIC,  /* a dynamic chunk, or the first chunk's dynamic region */
};
extern size_t pcpu_static_nr_dyn; /* variables that fell back to pcpu_alloc(); pcpu_lock */
/*
 * pcpu_static_bad_free - why pcpu_free() must reject the handle at @addr (unit-0 address;
 * @c its chunk or NULL), or NULL when it is not a PCPU_DEFINE variable. pcpu_lock held.
 */
const char *pcpu_static_bad_free(uintptr_t addr, const struct pcpu_chunk *c);
/* pcpu_static_region_of - PCPU_REGION_* of handle @h (for tests and stats). */
int pcpu_static_region_of(const void *h);

#endif /* PCPU_ALLOC_H */
