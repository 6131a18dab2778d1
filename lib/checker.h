/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * checker - tell Valgrind's memcheck and AddressSanitizer which bytes of a chunk are live
 * allocations (the kernel's kmemleak_alloc_percpu()/kmemleak_free_percpu() hooks play the
 * same part for kmemleak), so that a read of a freed copy, or past the end of a copy into
 * free space, is reported like a heap error, and correct programs stay silent.
 *
 * The served bytes of freshly populated pages are poisoned in every unit; an allocation
 * unpoisons [off, off + size) of every unit's copy; a free poisons it again. The static and
 * reserved regions of the first chunk are never poisoned: they are handed out by the static
 * variable code, not by pcpu_alloc().
 *
 * Compiled in only with -Dvalgrind=true (memcheck client requests; each costs a few
 * instructions and is skipped entirely when not running on Valgrind) or when the library is
 * built with -fsanitize=address. Otherwise every function here is an empty inline.
 *
 * Valgrind: memcheck's MAKE_MEM_NOACCESS/DEFINED rather than MALLOCLIKE_BLOCK, because a
 * handle never points at a copy (it lies outside the canonical range), so memcheck's leak
 * checker would call every allocation still live at exit "definitely lost", once per unit.
 * pcpu_leaks_print() is the leak report for per-CPU memory.
 *
 * ASan: its shadow has 8-byte granules and can only say "the first k bytes are addressable",
 * while allocations are 4-byte granules; poisoning one half of a granule whose other half is
 * live leaves it addressable (a missed report, never a false one). Shadow updates of a granule
 * shared by two allocations are read-modify-write, so every update runs under pcpu_lock.
 *
 * The library itself must not touch poisoned bytes: the allocation path unpoisons before it
 * checks and zeroes the copies; code that touches free space (e.g. zeroing freed areas in the
 * background) wraps the access in pcpu_checker_access_begin()/end().
 */
#ifndef PCPU_CHECKER_H
#define PCPU_CHECKER_H

#include <pthread.h>
#include <stddef.h>

#include "chunk.h"
#include "pcpu_config.h"

#if defined(__SANITIZE_ADDRESS__)
#define PCPU_CHECKER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PCPU_CHECKER_ASAN 1
#endif
#endif
#ifndef PCPU_CHECKER_ASAN
#define PCPU_CHECKER_ASAN 0
#endif

#ifndef PCPU_VALGRIND
#define PCPU_VALGRIND 0
#endif

#define PCPU_CHECKER (PCPU_CHECKER_ASAN || PCPU_VALGRIND)

#if PCPU_CHECKER_ASAN
#include <sanitizer/asan_interface.h>
#endif
#if PCPU_VALGRIND
#include <valgrind/memcheck.h>
#endif

enum pcpu_checker_op {
	PCPU_CHECKER_POISON,   /* free space: any access is an error */
	PCPU_CHECKER_UNPOISON, /* a live (zeroed) copy */
	PCPU_CHECKER_RESET,    /* forget everything: the range is being unmapped */
};

/* Is there anyone to tell? Valgrind-only builds skip all work when run natively. */
static inline int pcpu_checker_active(void)
{
#if PCPU_CHECKER_ASAN
	return 1;
#elif PCPU_VALGRIND
	return RUNNING_ON_VALGRIND;
#else
	return 0;
#endif
}

static inline void pcpu_checker_range(void *p, size_t len, enum pcpu_checker_op op)
{
	if (!len)
		return;
#if PCPU_CHECKER_ASAN
	if (op == PCPU_CHECKER_POISON)
		ASAN_POISON_MEMORY_REGION(p, len);
	else
		ASAN_UNPOISON_MEMORY_REGION(p, len);
#endif
#if PCPU_VALGRIND
	/* An unmapped range is forgotten by memcheck itself (munmap). */
	if (op == PCPU_CHECKER_POISON)
		VALGRIND_MAKE_MEM_NOACCESS(p, len);
	else if (op == PCPU_CHECKER_UNPOISON)
		VALGRIND_MAKE_MEM_DEFINED(p, len);
#endif
	(void)p;
	(void)op;
}

/* [off, off + size) of every unit of @c. */
static inline void pcpu_checker_units(const struct pcpu_chunk *c, size_t off, size_t size,
				      enum pcpu_checker_op op)
{
	for (unsigned u = 0; u < pcpu_geom.nr_units; u++)
		pcpu_checker_range(pcpu_unit_addr(c, u, off), size, op);
}

static inline void pcpu_checker_locked(pthread_mutex_t *lock, const struct pcpu_chunk *c,
				       int off, int size, enum pcpu_checker_op op)
{
	if (!PCPU_CHECKER || c->reserved || !pcpu_checker_active())
		return;
	if (lock)
		pthread_mutex_lock(lock);
	pcpu_checker_units(c, (size_t)off, (size_t)size, op);
	if (lock)
		pthread_mutex_unlock(lock);
}

/*
 * pcpu_checker_alloc - [off, off + size) of @c was just handed out (and its pages are
 * populated): every copy becomes addressable and defined (it is zero, or about to be zeroed).
 * Call before reading or zeroing the copies; takes @lock (pcpu_lock), which must not be held.
 */
static inline void pcpu_checker_alloc(pthread_mutex_t *lock, const struct pcpu_chunk *c, int off,
				      int size)
{
	pcpu_checker_locked(lock, c, off, size, PCPU_CHECKER_UNPOISON);
}

/* pcpu_checker_free - [off, off + size) of @c was freed; pcpu_lock held. */
static inline void pcpu_checker_free(const struct pcpu_chunk *c, int off, int size)
{
	pcpu_checker_locked(NULL, c, off, size, PCPU_CHECKER_POISON);
}

/*
 * pcpu_checker_access_begin / end - the library is about to touch free bytes
 * [off, off + size) of @c itself (zeroing a freed area), and is done with them. pcpu_lock
 * must not be held; the area must not be handed out in between (e.g. it is still free in
 * the map and the caller holds pcpu_alloc_mutex, or it is allocated to the caller).
 */
static inline void pcpu_checker_access_begin(pthread_mutex_t *lock, const struct pcpu_chunk *c,
					     int off, int size)
{
	pcpu_checker_locked(lock, c, off, size, PCPU_CHECKER_UNPOISON);
}

static inline void pcpu_checker_access_end(pthread_mutex_t *lock, const struct pcpu_chunk *c,
					   int off, int size)
{
	pcpu_checker_locked(lock, c, off, size, PCPU_CHECKER_POISON);
}

/*
 * pcpu_checker_populated - pages [ps, pe) of @c were just populated in every unit: poison
 * their served bytes. Nothing else can be live there yet: the only allocation in them is the
 * populating caller's, which pcpu_checker_alloc() unpoisons afterwards. Page aligned, so no
 * ASan granule is shared with another allocation and no lock is needed.
 */
static inline void pcpu_checker_populated(const struct pcpu_chunk *c, int ps, int pe)
{
	size_t lo = (size_t)ps * pcpu_geom.page, hi = (size_t)pe * pcpu_geom.page;
	size_t start = (size_t)c->map.start_offset;
	size_t end = pcpu_geom.unit_size - (size_t)c->map.end_offset;

	if (!PCPU_CHECKER || c->reserved || !pcpu_checker_active())
		return;
	if (lo < start)
		lo = start; /* the first chunk: the static and reserved regions stay usable */
	if (hi > end)
		hi = end;
	if (lo < hi)
		pcpu_checker_units(c, lo, hi - lo, PCPU_CHECKER_POISON);
}

/*
 * pcpu_checker_depopulate - pages [ps, pe) of @c are given back: clear ASan's shadow of them,
 * so that only populated pages ever carry poison.
 */
static inline void pcpu_checker_depopulate(const struct pcpu_chunk *c, int ps, int pe)
{
#if PCPU_CHECKER_ASAN
	if (!c->reserved)
		pcpu_checker_units(c, (size_t)ps * pcpu_geom.page, (size_t)(pe - ps) * pcpu_geom.page,
				   PCPU_CHECKER_RESET);
#else
	(void)c, (void)ps, (void)pe;
#endif
}

/*
 * pcpu_checker_unmap - @c's reservation is about to be unmapped: clear ASan's shadow of its
 * populated pages (the only ones poisoned), so a later, unrelated mapping at the same address
 * is not reported.
 */
static inline void pcpu_checker_unmap(const struct pcpu_chunk *c)
{
#if PCPU_CHECKER_ASAN
	if (!c->owns_mapping || !c->base || !c->map.populated)
		return;
	for (int rs = pcpu_am_next_pop(&c->map, 0); rs < c->map.nr_blocks;) {
		int re = pcpu_am_next_unpop(&c->map, rs);

		pcpu_checker_depopulate(c, rs, re);
		rs = pcpu_am_next_pop(&c->map, re);
	}
#else
	(void)c;
#endif
}

#endif /* PCPU_CHECKER_H */
