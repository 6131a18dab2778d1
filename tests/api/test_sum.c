/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * pcpu_sum64(): bad arguments change nothing; the sums equal a copy-by-copy fold for
 * handles in any order, with duplicates, as members of larger objects, wrapping modulo
 * 2^64, through the small (stack), dense (blocks, no sort) and sparse (sorted) paths, in
 * runs with and without holes; and under concurrent this-CPU updates each sum only grows
 * and the final ones are exact. Runs in every CPU mode and on
 * fake topologies (PCPU_CONF=topology=...).
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pcpu.h>

#include "mode_check.h"
#include "pcpu_config.h"
#include "spawn.h"
#include "../check_run.h"

static uint64_t fold(const void *h)
{
	uint64_t s = 0;
	unsigned cpu;

	pcpu_for_each_cpu(cpu)
		s += *(const uint64_t *)pcpu_ptr(h, cpu);
	return s;
}

static uint64_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

START_TEST(test_bad_args)
{
	uint64_t *a = pcpu_alloc_type(uint64_t);
	uint64_t out[3] = {7, 7, 7};
	const void *h[3] = {a, NULL, a};

	ck_assert_ptr_nonnull(a);
	test_check_mode();
	ck_assert_int_eq(pcpu_sum64(NULL, 0, NULL), 0);
	ck_assert_int_eq(pcpu_sum64(h, 0, out), 0);
	ck_assert_uint_eq(out[0], 7);
	errno = 0;
	ck_assert_int_eq(pcpu_sum64(NULL, 1, out), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(pcpu_sum64(h, 1, NULL), -1);
	ck_assert_int_eq(errno, EINVAL);
	/* a NULL element: EINVAL, not even out[0] written */
	errno = 0;
	ck_assert_int_eq(pcpu_sum64(h, 3, out), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_uint_eq(out[0], 7);
	/* a misaligned element */
	h[1] = (const char *)a + 4;
	errno = 0;
	ck_assert_int_eq(pcpu_sum64(h, 3, out), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_uint_eq(out[0], 7);
	ck_assert_uint_eq(out[2], 7);
	pcpu_free(a);
}
END_TEST

static int by_addr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)*(const void *const *)a, y = (uintptr_t)*(const void *const *)b;

	return x < y ? -1 : x > y;
}

/*
 * @n handles among @k distinct objects (so duplicates when n > k): in allocation order
 * (@seed 0), in five ascending runs (1), or shuffled (other seeds). More than 8 CPUs (a
 * fake topology) take the unit-major paths, fewer the handle-by-handle one.
 */
static void check_sums(size_t k, size_t n, uint64_t seed)
{
	struct obj { uint32_t pad; uint32_t tag; uint64_t v; } **o = calloc(k, sizeof(*o));
	const void **h = calloc(n, sizeof(*h));
	uint64_t *out = calloc(n, sizeof(*out));
	uint64_t x = seed | 1;
	unsigned cpu;

	ck_assert(o && h && out);
	for (size_t i = 0; i < k; i++) {
		/* every third one a member at offset 8 of a 16-byte object */
		if (i % 3 == 0)
			o[i] = pcpu_alloc(sizeof(struct obj), 8, 0);
		else
			o[i] = (struct obj *)((char *)pcpu_alloc(8, 8, 0) - 8);
		ck_assert_ptr_nonnull((char *)o[i] + 8);
		pcpu_for_each_cpu(cpu) {
			/* big values: the sums wrap modulo 2^64 */
			uint64_t v = (i % 5 == 0) ? UINT64_MAX - rnd(&x) % 1000 : rnd(&x) % 100000;

			pcpu_ptr(o[i], cpu)->v = v;
		}
	}
	for (size_t i = 0; i < n; i++)
		h[i] = &o[i < k ? i : rnd(&x) % k]->v;
	if (seed == 1) {
		/* a few ascending runs: sorted, then cut in 5 blocks put in reverse order */
		const void **tmp = calloc(n, sizeof(*tmp));
		size_t k = 0;

		ck_assert_ptr_nonnull(tmp);
		qsort(h, n, sizeof(*h), by_addr);
		for (int b = 4; b >= 0; b--)
			for (size_t i = n * (size_t)b / 5; i < n * (size_t)(b + 1) / 5; i++)
				tmp[k++] = h[i];
		memcpy(h, tmp, n * sizeof(*h));
		free(tmp);
	}
	for (size_t i = n; i > 1; i--) { /* shuffle, unless the seed asks for order */
		size_t j;
		const void *t;

		if (seed <= 1)
			break;
		j = rnd(&x) % i;
		t = h[i - 1];
		h[i - 1] = h[j];
		h[j] = t;
	}
	ck_assert_int_eq(pcpu_sum64(h, n, out), 0);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(out[i] == fold(h[i]), "k %zu n %zu: out[%zu] %llu, fold %llu", k, n,
			      i, (unsigned long long)out[i], (unsigned long long)fold(h[i]));
	for (size_t i = 0; i < k; i++)
		pcpu_free(i % 3 == 0 ? (void *)o[i] : (void *)((char *)o[i] + 8));
	free(o);
	free(h);
	free(out);
}

START_TEST(test_sums)
{
	unsigned big = pcpu_nr_cpus() > 256 ? 600 : 5000;

	check_sums(1, 1, 0);
	check_sums(1, 5, 3);     /* one handle five times */
	check_sums(40, 64, 0);   /* in order (no sort), stack path, duplicates at the end */
	check_sums(40, 64, 11);  /* insertion sort */
	/* densely packed: blocks, no sort (test_runs takes the sorted paths) */
	check_sums(100, 100, 5); /* no duplicates */
	check_sums(big, big + big / 2, 0);
	check_sums(big, big + big / 2, 1); /* five runs */
	check_sums(big, big, 1);
	check_sums(big, big + big / 2, 99);
}
END_TEST

/*
 * Layouts of handles for the run-based walk: fields of objects of @size bytes (a multiple
 * of 8; every word of every copy holds a different value, so a field summed from a
 * neighbour's words, or a bridged hole counted in, shows), @nf fields of each at the
 * offsets @field, the handles then ordered by @order.
 */
/* allocation order, ascending addresses, reversed, five ascending runs, random */
enum order { IN_ORDER, SORTED, REVERSED, FIVE_RUNS, SHUFFLED };

struct layout {
	size_t size;
	size_t nobj;
	unsigned nf;
	size_t field[8];
	enum order order;
	size_t dups; /* handles given again, picked at random */
};

/* Every copy of the objects' memory is written: 32 MiB at most, over all CPUs. */
static size_t scaled(size_t nobj, size_t size)
{
	size_t most = ((size_t)32 << 20) / pcpu_nr_cpus() / size;

	return nobj < most ? nobj : (most ? most : 1);
}

static void put_in_order(const void **h, size_t n, enum order order, uint64_t *x)
{
	const void **tmp;
	size_t k = 0;

	switch (order) {
	case IN_ORDER:
		break;
	case SORTED:
		qsort(h, n, sizeof(*h), by_addr);
		break;
	case REVERSED:
		for (size_t i = 0; i < n / 2; i++) {
			const void *t = h[i];

			h[i] = h[n - 1 - i];
			h[n - 1 - i] = t;
		}
		break;
	case FIVE_RUNS:
		tmp = calloc(n, sizeof(*tmp));
		ck_assert_ptr_nonnull(tmp);
		qsort(h, n, sizeof(*h), by_addr);
		for (int b = 4; b >= 0; b--)
			for (size_t i = n * (size_t)b / 5; i < n * (size_t)(b + 1) / 5; i++)
				tmp[k++] = h[i];
		memcpy(h, tmp, n * sizeof(*h));
		free(tmp);
		break;
	case SHUFFLED:
		for (size_t i = n; i > 1; i--) {
			size_t j = rnd(x) % i;
			const void *t = h[i - 1];

			h[i - 1] = h[j];
			h[j] = t;
		}
		break;
	}
}

/* The sums of @n handles @h equal their folds, and stay so when computed twice. */
static void check_handles(const void **h, size_t n, const char *what)
{
	uint64_t *out = calloc(n, sizeof(*out));

	ck_assert_ptr_nonnull(out);
	ck_assert_int_eq(pcpu_sum64(h, n, out), 0);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(out[i] == fold(h[i]), "%s, n %zu: out[%zu] %llu, fold %llu", what, n,
			      i, (unsigned long long)out[i], (unsigned long long)fold(h[i]));
	free(out);
}

/* Objects of @l, every word of every copy random; @extra more handles appended from @more. */
static void check_layout(const struct layout *l, const void *const *more, size_t extra,
			 uint64_t seed)
{
	size_t nobj = scaled(l->nobj, l->size), n = nobj * l->nf, total = n + l->dups + extra;
	void **o = calloc(nobj, sizeof(*o));
	const void **h = calloc(total, sizeof(*h));
	uint64_t x = seed | 1;
	char what[96];
	unsigned cpu;

	ck_assert(o && h);
	for (size_t i = 0; i < nobj; i++) {
		o[i] = pcpu_alloc(l->size, 8, 0);
		ck_assert_ptr_nonnull(o[i]);
		pcpu_for_each_cpu(cpu) {
			uint64_t *w = pcpu_ptr((uint64_t *)o[i], cpu);

			for (size_t k = 0; k < l->size / 8; k++)
				w[k] = k % 3 ? rnd(&x) % 100000 : UINT64_MAX - rnd(&x) % 1000;
		}
		for (unsigned f = 0; f < l->nf; f++)
			h[i * l->nf + f] = (const char *)o[i] + l->field[f];
	}
	for (size_t i = 0; i < extra; i++)
		h[n + i] = more[i];
	n += extra;
	for (size_t i = 0; i < l->dups; i++)
		h[n + i] = h[rnd(&x) % n];
	n += l->dups;
	put_in_order(h, n, l->order, &x);
	snprintf(what, sizeof(what), "%zu objects of %zu bytes, %u fields, order %d, +%zu", nobj,
		 l->size, l->nf, (int)l->order, extra);
	check_handles(h, n, what);
	for (size_t i = 0; i < nobj; i++)
		pcpu_free(o[i]);
	free(o);
	free(h);
}

/*
 * The walk sums runs of neighbouring slots: dense counters (the no-sort block path), fields
 * a few slots apart (holes bridged, or not under a checker), fields too sparse for blocks
 * (the sort, then runs), in every order, with duplicates, and handles that start dense
 * then spread over more blocks than allowed (the block path gives up, the sort takes over).
 */
START_TEST(test_runs)
{
	static const struct layout layouts[] = {
		/* counters one after another: blocks, long runs */
		{8, 3000, 1, {0}, IN_ORDER, 0},
		{8, 3000, 1, {0}, SHUFFLED, 300},
		{8, 3000, 1, {0}, REVERSED, 0},
		/* 2 fields of 24 bytes: a one-slot hole bridged */
		{24, 2000, 2, {0, 16}, SHUFFLED, 100},
		/* every field but one of 40 bytes */
		{40, 1000, 4, {0, 8, 24, 32}, FIVE_RUNS, 0},
		/* one field in 64 bytes: a 7-slot hole, the most bridged */
		{64, 2000, 1, {8}, SHUFFLED, 50},
		/* one field in 72 bytes: holes never bridged; too sparse for blocks */
		{72, 2000, 1, {0}, IN_ORDER, 0},
		{72, 2000, 1, {0}, SHUFFLED, 20},
		/* 8 fields of 1 KiB, 64 bytes apart: the sort, bridging until its room is spent */
		{1024, 300, 8, {0, 64, 128, 192, 256, 320, 384, 448}, SORTED, 30},
		{1024, 300, 8, {0, 64, 128, 192, 256, 320, 384, 448}, SHUFFLED, 0},
		/* one field in 512 bytes: sorted already, merged, radix sorted */
		{512, 500, 1, {504}, IN_ORDER, 0},
		{512, 500, 1, {504}, SORTED, 0},
		{512, 500, 1, {504}, FIVE_RUNS, 10},
		{512, 500, 1, {504}, SHUFFLED, 10},
		/* few: the stack */
		{8, 40, 1, {0}, SHUFFLED, 20},
		{64, 20, 3, {0, 8, 56}, SHUFFLED, 4},
	};
	/* Dense counters first, then fields far apart: more blocks than the handles allow. */
	static const struct layout dense = {8, 4000, 1, {0}, IN_ORDER, 0};
	size_t nfar = scaled(300, 4096);
	void **far = calloc(nfar, sizeof(*far));
	const void **more = calloc(nfar, sizeof(*more));
	unsigned cpu;

	ck_assert(far && more);
	for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++)
		check_layout(&layouts[i], NULL, 0, 2 * i + 3);
	for (size_t i = 0; i < nfar; i++) {
		far[i] = pcpu_alloc(4096, 8, 0);
		ck_assert_ptr_nonnull(far[i]);
		pcpu_for_each_cpu(cpu)
			pcpu_ptr((uint64_t *)far[i], cpu)[3] = (uint64_t)cpu * 7 + i;
		more[i] = (uint64_t *)far[i] + 3;
	}
	check_layout(&dense, more, nfar, 77);
	for (size_t i = 0; i < nfar; i++)
		pcpu_free(far[i]);
	free(far);
	free(more);
}
END_TEST

/* Concurrent writers: each sum only grows (every copy only grows); the last ones are exact. */
#define NCTR 300
#define NWRITERS 3
static uint64_t *ctr[NCTR];
static int stop;

static void *writer(void *arg)
{
	uint64_t x = (uintptr_t)arg * 7919 + 1, n = 0;

	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		pcpu_this_add(ctr[rnd(&x) % NCTR], 1);
		n++;
	}
	return (void *)(uintptr_t)n;
}

START_TEST(test_concurrent)
{
	const void *h[NCTR];
	uint64_t prev[NCTR] = {0}, out[NCTR], total = 0, done = 0;
	pthread_t t[NWRITERS];

	for (int i = 0; i < NCTR; i++) {
		ctr[i] = pcpu_alloc_type(uint64_t);
		ck_assert_ptr_nonnull(ctr[i]);
		h[i] = ctr[i];
	}
	for (uintptr_t i = 0; i < NWRITERS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, writer, (void *)i), 0);
	for (int round = 0; round < 300; round++) {
		ck_assert_int_eq(pcpu_sum64(h, NCTR, out), 0);
		for (int i = 0; i < NCTR; i++) {
			ck_assert_uint_ge(out[i], prev[i]);
			prev[i] = out[i];
		}
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < NWRITERS; i++) {
		void *r;

		pthread_join(t[i], &r);
		done += (uintptr_t)r;
	}
	ck_assert_int_eq(pcpu_sum64(h, NCTR, out), 0);
	for (int i = 0; i < NCTR; i++) {
		ck_assert_uint_eq(out[i], fold(ctr[i]));
		total += out[i];
		pcpu_free(ctr[i]);
	}
	ck_assert_uint_eq(total, done);
}
END_TEST

#if PCPU_FAULT_INJECT
/*
 * Fault injection: pcpu_sum64()'s one fallible call, its buffers' malloc, fails; the sums
 * must still be right (it reads handle by handle instead). In a child on 64 fake CPUs
 * (more than 8: the sorted path), without the balancer so that the fault points are the
 * same in every run.
 */
static int fault_child(void)
{
	static const void *h[200];
	uint64_t out[200];

	if (!pcpu_nr_cpus())
		return 3;
	for (int i = 0; i < 200; i++) {
		uint64_t *c = pcpu_alloc_type(uint64_t);
		unsigned cpu;

		if (!c)
			return 4;
		pcpu_for_each_cpu(cpu)
			*pcpu_ptr(c, cpu) = (uint64_t)i * 1000 + cpu;
		h[199 - i] = c; /* descending */
	}
	fprintf(stderr, "sum-begin\n");
	if (pcpu_sum64(h, 200, out))
		return 5;
	fprintf(stderr, "sum-end\n");
	for (int i = 0; i < 200; i++)
		if (out[i] != fold(h[i]))
			return 6;
	fprintf(stderr, "sums ok\n");
	return 0;
}

START_TEST(test_sort_buffer_enomem)
{
	static char log[1 << 20];
	const char *p, *end;
	long point = 0;
	int rc;

	rc = spawn_fault("--fault-child", 0, "topology=64x4,balance=off", log,
			 sizeof(log));
	ck_assert_msg(rc == 0, "exit %d: %.2000s", rc, log);
	p = strstr(log, "sum-begin");
	end = strstr(log, "sum-end");
	ck_assert(p && end);
	p = strstr(p, "fault point ");
	ck_assert_msg(p && p < end, "no fallible call in pcpu_sum64: %.2000s", log);
	ck_assert_int_eq(sscanf(p, "fault point %ld:", &point), 1);
	rc = spawn_fault("--fault-child", point, "topology=64x4,balance=off", log,
			 sizeof(log));
	ck_assert_msg(rc == 0 && strstr(log, "sums ok"), "PCPU_FAULT=%ld: exit %d: %.2000s", point,
		      rc, log);
}
END_TEST
#endif

int main(int argc, char **argv)
{
	Suite *s;
	TCase *tc;

#if PCPU_FAULT_INJECT
	if (argc > 1 && !strcmp(argv[1], "--fault-child"))
		return fault_child();
#else
	(void)argc;
	(void)argv;
#endif
	s = suite_create("sum");
	tc = tcase_create("sum");
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, test_bad_args);
	tcase_add_test(tc, test_sums);
	tcase_add_test(tc, test_runs);
	tcase_add_test(tc, test_concurrent);
#if PCPU_FAULT_INJECT
	tcase_add_test(tc, test_sort_buffer_enomem);
#endif
	suite_add_tcase(s, tc);
	return pcpu_check_run(s, CK_FORK_GETENV);
}
