/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * mode_check.h - what pcpu_cpu_mode() must be under the environment a test was started
 * with: PCPU_TEST_MODE is "auto" (glibc's rseq if glibc registered one, else our own if the
 * kernel has rseq, else getcpu), "own" (glibc's registration disabled by GLIBC_TUNABLES) or
 * "getcpu" (forced by PCPU_CONF). Without rseq in the kernel (e.g. under qemu-user) or
 * without rseq assembly for the architecture, every mode degrades to getcpu.
 */
#ifndef PCPU_TEST_MODE_CHECK_H
#define PCPU_TEST_MODE_CHECK_H

#include <check.h>
#include <errno.h>
#include <sched.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <pcpu.h>

extern const unsigned int __rseq_size __attribute__((weak));

static inline int test_kernel_has_rseq(void)
{
#if defined(__NR_rseq) && (defined(__x86_64__) || defined(__aarch64__))
	/* A NULL area is invalid: EINVAL (or EBUSY...) means the call exists. */
	long r = syscall(__NR_rseq, NULL, 0, 0, 0);

	return !(r == -1 && errno == ENOSYS);
#else
	return 0;
#endif
}

static inline int test_glibc_has_rseq(void)
{
	return &__rseq_size && __rseq_size > 0;
}

/* The mode the environment implies, or 0 if PCPU_TEST_MODE is unset (no expectation). */
static inline int test_expected_mode(void)
{
	const char *m = getenv("PCPU_TEST_MODE");

	if (!m)
		return 0;
	if (!strcmp(m, "getcpu") || !test_kernel_has_rseq())
		return PCPU_MODE_GETCPU;
	if (!strcmp(m, "own"))
		return PCPU_MODE_RSEQ_OWN;
	return test_glibc_has_rseq() ? PCPU_MODE_RSEQ_GLIBC : PCPU_MODE_RSEQ_OWN;
}

/* test_check_mode - pcpu_cpu_mode() is the mode the environment implies, if it implies one. */
static inline void test_check_mode(void)
{
	int want = test_expected_mode();

	if (want)
		ck_assert_int_eq(pcpu_cpu_mode(), want);
}

/* test_pin_here - pin the thread to the CPU it runs on, so reads see the copy writes hit. */
static inline void test_pin_here(void)
{
	cpu_set_t set;
	int cpu = sched_getcpu();

	ck_assert_int_ge(cpu, 0);
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	ck_assert_int_eq(sched_setaffinity(0, sizeof(set), &set), 0);
}

#endif /* PCPU_TEST_MODE_CHECK_H */
