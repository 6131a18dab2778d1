/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * The kernel's own self-test of the this_cpu operations (lib/percpu_test.c, module
 * CONFIG_PERCPU_TEST), re-expressed as a Check test through <pcpu/kernel.h>: each operation
 * is mirrored on a plain local and on a static per-CPU variable, and both must give the
 * expected value (width and sign handling of add/sub with mixed operand types). The kernel
 * runs it with preemption disabled; user space cannot, so the thread is pinned to one CPU
 * instead. Then the rest of the header: allocation and gfp flags, per_cpu / per_cpu_ptr /
 * this_cpu_ptr on both kinds of per-CPU data, DEFINE_PER_CPU initial values and
 * DECLARE_PER_CPU, the remaining operations, and percpu_counter.
 */
#include <check.h>
#include <limits.h>
#include <sched.h>
#include <stdlib.h>

#include <pcpu/kernel.h>

#include "lib/alloc.h"
#include "mode_check.h"
#include "../check_run.h"

/*
 * The kernel builds without -Wsign-compare, and these checks compare a long or unsigned
 * long with an int on purpose (e.g. an unsigned long against -1): that is what they test.
 */
#pragma GCC diagnostic ignored "-Wsign-compare"

static DEFINE_PER_CPU(long, long_counter);
static DEFINE_PER_CPU(unsigned long, ulong_counter);

/* The kernel's CHECK(): the native value and this CPU's copy both equal @expected. */
#define CHECK(native, pcp, expected)                                                          \
	do {                                                                                  \
		ck_assert_msg((native) == (expected), "raw %ld (0x%lx) != expected %lld (0x%llx)", \
			      (long)(native), (unsigned long)(native), (long long)(expected),  \
			      (unsigned long long)(expected));                                 \
		ck_assert_msg(__this_cpu_read(pcp) == (expected),                             \
			      "pcp %ld (0x%lx) != expected %lld (0x%llx)",                    \
			      (long)__this_cpu_read(pcp), (unsigned long)__this_cpu_read(pcp), \
			      (long long)(expected), (unsigned long long)(expected));          \
	} while (0)

START_TEST(test_mode)
{
	test_check_mode();
}
END_TEST

/* lib/percpu_test.c: percpu_test_init(), case by case. */
START_TEST(test_percpu_test)
{
	/* volatile keeps the compiler from turning +ui_one / -ui_one into inc / dec. */
	volatile unsigned int ui_one = 1;
	unsigned long long ull = 0;
	unsigned long ul = 0;
	long l = 0;

	test_pin_here();
	preempt_disable();

	l += -1;
	__this_cpu_add(long_counter, -1);
	CHECK(l, long_counter, -1);

	l += 1;
	__this_cpu_add(long_counter, 1);
	CHECK(l, long_counter, 0);

	ul = 0;
	__this_cpu_write(ulong_counter, 0);

	ul += 1UL;
	__this_cpu_add(ulong_counter, 1UL);
	CHECK(ul, ulong_counter, 1);

	ul += -1UL;
	__this_cpu_add(ulong_counter, -1UL);
	CHECK(ul, ulong_counter, 0);

	ul += -(unsigned long)1;
	__this_cpu_add(ulong_counter, -(unsigned long)1);
	CHECK(ul, ulong_counter, -1);

	ul = 0;
	__this_cpu_write(ulong_counter, 0);

	ul -= 1;
	__this_cpu_dec(ulong_counter);
	CHECK(ul, ulong_counter, -1);
	CHECK(ul, ulong_counter, ULONG_MAX);

	/* -(unsigned int)1 is 0xffffffff: no sign extension into the long. */
	l += -((unsigned int)1);
	__this_cpu_add(long_counter, -((unsigned int)1));
	CHECK(l, long_counter, 0xffffffff);

	l += ui_one;
	__this_cpu_add(long_counter, ui_one);
	CHECK(l, long_counter, (long)0x100000000LL);

	l = 0;
	__this_cpu_write(long_counter, 0);

	l -= ui_one;
	__this_cpu_sub(long_counter, ui_one);
	CHECK(l, long_counter, -1);

	l = 0;
	__this_cpu_write(long_counter, 0);

	l += ui_one;
	__this_cpu_add(long_counter, ui_one);
	CHECK(l, long_counter, 1);

	l += -ui_one;
	__this_cpu_add(long_counter, -ui_one);
	CHECK(l, long_counter, (long)0x100000000LL);

	l = 0;
	__this_cpu_write(long_counter, 0);

	l -= ui_one;
	this_cpu_sub(long_counter, ui_one);
	CHECK(l, long_counter, -1);
	CHECK(l, long_counter, ULONG_MAX);

	ul = 0;
	__this_cpu_write(ulong_counter, 0);

	ul += ui_one;
	__this_cpu_add(ulong_counter, ui_one);
	CHECK(ul, ulong_counter, 1);

	ul = 0;
	__this_cpu_write(ulong_counter, 0);

	ul -= ui_one;
	__this_cpu_sub(ulong_counter, ui_one);
	CHECK(ul, ulong_counter, -1);
	CHECK(ul, ulong_counter, ULONG_MAX);

	/* UINT_MAX through an unsigned long long: the add is 64 bits wide, not 32. */
	ul = 0;
	__this_cpu_write(ulong_counter, 0);
	ull = UINT_MAX;
	ul += ull;
	__this_cpu_add(ulong_counter, ull);
	CHECK(ul, ulong_counter, (unsigned long)UINT_MAX);
	ul += ui_one;
	__this_cpu_add(ulong_counter, ui_one);
	CHECK(ul, ulong_counter, 0x100000000UL);

	ul = 3;
	__this_cpu_write(ulong_counter, 3);

	ul = this_cpu_sub_return(ulong_counter, ui_one);
	CHECK(ul, ulong_counter, 2);

	ul = __this_cpu_sub_return(ulong_counter, ui_one);
	CHECK(ul, ulong_counter, 1);

	preempt_enable();
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* The rest of the header                                                                    */
/* ---------------------------------------------------------------------------------------- */

struct kstat {
	u64 a;
	s32 b;
	u8 c;
};

DEFINE_PER_CPU(int, kvar_init) = 17;
DECLARE_PER_CPU(int, kvar_init);
static DEFINE_PER_CPU(struct kstat, kvar_struct) = {.a = 5, .b = -6, .c = 7};
static DEFINE_PER_CPU_ALIGNED(u64, kvar_aligned);
static DEFINE_PER_CPU(int *, kvar_ptr);
static DEFINE_PER_CPU(u8, kvar_u8) = 0xf0;

START_TEST(test_define_per_cpu)
{
	int cpu;
	unsigned int ucpu;

	/* Initial values in every copy; the template itself is not any CPU's copy. */
	for_each_possible_cpu(cpu) {
		ck_assert_int_eq(per_cpu(kvar_init, cpu), 17);
		ck_assert_uint_eq(per_cpu(kvar_struct, cpu).a, 5);
		ck_assert_int_eq(per_cpu_ptr(&kvar_struct, cpu)->b, -6);
		ck_assert_uint_eq(per_cpu(kvar_struct, cpu).c, 7);
		ck_assert_uint_eq(per_cpu(kvar_aligned, cpu), 0);
		ck_assert_uint_eq((uintptr_t)per_cpu_ptr(&kvar_aligned, cpu) % 64, 0);
		ck_assert_ptr_null(per_cpu(kvar_ptr, cpu));
		ck_assert_uint_eq(per_cpu(kvar_u8, cpu), 0xf0);
		ck_assert_ptr_ne(per_cpu_ptr(&kvar_init, cpu), &kvar_init);
	}
	/* per_cpu() is an lvalue of the variable's type. */
	for_each_possible_cpu(ucpu)
		per_cpu(kvar_init, ucpu) = (int)ucpu * 10;
	for_each_possible_cpu(cpu) {
		ck_assert_int_eq(*per_cpu_ptr(&kvar_init, cpu), cpu * 10);
		per_cpu(kvar_struct, cpu).b += cpu;
	}
	ck_assert_int_eq(kvar_init, 17); /* the template */
	/* The copies live in the first chunk, static region (or a fallback if it is full). */
	ck_assert_int_ne(pcpu_static_region_of(PCPU__KPTR(&kvar_init)), PCPU_REGION_NONE);

	test_pin_here();
	cpu = smp_processor_id();
	ck_assert_ptr_eq(this_cpu_ptr(&kvar_init), per_cpu_ptr(&kvar_init, cpu));
	ck_assert_ptr_eq(raw_cpu_ptr(&kvar_struct), per_cpu_ptr(&kvar_struct, cpu));
	ck_assert_int_eq(this_cpu_read(kvar_init), cpu * 10);
	this_cpu_inc(kvar_init);
	ck_assert_int_eq(get_cpu_var(kvar_init), cpu * 10 + 1);
	put_cpu_var(kvar_init);
	this_cpu_add(kvar_struct.a, 10);
	ck_assert_uint_eq(this_cpu_read(kvar_struct.a), 15);
	this_cpu_write(kvar_ptr, &kvar_init);
	ck_assert_ptr_eq(this_cpu_xchg(kvar_ptr, NULL), &kvar_init);
	ck_assert_uint_eq(this_cpu_add_return(kvar_u8, 0x20), 0x10); /* wraps in 8 bits */
	this_cpu_or(kvar_u8, 0x0f);
	ck_assert_uint_eq(this_cpu_read(kvar_u8), 0x1f);
	this_cpu_and(kvar_u8, 0x3c);
	ck_assert_uint_eq(__this_cpu_read(kvar_u8), 0x1c);
	for_each_possible_cpu(ucpu)
		if ((int)ucpu != cpu)
			ck_assert_uint_eq(per_cpu(kvar_u8, ucpu), 0xf0);
}
END_TEST

START_TEST(test_alloc_and_ops)
{
	struct kstat __percpu *s = alloc_percpu(struct kstat);
	u32 __percpu *w = __alloc_percpu(sizeof(u32), 4);
	long __percpu *nw = alloc_percpu_gfp(long, GFP_NOWAIT);
	u64 sum = 0;
	int cpu;

	ck_assert_ptr_nonnull(s);
	ck_assert_ptr_nonnull(w);
	for_each_possible_cpu(cpu) {
		ck_assert_uint_eq(per_cpu_ptr(s, cpu)->a, 0);
		ck_assert_uint_eq(*per_cpu_ptr(w, cpu), 0);
	}
	test_pin_here();
	cpu = get_cpu();
	this_cpu_inc(s->a);
	this_cpu_add(s->b, -3);
	__this_cpu_inc(s->c);
	raw_cpu_add(*w, 7);
	ck_assert_uint_eq(this_cpu_ptr(s)->a, 1);
	ck_assert_int_eq(per_cpu_ptr(s, cpu)->b, -3);
	ck_assert_uint_eq(__this_cpu_read(s->c), 1);
	ck_assert_uint_eq(this_cpu_read(*w), 7);
	ck_assert_uint_eq(this_cpu_cmpxchg(*w, 7, 9), 7);
	ck_assert_uint_eq(this_cpu_cmpxchg(*w, 7, 11), 9);
	{
		u32 expect = 9;

		ck_assert(this_cpu_try_cmpxchg(*w, &expect, 12));
		expect = 1;
		ck_assert(!this_cpu_try_cmpxchg(*w, &expect, 13));
		ck_assert_uint_eq(expect, 12);
	}
	ck_assert_uint_eq(this_cpu_inc_return(*w), 13);
	ck_assert_uint_eq(this_cpu_dec_return(*w), 12);
	ck_assert_uint_eq(this_cpu_xchg(*w, 0), 12);
	put_cpu();
	for_each_possible_cpu(cpu)
		sum += per_cpu_ptr(s, cpu)->a;
	ck_assert_uint_eq(sum, 1);
	/* GFP_NOWAIT maps to PCPU_NOWAIT: it may fail with no populated room, never block. */
	if (nw)
		free_percpu(nw);
	free_percpu(s);
	free_percpu(w);
	free_percpu(NULL);
	ck_assert_uint_eq(num_possible_cpus(), pcpu_nr_cpus());
	ck_assert_uint_eq(nr_cpu_ids, pcpu_nr_cpus());
	ck_assert_int_eq(pcpu_verify(), 0);
}
END_TEST

START_TEST(test_gfp_account)
{
	struct pcpu_domain *d = pcpu_domain_create("kernel", 0);
	u64 __percpu *p;
	size_t n = pcpu_nr_cpus();

	pcpu_domain_set_current(d);
	p = alloc_percpu_gfp(u64, GFP_KERNEL_ACCOUNT);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(pcpu_domain_usage(d), 8 * n + 8);
	free_percpu(p);
	ck_assert_uint_eq(pcpu_domain_usage(d), 0);
	p = alloc_percpu_gfp(u64, GFP_KERNEL);
	ck_assert_uint_eq(pcpu_domain_usage(d), 0);
	free_percpu(p);
	pcpu_domain_set_current(NULL);
	pcpu_domain_destroy(d);
	ck_assert_uint_eq(pcpu__gfp_flags(GFP_ATOMIC), PCPU_NOWAIT);
	ck_assert_uint_eq(pcpu__gfp_flags(GFP_NOWAIT), PCPU_NOWAIT);
	ck_assert_uint_eq(pcpu__gfp_flags(GFP_NOFS), 0);
	ck_assert_uint_eq(pcpu__gfp_flags(GFP_ATOMIC | __GFP_ACCOUNT), PCPU_NOWAIT | PCPU_ACCOUNT);
}
END_TEST

START_TEST(test_percpu_counter)
{
	struct percpu_counter c;
	s32 batch = percpu_counter_batch;

	/* The checks of read() below assume every add lands on one CPU's delta. */
	test_pin_here();
	ck_assert_int_ge(batch, 32);
	ck_assert_int_eq(percpu_counter_init(&c, 100, GFP_KERNEL), 0);
	ck_assert(percpu_counter_initialized(&c));
	ck_assert_int_eq(percpu_counter_read(&c), 100);
	percpu_counter_add(&c, 5);
	percpu_counter_inc(&c);
	percpu_counter_dec(&c);
	percpu_counter_sub(&c, 2);
	ck_assert_int_eq(percpu_counter_sum(&c), 103);
	/* Below the batch the delta stays local: read() lags, sum() does not. */
	ck_assert_int_eq(percpu_counter_read(&c), 100);
	percpu_counter_add_batch(&c, 1000, 16);
	ck_assert_int_eq(percpu_counter_read(&c), 1103);
	ck_assert_int_eq(percpu_counter_compare(&c, 1103), 0);
	ck_assert_int_eq(percpu_counter_compare(&c, 1102), 1);
	ck_assert_int_eq(percpu_counter_compare(&c, 1 << 30), -1);
	ck_assert_int_eq(__percpu_counter_compare(&c, 1104, 8), -1);
	ck_assert_int_eq(__percpu_counter_compare(&c, INT64_MIN, 8), 1);
	percpu_counter_set(&c, -50);
	ck_assert_int_eq(percpu_counter_read(&c), -50);
	ck_assert_int_eq(percpu_counter_read_positive(&c), 0);
	ck_assert_int_eq(percpu_counter_sum(&c), -50);
	ck_assert_int_eq(percpu_counter_sum_positive(&c), 0);
	percpu_counter_add(&c, 60);
	ck_assert_int_eq(percpu_counter_sum_positive(&c), 10);
	percpu_counter_destroy(&c);
	ck_assert(!percpu_counter_initialized(&c));
}
END_TEST

/* The hierarchical counters RFC's names (percpu_counter_tree_*), on struct pcpu_counter_tree. */
START_TEST(test_percpu_counter_tree)
{
	struct percpu_counter_tree c;
	long total = 0;

	ck_assert_int_eq(percpu_counter_tree_init(&c, 3, GFP_KERNEL), -EINVAL);
	ck_assert_int_eq(percpu_counter_tree_init(&c, 8, GFP_KERNEL), 0);
	for (long i = 1; i <= 1000; i++) {
		percpu_counter_tree_add(&c, i % 7 == 0 ? -i : i);
		total += i % 7 == 0 ? -i : i;
	}
	ck_assert_int_eq(percpu_counter_tree_precise_sum(&c), total);
	ck_assert_int_le(percpu_counter_tree_approximate_sum(&c), total);
	ck_assert_int_le(total - percpu_counter_tree_approximate_sum(&c),
			 (long)percpu_counter_tree_inaccuracy(&c));
	ck_assert_int_eq(percpu_counter_tree_precise_compare_value(&c, total), 0);
	ck_assert_int_eq(percpu_counter_tree_precise_compare_value(&c, total + 1), -1);
	ck_assert_int_eq(percpu_counter_tree_precise_compare_value(&c, total - 1), 1);
	/* far away the approximate answer is sure; within the inaccuracy it is 0 */
	ck_assert_int_eq(percpu_counter_tree_approximate_compare_value(&c, -1000000), 1);
	ck_assert_int_eq(percpu_counter_tree_approximate_compare_value(&c, 1000000000), -1);
	ck_assert_int_eq(percpu_counter_tree_approximate_compare_value(
				 &c, percpu_counter_tree_approximate_sum(&c)), 0);
	percpu_counter_tree_destroy(&c);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("kernel_percpu");
	TCase *tc = tcase_create("kernel_percpu");

	tcase_add_test(tc, test_mode);
	tcase_add_test(tc, test_percpu_test);
	tcase_add_test(tc, test_define_per_cpu);
	tcase_add_test(tc, test_alloc_and_ops);
	tcase_add_test(tc, test_gfp_account);
	tcase_add_test(tc, test_percpu_counter);
	tcase_add_test(tc, test_percpu_counter_tree);
	suite_add_tcase(s, tc);
	return pcpu_check_run(s, CK_FORK_GETENV);
}
