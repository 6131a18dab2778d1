/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * hmap - a lock-free map from a handle's unit-0 address to the chunk it lies in, and one
 * state byte per 4-byte granule of that chunk, for the paths that must not take pcpu_lock:
 * the front caches' free (is this a live cached-class object? mark it freed) and alloc
 * (mark it live).
 *
 * The map is a radix tree over page numbers (9 bits per level, like the MMU's), whose leaves
 * point at a struct pcpu_hmeta. Nodes and metas are never freed: a meta whose chunk is
 * destroyed goes on a free list and is reused for a later chunk, with its generation bumped.
 * A lookup is therefore always a read of valid memory, though possibly of a meta that was
 * reassigned meanwhile; a caller that acts on a meta reads the generation before and checks
 * it after (pcpu_hmap_stable()). A live object keeps its chunk from being destroyed, so only
 * a bad free (garbage, double free) can ever see the generation change: it is reported.
 *
 * The chunk-set layer keeps every state byte of a chunk zero before it unregisters it (no
 * object of it sits in a front cache then), so a stale lookup of a reused meta finds zero,
 * which sends the caller to the locked slow path.
 *
 * Registration and removal take the map's own mutex (a leaf lock). Lookups take nothing.
 */
#ifndef PCPU_HMAP_H
#define PCPU_HMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pcpu_chunk;

struct pcpu_hmeta {
	uintptr_t start, end;      /* unit-0 addresses [start, end) served by the front */
	struct pcpu_chunk *chunk;
	uint32_t gen;              /* bumped when the meta is assigned and released */
	uint8_t *state;            /* one byte per 4-byte granule from start & ~3 to end */
	struct pcpu_hmeta *next;   /* free list */
};

/*
 * Where a granule's state byte lies (pcpu_hmap_state()). Two CPUs whose objects' bytes
 * share a cache line bounce it on every alloc and free of them; which objects two CPUs
 * hold at once depends on how the front cycles them:
 * PCPU_HMAP_SPREAD - each CPU reuses the object it freed last (a single object: the
 *                    classes the freeing thread zeroes), and two CPUs' may be
 *                    neighbours: neighbours, and granules a power of two apart, go to
 *                    different lines.
 * PCPU_HMAP_RUNS   - each CPU cycles a batch of neighbouring objects: a run of granules
 *                    keeps its bytes together (64 to a line), so two CPUs' batches share
 *                    at most the lines at their ends. (SPREAD puts every 1024-granule
 *                    batch on all 64 lines of its block: two CPUs then share every line.)
 */
enum pcpu_hmap_layout { PCPU_HMAP_SPREAD, PCPU_HMAP_RUNS };

/*
 * pcpu_hmap_init - for chunks of at most @max_bytes per unit, pages of @page bytes, state
 * bytes in @layout. Once; later calls only change the layout, which they may do only while
 * no range is registered (tests).
 */
int pcpu_hmap_init(size_t max_bytes, size_t page, enum pcpu_hmap_layout layout);

/*
 * pcpu_hmap_add - register unit-0 addresses [@start, @end) of @c (at most max_bytes).
 * Return its meta, or NULL (out of memory, or an address the map cannot hold: the front
 * then never caches objects of @c).
 */
struct pcpu_hmeta *pcpu_hmap_add(struct pcpu_chunk *c, uintptr_t start, uintptr_t end);
/* pcpu_hmap_del - unregister @m (every state byte zero). */
void pcpu_hmap_del(struct pcpu_hmeta *m);

/* fork: prepare takes the map's lock (after the allocator's), parent and child drop it. */
void pcpu_hmap_atfork_prepare(void);
void pcpu_hmap_atfork_parent(void);
void pcpu_hmap_atfork_child(void);

extern void **pcpu_hmap_root;
extern unsigned pcpu_hmap_shift, pcpu_hmap_levels;
extern bool pcpu_hmap_spread; /* layout PCPU_HMAP_SPREAD */

/* pcpu_hmap_lookup - the meta whose pages hold @addr, or NULL. Lock-free. */
static inline struct pcpu_hmeta *pcpu_hmap_lookup(uintptr_t addr)
{
	uintptr_t key = addr >> pcpu_hmap_shift;
	void **node = pcpu_hmap_root;

	if (!node || key >> (9 * pcpu_hmap_levels))
		return NULL;
	for (unsigned lvl = pcpu_hmap_levels - 1; lvl > 0; lvl--) {
		node = __atomic_load_n(&node[(key >> (9 * lvl)) & 511], __ATOMIC_ACQUIRE);
		if (!node)
			return NULL;
	}
	return __atomic_load_n(&node[key & 511], __ATOMIC_ACQUIRE);
}

/*
 * pcpu_hmap_find - pcpu_hmap_lookup() through a one-entry per-thread cache: the meta this
 * thread found last, if @addr lies in its range. A meta is never freed and its state array
 * stays readable after release (every byte zero); its range becomes empty, so the cache
 * misses from then on (a new chunk at the same addresses has another meta). A hit racing
 * with the release is what a racing lookup would return: the generation check catches it.
 */
extern __thread struct pcpu_hmeta *pcpu_hmap_last __attribute__((tls_model("initial-exec")));

static inline struct pcpu_hmeta *pcpu_hmap_find(uintptr_t addr)
{
	struct pcpu_hmeta *m = pcpu_hmap_last;

	if (m) {
		uintptr_t start = __atomic_load_n(&m->start, __ATOMIC_RELAXED);

		if (addr - start < __atomic_load_n(&m->end, __ATOMIC_RELAXED) - start)
			return m;
	}
	m = pcpu_hmap_lookup(addr);
	if (m)
		pcpu_hmap_last = m;
	return m;
}

/* PCPU_HMAP_SPREAD permutes the state bytes within blocks of this many. */
#define PCPU_HMAP_STATE_BLOCK 4096

/*
 * pcpu_hmap_state - the state byte of the object at @addr in @m (read before: @gen, the
 * generation), or NULL when @addr is not a 4-aligned address of @m's range.
 */
static inline uint8_t *pcpu_hmap_state(struct pcpu_hmeta *m, uintptr_t addr, uint32_t *gen)
{
	uintptr_t start, end, g, lo, hi;

	*gen = __atomic_load_n(&m->gen, __ATOMIC_ACQUIRE);
	start = __atomic_load_n(&m->start, __ATOMIC_RELAXED);
	end = __atomic_load_n(&m->end, __ATOMIC_RELAXED);
	if (addr < start || addr >= end || (addr & 3))
		return NULL;
	/*
	 * RUNS: granule g's byte is byte g. SPREAD: within its block of 64 lines of 64,
	 * g = 64 * hi + lo goes to line (lo + hi) mod 64, byte hi. Two threads on this
	 * machine's 2 CPUs that each cycle one of two neighbouring objects: 120-130 ns a pair
	 * with RUNS, 28 with SPREAD. Two that cycle batches of 512 at 64 units: 34 ns with
	 * RUNS, 53-58 with SPREAD (one thread: 29-34). In SPREAD neighbours (a batch handed
	 * out in order) are 1 or 2 lines apart; granules a power of two apart (where two
	 * CPUs' batches usually start: 512 objects of 8 bytes is 4 KiB) never share a line:
	 * 2^j moves the line by 2^j or 2^j + 1 below 64 granules, by 2^(j - 6) from there,
	 * and from 4096 the byte is in another block. (A plain transpose put every 64th
	 * granule, 256 bytes apart, on one line: two threads' batches 4 KiB apart then cost
	 * 110 ns a pair.) The block is one page.
	 */
	g = (addr >> 2) - (start >> 2);
	if (!pcpu_hmap_spread)
		return &m->state[g];
	lo = g & 63;
	hi = g >> 6 & 63;
	g = (g & ~(uintptr_t)(PCPU_HMAP_STATE_BLOCK - 1)) | ((lo + hi) & 63) << 6 | hi;
	return &m->state[g];
}

/* pcpu_hmap_stable - @m still has generation @gen (after acting on its state). */
static inline bool pcpu_hmap_stable(struct pcpu_hmeta *m, uint32_t gen)
{
	return __atomic_load_n(&m->gen, __ATOMIC_ACQUIRE) == gen;
}

#endif /* PCPU_HMAP_H */
