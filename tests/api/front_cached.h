/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * front_cached.h - for tests that watch the front caches (lib/chunkset_front.c) fill and
 * empty: the bytes they hold, every class together.
 */
#ifndef PCPU_TEST_FRONT_CACHED_H
#define PCPU_TEST_FRONT_CACHED_H

#include <stdint.h>

#include "lib/chunkset.h"

static inline uint64_t front_cached_bytes(void)
{
	uint64_t n = 0;

	for (int k = 0; k < PCPU_FRONT_NR_CLASSES; k++) {
		struct pcpu_front_class_stats fs;

		pcpu_front_stats(k, &fs);
		n += fs.cached_bytes;
	}
	return n;
}

#endif /* PCPU_TEST_FRONT_CACHED_H */
