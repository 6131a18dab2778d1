/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * What a free costs and what pcpu_trim() gives back, on a fake 64-CPU machine
 * (topology=64x4), with each zero source (PCPU__ZERO_SOURCE=anon and memfd, lib/chunk.h):
 *
 *   zeroed_*   the statistics' zeroed_bytes is what the zeroing drain really wrote: a
 *              64-byte object written in all 64 copies adds 64 x 64 bytes once freed and
 *              drained, one written in 32 copies 32 x 64, one never written nothing; the
 *              struct (pcpu_stats_get) and the JSON (pcpu_stats_print_json) agree.
 *   trim_*     (issue 15 item 3) 100,000 8-byte objects, every copy written, all freed,
 *              then pcpu_trim(): RssAnon and Pss come back within 2 MiB of where they
 *              started. That includes the first chunk's free dynamic pages, which the
 *              balancer keeps but pcpu_trim() gives back; they are populated again when
 *              needed, and read zero in every unit.
 *   trim_race  threads allocate, check, fill and free small objects (many of them in the
 *              first chunk) while pcpu_trim() gives pages back over and over: every object
 *              reads zero in every copy when handed out and keeps its pattern until freed.
 *
 * Each test runs in its own forked child (Check's fork mode) and sets its topology and zero
 * source before its first libpcpu call, so each starts a fresh library. Under ASan or TSan,
 * whose shadow memory grows with what the program touches, the memory bounds are printed,
 * not checked.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pcpu.h>

#include "proc_util.h"
#include "stats_json.h"
#include "../check_run.h"

#define KIB ((long long)1 << 10)
#define MIB ((long long)1 << 20)
#define NR_CPUS 64

/* Start the library on @topo with zero source @src, keeping the suite's cpu_mode. */
static void start_on(const char *topo, const char *src)
{
	const char *old = getenv("PCPU_CONF");
	char buf[256];

	snprintf(buf, sizeof(buf), "%s%stopology=%s", old ? old : "", old && *old ? "," : "",
		 topo);
	ck_assert_int_eq(setenv("PCPU_CONF", buf, 1), 0);
	ck_assert_int_eq(setenv("PCPU__ZERO_SOURCE", src, 1), 0);
}

static void start(const char *src)
{
	start_on("64x4", src);
	ck_assert_uint_eq(pcpu_nr_cpus(), NR_CPUS);
}

static struct pcpu_stats stats(void)
{
	struct pcpu_stats st = {.size = sizeof(st)};

	ck_assert_int_eq(pcpu_stats_get(&st), 0);
	return st;
}

/* zeroed_bytes, from the struct and from the JSON, which must agree. */
static long long zeroed_now(void)
{
	struct pcpu_stats st = stats();
	json_object *o = stats_json_now();
	long long j = jint(o, "global.zeroed_bytes");

	json_object_put(o);
	ck_assert_int_eq(j, (long long)st.zeroed_bytes);
	return j;
}

/* Free @p, drain, and return what zeroed_bytes grew by. */
static long long free_and_drain(void *p)
{
	long long before = zeroed_now();

	pcpu_free(p);
	pcpu_trim(); /* drains the whole zeroing queue first */
	return zeroed_now() - before;
}

static void zeroed(const char *src)
{
	enum { SIZE = 64 };
	unsigned char *all, *half, *none, *again;
	unsigned cpu;

	start(src);
	all = pcpu_alloc(SIZE, 0, 0);
	half = pcpu_alloc(SIZE, 0, 0);
	none = pcpu_alloc(SIZE, 0, 0);
	ck_assert(all && half && none);
	pcpu_for_each_cpu(cpu) {
		memset(pcpu_ptr(all, cpu), 0xa5, SIZE);
		if (cpu % 2)
			/* One byte is enough: the drain zeroes the whole copy. */
			pcpu_ptr(half, cpu)[SIZE - 1] = 1;
	}
	ck_assert_int_eq(free_and_drain(all), (long long)NR_CPUS * SIZE);
	ck_assert_int_eq(free_and_drain(half), (long long)NR_CPUS / 2 * SIZE);
	ck_assert_int_eq(free_and_drain(none), 0);
	/* And what was zeroed reads zero when handed out again. */
	again = pcpu_alloc(SIZE, 0, 0);
	ck_assert_ptr_nonnull(again);
	pcpu_for_each_cpu(cpu)
		for (int i = 0; i < SIZE; i++)
			ck_assert_uint_eq(pcpu_ptr(again, cpu)[i], 0);
	pcpu_free(again);
	ck_assert_int_eq(pcpu_verify(), 0);
}

START_TEST(test_zeroed_anon)
{
	zeroed("anon");
}
END_TEST

START_TEST(test_zeroed_memfd)
{
	zeroed("memfd");
}
END_TEST

/* Memory figures, in bytes. */
struct mem {
	long long pss, rss_anon;
};

static struct mem mem_now(void)
{
	return (struct mem){proc_kb("/proc/self/smaps_rollup", "Pss"),
			    proc_kb("/proc/self/status", "RssAnon")};
}

static void trim(const char *src)
{
	enum { N = 100000 };
	uint64_t **h = calloc(N, sizeof(*h));
	struct mem base, full, after;
	struct pcpu_stats st;
	uint64_t *p;
	unsigned cpu;
	size_t given;

	start(src);
	ck_assert_ptr_nonnull(h);
	/*
	 * The pointer array is touched before the baseline: it is not the library's. Not with
	 * zeros, which the compiler drops after calloc() (the array's pages, 800 KiB, then
	 * came in during the measurement).
	 */
	memset(h, 0xff, N * sizeof(*h));
	base = mem_now();
	for (size_t i = 0; i < N; i++) {
		h[i] = pcpu_alloc(sizeof(uint64_t), 0, 0);
		if (!h[i])
			ck_abort_msg("alloc %zu failed: errno %d", i, errno);
		pcpu_for_each_cpu(cpu)
			*pcpu_ptr(h[i], cpu) = i + 1;
	}
	full = mem_now();
	for (size_t i = 0; i < N; i++)
		pcpu_free(h[i]);
	given = pcpu_trim();
	after = mem_now();
	st = stats();
	fprintf(stderr,
		"trim_%s: Pss +%.1f MiB written, +%.1f MiB after trim; RssAnon +%.1f, +%.1f MiB; "
		"pcpu_trim() said %.1f MiB; chunks resident %.1f KiB in %llu chunks, "
		"%llu pages populated\n",
		src, (double)(full.pss - base.pss) / MIB, (double)(after.pss - base.pss) / MIB,
		(double)(full.rss_anon - base.rss_anon) / MIB,
		(double)(after.rss_anon - base.rss_anon) / MIB, (double)given / MIB,
		(double)st.resident_bytes / KIB, (unsigned long long)st.nr_chunks,
		(unsigned long long)st.populated_pages);
	ck_assert_int_eq(pcpu_verify(), 0);
	if (!SHADOW_MEMORY) {
		/* The copies were written: they cost memory (a bound that can fail). */
		ck_assert_int_ge(full.rss_anon - base.rss_anon, (long long)N * 8 * NR_CPUS / 2);
		ck_assert_msg(after.rss_anon - base.rss_anon <= 2 * MIB,
			      "RssAnon %lld bytes above the start after pcpu_trim()",
			      after.rss_anon - base.rss_anon);
		ck_assert_msg(after.pss - base.pss <= 2 * MIB,
			      "Pss %lld bytes above the start after pcpu_trim()",
			      after.pss - base.pss);
	}
	/* What was given back is populated again on demand, and reads zero in every copy. */
	for (size_t i = 0; i < N; i++) {
		h[i] = pcpu_alloc(sizeof(uint64_t), 0, 0);
		if (!h[i])
			ck_abort_msg("realloc %zu failed: errno %d", i, errno);
	}
	for (size_t i = 0; i < N; i++) {
		p = h[i];
		pcpu_for_each_cpu(cpu)
			if (*pcpu_ptr(p, cpu))
				ck_abort_msg("object %zu, copy %u reads %llu", i, cpu,
					     (unsigned long long)*pcpu_ptr(p, cpu));
		pcpu_free(p);
	}
	ck_assert_int_eq(pcpu_verify(), 0);
	free(h);
}

START_TEST(test_trim_anon)
{
	trim("anon");
}
END_TEST

START_TEST(test_trim_memfd)
{
	trim("memfd");
}
END_TEST

enum { RACE_THREADS = 4, RACE_BATCH = 64 };

static bool race_stop;

struct racer {
	pthread_t t;
	unsigned id;
	long rounds, bad;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	uint64_t *v[RACE_BATCH];
	unsigned cpu;

	while (!__atomic_load_n(&race_stop, __ATOMIC_RELAXED)) {
		for (int i = 0; i < RACE_BATCH; i++) {
			v[i] = pcpu_alloc(sizeof(uint64_t), 0, 0);
			if (!v[i]) {
				r->bad++;
				return NULL;
			}
			pcpu_for_each_cpu(cpu) {
				r->bad += *pcpu_ptr(v[i], cpu) != 0;
				*pcpu_ptr(v[i], cpu) = ((uint64_t)r->id << 48) | ((uint64_t)i << 16) | cpu;
			}
		}
		for (int i = 0; i < RACE_BATCH; i++) {
			pcpu_for_each_cpu(cpu)
				r->bad += *pcpu_ptr(v[i], cpu) !=
					  (((uint64_t)r->id << 48) | ((uint64_t)i << 16) | cpu);
			pcpu_free(v[i]);
		}
		r->rounds++;
	}
	return NULL;
}

static void trim_race(const char *src)
{
	const char *env = getenv("PCPU_STRESS_SECONDS");
	int seconds = env ? atoi(env) : 3;
	struct racer r[RACE_THREADS] = {0};
	struct timespec end, now;
	long trims = 0, rounds = 0;

	start_on("8x2", src);
	ck_assert_uint_eq(pcpu_nr_cpus(), 8);
	for (unsigned i = 0; i < RACE_THREADS; i++) {
		r[i].id = i + 1;
		ck_assert_int_eq(pthread_create(&r[i].t, NULL, race, &r[i]), 0);
	}
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += seconds;
	do {
		(void)pcpu_trim();
		trims++;
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (now.tv_sec < end.tv_sec || (now.tv_sec == end.tv_sec && now.tv_nsec < end.tv_nsec));
	__atomic_store_n(&race_stop, true, __ATOMIC_RELAXED);
	for (unsigned i = 0; i < RACE_THREADS; i++) {
		ck_assert_int_eq(pthread_join(r[i].t, NULL), 0);
		ck_assert_int_eq(r[i].bad, 0);
		rounds += r[i].rounds;
	}
	fprintf(stderr, "trim_race_%s: %ld trims, %ld rounds of %d objects\n", src, trims,
		rounds, RACE_BATCH);
	ck_assert_int_gt(rounds, 0);
	ck_assert_int_gt(trims, 1);
	ck_assert_int_eq(pcpu_verify(), 0);
}

START_TEST(test_trim_race_anon)
{
	trim_race("anon");
}
END_TEST

START_TEST(test_trim_race_memfd)
{
	trim_race("memfd");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("trim");
	TCase *tc = tcase_create("trim");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_zeroed_anon);
	tcase_add_test(tc, test_zeroed_memfd);
	tcase_add_test(tc, test_trim_anon);
	tcase_add_test(tc, test_trim_memfd);
	tcase_add_test(tc, test_trim_race_anon);
	tcase_add_test(tc, test_trim_race_memfd);
	suite_add_tcase(s, tc);
	/* Each test needs a library of its own: its own zero source and baseline. */
	return pcpu_check_run(s, CK_FORK);
}
