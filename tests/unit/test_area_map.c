/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * test_area_map - unit tests for lib/area_map.c, built straight from its source.
 *
 * Environment: PCPU_TEST_SEED (random streams, default 12345), PCPU_AM_OPS (length of the
 * random run, default 3M), PCPU_AM_DEPTH (exhaustive depth, default 6: about 13 s; 7 takes
 * about a minute; the alphabets with bulk operations go one level less deep).
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "area_map.h"
#include "am_model.h"
#include "../check_run.h"

static char why[512];

/* Check's ck_assert costs a message to the parent each time: keep hot loops on plain ifs. */
#define CHECK_OK(expr)                                                  \
	do {                                                            \
		if ((expr) != 0)                                        \
			ck_abort_msg("%s: %s", #expr, why);             \
	} while (0)
#define REQUIRE(cond)                                                   \
	do {                                                            \
		if (!(cond))                                            \
			ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #cond); \
	} while (0)

static long env_long(const char *name, long def)
{
	const char *s = getenv(name);

	return s && *s ? strtol(s, NULL, 0) : def;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* xorshift64*: small, fast, and the same everywhere. */
static uint64_t rng_state;

static void rng_seed(uint64_t seed)
{
	rng_state = seed * 0x9E3779B97F4A7C15ULL + 1;
}

static uint32_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 0x2545F4914F6CDD1DULL) >> 32);
}

static int rnd_range(int lo, int hi)
{
	return lo + (int)(rnd() % (uint32_t)(hi - lo + 1));
}

/* ---------------------------------------------------------------------------------------- */
/* Basics                                                                                    */
/* ---------------------------------------------------------------------------------------- */

START_TEST(test_init_geometry)
{
	struct pcpu_area_map m;

	ck_assert_int_eq(pcpu_am_init(&m, 8192, 3000, 0, 0, true), -EINVAL);
	ck_assert_int_eq(pcpu_am_init(&m, 8192, 128, 0, 0, true), -EINVAL);
	ck_assert_int_eq(pcpu_am_init(&m, 6000, 4096, 0, 0, true), -EINVAL);
	ck_assert_int_eq(pcpu_am_init(&m, 0, 4096, 0, 0, true), -EINVAL);
	ck_assert_int_eq(pcpu_am_init(&m, 8192, 4096, 2, 0, true), -EINVAL);
	ck_assert_int_eq(pcpu_am_init(&m, 8192, 4096, 0, 6, true), -EINVAL);
	ck_assert_int_eq(pcpu_am_init(&m, 8192, 4096, 4096, 4096, true), -EINVAL);
	ck_assert_int_eq(pcpu_am_init(&m, 8192, 4096, -4, 0, true), -EINVAL);

	ck_assert_int_eq(pcpu_am_init(&m, 8192, 4096, 0, 0, false), 0);
	CHECK_OK(pcpu_am_verify(&m, why, sizeof(why)));
	ck_assert_int_eq(m.map_bits, 2048);
	ck_assert_int_eq(m.nr_blocks, 2);
	ck_assert_int_eq(m.free_bytes, 8192);
	ck_assert_int_eq(m.nr_populated, 0);
	ck_assert_int_eq(m.nr_empty_pop_pages, 0);
	ck_assert_int_eq(pcpu_am_contig_bytes(&m), 8192);
	ck_assert_int_eq(pcpu_am_next_unpop(&m, 0), 0);
	ck_assert_int_eq(pcpu_am_next_pop(&m, 0), 2);
	pcpu_am_populated(&m, 1, 1);
	ck_assert_int_eq(m.nr_empty_pop_pages, 1);
	ck_assert_int_eq(pcpu_am_next_pop(&m, 0), 1);
	ck_assert_int_eq(pcpu_am_next_unpop(&m, 1), 2);
	CHECK_OK(pcpu_am_verify(&m, why, sizeof(why)));
	pcpu_am_destroy(&m);

	/* 512-byte blocks are legal (128 bits: two words). */
	ck_assert_int_eq(pcpu_am_init(&m, 1536, 512, 0, 0, true), 0);
	CHECK_OK(pcpu_am_verify(&m, why, sizeof(why)));
	pcpu_am_destroy(&m);
}
END_TEST

START_TEST(test_simple_alloc_free)
{
	struct pcpu_area_map m;
	int a, b, c, d;

	ck_assert_int_eq(pcpu_am_init(&m, 16384, 4096, 0, 0, true), 0);
	a = pcpu_am_alloc(&m, 1, 1, false);
	b = pcpu_am_alloc(&m, 8, 8, false);
	c = pcpu_am_alloc(&m, 5, 4, false);
	ck_assert_int_eq(a, 0);
	ck_assert_int_eq(b, 8);
	ck_assert_int_eq(c, 16);
	ck_assert_int_eq(pcpu_am_alloc_size(&m, c), 8);
	ck_assert_int_eq(m.nr_empty_pop_pages, 3);
	d = pcpu_am_alloc(&m, 4096, 4096, false);
	ck_assert_int_eq(d, 4096);
	ck_assert_int_eq(m.nr_empty_pop_pages, 2);
	CHECK_OK(pcpu_am_verify(&m, why, sizeof(why)));
	/* The hole at 4 is left for a later small request: first fit inside the block. */
	ck_assert_int_eq(pcpu_am_alloc(&m, 4, 4, false), 4);

	ck_assert_int_eq(pcpu_am_alloc(&m, 0, 4, false), -1);
	ck_assert_int_eq(pcpu_am_alloc(&m, 16385, 4, false), -1);
	ck_assert_int_eq(pcpu_am_alloc(&m, 4, 3, false), -1);
	ck_assert_int_eq(pcpu_am_alloc(&m, 4, 8192, false), -1);
	ck_assert_int_eq(pcpu_am_alloc(&m, 4, 0, false), -1);

	ck_assert_int_eq(pcpu_am_free(&m, b), 8);
	ck_assert_int_eq(pcpu_am_free(&m, b), -1);
	ck_assert_int_eq(pcpu_am_free(&m, d), 4096);
	ck_assert_int_eq(m.nr_empty_pop_pages, 3);
	ck_assert_int_eq(pcpu_am_free(&m, a), 4);
	ck_assert_int_eq(pcpu_am_free(&m, 4), 4);
	ck_assert_int_eq(pcpu_am_free(&m, c), 8);
	ck_assert_int_eq(m.nr_empty_pop_pages, 4);
	ck_assert_int_eq(m.nr_alloc, 0);
	ck_assert_int_eq(pcpu_am_contig_bytes(&m), 16384);
	CHECK_OK(pcpu_am_verify(&m, why, sizeof(why)));
	pcpu_am_destroy(&m);
}
END_TEST

/* An allocation into unpopulated blocks leaves the empty count alone; populate settles it. */
START_TEST(test_empty_pop_accounting)
{
	struct pcpu_area_map m;
	int off;

	ck_assert_int_eq(pcpu_am_init(&m, 4 * 4096, 4096, 0, 0, false), 0);
	pcpu_am_populated(&m, 0, 1);
	ck_assert_int_eq(m.nr_empty_pop_pages, 1);
	/* pop_only must stay in block 0. */
	off = pcpu_am_alloc(&m, 4096, 4, true);
	ck_assert_int_eq(off, 0);
	ck_assert_int_eq(m.nr_empty_pop_pages, 0);
	ck_assert_int_eq(pcpu_am_alloc(&m, 4, 4, true), -1);
	off = pcpu_am_alloc(&m, 6000, 4, false);
	ck_assert_int_eq(off, 4096);
	ck_assert_int_eq(m.nr_empty_pop_pages, 0);
	pcpu_am_populated(&m, 1, 2);
	ck_assert_int_eq(m.nr_empty_pop_pages, 0);
	CHECK_OK(pcpu_am_verify(&m, why, sizeof(why)));
	ck_assert_int_eq(pcpu_am_free(&m, 4096), 6000 / 4 * 4);
	ck_assert_int_eq(m.nr_empty_pop_pages, 2);
	pcpu_am_depopulated(&m, 1, 2);
	ck_assert_int_eq(m.nr_empty_pop_pages, 0);
	ck_assert_int_eq(m.nr_populated, 1);
	CHECK_OK(pcpu_am_verify(&m, why, sizeof(why)));
	pcpu_am_destroy(&m);
}
END_TEST

static int collect(int off, int size, void *arg)
{
	int *v = arg;

	v[v[0] * 2 + 1] = off;
	v[v[0] * 2 + 2] = size;
	v[0]++;
	return 0;
}

START_TEST(test_region_map)
{
	struct pcpu_area_map m;
	struct pcpu_am_frag f;
	int v[64] = { 0 };
	int a, b;

	/* The first chunk: a static head of 2.5 pages, an unused tail of 100 bytes. */
	ck_assert_int_eq(pcpu_am_init(&m, 8 * 4096, 4096, 10240, 100, true), 0);
	CHECK_OK(pcpu_am_verify(&m, why, sizeof(why)));
	ck_assert_int_eq(m.free_bytes, 8 * 4096 - 10240 - 100);
	ck_assert_int_eq(m.nr_alloc, 0);
	/* Blocks 0-2 hold the head, block 7 the tail. */
	ck_assert_int_eq(m.nr_empty_pop_pages, 4);
	ck_assert(!pcpu_am_block_empty(&m, 2));
	ck_assert(!pcpu_am_block_empty(&m, 7));
	a = pcpu_am_alloc(&m, 16, 16, false);
	ck_assert_int_eq(a, 10240);
	b = pcpu_am_alloc(&m, 4096, 4096, false);
	ck_assert_int_eq(b, 12288);
	ck_assert_int_eq(pcpu_am_alloc(&m, 4 * 4096, 4096, false), -1);
	ck_assert_int_ge(pcpu_am_alloc(&m, 3 * 4096, 4096, false), 16384);
	CHECK_OK(pcpu_am_verify(&m, why, sizeof(why)));
	ck_assert_int_eq(pcpu_am_for_each_alloc(&m, collect, v), 0);
	ck_assert_int_eq(v[0], 3);
	ck_assert_int_eq(v[1], a);
	ck_assert_int_eq(v[2], 16);
	ck_assert_int_eq(v[3], b);
	ck_assert_int_eq(pcpu_am_frag(&m, &f), 0);
	ck_assert_int_eq(f.nr_alloc, 3);
	ck_assert_int_eq(f.min_alloc, 16);
	ck_assert_int_eq(f.max_alloc, 3 * 4096);
	ck_assert_int_eq(f.med_alloc, 4096);
	ck_assert_int_eq(f.sum_frag, 12288 - 10256);
	ck_assert_int_eq(f.max_frag, 12288 - 10256);
	ck_assert_int_eq(f.first_free, 10256);
	/* Edges are not allocations. */
	ck_assert_int_eq(pcpu_am_free(&m, 0), -1);
	ck_assert_int_eq(pcpu_am_free(&m, 8 * 4096 - 100), -1);
	ck_assert_int_eq(pcpu_am_free(&m, a), 16);
	ck_assert_int_eq(pcpu_am_free(&m, b), 4096);
	CHECK_OK(pcpu_am_verify(&m, why, sizeof(why)));
	pcpu_am_destroy(&m);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* Invalid frees                                                                             */
/* ---------------------------------------------------------------------------------------- */

START_TEST(test_invalid_free)
{
	static const int geo[][4] = {
		{ 4 * 4096, 4096, 0, 0 },
		{ 4 * 4096, 4096, 1000, 2000 },
		{ 6 * 512, 512, 516, 4 },
	};
	struct am_model md;
	struct pcpu_area_map m;
	int g, i, k, off, ret, unit;
	int probes[64], np;

	for (g = 0; g < 3; g++) {
		unit = geo[g][0];
		ck_assert_int_eq(pcpu_am_init(&m, unit, geo[g][1], geo[g][2], geo[g][3], true), 0);
		ck_assert_int_eq(amm_init(&md, unit, geo[g][1], geo[g][2], geo[g][3], true), 0);
		rng_seed(77 + g);
		for (i = 0; i < 40; i++) {
			int size = rnd_range(1, 300), align = 1 << rnd_range(0, 6);

			ret = pcpu_am_alloc(&m, size, align, false);
			CHECK_OK(amm_alloc(&md, &m, size, align, false, ret, why, sizeof(why)));
		}
		/* Free a few so there are double-free candidates. */
		for (i = 0; i < 5 && md.nlive; i++) {
			k = rnd() % md.nlive;
			off = md.live[k].off;
			CHECK_OK(amm_free(&md, k, pcpu_am_free(&m, off), why, sizeof(why)));
			CHECK_OK(amm_bad_free(&md, &m, off, why, sizeof(why)));
		}
		np = 0;
		probes[np++] = -4;
		probes[np++] = -1;
		probes[np++] = unit;
		probes[np++] = unit + 4;
		probes[np++] = 1 << 30;
		probes[np++] = unit - 4;
		probes[np++] = 0;
		probes[np++] = geo[g][2] ? geo[g][2] - 4 : 4;
		probes[np++] = unit - geo[g][3];
		for (i = 0; i < md.nlive && np < 60; i++) {
			if (md.live[i].size > 4)
				probes[np++] = md.live[i].off + 4;
			probes[np++] = md.live[i].off + 1;
			probes[np++] = md.live[i].off + 2;
		}
		for (i = 0; i < np; i++)
			CHECK_OK(amm_bad_free(&md, &m, probes[i], why, sizeof(why)));
		CHECK_OK(amm_compare(&md, &m, why, sizeof(why)));
		amm_destroy(&md);
		pcpu_am_destroy(&m);
	}
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* Bulk allocation and free                                                                  */
/* ---------------------------------------------------------------------------------------- */

/* alloc_many on @m and @md, judged (a short batch also against a single alloc). */
static int many(struct pcpu_area_map *m, struct am_model *md, int size, int align, bool pop_only,
		int max, int *offs)
{
	int ret = pcpu_am_alloc_many(m, size, align, pop_only, max, offs);

	CHECK_OK(amm_alloc_many(md, m, size, align, pop_only, max, ret, offs, true, why,
				sizeof(why)));
	CHECK_OK(amm_compare(md, m, why, sizeof(why)));
	return ret;
}

START_TEST(test_alloc_many_basic)
{
	static int offs[20000];
	struct pcpu_area_map m;
	struct am_model md;
	int i, n;

	ck_assert_int_eq(pcpu_am_init(&m, 4 * 4096, 4096, 0, 0, true), 0);
	ck_assert_int_eq(amm_init(&md, 4 * 4096, 4096, 0, 0, true), 0);
	/* Packed: one run, consecutive objects. */
	ck_assert_int_eq(many(&m, &md, 8, 8, false, 100, offs), 100);
	for (i = 0; i < 100; i++)
		REQUIRE(offs[i] == 8 * i);
	ck_assert_int_eq(m.nr_alloc, 100);
	ck_assert_int_eq(m.free_bytes, 4 * 4096 - 800);
	ck_assert_int_eq(m.nr_empty_pop_pages, 3);
	/* With gaps: 12 bytes aligned 8 leave a 4-byte hole after each. */
	ck_assert_int_eq(many(&m, &md, 12, 8, false, 10, offs), 10);
	for (i = 0; i < 10; i++)
		REQUIRE(offs[i] == 800 + 16 * i);
	/* The holes are free space like any other: the next small request takes the first. */
	n = pcpu_am_alloc(&m, 4, 4, false);
	ck_assert_int_eq(n, 812);
	CHECK_OK(amm_alloc(&md, &m, 4, 4, false, n, why, sizeof(why)));
	/* Each object is its own allocation. */
	ck_assert_int_eq(pcpu_am_free(&m, 816), 12);
	CHECK_OK(amm_free(&md, 100 + 1, 12, why, sizeof(why)));
	CHECK_OK(amm_compare(&md, &m, why, sizeof(why)));
	/* Across blocks, packed and with gaps. */
	ck_assert_int_eq(many(&m, &md, 4, 4, false, 2000, offs), 2000);
	ck_assert_int_eq(many(&m, &md, 20, 8, false, 300, offs), 300);
	/* More than fits: the map fills up (4-byte objects take every hole). */
	n = many(&m, &md, 4, 4, false, 20000, offs);
	ck_assert_int_lt(n, 20000);
	ck_assert_int_eq(m.free_bytes, 0);
	ck_assert_int_eq(many(&m, &md, 4, 4, false, 1, offs), 0);
	/* Bad requests allocate nothing. */
	ck_assert_int_eq(pcpu_am_free(&m, 0), 8);
	CHECK_OK(amm_free(&md, 0, 8, why, sizeof(why)));
	ck_assert_int_eq(many(&m, &md, 0, 4, false, 1, offs), 0);
	ck_assert_int_eq(many(&m, &md, 4, 3, false, 1, offs), 0);
	ck_assert_int_eq(many(&m, &md, 4, 8192, false, 1, offs), 0);
	ck_assert_int_eq(many(&m, &md, 4, 4, false, 0, offs), 0);
	ck_assert_int_eq(many(&m, &md, 4, 4, false, -1, offs), 0);
	ck_assert_int_eq(many(&m, &md, 4, 4, false, 1, offs), 1);
	ck_assert_int_eq(offs[0], 0);
	amm_destroy(&md);
	pcpu_am_destroy(&m);
}
END_TEST

/* pop_only stays on populated blocks; a region map's edges are never handed out. */
START_TEST(test_alloc_many_pop_region)
{
	static int offs[5000];
	struct pcpu_area_map m;
	struct am_model md;
	int i, n;

	ck_assert_int_eq(pcpu_am_init(&m, 4 * 4096, 4096, 0, 0, false), 0);
	ck_assert_int_eq(amm_init(&md, 4 * 4096, 4096, 0, 0, false), 0);
	ck_assert_int_eq(many(&m, &md, 16, 16, true, 10, offs), 0);
	pcpu_am_populated(&m, 1, 2);
	amm_populate(&md, 1, true);
	amm_populate(&md, 2, true);
	n = many(&m, &md, 16, 16, true, 5000, offs);
	ck_assert_int_eq(n, 512);
	for (i = 0; i < n; i++)
		REQUIRE(offs[i] == 4096 + 16 * i);
	ck_assert_int_eq(m.nr_empty_pop_pages, 0);
	/* Not pop_only: the unpopulated blocks serve too. */
	ck_assert_int_eq(many(&m, &md, 16, 16, false, 5000, offs), 512);
	amm_destroy(&md);
	pcpu_am_destroy(&m);

	/* A static head of 100 bytes and an unused tail of 36: an aligned start after it. */
	ck_assert_int_eq(pcpu_am_init(&m, 2 * 4096, 4096, 100, 36, true), 0);
	ck_assert_int_eq(amm_init(&md, 2 * 4096, 4096, 100, 36, true), 0);
	n = many(&m, &md, 8, 8, false, 5000, offs);
	ck_assert_int_eq(offs[0], 104);
	ck_assert_int_eq(n, (2 * 4096 - 36 - 104) / 8);
	ck_assert_int_eq(m.free_bytes, 4 + 4);
	ck_assert_int_eq(many(&m, &md, 4, 4, false, 5000, offs), 2);
	ck_assert_int_eq(m.free_bytes, 0);
	amm_destroy(&md);
	pcpu_am_destroy(&m);
}
END_TEST

START_TEST(test_free_many)
{
	static int offs[3000], sel[3000];
	struct pcpu_area_map m;
	struct am_model md;
	int i, n, bad[3];

	ck_assert_int_eq(pcpu_am_init(&m, 4 * 4096, 4096, 0, 0, true), 0);
	ck_assert_int_eq(amm_init(&md, 4 * 4096, 4096, 0, 0, true), 0);
	n = many(&m, &md, 12, 8, false, 3000, offs);
	ck_assert_int_eq(n, 1024);
	/* Rejected batches change nothing: out of order, repeated, not a start, an edge. */
	bad[0] = offs[5], bad[1] = offs[3];
	CHECK_OK(amm_bad_free_many(&m, bad, 2, why, sizeof(why)));
	bad[0] = offs[3], bad[1] = offs[3];
	CHECK_OK(amm_bad_free_many(&m, bad, 2, why, sizeof(why)));
	bad[0] = offs[3], bad[1] = offs[4] + 4, bad[2] = offs[6];
	CHECK_OK(amm_bad_free_many(&m, bad, 3, why, sizeof(why)));
	bad[0] = offs[3], bad[1] = offs[4] + 12;
	CHECK_OK(amm_bad_free_many(&m, bad, 2, why, sizeof(why)));
	bad[0] = -4;
	CHECK_OK(amm_bad_free_many(&m, bad, 1, why, sizeof(why)));
	ck_assert_int_eq(pcpu_am_free_many(&m, offs, 0), 0);
	/*
	 * Sparse (every 37th: 7 of a block's 256, freed area by area), dense (every other
	 * one: one rebuild per block), then the rest: blocks and the chunk come back whole.
	 */
	for (i = 0; i * 37 < md.nlive; i++)
		sel[i] = 37 * i;
	CHECK_OK(amm_free_many(&md, &m, sel, i, why, sizeof(why)));
	CHECK_OK(amm_compare(&md, &m, why, sizeof(why)));
	for (i = 0; i < md.nlive / 2; i++)
		sel[i] = 2 * i;
	CHECK_OK(amm_free_many(&md, &m, sel, md.nlive / 2, why, sizeof(why)));
	CHECK_OK(amm_compare(&md, &m, why, sizeof(why)));
	ck_assert_int_eq(pcpu_am_free_many(&m, offs, 2), -1);
	for (i = 0; i < md.nlive; i++)
		sel[i] = i;
	CHECK_OK(amm_free_many(&md, &m, sel, md.nlive, why, sizeof(why)));
	CHECK_OK(amm_compare(&md, &m, why, sizeof(why)));
	ck_assert_int_eq(m.nr_alloc, 0);
	ck_assert_int_eq(m.nr_empty_pop_pages, 4);
	ck_assert_int_eq(pcpu_am_contig_bytes(&m), 4 * 4096);
	amm_destroy(&md);
	pcpu_am_destroy(&m);
}
END_TEST

/*
 * The same objects by single calls and in batches of 128 (what the front's refill takes):
 * the time each takes, and the maps checked.
 */
/* The live allocations of @m in address order, into @offs; return how many. */
static int live_offs(const struct pcpu_area_map *m, int *offs)
{
	int k, nr = 0;

	for (k = 0; k < m->map_bits * 4; k += 4)
		if (pcpu_am_is_alloc_start(m, k))
			offs[nr++] = k;
	return nr;
}

START_TEST(test_alloc_many_speed)
{
	enum { NMAPS = 16, UNIT = 64 * 1024, BATCH = 128 };
	static const int sizes[][2] = { { 8, 8 }, { 12, 8 }, { 64, 8 } };
	static int offs[NMAPS][UNIT / 4], nr[NMAPS];
	struct pcpu_area_map m[NMAPS];
	double t0, t_one, t_many, t_free_one, t_free_many;
	int s, i, k, n, got;

	for (s = 0; s < 3; s++) {
		int size = sizes[s][0], align = sizes[s][1];

		for (i = 0; i < NMAPS; i++)
			ck_assert_int_eq(pcpu_am_init(&m[i], UNIT, 4096, 0, 0, true), 0);
		n = 0;
		t0 = now();
		for (i = 0; i < NMAPS; i++)
			while (pcpu_am_alloc(&m[i], size, align, false) >= 0)
				n++;
		t_one = now() - t0;
		for (i = 0; i < NMAPS; i++)
			nr[i] = live_offs(&m[i], offs[i]);
		t0 = now();
		for (i = 0; i < NMAPS; i++)
			for (k = nr[i] - 1; k >= 0; k--)
				REQUIRE(pcpu_am_free(&m[i], offs[i][k]) > 0);
		t_free_one = now() - t0;
		for (i = 0; i < NMAPS; i++) {
			CHECK_OK(pcpu_am_verify(&m[i], why, sizeof(why)));
			ck_assert_int_eq(m[i].nr_alloc, 0);
		}

		got = 0;
		t0 = now();
		for (i = 0; i < NMAPS; i++) {
			nr[i] = 0;
			while ((k = pcpu_am_alloc_many(&m[i], size, align, false, BATCH,
						       offs[i] + nr[i])) > 0)
				nr[i] += k;
			got += nr[i];
		}
		t_many = now() - t0;
		ck_assert_int_eq(got, n);
		for (i = 0; i < NMAPS; i++)
			CHECK_OK(pcpu_am_verify(&m[i], why, sizeof(why)));
		t0 = now();
		for (i = 0; i < NMAPS; i++) {
			for (k = 0; k < nr[i]; k += BATCH) {
				int b = nr[i] - k < BATCH ? nr[i] - k : BATCH;

				REQUIRE(pcpu_am_free_many(&m[i], offs[i] + k, b) > 0);
			}
		}
		t_free_many = now() - t0;
		for (i = 0; i < NMAPS; i++) {
			CHECK_OK(pcpu_am_verify(&m[i], why, sizeof(why)));
			ck_assert_int_eq(m[i].nr_alloc, 0);
			ck_assert_int_eq(pcpu_am_contig_bytes(&m[i]), UNIT);
			pcpu_am_destroy(&m[i]);
		}
		printf("area_map bulk: %d x %d B align %d: alloc %.1f ns/obj one by one, %.1f in "
		       "batches of %d; free (LIFO) %.1f ns/obj one by one, %.1f in batches\n",
		       n, size, align, t_one * 1e9 / n, t_many * 1e9 / n, BATCH,
		       t_free_one * 1e9 / n, t_free_many * 1e9 / n);
	}
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* Random operations against the model                                                       */
/* ---------------------------------------------------------------------------------------- */

/* 4 B .. 32 KiB, mostly small. */
static int rnd_size(void)
{
	int r = rnd() % 100;

	if (r < 55)
		return rnd_range(1, 64);
	if (r < 80)
		return rnd_range(65, 512);
	if (r < 95)
		return rnd_range(513, 4096);
	return rnd_range(4097, 32768);
}

/* 1 .. a page, mostly small; now and then an invalid one. */
static int rnd_align(int block)
{
	int r = rnd() % 1000;

	if (r < 550)
		return 1 << rnd_range(0, 3);
	if (r < 850)
		return 1 << rnd_range(4, 6);
	if (r < 970)
		return 1 << rnd_range(7, 10);
	if (r < 995)
		return block;
	return r & 1 ? 3 : block * 2;
}

struct rnd_stats {
	long ops, allocs, alloc_fail, frees, bad_frees, pops, verifies;
	long manys, many_objs, many_short, free_manys, bad_free_manys;
};

/* Up to 400 objects per batch, mostly small ones (refills). */
static int rnd_many_max(void)
{
	int r = rnd() % 10;

	return r < 3 ? rnd_range(1, 8) : r < 9 ? rnd_range(9, 130) : rnd_range(131, 400);
}

/* A bulk allocation on @m, judged against @md. */
static void rnd_alloc_many(struct pcpu_area_map *m, struct am_model *md, int block,
			   struct rnd_stats *st)
{
	static int offs[400];
	int size = rnd() % 4 ? rnd_range(1, 64) : rnd_size();
	int align = rnd() % 4 ? 1 << rnd_range(0, 3) : rnd_align(block);
	bool pop_only = rnd() % 3 == 0;
	int max = rnd_many_max();
	int ret = pcpu_am_alloc_many(m, size, align, pop_only, max, offs);

	/* A short batch is checked against a single alloc on a copy: now and then. */
	CHECK_OK(amm_alloc_many(md, m, size, align, pop_only, max, ret, offs, rnd() % 8 == 0,
				why, sizeof(why)));
	st->manys++;
	st->many_objs += ret;
	st->many_short += ret < max;
}

/* A bulk free of up to 200 distinct live allocations, or a batch it must reject. */
static void rnd_free_many(struct pcpu_area_map *m, struct am_model *md, struct rnd_stats *st)
{
	static int sel[200], offs[200];
	int n, i, j, k;

	if (rnd() % 10 == 0) {
		/* Sorted live starts with one bad entry: a repeat, a non-start, a swap. */
		n = md->nlive < 8 ? md->nlive : 8;
		for (i = 0; i < n; i++)
			offs[i] = md->live[i].off;
		qsort(offs, n, sizeof(int), amm_cmp_int);
		k = rnd() % 3;
		if (!n || k == 1) {
			offs[n] = n ? offs[n - 1] + rnd_range(1, 8) : rnd_range(-8, md->unit + 8);
			if (amm_is_live(md, offs[n]))
				return;
			n++;
		} else if (k == 0) {
			offs[n] = offs[n - 1];
			n++;
		} else if (n > 1) {
			j = offs[0], offs[0] = offs[1], offs[1] = j;
		} else {
			return;
		}
		CHECK_OK(amm_bad_free_many(m, offs, n, why, sizeof(why)));
		st->bad_free_manys++;
		return;
	}
	n = rnd_range(0, md->nlive < 200 ? md->nlive : 200);
	/* n distinct live allocations, each as likely (selection sampling). */
	for (i = 0, k = 0; k < n; i++)
		if ((int)(rnd() % (uint32_t)(md->nlive - i)) < n - k)
			sel[k++] = i;
	CHECK_OK(amm_free_many(md, m, sel, n, why, sizeof(why)));
	st->free_manys++;
}

static void random_episode(long nops, long verify_all_until, long *step, struct rnd_stats *st)
{
	static const int blocks[] = { 512, 1024, 4096, 4096, 4096 };
	struct pcpu_area_map m;
	struct am_model md;
	int block = blocks[rnd() % 5];
	int nblocks = rnd_range(1, block == 4096 ? 64 : 24);
	int unit = block * nblocks;
	int head = 0, tail = 0;
	bool pop = rnd() & 1;
	int fill = rnd_range(30, 80);
	long i;

	if (rnd() % 3 == 0) {
		head = rnd_range(0, unit / 4 / 2) * 4;
		tail = rnd_range(0, (unit - head) / 4 / 3) * 4;
	}
	ck_assert_int_eq(pcpu_am_init(&m, unit, block, head, tail, pop), 0);
	ck_assert_int_eq(amm_init(&md, unit, block, head, tail, pop), 0);

	for (i = 0; i < nops; i++, (*step)++) {
		int r = rnd() % 1000, k, ret, size, align;
		bool pop_only;

		/* Drift the fill target so the map goes through full and sparse phases. */
		if (i % 5000 == 0)
			fill = rnd_range(20, 90);
		if (r < 10 * fill && rnd() % 8 == 0) {
			rnd_alloc_many(&m, &md, block, st);
		} else if (r < 10 * fill) {
			size = rnd_size();
			align = rnd_align(block);
			pop_only = rnd() % 5 == 0;
			ret = pcpu_am_alloc(&m, size, align, pop_only);
			CHECK_OK(amm_alloc(&md, &m, size, align, pop_only, ret, why, sizeof(why)));
			st->allocs++;
			st->alloc_fail += ret < 0;
			/* Full maps: make room, as a caller would pick another chunk. */
			if (ret < 0 && md.nlive && rnd() % 2) {
				k = rnd() % md.nlive;
				ret = pcpu_am_free(&m, md.live[k].off);
				CHECK_OK(amm_free(&md, k, ret, why, sizeof(why)));
			}
		} else if (r < 960 && rnd() % 16 == 0) {
			rnd_free_many(&m, &md, st);
		} else if (r < 960) {
			if (!md.nlive)
				continue;
			k = rnd() % md.nlive;
			ret = pcpu_am_free(&m, md.live[k].off);
			CHECK_OK(amm_free(&md, k, ret, why, sizeof(why)));
			st->frees++;
		} else if (r < 970) {
			int off = rnd() % 2 && md.nlive ? md.live[rnd() % md.nlive].off +
							      rnd_range(1, 8) :
							  rnd_range(-8, unit + 8);

			CHECK_OK(amm_bad_free(&md, &m, off, why, sizeof(why)));
			st->bad_frees++;
		} else {
			k = rnd() % md.nblocks;
			if (r < 985) {
				int n = rnd_range(1, 3), j;

				pcpu_am_populated(&m, k, n);
				for (j = k; j < k + n && j < md.nblocks; j++)
					amm_populate(&md, j, true);
			} else if (md.blk_free[k] == md.bb) {
				pcpu_am_depopulated(&m, k, 1);
				amm_populate(&md, k, false);
			}
			st->pops++;
		}
		if (*step < verify_all_until || *step % 997 == 0) {
			CHECK_OK(amm_compare(&md, &m, why, sizeof(why)));
			st->verifies++;
		}
	}
	CHECK_OK(amm_compare(&md, &m, why, sizeof(why)));
	while (md.nlive)
		CHECK_OK(amm_free(&md, 0, pcpu_am_free(&m, md.live[0].off), why, sizeof(why)));
	CHECK_OK(amm_compare(&md, &m, why, sizeof(why)));
	ck_assert_int_eq(m.free_bytes, unit - head - tail);
	ck_assert_int_eq(pcpu_am_contig_bytes(&m), unit - head - tail);
	st->ops += nops;
	amm_destroy(&md);
	pcpu_am_destroy(&m);
}

START_TEST(test_random)
{
	long seed = env_long("PCPU_TEST_SEED", 12345);
	long nops = env_long("PCPU_AM_OPS", 3000000);
	struct rnd_stats st = { 0 };
	long step = 0, left = nops;
	double t0 = now();

	rng_seed((uint64_t)seed);
	while (left > 0) {
		long n = rnd_range(2000, 60000);

		if (n > left)
			n = left;
		random_episode(n, 100000, &step, &st);
		left -= n;
	}
	printf("area_map random: seed %ld, %ld ops (%ld allocs, %ld failed, %ld frees, "
	       "%ld bad frees, %ld populate ops, %ld alloc_many of %ld objects, %ld short, "
	       "%ld free_many, %ld bad free_many), %ld full verifies, %.1f s\n",
	       seed, st.ops, st.allocs, st.alloc_fail, st.frees, st.bad_frees, st.pops,
	       st.manys, st.many_objs, st.many_short, st.free_manys, st.bad_free_manys,
	       st.verifies, now() - t0);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* Exhaustive enumeration on tiny maps                                                       */
/* ---------------------------------------------------------------------------------------- */

enum {
	EX_ALLOC, EX_ALLOC_POP, EX_FREE, EX_POPULATE, EX_DEPOPULATE,
	EX_MANY, EX_MANY_POP, EX_FREE_MANY,
};

/*
 * alloc: size, align; many: size, align, max; free: which live (0 first, -1 last, -2 middle);
 * free_many: 0 every other live allocation, 1 the later half of the live list, 2 all.
 */
struct ex_op {
	int kind, a, b, c;
};

struct ex_run {
	const struct ex_op *ops;
	int nops, depth;
	struct pcpu_area_map *maps;  /* one per level */
	struct am_model *models;
	long nodes, allocs_ok, allocs_failed, manys_short;
};

static void ex_apply(struct ex_run *r, int level, const struct ex_op *op)
{
	struct pcpu_area_map *m = &r->maps[level];
	struct am_model *md = &r->models[level];
	int k, ret;

	switch (op->kind) {
	case EX_ALLOC:
	case EX_ALLOC_POP:
		ret = pcpu_am_alloc(m, op->a, op->b, op->kind == EX_ALLOC_POP);
		CHECK_OK(amm_alloc(md, m, op->a, op->b, op->kind == EX_ALLOC_POP, ret, why,
				   sizeof(why)));
		if (ret < 0)
			r->allocs_failed++;
		else
			r->allocs_ok++;
		break;
	case EX_FREE:
		if (!md->nlive) {
			CHECK_OK(amm_bad_free(md, m, md->start, why, sizeof(why)));
			break;
		}
		k = op->a == 0 ? 0 : op->a == -1 ? md->nlive - 1 : md->nlive / 2;
		CHECK_OK(amm_free(md, k, pcpu_am_free(m, md->live[k].off), why, sizeof(why)));
		break;
	case EX_MANY:
	case EX_MANY_POP: {
		static int offs[512];

		REQUIRE(op->c <= 512);
		ret = pcpu_am_alloc_many(m, op->a, op->b, op->kind == EX_MANY_POP, op->c, offs);
		CHECK_OK(amm_alloc_many(md, m, op->a, op->b, op->kind == EX_MANY_POP, op->c, ret,
					offs, true, why, sizeof(why)));
		r->allocs_ok += ret;
		r->manys_short += ret < op->c;
		break;
	}
	case EX_FREE_MANY: {
		static int sel[512];
		int n = 0;

		REQUIRE(md->nlive <= 512);

		for (k = op->a == 1 ? md->nlive / 2 : 0; k < md->nlive; k += op->a ? 1 : 2)
			sel[n++] = k;
		CHECK_OK(amm_free_many(md, m, sel, n, why, sizeof(why)));
		break;
	}
	case EX_POPULATE:
		pcpu_am_populated(m, op->a, 1);
		amm_populate(md, op->a, true);
		break;
	default:
		if (md->blk_free[op->a] == md->bb) {
			pcpu_am_depopulated(m, op->a, 1);
			amm_populate(md, op->a, false);
		}
		break;
	}
}

static void ex_walk(struct ex_run *r, int level)
{
	int i;

	if (level == r->depth)
		return;
	for (i = 0; i < r->nops; i++) {
		am_copy(&r->maps[level + 1], &r->maps[level]);
		amm_copy(&r->models[level + 1], &r->models[level]);
		ex_apply(r, level + 1, &r->ops[i]);
		if (amm_compare(&r->models[level + 1], &r->maps[level + 1], why, sizeof(why))) {
			ck_abort_msg("exhaustive: level %d op %d: %s", level + 1, i, why);
		}
		r->nodes++;
		ex_walk(r, level + 1);
	}
}

static void ex_run(const char *name, const struct ex_op *ops, int nops, int depth, int unit,
		   int block, int head, int tail, bool pop, const struct ex_op *prefix,
		   int nprefix)
{
	struct ex_run r = { ops, nops, depth, NULL, NULL, 0, 0, 0, 0 };
	double t0 = now();
	int i;

	r.maps = calloc(depth + 1, sizeof(*r.maps));
	r.models = calloc(depth + 1, sizeof(*r.models));
	ck_assert(r.maps && r.models);
	ck_assert_int_eq(pcpu_am_init(&r.maps[0], unit, block, head, tail, pop), 0);
	ck_assert_int_eq(amm_init(&r.models[0], unit, block, head, tail, pop), 0);
	for (i = 0; i < nprefix; i++)
		ex_apply(&r, 0, &prefix[i]);
	CHECK_OK(amm_compare(&r.models[0], &r.maps[0], why, sizeof(why)));
	for (i = 1; i <= depth; i++) {
		ck_assert_int_eq(am_clone(&r.maps[i], &r.maps[0]), 0);
		ck_assert_int_eq(amm_init(&r.models[i], unit, block, head, tail, pop), 0);
	}
	ex_walk(&r, 0);
	printf("area_map exhaustive %s: %d ops, depth %d, %ld sequences checked "
	       "(%ld objects allocated, %ld allocs failed, %ld short batches), %.1f s\n",
	       name, nops, depth, r.nodes, r.allocs_ok, r.allocs_failed, r.manys_short,
	       now() - t0);
	for (i = 0; i <= depth; i++) {
		pcpu_am_destroy(&r.maps[i]);
		amm_destroy(&r.models[i]);
	}
	free(r.maps);
	free(r.models);
}

/* Three 512-byte blocks (128 granules each): every sequence of the alphabet. */
START_TEST(test_exhaustive_plain)
{
	static const struct ex_op ops[] = {
		{ EX_ALLOC, 4, 4, 0 },     { EX_ALLOC, 8, 8, 0 },    { EX_ALLOC, 20, 4, 0 },
		{ EX_ALLOC, 4, 64, 0 },    { EX_ALLOC, 200, 4, 0 },  { EX_ALLOC, 256, 256, 0 },
		{ EX_ALLOC, 512, 512, 0 }, { EX_ALLOC, 700, 4, 0 },  { EX_FREE, 0, 0, 0 },
		{ EX_FREE, -1, 0, 0 },     { EX_FREE, -2, 0, 0 },
	};
	ex_run("plain 3x512", ops, 11, (int)env_long("PCPU_AM_DEPTH", 6), 3 * 512, 512, 0, 0,
	       true, NULL, 0);
}
END_TEST

/* Same, from a fragmented start: scattered 8-byte holes across the first block and a half. */
START_TEST(test_exhaustive_fragmented)
{
	static const struct ex_op ops[] = {
		{ EX_ALLOC, 4, 4, 0 },     { EX_ALLOC, 8, 8, 0 },     { EX_ALLOC, 12, 16, 0 },
		{ EX_ALLOC, 100, 4, 0 },   { EX_ALLOC, 512, 512, 0 }, { EX_ALLOC, 600, 4, 0 },
		{ EX_FREE, 0, 0, 0 },      { EX_FREE, -1, 0, 0 },     { EX_FREE, -2, 0, 0 },
	};
	struct ex_op prefix[200];
	int n = 0, i;

	for (i = 0; i < 96; i++)
		prefix[n++] = (struct ex_op){ EX_ALLOC, 8, 4, 0 };
	/*
	 * Free 32 from the middle of the live list (the model removes by swapping in the last
	 * one, so this scatters 8-byte holes over the first 768 bytes).
	 */
	for (i = 0; i < 32; i++)
		prefix[n++] = (struct ex_op){ EX_FREE, -2, 0, 0 };
	ex_run("fragmented 3x512", ops, 9, (int)env_long("PCPU_AM_DEPTH", 6), 3 * 512, 512, 0, 0,
	       true, prefix, n);
}
END_TEST

/* A region map with pop_only requests and (de)population in the alphabet. */
START_TEST(test_exhaustive_region_pop)
{
	static const struct ex_op ops[] = {
		{ EX_ALLOC, 4, 4, 0 },      { EX_ALLOC_POP, 8, 8, 0 },  { EX_ALLOC_POP, 300, 4, 0 },
		{ EX_ALLOC, 512, 512, 0 },  { EX_ALLOC_POP, 520, 4, 0 }, { EX_ALLOC, 40, 32, 0 },
		{ EX_FREE, 0, 0, 0 },       { EX_FREE, -1, 0, 0 },      { EX_POPULATE, 1, 0, 0 },
		{ EX_DEPOPULATE, 1, 0, 0 }, { EX_POPULATE, 2, 0, 0 },   { EX_DEPOPULATE, 3, 0, 0 },
	};

	ex_run("region+pop 4x512", ops, 12, (int)env_long("PCPU_AM_DEPTH", 6), 4 * 512, 512,
	       20, 36, false, (const struct ex_op[]){ { EX_POPULATE, 0, 0, 0 },
						       { EX_POPULATE, 3, 0, 0 } }, 2);
}
END_TEST

/*
 * Bulk allocations and frees mixed with single ones on three 512-byte blocks: packed
 * batches (8/8, 4/4 across blocks), batches with gaps (12/8, 20/8), one larger than the
 * map (128/128 x 16), from fresh and from fragmented starts.
 */
static const struct ex_op ex_many_ops[] = {
	{ EX_ALLOC, 4, 4, 0 },      { EX_ALLOC, 20, 4, 0 },     { EX_ALLOC, 256, 256, 0 },
	{ EX_MANY, 8, 8, 5 },       { EX_MANY, 12, 8, 40 },     { EX_MANY, 4, 4, 200 },
	{ EX_MANY, 20, 8, 3 },      { EX_MANY, 128, 128, 16 },  { EX_FREE, 0, 0, 0 },
	{ EX_FREE, -1, 0, 0 },      { EX_FREE_MANY, 0, 0, 0 },  { EX_FREE_MANY, 1, 0, 0 },
};

START_TEST(test_exhaustive_many)
{
	ex_run("many 3x512", ex_many_ops, 12, (int)env_long("PCPU_AM_DEPTH", 6) - 1, 3 * 512,
	       512, 0, 0, true, NULL, 0);
}
END_TEST

START_TEST(test_exhaustive_many_fragmented)
{
	struct ex_op prefix[200];
	int n = 0, i;

	for (i = 0; i < 96; i++)
		prefix[n++] = (struct ex_op){ EX_ALLOC, 8, 4, 0 };
	for (i = 0; i < 32; i++)
		prefix[n++] = (struct ex_op){ EX_FREE, -2, 0, 0 };
	ex_run("many fragmented 3x512", ex_many_ops, 12, (int)env_long("PCPU_AM_DEPTH", 6) - 1,
	       3 * 512, 512, 0, 0, true, prefix, n);
}
END_TEST

/* A region map, partly populated: pop_only batches, (de)population between them. */
START_TEST(test_exhaustive_many_region_pop)
{
	static const struct ex_op ops[] = {
		{ EX_ALLOC, 4, 4, 0 },        { EX_MANY_POP, 8, 8, 30 },
		{ EX_MANY_POP, 12, 4, 100 },  { EX_MANY, 20, 8, 50 },
		{ EX_MANY_POP, 512, 512, 3 }, { EX_MANY_POP, 36, 16, 200 },
		{ EX_FREE, 0, 0, 0 },         { EX_FREE_MANY, 0, 0, 0 },
		{ EX_FREE_MANY, 2, 0, 0 },    { EX_POPULATE, 1, 0, 0 },
		{ EX_DEPOPULATE, 1, 0, 0 },   { EX_POPULATE, 2, 0, 0 },
	};

	ex_run("many region+pop 4x512", ops, 12, (int)env_long("PCPU_AM_DEPTH", 6) - 1, 4 * 512,
	       512, 20, 36, false, (const struct ex_op[]){ { EX_POPULATE, 0, 0, 0 },
							 { EX_POPULATE, 3, 0, 0 } }, 2);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* The 2017 bitmap allocator scenarios (Dennis Zhou's 1M-object module)                     */
/* ---------------------------------------------------------------------------------------- */

struct pool {
	struct pcpu_area_map *maps;
	int nmaps, cap, cur;
	int unit, block;
};

struct obj {
	int map, off;
};

static void pool_alloc(struct pool *p, int size, int align, struct obj *o)
{
	int off;

	/* Like the slot lists: keep using the map that last had room. */
	for (;;) {
		if (p->cur < p->nmaps) {
			off = pcpu_am_alloc(&p->maps[p->cur], size, align, false);
			if (off >= 0) {
				o->map = p->cur;
				o->off = off;
				return;
			}
			p->cur++;
			continue;
		}
		if (p->nmaps == p->cap) {
			p->cap = p->cap ? p->cap * 2 : 16;
			p->maps = realloc(p->maps, sizeof(*p->maps) * p->cap);
			ck_assert(p->maps);
		}
		ck_assert_int_eq(pcpu_am_init(&p->maps[p->nmaps++], p->unit, p->block, 0, 0, true), 0);
	}
}

static void pool_check(struct pool *p, long expect_alloc)
{
	long n = 0;
	int i;

	for (i = 0; i < p->nmaps; i++) {
		CHECK_OK(pcpu_am_verify(&p->maps[i], why, sizeof(why)));
		n += p->maps[i].nr_alloc;
	}
	ck_assert_int_eq(n, expect_alloc);
}

static void scenario(const char *name, int size, int align, int nobj, int order)
{
	static const char *const orders[] = { "in order", "alternating", "reverse" };
	struct pool p = { NULL, 0, 0, 0, 64 * 1024, 4096 };
	struct obj *o = calloc(nobj, sizeof(*o));
	double t0 = now(), t1;
	int i, j, n;
	long live;

	ck_assert(o);
	for (i = 0; i < nobj; i++)
		pool_alloc(&p, size, align, &o[i]);
	t1 = now();
	pool_check(&p, nobj);
	/* Objects are distinct, aligned, and where the map says they are. */
	for (i = 0; i < nobj; i++) {
		REQUIRE(o[i].off % (align < 4 ? 4 : align) == 0);
		REQUIRE(pcpu_am_is_alloc_start(&p.maps[o[i].map], o[i].off));
		REQUIRE(pcpu_am_alloc_size(&p.maps[o[i].map], o[i].off) == ((size + 3) & ~3));
	}
	live = nobj;
	for (j = 0; j < nobj; j++) {
		if (order == 0)
			i = j;
		else if (order == 2)
			i = nobj - 1 - j;
		else
			i = j < (nobj + 1) / 2 ? 2 * j : 2 * (j - (nobj + 1) / 2) + 1;
		n = pcpu_am_free(&p.maps[o[i].map], o[i].off);
		REQUIRE(n == ((size + 3) & ~3));
		live--;
		if (j % (nobj / 8) == 0)
			pool_check(&p, live);
	}
	pool_check(&p, 0);
	for (i = 0; i < p.nmaps; i++) {
		ck_assert_int_eq(p.maps[i].free_bytes, p.unit);
		ck_assert_int_eq(pcpu_am_contig_bytes(&p.maps[i]), p.unit);
		ck_assert_int_eq(p.maps[i].nr_empty_pop_pages, p.unit / p.block);
		pcpu_am_destroy(&p.maps[i]);
	}
	printf("area_map 2017 %s: %d x %d B align %d, free %s: %d maps, alloc %.3f s, "
	       "free %.3f s\n", name, nobj, size, align, orders[order], p.nmaps, t1 - t0,
	       now() - t1);
	free(p.maps);
	free(o);
}

START_TEST(test_kernel_2017)
{
	int order;

	for (order = 0; order < 3; order++) {
		scenario("small", 4, 4, 1 << 20, order);
		scenario("small", 16, 16, 1 << 18, order);
		scenario("small", 64, 64, 1 << 17, order);
		/* The pathological case costs a scan over every hole: 1M objects once. */
		scenario("alignment", 4, 8, order ? 1 << 18 : 1 << 20, order);
	}
}
END_TEST

/* "Second half filled": chunks whose latter halves are full before the test objects. */
START_TEST(test_kernel_2017_half_filled)
{
	struct pcpu_area_map m;
	int i, off, n = 0;

	ck_assert_int_eq(pcpu_am_init(&m, 64 * 1024, 4096, 0, 0, true), 0);
	ck_assert_int_eq(pcpu_am_alloc(&m, 32 * 1024, 4096, false), 0);
	/* The second half: 4-byte objects aligned 8, leaving a 4-byte hole after each. */
	for (i = 0; i < 4096; i++)
		REQUIRE(pcpu_am_alloc(&m, 4, 8, false) == 32 * 1024 + 8 * i);
	ck_assert_int_eq(pcpu_am_free(&m, 0), 32 * 1024);
	CHECK_OK(pcpu_am_verify(&m, why, sizeof(why)));
	/* Then 4-byte objects until full: the first half and every hole are used. */
	for (;;) {
		off = pcpu_am_alloc(&m, 4, 4, false);
		if (off < 0)
			break;
		n++;
	}
	CHECK_OK(pcpu_am_verify(&m, why, sizeof(why)));
	ck_assert_int_eq(m.free_bytes, 0);
	ck_assert_int_eq(n, 16384 - 4096);
	pcpu_am_destroy(&m);
}
END_TEST

static Suite *area_map_suite(void)
{
	Suite *s = suite_create("area_map");
	TCase *tc;

	tc = tcase_create("basic");
	tcase_add_test(tc, test_init_geometry);
	tcase_add_test(tc, test_simple_alloc_free);
	tcase_add_test(tc, test_empty_pop_accounting);
	tcase_add_test(tc, test_region_map);
	tcase_add_test(tc, test_invalid_free);
	tcase_add_test(tc, test_alloc_many_basic);
	tcase_add_test(tc, test_alloc_many_pop_region);
	tcase_add_test(tc, test_free_many);
	suite_add_tcase(s, tc);

	tc = tcase_create("exhaustive");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_exhaustive_plain);
	tcase_add_test(tc, test_exhaustive_fragmented);
	tcase_add_test(tc, test_exhaustive_region_pop);
	tcase_add_test(tc, test_exhaustive_many);
	tcase_add_test(tc, test_exhaustive_many_fragmented);
	tcase_add_test(tc, test_exhaustive_many_region_pop);
	suite_add_tcase(s, tc);

	tc = tcase_create("random");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_random);
	suite_add_tcase(s, tc);

	tc = tcase_create("kernel2017");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_kernel_2017);
	tcase_add_test(tc, test_kernel_2017_half_filled);
	tcase_add_test(tc, test_alloc_many_speed);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pcpu_check_run(area_map_suite(), CK_FORK_GETENV);
}
