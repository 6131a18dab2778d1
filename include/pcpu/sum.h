/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * pcpu/sum.h - reading many per-CPU integers at once (a metrics scrape). Included by
 * <pcpu.h>, inside its extern "C" block; do not include it on its own.
 */
#ifndef PCPU_SUM_H
#define PCPU_SUM_H

#include <stddef.h>
#include <stdint.h>

/*
 * pcpu_sum64 - the totals of many per-CPU 8-byte integers in one pass.
 * @h:   @n pointers, each a per-CPU handle (or a handle plus the offset of an 8-byte member
 *       of the object), 8-byte aligned. The same pointer may appear more than once, in any
 *       order.
 * @n:   how many.
 * @out: @n results: out[i] is the sum, wrapping modulo 2^64, of every possible CPU's copy
 *       of the integer h[i] points to (so int64_t and uint64_t objects alike).
 *
 * Each copy is read once, atomically (a relaxed 8-byte load, or a SIMD load of two
 * neighbouring copies that reads each 8-byte half atomically), as the this-CPU operations
 * leave it: with no concurrent writer the sums are exact; with writers each sum lies
 * between the smallest and largest total the copies held during the call when every update
 * only adds (like pcpu_counter_sum(), no snapshot is taken). The copies are read unit by
 * unit, in runs of neighbouring addresses (found without sorting when the handles are
 * densely packed, as counters allocated together are), so the cost is close to the bytes
 * actually read (@n * 8 * pcpu_nr_cpus(), one cache line per 8 neighbouring counters), not
 * one cache and TLB miss per copy.
 *
 * Return: 0; -1 with errno EINVAL when @h or @out is NULL with @n > 0, or when some h[i] is
 * NULL or not 8-byte aligned (then nothing is written). @n == 0 is a no-op returning 0.
 * Other garbage in @h is not detected (as for pcpu_ptr()). Never fails for lack of memory:
 * without room for its buffers it reads in the caller's order instead.
 * MT-safe; not async-signal-safe (may allocate its buffers).
 */
PCPU_API int pcpu_sum64(const void *const h[], size_t n, uint64_t out[]);

#endif /* PCPU_SUM_H */
