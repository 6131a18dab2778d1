/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * counter_tree - hierarchical per-CPU counters, after the kernel RFC "Introduce
 * hierarchical per-cpu counters" (percpu_counter_tree, Mathieu Desnoyers, LKML 2025).
 * The layout and the error bound are explained in <pcpu/counter_tree.h>.
 *
 * Differences from the RFC: the tree is binary at every level; leaves are 64-bit, so the
 * precise sum is the leaves alone (no 32-bit wrap to undo); the add is one restartable
 * sequence instead of a preempt-off this_cpu op; and the parent of a carry is chosen by
 * the CPU the thread runs on when it carries, which may differ from the leaf's CPU after
 * a migration. That is harmless: a node's share of the error depends only on its own
 * value modulo its batch, never on which children fed it.
 */
#include <errno.h>
#include <stdint.h>

#include <pcpu.h>

#include "sum.h"
#include "util.h"

#define TREE_DEFAULT_BATCH 32u
#define NODE_STRIDE 8 /* uint64_t words per node: one 64-byte cache line each */
#define CACHE_LINE 64

/* Nodes at level @level (1 = just above the leaves) for @nr_cpus leaves. */
static uint32_t level_nodes(uint32_t nr_cpus, uint32_t level)
{
	return (uint32_t)(((uint64_t)nr_cpus + (1ull << level) - 1) >> level);
}

/*
 * What each node may hold without carrying: a leaf less than batch, a node of level L
 * (below the root) one batch << (L - 1) at most, as it only ever receives multiples of
 * that. Kernel RFC: percpu_counter_tree_approximate_accuracy_range().
 */
static uint64_t tree_bound(uint32_t nr_cpus, uint32_t nr_levels, uint64_t batch)
{
	uint64_t bound = (uint64_t)nr_cpus * (batch - 1);

	for (uint32_t l = 1; l < nr_levels; l++)
		bound += (uint64_t)level_nodes(nr_cpus, l) * (batch << (l - 1));
	return bound;
}

/* kernel RFC: percpu_counter_tree_init() */
int pcpu_counter_tree_init(struct pcpu_counter_tree *t, int64_t initial, uint32_t batch)
{
	uint32_t nr_cpus, nr_levels = 1, nr_nodes = 0;
	uintptr_t base;

	if (!t || (batch & (batch - 1))) {
		errno = EINVAL;
		return -1;
	}
	if (!batch)
		batch = TREE_DEFAULT_BATCH;
	nr_cpus = pcpu_nr_cpus();
	if (!nr_cpus) {
		errno = ENOMEM; /* the library could not initialise */
		return -1;
	}
	while (level_nodes(nr_cpus, nr_levels) > 1)
		nr_levels++;
	for (uint32_t l = 1; l <= nr_levels; l++)
		nr_nodes += level_nodes(nr_cpus, l);

	t->leaves = (uint64_t __pcpu *)pcpu_alloc(sizeof(uint64_t), sizeof(uint64_t), 0);
	if (!t->leaves)
		return -1; /* errno set by pcpu_alloc(): ENOMEM */
	/* Zeroed, and one node per cache line so that siblings never share one. */
	t->nodes = pcpu_calloc((size_t)nr_nodes + 1, CACHE_LINE);
	if (!t->nodes) {
		pcpu_free(t->leaves);
		t->leaves = NULL;
		errno = ENOMEM;
		return -1;
	}
	base = ((uintptr_t)t->nodes + CACHE_LINE - 1) & ~(uintptr_t)(CACHE_LINE - 1);
	t->levels = (uint64_t *)base;
	t->root = t->levels + (size_t)(nr_nodes - 1) * NODE_STRIDE;
	t->mask = batch - 1;
	t->initial = initial;
	t->nr_cpus = nr_cpus;
	t->nr_levels = nr_levels;
	t->inaccuracy = tree_bound(nr_cpus, nr_levels, batch);
	return 0;
}

/* kernel RFC: percpu_counter_tree_destroy() */
void pcpu_counter_tree_destroy(struct pcpu_counter_tree *t)
{
	if (!t || !t->leaves)
		return;
	pcpu_free(t->leaves);
	pcpu_mfree(t->nodes);
	t->leaves = NULL;
	t->nodes = NULL;
	t->levels = NULL;
	t->root = NULL;
}

/*
 * The slow half of the add: carry up the tree. Every step is exact on its own: the leaf's
 * old and new values come from one indivisible add, and each node's from one atomic
 * fetch-add, so the difference of their high parts is exactly what crossed that level.
 * Relaxed ordering suffices: no reader infers anything about other memory from a node;
 * approx and sum only promise their bound once the adds are over (and whatever ended the
 * adds, a join or a lock, orders them). Kernel RFC: percpu_counter_tree_add() slow path.
 */
void pcpu__counter_tree_carry(struct pcpu_counter_tree *t, unsigned cpu, uint64_t old, uint64_t nv)
{
	uint64_t mask = t->mask;
	uint64_t carry = (nv & ~mask) - (old & ~mask);
	uint64_t *level = t->levels;

	if (cpu == PCPU__TREE_THIS_CPU)
		cpu = pcpu_this_cpu();
	if (cpu >= t->nr_cpus)
		cpu = 0;
	for (uint32_t l = 1; l < t->nr_levels; l++) {
		uint64_t *node = level + (size_t)(cpu >> l) * NODE_STRIDE;

		mask = (mask << 1) | 1; /* batch << l, minus one */
		old = __atomic_fetch_add(node, carry, __ATOMIC_RELAXED);
		nv = old + carry;
		carry = (nv & ~mask) - (old & ~mask);
		if (!carry)
			return;
		level += (size_t)level_nodes(t->nr_cpus, l) * NODE_STRIDE;
	}
	__atomic_fetch_add(t->root, carry, __ATOMIC_RELAXED);
}

/* kernel RFC: percpu_counter_tree_add(); (name) keeps the header's macro away. */
void(pcpu_counter_tree_add)(struct pcpu_counter_tree *t, int64_t v)
{
	pcpu__counter_tree_add(t, v);
}

/* kernel RFC: percpu_counter_tree_approximate_sum() */
int64_t pcpu_counter_tree_approx(const struct pcpu_counter_tree *t)
{
	return (int64_t)((uint64_t)t->initial + __atomic_load_n(t->root, __ATOMIC_RELAXED));
}

/* kernel RFC: percpu_counter_tree_approximate_accuracy_range() */
uint64_t pcpu_counter_tree_inaccuracy(const struct pcpu_counter_tree *t)
{
	return t->inaccuracy;
}

/* kernel RFC: percpu_counter_tree_precise_sum() - the leaves alone, never reset. */
int64_t pcpu_counter_tree_sum(struct pcpu_counter_tree *t)
{
	return (int64_t)((uint64_t)t->initial + pcpu_sum64_one(t->leaves));
}

/* kernel RFC: percpu_counter_tree_precise_compare_value() */
int pcpu_counter_tree_compare(struct pcpu_counter_tree *t, int64_t v)
{
	int64_t a = pcpu_counter_tree_approx(t), s;
	uint64_t bound = t->inaccuracy;

	/*
	 * The sum lies in [a, a + bound]. Decide from a alone when v is outside, unless that
	 * range wraps past INT64_MAX, where the wrapped sum would order differently.
	 */
	if (a <= INT64_MAX - (int64_t)bound) {
		if (a > v)
			return 1;
		if ((uint64_t)v - (uint64_t)a > bound)
			return -1;
	}
	s = pcpu_counter_tree_sum(t);
	return s > v ? 1 : s < v ? -1 : 0;
}
