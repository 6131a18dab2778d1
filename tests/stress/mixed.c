/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * mixed - a long mixed workload: many threads, each keeping a pool of live allocations of
 * random sizes and alignments (some PCPU_NOWAIT). Every allocation is checked zero in every
 * copy, filled with a pattern of its own (distinct per copy), and checked again before it is
 * freed, so an overlap between live allocations, a free that hands out live memory, or a
 * missed zeroing shows up as a corrupted pattern. Meanwhile the threads update shared
 * counters with the this-CPU operations (folded exactly at the end) and one of them runs
 * pcpu_verify() and pcpu_trim() at intervals.
 *
 * PCPU_STRESS_SECONDS sets the duration (default 3; CI uses a few seconds, a long run is
 * e.g. PCPU_STRESS_SECONDS=600). PCPU_MIXED_THREADS sets the thread count (default 8).
 * With a large fake topology (PCPU_CONF=topology=...) the pools shrink so that filling
 * every copy stays affordable.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <pcpu.h>

#include "../api/mode_check.h"
#include "storm_util.h"

#define MAX_THREADS 64
#define MAX_POOL 256

struct obj {
	unsigned char *h;
	size_t size;
	unsigned tag;
};

struct worker {
	pthread_t tid;
	int id;
	unsigned seed;
	uint64_t allocs, frees, nowait_fail, updates;
	char why[256];                /* first failure, if any */
};

static uint64_t *hits;            /* one this-CPU increment per update */
static int64_t *balance;          /* +v then -v: folds to zero */
static int stop;
static unsigned nr_cpus;
static size_t pool_max, size_max;
static uint64_t verifies, verify_failures;

static unsigned rnd(unsigned *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static unsigned char pat(unsigned tag, unsigned cpu, size_t i)
{
	return (unsigned char)(tag * 29u + cpu * 101u + (unsigned)i * 13u + 1u);
}

static void report(struct worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void report(struct worker *w, const char *fmt, ...)
{
	va_list ap;

	if (w->why[0])
		return;
	va_start(ap, fmt);
	vsnprintf(w->why, sizeof(w->why), fmt, ap);
	va_end(ap);
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
}

static size_t pick_size(struct worker *w)
{
	unsigned r = rnd(&w->seed);

	switch (r % 16) {
	case 0: return 1 + rnd(&w->seed) % size_max;
	case 1: case 2: return 1 + rnd(&w->seed) % 1024;
	default: return 1 + rnd(&w->seed) % 64;
	}
}

static int new_obj(struct worker *w, struct obj *o)
{
	unsigned r = rnd(&w->seed);
	size_t align = r % 4 ? 0 : (size_t)1 << (rnd(&w->seed) % 13);
	unsigned flags = r % 8 == 1 ? PCPU_NOWAIT : 0;
	unsigned c;

	o->size = pick_size(w);
	errno = 0;
	o->h = pcpu_alloc(o->size, align, flags);
	if (!o->h) {
		if (flags & PCPU_NOWAIT && errno == ENOMEM) {
			w->nowait_fail++;
			return 0;
		}
		report(w, "pcpu_alloc(%zu, %zu, %#x): errno %d", o->size, align, flags, errno);
		return 0;
	}
	w->allocs++;
	o->tag = rnd(&w->seed);
	for (c = 0; c < nr_cpus; c++) {
		unsigned char *p = pcpu_ptr(o->h, c);

		if (align && (uintptr_t)p % align)
			report(w, "copy %u of %p not %zu-aligned", c, (void *)o->h, align);
		for (size_t i = 0; i < o->size; i++) {
			if (p[i]) {
				report(w, "fresh %p (size %zu) copy %u byte %zu is %#x", (void *)o->h,
				     o->size, c, i, p[i]);
				return 1;
			}
		}
		for (size_t i = 0; i < o->size; i++)
			p[i] = pat(o->tag, c, i);
	}
	return 1;
}

static void drop_obj(struct worker *w, struct obj *o)
{
	for (unsigned c = 0; c < nr_cpus; c++) {
		const unsigned char *p = pcpu_ptr(o->h, c);

		for (size_t i = 0; i < o->size; i++) {
			if (p[i] != pat(o->tag, c, i)) {
				report(w, "%p (size %zu) copy %u byte %zu is %#x, expected %#x",
				     (void *)o->h, o->size, c, i, p[i], pat(o->tag, c, i));
				break;
			}
		}
	}
	pcpu_free(o->h);
	o->h = NULL;
	w->frees++;
}

static void *work(void *arg)
{
	struct worker *w = arg;
	struct obj *pool = calloc(pool_max, sizeof(*pool));
	size_t n = 0;

	if (!pool) {
		report(w, "out of memory");
		return NULL;
	}
	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		unsigned r = rnd(&w->seed);
		int64_t v = (int64_t)(r % 1000) - 500;

		if (n < pool_max && (r % 3 || !n)) {
			if (new_obj(w, &pool[n]))
				n += pool[n].h != NULL;
		} else if (n) {
			size_t k = rnd(&w->seed) % n;

			drop_obj(w, &pool[k]);
			pool[k] = pool[--n];
		}
		pcpu_this_inc(hits);
		pcpu_this_add(balance, v);
		pcpu_this_sub(balance, v);
		w->updates++;
		/* One thread checks the whole allocator now and then. */
		if (w->id == 0 && w->updates % 512 == 0) {
			if (pcpu_verify())
				__atomic_add_fetch(&verify_failures, 1, __ATOMIC_RELAXED);
			__atomic_add_fetch(&verifies, 1, __ATOMIC_RELAXED);
			if (w->updates % 4096 == 0)
				(void)pcpu_trim();
		}
	}
	while (n)
		drop_obj(w, &pool[--n]);
	free(pool);
	return NULL;
}

START_TEST(test_mixed)
{
	const char *tenv = getenv("PCPU_MIXED_THREADS");
	int seconds = storm_seconds(), nr = tenv ? atoi(tenv) : 8;
	struct worker w[MAX_THREADS];
	uint64_t allocs = 0, frees = 0, nowait_fail = 0, updates = 0, sum = 0;
	int64_t bal = 0;
	unsigned c;
	int want = test_expected_mode();

	if (want)
		ck_assert_int_eq(pcpu_cpu_mode(), want);
	if (nr < 1)
		nr = 1;
	if (nr > MAX_THREADS)
		nr = MAX_THREADS;
	nr_cpus = pcpu_nr_cpus();
	/* Every live byte is filled and checked in every copy: scale with the CPU count. */
	pool_max = nr_cpus <= 16 ? MAX_POOL : nr_cpus <= 256 ? 64 : 16;
	size_max = nr_cpus <= 64 ? 32768 : 4096;
	hits = pcpu_alloc_type(uint64_t);
	balance = pcpu_alloc_type(int64_t);
	ck_assert(hits && balance);
	memset(w, 0, sizeof(w));
	for (int i = 0; i < nr; i++) {
		w[i].id = i;
		w[i].seed = 0x9e3779b9u * (unsigned)(i + 1);
		ck_assert_int_eq(pthread_create(&w[i].tid, NULL, work, &w[i]), 0);
	}
	for (int s = 0; s < seconds * 10 && !__atomic_load_n(&stop, __ATOMIC_RELAXED); s++)
		usleep(100000);
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < nr; i++) {
		pthread_join(w[i].tid, NULL);
		ck_assert_msg(!w[i].why[0], "thread %d: %s", i, w[i].why);
		allocs += w[i].allocs;
		frees += w[i].frees;
		nowait_fail += w[i].nowait_fail;
		updates += w[i].updates;
	}
	pcpu_for_each_cpu(c) {
		sum += *pcpu_ptr(hits, c);
		bal += *pcpu_ptr(balance, c);
	}
	fprintf(stderr, "mixed: mode %d, %u CPUs, %d threads, %llu allocs, %llu frees, "
			"%llu NOWAIT failures, %llu verifies\n",
		(int)pcpu_cpu_mode(), nr_cpus, nr, (unsigned long long)allocs,
		(unsigned long long)frees, (unsigned long long)nowait_fail,
		(unsigned long long)verifies);
	ck_assert_uint_gt(allocs, 0);
	ck_assert_uint_eq(allocs, frees);
	ck_assert_uint_eq(sum, updates);
	ck_assert_int_eq(bal, 0);
	ck_assert_uint_eq(verify_failures, 0);
	ck_assert_int_eq(pcpu_verify(), 0);
	pcpu_free(hits);
	pcpu_free(balance);
	{
		struct pcpu_stats st = {.size = sizeof(st)};

		ck_assert_int_eq(pcpu_stats_get(&st), 0);
		ck_assert_uint_eq(st.nr_alloc - st.nr_dealloc, st.nr_cur_alloc);
	}
}
END_TEST

int main(void)
{
	return storm_main("mixed", test_mixed, 300);
}
