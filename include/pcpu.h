/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * pcpu.h - the kernel's per-CPU memory allocator, in user space.
 *
 * A per-CPU handle names one object per possible CPU, all at the same offset of their CPU's
 * unit. A handle is never dereferenced directly: pcpu_ptr() gives a CPU's copy and the
 * pcpu_this_*() operations update the copy of the CPU the thread runs on, with no lock and
 * no atomic instruction (restartable sequences). Read a total by folding every copy.
 *
 * Every function here is MT-safe unless its comment says otherwise. Errors: functions that
 * return a pointer return NULL and set errno; functions that return int return -1 and set
 * errno.
 *
 * Languages: C (gnu11, or strict c11 with -pedantic) and C++ (C++11 to C++20), warning-free
 * under -Wall -Wextra -pedantic with GCC and Clang; every declaration has C linkage. In C++
 * the this-CPU operations are templates over the same inline sequences (<pcpu/this_cpu.h>).
 * <pcpu/kernel.h> is C only.
 */
#ifndef PCPU_H
#define PCPU_H

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PCPU_VERSION_MAJOR 0
#define PCPU_VERSION_MINOR 2
#define PCPU_VERSION_PATCH 0

/* Exported symbols of the library; everything else is hidden. */
#ifndef PCPU_API
#define PCPU_API __attribute__((visibility("default")))
#endif

/*
 * __pcpu marks a per-CPU handle, like the kernel's __percpu: a pointer that must only be
 * given to pcpu_ptr(), pcpu_this_*() and pcpu_free(). It expands to nothing for the
 * compiler; sparse-like checkers may define it.
 */
#ifndef __pcpu
#define __pcpu
#endif

/* ---------------------------------------------------------------------------------------- */
/* Allocation                                                                                */
/* ---------------------------------------------------------------------------------------- */

/* Flags of pcpu_alloc(). */
#define PCPU_NOWAIT  0x1u /* never map memory nor sleep: only already populated pages */
#define PCPU_ACCOUNT 0x2u /* charge the calling thread's current accounting domain */

/*
 * pcpu_alloc - allocate one zeroed object of @size bytes per possible CPU.
 * @size:  1 to PCPU_MAX_ALLOC bytes (the largest dynamic allocation, at least 32 KiB).
 * @align: a power of two from 1 to the page size; 0 means natural alignment (the smallest
 *         of 8 and the power of two >= @size).
 * @flags: 0, or PCPU_NOWAIT and/or PCPU_ACCOUNT.
 *
 * Return: a per-CPU handle, every copy zero. NULL with errno EINVAL for a bad size, align or
 * flag; NULL with errno ENOMEM when memory, address space or the domain's limit runs out (or,
 * with PCPU_NOWAIT, when no populated page has room). On failure nothing has changed.
 * MT-safe. With PCPU_NOWAIT also safe where a thread must not sleep (it takes only the
 * short lock); not async-signal-safe.
 */
PCPU_API void __pcpu *pcpu_alloc(size_t size, size_t align, unsigned flags);

/*
 * pcpu_free - free a handle returned by pcpu_alloc(). NULL does nothing.
 * Anything that is not a live handle (an interior pointer, garbage, a double free) is
 * detected: one line naming the address is written to stderr, then abort().
 * MT-safe; takes only the short lock.
 */
PCPU_API void pcpu_free(void __pcpu *p);

/* Internal: alignof and static assertions in both languages. */
#ifdef __cplusplus
#define PCPU__ALIGNOF(T) alignof(T)
#define PCPU__STATIC_ASSERT(e, msg) static_assert(e, msg)
#else
#define PCPU__ALIGNOF(T) _Alignof(T)
#define PCPU__STATIC_ASSERT(e, msg) _Static_assert(e, msg)
#endif

/* Allocate one zeroed T per possible CPU, naturally aligned. */
#ifdef __cplusplus
#define pcpu_alloc_type(T) (static_cast<T __pcpu *>(pcpu_alloc(sizeof(T), alignof(T), 0)))
#else
#define pcpu_alloc_type(T) ((T __pcpu *)pcpu_alloc(sizeof(T), _Alignof(T), 0))
#endif

/* ---------------------------------------------------------------------------------------- */
/* Reaching the copies                                                                       */
/* ---------------------------------------------------------------------------------------- */

/* Largest number of possible CPUs (real or fake) the library supports. */
#define PCPU_MAX_CPUS 8192

/*
 * Internal to the inline operations: what every one of them reads, in one block.
 *   offset   the translation table: CPU c's copy of handle h is at h + offset[c] (entries
 *            past the topology's CPUs alias its copies, for CPU ids it does not know);
 *   cs_off   the offset from the thread pointer (%fs base on x86-64, tpidr_el0 on AArch64)
 *            of the rseq_cs field of the rseq area in use: glibc's, libpcpu's own, or in
 *            getcpu mode one that is never registered;
 *   idx_off  the same for the 32-bit index of that area: cpu_id (+4) or mm_cid (+24), -1
 *            until the thread's area is registered, so the operation takes the slow path;
 *   atomic   nonzero in getcpu mode: update the copy pcpu__getcpu() names atomically.
 * The library sets the block once, while it initialises and before any handle exists, and
 * never changes it afterwards. Callers therefore see it const: the compiler loads it once
 * per function instead of once per operation (every operation clobbers memory, which would
 * otherwise reload it each time). The library, which writes it, sees it writable.
 */
#ifdef PCPU__BUILDING_LIBRARY
#define PCPU__HOT_CONST
#else
#define PCPU__HOT_CONST const
#endif
struct pcpu__hot {
	const uintptr_t *offset;
	ptrdiff_t cs_off;
	ptrdiff_t idx_off;
	long atomic;
};
extern PCPU_API PCPU__HOT_CONST struct pcpu__hot pcpu__hot;

/*
 * Internal: the table a handle's copies are found through. The table has two halves of
 * PCPU_MAX_CPUS entries. Objects aligned to at most a cache line live in coloured chunks,
 * whose units start at staggered cache-line offsets (copies of one object spread over the
 * cache sets); their handles carry PCPU__COLOUR_BIT and use the second half. Larger
 * alignments live in plain chunks and use the first. The selection is two ALU operations on
 * the handle, outside any restartable sequence.
 */
#if defined(__aarch64__)
#define PCPU__COLOUR_BIT 54
#elif UINTPTR_MAX > 0xffffffffu
#define PCPU__COLOUR_BIT 62
#endif
#ifdef PCPU__COLOUR_BIT
#ifndef __cplusplus
#define PCPU__TAB(h)                                                                          \
	((const uintptr_t *)((uintptr_t)pcpu__hot.offset +                                    \
			     (((uintptr_t)(h) >> (PCPU__COLOUR_BIT - 16)) & (uintptr_t)0x10000)))
#else
#define PCPU__TAB(h)                                                                          \
	reinterpret_cast<const uintptr_t *>(                                                  \
	    reinterpret_cast<uintptr_t>(pcpu__hot.offset) +                                   \
	    ((reinterpret_cast<uintptr_t>(h) >> (PCPU__COLOUR_BIT - 16)) &                    \
	     static_cast<uintptr_t>(0x10000)))
#endif
#else
#define PCPU__TAB(h) (pcpu__hot.offset)
#endif

/*
 * pcpu_nr_cpus - the number of possible CPUs; copies are numbered 0 .. pcpu_nr_cpus() - 1.
 * Initialises the library on first use. MT-safe, async-signal-safe after initialisation.
 */
PCPU_API unsigned pcpu_nr_cpus(void);

/* for (cpu = 0; cpu < pcpu_nr_cpus(); cpu++): visits every copy exactly once. */
#define pcpu_for_each_cpu(cpu) for ((cpu) = 0; (cpu) < pcpu_nr_cpus(); (cpu)++)

/*
 * pcpu_ptr - CPU @cpu's copy of the object behind handle @p (type-generic: a T __pcpu *
 * gives a T *). @cpu must be below pcpu_nr_cpus().
 */
#ifndef __cplusplus
#define pcpu_ptr(p, cpu)                                                                      \
	((__typeof__(p))((uintptr_t)(p) + PCPU__TAB(p)[(unsigned)(cpu)]))
#else
extern "C++" {
template <typename pcpu__T> static inline pcpu__T *pcpu__cxx_ptr(pcpu__T *p, unsigned cpu)
{
	return reinterpret_cast<pcpu__T *>(reinterpret_cast<uintptr_t>(p) + PCPU__TAB(p)[cpu]);
}
}
#define pcpu_ptr(p, cpu) pcpu__cxx_ptr((p), static_cast<unsigned>(cpu))
#endif

/*
 * pcpu_this_cpu - the index of the copy this thread would use now: the CPU it runs on (or,
 * with index=cid, its concurrency id). The thread may migrate right after; use the
 * pcpu_this_*() operations to update a copy. MT-safe, async-signal-safe.
 */
PCPU_API unsigned pcpu_this_cpu(void);

/* pcpu_this_ptr - pcpu_ptr(p, pcpu_this_cpu()); the thread may migrate right after. */
#define pcpu_this_ptr(p) pcpu_ptr((p), pcpu_this_cpu())

/* Which mechanism the this-CPU operations use (see pcpu_cpu_mode()). */
enum pcpu_cpu_mode {
	PCPU_MODE_RSEQ_GLIBC = 1, /* restartable sequences, on glibc's registration */
	PCPU_MODE_RSEQ_OWN = 2,   /* restartable sequences, registered by libpcpu per thread */
	PCPU_MODE_GETCPU = 3,     /* no rseq: atomic update of the copy getcpu() names */
};

/*
 * pcpu_cpu_mode - the mode the this-CPU operations use, fixed for the life of the process:
 * glibc's rseq registration if it has one; else libpcpu's own per-thread registration; else
 * (no rseq, PCPU_CONF cpu_mode=getcpu, or a fake topology with fewer CPUs than the machine)
 * atomic updates of the copy getcpu() names. Initialises the library on first use; if that
 * fails, returns PCPU_MODE_GETCPU. MT-safe; async-signal-safe once initialised.
 */
PCPU_API enum pcpu_cpu_mode pcpu_cpu_mode(void);

/* Index modes: which id picks the copy a this-CPU operation updates. */
enum pcpu_index_mode {
	PCPU_INDEX_CPU = 1, /* CPU number, as in the kernel (default) */
	PCPU_INDEX_CID = 2, /* rseq mm_cid: ids packed near 0, one per running thread */
};

/* ---------------------------------------------------------------------------------------- */
/* This-CPU operations (the hot path): see <pcpu/this_cpu.h>                                 */
/* ---------------------------------------------------------------------------------------- */

#include <pcpu/this_cpu.h>

/* ---------------------------------------------------------------------------------------- */
/* Counters (the kernel's percpu_counter)                                                    */
/* ---------------------------------------------------------------------------------------- */

/*
 * struct pcpu_counter - a 64-bit count spread over per-CPU 32-bit deltas. Embeddable; its
 * fields are internal. A CPU's delta is folded into @count once it reaches the batch.
 */
struct pcpu_counter {
	int64_t count;             /* folded part; read racily by pcpu_counter_read() */
	int32_t __pcpu *counters;  /* per-CPU deltas, each within (-batch, batch) */
	pthread_mutex_t lock;      /* serialises folding, sum and set */
};

/*
 * pcpu_counter_init - set up @c with value @initial (kernel: percpu_counter_init()).
 * Allocates one int32_t delta per possible CPU.
 * Return: 0, or -1 with errno ENOMEM (nothing allocated) or EINVAL (@c is NULL).
 * MT-safe for distinct counters; not async-signal-safe (allocates).
 */
PCPU_API int pcpu_counter_init(struct pcpu_counter *c, int64_t initial);
/*
 * pcpu_counter_destroy - free @c's per-CPU deltas; @c may be initialised again. NULL, or a
 * counter already destroyed: no-op. No other thread may use @c meanwhile.
 */
PCPU_API void pcpu_counter_destroy(struct pcpu_counter *c);
/*
 * pcpu_counter_add_batch - add @v (kernel: percpu_counter_add_batch()). This CPU's delta
 * absorbs it while |delta + @v| < @batch (no lock, no atomic instruction); otherwise the
 * delta and @v move into the count under the lock. @batch <= 0 always folds.
 * MT-safe; not async-signal-safe (folding takes a mutex). Inline (a macro) in this header;
 * the exported function, reached as (pcpu_counter_add_batch)(...), does the same.
 */
PCPU_API void pcpu_counter_add_batch(struct pcpu_counter *c, int64_t v, int32_t batch);
/* pcpu_counter_add - pcpu_counter_add_batch() with the default batch. Same safety. */
PCPU_API void pcpu_counter_add(struct pcpu_counter *c, int64_t v);
/*
 * pcpu_counter_read - the folded count alone: one load, off by at most batch * nr_cpus
 * (with the default batch). MT-safe, async-signal-safe.
 */
PCPU_API int64_t pcpu_counter_read(const struct pcpu_counter *c);
/*
 * pcpu_counter_sum - the count plus every possible CPU's delta, under the lock. Exact when
 * no add runs concurrently. MT-safe; not async-signal-safe.
 */
PCPU_API int64_t pcpu_counter_sum(struct pcpu_counter *c);
/*
 * pcpu_counter_compare - -1, 0 or 1 as the counter is below, equal to or above @rhs
 * (kernel: __percpu_counter_compare()): read() decides when it is farther from @rhs than
 * batch * nr_cpus, else sum() does. MT-safe; not async-signal-safe.
 */
PCPU_API int pcpu_counter_compare(struct pcpu_counter *c, int64_t rhs);
/*
 * pcpu_counter_set - set the value to @v: zero every delta, then the count, under the lock.
 * Not atomic against concurrent adds, as in Linux. MT-safe; not async-signal-safe.
 */
PCPU_API void pcpu_counter_set(struct pcpu_counter *c, int64_t v);
/* pcpu_counter_batch - the default batch, max(32, 2 * pcpu_nr_cpus()). MT-safe. */
PCPU_API int32_t pcpu_counter_batch(void);

/*
 * The hot path of pcpu_counter_add() and pcpu_counter_add_batch(), inline (the exported
 * functions remain, for function pointers and other languages). Like the kernel's
 * percpu_counter_add_batch(): this CPU's delta absorbs @v while it stays within
 * (-@batch, @batch), as one restartable sequence with no atomic instruction; otherwise
 * pcpu__counter_fold() moves the delta and @v into the count under the lock.
 * Not async-signal-safe: folding takes a mutex.
 */
extern PCPU_API int32_t pcpu__counter_batch; /* the default batch, set by pcpu_counter_init() */
PCPU_API void pcpu__counter_fold(struct pcpu_counter *c, int64_t v);

static inline void pcpu__counter_add_batch(struct pcpu_counter *c, int64_t v, int32_t batch)
{
	/* The sequence adds in 64 bits and compares against 2 * batch - 1: keep both sane. */
	if (batch > 0 && v >= INT32_MIN && v <= INT32_MAX &&
	    pcpu__add_bounded(c->counters, v, batch) == 0)
		return;
	pcpu__counter_fold(c, v);
}

#define pcpu_counter_add_batch(c, v, batch) pcpu__counter_add_batch((c), (v), (batch))
#define pcpu_counter_add(c, v)                                                                \
	pcpu__counter_add_batch((c), (v), __atomic_load_n(&pcpu__counter_batch, __ATOMIC_RELAXED))

/* ---------------------------------------------------------------------------------------- */
/* Reading at scale: see <pcpu/sum.h> and <pcpu/counter_tree.h>                             */
/* ---------------------------------------------------------------------------------------- */

#include <pcpu/sum.h>
#include <pcpu/counter_tree.h>

/* ---------------------------------------------------------------------------------------- */
/* Static per-CPU variables                                                                  */
/* ---------------------------------------------------------------------------------------- */

/* Internal: one PCPU_DEFINE'd variable (or one object's <pcpu/kernel.h> section). */
struct pcpu__static_desc {
	void **handle;        /* where the handle is stored: the variable itself */
	size_t size;
	size_t align;
	const void *init;     /* initial value of every copy */
	const char *name;
	void *priv;           /* library-private: where the storage came from */
};

/*
 * pcpu__static_register - internal to PCPU_DEFINE (called from its constructor): give @d
 * storage, write @d->init into every CPU's copy, store the handle in *@d->handle.
 * Initialises the library first if needed. A second call for the same @d does nothing.
 * Never fails: without any per-CPU memory left it prints a line naming the variable and
 * aborts, as a constructor has no way to report an error.
 * MT-safe (dlopen() in several threads).
 */
PCPU_API void pcpu__static_register(struct pcpu__static_desc *d);
/*
 * pcpu__static_unregister - internal to PCPU_DEFINE (called from its destructor): a
 * shared object's variable is freed and its handle set to NULL; a main program's variable
 * stays valid (its destructor runs at exit, and later code may still use it). Clears the
 * calling thread's rseq critical-section pointer first, which may point into the object
 * being unloaded. A second call does nothing. MT-safe.
 */
PCPU_API void pcpu__static_unregister(struct pcpu__static_desc *d);

#define PCPU__CAT2(a, b) a##b
#define PCPU__CAT(a, b) PCPU__CAT2(a, b)

/*
 * PCPU_DEFINE(type, name[, init]) - at file scope: a per-CPU variable; @name is a
 * `type __pcpu *` handle usable with every operation above (pcpu_this_inc(name),
 * *pcpu_ptr(name, cpu)). Every copy starts at @init (zero when omitted; may be a braced
 * initialiser). @type's alignment must not exceed the page size.
 *
 * A constructor sets the handle up before main() runs (or during dlopen()), initialising
 * the library if needed: a program with PCPU_DEFINE variables is configured by PCPU_CONF,
 * and a later pcpu_init() fails with EBUSY. The storage comes from the first chunk:
 * the main program's variables (also when it links libpcpu.a) from its static region
 * (PCPU_CONF static_size=, default 16 KiB), a shared object's from its reserved region
 * (reserved_size=, default 8 KiB as the kernel's PERCPU_MODULE_RESERVE), given back when
 * the object is unloaded. When a region is full the program falls back to the reserved
 * region, then to a dynamic allocation; a shared object to a dynamic allocation. A nonzero
 * @init is written into every possible CPU's copy, which costs a page per CPU; a zero one
 * costs nothing until written. pcpu_free() of the handle aborts like any bad free.
 */
#define PCPU_DEFINE(...)                                                                      \
	PCPU__DEFINE_PICK(__VA_ARGS__, PCPU__DEFINE_INIT, PCPU__DEFINE_INIT,                  \
			  PCPU__DEFINE_INIT, PCPU__DEFINE_INIT, PCPU__DEFINE_INIT,            \
			  PCPU__DEFINE_INIT, PCPU__DEFINE_INIT, PCPU__DEFINE_INIT,            \
			  PCPU__DEFINE_INIT, PCPU__DEFINE_INIT, PCPU__DEFINE_INIT,            \
			  PCPU__DEFINE_INIT, PCPU__DEFINE_INIT, PCPU__DEFINE_INIT,            \
			  PCPU__DEFINE_INIT, PCPU__DEFINE_INIT, PCPU__DEFINE_INIT,            \
			  PCPU__DEFINE_INIT, PCPU__DEFINE_INIT, PCPU__DEFINE_INIT,            \
			  PCPU__DEFINE_INIT, PCPU__DEFINE_INIT, PCPU__DEFINE_INIT,            \
			  PCPU__DEFINE_INIT, PCPU__DEFINE_INIT, PCPU__DEFINE_INIT,            \
			  PCPU__DEFINE_INIT, PCPU__DEFINE_INIT, PCPU__DEFINE_INIT,            \
			  PCPU__DEFINE_INIT, PCPU__DEFINE_INIT, PCPU__DEFINE_INIT,            \
			  PCPU__DEFINE_INIT, PCPU__DEFINE_INIT, PCPU__DEFINE_INIT,            \
			  PCPU__DEFINE_INIT, PCPU__DEFINE_INIT, PCPU__DEFINE_INIT,            \
			  PCPU__DEFINE_INIT, PCPU__DEFINE_INIT, PCPU__DEFINE_INIT,            \
			  PCPU__DEFINE_INIT, PCPU__DEFINE_INIT, PCPU__DEFINE_INIT,            \
			  PCPU__DEFINE_INIT, PCPU__DEFINE_INIT, PCPU__DEFINE_INIT,            \
			  PCPU__DEFINE_INIT, PCPU__DEFINE_INIT, PCPU__DEFINE_INIT,            \
			  PCPU__DEFINE_INIT, PCPU__DEFINE_INIT, PCPU__DEFINE_INIT,            \
			  PCPU__DEFINE_INIT, PCPU__DEFINE_INIT, PCPU__DEFINE_INIT,            \
			  PCPU__DEFINE_INIT, PCPU__DEFINE_INIT, PCPU__DEFINE_INIT,            \
			  PCPU__DEFINE_INIT, PCPU__DEFINE_INIT, PCPU__DEFINE_INIT,            \
			  PCPU__DEFINE_ZERO, PCPU__DEFINE_BAD, 0)(__VA_ARGS__)

/*
 * Internal to PCPU_DEFINE. Whether an initialiser was given is told by counting the
 * arguments (the 65th of type, name, the initialiser's pieces and the list above picks the
 * macro), not with __VA_OPT__ or an empty __VA_ARGS__, which strict C11 and C++ before
 * C++20 reject under -pedantic. A braced initialiser is one argument per top-level comma,
 * so it may have up to 62 of them.
 */
#define PCPU__DEFINE_PICK(a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14,        \
			  a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, a25, a26,         \
			  a27, a28, a29, a30, a31, a32, a33, a34, a35, a36, a37, a38,         \
			  a39, a40, a41, a42, a43, a44, a45, a46, a47, a48, a49, a50,         \
			  a51, a52, a53, a54, a55, a56, a57, a58, a59, a60, a61, a62,         \
			  a63, a64, which, ...)                                               \
	which
#define PCPU__DEFINE_BAD(...)                                                                 \
	PCPU__STATIC_ASSERT(0, "PCPU_DEFINE(type, name[, init]): a type and a name are needed")
#ifdef __cplusplus
/* A const object needs an initialiser in C++: {} is zero, as C's static default. */
#define PCPU__DEFINE_ZERO(type, name)                                                         \
	PCPU__DEFINE_HEAD(type, name) = {};                                                   \
	PCPU__DEFINE_TAIL(type, name)
#else
#define PCPU__DEFINE_ZERO(type, name)                                                         \
	PCPU__DEFINE_HEAD(type, name);                                                        \
	PCPU__DEFINE_TAIL(type, name)
#endif
#define PCPU__DEFINE_INIT(type, name, ...)                                                    \
	PCPU__DEFINE_HEAD(type, name) = __VA_ARGS__;                                          \
	PCPU__DEFINE_TAIL(type, name)
#define PCPU__DEFINE_HEAD(type, name)                                                         \
	type __pcpu *name;                                                                    \
	static const type PCPU__CAT(pcpu__init_, name)
/* C++: the library copies @init into every CPU's copy with memcpy. */
#ifdef __cplusplus
#define PCPU__DEFINE_COPYABLE(type)                                                           \
	static_assert(__is_trivially_copyable(type),                                          \
		      "PCPU_DEFINE: the type must be trivially copyable (copies are memcpy'd)");
#else
#define PCPU__DEFINE_COPYABLE(type)
#endif
#define PCPU__DEFINE_TAIL(type, name)                                                         \
	PCPU__DEFINE_COPYABLE(type)                                                           \
	static struct pcpu__static_desc PCPU__CAT(pcpu__desc_, name) = {                      \
		(void **)&name, sizeof(type), PCPU__ALIGNOF(type),                            \
		&PCPU__CAT(pcpu__init_, name), #name, 0};                                     \
	__attribute__((constructor(101))) static void PCPU__CAT(pcpu__ctor_, name)(void)     \
	{                                                                                     \
		pcpu__static_register(&PCPU__CAT(pcpu__desc_, name));                          \
	}                                                                                     \
	__attribute__((destructor(101))) static void PCPU__CAT(pcpu__dtor_, name)(void)      \
	{                                                                                     \
		pcpu__static_unregister(&PCPU__CAT(pcpu__desc_, name));                        \
	}                                                                                     \
	extern type __pcpu *name

/* PCPU_DECLARE(type, name) - in a header, for a PCPU_DEFINE elsewhere. */
#define PCPU_DECLARE(type, name) extern type __pcpu *name

/* ---------------------------------------------------------------------------------------- */
/* Accounting domains (the kernel's memcg-aware allocations)                                 */
/* ---------------------------------------------------------------------------------------- */

struct pcpu_domain;

/*
 * pcpu_domain_create - a domain named @name (copied) that PCPU_ACCOUNT allocations charge.
 * @limit_bytes: the most it may be charged; 0 means no limit.
 * Return: the domain, or NULL with errno EINVAL (@name NULL) or ENOMEM.
 */
PCPU_API struct pcpu_domain *pcpu_domain_create(const char *name, size_t limit_bytes);
/* pcpu_domain_destroy - live allocations stay valid; their charge moves to the root. */
PCPU_API void pcpu_domain_destroy(struct pcpu_domain *d);
/* pcpu_domain_set_current - the calling thread's domain (NULL: the root). Returns the old. */
PCPU_API struct pcpu_domain *pcpu_domain_set_current(struct pcpu_domain *d);
/* pcpu_domain_usage - bytes charged to @d now (NULL: the root). */
PCPU_API size_t pcpu_domain_usage(const struct pcpu_domain *d);

/* ---------------------------------------------------------------------------------------- */
/* Control, statistics, debugging                                                            */
/* ---------------------------------------------------------------------------------------- */

/*
 * struct pcpu_config - settings for pcpu_init(). Set @size to sizeof(struct pcpu_config) so
 * the struct can grow without breaking callers; a field left 0 keeps its default (or the
 * value PCPU_CONF gave). Same keys as PCPU_CONF (see libpcpu(7)).
 */
struct pcpu_config {
	size_t size;             /* sizeof(struct pcpu_config) */
	size_t unit_size;        /* bytes per unit of a dynamic chunk: power of two, 64 KiB..64 MiB
				  * (default: 256 KiB, less from 2048 CPUs; see libpcpu(7)) */
	size_t static_size;      /* bytes of the first chunk's static region */
	size_t reserved_size;    /* bytes of the first chunk's reserved region */
	int balance;             /* 1: background balancer thread; -1: synchronous (off) */
	unsigned empty_pages_low;  /* balancer wakes below this many empty populated pages */
	unsigned empty_pages_high; /* and populates up to this many */
	int cpu_mode;            /* 0: auto, or the enum pcpu_cpu_mode preferred: getcpu is always
				  * honoured; glibc's rseq registration, where there is one,
				  * wins over own (see libpcpu(7)) */
	int index_mode;          /* 0: default (cpu), or an enum pcpu_index_mode */
	int debug;               /* 1: verify invariants after every change (slow) */
	const char *topology;    /* fake topology "CPUSxNODES" or a CPU list, for tests */
};

/*
 * pcpu_init - initialise with @cfg (NULL: defaults and PCPU_CONF). Optional: the library
 * initialises itself on first use. Fields of @cfg override PCPU_CONF.
 * Return: 0; -1 with errno EBUSY when already initialised, EINVAL for a bad @cfg, ENOMEM.
 */
PCPU_API int pcpu_init(const struct pcpu_config *cfg);

/* struct pcpu_stats - global statistics (the kernel's percpu_stats "Global Stats" and more). */
struct pcpu_stats {
	size_t size;             /* set to sizeof(struct pcpu_stats) before the call */
	/* allocation info */
	size_t unit_size, static_size, reserved_size, dyn_size, page_size;
	unsigned nr_cpus, nr_nodes, nr_groups;
	/* global counters */
	uint64_t nr_alloc, nr_dealloc, nr_cur_alloc, nr_max_alloc;
	uint64_t nr_chunks, nr_max_chunks;
	size_t min_alloc_size, max_alloc_size;
	uint64_t empty_pop_pages;
	uint64_t populated_pages;      /* page indexes populated, summed over chunks */
	uint64_t resident_bytes;       /* bytes of chunk memory resident now (all units); see
					* resident_exact */
	uint64_t bind_failures;        /* mbind calls skipped or failed */
	uint64_t balance_runs, pages_populated, pages_depopulated;
	uint64_t nowait_failures;
	int cpu_mode;                  /* enum pcpu_cpu_mode */
	int index_mode;                /* enum pcpu_index_mode in use */
	int numa_available;            /* 0: no NUMA binding done */
	/* Appended fields: a caller built against an older header gets the prefix it knows. */
	uint64_t free_bytes;           /* free bytes of one unit, summed over every chunk */
	uint64_t nr_accounted_chunks;  /* chunks of the accounted set (PCPU_ACCOUNT) */
	uint64_t nr_accounted_alloc;   /* live allocations in accounted chunks */
	uint64_t zeroed_bytes;         /* bytes zeroed when reused areas were handed out */
	int index_fallback;            /* 1: index=cid was asked for but cpu is in use (why:
					* pcpu_stats_print()) */
	int resident_exact;            /* 1: resident_bytes leaves out pages that map the shared
					* zero page (PAGEMAP_SCAN, Linux 6.7+, or a privileged
					* /proc/self/pagemap); 0: counted by mincore, which calls
					* such pages resident */
};

/*
 * pcpu_stats_get - fill @st with a consistent snapshot (the counters are read under the
 * allocator's short lock; resident_bytes is then measured with the chunks held still). Set
 * st->size to sizeof(struct pcpu_stats) first: fields beyond it are not written, and
 * st->size is set to the bytes filled in.
 * Return: 0, or -1 with errno EINVAL (@st NULL or st->size 0) or ENOMEM (the library could
 * not initialise). MT-safe; not async-signal-safe. Blocking allocations wait for it.
 */
PCPU_API int pcpu_stats_get(struct pcpu_stats *st);
/*
 * pcpu_stats_print - print the statistics as text to @f (NULL: stderr), laid out like the
 * kernel's debugfs percpu_stats: allocation info, global counters, one block per chunk
 * (free bytes, contig and scan hints, first free, fragmentation sum/max, min/median/max
 * allocation, populated pages), then what the kernel cannot show: chunk sets, accounting
 * domains, CPU and index modes, NUMA binding, the balancer, and resident memory per unit
 * (summarised when there are many units). PCPU_STATS=1 prints this at exit (PCPU_STATS=json:
 * pcpu_stats_print_json()). MT-safe; not async-signal-safe.
 */
PCPU_API void pcpu_stats_print(FILE *f);
/*
 * pcpu_stats_print_json - the same content as pcpu_stats_print() as one JSON object
 * (followed by a newline) to @f (NULL: stdout), for programs. Keys are the field names of
 * struct pcpu_stats and of the kernel's percpu_stats; sizes are in bytes; new keys may be
 * added, existing ones keep their meaning. MT-safe; not async-signal-safe.
 */
PCPU_API void pcpu_stats_print_json(FILE *f);
/* pcpu_trim - give free populated pages back to the system now. Return: bytes given back. */
PCPU_API size_t pcpu_trim(void);
/* pcpu_verify - check every invariant of every chunk. Return: 0, or -1 (the first broken
 * invariant is printed to stderr). */
PCPU_API int pcpu_verify(void);
/*
 * pcpu_leaks_print - every live allocation with its size and caller, grouped by call site,
 * the site holding the most bytes first (like kmemleak's report), to @f (NULL: stderr).
 * Callers are known for allocations made after pcpu_leaks_enable() (or with PCPU_LEAKS=1,
 * which also prints this at exit); earlier ones are listed as from an unknown caller.
 * PCPU_DEFINE variables are not listed. MT-safe; not async-signal-safe.
 */
PCPU_API void pcpu_leaks_print(FILE *f);
/*
 * pcpu_leaks_enable - record the caller of every allocation from now on, for
 * pcpu_leaks_print(). Costs one store per allocation and, per chunk, a side table of one
 * pointer per 4-byte granule (calloc'd on first use; only the pages where allocations start
 * are touched). Cannot be turned off. Until it is called an allocation pays one load and
 * branch. MT-safe.
 */
PCPU_API void pcpu_leaks_enable(void);

#ifdef __cplusplus
}
#endif

#endif /* PCPU_H */
