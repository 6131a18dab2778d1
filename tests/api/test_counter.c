/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * test_counter - struct pcpu_counter against the kernel's percpu_counter semantics: batch
 * folding, the error bound of read(), compare(), set(), sum() exact after concurrent adds.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>

#include <pcpu.h>

#include "mode_check.h"
#include "../check_run.h"

START_TEST(test_mode)
{
	test_check_mode();
}
END_TEST

START_TEST(test_init_destroy)
{
	struct pcpu_counter c;
	unsigned n = pcpu_nr_cpus();

	ck_assert_int_eq(pcpu_counter_init(NULL, 0), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(pcpu_counter_init(&c, -17), 0);
	ck_assert_int_eq(pcpu_counter_read(&c), -17);
	ck_assert_int_eq(pcpu_counter_sum(&c), -17);
	ck_assert_int_eq(pcpu_counter_batch(), n * 2 > 32 ? (int32_t)(n * 2) : 32);
	pcpu_counter_destroy(&c);
	pcpu_counter_destroy(&c); /* the handle is cleared: a second destroy is harmless */
	pcpu_counter_destroy(NULL);
	ck_assert_int_eq(pcpu_counter_init(&c, 1), 0); /* may be initialised again */
	pcpu_counter_destroy(&c);
}
END_TEST

/* Pinned, so one CPU's delta: it absorbs adds until |delta + v| reaches the batch. */
START_TEST(test_batch_folding)
{
	struct pcpu_counter c;

	test_pin_here();
	ck_assert_int_eq(pcpu_counter_init(&c, 0), 0);
	for (int i = 0; i < 3; i++)
		pcpu_counter_add_batch(&c, 1, 4);
	ck_assert_int_eq(pcpu_counter_read(&c), 0);
	ck_assert_int_eq(pcpu_counter_sum(&c), 3);
	ck_assert_int_eq(*pcpu_this_ptr(c.counters), 3);
	pcpu_counter_add_batch(&c, 1, 4); /* |3 + 1| >= 4: folded */
	ck_assert_int_eq(pcpu_counter_read(&c), 4);
	ck_assert_int_eq(*pcpu_this_ptr(c.counters), 0);
	pcpu_counter_add_batch(&c, -3, 4); /* stays local */
	ck_assert_int_eq(pcpu_counter_read(&c), 4);
	pcpu_counter_add_batch(&c, 5, 4); /* -3 + 5 = 2: still within (-4, 4), stays local */
	ck_assert_int_eq(pcpu_counter_read(&c), 4);
	ck_assert_int_eq(*pcpu_this_ptr(c.counters), 2);
	pcpu_counter_add_batch(&c, -6, 4); /* 2 - 6 = -4: folded */
	ck_assert_int_eq(pcpu_counter_read(&c), 0);
	ck_assert_int_eq(pcpu_counter_sum(&c), 0);
	/* larger than any batch, and larger than 32 bits */
	pcpu_counter_add(&c, (int64_t)1 << 40);
	ck_assert_int_eq(pcpu_counter_read(&c), (int64_t)1 << 40);
	pcpu_counter_add(&c, -(INT64_C(3) << 40));
	ck_assert_int_eq(pcpu_counter_sum(&c), -(INT64_C(2) << 40));
	/* batch <= 0 folds every add */
	pcpu_counter_add_batch(&c, 1, 0);
	ck_assert_int_eq(pcpu_counter_read(&c), (-(INT64_C(2) << 40)) + 1);
	/* default batch: batch - 1 adds stay local, the next one folds */
	pcpu_counter_set(&c, 0);
	for (int i = 0; i < pcpu_counter_batch() - 1; i++)
		pcpu_counter_add(&c, 1);
	ck_assert_int_eq(pcpu_counter_read(&c), 0);
	(pcpu_counter_add)(&c, 1); /* the exported function, not the inline */
	ck_assert_int_eq(pcpu_counter_read(&c), pcpu_counter_batch());
	(pcpu_counter_add_batch)(&c, -1, 2);
	ck_assert_int_eq(pcpu_counter_sum(&c), pcpu_counter_batch() - 1);
	pcpu_counter_destroy(&c);
}
END_TEST

START_TEST(test_set_compare)
{
	struct pcpu_counter c;
	int64_t slack = (int64_t)pcpu_counter_batch() * pcpu_nr_cpus();
	unsigned cpu;

	ck_assert_int_eq(pcpu_counter_init(&c, 0), 0);
	/* deltas on every copy, as if many CPUs had added */
	pcpu_for_each_cpu(cpu) *pcpu_ptr(c.counters, cpu) = 1;
	ck_assert_int_eq(pcpu_counter_sum(&c), pcpu_nr_cpus());
	ck_assert_int_eq(pcpu_counter_compare(&c, pcpu_nr_cpus()), 0);
	ck_assert_int_eq(pcpu_counter_compare(&c, pcpu_nr_cpus() - 1), 1);
	ck_assert_int_eq(pcpu_counter_compare(&c, pcpu_nr_cpus() + 1), -1);
	ck_assert_int_eq(pcpu_counter_compare(&c, -10 * slack), 1);
	ck_assert_int_eq(pcpu_counter_compare(&c, 10 * slack), -1);
	ck_assert_int_eq(pcpu_counter_compare(&c, INT64_MIN), 1);
	ck_assert_int_eq(pcpu_counter_compare(&c, INT64_MAX), -1);
	pcpu_counter_set(&c, 100);
	ck_assert_int_eq(pcpu_counter_read(&c), 100);
	ck_assert_int_eq(pcpu_counter_sum(&c), 100);
	pcpu_for_each_cpu(cpu) ck_assert_int_eq(*pcpu_ptr(c.counters, cpu), 0);
	/* read() alone decides far from rhs, even when the deltas disagree within the bound */
	pcpu_for_each_cpu(cpu) *pcpu_ptr(c.counters, cpu) = -(pcpu_counter_batch() - 1);
	ck_assert_int_eq(pcpu_counter_compare(&c, 100 - slack - 1), 1);
	ck_assert_int_eq(pcpu_counter_compare(&c, 100), -1); /* the sum decides */
	pcpu_counter_destroy(&c);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */

static struct pcpu_counter shared;
static int64_t error_seen;  /* largest |sum() - read()| seen while the adders ran */
static int32_t delta_seen;  /* largest |delta| of one CPU seen meanwhile */

/*
 * The error bound of read(), checked while other threads add: hold the counter's lock, as
 * sum() does, so that no fold changes the count, and add up the deltas. Each delta stays
 * within (-batch, batch) at every moment (an add that would reach the batch folds
 * instead), so however the adds interleave with the loads, the deltas read add up to less
 * than batch * nr_cpus. read() followed by sum() would not do: folds of large adds between
 * the two calls change the count by any amount.
 */
static void measure_error(void)
{
	int64_t d = 0;
	unsigned cpu;

	pthread_mutex_lock(&shared.lock);
	pcpu_for_each_cpu(cpu) {
		int32_t v = __atomic_load_n(pcpu_ptr(shared.counters, cpu), __ATOMIC_RELAXED);

		if (abs(v) > __atomic_load_n(&delta_seen, __ATOMIC_RELAXED))
			__atomic_store_n(&delta_seen, abs(v), __ATOMIC_RELAXED);
		d += v;
	}
	pthread_mutex_unlock(&shared.lock);
	d = llabs(d);
	if (d > __atomic_load_n(&error_seen, __ATOMIC_RELAXED))
		__atomic_store_n(&error_seen, d, __ATOMIC_RELAXED);
}

struct adder {
	pthread_t tid;
	unsigned seed;
	int64_t added;
};

static void *adder(void *arg)
{
	struct adder *a = arg;

	for (int i = 0; i < 50000; i++) {
		int64_t v;
		unsigned r = rand_r(&a->seed);

		/* mostly small adds of both signs, sometimes beyond the batch */
		v = (r % 16 == 0) ? (int64_t)(r % 100000) - 50000 : (int64_t)(r % 7) - 3;
		if (r % 3 == 0)
			pcpu_counter_add_batch(&shared, v, 8);
		else
			pcpu_counter_add(&shared, v);
		a->added += v;
		if ((i & 1023) == 0)
			measure_error();
	}
	return NULL;
}

START_TEST(test_concurrent_sum)
{
	enum { NR = 6 };
	struct adder a[NR];
	int64_t total = 12345;
	unsigned cpu;
	int64_t bound = (int64_t)pcpu_counter_batch() * pcpu_nr_cpus();

	ck_assert_int_eq(pcpu_counter_init(&shared, 12345), 0);
	error_seen = 0;
	delta_seen = 0;
	for (int i = 0; i < NR; i++) {
		a[i].seed = 1000 + (unsigned)i;
		a[i].added = 0;
		ck_assert_int_eq(pthread_create(&a[i].tid, NULL, adder, &a[i]), 0);
	}
	for (int i = 0; i < NR; i++) {
		pthread_join(a[i].tid, NULL);
		total += a[i].added;
	}
	ck_assert_int_eq(pcpu_counter_sum(&shared), total);
	ck_assert_int_eq(pcpu_counter_compare(&shared, total), 0);
	/* with no writer left the error of read() is the sum of the deltas: within bound */
	ck_assert_int_le(llabs(pcpu_counter_read(&shared) - total), bound);
	pcpu_for_each_cpu(cpu) ck_assert_int_lt(abs(*pcpu_ptr(shared.counters, cpu)),
						pcpu_counter_batch());
	/* and it held while the adders ran, every delta within the batch */
	ck_assert_int_lt(delta_seen, pcpu_counter_batch());
	ck_assert_int_lt(error_seen, bound);
	pcpu_counter_destroy(&shared);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("counter");
	TCase *tc = tcase_create("counter");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_mode);
	tcase_add_test(tc, test_init_destroy);
	tcase_add_test(tc, test_batch_folding);
	tcase_add_test(tc, test_set_compare);
	tcase_add_test(tc, test_concurrent_sum);
	suite_add_tcase(s, tc);
	return pcpu_check_run(s, CK_FORK_GETENV);
}
