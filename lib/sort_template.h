/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * sort_template.h - the library's one sort: records ordered by an unsigned key, stable, with
 * no compare callback. Included once per record type, after defining
 *
 *   SORT_NAME        the function's name
 *   SORT_T           the record type
 *   SORT_KEY(r)      the key of record r (a uintptr_t expression)
 *   SORT_MERGE_RUNS  the most runs that are merged rather than radix-sorted (at most 16)
 *   SORT_SMALL       the most records that are insertion-sorted
 *
 * which defines
 *
 *   static SORT_T *SORT_NAME(SORT_T *a, SORT_T *tmp, size_t n);
 *
 * sorting the @n records of @a with @tmp (room for @n more) and returning the array that
 * holds the result (@a or @tmp). What the allocator sorts comes mostly in order: handles
 * allocated one after another, batches the front's lists hand back (a LIFO cycle pops the
 * top first and pushes it again; arrays and depots exchange halves). So:
 *   - up to SORT_SMALL records: insertion sort;
 *   - up to SORT_MERGE_RUNS maximal runs, ascending or strictly descending (turned around,
 *     which keeps the sort stable): merged pairwise, ceil(log2(runs)) sweeps, none for one;
 *   - anything else: a least-significant-digit radix sort over the bits in which the keys
 *     differ, counted from the smallest key, 8 bits a pass below 1024 records and 11 from
 *     there (the counts are cleared every pass). Handles within a few chunks differ in 20
 *     bits or so above their alignment: two or three passes. (qsort() cost 30 ns per
 *     handle in a batch of a thousand.)
 * The caller brings the memory: nothing here allocates, so every use is async-signal-safe.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define SORT__CAT2(a, b) a##b
#define SORT__CAT(a, b) SORT__CAT2(a, b)
#define SORT__FN(f) SORT__CAT(SORT_NAME, f)

#ifndef SORT__MAX_MERGE
#define SORT__RADIX_BITS 11
#define SORT__MAX_MERGE 16
#endif
_Static_assert(SORT_MERGE_RUNS >= 1 && SORT_MERGE_RUNS <= SORT__MAX_MERGE, "SORT_MERGE_RUNS");

static void SORT__FN(_insertion)(SORT_T *a, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		SORT_T x = a[i];
		size_t j = i;

		while (j > 0 && SORT_KEY(a[j - 1]) > SORT_KEY(x)) {
			a[j] = a[j - 1];
			j--;
		}
		a[j] = x;
	}
}

static void SORT__FN(_reverse)(SORT_T *a, size_t n)
{
	for (size_t lo = 0, hi = n - 1; n && lo < hi; lo++, hi--) {
		SORT_T t = a[lo];

		a[lo] = a[hi];
		a[hi] = t;
	}
}

/*
 * Cut @a into maximal runs, turning the strictly descending ones around; their starts go to
 * @start. Return how many, or SORT_MERGE_RUNS + 1 as soon as there are more (some runs are
 * then turned around: the radix sort does not mind).
 */
static size_t SORT__FN(_runs)(SORT_T *a, size_t n, size_t *start)
{
	size_t nr = 0;

	for (size_t i = 0, j; i < n; i = j) {
		if (nr == SORT_MERGE_RUNS)
			return nr + 1;
		start[nr++] = i;
		j = i + 1;
		if (j < n && SORT_KEY(a[j]) < SORT_KEY(a[i])) {
			while (j < n && SORT_KEY(a[j]) < SORT_KEY(a[j - 1]))
				j++;
			SORT__FN(_reverse)(a + i, j - i);
		} else {
			while (j < n && SORT_KEY(a[j]) >= SORT_KEY(a[j - 1]))
				j++;
		}
	}
	return nr;
}

/* Merge the @nr sorted runs of @a that begin at @start; ties from the earlier run first. */
static SORT_T *SORT__FN(_merge)(SORT_T *a, SORT_T *tmp, size_t n, size_t *start, size_t nr)
{
	SORT_T *src = a, *dst = tmp, *t;

	while (nr > 1) {
		size_t k = 0;

		for (size_t r = 0; r < nr; r += 2) {
			size_t lo = start[r], mid = r + 1 < nr ? start[r + 1] : n;
			size_t hi = r + 2 < nr ? start[r + 2] : n, i = lo, j = mid, o = lo;

			while (i < mid && j < hi)
				dst[o++] = SORT_KEY(src[j]) < SORT_KEY(src[i]) ? src[j++] : src[i++];
			while (i < mid)
				dst[o++] = src[i++];
			while (j < hi)
				dst[o++] = src[j++];
			start[k++] = lo;
		}
		nr = k;
		t = src;
		src = dst;
		dst = t;
	}
	return src;
}

static SORT_T *SORT__FN(_radix)(SORT_T *a, SORT_T *tmp, size_t n)
{
	const unsigned bits = n < 1024 ? 8 : SORT__RADIX_BITS;
	const size_t nb = (size_t)1 << bits;
	uintptr_t lo = UINTPTR_MAX, hi = 0, diff = 0, span;
	size_t count[(size_t)1 << SORT__RADIX_BITS];
	SORT_T *src = a, *dst = tmp, *t;
	unsigned low = 0;

	for (size_t i = 0; i < n; i++) {
		uintptr_t k = SORT_KEY(a[i]);

		lo = k < lo ? k : lo;
		hi = k > hi ? k : hi;
		diff |= k ^ SORT_KEY(a[0]);
	}
	if (!diff)
		return a;
	/* Every key is lo plus a multiple of 1 << low: sort by (key - lo) >> low. */
	low = (unsigned)__builtin_ctzl((unsigned long)diff);
	span = (hi - lo) >> low;
	for (unsigned shift = low; (span >> (shift - low)) != 0; shift += bits) {
		size_t pos = 0;

		memset(count, 0, nb * sizeof(count[0]));
		for (size_t i = 0; i < n; i++)
			count[((SORT_KEY(src[i]) - lo) >> shift) & (nb - 1)]++;
		for (size_t d = 0; d < nb; d++) {
			size_t c = count[d];

			count[d] = pos;
			pos += c;
		}
		for (size_t i = 0; i < n; i++)
			dst[count[((SORT_KEY(src[i]) - lo) >> shift) & (nb - 1)]++] = src[i];
		t = src;
		src = dst;
		dst = t;
		if (shift - low + bits >= 8 * sizeof(uintptr_t))
			break;
	}
	return src;
}

static SORT_T *SORT_NAME(SORT_T *a, SORT_T *tmp, size_t n)
{
	size_t start[SORT__MAX_MERGE], nr;

	if (n <= SORT_SMALL) {
		SORT__FN(_insertion)(a, n);
		return a;
	}
	nr = SORT__FN(_runs)(a, n, start);
	if (nr <= SORT_MERGE_RUNS)
		return SORT__FN(_merge)(a, tmp, n, start, nr);
	return SORT__FN(_radix)(a, tmp, n);
}

#undef SORT__FN
#undef SORT_NAME
#undef SORT_T
#undef SORT_KEY
#undef SORT_MERGE_RUNS
#undef SORT_SMALL
