/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * pagemap - what the kernel says about the process's own pages, in one place: entries of
 * /proc/self/pagemap, PAGEMAP_SCAN (Linux 6.7) by page category, resident-page counting,
 * and the process's own pidfd (for process_madvise() on itself). Knows nothing of chunks.
 *
 * One descriptor each, opened on first use and shared by every caller (pread and ioctl on
 * them are safe from several threads). Fork policy: both name the process that opened
 * them, so a fork child would read its parent's page tables and advise its parent's memory.
 * A pthread_atfork() child handler forgets them (closes them in the child): the child's
 * next use opens its own. A child made without the fork handlers (a raw clone) must not
 * call the library, as for the rest of it.
 */
#ifndef PCPU_PAGEMAP_H
#define PCPU_PAGEMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>

/* PAGEMAP_SCAN's uapi, defined here because older headers lack it. */
struct pcpu_page_region {
	uint64_t start, end, categories;
};
struct pcpu_pm_scan_arg {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define PCPU_PAGEMAP_SCAN _IOWR('f', 16, struct pcpu_pm_scan_arg)
#define PCPU_PAGE_IS_FILE (1u << 2)
#define PCPU_PAGE_IS_PRESENT (1u << 3)
#define PCPU_PAGE_IS_SWAPPED (1u << 4)
#define PCPU_PAGE_IS_PFNZERO (1u << 5)

/* /proc/self/pagemap entry bits. */
#define PCPU_PM_PRESENT (1ULL << 63)
#define PCPU_PM_SWAPPED (1ULL << 62)
#define PCPU_PM_FILE (1ULL << 61) /* a page-cache page: in a chunk, never written */

/* pcpu_pm_written - a pagemap entry of chunk memory that may hold data. */
static inline bool pcpu_pm_written(uint64_t ent)
{
	return (ent & (PCPU_PM_PRESENT | PCPU_PM_FILE)) == PCPU_PM_PRESENT ||
	       (ent & PCPU_PM_SWAPPED);
}

/*
 * pcpu_pagemap_read - the pagemap entries of the @n pages from @addr into @ent.
 * Return true, or false when they cannot be read (no /proc, or a short read).
 */
bool pcpu_pagemap_read(uintptr_t addr, size_t n, uint64_t *ent);

/* Which pages a scan returns: PAGEMAP_SCAN's category masks (see the kernel's pagemap doc). */
struct pcpu_pm_query {
	uint64_t inverted, mask, anyof;
};

/*
 * pcpu_pagemap_scan - call @fn(start, end, arg) for each run of pages in [@start, @end)
 * that matches @q, in address order, with as few ioctls as the runs allow (one for up to
 * PCPU_PM_SCAN_VEC runs). Return 0, or a negative errno with nothing called for the
 * failing step: -ENOTTY/-EINVAL before Linux 6.7, -ENOENT without /proc. A failure after
 * some runs were reported returns the error too (the caller may redo it another way).
 */
#define PCPU_PM_SCAN_VEC 256
int pcpu_pagemap_scan(uintptr_t start, uintptr_t end, const struct pcpu_pm_query *q,
		      void (*fn)(uint64_t s, uint64_t e, void *arg), void *arg);
/* pcpu_pagemap_scan_vec - the same with the caller's buffer of @len regions (less stack). */
int pcpu_pagemap_scan_vec(uintptr_t start, uintptr_t end, const struct pcpu_pm_query *q,
			  void (*fn)(uint64_t s, uint64_t e, void *arg), void *arg,
			  struct pcpu_page_region *vec, size_t len);

/*
 * pcpu_pagemap_resident - pages of [@start, @start + @n pages) that are present, and with
 * @own_only, the process's own (neither the shared zero page nor a page-cache page).
 * PAGEMAP_SCAN where there is one, else the pagemap entries (which cannot tell the zero
 * page: @own_only then leaves out page-cache pages only). Return -1 when neither is
 * readable (the caller may ask mincore()).
 */
long pcpu_pagemap_resident(uintptr_t start, size_t n, bool own_only);

/* pcpu_self_pidfd - a pidfd of this process (pidfd_open, Linux 5.3), or -1. */
int pcpu_self_pidfd(void);

/*
 * pcpu_pagemap_fini - close the descriptors (library unload), once nothing can use them:
 * after the balancer has stopped.
 */
void pcpu_pagemap_fini(void);

#endif /* PCPU_PAGEMAP_H */
