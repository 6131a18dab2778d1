/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * memory.c - the "memory" group: what a per-CPU 8-byte counter costs in memory.
 *
 * Default job (every CPU of the machine, nothing confined): K counters with every CPU's copy
 * written, per implementation; resident bytes per CPU per counter from the Pss (and, for
 * libpcpu, from pcpu_stats resident_bytes); the Pss left after freeing everything, and after
 * pcpu_trim() / malloc_trim() / a jemalloc purge.
 *
 * Confined jobs (parameter "confined-cpu" or "confined-cid"): the parent confined the process
 * to one CPU before exec, so before the library initialised; the topology may be fake (64 or
 * 256 CPUs). Each counter is bumped once from that CPU, as a program would, and what stays
 * resident per counter is measured, for index=cpu, index=cid and padded arrays (those in the
 * index=cpu job), with the time to sum one counter over every copy.
 *
 * With librseq (PCPU_BENCH_LIBRSEQ), the index=cpu confined jobs also measure counters from
 * a librseq per-CPU mempool with the COW-zero populate policy and max_nr_cpus set to the
 * topology's CPU count, each bumped once with librseq's rseq add: allocated with zmalloc
 * (what a counter allocator needs once items are reused) and with malloc (fresh items only,
 * which are zero already). The Pss is read again after the sums, which read every copy:
 * where the kernel maps no shared zero page on a read fault, reading an anonymous copy no
 * CPU wrote makes it resident (libpcpu maps a shared memfd page there instead).
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pcpu.h>

#include "bench.h"

static uint64_t pcpu_resident(void)
{
	struct pcpu_stats st = {.size = sizeof(st)};

	if (pcpu_stats_get(&st))
		return 0;
	return st.resident_bytes;
}

/* Warm up an allocator so its one-time setup is not charged to the counters. */
static void warm_up(enum peer p, unsigned ncpus)
{
	void *obj = peer_alloc(p, 8, ncpus);

	if (obj)
		peer_free(p, obj, 8, ncpus);
}

static void per_cpu_cost(void)
{
	long k = bopt.full ? 1000000 : 100000;
	unsigned ncpus = pcpu_nr_cpus();
	void **objs = big_alloc((size_t)k * sizeof(*objs));
	char params[64];

	snprintf(params, sizeof(params), "%ld counters cpus=%u", k, ncpus);
	for (int p = 0; p < NR_PEERS; p++) {
		uint64_t rss0, rss1, rss2, rss3, st0 = 0, st1 = 0;
		long i;

		progress("memory: %s, %s", params, peer_name[p]);
		warm_up((enum peer)p, ncpus);
		rss0 = pss_bytes();
		if (p == PEER_PCPU)
			st0 = pcpu_resident();
		for (i = 0; i < k; i++) {
			objs[i] = peer_alloc((enum peer)p, 8, ncpus);
			if (!objs[i])
				break;
			for (unsigned cpu = 0; cpu < ncpus; cpu++)
				*(uint64_t *)peer_copy((enum peer)p, objs[i], 8, cpu) = cpu + 1;
		}
		if (i < k) {
			note("memory: %s failed after %ld counters", peer_name[p], i);
			while (i--)
				peer_free((enum peer)p, objs[i], 8, ncpus);
			continue;
		}
		rss1 = pss_bytes();
		if (p == PEER_PCPU)
			st1 = pcpu_resident();
		for (i = 0; i < k; i++)
			peer_free((enum peer)p, objs[i], 8, ncpus);
		rss2 = pss_bytes();
		peer_trim((enum peer)p);
		rss3 = pss_bytes();

		report("memory", "bytes per CPU per counter (Pss)", params, peer_name[p],
		       (double)(rss1 - rss0) / ((double)k * ncpus), "B", p == PEER_PCPU);
		if (p == PEER_PCPU)
			report("memory", "bytes per CPU per counter (Pss)", params,
			       "libpcpu (pcpu_stats)", (double)(st1 - st0) / ((double)k * ncpus),
			       "B", false);
		report("memory", "Pss left after freeing all", params, peer_name[p],
		       ((double)rss2 - (double)rss0) / 1024, "KiB", p == PEER_PCPU);
		report("memory", "Pss left after trim", params,
		       p == PEER_PCPU	   ? "libpcpu (pcpu_trim)"
		       : p == PEER_GLIBC ? "padded/glibc (malloc_trim)"
					 : "padded/jemalloc (purge)",
		       ((double)rss3 - (double)rss0) / 1024, "KiB", p == PEER_PCPU);
	}
	big_free(objs, (size_t)k * sizeof(*objs));
}

/* Sum every counter once. Return: ns per counter; *@bad counts wrong totals. */
static double sum_all(enum peer p, void **objs, long k, unsigned ncpus, long *bad)
{
	uint64_t t0 = now_ns();

	for (long i = 0; i < k; i++) {
		uint64_t s = 0;

		for (unsigned cpu = 0; cpu < ncpus; cpu++)
			s += *(volatile uint64_t *)peer_copy(p, objs[i], 8, cpu);
		if (s != 1)
			(*bad)++;
	}
	return (double)(now_ns() - t0) / (double)k;
}

static void report_confined(const char *params, const char *impl, bool baseline, long k,
			    uint64_t rss0, uint64_t rss1, uint64_t rss2, double *runs, int r)
{
	report("memory", "resident bytes per counter, 1 CPU allowed", params, impl,
	       (double)(rss1 - rss0) / (double)k, "B", baseline);
	report("memory", "resident bytes per counter after the sums, 1 CPU allowed", params, impl,
	       (double)(rss2 - rss0) / (double)k, "B", baseline);
	report_reps("memory", "sum one counter, 1 CPU allowed", params, impl, runs, r, "ns/op",
		    baseline);
}

static void confined_one(enum peer p, const char *impl, bool baseline, void **objs, long k,
			 unsigned ncpus, const char *params)
{
	uint64_t rss0, rss1, rss2;
	double runs[64];
	long i, bad = 0;
	int r;

	progress("memory: 1 CPU allowed, %s, %s", params, impl);
	warm_up(p, ncpus);
	rss0 = pss_bytes();
	for (i = 0; i < k; i++) {
		objs[i] = peer_alloc(p, 8, ncpus);
		if (!objs[i])
			break;
		if (p == PEER_PCPU) {
			pcpu_this_inc((uint64_t __pcpu *)objs[i]);
		} else {
			int cpu = sched_getcpu();

			if (cpu < 0 || (unsigned)cpu >= ncpus)
				cpu = 0;
			(*(uint64_t *)peer_copy(p, objs[i], 8, (unsigned)cpu))++;
		}
	}
	if (i < k) {
		note("memory: %s failed after %ld counters at %s", impl, i, params);
		while (i--)
			peer_free(p, objs[i], 8, ncpus);
		return;
	}
	rss1 = pss_bytes();
	for (r = 0; r < bopt.reps && r < 64; r++)
		runs[r] = sum_all(p, objs, k, ncpus, &bad);
	rss2 = pss_bytes();
	if (bad)
		note("ERROR: memory: %s: %ld sums were not 1 at %s", impl, bad, params);
	report_confined(params, impl, baseline, k, rss0, rss1, rss2, runs, r);
	for (i = 0; i < k; i++)
		peer_free(p, objs[i], 8, ncpus);
}

#ifdef PCPU_BENCH_LIBRSEQ
/* confined_librseq - confined_one for librseq; @zero: allocate with zmalloc, else malloc. */
static void confined_librseq(bool zero, void **objs, long k, unsigned ncpus, const char *params)
{
	const char *impl = zero ? "librseq COW-zero (zmalloc)" : "librseq COW-zero (malloc)";
	struct lrseq_pool *pool;
	uint64_t rss0, rss1, rss2, t0;
	double runs[64];
	long i, bad = 0;
	int r;

	progress("memory: 1 CPU allowed, %s, %s", params, impl);
	if (lrseq_thread_init()) {
		note("memory: librseq: rseq registration failed, column skipped at %s", params);
		return;
	}
	rss0 = pss_bytes();
	/* The pool is charged too: its first range is mapped here, as for a program. */
	pool = lrseq_pool_open(ncpus);
	if (!pool)
		return;
	for (i = 0; i < k; i++) {
		objs[i] = lrseq_alloc(pool, zero);
		if (!objs[i])
			break;
		lrseq_add_loop(objs[i], 1);
	}
	if (i < k) {
		note("memory: %s failed after %ld counters at %s", impl, i, params);
		while (i--)
			lrseq_free(objs[i]);
		lrseq_pool_close(pool);
		return;
	}
	rss1 = pss_bytes();
	for (r = 0; r < bopt.reps && r < 64; r++) {
		t0 = now_ns();
		for (i = 0; i < k; i++)
			if (lrseq_sum(objs[i], ncpus) != 1)
				bad++;
		runs[r] = (double)(now_ns() - t0) / (double)k;
	}
	rss2 = pss_bytes();
	if (bad)
		note("ERROR: memory: %s: %ld sums were not 1 at %s", impl, bad, params);
	report_confined(params, impl, false, k, rss0, rss1, rss2, runs, r);
	for (i = 0; i < k; i++)
		lrseq_free(objs[i]);
	lrseq_pool_close(pool);
}
#endif

static void confined(bool cid)
{
	long k = bopt.full ? 100000 : 10000;
	unsigned ncpus = pcpu_nr_cpus();
	void **objs = big_alloc((size_t)k * sizeof(*objs));
	struct pcpu_stats st = {.size = sizeof(st)};
	char params[64];

	snprintf(params, sizeof(params), "cpus=%u", ncpus);
	if (!pcpu_stats_get(&st) && cid && st.index_mode != PCPU_INDEX_CID)
		note("memory: index=cid requested but not in use (no rseq mm_cid?) at %s", params);
	if (allowed_cpus(NULL, 0) != 1)
		note("memory: the confined job may run on %d CPUs", allowed_cpus(NULL, 0));
	confined_one(PEER_PCPU, cid ? "libpcpu index=cid" : "libpcpu index=cpu", !cid, objs, k,
		     ncpus, params);
	if (!cid) {
		confined_one(PEER_JEMALLOC, peer_name[PEER_JEMALLOC], false, objs, k, ncpus, params);
		confined_one(PEER_GLIBC, peer_name[PEER_GLIBC], false, objs, k, ncpus, params);
#ifdef PCPU_BENCH_LIBRSEQ
		confined_librseq(true, objs, k, ncpus, params);
		confined_librseq(false, objs, k, ncpus, params);
#endif
	}
	big_free(objs, (size_t)k * sizeof(*objs));
}

void group_memory(void)
{
	if (bopt.params && !strcmp(bopt.params, "confined-cpu"))
		confined(false);
	else if (bopt.params && !strcmp(bopt.params, "confined-cid"))
		confined(true);
	else
		per_cpu_cost();
}
