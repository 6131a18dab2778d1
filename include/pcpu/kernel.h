/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * pcpu/kernel.h - the Linux kernel's per-CPU API (include/linux/percpu.h, percpu-defs.h,
 * percpu_counter.h) on top of libpcpu, so that kernel code using per-CPU data builds and
 * runs in user space unchanged:
 *
 *   alloc_percpu(type), alloc_percpu_gfp(type, gfp), __alloc_percpu(size, align),
 *   __alloc_percpu_gfp(size, align, gfp), free_percpu(p)
 *   per_cpu_ptr(p, cpu), per_cpu(var, cpu), this_cpu_ptr(p), raw_cpu_ptr(p),
 *   get_cpu_ptr(p) / put_cpu_ptr(p), get_cpu_var(var) / put_cpu_var(var)
 *   this_cpu_{read,write,add,sub,inc,dec,xchg,cmpxchg,try_cmpxchg,and,or}(pcp, ...),
 *   this_cpu_{add,sub,inc,dec}_return(pcp, ...), and the same as __this_cpu_* and raw_cpu_*
 *   for_each_possible_cpu(cpu), for_each_online_cpu(cpu), num_possible_cpus(),
 *   num_online_cpus(), nr_cpu_ids, smp_processor_id(), get_cpu() / put_cpu()
 *   DEFINE_PER_CPU(type, name) [= init], DECLARE_PER_CPU(type, name), and the _ALIGNED,
 *   _SHARED_ALIGNED and _READ_MOSTLY variants
 *   struct percpu_counter and percpu_counter_{init,destroy,add,add_batch,sub,inc,dec,read,
 *   read_positive,sum,sum_positive,compare,set,initialized}, __percpu_counter_compare()
 *   struct percpu_counter_tree and percpu_counter_tree_{init,destroy,add,approximate_sum,
 *   precise_sum,inaccuracy,approximate_compare_value,precise_compare_value} (the
 *   hierarchical counters RFC)
 *   gfp_t with GFP_KERNEL, GFP_NOWAIT, GFP_ATOMIC, GFP_NOFS, GFP_NOIO, GFP_KERNEL_ACCOUNT,
 *   __GFP_ACCOUNT, __GFP_NOWARN, __GFP_ZERO; and s8 .. u64.
 *
 * Semantics are the kernel's, with these deviations (all forced by user space):
 *
 * - this_cpu_*() ops take an lvalue, as in the kernel: a DEFINE_PER_CPU variable, or
 *   ptr->field / *ptr for a pointer from alloc_percpu(). Each one is indivisible on the
 *   copy of the CPU the thread runs on (a restartable sequence, see <pcpu.h>). User space
 *   cannot disable preemption, so __this_cpu_*() and raw_cpu_*() are the same safe
 *   operations, preempt_disable() / preempt_enable() only stop the compiler, and a thread
 *   may migrate between two operations: pin it (sched_setaffinity) where a sequence must
 *   stay on one CPU.
 * - DEFINE_PER_CPU(type, name) defines a real variable @name of @type, as in the kernel,
 *   in the section "pcpu_kvars" (the kernel's .data..percpu). Like the kernel's section it
 *   is only a template: a constructor registers each object's section with libpcpu before
 *   main() (or at dlopen()), which copies the template into every CPU's unit, and the
 *   accessors translate &name into the copies. Use @name only through the accessors; a
 *   plain read or write of @name touches the template, not any CPU's copy.
 *   per_cpu_ptr(), this_cpu_ptr() and the this_cpu ops accept both kinds of pointer:
 *   an address inside the calling object's section is translated (one compare), anything
 *   else is taken as a handle. A DEFINE_PER_CPU variable must therefore be reached from
 *   the object (program or shared object) that defines it, or through a pointer that
 *   object produced with per_cpu_ptr(&name, cpu) or this_cpu_ptr(&name).
 * - The copies exist for every possible CPU (pcpu_nr_cpus()); there is no CPU hotplug,
 *   so "online" means "possible".
 * - gfp flags: only "may block" (GFP_KERNEL vs GFP_NOWAIT / GFP_ATOMIC, which map to
 *   PCPU_NOWAIT) and __GFP_ACCOUNT (PCPU_ACCOUNT) have an effect. Memory is always zeroed.
 *   percpu_counter_init() ignores its gfp argument.
 * - free_percpu() of something that is not a live allocation aborts (see pcpu_free()).
 * - Errors are negative errno values where the kernel returns them (percpu_counter_init).
 *
 * MT-safety: as the underlying <pcpu.h> functions. Define PCPU_KERNEL_NO_TYPES before
 * including this header when the program has its own s8 .. u64 and gfp_t.
 */
#ifndef PCPU_KERNEL_H
#define PCPU_KERNEL_H

/*
 * C only (GNU C11): kernel code is C, and the macros below rely on GNU C (statement
 * expressions, typeof of lvalues, the section trick of DEFINE_PER_CPU). C++ programs use
 * <pcpu.h>, whose operations work in C++.
 */
#ifdef __cplusplus
#error "<pcpu/kernel.h> is C only; from C++ include <pcpu.h> (pcpu_this_*, PCPU_DEFINE)"
#endif

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include <pcpu.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef __percpu
#define __percpu __pcpu
#endif

#ifndef PCPU_KERNEL_NO_TYPES
typedef int8_t s8;
typedef uint8_t u8;
typedef int16_t s16;
typedef uint16_t u16;
typedef int32_t s32;
typedef uint32_t u32;
typedef int64_t s64;
typedef uint64_t u64;
typedef unsigned int gfp_t;
#endif

/* ---------------------------------------------------------------------------------------- */
/* gfp flags: only blocking and accounting matter                                            */
/* ---------------------------------------------------------------------------------------- */

#define __GFP_HIGH 0x20u
#define __GFP_IO 0x40u
#define __GFP_FS 0x80u
#define __GFP_ZERO 0x100u
#define __GFP_DIRECT_RECLAIM 0x400u
#define __GFP_KSWAPD_RECLAIM 0x800u
#define __GFP_NOWARN 0x2000u
#define __GFP_NOFAIL 0x8000u
#define __GFP_NORETRY 0x10000u
#define __GFP_ACCOUNT 0x400000u
#define __GFP_RECLAIM (__GFP_DIRECT_RECLAIM | __GFP_KSWAPD_RECLAIM)

#define GFP_ATOMIC (__GFP_HIGH | __GFP_KSWAPD_RECLAIM)
#define GFP_NOWAIT (__GFP_KSWAPD_RECLAIM | __GFP_NOWARN)
#define GFP_KERNEL (__GFP_RECLAIM | __GFP_IO | __GFP_FS)
#define GFP_KERNEL_ACCOUNT (GFP_KERNEL | __GFP_ACCOUNT)
#define GFP_NOFS (__GFP_RECLAIM | __GFP_IO)
#define GFP_NOIO (__GFP_RECLAIM)

/* gfpflags_allow_blocking() decides atomic vs not, as in pcpu_alloc(). */
static inline unsigned pcpu__gfp_flags(gfp_t gfp)
{
	return ((gfp & __GFP_DIRECT_RECLAIM) ? 0u : PCPU_NOWAIT) |
	       ((gfp & __GFP_ACCOUNT) ? PCPU_ACCOUNT : 0u);
}

/* ---------------------------------------------------------------------------------------- */
/* Allocation                                                                                */
/* ---------------------------------------------------------------------------------------- */

/*
 * __alloc_percpu_gfp - @size zeroed bytes per possible CPU, aligned to @align (a power of
 * two up to the page size). Return: the per-CPU pointer, or NULL (errno EINVAL or ENOMEM).
 */
#define __alloc_percpu_gfp(size, align, gfp) pcpu_alloc((size), (align), pcpu__gfp_flags(gfp))
#define __alloc_percpu(size, align) __alloc_percpu_gfp((size), (align), GFP_KERNEL)
/* alloc_percpu_gfp / alloc_percpu - one zeroed @type per possible CPU, or NULL. */
#define alloc_percpu_gfp(type, gfp)                                                           \
	((__typeof__(type) __percpu *)__alloc_percpu_gfp(sizeof(type), __alignof__(type), (gfp)))
#define alloc_percpu(type) alloc_percpu_gfp(type, GFP_KERNEL)
/* free_percpu - free a pointer from alloc_percpu(); NULL does nothing. */
#define free_percpu(p) pcpu_free(p)

/* ---------------------------------------------------------------------------------------- */
/* DEFINE_PER_CPU: a section template per object, registered by a constructor                */
/* ---------------------------------------------------------------------------------------- */

/*
 * The linker defines __start_/__stop_ for a section whose name is a C identifier, one pair
 * per object (executable or shared object); hidden, so that each object sees its own.
 * Weak: they are 0 in an object that defines no per-CPU variable.
 */
extern char __start_pcpu_kvars[] __attribute__((weak, visibility("hidden")));
extern char __stop_pcpu_kvars[] __attribute__((weak, visibility("hidden")));
/* One per object (weak + hidden merge them within it): the handle of the section's copy. */
__attribute__((weak, visibility("hidden"))) void __percpu *pcpu__kvars_base;
__attribute__((weak, visibility("hidden"))) struct pcpu__static_desc pcpu__kvars_desc;

#define PCPU__KSECTION __attribute__((section("pcpu_kvars")))

/* DEFINE_PER_CPU(type, name) - a per-CPU variable; may be followed by "= initial value". */
#define DEFINE_PER_CPU(type, name) PCPU__KSECTION __typeof__(type) name
/* DECLARE_PER_CPU(type, name) - in a header, for a DEFINE_PER_CPU elsewhere. */
#define DECLARE_PER_CPU(type, name) extern PCPU__KSECTION __typeof__(type) name
#define DEFINE_PER_CPU_ALIGNED(type, name)                                                    \
	PCPU__KSECTION __typeof__(type) name __attribute__((aligned(64)))
#define DECLARE_PER_CPU_ALIGNED(type, name) DECLARE_PER_CPU(type, name)
#define DEFINE_PER_CPU_SHARED_ALIGNED(type, name) DEFINE_PER_CPU_ALIGNED(type, name)
#define DECLARE_PER_CPU_SHARED_ALIGNED(type, name) DECLARE_PER_CPU(type, name)
#define DEFINE_PER_CPU_READ_MOSTLY(type, name) DEFINE_PER_CPU(type, name)
#define DECLARE_PER_CPU_READ_MOSTLY(type, name) DECLARE_PER_CPU(type, name)

/*
 * Register this object's section (every file including this header emits the same
 * constructor; pcpu__static_register() ignores all but the first). The storage must keep
 * each variable's alignment: it is aligned like the section's start address (at most a
 * page), which is a multiple of every alignment inside.
 */
__attribute__((constructor(101), unused)) static void pcpu__kvars_register(void)
{
	uintptr_t start = (uintptr_t)__start_pcpu_kvars, align;

	if ((uintptr_t)__stop_pcpu_kvars == start)
		return;
	align = start & -start;
	if (align > 4096)
		align = 4096;
	pcpu__kvars_desc.handle = (void **)&pcpu__kvars_base;
	pcpu__kvars_desc.size = (uintptr_t)__stop_pcpu_kvars - start;
	pcpu__kvars_desc.align = align;
	pcpu__kvars_desc.init = __start_pcpu_kvars;
	pcpu__kvars_desc.name = "DEFINE_PER_CPU section";
	pcpu__static_register(&pcpu__kvars_desc);
}

__attribute__((destructor(101), unused)) static void pcpu__kvars_unregister(void)
{
	if (pcpu__kvars_desc.handle)
		pcpu__static_unregister(&pcpu__kvars_desc);
}

/* A handle for @p: the address of a DEFINE_PER_CPU variable of this object is translated. */
static inline void __percpu *pcpu__kvar(const void *p)
{
	uintptr_t off = (uintptr_t)p - (uintptr_t)__start_pcpu_kvars;

	if (off < (uintptr_t)__stop_pcpu_kvars - (uintptr_t)__start_pcpu_kvars)
		return (char __percpu *)pcpu__kvars_base + off;
	return (void __percpu *)p;
}
#define PCPU__KPTR(p) ((__typeof__(p))pcpu__kvar(p))

/* ---------------------------------------------------------------------------------------- */
/* Reaching the copies                                                                       */
/* ---------------------------------------------------------------------------------------- */

#define per_cpu_ptr(ptr, cpu) pcpu_ptr(PCPU__KPTR(ptr), (cpu))
#define per_cpu(var, cpu) (*per_cpu_ptr(&(var), (cpu)))
#define this_cpu_ptr(ptr) pcpu_this_ptr(PCPU__KPTR(ptr))
#define raw_cpu_ptr(ptr) this_cpu_ptr(ptr)
#define get_cpu_ptr(ptr) this_cpu_ptr(ptr)
#define put_cpu_ptr(ptr) ((void)(ptr))
#define get_cpu_var(var) (*this_cpu_ptr(&(var)))
#define put_cpu_var(var) ((void)&(var))

#define nr_cpu_ids ((unsigned int)pcpu_nr_cpus())
#define num_possible_cpus() ((unsigned int)pcpu_nr_cpus())
#define num_online_cpus() num_possible_cpus()
#define for_each_possible_cpu(cpu)                                                            \
	for ((cpu) = 0; (cpu) < (__typeof__(cpu))pcpu_nr_cpus(); (cpu)++)
#define for_each_online_cpu(cpu) for_each_possible_cpu(cpu)
#define smp_processor_id() ((int)pcpu_this_cpu())
#define raw_smp_processor_id() smp_processor_id()
#define get_cpu() smp_processor_id()
#define put_cpu() ((void)0)
/* User space cannot disable preemption: these only keep the compiler from reordering. */
#define preempt_disable() __asm__ __volatile__("" ::: "memory")
#define preempt_enable() __asm__ __volatile__("" ::: "memory")

/* ---------------------------------------------------------------------------------------- */
/* this_cpu operations: @pcp is an lvalue (a DEFINE_PER_CPU variable, ptr->field, *ptr)      */
/* ---------------------------------------------------------------------------------------- */

#define this_cpu_read(pcp) pcpu_this_read(PCPU__KPTR(&(pcp)))
#define this_cpu_write(pcp, val) pcpu_this_write(PCPU__KPTR(&(pcp)), (val))
#define this_cpu_add(pcp, val) pcpu_this_add(PCPU__KPTR(&(pcp)), (val))
/* As in the kernel: subtracting adds the negation in the type of @pcp. */
#define this_cpu_sub(pcp, val) this_cpu_add(pcp, -(__typeof__(pcp))(val))
#define this_cpu_inc(pcp) this_cpu_add(pcp, 1)
#define this_cpu_dec(pcp) this_cpu_sub(pcp, 1)
#define this_cpu_xchg(pcp, nval) pcpu_this_xchg(PCPU__KPTR(&(pcp)), (nval))
#define this_cpu_cmpxchg(pcp, oval, nval) pcpu_this_cmpxchg(PCPU__KPTR(&(pcp)), (oval), (nval))
#define this_cpu_add_return(pcp, val) pcpu_this_add_return(PCPU__KPTR(&(pcp)), (val))
#define this_cpu_sub_return(pcp, val) this_cpu_add_return(pcp, -(__typeof__(pcp))(val))
#define this_cpu_inc_return(pcp) this_cpu_add_return(pcp, 1)
#define this_cpu_dec_return(pcp) this_cpu_sub_return(pcp, 1)

/*
 * this_cpu_try_cmpxchg - true and the store done if this CPU's copy held *@ovalp; else
 * false with the value seen in *@ovalp.
 */
#define this_cpu_try_cmpxchg(pcp, ovalp, nval)                                                \
	__extension__({                                                                       \
		__typeof__(pcp) *pcpu__op_ = (ovalp);                                         \
		__typeof__(pcp) pcpu__old_ = *pcpu__op_;                                      \
		__typeof__(pcp) pcpu__seen_ = this_cpu_cmpxchg(pcp, pcpu__old_, (nval));      \
		*pcpu__op_ = pcpu__seen_;                                                     \
		pcpu__seen_ == pcpu__old_;                                                    \
	})

/*
 * this_cpu_and / this_cpu_or - a compare-exchange loop. The read and the exchange may hit
 * different CPUs' copies if the thread migrates in between, but the exchange only succeeds
 * when the copy it hits held the value read, so the result is (that value op @val) either way.
 */
#define pcpu__kbitop(pcp, val, op)                                                            \
	__extension__({                                                                       \
		__typeof__(pcp) pcpu__o_ = this_cpu_read(pcp);                                \
		while (!this_cpu_try_cmpxchg(pcp, &pcpu__o_,                                  \
					     (__typeof__(pcp))(pcpu__o_ op (val))))           \
			;                                                                     \
		(void)0;                                                                      \
	})
#define this_cpu_and(pcp, val) pcpu__kbitop(pcp, val, &)
#define this_cpu_or(pcp, val) pcpu__kbitop(pcp, val, |)

/* __this_cpu_* and raw_cpu_*: the same operations (see the top of the file). */
#define __this_cpu_read(pcp) this_cpu_read(pcp)
#define __this_cpu_write(pcp, val) this_cpu_write(pcp, val)
#define __this_cpu_add(pcp, val) this_cpu_add(pcp, val)
#define __this_cpu_sub(pcp, val) this_cpu_sub(pcp, val)
#define __this_cpu_inc(pcp) this_cpu_inc(pcp)
#define __this_cpu_dec(pcp) this_cpu_dec(pcp)
#define __this_cpu_xchg(pcp, nval) this_cpu_xchg(pcp, nval)
#define __this_cpu_cmpxchg(pcp, oval, nval) this_cpu_cmpxchg(pcp, oval, nval)
#define __this_cpu_try_cmpxchg(pcp, ovalp, nval) this_cpu_try_cmpxchg(pcp, ovalp, nval)
#define __this_cpu_add_return(pcp, val) this_cpu_add_return(pcp, val)
#define __this_cpu_sub_return(pcp, val) this_cpu_sub_return(pcp, val)
#define __this_cpu_inc_return(pcp) this_cpu_inc_return(pcp)
#define __this_cpu_dec_return(pcp) this_cpu_dec_return(pcp)
#define __this_cpu_and(pcp, val) this_cpu_and(pcp, val)
#define __this_cpu_or(pcp, val) this_cpu_or(pcp, val)
#define raw_cpu_read(pcp) this_cpu_read(pcp)
#define raw_cpu_write(pcp, val) this_cpu_write(pcp, val)
#define raw_cpu_add(pcp, val) this_cpu_add(pcp, val)
#define raw_cpu_sub(pcp, val) this_cpu_sub(pcp, val)
#define raw_cpu_inc(pcp) this_cpu_inc(pcp)
#define raw_cpu_dec(pcp) this_cpu_dec(pcp)
#define raw_cpu_xchg(pcp, nval) this_cpu_xchg(pcp, nval)
#define raw_cpu_cmpxchg(pcp, oval, nval) this_cpu_cmpxchg(pcp, oval, nval)
#define raw_cpu_try_cmpxchg(pcp, ovalp, nval) this_cpu_try_cmpxchg(pcp, ovalp, nval)
#define raw_cpu_add_return(pcp, val) this_cpu_add_return(pcp, val)
#define raw_cpu_sub_return(pcp, val) this_cpu_sub_return(pcp, val)
#define raw_cpu_inc_return(pcp) this_cpu_inc_return(pcp)
#define raw_cpu_dec_return(pcp) this_cpu_dec_return(pcp)
#define raw_cpu_and(pcp, val) this_cpu_and(pcp, val)
#define raw_cpu_or(pcp, val) this_cpu_or(pcp, val)

/* ---------------------------------------------------------------------------------------- */
/* percpu_counter                                                                            */
/* ---------------------------------------------------------------------------------------- */

/* struct percpu_counter - the kernel's approximate counter, a struct pcpu_counter inside. */
struct percpu_counter {
	struct pcpu_counter pcpu;
};

/* The default batch, max(32, 2 * nr_cpus) (kernel: a variable; here read-only). */
#define percpu_counter_batch ((s32)pcpu_counter_batch())

/* percpu_counter_init - Return: 0, or -ENOMEM. @gfp is ignored (see the top of the file). */
static inline int percpu_counter_init(struct percpu_counter *fbc, s64 amount, gfp_t gfp)
{
	(void)gfp;
	return pcpu_counter_init(&fbc->pcpu, amount) ? -errno : 0;
}

static inline void percpu_counter_destroy(struct percpu_counter *fbc)
{
	pcpu_counter_destroy(&fbc->pcpu);
}

static inline bool percpu_counter_initialized(struct percpu_counter *fbc)
{
	return fbc->pcpu.counters != NULL;
}

static inline void percpu_counter_add_batch(struct percpu_counter *fbc, s64 amount, s32 batch)
{
	pcpu_counter_add_batch(&fbc->pcpu, amount, batch);
}

static inline void percpu_counter_add(struct percpu_counter *fbc, s64 amount)
{
	pcpu_counter_add(&fbc->pcpu, amount);
}

static inline void percpu_counter_sub(struct percpu_counter *fbc, s64 amount)
{
	pcpu_counter_add(&fbc->pcpu, -amount);
}

static inline void percpu_counter_inc(struct percpu_counter *fbc)
{
	pcpu_counter_add(&fbc->pcpu, 1);
}

static inline void percpu_counter_dec(struct percpu_counter *fbc)
{
	pcpu_counter_add(&fbc->pcpu, -1);
}

/* percpu_counter_read - the folded count: fast, off by up to batch * nr_cpus. */
static inline s64 percpu_counter_read(struct percpu_counter *fbc)
{
	return pcpu_counter_read(&fbc->pcpu);
}

/* percpu_counter_read_positive - the folded count, 0 when it reads negative. */
static inline s64 percpu_counter_read_positive(struct percpu_counter *fbc)
{
	s64 ret = pcpu_counter_read(&fbc->pcpu);

	return ret >= 0 ? ret : 0;
}

/* percpu_counter_sum - every CPU's delta folded in; exact with no concurrent writers. */
static inline s64 percpu_counter_sum(struct percpu_counter *fbc)
{
	return pcpu_counter_sum(&fbc->pcpu);
}

static inline s64 percpu_counter_sum_positive(struct percpu_counter *fbc)
{
	s64 ret = pcpu_counter_sum(&fbc->pcpu);

	return ret < 0 ? 0 : ret;
}

/* __percpu_counter_compare - -1, 0, 1; exact within batch * nr_cpus of @rhs. */
static inline int __percpu_counter_compare(struct percpu_counter *fbc, s64 rhs, s32 batch)
{
	s64 count = pcpu_counter_read(&fbc->pcpu);
	s64 slack = (s64)batch * (s64)pcpu_nr_cpus();
	s64 d;

	/* kernel: the rough value decides only when it is clearly beyond the error bound */
	if (__builtin_sub_overflow(count, rhs, &d))
		return count > rhs ? 1 : -1;
	if (d > slack)
		return 1;
	if (d < -slack)
		return -1;
	count = pcpu_counter_sum(&fbc->pcpu);
	return count > rhs ? 1 : count < rhs ? -1 : 0;
}

static inline int percpu_counter_compare(struct percpu_counter *fbc, s64 rhs)
{
	return pcpu_counter_compare(&fbc->pcpu, rhs);
}

/* percpu_counter_set - not atomic against concurrent adds, as in the kernel. */
static inline void percpu_counter_set(struct percpu_counter *fbc, s64 amount)
{
	pcpu_counter_set(&fbc->pcpu, amount);
}

/* ---------------------------------------------------------------------------------------- */
/* percpu_counter_tree (hierarchical per-CPU counters RFC, LKML 2025; not merged)           */
/* ---------------------------------------------------------------------------------------- */

/*
 * struct percpu_counter_tree - a struct pcpu_counter_tree inside. The RFC's init also takes
 * caller-provided tree items (kernel memory placement); here the library allocates them,
 * so init has the shape of percpu_counter_init(). @batch_size must be a power of two.
 */
struct percpu_counter_tree {
	struct pcpu_counter_tree pcpu;
};

/* percpu_counter_tree_init - Return: 0, -EINVAL (bad batch) or -ENOMEM. @gfp is ignored. */
static inline int percpu_counter_tree_init(struct percpu_counter_tree *c,
					   unsigned long batch_size, gfp_t gfp)
{
	(void)gfp;
	if (batch_size > UINT32_MAX)
		return -EINVAL;
	return pcpu_counter_tree_init(&c->pcpu, 0, (uint32_t)batch_size) ? -errno : 0;
}

static inline void percpu_counter_tree_destroy(struct percpu_counter_tree *c)
{
	pcpu_counter_tree_destroy(&c->pcpu);
}

static inline void percpu_counter_tree_add(struct percpu_counter_tree *c, long inc)
{
	pcpu_counter_tree_add(&c->pcpu, inc);
}

/* percpu_counter_tree_approximate_sum - one load; below the precise sum by <= inaccuracy. */
static inline long percpu_counter_tree_approximate_sum(struct percpu_counter_tree *c)
{
	return (long)pcpu_counter_tree_approx(&c->pcpu);
}

static inline long percpu_counter_tree_precise_sum(struct percpu_counter_tree *c)
{
	return (long)pcpu_counter_tree_sum(&c->pcpu);
}

static inline unsigned long percpu_counter_tree_inaccuracy(struct percpu_counter_tree *c)
{
	return (unsigned long)pcpu_counter_tree_inaccuracy(&c->pcpu);
}

/*
 * percpu_counter_tree_approximate_compare_value - from the approximate value alone: 1 or
 * -1 when the counter is surely above or below @v, 0 when @v is within the inaccuracy.
 */
static inline int percpu_counter_tree_approximate_compare_value(struct percpu_counter_tree *c,
								long v)
{
	s64 a = pcpu_counter_tree_approx(&c->pcpu);
	u64 b = pcpu_counter_tree_inaccuracy(&c->pcpu);

	if (a > v)
		return 1;
	return (u64)v - (u64)a > b ? -1 : 0;
}

/* percpu_counter_tree_precise_compare_value - exact: -1, 0 or 1 (pcpu_counter_tree_compare). */
static inline int percpu_counter_tree_precise_compare_value(struct percpu_counter_tree *c, long v)
{
	return pcpu_counter_tree_compare(&c->pcpu, v);
}

#ifdef __cplusplus
}
#endif

#endif /* PCPU_KERNEL_H */
