/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * leaks - live allocations with their call sites (the kernel's kmemleak report for per-CPU
 * objects, on demand). Call sites are recorded only once pcpu_leaks_enable() ran (or
 * PCPU_LEAKS=1 at initialisation), in a per-chunk side table indexed by the allocation's
 * start granule: one store per allocation, nothing at free (a live allocation always wrote
 * its own entry, stale entries are never read). Until then an allocation costs one load
 * and a not-taken branch.
 */
#ifndef PCPU_LEAKS_H
#define PCPU_LEAKS_H

#include <stdbool.h>

#include "chunk.h"
#include "util.h"

extern bool pcpu_leaks_on;

/*
 * pcpu_leaks_note_locked - record @call_site for the allocation at @off of @c (pcpu_lock
 * held). Return true when recording is on but @c has no table yet: the caller then calls
 * pcpu_leaks_note_slow() once it has dropped its locks.
 */
static inline bool pcpu_leaks_note_locked(struct pcpu_chunk *c, int off, void *call_site)
{
	if (likely(!__atomic_load_n(&pcpu_leaks_on, __ATOMIC_RELAXED)))
		return false;
	if (c->callers) {
		c->callers[off / PCPU_MIN_ALLOC_SIZE] = call_site;
		return false;
	}
	return !c->reserved;
}

/* pcpu_leaks_note_slow - allocate @c's table (no lock held), then record the call site. */
void pcpu_leaks_note_slow(struct pcpu_chunk *c, int off, void *call_site);

/* pcpu_leaks_init - at library initialisation: PCPU_LEAKS=1 enables and prints at exit. */
void pcpu_leaks_init(void);

/* pcpu_stats_init - at library initialisation: PCPU_STATS=1 (or json) prints at exit. */
void pcpu_stats_init(void);

#endif /* PCPU_LEAKS_H */
