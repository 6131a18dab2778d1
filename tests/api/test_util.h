/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * test_util.h - helpers several test programs share: a byte pattern written into every copy
 * of an allocation and checked later.
 */
#ifndef PCPU_TEST_UTIL_H
#define PCPU_TEST_UTIL_H

#include <check.h>
#include <string.h>

#include <pcpu.h>

/* fill - write a pattern derived from @tag and the CPU into every copy of @h. */
static inline void fill(void *h, size_t size, unsigned tag)
{
	unsigned cpu;

	pcpu_for_each_cpu(cpu)
		memset(pcpu_ptr((unsigned char *)h, cpu), (int)((tag + cpu) & 0xff) | 1, size);
}

/* check - 1 when every copy of @h holds fill()'s pattern (or zero, with @zero). */
static inline int check(void *h, size_t size, unsigned tag, int zero)
{
	unsigned cpu;

	pcpu_for_each_cpu(cpu) {
		const unsigned char *p = pcpu_ptr((unsigned char *)h, cpu);
		unsigned char want = zero ? 0 : (unsigned char)(((tag + cpu) & 0xff) | 1);

		for (size_t i = 0; i < size; i++)
			if (p[i] != want)
				return 0;
	}
	return 1;
}

#endif /* PCPU_TEST_UTIL_H */
