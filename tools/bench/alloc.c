/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * alloc.c - the "alloc" group: the cost of allocating and freeing per-CPU objects.
 *
 *  - alloc+free pairs of 8, 64, 256 and 1024 bytes;
 *  - the 2017 kernel experiment (the percpu allocator rewrite's benchmark): allocate N
 *    objects of 4, 16, 64, 256 or 1024 bytes, then free them in order, alternating (every
 *    even index, then every odd one) or in reverse.
 *
 * Each against cache-line padded per-CPU arrays from jemalloc and from glibc, zeroed as
 * pcpu_alloc() zeroes. The job runs once per topology (2 real CPUs, fake 64x4 and 256x4);
 * the padded arrays have pcpu_nr_cpus() slots, the same CPU count.
 */
#include <stdio.h>
#include <stdlib.h>

#include <pcpu.h>

#include "bench.h"

static const size_t pair_sizes[] = {8, 64, 256, 1024};
static const size_t exp_sizes[] = {4, 16, 64, 256, 1024};

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* One run of @n alloc+free pairs. Return: ns per pair, or a negative value on failure. */
static double pairs_run(enum peer p, size_t size, unsigned ncpus, long n)
{
	uint64_t t0 = now_ns();

	for (long i = 0; i < n; i++) {
		void *obj = peer_alloc(p, size, ncpus);

		if (!obj)
			return -1;
		bench_keep(obj);
		peer_free(p, obj, size, ncpus);
	}
	return (double)(now_ns() - t0) / (double)n;
}

static void pairs(unsigned ncpus)
{
	char params[64];
	double runs[64];

	for (size_t s = 0; s < ARRAY_SIZE(pair_sizes); s++) {
		size_t size = pair_sizes[s];

		snprintf(params, sizeof(params), "%zuB cpus=%u", size, ncpus);
		for (int p = 0; p < NR_PEERS; p++) {
			double per;
			long n;
			int r;

			progress("alloc: pairs %s %s", params, peer_name[p]);
			per = pairs_run((enum peer)p, size, ncpus, 256);
			if (per < 0) {
				note("alloc: %s failed to allocate %zu bytes", peer_name[p], size);
				continue;
			}
			n = (long)(bopt.target * 1e9 / (per > 1 ? per : 1));
			if (n < 256)
				n = 256;
			if (n > 20000000)
				n = 20000000;
			for (r = 0; r < bopt.reps && r < 64; r++)
				runs[r] = pairs_run((enum peer)p, size, ncpus, n);
			report("alloc", "alloc+free pair", params, peer_name[p], median(runs, r),
			       "ns/op", p == PEER_PCPU);
		}
	}
}

enum free_order { FREE_IN_ORDER, FREE_ALTERNATING, FREE_REVERSE, NR_ORDERS };

static const char *const order_bench[NR_ORDERS] = {
	"2017: free in order",
	"2017: free alternating",
	"2017: free in reverse",
};

/* Allocate @n objects into @objs. Return: ns per allocation, or -1 (all freed again). */
static double exp_alloc(enum peer p, void **objs, long n, size_t size, unsigned ncpus)
{
	uint64_t t0 = now_ns();

	for (long i = 0; i < n; i++) {
		objs[i] = peer_alloc(p, size, ncpus);
		if (!objs[i]) {
			while (i--)
				peer_free(p, objs[i], size, ncpus);
			return -1;
		}
	}
	return (double)(now_ns() - t0) / (double)n;
}

/* Free the @n objects of @objs in @order. Return: ns per free. */
static double exp_free(enum peer p, void **objs, long n, size_t size, unsigned ncpus,
		       enum free_order order)
{
	uint64_t t0 = now_ns();
	long i;

	switch (order) {
	case FREE_IN_ORDER:
		for (i = 0; i < n; i++)
			peer_free(p, objs[i], size, ncpus);
		break;
	case FREE_ALTERNATING:
		for (i = 0; i < n; i += 2)
			peer_free(p, objs[i], size, ncpus);
		for (i = 1; i < n; i += 2)
			peer_free(p, objs[i], size, ncpus);
		break;
	default:
		for (i = n - 1; i >= 0; i--)
			peer_free(p, objs[i], size, ncpus);
		break;
	}
	return (double)(now_ns() - t0) / (double)n;
}

static void experiment_2017(unsigned ncpus)
{
	long target = bopt.full ? 1000000 : 20000;
	/*
	 * Padded arrays cost ncpus cache lines per object: bound the memory one point may
	 * take, and with it the time (faulting fresh pages in is most of glibc's cost).
	 */
	double budget = bopt.full ? 4.0 * (1 << 30) : 8.0 * (1 << 20);
	int reps = bopt.reps < 3 ? bopt.reps : 3;
	/* Seconds one (size, implementation) point may run before it stops repeating. */
	double limit = bopt.full ? 60 : 1.5;
	char params[96];
	int cut = 0;

	if (bopt.full)
		reps = bopt.reps;
	for (size_t s = 0; s < ARRAY_SIZE(exp_sizes); s++) {
		size_t size = exp_sizes[s];
		long n = (long)(budget / ((double)padded_slot(size) * ncpus));
		void **objs;

		if (n > target)
			n = target;
		if (n < 100)
			n = 100;
		objs = big_alloc((size_t)n * sizeof(*objs));
		snprintf(params, sizeof(params), "%zuB x%ld cpus=%u", size, n, ncpus);
		for (int p = 0; p < NR_PEERS; p++) {
			double a[3 * 16], f[NR_ORDERS][16];
			int na = 0, r, o;
			bool ok = true;

			uint64_t t0 = now_ns();

			progress("alloc: 2017 experiment %s %s", params, peer_name[p]);
			for (r = 0; r < reps && r < 16 && ok; r++) {
				/* A slow point stops after the runs that fit its time limit. */
				if (r && (double)(now_ns() - t0) / 1e9 > limit) {
					cut++;
					break;
				}
				for (o = 0; o < NR_ORDERS; o++) {
					double t = exp_alloc((enum peer)p, objs, n, size, ncpus);

					if (t < 0) {
						note("alloc: %s ran out of memory at %s", peer_name[p],
						     params);
						ok = false;
						break;
					}
					a[na++] = t;
					f[o][r] = exp_free((enum peer)p, objs, n, size, ncpus,
							   (enum free_order)o);
				}
			}
			if (!ok)
				continue;
			report("alloc", "2017: alloc N", params, peer_name[p], median(a, na),
			       "ns/op", p == PEER_PCPU);
			for (o = 0; o < NR_ORDERS; o++)
				report("alloc", order_bench[o], params, peer_name[p], median(f[o], r),
				       "ns/op", p == PEER_PCPU);
		}
		big_free(objs, (size_t)n * sizeof(*objs));
	}
	if (cut)
		note("alloc: %d point%s of the 2017 experiment at %u CPUs stopped before %d runs"
		     " (%.1f s limit per point)", cut, cut > 1 ? "s" : "", ncpus, reps, limit);
}

void group_alloc(void)
{
	unsigned ncpus = pcpu_nr_cpus();

	pairs(ncpus);
	experiment_2017(ncpus);
}
