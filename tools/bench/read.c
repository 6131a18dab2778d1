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
 *
 * Issue 16 adds, at every topology: pcpu_sum64() of the 10,000 counters (one run-based,
 * unit-major pass) next to the loops above; struct pcpu_counter_tree's add next to
 * pcpu_this_add() and pcpu_counter_add(), and its approximate read next to
 * pcpu_counter_read(); and a table of the tree's error: the worst one measured (an
 * adversarial sequence that leaves every leaf and node just under its carry, and the
 * largest seen over random adds on random CPUs), its bound (pcpu_counter_tree_inaccuracy)
 * and the kernel percpu_counter's batch * nr_cpus with its default batch. The random and
 * adversarial adds emulate an add on any CPU, single-threaded, the way the inline add does
 * it (leaf through pcpu_ptr, then the library's carry path for that CPU), since a small
 * machine only ever runs on a few of the fake CPUs. The 4096-CPU job (--child-params tree)
 * does only the tree's rows: 10,000 padded counters would need 2.6 GB there.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* pcpu_sum64() of every counter at once. Return: microseconds. */
static double run_sum64(void **objs, uint64_t expect, long *bad)
{
	static uint64_t out[NR_COUNTERS];
	uint64_t t0 = now_ns(), t1;

	if (pcpu_sum64((const void *const *)objs, NR_COUNTERS, out))
		(*bad)++;
	t1 = now_ns();
	for (long i = 0; i < NR_COUNTERS; i++)
		if (out[i] != expect)
			(*bad)++;
	return (double)(t1 - t0) / 1000.0;
}

/* pcpu_sum64() of all the counters, beside the loops of measure(). */
static void measure_sum64(void **objs, uint64_t expect, const char *params)
{
	double runs[64];
	long bad = 0;
	int r;

	run_sum64(objs, expect, &bad); /* warm-up pass */
	for (r = 0; r < bopt.reps && r < 64; r++)
		runs[r] = run_sum64(objs, expect, &bad);
	report("read", "sum 10,000 counters", params, "libpcpu pcpu_sum64", median(runs, r),
	       "us/op", false);
	if (bad)
		note("ERROR: read: pcpu_sum64: %ld wrong sums at %s", bad, params);
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

/* ---- struct pcpu_counter_tree ---- */

enum tree_op { OP_THIS_ADD, OP_COUNTER_ADD, OP_TREE_ADD, OP_COUNTER_READ, OP_TREE_APPROX };

static uint64_t __pcpu *op_ctr;
static struct pcpu_counter op_counter;
static struct pcpu_counter_tree op_tree;

/* @n operations @op. Return: ns per operation. */
static double run_op(enum tree_op op, long n)
{
	uint64_t t0 = now_ns();
	int64_t acc = 0;

	switch (op) {
	case OP_THIS_ADD:
		for (long i = 0; i < n; i++)
			pcpu_this_add(op_ctr, 1);
		break;
	case OP_COUNTER_ADD:
		for (long i = 0; i < n; i++)
			pcpu_counter_add(&op_counter, 1);
		break;
	case OP_TREE_ADD:
		for (long i = 0; i < n; i++)
			pcpu_counter_tree_add(&op_tree, 1);
		break;
	case OP_COUNTER_READ:
		for (long i = 0; i < n; i++) {
			acc += pcpu_counter_read(&op_counter);
			bench_barrier(); /* a new load each time */
		}
		break;
	case OP_TREE_APPROX:
		for (long i = 0; i < n; i++) {
			acc += pcpu_counter_tree_approx(&op_tree);
			bench_barrier();
		}
		break;
	}
	bench_keep(acc);
	return (double)(now_ns() - t0) / (double)n;
}

static void measure_op(enum tree_op op, const char *bench, const char *impl, const char *params,
		       bool baseline)
{
	double runs[64], per = run_op(op, 100000);
	long n = (long)(bopt.target * 1e9 / (per > 0.1 ? per : 0.1));
	int r;

	if (n < 100000)
		n = 100000;
	for (r = 0; r < bopt.reps && r < 64; r++)
		runs[r] = run_op(op, n);
	report("read", bench, params, impl, median(runs, r), "ns/op", baseline);
}

/* An add of @v on CPU @cpu, as the inline add does it there (single-threaded only). */
static void emu_add(struct pcpu_counter_tree *t, unsigned cpu, int64_t v)
{
	uint64_t *leaf = pcpu_ptr(t->leaves, cpu);
	uint64_t old = *leaf, nv = old + (uint64_t)v;

	*leaf = nv;
	if ((old ^ nv) & ~t->mask)
		pcpu__counter_tree_carry(t, cpu, old, nv);
}

static uint64_t tree_error(struct pcpu_counter_tree *t)
{
	return (uint64_t)pcpu_counter_tree_sum(t) - (uint64_t)pcpu_counter_tree_approx(t);
}

/* Every leaf just under its batch, every node below the root just under its carry. */
static uint64_t worst_adversarial(unsigned ncpus)
{
	struct pcpu_counter_tree t;
	uint64_t err;

	if (pcpu_counter_tree_init(&t, 0, 0))
		return 0;
	for (unsigned c = 0; c < ncpus; c++)
		emu_add(&t, c, (int64_t)t.mask);
	for (uint32_t l = 1; l < t.nr_levels; l++)
		for (uint64_t j = 0; (j << l) < ncpus; j++)
			emu_add(&t, (unsigned)(j << l), (int64_t)((t.mask + 1) << (l - 1)));
	err = tree_error(&t);
	pcpu_counter_tree_destroy(&t);
	return err;
}

/* The largest error seen over random adds (-2 batch .. 2 batch) on random CPUs. */
static uint64_t worst_random(unsigned ncpus)
{
	struct pcpu_counter_tree t;
	uint64_t x = 0x243f6a8885a308d3ull, worst = 0;
	long steps = 200000, every = ncpus > 256 ? 1000 : 100;

	if (pcpu_counter_tree_init(&t, 0, 0))
		return 0;
	for (long s = 0; s < steps; s++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		emu_add(&t, (unsigned)(x % ncpus), (int64_t)((x >> 32) % (4 * (t.mask + 1))) -
							   2 * (int64_t)(t.mask + 1));
		if (s % every == 0) {
			uint64_t e = tree_error(&t);

			worst = e > worst ? e : worst;
		}
	}
	pcpu_counter_tree_destroy(&t);
	return worst;
}

static void group_tree(unsigned ncpus, const char *params)
{
	struct pcpu_counter_tree t;
	uint64_t bound;

	progress("read: %s, counter tree", params);
	op_ctr = pcpu_alloc_type(uint64_t);
	if (!op_ctr || pcpu_counter_init(&op_counter, 0) ||
	    pcpu_counter_tree_init(&op_tree, 0, 0)) {
		note("read: counter tree: setup failed at %s", params);
		return;
	}
	measure_op(OP_THIS_ADD, "counter add, 1 thread", "libpcpu pcpu_this_add", params, true);
	measure_op(OP_TREE_ADD, "counter add, 1 thread", "counter tree", params, false);
	measure_op(OP_COUNTER_ADD, "counter add, 1 thread", "pcpu_counter (percpu_counter)",
		   params, false);
	measure_op(OP_TREE_APPROX, "approximate read", "counter tree approx", params, true);
	measure_op(OP_COUNTER_READ, "approximate read", "pcpu_counter_read", params, false);
	if (pcpu_counter_tree_sum(&op_tree) < 0)
		note("ERROR: read: counter tree sum negative at %s", params);
	pcpu_counter_tree_destroy(&op_tree);
	pcpu_counter_destroy(&op_counter);
	pcpu_free(op_ctr);

	if (pcpu_counter_tree_init(&t, 0, 0))
		return;
	bound = pcpu_counter_tree_inaccuracy(&t);
	pcpu_counter_tree_destroy(&t);
	report("read", "counter tree error (default batches)", params,
	       "tree bound (inaccuracy)", (double)bound, "counts", true);
	report("read", "counter tree error (default batches)", params,
	       "tree worst measured, adversarial", (double)worst_adversarial(ncpus), "counts",
	       false);
	report("read", "counter tree error (default batches)", params,
	       "tree worst measured, random adds", (double)worst_random(ncpus), "counts", false);
	report("read", "counter tree error (default batches)", params,
	       "percpu_counter batch*nr_cpus", (double)pcpu_counter_batch() * ncpus, "counts",
	       false);
}

void group_read(void)
{
	unsigned ncpus = pcpu_nr_cpus();
	uint64_t expect = (uint64_t)ncpus * (ncpus + 1) / 2;
	void **objs = big_alloc(NR_COUNTERS * sizeof(*objs));
	char params[32];

	snprintf(params, sizeof(params), "cpus=%u", ncpus);
	group_tree(ncpus, params);
	if (bopt.params && !strcmp(bopt.params, "tree")) {
		big_free(objs, NR_COUNTERS * sizeof(*objs));
		return;
	}
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
		if (i == NR_COUNTERS && p == PEER_PCPU)
			measure_sum64(objs, expect, params);
		while (i--)
			read_free(p, objs[i], ncpus);
#ifdef PCPU_BENCH_LIBRSEQ
		if (p == READ_LIBRSEQ)
			lrseq_pool_close(lrseq_pool);
#endif
	}
	big_free(objs, NR_COUNTERS * sizeof(*objs));
}
