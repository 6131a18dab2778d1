/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * storm_util.h - what the stress tests share: the run length (PCPU_STRESS_SECONDS), the
 * Check main(), and the storm of storm.c and tree_storm.c: more threads than CPUs running
 * one step in a loop, one thread forcing migrations by changing their CPU affinity, one
 * signalling them with SIGUSR1 (the handler runs the test's on_signal). Header-only: each
 * stress test is one program.
 */
#ifndef PCPU_STORM_UTIL_H
#define PCPU_STORM_UTIL_H

#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "../check_run.h"

#define STORM_MAX_WORKERS 64

/* PCPU_STRESS_SECONDS, default 3, at least 1. */
static inline int storm_seconds(void)
{
	const char *env = getenv("PCPU_STRESS_SECONDS");
	int seconds = env ? atoi(env) : 3;

	return seconds < 1 ? 1 : seconds;
}

/* One suite with one test, given the run length plus slack seconds to finish. */
static inline int storm_main(const char *name, const TTest *test, int slack)
{
	Suite *s = suite_create(name);
	TCase *tc = tcase_create(name);

	tcase_set_timeout(tc, storm_seconds() + slack);
	tcase_add_test(tc, test);
	suite_add_tcase(s, tc);
	return pcpu_check_run(s, CK_FORK_GETENV);
}

struct storm_worker {
	pthread_t tid;
	uint64_t loops;   /* steps run */
	uint64_t handled; /* signal handler runs on this thread */
	struct storm *s;
};

struct storm {
	void (*step)(void);      /* one worker loop iteration */
	void (*on_signal)(void); /* the SIGUSR1 handler's work: async-signal-safe */
	/* optional extra thread (a checker), passed the storm, run until storm_stopped() */
	void *(*extra)(void *);
	struct storm_worker w[STORM_MAX_WORKERS];
	int nr;
	int ncpus;
	int stop;
	uint64_t loops;   /* totals over all workers, after storm_run() */
	uint64_t handled;
};

/* The storm running, for the signal handler (one storm at a time). */
static struct storm *storm_cur __attribute__((unused));
static __thread uint64_t storm_handled __attribute__((unused));

static inline int storm_stopped(const struct storm *s)
{
	return __atomic_load_n(&s->stop, __ATOMIC_RELAXED);
}

static inline void storm_on_signal(int sig)
{
	(void)sig;
	storm_cur->on_signal();
	storm_handled++;
}

static inline void *storm_work(void *arg)
{
	struct storm_worker *w = arg;
	uint64_t n = 0;
	sigset_t mask;

	while (!storm_stopped(w->s)) {
		w->s->step();
		n++;
	}
	/*
	 * A signal sent just before the signaller saw stop may still be pending: block it
	 * before reading the count, or its handler could add after the read. A blocked
	 * signal is dropped when the thread exits.
	 */
	sigemptyset(&mask);
	sigaddset(&mask, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	w->loops = n;
	w->handled = storm_handled;
	return NULL;
}

/* Narrow each worker to one CPU (a different one each round), then widen to all. */
static inline void *storm_migrator(void *arg)
{
	struct storm *s = arg;
	unsigned round = 0;

	while (!storm_stopped(s)) {
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

static inline void *storm_signaller(void *arg)
{
	struct storm *s = arg;
	unsigned k = 0;

	while (!storm_stopped(s)) {
		pthread_kill(s->w[k++ % (unsigned)s->nr].tid, SIGUSR1);
		if (k % 64 == 0)
			usleep(100);
	}
	return NULL;
}

/*
 * Run the storm for storm_seconds() with 2 * online CPUs + 1 workers (at most
 * STORM_MAX_WORKERS), then stop and join everything and fill in s->loops and s->handled.
 * The caller sets step, on_signal and optionally extra.
 */
static inline void storm_run(struct storm *s)
{
	struct sigaction sa = {.sa_handler = storm_on_signal};
	pthread_t mig, sig, extra;

	s->ncpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
	s->nr = 2 * s->ncpus + 1;
	if (s->nr > STORM_MAX_WORKERS)
		s->nr = STORM_MAX_WORKERS;
	s->stop = 0;
	storm_cur = s;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);

	for (int i = 0; i < s->nr; i++) {
		s->w[i] = (struct storm_worker){.s = s};
		ck_assert_int_eq(pthread_create(&s->w[i].tid, NULL, storm_work, &s->w[i]), 0);
	}
	ck_assert_int_eq(pthread_create(&mig, NULL, storm_migrator, s), 0);
	ck_assert_int_eq(pthread_create(&sig, NULL, storm_signaller, s), 0);
	if (s->extra)
		ck_assert_int_eq(pthread_create(&extra, NULL, s->extra, s), 0);
	sleep((unsigned)storm_seconds());
	__atomic_store_n(&s->stop, 1, __ATOMIC_RELAXED);
	if (s->extra)
		pthread_join(extra, NULL);
	pthread_join(sig, NULL);
	pthread_join(mig, NULL);
	s->loops = 0;
	s->handled = 0;
	for (int i = 0; i < s->nr; i++) {
		pthread_join(s->w[i].tid, NULL);
		s->loops += s->w[i].loops;
		s->handled += s->w[i].handled;
	}
}

#endif
