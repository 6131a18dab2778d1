/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * tree_storm - struct pcpu_counter_tree under the storm of storm.c: more threads than CPUs
 * adding, one thread forcing migrations by changing their affinity, one signalling them
 * (the handlers add too: the add is async-signal-safe), and a reader that checks, while
 * all this runs, that the precise sum and the approximate value never go backwards (every
 * add is positive) and approx never passes the sum. Afterwards the
 * precise sum is exact, |approx - sum| is within the bound, and compare is exact at the
 * sum +-1 and at both ends of the bound. Runs for PCPU_STRESS_SECONDS (default 3) in every
 * CPU mode (tests/stress/meson.build) and on fake topologies.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include <pcpu.h>

#include "../api/mode_check.h"
#include "storm_util.h"

static struct pcpu_counter_tree tree, tree_big; /* default batch; batch 1 (carries a lot) */
static uint64_t reads;

/* each signal handler run adds 5 to tree, 1 to tree_big */
static void on_signal(void)
{
	pcpu_counter_tree_add(&tree, 5);
	pcpu_counter_tree_add(&tree_big, 1);
}

/* each loop iteration adds 1 and 3 to tree, 2 to tree_big */
static void step(void)
{
	pcpu_counter_tree_add(&tree, 1);
	pcpu_counter_tree_add(&tree_big, 2);
	(pcpu_counter_tree_add)(&tree, 3); /* the exported function too */
}

/*
 * While the adds run: every add is positive, so the leaves and the root only grow; the
 * precise sum and approx never go backwards, and approx never exceeds a sum read after
 * it (the root only holds what the leaves already hold). compare() is only promised
 * exact with no add in flight (a carry on its way up is in neither place), so it is run
 * here for its safety, not checked.
 */
static void *reader(void *arg)
{
	struct storm *s = arg;
	int64_t last_sum = 0, last_approx = 0;

	while (!storm_stopped(s)) {
		int64_t a = pcpu_counter_tree_approx(&tree);
		int64_t s1 = pcpu_counter_tree_sum(&tree), s2;
		int c = pcpu_counter_tree_compare(&tree, s1);

		s2 = pcpu_counter_tree_sum(&tree);
		ck_assert_int_ge(a, last_approx);
		ck_assert_int_le(a, s1);
		ck_assert_int_ge(s1, last_sum);
		ck_assert_int_ge(s2, s1);
		ck_assert(c >= -1 && c <= 1);
		last_approx = a;
		last_sum = s2;
		reads++;
		usleep(200);
	}
	return NULL;
}

static int cmp(int64_t a, int64_t b)
{
	return a > b ? 1 : a < b ? -1 : 0;
}

static void check_final(struct pcpu_counter_tree *t, int64_t want)
{
	int64_t s = pcpu_counter_tree_sum(t), a = pcpu_counter_tree_approx(t);
	int64_t b = (int64_t)pcpu_counter_tree_inaccuracy(t);
	int64_t probe[] = {s - 1, s, s + 1, a - 1, a, a + b, a + b + 1};

	ck_assert_int_eq(s, want);
	ck_assert_int_ge(s, a);
	ck_assert_int_le(s - a, b);
	for (size_t i = 0; i < sizeof(probe) / sizeof(probe[0]); i++)
		ck_assert_int_eq(pcpu_counter_tree_compare(t, probe[i]), cmp(want, probe[i]));
}

START_TEST(test_tree_storm)
{
	struct storm s = {.step = step, .on_signal = on_signal, .extra = reader};

	test_check_mode();
	ck_assert_int_eq(pcpu_counter_tree_init(&tree, 0, 0), 0);
	ck_assert_int_eq(pcpu_counter_tree_init(&tree_big, 0, 1), 0);

	storm_run(&s);
	fprintf(stderr, "tree_storm: mode %d, %u CPUs, %d workers, %llu loops, %llu handlers, "
		"%llu reads\n", pcpu_cpu_mode(), pcpu_nr_cpus(), s.nr, (unsigned long long)s.loops,
		(unsigned long long)s.handled, (unsigned long long)reads);
	ck_assert_uint_gt(s.loops, 0);
	check_final(&tree, (int64_t)(4 * s.loops + 5 * s.handled));
	check_final(&tree_big, (int64_t)(2 * s.loops + s.handled));
	pcpu_counter_tree_destroy(&tree);
	pcpu_counter_tree_destroy(&tree_big);
}
END_TEST

int main(void)
{
	return storm_main("tree_storm", test_tree_storm, 120);
}
