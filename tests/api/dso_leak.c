/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * dso_leak - a shared object that allocates, for test_leaks: its call site is named by the
 * object's path while it is loaded, and the report must not read its code once unloaded.
 * pcpu_alloc() comes from the test program (linked with -rdynamic).
 */
#include <pcpu.h>

void *dso_leak_alloc(size_t size);

__attribute__((noinline)) void *dso_leak_alloc(size_t size)
{
	void *p = pcpu_alloc(size, 0, 0);

	__asm__ volatile("" ::: "memory"); /* a call, not a tail call */
	return p;
}
