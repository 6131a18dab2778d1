/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * The balance work (kernel: pcpu_balance_workfn() and its helpers), run by one background
 * thread named "pcpu-balance", started on first need, woken by a condition variable. With
 * balance=off the same work runs synchronously in the thread that made it necessary, after
 * it has dropped its locks. Page work always runs with pcpu_lock dropped and
 * pcpu_alloc_mutex held, so allocation and free wait for it only for bookkeeping.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>

#include <pcpu.h>

#include "alloc.h"
#include "balance.h"
#include "trace.h"

unsigned long pcpu_balance_runs;

static pthread_mutex_t bal_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t bal_cond = PTHREAD_COND_INITIALIZER;
static pthread_t bal_thread;
static bool bal_started, bal_pending, bal_stopping;
static bool sync_pending; /* balance=off: work owed by the next caller without locks */

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
/* The four steps                                                                            */
/* ---------------------------------------------------------------------------------------- */

/* Resident bytes of pages [ps, pe) over all units, for pcpu_trim()'s answer. */
static size_t resident_bytes(struct pcpu_chunk *c, int ps, int pe)
{
	size_t page = pcpu_geom.page, n = 0;
	size_t len = (size_t)(pe - ps) * page;
	unsigned char vec[64];

	for (unsigned u = 0; u < pcpu_geom.nr_units; u++) {
		for (size_t o = 0; o < len; o += sizeof(vec) * page) {
			size_t l = len - o < sizeof(vec) * page ? len - o : sizeof(vec) * page;

			if (mincore(pcpu_unit_addr(c, u, (size_t)ps * page + o), l, vec))
				break;
			for (size_t i = 0; i < l / page; i++)
				n += vec[i] & 1;
		}
	}
	return n * page;
}

/*
 * Depopulate pages [ps, pe) of @c, all of them populated and entirely free. pcpu_lock held
 * on entry and exit, dropped around the system calls. @c is isolated, free or being
 * trimmed under the mutex, so nothing allocates from those pages meanwhile: allocation
 * only uses populated pages of visible chunks, and the map says these are being emptied.
 */
static size_t depopulate_run(struct pcpu_chunk *c, int ps, int pe, bool count)
{
	long gpp = (long)(pcpu_geom.page / PCPU_MIN_ALLOC_SIZE);
	int before = c->map.nr_empty_pop_pages;
	size_t bytes = 0;

	/* Mark first so no PCPU_NOWAIT allocation picks these pages while we work. */
	pcpu_am_depopulated(&c->map, ps, pe - ps);
	pcpu_update_empty_pages(c, before);
	bits_clear_range(c->dirty, ps * gpp, (pe - ps) * gpp);
	pthread_mutex_unlock(&pcpu_lock);
	if (count)
		bytes = resident_bytes(c, ps, pe);
	pcpu_chunk_depopulate(c, ps, pe);
	pthread_mutex_lock(&pcpu_lock);
	return bytes;
}

static bool page_reclaimable(struct pcpu_chunk *c, int i)
{
	return pcpu_am_block_populated(&c->map, i) && pcpu_am_block_empty(&c->map, i);
}

/* Depopulate every empty populated page of @c, last to first. pcpu_lock held. */
static size_t depopulate_empty(struct pcpu_chunk *c, bool count, bool stop_below_high)
{
	size_t bytes = 0;
	int end = -1;

	for (int i = c->map.nr_blocks - 1; i >= -1; i--) {
		if (i >= 0 && c->map.nr_empty_pop_pages == 0 && end < 0)
			break;
		if (stop_below_high && end < 0 &&
		    set_empty(c->set) < (int)pcpu_settings.empty_high)
			return bytes | 1; /* odd: asks for reintegration (bytes are page multiples) */
		if (i >= 0 && page_reclaimable(c, i)) {
			if (end < 0)
				end = i;
			continue;
		}
		if (end >= 0) {
			bytes += depopulate_run(c, i + 1, end + 1, count);
			end = -1;
		}
	}
	return bytes;
}

static void destroy_chunk(struct pcpu_chunk *c)
{
	/* pcpu_lock held: take it out of every list and the reverse map first. */
	list_del(&c->list);
	pcpu_chunk_index_del(c);
	if (!c->isolated)
		pcpu_sets[c->set].nr_empty_pop_pages -= c->map.nr_empty_pop_pages;
	pcpu_sets[c->set].nr_chunks--;
	pcpu_gstats.nr_chunks--;
	pthread_mutex_unlock(&pcpu_lock);
	pcpu_trace_destroy_chunk(c->base);
	pcpu_chunk_destroy(c);
	pthread_mutex_lock(&pcpu_lock);
}

/* kernel: pcpu_balance_free(): keep at most one free chunk (all: none, for trim). */
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
			if (empty_only && cand->map.nr_populated)
				continue;
			c = cand;
			break;
		}
		if (!c)
			return bytes;
		if (all && c->map.nr_populated)
			bytes += resident_bytes(c, 0, pcpu_geom.nr_pages);
		destroy_chunk(c);
	}
}

/* kernel: pcpu_reclaim_populated() */
static size_t reclaim_populated(int set, bool count)
{
	struct list_head *h = &pcpu_sets[set].slots[pcpu_to_depopulate_slot];
	size_t bytes = 0;

	while (!list_empty(h)) {
		struct pcpu_chunk *c = list_first_entry(h, struct pcpu_chunk, list);
		size_t b = depopulate_empty(c, count, true);
		bool reintegrate = b & 1;

		bytes += b & ~(size_t)1;
		if (reintegrate || c->map.free_bytes == (int)pcpu_geom.unit_size)
			pcpu_reintegrate_chunk(c);
		else
			pcpu_chunk_move(c, pcpu_sidelined_slot);
	}
	return bytes;
}

/* kernel: pcpu_balance_populated(); pcpu_lock held, may drop it. */
static void balance_populated(int set)
{
	int high = (int)pcpu_settings.empty_high;
	int nr_to_pop;
	bool retried = false;

	if (pcpu_atomic_alloc_failed) {
		nr_to_pop = high;
		pcpu_atomic_alloc_failed = false;
	} else {
		nr_to_pop = high - set_empty(set);
		if (nr_to_pop < 0)
			nr_to_pop = 0;
	}
retry:
	for (int slot = 1; slot <= pcpu_free_slot && nr_to_pop > 0; slot++) {
		struct list_head *h = &pcpu_sets[set].slots[slot], *p;
		struct pcpu_chunk *c = NULL;

		if (slot < (int)(31 - __builtin_clz((unsigned)pcpu_geom.page)) - 2)
			continue; /* below slot(PAGE_SIZE): no page-sized room */
		for (p = h->next; p != h; p = p->next) {
			struct pcpu_chunk *cand = list_entry(p, struct pcpu_chunk, list);

			if (!cand->isolated && cand->map.nr_populated < cand->map.nr_blocks) {
				c = cand;
				break;
			}
		}
		if (!c)
			continue;
		/* Populate the lowest unpopulated runs first (packs toward the chunk start). */
		for (int rs = 0; nr_to_pop > 0;) {
			int re, err;

			rs = pcpu_am_next_unpop(&c->map, rs);
			if (rs >= c->map.nr_blocks)
				break;
			re = pcpu_am_next_pop(&c->map, rs);
			if (re - rs > nr_to_pop)
				re = rs + nr_to_pop;
			pthread_mutex_unlock(&pcpu_lock);
			err = pcpu_chunk_populate(c, rs, re);
			pthread_mutex_lock(&pcpu_lock);
			if (err) {
				nr_to_pop = 0; /* try again at the next run */
				break;
			}
			{
				long gpp = (long)(pcpu_geom.page / PCPU_MIN_ALLOC_SIZE);
				int before = c->map.nr_empty_pop_pages;
				int oslot = c->slot;

				pcpu_am_populated(&c->map, rs, re - rs);
				bits_clear_range(c->dirty, rs * gpp, (re - rs) * gpp);
				pcpu_update_empty_pages(c, before);
				pcpu_chunk_relocate(c, oslot);
			}
			nr_to_pop -= re - rs;
			rs = re;
		}
	}
	if (nr_to_pop > 0 && !retried) {
		/* No chunk has room left to populate: make one, as the kernel does. */
		struct pcpu_chunk *c;

		retried = true;
		pthread_mutex_unlock(&pcpu_lock);
		if (pcpu_chunk_create(&c, set) == 0) {
			pthread_mutex_lock(&pcpu_lock);
			if (pcpu_chunk_index_add(c, (uintptr_t)c->base,
						 (uintptr_t)c->base + pcpu_geom.unit_size)) {
				pthread_mutex_unlock(&pcpu_lock);
				pcpu_chunk_destroy(c);
				pthread_mutex_lock(&pcpu_lock);
				return;
			}
			c->slot = pcpu_chunk_slot(c);
			list_add(&c->list, &pcpu_sets[set].slots[c->slot]);
			pcpu_sets[set].nr_chunks++;
			if (++pcpu_gstats.nr_chunks > pcpu_gstats.nr_max_chunks)
				pcpu_gstats.nr_max_chunks = pcpu_gstats.nr_chunks;
			pcpu_trace_create_chunk(c->base);
			goto retry;
		}
		pthread_mutex_lock(&pcpu_lock);
	}
}

static void collect_chunk(struct pcpu_chunk *c, void *arg)
{
	struct pcpu_chunk ***cursor = arg;

	if (!c->immutable && !c->reserved)
		*(*cursor)++ = c;
}

/*
 * Trim: every empty populated page of every chunk goes back. The chunks are collected
 * first: depopulation drops pcpu_lock, and a chunk may then move between slot lists, but
 * none can be destroyed while we hold pcpu_alloc_mutex.
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
	for (struct pcpu_chunk **p = v; p < end; p++)
		if ((*p)->map.nr_empty_pop_pages)
			bytes += depopulate_empty(*p, true, false);
	pcpu_mfree(v);
	return bytes;
}

size_t pcpu_balance_work(bool trim)
{
	size_t bytes = 0;

	pthread_mutex_lock(&pcpu_alloc_mutex);
	pthread_mutex_lock(&pcpu_lock);
	pcpu_balance_runs++;
	for (int set = 0; set < PCPU_NR_SETS; set++) {
		bytes += balance_free(set, false, trim);
		bytes += reclaim_populated(set, trim);
		if (!trim)
			balance_populated(set);
		bytes += balance_free(set, true, false);
	}
	if (trim)
		bytes += trim_all();
	pthread_mutex_unlock(&pcpu_lock);
	pthread_mutex_unlock(&pcpu_alloc_mutex);
	return bytes;
}

size_t pcpu_trim(void)
{
	if (pcpu_ensure_init())
		return 0;
	return pcpu_balance_work(true);
}

/* ---------------------------------------------------------------------------------------- */
/* The thread                                                                                */
/* ---------------------------------------------------------------------------------------- */

static void *balance_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&bal_lock);
	while (!bal_stopping) {
		if (!bal_pending) {
			pthread_cond_wait(&bal_cond, &bal_lock);
			continue;
		}
		bal_pending = false;
		pthread_mutex_unlock(&bal_lock);
		pcpu_balance_work(false);
		pthread_mutex_lock(&bal_lock);
	}
	pthread_mutex_unlock(&bal_lock);
	return NULL;
}

static void start_thread(void)
{
	sigset_t all, old;
	pthread_attr_t attr;

	/* The thread inherits this mask: it never runs the program's signal handlers. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 128 << 10);
	if (pthread_create(&bal_thread, &attr, balance_main, NULL) == 0) {
		pthread_setname_np(bal_thread, "pcpu-balance");
		bal_started = true;
	}
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void pcpu_balance_kick(void)
{
	if (!pcpu_settings.balance) {
		sync_pending = true;
		return;
	}
	pthread_mutex_lock(&bal_lock);
	bal_pending = true;
	if (!bal_started && !bal_stopping)
		start_thread();
	if (!bal_started)
		sync_pending = true; /* no thread could be made: do it in the caller */
	pthread_cond_signal(&bal_cond);
	pthread_mutex_unlock(&bal_lock);
}

void pcpu_balance_sync_pending(void)
{
	if (!__atomic_exchange_n(&sync_pending, false, __ATOMIC_ACQ_REL))
		return;
	pcpu_balance_work(false);
}

void pcpu_balance_init(void)
{
	atexit(pcpu_balance_stop);
}

void pcpu_balance_stop(void)
{
	pthread_mutex_lock(&bal_lock);
	bal_stopping = true;
	pthread_cond_signal(&bal_cond);
	if (!bal_started) {
		pthread_mutex_unlock(&bal_lock);
		return;
	}
	bal_started = false;
	pthread_mutex_unlock(&bal_lock);
	pthread_join(bal_thread, NULL);
}

/* Library unload (dlclose): nothing may run in unmapped code afterwards. */
__attribute__((destructor)) static void balance_fini(void)
{
	pcpu_balance_stop();
}

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
	/* The thread did not survive the fork; the next kick starts a new one. */
	bal_started = false;
	bal_pending = false;
	pthread_mutex_unlock(&bal_lock);
	pthread_cond_init(&bal_cond, NULL);
}
