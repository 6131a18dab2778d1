/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * PCPU_NOWAIT (the kernel's atomic allocations): never maps memory, never takes
 * pcpu_alloc_mutex, never waits for the balancer; succeeds only from populated pages and
 * fails with ENOMEM otherwise; a later call succeeds once the balancer has caught up.
 * Exercised from many threads at once, with the allocator's mutexes held by the test to
 * prove no NOWAIT call needs them.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <pcpu.h>

#include "lib/alloc.h"
#include "lib/balance.h"
#include "test_util.h"
#include "../check_run.h"

#define NR_THREADS 8

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

static int count_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "re");
	int n = 0, c;

	ck_assert_ptr_nonnull(f);
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

static pthread_barrier_t start_line;

struct worker {
	pthread_t t;
	bool wait_start;
	unsigned seed;
	long iters;
	long ok, fail, bad_errno, not_zero;
};

static unsigned rnd(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

/* NOWAIT allocations and frees; every copy checked zero, then patterned. */
static void *worker_main(void *arg)
{
	struct worker *w = arg;
	enum { LIVE = 256 };
	void *live[LIVE] = {0};
	size_t sz[LIVE] = {0};

	if (w->wait_start)
		pthread_barrier_wait(&start_line);

	for (long i = 0; i < w->iters; i++) {
		unsigned slot = rnd(&w->seed) % LIVE;

		if (live[slot]) {
			pcpu_free(live[slot]);
			live[slot] = NULL;
			continue;
		}
		sz[slot] = 4 + rnd(&w->seed) % 61;
		live[slot] = pcpu_alloc(sz[slot], 0, PCPU_NOWAIT);
		if (!live[slot]) {
			w->fail++;
			w->bad_errno += errno != ENOMEM;
			continue;
		}
		w->ok++;
		if (!all_zero(live[slot], sz[slot]))
			w->not_zero++;
		*pcpu_ptr((unsigned char *)live[slot], rnd(&w->seed) % pcpu_nr_cpus()) = 0x5a;
	}
	for (unsigned i = 0; i < LIVE; i++)
		pcpu_free(live[i]);
	return NULL;
}

static void start_workers(long iters, struct worker *w, bool wait_start)
{
	for (int i = 0; i < NR_THREADS; i++) {
		w[i] = (struct worker){.seed = 1000u + (unsigned)i, .iters = iters,
				       .wait_start = wait_start};
		ck_assert_int_eq(pthread_create(&w[i].t, NULL, worker_main, &w[i]), 0);
	}
}

static void join_workers(struct worker *w)
{
	for (int i = 0; i < NR_THREADS; i++)
		ck_assert_int_eq(pthread_join(w[i].t, NULL), 0);
}

/* Many threads, NOWAIT only: failures are ENOMEM, successes are zero, nothing is lost. */
START_TEST(test_nowait_storm)
{
	struct worker w[NR_THREADS];
	long ok = 0, fail = 0;

	start_workers(200000, w, false);
	join_workers(w);
	for (int i = 0; i < NR_THREADS; i++) {
		ck_assert_int_eq(w[i].bad_errno, 0);
		ck_assert_int_eq(w[i].not_zero, 0);
		ok += w[i].ok;
		fail += w[i].fail;
	}
	printf("nowait storm: %ld allocations, %ld ENOMEM\n", ok, fail);
	ck_assert_int_gt(ok, 0);
	ck_assert_uint_eq(stats_now().nr_cur_alloc, 0);
	ck_assert_int_eq(pcpu_verify(), 0);
}
END_TEST

/*
 * With pcpu_alloc_mutex, pcpu_drain_mutex and pcpu_balance_mutex all held here, NOWAIT
 * calls from many threads still complete: they need none of them, and they wait for no
 * balancer (which is stuck behind the same locks). They map nothing either.
 */
START_TEST(test_nowait_needs_no_mutex)
{
	struct worker w[NR_THREADS];
	uint64_t populated, chunks;
	void *warm;
	int maps;

	/* Start the balancer first (its stack is a mapping of its own). */
	warm = pcpu_alloc(8, 0, 0);
	ck_assert_ptr_nonnull(warm);
	pcpu_free(warm);
	pcpu_balance_start();
	sleep_ms(100);
	pthread_mutex_lock(&pcpu_balance_mutex);
	pthread_mutex_lock(&pcpu_alloc_mutex);
	pthread_mutex_lock(&pcpu_drain_mutex);
	/* The workers' own stacks are mapped before the count; glibc keeps them after join. */
	pthread_barrier_init(&start_line, NULL, NR_THREADS + 1);
	start_workers(50000, w, true);
	maps = count_maps();
	populated = pcpu_chunk_pages_populated; /* both under the locks we hold */
	chunks = pcpu_gstats.nr_chunks;
	alarm(60); /* a NOWAIT call that blocks fails the test instead of hanging it */
	pthread_barrier_wait(&start_line);
	join_workers(w);
	alarm(0);
	/* Nothing populated, no chunk made, no mapping added (glibc may unmap idle stacks). */
	ck_assert_uint_eq(pcpu_chunk_pages_populated, populated);
	ck_assert_uint_eq(pcpu_gstats.nr_chunks, chunks);
	if (!UNDER_ASAN) /* ASan maps memory of its own for the threads' allocations */
		ck_assert_int_le(count_maps(), maps);
	pthread_mutex_unlock(&pcpu_drain_mutex);
	pthread_mutex_unlock(&pcpu_alloc_mutex);
	pthread_mutex_unlock(&pcpu_balance_mutex);
	for (int i = 0; i < NR_THREADS; i++) {
		ck_assert_int_eq(w[i].bad_errno, 0);
		ck_assert_int_eq(w[i].not_zero, 0);
	}
	ck_assert_int_eq(pcpu_verify(), 0);
}
END_TEST

/* Use up the populated pages with NOWAIT; once it fails, the balancer makes it succeed. */
START_TEST(test_nowait_recovers)
{
	enum { MAX = 2000000 };
	void **v = calloc(MAX, sizeof(*v));
	long n = 0, fails = 0;
	void *p = NULL;

	ck_assert_ptr_nonnull(v);
	/* Hold the balancer back so the populated pages certainly run out. */
	pthread_mutex_lock(&pcpu_balance_mutex);
	while (n < MAX && (v[n] = pcpu_alloc(64, 0, PCPU_NOWAIT)))
		n++;
	ck_assert_int_lt(n, MAX);
	ck_assert_int_eq(errno, ENOMEM);
	ck_assert_uint_gt(stats_now().nowait_failures, 0);
	pthread_mutex_unlock(&pcpu_balance_mutex);
	/* The failure woke the balancer: a later call succeeds. */
	for (int i = 0; i < 500 && !p; i++) {
		p = pcpu_alloc(64, 0, PCPU_NOWAIT);
		if (!p) {
			fails++;
			sleep_ms(10);
		}
	}
	printf("nowait: %ld allocations before ENOMEM, %ld failures before recovery\n", n, fails);
	ck_assert_ptr_nonnull(p);
	ck_assert(all_zero(p, 64));
	pcpu_free(p);
	for (long i = 0; i < n; i++)
		pcpu_free(v[i]);
	free(v);
	ck_assert_int_eq(pcpu_verify(), 0);
}
END_TEST

/* balance=off: a NOWAIT failure is made good by the next blocking call, never by itself. */
START_TEST(test_nowait_balance_off)
{
	struct pcpu_config cfg = {.size = sizeof(cfg), .balance = -1};
	enum { MAX = 2000000 };
	void **v = calloc(MAX, sizeof(*v));
	void *p, *q;
	long n = 0;

	ck_assert_int_eq(pcpu_init(&cfg), 0);
	ck_assert_ptr_nonnull(v);
	while (n < MAX && (v[n] = pcpu_alloc(64, 0, PCPU_NOWAIT)))
		n++;
	ck_assert_int_eq(errno, ENOMEM);
	ck_assert(!pcpu_alloc(64, 0, PCPU_NOWAIT));
	q = pcpu_alloc(64, 0, 0); /* pays what the NOWAIT callers owe */
	ck_assert_ptr_nonnull(q);
	p = pcpu_alloc(64, 0, PCPU_NOWAIT);
	ck_assert_ptr_nonnull(p);
	pcpu_free(p);
	pcpu_free(q);
	for (long i = 0; i < n; i++)
		pcpu_free(v[i]);
	free(v);
	ck_assert(!pcpu_balance_thread_running());
	ck_assert_int_eq(pcpu_verify(), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("nowait");
	TCase *tc = tcase_create("nowait");

	tcase_set_timeout(tc, 180);
	tcase_add_test(tc, test_nowait_storm);
	tcase_add_test(tc, test_nowait_needs_no_mutex);
	tcase_add_test(tc, test_nowait_recovers);
	tcase_add_test(tc, test_nowait_balance_off);
	suite_add_tcase(s, tc);
	return pcpu_check_run(s, CK_FORK);
}
