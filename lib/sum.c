/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * sum - pcpu_sum64(): the totals of many per-CPU 8-byte integers in one pass.
 *
 * Summing handle by handle visits every unit once per handle: for n counters on N CPUs
 * that is n * N scattered loads, each a likely cache miss (the copies of one object sit at
 * the same offset of every unit, so they compete for the same cache sets) and a TLB miss
 * once N units exceed the TLB. Instead the walk is unit-major, so that a unit costs the lines
 * and pages the counters really occupy, read in order.
 *
 * The addresses asked for are grouped into runs of neighbouring slots (8 bytes each):
 * counters allocated one after another, or the fields of one object, are mostly one run. A
 * run is summed by a plain loop over consecutive words, eight units at a time: eight
 * sequential streams the hardware prefetcher follows, two copies a SIMD load where that is
 * still atomic per copy, one load and store of the running sums per eight copies, and no
 * per-copy index. With no checker (nor TSan) watching, a run bridges a hole of up to 7
 * slots nobody asked for (a struct's other fields): those bytes lie between two handles
 * less than a cache line apart, so on their pages, which are mapped in every unit; reading
 * them costs less than starting a new run.
 *
 * Where the handles fill the 4 KiB blocks they fall in (64 a block on average: counters
 * allocated together, whatever their order), nothing is sorted: a hash table finds each
 * handle's block, a bitmap per block gives its runs, and a sum per slot of the block puts
 * each result one array read away. Handles spread thinner are sorted by address (a merge of
 * a few ascending runs, or a radix sort) and their sums packed run after run.
 *
 * The kernel has no equivalent; its readers fold one percpu_counter at a time.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <pcpu.h>

#include "checker.h"
#include "sum.h"
#include "util.h"

/* Up to this many handles the buffers live on the stack. */
#define SUM_STACK 64
/* Up to this many CPUs, read handle by handle (see sum_unsorted()). */
#define SUM_DIRECT_CPUS 8
/* Up to this many ascending runs a merge (log2(runs) sweeps) beats the radix sort. */
#define SUM_MERGE_RUNS 16
/* A run bridges at most this many unrequested slots: the rest of a 64-byte line. */
#define SUM_HOLE 7
/* Units summed together; the first group stores, so no more than the fewest CPUs sorted. */
#define SUM_UNITS 8
_Static_assert(SUM_UNITS <= SUM_DIRECT_CPUS + 1, "the first group of units must exist");
/* Blocks of 4 KiB: 512 slots, 8 bitmap words. */
#define SUM_BLOCK_SHIFT 12
#define SUM_BLOCK_SLOTS ((size_t)1 << (SUM_BLOCK_SHIFT - 3))
#define SUM_BLOCK_WORDS (SUM_BLOCK_SLOTS / 64)
/* No sort when the handles fill at least one block per this many (a sum per slot). */
#define SUM_BLOCK_HANDLES 64

struct sum_ent {
	uintptr_t addr;
	size_t idx; /* position in the caller's array */
};

/* Consecutive slots [addr, addr + 8 * len), summed into acc[sum .. sum + len). */
struct sum_run {
	uintptr_t addr;
	size_t sum;
	size_t len;
};

/* One copy, as the this-CPU operations write it concurrently. */
static inline uint64_t sum_load(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* The copies of @h over @nr CPUs; the offset table is the one pcpu_ptr() reads. */
static inline uint64_t sum_copies(uintptr_t h, const uintptr_t *offset, unsigned nr)
{
	uint64_t s = 0;

	for (unsigned cpu = 0; cpu < nr; cpu++)
		s += sum_load((const uint64_t *)(h + offset[cpu]));
	return s;
}

uint64_t pcpu_sum64_one(const void *h)
{
	return sum_copies((uintptr_t)h, PCPU__TAB(h), pcpu_nr_cpus());
}

#define SORT_NAME sort_entries
#define SORT_T struct sum_ent
#define SORT_KEY(e) ((e).addr)
#define SORT_MERGE_RUNS SUM_MERGE_RUNS
#define SORT_SMALL SUM_STACK
#include "sort_template.h"

/*
 * Handle by handle, in the caller's order: without memory to sort, and with so few units
 * that a handle's copies cannot crowd a cache set (a set holds 8 lines or more) and the
 * sort would cost more than it saves. Each sum still reads each copy once.
 */
static void sum_unsorted(const void *const h[], size_t n, uint64_t out[], unsigned nr)
{
	for (size_t i = 0; i < n; i++)
		out[i] = sum_copies((uintptr_t)h[i], PCPU__TAB(h[i]), nr);
}

/*
 * How many unrequested slots a run may bridge: none where a checker guards free space, nor
 * under TSan, which would see the atomic loads of a neighbour's copies race with the plain
 * stores its owner may make through pcpu_ptr().
 */
static size_t sum_hole(void)
{
#ifdef PCPU__TSAN
	return 0;
#else
	return PCPU_CHECKER && pcpu_checker_active() ? 0 : SUM_HOLE;
#endif
}

#if (defined(__x86_64__) || defined(__aarch64__)) && !defined(PCPU__TSAN)
/*
 * Two neighbouring copies in one 16-byte SIMD load, each 8-byte aligned half of it still one
 * untorn read. On arm64 that is architectural: a 128-bit load of 64-bit aligned memory is a
 * pair of single-copy atomic 64-bit reads. On x86-64 the manuals promise it only for 8-byte
 * accesses, but processors split a wider load, where they do, at a cache line boundary,
 * which an aligned copy never straddles. So each copy is read once, untorn, as a relaxed
 * 8-byte load would read it; volatile makes the compiler emit exactly that one load. TSan
 * builds keep the atomic loads, which TSan understands.
 */
#define SUM_PAIRS 1
typedef uint64_t sum_pair __attribute__((vector_size(16), aligned(8), may_alias));

static inline sum_pair sum_load2(const uint64_t *p)
{
	return *(const volatile sum_pair *)p;
}
#else
#define SUM_PAIRS 0
#endif

/*
 * a[k] = (or +=, unless @first) the sum of c[u][k] over the @units units, for k < @len:
 * @units sequential streams, two copies a load where the architecture allows.
 */
static inline void run_add(uint64_t *a, const uint64_t *const *c, unsigned units, size_t len,
			   bool first)
{
	size_t k = 0;

#if SUM_PAIRS
	for (; k + 2 <= len; k += 2) {
		sum_pair s = first ? (sum_pair){0, 0} : *(const sum_pair *)(a + k);

#pragma GCC unroll 16
		for (unsigned u = 0; u < units; u++)
			s += sum_load2(c[u] + k);
		*(sum_pair *)(a + k) = s;
	}
#endif
	for (; k < len; k++) {
		uint64_t s = first ? 0 : a[k];

#pragma GCC unroll 16
		for (unsigned u = 0; u < units; u++)
			s += sum_load(c[u] + k);
		a[k] = s;
	}
}

/*
 * The unit-major walk over the @nr_runs runs @run, into @acc: SUM_UNITS units at a time,
 * the first group storing (so @acc needs no clearing), then the units left over one by
 * one. Each copy is read once.
 */
static void sum_walk(const struct sum_run *run, size_t nr_runs, uint64_t *acc)
{
	const struct sum_run *end = run + nr_runs;
	unsigned nr = pcpu_nr_cpus(), cpu;

	PCPU_ASSERT(nr >= SUM_UNITS);
	for (cpu = 0; cpu + SUM_UNITS <= nr; cpu += SUM_UNITS) {
		for (const struct sum_run *r = run; r < end; r++) {
			const uintptr_t *offset = PCPU__TAB(r->addr); /* a run is one chunk's */
			const uint64_t *c[SUM_UNITS];

			for (unsigned u = 0; u < SUM_UNITS; u++)
				c[u] = (const uint64_t *)(r->addr + offset[cpu + u]);
			run_add(acc + r->sum, c, SUM_UNITS, r->len, cpu == 0);
		}
	}
	for (; cpu < nr; cpu++) {
		for (const struct sum_run *r = run; r < end; r++) {
			const uint64_t *c = (const uint64_t *)(r->addr + PCPU__TAB(r->addr)[cpu]);

			run_add(acc + r->sum, &c, 1, r->len, false);
		}
	}
}

/*
 * Blocks: the handles grouped by the 4 KiB block of addresses they fall in, found through a
 * small open-addressing hash table; a bit per slot asked for and a sum per slot, so a
 * handle's sum sits at its block's number * SUM_BLOCK_SLOTS plus its slot. The blocks stay
 * in the order they were first seen: each is read in order, and which block comes first
 * hardly matters to the prefetcher or the TLB.
 */
struct sum_blocks {
	uintptr_t *key; /* table: block address >> SUM_BLOCK_SHIFT, or SUM_NO_KEY */
	size_t *nr_of;  /* table: that block's number */
	size_t mask;    /* table size - 1 */
	uintptr_t *addr; /* per block: its first address */
	uint64_t *bits;  /* per block: SUM_BLOCK_WORDS words */
	size_t nr, max;
	uintptr_t last_key; /* the block found last: neighbouring handles share it */
	size_t last;
};

#define SUM_NO_KEY UINTPTR_MAX

/* The number of block @key, looked up in the table; a new block when @add, else SIZE_MAX. */
static size_t block_find(struct sum_blocks *b, uintptr_t key, bool add)
{
	/* Fibonacci hashing: the top bits of key * 2^64 / phi */
	size_t i = (size_t)((key * UINT64_C(0x9e3779b97f4a7c15)) >> 32) & b->mask;

	while (b->key[i] != key) {
		if (b->key[i] == SUM_NO_KEY) {
			if (!add || b->nr == b->max)
				return SIZE_MAX;
			b->key[i] = key;
			b->nr_of[i] = b->nr;
			b->addr[b->nr] = key << SUM_BLOCK_SHIFT;
			memset(b->bits + b->nr * SUM_BLOCK_WORDS, 0,
			       SUM_BLOCK_WORDS * sizeof(*b->bits));
			b->nr++;
			break;
		}
		i = (i + 1) & b->mask;
	}
	b->last_key = key;
	b->last = b->nr_of[i];
	return b->last;
}

/* The number of the block of address @a: mostly the block of the handle before. */
static inline size_t block_of(struct sum_blocks *b, uintptr_t a, bool add)
{
	uintptr_t key = a >> SUM_BLOCK_SHIFT;

	return likely(key == b->last_key) ? b->last : block_find(b, key, add);
}

/* The slot of address @a in its block. */
static inline size_t block_slot(uintptr_t a)
{
	return (a >> 3) & (SUM_BLOCK_SLOTS - 1);
}

/* At most @max blocks for @n handles, in a table of @cap entries (a power of two). */
static void blocks_geom(size_t n, size_t *max, size_t *cap)
{
	*max = n / SUM_BLOCK_HANDLES + 1;
	for (*cap = 16; *cap < 2 * *max; *cap *= 2)
		;
}

/*
 * The bytes pcpu_sum64() allocates for @n handles: the table, then per block its address,
 * bitmap and sums, then up to n runs; or for the sort, 2n entries (its two halves, then the
 * sums) and up to n runs, if more. 0 if too many to count.
 */
static size_t sum_mem_size(size_t n)
{
	size_t max, cap, blocks, sort, per_block;

	if (n > SIZE_MAX / 256)
		return 0;
	blocks_geom(n, &max, &cap);
	per_block = sizeof(uintptr_t) + (SUM_BLOCK_WORDS + SUM_BLOCK_SLOTS) * sizeof(uint64_t);
	blocks = cap * (sizeof(uintptr_t) + sizeof(size_t)) + max * per_block +
		 n * sizeof(struct sum_run);
	sort = n * (2 * sizeof(struct sum_ent) + sizeof(struct sum_run));
	return blocks > sort ? blocks : sort;
}

/*
 * Handles that fill their blocks (at least SUM_BLOCK_HANDLES a block on average): no sort.
 * @mem has sum_mem_size() bytes. Returns false, having written nothing, when the handles
 * need more blocks than that.
 */
static bool sum_blocks(const void *const h[], size_t n, uint64_t out[], void *mem)
{
	struct sum_blocks b = {.last_key = SUM_NO_KEY};
	struct sum_run *run, *r;
	size_t cap, nr_runs = 0, hole = sum_hole();
	uint64_t *acc;

	blocks_geom(n, &b.max, &cap);
	b.key = mem;
	b.nr_of = (size_t *)(b.key + cap);
	b.mask = cap - 1;
	b.addr = (uintptr_t *)(b.nr_of + cap);
	b.bits = (uint64_t *)(b.addr + b.max);
	acc = b.bits + b.max * SUM_BLOCK_WORDS;
	run = (struct sum_run *)(acc + b.max * SUM_BLOCK_SLOTS);
	for (size_t i = 0; i < cap; i++)
		b.key[i] = SUM_NO_KEY;

	for (size_t i = 0; i < n; i++) {
		uintptr_t a = (uintptr_t)h[i];
		size_t k = block_of(&b, a, true), s = block_slot(a);

		if (k == SIZE_MAX)
			return false;
		b.bits[k * SUM_BLOCK_WORDS + s / 64] |= (uint64_t)1 << (s % 64);
	}
	/* The runs, block by block: slots in order, a hole of up to @hole bridged. */
	for (size_t k = 0; k < b.nr; k++) {
		const uint64_t *bits = b.bits + k * SUM_BLOCK_WORDS;
		size_t next = 0; /* the slot after the last one seen */

		r = NULL;

		for (size_t w = 0; w < SUM_BLOCK_WORDS; w++) {
			for (uint64_t m = bits[w]; m; m &= m - 1) {
				size_t s = w * 64 + (size_t)__builtin_ctzll(m);

				if (r && s - next <= hole) {
					r->len += s + 1 - next;
				} else {
					r = &run[nr_runs++];
					r->addr = b.addr[k] + 8 * s;
					r->sum = k * SUM_BLOCK_SLOTS + s;
					r->len = 1;
				}
				next = s + 1;
			}
		}
	}
	sum_walk(run, nr_runs, acc);
	for (size_t i = 0; i < n; i++) {
		uintptr_t a = (uintptr_t)h[i];

		out[i] = acc[block_of(&b, a, false) * SUM_BLOCK_SLOTS + block_slot(a)];
	}
	return true;
}

/*
 * Handles spread wide: sort @e (@n entries, room for @n more after them) by address, pack
 * the sums run after run into the half the sort leaves free (room for 2 * @n), walk, and
 * hand each sum back through the entries' positions. @run has room for @n runs.
 */
static void sum_sorted(const void *const h[], size_t n, uint64_t out[], struct sum_ent *e,
		       struct sum_run *run)
{
	size_t nr_runs = 0, slots = 0, cap = 2 * n, hole = sum_hole();
	struct sum_ent *sorted;
	struct sum_run *r = NULL;
	uint64_t *acc;

	for (size_t i = 0; i < n; i++) {
		e[i].addr = (uintptr_t)h[i];
		e[i].idx = i;
	}
	/* sort_template.h: handles in order cost one pass, a few runs are merged. */
	sorted = sort_entries(e, e + n, n);
	acc = (uint64_t *)(sorted == e ? e + n : e);

	for (size_t i = 0; i < n; i++) {
		uintptr_t a = sorted[i].addr;

		if (r) {
			uintptr_t next = r->addr + 8 * r->len;
			size_t gap;

			if (a < next) /* a duplicate */
				continue;
			/* Bridge a hole while the slots left can still take one sum each. */
			gap = (a - next) >> 3;
			if (gap <= hole && slots + gap + 1 + (n - i - 1) <= cap) {
				r->len += gap + 1;
				slots += gap + 1;
				continue;
			}
		}
		r = &run[nr_runs++];
		r->addr = a;
		r->sum = slots++;
		r->len = 1;
	}
	sum_walk(run, nr_runs, acc);
	r = run;
	for (size_t i = 0; i < n; i++) {
		uintptr_t a = sorted[i].addr;

		while (a >= r->addr + 8 * r->len)
			r++;
		out[sorted[i].idx] = acc[r->sum + ((a - r->addr) >> 3)];
	}
}

int pcpu_sum64(const void *const h[], size_t n, uint64_t out[])
{
	struct sum_ent stack_e[2 * SUM_STACK];
	struct sum_run stack_run[SUM_STACK];
	size_t size;
	void *mem;
	unsigned nr;

	if (!n)
		return 0;
	if (!h || !out) {
		errno = EINVAL;
		return -1;
	}
	/* What can be checked without a lookup: a copy must be a readable aligned 8 bytes. */
	for (size_t i = 0; i < n; i++) {
		uintptr_t a = (uintptr_t)h[i];

		if (!a || (a & 7)) {
			errno = EINVAL;
			return -1;
		}
	}
	/* A live handle implies an initialised library: this cannot return 0 here. */
	nr = pcpu_nr_cpus();
	if (!nr) {
		errno = EINVAL;
		return -1;
	}
	if (nr <= SUM_DIRECT_CPUS) {
		sum_unsorted(h, n, out, nr);
		return 0;
	}
	if (n <= SUM_STACK) {
		sum_sorted(h, n, out, stack_e, stack_run);
		return 0;
	}

	size = sum_mem_size(n);
	mem = size ? pcpu_malloc(size) : NULL;
	if (!mem)
		sum_unsorted(h, n, out, nr);
	else if (!sum_blocks(h, n, out, mem))
		sum_sorted(h, n, out, mem, (struct sum_run *)((struct sum_ent *)mem + 2 * n));
	pcpu_mfree(mem);
	return 0;
}
