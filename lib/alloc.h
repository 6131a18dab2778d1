/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * alloc - the allocator's entry points (kernel: pcpu_alloc(), free_percpu() and
 * pcpu_setup_first_chunk()): request validation, the alloc and free paths, the first chunk,
 * initialisation, the fork handlers and pcpu_verify(). Chunks, slots, population and
 * zeroing are the chunk-set layer's (chunkset.h, which also documents every lock).
 */
#ifndef PCPU_ALLOC_H
#define PCPU_ALLOC_H

#include <stdbool.h>
#include <stdint.h>

#include "chunkset.h"
#include "config.h"

/* The first chunk: one mapping, <static | reserved | dynamic> in each unit. */
struct pcpu_first_chunk {
	struct pcpu_chunk *dyn;       /* the dynamic region, on the slot lists of set 0 */
	struct pcpu_chunk *reserved;  /* the reserved region (NULL when reserved_size is 0) */
	char *base;
	size_t static_size, reserved_size, dyn_size, size; /* size: served bytes per unit,
							    * populated at start */
	size_t static_used;           /* bump pointer of the static region */
};
extern struct pcpu_first_chunk pcpu_first;

extern bool pcpu_initialized;

/* pcpu_ensure_init - initialise once (lazily). Return 0 or -errno. */
int pcpu_ensure_init(void);

/* pcpu_bad_free - report a free of something that is not a live allocation, then abort. */
__attribute__((noreturn)) void pcpu_bad_free(const void *p, const char *why);

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
