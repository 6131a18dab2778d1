/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * area_map - the kernel's in-chunk bitmap allocator (mm/percpu.c, v4.14 bitmap allocator with
 * the v5.2 scan hints), written from the description in reference/kernel-percpu.md §1b, §2.
 *
 * Where this file departs from the kernel it says so next to the code ("kernel:" notes). In
 * short: hints are kept exact where the kernel lets them go stale (left/right free,
 * first_free of fully consumed blocks, chunk-level edges), the free path measures the freed
 * run from the bitmap instead of trusting hint edges, the chunk scan hint is only moved by a
 * free when that keeps it a safe place to skip to, the quick reject in find_block_fit lets a
 * request through when whole free blocks could serve it, and the empty-page count is exact at
 * every moment instead of going transiently negative until populate.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "area_map.h"

#define AM_BPL ((int)(CHAR_BIT * sizeof(unsigned long)))
#define AM_WORD(nr) ((nr) / AM_BPL)
#define AM_MASK(nr) (1UL << ((nr) % AM_BPL))
#define AM_LONGS(n) (((n) + AM_BPL - 1) / AM_BPL)
#define AM_ALIGN(x, a) (((x) + (a) - 1) & ~((a) - 1))
/* pcpu_am_free_many(): areas per block, on average, from which one rebuild per block pays */
#define AM_REBUILD_MIN_AREAS 8

static inline int am_min(int a, int b)
{
	return a < b ? a : b;
}

/* ---------------------------------------------------------------------------------------- */
/* Bitmap helpers (word at a time: the allocator lives in these loops)                      */
/* ---------------------------------------------------------------------------------------- */

static inline bool am_test_bit(const unsigned long *map, int nr)
{
	return map[AM_WORD(nr)] & AM_MASK(nr);
}

static inline void am_set_bit(unsigned long *map, int nr)
{
	map[AM_WORD(nr)] |= AM_MASK(nr);
}

static void am_bitmap_fill(unsigned long *map, int start, int nr, bool set)
{
	int w, first, last;
	unsigned long mask;

	if (nr <= 0)
		return;
	first = AM_WORD(start);
	last = AM_WORD(start + nr - 1);
	for (w = first; w <= last; w++) {
		mask = ~0UL;
		if (w == first)
			mask &= ~0UL << (start % AM_BPL);
		if (w == last)
			mask &= ~0UL >> (AM_BPL - 1 - (start + nr - 1) % AM_BPL);
		if (set)
			map[w] |= mask;
		else
			map[w] &= ~mask;
	}
}

/* First bit in [from, size) equal to !invert's sense; size when there is none. */
static int am_find_next(const unsigned long *map, int size, int from, unsigned long invert)
{
	unsigned long word;
	int i;

	if (from >= size)
		return size;
	i = AM_WORD(from);
	word = (map[i] ^ invert) & (~0UL << (from % AM_BPL));
	while (!word) {
		if ((i + 1) * AM_BPL >= size)
			return size;
		word = map[++i] ^ invert;
	}
	from = i * AM_BPL + __builtin_ctzl(word);
	return from < size ? from : size;
}

static inline int am_next_bit(const unsigned long *map, int size, int from)
{
	return am_find_next(map, size, from, 0UL);
}

static inline int am_next_zero(const unsigned long *map, int size, int from)
{
	return am_find_next(map, size, from, ~0UL);
}

/* Last set bit in [0, before), or -1. */
static int am_last_bit(const unsigned long *map, int before)
{
	unsigned long word;
	int i;

	if (before <= 0)
		return -1;
	i = AM_WORD(before - 1);
	word = map[i] & (~0UL >> (AM_BPL - 1 - (before - 1) % AM_BPL));
	while (!word) {
		if (i-- == 0)
			return -1;
		word = map[i];
	}
	return i * AM_BPL + AM_BPL - 1 - __builtin_clzl(word);
}

static int am_count_bits(const unsigned long *map, int size)
{
	int i, n = 0;

	for (i = 0; i < size / AM_BPL; i++)
		n += __builtin_popcountl(map[i]);
	if (size % AM_BPL)
		n += __builtin_popcountl(map[i] & (AM_MASK(size) - 1));
	return n;
}

/* Block @i's slice of the alloc map: block_bits is a multiple of the word size. */
static inline unsigned long *am_block_map(const struct pcpu_area_map *m, int i)
{
	return m->alloc_map + (size_t)i * m->block_bits / AM_BPL;
}

static inline bool am_overlap(int a, int b, int x, int y)
{
	return a < y && x < b;
}

/* ---------------------------------------------------------------------------------------- */
/* Hint maintenance                                                                          */
/* ---------------------------------------------------------------------------------------- */

/* kernel: pcpu_init_md_block() */
static void am_md_init(struct pcpu_block_md *b, int nr_bits)
{
	b->scan_hint = 0;
	b->scan_hint_start = 0;
	b->contig_hint = nr_bits;
	b->contig_hint_start = 0;
	b->left_free = nr_bits;
	b->right_free = nr_bits;
	b->first_free = 0;
	b->nr_bits = nr_bits;
}

/*
 * kernel: pcpu_block_update()
 * [start, end) is a maximal free run of the area @b covers. Besides the edges, the run may
 * become the contig hint (ties go to the better aligned start) or the scan hint, the
 * largest known run before the contig hint.
 */
static void am_block_update(struct pcpu_block_md *b, int start, int end)
{
	int contig = end - start;

	if (contig <= 0)
		return;
	b->first_free = am_min(b->first_free, start);
	if (start == 0)
		b->left_free = contig;
	if (end == b->nr_bits)
		b->right_free = contig;

	/*
	 * Defensive, not in the kernel: the known contig run reported again would become its
	 * own scan hint. No caller does this today (the tests never reach it).
	 */
	if (start == b->contig_hint_start && contig == b->contig_hint)
		return;

	if (contig > b->contig_hint) {
		if (start > b->contig_hint_start) {
			if (b->contig_hint > b->scan_hint) {
				b->scan_hint_start = b->contig_hint_start;
				b->scan_hint = b->contig_hint;
			} else if (start <= b->scan_hint_start) {
				/*
				 * kernel: "<". Equal means the scan run grew into the new contig
				 * run; keeping it would leave a stale scan hint inside it.
				 */
				b->scan_hint = 0;
			}
		} else {
			b->scan_hint = 0;
		}
		b->contig_hint_start = start;
		b->contig_hint = contig;
	} else if (contig == b->contig_hint) {
		if (b->contig_hint_start &&
		    (!start || __builtin_ctz(start) > __builtin_ctz(b->contig_hint_start))) {
			b->contig_hint_start = start;
			/* kernel: "<"; see above. */
			if (start <= b->scan_hint_start && b->contig_hint > b->scan_hint)
				b->scan_hint = 0;
		} else if (start > b->scan_hint_start || b->contig_hint > b->scan_hint) {
			b->scan_hint_start = start;
			b->scan_hint = contig;
		}
	} else if (start < b->contig_hint_start &&
		   (contig > b->scan_hint ||
		    (contig == b->scan_hint && start > b->scan_hint_start))) {
		b->scan_hint_start = start;
		b->scan_hint = contig;
	}
}

/* Block @i became entirely free (+1) or stopped being so (-1). */
static void am_block_empty_changed(struct pcpu_area_map *m, int i, int delta)
{
	m->nr_empty_blocks += delta;
	/*
	 * kernel: counts every transition and lets pcpu_chunk_populated() add the pages back,
	 * so the count reads low between an allocation and its populate. Counting only
	 * populated blocks keeps nr_empty_pop_pages exact at every moment.
	 */
	if (am_test_bit(m->populated, i))
		m->nr_empty_pop_pages += delta;
}

/*
 * kernel: pcpu_block_refresh_hint()
 * An allocation broke the block's contig hint. Everything before the scan hint's end is
 * known to hold nothing larger than the scan hint, so the walk can start there.
 */
static void am_block_refresh(struct pcpu_area_map *m, int i)
{
	struct pcpu_block_md *b = &m->md_blocks[i];
	const unsigned long *map = am_block_map(m, i);
	int bb = m->block_bits;
	int rs, re;

	b->right_free = 0;
	if (b->scan_hint) {
		rs = b->scan_hint_start + b->scan_hint;
		b->contig_hint_start = b->scan_hint_start;
		b->contig_hint = b->scan_hint;
		b->scan_hint = 0;
		/* kernel: a promoted scan run ending at the edge was lost from right_free. */
		if (rs == bb)
			b->right_free = b->contig_hint;
	} else {
		rs = b->first_free;
		b->contig_hint = 0;
	}

	for (;;) {
		rs = am_next_zero(map, bb, rs);
		if (rs >= bb)
			break;
		re = am_next_bit(map, bb, rs + 1);
		am_block_update(b, rs, re);
		rs = re + 1;
	}
}

/*
 * kernel: pcpu_next_md_free_region()
 * From *@off, the next free run the block metadata can vouch for: a block's contig hint
 * that stays inside its block, or a run that crosses block edges (right_free + left_free).
 * Return: false when there is none.
 */
static bool am_next_md_region(const struct pcpu_area_map *m, int *off, int *bits)
{
	int bb = m->block_bits;
	int i = *off / bb;
	int boff = *off % bb;
	const struct pcpu_block_md *b;

	*bits = 0;
	for (; i < m->nr_blocks; i++) {
		b = &m->md_blocks[i];
		if (*bits) {
			*bits += b->left_free;
			if (b->left_free == bb)
				continue;
			return true;
		}
		/* A contig run touching the right edge is the start of a cross-block run. */
		if (b->contig_hint && b->contig_hint_start >= boff &&
		    b->contig_hint_start + b->contig_hint < bb) {
			*off = i * bb + b->contig_hint_start;
			*bits = b->contig_hint;
			return true;
		}
		boff = 0;
		*bits = b->right_free;
		*off = (i + 1) * bb - b->right_free;
	}
	return *bits > 0;
}

/*
 * kernel: pcpu_chunk_refresh_hint()
 * @full: walk from first_free and rebuild both hints (free path); otherwise promote the
 * scan hint and walk from its end (alloc path).
 */
static void am_chunk_refresh(struct pcpu_area_map *m, bool full)
{
	struct pcpu_block_md *c = &m->chunk_md;
	int off, bits;

	if (!full && c->scan_hint) {
		off = c->scan_hint_start + c->scan_hint;
		c->contig_hint_start = c->scan_hint_start;
		c->contig_hint = c->scan_hint;
		c->scan_hint = 0;
	} else {
		/*
		 * An old scan hint survives only while no run the walk reports starts before
		 * it (block_update clears it otherwise), so it still bounds what lies before.
		 */
		off = c->first_free;
		c->contig_hint = 0;
	}

	while (am_next_md_region(m, &off, &bits)) {
		am_block_update(c, off, off + bits);
		off += bits + 1;
	}
}

/* First block of an allocation, which covers [so, se) of block @i. */
static void am_alloc_first_block(struct pcpu_area_map *m, int i, int so, int se)
{
	struct pcpu_block_md *b = &m->md_blocks[i];
	int bb = m->block_bits;

	if (b->left_free == bb)
		am_block_empty_changed(m, i, -1);
	if (so == b->first_free)
		b->first_free = am_next_zero(am_block_map(m, i), bb, se);
	if (am_overlap(b->scan_hint_start, b->scan_hint_start + b->scan_hint, so, se))
		b->scan_hint = 0;
	/* kernel: only zeroed left_free when so == 0, leaning on where first fit lands. */
	b->left_free = am_min(b->left_free, so);
	if (am_overlap(b->contig_hint_start, b->contig_hint_start + b->contig_hint, so, se)) {
		am_block_refresh(m, i);
		return;
	}
	b->right_free = am_min(b->right_free, bb - se);
}

/* A block wholly inside an allocation. */
static void am_alloc_whole_block(struct pcpu_area_map *m, int i)
{
	struct pcpu_block_md *b = &m->md_blocks[i];

	if (b->left_free == m->block_bits)
		am_block_empty_changed(m, i, -1);
	b->scan_hint = 0;
	b->contig_hint = 0;
	b->left_free = 0;
	b->right_free = 0;
	/* kernel: leaves first_free stale on blocks in the middle of an allocation. */
	b->first_free = m->block_bits;
}

/* Last block of an allocation that started in an earlier block; it covers [0, eo). */
static void am_alloc_last_block(struct pcpu_area_map *m, int i, int eo)
{
	struct pcpu_block_md *b = &m->md_blocks[i];
	int bb = m->block_bits;

	if (eo == bb) {
		am_alloc_whole_block(m, i);
		return;
	}
	if (b->left_free == bb)
		am_block_empty_changed(m, i, -1);
	b->first_free = am_next_zero(am_block_map(m, i), bb, eo);
	if (b->scan_hint && eo > b->scan_hint_start)
		b->scan_hint = 0;
	b->left_free = 0;
	if (eo > b->contig_hint_start) {
		am_block_refresh(m, i);
		return;
	}
	b->right_free = am_min(b->right_free, bb - eo);
}

/*
 * Chunk-level part of an allocation: bits were set in [off, end), a span of what was one
 * free run, both ends allocated (it may hold free gaps, which the block metadata know).
 */
static void am_chunk_hint_alloc(struct pcpu_area_map *m, int off, int end)
{
	struct pcpu_block_md *c = &m->chunk_md;

	/* kernel: chunk left_free/right_free were never maintained. */
	c->left_free = am_min(c->left_free, off);
	c->right_free = am_min(c->right_free, c->nr_bits - end);
	if (am_overlap(c->scan_hint_start, c->scan_hint_start + c->scan_hint, off, end))
		c->scan_hint = 0;
	/* Only a broken chunk contig hint costs a chunk-wide walk on allocation. */
	if (am_overlap(c->contig_hint_start, c->contig_hint_start + c->contig_hint, off, end))
		am_chunk_refresh(m, false);
}

/*
 * kernel: pcpu_block_update_hint_alloc()
 * Bits [off, off + bits) were just set in the alloc map.
 */
static void am_hint_alloc(struct pcpu_area_map *m, int off, int bits)
{
	int bb = m->block_bits;
	int end = off + bits;
	int s = off / bb, e = (end - 1) / bb;
	int i;

	am_alloc_first_block(m, s, off % bb, s == e ? (end - 1) % bb + 1 : bb);
	if (s != e) {
		for (i = s + 1; i < e; i++)
			am_alloc_whole_block(m, i);
		am_alloc_last_block(m, e, (end - 1) % bb + 1);
	}
	am_chunk_hint_alloc(m, off, end);
}

/*
 * Not in the kernel: rebuild block @i's metadata from its bitmap, as a refresh from
 * nothing would, and count its change of emptiness. For the bulk paths, which change many
 * runs of a block at once: one walk of the block instead of one update per object.
 */
static void am_block_rebuild(struct pcpu_area_map *m, int i)
{
	struct pcpu_block_md *b = &m->md_blocks[i];
	const unsigned long *map = am_block_map(m, i);
	int bb = m->block_bits;
	bool was_empty = b->left_free == bb;
	int w, pos, rs = -1;
	unsigned long x, y;

	/* No run known yet: am_block_update() learns each one, in address order. */
	*b = (struct pcpu_block_md){ .first_free = bb, .nr_bits = bb };
	/* Word by word: a gapped batch leaves a run every few bits, and this is its cost. */
	for (w = 0; w < bb / AM_BPL; w++) {
		x = map[w];
		for (pos = 0; pos < AM_BPL;) {
			if (rs < 0) {
				y = ~x & (~0UL << pos);
				if (!y)
					break;
				pos = __builtin_ctzl(y);
				rs = w * AM_BPL + pos;
			}
			y = x & (~0UL << pos);
			if (!y)
				break;
			pos = __builtin_ctzl(y);
			am_block_update(b, rs, w * AM_BPL + pos);
			rs = -1;
		}
	}
	if (rs >= 0)
		am_block_update(b, rs, bb);
	if (was_empty != (b->left_free == bb))
		am_block_empty_changed(m, i, was_empty ? -1 : +1);
}

/* The freed run now covers [start, end) of block @i. */
static void am_free_block_run(struct pcpu_area_map *m, int i, int start, int end)
{
	if (start == 0 && end == m->block_bits)
		am_block_empty_changed(m, i, +1);
	am_block_update(&m->md_blocks[i], start, end);
}

/* A block wholly inside a freed allocation. */
static void am_free_whole_block(struct pcpu_area_map *m, int i)
{
	am_md_init(&m->md_blocks[i], m->block_bits);
	am_block_empty_changed(m, i, +1);
}

/*
 * Chunk-level part of a free. A free learns of a run out of order: the runs between the old
 * scan hint and this one were never examined, so if this run became the scan hint, a later
 * refresh or next_hint would skip them, whole free blocks included, and a request that fits
 * there would fail. kernel: takes any larger run before the contig hint as the scan hint; we
 * keep the old scan hint unless the new run starts at or before it.
 */
static void am_chunk_update_free(struct pcpu_block_md *c, int start, int end)
{
	int scan = c->scan_hint, scan_start = c->scan_hint_start;
	bool keep = end - start < c->contig_hint && start < c->contig_hint_start &&
		    !(scan && start <= scan_start);

	am_block_update(c, start, end);
	if (keep) {
		c->scan_hint = scan;
		c->scan_hint_start = scan_start;
	}
}

/*
 * Chunk-level part of a free: [start, end) is the freed run as far as its first and last
 * blocks go. kernel: refreshes when that spans a block or crosses blocks, else updates with
 * an absolute start but a block-relative end (§2.6). We follow the run into free
 * neighbours first, so the chunk always sees all of it, and pass it whole.
 */
static void am_chunk_hint_free(struct pcpu_area_map *m, int start, int end)
{
	struct pcpu_block_md *c = &m->chunk_md;
	int bb = m->block_bits;
	int i;

	if (start % bb == 0) {
		for (i = start / bb - 1; i >= 0; i--) {
			start -= m->md_blocks[i].right_free;
			if (m->md_blocks[i].right_free != bb)
				break;
		}
	}
	if (end % bb == 0) {
		for (i = end / bb; i < m->nr_blocks; i++) {
			end += m->md_blocks[i].left_free;
			if (m->md_blocks[i].left_free != bb)
				break;
		}
	}
	/* kernel: chunk left_free/right_free were never maintained. */
	if (start == 0)
		c->left_free = end;
	if (end == c->nr_bits)
		c->right_free = end - start;

	if (end - start >= bb || start / bb != (end - 1) / bb)
		am_chunk_refresh(m, true);
	else
		am_chunk_update_free(c, start, end);
}

/*
 * kernel: pcpu_block_update_hint_free()
 * Bits [off, off + bits) were just cleared in the alloc map.
 */
static void am_hint_free(struct pcpu_area_map *m, int off, int bits)
{
	struct pcpu_block_md *sb, *eb;
	int bb = m->block_bits;
	int s = off / bb, e = (off + bits - 1) / bb;
	int start, end, i;

	/*
	 * Where the freed bits abut a contig hint, the hint's far edge is the run's edge (hints
	 * are whole runs, which pcpu_am_verify checks); elsewhere look in the bitmap.
	 */
	start = off % bb;
	sb = &m->md_blocks[s];
	if (sb->contig_hint && start == sb->contig_hint_start + sb->contig_hint)
		start = sb->contig_hint_start;
	else
		start = am_last_bit(am_block_map(m, s), start) + 1;
	end = (off + bits - 1) % bb + 1;
	eb = &m->md_blocks[e];
	if (eb->contig_hint && end == eb->contig_hint_start)
		end += eb->contig_hint;
	else
		end = am_next_bit(am_block_map(m, e), bb, end);

	if (s == e) {
		am_free_block_run(m, s, start, end);
	} else {
		am_free_block_run(m, s, start, bb);
		for (i = s + 1; i < e; i++)
			am_free_whole_block(m, i);
		am_free_block_run(m, e, 0, end);
	}

	am_chunk_hint_free(m, s * bb + start, e * bb + end);
}

/* ---------------------------------------------------------------------------------------- */
/* Finding room                                                                              */
/* ---------------------------------------------------------------------------------------- */

/* kernel: pcpu_check_block_hint() */
static bool am_check_hint(const struct pcpu_block_md *b, int bits, int align)
{
	int pad = AM_ALIGN(b->contig_hint_start, align) - b->contig_hint_start;

	return pad + bits <= b->contig_hint;
}

/*
 * kernel: pcpu_next_hint()
 * Where to start looking: past the scan hint when it lies before the contig hint and is
 * too small for the request, else at first_free.
 */
static int am_next_hint(const struct pcpu_block_md *b, int bits)
{
	if (b->scan_hint && b->contig_hint_start > b->scan_hint_start && bits > b->scan_hint)
		return b->scan_hint_start + b->scan_hint;
	return b->first_free;
}

/*
 * kernel: pcpu_is_populated()
 * True when the blocks under [off, off + bits) are all populated. Otherwise *@next (if
 * not NULL) is the bit where the first unpopulated run of them ends.
 */
static bool am_span_populated(const struct pcpu_area_map *m, int off, int bits, int *next)
{
	int first = off / m->block_bits;
	int last = (off + bits + m->block_bits - 1) / m->block_bits;

	first = am_next_zero(m->populated, last, first);
	if (first >= last)
		return true;
	if (next)
		*next = am_next_bit(m->populated, last, first + 1) * m->block_bits;
	return false;
}

/*
 * kernel: pcpu_next_fit_region()
 * From *@off, the next place the block metadata says @alloc_bits aligned to @align may fit:
 * the start of a block's search (ahead of its contig hint, so earlier holes are tried
 * first), or an aligned start in a block's right_free that runs on into following blocks.
 * *@bits is the span that must be free or populated. *@off = map_bits: nothing.
 */
static void am_next_fit_region(const struct pcpu_area_map *m, int alloc_bits, int align,
			       int *off, int *bits)
{
	int bb = m->block_bits;
	int i = *off / bb;
	int boff = *off % bb;
	const struct pcpu_block_md *b;
	int pad, start;

	*bits = 0;
	for (; i < m->nr_blocks; i++) {
		b = &m->md_blocks[i];
		if (*bits) {
			*bits += b->left_free;
			if (*bits >= alloc_bits)
				return;
			if (b->left_free == bb)
				continue;
		}

		pad = AM_ALIGN(b->contig_hint_start, align) - b->contig_hint_start;
		if (b->contig_hint && b->contig_hint_start >= boff &&
		    b->contig_hint >= pad + alloc_bits) {
			start = am_next_hint(b, alloc_bits);
			*bits = pad + alloc_bits + b->contig_hint_start - start;
			*off = i * bb + start;
			return;
		}
		boff = 0;

		start = AM_ALIGN(bb - b->right_free, align);
		*bits = bb - start;
		*off = i * bb + start;
		if (*bits >= alloc_bits)
			return;
	}
	*off = m->map_bits;
}

/*
 * kernel: the quick reject gives up when the chunk contig hint cannot hold the request at
 * its own start's alignment, even if some other run (whole free blocks, say) could. Whole
 * free blocks serve any alignment up to a block, so let the request through when enough
 * exist; the walk then finds them.
 */
static bool am_free_blocks_may_fit(const struct pcpu_area_map *m, int bits)
{
	int need = (bits + m->block_bits - 1) / m->block_bits;

	return m->nr_empty_blocks >= need && m->chunk_md.contig_hint >= need * m->block_bits;
}

/*
 * kernel: pcpu_find_block_fit()
 * Return: the bit to start the bounded search at, or -1. Not exact first fit: runs that
 * the hints do not vouch for, or that are badly aligned, may be passed over.
 */
static int am_find_block_fit(const struct pcpu_area_map *m, int bits, int align, bool pop_only)
{
	int off, span, next;

	if (!am_check_hint(&m->chunk_md, bits, align) && !am_free_blocks_may_fit(m, bits))
		return -1;

	off = am_next_hint(&m->chunk_md, bits);
	for (;;) {
		am_next_fit_region(m, bits, align, &off, &span);
		if (off >= m->map_bits)
			return -1;
		if (!pop_only || am_span_populated(m, off, span, &next))
			return off;
		off = next;
	}
}

/*
 * kernel: pcpu_find_zero_area()
 * First @nr free bits at a multiple of @align_mask + 1, in [start, size). Remembers the
 * largest run it had to skip, ties going to the better aligned start.
 * Return: the bit, or -1.
 */
static int am_find_zero_area(const unsigned long *map, int size, int start, int nr,
			     int align_mask, int *hole_off, int *hole_bits)
{
	int index, hole, i;

	for (;;) {
		index = am_next_zero(map, size, start);
		index = (index + align_mask) & ~align_mask;
		if (index + nr > size)
			return -1;
		i = am_next_bit(map, index + nr, index);
		if (i >= index + nr)
			return index;
		hole = i - index;
		if (hole > *hole_bits ||
		    (hole == *hole_bits && *hole_off &&
		     (!index || __builtin_ctz(index) > __builtin_ctz(*hole_off)))) {
			*hole_off = index;
			*hole_bits = hole;
		}
		start = i + 1;
	}
}

/*
 * kernel: pcpu_block_update_scan()
 * A run skipped by the search, if it lies in one block, tells that block about a free run
 * it may not know. The search aligned the run's start: look back for the real one.
 */
static void am_block_update_scan(struct pcpu_area_map *m, int off, int bits)
{
	int i = off / m->block_bits;
	int so = off % m->block_bits;
	int eo = so + bits;

	if (eo > m->block_bits)
		return;
	so = am_last_bit(am_block_map(m, i), so) + 1;
	am_block_update(&m->md_blocks[i], so, eo);
}

/* Set [off, off + bits) allocated, with its boundary bits, and update every hint. */
static void am_mark_alloc(struct pcpu_area_map *m, int off, int bits)
{
	struct pcpu_block_md *c = &m->chunk_md;

	am_bitmap_fill(m->alloc_map, off, bits, true);
	am_set_bit(m->bound_map, off);
	if (bits > 1)
		am_bitmap_fill(m->bound_map, off + 1, bits - 1, false);
	am_set_bit(m->bound_map, off + bits);

	if (off == c->first_free)
		c->first_free = am_next_zero(m->alloc_map, m->map_bits, off + bits);
	am_hint_alloc(m, off, bits);
}

/*
 * kernel: the search of pcpu_alloc_area()
 * Search at most a block past the room the fit walk promised. Return the bit, or -1 (the
 * map is then unchanged).
 */
static int am_find_area(struct pcpu_area_map *m, int bits, int align, int start, bool pop_only)
{
	int hole_off = 0, hole_bits = 0;
	int end = am_min(start + bits + m->block_bits, m->map_bits);
	int off;

	off = am_find_zero_area(m->alloc_map, end, start, bits, align - 1, &hole_off, &hole_bits);
	if (off < 0)
		return -1;
	/* The fit walk checked the span first fit lands in; this makes it a guarantee. */
	if (pop_only && !am_span_populated(m, off, bits, NULL))
		return -1;
	if (hole_bits)
		am_block_update_scan(m, hole_off, hole_bits);
	return off;
}

/* kernel: pcpu_alloc_area() */
static int am_alloc_area(struct pcpu_area_map *m, int bits, int align, int start, bool pop_only)
{
	int off = am_find_area(m, bits, align, start, pop_only);

	if (off < 0)
		return -1;
	am_mark_alloc(m, off, bits);
	m->free_bytes -= bits * PCPU_MIN_ALLOC_SIZE;
	m->nr_alloc++;
	return off * PCPU_MIN_ALLOC_SIZE;
}

/* ---------------------------------------------------------------------------------------- */
/* Bulk allocation and free (not in the kernel)                                              */
/* ---------------------------------------------------------------------------------------- */

/*
 * How many objects of @bits granules, one every @stride granules from @off, fit in the free
 * run that starts the first of them (found free, and populated for @pop_only), on populated
 * blocks for @pop_only; at most @max. Looks no further than the last object it could count.
 */
static int am_carve_count(const struct pcpu_area_map *m, int off, int bits, int stride,
			  bool pop_only, int max)
{
	int lim = m->map_bits, end;

	if (max - 1 < (m->map_bits - off) / stride)
		lim = off + (max - 1) * stride + bits;
	end = am_next_bit(m->alloc_map, am_min(lim, m->map_bits), off + bits);
	if (pop_only)
		end = am_min(end, am_next_zero(m->populated, m->nr_blocks, off / m->block_bits) *
					  m->block_bits);
	return am_min(max, (end - off - bits) / stride + 1);
}

/*
 * Allocate @n objects of @bits granules, one every @stride granules from @off, all inside
 * one free run: the bits and boundaries of each, then the metadata once. Packed objects
 * (@stride == @bits, or just one) make one allocated span, and the metadata follow it as
 * they would one allocation of the span (for one object, exactly what am_mark_alloc()
 * does); with gaps between them, every block touched is rebuilt.
 */
static void am_mark_many(struct pcpu_area_map *m, int off, int bits, int stride, int n)
{
	struct pcpu_block_md *c = &m->chunk_md;
	int end = off + (n - 1) * stride + bits;
	bool packed = stride == bits || n == 1;
	int bb = m->block_bits;
	int i, p;

	if (packed)
		am_bitmap_fill(m->alloc_map, off, end - off, true);
	/* Boundaries: each object's start and end; none inside an object. */
	am_bitmap_fill(m->bound_map, off, end - off, false);
	for (i = 0, p = off; i < n; i++, p += stride) {
		if (!packed)
			am_bitmap_fill(m->alloc_map, p, bits, true);
		am_set_bit(m->bound_map, p);
		am_set_bit(m->bound_map, p + bits);
	}

	if (off == c->first_free)
		c->first_free = am_next_zero(m->alloc_map, m->map_bits, off);
	if (packed) {
		am_hint_alloc(m, off, end - off);
	} else {
		for (i = off / bb; i <= (end - 1) / bb; i++)
			am_block_rebuild(m, i);
		am_chunk_hint_alloc(m, off, end);
	}
	m->free_bytes -= n * bits * PCPU_MIN_ALLOC_SIZE;
	m->nr_alloc += n;
}

/* Insertion sort: each run's offsets come in order, and the runs nearly always do too. */
static void am_sort_offs(int *offs, int n)
{
	int i, j, v;

	for (i = 1; i < n; i++) {
		v = offs[i];
		for (j = i; j > 0 && offs[j - 1] > v; j--)
			offs[j] = offs[j - 1];
		offs[j] = v;
	}
}

/* Check and convert a request as pcpu_am_alloc() does: granules and granule alignment. */
static bool am_request(const struct pcpu_area_map *m, int size, int align, int *bits, int *abits)
{
	if (size <= 0 || size > m->map_bits * PCPU_MIN_ALLOC_SIZE)
		return false;
	if (align <= 0 || (align & (align - 1)) || align > m->block_bits * PCPU_MIN_ALLOC_SIZE)
		return false;
	if (align < PCPU_MIN_ALLOC_SIZE)
		align = PCPU_MIN_ALLOC_SIZE;
	*bits = (size + PCPU_MIN_ALLOC_SIZE - 1) / PCPU_MIN_ALLOC_SIZE;
	*abits = align / PCPU_MIN_ALLOC_SIZE;
	return true;
}

int pcpu_am_alloc_many(struct pcpu_area_map *m, int size, int align, bool pop_only, int max,
		       int *offs)
{
	int bits, abits, stride, start, off, n = 0, k, i;
	bool sorted = true;

	if (max <= 0 || !am_request(m, size, align, &bits, &abits))
		return 0;
	stride = AM_ALIGN(bits, abits);
	while (n < max) {
		/* The first object goes exactly where pcpu_am_alloc() would put it. */
		start = am_find_block_fit(m, bits, abits, pop_only);
		if (start < 0)
			break;
		off = am_find_area(m, bits, abits, start, pop_only);
		if (off < 0)
			break;
		/* The rest follow it at the next aligned starts, as far as its run goes. */
		k = am_carve_count(m, off, bits, stride, pop_only, max - n);
		am_mark_many(m, off, bits, stride, k);
		if (n && offs[n - 1] > off * PCPU_MIN_ALLOC_SIZE)
			sorted = false;
		for (i = 0; i < k; i++)
			offs[n++] = (off + i * stride) * PCPU_MIN_ALLOC_SIZE;
	}
	if (!sorted)
		am_sort_offs(offs, n);
	return n;
}

/*
 * The chunk's edge runs from the block metadata (the free path's chunk walk only learns of
 * runs the blocks' hints vouch for, which need not include the edges).
 */
static void am_chunk_edges(struct pcpu_area_map *m)
{
	struct pcpu_block_md *c = &m->chunk_md;
	int bb = m->block_bits;
	int i;

	c->left_free = 0;
	for (i = 0; i < m->nr_blocks; i++) {
		c->left_free += m->md_blocks[i].left_free;
		if (m->md_blocks[i].left_free != bb)
			break;
	}
	c->right_free = 0;
	for (i = m->nr_blocks - 1; i >= 0; i--) {
		c->right_free += m->md_blocks[i].right_free;
		if (m->md_blocks[i].right_free != bb)
			break;
	}
}

static inline bool am_is_alloc_start(const struct pcpu_area_map *m, int off)
{
	int bit;

	if (off < m->start_offset || off >= m->map_bits * PCPU_MIN_ALLOC_SIZE - m->end_offset ||
	    off % PCPU_MIN_ALLOC_SIZE)
		return false;
	bit = off / PCPU_MIN_ALLOC_SIZE;
	/*
	 * kernel: no check at all. A live start has both bits set; an interior bit has its
	 * bound bit cleared by the allocation that covers it; a free bit has no alloc bit.
	 */
	return am_test_bit(m->alloc_map, bit) && am_test_bit(m->bound_map, bit);
}

/* Free the area at @off, known to start one: bitmaps and hints as the kernel's free. */
static int am_free_area(struct pcpu_area_map *m, int off)
{
	int bit = off / PCPU_MIN_ALLOC_SIZE;
	int bits = am_next_bit(m->bound_map, m->map_bits + 1, bit + 1) - bit;

	am_bitmap_fill(m->alloc_map, bit, bits, false);
	m->free_bytes += bits * PCPU_MIN_ALLOC_SIZE;
	m->nr_alloc--;
	m->chunk_md.first_free = am_min(m->chunk_md.first_free, bit);
	am_hint_free(m, bit, bits);
	return bits * PCPU_MIN_ALLOC_SIZE;
}

int pcpu_am_free_many(struct pcpu_area_map *m, const int *offs, int n)
{
	struct pcpu_block_md *c = &m->chunk_md;
	/* block_bits is a power of two (am_geometry_ok()): shifts, not divisions, per area */
	int bs = __builtin_ctz((unsigned)m->block_bits);
	int i, j, bit, bits, freed = 0, ps, pe, blocks = 0, blk = -1;

	/* All or nothing: check every offset before changing anything. */
	for (i = 0; i < n; i++) {
		if ((i && offs[i] <= offs[i - 1]) || !am_is_alloc_start(m, offs[i]))
			return -1;
		/* Blocks the areas start in: the offsets ascend, so a new one is a new block. */
		if ((offs[i] / PCPU_MIN_ALLOC_SIZE) >> bs != blk) {
			blk = (offs[i] / PCPU_MIN_ALLOC_SIZE) >> bs;
			blocks++;
		}
	}
	if (n <= 0)
		return 0;
	/*
	 * Few areas per block (a batch freed in random order): a rebuild walks every run of
	 * each block it touches, hundreds of them after random traffic, to free a few areas;
	 * the kernel's update per area costs less then.
	 */
	if (n < AM_REBUILD_MIN_AREAS * blocks) {
		for (i = 0; i < n; i++)
			freed += am_free_area(m, offs[i]);
		return freed;
	}

	ps = pe = (offs[0] / PCPU_MIN_ALLOC_SIZE) >> bs;
	for (i = 0; i < n; i++) {
		bit = offs[i] / PCPU_MIN_ALLOC_SIZE;
		bits = am_next_bit(m->bound_map, m->map_bits + 1, bit + 1) - bit;
		am_bitmap_fill(m->alloc_map, bit, bits, false);
		freed += bits;
		/* Blocks [ps, pe] wait for a rebuild until no later area can touch them. */
		if (bit >> bs > pe) {
			for (j = ps; j <= pe; j++)
				am_block_rebuild(m, j);
			ps = bit >> bs;
		}
		pe = (bit + bits - 1) >> bs;
	}
	for (j = ps; j <= pe; j++)
		am_block_rebuild(m, j);

	m->free_bytes += freed * PCPU_MIN_ALLOC_SIZE;
	m->nr_alloc -= n;
	c->first_free = am_min(c->first_free, offs[0] / PCPU_MIN_ALLOC_SIZE);
	am_chunk_edges(m);
	/* Runs grew and merged all over: both chunk hints again, from nothing. */
	c->scan_hint = 0;
	am_chunk_refresh(m, true);
	return freed * PCPU_MIN_ALLOC_SIZE;
}

/* ---------------------------------------------------------------------------------------- */
/* Interface                                                                                 */
/* ---------------------------------------------------------------------------------------- */

static bool am_geometry_ok(int unit_bytes, int block_bytes, int start_offset, int end_offset)
{
	if (block_bytes <= 0 || (block_bytes & (block_bytes - 1)) ||
	    block_bytes % (PCPU_MIN_ALLOC_SIZE * AM_BPL))
		return false;
	if (unit_bytes <= 0 || unit_bytes % block_bytes)
		return false;
	if (start_offset < 0 || end_offset < 0 || start_offset % PCPU_MIN_ALLOC_SIZE ||
	    end_offset % PCPU_MIN_ALLOC_SIZE)
		return false;
	return start_offset < unit_bytes && end_offset < unit_bytes - start_offset;
}

/* kernel: pcpu_alloc_chunk() + pcpu_alloc_first_chunk() for the region edges */
int pcpu_am_init(struct pcpu_area_map *m, int unit_bytes, int block_bytes, int start_offset,
		 int end_offset, bool populated)
{
	int i;

	memset(m, 0, sizeof(*m));
	if (!am_geometry_ok(unit_bytes, block_bytes, start_offset, end_offset))
		return -EINVAL;

	m->map_bits = unit_bytes / PCPU_MIN_ALLOC_SIZE;
	m->block_bits = block_bytes / PCPU_MIN_ALLOC_SIZE;
	m->nr_blocks = unit_bytes / block_bytes;
	m->alloc_map = calloc(AM_LONGS(m->map_bits), sizeof(unsigned long));
	m->bound_map = calloc(AM_LONGS(m->map_bits + 1), sizeof(unsigned long));
	m->populated = calloc(AM_LONGS(m->nr_blocks), sizeof(unsigned long));
	m->md_blocks = calloc(m->nr_blocks, sizeof(*m->md_blocks));
	if (!m->alloc_map || !m->bound_map || !m->populated || !m->md_blocks) {
		pcpu_am_destroy(m);
		return -ENOMEM;
	}

	for (i = 0; i < m->nr_blocks; i++)
		am_md_init(&m->md_blocks[i], m->block_bits);
	am_md_init(&m->chunk_md, m->map_bits);
	m->start_offset = start_offset;
	m->end_offset = end_offset;
	m->free_bytes = unit_bytes - start_offset - end_offset;
	m->nr_empty_blocks = m->nr_blocks;
	if (populated) {
		am_bitmap_fill(m->populated, 0, m->nr_blocks, true);
		m->nr_populated = m->nr_blocks;
		m->nr_empty_pop_pages = m->nr_blocks;
	}

	/*
	 * The edges of a region map are allocations that are never freed, as in the kernel's
	 * first chunk, so every block stays whole and the hints need no special cases.
	 */
	if (start_offset)
		am_mark_alloc(m, 0, start_offset / PCPU_MIN_ALLOC_SIZE);
	if (end_offset)
		am_mark_alloc(m, m->map_bits - end_offset / PCPU_MIN_ALLOC_SIZE,
			      end_offset / PCPU_MIN_ALLOC_SIZE);
	return 0;
}

void pcpu_am_destroy(struct pcpu_area_map *m)
{
	free(m->alloc_map);
	free(m->bound_map);
	free(m->populated);
	free(m->md_blocks);
	memset(m, 0, sizeof(*m));
}

int pcpu_am_alloc(struct pcpu_area_map *m, int size, int align, bool pop_only)
{
	int bits, start;

	if (!am_request(m, size, align, &bits, &align))
		return -1;
	start = am_find_block_fit(m, bits, align, pop_only);
	if (start < 0)
		return -1;
	return am_alloc_area(m, bits, align, start, pop_only);
}

bool pcpu_am_is_alloc_start(const struct pcpu_area_map *m, int off)
{
	return am_is_alloc_start(m, off);
}

int pcpu_am_alloc_size(const struct pcpu_area_map *m, int off)
{
	int bit = off / PCPU_MIN_ALLOC_SIZE;

	return (am_next_bit(m->bound_map, m->map_bits + 1, bit + 1) - bit) * PCPU_MIN_ALLOC_SIZE;
}

/* kernel: pcpu_free_area() */
int pcpu_am_free(struct pcpu_area_map *m, int off)
{
	if (!am_is_alloc_start(m, off))
		return -1;
	return am_free_area(m, off);
}

int pcpu_am_contig_bytes(const struct pcpu_area_map *m)
{
	return m->chunk_md.contig_hint * PCPU_MIN_ALLOC_SIZE;
}

/* kernel: pcpu_chunk_populated() */
void pcpu_am_populated(struct pcpu_area_map *m, int first, int nr)
{
	int i;

	for (i = first < 0 ? 0 : first; i < first + nr && i < m->nr_blocks; i++) {
		if (am_test_bit(m->populated, i))
			continue;
		am_set_bit(m->populated, i);
		m->nr_populated++;
		if (pcpu_am_block_empty(m, i))
			m->nr_empty_pop_pages++;
	}
}

/* kernel: pcpu_chunk_depopulated() */
void pcpu_am_depopulated(struct pcpu_area_map *m, int first, int nr)
{
	int i;

	for (i = first < 0 ? 0 : first; i < first + nr && i < m->nr_blocks; i++) {
		if (!am_test_bit(m->populated, i))
			continue;
		m->populated[AM_WORD(i)] &= ~AM_MASK(i);
		m->nr_populated--;
		if (pcpu_am_block_empty(m, i))
			m->nr_empty_pop_pages--;
	}
}

bool pcpu_am_block_empty(const struct pcpu_area_map *m, int i)
{
	return m->md_blocks[i].left_free == m->block_bits;
}

bool pcpu_am_block_populated(const struct pcpu_area_map *m, int i)
{
	return am_test_bit(m->populated, i);
}

int pcpu_am_next_unpop(const struct pcpu_area_map *m, int from)
{
	return am_next_zero(m->populated, m->nr_blocks, from < 0 ? 0 : from);
}

int pcpu_am_next_pop(const struct pcpu_area_map *m, int from)
{
	return am_next_bit(m->populated, m->nr_blocks, from < 0 ? 0 : from);
}

int pcpu_am_for_each_alloc(const struct pcpu_area_map *m, int (*fn)(int off, int size, void *arg),
			   void *arg)
{
	int lim = m->map_bits - m->end_offset / PCPU_MIN_ALLOC_SIZE;
	int pos = m->start_offset / PCPU_MIN_ALLOC_SIZE;
	int a, z, ret;

	while (pos < lim) {
		/* The first allocated bit after a free one, or after an allocation, is a start. */
		a = am_next_bit(m->alloc_map, lim, pos);
		if (a >= lim)
			break;
		z = am_next_bit(m->bound_map, m->map_bits + 1, a + 1);
		ret = fn(a * PCPU_MIN_ALLOC_SIZE, (z - a) * PCPU_MIN_ALLOC_SIZE, arg);
		if (ret)
			return ret;
		pos = z;
	}
	return 0;
}

static int am_cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

/* kernel: chunk_map_stats() */
int pcpu_am_frag(const struct pcpu_area_map *m, struct pcpu_am_frag *f)
{
	int lim = m->map_bits - m->end_offset / PCPU_MIN_ALLOC_SIZE;
	int pos = m->start_offset / PCPU_MIN_ALLOC_SIZE;
	int *sizes, n = 0, a, z;

	memset(f, 0, sizeof(*f));
	sizes = malloc(sizeof(int) * (size_t)(m->nr_alloc > 0 ? m->nr_alloc : 1));
	if (!sizes)
		return -ENOMEM;
	while (pos < lim) {
		a = am_next_bit(m->alloc_map, lim, pos);
		if (a >= lim)
			break;
		/* Only holes before the last allocation count as fragmentation. */
		f->sum_frag += (a - pos) * PCPU_MIN_ALLOC_SIZE;
		if ((a - pos) * PCPU_MIN_ALLOC_SIZE > f->max_frag)
			f->max_frag = (a - pos) * PCPU_MIN_ALLOC_SIZE;
		z = am_next_bit(m->bound_map, m->map_bits + 1, a + 1);
		if (n < m->nr_alloc)
			sizes[n++] = (z - a) * PCPU_MIN_ALLOC_SIZE;
		pos = z;
	}
	if (n) {
		qsort(sizes, n, sizeof(int), am_cmp_int);
		f->min_alloc = sizes[0];
		f->med_alloc = sizes[(n - 1) / 2];
		f->max_alloc = sizes[n - 1];
	}
	free(sizes);
	f->nr_alloc = m->nr_alloc;
	f->first_free = m->chunk_md.first_free * PCPU_MIN_ALLOC_SIZE;
	f->contig_bytes = m->chunk_md.contig_hint * PCPU_MIN_ALLOC_SIZE;
	f->scan_bytes = m->chunk_md.scan_hint * PCPU_MIN_ALLOC_SIZE;
	return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Verification                                                                              */
/* ---------------------------------------------------------------------------------------- */

struct am_why {
	char *buf;
	size_t len;
};

__attribute__((format(printf, 2, 3)))
static int am_fail(struct am_why *w, const char *fmt, ...)
{
	va_list ap;

	if (w->buf && w->len) {
		va_start(ap, fmt);
		vsnprintf(w->buf, w->len, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static bool am_range_free(const unsigned long *map, int start, int len)
{
	return am_next_bit(map, start + len, start) >= start + len;
}

/* Free, and bounded by allocated bits or the area's edges on both sides. */
static bool am_run_maximal(const unsigned long *map, int nr_bits, int start, int len)
{
	if (!am_range_free(map, start, len))
		return false;
	if (start > 0 && !am_test_bit(map, start - 1))
		return false;
	return start + len == nr_bits || am_test_bit(map, start + len);
}

/*
 * The hint rules shared by blocks and the chunk: @b's hints are free runs inside the area
 * (so never larger than the truth), the scan hint is no larger than the contig hint, apart
 * from it, and before it unless the two are the same size. Both are whole runs (bounded by
 * allocated bits or the area's edges): the free path and refresh rely on hint edges being
 * real run edges. For blocks, "allocated" at an edge means the block edge itself.
 */
static int am_verify_hints(const struct pcpu_block_md *b, const unsigned long *map,
			   bool any_free, const char *what, int idx, struct am_why *w)
{
	int cs = b->contig_hint_start, c = b->contig_hint;
	int ss = b->scan_hint_start, s = b->scan_hint;

	if (c < 0 || c > b->nr_bits || (c && (cs < 0 || cs + c > b->nr_bits)))
		return am_fail(w, "%s %d: contig hint %d@%d out of range", what, idx, c, cs);
	if (c && !am_range_free(map, cs, c))
		return am_fail(w, "%s %d: contig hint %d@%d covers allocated bits", what, idx, c, cs);
	if (c && !am_run_maximal(map, b->nr_bits, cs, c))
		return am_fail(w, "%s %d: contig hint %d@%d is part of a larger run", what, idx, c,
			       cs);
	if (any_free && !c)
		return am_fail(w, "%s %d: free bits but no contig hint", what, idx);
	if (!s)
		return 0;
	if (s < 0 || ss < 0 || ss + s > b->nr_bits)
		return am_fail(w, "%s %d: scan hint %d@%d out of range", what, idx, s, ss);
	if (!am_range_free(map, ss, s))
		return am_fail(w, "%s %d: scan hint %d@%d covers allocated bits", what, idx, s, ss);
	if (!am_run_maximal(map, b->nr_bits, ss, s))
		return am_fail(w, "%s %d: scan hint %d@%d is part of a larger run", what, idx, s, ss);
	if (s > c)
		return am_fail(w, "%s %d: scan hint %d > contig hint %d", what, idx, s, c);
	if (am_overlap(ss, ss + s, cs, cs + c))
		return am_fail(w, "%s %d: scan hint %d@%d overlaps contig hint %d@%d", what, idx,
			       s, ss, c, cs);
	if (ss > cs && s != c)
		return am_fail(w, "%s %d: scan hint %d@%d after smaller contig %d@%d", what, idx,
			       s, ss, c, cs);
	return 0;
}

/* Edges and first_free of @b must be exactly what the bitmap says. */
static int am_verify_edges(const struct pcpu_block_md *b, const unsigned long *map,
			   const char *what, int idx, struct am_why *w)
{
	int n = b->nr_bits;
	int ff = am_next_zero(map, n, 0);
	int left = ff ? 0 : am_next_bit(map, n, 0);
	int right = n - 1 - am_last_bit(map, n);

	if (b->first_free != ff)
		return am_fail(w, "%s %d: first_free %d, bitmap says %d", what, idx,
			       b->first_free, ff);
	if (b->left_free != left)
		return am_fail(w, "%s %d: left_free %d, bitmap says %d", what, idx,
			       b->left_free, left);
	if (b->right_free != right)
		return am_fail(w, "%s %d: right_free %d, bitmap says %d", what, idx,
			       b->right_free, right);
	return 0;
}

static int am_verify_blocks(const struct pcpu_area_map *m, struct am_why *w)
{
	int bb = m->block_bits;
	int i, empty = 0, empty_pop = 0;
	const struct pcpu_block_md *b;
	const unsigned long *map;
	bool whole;

	for (i = 0; i < m->nr_blocks; i++) {
		b = &m->md_blocks[i];
		map = am_block_map(m, i);
		if (b->nr_bits != bb)
			return am_fail(w, "block %d: nr_bits %d != %d", i, b->nr_bits, bb);
		if (am_verify_edges(b, map, "block", i, w) ||
		    am_verify_hints(b, map, b->first_free < bb, "block", i, w))
			return -1;
		whole = b->left_free == bb;
		if (whole && b->contig_hint != bb)
			return am_fail(w, "block %d: entirely free but contig hint %d", i,
				       b->contig_hint);
		empty += whole;
		empty_pop += whole && am_test_bit(m->populated, i);
	}
	if (empty != m->nr_empty_blocks)
		return am_fail(w, "nr_empty_blocks %d, blocks say %d", m->nr_empty_blocks, empty);
	if (empty_pop != m->nr_empty_pop_pages)
		return am_fail(w, "nr_empty_pop_pages %d, blocks say %d", m->nr_empty_pop_pages,
			       empty_pop);
	if (am_count_bits(m->populated, m->nr_blocks) != m->nr_populated)
		return am_fail(w, "nr_populated %d, bitmap says %d", m->nr_populated,
			       am_count_bits(m->populated, m->nr_blocks));
	return 0;
}

/* An allocation that is part of the map's layout: the hidden head or tail of a region map. */
static int am_verify_edge_alloc(const struct pcpu_area_map *m, int start, int bits,
				const char *what, struct am_why *w)
{
	if (am_next_zero(m->alloc_map, start + bits, start) < start + bits)
		return am_fail(w, "%s [%d, %d) not allocated", what, start, start + bits);
	if (!am_test_bit(m->bound_map, start) ||
	    am_next_bit(m->bound_map, m->map_bits + 1, start + 1) != start + bits)
		return am_fail(w, "%s [%d, %d) boundary bits broken", what, start, start + bits);
	return 0;
}

/*
 * Runs the chunk hints must know: those that cross a block edge or fill a block. The chunk
 * contig hint is at least each of them, and with a scan hint, none before it is larger than
 * it: that is what lets find_block_fit skip to the scan hint's end and a refresh start there.
 */
static int am_verify_big_run(const struct pcpu_area_map *m, int p, int q, struct am_why *w)
{
	const struct pcpu_block_md *c = &m->chunk_md;
	int bb = m->block_bits;

	if (q - p < bb && p / bb == (q - 1) / bb)
		return 0;
	if (q - p > c->contig_hint)
		return am_fail(w, "chunk: run %d@%d larger than contig hint %d@%d", q - p, p,
			       c->contig_hint, c->contig_hint_start);
	if (c->scan_hint && p < c->scan_hint_start && q - p > c->scan_hint)
		return am_fail(w, "chunk: run %d@%d before and larger than scan hint %d@%d",
			       q - p, p, c->scan_hint, c->scan_hint_start);
	return 0;
}

static int am_verify_bitmaps(const struct pcpu_area_map *m, struct am_why *w)
{
	int head = m->start_offset / PCPU_MIN_ALLOC_SIZE;
	int tail = m->end_offset / PCPU_MIN_ALLOC_SIZE;
	int pos = 0, a, z, s, nfree = 0, nstart = 0;

	if (head && am_verify_edge_alloc(m, 0, head, "head", w))
		return -1;
	if (tail && am_verify_edge_alloc(m, m->map_bits - tail, tail, "tail", w))
		return -1;

	while (pos < m->map_bits) {
		a = am_next_bit(m->alloc_map, m->map_bits, pos);
		if (a > pos && am_verify_big_run(m, pos, a, w))
			return -1;
		nfree += a - pos;
		if (a >= m->map_bits)
			break;
		z = am_next_zero(m->alloc_map, m->map_bits, a);
		if (!am_test_bit(m->bound_map, a) || !am_test_bit(m->bound_map, z))
			return am_fail(w, "allocated run [%d, %d) lacks a boundary bit", a, z);
		for (s = a; s < z; s = am_next_bit(m->bound_map, z, s + 1))
			nstart++;
		pos = z;
	}
	nstart -= (head > 0) + (tail > 0);
	if (nfree * PCPU_MIN_ALLOC_SIZE != m->free_bytes)
		return am_fail(w, "free_bytes %d, bitmap says %d", m->free_bytes,
			       nfree * PCPU_MIN_ALLOC_SIZE);
	if (nstart != m->nr_alloc)
		return am_fail(w, "nr_alloc %d, bitmaps say %d", m->nr_alloc, nstart);
	return 0;
}

int pcpu_am_verify(const struct pcpu_area_map *m, char *why, size_t whylen)
{
	struct am_why w = { why, whylen };
	const struct pcpu_block_md *c = &m->chunk_md;

	if (why && whylen)
		why[0] = '\0';
	if (!m->alloc_map || !m->bound_map || !m->populated || !m->md_blocks)
		return am_fail(&w, "map not initialised");
	if (m->block_bits <= 0 || m->block_bits % AM_BPL || m->nr_blocks <= 0 ||
	    m->map_bits != m->nr_blocks * m->block_bits || c->nr_bits != m->map_bits)
		return am_fail(&w, "bad geometry: %d bits, %d blocks of %d", m->map_bits,
			       m->nr_blocks, m->block_bits);
	if (!am_geometry_ok(m->map_bits * PCPU_MIN_ALLOC_SIZE, m->block_bits * PCPU_MIN_ALLOC_SIZE,
			    m->start_offset, m->end_offset))
		return am_fail(&w, "bad region: start %d end %d", m->start_offset, m->end_offset);
	if (am_verify_edges(c, m->alloc_map, "chunk", 0, &w) ||
	    am_verify_hints(c, m->alloc_map, c->first_free < m->map_bits, "chunk", 0, &w))
		return -1;
	if (am_verify_blocks(m, &w))
		return -1;
	return am_verify_bitmaps(m, &w);
}
