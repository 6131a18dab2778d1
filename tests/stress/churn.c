/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * churn - threads created and destroyed continuously while they allocate, free and update.
 *
 * A spawner keeps NR_SLOTS short-lived threads alive: each one allocates a few objects,
 * updates shared counters and its own objects with every this-CPU operation, frees what it
 * allocated and exits after a random number of rounds; the spawner joins it and starts a
 * new one. Every thread's first operation is its first on that thread, so in own-
 * registration mode (GLIBC_TUNABLES=glibc.pthread.rseq=0) each registers rseq from the slow
 * path and unregisters at exit, thousands of times a second, while the others keep going;
 * some threads also run an operation from a thread-specific-data destructor, after the
 * library's own exit hook may have run. Afterwards the folded totals of the shared counters
 * must be exact and every private object's copies must have summed to what its thread
 * added. Runs for PCPU_STRESS_SECONDS (default 3).
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <pcpu.h>

#include "../api/mode_check.h"
#include "storm_util.h"

#define NR_SLOTS 8
#define NR_PRIVATE 4

static uint64_t *shared64;            /* +1 per round, +1 per destructor run */
static uint32_t *shared32;            /* +3 per round */
static struct pcpu_counter counter;   /* +5 per round */
static pthread_key_t late_key;
static uint64_t late_runs;            /* destructor runs (atomic) */
static uint64_t errors;               /* private-object mismatches (atomic) */

struct job {
	pthread_t tid;
	unsigned seed;
	uint64_t rounds;                  /* out: rounds done */
	int busy;
};

static unsigned rnd(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

/* A this-CPU operation after the library's own thread-exit hook may have run. */
static void late_op(void *arg)
{
	(void)arg;
	pcpu_this_inc(shared64);
	__atomic_add_fetch(&late_runs, 1, __ATOMIC_RELAXED);
}

static uint64_t fold64(uint64_t *h)
{
	uint64_t s = 0;
	unsigned c;

	pcpu_for_each_cpu(c)
		s += *pcpu_ptr(h, c);
	return s;
}

static void *job_main(void *arg)
{
	struct job *j = arg;
	unsigned n = 1 + rnd(&j->seed) % 64;
	uint64_t *own[NR_PRIVATE];
	uint64_t want[NR_PRIVATE] = {0};

	if (rnd(&j->seed) % 4 == 0)
		pthread_setspecific(late_key, (void *)1);
	for (int k = 0; k < NR_PRIVATE; k++) {
		own[k] = pcpu_alloc(8 << (k % 3), 0, 0);
		if (!own[k]) {
			__atomic_add_fetch(&errors, 1, __ATOMIC_RELAXED);
			return NULL;
		}
	}
	for (unsigned r = 0; r < n; r++) {
		int k = (int)(r % NR_PRIVATE);
		uint64_t old, seen;

		pcpu_this_inc(shared64);
		pcpu_this_add(shared32, 3);
		pcpu_counter_add(&counter, 5);
		/* Private objects: only this thread writes them, but possibly on any CPU. */
		pcpu_this_add(own[k], r + 1);
		want[k] += r + 1;
		old = pcpu_this_read(own[k]);
		while ((seen = pcpu_this_cmpxchg(own[k], old, old + 2)) != old)
			old = seen;
		want[k] += 2;
		/* Move a copy's value to whichever copy this is now: the fold is unchanged. */
		old = pcpu_this_xchg(own[k], 0);
		pcpu_this_add(own[k], old);
		if (r % 8 == 7) {
			/* A short-lived allocation in between. */
			void *t = pcpu_alloc(1 + rnd(&j->seed) % 512, 0, 0);

			if (!t)
				__atomic_add_fetch(&errors, 1, __ATOMIC_RELAXED);
			pcpu_free(t);
		}
	}
	for (int k = 0; k < NR_PRIVATE; k++) {
		uint64_t got = fold64(own[k]);

		if (got != want[k])
			__atomic_add_fetch(&errors, 1, __ATOMIC_RELAXED);
		pcpu_free(own[k]);
	}
	j->rounds = n;
	return NULL;
}

START_TEST(test_churn)
{
	int seconds = storm_seconds();
	struct job jobs[NR_SLOTS];
	uint64_t rounds = 0, threads = 0;
	struct timespec t0, t;
	int want = test_expected_mode();

	if (want)
		ck_assert_int_eq(pcpu_cpu_mode(), want);
	shared64 = pcpu_alloc_type(uint64_t);
	shared32 = pcpu_alloc_type(uint32_t);
	ck_assert(shared64 && shared32);
	ck_assert_int_eq(pcpu_counter_init(&counter, 0), 0);
	ck_assert_int_eq(pthread_key_create(&late_key, late_op), 0);
	memset(jobs, 0, sizeof(jobs));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec >= seconds)
			break;
		for (int i = 0; i < NR_SLOTS; i++) {
			if (jobs[i].busy) {
				ck_assert_int_eq(pthread_join(jobs[i].tid, NULL), 0);
				rounds += jobs[i].rounds;
				jobs[i].busy = 0;
			}
			jobs[i].seed = (unsigned)(threads * 2654435761u + 1);
			jobs[i].rounds = 0;
			ck_assert_int_eq(pthread_create(&jobs[i].tid, NULL, job_main, &jobs[i]), 0);
			jobs[i].busy = 1;
			threads++;
		}
	}
	for (int i = 0; i < NR_SLOTS; i++) {
		if (jobs[i].busy) {
			ck_assert_int_eq(pthread_join(jobs[i].tid, NULL), 0);
			rounds += jobs[i].rounds;
		}
	}
	fprintf(stderr, "churn: mode %d, %llu threads, %llu rounds, %llu late operations\n",
		(int)pcpu_cpu_mode(), (unsigned long long)threads, (unsigned long long)rounds,
		(unsigned long long)late_runs);
	ck_assert_uint_gt(threads, 0);
	ck_assert_uint_eq(__atomic_load_n(&errors, __ATOMIC_RELAXED), 0);
	ck_assert_uint_eq(fold64(shared64), rounds + late_runs);
	{
		uint32_t s = 0;
		unsigned c;

		pcpu_for_each_cpu(c)
			s += *pcpu_ptr(shared32, c);
		ck_assert_uint_eq(s, (uint32_t)(3 * rounds));
	}
	ck_assert_int_eq(pcpu_counter_sum(&counter), (int64_t)(5 * rounds));
	ck_assert_int_eq(pcpu_verify(), 0);
	pcpu_counter_destroy(&counter);
	pcpu_free(shared64);
	pcpu_free(shared32);
	pthread_key_delete(late_key);
}
END_TEST

int main(void)
{
	return storm_main("churn", test_churn, 120);
}
