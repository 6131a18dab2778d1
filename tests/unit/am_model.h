/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * am_model - a deliberately simple reference model of one area map, shared by the unit test
 * and the fuzzer: one owner per 4-byte granule and a list of live allocations. It does not
 * pick places (the area map is not first fit); it judges the area map's choices:
 *
 * - a successful allocation lies in served, free granules, at the right alignment, with the
 *   rounded size, and only on populated blocks when pop_only;
 * - a failed allocation is allowed unless the request was valid and enough consecutive
 *   entirely free blocks (populated ones for pop_only) exist to hold it at a block start;
 * - a free returns exactly the allocated size; anything that is not a live start is
 *   rejected with the map left byte for byte as it was;
 * - a bulk allocation (pcpu_am_alloc_many) returns increasing offsets, each judged as one
 *   allocation, and stops short of its maximum only where a single allocation on the
 *   resulting map fails (tried on a copy); a bulk free (pcpu_am_free_many) returns the sum
 *   of the sizes, or rejects the whole batch with the map unchanged;
 * - counters and bitmaps agree with the model, and pcpu_am_verify() passes.
 *
 * Every check returns 0, or -1 with a reason in the caller's buffer.
 */
#ifndef PCPU_AM_MODEL_H
#define PCPU_AM_MODEL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "area_map.h"

#define AMM_LONG_BITS ((int)(8 * sizeof(unsigned long)))
#define AMM_LONGS(n) (((n) + AMM_LONG_BITS - 1) / AMM_LONG_BITS)

struct amm_alloc {
	int off;   /* bytes */
	int size;  /* bytes, rounded to granules */
};

struct am_model {
	int unit, block, start, end;  /* bytes */
	int bits, bb, nblocks;
	unsigned char *used;          /* per granule: 0 free, 1 allocated, 2 region edge */
	unsigned long *bitmap;        /* the same as bits, to compare with the alloc map */
	int nfree;                    /* free granules */
	int *blk_free;                /* free granules per block */
	unsigned char *pop;           /* per block */
	struct amm_alloc *live;       /* in allocation order */
	int nlive, cap;
};

__attribute__((format(printf, 3, 4)))
static inline int amm_fail(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (why && len) {
		va_start(ap, fmt);
		vsnprintf(why, len, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static inline void amm_destroy(struct am_model *md)
{
	free(md->used);
	free(md->bitmap);
	free(md->blk_free);
	free(md->pop);
	free(md->live);
	memset(md, 0, sizeof(*md));
}

static inline void amm_mark(struct am_model *md, int bit, int n, unsigned char v)
{
	int i;

	for (i = bit; i < bit + n; i++) {
		md->blk_free[i / md->bb] += (md->used[i] != 0) - (v != 0);
		md->nfree += (md->used[i] != 0) - (v != 0);
		md->used[i] = v;
		if (v)
			md->bitmap[i / AMM_LONG_BITS] |= 1UL << (i % AMM_LONG_BITS);
		else
			md->bitmap[i / AMM_LONG_BITS] &= ~(1UL << (i % AMM_LONG_BITS));
	}
}

static inline int amm_init(struct am_model *md, int unit, int block, int start, int end,
			   bool populated)
{
	int i;

	memset(md, 0, sizeof(*md));
	md->unit = unit;
	md->block = block;
	md->start = start;
	md->end = end;
	md->bits = unit / 4;
	md->bb = block / 4;
	md->nblocks = unit / block;
	md->cap = md->bits;
	md->used = calloc(md->bits, 1);
	md->bitmap = calloc(AMM_LONGS(md->bits), sizeof(long));
	md->nfree = md->bits;
	md->blk_free = calloc(md->nblocks, sizeof(int));
	md->pop = calloc(md->nblocks, 1);
	md->live = calloc(md->cap, sizeof(*md->live));
	if (!md->used || !md->bitmap || !md->blk_free || !md->pop || !md->live) {
		amm_destroy(md);
		return -1;
	}
	for (i = 0; i < md->nblocks; i++) {
		md->blk_free[i] = md->bb;
		md->pop[i] = populated;
	}
	amm_mark(md, 0, start / 4, 2);
	amm_mark(md, md->bits - end / 4, end / 4, 2);
	return 0;
}

/* Copy @src into @dst, which has the same geometry (for depth-first enumeration). */
static inline void amm_copy(struct am_model *dst, const struct am_model *src)
{
	memcpy(dst->used, src->used, src->bits);
	memcpy(dst->bitmap, src->bitmap, AMM_LONGS(src->bits) * sizeof(long));
	dst->nfree = src->nfree;
	memcpy(dst->blk_free, src->blk_free, sizeof(int) * src->nblocks);
	memcpy(dst->pop, src->pop, src->nblocks);
	memcpy(dst->live, src->live, sizeof(*src->live) * src->nlive);
	dst->nlive = src->nlive;
}

/* pcpu_am_alloc's contract on arguments. */
static inline bool amm_valid_request(const struct am_model *md, int size, int align)
{
	return size > 0 && size <= md->unit && align > 0 && !(align & (align - 1)) &&
	       align <= md->block;
}

/* Could @bits granules go at the start of a run of entirely free (populated) blocks? */
static inline bool amm_blocks_fit(const struct am_model *md, int bits, bool pop_only)
{
	int need = (bits + md->bb - 1) / md->bb;
	int i, run = 0;

	for (i = 0; i < md->nblocks; i++) {
		if (md->blk_free[i] == md->bb && (!pop_only || md->pop[i]))
			run++;
		else
			run = 0;
		if (run >= need)
			return true;
	}
	return false;
}

/* Judge pcpu_am_alloc(m, size, align, pop_only) == @ret and record it. */
static inline int amm_alloc(struct am_model *md, const struct pcpu_area_map *m, int size,
			    int align, bool pop_only, int ret, char *why, size_t len)
{
	int bits, i, a;

	if (!amm_valid_request(md, size, align)) {
		if (ret != -1)
			return amm_fail(why, len, "invalid alloc(%d, %d) returned %d", size,
					align, ret);
		return 0;
	}
	bits = (size + 3) / 4;
	a = align < 4 ? 4 : align;
	if (ret < 0) {
		if (ret != -1)
			return amm_fail(why, len, "alloc(%d, %d) returned %d", size, align, ret);
		if (amm_blocks_fit(md, bits, pop_only))
			return amm_fail(why, len,
					"alloc(%d, %d, pop_only %d) failed with enough free blocks",
					size, align, pop_only);
		return 0;
	}
	if (ret % a || ret < md->start || ret + bits * 4 > md->unit - md->end)
		return amm_fail(why, len, "alloc(%d, %d) = %d misplaced", size, align, ret);
	for (i = ret / 4; i < ret / 4 + bits; i++) {
		if (md->used[i])
			return amm_fail(why, len, "alloc(%d, %d) = %d overlaps granule %d", size,
					align, ret, i);
		if (pop_only && !md->pop[i / md->bb])
			return amm_fail(why, len, "pop_only alloc(%d, %d) = %d on unpopulated block %d",
					size, align, ret, i / md->bb);
	}
	if (!pcpu_am_is_alloc_start(m, ret) || pcpu_am_alloc_size(m, ret) != bits * 4)
		return amm_fail(why, len, "alloc(%d, %d) = %d: start/size not recorded", size,
				align, ret);
	amm_mark(md, ret / 4, bits, 1);
	md->live[md->nlive].off = ret;
	md->live[md->nlive].size = bits * 4;
	md->nlive++;
	return 0;
}

/* Judge pcpu_am_free(m, live[k].off) == @ret and forget the allocation. */
static inline int amm_free(struct am_model *md, int k, int ret, char *why, size_t len)
{
	struct amm_alloc a = md->live[k];

	if (ret != a.size)
		return amm_fail(why, len, "free(%d) of %d bytes returned %d", a.off, a.size, ret);
	amm_mark(md, a.off / 4, a.size / 4, 0);
	md->live[k] = md->live[--md->nlive];
	return 0;
}

static inline bool amm_is_live(const struct am_model *md, int off)
{
	int i;

	for (i = 0; i < md->nlive; i++)
		if (md->live[i].off == off)
			return true;
	return false;
}

static inline void amm_populate(struct am_model *md, int i, bool on)
{
	md->pop[i] = on;
}

/* Bitmaps, counters and per-block answers against the model; then pcpu_am_verify(). */
static inline int amm_compare(const struct am_model *md, const struct pcpu_area_map *m,
			      char *why, size_t len)
{
	int i, empty_pop = 0, npop = 0, nfree = md->nfree;

	if (m->map_bits != md->bits || m->nr_blocks != md->nblocks)
		return amm_fail(why, len, "geometry differs");
	if (memcmp(m->alloc_map, md->bitmap, AMM_LONGS(md->bits) * sizeof(long))) {
		for (i = 0; i < md->bits; i++)
			if ((m->alloc_map[i / AMM_LONG_BITS] ^ md->bitmap[i / AMM_LONG_BITS]) >>
			    (i % AMM_LONG_BITS) & 1)
				break;
		return amm_fail(why, len, "granule %d: map and model differ (model %d)", i,
				md->used[i]);
	}
	for (i = 0; i < md->nblocks; i++) {
		if (pcpu_am_block_populated(m, i) != (bool)md->pop[i])
			return amm_fail(why, len, "block %d populated: map %d model %d", i,
					pcpu_am_block_populated(m, i), md->pop[i]);
		if (pcpu_am_block_empty(m, i) != (md->blk_free[i] == md->bb))
			return amm_fail(why, len, "block %d empty: map %d model %d", i,
					pcpu_am_block_empty(m, i), md->blk_free[i] == md->bb);
		npop += md->pop[i];
		empty_pop += md->pop[i] && md->blk_free[i] == md->bb;
	}
	if (m->free_bytes != nfree * 4 || m->nr_alloc != md->nlive ||
	    m->nr_populated != npop || m->nr_empty_pop_pages != empty_pop)
		return amm_fail(why, len,
				"counters: free %d/%d alloc %d/%d pop %d/%d empty_pop %d/%d",
				m->free_bytes, nfree * 4, m->nr_alloc, md->nlive,
				m->nr_populated, npop, m->nr_empty_pop_pages, empty_pop);
	for (i = 0; i < md->nlive; i++)
		if (!pcpu_am_is_alloc_start(m, md->live[i].off) ||
		    pcpu_am_alloc_size(m, md->live[i].off) != md->live[i].size)
			return amm_fail(why, len, "live allocation %d@%d lost", md->live[i].size,
					md->live[i].off);
	return pcpu_am_verify(m, why, len);
}

/* A byte-for-byte copy of a map, to prove that a rejected call changed nothing. */
struct am_snap {
	struct pcpu_area_map m;
	unsigned long *alloc_map, *bound_map, *populated;
	struct pcpu_block_md *md;
};

static inline size_t amm_map_longs(const struct pcpu_area_map *m)
{
	return AMM_LONGS(m->map_bits);
}

static inline size_t amm_bound_longs(const struct pcpu_area_map *m)
{
	return AMM_LONGS(m->map_bits + 1);
}

static inline size_t amm_pop_longs(const struct pcpu_area_map *m)
{
	return AMM_LONGS(m->nr_blocks);
}

/* Make @dst a private copy of @src (allocating @dst's arrays). Return 0 or -1. */
static inline int am_clone(struct pcpu_area_map *dst, const struct pcpu_area_map *src)
{
	*dst = *src;
	dst->alloc_map = malloc(amm_map_longs(src) * sizeof(long));
	dst->bound_map = malloc(amm_bound_longs(src) * sizeof(long));
	dst->populated = malloc(amm_pop_longs(src) * sizeof(long));
	dst->md_blocks = malloc(src->nr_blocks * sizeof(*src->md_blocks));
	if (!dst->alloc_map || !dst->bound_map || !dst->populated || !dst->md_blocks)
		return -1;
	memcpy(dst->alloc_map, src->alloc_map, amm_map_longs(src) * sizeof(long));
	memcpy(dst->bound_map, src->bound_map, amm_bound_longs(src) * sizeof(long));
	memcpy(dst->populated, src->populated, amm_pop_longs(src) * sizeof(long));
	memcpy(dst->md_blocks, src->md_blocks, src->nr_blocks * sizeof(*src->md_blocks));
	return 0;
}

/* Copy @src into @dst, a clone of a map with the same geometry. */
static inline void am_copy(struct pcpu_area_map *dst, const struct pcpu_area_map *src)
{
	unsigned long *a = dst->alloc_map, *b = dst->bound_map, *p = dst->populated;
	struct pcpu_block_md *md = dst->md_blocks;

	*dst = *src;
	dst->alloc_map = a;
	dst->bound_map = b;
	dst->populated = p;
	dst->md_blocks = md;
	memcpy(a, src->alloc_map, amm_map_longs(src) * sizeof(long));
	memcpy(b, src->bound_map, amm_bound_longs(src) * sizeof(long));
	memcpy(p, src->populated, amm_pop_longs(src) * sizeof(long));
	memcpy(md, src->md_blocks, src->nr_blocks * sizeof(*src->md_blocks));
}

static inline int amm_snap_take(struct am_snap *s, const struct pcpu_area_map *m)
{
	if (am_clone(&s->m, m))
		return -1;
	return 0;
}

static inline void amm_snap_drop(struct am_snap *s)
{
	pcpu_am_destroy(&s->m);
}

static inline bool amm_snap_equal(const struct am_snap *s, const struct pcpu_area_map *m)
{
	const struct pcpu_area_map *o = &s->m;

	return o->map_bits == m->map_bits && o->nr_blocks == m->nr_blocks &&
	       !memcmp(&o->chunk_md, &m->chunk_md, sizeof(m->chunk_md)) &&
	       o->start_offset == m->start_offset && o->end_offset == m->end_offset &&
	       o->free_bytes == m->free_bytes && o->nr_populated == m->nr_populated &&
	       o->nr_empty_pop_pages == m->nr_empty_pop_pages && o->nr_alloc == m->nr_alloc &&
	       o->nr_empty_blocks == m->nr_empty_blocks &&
	       !memcmp(o->alloc_map, m->alloc_map, amm_map_longs(m) * sizeof(long)) &&
	       !memcmp(o->bound_map, m->bound_map, amm_bound_longs(m) * sizeof(long)) &&
	       !memcmp(o->populated, m->populated, amm_pop_longs(m) * sizeof(long)) &&
	       !memcmp(o->md_blocks, m->md_blocks, m->nr_blocks * sizeof(*m->md_blocks));
}

/*
 * Try to free @off, which the model says is not a live start: it must return -1 and leave
 * @m exactly as it was.
 */
static inline int amm_bad_free(const struct am_model *md, struct pcpu_area_map *m, int off,
			       char *why, size_t len)
{
	struct am_snap s;
	int ret;
	bool same;

	if (amm_is_live(md, off))
		return 0;
	if (amm_snap_take(&s, m))
		return amm_fail(why, len, "out of memory");
	ret = pcpu_am_free(m, off);
	same = amm_snap_equal(&s, m);
	amm_snap_drop(&s);
	if (ret != -1)
		return amm_fail(why, len, "free(%d) of no allocation returned %d", off, ret);
	if (!same)
		return amm_fail(why, len, "rejected free(%d) changed the map", off);
	return 0;
}

/*
 * Judge pcpu_am_alloc_many(m, size, align, pop_only, max, offs) == @ret, @m being the map
 * after the call, and record what it allocated. A short batch must leave no entirely free
 * blocks that could hold one more; with @check_short, pcpu_am_alloc() on a copy of @m must
 * fail too (the function's promise).
 */
static inline int amm_alloc_many(struct am_model *md, const struct pcpu_area_map *m, int size,
				 int align, bool pop_only, int max, int ret, const int *offs,
				 bool check_short, char *why, size_t len)
{
	struct pcpu_area_map t;
	int i, one;

	if (!amm_valid_request(md, size, align) || max <= 0) {
		if (ret != 0)
			return amm_fail(why, len, "invalid alloc_many(%d, %d, max %d) returned %d",
					size, align, max, ret);
		return 0;
	}
	if (ret < 0 || ret > max)
		return amm_fail(why, len, "alloc_many(%d, %d, max %d) returned %d", size, align,
				max, ret);
	for (i = 0; i < ret; i++) {
		if (i && offs[i] <= offs[i - 1])
			return amm_fail(why, len, "alloc_many(%d, %d): offs[%d] = %d after %d",
					size, align, i, offs[i], offs[i - 1]);
		if (offs[i] < 0)
			return amm_fail(why, len, "alloc_many(%d, %d): offs[%d] = %d", size, align,
					i, offs[i]);
		if (amm_alloc(md, m, size, align, pop_only, offs[i], why, len))
			return -1;
	}
	if (ret == max)
		return 0;
	/* Short: no single allocation may fit in what is left. */
	if (amm_blocks_fit(md, (size + 3) / 4, pop_only))
		return amm_fail(why, len, "alloc_many(%d, %d, pop_only %d, max %d) = %d "
				"with enough free blocks", size, align, pop_only, max, ret);
	if (!check_short)
		return 0;
	if (am_clone(&t, m)) {
		pcpu_am_destroy(&t);
		return amm_fail(why, len, "out of memory");
	}
	one = pcpu_am_alloc(&t, size, align, pop_only);
	pcpu_am_destroy(&t);
	if (one >= 0)
		return amm_fail(why, len, "alloc_many(%d, %d, pop_only %d, max %d) = %d, "
				"but alloc then gave %d", size, align, pop_only, max, ret, one);
	return 0;
}

/* Sort ints (the live allocations picked for a bulk free). */
static inline int amm_cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

/*
 * Free the live allocations whose indexes are @which[0..n) (distinct) with one
 * pcpu_am_free_many() and judge it; the model forgets them.
 */
static inline int amm_free_many(struct am_model *md, struct pcpu_area_map *m, const int *which,
				int n, char *why, size_t len)
{
	int *offs = malloc(sizeof(int) * (n > 0 ? n : 1));
	int i, j, ret, sum = 0;

	if (!offs)
		return amm_fail(why, len, "out of memory");
	for (i = 0; i < n; i++) {
		offs[i] = md->live[which[i]].off;
		sum += md->live[which[i]].size;
	}
	qsort(offs, n, sizeof(int), amm_cmp_int);
	ret = pcpu_am_free_many(m, offs, n);
	if (ret != sum) {
		free(offs);
		return amm_fail(why, len, "free_many of %d areas (%d bytes) returned %d", n, sum,
				ret);
	}
	for (i = 0; i < n; i++) {
		for (j = 0; j < md->nlive; j++)
			if (md->live[j].off == offs[i])
				break;
		amm_mark(md, md->live[j].off / 4, md->live[j].size / 4, 0);
		md->live[j] = md->live[--md->nlive];
	}
	free(offs);
	return 0;
}

/*
 * Try pcpu_am_free_many() on @offs, which holds something the call must reject (not a live
 * start, a repeat, out of order): it must return -1 and leave @m exactly as it was.
 */
static inline int amm_bad_free_many(struct pcpu_area_map *m, const int *offs, int n, char *why,
				    size_t len)
{
	struct am_snap s;
	int ret;
	bool same;

	if (amm_snap_take(&s, m))
		return amm_fail(why, len, "out of memory");
	ret = pcpu_am_free_many(m, offs, n);
	same = amm_snap_equal(&s, m);
	amm_snap_drop(&s);
	if (ret != -1)
		return amm_fail(why, len, "bad free_many of %d offsets returned %d", n, ret);
	if (!same)
		return amm_fail(why, len, "rejected free_many changed the map");
	return 0;
}

#endif /* PCPU_AM_MODEL_H */
