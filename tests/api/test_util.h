/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * test_util.h - helpers several test programs share: a byte pattern written into every copy
 * of an allocation and checked later, the statistics now, a printer's output as a string,
 * a sleep, and the iteration scale for slow environments.
 */
#ifndef PCPU_TEST_UTIL_H
#define PCPU_TEST_UTIL_H

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* all_zero - 1 when every byte of every copy of @h is zero. */
static inline int all_zero(void *h, size_t size)
{
	return check(h, size, 0, 1);
}

/* stats_now - the library's statistics, which must be readable. */
static inline struct pcpu_stats stats_now(void)
{
	struct pcpu_stats st = {.size = sizeof(st)};

	ck_assert_int_eq(pcpu_stats_get(&st), 0);
	return st;
}

/*
 * print_string - what @print (pcpu_stats_print(), pcpu_leaks_print(), ...) writes, as a
 * malloc'ed string (free() it).
 */
static inline char *print_string(void (*print)(FILE *f))
{
	/*
	 * Static, not automatic: gcc 12 takes the string open_memstream() returns through
	 * &buf for a pointer to buf itself, and warns of a dangling pointer once inlined.
	 */
	static char *buf;
	static size_t len;
	FILE *f;

	buf = NULL;
	f = open_memstream(&buf, &len);
	ck_assert_ptr_nonnull(f);
	print(f);
	fclose(f);
	ck_assert_ptr_nonnull(buf);
	return buf;
}

/* sleep_ms - sleep @ms milliseconds, signals notwithstanding. */
static inline void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/*
 * test_scaled - @n, divided by PCPU_TEST_SCALE when that is set to an integer above 1, and
 * never below @min. tools/cross-aarch64.sh sets it under qemu-user, where every getcpu()
 * is an emulated system call and a loop of millions of operations takes minutes; native
 * runs leave it unset and keep every count. Only loop lengths go through it: what a test
 * checks stays the same (use the scaled count on both sides of an expected sum).
 */
static inline long test_scaled(long n, long min)
{
	const char *s = getenv("PCPU_TEST_SCALE");
	long div = s ? strtol(s, NULL, 10) : 1;

	if (div > 1)
		n /= div;
	return n < min ? min : n;
}

#endif /* PCPU_TEST_UTIL_H */
