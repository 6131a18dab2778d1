/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * sum - reading per-CPU integers in bulk: pcpu_sum64() (public, <pcpu/sum.h>) and the
 * single-handle case the counters use.
 */
#ifndef PCPU_SUM_LIB_H
#define PCPU_SUM_LIB_H

#include <stdint.h>

/* pcpu_sum64_one - the wrapping sum of every possible CPU's copy of the uint64_t at @h. */
uint64_t pcpu_sum64_one(const void *h);

#endif /* PCPU_SUM_LIB_H */
