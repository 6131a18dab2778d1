/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * The handle map (lib/hmap.c): lookups through the per-thread one-entry cache
 * (pcpu_hmap_find()) after metas are released and their addresses registered again, as when
 * a chunk is destroyed and the next one is mapped at the same addresses. A stale cached meta
 * once answered for the new chunk: the front then handed out an object of a chunk it took
 * for destroyed (seen under load in test_trim with the cache-coloured layout).
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hmap.h"
#include "../check_run.h"

#define PAGE 4096
#define RANGE ((uintptr_t)256 << 10)

/* Fake chunks: the map only stores the pointer. */
static char chunk_a, chunk_b;

START_TEST(test_reregistered_range)
{
	uintptr_t start = (uintptr_t)0x7f0000040000ULL, addr = start + 8;
	struct pcpu_hmeta *a, *b, *m;
	uint32_t gen;

	ck_assert_int_eq(pcpu_hmap_init(RANGE, PAGE, PCPU_HMAP_SPREAD), 0);
	a = pcpu_hmap_add((struct pcpu_chunk *)&chunk_a, start, start + RANGE);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_eq(pcpu_hmap_find(addr), a); /* now this thread's cached meta */
	pcpu_hmap_del(a);
	ck_assert_ptr_null(pcpu_hmap_find(addr));
	ck_assert_ptr_null(pcpu_hmap_state(a, addr, &gen));
	/* The next chunk at the same addresses: a meta of its own (a's, reused, or another). */
	ck_assert_ptr_eq(pcpu_hmap_find(addr), NULL);
	b = pcpu_hmap_add((struct pcpu_chunk *)&chunk_b, start, start + RANGE);
	ck_assert_ptr_nonnull(b);
	m = pcpu_hmap_find(addr);
	ck_assert_ptr_eq(m, b);
	ck_assert_ptr_eq(m->chunk, (struct pcpu_chunk *)&chunk_b);
	pcpu_hmap_del(b);
}
END_TEST

START_TEST(test_stale_cache_other_meta)
{
	/* The cache holds a released meta while a different one covers its addresses. */
	uintptr_t s1 = (uintptr_t)0x7f0000400000ULL, s2 = s1 + 2 * RANGE, addr = s1 + 64;
	struct pcpu_hmeta *a, *x, *b;

	ck_assert_int_eq(pcpu_hmap_init(RANGE, PAGE, PCPU_HMAP_SPREAD), 0);
	a = pcpu_hmap_add((struct pcpu_chunk *)&chunk_a, s1, s1 + RANGE);
	ck_assert_ptr_eq(pcpu_hmap_find(addr), a);
	/* Another range takes the free list's first meta after a's release... */
	x = pcpu_hmap_add((struct pcpu_chunk *)&chunk_b, s2, s2 + RANGE);
	pcpu_hmap_del(a);
	b = pcpu_hmap_add((struct pcpu_chunk *)&chunk_b, s1, s1 + RANGE);
	ck_assert_ptr_nonnull(b);
	/* ...and whichever meta now covers s1, the cached one answers only if it is that one. */
	ck_assert_ptr_eq(pcpu_hmap_find(addr), b);
	ck_assert_ptr_eq(pcpu_hmap_find(s2 + 8), x);
	pcpu_hmap_del(b);
	pcpu_hmap_del(x);
}
END_TEST

/*
 * SPREAD: every 4-aligned address of a range has a state byte of its own, inside the
 * meta's array, and the bytes of objects that are neighbours, or a power of two apart
 * (where two CPUs' batches start), lie on different cache lines (two CPUs cycling them
 * must not share one), for ranges that start on and off a granule.
 */
START_TEST(test_state_bytes)
{
	static const uintptr_t starts[] = {0x7f0000800000ULL, 0x7f0000900002ULL};
	size_t nbytes = (RANGE / 4 + 1 + PCPU_HMAP_STATE_BLOCK - 1) &
			~(size_t)(PCPU_HMAP_STATE_BLOCK - 1);
	uint8_t *seen = calloc(nbytes, 1);

	ck_assert_ptr_nonnull(seen);
	ck_assert_int_eq(pcpu_hmap_init(RANGE, PAGE, PCPU_HMAP_SPREAD), 0);
	for (size_t i = 0; i < sizeof(starts) / sizeof(starts[0]); i++) {
		uintptr_t start = starts[i], end = start + RANGE;
		struct pcpu_hmeta *m = pcpu_hmap_add((struct pcpu_chunk *)&chunk_a, start, end);
		uint32_t gen;

		ck_assert_ptr_nonnull(m);
		memset(seen, 0, nbytes);
		for (uintptr_t a = (start + 3) & ~(uintptr_t)3; a < end; a += 4) {
			uint8_t *s = pcpu_hmap_state(m, a, &gen);
			uintptr_t dmax;
			size_t at;

			ck_assert_ptr_nonnull(s);
			at = (size_t)(s - m->state);
			ck_assert_uint_lt(at, nbytes);
			ck_assert_msg(!seen[at], "state byte %zu shared (address %#lx)", at,
				      (unsigned long)a);
			seen[at] = 1;
			/*
			 * Neighbours everywhere; every power of two up to half a block of
			 * granules in the first two blocks (the layout repeats block by block,
			 * and all of them everywhere took minutes under valgrind).
			 */
			dmax = a - start < 2 * 4 * PCPU_HMAP_STATE_BLOCK ? 4 * PCPU_HMAP_STATE_BLOCK / 2
									  : 8;
			for (uintptr_t d = 4; d <= dmax; d *= 2) {
				uint8_t *t = a + d < end ? pcpu_hmap_state(m, a + d, &gen) : NULL;

				if (t)
					ck_assert_uint_ne((uintptr_t)s / 64, (uintptr_t)t / 64);
			}
		}
		ck_assert_ptr_null(pcpu_hmap_state(m, end, &gen));
		ck_assert_ptr_null(pcpu_hmap_state(m, start + 1 + 4 * ((start & 3) == 0), &gen));
		pcpu_hmap_del(m);
	}
	free(seen);
}
END_TEST

/*
 * RUNS: every 4-aligned address has a byte of its own, and a run of neighbouring granules
 * has neighbouring bytes, so two runs of objects share at most the cache line where they
 * meet (a CPU's batch against the next CPU's), for ranges that start on and off a granule.
 */
START_TEST(test_state_bytes_runs)
{
	static const uintptr_t starts[] = {0x7f0000800000ULL, 0x7f0000900002ULL};
	size_t nbytes = (RANGE / 4 + 1 + PCPU_HMAP_STATE_BLOCK - 1) &
			~(size_t)(PCPU_HMAP_STATE_BLOCK - 1);

	ck_assert_int_eq(pcpu_hmap_init(RANGE, PAGE, PCPU_HMAP_RUNS), 0);
	for (size_t i = 0; i < sizeof(starts) / sizeof(starts[0]); i++) {
		uintptr_t start = starts[i], end = start + RANGE;
		uintptr_t first = (start + 3) & ~(uintptr_t)3;
		struct pcpu_hmeta *m = pcpu_hmap_add((struct pcpu_chunk *)&chunk_a, start, end);
		uint8_t *s0, *prev = NULL;
		uint32_t gen;

		ck_assert_ptr_nonnull(m);
		s0 = pcpu_hmap_state(m, first, &gen);
		ck_assert_ptr_nonnull(s0);
		/* The first granule's byte is the array's first (or second: a mid-granule start). */
		ck_assert_ptr_eq(s0, m->state + ((start & 3) != 0));
		for (uintptr_t a = first; a < end; a += 4) {
			uint8_t *s = pcpu_hmap_state(m, a, &gen);

			ck_assert_ptr_nonnull(s);
			ck_assert_ptr_eq(s, s0 + (a - first) / 4);
			ck_assert_uint_lt((size_t)(s - m->state), nbytes);
			if (prev)
				ck_assert_ptr_eq(s, prev + 1);
			prev = s;
		}
		/* Two batches of 512 objects of 8 bytes, back to back: one line in common. */
		{
			uintptr_t a = first + 4096 * 4, b = a + 4096;
			uintptr_t la = (uintptr_t)pcpu_hmap_state(m, a, &gen) / 64;
			uintptr_t la_end = (uintptr_t)pcpu_hmap_state(m, b - 8, &gen) / 64;
			uintptr_t lb = (uintptr_t)pcpu_hmap_state(m, b, &gen) / 64;
			uintptr_t lb_end = (uintptr_t)pcpu_hmap_state(m, b + 4096 - 8, &gen) / 64;

			ck_assert_uint_le(la_end - la + 1, 17);
			ck_assert_uint_le(lb_end - lb + 1, 17);
			ck_assert_uint_le(la_end >= lb ? la_end - lb + 1 : 0, 1);
		}
		ck_assert_ptr_null(pcpu_hmap_state(m, end, &gen));
		ck_assert_ptr_null(pcpu_hmap_state(m, first + 1, &gen));
		pcpu_hmap_del(m);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("hmap");
	TCase *tc = tcase_create("hmap");

	tcase_add_test(tc, test_reregistered_range);
	tcase_add_test(tc, test_stale_cache_other_meta);
	tcase_add_test(tc, test_state_bytes);
	tcase_add_test(tc, test_state_bytes_runs);
	suite_add_tcase(s, tc);
	return pcpu_check_run(s, CK_FORK_GETENV);
}
