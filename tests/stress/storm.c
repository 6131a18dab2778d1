/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * storm - the this-CPU operations under everything that can interrupt them: more threads
 * than CPUs updating the same per-CPU objects, one thread that keeps changing their CPU
 * affinity (narrowing every one to a single CPU, then widening again: forced migrations),
 * and one that keeps signalling them (the handlers update the same objects). Afterwards the
 * folded totals must be exact. Runs for PCPU_STRESS_SECONDS (default 3).
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>

#include <pcpu.h>

#include "../api/mode_check.h"
#include "storm_util.h"

static uint64_t *c64;
static uint32_t *c32;
static uint16_t *c16;
static uint8_t *c8;
static struct pcpu_counter counter;

/* each signal handler run adds 1 to c64 and 5 to c32 */
static void on_signal(void)
{
	pcpu_this_inc(c64);
	pcpu_this_add(c32, 5);
}

/* each loop iteration adds 1, 3, 1, 1, 2 */
static void step(void)
{
	uint16_t old, seen;

	pcpu_this_inc(c64);
	pcpu_this_add(c32, 3);
	/* an increment by compare-and-swap: the read and the cmpxchg may run on
	 * different CPUs; a failed cmpxchg then returns the new copy's value */
	old = pcpu_this_read(c16);
	while ((seen = pcpu_this_cmpxchg(c16, old, (uint16_t)(old + 1))) != old)
		old = seen;
	(void)pcpu_this_add_return(c8, 1);
	pcpu_counter_add(&counter, 2);
}

static uint64_t sum_copies_u64(void)
{
	uint64_t s = 0;
	unsigned c;

	pcpu_for_each_cpu(c) s += *pcpu_ptr(c64, c);
	return s;
}

START_TEST(test_storm)
{
	struct storm s = {.step = step, .on_signal = on_signal};
	uint64_t loops, handled_total, s32 = 0, s16 = 0, s8 = 0;
	unsigned c;
	int want = test_expected_mode();

	if (want)
		ck_assert_int_eq(pcpu_cpu_mode(), want);
	c64 = pcpu_alloc_type(uint64_t);
	c32 = pcpu_alloc_type(uint32_t);
	c16 = pcpu_alloc_type(uint16_t);
	c8 = pcpu_alloc_type(uint8_t);
	ck_assert(c64 && c32 && c16 && c8);
	ck_assert_int_eq(pcpu_counter_init(&counter, 0), 0);

	storm_run(&s);
	loops = s.loops;
	handled_total = s.handled;
	pcpu_for_each_cpu(c) {
		s32 += *pcpu_ptr(c32, c);
		s16 += *pcpu_ptr(c16, c);
		s8 += *pcpu_ptr(c8, c);
	}
	fprintf(stderr, "storm: mode %d, %d workers on %d CPUs, %llu loops, %llu handlers\n",
		pcpu_cpu_mode(), s.nr, s.ncpus, (unsigned long long)loops,
		(unsigned long long)handled_total);
	ck_assert_uint_gt(loops, 0);
	ck_assert_uint_eq(sum_copies_u64(), loops + handled_total);
	ck_assert_uint_eq((uint32_t)s32, (uint32_t)(3 * loops + 5 * handled_total));
	ck_assert_uint_eq((uint16_t)s16, (uint16_t)loops);
	ck_assert_uint_eq((uint8_t)s8, (uint8_t)loops);
	ck_assert_int_eq(pcpu_counter_sum(&counter), (int64_t)(2 * loops));
	pcpu_counter_destroy(&counter);
}
END_TEST

int main(void)
{
	return storm_main("storm", test_storm, 120);
}
