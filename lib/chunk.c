/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * Chunk memory (the kernel's percpu-vm backend, in user space): a MAP_NORESERVE reservation
 * per chunk, accessible from creation, costs no memory until written; population prefaults
 * the allowed CPUs' units; depopulation gives back the pages present in the range (see
 * chunk.h for the system calls and mappings each costs, and the guard=1 debug mode).
 */
#include <errno.h>
#include <fcntl.h>
#include <numa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <pcpu.h>

#include "checker.h"
#include "config.h"
#include "chunk.h"
#include "config.h"
#include "cpu.h"
#include "pagemap.h"
#include "topology.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

struct pcpu_geom pcpu_geom;
uint64_t pcpu_chunk_bind_failures;
uint64_t pcpu_chunk_pages_populated, pcpu_chunk_pages_depopulated;
enum pcpu_zero_source pcpu_zero_source;
int pcpu_kernel_zero_page = -1;
bool pcpu_zero_source_forced;
uint64_t pcpu_chunk_memfd_fallbacks, pcpu_chunk_memfd_over_budget;

/* CPUs the process may run on, re-read at each population (affinity can change). */
static unsigned char *allowed;

/*
 * Ranges for one process_madvise() call (the kernel's UIO_MAXIOV), filled by population
 * and depopulation, which both run under pcpu_alloc_mutex.
 */
#define IOV_BATCH 1024
static struct iovec iov[IOV_BATCH];
/* process_madvise() on ourselves with this advice: 0 unknown, 1 works, -1 refused. */
static int pmadv_populate, pmadv_dontneed;

/* The machine has one memory node: binding a group there or not places pages alike. */
static bool one_mem_node;

/*
 * Memfd views cost mappings: every unit is a VMA of its own (the views of one memfd all
 * map offset 0, so they never merge), where an anonymous chunk is one VMA per bind group,
 * populated or not (chunk.h). vm.max_map_count (65530 by default) bounds a process's VMAs,
 * and at thousands of units a few chunks would reach it: any later mmap, mprotect or
 * munmap that needs a VMA, ours or the program's (or a sanitizer runtime's), would fail
 * with ENOMEM. The VMAs memfd views take (one per unit and chunk; population and
 * depopulation split none, guard=1 aside, which uses no memfd views) may take at most half
 * of it; beyond, chunks stay anonymous (counted as fallbacks). Under pcpu_alloc_mutex, as
 * chunk creation and destruction are.
 */
static long memfd_vma_budget, memfd_vmas;

static long max_map_count(void)
{
	FILE *f = fopen("/proc/sys/vm/max_map_count", "re");
	long n = 0;

	if (f) {
		if (fscanf(f, "%ld", &n) != 1)
			n = 0;
		fclose(f);
	}
	return n > 0 ? n : 65530;
}

/*
 * Does a read fault on never-written private anonymous memory map the shared zero page?
 * PAGEMAP_SCAN (Linux 6.7) says so of a page just read (PAGE_IS_PFNZERO); before that, the
 * mapping's resident size in /proc/self/smaps counts every page read where it does not.
 * Return 1, 0, or -1 when neither way could tell.
 */
static void count_run(uint64_t s, uint64_t e, void *arg)
{
	*(uint64_t *)arg += e - s;
}

static int scan_pfnzero(const char *p)
{
	struct pcpu_pm_query present = {.mask = PCPU_PAGE_IS_PRESENT};
	struct pcpu_pm_query zero = {.mask = PCPU_PAGE_IS_PRESENT | PCPU_PAGE_IS_PFNZERO};
	uint64_t s = (uintptr_t)p, e = s + pcpu_geom.page, n = 0, z = 0;

	if (pcpu_pagemap_scan(s, e, &present, count_run, &n) || !n)
		return -1; /* no ioctl (before 6.7), or the page went away meanwhile */
	if (pcpu_pagemap_scan(s, e, &zero, count_run, &z))
		return -1;
	return z != 0;
}

/*
 * Resident bytes of the mapping that starts at @p, from /proc/self/smaps (its "Rss:" line):
 * the zero page is not counted there, and nothing else the process does meanwhile is (a
 * delta of the whole process's resident set, as in /proc/self/statm, is not robust: a
 * heap that grows by a transparent huge page in between looks like 512 pages read).
 */
static long smaps_rss(const volatile char *p)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	char line[256], head[32];
	long rss = -1;
	bool ours = false;

	if (!f)
		return -1;
	snprintf(head, sizeof(head), "%lx-", (unsigned long)(uintptr_t)p);
	while (fgets(line, sizeof(line), f)) {
		if (!ours) {
			ours = !strncmp(line, head, strlen(head));
		} else if (!strncmp(line, "Rss:", 4)) {
			rss = strtol(line + 4, NULL, 10) * 1024;
			break;
		}
	}
	fclose(f);
	return rss;
}

#define PROBE_PAGES 16

static int probe_zero_page(void)
{
	size_t len = PROBE_PAGES * pcpu_geom.page;
	volatile char *p = pcpu_sys_mmap(len, PROT_READ | PROT_WRITE);
	long rss;
	int ret = -1;

	if (!p)
		return -1;
	madvise((void *)p, len, MADV_NOHUGEPAGE);
	(void)p[0];
	ret = scan_pfnzero((const char *)p);
	if (ret >= 0)
		goto out;
	for (size_t o = pcpu_geom.page; o < len; o += pcpu_geom.page)
		(void)p[o];
	rss = smaps_rss(p);
	if (rss >= 0)
		ret = rss < (long)len; /* every page read allocated: no zero page */
out:
	pcpu_sys_munmap((void *)p, len);
	return ret;
}

static void zero_source_init(void)
{
	const char *e = pcpu_getenv("PCPU__ZERO_SOURCE");

	pcpu_kernel_zero_page = probe_zero_page();
	pcpu_zero_source = pcpu_kernel_zero_page == 0 ? PCPU_ZERO_MEMFD : PCPU_ZERO_ANON;
	pcpu_zero_source_forced = false;
	if (e && *e) {
		if (!strcmp(e, "anon") || !strcmp(e, "memfd")) {
			pcpu_zero_source = *e == 'a' ? PCPU_ZERO_ANON : PCPU_ZERO_MEMFD;
			pcpu_zero_source_forced = true;
		} else {
			pcpu_warn("PCPU__ZERO_SOURCE: \"%s\" is neither anon nor memfd, ignored",
				  e);
		}
	}
	one_mem_node = !pcpu_topo.numa || numa_max_node() == 0;
	memfd_vma_budget =
	    pcpu_zero_source == PCPU_ZERO_MEMFD && !pcpu_settings.guard ? max_map_count() / 2 : 0;
	memfd_vmas = 0;
}

/*
 * The automatic unit size: 256 KiB, halved (down to 64 KiB, the smallest accepted) while a
 * chunk would reserve more than PCPU_CHUNK_VSIZE_AUTO. Whatever walks a chunk's whole range
 * (one PAGEMAP_SCAN per zeroing batch, per trim and resident count) pays about 14 ns per
 * empty 2 MiB of it: 1 GiB at 4096 units of 256 KiB was 10 us a batch, 20 ns of every
 * alloc/free pair. The largest dynamic allocation shrinks with it (64 KiB from 4096 CPUs;
 * API.md promises 32 KiB).
 */
#define PCPU_CHUNK_VSIZE_AUTO ((size_t)256 << 20)

static size_t auto_unit_size(unsigned nr_units)
{
	size_t unit = (size_t)256 << 10;

	while (unit > ((size_t)64 << 10) && (size_t)nr_units * unit > PCPU_CHUNK_VSIZE_AUTO)
		unit /= 2;
	return unit;
}

void pcpu_geom_init(size_t unit_size, unsigned nr_units)
{
	if (!unit_size)
		unit_size = auto_unit_size(nr_units);
	pcpu_geom.page = (size_t)sysconf(_SC_PAGESIZE);
	pcpu_geom.unit_size = unit_size;
	pcpu_geom.stride = unit_size + pcpu_geom.page;
	pcpu_geom.nr_units = nr_units;
	pcpu_geom.nr_pages = (int)(unit_size / pcpu_geom.page);
	pcpu_geom.vsize = (size_t)nr_units * pcpu_geom.stride;
	zero_source_init();
}

/* The node @grp is bound to, or -1 when it is not bound (as bind_groups() decides). */
static int group_bind_node(const struct pcpu_group *grp)
{
	return pcpu_topo.numa && grp->mem_node >= 0 ? grp->mem_node : -1;
}

/*
 * The memfd a group's units map: groups whose pages land on the same node share one (its
 * shared policy is per file offset, and every unit maps offset 0), so a page offset read in
 * every unit costs one page per node, not one per unit.
 */
static int group_memfd_key(const struct pcpu_group *grp)
{
	return one_mem_node ? -1 : group_bind_node(grp);
}

/*
 * Memfd zero source: map every unit over its slot of the reservation at @base as a
 * MAP_PRIVATE, read-write view of offset 0 of its groups' memfd, one stride long (the
 * colour page included), then close the memfd: the mappings keep it alive until the chunk
 * is unmapped, and no descriptor outlives chunk creation (a daemon may close them all).
 */
static int map_memfds(char *base)
{
	for (unsigned g = 0; g < pcpu_topo.nr_groups; g++) {
		int key = group_memfd_key(&pcpu_topo.groups[g]);
		bool seen = false;
		int fd, err = 0;

		for (unsigned h = 0; h < g && !seen; h++)
			seen = group_memfd_key(&pcpu_topo.groups[h]) == key;
		if (seen)
			continue; /* mapped with group h's memfd */
		fd = pcpu_sys_memfd(pcpu_geom.stride);
		if (fd < 0)
			return fd;
		for (unsigned h = g; h < pcpu_topo.nr_groups && !err; h++) {
			const struct pcpu_group *grp = &pcpu_topo.groups[h];

			if (group_memfd_key(grp) != key)
				continue;
			for (unsigned u = grp->first_unit;
			     u < grp->first_unit + grp->nr_units && !err; u++)
				err = pcpu_sys_mmap_fixed(base + (size_t)u * pcpu_geom.stride,
							  pcpu_geom.stride, fd,
							  PROT_READ | PROT_WRITE);
		}
		close(fd);
		if (err)
			return err;
	}
	return 0;
}

/* Bind each group's run of units to its node before anything touches it. */
static void bind_groups(char *base)
{
	for (unsigned g = 0; g < pcpu_topo.nr_groups; g++) {
		const struct pcpu_group *grp = &pcpu_topo.groups[g];

		if (group_bind_node(grp) < 0) {
			pcpu_chunk_bind_failures++;
			continue;
		}
		if (pcpu_sys_mbind(base + (size_t)grp->first_unit * pcpu_geom.stride,
				   (size_t)grp->nr_units * pcpu_geom.stride, grp->mem_node))
			pcpu_chunk_bind_failures++;
	}
}

int pcpu_chunk_create(struct pcpu_chunk **out, int set, bool coloured)
{
	struct pcpu_chunk *c;
	int err;

	c = pcpu_calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	list_init(&c->list);
	c->set = set;
	c->owns_mapping = true;
	err = pcpu_am_init(&c->map, (int)pcpu_geom.unit_size, (int)pcpu_geom.page, 0, 0, false);
	if (err)
		goto fail_chunk;
	/* Dynamic chunks need no dirty map: free space in them is always zero (alloc.c). */
	list_init(&c->queue_list);
	c->queue_first = c->map.map_bits;
	c->queued = pcpu_calloc(BITS_TO_LONGS(c->map.map_bits), sizeof(unsigned long));
	if (!c->queued)
		goto fail_map;
	/* Accounted chunks record each allocation's owner (kernel: chunk->obj_exts). */
	if (set == 1) {
		c->owner = pcpu_calloc((size_t)c->map.map_bits, sizeof(*c->owner));
		if (!c->owner)
			goto fail_queued;
	}
	/*
	 * Accessible from creation (chunk.h). Where the kernel will not reserve that much
	 * accessible memory (vm.overcommit_memory=2 charges it despite MAP_NORESERVE), a
	 * PROT_NONE reservation, whose populated ranges only are charged, with the guard.
	 */
	c->guarded = pcpu_settings.guard;
	c->base = c->guarded ? NULL : pcpu_sys_mmap(pcpu_geom.vsize, PROT_READ | PROT_WRITE);
	if (!c->base) {
		c->guarded = true;
		c->base = pcpu_sys_mmap(pcpu_geom.vsize, PROT_NONE);
	}
	if (!c->base)
		goto fail_queued;
	/* Guarded pages are protected page by page: a coloured unit straddles them. */
	c->coloured = coloured && !c->guarded && PCPU_HANDLE_COLOUR != 0 && pcpu_settings.colour;
	c->colourless = !c->coloured && (coloured || PCPU_HANDLE_COLOUR == 0 || !pcpu_settings.colour);
	if (pcpu_zero_source == PCPU_ZERO_MEMFD) {
		long vmas = (long)pcpu_geom.nr_units;

		if (c->guarded) {
			/* Views would be split by every population: guarded chunks stay anon. */
			pcpu_chunk_memfd_fallbacks++;
		} else if (memfd_vmas + vmas > memfd_vma_budget) {
			pcpu_chunk_memfd_fallbacks++;
			pcpu_chunk_memfd_over_budget++;
		} else if (map_memfds(c->base)) {
			/*
			 * No memfd views (out of descriptors, memory, mappings): this chunk
			 * stays anonymous, correct but reads of never-written copies cost
			 * pages. A failed MAP_FIXED may leave a hole: remap the whole range.
			 */
			if (pcpu_sys_mmap_fixed(c->base, pcpu_geom.vsize, -1,
						PROT_READ | PROT_WRITE)) {
				pcpu_sys_munmap(c->base, pcpu_geom.vsize);
				goto fail_queued;
			}
			pcpu_chunk_memfd_fallbacks++;
		} else {
			c->memfd = true;
			memfd_vmas += vmas;
		}
	}
	/*
	 * Copies are written by one CPU each and should cost memory only where written: a
	 * transparent huge page would turn one written byte into 2 MiB of one unit. (After the
	 * memfd views, which replace the VMAs.)
	 */
	madvise(c->base, pcpu_geom.vsize, MADV_NOHUGEPAGE);
	/*
	 * On a memfd view, mbind sets the memfd's shared policy, which places the private
	 * pages its units' writes copy into (one memfd per node, so they all agree).
	 */
	bind_groups(c->base);
	*out = c;
	return 0;
fail_queued:
	pcpu_mfree(c->owner);
	pcpu_mfree(c->queued);
fail_map:
	pcpu_am_destroy(&c->map);
fail_chunk:
	pcpu_mfree(c);
	return -ENOMEM;
}

void pcpu_chunk_destroy(struct pcpu_chunk *c)
{
	if (!c)
		return;
	pcpu_checker_unmap(c);
	if (c->owns_mapping && c->base)
		pcpu_sys_munmap(c->base, pcpu_geom.vsize);
	if (c->memfd)
		memfd_vmas -= (long)pcpu_geom.nr_units;
	pcpu_am_destroy(&c->map);
	pcpu_mfree(c->dirty);
	pcpu_mfree(c->queued);
	pcpu_mfree(c->owner);
	pcpu_mfree(c->callers);
	pcpu_mfree(c);
}

/*
 * Bytes from region page ps that hold pages [ps, pe) of every unit: with the colour page
 * when pe is the last, and in a coloured chunk always one page more (the units' logical
 * pages straddle their region's pages, chunk.h).
 */
static size_t range_len(const struct pcpu_chunk *c, int ps, int pe)
{
	size_t len = (size_t)(pe - ps) * pcpu_geom.page;

	return pe == pcpu_geom.nr_pages || c->coloured ? len + pcpu_geom.page : len;
}

static int prefault(char *addr, size_t len)
{
	int err = pcpu_sys_madvise(addr, len, MADV_POPULATE_WRITE);

	if (err == -EINVAL || err == -ENOSYS) {
		/* Kernels before 5.14: touch each page (still on the node mbind chose). */
		for (size_t o = 0; o < len; o += pcpu_geom.page)
			__atomic_fetch_add((char *)addr + o, 0, __ATOMIC_RELAXED);
		return 0;
	}
	return err;
}

/*
 * Apply @advice to iov[0, n): one process_madvise() on ourselves, where the kernel takes
 * this advice that way (any advice since Linux 6.13; before, it refuses with EINVAL), else
 * one madvise() per range. *@works caches the answer. Return 0 or a negative errno.
 */
static int advise_ranges(size_t n, int advice, int *works)
{
	size_t done = 0;
	int pidfd;

	if (!n)
		return 0;
	pidfd = *works >= 0 ? pcpu_self_pidfd() : -1;
	if (pidfd >= 0) {
		size_t total = 0;
		long r;

		for (size_t i = 0; i < n; i++)
			total += iov[i].iov_len;
		r = pcpu_sys_process_madvise(pidfd, iov, n, advice);
		if (r == (long)total) {
			*works = 1;
			return 0;
		}
		if (r == -EINVAL || r == -ENOSYS || r == -EPERM)
			*works = -1;
		else if (r < 0 && *works > 0 && advice != MADV_DONTNEED)
			return (int)r; /* a real failure (no memory): the caller undoes */
		/* Partly done, or refused: the rest range by range (the error repeats there). */
		for (size_t b = r > 0 ? (size_t)r : 0; done < n && b >= iov[done].iov_len; done++)
			b -= iov[done].iov_len;
	}
	for (; done < n; done++) {
		int err = advice == MADV_POPULATE_WRITE
			      ? prefault(iov[done].iov_base, iov[done].iov_len)
			      : pcpu_sys_madvise(iov[done].iov_base, iov[done].iov_len, advice);

		if (err)
			return err;
	}
	return 0;
}

/*
 * Fault pages [ps, pe) in for the copies the process may use now: those of the CPUs it may
 * run on, or with index=cid the first as many copies (the kernel hands out concurrency
 * ids from 0, fewer than the CPUs allowed). The others read zero (the zero page, or their
 * memfd's page-cache page) until first written, and then fault in on the node their unit
 * is bound to. System calls: one per 1024 allowed CPUs.
 */
static int prefault_allowed(struct pcpu_chunk *c, int ps, int pe)
{
	size_t off = (size_t)ps * pcpu_geom.page, len = (size_t)(pe - ps) * pcpu_geom.page;
	bool cid = pcpu_cpu_index_now() == PCPU_INDEX_CID;
	unsigned nr_allowed = 0;
	size_t n = 0;
	int err;

	for (unsigned cpu = 0; cpu < pcpu_topo.nr_cpus; cpu++)
		nr_allowed += allowed[cpu] != 0;
	for (unsigned cpu = 0, i = 0; cpu < pcpu_topo.nr_cpus; cpu++) {
		if (cid ? i >= nr_allowed : !allowed[cpu])
			continue;
		i++;
		iov[n].iov_base = pcpu_unit_region(c, pcpu_topo.cpu_unit[cpu], off);
		/* A coloured unit's last page runs into the next region page. */
		iov[n++].iov_len =
		    len + (pcpu_unit_colour(c, pcpu_topo.cpu_unit[cpu]) ? pcpu_geom.page : 0);
		if (n == IOV_BATCH) {
			err = advise_ranges(n, MADV_POPULATE_WRITE, &pmadv_populate);
			if (err)
				return err;
			n = 0;
		}
	}
	return advise_ranges(n, MADV_POPULATE_WRITE, &pmadv_populate);
}

/* guard=1: make pages [ps, pe) of every unit accessible (@prot) or not, unit by unit. */
static int guard_protect(struct pcpu_chunk *c, int ps, int pe, int prot, unsigned *done)
{
	size_t off = (size_t)ps * pcpu_geom.page, len = range_len(c, ps, pe);

	*done = 0;
	if (ps == 0 && pe == pcpu_geom.nr_pages) {
		/* The whole chunk: one call (anonymous units then merge into one mapping). */
		if (pcpu_sys_mprotect(c->base, pcpu_geom.vsize, prot))
			return -ENOMEM;
		*done = pcpu_geom.nr_units;
		return 0;
	}
	for (unsigned u = 0; u < pcpu_geom.nr_units; u++, (*done)++)
		if (pcpu_sys_mprotect(pcpu_unit_region(c, u, off), len, prot))
			return -ENOMEM;
	return 0;
}

/*
 * Call @fn(addr, len, arg) for each run of pages matching @q within bytes [off, off + len)
 * of every unit's region, in address order: one PAGEMAP_SCAN over the span from unit 0's
 * window to the last unit's, its runs clipped to each unit's window. Return 0, or a
 * negative errno when the scan cannot be made (before Linux 6.7, or without /proc): then
 * @fn may have been called for some runs already.
 */
struct clip {
	const struct pcpu_chunk *c;
	size_t off, len;
	void (*fn)(char *addr, size_t len, void *arg);
	void *arg;
};

static void clip_run(uint64_t s, uint64_t e, void *arg)
{
	const struct clip *k = arg;
	uint64_t base = (uintptr_t)k->c->base;

	for (uint64_t u = (s - base) / pcpu_geom.stride; u < pcpu_geom.nr_units; u++) {
		uint64_t ws = base + u * pcpu_geom.stride + k->off, we = ws + k->len;

		if (ws >= e)
			break;
		if (we <= s)
			continue;
		ws = ws > s ? ws : s;
		we = we < e ? we : e;
		k->fn((char *)(uintptr_t)ws, (size_t)(we - ws), k->arg);
	}
}

static int scan_units(const struct pcpu_chunk *c, size_t off, size_t len,
		      const struct pcpu_pm_query *q, void (*fn)(char *addr, size_t len, void *arg),
		      void *arg)
{
	struct clip k = {c, off, len, fn, arg};
	uintptr_t start = (uintptr_t)pcpu_unit_region(c, 0, k.off);
	uintptr_t end = (uintptr_t)pcpu_unit_region(c, pcpu_geom.nr_units - 1, k.off) + k.len;

	return pcpu_pagemap_scan(start, end, q, clip_run, &k);
}

/* Depopulation's ranges: iov[0, nr), given back whenever 1024 are collected. */
struct giveback {
	size_t nr;
};

static void giveback_add(char *addr, size_t len, void *arg)
{
	struct giveback *g = arg;

	if (g->nr && (char *)iov[g->nr - 1].iov_base + iov[g->nr - 1].iov_len == addr) {
		iov[g->nr - 1].iov_len += len;
		return;
	}
	if (g->nr == IOV_BATCH) {
		advise_ranges(g->nr, MADV_DONTNEED, &pmadv_dontneed);
		g->nr = 0;
	}
	iov[g->nr].iov_base = addr;
	iov[g->nr++].iov_len = len;
}

/*
 * Before Linux 6.7: the same from the pagemap entries of the span, PM_WINDOW pages per
 * read (a few reads per chunk, not one call per unit). Return false when they cannot be
 * read (then nothing was given back).
 */
#define PM_WINDOW 4096
static uint64_t pm_ent[PM_WINDOW]; /* pcpu_alloc_mutex */

static bool give_back_entries(struct pcpu_chunk *c, size_t off, size_t len, struct giveback *g)
{
	size_t page = pcpu_geom.page, stride = pcpu_geom.stride / page;
	size_t first = off / page,
	       last = (size_t)(pcpu_geom.nr_units - 1) * stride + (off + len) / page;

	for (size_t w = first; w < last; w += PM_WINDOW) {
		size_t n = last - w < PM_WINDOW ? last - w : PM_WINDOW;

		if (!pcpu_pagemap_read((uintptr_t)c->base + w * page, n, pm_ent))
			return false;
		for (size_t i = 0; i < n; i++) {
			size_t in_unit = (w + i) % stride * page;

			if (in_unit >= off && in_unit < off + len &&
			    (pm_ent[i] & (PCPU_PM_PRESENT | PCPU_PM_SWAPPED)))
				giveback_add(c->base + (w + i) * page, page, g);
		}
	}
	return true;
}

/*
 * The region pages that pages [ps, pe) of every unit free: [*@off, *@off + *@len). In a
 * coloured chunk the region pages at either end are shared with the logical pages next to
 * the range, and stay while those are populated (a free page reads zero whether or not it
 * is given back: only its memory is at stake).
 */
static void free_window(const struct pcpu_chunk *c, int ps, int pe, size_t *off, size_t *len)
{
	int vs = ps, ve = pe == pcpu_geom.nr_pages ? pe + 1 : pe;

	if (c->coloured) {
		if (ps > 0 && pcpu_am_block_populated(&c->map, ps - 1))
			vs++;
		if (pe == pcpu_geom.nr_pages || !pcpu_am_block_populated(&c->map, pe))
			ve = pe + 1;
	}
	*off = (size_t)vs * pcpu_geom.page;
	*len = ve > vs ? (size_t)(ve - vs) * pcpu_geom.page : 0;
}

/*
 * Give back pages [ps, pe) of every unit (free_window()): only the pages the kernel has
 * there (present, or swapped out, whose contents would come back), found with one scan
 * (before Linux 6.7: from the pagemap entries); without the pagemap, every unit's range.
 * 1024 ranges per process_madvise(), or one madvise() per range on kernels that refuse
 * process_madvise(MADV_DONTNEED) on ourselves (before 6.13).
 */
static void give_back(struct pcpu_chunk *c, int ps, int pe)
{
	struct pcpu_pm_query q = {.anyof = PCPU_PAGE_IS_PRESENT | PCPU_PAGE_IS_SWAPPED};
	struct giveback g = {0};
	size_t off, len;

	free_window(c, ps, pe, &off, &len);
	if (!len)
		return;
	if (!scan_units(c, off, len, &q, giveback_add, &g)) {
		advise_ranges(g.nr, MADV_DONTNEED, &pmadv_dontneed);
		return;
	}
	/* The scan failed, perhaps halfway: what it found was given back, redo it all. */
	g.nr = 0;
	if (give_back_entries(c, off, len, &g)) {
		advise_ranges(g.nr, MADV_DONTNEED, &pmadv_dontneed);
		return;
	}
	g.nr = 0;
	for (unsigned u = 0; u < pcpu_geom.nr_units; u++)
		giveback_add(pcpu_unit_region(c, u, off), len, &g);
	advise_ranges(g.nr, MADV_DONTNEED, &pmadv_dontneed);
}

int pcpu_chunk_populate(struct pcpu_chunk *c, int ps, int pe)
{
	unsigned done = 0;
	int err = 0;

	if (!allowed) {
		allowed = pcpu_calloc(pcpu_topo.nr_cpus, 1);
		if (!allowed)
			return -ENOMEM;
	}
	pcpu_topology_allowed(&pcpu_topo, allowed);
	if (c->guarded) {
		err = guard_protect(c, ps, pe, PROT_READ | PROT_WRITE, &done);
		if (err)
			goto undo;
	}
	err = prefault_allowed(c, ps, pe);
	if (err)
		goto undo;
	/* After the prefault, which may touch the pages itself. */
	pcpu_checker_populated(c, ps, pe);
	c->nr_populate_calls++;
	pcpu_chunk_pages_populated += (uint64_t)(pe - ps);
	return 0;
undo:
	give_back(c, ps, pe);
	if (c->guarded) {
		size_t off = (size_t)ps * pcpu_geom.page, len = range_len(c, ps, pe);

		for (unsigned u = 0; u < done; u++)
			pcpu_sys_mprotect(pcpu_unit_region(c, u, off), len, PROT_NONE);
	}
	return -ENOMEM;
}

void pcpu_chunk_depopulate(struct pcpu_chunk *c, int ps, int pe)
{
	unsigned done;

	give_back(c, ps, pe);
	if (c->guarded)
		guard_protect(c, ps, pe, PROT_NONE, &done);
	pcpu_checker_depopulate(c, ps, pe);
	pcpu_chunk_pages_depopulated += (uint64_t)(pe - ps);
}

/*
 * The reverse map: handle ranges sorted by start, searched by bisection (O(log chunks)).
 * The kernel stores the chunk in each page's struct page; user space has no such place.
 */
struct index_ent {
	uintptr_t start, end;
	struct pcpu_chunk *chunk;
};
static struct index_ent *index_ents;
static size_t index_nr, index_cap;

int pcpu_chunk_index_add(struct pcpu_chunk *c, uintptr_t start, uintptr_t end)
{
	size_t i;

	if (index_nr == index_cap) {
		size_t cap = index_cap ? 2 * index_cap : 16;
		struct index_ent *n = pcpu_realloc(index_ents, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		index_ents = n;
		index_cap = cap;
	}
	for (i = index_nr; i > 0 && index_ents[i - 1].start > start; i--)
		index_ents[i] = index_ents[i - 1];
	index_ents[i] = (struct index_ent){start, end, c};
	index_nr++;
	return 0;
}

void pcpu_chunk_index_del(struct pcpu_chunk *c)
{
	size_t i, j;

	for (i = j = 0; i < index_nr; i++)
		if (index_ents[i].chunk != c)
			index_ents[j++] = index_ents[i];
	index_nr = j;
}

struct pcpu_chunk *pcpu_chunk_lookup(uintptr_t addr)
{
	size_t lo = 0, hi = index_nr;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (addr < index_ents[mid].start)
			hi = mid;
		else if (addr >= index_ents[mid].end)
			lo = mid + 1;
		else
			return index_ents[mid].chunk;
	}
	return NULL;
}

/*
 * Resident bytes of pages [ps, pe) of unit @unit (region pages [ps, pe + 1) of a coloured
 * one): with the memfd zero source the pages of the process's own (the pagemap), else what
 * mincore() calls resident (also the fallback when the pagemap is unreadable).
 */
static size_t unit_resident(const struct pcpu_chunk *c, unsigned unit, int ps, int pe)
{
	size_t page = pcpu_geom.page, n = 0;
	unsigned char vec[512];

	if (c->coloured)
		pe++; /* the last page's tail; the region has one page more than its unit */
	if (pcpu_zero_source == PCPU_ZERO_MEMFD) {
		long r = pcpu_pagemap_resident(
		    (uintptr_t)pcpu_unit_region(c, unit, (size_t)ps * page), (size_t)(pe - ps), true);

		if (r >= 0)
			return (size_t)r * page;
	}
	for (int p = ps; p < pe;) {
		char *addr = pcpu_unit_region(c, unit, (size_t)p * page);
		int cnt = pe - p < (int)sizeof(vec) ? pe - p : (int)sizeof(vec);

		pcpu_sys_counted(1);
		if (mincore(addr, (size_t)cnt * page, vec))
			return n * page;
		for (int i = 0; i < cnt; i++)
			n += vec[i] & 1;
		p += cnt;
	}
	return n * page;
}

size_t pcpu_chunk_resident(const struct pcpu_chunk *c, unsigned unit)
{
	size_t n = 0;

	for (int p = 0; p < pcpu_geom.nr_pages;) {
		int e;

		if (!pcpu_am_block_populated(&c->map, p)) {
			p = pcpu_am_next_pop(&c->map, p);
			continue;
		}
		e = pcpu_am_next_unpop(&c->map, p);
		n += unit_resident(c, unit, p, e);
		p = e;
	}
	return n;
}

static void count_bytes(char *addr, size_t len, void *arg)
{
	(void)addr;
	*(size_t *)arg += len;
}

size_t pcpu_chunk_resident_pages(const struct pcpu_chunk *c, int ps, int pe)
{
	/* As unit_resident() counts (the colour page scanned too is never touched). */
	struct pcpu_pm_query q = {.mask = PCPU_PAGE_IS_PRESENT};
	size_t n = 0;

	if (pcpu_zero_source == PCPU_ZERO_MEMFD)
		q = (struct pcpu_pm_query){
		    .mask = PCPU_PAGE_IS_PRESENT | PCPU_PAGE_IS_PFNZERO | PCPU_PAGE_IS_FILE,
		    .inverted = PCPU_PAGE_IS_PFNZERO | PCPU_PAGE_IS_FILE,
		};
	if (!scan_units(c, (size_t)ps * pcpu_geom.page, range_len(c, ps, pe), &q, count_bytes, &n))
		return n;
	n = 0;
	for (unsigned u = 0; u < pcpu_geom.nr_units; u++)
		n += unit_resident(c, u, ps, pe);
	return n;
}
