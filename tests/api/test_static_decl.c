/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * The second translation unit of test_static: a PCPU_DEFINE used from test_static.c
 * through PCPU_DECLARE, and a function using test_static.c's variable the same way.
 */
#include <stdint.h>

#include <pcpu.h>

#include "test_static_decl.h"

PCPU_DEFINE(uint64_t, decl_counter, 7);
PCPU_DEFINE(struct decl_pair, decl_pair, {.lo = -1, .hi = 1});

/* Add @n to this CPU's copy of test_static.c's s_shared, seen through PCPU_DECLARE. */
void decl_bump_shared(int64_t n)
{
	pcpu_this_add(s_shared, n);
}

/* The sum over every CPU of test_static.c's s_shared. */
int64_t decl_sum_shared(void)
{
	int64_t sum = 0;
	unsigned cpu;

	pcpu_for_each_cpu(cpu)
		sum += *pcpu_ptr(s_shared, cpu);
	return sum;
}
