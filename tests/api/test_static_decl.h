/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/* test_static_decl.h - per-CPU variables shared by the two files of test_static. */
#ifndef TEST_STATIC_DECL_H
#define TEST_STATIC_DECL_H

#include <stdint.h>

#include <pcpu.h>

struct decl_pair {
	int32_t lo, hi;
};

PCPU_DECLARE(uint64_t, decl_counter);        /* defined in test_static_decl.c, init 7 */
PCPU_DECLARE(struct decl_pair, decl_pair);   /* defined in test_static_decl.c */
PCPU_DECLARE(int64_t, s_shared);             /* defined in test_static.c, init 1000 */

void decl_bump_shared(int64_t n);
int64_t decl_sum_shared(void);

#endif /* TEST_STATIC_DECL_H */
