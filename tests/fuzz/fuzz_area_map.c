/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * fuzz_area_map - libFuzzer harness for lib/area_map.c. The input is a geometry header and
 * an op stream, run against the reference model of tests/unit/am_model.h; every op is
 * followed by a full comparison and pcpu_am_verify(), and any disagreement traps.
 *
 * Header (4 bytes): block size and block count, head offset, tail offset, populated.
 * Ops (opcode byte, then operands):
 *   0-2  alloc: size (2 bytes), align (1 byte); opcode bit 4 = large sizes, bit 5 = pop_only;
 *        with bit 3, alloc_many: one more byte, the batch's maximum less one
 *   3-4  free the k-th live allocation (1 byte); with bit 3, free_many (1 byte): bits 0-1 pick
 *        every (1 + b)-th live allocation, bits 2-6 where to start; bit 7: a batch with one
 *        bad entry (a repeat or a non-start), which must be rejected
 *   5    free an offset that is not a live start (2 bytes)
 *   6    populate a block (1 byte)
 *   7    depopulate a block if it is entirely free (1 byte)
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "area_map.h"
#include "../unit/am_model.h"

struct fz_in {
	const uint8_t *p;
	size_t n;
};

static int fz_byte(struct fz_in *in)
{
	if (!in->n)
		return -1;
	in->n--;
	return *in->p++;
}

static int fz_u16(struct fz_in *in)
{
	int lo = fz_byte(in), hi = fz_byte(in);

	if (lo < 0 || hi < 0)
		return -1;
	return lo | hi << 8;
}

static char fz_why[256];

static void fz_check(int err)
{
	if (!err)
		return;
	fprintf(stderr, "fuzz_area_map: %s\n", fz_why);
	__builtin_trap();
}

/* free_many: every (1 + (b & 3))-th live allocation from the (b >> 2)-th; bit 7 spoils it. */
static void fz_free_many(struct am_model *md, struct pcpu_area_map *m, int b)
{
	static int sel[256], offs[8];
	int step = 1 + (b & 3), n = 0, i;

	if (b & 0x80) {
		/* Live starts in order, then a repeat of the last or an offset just past it. */
		for (i = 0; i < md->nlive && n < 7; i++)
			offs[n++] = md->live[i].off;
		qsort(offs, n, sizeof(int), amm_cmp_int);
		if (n && b & 1) {
			offs[n] = offs[n - 1];
		} else {
			offs[n] = (n ? offs[n - 1] : md->start) + 1 + (b >> 1 & 15);
			if (amm_is_live(md, offs[n]))
				return;
		}
		fz_check(amm_bad_free_many(m, offs, n + 1, fz_why, sizeof(fz_why)));
		return;
	}
	for (i = (b >> 2) % step; i < md->nlive && n < 256; i += step)
		sel[n++] = i;
	fz_check(amm_free_many(md, m, sel, n, fz_why, sizeof(fz_why)));
}

static int fz_op(struct am_model *md, struct pcpu_area_map *m, int op, struct fz_in *in)
{
	static int offs[256];
	int a, b, c = 0, size, align, ret;
	bool pop_only;

	switch (op & 7) {
	case 0:
	case 1:
	case 2:
		a = fz_u16(in);
		b = fz_byte(in);
		if (op & 0x08)
			c = fz_byte(in);
		if (a < 0 || b < 0 || c < 0)
			return -1;
		size = op & 0x10 ? 1 + a % (md->unit + 8) : 1 + a % 260;
		align = 1 << (b % 14);
		pop_only = op & 0x20;
		if (op & 0x08) {
			ret = pcpu_am_alloc_many(m, size, align, pop_only, c + 1, offs);
			fz_check(amm_alloc_many(md, m, size, align, pop_only, c + 1, ret, offs,
						true, fz_why, sizeof(fz_why)));
			break;
		}
		ret = pcpu_am_alloc(m, size, align, pop_only);
		fz_check(amm_alloc(md, m, size, align, pop_only, ret, fz_why, sizeof(fz_why)));
		break;
	case 3:
	case 4:
		a = fz_byte(in);
		if (a < 0)
			return -1;
		if (op & 0x08) {
			fz_free_many(md, m, a);
			break;
		}
		if (!md->nlive)
			break;
		a %= md->nlive;
		ret = pcpu_am_free(m, md->live[a].off);
		fz_check(amm_free(md, a, ret, fz_why, sizeof(fz_why)));
		break;
	case 5:
		a = fz_u16(in);
		if (a < 0)
			return -1;
		fz_check(amm_bad_free(md, m, a % (md->unit + 64) - 32, fz_why, sizeof(fz_why)));
		break;
	case 6:
		a = fz_byte(in);
		if (a < 0)
			return -1;
		a %= md->nblocks;
		pcpu_am_populated(m, a, 1);
		amm_populate(md, a, true);
		break;
	default:
		a = fz_byte(in);
		if (a < 0)
			return -1;
		a %= md->nblocks;
		if (md->blk_free[a] != md->bb)
			break;
		pcpu_am_depopulated(m, a, 1);
		amm_populate(md, a, false);
		break;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = { data, size };
	struct pcpu_area_map m;
	struct am_model md;
	int g, block, unit, head, tail, op, n;
	bool pop;

	if (size < 4)
		return 0;
	g = fz_byte(&in);
	block = 512 << (g & 3);
	unit = block * (1 + (g >> 2 & 7));
	head = fz_byte(&in) * 4 * (g & 0x20 ? 1 : 16) % unit;
	tail = fz_byte(&in) * 4 * (g & 0x40 ? 1 : 16) % unit;
	if (head + tail >= unit)
		tail = 0;
	if (head >= unit)
		head = 0;
	pop = fz_byte(&in) & 1;

	if (pcpu_am_init(&m, unit, block, head, tail, pop))
		__builtin_trap();
	if (amm_init(&md, unit, block, head, tail, pop))
		__builtin_trap();
	fz_check(amm_compare(&md, &m, fz_why, sizeof(fz_why)));

	/* Long inputs add little but cost a full check per op: stop after a few hundred. */
	for (n = 0; n < 400 && (op = fz_byte(&in)) >= 0; n++) {
		if (fz_op(&md, &m, op, &in))
			break;
		fz_check(amm_compare(&md, &m, fz_why, sizeof(fz_why)));
	}

	/* Freeing everything must give back the fresh map's counters. */
	while (md.nlive) {
		fz_check(amm_free(&md, md.nlive - 1, pcpu_am_free(&m, md.live[md.nlive - 1].off),
				  fz_why, sizeof(fz_why)));
		fz_check(amm_compare(&md, &m, fz_why, sizeof(fz_why)));
	}
	if (m.free_bytes != unit - head - tail)
		__builtin_trap();

	amm_destroy(&md);
	pcpu_am_destroy(&m);
	return 0;
}
