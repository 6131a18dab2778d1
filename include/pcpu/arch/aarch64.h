/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * pcpu/arch/aarch64.h - the this-CPU primitives as restartable sequences on AArch64.
 * Internal to <pcpu/this_cpu.h>; the sequence shape is the one described in x86_64.h:
 *
 *   1: rseq_cs = &descriptor              ; str into the area, tpidr_el0-relative
 *   2: idx = area index (ldrsw)           ; start_ip
 *      if idx < 0 goto slow
 *      off = pcpu__hot.offset[idx]
 *      ldr / compute / one str            ; the str is the commit, the last instruction
 *   4:                                    ; post_commit_ip
 *
 * Branches to the C labels go through an unconditional b: the compiler may place those
 * blocks in a cold section, out of reach of tbnz (32 KiB) and b.cond (1 MiB), while the
 * linker can always reach a b target (with a veneer if need be).
 *
 * Sub-word values: the compiler leaves the upper bits of an 8 or 16-bit operand register
 * undefined, so values that are compared travel zero-extended in 32-bit variables, and
 * results are returned as 32-bit values truncated in C.
 *
 * No exclusive or LSE atomic instruction: the copy is only written by threads running on
 * its CPU, and an interrupted sequence never commits. The store to rseq_cs and the loads
 * that follow are ordered for this thread by program order, and the kernel reads rseq_cs
 * on the same CPU, so no barrier is needed.
 */
#ifndef PCPU_ARCH_AARCH64_H
#define PCPU_ARCH_AARCH64_H

#include <stdint.h>

#define PCPU__ARCH_OPS 1
#define PCPU__ARCH_RSEQ 1

/*
 * The signature glibc registers on AArch64 (and so must precede our abort handlers when
 * we run on glibc's registration); it is also the encoding of a brk instruction, so
 * falling into it traps.
 */
#define PCPU__RSEQ_SIG 0xd428bc00

#define PCPU__A64_BEGIN                                                                       \
	"1:\n\t"                                                                              \
	"adrp %[t], 3f\n\t"                                                                   \
	"add %[t], %[t], :lo12:3f\n\t"                                                        \
	"mrs %[u], tpidr_el0\n\t"                                                             \
	"str %[t], [%[u], %[cs]]\n\t"                                                         \
	"2:\n\t"                                                                              \
	"ldrsw %[t], [%[u], %[idx]]\n\t"                                                      \
	"tbz %[t], #63, 6f\n\t"                                                               \
	"b %l[slow]\n\t"                                                                      \
	"6:\n\t"                                                                              \
	"ldr %[t], [%[tab], %[t], lsl #3]\n\t"

#define PCPU__A64_END                                                                         \
	"4:\n\t"                                                                              \
	".pushsection __pcpu_rseq_cs, \"aw\"\n\t"                                             \
	".balign 32\n\t"                                                                      \
	"3:\n\t"                                                                              \
	".long 0, 0\n\t"                                                                      \
	".quad 2b, 4b - 2b, 5f\n\t"                                                           \
	".popsection\n\t"                                                                     \
	".pushsection __pcpu_rseq_abort, \"ax\"\n\t"                                          \
	".long 0xd428bc00\n\t"                                                                \
	"5:\n\t"                                                                              \
	"b 1b\n\t"                                                                            \
	".popsection\n\t"

#define PCPU__A64_IN                                                                          \
	[cs] "r"(pcpu__hot.cs_off), [idx] "r"(pcpu__hot.idx_off), [tab] "r"(PCPU__TAB(h))

/*
 * One set for N-bit values: L/S the load/store mnemonics, R the register prefix for the
 * value ("w" or "x"), W the C type that carries it (uint32_t or uint64_t).
 */
#define PCPU__A64_OPS(N, L, S, R, W)                                                          \
static inline __attribute__((always_inline)) void pcpu__add_##N(void *h, uint##N##_t v)     \
{                                                                                             \
	uint64_t t, u;                                                                        \
	W r;                                                                                  \
	__asm__ __volatile__ goto(PCPU__A64_BEGIN                                                          \
		     L " %" R "[r], [%[h], %[t]]\n\t"                                         \
		     "add %" R "[r], %" R "[r], %" R "[v]\n\t"                                \
		     S " %" R "[r], [%[h], %[t]]\n\t" /* commit */                             \
		     PCPU__A64_END                                                            \
		     : [t] "=&r"(t), [u] "=&r"(u), [r] "=&r"(r)                               \
		     : [h] "r"(h), [v] "r"((W)v), PCPU__A64_IN                                \
		     : "memory", "cc"                                                         \
		     : slow);                                                                 \
	return;                                                                               \
slow:                                                                                         \
	pcpu__islow_add_##N(h, v);	\
}                                                                                             \
static inline __attribute__((always_inline)) void pcpu__write_##N(void *h, uint##N##_t v)   \
{                                                                                             \
	uint64_t t, u;                                                                        \
	__asm__ __volatile__ goto(PCPU__A64_BEGIN                                                          \
		     S " %" R "[v], [%[h], %[t]]\n\t" /* commit */                             \
		     PCPU__A64_END                                                            \
		     : [t] "=&r"(t), [u] "=&r"(u)                                             \
		     : [h] "r"(h), [v] "r"((W)v), PCPU__A64_IN                                \
		     : "memory", "cc"                                                         \
		     : slow);                                                                 \
	return;                                                                               \
slow:                                                                                         \
	pcpu__islow_write_##N(h, v);	\
}                                                                                             \
static inline __attribute__((always_inline)) uint##N##_t pcpu__read_##N(const void *h)      \
{                                                                                             \
	uint64_t t, u;                                                                        \
	W r;                                                                                  \
	__asm__ __volatile__ goto(PCPU__A64_BEGIN                                                          \
		     L " %" R "[r], [%[h], %[t]]\n\t" /* the load is the commit */             \
		     PCPU__A64_END                                                            \
		     : [t] "=&r"(t), [u] "=&r"(u), [r] "=&r"(r)                               \
		     : [h] "r"(h), PCPU__A64_IN                                               \
		     : "memory", "cc"                                                         \
		     : slow);                                                                 \
	return (uint##N##_t)r;                                                                \
slow:                                                                                         \
	return pcpu__islow_read_##N(h);	\
}                                                                                             \
static inline __attribute__((always_inline)) uint##N##_t pcpu__xchg_##N(void *h,            \
									uint##N##_t v)       \
{                                                                                             \
	uint64_t t, u;                                                                        \
	W r;                                                                                  \
	__asm__ __volatile__ goto(PCPU__A64_BEGIN                                                          \
		     L " %" R "[r], [%[h], %[t]]\n\t"                                         \
		     S " %" R "[v], [%[h], %[t]]\n\t" /* commit */                             \
		     PCPU__A64_END                                                            \
		     : [t] "=&r"(t), [u] "=&r"(u), [r] "=&r"(r)                               \
		     : [h] "r"(h), [v] "r"((W)v), PCPU__A64_IN                                \
		     : "memory", "cc"                                                         \
		     : slow);                                                                 \
	return (uint##N##_t)r;                                                                \
slow:                                                                                         \
	return pcpu__islow_xchg_##N(h, v);	\
}                                                                                             \
/* ldrb/ldrh zero-extend, so the expected value is compared zero-extended too. */           \
static inline __attribute__((always_inline)) uint##N##_t pcpu__cmpxchg_##N(                 \
	void *h, uint##N##_t o, uint##N##_t n)                                                \
{                                                                                             \
	uint64_t t, u;                                                                        \
	W r;                                                                                  \
	__asm__ __volatile__ goto(PCPU__A64_BEGIN                                                          \
		     L " %" R "[r], [%[h], %[t]]\n\t"                                         \
		     "cmp %" R "[r], %" R "[o]\n\t"                                           \
		     "b.ne 4f\n\t"                                                            \
		     S " %" R "[n], [%[h], %[t]]\n\t" /* commit */                             \
		     PCPU__A64_END                                                            \
		     : [t] "=&r"(t), [u] "=&r"(u), [r] "=&r"(r)                               \
		     : [h] "r"(h), [o] "r"((W)o), [n] "r"((W)n), PCPU__A64_IN                 \
		     : "memory", "cc"                                                         \
		     : slow);                                                                 \
	return (uint##N##_t)r;                                                                \
slow:                                                                                         \
	return pcpu__islow_cmpxchg_##N(h, o, n);	\
}                                                                                             \
static inline __attribute__((always_inline)) uint##N##_t pcpu__add_return_##N(              \
	void *h, uint##N##_t v)                                                               \
{                                                                                             \
	uint64_t t, u;                                                                        \
	W r;                                                                                  \
	__asm__ __volatile__ goto(PCPU__A64_BEGIN                                                          \
		     L " %" R "[r], [%[h], %[t]]\n\t"                                         \
		     "add %" R "[r], %" R "[r], %" R "[v]\n\t"                                \
		     S " %" R "[r], [%[h], %[t]]\n\t" /* commit */                             \
		     PCPU__A64_END                                                            \
		     : [t] "=&r"(t), [u] "=&r"(u), [r] "=&r"(r)                               \
		     : [h] "r"(h), [v] "r"((W)v), PCPU__A64_IN                                \
		     : "memory", "cc"                                                         \
		     : slow);                                                                 \
	return (uint##N##_t)r;                                                                \
slow:                                                                                         \
	return pcpu__islow_add_return_##N(h, v);	\
}

PCPU__A64_OPS(8, "ldrb", "strb", "w", uint32_t)
PCPU__A64_OPS(16, "ldrh", "strh", "w", uint32_t)
PCPU__A64_OPS(32, "ldr", "str", "w", uint32_t)
PCPU__A64_OPS(64, "ldr", "str", "x", uint64_t)

/* pcpu__add_bounded - see x86_64.h: sum in 64 bits, one unsigned range compare. */
static inline __attribute__((always_inline)) int pcpu__add_bounded(int32_t *h, int64_t v,
								   int32_t batch)
{
	uint64_t t, u, r;
	uint64_t bias = (uint64_t)(int64_t)batch - 1, range = 2 * (uint64_t)(int64_t)batch - 1;

	__asm__ __volatile__ goto(PCPU__A64_BEGIN
		     "ldrsw %[r], [%[h], %[t]]\n\t"
		     "add %[r], %[r], %[v]\n\t"
		     "add %[u], %[r], %[bias]\n\t"
		     "cmp %[u], %[range]\n\t"
		     "b.lo 7f\n\t"
		     "b %l[fold]\n\t"
		     "7:\n\t"
		     "str %w[r], [%[h], %[t]]\n\t" /* commit */
		     PCPU__A64_END
		     : [t] "=&r"(t), [u] "=&r"(u), [r] "=&r"(r)
		     : [h] "r"(h), [v] "r"(v), [bias] "r"(bias), [range] "r"(range), PCPU__A64_IN
		     : "memory", "cc"
		     : slow, fold);
	return 0;
slow:
	return pcpu__slow_add_bounded(h, v, batch);
fold:
	return -1;
}

#endif /* PCPU_ARCH_AARCH64_H */
