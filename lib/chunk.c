/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * Chunk memory (the kernel's percpu-vm backend, in user space): a PROT_NONE|MAP_NORESERVE
 * reservation per chunk costs no memory; population makes page ranges accessible in every
 * unit; depopulation gives them back with MADV_DONTNEED and makes them PROT_NONE again so a
 * use after free of a whole page faults.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <pcpu.h>

#include "checker.h"
#include "chunk.h"
#include "topology.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

struct pcpu_geom pcpu_geom;
uint64_t pcpu_chunk_bind_failures;
uint64_t pcpu_chunk_pages_populated, pcpu_chunk_pages_depopulated;

/* CPUs the process may run on, re-read at each population (affinity can change). */
static unsigned char *allowed;

void pcpu_geom_init(size_t unit_size, unsigned nr_units)
{
	pcpu_geom.page = (size_t)sysconf(_SC_PAGESIZE);
	pcpu_geom.unit_size = unit_size;
	pcpu_geom.stride = unit_size + pcpu_geom.page;
	pcpu_geom.nr_units = nr_units;
	pcpu_geom.nr_pages = (int)(unit_size / pcpu_geom.page);
	pcpu_geom.vsize = (size_t)nr_units * pcpu_geom.stride;
}

/* Bind each group's run of units to its node before anything touches it. */
static void bind_groups(char *base)
{
	for (unsigned g = 0; g < pcpu_topo.nr_groups; g++) {
		const struct pcpu_group *grp = &pcpu_topo.groups[g];

		if (!pcpu_topo.numa || grp->mem_node < 0) {
			pcpu_chunk_bind_failures++;
			continue;
		}
		if (pcpu_sys_mbind(base + (size_t)grp->first_unit * pcpu_geom.stride,
				   (size_t)grp->nr_units * pcpu_geom.stride, grp->mem_node))
			pcpu_chunk_bind_failures++;
	}
}

int pcpu_chunk_create(struct pcpu_chunk **out, int set)
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
	c->base = pcpu_sys_mmap(pcpu_geom.vsize);
	if (!c->base)
		goto fail_queued;
	/*
	 * Copies are written by one CPU each and should cost memory only where written: a
	 * transparent huge page would turn one written byte into 2 MiB of one unit.
	 */
	madvise(c->base, pcpu_geom.vsize, MADV_NOHUGEPAGE);
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
	pcpu_am_destroy(&c->map);
	pcpu_mfree(c->dirty);
	pcpu_mfree(c->queued);
	pcpu_mfree(c->owner);
	pcpu_mfree(c->callers);
	pcpu_mfree(c);
}

/* Byte range of pages [ps, pe) in a unit, with the colour page when pe is the last. */
static size_t range_len(int ps, int pe)
{
	size_t len = (size_t)(pe - ps) * pcpu_geom.page;

	return pe == pcpu_geom.nr_pages ? len + pcpu_geom.page : len;
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

int pcpu_chunk_populate(struct pcpu_chunk *c, int ps, int pe)
{
	size_t off = (size_t)ps * pcpu_geom.page, len = range_len(ps, pe);
	unsigned u, done = 0;
	int err = 0;

	if (!allowed) {
		allowed = pcpu_calloc(pcpu_topo.nr_cpus, 1);
		if (!allowed)
			return -ENOMEM;
	}
	pcpu_topology_allowed(&pcpu_topo, allowed);
	if (ps == 0 && pe == pcpu_geom.nr_pages) {
		/* The whole chunk: one call, and the units merge into one mapping. */
		err = pcpu_sys_mprotect(c->base, pcpu_geom.vsize, PROT_READ | PROT_WRITE);
		if (err)
			return -ENOMEM;
		done = pcpu_geom.nr_units;
	} else {
		for (u = 0; u < pcpu_geom.nr_units; u++, done++) {
			err = pcpu_sys_mprotect(pcpu_unit_addr(c, u, off), len,
						PROT_READ | PROT_WRITE);
			if (err)
				goto undo;
		}
	}
	/*
	 * Fault pages in only for CPUs the process may run on; the others read the zero page
	 * until first written, and then fault in on the node their unit is bound to.
	 */
	for (unsigned cpu = 0; cpu < pcpu_topo.nr_cpus; cpu++) {
		if (!allowed[cpu])
			continue;
		err = prefault(pcpu_unit_addr(c, pcpu_topo.cpu_unit[cpu], off),
			       (size_t)(pe - ps) * pcpu_geom.page);
		if (err)
			goto undo;
	}
	/* After the prefault, which may touch the pages itself. */
	pcpu_checker_populated(c, ps, pe);
	c->nr_populate_calls++;
	pcpu_chunk_pages_populated += (uint64_t)(pe - ps);
	return 0;
undo:
	for (u = 0; u < done; u++) {
		pcpu_sys_madvise(pcpu_unit_addr(c, u, off), len, MADV_DONTNEED);
		pcpu_sys_mprotect(pcpu_unit_addr(c, u, off), len, PROT_NONE);
	}
	return -ENOMEM;
}

void pcpu_chunk_depopulate(struct pcpu_chunk *c, int ps, int pe)
{
	size_t off = (size_t)ps * pcpu_geom.page, len = range_len(ps, pe);

	if (ps == 0 && pe == pcpu_geom.nr_pages) {
		pcpu_sys_madvise(c->base, pcpu_geom.vsize, MADV_DONTNEED);
		pcpu_sys_mprotect(c->base, pcpu_geom.vsize, PROT_NONE);
	} else {
		for (unsigned u = 0; u < pcpu_geom.nr_units; u++) {
			pcpu_sys_madvise(pcpu_unit_addr(c, u, off), len, MADV_DONTNEED);
			pcpu_sys_mprotect(pcpu_unit_addr(c, u, off), len, PROT_NONE);
		}
	}
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

size_t pcpu_chunk_resident(const struct pcpu_chunk *c, unsigned unit)
{
	size_t page = pcpu_geom.page, n = 0;
	unsigned char vec[256];

	for (int p = 0; p < pcpu_geom.nr_pages; p += (int)sizeof(vec)) {
		int cnt = pcpu_geom.nr_pages - p < (int)sizeof(vec) ? pcpu_geom.nr_pages - p
								     : (int)sizeof(vec);

		if (!pcpu_am_block_populated(&c->map, p) &&
		    pcpu_am_next_pop(&c->map, p) >= p + cnt)
			continue;
		if (mincore(pcpu_unit_addr(c, unit, (size_t)p * page), (size_t)cnt * page, vec))
			continue;
		for (int i = 0; i < cnt; i++)
			n += vec[i] & 1;
	}
	return n * page;
}
