/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * hot.c - the "hot" group: nanoseconds per counter update, one thread and one thread per
 * CPU (pinned and unpinned), for libpcpu's this-CPU add and the usual hand-made peers.
 *
 * Run with PCPU_CONF=cpu_mode=getcpu (job parameter "getcpu"), it measures only libpcpu,
 * which then updates the copy getcpu names with an atomic instruction.
 *
 * With librseq (PCPU_BENCH_LIBRSEQ), one more peer: librseq's per-CPU add
 * (rseq_load_add_store__ptr, RSEQ_PERCPU_CPU_ID, retried on abort) on a counter from a
 * COW-zero per-CPU mempool; the loop lives in lrseq.c.
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pcpu.h>

#include "bench.h"

#define MAX_THREADS 256

enum hot_variant {
	HV_THIS_ADD,      /* pcpu_this_add(): rseq, inlined */
	HV_COUNTER,       /* pcpu_counter_add(): out of line, batched */
	HV_PLAIN,         /* *p += 1 on the thread's own line: the floor */
	HV_TLS,           /* a __thread variable */
	HV_SHARED_ATOMIC, /* one counter, atomic add, shared by every thread */
	HV_GETCPU_ATOMIC, /* sched_getcpu() + atomic add on a padded per-CPU array */
#ifdef PCPU_BENCH_LIBRSEQ
	HV_LIBRSEQ,       /* librseq: rseq add on a mempool counter */
#endif
	NR_HV,
};

static const char *const hv_name[NR_HV] = {
	[HV_THIS_ADD] = "pcpu_this_add",
	[HV_COUNTER] = "pcpu_counter_add",
	[HV_PLAIN] = "plain add via pointer (floor)",
	[HV_TLS] = "thread-local add",
	[HV_SHARED_ATOMIC] = "shared atomic counter",
	[HV_GETCPU_ATOMIC] = "sched_getcpu + atomic, padded",
#ifdef PCPU_BENCH_LIBRSEQ
	[HV_LIBRSEQ] = "librseq rseq add (mempool)",
#endif
};

struct padded_u64 {
	_Alignas(CACHE_LINE) uint64_t v;
};

static uint64_t __pcpu *this_ctr;
static struct pcpu_counter counter;
static struct padded_u64 plain_slot[MAX_THREADS];
static struct padded_u64 shared_ctr;
static struct padded_u64 *getcpu_slots;
static __thread uint64_t tls_ctr;
#ifdef PCPU_BENCH_LIBRSEQ
static struct lrseq_pool *lrseq_pool;
static uint64_t *lrseq_ctr;
#endif

/* Every loop is its own function so the update is inlined in a tight loop, as in a program. */
/* The counter comes in as an argument, as the peers' counters do (librseq's, the plain one). */
static __attribute__((noinline)) void loop_this_add(long n, uint64_t __pcpu *ctr)
{
	for (long i = 0; i < n; i++)
		pcpu_this_add(ctr, 1);
}

static __attribute__((noinline)) void loop_counter(long n)
{
	for (long i = 0; i < n; i++)
		pcpu_counter_add(&counter, 1);
}

static __attribute__((noinline)) void loop_plain(long n, volatile uint64_t *p)
{
	/* volatile: one load, one add, one store per update, like the rseq sequence. */
	for (long i = 0; i < n; i++)
		*p = *p + 1;
}

static __attribute__((noinline)) void loop_tls(long n)
{
	volatile uint64_t *p = &tls_ctr;

	for (long i = 0; i < n; i++)
		*p = *p + 1;
}

static __attribute__((noinline)) void loop_shared_atomic(long n)
{
	for (long i = 0; i < n; i++)
		__atomic_fetch_add(&shared_ctr.v, 1, __ATOMIC_RELAXED);
}

static __attribute__((noinline)) void loop_getcpu_atomic(long n)
{
	for (long i = 0; i < n; i++) {
		int cpu = sched_getcpu();

		__atomic_fetch_add(&getcpu_slots[cpu < 0 ? 0 : cpu].v, 1, __ATOMIC_RELAXED);
	}
}

static void run_variant(enum hot_variant v, long n, int tid)
{
	switch (v) {
	case HV_THIS_ADD:
		loop_this_add(n, this_ctr);
		break;
	case HV_COUNTER:
		loop_counter(n);
		break;
	case HV_PLAIN:
		loop_plain(n, &plain_slot[tid].v);
		break;
	case HV_TLS:
		loop_tls(n);
		break;
	case HV_SHARED_ATOMIC:
		loop_shared_atomic(n);
		break;
	case HV_GETCPU_ATOMIC:
		loop_getcpu_atomic(n);
		break;
#ifdef PCPU_BENCH_LIBRSEQ
	case HV_LIBRSEQ:
		lrseq_add_loop(lrseq_ctr, n);
		break;
#endif
	default:
		break;
	}
}

struct hot_thread {
	pthread_t thread;
	enum hot_variant v;
	long iters;
	int tid;
	int pin_cpu; /* -1: not pinned */
	pthread_barrier_t *start;
	double ns;
};

static void *hot_thread_main(void *arg)
{
	struct hot_thread *t = arg;
	uint64_t t0;

	if (t->pin_cpu >= 0)
		pin_self(t->pin_cpu);
#ifdef PCPU_BENCH_LIBRSEQ
	if (t->v == HV_LIBRSEQ && lrseq_thread_init())
		die("hot: librseq: rseq registration failed");
#endif
	run_variant(t->v, t->iters / 64 + 1, t->tid); /* warm the caches and the rseq area */
	pthread_barrier_wait(t->start);
	t0 = now_ns();
	run_variant(t->v, t->iters, t->tid);
	t->ns = (double)(now_ns() - t0);
	return NULL;
}

/* updates - how many pcpu_this_add() calls were made, to check nothing was lost. */
static uint64_t updates_this_add;
static uint64_t updates_counter;
#ifdef PCPU_BENCH_LIBRSEQ
static uint64_t updates_librseq;
#endif

/* One timed run: @nthreads threads each doing @iters updates. Return: ns per update. */
static double hot_run(enum hot_variant v, int nthreads, const int *pin, long iters)
{
	struct hot_thread t[MAX_THREADS];
	pthread_barrier_t start;
	double sum = 0;
	int i;

	pthread_barrier_init(&start, NULL, (unsigned)nthreads);
	for (i = 0; i < nthreads; i++) {
		t[i] = (struct hot_thread){
			.v = v, .iters = iters, .tid = i, .pin_cpu = pin ? pin[i] : -1,
			.start = &start,
		};
		if (pthread_create(&t[i].thread, NULL, hot_thread_main, &t[i]))
			die("pthread_create failed");
	}
	for (i = 0; i < nthreads; i++) {
		pthread_join(t[i].thread, NULL);
		sum += t[i].ns;
	}
	pthread_barrier_destroy(&start);
	if (v == HV_THIS_ADD)
		updates_this_add += (uint64_t)nthreads * (uint64_t)(iters + iters / 64 + 1);
	if (v == HV_COUNTER)
		updates_counter += (uint64_t)nthreads * (uint64_t)(iters + iters / 64 + 1);
#ifdef PCPU_BENCH_LIBRSEQ
	if (v == HV_LIBRSEQ)
		updates_librseq += (uint64_t)nthreads * (uint64_t)(iters + iters / 64 + 1);
#endif
	/* Each thread's own time per update, averaged over the threads. */
	return sum / nthreads / (double)iters;
}

/* calibrate - iterations for one run of about bopt.target seconds on one thread. */
static long calibrate(enum hot_variant v)
{
	long n = 1 << 16;
	double per = hot_run(v, 1, NULL, n);
	long iters = (long)(bopt.target * 1e9 / (per > 0.05 ? per : 0.05));

	if (iters < (1 << 16))
		iters = 1 << 16;
	if (iters > (1L << 28))
		iters = 1L << 28;
	return iters;
}

static void measure(enum hot_variant v, const char *impl, bool baseline)
{
	int cpus[MAX_THREADS];
	int ncpu = allowed_cpus(cpus, MAX_THREADS);
	double runs[64];
	char params[64];
	long iters;
	int cfg, r;

	if (ncpu > MAX_THREADS)
		ncpu = MAX_THREADS;
	iters = calibrate(v);
	for (cfg = 0; cfg < 3; cfg++) {
		int nthreads = cfg == 0 ? 1 : ncpu;
		const int *pin = cfg == 1 ? cpus : NULL;

		if (cfg == 0)
			snprintf(params, sizeof(params), "1 thread");
		else
			snprintf(params, sizeof(params), "%d threads %s", ncpu,
				 cfg == 1 ? "pinned" : "unpinned");
		progress("hot: %s, %s", impl, params);
		for (r = 0; r < bopt.reps && r < 64; r++)
			runs[r] = hot_run(v, nthreads, pin, iters);
		report_reps("hot", "update", params, impl, runs, r, "ns/op", baseline);
	}
}

static void check_exact(void)
{
	uint64_t sum = 0;
	unsigned cpu;
	int64_t csum;

	pcpu_for_each_cpu(cpu)
		sum += *pcpu_ptr(this_ctr, cpu);
	if (updates_this_add && sum != updates_this_add)
		note("ERROR: pcpu_this_add total %llu, expected %llu (lost updates)",
		     (unsigned long long)sum, (unsigned long long)updates_this_add);
	csum = pcpu_counter_sum(&counter);
	if (updates_counter && (uint64_t)csum != updates_counter)
		note("ERROR: pcpu_counter_sum %lld, expected %llu", (long long)csum,
		     (unsigned long long)updates_counter);
#ifdef PCPU_BENCH_LIBRSEQ
	if (lrseq_ctr) {
		sum = lrseq_sum(lrseq_ctr, lrseq_possible_cpus());
		if (updates_librseq && sum != updates_librseq)
			note("ERROR: librseq total %llu, expected %llu (lost updates)",
			     (unsigned long long)sum, (unsigned long long)updates_librseq);
	}
#endif
}

static const char *mode_name(int mode)
{
	switch (mode) {
	case PCPU_MODE_RSEQ_GLIBC:
		return "rseq (glibc registration)";
	case PCPU_MODE_RSEQ_OWN:
		return "rseq (own registration)";
	case PCPU_MODE_GETCPU:
		return "getcpu + atomic";
	default:
		return "unknown";
	}
}

void group_hot(void)
{
	bool getcpu_mode = bopt.params && !strcmp(bopt.params, "getcpu");
	long ncpu_conf = sysconf(_SC_NPROCESSORS_CONF);
	enum pcpu_cpu_mode mode = pcpu_cpu_mode();
	size_t slots_bytes;
	int v;

	this_ctr = pcpu_alloc_type(uint64_t);
	if (!this_ctr || pcpu_counter_init(&counter, 0))
		die("hot: libpcpu allocation failed");
	if (getcpu_mode) {
		if (mode != PCPU_MODE_GETCPU)
			note("hot: PCPU_CONF=cpu_mode=getcpu gave mode %s", mode_name(mode));
		measure(HV_THIS_ADD, "pcpu_this_add, getcpu mode", false);
		check_exact();
		return;
	}
	note("hot: libpcpu cpu mode: %s", mode_name(mode));
	slots_bytes = ((size_t)(ncpu_conf > 0 ? ncpu_conf : 1) + 1) * sizeof(*getcpu_slots);
	getcpu_slots = aligned_alloc(CACHE_LINE, slots_bytes);
	if (!getcpu_slots)
		die("hot: out of memory");
	memset(getcpu_slots, 0, slots_bytes);
#ifdef PCPU_BENCH_LIBRSEQ
	lrseq_pool = lrseq_pool_open(lrseq_possible_cpus());
	lrseq_ctr = lrseq_pool ? lrseq_alloc(lrseq_pool, true) : NULL;
	if (lrseq_pool && !lrseq_ctr)
		note("hot: librseq: allocation failed, column skipped");
#endif
	for (v = 0; v < NR_HV; v++) {
#ifdef PCPU_BENCH_LIBRSEQ
		if (v == HV_LIBRSEQ && !lrseq_ctr)
			continue;
#endif
		measure((enum hot_variant)v, hv_name[v], v == HV_THIS_ADD);
	}
	check_exact();
	free(getcpu_slots);
#ifdef PCPU_BENCH_LIBRSEQ
	if (lrseq_ctr)
		lrseq_free(lrseq_ctr);
	if (lrseq_pool)
		lrseq_pool_close(lrseq_pool);
#endif
}
