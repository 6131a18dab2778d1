/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * util - small helpers shared by the layers: intrusive lists, bit operations, assertions,
 * and the wrappers through which every system call and metadata allocation goes (so the
 * fault-injection build can fail the N-th one).
 */
#ifndef PCPU_UTIL_H
#define PCPU_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pcpu_config.h"

#define PCPU_HIDDEN __attribute__((visibility("hidden")))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define BITS_PER_LONG (8 * (int)sizeof(unsigned long))
#define BITS_TO_LONGS(n) (((n) + BITS_PER_LONG - 1) / BITS_PER_LONG)
#define ALIGN_UP(x, a) (((x) + (a) - 1) & ~((__typeof__(x))(a) - 1))
#define ALIGN_DOWN(x, a) ((x) & ~((__typeof__(x))(a) - 1))
#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

/* PCPU_ASSERT: invariant checks that compile away unless -Ddebug_checks=true. */
#if PCPU_DEBUG_CHECKS
#define PCPU_ASSERT(cond)                                                                     \
	do {                                                                                  \
		if (unlikely(!(cond)))                                                        \
			pcpu_assert_fail(#cond, __FILE__, __LINE__);                          \
	} while (0)
#else
#define PCPU_ASSERT(cond) ((void)0)
#endif
__attribute__((noreturn)) void pcpu_assert_fail(const char *cond, const char *file, int line);

/* Intrusive doubly linked list, as in the kernel. */
struct list_head {
	struct list_head *next, *prev;
};

static inline void list_init(struct list_head *h)
{
	h->next = h->prev = h;
}
static inline bool list_empty(const struct list_head *h)
{
	return h->next == h;
}
static inline void list__insert(struct list_head *n, struct list_head *prev, struct list_head *next)
{
	next->prev = n;
	n->next = next;
	n->prev = prev;
	prev->next = n;
}
static inline void list_add(struct list_head *n, struct list_head *h)
{
	list__insert(n, h, h->next);
}
static inline void list_add_tail(struct list_head *n, struct list_head *h)
{
	list__insert(n, h->prev, h);
}
static inline void list_del(struct list_head *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->next = n->prev = n;
}
#define list_entry(p, type, member) container_of(p, type, member)
#define list_first_entry(h, type, member) list_entry((h)->next, type, member)

/* Bit helpers over unsigned long arrays. */
static inline bool bit_test(const unsigned long *map, long bit)
{
	return (map[bit / BITS_PER_LONG] >> (bit % BITS_PER_LONG)) & 1;
}
static inline void bit_set(unsigned long *map, long bit)
{
	map[bit / BITS_PER_LONG] |= 1UL << (bit % BITS_PER_LONG);
}
static inline void bit_clear(unsigned long *map, long bit)
{
	map[bit / BITS_PER_LONG] &= ~(1UL << (bit % BITS_PER_LONG));
}
void bits_set_range(unsigned long *map, long start, long n);
void bits_clear_range(unsigned long *map, long start, long n);
bool bits_any_in_range(const unsigned long *map, long start, long n);
/*
 * pcpu_or_small - the @n bytes at @mem OR-ed together as words (zero when they all are):
 * a few loads and no branch on the data. @n at most 64; @mem and @n multiples of 4 (a
 * small object's copy).
 */
static inline uint64_t pcpu_or_small(const void *mem, size_t n)
{
	const char *q = (const char *)mem;
	uint64_t acc = 0, w;
	uint32_t h;
	size_t i = 0;

	if (n & 4) {
		memcpy(&h, q, sizeof(h));
		acc = h;
		i = 4;
	}
	for (; i < n; i += 8) {
		memcpy(&w, q + i, sizeof(w));
		acc |= w;
	}
	return acc;
}

/*
 * pcpu_mem_is_zero - true when @n bytes at @mem are all zero (reads only): a small copy
 * with pcpu_or_small(), anything else a line at a time.
 */
bool pcpu_mem_is_zero(const void *mem, size_t n);

/* pcpu_now_ns - CLOCK_MONOTONIC in nanoseconds. */
static inline uint64_t pcpu_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * pcpu_sort_words - sort @n words ascending, in place, with @tmp (room for @n words): the
 * library's one sort (sort_template.h), up to 8 runs merged (what the front's lists hand
 * back), else a radix sort over the bits in which the words differ.
 */
void pcpu_sort_words(uintptr_t *a, uintptr_t *tmp, size_t n);

/*
 * System calls and metadata allocations that can fail. With -Dfault_injection=true the
 * N-th call (environment PCPU_FAULT=N, counted over all of them) fails with ENOMEM/EINVAL;
 * otherwise these are the plain calls. Internal code returns negative errno.
 *
 * pcpu_sys_calls counts the system calls the chunk layer and the pagemap helper make
 * (through these wrappers and pcpu_sys_counted()), so that a test can check what one
 * population or depopulation costs. Relaxed: a statistic, not a synchronisation.
 */
extern uint64_t pcpu_sys_calls;
static inline void pcpu_sys_counted(unsigned n)
{
	__atomic_fetch_add(&pcpu_sys_calls, n, __ATOMIC_RELAXED);
}
/* pcpu_fault_hit - true when the fault-injection build fails this call (named @what). */
bool pcpu_fault_hit(const char *what);
/* MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE, @prot (PROT_NONE or read+write) */
void *pcpu_sys_mmap(size_t len, int prot);
/* MAP_PRIVATE|MAP_NORESERVE|MAP_FIXED over @addr: of @fd at offset 0, or anonymous (-1) */
int pcpu_sys_mmap_fixed(void *addr, size_t len, int fd, int prot);
int pcpu_sys_memfd(size_t size);                        /* memfd_create + ftruncate: fd */
int pcpu_sys_munmap(void *addr, size_t len);
int pcpu_sys_mprotect(void *addr, size_t len, int prot);
int pcpu_sys_madvise(void *addr, size_t len, int advice);
int pcpu_sys_mbind(void *addr, size_t len, int node);   /* MPOL_PREFERRED */
/*
 * process_madvise(@pidfd, @iov, @n, @advice): the same advice over @n <= 1024 ranges in one
 * call. Return the bytes advised (the ranges done, in order), or a negative errno.
 */
struct iovec;
long pcpu_sys_process_madvise(int pidfd, const struct iovec *iov, size_t n, int advice);
void *pcpu_calloc(size_t n, size_t size);
void *pcpu_malloc(size_t size);
void *pcpu_realloc(void *p, size_t size);
void pcpu_mfree(void *p);

/* pcpu_warn - one line "libpcpu: ..." on stderr. */
void pcpu_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* PCPU_UTIL_H */
