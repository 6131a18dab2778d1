/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * The chunk-set layer (see chunkset.h): slots, chunk creation and destruction, population
 * and depopulation with their bookkeeping, empty populated pages, reclaim isolation, the
 * zeroing queue and its drain, and the locks.
 *
 * Hold times. Measured by pcpu_hold_stats() (tests/api/test_balance.c prints them) on a
 * busy 2-vCPU VM over 1M alloc+free pairs, then 1M allocations, then 1M frees and 4 s for
 * the balancer (wall time, so preemption while holding counts), before the slow
 * allocation paths were timed too:
 *
 *                          pcpu_lock        pcpu_alloc_mutex      pcpu_drain_mutex
 *                          mean    max      mean     max          mean    max
 *   2 CPUs                 3.3us   5.8ms    28us     18ms         178us   6.9ms
 *   topology=64x4          2.7us   3.5ms    84us     41ms         167us   7.9ms
 *   topology=256x4         5.5us   12ms     823us    139ms        667us   34ms
 *   2 CPUs, balance=off    3.4us   4.3ms    50us     2.7ms        76us    4.3ms
 *   256x4, balance=off     2.5us   1.1ms    431us    6.4ms        150us   4.5ms
 *
 * The maxima are preemptions of the holder on the oversubscribed VM, not work: pcpu_lock
 * is held for bookkeeping only (one drain batch collected, DRAIN_LOCK_STEP areas freed, a
 * run of pages marked, a chunk unlinked); pcpu_alloc_mutex for one piece of page work
 * (populating or depopulating one run of pages in every unit, creating or unmapping one
 * chunk), which grows with the number of units and is why it is handed over
 * (pcpu_alloc_mutex_yield()); pcpu_drain_mutex while one batch is zeroed.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <pcpu.h>

#include "checker.h"
#include "chunkset.h"
#include "hmap.h"
#include "pagemap.h"
#include "config.h"
#include "trace.h"

pthread_mutex_t pcpu_balance_mutex = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t pcpu_alloc_mutex = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t pcpu_drain_mutex = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t pcpu_lock = PTHREAD_MUTEX_INITIALIZER;

struct pcpu_global_stats pcpu_gstats;
int pcpu_nr_slots, pcpu_sidelined_slot, pcpu_free_slot, pcpu_to_depopulate_slot;

/* Slots of one chunk set (kernel: pcpu_chunk_lists). pcpu_lock. */
struct chunk_set {
	struct list_head *slots;  /* [pcpu_nr_slots] */
	int nr_empty_pop_pages;   /* over its non-isolated chunks */
	int nr_chunks;
};
static struct chunk_set sets[PCPU_NR_SETS];

/* The first chunk's reserved region: on no slot list, but a chunk for iteration. */
static struct pcpu_chunk *first_reserved;

/* The zeroing queue: chunks with queued areas (pcpu_lock). */
static struct list_head zero_queue = {&zero_queue, &zero_queue};
static long queued_areas, queued_bytes; /* bytes per unit */

/* ---------------------------------------------------------------------------------------- */
/* Locks                                                                                     */
/* ---------------------------------------------------------------------------------------- */

/* Each entry is written only by the holder of its lock. */
static struct pcpu_hold_stat holds[PCPU_NR_LOCKS];
static uint64_t hold_since[PCPU_NR_LOCKS];
static pthread_mutex_t *const hold_lock[PCPU_NR_LOCKS] = {&pcpu_lock, &pcpu_alloc_mutex,
							  &pcpu_drain_mutex};

/* Blocking allocators waiting for pcpu_alloc_mutex: the balance work yields it to them. */
static int alloc_mutex_waiters;

void pcpu_hold(enum pcpu_lock_id id)
{
	pthread_mutex_lock(hold_lock[id]);
	hold_since[id] = pcpu_now_ns();
}

void pcpu_release(enum pcpu_lock_id id)
{
	struct pcpu_hold_stat *h = &holds[id];
	uint64_t d = pcpu_now_ns() - hold_since[id];

	h->count++;
	h->total_ns += d;
	if (d > h->max_ns)
		h->max_ns = d;
	pthread_mutex_unlock(hold_lock[id]);
}

void pcpu_hold_stats(struct pcpu_hold_stat out[PCPU_NR_LOCKS])
{
	pthread_mutex_lock(&pcpu_alloc_mutex);
	pthread_mutex_lock(&pcpu_drain_mutex);
	pthread_mutex_lock(&pcpu_lock);
	memcpy(out, holds, sizeof(holds));
	pthread_mutex_unlock(&pcpu_lock);
	pthread_mutex_unlock(&pcpu_drain_mutex);
	pthread_mutex_unlock(&pcpu_alloc_mutex);
}

void pcpu_alloc_mutex_lock(void)
{
	__atomic_add_fetch(&alloc_mutex_waiters, 1, __ATOMIC_RELAXED);
	pcpu_hold(PCPU_ALLOC_MUTEX);
	__atomic_sub_fetch(&alloc_mutex_waiters, 1, __ATOMIC_RELAXED);
}

bool pcpu_alloc_mutex_trylock(void)
{
	if (pthread_mutex_trylock(hold_lock[PCPU_ALLOC_MUTEX]))
		return false;
	hold_since[PCPU_ALLOC_MUTEX] = pcpu_now_ns();
	return true;
}

/*
 * pthread mutexes are not fair: without the yield the page worker would take the mutex
 * straight back before the woken waiter runs.
 */
void pcpu_alloc_mutex_yield(void)
{
	if (!__atomic_load_n(&alloc_mutex_waiters, __ATOMIC_RELAXED))
		return;
	pcpu_release(PCPU_SHORT_LOCK);
	pcpu_release(PCPU_ALLOC_MUTEX);
	sched_yield();
	pcpu_hold(PCPU_ALLOC_MUTEX);
	pcpu_hold(PCPU_SHORT_LOCK);
}

/* ---------------------------------------------------------------------------------------- */
/* Slots                                                                                     */
/* ---------------------------------------------------------------------------------------- */

static int fls_int(unsigned x)
{
	return x ? 32 - __builtin_clz(x) : 0;
}

/* kernel: __pcpu_size_to_slot() */
int pcpu_size_to_slot(int bytes)
{
	int s = fls_int((unsigned)bytes) - 3;

	return s < 1 ? 1 : s;
}

/* kernel: pcpu_size_to_slot() */
static int alloc_size_to_slot(int bytes)
{
	if (bytes == (int)pcpu_geom.unit_size)
		return pcpu_free_slot;
	return pcpu_size_to_slot(bytes);
}

int pcpu_chunkset_init(void)
{
	pcpu_sidelined_slot = pcpu_size_to_slot((int)pcpu_geom.unit_size) + 1;
	pcpu_free_slot = pcpu_sidelined_slot + 1;
	pcpu_to_depopulate_slot = pcpu_free_slot + 1;
	pcpu_nr_slots = pcpu_to_depopulate_slot + 1;
	for (int s = 0; s < PCPU_NR_SETS; s++) {
		sets[s].slots = pcpu_calloc((size_t)pcpu_nr_slots, sizeof(struct list_head));
		if (!sets[s].slots)
			return -ENOMEM;
		for (int i = 0; i < pcpu_nr_slots; i++)
			list_init(&sets[s].slots[i]);
	}
	/* The front caches' lock-free handle map, before the first chunk registers. */
	return pcpu_hmap_init(pcpu_geom.unit_size, pcpu_geom.page,
			      pcpu_front_cycles_singles() ? PCPU_HMAP_SPREAD : PCPU_HMAP_RUNS);
}

/* kernel: pcpu_chunk_slot() */
int pcpu_chunk_slot(const struct pcpu_chunk *c)
{
	int contig = pcpu_am_contig_bytes(&c->map);

	if (c->map.free_bytes < PCPU_MIN_ALLOC_SIZE || contig == 0)
		return 0;
	return alloc_size_to_slot(contig);
}

/* kernel: __pcpu_chunk_move() */
static void chunk_move(struct pcpu_chunk *c, int slot, bool front)
{
	struct list_head *head = &sets[c->set].slots[slot];

	list_del(&c->list);
	if (front)
		list_add(&c->list, head);
	else
		list_add_tail(&c->list, head);
	c->slot = slot;
}

void pcpu_chunk_move(struct pcpu_chunk *c, int slot)
{
	chunk_move(c, slot, true);
}

/* kernel: pcpu_chunk_relocate(): more free space goes to the head, less to the tail. */
void pcpu_chunk_relocate(struct pcpu_chunk *c, int oslot)
{
	int nslot = pcpu_chunk_slot(c);

	if (c->reserved || c->isolated)
		return;
	if (oslot != nslot)
		chunk_move(c, nslot, oslot < nslot);
}

struct pcpu_chunk *pcpu_slot_first(int set, int slot)
{
	struct list_head *h = &sets[set].slots[slot];

	return list_empty(h) ? NULL : list_first_entry(h, struct pcpu_chunk, list);
}

struct pcpu_chunk *pcpu_slot_next(const struct pcpu_chunk *c)
{
	if (c->list.next == &sets[c->set].slots[c->slot])
		return NULL;
	return list_entry(c->list.next, struct pcpu_chunk, list);
}

int pcpu_set_nr_chunks(int set)
{
	return sets[set].nr_chunks;
}

void pcpu_for_each_chunk(void (*fn)(struct pcpu_chunk *c, void *arg), void *arg)
{
	if (first_reserved)
		fn(first_reserved, arg);
	for (int s = 0; s < PCPU_NR_SETS; s++) {
		for (int slot = 0; slot < pcpu_nr_slots; slot++) {
			struct list_head *h = &sets[s].slots[slot], *p, *n;

			for (p = h->next, n = p->next; p != h; p = n, n = p->next)
				fn(list_entry(p, struct pcpu_chunk, list), arg);
		}
	}
}

/* ---------------------------------------------------------------------------------------- */
/* Empty populated pages and reclaim                                                         */
/* ---------------------------------------------------------------------------------------- */

bool pcpu_chunk_in_reserve(const struct pcpu_chunk *c)
{
	return !c->reserved && pcpu_chunk_serves_align(c, PCPU_MIN_ALLOC_SIZE);
}

int pcpu_chunk_reserve_pages(const struct pcpu_chunk *c)
{
	return pcpu_chunk_in_reserve(c) && !c->isolated ? c->map.nr_empty_pop_pages : 0;
}

/* Apply a change of @c's empty populated pages (after an area map call) to its set. */
static void update_empty_pages(struct pcpu_chunk *c, int before)
{
	if (!pcpu_chunk_in_reserve(c) || c->isolated)
		return;
	sets[c->set].nr_empty_pop_pages += c->map.nr_empty_pop_pages - before;
}

int pcpu_nr_empty_pop_pages(int set)
{
	int n = 0;

	if (set >= 0)
		return sets[set].nr_empty_pop_pages;
	for (int s = 0; s < PCPU_NR_SETS; s++)
		n += sets[s].nr_empty_pop_pages;
	return n;
}

/* kernel: pcpu_should_reclaim_chunk() */
bool pcpu_should_reclaim_chunk(const struct pcpu_chunk *c)
{
	int empty = c->map.nr_empty_pop_pages;
	int quarter = c->map.nr_blocks / 4 > 1 ? c->map.nr_blocks / 4 : 1;

	if (c->immutable || c->reserved)
		return false;
	/* An isolated (sidelined) chunk that gained empty pages goes back for reclaim. */
	if (c->isolated && empty)
		return true;
	if (c->isolated)
		return false;
	if (empty < quarter)
		return false;
	/* Pages outside the reserve are not kept for it. */
	if (!pcpu_chunk_in_reserve(c))
		return true;
	/*
	 * The kernel waits until the other chunks alone hold more than HIGH: a chunk that holds
	 * the whole reserve then keeps every empty page it has for good. Here a quarter of a
	 * chunk above HIGH is enough, and the depopulation stops at HIGH (pcpu_depopulate_empty()).
	 */
	return sets[c->set].nr_empty_pop_pages - (int)pcpu_settings.empty_high >= quarter;
}

/* kernel: pcpu_isolate_chunk() */
void pcpu_isolate_chunk(struct pcpu_chunk *c)
{
	if (!c->isolated) {
		sets[c->set].nr_empty_pop_pages -= pcpu_chunk_reserve_pages(c);
		c->isolated = true;
	}
	pcpu_chunk_move(c, pcpu_to_depopulate_slot);
}

/* kernel: pcpu_reintegrate_chunk() */
void pcpu_reintegrate_chunk(struct pcpu_chunk *c)
{
	if (!c->isolated)
		return;
	c->isolated = false;
	sets[c->set].nr_empty_pop_pages += pcpu_chunk_reserve_pages(c);
	pcpu_chunk_relocate(c, -1);
}

/* ---------------------------------------------------------------------------------------- */
/* Allocation and free in the maps                                                           */
/* ---------------------------------------------------------------------------------------- */

/* One or @max allocations from @c's map: pcpu_am_alloc() itself for one. */
static int chunk_alloc_many(struct pcpu_chunk *c, int size, int align, bool pop_only, int max,
			    int *offs)
{
	if (max == 1) {
		offs[0] = pcpu_am_alloc(&c->map, size, align, pop_only);
		return offs[0] >= 0;
	}
	return pcpu_am_alloc_many(&c->map, size, align, pop_only, max, offs);
}

/* The walk of pcpu_alloc_many_from_slots(); @any: every chunk with room will do. */
/*
 * May the slot walk allocate from @c for @align? The chunk kinds' policy says
 * (pcpu_chunk_serves_align()); with @any (PCPU_NOWAIT's last resort) only what a chunk can
 * hold: a coloured one, nothing aligned past a cache line.
 */
static bool chunk_takes(const struct pcpu_chunk *c, int align, bool any)
{
	if (any)
		return !c->coloured || align <= PCPU_COLOUR_ALIGN;
	return pcpu_chunk_serves_align(c, align);
}

static int slots_alloc(int set, int size, int align, bool pop_only, bool any, int max, int *offs,
		       struct pcpu_chunk **out)
{
	if (max <= 0)
		return 0;
	for (int slot = pcpu_size_to_slot(size); slot <= pcpu_free_slot; slot++) {
		struct list_head *h = &sets[set].slots[slot], *p, *n;

		for (p = h->next, n = p->next; p != h; p = n, n = p->next) {
			struct pcpu_chunk *c = list_entry(p, struct pcpu_chunk, list);
			int before = c->map.nr_empty_pop_pages;
			int oslot = c->slot;
			int got;

			if (!chunk_takes(c, align, any))
				continue;
			got = chunk_alloc_many(c, size, align, pop_only, max, offs);
			if (!got) {
				/* Small or badly aligned requests stop rescanning it. */
				if (slot < PCPU_SLOT_FAIL_THRESHOLD)
					chunk_move(c, 0, false);
				continue;
			}
			/*
			 * Account first: an isolated chunk's change is not in the set's count
			 * (a no-op here), and reintegrating adds its pages as they are now.
			 * The other order counted the allocation's pages twice.
			 */
			update_empty_pages(c, before);
			if (c->isolated)
				pcpu_reintegrate_chunk(c);
			pcpu_chunk_relocate(c, oslot);
			*out = c;
			return got;
		}
	}
	return 0;
}

int pcpu_alloc_many_from_slots(int set, int size, int align, bool pop_only, int max, int *offs,
			       struct pcpu_chunk **out)
{
	return slots_alloc(set, size, align, pop_only, false, max, offs, out);
}

int pcpu_alloc_nowait_fallback(int set, int size, int align, struct pcpu_chunk **out)
{
	int off;

	if (!slots_alloc(set, size, align, true, true, 1, &off, out))
		return -1;
	return off;
}

int pcpu_alloc_from_slots(int set, int size, int align, bool pop_only, struct pcpu_chunk **out)
{
	int off;

	if (!pcpu_alloc_many_from_slots(set, size, align, pop_only, 1, &off, out))
		return -1;
	return off;
}

/* kernel: pcpu_free_area() + relocation */
int pcpu_free_area_locked(struct pcpu_chunk *c, int off)
{
	int before = c->map.nr_empty_pop_pages;
	int oslot = c->slot;
	int freed = pcpu_am_free(&c->map, off);

	pcpu_checker_free(c, off, freed);
	pcpu_gstats.nr_dealloc++;
	pcpu_gstats.nr_cur_alloc--;
	update_empty_pages(c, before);
	pcpu_chunk_relocate(c, oslot);
	return freed;
}

/* ---------------------------------------------------------------------------------------- */
/* Chunks                                                                                    */
/* ---------------------------------------------------------------------------------------- */

/* Put a registered chunk on its set's slot list and count it (pcpu_lock held). */
static void link_chunk(struct pcpu_chunk *c)
{
	struct chunk_set *s = &sets[c->set];

	c->slot = pcpu_chunk_slot(c);
	list_add(&c->list, &s->slots[c->slot]);
	s->nr_empty_pop_pages += pcpu_chunk_reserve_pages(c);
	s->nr_chunks++;
	if (++pcpu_gstats.nr_chunks > pcpu_gstats.nr_max_chunks)
		pcpu_gstats.nr_max_chunks = pcpu_gstats.nr_chunks;
}

bool pcpu_free_chunk_serves(int set, int align)
{
	for (struct pcpu_chunk *c = pcpu_slot_first(set, pcpu_free_slot); c; c = pcpu_slot_next(c))
		if (pcpu_chunk_serves_align(c, align))
			return true;
	return false;
}

int pcpu_create_chunk(int set, int align)
{
	struct pcpu_chunk *c;
	int err;

	pcpu_release(PCPU_SHORT_LOCK);
	err = pcpu_chunk_create(&c, set, align <= PCPU_COLOUR_ALIGN);
	pcpu_hold(PCPU_SHORT_LOCK);
	if (err)
		return err;
	err = pcpu_chunk_index_add(c, (uintptr_t)c->base, (uintptr_t)c->base + pcpu_geom.unit_size);
	if (err) {
		pcpu_release(PCPU_SHORT_LOCK);
		pcpu_chunk_destroy(c);
		pcpu_hold(PCPU_SHORT_LOCK);
		return err;
	}
	link_chunk(c);
	pcpu_front_chunk_added(c, (uintptr_t)c->base, (uintptr_t)c->base + pcpu_geom.unit_size);
	pcpu_trace_create_chunk(c->base);
	return 0;
}

int pcpu_add_first_chunk(struct pcpu_chunk *dyn, uintptr_t dyn_start, uintptr_t dyn_end,
			 struct pcpu_chunk *rsv, uintptr_t rsv_start, uintptr_t rsv_end)
{
	int err;

	pthread_mutex_lock(&pcpu_lock);
	err = pcpu_chunk_index_add(dyn, dyn_start, dyn_end);
	if (!err && rsv) {
		err = pcpu_chunk_index_add(rsv, rsv_start, rsv_end);
		if (err)
			pcpu_chunk_index_del(dyn);
	}
	if (!err) {
		link_chunk(dyn);
		first_reserved = rsv;
		pcpu_front_chunk_added(dyn, dyn_start, dyn_end);
	}
	pthread_mutex_unlock(&pcpu_lock);
	if (!err)
		pcpu_trace_create_chunk(dyn->base);
	return err;
}

size_t pcpu_destroy_chunk(struct pcpu_chunk *c, bool count)
{
	size_t bytes = 0;

	PCPU_ASSERT(!c->immutable && !c->nr_queued && c->map.nr_alloc == 0);
	list_del(&c->list);
	pcpu_chunk_index_del(c);
	pcpu_front_chunk_removed(c);
	sets[c->set].nr_empty_pop_pages -= pcpu_chunk_reserve_pages(c);
	sets[c->set].nr_chunks--;
	pcpu_gstats.nr_chunks--;
	pcpu_release(PCPU_SHORT_LOCK);
	if (count && c->map.nr_populated)
		bytes = pcpu_chunk_resident_pages(c, 0, pcpu_geom.nr_pages);
	pcpu_trace_destroy_chunk(c->base);
	pcpu_chunk_destroy(c);
	pcpu_hold(PCPU_SHORT_LOCK);
	return bytes;
}

/* ---------------------------------------------------------------------------------------- */
/* Pages                                                                                     */
/* ---------------------------------------------------------------------------------------- */

/* Bookkeeping after pages [ps, pe) of @c were populated (pcpu_lock held). */
static void mark_populated(struct pcpu_chunk *c, int ps, int pe)
{
	int before = c->map.nr_empty_pop_pages;
	int oslot = c->slot;

	/* Fresh pages read zero in every unit, like all free space: nothing to zero. */
	pcpu_am_populated(&c->map, ps, pe - ps);
	update_empty_pages(c, before);
	pcpu_chunk_relocate(c, oslot);
}

/* kernel: the populate loop of pcpu_alloc() (pcpu_for_each_unpop_region + pcpu_populate_chunk) */
int pcpu_populate_area(struct pcpu_chunk *c, int off, int size)
{
	int ps = off / (int)pcpu_geom.page;
	int pe = (off + size + (int)pcpu_geom.page - 1) / (int)pcpu_geom.page;

	for (int rs = ps; rs < pe;) {
		int re, err;

		rs = pcpu_am_next_unpop(&c->map, rs);
		if (rs >= pe)
			break;
		re = pcpu_am_next_pop(&c->map, rs);
		if (re > pe)
			re = pe;
		err = pcpu_chunk_populate(c, rs, re);
		if (err)
			return err;
		pcpu_hold(PCPU_SHORT_LOCK);
		mark_populated(c, rs, re);
		pcpu_release(PCPU_SHORT_LOCK);
		rs = re;
	}
	return 0;
}

int pcpu_empty_unpop_pages(const struct pcpu_chunk *c)
{
	return c->map.nr_empty_blocks - c->map.nr_empty_pop_pages;
}

/* Is page @i of @c unpopulated and entirely free? */
static bool page_to_populate(const struct pcpu_chunk *c, int i)
{
	return !pcpu_am_block_populated(&c->map, i) && pcpu_am_block_empty(&c->map, i);
}

/*
 * kernel: the populate loop of pcpu_balance_populated(). Only entirely free pages: they are
 * what the balancer counts, and it skips the unserved pages beyond the first chunk's
 * dynamic region (allocated in its map for good).
 */
int pcpu_populate_lowest(struct pcpu_chunk *c, int nr_pages)
{
	int done = 0;

	for (int rs = 0; done < nr_pages;) {
		int re, err;

		while (rs < c->map.nr_blocks && !page_to_populate(c, rs))
			rs++;
		if (rs >= c->map.nr_blocks)
			break;
		re = rs + 1;
		while (re < c->map.nr_blocks && re - rs < nr_pages - done && page_to_populate(c, re))
			re++;
		pcpu_release(PCPU_SHORT_LOCK);
		err = pcpu_chunk_populate(c, rs, re);
		pcpu_hold(PCPU_SHORT_LOCK);
		if (err)
			return err;
		mark_populated(c, rs, re);
		done += re - rs;
		rs = re;
		pcpu_alloc_mutex_yield();
	}
	return done;
}

bool pcpu_refill_reserve(struct pcpu_chunk *c)
{
	int want;
	bool ok;

	pcpu_hold(PCPU_SHORT_LOCK);
	want = (int)pcpu_settings.empty_high - sets[c->set].nr_empty_pop_pages;
	if (want > 0 && pcpu_chunk_in_reserve(c) && !c->isolated)
		(void)pcpu_populate_lowest(c, want);
	ok = pcpu_nr_empty_pop_pages(-1) >= (int)pcpu_settings.empty_low;
	pcpu_release(PCPU_SHORT_LOCK);
	return ok;
}

/*
 * Depopulate pages [ps, pe) of @c, all of them populated and entirely free (both locks
 * held; pcpu_lock dropped around the system calls). The pages are marked unpopulated
 * first, so that no allocation (PCPU_NOWAIT or a blocking one's fast path, both of which
 * only use populated pages) lands in them meanwhile, and a blocking allocation that would
 * populate them waits for the mutex.
 */
static size_t depopulate_run(struct pcpu_chunk *c, int ps, int pe, bool count)
{
	int before = c->map.nr_empty_pop_pages;
	size_t bytes = 0;

	pcpu_am_depopulated(&c->map, ps, pe - ps);
	update_empty_pages(c, before);
	pcpu_release(PCPU_SHORT_LOCK);
	if (count)
		bytes = pcpu_chunk_resident_pages(c, ps, pe);
	pcpu_chunk_depopulate(c, ps, pe);
	pcpu_hold(PCPU_SHORT_LOCK);
	return bytes;
}

static bool page_reclaimable(const struct pcpu_chunk *c, int i)
{
	return pcpu_am_block_populated(&c->map, i) && pcpu_am_block_empty(&c->map, i);
}

/*
 * Empty pages @c may give back while the reserve keeps @keep (< 0: all of them): its own
 * count, isolated or not, as if it were back in the set.
 */
static int spare_pages(const struct pcpu_chunk *c, int keep)
{
	if (keep < 0 || !pcpu_chunk_in_reserve(c))
		return INT_MAX;
	return sets[c->set].nr_empty_pop_pages - pcpu_chunk_reserve_pages(c) +
	       c->map.nr_empty_pop_pages - keep;
}

/* The page state is re-read after each run: the mutex may have been handed over. */
size_t pcpu_depopulate_empty(struct pcpu_chunk *c, bool count, int keep, bool *stopped)
{
	size_t bytes = 0;
	int end = -1;

	for (int i = c->map.nr_blocks - 1; i >= -1; i--) {
		/* What it may still give back, the run being gathered aside. */
		int spare = spare_pages(c, keep);

		if (end >= 0 && spare != INT_MAX)
			spare -= end - i;
		if (i >= 0 && c->map.nr_empty_pop_pages == 0 && end < 0)
			break;
		if (end < 0 && spare <= 0) {
			*stopped = true;
			break;
		}
		if (i >= 0 && spare > 0 && page_reclaimable(c, i)) {
			if (end < 0)
				end = i;
			continue;
		}
		if (end >= 0) {
			bytes += depopulate_run(c, i + 1, end + 1, count);
			end = -1;
			pcpu_alloc_mutex_yield();
		}
	}
	return bytes;
}

static void collect_chunk(struct pcpu_chunk *c, void *arg)
{
	struct pcpu_chunk ***cursor = arg;

	if (!c->reserved)
		*(*cursor)++ = c;
}

/*
 * The chunks are collected first: depopulation drops pcpu_lock and may hand over the mutex,
 * and a chunk may then move between slot lists, but none can be destroyed (the caller holds
 * pcpu_balance_mutex). The first chunk's dynamic region is included: its pages that hold no
 * static or reserved byte (those are allocated in its map, never empty) are served like
 * any chunk's and come back on demand (pcpu_populate_area()). The kernel never
 * depopulates its first chunk, which is part of the kernel image's mapping; here it is an
 * ordinary reservation, and at 64 CPUs its 40 KiB of dynamic space per unit is 2.5 MiB.
 */
size_t pcpu_depopulate_all(void)
{
	struct pcpu_chunk **v, **end;
	size_t bytes = 0, n = 0;
	bool unused = false;

	for (int s = 0; s < PCPU_NR_SETS; s++)
		n += (size_t)sets[s].nr_chunks;
	v = pcpu_calloc(n + 1, sizeof(*v));
	if (!v)
		return 0;
	end = v;
	pcpu_for_each_chunk(collect_chunk, &end);
	for (struct pcpu_chunk **p = v; p < end; p++)
		if ((*p)->map.nr_empty_pop_pages)
			bytes += pcpu_depopulate_empty(*p, true, -1, &unused);
	pcpu_mfree(v);
	return bytes;
}

/* ---------------------------------------------------------------------------------------- */
/* Zeroing                                                                                   */
/* ---------------------------------------------------------------------------------------- */

/*
 * Zero one copy unless it already reads zero: a copy on a page that was never written maps
 * the shared zero page (or the memfd's page-cache page), and writing zeros there would cost
 * the process a page for nothing (a program on 4 CPUs of a 256-CPU machine must not pay for
 * 256 copies). Return the bytes written.
 */
static size_t zero_copy(char *p, size_t n)
{
	if (pcpu_mem_is_zero(p, n))
		return 0;
	memset(p, 0, n);
	return n;
}

void pcpu_zero_area(struct pcpu_chunk *c, int off, int size)
{
	for (unsigned u = 0; u < pcpu_geom.nr_units; u++)
		zero_copy(pcpu_unit_addr(c, u, (size_t)off), (size_t)size);
}

long pcpu_queued_areas(void)
{
	return queued_areas;
}

long pcpu_queued_bytes(void)
{
	return queued_bytes;
}

int pcpu_queue_area(struct pcpu_chunk *c, int off, bool *kick)
{
	int size = pcpu_am_alloc_size(&c->map, off);
	long before = queued_bytes;

	bit_set(c->queued, off / PCPU_MIN_ALLOC_SIZE);
	if (!c->nr_queued++)
		list_add_tail(&c->queue_list, &zero_queue);
	if (off / PCPU_MIN_ALLOC_SIZE < c->queue_first)
		c->queue_first = off / PCPU_MIN_ALLOC_SIZE;
	c->queued_bytes += size;
	queued_areas++;
	queued_bytes += size;
	pcpu_gstats.nr_dealloc++;
	pcpu_gstats.nr_cur_alloc--;
	/* A use after free is reported from now on, not only once the area is drained. */
	pcpu_checker_free(c, off, size);
	/*
	 * The balancer zeroes in batches: one wake-up per page of queued bytes per unit, or
	 * when draining would empty a dynamic chunk (kernel: the free slot kick of
	 * free_percpu()).
	 */
	*kick = before / (long)pcpu_geom.page != queued_bytes / (long)pcpu_geom.page ||
		(!c->immutable && c->nr_queued == c->map.nr_alloc);
	return size;
}

static bool free_needs_balance(struct pcpu_chunk *c);

bool pcpu_front_return_locked(struct pcpu_chunk *c, int off)
{
	int before = c->map.nr_empty_pop_pages;
	int oslot = c->slot;
	int freed = pcpu_am_free(&c->map, off);

	pcpu_checker_free(c, off, freed);
	update_empty_pages(c, before);
	pcpu_chunk_relocate(c, oslot);
	return free_needs_balance(c);
}

bool pcpu_front_return_many_locked(struct pcpu_chunk *c, const int *offs, int n, int size)
{
	int before = c->map.nr_empty_pop_pages;
	int oslot = c->slot;
	int freed = pcpu_am_free_many(&c->map, offs, n);

	PCPU_ASSERT(freed == n * size); /* cached objects: live, of their class size */
	(void)freed;
	for (int i = 0; i < n; i++)
		pcpu_checker_free(c, offs[i], size);
	update_empty_pages(c, before);
	pcpu_chunk_relocate(c, oslot);
	return free_needs_balance(c);
}

/* Does a free leave work for the balancer? (kernel: the tail of free_percpu()) */
static bool free_needs_balance(struct pcpu_chunk *c)
{
	if (c->immutable || c->reserved)
		return false;
	if (c->slot == pcpu_free_slot) {
		struct list_head *h = &sets[c->set].slots[pcpu_free_slot];

		/* Keep one free chunk: a second one is the balancer's to destroy. */
		if (h->next != h->prev)
			return true;
		/*
		 * The one kept may still hold more empty pages than the reserve needs: a free
		 * that made it free at once (a batch of returns) never went through the check
		 * below while the chunk was partly used (the kernel's free stops here).
		 */
	}
	if (pcpu_should_reclaim_chunk(c)) {
		pcpu_isolate_chunk(c);
		return true;
	}
	return false;
}

/*
 * Free a queued area, now zero in every unit, in the map (pcpu_lock held). Return true when
 * that left balance work (a second free chunk, or a chunk to reclaim, which it isolates).
 */
static bool free_queued_locked(struct pcpu_chunk *c, int off)
{
	int before = c->map.nr_empty_pop_pages;
	int oslot = c->slot;
	int size = pcpu_am_free(&c->map, off);

	PCPU_ASSERT(size > 0 && bit_test(c->queued, off / PCPU_MIN_ALLOC_SIZE));
	bit_clear(c->queued, off / PCPU_MIN_ALLOC_SIZE);
	c->queued_bytes -= size;
	queued_areas--;
	queued_bytes -= size;
	if (!--c->nr_queued) {
		list_del(&c->queue_list);
		c->queue_first = c->map.map_bits;
	}
	pcpu_checker_free(c, off, size);
	update_empty_pages(c, before);
	pcpu_chunk_relocate(c, oslot);
	return free_needs_balance(c);
}

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
			pcpu_release(PCPU_SHORT_LOCK);
			pcpu_hold(PCPU_SHORT_LOCK);
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
 * never faulted in are skipped without being read (see pm_ent above). Return the bytes
 * written.
 */
static size_t zero_batch(void)
{
	const struct drain_run *last = &batch.runs[batch.nr_runs - 1];
	int page = (int)pcpu_geom.page;
	/* Region pages: a coloured unit's bytes reach one page further (chunk.h). */
	int ws = batch.runs[0].off / page,
	    we = (last->off + last->len - 1) / page + 1 + (batch.c->coloured ? 1 : 0);
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
				(uintptr_t)pcpu_unit_region(batch.c, u, (size_t)ws * page),
				(size_t)(nu - 1) * (size_t)stride + (size_t)(we - ws), pm_ent);
		}
		if (known)
			ent = pm_ent + (size_t)(u - first) * (size_t)stride;
		for (int r = 0; r < batch.nr_runs; r++) {
			const struct drain_run *run = &batch.runs[r];
			int rs = (int)pcpu_unit_colour(batch.c, u) + run->off;

			if (ent && !window_touched(ent, ws, rs / page, (rs + run->len - 1) / page + 1))
				continue;
			n += zero_copy(pcpu_unit_addr(batch.c, u, (size_t)run->off),
				       (size_t)run->len);
		}
	}
	return n;
}

/*
 * Zeroing by one PAGEMAP_SCAN (Linux 6.7): one ioctl over the batch's window in every unit
 * returns the runs of written pages (present or swapped out, neither a page-cache page of
 * the memfd zero source nor the shared zero page), and only the copies on them are read
 * and zeroed. The walk skips page tables that do not exist, so its cost follows the pages
 * the process wrote, not the possible CPUs: about 1 us at 64 units, 2 us at 4096 (2-vCPU
 * VM, Linux 6.18), for a batch of up to SCAN_BATCH objects. No shared buffer: any number
 * of threads may zero their own objects at once.
 *
 * A page that is not written when the scan passes holds zero copies, and stays so: nobody
 * writes a freed object, and a page with an allocated object on it is never depopulated.
 */
#define SCAN_BATCH 512

struct scan_zero {
	struct pcpu_chunk *c;
	const struct drain_run *runs;
	int nr_runs, ws, we;   /* the window: pages [ws, we) of every unit */
	size_t zeroed;
};

/* A run [s, e) of written pages: zero what of the batch lies on them, unit by unit. */
static void scan_zero_run(uint64_t s, uint64_t e, void *arg)
{
	struct scan_zero *z = arg;
	uintptr_t base = (uintptr_t)z->c->base, page = pcpu_geom.page;
	unsigned u = (unsigned)((s - base) / pcpu_geom.stride);
	unsigned ue = (unsigned)((e - 1 - base) / pcpu_geom.stride);

	for (; u <= ue && u < pcpu_geom.nr_units; u++) {
		uintptr_t ub = (uintptr_t)pcpu_unit_addr(z->c, u, 0);
		uintptr_t lo = ub + (uintptr_t)z->ws * page, hi = ub + (uintptr_t)z->we * page;

		lo = lo > s ? lo : (uintptr_t)s;
		hi = hi < e ? hi : (uintptr_t)e;
		for (int r = 0; r < z->nr_runs && lo < hi; r++) {
			uintptr_t rs = ub + (uintptr_t)z->runs[r].off;
			uintptr_t re = rs + (uintptr_t)z->runs[r].len;

			rs = rs > lo ? rs : lo;
			re = re < hi ? re : hi;
			if (rs < re)
				z->zeroed += zero_copy((char *)rs, re - rs);
		}
	}
}

/*
 * Zero the copies of the @nr_runs runs (ascending offsets of @c) with one scan. Return
 * false when the kernel cannot scan (some copies may be zero already).
 */
static bool scan_zero_runs(struct pcpu_chunk *c, const struct drain_run *runs, int nr_runs,
			   size_t *zeroed)
{
	static const struct pcpu_pm_query written = {
		.inverted = PCPU_PAGE_IS_FILE | PCPU_PAGE_IS_PFNZERO,
		.mask = PCPU_PAGE_IS_FILE | PCPU_PAGE_IS_PFNZERO,
		.anyof = PCPU_PAGE_IS_PRESENT | PCPU_PAGE_IS_SWAPPED,
	};
	struct pcpu_page_region vec[32]; /* written runs per ioctl: about one per written unit */
	struct scan_zero z = {.c = c, .runs = runs, .nr_runs = nr_runs};
	int page = (int)pcpu_geom.page;

	z.ws = runs[0].off / page;
	z.we = (runs[nr_runs - 1].off + runs[nr_runs - 1].len - 1) / page + 1;
	/* Region pages, up to the one a coloured last unit's window reaches into. */
	if (pcpu_pagemap_scan_vec((uintptr_t)pcpu_unit_region(c, 0, (size_t)z.ws * page),
				  (uintptr_t)pcpu_unit_region(c, pcpu_geom.nr_units - 1,
							      (size_t)(z.we + c->coloured) * page),
				  &written, scan_zero_run, &z, vec, ARRAY_SIZE(vec)))
		return false;
	*zeroed += z.zeroed;
	return true;
}

/* Zero up to SCAN_BATCH objects with one scan. Return false when the kernel cannot scan. */
static bool scan_zero(struct pcpu_chunk *c, const int *offs, int n, int size, size_t *zeroed)
{
	struct drain_run runs[SCAN_BATCH], run = {offs[0], size};
	int nr_runs = 0;

	/* The open run in registers: through the array, each object waited for the last. */
	for (int i = 1; i < n; i++) {
		PCPU_ASSERT(offs[i] > offs[i - 1]);
		if (run.off + run.len == offs[i]) {
			run.len += size;
		} else {
			runs[nr_runs++] = run;
			run = (struct drain_run){offs[i], size};
		}
	}
	runs[nr_runs++] = run;
	return scan_zero_runs(c, runs, nr_runs, zeroed);
}

size_t pcpu_zero_objects(struct pcpu_chunk *c, const int *offs, int n, int size)
{
	size_t zeroed = 0;
	int done;

	if (n <= 0)
		return 0;
	/*
	 * A scan that fails part way zeroed some copies already: doing the batch again the
	 * other way is still right (a copy that reads zero is left alone).
	 */
	for (done = 0; done < n; done += SCAN_BATCH)
		if (!scan_zero(c, offs + done, n - done < SCAN_BATCH ? n - done : SCAN_BATCH, size,
			       &zeroed))
			break;
	if (done >= n)
		return zeroed;
	offs += done;
	n -= done;
	pcpu_hold(PCPU_DRAIN_MUTEX);
	batch.c = c;
	batch.nr = batch.nr_runs = 0;
	for (int i = 0; i < n && i < DRAIN_BATCH_AREAS; i++) {
		struct drain_run *last = batch.nr_runs ? &batch.runs[batch.nr_runs - 1] : NULL;

		PCPU_ASSERT(!i || offs[i] > offs[i - 1]);
		batch.offs[batch.nr++] = offs[i];
		if (last && last->off + last->len == offs[i])
			last->len += size;
		else
			batch.runs[batch.nr_runs++] = (struct drain_run){offs[i], size};
	}
	zeroed += zero_batch();
	pcpu_release(PCPU_DRAIN_MUTEX);
	return zeroed;
}

long pcpu_zero_drain(long max_batches, bool *kick)
{
	long done = 0;

	while (max_batches-- > 0) {
		struct pcpu_chunk *c;
		size_t zeroed;

		pcpu_hold(PCPU_DRAIN_MUTEX);
		pcpu_hold(PCPU_SHORT_LOCK);
		if (list_empty(&zero_queue)) {
			pcpu_release(PCPU_SHORT_LOCK);
			pcpu_release(PCPU_DRAIN_MUTEX);
			break;
		}
		/*
		 * The areas stay allocated and flagged while they are zeroed with pcpu_lock
		 * dropped: nobody can allocate them, a second free of one is still a bad free,
		 * and their chunk cannot be destroyed (it is not free).
		 */
		c = list_first_entry(&zero_queue, struct pcpu_chunk, queue_list);
		collect_batch(c);
		/* Round robin over the chunks: the next batch starts with the next one. */
		list_del(&c->queue_list);
		list_add_tail(&c->queue_list, &zero_queue);
		pcpu_release(PCPU_SHORT_LOCK);

		/*
		 * One scan finds the written pages of every unit (Linux 6.7); without it, the
		 * pagemap reads of zero_batch(), which read every copy of a batch spread over
		 * more than PM_MAX_PAGES pages: at 1024 units each read of a copy nobody wrote
		 * faults the zero page in.
		 */
		zeroed = 0;
		if (!scan_zero_runs(c, batch.runs, batch.nr_runs, &zeroed))
			zeroed += zero_batch();

		pcpu_hold(PCPU_SHORT_LOCK);
		for (int i = 0; i < batch.nr; i++) {
			if (i && i % DRAIN_LOCK_STEP == 0) {
				pcpu_release(PCPU_SHORT_LOCK);
				pcpu_hold(PCPU_SHORT_LOCK);
			}
			if (free_queued_locked(c, batch.offs[i]))
				*kick = true;
		}
		pcpu_gstats.zeroed_bytes += zeroed;
		done += batch.nr; /* the batch is the next drainer's once the mutex is dropped */
		pcpu_release(PCPU_SHORT_LOCK);
		pcpu_release(PCPU_DRAIN_MUTEX);
	}
	return done;
}

/* ---------------------------------------------------------------------------------------- */
/* Verification                                                                              */
/* ---------------------------------------------------------------------------------------- */

struct verify_ctx {
	char *why;
	size_t len;
	int err;
	int empty[PCPU_NR_SETS];
	int chunks[PCPU_NR_SETS];
	long queued_areas, queued_bytes, queued_chunks;
};

/* The zeroing queue of @c: every flagged granule starts a live area, the counts add up. */
static void verify_queue(struct pcpu_chunk *c, struct verify_ctx *v)
{
	long n = 0, bytes = 0;

	if (!c->queued)
		return;
	for (int w = 0; w < BITS_TO_LONGS(c->map.map_bits); w++) {
		for (unsigned long bits = c->queued[w]; bits; bits &= bits - 1) {
			int g = w * BITS_PER_LONG + __builtin_ctzl(bits);
			int off = g * PCPU_MIN_ALLOC_SIZE;

			if (g < c->queue_first || !pcpu_am_is_alloc_start(&c->map, off)) {
				snprintf(v->why, v->len,
					 "chunk %p: queued area at %d is not an allocation start "
					 "(or below queue_first %d)",
					 (void *)c->base, off, c->queue_first);
				v->err = -1;
				return;
			}
			n++;
			bytes += pcpu_am_alloc_size(&c->map, off);
		}
	}
	if (n != c->nr_queued || bytes != c->queued_bytes ||
	    list_empty(&c->queue_list) != (n == 0)) {
		snprintf(v->why, v->len, "chunk %p: %ld areas (%ld bytes) queued, %d (%d) recorded%s",
			 (void *)c->base, n, bytes, c->nr_queued, c->queued_bytes,
			 list_empty(&c->queue_list) != (n == 0) ? ", queue membership wrong" : "");
		v->err = -1;
		return;
	}
	v->queued_areas += n;
	v->queued_bytes += bytes;
	v->queued_chunks += n > 0;
}

static void verify_chunk(struct pcpu_chunk *c, void *arg)
{
	struct verify_ctx *v = arg;
	char buf[256];

	if (v->err)
		return;
	if (pcpu_am_verify(&c->map, buf, sizeof(buf))) {
		snprintf(v->why, v->len, "chunk %p: %s", (void *)c->base, buf);
		v->err = -1;
		return;
	}
	verify_queue(c, v);
	if (v->err || c->reserved)
		return;
	v->chunks[c->set]++;
	/* A chunk that failed a small request is parked on slot 0 (the fail threshold). */
	if (!c->isolated && c->slot != pcpu_chunk_slot(c) &&
	    !(c->slot == 0 && pcpu_chunk_slot(c) < PCPU_SLOT_FAIL_THRESHOLD)) {
		snprintf(v->why, v->len, "chunk %p: on slot %d, belongs on slot %d",
			 (void *)c->base, c->slot, pcpu_chunk_slot(c));
		v->err = -1;
		return;
	}
	if (c->isolated && c->slot != pcpu_to_depopulate_slot && c->slot != pcpu_sidelined_slot) {
		snprintf(v->why, v->len, "chunk %p: isolated but on slot %d", (void *)c->base,
			 c->slot);
		v->err = -1;
		return;
	}
	v->empty[c->set] += pcpu_chunk_reserve_pages(c);
}

int pcpu_chunkset_verify(char *why, size_t len)
{
	struct verify_ctx v = {.why = why, .len = len};
	long on_queue = 0;

	pcpu_for_each_chunk(verify_chunk, &v);
	if (v.err)
		return -1;
	for (struct list_head *p = zero_queue.next; p != &zero_queue; p = p->next)
		on_queue++;
	if (v.queued_areas != queued_areas || v.queued_bytes != queued_bytes ||
	    v.queued_chunks != on_queue) {
		snprintf(why, len,
			 "zeroing queue: %ld areas, %ld bytes in %ld chunks; recorded %ld, %ld, %ld",
			 v.queued_areas, v.queued_bytes, v.queued_chunks, queued_areas,
			 queued_bytes, on_queue);
		return -1;
	}
	for (int s = 0; s < PCPU_NR_SETS; s++) {
		if (v.empty[s] != sets[s].nr_empty_pop_pages || v.chunks[s] != sets[s].nr_chunks) {
			snprintf(why, len,
				 "set %d: %d empty populated pages and %d chunks counted, "
				 "%d and %d recorded",
				 s, v.empty[s], v.chunks[s], sets[s].nr_empty_pop_pages,
				 sets[s].nr_chunks);
			return -1;
		}
	}
	return 0;
}
