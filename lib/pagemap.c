/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * The process's view of its own pages (pagemap.h): one /proc/self/pagemap descriptor and
 * one pidfd, each opened on first use, forgotten in a fork child.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "config.h"
#include "pagemap.h"
#include "util.h"

#if PCPU_VALGRIND
#include <valgrind/valgrind.h>
#endif

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

/* -1: not opened yet; -2: cannot be (no /proc, or no pidfd_open before Linux 5.3). */
static int pagemap_fd = -1, self_pidfd = -1;
/* PAGEMAP_SCAN: 1 works, 0 unknown yet, -1 not in this kernel (before 6.7). */
static int scan_works;
static size_t page_size;

/*
 * The fork child's handler: the parent's descriptors name the parent. Nothing else runs
 * in the child yet, so plain stores do. (The parent's copies stay open in the parent.)
 */
static void pagemap_atfork_child(void)
{
	if (pagemap_fd >= 0)
		close(pagemap_fd);
	if (self_pidfd >= 0)
		close(self_pidfd);
	pagemap_fd = self_pidfd = -1;
}

__attribute__((constructor)) static void pagemap_init(void)
{
	page_size = (size_t)sysconf(_SC_PAGESIZE);
	pthread_atfork(NULL, NULL, pagemap_atfork_child);
}

void pcpu_pagemap_fini(void)
{
	pagemap_atfork_child();
}

/*
 * Open a descriptor once for every thread: the first to finish publishes its own, a
 * loser closes its copy. @slot is read and written atomically; @open_fn returns -1 on
 * failure (then -2 is kept: the failure does not change while the process lives).
 */
static int self_fd(int *slot, int (*open_fn)(void))
{
	int fd = __atomic_load_n(slot, __ATOMIC_ACQUIRE), expect = -1, mine;

	if (fd != -1)
		return fd;
	mine = open_fn();
	if (mine < 0)
		mine = -2;
	if (__atomic_compare_exchange_n(slot, &expect, mine, false, __ATOMIC_ACQ_REL,
					__ATOMIC_ACQUIRE))
		return mine;
	if (mine >= 0)
		close(mine);
	return expect;
}

static int open_pagemap(void)
{
	if (pcpu_fault_hit("open_pagemap"))
		return -1;
	pcpu_sys_counted(1);
	return open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
}

static int open_pidfd(void)
{
#if PCPU_VALGRIND
	/* Valgrind (3.19) knows neither pidfd_open nor process_madvise, and says so. */
	if (RUNNING_ON_VALGRIND)
		return -1;
#endif
	if (pcpu_fault_hit("pidfd_open"))
		return -1;
	pcpu_sys_counted(2);
	return (int)syscall(SYS_pidfd_open, getpid(), 0);
}

int pcpu_self_pidfd(void)
{
	int fd = self_fd(&self_pidfd, open_pidfd);

	return fd >= 0 ? fd : -1;
}

bool pcpu_pagemap_read(uintptr_t addr, size_t n, uint64_t *ent)
{
	int fd = self_fd(&pagemap_fd, open_pagemap);
	size_t len = n * sizeof(*ent);

	if (fd < 0 || pcpu_fault_hit("pagemap_read"))
		return false;
	pcpu_sys_counted(1);
	return pread(fd, ent, len, (off_t)(addr / page_size * sizeof(*ent))) == (ssize_t)len;
}

int pcpu_pagemap_scan(uintptr_t start, uintptr_t end, const struct pcpu_pm_query *q,
		      void (*fn)(uint64_t s, uint64_t e, void *arg), void *arg)
{
	struct pcpu_page_region vec[PCPU_PM_SCAN_VEC];

	return pcpu_pagemap_scan_vec(start, end, q, fn, arg, vec, PCPU_PM_SCAN_VEC);
}

int pcpu_pagemap_scan_vec(uintptr_t start, uintptr_t end, const struct pcpu_pm_query *q,
			  void (*fn)(uint64_t s, uint64_t e, void *arg), void *arg,
			  struct pcpu_page_region *vec, size_t len)
{
	int fd = self_fd(&pagemap_fd, open_pagemap);
	struct pcpu_pm_scan_arg a;

	if (fd < 0)
		return -ENOENT;
	if (!__atomic_load_n(&scan_works, __ATOMIC_RELAXED)) {
		/* Tests: PCPU__PAGEMAP_SCAN=0 behaves as a kernel before 6.7 (the fallbacks). */
		const char *e = pcpu_getenv("PCPU__PAGEMAP_SCAN");

		if (e && !strcmp(e, "0"))
			__atomic_store_n(&scan_works, -1, __ATOMIC_RELAXED);
	}
	if (__atomic_load_n(&scan_works, __ATOMIC_RELAXED) < 0)
		return -ENOTTY;
	while (start < end) {
		long n;

		if (pcpu_fault_hit("pagemap_scan"))
			return -ENOMEM;
		/* Memory checkers do not know this ioctl writes @vec: start from defined bytes. */
		memset(vec, 0, len * sizeof(*vec));
		memset(&a, 0, sizeof(a));
		a.size = sizeof(a);
		a.start = start;
		a.end = end;
		a.vec = (uintptr_t)vec;
		a.vec_len = len;
		a.category_inverted = q->inverted;
		a.category_mask = q->mask;
		a.category_anyof_mask = q->anyof;
		/*
		 * Runs are cut where a returned category changes: ask for none that differs
		 * within what the query matches (PRESENT is constant unless SWAPPED is wanted).
		 */
		a.return_mask = PCPU_PAGE_IS_PRESENT;
		pcpu_sys_counted(1);
		n = ioctl(fd, PCPU_PAGEMAP_SCAN, &a);
		if (n < 0) {
			int err = errno;

			if (err == ENOTTY || err == EINVAL)
				__atomic_store_n(&scan_works, -1, __ATOMIC_RELAXED);
			return -err;
		}
		__atomic_store_n(&scan_works, 1, __ATOMIC_RELAXED);
		for (long i = 0; i < n; i++)
			fn(vec[i].start, vec[i].end, arg);
		if (a.walk_end <= start)
			return -EIO; /* no progress: never loop forever on a kernel quirk */
		start = a.walk_end;
	}
	return 0;
}

static void count_pages(uint64_t s, uint64_t e, void *arg)
{
	*(long *)arg += (long)((e - s) / page_size);
}

long pcpu_pagemap_resident(uintptr_t start, size_t n, bool own_only)
{
	struct pcpu_pm_query q = {.anyof = PCPU_PAGE_IS_PRESENT};
	uint64_t ent[512];
	long pages = 0;

	if (own_only) {
		/* Present, and neither the zero page nor a memfd page-cache page. */
		q = (struct pcpu_pm_query){
		    .mask = PCPU_PAGE_IS_PRESENT | PCPU_PAGE_IS_PFNZERO | PCPU_PAGE_IS_FILE,
		    .inverted = PCPU_PAGE_IS_PFNZERO | PCPU_PAGE_IS_FILE,
		};
	}
	if (!pcpu_pagemap_scan(start, start + n * page_size, &q, count_pages, &pages))
		return pages;
	/* Before Linux 6.7: the entries themselves, 512 pages per read. */
	pages = 0;
	for (size_t done = 0; done < n;) {
		size_t cnt = n - done < ARRAY_SIZE(ent) ? n - done : ARRAY_SIZE(ent);

		if (!pcpu_pagemap_read(start + done * page_size, cnt, ent))
			return -1;
		for (size_t i = 0; i < cnt; i++)
			pages += own_only ? (ent[i] & (PCPU_PM_PRESENT | PCPU_PM_FILE)) ==
						PCPU_PM_PRESENT
					  : (ent[i] & PCPU_PM_PRESENT) != 0;
		done += cnt;
	}
	return pages;
}
