/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * Statistics (kernel: mm/percpu-stats.c): the global counters and the per-chunk view,
 * taken consistently, plus what the kernel cannot show (chunk sets, accounting domains,
 * CPU and index modes, NUMA binding, the balancer, resident memory per unit), printed as
 * text for people and as JSON for programs.
 *
 * Consistency: a snapshot holds pcpu_alloc_mutex throughout, so no chunk is created,
 * destroyed, populated or depopulated meanwhile, and copies every counter and map figure
 * in one hold of pcpu_lock. Resident memory is then measured with system calls, outside the
 * short lock (which is never held across one) but still under the mutex. Nothing here runs
 * unless asked: the counters it reads are kept by the allocator anyway.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <pcpu.h>

#include "alloc.h"
#include "balance.h"
#include "cpu.h"
#include "emit.h"
#include "leaks.h"
#include "topology.h"

/*
 * HOOK (lib/domain.c): the accounting domains' list, described through the emitter. Weak,
 * so that statistics work in a build or a static link without domains.
 */
void pcpu_domain_stats_emit(struct pcpu_emit *e) __attribute__((weak));

/* Units listed one by one up to this many; beyond, a summary and the largest ones. */
#define STATS_UNITS_LISTED 16
#define STATS_UNITS_TOP 8

/* ---------------------------------------------------------------------------------------- */
/* Resident memory                                                                           */
/* ---------------------------------------------------------------------------------------- */

/*
 * PAGEMAP_SCAN (Linux 6.7, chunk.h) tells present pages that map the shared zero page
 * (PFNZERO) or, with the memfd zero source, the memfd's page-cache page (FILE) apart from
 * pages of their own. A copy that was read but never written maps one of those and costs
 * nothing of its own, but mincore() calls it resident.
 */

enum resident_method { RES_UNKNOWN, RES_PAGEMAP_SCAN, RES_MINCORE };

static enum resident_method res_method; /* decided once, under pcpu_alloc_mutex */

static const char *const res_method_name[] = {
	[RES_UNKNOWN] = "none",
	[RES_PAGEMAP_SCAN] = "pagemap_scan",
	[RES_MINCORE] = "mincore",
};

/* Bytes of one unit of the chunk being measured, per unit. */
struct resident_acc {
	const struct pcpu_chunk *c;
	uint64_t *units;
};

/* Add the bytes of [s, e) (inside the chunk's reservation) to the units they belong to. */
static void add_resident(uint64_t s, uint64_t e, void *arg)
{
	const struct resident_acc *r = arg;
	uint64_t base = (uintptr_t)r->c->base;

	while (s < e) {
		uint64_t u = (s - base) / pcpu_geom.stride;
		uint64_t uend = base + (u + 1) * pcpu_geom.stride;
		uint64_t n = (e < uend ? e : uend) - s;

		if (u < pcpu_geom.nr_units)
			r->units[u] += n;
		s += n;
	}
}

/* Return 0, or -1 when the ioctl is not there (the caller falls back to mincore). */
static int resident_scan(const struct pcpu_chunk *c, uint64_t *units)
{
	/* Present, and neither the zero page nor a memfd page-cache page. */
	struct pcpu_pm_query q = {
		.mask = PCPU_PAGE_IS_PRESENT | PCPU_PAGE_IS_PFNZERO | PCPU_PAGE_IS_FILE,
		.inverted = PCPU_PAGE_IS_PFNZERO | PCPU_PAGE_IS_FILE,
	};
	struct resident_acc r = {c, units};
	uintptr_t start = (uintptr_t)c->base;

	return pcpu_pagemap_scan(start, start + pcpu_geom.vsize, &q, add_resident, &r) ? -1 : 0;
}

static void resident_mincore(const struct pcpu_chunk *c, uint64_t *units)
{
	for (unsigned u = 0; u < pcpu_geom.nr_units; u++)
		units[u] += pcpu_chunk_resident(c, u);
}

/* Add @c's resident bytes per unit to @units. pcpu_alloc_mutex held. */
static void chunk_resident(const struct pcpu_chunk *c, uint64_t *units)
{
	if (res_method == RES_UNKNOWN)
		res_method = RES_PAGEMAP_SCAN;
	if (res_method == RES_PAGEMAP_SCAN) {
		uint64_t *tmp = calloc(pcpu_geom.nr_units, sizeof(*tmp));

		if (tmp && resident_scan(c, tmp) == 0) {
			for (unsigned u = 0; u < pcpu_geom.nr_units; u++)
				units[u] += tmp[u];
			free(tmp);
			return;
		}
		free(tmp);
		if (tmp) /* the ioctl failed: Linux before 6.7, or no /proc */
			res_method = RES_MINCORE;
	}
	resident_mincore(c, units);
}

/* ---------------------------------------------------------------------------------------- */
/* Snapshot                                                                                  */
/* ---------------------------------------------------------------------------------------- */

struct chunk_snap {
	const struct pcpu_chunk *c;
	char *base;
	int set, slot;
	bool first, reserved, isolated, to_depopulate, sidelined;
	int nr_alloc, free_bytes, nr_populated, nr_pages, empty_pop_pages;
	int first_bit, contig_bytes, scan_bytes;
	int sum_frag, max_frag;
	int nr_queued, queued_bytes; /* freed, waiting to be zeroed: not live, not yet free */
	int alloc_bytes;             /* of live allocations, per unit */
	size_t sizes_first;      /* this chunk's allocation sizes in snap.sizes */
	int min_alloc, med_alloc, max_alloc;
	uint64_t resident;
};

/* One chunk set (plain, accounted), or the first chunk's reserved region. */
struct set_snap {
	uint64_t chunks, nr_alloc, alloc_bytes, nr_queued, queued_bytes, free_bytes;
	uint64_t populated_pages, empty_pop_pages, resident;
};

struct snap {
	struct pcpu_stats st;
	struct chunk_snap *chunks;
	size_t nr_chunks, cap_chunks;
	int *sizes;                  /* live allocation sizes, grouped by chunk */
	size_t nr_sizes, cap_sizes;
	bool overflow;
	struct set_snap sets[PCPU_NR_SETS];
	struct set_snap reserved;    /* its pages are the first chunk's: counted there */
	struct pcpu_front_class_stats front[PCPU_FRONT_NR_CLASSES];
	size_t static_used;
	uint64_t *unit_resident;     /* [nr_units] */
	const char *fallback_reason;
	const char *resident_method;
	uint64_t memfd_fallbacks, memfd_over_budget;
};

struct frag_walk {
	struct snap *s;
	struct chunk_snap *cs;
	int pos; /* end of the previous allocation, in bytes */
};

/* kernel: chunk_map_stats(): free runs only count before the last allocation. */
static int frag_one(int off, int size, void *arg)
{
	struct frag_walk *w = arg;
	int hole = off - w->pos;

	/*
	 * A freed area waiting to be zeroed is still allocated in the map, but it is not live
	 * and will be free: it is left out of the sizes and counts in the hole around it.
	 */
	if (pcpu_area_queued(w->cs->c, off))
		return 0;
	if (w->s->nr_sizes == w->s->cap_sizes) {
		w->s->overflow = true;
		return 1;
	}
	w->s->sizes[w->s->nr_sizes++] = size;
	w->cs->sum_frag += hole;
	if (hole > w->cs->max_frag)
		w->cs->max_frag = hole;
	w->pos = off + size;
	return 0;
}

/* count_queued - add the allocation at @off to the chunk's queued ones if it is not live. */
static int count_queued(int off, int size, void *arg)
{
	struct chunk_snap *cs = arg;

	if (pcpu_area_queued(cs->c, off)) {
		cs->nr_queued++;
		cs->queued_bytes += size;
	}
	return 0;
}

static void snap_chunk(struct pcpu_chunk *c, void *arg)
{
	struct snap *s = arg;
	struct chunk_snap *cs;
	struct set_snap *t;
	const struct pcpu_area_map *m = &c->map;

	if (s->overflow)
		return;
	if (s->nr_chunks == s->cap_chunks) {
		s->overflow = true;
		return;
	}
	cs = &s->chunks[s->nr_chunks++];
	memset(cs, 0, sizeof(*cs));
	cs->c = c;
	cs->base = c->base;
	cs->set = c->set;
	cs->slot = c->slot;
	cs->first = c == pcpu_first.dyn;
	cs->reserved = c->reserved;
	cs->isolated = c->isolated;
	cs->to_depopulate = !c->reserved && c->slot == pcpu_to_depopulate_slot;
	cs->sidelined = !c->reserved && c->slot == pcpu_sidelined_slot;
	/*
	 * Areas freed and waiting to be zeroed, and objects held by the front caches, are
	 * allocated in the map but nobody's: counted as queued, not live.
	 */
	pcpu_am_for_each_alloc(m, count_queued, cs);
	cs->nr_alloc = m->nr_alloc - cs->nr_queued;
	cs->free_bytes = m->free_bytes;
	/* The map serves [start_offset, end - end_offset): what is neither free nor queued. */
	cs->alloc_bytes = m->map_bits * PCPU_MIN_ALLOC_SIZE - m->start_offset - m->end_offset -
			  m->free_bytes - cs->queued_bytes;
	cs->nr_populated = m->nr_populated;
	cs->nr_pages = m->nr_blocks;
	cs->empty_pop_pages = m->nr_empty_pop_pages;
	cs->first_bit = m->chunk_md.first_free;
	cs->contig_bytes = m->chunk_md.contig_hint * PCPU_MIN_ALLOC_SIZE;
	cs->scan_bytes = m->chunk_md.scan_hint * PCPU_MIN_ALLOC_SIZE;
	cs->sizes_first = s->nr_sizes;
	if (s->sizes) {
		struct frag_walk w = {.s = s, .cs = cs, .pos = m->start_offset};

		pcpu_am_for_each_alloc(m, frag_one, &w);
	}
	s->st.free_bytes += (uint64_t)m->free_bytes;
	t = c->reserved ? &s->reserved : &s->sets[c->set];
	t->chunks++;
	t->nr_alloc += (uint64_t)cs->nr_alloc;
	t->alloc_bytes += (uint64_t)cs->alloc_bytes;
	t->nr_queued += (uint64_t)cs->nr_queued;
	t->queued_bytes += (uint64_t)cs->queued_bytes;
	t->free_bytes += (uint64_t)m->free_bytes;
	if (c->reserved)
		return; /* its pages are the first chunk's */
	s->st.populated_pages += (uint64_t)m->nr_populated;
	t->populated_pages += (uint64_t)m->nr_populated;
	t->empty_pop_pages += (uint64_t)m->nr_empty_pop_pages;
}

static void snap_counters(struct snap *s)
{
	struct pcpu_stats *st = &s->st;

	pcpu_front_fold_stats(); /* the front's per-CPU alloc/free tallies */
	for (int k = 0; k < PCPU_FRONT_NR_CLASSES; k++)
		pcpu_front_stats(k, &s->front[k]);
	st->nr_alloc = pcpu_gstats.nr_alloc;
	st->nr_dealloc = pcpu_gstats.nr_dealloc;
	st->nr_cur_alloc = pcpu_gstats.nr_cur_alloc;
	st->nr_max_alloc = pcpu_gstats.nr_max_alloc;
	st->nr_chunks = pcpu_gstats.nr_chunks;
	st->nr_max_chunks = pcpu_gstats.nr_max_chunks;
	/* The kernel starts min_alloc_size at unit_size; before any allocation, say 0. */
	st->min_alloc_size = pcpu_gstats.nr_alloc ? pcpu_gstats.min_alloc_size : 0;
	st->max_alloc_size = pcpu_gstats.max_alloc_size;
	st->nowait_failures = pcpu_gstats.nowait_failures;
	st->zeroed_bytes = pcpu_gstats.zeroed_bytes;
	for (int i = 0; i < PCPU_NR_SETS; i++)
		st->empty_pop_pages += (uint64_t)pcpu_nr_empty_pop_pages(i);
}

static void snap_static(struct snap *s)
{
	struct pcpu_stats *st = &s->st;

	st->size = sizeof(*st);
	st->unit_size = pcpu_geom.unit_size;
	st->static_size = pcpu_first.static_size;
	st->reserved_size = pcpu_first.reserved_size;
	st->dyn_size = pcpu_first.dyn_size;
	st->page_size = pcpu_geom.page;
	st->nr_cpus = pcpu_topo.nr_cpus;
	st->nr_nodes = pcpu_topo.nr_nodes;
	st->nr_groups = pcpu_topo.nr_groups;
	st->cpu_mode = pcpu_cpu_mode_now();
	st->index_mode = pcpu_cpu_index_now();
	st->numa_available = pcpu_topo.numa;
	s->fallback_reason = pcpu_cpu_fallback_reason();
	st->index_fallback = s->fallback_reason != NULL;
}

static int snap_sort_sizes(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

/* Sort each chunk's sizes (outside the locks) for the min, median and max. */
static void snap_finish_sizes(struct snap *s)
{
	for (size_t i = 0; i < s->nr_chunks; i++) {
		struct chunk_snap *cs = &s->chunks[i];
		size_t end = i + 1 < s->nr_chunks ? s->chunks[i + 1].sizes_first : s->nr_sizes;
		size_t n = end - cs->sizes_first;
		int *v = s->sizes + cs->sizes_first;

		if (!n)
			continue;
		qsort(v, n, sizeof(*v), snap_sort_sizes);
		cs->min_alloc = v[0];
		cs->med_alloc = v[(n - 1) / 2];
		cs->max_alloc = v[n - 1];
	}
}

static void snap_free(struct snap *s)
{
	free(s->chunks);
	free(s->sizes);
	free(s->unit_resident);
	memset(s, 0, sizeof(*s));
}

/* Copy everything under the short lock; grow the buffers outside it and retry. */
static int snap_locked_part(struct snap *s, bool detail)
{
	size_t nr_chunks = 0, nr_alloc = 0;

	for (;;) {
		void *p;

		pthread_mutex_lock(&pcpu_lock);
		if (s->cap_chunks >= nr_chunks && (!detail || s->cap_sizes >= nr_alloc)) {
			s->nr_chunks = s->nr_sizes = 0;
			s->overflow = false;
			memset(s->sets, 0, sizeof(s->sets));
			memset(&s->reserved, 0, sizeof(s->reserved));
			s->static_used = pcpu_first.static_used;
			s->st.free_bytes = s->st.populated_pages = s->st.empty_pop_pages = 0;
			snap_counters(s);
			pcpu_for_each_chunk(snap_chunk, s);
			if (!s->overflow) {
				pthread_mutex_unlock(&pcpu_lock);
				return 0;
			}
		}
		/* Room for what is there now, and some: NOWAIT allocations do not wait. */
		nr_chunks = (size_t)pcpu_gstats.nr_chunks + 2;
		nr_alloc = (size_t)pcpu_gstats.nr_cur_alloc + 64;
		pthread_mutex_unlock(&pcpu_lock);
		nr_chunks += nr_chunks / 4;
		nr_alloc += nr_alloc / 4;
		p = realloc(s->chunks, nr_chunks * sizeof(*s->chunks));
		if (!p)
			return -ENOMEM;
		s->chunks = p;
		s->cap_chunks = nr_chunks;
		if (detail) {
			p = realloc(s->sizes, nr_alloc * sizeof(*s->sizes));
			if (!p)
				return -ENOMEM;
			s->sizes = p;
			s->cap_sizes = nr_alloc;
		}
	}
}

/* Resident bytes per unit, per chunk and per set. pcpu_alloc_mutex held. */
static int snap_resident(struct snap *s)
{
	uint64_t *units = calloc(pcpu_geom.nr_units, sizeof(*units));

	s->unit_resident = calloc(pcpu_geom.nr_units, sizeof(*s->unit_resident));
	if (!units || !s->unit_resident) {
		free(units);
		return -ENOMEM;
	}
	for (size_t i = 0; i < s->nr_chunks; i++) {
		struct chunk_snap *cs = &s->chunks[i];

		if (cs->reserved)
			continue;
		memset(units, 0, pcpu_geom.nr_units * sizeof(*units));
		chunk_resident(cs->c, units);
		for (unsigned u = 0; u < pcpu_geom.nr_units; u++) {
			cs->resident += units[u];
			s->unit_resident[u] += units[u];
		}
		s->sets[cs->set].resident += cs->resident;
		s->st.resident_bytes += cs->resident;
	}
	free(units);
	s->st.resident_exact = res_method == RES_PAGEMAP_SCAN;
	/* The chunk layer's fallback reads the pagemap, not mincore(), with memfd views. */
	s->resident_method = res_method == RES_MINCORE && pcpu_zero_source == PCPU_ZERO_MEMFD
				     ? "pagemap"
				     : res_method_name[res_method];
	return 0;
}

/* take_snapshot - @detail: also the allocation sizes (fragmentation, min/median/max). */
static int take_snapshot(struct snap *s, bool detail)
{
	int err;

	memset(s, 0, sizeof(*s));
	err = pcpu_ensure_init();
	if (err)
		return err;
	snap_static(s);
	/* Lock order: the mutex, then the short lock (inside snap_locked_part). */
	pthread_mutex_lock(&pcpu_alloc_mutex);
	err = snap_locked_part(s, detail);
	if (!err)
		err = snap_resident(s);
	s->st.bind_failures = pcpu_chunk_bind_failures;
	s->memfd_fallbacks = pcpu_chunk_memfd_fallbacks;
	s->memfd_over_budget = pcpu_chunk_memfd_over_budget;
	s->st.pages_populated = pcpu_chunk_pages_populated;
	s->st.pages_depopulated = pcpu_chunk_pages_depopulated;
	s->st.balance_runs = pcpu_balance_runs;
	pthread_mutex_unlock(&pcpu_alloc_mutex);
	if (err) {
		snap_free(s);
		return err;
	}
	s->st.nr_accounted_chunks = s->sets[1].chunks;
	s->st.nr_accounted_alloc = s->sets[1].nr_alloc;
	if (detail)
		snap_finish_sizes(s);
	return 0;
}

int pcpu_stats_get(struct pcpu_stats *st)
{
	struct snap s;
	size_t n;
	int err;

	if (!st || st->size == 0) {
		errno = EINVAL;
		return -1;
	}
	err = take_snapshot(&s, false);
	if (err) {
		errno = -err;
		return -1;
	}
	/* A caller built against an older, smaller struct gets its prefix. */
	n = st->size < sizeof(s.st) ? st->size : sizeof(s.st);
	memcpy(st, &s.st, n);
	st->size = n;
	snap_free(&s);
	return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Names                                                                                     */
/* ---------------------------------------------------------------------------------------- */

static const char *cpu_mode_name(int m)
{
	switch (m) {
	case PCPU_MODE_RSEQ_GLIBC:
		return "rseq-glibc";
	case PCPU_MODE_RSEQ_OWN:
		return "rseq-own";
	case PCPU_MODE_GETCPU:
		return "getcpu";
	}
	return "unknown";
}

static const char *index_mode_name(int m)
{
	return m == PCPU_INDEX_CID ? "cid" : "cpu";
}

/* Where never-written copies read their zeros from (chunk.h). */
static const char *zero_source_text(void)
{
	bool memfd = pcpu_zero_source == PCPU_ZERO_MEMFD;

	if (!pcpu_zero_source_forced) {
		if (memfd)
			return "memfd: kernel maps no zero page";
		return pcpu_kernel_zero_page > 0 ? "anon zero page"
						 : "anon zero page (probe inconclusive)";
	}
	if (memfd)
		return pcpu_kernel_zero_page == 0
			       ? "memfd: kernel maps no zero page (PCPU__ZERO_SOURCE)"
			       : "memfd (PCPU__ZERO_SOURCE; kernel has the zero page)";
	return pcpu_kernel_zero_page == 0
		       ? "anon (PCPU__ZERO_SOURCE): kernel maps no zero page, reads cost pages"
		       : "anon zero page (PCPU__ZERO_SOURCE)";
}

static const char *set_name(int set)
{
	return set ? "accounted" : "plain";
}

static const char *chunk_label(const struct chunk_snap *cs)
{
	if (cs->reserved)
		return "Reserved Chunk";
	if (cs->first)
		return "First Chunk";
	if (cs->to_depopulate)
		return "to_depopulate";
	if (cs->sidelined)
		return "sidelined";
	return "";
}

static unsigned unit_cpu(unsigned u)
{
	return pcpu_topo.unit_cpu ? pcpu_topo.unit_cpu[u] : u;
}

static int unit_node(unsigned u)
{
	return pcpu_topo.cpu_node ? pcpu_topo.cpu_node[unit_cpu(u)] : 0;
}

/* ---------------------------------------------------------------------------------------- */
/* The report: one description, emitted as text or JSON (emit.h)                             */
/* ---------------------------------------------------------------------------------------- */

static void emit_alloc_info(struct pcpu_emit *e, const struct pcpu_stats *st)
{
	pcpu_emit_section_begin(e, "alloc_info", "Allocation Info");
	pcpu_emit_u64(e, "unit_size", st->unit_size);
	pcpu_emit_u64(e, "static_size", st->static_size);
	pcpu_emit_u64(e, "reserved_size", st->reserved_size);
	pcpu_emit_u64(e, "dyn_size", st->dyn_size);
	pcpu_emit_u64(e, "page_size", st->page_size);
	pcpu_emit_u64(e, "unit_stride", pcpu_geom.stride);
	pcpu_emit_u64(e, "nr_cpus", st->nr_cpus);
	pcpu_emit_u64(e, "nr_nodes", st->nr_nodes);
	pcpu_emit_u64(e, "nr_groups", st->nr_groups);
	pcpu_emit_section_end(e);
}

static void emit_global(struct pcpu_emit *e, const struct snap *s)
{
	const struct pcpu_stats *st = &s->st;

	pcpu_emit_section_begin(e, "global", "Global Stats");
	pcpu_emit_u64(e, "nr_alloc", st->nr_alloc);
	pcpu_emit_u64(e, "nr_dealloc", st->nr_dealloc);
	pcpu_emit_u64(e, "nr_cur_alloc", st->nr_cur_alloc);
	pcpu_emit_u64(e, "nr_max_alloc", st->nr_max_alloc);
	pcpu_emit_u64(e, "nr_chunks", st->nr_chunks);
	pcpu_emit_u64(e, "nr_max_chunks", st->nr_max_chunks);
	pcpu_emit_u64(e, "min_alloc_size", st->min_alloc_size);
	pcpu_emit_u64(e, "max_alloc_size", st->max_alloc_size);
	pcpu_emit_u64(e, "empty_pop_pages", st->empty_pop_pages);
	pcpu_emit_u64(e, "populated_pages", st->populated_pages);
	pcpu_emit_u64(e, "free_bytes", st->free_bytes);
	pcpu_emit_u64(e, "nowait_failures", st->nowait_failures);
	pcpu_emit_u64(e, "zeroed_bytes", st->zeroed_bytes);
	pcpu_emit_u64(e, "resident_bytes", st->resident_bytes);
	pcpu_emit_bool(e, "resident_exact", st->resident_exact);
	pcpu_emit_str(e, "resident_method", s->resident_method);
	pcpu_emit_section_end(e);
}

static void emit_runtime(struct pcpu_emit *e, const struct snap *s)
{
	const struct pcpu_stats *st = &s->st;

	pcpu_emit_section_begin(e, "runtime", "Runtime");
	pcpu_emit_str(e, "cpu_mode", cpu_mode_name(st->cpu_mode));
	pcpu_emit_str(e, "index_mode", index_mode_name(st->index_mode));
	pcpu_emit_str(e, "index_fallback_reason", s->fallback_reason);
	pcpu_emit_bool(e, "numa_available", st->numa_available);
	pcpu_emit_u64(e, "bind_failures", st->bind_failures);
	pcpu_emit_str(e, "zero_source", pcpu_zero_source == PCPU_ZERO_MEMFD ? "memfd" : "anon");
	pcpu_emit_str(e, "zero_source_detail", zero_source_text());
	pcpu_emit_bool(e, "zero_source_forced", pcpu_zero_source_forced);
	/* Cache-coloured units for small objects (lib/chunk.h): PCPU_CONF colour, not guard. */
	pcpu_emit_bool(e, "cache_colour",
		       PCPU_HANDLE_COLOUR != 0 && pcpu_settings.colour && !pcpu_settings.guard);
	if (pcpu_kernel_zero_page < 0)
		pcpu_emit_null(e, "kernel_zero_page", "unknown");
	else
		pcpu_emit_bool(e, "kernel_zero_page", pcpu_kernel_zero_page);
	pcpu_emit_u64(e, "memfd_fallbacks", s->memfd_fallbacks);
	pcpu_emit_u64(e, "memfd_over_budget", s->memfd_over_budget);
	pcpu_emit_u64(e, "balance_runs", st->balance_runs);
	pcpu_emit_u64(e, "pages_populated", st->pages_populated);
	pcpu_emit_u64(e, "pages_depopulated", st->pages_depopulated);
	pcpu_emit_bool(e, "leak_tracking", __atomic_load_n(&pcpu_leaks_on, __ATOMIC_RELAXED));
	pcpu_emit_section_end(e);
}

/*
 * The chunk sets, then the first chunk's regions. Live allocations: the sets' and the
 * reserved region's nr_alloc add up to the global nr_cur_alloc; freed areas waiting to be
 * zeroed are counted apart (nr_queued), neither live nor free yet.
 */
static void emit_set_counts(struct pcpu_emit *e, const struct set_snap *t)
{
	pcpu_emit_u64(e, "nr_alloc", t->nr_alloc);
	pcpu_emit_u64(e, "alloc_bytes", t->alloc_bytes);
	pcpu_emit_u64(e, "nr_queued", t->nr_queued);
	pcpu_emit_u64(e, "queued_bytes", t->queued_bytes);
	pcpu_emit_u64(e, "free_bytes", t->free_bytes);
}

static void emit_sets(struct pcpu_emit *e, const struct snap *s)
{
	pcpu_emit_list_begin(e, "sets", "Chunk Sets");
	for (int i = 0; i < PCPU_NR_SETS; i++) {
		const struct set_snap *t = &s->sets[i];

		pcpu_emit_row_begin(e);
		pcpu_emit_str(e, "name", set_name(i));
		pcpu_emit_u64(e, "chunks", t->chunks);
		emit_set_counts(e, t);
		pcpu_emit_u64(e, "populated_pages", t->populated_pages);
		pcpu_emit_u64(e, "empty_pop_pages", t->empty_pop_pages);
		pcpu_emit_u64(e, "resident_bytes", t->resident);
		pcpu_emit_row_end(e);
	}
	pcpu_emit_list_end(e);

	/* In the first chunk's pages, which the plain set counts. */
	pcpu_emit_list_begin(e, "regions", "First Chunk Regions");
	pcpu_emit_row_begin(e);
	pcpu_emit_str(e, "name", "static");
	pcpu_emit_u64(e, "size", s->st.static_size);
	pcpu_emit_u64(e, "used", s->static_used);
	pcpu_emit_row_end(e);
	pcpu_emit_row_begin(e);
	pcpu_emit_str(e, "name", "reserved");
	pcpu_emit_u64(e, "size", s->st.reserved_size);
	emit_set_counts(e, &s->reserved);
	pcpu_emit_row_end(e);
	pcpu_emit_list_end(e);
}

/* The front caches of ready objects, one row per size class (bytes cached: per unit). */
static void emit_front(struct pcpu_emit *e, const struct snap *s)
{
	pcpu_emit_list_begin(e, "front", "Front Caches");
	for (int k = 0; k < PCPU_FRONT_NR_CLASSES; k++) {
		const struct pcpu_front_class_stats *f = &s->front[k];

		pcpu_emit_row_begin(e);
		pcpu_emit_u64(e, "class_size", (uint64_t)pcpu_front_class_size(k));
		pcpu_emit_u64(e, "hits", f->hits);
		pcpu_emit_u64(e, "misses", f->misses);
		pcpu_emit_u64(e, "cached_objects", f->cached_objects);
		pcpu_emit_u64(e, "cached_bytes", f->cached_bytes);
		pcpu_emit_row_end(e);
	}
	pcpu_emit_list_end(e);
}

static void emit_unit(struct pcpu_emit *e, const struct snap *s, unsigned u)
{
	pcpu_emit_row_begin(e);
	pcpu_emit_u64(e, "unit", u);
	pcpu_emit_u64(e, "cpu", unit_cpu(u));
	pcpu_emit_i64(e, "node", unit_node(u));
	pcpu_emit_u64(e, "resident_bytes", s->unit_resident[u]);
	pcpu_emit_row_end(e);
}

static int cmp_unit_desc(const void *a, const void *b, void *arg)
{
	const uint64_t *r = arg;
	unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;

	if (r[x] != r[y])
		return r[x] < r[y] ? 1 : -1;
	return (x > y) - (x < y);
}

/* Text, many units: a summary (units touched, per node), then the units holding the most. */
static void emit_units_summary(struct pcpu_emit *e, const struct snap *s)
{
	unsigned n = pcpu_geom.nr_units, touched = 0;
	uint64_t max = 0, total = s->st.resident_bytes;
	unsigned *order;

	for (unsigned u = 0; u < n; u++) {
		touched += s->unit_resident[u] != 0;
		if (s->unit_resident[u] > max)
			max = s->unit_resident[u];
	}
	pcpu_emit_text(e, "%u units, %u with resident memory; average %llu, max %llu bytes", n,
		       touched, (unsigned long long)(total / n), (unsigned long long)max);
	for (unsigned g = 0; g < pcpu_topo.nr_groups; g++) {
		const struct pcpu_group *grp = &pcpu_topo.groups[g];
		uint64_t sum = 0;

		for (unsigned u = grp->first_unit; u < grp->first_unit + grp->nr_units; u++)
			sum += s->unit_resident[u];
		pcpu_emit_text(e, "node %d (units %u-%u): %llu bytes resident", grp->node,
			       grp->first_unit, grp->first_unit + grp->nr_units - 1,
			       (unsigned long long)sum);
	}
	order = malloc(n * sizeof(*order));
	if (!order)
		return;
	for (unsigned u = 0; u < n; u++)
		order[u] = u;
	qsort_r(order, n, sizeof(*order), cmp_unit_desc, s->unit_resident);
	pcpu_emit_text(e, "largest:");
	for (unsigned i = 0; i < n && i < STATS_UNITS_TOP && s->unit_resident[order[i]]; i++)
		emit_unit(e, s, order[i]);
	free(order);
}

/* Where the memory goes: every unit (JSON always; text when there are few). */
static void emit_units(struct pcpu_emit *e, const struct snap *s)
{
	unsigned n = pcpu_geom.nr_units;

	pcpu_emit_list_begin(e, "units", "Resident Memory per Unit");
	pcpu_emit_text(e, "resident_bytes total %llu (%s%s)",
		       (unsigned long long)s->st.resident_bytes, s->resident_method,
		       s->st.resident_exact ? ", zero-page and memfd page-cache mappings left out"
		       : !strcmp(s->resident_method, "pagemap")
			       ? ", memfd page-cache mappings left out"
			       : ", pages mapping the shared zero page counted too");
	if (pcpu_emit_is_json(e) || n <= STATS_UNITS_LISTED)
		for (unsigned u = 0; u < n; u++)
			emit_unit(e, s, u);
	else
		emit_units_summary(e, s);
	pcpu_emit_list_end(e);
}

static void emit_chunk(struct pcpu_emit *e, const struct chunk_snap *cs)
{
	const char *label = chunk_label(cs);
	bool isolated = cs->isolated && !cs->to_depopulate && !cs->sidelined;
	char heading[128], base[32];

	snprintf(heading, sizeof(heading), "Chunk %p:%s%s%s", (void *)cs->base,
		 *label ? " <- " : "", label, isolated ? " (isolated)" : "");
	pcpu_emit_block_begin(e, heading);
	if (pcpu_emit_is_json(e)) { /* the text heading says these */
		snprintf(base, sizeof(base), "%p", (void *)cs->base);
		pcpu_emit_str(e, "base_addr", base);
		pcpu_emit_str(e, "label", *label ? label : NULL);
		pcpu_emit_bool(e, "isolated", cs->isolated);
	}
	pcpu_emit_str(e, "set", cs->reserved ? "reserved" : set_name(cs->set));
	pcpu_emit_u64(e, "slot", cs->reserved ? 0 : (uint64_t)cs->slot);
	pcpu_emit_u64(e, "nr_alloc", (uint64_t)cs->nr_alloc);
	pcpu_emit_u64(e, "alloc_bytes", (uint64_t)cs->alloc_bytes);
	pcpu_emit_u64(e, "empty_pop_pages", (uint64_t)cs->empty_pop_pages);
	pcpu_emit_u64(e, "populated_pages", (uint64_t)cs->nr_populated);
	pcpu_emit_u64(e, "nr_pages", (uint64_t)cs->nr_pages);
	pcpu_emit_u64(e, "first_bit", (uint64_t)cs->first_bit);
	pcpu_emit_u64(e, "free_bytes", (uint64_t)cs->free_bytes);
	pcpu_emit_u64(e, "contig_bytes", (uint64_t)cs->contig_bytes);
	pcpu_emit_u64(e, "scan_hint_bytes", (uint64_t)cs->scan_bytes);
	pcpu_emit_u64(e, "sum_frag", (uint64_t)cs->sum_frag);
	pcpu_emit_u64(e, "max_frag", (uint64_t)cs->max_frag);
	pcpu_emit_u64(e, "cur_min_alloc", (uint64_t)cs->min_alloc);
	pcpu_emit_u64(e, "cur_med_alloc", (uint64_t)cs->med_alloc);
	pcpu_emit_u64(e, "cur_max_alloc", (uint64_t)cs->max_alloc);
	pcpu_emit_u64(e, "memcg_aware", (uint64_t)(!cs->reserved && cs->set == 1));
	pcpu_emit_u64(e, "nr_queued", (uint64_t)cs->nr_queued);
	pcpu_emit_u64(e, "queued_bytes", (uint64_t)cs->queued_bytes);
	if (!cs->reserved) /* the reserved region's pages are the first chunk's */
		pcpu_emit_u64(e, "resident_bytes", cs->resident);
	pcpu_emit_block_end(e);
}

static void emit_report(FILE *f, bool json, const struct snap *s)
{
	struct pcpu_emit e;

	pcpu_emit_begin(&e, f, json, "Percpu Memory Statistics (libpcpu " PCPU_VERSION ")");
	if (json)
		pcpu_emit_str(&e, "version", PCPU_VERSION);
	emit_alloc_info(&e, &s->st);
	emit_global(&e, s);
	emit_runtime(&e, s);
	emit_sets(&e, s);
	emit_front(&e, s);
	if (pcpu_domain_stats_emit) {
		pcpu_domain_stats_emit(&e);
	} else if (json) {
		pcpu_emit_null(&e, "domains", NULL);
	} else {
		pcpu_emit_list_begin(&e, "domains", "Accounting Domains");
		pcpu_emit_text(&e, "(not linked in)");
		pcpu_emit_list_end(&e);
	}
	emit_units(&e, s);
	pcpu_emit_list_begin(&e, "chunks", "Per Chunk Stats");
	for (size_t i = 0; i < s->nr_chunks; i++)
		emit_chunk(&e, &s->chunks[i]);
	pcpu_emit_list_end(&e);
	pcpu_emit_end(&e);
}

static void print_stats(FILE *f, bool json)
{
	struct snap s;
	int err;

	err = take_snapshot(&s, true);
	if (err) {
		struct pcpu_emit e;

		pcpu_emit_begin(&e, f, json, NULL);
		pcpu_emit_str(&e, "error", strerror(-err));
		pcpu_emit_end(&e);
		return;
	}
	emit_report(f, json, &s);
	fflush(f);
	snap_free(&s);
}

void pcpu_stats_print(FILE *f)
{
	print_stats(f ? f : stderr, false);
}

void pcpu_stats_print_json(FILE *f)
{
	print_stats(f ? f : stdout, true);
}

/* ---------------------------------------------------------------------------------------- */
/* PCPU_STATS=1                                                                              */
/* ---------------------------------------------------------------------------------------- */

static void stats_at_exit_text(void)
{
	pcpu_stats_print(stderr);
}

static void stats_at_exit_json(void)
{
	pcpu_stats_print_json(stderr);
}

void pcpu_stats_init(void)
{
	const char *e = pcpu_getenv("PCPU_STATS");

	if (!e || !*e || !strcmp(e, "0"))
		return;
	atexit(strcmp(e, "json") ? stats_at_exit_text : stats_at_exit_json);
}
