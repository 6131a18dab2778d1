/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * The chunk-set layer's front caches of ready objects (see chunkset.h, "The front").
 *
 * Classes: 4, 8, 12 ... 64 bytes, then 128, 256, 512 and 1024 (pcpu_front_class()), each
 * object allocated from the map with its class size and the default alignment of a request
 * of that size, so a class serves exactly the requests of its size: the map records the size
 * asked for. Other sizes, larger alignments and accounted allocations (PCPU_ACCOUNT) never
 * come here: domains charge exactly what they charged before.
 *
 * Lists: READY(k) and DIRTY(k) per class in one struct pcpu_front. Per-CPU array capacity:
 * 2 KiB of objects per unit (512 objects of 4 bytes ... 8 of 256 bytes and more), and for
 * classes the freeing thread does not zero (below), at least one recycle batch (512
 * objects of 4 to 16 bytes ... 16 of 512 bytes and more); the depots exchange half an
 * array at a time. High mark of ready objects per class:
 * max(2 arrays, 16 KiB per unit of objects); the balancer gives the excess back to the map.
 *
 * Object states (one byte per 4-byte granule, hmap.h): 0 not a front object (free space,
 * interior, or an ordinary allocation), LIVE|k handed out, CACHED|k on a READY or DIRTY
 * list. Writes: pcpu_front_alloc() stores LIVE (the object is the caller's alone);
 * pcpu_front_free() compare-and-swaps LIVE -> CACHED (two concurrent frees of one object:
 * exactly one wins, the other takes the locked path, which reports the double free); the
 * return of an object to the map stores 0 under pcpu_lock.
 *
 * Statistics: hits are counted by the per-CPU sequences (front.h); misses, refills and
 * returns under the front's or the allocator's locks. pcpu_gstats counts the map: an object
 * in a cache counts as allocated there.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <pcpu.h>

#include "alloc.h" /* pcpu_bad_free, pcpu_static_nr_dyn, pcpu_stats_count_alloc */
#include "balance.h"
#include "checker.h"
#include "chunkset.h"
#include "config.h"
#include "front.h"
#include "hmap.h"
#include "leaks.h"
#include "topology.h"
#include "trace.h"

#define NR_CLASSES PCPU_FRONT_NR_CLASSES
#define READY(k) (2 * (k))
#define DIRTY(k) (2 * (k) + 1)
#define ST_LIVE 0x80
#define ST_CACHED 0x40
#define ST_CLASS 0x3f
#define ARRAY_BYTES 2048          /* per-CPU array: bytes of objects per unit */
#define HIGH_BYTES (16 << 10)     /* ready objects kept per class: bytes per unit */
#define BALANCE_BATCH 512         /* objects zeroed per pcpu_zero_objects() round */
/*
 * Dirty objects the balancer takes from a depot at once. Sorted together, the objects of
 * one chunk share a page-table scan; freed in random order over many chunks, a batch of
 * 512 held about 16 objects per chunk, one scan each (1M random frees at 1024x16: the
 * scans were a third of the process's CPU).
 */
#define BALANCE_POP 8192
/*
 * Objects an allocation zeroes at most at once (recycle()), and takes from the map at once
 * (refill()): RECYCLE_BYTES of them per unit, 16 to RECYCLE_MAX. What a CPU keeps moving
 * between its lists is what refill() gave it, so this is also the batch of every later
 * recycle(): large enough that the one page-table scan per batch (1 to 5 us, from 64 to
 * 4096 units) costs a few ns per object.
 */
#define RECYCLE_BYTES (8 << 10)
#define RECYCLE_MAX 512
#define FLUSH_KICK_NS 10000000    /* a flush kicks the balancer at most every 10 ms */
enum { TALLY_ALLOC, TALLY_FREE };

static struct pcpu_front front;
static bool front_on;
static unsigned cap[2 * NR_CLASSES];
static unsigned batch[NR_CLASSES]; /* recycle() and refill() batch, RECYCLE_BYTES */
/*
 * Classes whose objects the freeing thread zeroes itself: at most INLINE_UNITS units and
 * INLINE_BYTES bytes over all copies (the copies of a never-written page are only read).
 */
#define INLINE_UNITS 8
#define INLINE_BYTES 2048
static bool inline_zero[NR_CLASSES];
static uint64_t refilled[NR_CLASSES], returned[NR_CLASSES]; /* pcpu_lock */
static uint64_t folded[2];        /* tallies already in pcpu_gstats (pcpu_lock) */

bool pcpu_front_cycles_singles(void)
{
	return pcpu_geom.nr_units <= INLINE_UNITS;
}

static inline int csize(int k)
{
	return pcpu_front_class_size(k);
}

static inline int calign(int k)
{
	return pcpu_front_class_align(k);
}

/*
 * Memory checkers: ASan's shadow has 8-byte granules, and an update of one shared with
 * another allocation (classes that are not multiples of 8) must hold pcpu_lock (checker.h).
 */
static inline pthread_mutex_t *ck_lock(int k)
{
	return csize(k) % 8 ? &pcpu_lock : NULL;
}

static unsigned high_mark(int k)
{
	unsigned h = HIGH_BYTES / (unsigned)csize(k);

	return h > 2 * cap[READY(k)] ? h : 2 * cap[READY(k)];
}

int pcpu_front_cache_init(void)
{
	unsigned n = pcpu_topo.real_nr_cpu_ids > pcpu_topo.nr_cpus ? pcpu_topo.real_nr_cpu_ids
								     : pcpu_topo.nr_cpus;
	const char *off = pcpu_getenv("PCPU__FRONT");
	int err;

	if (off && !strcmp(off, "0"))
		return 0; /* benchmarks and tests compare with the map alone */
	/*
	 * balance=off: nobody zeroes in the background, and the frees would pay for it in
	 * batches anyway; the front would only hold memory. The zeroing queue does it all.
	 */
	if (!pcpu_settings.balance && !(off && !strcmp(off, "1")))
		return 0; /* PCPU__FRONT=1: on anyway (the fault sweep, whose runs need balance=off) */
	if (n > PCPU_MAX_CPUS)
		n = PCPU_MAX_CPUS;
	for (int k = 0; k < NR_CLASSES; k++) {
		unsigned c = ARRAY_BYTES / (unsigned)csize(k);

		cap[READY(k)] = cap[DIRTY(k)] = c < 8 ? 8 : c;
		c = RECYCLE_BYTES / (unsigned)csize(k);
		batch[k] = c < 16 ? 16 : c > RECYCLE_MAX ? RECYCLE_MAX : c;
		inline_zero[k] = pcpu_geom.nr_units <= INLINE_UNITS &&
				 pcpu_geom.nr_units * (unsigned)csize(k) <= INLINE_BYTES;
		/*
		 * Where the CPUs cycle batches (the balancer or recycle() zeroes), an array
		 * holds a whole one: a CPU's recycle() then finds its own frees, and its ready
		 * array takes the batch zeroed, without either going through the depots (a
		 * mutex, and objects that move to the other CPUs, whose state bytes then
		 * bounce): 2 threads of alloc/free pairs at 64x4, 97 -> 54 ns a pair each.
		 */
		if (!inline_zero[k] && cap[READY(k)] < batch[k])
			cap[READY(k)] = cap[DIRTY(k)] = batch[k];
	}
	err = pcpu_front_init(&front, 2 * NR_CLASSES, cap, n, pcpu_front_percpu_possible());
	if (err)
		return err;
	/* Tests: a small depot, which a flood of frees fills (double underscore: internal). */
	{
		const char *d = pcpu_getenv("PCPU__FRONT_DEPOT_CAP");

		if (d && atol(d) > 0)
			pcpu_front_limit_depots(&front, (size_t)atol(d));
	}
	front_on = true;
	return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Chunks and states                                                                        */
/* ---------------------------------------------------------------------------------------- */

void pcpu_front_chunk_added(struct pcpu_chunk *c, uintptr_t start, uintptr_t end)
{
	/* Out of memory here only means the front never caches this chunk's objects. */
	if (c->set == 0)
		(void)pcpu_hmap_add(c, start, end);
}

void pcpu_front_chunk_removed(struct pcpu_chunk *c)
{
	struct pcpu_hmeta *m = pcpu_hmap_lookup((uintptr_t)c->base + pcpu_geom.unit_size - 1);

	if (m && m->chunk == c)
		pcpu_hmap_del(m);
}

/* The state byte of the object at unit-0 address @addr, or NULL (not a front chunk). */
static uint8_t *state_of(uintptr_t addr, struct pcpu_hmeta **mp)
{
	struct pcpu_hmeta *m = pcpu_hmap_find(addr);
	uint32_t gen;

	if (!m)
		return NULL;
	if (mp)
		*mp = m;
	return pcpu_hmap_state(m, addr, &gen);
}

bool pcpu_front_cached(const struct pcpu_chunk *c, int off)
{
	uint8_t *s;

	if (!front_on)
		return false;
	s = state_of((uintptr_t)c->base + (uintptr_t)off, NULL);

	return s && (__atomic_load_n(s, __ATOMIC_RELAXED) & ST_CACHED);
}

void pcpu_front_forget(const struct pcpu_chunk *c, int off)
{
	uint8_t *s;

	if (!front_on)
		return;
	s = state_of((uintptr_t)c->base + (uintptr_t)off, NULL);
	/* Read first: a store of zero on zero would still dirty the page. */
	if (s && __atomic_load_n(s, __ATOMIC_RELAXED))
		__atomic_store_n(s, 0, __ATOMIC_RELAXED);
}

/* Give the cached object @h back to the map (pcpu_lock held; it is zero in every unit). */
static void return_locked(uintptr_t h, int k)
{
	uintptr_t addr = pcpu_addr_of((void *)h);
	struct pcpu_hmeta *m = NULL;
	uint8_t *s = state_of(addr, &m);
	struct pcpu_chunk *c = m->chunk;

	__atomic_store_n(s, 0, __ATOMIC_RELAXED);
	/* Balance work it leaves (a free chunk, one to reclaim) is for the balancer's run in
	 * progress (returns happen there) or its next one. */
	(void)pcpu_front_return_locked(c, (int)(addr - (uintptr_t)c->base));
	returned[k]++;
}

/* ---------------------------------------------------------------------------------------- */
/* Alloc and free                                                                           */
/* ---------------------------------------------------------------------------------------- */

/* Hand @h (class @k, CACHED, zero) to the caller. */
static void *hand_out(uintptr_t h, int k, void *call_site)
{
	uintptr_t addr = pcpu_addr_of((void *)h);
	struct pcpu_hmeta *m = NULL;
	uint8_t *s = state_of(addr, &m);
	struct pcpu_chunk *c = m->chunk;
	int off = (int)(addr - (uintptr_t)c->base);

	PCPU_ASSERT(*s == (ST_CACHED | k));
	__atomic_store_n(s, (uint8_t)(ST_LIVE | k), __ATOMIC_RELAXED);
	pcpu_front_tally(&front, TALLY_ALLOC);
	pcpu_checker_alloc(ck_lock(k), c, off, csize(k));
	if (unlikely(__atomic_load_n(&pcpu_leaks_on, __ATOMIC_RELAXED))) {
		bool slow;

		pthread_mutex_lock(&pcpu_lock);
		slow = pcpu_leaks_note_locked(c, off, call_site);
		pthread_mutex_unlock(&pcpu_lock);
		if (slow)
			pcpu_leaks_note_slow(c, off, call_site);
	}
	pcpu_trace_alloc(call_site, false, false, csize(k), calign(k), c->base, off, (void *)h,
			 (size_t)csize(k) * pcpu_geom.nr_units, 0);
	return (void *)h;
}

/*
 * Cache the @nr objects of class @k at @offs of @c, just allocated from the map, into
 * @got. Return how many; fewer when the chunk is not in the handle map (it could not be
 * registered): the rest went straight back to the map.
 */
static unsigned cache_batch(int k, struct pcpu_chunk *c, const int *offs, int nr,
			    uintptr_t *got)
{
	struct pcpu_hmeta *m = pcpu_hmap_lookup((uintptr_t)c->base + (uintptr_t)offs[0]);
	uint32_t gen;
	int i, j;

	for (i = 0; i < nr; i++) {
		uintptr_t addr = (uintptr_t)c->base + (uintptr_t)offs[i];
		/* One lookup for the batch: a chunk's objects share its meta. */
		uint8_t *s = m ? pcpu_hmap_state(m, addr, &gen) : NULL;

		if (!s)
			s = state_of(addr, NULL);
		if (!s) {
			/* A chunk the map could not register: not cacheable, straight back. */
			for (j = i; j < nr; j++)
				pcpu_front_return_locked(c, offs[j]);
			break;
		}
		__atomic_store_n(s, (uint8_t)(ST_CACHED | k), __ATOMIC_RELAXED);
		got[i] = (uintptr_t)pcpu_handle_of(c, offs[i]);
	}
	return (unsigned)i;
}

static void return_all(int k, const uintptr_t *objs, size_t n);

/*
 * A ready list ran dry: take a batch of the class from the map's populated free space
 * (free space is zero in every unit), keep one, cache the rest. The map hands them out a
 * chunk at a time (pcpu_alloc_many_from_slots()), its metadata updated once per free run
 * rather than once per object. Return the one, or 0.
 */
static uintptr_t refill(int k, unsigned want, bool keep, bool nowait)
{
	struct pcpu_chunk *last = NULL;
	uintptr_t got[RECYCLE_MAX];
	int offs[RECYCLE_MAX];
	unsigned n = 0;
	bool low;

	pthread_mutex_lock(&pcpu_lock);
	while (n < want) {
		struct pcpu_chunk *c;
		int nr = pcpu_alloc_many_from_slots(0, csize(k), calign(k), true, (int)(want - n),
						    offs, &c);
		unsigned cached;

		if (!nr)
			break;
		cached = cache_batch(k, c, offs, nr, got + n);
		n += cached;
		if (cached)
			last = c; /* it holds objects of ours: it stays */
		if (cached < (unsigned)nr)
			break;
	}
	refilled[k] += n;
	/* kernel: the LOW check at the end of pcpu_alloc(), as the map's own path does */
	low = pcpu_nr_empty_pop_pages(-1) < (int)pcpu_settings.empty_low;
	pthread_mutex_unlock(&pcpu_lock);
	if (low)
		pcpu_balance_low(last, nowait);
	if (n > (unsigned)keep) {
		size_t done = keep + pcpu_front_push_many(&front, READY(k), got + keep, n - keep);

		if (done < n)
			return_all(k, got + done, n - done); /* the depot is full */
	}
	return n && keep ? got[0] : 0;
}

/*
 * Smallest and largest request served here (4-byte granules), folded into pcpu_gstats.
 * Shared, but written only when a new extreme shows up: the line stays shared-clean.
 */
static size_t req_min = SIZE_MAX, req_max;

static void note_size(size_t size)
{
	size = ALIGN_UP(size, (size_t)PCPU_MIN_ALLOC_SIZE);
	if (unlikely(size < __atomic_load_n(&req_min, __ATOMIC_RELAXED)))
		__atomic_store_n(&req_min, size, __ATOMIC_RELAXED);
	if (unlikely(size > __atomic_load_n(&req_max, __ATOMIC_RELAXED)))
		__atomic_store_n(&req_max, size, __ATOMIC_RELAXED);
}

static void zero_dirty(int k, uintptr_t *objs, uintptr_t *tmp, size_t n);

/*
 * A ready list ran dry: zero a batch of this class's freed objects here, this CPU's first,
 * keep one, make the rest ready. The zeroing reads the copies on written pages only (one
 * PAGEMAP_SCAN per batch, pcpu_zero_objects()), so its cost follows the CPUs that wrote,
 * not the possible ones, and an alloc/free cycle never reaches the map nor waits for the
 * balancer. Return the one, or 0 when none waits.
 */
static uintptr_t recycle(int k, size_t *got)
{
	uintptr_t objs[RECYCLE_MAX], tmp[RECYCLE_MAX];
	size_t n = pcpu_front_pop_many(&front, DIRTY(k), objs, batch[k]), done;

	*got = n;
	if (!n)
		return 0;
	zero_dirty(k, objs, tmp, n); /* sorts them */
	/* The rest on the ready list, one sequence for as many as the array takes. */
	done = 1 + pcpu_front_push_many(&front, READY(k), objs + 1, n - 1);
	if (done < n)
		return_all(k, objs + done, n - done); /* the depot is full */
	return objs[0];
}

void *pcpu_front_alloc(int k, size_t size, bool nowait, void *call_site)
{
	uintptr_t h;

	if (!front_on)
		return NULL;
	note_size(size);
	h = pcpu_front_pop(&front, READY(k));
	if (unlikely(!h)) {
		size_t n;

		h = recycle(k, &n);
		if (!h)
			h = refill(k, batch[k], true, nowait);
		else if (n < batch[k] / 2)
			/*
			 * Few objects were freed since the list ran dry (one, in an alloc/free
			 * cycle): make up the batch from the map's populated free space, or every
			 * allocation from here on would recycle the object just freed, with a
			 * page-table scan each (microseconds at 1024 units).
			 */
			(void)refill(k, (unsigned)(batch[k] - n), false, nowait);
		if (!h)
			return NULL;
	}
	return hand_out(h, k, call_site);
}

void pcpu_front_adopt(void *h, int k)
{
	uint8_t *s;

	if (!front_on)
		return;
	s = state_of(pcpu_addr_of(h), NULL);
	if (s)
		__atomic_store_n(s, (uint8_t)(ST_LIVE | k), __ATOMIC_RELAXED);
}

/*
 * Zero every copy of the object at @off of @c that does not read zero (few units only).
 * Objects up to 64 bytes: every copy is read first, its words OR-ed without a branch and
 * without a call per unit (a call of pcpu_mem_is_zero() per copy cost 15 ns of a 50 ns
 * alloc/free pair at 8 units: 34-39 ns now); then the copies that are not zero are
 * cleared. pcpu_front_free() has prefetched their first lines.
 */
static void zero_copies(struct pcpu_chunk *c, int off, int size)
{
	uint64_t dirty[INLINE_UNITS];
	unsigned nr = pcpu_geom.nr_units;

	if (size > 64 || nr > INLINE_UNITS) {
		pcpu_zero_area(c, off, size);
		return;
	}
	for (unsigned u = 0; u < nr; u++)
		dirty[u] = pcpu_or_small(pcpu_unit_addr(c, u, (size_t)off), (size_t)size);
	for (unsigned u = 0; u < nr; u++)
		if (dirty[u])
			memset(pcpu_unit_addr(c, u, (size_t)off), 0, (size_t)size);
}

/*
 * Does a balance run know about the objects cached now? A run clears it before it counts
 * what the caches hold (and comes back on its timer while they hold anything); the next
 * free that caches an object sets it again and kicks. Without it, objects freed after a
 * run that found the caches empty would stay cached, and pin their chunks, for good.
 */
static bool aging;

static inline void note_cached(void)
{
	if (unlikely(!__atomic_load_n(&aging, __ATOMIC_SEQ_CST))) {
		__atomic_store_n(&aging, true, __ATOMIC_SEQ_CST);
		pcpu_balance_kick(false);
	}
}

/* Give a batch of the ready depot of class @k back to the map. */
static void flush(int k)
{
	uintptr_t objs[RECYCLE_MAX];
	size_t n = pcpu_front_pop_depot(&front, READY(k), objs, batch[k]);

	static uint64_t kicked; /* racy on purpose: a kick more or less does no harm */
	uint64_t now;

	if (n)
		return_all(k, objs, n);
	/*
	 * Once the frees stop, the balancer's timed runs age out what stays cached; one kick
	 * starts them. Not one per flush: its runs would fight ours for pcpu_lock.
	 */
	now = pcpu_now_ns();
	if (now - __atomic_load_n(&kicked, __ATOMIC_RELAXED) > FLUSH_KICK_NS) {
		__atomic_store_n(&kicked, now, __ATOMIC_RELAXED);
		pcpu_balance_kick(false);
	}
}

bool pcpu_front_free(void *p)
{
	uintptr_t addr = pcpu_addr_of(p);
	struct pcpu_hmeta *m;
	struct pcpu_chunk *c;
	uint8_t *s, old;
	uint32_t gen;
	int k, off, pushed;

	/* PCPU_DEFINE variables that fell back to pcpu_alloc() are not the caller's to free. */
	if (!front_on || __atomic_load_n(&pcpu_static_nr_dyn, __ATOMIC_RELAXED))
		return false;
	m = pcpu_hmap_find(addr);
	if (!m)
		return false;
	s = pcpu_hmap_state(m, addr, &gen);
	if (!s)
		return false;
	/*
	 * At most 8 units (where the freeing thread zeroes the small classes), the copies'
	 * cache misses start now, beside the state byte's, not after the compare-and-swap:
	 * objects freed in random order at 2 CPUs 229-242 ns each instead of 266-286 (the
	 * copies' check inlined below; 235-237 when it was a call per copy), at 8 units 322
	 * instead of 364. From the handle alone: the chunk is read only once the state byte
	 * says the object is live (a bad free may race with its chunk's destruction).
	 */
	if (pcpu_front_cycles_singles()) {
		for (unsigned u = 0; u < pcpu_geom.nr_units; u++)
			__builtin_prefetch((const void *)pcpu_handle_copy(p, u));
	}
	old = __atomic_load_n(s, __ATOMIC_RELAXED);
	if (!(old & ST_LIVE))
		return false;
	c = m->chunk;
	if (!pcpu_handle_kind_ok(c, p))
		return false; /* the locked path reports it */
	if (!__atomic_compare_exchange_n(s, &old, (uint8_t)((old & ST_CLASS) | ST_CACHED), false,
					 __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
		return false;
	/*
	 * The meta was reassigned while we looked: the chunk was destroyed, which no live
	 * object allows, so @p was not one.
	 */
	if (!pcpu_hmap_stable(m, gen))
		pcpu_bad_free(p, "not a live allocation (its chunk is gone)");
	k = old & ST_CLASS;
	off = (int)(addr - (uintptr_t)c->base);
	if (unlikely(__atomic_load_n(&pcpu_leaks_on, __ATOMIC_RELAXED))) {
		pthread_mutex_lock(&pcpu_lock);
		if (c->callers)
			c->callers[off / PCPU_MIN_ALLOC_SIZE] = NULL;
		pthread_mutex_unlock(&pcpu_lock);
	}
	/* A use after free is reported from now on (checkers). */
	pcpu_trace_free(c->base, off, p);
	pcpu_front_tally(&front, TALLY_FREE);
	if (inline_zero[k]) {
		/*
		 * Few units: zeroing the copies here costs less than handing them to the
		 * balancer (a wake-up, a batch, a depot round trip), and the object is ready
		 * at once, on this CPU.
		 */
		zero_copies(c, off, csize(k));
		pcpu_checker_access_end(ck_lock(k), c, off, csize(k));
		pushed = pcpu_front_push(&front, READY(k), (uintptr_t)p);
		/*
		 * Spilled into the depot a batch above the high mark: give a batch back to the
		 * map here, under one hold of pcpu_lock (a flood of frees never waits for the
		 * balancer, nor fills the depot).
		 */
		if (unlikely(pushed > 0) &&
		    pcpu_front_depot_nr(&front, READY(k)) > high_mark(k) + batch[k])
			flush(k);
		if (likely(pushed >= 0)) {
			note_cached();
			return true;
		}
		pcpu_checker_access_begin(ck_lock(k), c, off, csize(k));
	}
	pcpu_checker_access_end(ck_lock(k), c, off, csize(k)); /* poisons, as a free does */
	pushed = pcpu_front_push(&front, DIRTY(k), (uintptr_t)p);
	if (unlikely(pushed < 0)) {
		bool kick = false;

		/*
		 * The depot is full (a flood of frees outran the balancer): the zeroing queue
		 * takes it, as without the front, which the balancer drains chunk by chunk.
		 * One at a time, on purpose: moving a batch of the depot's along with it made
		 * the frees faster but sent more objects the queue's dearer way (1M frees in
		 * order, then 1M allocations, at 64x4: 94 -> 143 ns of CPU per object).
		 */
		pthread_mutex_lock(&pcpu_lock);
		__atomic_store_n(s, 0, __ATOMIC_RELAXED);
		pcpu_checker_alloc(NULL, c, off, csize(k)); /* queue_area poisons it again */
		pcpu_queue_area(c, off, &kick);
		/* queue_area counted the free, and so did our tally: cancel one. */
		pcpu_gstats.nr_dealloc--;
		pcpu_gstats.nr_cur_alloc++;
		pthread_mutex_unlock(&pcpu_lock);
		if (kick)
			pcpu_balance_kick(false);
		return true;
	}
	/*
	 * The array overflowed into the depot: wake the balancer once more wait than the
	 * allocations of a CPU recycle at once (they may be only freeing now).
	 */
	if (unlikely(pushed) && pcpu_front_depot_nr(&front, DIRTY(k)) >= 2 * batch[k])
		pcpu_balance_kick(false);
	note_cached();
	return true;
}

/* ---------------------------------------------------------------------------------------- */
/* Balance                                                                                  */
/* ---------------------------------------------------------------------------------------- */

/* Zero @n dirty objects of class @k (sorted in place; @tmp: room for @n), chunk by chunk. */
static void zero_dirty(int k, uintptr_t *objs, uintptr_t *tmp, size_t n)
{
	int offs[BALANCE_BATCH];
	size_t zeroed = 0;

	pcpu_sort_words(objs, tmp, n);
	for (size_t i = 0; i < n;) {
		struct pcpu_hmeta *m = NULL;
		struct pcpu_chunk *c;
		int nr = 0;

		state_of(pcpu_addr_of((void *)objs[i]), &m);
		c = m->chunk;
		while (i < n && nr < BALANCE_BATCH) {
			uintptr_t a = pcpu_addr_of((void *)objs[i]);

			if (a < (uintptr_t)c->base || a >= (uintptr_t)c->base + pcpu_geom.unit_size)
				break;
			offs[nr] = (int)(a - (uintptr_t)c->base);
			/* Poisoned since the free: the zeroing itself may touch it. */
			pcpu_checker_access_begin(ck_lock(k), c, offs[nr], csize(k));
			nr++;
			i++;
		}
		zeroed += pcpu_zero_objects(c, offs, nr, csize(k));
		for (int j = 0; j < nr; j++)
			pcpu_checker_access_end(ck_lock(k), c, offs[j], csize(k));
	}
	pthread_mutex_lock(&pcpu_lock);
	pcpu_gstats.zeroed_bytes += zeroed;
	pthread_mutex_unlock(&pcpu_lock);
}

/* Give @n ready objects of class @k back to the map. */
static void return_all(int k, const uintptr_t *objs, size_t n)
{
	enum { STEP = 256 }; /* objects sorted and returned at once: 5 KiB of stack */
	uintptr_t v[STEP], tmp[STEP];
	int offs[STEP];

	while (n) {
		size_t m = n < STEP ? n : STEP;

		memcpy(v, objs, m * sizeof(*v));
		pcpu_sort_words(v, tmp, m);
		pthread_mutex_lock(&pcpu_lock);
		/* Chunk by chunk: one call into its map for all of its objects. */
		for (size_t i = 0; i < m;) {
			struct pcpu_hmeta *meta = NULL;
			struct pcpu_chunk *c;
			uintptr_t base;
			int nr = 0;

			state_of(pcpu_addr_of((void *)v[i]), &meta);
			c = meta->chunk;
			base = (uintptr_t)c->base;
			while (i < m) {
				uintptr_t a = pcpu_addr_of((void *)v[i]);
				uint8_t *s;

				if (a < base || a >= base + pcpu_geom.unit_size)
					break;
				s = state_of(a, NULL);
				__atomic_store_n(s, 0, __ATOMIC_RELAXED);
				offs[nr++] = (int)(a - base);
				i++;
			}
			/*
			 * Balance work it leaves is for the balancer's run in progress or next.
			 * (The area map picks a rebuild per block or an update per object.)
			 */
			(void)pcpu_front_return_many_locked(c, offs, nr, csize(k));
		}
		returned[k] += m;
		pthread_mutex_unlock(&pcpu_lock);
		objs += m;
		n -= m;
	}
}

/* Is a chunk of the plain set isolated for reclaim? (Then its cached objects go back.) */
static bool reclaim_pending(void)
{
	bool r;

	pthread_mutex_lock(&pcpu_lock);
	r = pcpu_slot_first(0, pcpu_to_depopulate_slot) != NULL;
	pthread_mutex_unlock(&pcpu_lock);
	return r;
}

/* Ready objects of isolated chunks back to the map; the others back to the depot. */
static void return_isolated(int k)
{
	static uintptr_t objs[BALANCE_BATCH], keep[BALANCE_BATCH];
	size_t n;

	do {
		size_t nk = 0;

		n = pcpu_front_pop_depot(&front, READY(k), objs, BALANCE_BATCH);
		pthread_mutex_lock(&pcpu_lock);
		for (size_t i = 0; i < n; i++) {
			struct pcpu_hmeta *m = NULL;

			state_of(pcpu_addr_of((void *)objs[i]), &m);
			if (m->chunk->isolated)
				return_locked(objs[i], k);
			else
				keep[nk++] = objs[i];
		}
		pthread_mutex_unlock(&pcpu_lock);
		if (nk && pcpu_front_push_depot(&front, READY(k), keep, nk))
			return_all(k, keep, nk);
		if (nk == n)
			break; /* nothing isolated among them: the rest of the depot is older */
	} while (n == BALANCE_BATCH);
}

static bool balance_pass(bool trim, bool idle);

bool pcpu_front_balance(bool trim, bool idle)
{
	bool holds = balance_pass(trim, idle);

	/*
	 * A drain leaves objects in the arrays when their depot is full (a flood of frees
	 * outran the balancer): trimming goes round again until the depots took everything.
	 */
	for (int i = 0; trim && holds && i < 64; i++)
		holds = balance_pass(true, false);
	return holds;
}

static bool balance_pass(bool trim, bool idle)
{
	/* The balancer runs one at a time (pcpu_balance_mutex): static buffers will do. */
	static uintptr_t objs[BALANCE_POP], tmp[BALANCE_POP];
	bool reclaim, holds = false;

	if (!front_on)
		return false;
	/* Before anything is counted: a free that caches an object after this kicks again. */
	__atomic_store_n(&aging, false, __ATOMIC_SEQ_CST);
	reclaim = reclaim_pending();
	/*
	 * The CPUs' arrays come back to the depots when trimming, on the timed runs of an
	 * idle period (so that what nobody uses ages out), and before a reclaim (ready
	 * lists). Not on every run: each drain interrupts every CPU running a thread of ours.
	 */
	if (trim || idle)
		pcpu_front_drain(&front, ~0ULL);
	else if (reclaim)
		pcpu_front_drain(&front, 0x5555555555555555ULL); /* the READY lists */
	for (int k = 0; k < NR_CLASSES; k++) {
		size_t n;

		while ((n = pcpu_front_pop_depot(&front, DIRTY(k), objs, BALANCE_POP))) {
			size_t ready = pcpu_front_count(&front, READY(k));
			size_t keep = trim || ready >= high_mark(k) ? 0 : high_mark(k) - ready;

			zero_dirty(k, objs, tmp, n);
			if (keep > n)
				keep = n;
			if (keep && pcpu_front_push_depot(&front, READY(k), objs, keep))
				keep = 0;
			return_all(k, objs + keep, n - keep);
		}
		/* Above the high mark (or trimming): the excess of the depot goes back. */
		for (;;) {
			size_t ready = pcpu_front_count(&front, READY(k));
			size_t over = trim ? ready : ready > high_mark(k) ? ready - high_mark(k) : 0;

			if (!over)
				break;
			n = pcpu_front_pop_depot(&front, READY(k), objs,
						 over < BALANCE_BATCH ? over : BALANCE_BATCH);
			if (!n)
				break;
			return_all(k, objs, n);
		}
		/* Idle: what stayed in the depot since the last run goes back. */
		while (idle && (n = pcpu_front_pop_cold(&front, READY(k), objs, BALANCE_BATCH)))
			return_all(k, objs, n);
		if (reclaim && !trim)
			return_isolated(k);
		holds = holds || pcpu_front_count(&front, READY(k)) ||
			pcpu_front_count(&front, DIRTY(k));
	}
	pcpu_front_age(&front);
	/*
	 * Still holding: the balancer comes back on its timer (a trim's caller has none:
	 * the next free kicks). Frees need not kick meanwhile.
	 */
	if (holds && !trim)
		__atomic_store_n(&aging, true, __ATOMIC_SEQ_CST);
	return holds;
}

/* ---------------------------------------------------------------------------------------- */
/* Statistics, verification, fork                                                           */
/* ---------------------------------------------------------------------------------------- */

void pcpu_front_fold_stats(void)
{
	uint64_t a, f;

	if (!front_on)
		return;
	a = pcpu_front_tally_sum(&front, TALLY_ALLOC);
	f = pcpu_front_tally_sum(&front, TALLY_FREE);
	pcpu_gstats.nr_alloc += a - folded[0];
	pcpu_gstats.nr_dealloc += f - folded[1];
	pcpu_gstats.nr_cur_alloc += (a - folded[0]) - (f - folded[1]);
	if (pcpu_gstats.nr_cur_alloc > pcpu_gstats.nr_max_alloc)
		pcpu_gstats.nr_max_alloc = pcpu_gstats.nr_cur_alloc;
	folded[0] = a;
	folded[1] = f;
	if (__atomic_load_n(&req_min, __ATOMIC_RELAXED) < pcpu_gstats.min_alloc_size)
		pcpu_gstats.min_alloc_size = __atomic_load_n(&req_min, __ATOMIC_RELAXED);
	if (__atomic_load_n(&req_max, __ATOMIC_RELAXED) > pcpu_gstats.max_alloc_size)
		pcpu_gstats.max_alloc_size = __atomic_load_n(&req_max, __ATOMIC_RELAXED);
}

void pcpu_front_stats(int k, struct pcpu_front_class_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!front_on || k < 0 || k >= NR_CLASSES)
		return;
	pthread_mutex_lock(&front.lock);
	out->misses = front.depot[READY(k)].misses;
	pthread_mutex_unlock(&front.lock);
	out->hits = pcpu_front_hits(&front, READY(k));
	out->cached_objects =
		pcpu_front_count(&front, READY(k)) + pcpu_front_count(&front, DIRTY(k));
	out->cached_bytes = out->cached_objects * (uint64_t)csize(k);
}

struct verify_arg {
	int k;
	bool ready;
	char *why;
	size_t len;
	size_t n, states;
};

static int verify_one(unsigned l, uintptr_t h, void *arg)
{
	struct verify_arg *v = arg;

	v->k = (int)l / 2;
	v->ready = !(l & 1);
	uintptr_t addr = pcpu_addr_of((void *)h);
	struct pcpu_hmeta *m = NULL;
	uint8_t *s = state_of(addr, &m);
	struct pcpu_chunk *c;
	uint8_t st;
	int off;

	v->n++;
	if (!s || !m->chunk) {
		snprintf(v->why, v->len, "front: cached %p is not in a registered chunk", (void *)h);
		return -1;
	}
	c = m->chunk;
	off = (int)(addr - (uintptr_t)c->base);
	/* A racing bad free may CAS this byte: read it as the atomic it is. */
	st = __atomic_load_n(s, __ATOMIC_RELAXED);
	if (st != (ST_CACHED | v->k) || !pcpu_am_is_alloc_start(&c->map, off) ||
	    pcpu_am_alloc_size(&c->map, off) != csize(v->k)) {
		snprintf(v->why, v->len,
			 "front: cached %p (class %d): state %#x, allocated %d, size %d",
			 (void *)h, csize(v->k), st, pcpu_am_is_alloc_start(&c->map, off),
			 pcpu_am_is_alloc_start(&c->map, off) ? pcpu_am_alloc_size(&c->map, off)
							       : 0);
		return -1;
	}
	if (v->ready) {
		pcpu_checker_access_begin(NULL, c, off, csize(v->k));
		for (unsigned u = 0; u < pcpu_geom.nr_units; u++) {
			if (!pcpu_mem_is_zero(pcpu_unit_addr(c, u, (size_t)off),
					      (size_t)csize(v->k))) {
				snprintf(v->why, v->len, "front: ready %p not zero in unit %u",
					 (void *)h, u);
				pcpu_checker_access_end(NULL, c, off, csize(v->k));
				return -1;
			}
		}
		pcpu_checker_access_end(NULL, c, off, csize(v->k));
	}
	return 0;
}

/* Count the CACHED states of a chunk's objects. */
static void count_cached(struct pcpu_chunk *c, void *arg)
{
	size_t *n = &((struct verify_arg *)arg)->states;

	for (int g = 0; g < c->map.map_bits; g++) {
		int off = g * PCPU_MIN_ALLOC_SIZE;

		if (pcpu_am_is_alloc_start(&c->map, off) && pcpu_front_cached(c, off))
			(*n)++;
	}
}

/* With the depots frozen (f->lock): every object in them is CACHED, others may be too. */
static void count_all(void *arg)
{
	pcpu_for_each_chunk(count_cached, arg);
}

int pcpu_front_verify(char *why, size_t len)
{
	size_t listed = 0, states = 0;

	if (!front_on)
		return 0;
	{
		struct verify_arg v = {0, false, why, len, 0, 0};

		if (pcpu_front_for_each(&front, ~0ULL, verify_one, count_all, &v))
			return -1;
		listed = v.n;
		states = v.states;
	}
	/*
	 * Objects in flight (being pushed after a free, popped before their state says
	 * LIVE, on their way back to the map) are CACHED without being listed: never the
	 * other way round.
	 */
	if (states < listed) {
		snprintf(why, len, "front: %zu objects on the lists, only %zu in the CACHED state",
			 listed, states);
		return -1;
	}
	return 0;
}

void pcpu_front_cache_atfork_prepare(void)
{
	if (front_on)
		pcpu_front_atfork_prepare(&front);
	pcpu_hmap_atfork_prepare();
}

void pcpu_front_cache_atfork_parent(void)
{
	pcpu_hmap_atfork_parent();
	if (front_on)
		pcpu_front_atfork_parent(&front);
}

void pcpu_front_cache_atfork_child(void)
{
	pcpu_hmap_atfork_child();
	if (front_on)
		pcpu_front_atfork_child(&front);
}
