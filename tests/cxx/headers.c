/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * headers.c - compiled, never run, as C (c11 -pedantic, gnu11) and as C++ (C++11 to C++20)
 * by compile-check.sh, after <pcpu.h> and every other public header. Each use below must
 * compile without a warning under -Wall -Wextra -Werror -pedantic: every operation on every
 * type the rules allow (so that every template and every macro branch is instantiated),
 * PCPU_DEFINE with and without an initialiser, the allocation, counter, domain and stats
 * calls. The types the rules forbid are compile-fail.sh's business.
 */
#ifndef __cplusplus
#include <stdbool.h>
#endif
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct hc_point {
	int32_t x, y;
	uint64_t hits;
};

PCPU_DEFINE(uint64_t, hc_zero);
PCPU_DEFINE(int16_t, hc_minus, -3);
PCPU_DEFINE(struct hc_point, hc_point, {1, 2, 3});
PCPU_DECLARE(uint64_t, hc_zero);

/* Every operation on an integer type T, through a function named after it. */
#define HC_INT_OPS(T, name)                                                                   \
	T hc_##name(T *h, T v);                                                               \
	T hc_##name(T *h, T v)                                                                \
	{                                                                                     \
		T r;                                                                          \
		pcpu_this_add(h, v);                                                          \
		pcpu_this_sub(h, 1);                                                          \
		pcpu_this_inc(h);                                                             \
		pcpu_this_dec(h);                                                             \
		pcpu_this_write(h, v);                                                        \
		r = pcpu_this_read(h);                                                        \
		r = (T)(r + pcpu_this_xchg(h, v));                                            \
		r = (T)(r + pcpu_this_cmpxchg(h, v, r));                                      \
		r = (T)(r + pcpu_this_add_return(h, 2));                                      \
		return (T)(r + *pcpu_ptr(h, 0) + *pcpu_this_ptr(h));                           \
	}
HC_INT_OPS(int8_t, i8)
HC_INT_OPS(uint8_t, u8)
HC_INT_OPS(int16_t, i16)
HC_INT_OPS(uint16_t, u16)
HC_INT_OPS(int32_t, i32)
HC_INT_OPS(uint32_t, u32)
HC_INT_OPS(int64_t, i64)
HC_INT_OPS(uint64_t, u64)
HC_INT_OPS(char, char)
HC_INT_OPS(long, long)
HC_INT_OPS(unsigned long long, ull)
HC_INT_OPS(size_t, size)

/* Pointers: read, write, xchg, cmpxchg. */
void *hc_ptr(void **h, void *v);
void *hc_ptr(void **h, void *v)
{
	void *r;

	pcpu_this_write(h, v);
	pcpu_this_write(h, NULL);
	r = pcpu_this_read(h);
	r = pcpu_this_xchg(h, v);
	return pcpu_this_cmpxchg(h, r, NULL);
}

/* Floating types: read, write, xchg, copied bit for bit. */
double hc_double(double *h, double v, float *f);
double hc_double(double *h, double v, float *f)
{
	double r;

	pcpu_this_write(h, v);
	pcpu_this_write(f, 1.5f);
	r = pcpu_this_read(h) + pcpu_this_read(f);
	return r + pcpu_this_xchg(h, 2.5) + pcpu_this_xchg(f, 0.25f);
}

/* bool: read, write, xchg, cmpxchg. A volatile handle. A handle to const: read only. */
bool hc_misc(bool *b, volatile uint32_t *vh, const uint64_t *ch);
bool hc_misc(bool *b, volatile uint32_t *vh, const uint64_t *ch)
{
	bool r;

	pcpu_this_write(b, true);
	r = pcpu_this_xchg(b, false);
	r = pcpu_this_cmpxchg(b, false, r) || pcpu_this_read(b);
	pcpu_this_add(vh, 4);
	return r && pcpu_this_read(ch) != 0;
}

int hc_all(void);
int hc_all(void)
{
	struct pcpu_config cfg;
	struct pcpu_stats st;
	struct pcpu_counter c;
	struct pcpu_domain *d;
	struct hc_point *pt;
	uint64_t total = 0;
	unsigned cpu;

	memset(&cfg, 0, sizeof(cfg));
	cfg.size = sizeof(cfg);
	if (pcpu_init(&cfg) && errno != EBUSY)
		return -1;
	pt = pcpu_alloc_type(struct hc_point);
	if (!pt)
		return -1;
	pcpu_this_inc(&pt->hits);
	pcpu_this_add(&pt->x, -1);
	pcpu_this_inc(hc_zero);
	pcpu_this_dec(hc_minus);
	pcpu_this_add(&hc_point->hits, 2);
	pcpu_for_each_cpu(cpu) total += pcpu_ptr(pt, cpu)->hits + *pcpu_ptr(hc_zero, cpu);
	pcpu_free(pt);
	if (pcpu_counter_init(&c, 0))
		return -1;
	pcpu_counter_add(&c, 5);
	pcpu_counter_add_batch(&c, -2, 64);
	(pcpu_counter_add)(&c, 1);
	total += (uint64_t)pcpu_counter_sum(&c) + (uint64_t)pcpu_counter_read(&c) +
		 (uint64_t)pcpu_counter_compare(&c, 4);
	pcpu_counter_destroy(&c);
	d = pcpu_domain_create("hc", 0);
	pcpu_domain_set_current(d);
	pcpu_free(pcpu_alloc(8, 0, PCPU_ACCOUNT | PCPU_NOWAIT));
	pcpu_domain_set_current(NULL);
	total += pcpu_domain_usage(d);
	pcpu_domain_destroy(d);
	st.size = sizeof(st);
	if (pcpu_stats_get(&st))
		return -1;
	total += pcpu_trim() + (uint64_t)pcpu_verify() + pcpu_nr_cpus() + pcpu_this_cpu();
	return (int)(total & 1) + (pcpu_cpu_mode() == PCPU_MODE_GETCPU);
}
