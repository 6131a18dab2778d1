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

#include "hmap.h"

#define PAGE 4096
#define RANGE ((uintptr_t)256 << 10)

/* Fake chunks: the map only stores the pointer. */
static char chunk_a, chunk_b;

START_TEST(test_reregistered_range)
{
	uintptr_t start = (uintptr_t)0x7f0000040000ULL, addr = start + 8;
	struct pcpu_hmeta *a, *b, *m;
	uint32_t gen;

	ck_assert_int_eq(pcpu_hmap_init(RANGE, PAGE), 0);
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

	ck_assert_int_eq(pcpu_hmap_init(RANGE, PAGE), 0);
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

int main(void)
{
	Suite *s = suite_create("hmap");
	TCase *tc = tcase_create("hmap");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_reregistered_range);
	tcase_add_test(tc, test_stale_cache_other_meta);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
