/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * pcpu/arch/generic.h - the this-CPU primitives without inline assembly: other
 * architectures, compilers without asm goto output operands, or PCPU_NO_INLINE_ASM.
 * Internal to <pcpu/this_cpu.h>.
 *
 * Every primitive calls the library. Where the library itself has no restartable
 * sequences (an architecture without an arch/ header) the process runs in getcpu mode and
 * the call is an atomic update of the copy getcpu() names. Where the library does have
 * them (this header chosen only because of the caller's compiler), the call runs the
 * library's own restartable sequence for the caller. Either way the caller agrees with
 * every other thread on the mode, which exactness needs: a plain rseq update and an atomic
 * one on the same copy may lose one of them.
 */
#ifndef PCPU_ARCH_GENERIC_H
#define PCPU_ARCH_GENERIC_H

#include <stdint.h>

#define PCPU__ARCH_OPS 1

#define PCPU__GENERIC_OPS(N)                                                                  \
static inline void pcpu__add_##N(void *h, uint##N##_t v)                                     \
{                                                                                             \
	pcpu__slow_add(h, v, N / 8);                                                          \
}                                                                                             \
static inline void pcpu__write_##N(void *h, uint##N##_t v)                                   \
{                                                                                             \
	pcpu__slow_write(h, v, N / 8);                                                        \
}                                                                                             \
static inline uint##N##_t pcpu__read_##N(const void *h)                                      \
{                                                                                             \
	return (uint##N##_t)pcpu__slow_read(h, N / 8);                                        \
}                                                                                             \
static inline uint##N##_t pcpu__xchg_##N(void *h, uint##N##_t v)                             \
{                                                                                             \
	return (uint##N##_t)pcpu__slow_xchg(h, v, N / 8);                                     \
}                                                                                             \
static inline uint##N##_t pcpu__cmpxchg_##N(void *h, uint##N##_t o, uint##N##_t n)           \
{                                                                                             \
	return (uint##N##_t)pcpu__slow_cmpxchg(h, o, n, N / 8);                               \
}                                                                                             \
static inline uint##N##_t pcpu__add_return_##N(void *h, uint##N##_t v)                       \
{                                                                                             \
	return (uint##N##_t)pcpu__slow_add_return(h, v, N / 8);                               \
}

PCPU__GENERIC_OPS(8)
PCPU__GENERIC_OPS(16)
PCPU__GENERIC_OPS(32)
PCPU__GENERIC_OPS(64)

static inline int pcpu__add_bounded(int32_t *h, int64_t v, int32_t batch)
{
	return pcpu__slow_add_bounded(h, v, batch);
}

#endif /* PCPU_ARCH_GENERIC_H */
