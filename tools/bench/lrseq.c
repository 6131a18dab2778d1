/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * lrseq.c - librseq as a peer: per-CPU 8-byte counters from a librseq per-CPU mempool with
 * the COW-zero populate policy, updated with librseq's rseq add on the current CPU's copy.
 *
 * Built only when meson finds librseq (pkg-config librseq); the groups call these functions
 * under PCPU_BENCH_LIBRSEQ and main prints a note instead when it is absent. librseq is kept
 * to this file so its headers never meet libpcpu's.
 */
#include <stdio.h>

#include <rseq/mempool.h>
#include <rseq/rseq.h>

#include "bench.h"

const size_t lrseq_stride = RSEQ_MEMPOOL_STRIDE;

/*
 * lrseq_pool_open - a per-CPU pool of 8-byte items for @ncpus CPUs (the topology's count,
 * not the machine's), COW-zero: a CPU's pages are populated on its first write.
 * Return: the pool, or NULL (a note says why).
 */
struct lrseq_pool *lrseq_pool_open(unsigned ncpus)
{
	struct rseq_mempool_attr *attr = rseq_mempool_attr_create();
	struct rseq_mempool *pool = NULL;

	if (!attr) {
		note("librseq: rseq_mempool_attr_create failed");
		return NULL;
	}
	if (rseq_mempool_attr_set_percpu(attr, 0, (int)ncpus) ||
	    rseq_mempool_attr_set_populate_policy(attr, RSEQ_MEMPOOL_POPULATE_COW_ZERO))
		note("librseq: setting the pool attributes failed");
	else
		pool = rseq_mempool_create("pcpu-bench", sizeof(uint64_t), attr);
	rseq_mempool_attr_destroy(attr);
	if (!pool)
		note("librseq: rseq_mempool_create for %u CPUs failed", ncpus);
	return (struct lrseq_pool *)pool;
}

/*
 * lrseq_pool_open_items - as lrseq_pool_open, for @item_len-byte items (librseq rounds the
 * length up to a power of two) with a per-CPU @stride (0: librseq's default, 64 KiB). A
 * larger stride lets a pool of a million items live in a few ranges rather than thousands,
 * each of them several mappings.
 */
struct lrseq_pool *lrseq_pool_open_items(unsigned ncpus, size_t item_len, size_t stride)
{
	struct rseq_mempool_attr *attr = rseq_mempool_attr_create();
	struct rseq_mempool *pool = NULL;

	if (!attr) {
		note("librseq: rseq_mempool_attr_create failed");
		return NULL;
	}
	if (rseq_mempool_attr_set_percpu(attr, stride, (int)ncpus) ||
	    rseq_mempool_attr_set_populate_policy(attr, RSEQ_MEMPOOL_POPULATE_COW_ZERO))
		note("librseq: setting the pool attributes failed");
	else
		pool = rseq_mempool_create("pcpu-bench-alloc", item_len, attr);
	rseq_mempool_attr_destroy(attr);
	if (!pool)
		note("librseq: rseq_mempool_create of %zu-byte items for %u CPUs (stride %zu) failed",
		     item_len, ncpus, stride);
	return (struct lrseq_pool *)pool;
}

/*
 * lrseq_obj_alloc - one item. @zero: rseq_mempool_percpu_zmalloc, which leaves every CPU's
 * copy zero as pcpu_alloc() does; else rseq_mempool_percpu_malloc, which touches no copy.
 */
void *lrseq_obj_alloc(struct lrseq_pool *pool, bool zero)
{
	struct rseq_mempool *p = (struct rseq_mempool *)pool;

	return zero ? rseq_mempool_percpu_zmalloc(p) : rseq_mempool_percpu_malloc(p);
}

/* lrseq_obj_free - free an item of a pool opened with @stride (0: the default). */
void lrseq_obj_free(void *obj, size_t stride)
{
	if (stride)
		rseq_mempool_percpu_free(obj, stride);
	else
		rseq_mempool_percpu_free(obj);
}

void lrseq_pool_close(struct lrseq_pool *pool)
{
	if (rseq_mempool_destroy((struct rseq_mempool *)pool))
		note("librseq: rseq_mempool_destroy failed");
}

/*
 * lrseq_alloc - one counter. @zero: rseq_mempool_percpu_zmalloc (the call a counter needs
 * once items are reused; in a COW-zero pool it reads every CPU's copy and writes only the
 * non-zero ones); else rseq_mempool_percpu_malloc (no access to the copies at all).
 */
uint64_t *lrseq_alloc(struct lrseq_pool *pool, bool zero)
{
	struct rseq_mempool *p = (struct rseq_mempool *)pool;

	return zero ? rseq_mempool_percpu_zmalloc(p) : rseq_mempool_percpu_malloc(p);
}

void lrseq_free(uint64_t *ctr)
{
	rseq_mempool_percpu_free(ctr);
}

uint64_t *lrseq_copy(uint64_t *ctr, unsigned cpu)
{
	return rseq_percpu_ptr(ctr, cpu);
}

/* lrseq_thread_init - register the calling thread (a no-op where glibc registered it). */
int lrseq_thread_init(void)
{
	if (rseq_register_current_thread())
		return -1;
	/* A failed or missing registration would make every sequence abort, forever. */
	return rseq_current_cpu_raw() < 0 ? -1 : 0;
}

/* The update: librseq's per-CPU add, retried until it commits on the CPU it started on. */
static inline void lrseq_inc(uint64_t *ctr)
{
	int cpu;

	do {
		cpu = (int)rseq_cpu_start();
	} while (rseq_load_add_store__ptr(RSEQ_MO_RELAXED, RSEQ_PERCPU_CPU_ID,
					  (intptr_t *)rseq_percpu_ptr(ctr, cpu), 1, cpu));
}

/* lrseq_add_loop - @n updates of @ctr, inlined in a tight loop as in a program. */
__attribute__((noinline)) void lrseq_add_loop(uint64_t *ctr, long n)
{
	for (long i = 0; i < n; i++)
		lrseq_inc(ctr);
}

/* lrseq_sum - @ctr summed over CPUs 0 .. @ncpus - 1. */
uint64_t lrseq_sum(uint64_t *ctr, unsigned ncpus)
{
	uint64_t s = 0;

	for (unsigned cpu = 0; cpu < ncpus; cpu++)
		s += *(volatile uint64_t *)rseq_percpu_ptr(ctr, cpu);
	return s;
}

/* lrseq_possible_cpus - the CPU count librseq sizes its default pools for. */
unsigned lrseq_possible_cpus(void)
{
	int n = rseq_get_max_nr_cpus();

	return n > 0 ? (unsigned)n : 1;
}
