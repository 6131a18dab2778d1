/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * dso_static - a shared object with per-CPU variables, loaded and unloaded many times by
 * test_static. Its PCPU_DEFINE variables and its DEFINE_PER_CPU section must come from the
 * first chunk's reserved region (or, without one, from dynamic allocations), start at their
 * initial values in every CPU's copy on every load even though the previous load scribbled
 * over the same memory, and be given back at dlclose(). Not linked with libpcpu: the
 * program that loads it provides the symbols.
 */
#include <stdint.h>
#include <string.h>

#include <pcpu.h>
#include <pcpu/kernel.h>

struct dso_rec {
	uint64_t a;
	int32_t b[5];
};

struct dso_block {
	uint32_t w[100];
};

PCPU_DEFINE(uint64_t, dso_zero);
PCPU_DEFINE(int64_t, dso_init, -12345);
PCPU_DEFINE(struct dso_rec, dso_rec, {.a = 99, .b = {1, 2, 3, 4, 5}});
PCPU_DEFINE(struct dso_block, dso_block);
static DEFINE_PER_CPU(long, dso_kvar) = 42;
static DEFINE_PER_CPU(unsigned int, dso_kzero);

#define DSO_NR_HANDLES 5

/*
 * dso_check - count the copies that do not hold their initial values, then scribble over
 * every copy (so the next load proves the memory is initialised again), exercising the
 * this-CPU operations on the way. Fill @h with the variables' handles.
 * Return: the number of wrong copies.
 */
__attribute__((visibility("default"))) int dso_check(void *h[DSO_NR_HANDLES])
{
	static const int32_t b0[5] = {1, 2, 3, 4, 5};
	int bad = 0, cpu;

	h[0] = dso_zero;
	h[1] = dso_init;
	h[2] = dso_rec;
	h[3] = dso_block;
	h[4] = PCPU__KPTR(&dso_kvar);
	for_each_possible_cpu(cpu) {
		const struct dso_block *blk = pcpu_ptr(dso_block, cpu);

		bad += *pcpu_ptr(dso_zero, cpu) != 0;
		bad += *pcpu_ptr(dso_init, cpu) != -12345;
		bad += pcpu_ptr(dso_rec, cpu)->a != 99;
		bad += memcmp(pcpu_ptr(dso_rec, cpu)->b, b0, sizeof(b0)) != 0;
		for (int i = 0; i < 100; i++)
			bad += blk->w[i] != 0;
		bad += per_cpu(dso_kvar, cpu) != 42;
		bad += per_cpu(dso_kzero, cpu) != 0;
	}
	pcpu_this_add(dso_zero, 5);
	pcpu_this_inc(&dso_rec->a);
	this_cpu_inc(dso_kvar);
	this_cpu_add(dso_kzero, 3);
	for_each_possible_cpu(cpu) {
		*pcpu_ptr(dso_zero, cpu) = ~0ull;
		*pcpu_ptr(dso_init, cpu) = 7;
		memset(pcpu_ptr(dso_rec, cpu), 0x5a, sizeof(struct dso_rec));
		memset(pcpu_ptr(dso_block, cpu), 0xa5, sizeof(struct dso_block));
		per_cpu(dso_kvar, cpu) = -1;
		per_cpu(dso_kzero, cpu) = 0xdeadbeef;
	}
	return bad;
}
