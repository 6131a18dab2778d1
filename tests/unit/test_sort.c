/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * The library's one sort (lib/sort_template.h): pcpu_sort_words() (lib/util.c), the merge
 * of a few runs and the radix sort of handle batches, against qsort(): sorted, descending,
 * random, with duplicates, words that differ in one byte or in all of them, 2 to 12 runs
 * either way round (the merge takes up to 8), every length up to 64 and some larger ones.
 * Then the same shapes as records (pcpu_sum64()'s instantiation: address and position),
 * which must come out stable: equal keys in their first order.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "../check_run.h"

struct rec {
	uintptr_t key;
	size_t idx;
};

#define SORT_NAME sort_recs
#define SORT_T struct rec
#define SORT_KEY(r) ((r).key)
#define SORT_MERGE_RUNS 16
#define SORT_SMALL 20
#include "sort_template.h"

/* qsort() is not stable: order by key, then by first position. */
static int cmp_rec(const void *a, const void *b)
{
	const struct rec *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int cmp_word(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;

	return x < y ? -1 : x > y;
}

static uintptr_t next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return (uintptr_t)*s;
}

/* The @n keys @w as records through sort_recs() and a stable qsort(): the same. */
static void check_recs(const uintptr_t *w, size_t n, int shape)
{
	struct rec *a = malloc((2 * n + 1) * sizeof(*a)), *b = malloc((n + 1) * sizeof(*b));
	struct rec *sorted;

	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	for (size_t i = 0; i < n; i++)
		a[i] = b[i] = (struct rec){.key = w[i], .idx = i};
	sorted = sort_recs(a, a + n, n);
	if (n)
		qsort(b, n, sizeof(*b), cmp_rec);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(sorted[i].key == b[i].key && sorted[i].idx == b[i].idx,
			      "records: n %zu shape %d differ at %zu", n, shape, i);
	free(a);
	free(b);
}

/* Sort @n words made by @shape with pcpu_sort_words() and with qsort(): the same. */
static void check(size_t n, int shape, uint64_t seed)
{
	uintptr_t *a = malloc((n + 1) * sizeof(*a)), *b = malloc((n + 1) * sizeof(*b));
	uintptr_t *tmp = malloc((n + 1) * sizeof(*tmp));
	uintptr_t base = (uintptr_t)0x7f1234560000ULL;

	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_nonnull(tmp);
	for (size_t i = 0; i < n; i++) {
		switch (shape) {
		case 0: /* ascending handles 8 bytes apart */
			a[i] = base + 8 * i;
			break;
		case 1: /* descending */
			a[i] = base + 8 * (n - i);
			break;
		case 2: /* random within a chunk, with duplicates */
			a[i] = base + 4 * (next(&seed) % (n / 2 + 1));
			break;
		case 3: /* random over every bit */
			a[i] = next(&seed);
			break;
		case 4: /* differ in one byte only */
			a[i] = base + ((next(&seed) & 0xff) << 16);
			break;
		default: { /* shape - 3 runs, alternately up and down, equal words between */
			size_t runs = (size_t)shape - 3, len = n / runs + 1, r = i / len;
			uintptr_t step = 8 * (i % len);

			a[i] = base + 4096 * (r % 3) + (r & 1 ? 8 * len - step : step);
			break;
		}
		}
	}
	check_recs(a, n, shape);
	memcpy(b, a, n * sizeof(*a));
	pcpu_sort_words(a, tmp, n);
	if (n)
		qsort(b, n, sizeof(*b), cmp_word);
	ck_assert_msg(!memcmp(a, b, n * sizeof(*a)), "n %zu shape %d differs", n, shape);
	free(a);
	free(b);
	free(tmp);
}

START_TEST(test_sort_like_qsort)
{
	static const size_t big[] = {255, 256, 257, 1000, 1024, 4099};

	for (int shape = 0; shape < 16; shape++) {
		for (size_t n = 0; n <= 64; n++)
			check(n, shape, 0x9e3779b97f4a7c15ULL + n);
		for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++)
			check(big[i], shape, 12345 + big[i]);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sort");
	TCase *tc = tcase_create("sort");

	tcase_add_test(tc, test_sort_like_qsort);
	suite_add_tcase(s, tc);
	return pcpu_check_run(s, CK_FORK_GETENV);
}
