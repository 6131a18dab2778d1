/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * storm - the this-CPU operations under everything that can interrupt them: more threads
 * than CPUs updating the same per-CPU objects, one thread that keeps changing their CPU
 * affinity (narrowing every one to a single CPU, then widening again: forced migrations),
 * and one that keeps signalling them (the handlers update the same objects). Afterwards the
 * folded totals must be exact. Runs for PCPU_STRESS_SECONDS (default 3).
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

static uint64_t *c64;
static uint32_t *c32;
static uint16_t *c16;
static uint8_t *c8;
static struct pcpu_counter counter;
static int stop;

struct worker {
	pthread_t tid;
	uint64_t loops;    /* loop iterations: each adds 1, 3, 1, 1, 2 */
	uint64_t handled;  /* signal handler runs: each adds 1 to c64 and 5 to c32 */
};

static __thread uint64_t handled;

static void on_signal(int sig)
{
	(void)sig;
	pcpu_this_inc(c64);
	pcpu_this_add(c32, 5);
	handled++;
}

static void *work(void *arg)
{
	struct worker *w = arg;
	uint64_t n = 0;
	sigset_t mask;

	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		uint16_t old, seen;

		pcpu_this_inc(c64);
		pcpu_this_add(c32, 3);
		/* an increment by compare-and-swap: the read and the cmpxchg may run on
		 * different CPUs; a failed cmpxchg then returns the new copy's value */
		old = pcpu_this_read(c16);
		while ((seen = pcpu_this_cmpxchg(c16, old, (uint16_t)(old + 1))) != old)
			old = seen;
		(void)pcpu_this_add_return(c8, 1);
		pcpu_counter_add(&counter, 2);
		n++;
	}
	/*
	 * A signal sent just before the signaller saw stop may still be pending: block it
	 * before reading the count, or its handler could add to the copies after the read.
	 * A blocked signal is dropped when the thread exits.
	 */
	sigemptyset(&mask);
	sigaddset(&mask, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	w->loops = n;
	w->handled = handled;
	return NULL;
}

struct storm {
	struct worker *w;
	int nr;
	int ncpus;
};

/* Narrow each worker to one CPU (a different one each round), then widen to all. */
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

static uint64_t sum_copies_u64(void)
{
	uint64_t s = 0;
	unsigned c;

	pcpu_for_each_cpu(c) s += *pcpu_ptr(c64, c);
	return s;
}

START_TEST(test_storm)
{
	const char *env = getenv("PCPU_STRESS_SECONDS");
	int seconds = env ? atoi(env) : 3;
	int ncpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
	struct worker w[MAX_WORKERS] = {{0}};
	struct storm s = {.w = w, .ncpus = ncpus};
	struct sigaction sa = {.sa_handler = on_signal};
	pthread_t mig, sig;
	uint64_t loops = 0, handled_total = 0, s32 = 0, s16 = 0, s8 = 0;
	unsigned c;
	int want = test_expected_mode();

	if (want)
		ck_assert_int_eq(pcpu_cpu_mode(), want);
	if (seconds < 1)
		seconds = 1;
	s.nr = 2 * ncpus + 1;
	if (s.nr > MAX_WORKERS)
		s.nr = MAX_WORKERS;
	c64 = pcpu_alloc_type(uint64_t);
	c32 = pcpu_alloc_type(uint32_t);
	c16 = pcpu_alloc_type(uint16_t);
	c8 = pcpu_alloc_type(uint8_t);
	ck_assert(c64 && c32 && c16 && c8);
	ck_assert_int_eq(pcpu_counter_init(&counter, 0), 0);
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);

	for (int i = 0; i < s.nr; i++)
		ck_assert_int_eq(pthread_create(&w[i].tid, NULL, work, &w[i]), 0);
	ck_assert_int_eq(pthread_create(&mig, NULL, migrator, &s), 0);
	ck_assert_int_eq(pthread_create(&sig, NULL, signaller, &s), 0);
	sleep((unsigned)seconds);
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	pthread_join(sig, NULL);
	pthread_join(mig, NULL);
	for (int i = 0; i < s.nr; i++) {
		pthread_join(w[i].tid, NULL);
		loops += w[i].loops;
		handled_total += w[i].handled;
	}
	pcpu_for_each_cpu(c) {
		s32 += *pcpu_ptr(c32, c);
		s16 += *pcpu_ptr(c16, c);
		s8 += *pcpu_ptr(c8, c);
	}
	fprintf(stderr, "storm: mode %d, %d workers on %d CPUs, %llu loops, %llu handlers\n",
		pcpu_cpu_mode(), s.nr, ncpus, (unsigned long long)loops,
		(unsigned long long)handled_total);
	ck_assert_uint_gt(loops, 0);
	ck_assert_uint_eq(sum_copies_u64(), loops + handled_total);
	ck_assert_uint_eq((uint32_t)s32, (uint32_t)(3 * loops + 5 * handled_total));
	ck_assert_uint_eq((uint16_t)s16, (uint16_t)loops);
	ck_assert_uint_eq((uint8_t)s8, (uint8_t)loops);
	ck_assert_int_eq(pcpu_counter_sum(&counter), (int64_t)(2 * loops));
	pcpu_counter_destroy(&counter);
}
END_TEST

int main(void)
{
	const char *env = getenv("PCPU_STRESS_SECONDS");
	Suite *s = suite_create("storm");
	TCase *tc = tcase_create("storm");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, (env ? atoi(env) : 3) + 120);
	tcase_add_test(tc, test_storm);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
