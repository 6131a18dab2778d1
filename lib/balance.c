/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * The balance policy (kernel: pcpu_balance_workfn() and its helpers), run by one background
 * thread named "pcpu-balance", started on first need and woken by a condition variable;
 * with balance=off the same work runs synchronously in the thread that made it necessary,
 * once it has dropped its locks. Everything it does to chunks goes through chunkset.h;
 * what is here is when and to which chunk. One run:
 *
 *   0. drain the zeroing queue (libpcpu's own step: the kernel zeroes on allocation),
 *      without pcpu_alloc_mutex: no allocator waits for the zeroing;
 *   1. pcpu_balance_free(): keep at most one fully free chunk;
 *   2. pcpu_reclaim_populated(): depopulate the chunks isolated for reclaim, down to HIGH
 *      empty populated pages in the reserve (chunkset.h), then step 1 again for the
 *      chunks that reached the free slot;
 *   3. pcpu_balance_populated(): populate up to HIGH empty pages (LOW is the allocator's
 *      kick);
 *   4. pcpu_balance_free(empty only).
 *
 * Steps 1-4 hold pcpu_alloc_mutex and pcpu_lock (the chunk-set functions drop pcpu_lock
 * around every system call and hand the mutex to a waiting allocator between pieces of
 * page work). Runs are serialised by pcpu_balance_mutex, whose holder alone destroys
 * chunks, so a chunk the run holds a pointer to survives a handover. See chunkset.h for
 * the locks and their order, chunkset.c for measured hold times.
 */
#include <errno.h>
#include <signal.h>
#include <time.h>

#include <pcpu.h>

#include "balance.h"
#include "chunkset.h"
#include "config.h"

unsigned long pcpu_balance_runs;
uint64_t pcpu_balance_retries;

/* A PCPU_NOWAIT allocation found no populated space: populate HIGH pages at the next run. */
static bool nowait_failed;

/*
 * Keep HIGH empty pages populated in reserve (step 3)? Not after pcpu_trim() until an
 * allocation finds fewer than LOW, or a PCPU_NOWAIT one fails: a run kicked by earlier
 * frees would otherwise take back right away some of what the trim gave.
 */
static bool reserve_wanted = true;

static bool bal_stopping;

/* ---------------------------------------------------------------------------------------- */
/* Policy                                                                                    */
/* ---------------------------------------------------------------------------------------- */

/* Does the reserve need @c's pages (it would drop below HIGH without them)? */
static bool reserve_needs(const struct pcpu_chunk *c, int set)
{
	int own = pcpu_chunk_reserve_pages(c);

	return own && pcpu_nr_empty_pop_pages(set) - own < (int)pcpu_settings.empty_high;
}

/*
 * kernel: pcpu_balance_free(): keep at most one free chunk (@all: none, for trim;
 * @empty_only: only those without populated pages, or whose empty pages the set can spare
 * and stay at HIGH: the kernel keeps those until the next run, which may never come when
 * nothing kicks the balancer again). Both locks held.
 */
static size_t balance_free(int set, bool empty_only, bool all)
{
	size_t bytes = 0;

	for (;;) {
		struct pcpu_chunk *c, *keep = NULL;

		/*
		 * One free chunk is kept: one whose pages the reserve needs if there is one
		 * (kernel: the head, which may be an unpopulated one while the reserve sits
		 * in the next), else the head.
		 */
		if (!all) {
			keep = pcpu_slot_first(set, pcpu_free_slot);
			for (c = keep; c; c = pcpu_slot_next(c))
				if (!c->immutable && reserve_needs(c, set)) {
					keep = c;
					break;
				}
		}
		for (c = pcpu_slot_first(set, pcpu_free_slot); c; c = pcpu_slot_next(c)) {
			if (c == keep || c->immutable)
				continue;
			if (empty_only && reserve_needs(c, set))
				continue;
			break;
		}
		if (!c)
			return bytes;
		bytes += pcpu_destroy_chunk(c, all);
		pcpu_alloc_mutex_yield();
	}
}

/* kernel: pcpu_reclaim_populated(); both locks held. */
static size_t reclaim_populated(int set, bool count)
{
	struct pcpu_chunk *c;
	size_t bytes = 0;

	while ((c = pcpu_slot_first(set, pcpu_to_depopulate_slot))) {
		bool reintegrate = false;

		bytes += pcpu_depopulate_empty(c, count, (int)pcpu_settings.empty_high,
					       &reintegrate);
		if (reintegrate || c->map.free_bytes == (int)pcpu_geom.unit_size)
			pcpu_reintegrate_chunk(c);
		else
			pcpu_chunk_move(c, pcpu_sidelined_slot);
	}
	return bytes;
}

/*
 * kernel: pcpu_balance_populated(). Both locks held. Return false when population or
 * chunk creation failed with pages still wanted: the thread then retries after a backoff.
 */
static bool balance_populated(int set)
{
	int high = (int)pcpu_settings.empty_high;
	int nr_to_pop;
	bool retried = false;

	/* A set nobody allocated from (PCPU_ACCOUNT unused) needs no pages in reserve. */
	if (!pcpu_set_nr_chunks(set) || !__atomic_load_n(&reserve_wanted, __ATOMIC_RELAXED))
		return true;
	if (__atomic_exchange_n(&nowait_failed, false, __ATOMIC_RELAXED)) {
		nr_to_pop = high;
	} else {
		nr_to_pop = high - pcpu_nr_empty_pop_pages(set);
		if (nr_to_pop < 0)
			nr_to_pop = 0;
	}
retry:
	/* Fill the most packed chunks first: atomic allocations then spread less. */
	for (int slot = pcpu_size_to_slot((int)pcpu_geom.page);
	     slot <= pcpu_free_slot && nr_to_pop > 0; slot++) {
		struct pcpu_chunk *c;
		int n;

		/*
		 * Chunks in the reserve only: the first chunk too, once pcpu_trim() has given
		 * its free pages back, where it serves small requests (colour off).
		 */
		for (c = pcpu_slot_first(set, slot); c; c = pcpu_slot_next(c))
			if (!c->isolated && pcpu_chunk_in_reserve(c) &&
			    pcpu_empty_unpop_pages(c) > 0)
				break;
		if (!c)
			continue;
		n = pcpu_populate_lowest(c, nr_to_pop);
		if (n < 0)
			return false;
		nr_to_pop -= n;
	}
	/*
	 * No chunk has room left to populate: make one, as the kernel does; unless the zeroing
	 * queue holds that many pages' worth: draining it gives the space back for free.
	 */
	if (nr_to_pop > 0 && !retried &&
	    pcpu_queued_bytes() < (long)nr_to_pop * (long)pcpu_geom.page) {
		retried = true;
		if (pcpu_create_chunk(set, PCPU_MIN_ALLOC_SIZE))
			return false;
		goto retry;
	}
	return true;
}

/*
 * One run. @trim: drain everything, give back every free chunk and every empty populated
 * page. @idle: a timed run (the backoff timer), nobody asked. *@failed: pages were wanted
 * but population or chunk creation failed, or the front caches hold objects to age out.
 * kernel: pcpu_balance_workfn()
 */
static size_t balance_run(bool trim, bool idle, bool *failed)
{
	size_t bytes = 0;
	long limit;
	bool kick = false;

	pthread_mutex_lock(&pcpu_balance_mutex);
	/*
	 * The front caches first: freed objects zeroed and made ready, the excess (all of it
	 * when trimming, and what chunks isolated for reclaim hold) back to the map, where
	 * the steps below find it free. While they hold objects, come back after a while even
	 * if nobody asks (the backoff timer): the timed (@idle) runs age out what an idle
	 * program no longer uses.
	 */
	if (pcpu_front_balance(trim, idle))
		*failed = true;
	/*
	 * Step 0, without pcpu_alloc_mutex. At most what is queued now: frees that keep
	 * coming are the next run's (they kick again), so a run always ends. Trim drains
	 * until the queue is empty: a chunk held only by queued areas is then free.
	 */
	pthread_mutex_lock(&pcpu_lock);
	limit = pcpu_queued_areas();
	pthread_mutex_unlock(&pcpu_lock);
	while (trim || (limit > 0 && !__atomic_load_n(&bal_stopping, __ATOMIC_RELAXED))) {
		long n = pcpu_zero_drain(1, &kick);

		if (!n)
			break;
		limit -= n;
	}

	pcpu_hold(PCPU_ALLOC_MUTEX);
	pcpu_hold(PCPU_SHORT_LOCK);
	pcpu_balance_runs++;
	for (int set = 0; set < PCPU_NR_SETS; set++) {
		bytes += balance_free(set, false, trim);
		bytes += reclaim_populated(set, trim);
		/*
		 * A chunk isolated for reclaim when its last area was freed reaches the free
		 * slot only now: pcpu_trim() gives it back too, and otherwise one free chunk
		 * stays again. The reclaim may have left the reserve spread over two free
		 * chunks, neither of which the last step below would then give back.
		 */
		bytes += balance_free(set, false, trim);
		if (!trim && !balance_populated(set))
			*failed = true;
		bytes += balance_free(set, true, false);
	}
	if (trim) {
		bytes += pcpu_depopulate_all();
		__atomic_store_n(&reserve_wanted, false, __ATOMIC_RELAXED);
	}
	pcpu_release(PCPU_SHORT_LOCK);
	pcpu_release(PCPU_ALLOC_MUTEX);
	pthread_mutex_unlock(&pcpu_balance_mutex);
	return bytes;
}

size_t pcpu_balance_work(bool trim)
{
	bool failed = false;

	return balance_run(trim, false, &failed);
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
		bool failed = false, timed = false;

		__atomic_store_n(&bal_sleeping, true, __ATOMIC_SEQ_CST);
		while (!__atomic_load_n(&bal_pending, __ATOMIC_SEQ_CST) &&
		       !__atomic_load_n(&bal_stopping, __ATOMIC_RELAXED)) {
			if (!backoff_ms) {
				pthread_cond_wait(&bal_cond, &bal_lock);
			} else if (pthread_cond_timedwait(&bal_cond, &bal_lock, &retry_at) ==
				   ETIMEDOUT) {
				__atomic_add_fetch(&pcpu_balance_retries, 1, __ATOMIC_RELAXED);
				timed = true;
				break;
			}
		}
		__atomic_store_n(&bal_sleeping, false, __ATOMIC_RELAXED);
		if (__atomic_load_n(&bal_stopping, __ATOMIC_RELAXED))
			break;
		__atomic_store_n(&bal_pending, false, __ATOMIC_SEQ_CST);
		pthread_mutex_unlock(&bal_lock);

		balance_run(false, timed, &failed);

		pthread_mutex_lock(&bal_lock);
		if (failed) {
			uint64_t t;

			backoff_ms = backoff_ms ? 2 * backoff_ms : BACKOFF_MIN_MS;
			if (backoff_ms > BACKOFF_MAX_MS)
				backoff_ms = BACKOFF_MAX_MS;
			t = pcpu_now_ns() + (uint64_t)backoff_ms * 1000000u;
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

void pcpu_balance_nowait_failed(void)
{
	__atomic_store_n(&nowait_failed, true, __ATOMIC_RELAXED);
	__atomic_store_n(&reserve_wanted, true, __ATOMIC_RELAXED);
	pcpu_balance_kick(true);
}

void pcpu_balance_low(struct pcpu_chunk *c, bool nowait)
{
	__atomic_store_n(&reserve_wanted, true, __ATOMIC_RELAXED);
	/* Never waits for the mutex: whoever holds it is at page work already. */
	if (c && !nowait && pcpu_alloc_mutex_trylock()) {
		bool refilled;

		refilled = pcpu_refill_reserve(c);
		pcpu_release(PCPU_ALLOC_MUTEX);
		if (refilled)
			return;
	}
	pcpu_balance_kick(nowait);
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
	 * this also runs at dlclose(); alloc.c's destructor covers the static library.
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

/*
 * fork(): alloc.c's handlers take pcpu_balance_mutex, then the allocator's locks, then
 * call these for bal_lock (the leaf, taken last). With every lock held by the forking
 * thread, the balancer is either waiting for one of them or asleep: it holds no state the
 * child could inherit half-done.
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
	bal_pending = bal_pending || pcpu_queued_areas();
	bal_owed = bal_owed || bal_pending;
	init_cond();
	pthread_mutex_unlock(&bal_lock);
}
