/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * pcpu/this_cpu.h - the this-CPU operations (the hot path). Included by <pcpu.h>.
 *
 * Each operation is one indivisible step on the copy of the CPU (or, with index=cid, the
 * concurrency id) the calling thread runs on. On x86-64 and AArch64 it is a restartable
 * sequence: the thread stores a descriptor pointer in its rseq area, reads the index from
 * that area, translates the handle with the offset table and commits with a single store (or
 * one read-modify-write instruction). If the kernel preempts, migrates or signals the thread
 * before the commit, it restarts the sequence, so no lock and no atomic instruction is needed
 * and no update is lost. When the index reads negative (no rseq in this thread yet, or the
 * process runs in getcpu mode) the operation leaves the sequence: in getcpu mode it updates
 * the copy getcpu() names with an atomic instruction, inline; otherwise it calls the
 * library's out-of-line slow path, which registers rseq for the thread and retries.
 *
 * Operands: *p must be a 1, 2, 4 or 8-byte integer (signed or unsigned) or a pointer.
 * add/sub/inc/dec/add_return take integers only; read/write/xchg/cmpxchg take both, and
 * read/write/xchg also a float or double, copied bit for bit. Any other use (adding to a
 * double, a pointer or a struct) is a compile error naming the rule: see "The type rules"
 * below. The arithmetic wraps in the width of *p, as in the kernel: pcpu_this_sub(p, v)
 * adds -(__typeof__(*p))v.
 *
 * C and C++: the same operations, the same rules and the same inline sequences. In C they
 * are GNU C statement expressions; in C++ (C++11 and later) function templates over the
 * same primitives, always inline. Both compile warning-free with -Wall -Wextra -pedantic.
 *
 * Every operation is MT-safe and async-signal-safe (a handler that interrupts an operation
 * on the same copy loses neither update), except that the first operation of a thread in
 * own-registration mode registers rseq and installs a thread-exit hook, which calls
 * pthread_setspecific() (lock-free in glibc).
 */
#ifndef PCPU_THIS_CPU_H
#define PCPU_THIS_CPU_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * pcpu__getcpu - the index of the copy getcpu() names for the calling thread (the CPU it
 * runs on, aliased into a fake topology's CPUs). Used inline in getcpu mode
 * (pcpu__hot.atomic). Async-signal-safe; leaves errno alone.
 */
PCPU_API unsigned pcpu__getcpu(void);

/*
 * Out-of-line slow paths (lib/cpu.c). Each does the whole operation correctly in every
 * mode: registers rseq for the thread and retries the restartable sequence, or updates
 * the getcpu copy with an atomic instruction. @h is the handle, @size 1, 2, 4 or 8; values
 * travel zero- or sign-extended in a uint64_t and are truncated to @size bytes.
 */
PCPU_API void pcpu__slow_add(void *h, uint64_t v, unsigned size);
PCPU_API void pcpu__slow_write(void *h, uint64_t v, unsigned size);
PCPU_API uint64_t pcpu__slow_read(const void *h, unsigned size);
PCPU_API uint64_t pcpu__slow_xchg(void *h, uint64_t v, unsigned size);
PCPU_API uint64_t pcpu__slow_cmpxchg(void *h, uint64_t old, uint64_t nv, unsigned size);
PCPU_API uint64_t pcpu__slow_add_return(void *h, uint64_t v, unsigned size);

/*
 * pcpu__slow_add_bounded - slow path of the counter primitive below: add @v to this CPU's
 * int32_t copy if the result stays within (-@batch, @batch) and return 0; else change
 * nothing and return -1.
 */
PCPU_API int pcpu__slow_add_bounded(int32_t *h, int64_t v, int32_t batch);

#ifdef __cplusplus
}
#endif

/*
 * The slow paths as the sequences call them. In getcpu mode (pcpu__hot.atomic) every
 * operation lands here, and updates the copy pcpu__getcpu() names with an atomic
 * instruction inline, as a hand-written sched_getcpu() + atomic would; otherwise (the
 * thread's first operation in own-registration mode) the library's slow path registers
 * rseq and retries. The library's own slow paths, which call the sequences themselves,
 * always take the second branch.
 */
#ifdef PCPU__BUILDING_LIBRARY
#define PCPU__INLINE_ATOMIC 0
#else
#define PCPU__INLINE_ATOMIC __builtin_expect(pcpu__hot.atomic != 0, 1)
#endif
#define PCPU__GETCPU_COPY(N, h)                                                               \
	((uint##N##_t *)((uintptr_t)(h) + PCPU__TAB(h)[pcpu__getcpu()]))
#define PCPU__SLOW_OPS(N)                                                                     \
static inline __attribute__((always_inline)) void pcpu__islow_add_##N(void *h, uint##N##_t v) \
{                                                                                             \
	if (PCPU__INLINE_ATOMIC)                                                              \
		(void)__atomic_fetch_add(PCPU__GETCPU_COPY(N, h), v, __ATOMIC_RELAXED);       \
	else                                                                                  \
		pcpu__slow_add(h, v, N / 8);                                                  \
}                                                                                             \
static inline __attribute__((always_inline)) void pcpu__islow_write_##N(void *h,             \
									   uint##N##_t v)    \
{                                                                                             \
	if (PCPU__INLINE_ATOMIC)                                                              \
		__atomic_store_n(PCPU__GETCPU_COPY(N, h), v, __ATOMIC_RELAXED);               \
	else                                                                                  \
		pcpu__slow_write(h, v, N / 8);                                                \
}                                                                                             \
static inline __attribute__((always_inline)) uint##N##_t pcpu__islow_read_##N(const void *h) \
{                                                                                             \
	if (PCPU__INLINE_ATOMIC)                                                              \
		return __atomic_load_n(PCPU__GETCPU_COPY(N, h), __ATOMIC_RELAXED);            \
	return (uint##N##_t)pcpu__slow_read(h, N / 8);                                        \
}                                                                                             \
static inline __attribute__((always_inline)) uint##N##_t pcpu__islow_xchg_##N(void *h,       \
									      uint##N##_t v) \
{                                                                                             \
	if (PCPU__INLINE_ATOMIC)                                                              \
		return __atomic_exchange_n(PCPU__GETCPU_COPY(N, h), v, __ATOMIC_RELAXED);     \
	return (uint##N##_t)pcpu__slow_xchg(h, v, N / 8);                                     \
}                                                                                             \
static inline __attribute__((always_inline)) uint##N##_t pcpu__islow_cmpxchg_##N(            \
	void *h, uint##N##_t o, uint##N##_t n)                                                \
{                                                                                             \
	if (PCPU__INLINE_ATOMIC) {                                                            \
		/* on failure @o becomes the value seen; on success it is the old value */    \
		__atomic_compare_exchange_n(PCPU__GETCPU_COPY(N, h), &o, n, 0,                \
					    __ATOMIC_RELAXED, __ATOMIC_RELAXED);              \
		return o;                                                                     \
	}                                                                                     \
	return (uint##N##_t)pcpu__slow_cmpxchg(h, o, n, N / 8);                               \
}                                                                                             \
static inline __attribute__((always_inline)) uint##N##_t pcpu__islow_add_return_##N(         \
	void *h, uint##N##_t v)                                                               \
{                                                                                             \
	if (PCPU__INLINE_ATOMIC)                                                              \
		return __atomic_add_fetch(PCPU__GETCPU_COPY(N, h), v, __ATOMIC_RELAXED);      \
	return (uint##N##_t)pcpu__slow_add_return(h, v, N / 8);                               \
}
PCPU__SLOW_OPS(8)
PCPU__SLOW_OPS(16)
PCPU__SLOW_OPS(32)
PCPU__SLOW_OPS(64)

/*
 * The per-architecture layer provides, for N in 8, 16, 32, 64 and U = uintN_t:
 *   void pcpu__add_N(void *h, U v);          void pcpu__write_N(void *h, U v);
 *   U pcpu__read_N(const void *h);           U pcpu__xchg_N(void *h, U v);
 *   U pcpu__cmpxchg_N(void *h, U old, U nv); U pcpu__add_return_N(void *h, U v);
 *   int pcpu__add_bounded(int32_t *h, int64_t v, int32_t batch);
 * and defines PCPU__ARCH_RSEQ when they are restartable sequences.
 *
 * Inline assembly needs asm goto with output operands (GCC 11, Clang 11). Define
 * PCPU_NO_INLINE_ASM to use the out-of-line calls instead (always correct: the library
 * then runs the same sequences, or the atomics, for the caller).
 */
#if !defined(PCPU_NO_INLINE_ASM) &&                                                          \
	((defined(__clang__) && __clang_major__ >= 11) ||                                     \
	 (!defined(__clang__) && defined(__GNUC__) && __GNUC__ >= 11))
#if defined(__x86_64__) && defined(__linux__)
#include <pcpu/arch/x86_64.h>
#elif defined(__aarch64__) && defined(__linux__)
#include <pcpu/arch/aarch64.h>
#endif
#endif
#ifndef PCPU__ARCH_OPS
#include <pcpu/arch/generic.h>
#endif

/*
 * ThreadSanitizer cannot see a restartable sequence: its loads and stores are inline
 * assembly, and what makes it exact (the kernel restarting it) is outside the model. Under
 * TSan every primitive is therefore followed by an access TSan does see, on the copy the
 * thread's index names now: a relaxed atomic add of zero after an update, a relaxed atomic
 * load after a read. Neither changes memory (an atomic read-modify-write that writes back
 * the value it read cannot lose a concurrent update, wherever it lands), so the semantics
 * are those of the plain build; TSan then treats every this-CPU access as the relaxed
 * atomic it is meant to be, which is exactly what readers such as pcpu_counter_sum()
 * assume (they load copies with relaxed atomics), and it reports a plain access through
 * pcpu_ptr() that races with them. After a migration the annotated copy may be another
 * one than the copy written: that only weakens detection, never adds a false report.
 * The pointer is volatile because compilers turn a relaxed add of zero into a plain atomic
 * load otherwise, which TSan would take for a read.
 */
#if defined(__SANITIZE_THREAD__)
#define PCPU__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PCPU__TSAN 1
#endif
#endif

#ifdef PCPU__TSAN
#define PCPU__TSAN_COPY(N, h)                                                                 \
	((volatile uint##N##_t *)((uintptr_t)(h) + PCPU__TAB(h)[pcpu_this_cpu()]))
#define PCPU__TSAN_OPS(N)                                                                     \
static inline void pcpu__tsan_add_##N(void *h, uint##N##_t v)                                \
{                                                                                             \
	pcpu__add_##N(h, v);                                                                  \
	(void)__atomic_fetch_add(PCPU__TSAN_COPY(N, h), 0, __ATOMIC_RELAXED);                 \
}                                                                                             \
static inline void pcpu__tsan_write_##N(void *h, uint##N##_t v)                              \
{                                                                                             \
	pcpu__write_##N(h, v);                                                                \
	(void)__atomic_fetch_add(PCPU__TSAN_COPY(N, h), 0, __ATOMIC_RELAXED);                 \
}                                                                                             \
static inline uint##N##_t pcpu__tsan_read_##N(const void *h)                                 \
{                                                                                             \
	uint##N##_t r = pcpu__read_##N(h);                                                    \
	(void)__atomic_load_n(PCPU__TSAN_COPY(N, h), __ATOMIC_RELAXED);                       \
	return r;                                                                             \
}                                                                                             \
static inline uint##N##_t pcpu__tsan_xchg_##N(void *h, uint##N##_t v)                        \
{                                                                                             \
	uint##N##_t r = pcpu__xchg_##N(h, v);                                                 \
	(void)__atomic_fetch_add(PCPU__TSAN_COPY(N, h), 0, __ATOMIC_RELAXED);                 \
	return r;                                                                             \
}                                                                                             \
static inline uint##N##_t pcpu__tsan_cmpxchg_##N(void *h, uint##N##_t o, uint##N##_t n)      \
{                                                                                             \
	uint##N##_t r = pcpu__cmpxchg_##N(h, o, n);                                           \
	(void)__atomic_fetch_add(PCPU__TSAN_COPY(N, h), 0, __ATOMIC_RELAXED);                 \
	return r;                                                                             \
}                                                                                             \
static inline uint##N##_t pcpu__tsan_add_return_##N(void *h, uint##N##_t v)                  \
{                                                                                             \
	uint##N##_t r = pcpu__add_return_##N(h, v);                                           \
	(void)__atomic_fetch_add(PCPU__TSAN_COPY(N, h), 0, __ATOMIC_RELAXED);                 \
	return r;                                                                             \
}
PCPU__TSAN_OPS(8)
PCPU__TSAN_OPS(16)
PCPU__TSAN_OPS(32)
PCPU__TSAN_OPS(64)

static inline int pcpu__tsan_add_bounded(int32_t *h, int64_t v, int32_t batch)
{
	int r = pcpu__add_bounded(h, v, batch);

	(void)__atomic_fetch_add(PCPU__TSAN_COPY(32, h), 0, __ATOMIC_RELAXED);
	return r;
}

/* From here on (the operations below, and the library's slow paths) use the wrappers. */
#define pcpu__add_8 pcpu__tsan_add_8
#define pcpu__add_16 pcpu__tsan_add_16
#define pcpu__add_32 pcpu__tsan_add_32
#define pcpu__add_64 pcpu__tsan_add_64
#define pcpu__write_8 pcpu__tsan_write_8
#define pcpu__write_16 pcpu__tsan_write_16
#define pcpu__write_32 pcpu__tsan_write_32
#define pcpu__write_64 pcpu__tsan_write_64
#define pcpu__read_8 pcpu__tsan_read_8
#define pcpu__read_16 pcpu__tsan_read_16
#define pcpu__read_32 pcpu__tsan_read_32
#define pcpu__read_64 pcpu__tsan_read_64
#define pcpu__xchg_8 pcpu__tsan_xchg_8
#define pcpu__xchg_16 pcpu__tsan_xchg_16
#define pcpu__xchg_32 pcpu__tsan_xchg_32
#define pcpu__xchg_64 pcpu__tsan_xchg_64
#define pcpu__cmpxchg_8 pcpu__tsan_cmpxchg_8
#define pcpu__cmpxchg_16 pcpu__tsan_cmpxchg_16
#define pcpu__cmpxchg_32 pcpu__tsan_cmpxchg_32
#define pcpu__cmpxchg_64 pcpu__tsan_cmpxchg_64
#define pcpu__add_return_8 pcpu__tsan_add_return_8
#define pcpu__add_return_16 pcpu__tsan_add_return_16
#define pcpu__add_return_32 pcpu__tsan_add_return_32
#define pcpu__add_return_64 pcpu__tsan_add_return_64
#define pcpu__add_bounded pcpu__tsan_add_bounded
#endif /* PCPU__TSAN */

/*
 * The type rules, one message each, checked at compile time in C and C++ alike: an
 * operation on a type it cannot handle exactly is a compile error naming the rule, never
 * a silent wrong result.
 *   add, sub, inc, dec, add_return: integers only (enumerations too in C). Not bool (1 + 1
 *     is no bool), not a pointer (the sequence adds bytes, not elements), not a floating
 *     type (the sequence adds integers: adding 1.5 to a double's bits gives garbage), not a
 *     struct.
 *   cmpxchg: integers, bool, enumerations and pointers: the types whose == compares bits.
 *     Not floating types (0.0 == -0.0 with different bits; a NaN equals nothing).
 *   read, write, xchg: any of the above and floating types; a floating value is copied bit
 *     for bit, so it comes back exactly as written (-0.0 and NaN payloads included). Not a
 *     struct or union.
 *   all: *p is 1, 2, 4 or 8 bytes (a long double is 16: rejected).
 */
#define PCPU__MSG_SIZE "pcpu_this_*: the operand must be 1, 2, 4 or 8 bytes"
#define PCPU__MSG_ARITH                                                                       \
	"pcpu_this_add: only integer handles can be added to (also sub, inc, dec, "           \
	"add_return); a floating-point, bool, pointer or struct copy cannot be updated exactly"
#define PCPU__MSG_CMP                                                                         \
	"pcpu_this_cmpxchg: only integer and pointer handles can be compared exactly; not a " \
	"floating-point or struct handle"
#define PCPU__MSG_COPY                                                                        \
	"pcpu_this_read/write/xchg: only integer, pointer and floating-point handles; not a "  \
	"struct or union"

#ifndef __cplusplus

/*
 * Internal: the rules above as static assertions on the expression *@p, which is not
 * evaluated. __builtin_classify_type (GCC and Clang) names the class of its type:
 * 1 integer (C enumerations included, and _Bool in GCC), 3 enumeration, 4 bool (Clang),
 * 5 pointer, 8 real floating, 9 complex floating; _Generic catches _Bool for GCC.
 */
#define PCPU__CLASS(x) __builtin_classify_type(x)
#define PCPU__IS_BOOL(x) _Generic((x), _Bool: 1, default: 0)
#define PCPU__ARITH_OK(x) _Static_assert(PCPU__CLASS(x) == 1 && !PCPU__IS_BOOL(x), PCPU__MSG_ARITH)
#define PCPU__CMP_OK(x)                                                                       \
	_Static_assert(PCPU__CLASS(x) == 1 || PCPU__CLASS(x) == 3 || PCPU__CLASS(x) == 4 ||   \
			       PCPU__CLASS(x) == 5,                                           \
		       PCPU__MSG_CMP)
#define PCPU__COPY_OK(x)                                                                      \
	_Static_assert(PCPU__CLASS(x) == 1 || PCPU__CLASS(x) == 3 || PCPU__CLASS(x) == 4 ||   \
			       PCPU__CLASS(x) == 5 || PCPU__CLASS(x) == 8 ||                  \
			       PCPU__CLASS(x) == 9,                                           \
		       PCPU__MSG_COPY)
#define PCPU__SIZE_OK(T)                                                                      \
	_Static_assert(sizeof(T) == 1 || sizeof(T) == 2 || sizeof(T) == 4 || sizeof(T) == 8, \
		       PCPU__MSG_SIZE)
/* T to uintN_t and back, bit for bit (a union, so pointers need no cast warnings). */
#define PCPU__TO(N, T, x) (((union { T pcpu__t; uint##N##_t pcpu__u; }){.pcpu__t = (x)}).pcpu__u)
#define PCPU__FROM(N, T, x)                                                                   \
	(((union { uint##N##_t pcpu__u; T pcpu__t; }){.pcpu__u = (uint##N##_t)(x)}).pcpu__t)

/*
 * Pick the N-byte primitive. __builtin_choose_expr instead of a switch: the branches of
 * other sizes generate no code at all, even at -O0 (their assembly would not assemble).
 */
#define PCPU__CHOOSE(T, e8, e16, e32, e64)                                                    \
	__builtin_choose_expr(sizeof(T) == 1, e8,                                             \
		__builtin_choose_expr(sizeof(T) == 2, e16,                                    \
			__builtin_choose_expr(sizeof(T) == 4, e32, e64)))

/* Internal: the unary-value operations; @op is add, write, xchg or add_return. */
#define PCPU__OP1(op, p, v)                                                                   \
	PCPU__CHOOSE(*(p), pcpu__##op##_8((void *)(p), PCPU__TO(8, __typeof__(*(p)), (v))),  \
		     pcpu__##op##_16((void *)(p), PCPU__TO(16, __typeof__(*(p)), (v))),      \
		     pcpu__##op##_32((void *)(p), PCPU__TO(32, __typeof__(*(p)), (v))),      \
		     pcpu__##op##_64((void *)(p), PCPU__TO(64, __typeof__(*(p)), (v))))

/*
 * pcpu_this_add - add @v (converted to the type of *@p, so it wraps in that width) to this
 * CPU's copy of *@p. No return value.
 */
#define pcpu_this_add(p, v)                                                                   \
	__extension__({                                                                       \
		PCPU__ARITH_OK(*(p));                                                         \
		__typeof__(*(p)) *pcpu__p_ = (p);                                             \
		__typeof__(*(p)) pcpu__v_ = (__typeof__(*(p)))(v);                            \
		PCPU__SIZE_OK(*pcpu__p_);                                                      \
		PCPU__OP1(add, pcpu__p_, pcpu__v_);                                            \
		(void)0;                                                                      \
	})

/* pcpu_this_sub - subtract @v: adds -(type of *@p)@v, as the kernel does. */
#define pcpu_this_sub(p, v) pcpu_this_add((p), -(__typeof__(*(p)))(v))
/* pcpu_this_inc, pcpu_this_dec - add 1, subtract 1. */
#define pcpu_this_inc(p) pcpu_this_add((p), 1)
#define pcpu_this_dec(p) pcpu_this_sub((p), 1)

/* pcpu_this_write - store @v into this CPU's copy. */
#define pcpu_this_write(p, v)                                                                 \
	__extension__({                                                                       \
		PCPU__COPY_OK(*(p));                                                          \
		__typeof__(*(p)) *pcpu__p_ = (p);                                             \
		__typeof__(*(p)) pcpu__v_ = (v);                                              \
		PCPU__SIZE_OK(*pcpu__p_);                                                      \
		PCPU__OP1(write, pcpu__p_, pcpu__v_);                                          \
		(void)0;                                                                      \
	})

/* pcpu_this_read - this CPU's copy of *@p, read on that CPU. Returns the type of *@p. */
#define pcpu_this_read(p)                                                                     \
	__extension__({                                                                       \
		PCPU__COPY_OK(*(p));                                                          \
		__typeof__(*(p)) *pcpu__p_ = (p);                                             \
		PCPU__SIZE_OK(*pcpu__p_);                                                      \
		PCPU__CHOOSE(*pcpu__p_,                                                        \
			PCPU__FROM(8, __typeof__(*(p)), pcpu__read_8((void *)pcpu__p_)),      \
			PCPU__FROM(16, __typeof__(*(p)), pcpu__read_16((void *)pcpu__p_)),    \
			PCPU__FROM(32, __typeof__(*(p)), pcpu__read_32((void *)pcpu__p_)),    \
			PCPU__FROM(64, __typeof__(*(p)), pcpu__read_64((void *)pcpu__p_)));   \
	})

/*
 * Internal: a value-returning unary operation, result converted back to the type of *p;
 * @check is the rule of @op.
 */
#define PCPU__OP1R(op, check, p, v)                                                           \
	__extension__({                                                                       \
		check(*(p));                                                                  \
		__typeof__(*(p)) *pcpu__p_ = (p);                                             \
		__typeof__(*(p)) pcpu__v_ = (__typeof__(*(p)))(v);                            \
		PCPU__SIZE_OK(*pcpu__p_);                                                      \
		PCPU__CHOOSE(*pcpu__p_,                                                        \
			PCPU__FROM(8, __typeof__(*(p)),                                       \
				   pcpu__##op##_8((void *)pcpu__p_,                            \
						  PCPU__TO(8, __typeof__(*(p)), pcpu__v_))),   \
			PCPU__FROM(16, __typeof__(*(p)),                                      \
				   pcpu__##op##_16((void *)pcpu__p_,                           \
						   PCPU__TO(16, __typeof__(*(p)), pcpu__v_))), \
			PCPU__FROM(32, __typeof__(*(p)),                                      \
				   pcpu__##op##_32((void *)pcpu__p_,                           \
						   PCPU__TO(32, __typeof__(*(p)), pcpu__v_))), \
			PCPU__FROM(64, __typeof__(*(p)),                                      \
				   pcpu__##op##_64((void *)pcpu__p_,                           \
						   PCPU__TO(64, __typeof__(*(p)), pcpu__v_)))); \
	})

/* pcpu_this_xchg - store @v into this CPU's copy; returns the value it replaced. */
#define pcpu_this_xchg(p, v) PCPU__OP1R(xchg, PCPU__COPY_OK, p, v)

/* pcpu_this_add_return - add @v to this CPU's copy; returns the new value. */
#define pcpu_this_add_return(p, v) PCPU__OP1R(add_return, PCPU__ARITH_OK, p, v)

/*
 * pcpu_this_cmpxchg - if this CPU's copy equals @o, store @n. Returns the value seen (equal
 * to @o exactly when the store happened).
 */
#define pcpu_this_cmpxchg(p, o, n)                                                            \
	__extension__({                                                                       \
		PCPU__CMP_OK(*(p));                                                           \
		__typeof__(*(p)) *pcpu__p_ = (p);                                             \
		__typeof__(*(p)) pcpu__o_ = (__typeof__(*(p)))(o);                            \
		__typeof__(*(p)) pcpu__n_ = (__typeof__(*(p)))(n);                            \
		PCPU__SIZE_OK(*pcpu__p_);                                                      \
		PCPU__CHOOSE(*pcpu__p_,                                                        \
			PCPU__FROM(8, __typeof__(*(p)),                                       \
				   pcpu__cmpxchg_8((void *)pcpu__p_,                           \
						   PCPU__TO(8, __typeof__(*(p)), pcpu__o_),    \
						   PCPU__TO(8, __typeof__(*(p)), pcpu__n_))),  \
			PCPU__FROM(16, __typeof__(*(p)),                                      \
				   pcpu__cmpxchg_16((void *)pcpu__p_,                          \
						    PCPU__TO(16, __typeof__(*(p)), pcpu__o_),  \
						    PCPU__TO(16, __typeof__(*(p)), pcpu__n_))),\
			PCPU__FROM(32, __typeof__(*(p)),                                      \
				   pcpu__cmpxchg_32((void *)pcpu__p_,                          \
						    PCPU__TO(32, __typeof__(*(p)), pcpu__o_),  \
						    PCPU__TO(32, __typeof__(*(p)), pcpu__n_))),\
			PCPU__FROM(64, __typeof__(*(p)),                                      \
				   pcpu__cmpxchg_64((void *)pcpu__p_,                          \
						    PCPU__TO(64, __typeof__(*(p)), pcpu__o_),  \
						    PCPU__TO(64, __typeof__(*(p)), pcpu__n_)))); \
	})

#else /* __cplusplus */

/*
 * C++: the same operations as function templates over the same primitives (the
 * restartable sequences above, inline), with the same rules as static assertions. A
 * template's body is always inline; always_inline keeps it so at -O0 as the C macros are.
 * Internal linkage (static), as the primitives they call. Values: add, sub and add_return
 * convert @v with static_cast, as the C macros cast it; write, xchg and cmpxchg take their
 * values as the type of *p, converted as any C++ argument is (so NULL, 0 and nullptr are
 * null pointers for a pointer handle, and a plain integer is not a pointer).
 */
#define PCPU__AI inline __attribute__((always_inline))

extern "C++" {

/* What a type is to the rules: integer, bool, enumeration, pointer, floating, other. */
enum { PCPU__K_OTHER, PCPU__K_INT, PCPU__K_BOOL, PCPU__K_ENUM, PCPU__K_PTR, PCPU__K_FLOAT };
template <typename pcpu__T, bool pcpu__E = __is_enum(pcpu__T)> struct pcpu__kind {
	static const int value = pcpu__E ? PCPU__K_ENUM : PCPU__K_OTHER;
};
template <typename pcpu__T, bool pcpu__E> struct pcpu__kind<pcpu__T *, pcpu__E> {
	static const int value = PCPU__K_PTR;
};
#define PCPU__KIND(type, kind)                                                                \
	template <> struct pcpu__kind<type, false> {                                          \
		static const int value = kind;                                                \
	};
PCPU__KIND(char, PCPU__K_INT)
PCPU__KIND(signed char, PCPU__K_INT)
PCPU__KIND(unsigned char, PCPU__K_INT)
PCPU__KIND(short, PCPU__K_INT)
PCPU__KIND(unsigned short, PCPU__K_INT)
PCPU__KIND(int, PCPU__K_INT)
PCPU__KIND(unsigned int, PCPU__K_INT)
PCPU__KIND(long, PCPU__K_INT)
PCPU__KIND(unsigned long, PCPU__K_INT)
PCPU__KIND(long long, PCPU__K_INT)
PCPU__KIND(unsigned long long, PCPU__K_INT)
PCPU__KIND(wchar_t, PCPU__K_INT)
PCPU__KIND(char16_t, PCPU__K_INT)
PCPU__KIND(char32_t, PCPU__K_INT)
#ifdef __cpp_char8_t
PCPU__KIND(char8_t, PCPU__K_INT)
#endif
PCPU__KIND(bool, PCPU__K_BOOL)
PCPU__KIND(float, PCPU__K_FLOAT)
PCPU__KIND(double, PCPU__K_FLOAT)
PCPU__KIND(long double, PCPU__K_FLOAT)
#undef PCPU__KIND

/* The type without const and volatile; whether it was const. */
template <typename pcpu__T> struct pcpu__plain {
	typedef pcpu__T type;
	static const bool is_const = false;
};
template <typename pcpu__T> struct pcpu__plain<const pcpu__T> {
	typedef pcpu__T type;
	static const bool is_const = true;
};
template <typename pcpu__T> struct pcpu__plain<volatile pcpu__T> {
	typedef pcpu__T type;
	static const bool is_const = false;
};
template <typename pcpu__T> struct pcpu__plain<const volatile pcpu__T> {
	typedef pcpu__T type;
	static const bool is_const = true;
};

#define PCPU__MSG_CONST "pcpu_this_*: the handle points to const; only pcpu_this_read() takes it"
#define PCPU__SIZE_IS_OK(P) (sizeof(P) == 1 || sizeof(P) == 2 || sizeof(P) == 4 || sizeof(P) == 8)
#define PCPU__ARITH_IS_OK(P) (pcpu__kind<P>::value == PCPU__K_INT)
#define PCPU__CMP_IS_OK(P)                                                                    \
	(pcpu__kind<P>::value == PCPU__K_INT || pcpu__kind<P>::value == PCPU__K_BOOL ||       \
	 pcpu__kind<P>::value == PCPU__K_ENUM || pcpu__kind<P>::value == PCPU__K_PTR)
#define PCPU__COPY_IS_OK(P) (PCPU__CMP_IS_OK(P) || pcpu__kind<P>::value == PCPU__K_FLOAT)

/* The N-byte primitives, picked by size as __builtin_choose_expr does in C. */
template <unsigned pcpu__S> struct pcpu__prim {};
#define PCPU__PRIM(S, N)                                                                      \
	template <> struct pcpu__prim<S> {                                                    \
		typedef uint##N##_t U;                                                        \
		static PCPU__AI void add(void *h, U v) { pcpu__add_##N(h, v); }               \
		static PCPU__AI void write(void *h, U v) { pcpu__write_##N(h, v); }           \
		static PCPU__AI U read(const void *h) { return pcpu__read_##N(h); }           \
		static PCPU__AI U xchg(void *h, U v) { return pcpu__xchg_##N(h, v); }         \
		static PCPU__AI U cmpxchg(void *h, U o, U n)                                  \
		{                                                                             \
			return pcpu__cmpxchg_##N(h, o, n);                                    \
		}                                                                             \
		static PCPU__AI U add_return(void *h, U v)                                    \
		{                                                                             \
			return pcpu__add_return_##N(h, v);                                    \
		}                                                                             \
	};
PCPU__PRIM(1, 8)
PCPU__PRIM(2, 16)
PCPU__PRIM(4, 32)
PCPU__PRIM(8, 64)
#undef PCPU__PRIM

/*
 * A plain value to its N-byte integer and back, bit for bit (as the C macros' union). The
 * template parameters carry the pcpu__ prefix so that no macro of the program (a T, an N)
 * can reach them.
 */
template <typename pcpu__U, typename pcpu__P> static PCPU__AI pcpu__U pcpu__bits(const pcpu__P &x)
{
	pcpu__U u;
	__builtin_memcpy(&u, &x, sizeof(u));
	return u;
}
template <typename pcpu__P, typename pcpu__U> static PCPU__AI pcpu__P pcpu__unbits(pcpu__U u)
{
	pcpu__P x;
	__builtin_memcpy(&x, &u, sizeof(x));
	return x;
}

/*
 * The operations on the plain type pcpu__P, once the rules hold (pcpu__OK). When they do
 * not, a static assertion has already said why; pcpu__ops<false> is only declared, which
 * keeps the compiler from piling errors of its own on top.
 */
#define PCPU__TPV template <typename pcpu__P, typename pcpu__V>
#define PCPU__PRIM_OF pcpu__prim<sizeof(pcpu__P)>
#define PCPU__BITS(x) pcpu__bits<typename PCPU__PRIM_OF::U>(x)
template <bool pcpu__OK> struct pcpu__ops {
	PCPU__TPV static void add(void *h, pcpu__V v);
	PCPU__TPV static void sub(void *h, pcpu__V v);
	PCPU__TPV static void write(void *h, pcpu__V v);
	template <typename pcpu__P> static pcpu__P read(const void *h);
	PCPU__TPV static pcpu__P xchg(void *h, pcpu__V v);
	template <typename pcpu__P> static pcpu__P cmpxchg(void *h, pcpu__P o, pcpu__P n);
	PCPU__TPV static pcpu__P add_return(void *h, pcpu__V v);
};
template <> struct pcpu__ops<true> {
	PCPU__TPV static PCPU__AI void add(void *h, pcpu__V v)
	{
		PCPU__PRIM_OF::add(h, PCPU__BITS(static_cast<pcpu__P>(v)));
	}
	/* As the kernel (and the C macro): add -(P)v, wrapping in the width of P. */
	PCPU__TPV static PCPU__AI void sub(void *h, pcpu__V v)
	{
		add<pcpu__P>(h, static_cast<pcpu__P>(-static_cast<pcpu__P>(v)));
	}
	PCPU__TPV static PCPU__AI void write(void *h, pcpu__V v)
	{
		PCPU__PRIM_OF::write(h, PCPU__BITS(v));
	}
	template <typename pcpu__P> static PCPU__AI pcpu__P read(const void *h)
	{
		return pcpu__unbits<pcpu__P>(PCPU__PRIM_OF::read(h));
	}
	PCPU__TPV static PCPU__AI pcpu__P xchg(void *h, pcpu__V v)
	{
		return pcpu__unbits<pcpu__P>(PCPU__PRIM_OF::xchg(h, PCPU__BITS(v)));
	}
	template <typename pcpu__P> static PCPU__AI pcpu__P cmpxchg(void *h, pcpu__P o, pcpu__P n)
	{
		return pcpu__unbits<pcpu__P>(
			PCPU__PRIM_OF::cmpxchg(h, PCPU__BITS(o), PCPU__BITS(n)));
	}
	PCPU__TPV static PCPU__AI pcpu__P add_return(void *h, pcpu__V v)
	{
		return pcpu__unbits<pcpu__P>(
			PCPU__PRIM_OF::add_return(h, PCPU__BITS(static_cast<pcpu__P>(v))));
	}
};
#undef PCPU__BITS
#undef PCPU__PRIM_OF

/* The handle as the primitives take it (volatile or not). */
template <typename pcpu__T> static PCPU__AI void *pcpu__vp(pcpu__T *p)
{
	return const_cast<void *>(static_cast<const volatile void *>(p));
}

/*
 * Each operation: pcpu__T is the handle's type (*p), pcpu__P the same without const and
 * volatile, pcpu__V the value's type. First its rules, then the work (the contracts are
 * the C macros' above). The rules hold as a whole in PCPU__OK(rule).
 */
#define PCPU__TTV template <typename pcpu__T, typename pcpu__V>
#define PCPU__PLAIN typename pcpu__plain<pcpu__T>::type
#define PCPU__OK(rule) ((rule) && PCPU__SIZE_IS_OK(pcpu__P) && !pcpu__plain<pcpu__T>::is_const)
#define PCPU__CHECK(rule, msg)                                                                \
	typedef PCPU__PLAIN pcpu__P;                                                          \
	static_assert(rule, msg);                                                             \
	static_assert(PCPU__SIZE_IS_OK(pcpu__P), PCPU__MSG_SIZE);                             \
	static_assert(!pcpu__plain<pcpu__T>::is_const, PCPU__MSG_CONST)

PCPU__TTV static PCPU__AI void pcpu__cxx_add(pcpu__T *p, pcpu__V v)
{
	PCPU__CHECK(PCPU__ARITH_IS_OK(pcpu__P), PCPU__MSG_ARITH);
	pcpu__ops<PCPU__OK(PCPU__ARITH_IS_OK(pcpu__P))>::template add<pcpu__P>(pcpu__vp(p), v);
}
PCPU__TTV static PCPU__AI void pcpu__cxx_sub(pcpu__T *p, pcpu__V v)
{
	PCPU__CHECK(PCPU__ARITH_IS_OK(pcpu__P), PCPU__MSG_ARITH);
	pcpu__ops<PCPU__OK(PCPU__ARITH_IS_OK(pcpu__P))>::template sub<pcpu__P>(pcpu__vp(p), v);
}
template <typename pcpu__T> static PCPU__AI void pcpu__cxx_write(pcpu__T *p, PCPU__PLAIN v)
{
	PCPU__CHECK(PCPU__COPY_IS_OK(pcpu__P), PCPU__MSG_COPY);
	pcpu__ops<PCPU__OK(PCPU__COPY_IS_OK(pcpu__P))>::template write<pcpu__P>(pcpu__vp(p), v);
}
/* The only operation that takes a handle to const. */
template <typename pcpu__T> static PCPU__AI PCPU__PLAIN pcpu__cxx_read(pcpu__T *p)
{
	typedef PCPU__PLAIN pcpu__P;
	static_assert(PCPU__COPY_IS_OK(pcpu__P), PCPU__MSG_COPY);
	static_assert(PCPU__SIZE_IS_OK(pcpu__P), PCPU__MSG_SIZE);
	return pcpu__ops<PCPU__COPY_IS_OK(pcpu__P) &&
			 PCPU__SIZE_IS_OK(pcpu__P)>::template read<pcpu__P>(pcpu__vp(p));
}
template <typename pcpu__T> static PCPU__AI PCPU__PLAIN pcpu__cxx_xchg(pcpu__T *p, PCPU__PLAIN v)
{
	PCPU__CHECK(PCPU__COPY_IS_OK(pcpu__P), PCPU__MSG_COPY);
	return pcpu__ops<PCPU__OK(PCPU__COPY_IS_OK(pcpu__P))>::template xchg<pcpu__P>(
		pcpu__vp(p), v);
}
template <typename pcpu__T>
static PCPU__AI PCPU__PLAIN pcpu__cxx_cmpxchg(pcpu__T *p, PCPU__PLAIN o, PCPU__PLAIN n)
{
	PCPU__CHECK(PCPU__CMP_IS_OK(pcpu__P), PCPU__MSG_CMP);
	return pcpu__ops<PCPU__OK(PCPU__CMP_IS_OK(pcpu__P))>::template cmpxchg<pcpu__P>(
		pcpu__vp(p), o, n);
}
PCPU__TTV static PCPU__AI PCPU__PLAIN pcpu__cxx_add_return(pcpu__T *p, pcpu__V v)
{
	PCPU__CHECK(PCPU__ARITH_IS_OK(pcpu__P), PCPU__MSG_ARITH);
	return pcpu__ops<PCPU__OK(PCPU__ARITH_IS_OK(pcpu__P))>::template add_return<pcpu__P>(
		pcpu__vp(p), v);
}
#undef PCPU__CHECK
#undef PCPU__OK
#undef PCPU__PLAIN
#undef PCPU__TTV
#undef PCPU__TPV

} /* extern "C++" */

/* The operations, with the contracts of the C macros above. */
#define pcpu_this_add(p, v) pcpu__cxx_add((p), (v))
#define pcpu_this_sub(p, v) pcpu__cxx_sub((p), (v))
#define pcpu_this_inc(p) pcpu__cxx_add((p), 1)
#define pcpu_this_dec(p) pcpu__cxx_sub((p), 1)
#define pcpu_this_write(p, v) pcpu__cxx_write((p), (v))
#define pcpu_this_read(p) pcpu__cxx_read(p)
#define pcpu_this_xchg(p, v) pcpu__cxx_xchg((p), (v))
#define pcpu_this_add_return(p, v) pcpu__cxx_add_return((p), (v))
#define pcpu_this_cmpxchg(p, o, n) pcpu__cxx_cmpxchg((p), (o), (n))

#endif /* __cplusplus */

#endif /* PCPU_THIS_CPU_H */
