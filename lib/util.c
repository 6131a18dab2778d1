/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
#include <errno.h>
#include <numaif.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "config.h"
#include "util.h"

#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif

void pcpu_assert_fail(const char *cond, const char *file, int line)
{
	fprintf(stderr, "libpcpu: assertion failed: %s (%s:%d)\n", cond, file, line);
	abort();
}

void pcpu_warn(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	/* One write so lines from several threads do not interleave. */
	fprintf(stderr, "libpcpu: %s\n", buf);
}

void bits_set_range(unsigned long *map, long start, long n)
{
	for (; n > 0 && start % BITS_PER_LONG; start++, n--)
		bit_set(map, start);
	for (; n >= BITS_PER_LONG; start += BITS_PER_LONG, n -= BITS_PER_LONG)
		map[start / BITS_PER_LONG] = ~0UL;
	for (; n > 0; start++, n--)
		bit_set(map, start);
}

void bits_clear_range(unsigned long *map, long start, long n)
{
	for (; n > 0 && start % BITS_PER_LONG; start++, n--)
		bit_clear(map, start);
	for (; n >= BITS_PER_LONG; start += BITS_PER_LONG, n -= BITS_PER_LONG)
		map[start / BITS_PER_LONG] = 0;
	for (; n > 0; start++, n--)
		bit_clear(map, start);
}

bool pcpu_mem_is_zero(const void *mem, size_t n)
{
	const unsigned char *p = mem;

	if (n <= 64 && !(((uintptr_t)p | n) & 3))
		return !pcpu_or_small(p, n);
	for (; n && ((uintptr_t)p % sizeof(uint64_t)); p++, n--)
		if (*p)
			return false;
	/* A line at a time, its words OR-ed: one branch per 64 bytes, not per word. */
	for (; n >= 64; p += 64, n -= 64) {
		uint64_t w[8], acc = 0;

		memcpy(w, p, sizeof(w));
		for (int i = 0; i < 8; i++)
			acc |= w[i];
		if (acc)
			return false;
	}
	for (; n >= sizeof(uint64_t); p += sizeof(uint64_t), n -= sizeof(uint64_t)) {
		uint64_t w;

		memcpy(&w, p, sizeof(w));
		if (w)
			return false;
	}
	for (; n; p++, n--)
		if (*p)
			return false;
	return true;
}

bool bits_any_in_range(const unsigned long *map, long start, long n)
{
	for (; n > 0 && start % BITS_PER_LONG; start++, n--)
		if (bit_test(map, start))
			return true;
	for (; n >= BITS_PER_LONG; start += BITS_PER_LONG, n -= BITS_PER_LONG)
		if (map[start / BITS_PER_LONG])
			return true;
	for (; n > 0; start++, n--)
		if (bit_test(map, start))
			return true;
	return false;
}

#if PCPU_FAULT_INJECT
/*
 * Fault injection: PCPU_FAULT=N fails the N-th fallible call (1-based) counted over every
 * wrapper below; PCPU_FAULT_LOG=1 prints each call's number and name so a test can learn
 * how many call sites a workload has. The counter is global and atomic so that the
 * balancer thread's calls count too.
 */
static long fault_at = -1;
static long fault_calls;
static int fault_log = -1;

static bool fault_hit(const char *what)
{
	long n;

	if (fault_log < 0) {
		const char *s = pcpu_getenv("PCPU_FAULT");
		const char *l = pcpu_getenv("PCPU_FAULT_LOG");

		fault_at = s ? atol(s) : -1;
		fault_log = l && *l == '1';
	}
	n = __atomic_add_fetch(&fault_calls, 1, __ATOMIC_RELAXED);
	if (fault_log)
		fprintf(stderr, "libpcpu: fault point %ld: %s\n", n, what);
	return n == fault_at;
}
#else
static inline bool fault_hit(const char *what)
{
	(void)what;
	return false;
}
#endif

uint64_t pcpu_sys_calls;

bool pcpu_fault_hit(const char *what)
{
	return fault_hit(what);
}

void *pcpu_sys_mmap(size_t len, int prot)
{
	void *p;

	if (fault_hit("mmap")) {
		errno = ENOMEM;
		return NULL;
	}
	pcpu_sys_counted(1);
	p = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

int pcpu_sys_mmap_fixed(void *addr, size_t len, int fd, int prot)
{
	int flags = MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE | (fd < 0 ? MAP_ANONYMOUS : 0);

	if (fault_hit("mmap_fixed"))
		return -ENOMEM;
	pcpu_sys_counted(1);
	return mmap(addr, len, prot, flags, fd, 0) == MAP_FAILED ? -errno : 0;
}

int pcpu_sys_memfd(size_t size)
{
	int fd, err;

	if (fault_hit("memfd"))
		return -ENOMEM;
	/* Kernels before 6.3 do not know MFD_NOEXEC_SEAL (EINVAL); newer ones warn without it. */
	pcpu_sys_counted(2);
	fd = memfd_create("libpcpu", MFD_CLOEXEC | MFD_NOEXEC_SEAL);
	if (fd < 0 && errno == EINVAL) {
		pcpu_sys_counted(1);
		fd = memfd_create("libpcpu", MFD_CLOEXEC);
	}
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size)) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

int pcpu_sys_munmap(void *addr, size_t len)
{
	/* munmap is never failed on purpose: teardown must always succeed. */
	pcpu_sys_counted(1);
	return munmap(addr, len) ? -errno : 0;
}

int pcpu_sys_mprotect(void *addr, size_t len, int prot)
{
	/* Only making memory accessible may fail; giving it back must always work. */
	if (prot != PROT_NONE && fault_hit("mprotect"))
		return -ENOMEM;
	pcpu_sys_counted(1);
	return mprotect(addr, len, prot) ? -errno : 0;
}

int pcpu_sys_madvise(void *addr, size_t len, int advice)
{
	if (advice != MADV_DONTNEED && fault_hit("madvise"))
		return -ENOMEM;
	pcpu_sys_counted(1);
	return madvise(addr, len, advice) ? -errno : 0;
}

int pcpu_sys_mbind(void *addr, size_t len, int node)
{
	unsigned long mask[16] = {0};

	if (fault_hit("mbind"))
		return -EINVAL;
	if (node < 0 || node >= (int)(8 * sizeof(mask)))
		return -EINVAL;
	mask[node / BITS_PER_LONG] = 1UL << (node % BITS_PER_LONG);
	pcpu_sys_counted(1);
	return mbind(addr, len, MPOL_PREFERRED, mask, 8 * sizeof(mask), 0) ? -errno : 0;
}

long pcpu_sys_process_madvise(int pidfd, const struct iovec *iov, size_t n, int advice)
{
	long r;

	/* As with madvise: only giving memory back must always work. */
	if (advice != MADV_DONTNEED && fault_hit("process_madvise"))
		return -ENOMEM;
	pcpu_sys_counted(1);
	r = syscall(SYS_process_madvise, pidfd, iov, n, advice, 0);
	return r < 0 ? -errno : r;
}

void *pcpu_calloc(size_t n, size_t size)
{
	if (fault_hit("calloc"))
		return NULL;
	return calloc(n, size);
}

void *pcpu_malloc(size_t size)
{
	if (fault_hit("malloc"))
		return NULL;
	return malloc(size);
}

void *pcpu_realloc(void *p, size_t size)
{
	if (fault_hit("realloc"))
		return NULL;
	return realloc(p, size);
}

void pcpu_mfree(void *p)
{
	free(p);
}

#define SORT_NAME sort_words
#define SORT_T uintptr_t
#define SORT_KEY(w) (w)
#define SORT_MERGE_RUNS 8
#define SORT_SMALL 16
#include "sort_template.h"

void pcpu_sort_words(uintptr_t *a, uintptr_t *tmp, size_t n)
{
	uintptr_t *sorted = sort_words(a, tmp, n);

	if (sorted != a)
		memcpy(a, sorted, n * sizeof(*a));
}
