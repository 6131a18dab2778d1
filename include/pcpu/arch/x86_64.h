/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * pcpu/arch/x86_64.h - the this-CPU primitives as restartable sequences on x86-64.
 * Internal to <pcpu/this_cpu.h>; see there for the interface.
 *
 * Shape of every sequence (labels are local to one asm statement):
 *
 *   1: rseq_cs = &descriptor          ; %fs-relative store into the thread's rseq area
 *   2: idx = area index (sign-extended); start_ip: from here the kernel may abort us
 *      if idx < 0 goto slow            ; not registered, or getcpu mode
 *      off = pcpu__hot.offset[idx]
 *      ... loads/compute ...
 *      one store to (handle + off)     ; the commit: must be the last instruction
 *   4:                                 ; post_commit_ip
 *
 * The abort handler, in its own section and preceded by the signature the kernel checks,
 * jumps back to 1: after preemption, migration or signal delivery the kernel clears
 * rseq_cs, so it must be stored again, and the index re-read. Input registers are intact
 * on abort (the kernel only moves the instruction pointer), and the sequence writes only
 * its scratch outputs, so restarting from 1: is always valid.
 *
 * No lock prefix anywhere: the copy is only written by threads running on its CPU, and an
 * interrupted sequence never commits, so plain instructions are exact. x86 keeps the store
 * to rseq_cs before the loads that follow in program order for this thread, and the kernel
 * reads rseq_cs on the same CPU after the interrupt, so no fence is needed either.
 */
#ifndef PCPU_ARCH_X86_64_H
#define PCPU_ARCH_X86_64_H

#include <stdint.h>

#define PCPU__ARCH_OPS 1
#define PCPU__ARCH_RSEQ 1

/* The signature registered with the kernel (glibc uses the same one on x86). */
#define PCPU__RSEQ_SIG 0x53053053

/*
 * Start of a sequence. The descriptor (struct rseq_cs: version, flags, start_ip,
 * post_commit_offset, abort_ip) sits in a writable section because it holds absolute
 * addresses, which need load-time relocation in PIC code. The abort handler's signature is
 * encoded as the operand of a ud1 instruction so disassemblers stay in sync; the kernel
 * only compares the 4 bytes before abort_ip.
 */
#define PCPU__X86_BEGIN                                                                       \
	"1:\n\t"                                                                              \
	"leaq 3f(%%rip), %[t]\n\t"                                                            \
	"movq %[t], %%fs:(%[cs])\n\t"                                                         \
	"2:\n\t"                                                                              \
	"movslq %%fs:(%[idx]), %[t]\n\t"                                                      \
	"testq %[t], %[t]\n\t"                                                                \
	"js %l[slow]\n\t"                                                                     \
	"movq (%[tab], %[t], 8), %[t]\n\t"

#define PCPU__X86_END                                                                         \
	"4:\n\t"                                                                              \
	".pushsection __pcpu_rseq_cs, \"aw\"\n\t"                                             \
	".balign 32\n\t"                                                                      \
	"3:\n\t"                                                                              \
	".long 0, 0\n\t"                                                                      \
	".quad 2b, 4b - 2b, 5f\n\t"                                                           \
	".popsection\n\t"                                                                     \
	".pushsection __pcpu_rseq_abort, \"ax\"\n\t"                                          \
	".byte 0x0f, 0xb9, 0x3d\n\t"                                                          \
	".long 0x53053053\n\t"                                                                \
	"5:\n\t"                                                                              \
	"jmp 1b\n\t"                                                                          \
	".popsection\n\t"

/* The inputs every sequence needs: area offsets and the translation table. */
#define PCPU__X86_IN                                                                          \
	[cs] "r"(pcpu__hot.cs_off), [idx] "r"(pcpu__hot.idx_off), [tab] "r"(PCPU__TAB(h))

/*
 * One set of primitives for N-bit values: S is the instruction suffix, C the constraint
 * for an immediate-or-register value operand ("e": 64-bit instructions only take
 * sign-extended 32-bit immediates).
 */
#define PCPU__X86_OPS(N, S, C)                                                                \
static inline __attribute__((always_inline)) void pcpu__add_##N(void *h, uint##N##_t v)     \
{                                                                                             \
	uint64_t t;                                                                           \
	__asm__ __volatile__ goto(PCPU__X86_BEGIN                                                          \
		     "add" S " %[v], (%[h], %[t])\n\t" /* commit: one non-locked RMW */        \
		     PCPU__X86_END                                                            \
		     : [t] "=&r"(t)                                                           \
		     : [h] "r"(h), [v] C(v), PCPU__X86_IN                                     \
		     : "memory", "cc"                                                         \
		     : slow);                                                                 \
	return;                                                                               \
slow:                                                                                         \
	pcpu__islow_add_##N(h, v);	\
}                                                                                             \
static inline __attribute__((always_inline)) void pcpu__write_##N(void *h, uint##N##_t v)   \
{                                                                                             \
	uint64_t t;                                                                           \
	__asm__ __volatile__ goto(PCPU__X86_BEGIN                                                          \
		     "mov" S " %[v], (%[h], %[t])\n\t" /* commit */                            \
		     PCPU__X86_END                                                            \
		     : [t] "=&r"(t)                                                           \
		     : [h] "r"(h), [v] C(v), PCPU__X86_IN                                     \
		     : "memory", "cc"                                                         \
		     : slow);                                                                 \
	return;                                                                               \
slow:                                                                                         \
	pcpu__islow_write_##N(h, v);	\
}                                                                                             \
/* A read is a sequence too: the load is the commit, so it reads the copy of the CPU the  \
 * thread is on at that instant, never a stale index's copy. */                              \
static inline __attribute__((always_inline)) uint##N##_t pcpu__read_##N(const void *h)      \
{                                                                                             \
	uint64_t t;                                                                           \
	uint##N##_t r;                                                                        \
	__asm__ __volatile__ goto(PCPU__X86_BEGIN                                                          \
		     "mov" S " (%[h], %[t]), %[r]\n\t"                                        \
		     PCPU__X86_END                                                            \
		     : [t] "=&r"(t), [r] "=&r"(r)                                             \
		     : [h] "r"(h), PCPU__X86_IN                                               \
		     : "memory", "cc"                                                         \
		     : slow);                                                                 \
	return r;                                                                             \
slow:                                                                                         \
	return pcpu__islow_read_##N(h);	\
}                                                                                             \
/* Not the xchg instruction: with a memory operand it is implicitly locked. */              \
static inline __attribute__((always_inline)) uint##N##_t pcpu__xchg_##N(void *h,            \
									uint##N##_t v)       \
{                                                                                             \
	uint64_t t;                                                                           \
	uint##N##_t r;                                                                        \
	__asm__ __volatile__ goto(PCPU__X86_BEGIN                                                          \
		     "mov" S " (%[h], %[t]), %[r]\n\t"                                        \
		     "mov" S " %[v], (%[h], %[t])\n\t" /* commit */                            \
		     PCPU__X86_END                                                            \
		     : [t] "=&r"(t), [r] "=&r"(r)                                             \
		     : [h] "r"(h), [v] C(v), PCPU__X86_IN                                     \
		     : "memory", "cc"                                                         \
		     : slow);                                                                 \
	return r;                                                                             \
slow:                                                                                         \
	return pcpu__islow_xchg_##N(h, v);	\
}                                                                                             \
/* Not cmpxchg either (locked). On a mismatch jump straight past the commit. */             \
static inline __attribute__((always_inline)) uint##N##_t pcpu__cmpxchg_##N(                 \
	void *h, uint##N##_t o, uint##N##_t n)                                                \
{                                                                                             \
	uint64_t t;                                                                           \
	uint##N##_t r;                                                                        \
	__asm__ __volatile__ goto(PCPU__X86_BEGIN                                                          \
		     "mov" S " (%[h], %[t]), %[r]\n\t"                                        \
		     "cmp" S " %[o], %[r]\n\t"                                                \
		     "jne 4f\n\t"                                                             \
		     "mov" S " %[n], (%[h], %[t])\n\t" /* commit */                            \
		     PCPU__X86_END                                                            \
		     : [t] "=&r"(t), [r] "=&r"(r)                                             \
		     : [h] "r"(h), [o] C(o), [n] "r"(n), PCPU__X86_IN                         \
		     : "memory", "cc"                                                         \
		     : slow);                                                                 \
	return r;                                                                             \
slow:                                                                                         \
	return pcpu__islow_cmpxchg_##N(h, o, n);	\
}                                                                                             \
static inline __attribute__((always_inline)) uint##N##_t pcpu__add_return_##N(              \
	void *h, uint##N##_t v)                                                               \
{                                                                                             \
	uint64_t t;                                                                           \
	uint##N##_t r;                                                                        \
	__asm__ __volatile__ goto(PCPU__X86_BEGIN                                                          \
		     "mov" S " (%[h], %[t]), %[r]\n\t"                                        \
		     "add" S " %[v], %[r]\n\t"                                                \
		     "mov" S " %[r], (%[h], %[t])\n\t" /* commit */                            \
		     PCPU__X86_END                                                            \
		     : [t] "=&r"(t), [r] "=&r"(r)                                             \
		     : [h] "r"(h), [v] C(v), PCPU__X86_IN                                     \
		     : "memory", "cc"                                                         \
		     : slow);                                                                 \
	return r;                                                                             \
slow:                                                                                         \
	return pcpu__islow_add_return_##N(h, v);	\
}

PCPU__X86_OPS(8, "b", "qi")
PCPU__X86_OPS(16, "w", "ri")
PCPU__X86_OPS(32, "l", "ri")
PCPU__X86_OPS(64, "q", "re")

/*
 * pcpu__add_bounded - the percpu_counter fast path: add @v to this CPU's int32_t copy if
 * the sum stays within (-@batch, @batch), else leave it and return -1 (the caller folds).
 * The sum is formed in 64 bits (@v is within int32_t range, checked by the caller), so it
 * cannot overflow; the range test is one unsigned compare of sum + batch - 1 against
 * 2 * batch - 1 (@batch > 0, also checked by the caller).
 */
static inline __attribute__((always_inline)) int pcpu__add_bounded(int32_t *h, int64_t v,
								   int32_t batch)
{
	uint64_t t, r, u;
	uint64_t bias = (uint64_t)(int64_t)batch - 1, range = 2 * (uint64_t)(int64_t)batch - 1;

	__asm__ __volatile__ goto(PCPU__X86_BEGIN
		     "movslq (%[h], %[t]), %[r]\n\t"
		     "addq %[v], %[r]\n\t"
		     "leaq (%[r], %[bias]), %[u]\n\t"
		     "cmpq %[range], %[u]\n\t"
		     "jae %l[fold]\n\t"
		     "movl %k[r], (%[h], %[t])\n\t" /* commit */
		     PCPU__X86_END
		     : [t] "=&r"(t), [r] "=&r"(r), [u] "=&r"(u)
		     : [h] "r"(h), [v] "r"(v), [bias] "r"(bias), [range] "r"(range), PCPU__X86_IN
		     : "memory", "cc"
		     : slow, fold);
	return 0;
slow:
	return pcpu__slow_add_bounded(h, v, batch);
fold:
	return -1;
}

#endif /* PCPU_ARCH_X86_64_H */
