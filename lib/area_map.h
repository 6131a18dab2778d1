/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * area_map - one chunk's allocation state: the kernel's bitmap allocator (mm/percpu.c since
 * v4.14, with the 2019 scan hints). Pure code: no syscalls, no locks, no knowledge of mmap or
 * threads. The caller serialises calls on one map (the allocator's short lock).
 *
 * Units: one bit ("granule") covers PCPU_MIN_ALLOC_SIZE (4) bytes of a unit. A block is one
 * page of the unit (block_bits = page_size / 4 bits) and has its own metadata; the chunk has
 * a block_md of the same shape covering the whole map.
 *
 * A region map (the kernel's first chunk / reserved chunk) serves only bytes
 * [start_offset, unit_bytes - end_offset): the bits outside are permanently allocated.
 *
 * The map also tracks which blocks (pages) are populated, so that it can count "empty
 * populated pages" (blocks that are entirely free and populated) exactly as the kernel does,
 * and so that pop_only allocations (PCPU_NOWAIT) use populated pages only.
 */
#ifndef PCPU_AREA_MAP_H
#define PCPU_AREA_MAP_H

#include <stdbool.h>
#include <stddef.h>

#define PCPU_MIN_ALLOC_SHIFT 2
#define PCPU_MIN_ALLOC_SIZE (1 << PCPU_MIN_ALLOC_SHIFT)

/* The kernel's struct pcpu_block_md; every field in bits, relative to the area covered. */
struct pcpu_block_md {
	int scan_hint;         /* largest known free run before the contig hint; 0: none */
	int scan_hint_start;
	int contig_hint;       /* largest known free run (never larger than the truth) */
	int contig_hint_start;
	int left_free;         /* free run touching the left edge */
	int right_free;        /* free run touching the right edge */
	int first_free;        /* first free bit */
	int nr_bits;           /* size of the area covered */
};

struct pcpu_area_map {
	unsigned long *alloc_map;     /* map_bits bits; set = allocated (ground truth) */
	unsigned long *bound_map;     /* map_bits + 1 bits; allocation starts and ends */
	unsigned long *populated;     /* nr_blocks bits; set = page populated */
	struct pcpu_block_md *md_blocks; /* nr_blocks entries */
	struct pcpu_block_md chunk_md;   /* chunk-wide hints */
	int map_bits;
	int nr_blocks;
	int block_bits;
	int start_offset;             /* bytes at the start that are not served */
	int end_offset;               /* bytes at the end that are not served */
	int free_bytes;               /* free bytes in the served range */
	int nr_populated;             /* populated blocks */
	int nr_empty_pop_pages;       /* blocks entirely free AND populated */
	int nr_alloc;                 /* allocated areas (for the allocator, live ones plus
					 those freed but still queued for zeroing) */
	int nr_empty_blocks;          /* blocks entirely free, populated or not */
};

/*
 * pcpu_am_init - set up @m for a unit of @unit_bytes bytes cut into blocks of @block_bytes
 * bytes (a power of two, multiple of 4 * BITS_PER_LONG; unit_bytes a multiple of it),
 * serving [start_offset, unit_bytes - end_offset) (both multiples of 4). Every block starts
 * unpopulated unless @populated is true. Metadata is allocated with calloc.
 * Return: 0, -EINVAL for bad geometry, -ENOMEM.
 */
int pcpu_am_init(struct pcpu_area_map *m, int unit_bytes, int block_bytes, int start_offset,
		 int end_offset, bool populated);

/* pcpu_am_destroy - free @m's metadata. */
void pcpu_am_destroy(struct pcpu_area_map *m);

/*
 * pcpu_am_alloc - the kernel's pcpu_find_block_fit() + pcpu_alloc_area(): find room for
 * @size bytes aligned to @align (power of two, <= block_bytes; raised to 4) and allocate it.
 * @pop_only: only use pages whose blocks are all populated.
 * Return: the byte offset in the unit, or -1 when it does not fit (the map is unchanged).
 * Sizes are rounded up to 4 bytes. Like the kernel, this is not exact first fit: a request
 * may fail while a badly aligned hole would fit; it never succeeds wrongly.
 */
int pcpu_am_alloc(struct pcpu_area_map *m, int size, int align, bool pop_only);

/*
 * pcpu_am_alloc_many - not in the kernel: up to @max allocations of @size bytes aligned to
 * @align (as for pcpu_am_alloc()), each an allocation of its own (freeable with
 * pcpu_am_free(), counted in nr_alloc), their byte offsets stored in @offs in increasing
 * order. The first goes where pcpu_am_alloc() would put it, the next ones at the following
 * aligned starts of the same free run while they fit (on populated pages for @pop_only);
 * then the next run is searched the same way. The block and chunk metadata are updated once
 * per run taken, not once per object. The map ends in a state that as many pcpu_am_alloc()
 * calls could have left (pcpu_am_verify() holds).
 * Return: the number allocated, 0 to @max; 0 for a bad request or @max <= 0. Fewer than
 * @max only when pcpu_am_alloc() with the same arguments would now fail.
 */
int pcpu_am_alloc_many(struct pcpu_area_map *m, int size, int align, bool pop_only, int max,
		       int *offs);

/*
 * pcpu_am_free - the kernel's pcpu_free_area(): free the allocation starting at byte @off.
 * Return: the bytes freed, or -1 if @off is not the start of a live allocation (the map is
 * then unchanged): this is libpcpu's invalid/double-free check.
 */
int pcpu_am_free(struct pcpu_area_map *m, int off);

/*
 * pcpu_am_free_many - not in the kernel: free the @n allocations starting at the byte
 * offsets @offs, which must be strictly increasing. With 8 areas or more per block they
 * start in, on average, the metadata of each block touched are rebuilt once and the chunk
 * hints once (a walk of every block: worth it for a batch, not for one area); with fewer,
 * each area is freed as pcpu_am_free() does (a rebuild walks every free run of a block).
 * Return: the bytes freed in all, 0 when @n <= 0, or -1 if some offset is not the start of
 * a live allocation or the offsets are not strictly increasing (the map is then unchanged).
 */
int pcpu_am_free_many(struct pcpu_area_map *m, const int *offs, int n);

/* pcpu_am_is_alloc_start - true when byte @off starts a live allocation. O(1). */
bool pcpu_am_is_alloc_start(const struct pcpu_area_map *m, int off);

/* pcpu_am_alloc_size - bytes of the live allocation starting at @off (caller checked it). */
int pcpu_am_alloc_size(const struct pcpu_area_map *m, int off);

/* pcpu_am_contig_bytes - the chunk contig hint in bytes (what the chunk's slot is from). */
int pcpu_am_contig_bytes(const struct pcpu_area_map *m);

/*
 * pcpu_am_populated / pcpu_am_depopulated - mark blocks [first, first + nr) (de)populated
 * and adjust nr_populated / nr_empty_pop_pages (kernel: pcpu_chunk_populated()).
 * The caller only depopulates blocks that are entirely free.
 * Unlike the kernel, nr_empty_pop_pages is exact at every moment: an allocation into an
 * unpopulated empty block does not count it down, and populating a block counts it up only
 * if it is entirely free; the net effect of alloc + populate is the kernel's. Blocks already
 * in the requested state are left alone.
 */
void pcpu_am_populated(struct pcpu_area_map *m, int first, int nr);
void pcpu_am_depopulated(struct pcpu_area_map *m, int first, int nr);

/* pcpu_am_block_empty - true when block @i is entirely free. */
bool pcpu_am_block_empty(const struct pcpu_area_map *m, int i);
/* pcpu_am_block_populated - true when block @i is populated. */
bool pcpu_am_block_populated(const struct pcpu_area_map *m, int i);

/*
 * pcpu_am_next_unpop / pcpu_am_next_pop - for walking page runs: the first block >= @from
 * that is (un)populated, or nr_blocks.
 */
int pcpu_am_next_unpop(const struct pcpu_area_map *m, int from);
int pcpu_am_next_pop(const struct pcpu_area_map *m, int from);

/*
 * pcpu_am_verify - check every invariant: hints (never larger than the truth, starts inside
 * free runs, scan hint before contig hint rules, left/right free exact, first_free exact),
 * boundary bits, free_bytes, nr_alloc, populated and empty page counts, the region edges.
 * Return: 0, or -1 with a one-line description of the first broken invariant in @why.
 */
int pcpu_am_verify(const struct pcpu_area_map *m, char *why, size_t whylen);

/* Fragmentation figures for stats (kernel: chunk_map_stats()), all in bytes. */
struct pcpu_am_frag {
	int nr_alloc;
	int sum_frag;      /* free bytes between the start and the last allocation */
	int max_frag;      /* largest such free run */
	int min_alloc, med_alloc, max_alloc; /* over live allocations */
	int first_free;    /* chunk first_free, in bytes */
	int contig_bytes, scan_bytes;
};
/* pcpu_am_frag - fill @f; uses a temporary malloc'ed buffer. Return: 0 or -ENOMEM. */
int pcpu_am_frag(const struct pcpu_area_map *m, struct pcpu_am_frag *f);

/*
 * pcpu_am_for_each_alloc - call @fn(off, size, arg) for every live allocation in address
 * order; stops early when @fn returns nonzero (and returns that value).
 */
int pcpu_am_for_each_alloc(const struct pcpu_area_map *m, int (*fn)(int off, int size, void *arg),
			   void *arg);

#endif /* PCPU_AREA_MAP_H */
