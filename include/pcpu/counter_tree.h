/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * pcpu/counter_tree.h - hierarchical per-CPU counters (the kernel's percpu_counter_tree,
 * hierarchical per-CPU counters RFC by Mathieu Desnoyers, LKML 2025, not merged). Included
 * by <pcpu.h>, inside its extern "C" block, after <pcpu/this_cpu.h>; do not include it on
 * its own.
 *
 * Each CPU has a 64-bit leaf that only ever accumulates (an add is one restartable
 * add-and-return on it). Above the leaves sits a binary tree of plain 64-bit words: the
 * parent of CPU c at level L (1 = just above the leaves) is node c >> L, and the top level
 * has a single node, the root. Level L's batch is batch << L. Whenever an add changes the
 * bits of a leaf (or node) at or above its level's batch, the difference of those high
 * bits, a multiple of the batch, is added atomically to the parent, and so on up. So:
 *   - the root holds every carry: approx = initial + root, one load;
 *   - sum = initial + the leaves (which are never reset), exact with no writer;
 *   - sum - approx is what is not yet carried: each leaf holds less than batch of it, each
 *     node of level L at most batch << (L - 1) (it only receives multiples of that). Their
 *     total, pcpu_counter_tree_inaccuracy(), is about batch * n * (log2(n) + 1) / 2 and
 *     never above batch * n * ceil(log2(n)) for n >= 2 CPUs; approx <= sum <=
 *     approx + inaccuracy whenever no add is in flight.
 */
#ifndef PCPU_COUNTER_TREE_H
#define PCPU_COUNTER_TREE_H

#include <stddef.h>
#include <stdint.h>

/*
 * struct pcpu_counter_tree - a hierarchical counter. Embeddable; its fields are internal.
 * The fields the add reads (@leaves, @mask) share no cache line with anything it writes:
 * the tree's nodes live in their own cache lines (@nodes).
 */
struct pcpu_counter_tree {
	uint64_t __pcpu *leaves; /* per-CPU leaf, only ever added to */
	uint64_t mask;		 /* batch - 1: the bits a leaf keeps before carrying */
	uint64_t *levels;	 /* nodes of levels 1 .. top, 64 bytes apart; root last */
	uint64_t *root;		 /* the top level's single node */
	void *nodes;		 /* the allocation behind @levels */
	int64_t initial;
	uint64_t inaccuracy; /* the bound, computed once by init */
	uint32_t nr_cpus;    /* leaves: pcpu_nr_cpus() at init */
	uint32_t nr_levels;  /* levels above the leaves, the root's included */
};

/*
 * pcpu_counter_tree_init - set up @t with value @initial (kernel RFC:
 * percpu_counter_tree_init()).
 * @batch: what a leaf keeps before carrying up; a power of two, or 0 for the default (32).
 * Allocates one 8-byte leaf per possible CPU and one cache line per node of the tree above
 * (about pcpu_nr_cpus() nodes).
 * Return: 0, or -1 with errno EINVAL (@t NULL, @batch not a power of two) or ENOMEM
 * (nothing allocated). MT-safe for distinct counters; not async-signal-safe (allocates).
 */
PCPU_API int pcpu_counter_tree_init(struct pcpu_counter_tree *t, int64_t initial, uint32_t batch);
/*
 * pcpu_counter_tree_destroy - free @t's memory; @t may be initialised again. NULL, or a
 * counter already destroyed: no-op. No other thread may use @t meanwhile.
 */
PCPU_API void pcpu_counter_tree_destroy(struct pcpu_counter_tree *t);
/*
 * pcpu_counter_tree_add - add @v (kernel RFC: percpu_counter_tree_add()): one restartable
 * add on this CPU's leaf; when the leaf's bits at or above the batch change, the carry
 * goes up the tree with one relaxed atomic add per level reached. MT-safe and
 * async-signal-safe (no lock anywhere). Inline in this header; the exported function,
 * reached as (pcpu_counter_tree_add)(...), does the same.
 */
PCPU_API void pcpu_counter_tree_add(struct pcpu_counter_tree *t, int64_t v);
/*
 * pcpu_counter_tree_approx - initial plus everything carried to the root: one load
 * (kernel RFC: percpu_counter_tree_approximate_sum()). With no add in flight,
 * approx <= sum <= approx + pcpu_counter_tree_inaccuracy(). MT-safe, async-signal-safe.
 */
PCPU_API int64_t pcpu_counter_tree_approx(const struct pcpu_counter_tree *t);
/*
 * pcpu_counter_tree_inaccuracy - the most sum and approx can differ with no add in flight
 * (kernel RFC: percpu_counter_tree_approximate_accuracy_range()): n * (batch - 1) plus,
 * for each level L below the root, its node count times batch << (L - 1). Depends only on
 * the batch and the CPU count n: just under batch * n * (log2(n) + 1) / 2 for n a power of 2,
 * never above batch * n * ceil(log2(n)) for n >= 2 (batch - 1 for one CPU). The kernel's
 * percpu_counter is off by up to batch * n with a batch of max(32, 2n), that is 2n^2.
 * MT-safe, async-signal-safe.
 */
PCPU_API uint64_t pcpu_counter_tree_inaccuracy(const struct pcpu_counter_tree *t);
/*
 * pcpu_counter_tree_sum - initial plus every possible CPU's leaf (kernel RFC:
 * percpu_counter_tree_precise_sum()): exact with no concurrent writer. Lock-free; reads
 * each leaf once. MT-safe, async-signal-safe.
 */
PCPU_API int64_t pcpu_counter_tree_sum(struct pcpu_counter_tree *t);
/*
 * pcpu_counter_tree_compare - -1, 0 or 1 as the counter is below, equal to or above @v
 * (kernel RFC: percpu_counter_tree_precise_compare_value()). When @v lies outside
 * [approx, approx + inaccuracy] the approximate value decides (one load); otherwise the
 * precise sum does. Exact whenever no add is in flight. While adds run it is as racy as
 * any read, and more: a carry on its way up (its thread preempted between the leaf and
 * the tree) is in neither approx nor the bound, so the answer may then be wrong by such
 * carries, like percpu_counter_compare() by concurrent folds. MT-safe, async-signal-safe.
 */
PCPU_API int pcpu_counter_tree_compare(struct pcpu_counter_tree *t, int64_t v);

/*
 * pcpu__counter_tree_carry - internal to the inline add: the leaf of CPU @cpu went from
 * @old to @nv (modulo 2^64) and its bits at or above the batch changed; add their
 * difference to the parent, and so on up. @cpu picks the path only (any path keeps every
 * value exact); PCPU__TREE_THIS_CPU means the CPU the thread runs on now. Tests call it
 * with an explicit @cpu to emulate adds on CPUs a small machine does not have.
 */
#define PCPU__TREE_THIS_CPU 0xffffffffu
PCPU_API void pcpu__counter_tree_carry(struct pcpu_counter_tree *t, unsigned cpu, uint64_t old,
				       uint64_t nv);

static inline void pcpu__counter_tree_add(struct pcpu_counter_tree *t, int64_t v)
{
	uint64_t nv = pcpu__add_return_64((void *)t->leaves, (uint64_t)v);
	uint64_t old = nv - (uint64_t)v;

	/* (old & ~mask) != (nv & ~mask): the part above the batch changed, carry it up. */
	if (__builtin_expect(((old ^ nv) & ~t->mask) != 0, 0))
		pcpu__counter_tree_carry(t, PCPU__TREE_THIS_CPU, old, nv);
}

#define pcpu_counter_tree_add(t, v) pcpu__counter_tree_add((t), (v))

#endif /* PCPU_COUNTER_TREE_H */
