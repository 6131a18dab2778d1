/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * read.c - the "read" group: what a reader pays to fold per-CPU counters.
 *
 * 10,000 8-byte counters with every CPU's copy written (so every copy is real memory, not
 * the shared zero page); then the time to sum one counter over all CPUs (cache warm) and to
 * sum all 10,000 (one pass, mostly from memory). The job runs once per topology: 2 real CPUs
 * and fake 64, 256 and 1024 CPUs. Copies of one libpcpu counter sit one unit apart, so this
 * is where the units' stride and colouring show; the padded arrays keep each counter's
 * copies on consecutive cache lines.
 *
 * With librseq (PCPU_BENCH_LIBRSEQ), the same for counters from a librseq per-CPU mempool
 * (COW-zero, max_nr_cpus = the topology's CPU count), whose copies sit one stride (64 KiB by
 * default) apart; its sum is inlined here like the others (pointer + cpu * stride, which is
 * what rseq_percpu_ptr computes).
 */
#include <stdio.h>
#include <stdlib.h>

#include <pcpu.h>

#include "bench.h"

#define NR_COUNTERS 10000

/* librseq takes the place after the real peers. */
#define READ_LIBRSEQ ((enum peer)NR_PEERS)

static inline uint64_t sum_one(enum peer p, void *obj, unsigned ncpus)
{
	uint64_t s = 0;

	if (p == PEER_PCPU) {
		uint64_t __pcpu *h = obj;

		for (unsigned cpu = 0; cpu < ncpus; cpu++)
			s += *pcpu_ptr(h, cpu);
#ifdef PCPU_BENCH_LIBRSEQ
	} else if (p == READ_LIBRSEQ) {
		const char *base = obj;

		for (unsigned cpu = 0; cpu < ncpus; cpu++)
			s += *(const uint64_t *)(base + (size_t)cpu * lrseq_stride);
#endif
	} else {
		const uint64_t *a = obj;

		for (unsigned cpu = 0; cpu < ncpus; cpu++)
			s += a[cpu * (CACHE_LINE / sizeof(uint64_t))];
	}
	return s;
}

/* @n sums of counter @obj. Return: ns per sum. */
static double run_one(enum peer p, void *obj, unsigned ncpus, long n, uint64_t expect, long *bad)
{
	uint64_t t0 = now_ns();

	for (long i = 0; i < n; i++) {
		uint64_t s = sum_one(p, obj, ncpus);

		if (s != expect)
			(*bad)++;
		bench_barrier(); /* a new sum each time: the loads may not be hoisted */
	}
	return (double)(now_ns() - t0) / (double)n;
}

/* One pass summing every counter. Return: microseconds. */
static double run_all(enum peer p, void **objs, unsigned ncpus, uint64_t expect, long *bad)
{
	uint64_t t0 = now_ns();

	for (long i = 0; i < NR_COUNTERS; i++)
		if (sum_one(p, objs[i], ncpus) != expect)
			(*bad)++;
	return (double)(now_ns() - t0) / 1000.0;
}

#ifdef PCPU_BENCH_LIBRSEQ
static const enum peer read_peers[] = {PEER_PCPU, PEER_JEMALLOC, READ_LIBRSEQ};
static struct lrseq_pool *lrseq_pool;
#else
static const enum peer read_peers[] = {PEER_PCPU, PEER_JEMALLOC};
#endif

static const char *read_name(enum peer p)
{
	return p == READ_LIBRSEQ ? LIBRSEQ_NAME : peer_name[p];
}

static void *read_alloc(enum peer p, unsigned ncpus)
{
#ifdef PCPU_BENCH_LIBRSEQ
	if (p == READ_LIBRSEQ)
		return lrseq_alloc(lrseq_pool, true);
#endif
	return peer_alloc(p, 8, ncpus);
}

static uint64_t *read_copy(enum peer p, void *obj, unsigned cpu)
{
#ifdef PCPU_BENCH_LIBRSEQ
	if (p == READ_LIBRSEQ)
		return lrseq_copy(obj, cpu);
#endif
	return peer_copy(p, obj, 8, cpu);
}

static void read_free(enum peer p, void *obj, unsigned ncpus)
{
#ifdef PCPU_BENCH_LIBRSEQ
	if (p == READ_LIBRSEQ) {
		lrseq_free(obj);
		return;
	}
#endif
	peer_free(p, obj, 8, ncpus);
}

/* Time one counter summed over and over, then one pass over all of them; report both. */
static void measure(enum peer p, void **objs, unsigned ncpus, uint64_t expect, const char *params)
{
	double runs[64], per;
	long n, bad = 0;
	int r;

	/* One counter, over and over: its copies stay in the caches if they can. */
	per = run_one(p, objs[NR_COUNTERS / 2], ncpus, 1000, expect, &bad);
	n = (long)(bopt.target * 1e9 / (per > 1 ? per : 1));
	if (n < 1000)
		n = 1000;
	for (r = 0; r < bopt.reps && r < 64; r++)
		runs[r] = run_one(p, objs[NR_COUNTERS / 2], ncpus, n, expect, &bad);
	report_reps("read", "sum one counter", params, read_name(p), runs, r, "ns/op",
		    p == PEER_PCPU);

	run_all(p, objs, ncpus, expect, &bad); /* warm-up pass */
	for (r = 0; r < bopt.reps && r < 64; r++)
		runs[r] = run_all(p, objs, ncpus, expect, &bad);
	report_reps("read", "sum 10,000 counters", params, read_name(p), runs, r, "us/op",
		    p == PEER_PCPU);
	if (bad)
		note("ERROR: read: %s: %ld wrong sums at %s", read_name(p), bad, params);
}

void group_read(void)
{
	unsigned ncpus = pcpu_nr_cpus();
	uint64_t expect = (uint64_t)ncpus * (ncpus + 1) / 2;
	void **objs = big_alloc(NR_COUNTERS * sizeof(*objs));
	char params[32];

	snprintf(params, sizeof(params), "cpus=%u", ncpus);
	for (size_t pi = 0; pi < sizeof(read_peers) / sizeof(read_peers[0]); pi++) {
		enum peer p = read_peers[pi];
		long i;

		progress("read: %s, %s", params, read_name(p));
#ifdef PCPU_BENCH_LIBRSEQ
		if (p == READ_LIBRSEQ) {
			lrseq_pool = lrseq_pool_open(ncpus);
			if (!lrseq_pool)
				continue;
		}
#endif
		for (i = 0; i < NR_COUNTERS; i++) {
			objs[i] = read_alloc(p, ncpus);
			if (!objs[i])
				break;
			for (unsigned cpu = 0; cpu < ncpus; cpu++)
				*read_copy(p, objs[i], cpu) = cpu + 1;
		}
		if (i < NR_COUNTERS)
			note("read: %s failed after %ld counters at %s", read_name(p), i, params);
		else
			measure(p, objs, ncpus, expect, params);
		while (i--)
			read_free(p, objs[i], ncpus);
#ifdef PCPU_BENCH_LIBRSEQ
		if (p == READ_LIBRSEQ)
			lrseq_pool_close(lrseq_pool);
#endif
	}
	big_free(objs, NR_COUNTERS * sizeof(*objs));
}
