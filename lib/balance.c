/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * The balance work (kernel: pcpu_balance_workfn() and its helpers), run by one background
 * thread named "pcpu-balance", started on first need and woken by a condition variable;
 * with balance=off the same work runs synchronously in the thread that made it necessary,
 * once it has dropped its locks. One run:
 *
 *   0. zero the areas waiting in the zeroing queue and free them in the map (libpcpu's
 *      own step: the kernel zeroes on allocation), holding pcpu_drain_mutex and, briefly,
 *      pcpu_lock, but not pcpu_alloc_mutex: no allocator waits for the zeroing;
 *   1. pcpu_balance_free(): keep at most one fully free chunk;
 *   2. pcpu_reclaim_populated(): depopulate the chunks isolated for reclaim;
 *   3. pcpu_balance_populated(): populate up to HIGH empty pages;
 *   4. pcpu_balance_free(empty only).
 *
 * Steps 1-4 hold pcpu_alloc_mutex (chunks are created, destroyed, (de)populated) and drop
 * pcpu_lock around every system call. Between two pieces of page work they hand the mutex
 * to a blocking allocator that waits for it (pcpu_alloc_mutex_waiters), so an allocation
 * that needs the mutex waits for at most one piece, never for a whole run. That is safe
 * because runs are serialised by pcpu_balance_mutex and only the balance work destroys
 * chunks: a chunk the run holds a pointer to survives the handover.
 *
 * Lock hold times (pcpu_balance_hold_stats(); tests/api/test_balance.c prints them), measured
 * on a busy 2-vCPU VM over 1M alloc+free pairs, then 1M allocations, then 1M frees and
 * 4 s for the balancer (wall time, so preemption while holding counts):
 *
 *                          pcpu_lock        pcpu_alloc_mutex      pcpu_drain_mutex
 *                          mean    max      mean     max          mean    max
 *   2 CPUs                 3.3us   5.8ms    28us     18ms         178us   6.9ms
 *   topology=64x4          2.7us   3.5ms    84us     41ms         167us   7.9ms
 *   topology=256x4         5.5us   12ms     823us    139ms        667us   34ms
 *   2 CPUs, balance=off    3.4us   4.3ms    50us     2.7ms        76us    4.3ms
 *   256x4, balance=off     2.5us   1.1ms    431us    6.4ms        150us   4.5ms
 *
 * The maxima are preemptions of the holder on the oversubscribed VM, not work (the work
 * under pcpu_lock is bounded by DRAIN_LOCK_STEP areas or one run of pages). A mutex hold
 * counts from take to drop; with nobody waiting the balancer keeps the mutex from one piece
 * of page work to the next, so the maximum overstates what a waiting allocator waits: it
 * waits for the piece in progress only (yield_mutex()). The drain mutex is held while a
 * batch is zeroed: an allocator waits for it only when it drains itself, having no clean
 * space.
 *
 * pcpu_lock is held for bookkeeping only: one drain batch is collected (at most
 * DRAIN_BATCH_AREAS areas) or freed DRAIN_LOCK_STEP areas at a time, a run of pages is marked,
 * a chunk is unlinked. pcpu_alloc_mutex is held for one piece of page work: populating or
 * depopulating one run of pages in every unit (two system calls per unit), or creating or
 * unmapping one chunk; that grows with the number of units, which is why it is handed over.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <pcpu.h>

#include "alloc.h"
#include "balance.h"
#include "checker.h"
#include "trace.h"

unsigned long pcpu_balance_runs;
uint64_t pcpu_balance_retries;
uint64_t pcpu_zeroed_bytes;
pthread_mutex_t pcpu_balance_mutex = PTHREAD_MUTEX_INITIALIZER;
int pcpu_alloc_mutex_waiters;

/* ---------------------------------------------------------------------------------------- */
/* Lock hold times                                                                           */
/* ---------------------------------------------------------------------------------------- */

enum { HOLD_LOCK, HOLD_MUTEX, HOLD_DRAIN, NR_HOLDS };

/* Each entry is written only by the holder of its lock. */
static struct pcpu_hold_stat holds[NR_HOLDS];
static uint64_t hold_since[NR_HOLDS];
static pthread_mutex_t *const hold_lock[NR_HOLDS] = {&pcpu_lock, &pcpu_alloc_mutex,
						     &pcpu_drain_mutex};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void take(int which)
{
	pthread_mutex_lock(hold_lock[which]);
	hold_since[which] = now_ns();
}

static void drop(int which)
{
	struct pcpu_hold_stat *h = &holds[which];
	uint64_t d = now_ns() - hold_since[which];

	h->count++;
	h->total_ns += d;
	if (d > h->max_ns)
		h->max_ns = d;
	pthread_mutex_unlock(hold_lock[which]);
}

void pcpu_balance_hold_stats(struct pcpu_hold_stat out[3])
{
	pthread_mutex_lock(&pcpu_alloc_mutex);
	pthread_mutex_lock(&pcpu_drain_mutex);
	pthread_mutex_lock(&pcpu_lock);
	memcpy(out, holds, sizeof(holds));
	pthread_mutex_unlock(&pcpu_lock);
	pthread_mutex_unlock(&pcpu_drain_mutex);
	pthread_mutex_unlock(&pcpu_alloc_mutex);
}

/*
 * Hand pcpu_alloc_mutex to a blocking allocator that waits for it (both locks held on
 * entry and exit). pthread mutexes are not fair: without the yield the balancer would
 * take the mutex straight back before the woken waiter runs.
 */
static void yield_mutex(void)
{
	if (!__atomic_load_n(&pcpu_alloc_mutex_waiters, __ATOMIC_RELAXED))
		return;
	drop(HOLD_LOCK);
	drop(HOLD_MUTEX);
	sched_yield();
	take(HOLD_MUTEX);
	take(HOLD_LOCK);
}

/* ---------------------------------------------------------------------------------------- */
/* Reclaim policy                                                                            */
/* ---------------------------------------------------------------------------------------- */

static int set_empty(int set)
{
	return pcpu_sets[set].nr_empty_pop_pages;
}

/* kernel: pcpu_should_reclaim_chunk() */
bool pcpu_should_reclaim_chunk(struct pcpu_chunk *c)
{
	int empty = c->map.nr_empty_pop_pages;

	if (c->immutable || c->reserved)
		return false;
	/* An isolated (sidelined) chunk that gained empty pages goes back for reclaim. */
	if (c->isolated && empty)
		return true;
	if (c->isolated)
		return false;
	return set_empty(c->set) > (int)pcpu_settings.empty_high + empty &&
	       empty >= c->map.nr_blocks / 4;
}

/* kernel: pcpu_isolate_chunk() */
void pcpu_isolate_chunk(struct pcpu_chunk *c)
{
	if (!c->isolated) {
		c->isolated = true;
		pcpu_sets[c->set].nr_empty_pop_pages -= c->map.nr_empty_pop_pages;
	}
	pcpu_chunk_move(c, pcpu_to_depopulate_slot);
}

/* kernel: pcpu_reintegrate_chunk() */
void pcpu_reintegrate_chunk(struct pcpu_chunk *c)
{
	if (!c->isolated)
		return;
	c->isolated = false;
	pcpu_sets[c->set].nr_empty_pop_pages += c->map.nr_empty_pop_pages;
	pcpu_chunk_relocate(c, -1);
}

/* ---------------------------------------------------------------------------------------- */
/* Step 0: the zeroing queue                                                                 */
/* ---------------------------------------------------------------------------------------- */

/*
 * A batch: at most DRAIN_BATCH_AREAS areas or DRAIN_BATCH_BYTES bytes per unit (4 pages of
 * 8-byte areas), so that a caller that drains because it needs space waits for little more
 * than one batch; pcpu_lock is dropped every DRAIN_LOCK_STEP areas while collecting and
 * freeing it. Large batches matter at many units: the pagemap lookups and the pass over
 * every unit are paid per batch.
 */
#define DRAIN_BATCH_AREAS 2048
#define DRAIN_BATCH_BYTES (32 << 10)
#define DRAIN_LOCK_STEP 64 /* areas collected or freed per hold of pcpu_lock */

struct drain_run {
	int off, len;
};

/* Only one drainer at a time (pcpu_drain_mutex): the batch need not live on a stack. */
static struct drain_batch {
	struct pcpu_chunk *c;
	int nr, nr_runs;
	int offs[DRAIN_BATCH_AREAS];
	struct drain_run runs[DRAIN_BATCH_AREAS];
} batch;

/*
 * Zero one copy unless it already reads zero: a copy on a page that was never written maps
 * the shared zero page, and writing zeros there would cost the process a page for nothing
 * (a program on 4 CPUs of a 256-CPU machine must not pay for 256 copies). Return the bytes
 * written.
 */
static size_t zero_copy(char *p, size_t n)
{
	if (pcpu_mem_is_zero(p, n))
		return 0;
	memset(p, 0, n);
	return n;
}

/*
 * Which copies can be nonzero? A copy whose pages were never faulted in reads zero, and
 * reading it would fault in the shared zero page: a page fault per unit and page, page
 * tables for memory nobody uses, and, worse, every later MADV_DONTNEED of those pages then
 * has PTEs to zap and a TLB shootdown to do (measured: 43 us instead of 4 us per call in a
 * 2-vCPU VM, which made depopulating at 256 fake CPUs 25 times slower). /proc/self/pagemap
 * says for each page whether it is present or swapped out; a page that is neither was
 * never written. With the memfd zero source (chunk.h) a copy that was only read maps the
 * memfd's page-cache page (present, PM_FILE): never written either, and writing to it
 * would copy it into a private page (pcpu_pm_written()). (mincore() cannot be used: it
 * reports a swapped-out page, whose contents are not zero, as absent.) Without /proc every
 * copy is read, which is correct, only slower; it never writes a copy that reads zero.
 * The pagemap helper (pagemap.h) keeps the descriptor, and a fork child's own.
 */
#define PM_MAX_PAGES 16   /* batches spread wider than this read every copy */
#define PM_ENTRIES 4096   /* entries read at once: several units per system call */

static uint64_t pm_ent[PM_ENTRIES]; /* pcpu_drain_mutex */

static int next_queued(const unsigned long *map, int from, int end)
{
	int w = from / BITS_PER_LONG;
	unsigned long bits;

	if (from >= end)
		return end;
	bits = map[w] & (~0UL << (from % BITS_PER_LONG));
	while (!bits) {
		if (++w >= BITS_TO_LONGS(end))
			return end;
		bits = map[w];
	}
	from = w * BITS_PER_LONG + __builtin_ctzl(bits);
	return from < end ? from : end;
}

/* Take a batch of @c's queued areas, lowest first, merged into runs (pcpu_lock held). */
static void collect_batch(struct pcpu_chunk *c)
{
	int end = c->map.map_bits, g = c->queue_first;
	long bytes = 0;

	batch.c = c;
	batch.nr = batch.nr_runs = 0;
	while (batch.nr < DRAIN_BATCH_AREAS && bytes < DRAIN_BATCH_BYTES) {
		struct drain_run *last = batch.nr_runs ? &batch.runs[batch.nr_runs - 1] : NULL;
		int off, size;

		g = next_queued(c->queued, g, end);
		if (g >= end)
			break;
		if (!batch.nr)
			c->queue_first = g; /* nothing queued below: later scans start here */
		off = g * PCPU_MIN_ALLOC_SIZE;
		size = pcpu_am_alloc_size(&c->map, off);
		if (batch.nr && batch.nr % DRAIN_LOCK_STEP == 0) {
			/* Our areas stay flagged: only the holder of pcpu_drain_mutex clears them. */
			drop(HOLD_LOCK);
			take(HOLD_LOCK);
		}
		batch.offs[batch.nr++] = off;
		if (last && last->off + last->len == off)
			last->len += size;
		else
			batch.runs[batch.nr_runs++] = (struct drain_run){off, size};
		/* The area was poisoned when freed: the drain itself may touch it. */
		pcpu_checker_access_begin(NULL, c, off, size);
		bytes += size;
		g += size / PCPU_MIN_ALLOC_SIZE;
	}
}

/* Does page range [ps, pe) (within the pagemap window from @ws) hold a written page? */
static bool window_touched(const uint64_t *ent, int ws, int ps, int pe)
{
	for (int p = ps; p < pe; p++)
		if (pcpu_pm_written(ent[p - ws]))
			return true;
	return false;
}

/*
 * Zero the batch in every unit, unit by unit: a batch of small areas sits in one or two
 * pages of each unit, which are then visited once each, in address order. Copies on pages
 * never faulted in are skipped without being read (see pm_ent above).
 */
static size_t zero_batch(void)
{
	const struct drain_run *last = &batch.runs[batch.nr_runs - 1];
	int page = (int)pcpu_geom.page;
	int ws = batch.runs[0].off / page, we = (last->off + last->len - 1) / page + 1;
	int stride = (int)(pcpu_geom.stride / pcpu_geom.page); /* pages from unit to unit */
	int per_read = 0;
	bool known = false;
	unsigned first = 0;
	size_t n = 0;

	/* One read covers the window of as many consecutive units as pm_ent holds. */
	if (we - ws <= PM_MAX_PAGES)
		per_read = (PM_ENTRIES - (we - ws)) / stride + 1;
	for (unsigned u = 0; u < pcpu_geom.nr_units; u++) {
		const uint64_t *ent = NULL;

		if (per_read && (u == 0 || u - first == (unsigned)per_read)) {
			unsigned nu = pcpu_geom.nr_units - u < (unsigned)per_read
					      ? pcpu_geom.nr_units - u
					      : (unsigned)per_read;

			first = u;
			known = pcpu_pagemap_read(
				(uintptr_t)pcpu_unit_addr(batch.c, u, (size_t)ws * page),
				(size_t)(nu - 1) * (size_t)stride + (size_t)(we - ws), pm_ent);
		}
		if (known)
			ent = pm_ent + (size_t)(u - first) * (size_t)stride;
		for (int r = 0; r < batch.nr_runs; r++) {
			const struct drain_run *run = &batch.runs[r];

			if (ent && !window_touched(ent, ws, run->off / page,
						   (run->off + run->len - 1) / page + 1))
				continue;
			n += zero_copy(pcpu_unit_addr(batch.c, u, (size_t)run->off),
				       (size_t)run->len);
		}
	}
	return n;
}

long pcpu_zero_drain(long max_batches, bool *kick)
{
	long done = 0;

	while (max_batches-- > 0) {
		struct pcpu_chunk *c;
		size_t zeroed;

		take(HOLD_DRAIN);
		take(HOLD_LOCK);
		if (list_empty(&pcpu_zero_queue)) {
			drop(HOLD_LOCK);
			drop(HOLD_DRAIN);
			break;
		}
		/*
		 * The areas stay allocated and flagged while they are zeroed with pcpu_lock
		 * dropped: nobody can allocate them, a second free of one is still a bad free,
		 * and their chunk cannot be destroyed (it is not free).
		 */
		c = list_first_entry(&pcpu_zero_queue, struct pcpu_chunk, queue_list);
		collect_batch(c);
		/* Round robin over the chunks: the next batch starts with the next one. */
		list_del(&c->queue_list);
		list_add_tail(&c->queue_list, &pcpu_zero_queue);
		drop(HOLD_LOCK);

		zeroed = zero_batch();

		take(HOLD_LOCK);
		for (int i = 0; i < batch.nr; i++) {
			if (i && i % DRAIN_LOCK_STEP == 0) {
				drop(HOLD_LOCK);
				take(HOLD_LOCK);
			}
			if (pcpu_free_queued_locked(c, batch.offs[i]))
				*kick = true;
		}
		pcpu_zeroed_bytes += zeroed;
		done += batch.nr; /* the batch is the next drainer's once the mutex is dropped */
		drop(HOLD_LOCK);
		drop(HOLD_DRAIN);
	}
	return done;
}

/* ---------------------------------------------------------------------------------------- */
/* Steps 1-4                                                                                 */
/* ---------------------------------------------------------------------------------------- */

/* Resident bytes of pages [ps, pe) over all units, for pcpu_trim()'s answer. */
static size_t resident_bytes(struct pcpu_chunk *c, int ps, int pe)
{
	return pcpu_chunk_resident_pages(c, ps, pe);
}

/*
 * Depopulate pages [ps, pe) of @c, all of them populated and entirely free. pcpu_lock and
 * pcpu_alloc_mutex held on entry and exit; pcpu_lock dropped around the system calls.
 * The pages are marked unpopulated first, so that no allocation (PCPU_NOWAIT or a blocking
 * one's fast path, both of which only use populated pages) lands in them meanwhile, and a
 * blocking allocation that would populate them waits for the mutex.
 */
static size_t depopulate_run(struct pcpu_chunk *c, int ps, int pe, bool count)
{
	int before = c->map.nr_empty_pop_pages;
	size_t bytes = 0;

	pcpu_am_depopulated(&c->map, ps, pe - ps);
	pcpu_update_empty_pages(c, before);
	drop(HOLD_LOCK);
	if (count)
		bytes = resident_bytes(c, ps, pe);
	pcpu_chunk_depopulate(c, ps, pe);
	take(HOLD_LOCK);
	return bytes;
}

static bool page_reclaimable(struct pcpu_chunk *c, int i)
{
	return pcpu_am_block_populated(&c->map, i) && pcpu_am_block_empty(&c->map, i);
}

/*
 * Depopulate the empty populated pages of @c, last to first (packs what stays populated
 * toward the chunk start). kernel: the page loop of pcpu_reclaim_populated(). Both locks
 * held; the page state is re-read after each run, since the mutex may be handed over.
 * *@reintegrate: stopped because the set fell below HIGH empty pages.
 */
static size_t depopulate_empty(struct pcpu_chunk *c, bool count, bool stop_below_high,
			       bool *reintegrate)
{
	size_t bytes = 0;
	int end = -1;

	for (int i = c->map.nr_blocks - 1; i >= -1; i--) {
		if (i >= 0 && c->map.nr_empty_pop_pages == 0 && end < 0)
			break;
		if (stop_below_high && end < 0 &&
		    set_empty(c->set) < (int)pcpu_settings.empty_high) {
			*reintegrate = true;
			break;
		}
		if (i >= 0 && page_reclaimable(c, i)) {
			if (end < 0)
				end = i;
			continue;
		}
		if (end >= 0) {
			bytes += depopulate_run(c, i + 1, end + 1, count);
			end = -1;
			yield_mutex();
		}
	}
	return bytes;
}

/* Unlink and unmap @c (both locks held; pcpu_lock dropped around the unmap). */
static void destroy_chunk(struct pcpu_chunk *c)
{
	list_del(&c->list);
	pcpu_chunk_index_del(c);
	if (!c->isolated)
		pcpu_sets[c->set].nr_empty_pop_pages -= c->map.nr_empty_pop_pages;
	pcpu_sets[c->set].nr_chunks--;
	pcpu_gstats.nr_chunks--;
	drop(HOLD_LOCK);
	pcpu_trace_destroy_chunk(c->base);
	pcpu_chunk_destroy(c);
	take(HOLD_LOCK);
}

/*
 * kernel: pcpu_balance_free(): keep at most one free chunk (@all: none, for trim;
 * @empty_only: only those without populated pages, or whose empty pages the set can spare
 * and stay at HIGH: the kernel keeps those until the next run, which may never come when
 * nothing kicks the balancer again). Both locks held.
 */
static size_t balance_free(int set, bool empty_only, bool all)
{
	struct list_head *h = &pcpu_sets[set].slots[pcpu_free_slot];
	size_t bytes = 0;

	for (;;) {
		struct list_head *p;
		struct pcpu_chunk *c = NULL;

		for (p = h->next; p != h; p = p->next) {
			struct pcpu_chunk *cand = list_entry(p, struct pcpu_chunk, list);

			if (!all && p == h->next)
				continue; /* the head stays: one free chunk is kept */
			if (empty_only && cand->map.nr_populated &&
			    set_empty(set) - cand->map.nr_empty_pop_pages <
				    (int)pcpu_settings.empty_high)
				continue;
			c = cand;
			break;
		}
		if (!c)
			return bytes;
		if (all && c->map.nr_populated)
			bytes += resident_bytes(c, 0, pcpu_geom.nr_pages);
		destroy_chunk(c);
		yield_mutex();
	}
}

/* kernel: pcpu_reclaim_populated(); both locks held. */
static size_t reclaim_populated(int set, bool count)
{
	struct list_head *h = &pcpu_sets[set].slots[pcpu_to_depopulate_slot];
	size_t bytes = 0;

	while (!list_empty(h)) {
		struct pcpu_chunk *c = list_first_entry(h, struct pcpu_chunk, list);
		bool reintegrate = false;

		bytes += depopulate_empty(c, count, true, &reintegrate);
		if (reintegrate || c->map.free_bytes == (int)pcpu_geom.unit_size)
			pcpu_reintegrate_chunk(c);
		else
			pcpu_chunk_move(c, pcpu_sidelined_slot);
	}
	return bytes;
}

/* A new chunk for set @set on its free slot (both locks held, pcpu_lock dropped). */
static int add_chunk(int set)
{
	struct pcpu_chunk *c;
	int err;

	drop(HOLD_LOCK);
	err = pcpu_chunk_create(&c, set);
	take(HOLD_LOCK);
	if (err)
		return err;
	err = pcpu_chunk_index_add(c, (uintptr_t)c->base, (uintptr_t)c->base + pcpu_geom.unit_size);
	if (err) {
		drop(HOLD_LOCK);
		pcpu_chunk_destroy(c);
		take(HOLD_LOCK);
		return err;
	}
	c->slot = pcpu_chunk_slot(c);
	list_add(&c->list, &pcpu_sets[set].slots[c->slot]);
	pcpu_sets[set].nr_chunks++;
	if (++pcpu_gstats.nr_chunks > pcpu_gstats.nr_max_chunks)
		pcpu_gstats.nr_max_chunks = pcpu_gstats.nr_chunks;
	pcpu_trace_create_chunk(c->base);
	return 0;
}

/* Populate pages [rs, re) of @c and account them (both locks held). Return 0 or -ENOMEM. */
static int populate_run(struct pcpu_chunk *c, int rs, int re)
{
	int before, oslot, err;

	drop(HOLD_LOCK);
	err = pcpu_chunk_populate(c, rs, re);
	take(HOLD_LOCK);
	if (err)
		return err;
	before = c->map.nr_empty_pop_pages;
	oslot = c->slot;
	pcpu_am_populated(&c->map, rs, re - rs);
	pcpu_update_empty_pages(c, before);
	pcpu_chunk_relocate(c, oslot);
	return 0;
}

/*
 * kernel: pcpu_balance_populated(). Both locks held. Return false when population or
 * chunk creation failed with pages still wanted: the thread then retries after a backoff.
 */
static bool balance_populated(int set)
{
	int high = (int)pcpu_settings.empty_high;
	int page_slot = (int)(31 - __builtin_clz((unsigned)pcpu_geom.page)) - 2;
	int nr_to_pop;
	bool retried = false;

	/* A set nobody allocated from (PCPU_ACCOUNT unused) needs no pages in reserve. */
	if (!pcpu_sets[set].nr_chunks)
		return true;
	if (pcpu_atomic_alloc_failed) {
		nr_to_pop = high;
		pcpu_atomic_alloc_failed = false;
	} else {
		nr_to_pop = high - set_empty(set);
		if (nr_to_pop < 0)
			nr_to_pop = 0;
	}
retry:
	/* Fill the most packed chunks first: atomic allocations then spread less. */
	for (int slot = page_slot; slot <= pcpu_free_slot && nr_to_pop > 0; slot++) {
		struct list_head *h = &pcpu_sets[set].slots[slot], *p;
		struct pcpu_chunk *c = NULL;

		for (p = h->next; p != h; p = p->next) {
			struct pcpu_chunk *cand = list_entry(p, struct pcpu_chunk, list);

			/* The first chunk's region is populated whole; beyond it is not served. */
			if (!cand->isolated && !cand->immutable &&
			    cand->map.nr_populated < cand->map.nr_blocks) {
				c = cand;
				break;
			}
		}
		if (!c)
			continue;
		/* The lowest unpopulated runs first (packs toward the chunk start). */
		for (int rs = 0; nr_to_pop > 0;) {
			int re;

			rs = pcpu_am_next_unpop(&c->map, rs);
			if (rs >= c->map.nr_blocks)
				break;
			re = pcpu_am_next_pop(&c->map, rs);
			if (re - rs > nr_to_pop)
				re = rs + nr_to_pop;
			if (populate_run(c, rs, re))
				return false;
			nr_to_pop -= re - rs;
			rs = re;
			yield_mutex();
		}
	}
	/*
	 * No chunk has room left to populate: make one, as the kernel does; unless the zeroing
	 * queue holds that many pages' worth: draining it gives the space back for free.
	 */
	if (nr_to_pop > 0 && !retried &&
	    pcpu_queued_bytes < (long)nr_to_pop * (long)pcpu_geom.page) {
		retried = true;
		if (add_chunk(set))
			return false;
		goto retry;
	}
	return true;
}

static void collect_chunk(struct pcpu_chunk *c, void *arg)
{
	struct pcpu_chunk ***cursor = arg;

	if (!c->immutable && !c->reserved)
		*(*cursor)++ = c;
}

/*
 * Trim: every empty populated page of every chunk goes back. The chunks are collected
 * first: depopulation drops pcpu_lock and may hand over the mutex, and a chunk may then
 * move between slot lists, but none can be destroyed: only the balance work destroys
 * chunks, and we hold pcpu_balance_mutex.
 */
static size_t trim_all(void)
{
	struct pcpu_chunk **v, **end;
	size_t bytes = 0, n = 0;

	for (int s = 0; s < PCPU_NR_SETS; s++)
		n += (size_t)pcpu_sets[s].nr_chunks;
	v = pcpu_calloc(n + 1, sizeof(*v));
	if (!v)
		return 0;
	end = v;
	pcpu_for_each_chunk(collect_chunk, &end);
	for (struct pcpu_chunk **p = v; p < end; p++) {
		bool unused;

		if ((*p)->map.nr_empty_pop_pages)
			bytes += depopulate_empty(*p, true, false, &unused);
	}
	pcpu_mfree(v);
	return bytes;
}

static bool bal_stopping;

/*
 * One run. *@failed: pages were wanted but population or chunk creation failed.
 * kernel: pcpu_balance_workfn()
 */
static size_t balance_run(bool trim, bool *failed)
{
	size_t bytes = 0;
	long limit;
	bool kick = false;

	pthread_mutex_lock(&pcpu_balance_mutex);
	/*
	 * Step 0, without pcpu_alloc_mutex. At most what is queued now: frees that keep
	 * coming are the next run's (they kick again), so a run always ends.
	 */
	pthread_mutex_lock(&pcpu_lock);
	limit = pcpu_queued_areas;
	pthread_mutex_unlock(&pcpu_lock);
	while (limit > 0 && !__atomic_load_n(&bal_stopping, __ATOMIC_RELAXED)) {
		long n = pcpu_zero_drain(1, &kick);

		if (!n)
			break;
		limit -= n;
	}

	take(HOLD_MUTEX);
	take(HOLD_LOCK);
	pcpu_balance_runs++;
	for (int set = 0; set < PCPU_NR_SETS; set++) {
		bytes += balance_free(set, false, trim);
		bytes += reclaim_populated(set, trim);
		/*
		 * A chunk isolated for reclaim when its last area was freed reaches the free
		 * slot only now: pcpu_trim() gives it back too.
		 */
		if (trim)
			bytes += balance_free(set, false, true);
		if (!trim && !balance_populated(set))
			*failed = true;
		bytes += balance_free(set, true, false);
	}
	if (trim)
		bytes += trim_all();
	drop(HOLD_LOCK);
	drop(HOLD_MUTEX);
	pthread_mutex_unlock(&pcpu_balance_mutex);
	return bytes;
}

size_t pcpu_balance_work(bool trim)
{
	bool failed = false;

	return balance_run(trim, &failed);
}

size_t pcpu_trim(void)
{
	size_t bytes;
	bool kick = false;

	if (pcpu_ensure_init())
		return 0;
	/* Everything queued first: a chunk held only by queued areas is then free. */
	while (pcpu_zero_drain(1, &kick))
		;
	bytes = pcpu_balance_work(true);
	return bytes;
}

/* ---------------------------------------------------------------------------------------- */
/* The thread                                                                                */
/* ---------------------------------------------------------------------------------------- */

/*
 * bal_lock guards the thread's state and is the condition variable's mutex; it is a leaf:
 * nobody takes another lock while holding it (except the fork handlers, which take it last).
 * bal_pending and bal_sleeping are also read and written without it, with sequentially
 * consistent atomics: a kicker sets bal_pending and then reads bal_sleeping; the thread
 * sets bal_sleeping and then reads bal_pending before it waits. At least one of the two
 * sees the other's store, so either the thread sees the work or the kicker signals it
 * (under bal_lock, so the signal cannot fall between the thread's check and its wait).
 * A kick thus costs two atomic operations while the thread is busy or already woken.
 */
enum { BAL_NONE, BAL_RUNNING, BAL_STOPPED };

static pthread_mutex_t bal_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t bal_cond;
static pthread_t bal_thread;
static int bal_state;             /* BAL_*; written under bal_lock */
static bool bal_pending, bal_sleeping;
static bool bal_owed;             /* work a PCPU_NOWAIT caller could not do or hand over */

/* Backoff after a failed population: 10 ms, doubling up to 1 s, until a run succeeds. */
#define BACKOFF_MIN_MS 10
#define BACKOFF_MAX_MS 1000

static void init_cond(void)
{
	pthread_condattr_t a;

	/* Timed waits measured on the monotonic clock: immune to clock changes. */
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&bal_cond, &a);
	pthread_condattr_destroy(&a);
}

static void *balance_main(void *arg)
{
	struct timespec retry_at = {0};
	unsigned backoff_ms = 0;

	(void)arg;
	pthread_mutex_lock(&bal_lock);
	for (;;) {
		bool failed = false;

		__atomic_store_n(&bal_sleeping, true, __ATOMIC_SEQ_CST);
		while (!__atomic_load_n(&bal_pending, __ATOMIC_SEQ_CST) &&
		       !__atomic_load_n(&bal_stopping, __ATOMIC_RELAXED)) {
			if (!backoff_ms) {
				pthread_cond_wait(&bal_cond, &bal_lock);
			} else if (pthread_cond_timedwait(&bal_cond, &bal_lock, &retry_at) ==
				   ETIMEDOUT) {
				__atomic_add_fetch(&pcpu_balance_retries, 1, __ATOMIC_RELAXED);
				break;
			}
		}
		__atomic_store_n(&bal_sleeping, false, __ATOMIC_RELAXED);
		if (__atomic_load_n(&bal_stopping, __ATOMIC_RELAXED))
			break;
		__atomic_store_n(&bal_pending, false, __ATOMIC_SEQ_CST);
		pthread_mutex_unlock(&bal_lock);

		balance_run(false, &failed);

		pthread_mutex_lock(&bal_lock);
		if (failed) {
			uint64_t t;

			backoff_ms = backoff_ms ? 2 * backoff_ms : BACKOFF_MIN_MS;
			if (backoff_ms > BACKOFF_MAX_MS)
				backoff_ms = BACKOFF_MAX_MS;
			t = now_ns() + (uint64_t)backoff_ms * 1000000u;
			retry_at.tv_sec = (time_t)(t / 1000000000u);
			retry_at.tv_nsec = (long)(t % 1000000000u);
		} else {
			backoff_ms = 0;
		}
	}
	pthread_mutex_unlock(&bal_lock);
	return NULL;
}

/* Start the thread (bal_lock held). Return true when it runs. */
static bool start_thread(void)
{
	sigset_t all, old;
	pthread_attr_t attr;
	bool ok;

	if (bal_state != BAL_NONE)
		return bal_state == BAL_RUNNING;
	/* The thread inherits this mask: it never runs the program's signal handlers. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 128 << 10);
	ok = pthread_create(&bal_thread, &attr, balance_main, NULL) == 0;
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!ok)
		return false; /* stays BAL_NONE: the next kick tries again */
	pthread_setname_np(bal_thread, "pcpu-balance");
	__atomic_store_n(&bal_state, BAL_RUNNING, __ATOMIC_RELEASE);
	return true;
}

/* The work with no thread to hand it to: do it here, or owe it if we may not. */
static void run_here(bool nowait)
{
	if (nowait) {
		__atomic_store_n(&bal_owed, true, __ATOMIC_RELAXED);
		return;
	}
	__atomic_store_n(&bal_owed, false, __ATOMIC_RELAXED);
	pcpu_balance_work(false);
}

void pcpu_balance_start(void)
{
	bool running;

	if (!pcpu_settings.balance) {
		/* balance=off: a blocking caller pays what PCPU_NOWAIT callers owe. */
		if (__atomic_load_n(&bal_owed, __ATOMIC_RELAXED))
			run_here(false);
		return;
	}
	if (likely(__atomic_load_n(&bal_state, __ATOMIC_ACQUIRE) != BAL_NONE))
		return;
	pthread_mutex_lock(&bal_lock);
	running = start_thread();
	if (running && __atomic_load_n(&bal_owed, __ATOMIC_RELAXED)) {
		__atomic_store_n(&bal_owed, false, __ATOMIC_RELAXED);
		__atomic_store_n(&bal_pending, true, __ATOMIC_SEQ_CST);
	}
	pthread_mutex_unlock(&bal_lock);
}

void pcpu_balance_kick(bool nowait)
{
	int state;

	if (!pcpu_settings.balance) {
		run_here(nowait);
		return;
	}
	state = __atomic_load_n(&bal_state, __ATOMIC_ACQUIRE);
	if (unlikely(state != BAL_RUNNING)) {
		/*
		 * Started on first need, even by a PCPU_NOWAIT caller: without the thread its
		 * failures would never be made good. (pthread_create is not async-signal-safe:
		 * a program allocating from signal handlers has made an ordinary allocation
		 * before, and blocking allocations start the thread.)
		 */
		pthread_mutex_lock(&bal_lock);
		if (state == BAL_NONE)
			start_thread();
		state = bal_state;
		pthread_mutex_unlock(&bal_lock);
		if (state != BAL_RUNNING) {
			run_here(nowait);
			return;
		}
	}
	if (__atomic_exchange_n(&bal_pending, true, __ATOMIC_SEQ_CST))
		return; /* already asked for, not yet started: the run will see our work */
	if (__atomic_load_n(&bal_sleeping, __ATOMIC_SEQ_CST)) {
		pthread_mutex_lock(&bal_lock);
		pthread_cond_signal(&bal_cond);
		pthread_mutex_unlock(&bal_lock);
	}
}

bool pcpu_balance_thread_running(void)
{
	return __atomic_load_n(&bal_state, __ATOMIC_ACQUIRE) == BAL_RUNNING;
}

void pcpu_balance_init(void)
{
	init_cond();
	/*
	 * In a shared library atexit() is registered against the library (__dso_handle), so
	 * this also runs at dlclose(); the destructor below covers the static library.
	 */
	atexit(pcpu_balance_stop);
}

/*
 * Stop the thread and wait for it: after a dlclose() nothing may run in the unmapped code.
 * A run in progress ends at its next check (the drain checks between batches; the page
 * steps are bounded). Later kicks do the work in the caller, as with balance=off.
 */
void pcpu_balance_stop(void)
{
	bool join;

	pthread_mutex_lock(&bal_lock);
	__atomic_store_n(&bal_stopping, true, __ATOMIC_RELAXED);
	join = bal_state == BAL_RUNNING;
	__atomic_store_n(&bal_state, BAL_STOPPED, __ATOMIC_RELEASE);
	if (join)
		pthread_cond_signal(&bal_cond);
	pthread_mutex_unlock(&bal_lock);
	if (join)
		pthread_join(bal_thread, NULL);
}

/* Library unload (dlclose) or exit of a statically linked program. */
__attribute__((destructor)) static void balance_fini(void)
{
	if (__atomic_load_n(&pcpu_initialized, __ATOMIC_ACQUIRE))
		pcpu_balance_stop();
}

/*
 * fork(): alloc.c's handlers take pcpu_balance_mutex, then the allocator's locks, then
 * call these for bal_lock. With every lock held by the forking thread, the balancer is
 * either waiting for one of them or asleep: it holds no state the child could inherit
 * half-done.
 */
void pcpu_balance_atfork_prepare(void)
{
	pthread_mutex_lock(&bal_lock);
}

void pcpu_balance_atfork_parent(void)
{
	pthread_mutex_unlock(&bal_lock);
}

void pcpu_balance_atfork_child(void)
{
	/*
	 * The thread did not survive the fork: the next kick (or blocking allocation that
	 * needs the mutex) starts a new one. Work the parent's thread had not done yet
	 * (queued areas included) is handed to it. The condition variable may record the
	 * parent's waiter: make a fresh one.
	 */
	if (bal_state == BAL_RUNNING)
		bal_state = BAL_NONE;
	bal_sleeping = false;
	bal_pending = bal_pending || pcpu_queued_areas;
	bal_owed = bal_owed || bal_pending;
	init_cond();
	pthread_mutex_unlock(&bal_lock);
}
