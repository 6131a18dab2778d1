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
	const char *p = mem;
	const unsigned long *w;

	for (; n && ((uintptr_t)p % sizeof(long)); p++, n--)
		if (*p)
			return false;
	for (w = (const unsigned long *)(const void *)p; n >= sizeof(long); w++, n -= sizeof(long))
		if (*w)
			return false;
	for (p = (const char *)w; n; p++, n--)
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

/* Runs a batch may hold and still be merged rather than radix-sorted. */
#define SORT_MERGE_RUNS 8

static void reverse_words(uintptr_t *a, size_t n)
{
	for (size_t lo = 0, hi = n - 1; n && lo < hi; lo++, hi--) {
		uintptr_t t = a[lo];

		a[lo] = a[hi];
		a[hi] = t;
	}
}

/*
 * Cut @a into maximal runs, ascending or strictly descending, turning the descending ones
 * around; their starts go to @start. Return how many, or SORT_MERGE_RUNS + 1 as soon as
 * there are more (some runs are then turned around, which does not matter to the caller).
 */
static size_t sort_runs(uintptr_t *a, size_t n, size_t *start)
{
	size_t nr = 0;

	for (size_t i = 0, j; i < n; i = j) {
		if (nr == SORT_MERGE_RUNS)
			return nr + 1;
		start[nr++] = i;
		j = i + 1;
		if (j < n && a[j] < a[i]) {
			while (j < n && a[j] < a[j - 1])
				j++;
			reverse_words(a + i, j - i);
		} else {
			while (j < n && a[j] >= a[j - 1])
				j++;
		}
	}
	return nr;
}

/* Merge the @nr sorted runs of @a that begin at @start (ascending) with @tmp. */
static void merge_runs(uintptr_t *a, uintptr_t *tmp, size_t n, size_t *start, size_t nr)
{
	uintptr_t *src = a, *dst = tmp;

	while (nr > 1) {
		size_t k = 0;

		for (size_t r = 0; r < nr; r += 2) {
			size_t lo = start[r], mid = r + 1 < nr ? start[r + 1] : n;
			size_t hi = r + 2 < nr ? start[r + 2] : n, i = lo, j = mid, o = lo;

			while (i < mid && j < hi)
				dst[o++] = src[j] < src[i] ? src[j++] : src[i++];
			while (i < mid)
				dst[o++] = src[i++];
			while (j < hi)
				dst[o++] = src[j++];
			start[k++] = lo;
		}
		nr = k;
		{
			uintptr_t *t = src;

			src = dst;
			dst = t;
		}
	}
	if (src != a)
		memcpy(a, src, n * sizeof(*a));
}

void pcpu_sort_words(uintptr_t *a, uintptr_t *tmp, size_t n)
{
	uintptr_t diff = 0, *src = a, *dst = tmp;
	size_t i, start[SORT_MERGE_RUNS], nr = sort_runs(a, n, start);

	/*
	 * A few runs, either way round: what the lists hand back (a LIFO cycle pops the top
	 * first and pushes it again; arrays and depot swap halves): at most three merge
	 * passes, none when the batch is one run.
	 */
	if (nr <= SORT_MERGE_RUNS) {
		merge_runs(a, tmp, n, start, nr);
		return;
	}
	for (i = 1; i < n; i++)
		diff |= a[i] ^ a[0];
	for (unsigned shift = 0; shift < 8 * sizeof(uintptr_t); shift += 8) {
		size_t count[256] = {0}, pos = 0;

		if (!((diff >> shift) & 0xff))
			continue;
		for (i = 0; i < n; i++)
			count[(src[i] >> shift) & 0xff]++;
		for (unsigned d = 0; d < 256; d++) {
			size_t c = count[d];

			count[d] = pos;
			pos += c;
		}
		for (i = 0; i < n; i++)
			dst[count[(src[i] >> shift) & 0xff]++] = src[i];
		{
			uintptr_t *t = src;

			src = dst;
			dst = t;
		}
	}
	if (src != a)
		memcpy(a, src, n * sizeof(*a));
}
