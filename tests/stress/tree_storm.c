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
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <pcpu.h>

#include "../api/mode_check.h"

#define MAX_WORKERS 64

static struct pcpu_counter_tree tree, tree_big; /* default batch; batch 1 (carries a lot) */
static int stop;

struct worker {
	pthread_t tid;
	uint64_t loops;   /* each adds 1 and 3 to tree, 2 to tree_big */
	uint64_t handled; /* each adds 5 to tree, 1 to tree_big */
};

static __thread uint64_t handled;

static void on_signal(int sig)
{
	(void)sig;
	pcpu_counter_tree_add(&tree, 5);
	pcpu_counter_tree_add(&tree_big, 1);
	handled++;
}

static void *work(void *arg)
{
	struct worker *w = arg;
	uint64_t n = 0;

	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		pcpu_counter_tree_add(&tree, 1);
		pcpu_counter_tree_add(&tree_big, 2);
		(pcpu_counter_tree_add)(&tree, 3); /* the exported function too */
		n++;
	}
	w->loops = n;
	w->handled = handled;
	return NULL;
}

struct storm {
	struct worker *w;
	int nr;
	int ncpus;
	uint64_t reads;
};

static void *migrator(void *arg)
{
	struct storm *s = arg;
	unsigned round = 0;

	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		cpu_set_t set;

		for (int i = 0; i < s->nr; i++) {
			CPU_ZERO(&set);
			CPU_SET((round + (unsigned)i) % (unsigned)s->ncpus, &set);
			pthread_setaffinity_np(s->w[i].tid, sizeof(set), &set);
		}
		usleep(500);
		CPU_ZERO(&set);
		for (int c = 0; c < s->ncpus; c++)
			CPU_SET(c, &set);
		for (int i = 0; i < s->nr; i++)
			pthread_setaffinity_np(s->w[i].tid, sizeof(set), &set);
		usleep(500);
		round++;
	}
	return NULL;
}

static void *signaller(void *arg)
{
	struct storm *s = arg;
	unsigned k = 0;

	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		pthread_kill(s->w[k++ % (unsigned)s->nr].tid, SIGUSR1);
		if (k % 64 == 0)
			usleep(100);
	}
	return NULL;
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

	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
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
		s->reads++;
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
	const char *env = getenv("PCPU_STRESS_SECONDS");
	int seconds = env ? atoi(env) : 3;
	int ncpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
	struct worker w[MAX_WORKERS] = {{0}};
	struct storm s = {.w = w, .ncpus = ncpus};
	struct sigaction sa = {.sa_handler = on_signal};
	pthread_t mig, sig, rd;
	uint64_t loops = 0, handled_total = 0;

	test_check_mode();
	if (seconds < 1)
		seconds = 1;
	s.nr = 2 * ncpus + 1;
	if (s.nr > MAX_WORKERS)
		s.nr = MAX_WORKERS;
	ck_assert_int_eq(pcpu_counter_tree_init(&tree, 0, 0), 0);
	ck_assert_int_eq(pcpu_counter_tree_init(&tree_big, 0, 1), 0);
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);

	for (int i = 0; i < s.nr; i++)
		ck_assert_int_eq(pthread_create(&w[i].tid, NULL, work, &w[i]), 0);
	ck_assert_int_eq(pthread_create(&mig, NULL, migrator, &s), 0);
	ck_assert_int_eq(pthread_create(&sig, NULL, signaller, &s), 0);
	ck_assert_int_eq(pthread_create(&rd, NULL, reader, &s), 0);
	sleep((unsigned)seconds);
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	pthread_join(rd, NULL);
	pthread_join(sig, NULL);
	pthread_join(mig, NULL);
	for (int i = 0; i < s.nr; i++) {
		pthread_join(w[i].tid, NULL);
		loops += w[i].loops;
		handled_total += w[i].handled;
	}
	fprintf(stderr, "tree_storm: mode %d, %u CPUs, %d workers, %llu loops, %llu handlers, "
		"%llu reads\n", pcpu_cpu_mode(), pcpu_nr_cpus(), s.nr, (unsigned long long)loops,
		(unsigned long long)handled_total, (unsigned long long)s.reads);
	ck_assert_uint_gt(loops, 0);
	check_final(&tree, (int64_t)(4 * loops + 5 * handled_total));
	check_final(&tree_big, (int64_t)(2 * loops + handled_total));
	pcpu_counter_tree_destroy(&tree);
	pcpu_counter_tree_destroy(&tree_big);
}
END_TEST

int main(void)
{
	const char *env = getenv("PCPU_STRESS_SECONDS");
	Suite *s = suite_create("tree_storm");
	TCase *tc = tcase_create("tree_storm");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, (env ? atoi(env) : 3) + 120);
	tcase_add_test(tc, test_tree_storm);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
