/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * sum - pcpu_sum64(): the totals of many per-CPU 8-byte integers in one pass.
 *
 * Summing handle by handle visits every unit once per handle: for n counters on N CPUs
 * that is n * N scattered loads, each a likely cache miss (the copies of one object sit at
 * the same offset of every unit, so they compete for the same cache sets) and a TLB miss
 * once N units exceed the TLB. Instead the handles are sorted by address once, and the
 * walk is unit-major: for each CPU, every distinct address in ascending order, with
 * software prefetch a few entries ahead. Neighbouring counters then share cache lines and
 * pages, so a unit costs the lines and pages the counters really occupy, read in order.
 * The running sums (8 bytes per distinct handle) stay in cache meanwhile.
 *
 * The kernel has no equivalent; its readers fold one percpu_counter at a time.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <pcpu.h>

#include "sum.h"
#include "util.h"

/* Prefetch distance, in entries: a few cache lines' worth of loads ahead of use. */
#define SUM_PREFETCH 16
/* Up to this many handles the buffers live on the stack. */
#define SUM_STACK 64
/* Up to this many CPUs, read handle by handle (see sum_unsorted()). */
#define SUM_DIRECT_CPUS 8
/* Up to this many ascending runs a merge (log2(runs) sweeps) beats the radix sort. */
#define SUM_MERGE_RUNS 16

struct sum_ent {
	uintptr_t addr;
	size_t idx; /* position in the caller's array */
};

/* The copies of @h over @nr CPUs; the offset table is the one pcpu_ptr() reads. */
static inline uint64_t sum_copies(uintptr_t h, const uintptr_t *offset, unsigned nr)
{
	uint64_t s = 0;

	for (unsigned cpu = 0; cpu < nr; cpu++)
		s += __atomic_load_n((const uint64_t *)(h + offset[cpu]), __ATOMIC_RELAXED);
	return s;
}

uint64_t pcpu_sum64_one(const void *h)
{
	return sum_copies((uintptr_t)h, pcpu__hot.offset, pcpu_nr_cpus());
}

/* Insertion sort by address, for short or nearly sorted arrays. */
static void sort_small(struct sum_ent *e, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		struct sum_ent x = e[i];
		size_t j = i;

		while (j > 0 && e[j - 1].addr > x.addr) {
			e[j] = e[j - 1];
			j--;
		}
		e[j] = x;
	}
}

/*
 * LSD radix sort by address, 11 bits a pass, over (addr - min) / 8 (addresses are 8-byte
 * aligned), so the passes cover only the span the handles occupy: one to three for
 * handles within a few chunks. Stable, so duplicates keep the caller's order. Returns the
 * array holding the result (@e or @tmp).
 */
#define RADIX_BITS 11
static struct sum_ent *sort_radix(struct sum_ent *e, struct sum_ent *tmp, size_t n)
{
	static const size_t nb = (size_t)1 << RADIX_BITS;
	uintptr_t lo = UINTPTR_MAX, hi = 0, span;
	size_t count[(size_t)1 << RADIX_BITS];

	for (size_t i = 0; i < n; i++) {
		lo = e[i].addr < lo ? e[i].addr : lo;
		hi = e[i].addr > hi ? e[i].addr : hi;
	}
	span = (hi - lo) >> 3;
	for (unsigned shift = 0; shift == 0 || (span >> shift); shift += RADIX_BITS) {
		size_t pos = 0;
		struct sum_ent *t;

		memset(count, 0, sizeof(count));
		for (size_t i = 0; i < n; i++)
			count[(((e[i].addr - lo) >> 3) >> shift) & (nb - 1)]++;
		for (size_t d = 0; d < nb; d++) {
			size_t c = count[d];

			count[d] = pos;
			pos += c;
		}
		for (size_t i = 0; i < n; i++)
			tmp[count[(((e[i].addr - lo) >> 3) >> shift) & (nb - 1)]++] = e[i];
		t = e;
		e = tmp;
		tmp = t;
		if (shift + RADIX_BITS >= sizeof(uintptr_t) * 8)
			break;
	}
	return e;
}

/*
 * Natural merge sort: merge neighbouring ascending runs pairwise until one is left, so
 * @runs runs cost ceil(log2(@runs)) sweeps. Handles allocated one after another come in a
 * few long runs (one per chunk), where this beats any general sort. Stable. Returns the
 * array holding the result (@e or @tmp).
 */
static struct sum_ent *sort_runs(struct sum_ent *e, struct sum_ent *tmp, size_t n)
{
	for (;;) {
		size_t i = 0, k = 0, merged = 0;
		struct sum_ent *t;

		while (i < n) {
			size_t a = i, mid, b, end;

			/* run [a, mid), then run [mid, end) */
			for (mid = a + 1; mid < n && e[mid - 1].addr <= e[mid].addr; mid++)
				;
			end = mid < n ? mid + 1 : mid;
			while (end < n && e[end - 1].addr <= e[end].addr)
				end++;
			/* ties from the first run first: stable */
			for (b = mid; a < mid && b < end;)
				tmp[k++] = e[b].addr < e[a].addr ? e[b++] : e[a++];
			while (a < mid)
				tmp[k++] = e[a++];
			while (b < end)
				tmp[k++] = e[b++];
			i = end;
			merged++;
		}
		t = e;
		e = tmp;
		tmp = t;
		if (merged <= 1)
			return e;
	}
}

/*
 * Handle by handle, in the caller's order: without memory to sort, and with so few units
 * that a handle's copies cannot crowd a cache set (a set holds 8 lines or more) and the
 * sort would cost more than it saves. Each sum still reads each copy once.
 */
static void sum_unsorted(const void *const h[], size_t n, uint64_t out[], unsigned nr)
{
	const uintptr_t *offset = pcpu__hot.offset;

	for (size_t i = 0; i < n; i++)
		out[i] = sum_copies((uintptr_t)h[i], offset, nr);
}

/*
 * The unit-major walk over @m distinct ascending addresses @u, into @acc. Each copy is read
 * with a relaxed atomic load: the this-CPU operations write it concurrently.
 */
static void sum_walk(const uintptr_t *u, size_t m, uint64_t *acc)
{
	unsigned nr = pcpu_nr_cpus();

	memset(acc, 0, m * sizeof(*acc));
	for (unsigned cpu = 0; cpu < nr; cpu++) {
		uintptr_t off = pcpu__hot.offset[cpu];
		size_t j = 0;

		/* The first lines of this unit; the loop prefetches the rest as it goes. */
		for (size_t k = 0; k < m && k < SUM_PREFETCH; k++)
			__builtin_prefetch((const void *)(u[k] + off));
		for (; j + SUM_PREFETCH < m; j++) {
			__builtin_prefetch((const void *)(u[j + SUM_PREFETCH] + off));
			acc[j] += __atomic_load_n((const uint64_t *)(u[j] + off), __ATOMIC_RELAXED);
		}
		for (; j < m; j++)
			acc[j] += __atomic_load_n((const uint64_t *)(u[j] + off), __ATOMIC_RELAXED);
	}
}

int pcpu_sum64(const void *const h[], size_t n, uint64_t out[])
{
	struct sum_ent stack_e[2 * SUM_STACK], *e, *sorted;
	uintptr_t stack_u[SUM_STACK], *u;
	uint64_t stack_acc[SUM_STACK], *acc;
	void *mem = NULL;
	size_t m, runs = 1;
	unsigned nr;

	if (!n)
		return 0;
	if (!h || !out) {
		errno = EINVAL;
		return -1;
	}
	/* What can be checked without a lookup: a copy must be a readable aligned 8 bytes. */
	for (size_t i = 0; i < n; i++) {
		if (!h[i] || ((uintptr_t)h[i] & 7)) {
			errno = EINVAL;
			return -1;
		}
		if (i && (uintptr_t)h[i] < (uintptr_t)h[i - 1])
			runs++;
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
		e = stack_e;
		u = stack_u;
		acc = stack_acc;
	} else {
		/* One block: 2n entries (the sort's two halves), n addresses, n sums. */
		size_t sz = n * (2 * sizeof(*e) + sizeof(*u) + sizeof(*acc));

		if (n > SIZE_MAX / (2 * sizeof(*e) + sizeof(*u) + sizeof(*acc)) ||
		    !(mem = pcpu_malloc(sz))) {
			sum_unsorted(h, n, out, nr);
			return 0;
		}
		e = mem;
		u = (uintptr_t *)(e + 2 * n);
		acc = (uint64_t *)(u + n);
	}
	for (size_t i = 0; i < n; i++) {
		e[i].addr = (uintptr_t)h[i];
		e[i].idx = i;
	}
	/* Already in order, a few runs (merge them), or anything (radix sort). */
	if (runs == 1) {
		sorted = e;
	} else if (n <= SUM_STACK) {
		sort_small(e, n);
		sorted = e;
	} else if (runs <= SUM_MERGE_RUNS) {
		sorted = sort_runs(e, e + n, n);
	} else {
		sorted = sort_radix(e, e + n, n);
	}

	/* Distinct addresses: a handle given twice is read once. */
	m = 0;
	for (size_t i = 0; i < n; i++)
		if (!m || u[m - 1] != sorted[i].addr)
			u[m++] = sorted[i].addr;
	sum_walk(u, m, acc);
	for (size_t i = 0, k = 0; i < n; i++) {
		if (u[k] != sorted[i].addr)
			k++;
		out[sorted[i].idx] = acc[k];
	}
	pcpu_mfree(mem);
	return 0;
}
