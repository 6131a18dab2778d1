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
#include "leaks.h"
#include "topology.h"

/*
 * HOOK (lib/domain.c): the accounting domains' own printers. Weak, so that statistics work
 * in a build or a static link without domains; when linked they print the chunk sets and
 * every domain (text), or one JSON object ({"sets": [...], "domains": [...]}).
 */
void pcpu_domain_stats_print(FILE *f) __attribute__((weak));
void pcpu_domain_stats_json(FILE *f) __attribute__((weak));

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
static int pagemap_fd = -1;

static const char *const res_method_name[] = {
	[RES_UNKNOWN] = "none",
	[RES_PAGEMAP_SCAN] = "pagemap_scan",
	[RES_MINCORE] = "mincore",
};

/* Add the bytes of [s, e) (inside @c's reservation) to the units they belong to. */
static void add_resident(const struct pcpu_chunk *c, uint64_t s, uint64_t e, uint64_t *units)
{
	uint64_t base = (uintptr_t)c->base;

	while (s < e) {
		uint64_t u = (s - base) / pcpu_geom.stride;
		uint64_t uend = base + (u + 1) * pcpu_geom.stride;
		uint64_t n = (e < uend ? e : uend) - s;

		if (u < pcpu_geom.nr_units)
			units[u] += n;
		s += n;
	}
}

/* Return 0, or -1 when the ioctl is not there (the caller falls back to mincore). */
static int resident_scan(const struct pcpu_chunk *c, uint64_t *units)
{
	struct pcpu_page_region vec[64];
	struct pcpu_pm_scan_arg a;
	uint64_t start = (uintptr_t)c->base, end = start + pcpu_geom.vsize;

	while (start < end) {
		long n;

		/* Memory checkers do not know this ioctl writes @vec: start from defined bytes. */
		memset(vec, 0, sizeof(vec));
		memset(&a, 0, sizeof(a));
		a.size = sizeof(a);
		a.start = start;
		a.end = end;
		a.vec = (uintptr_t)vec;
		a.vec_len = sizeof(vec) / sizeof(vec[0]);
		/* Present, and neither the zero page nor a memfd page-cache page. */
		a.category_mask = PCPU_PAGE_IS_PRESENT | PCPU_PAGE_IS_PFNZERO | PCPU_PAGE_IS_FILE;
		a.category_inverted = PCPU_PAGE_IS_PFNZERO | PCPU_PAGE_IS_FILE;
		a.return_mask = PCPU_PAGE_IS_PRESENT;
		n = ioctl(pagemap_fd, PCPU_PAGEMAP_SCAN, &a);
		if (n < 0)
			return -1;
		for (long i = 0; i < n; i++)
			add_resident(c, vec[i].start, vec[i].end, units);
		if (a.walk_end <= start)
			break; /* no progress: never loop forever on a kernel quirk */
		start = a.walk_end;
	}
	return 0;
}

static void resident_mincore(const struct pcpu_chunk *c, uint64_t *units)
{
	for (unsigned u = 0; u < pcpu_geom.nr_units; u++)
		units[u] += pcpu_chunk_resident(c, u);
}

/* Add @c's resident bytes per unit to @units. pcpu_alloc_mutex held. */
static void chunk_resident(const struct pcpu_chunk *c, uint64_t *units)
{
	if (res_method == RES_UNKNOWN) {
		pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
		res_method = pagemap_fd >= 0 ? RES_PAGEMAP_SCAN : RES_MINCORE;
	}
	if (res_method == RES_PAGEMAP_SCAN) {
		uint64_t *tmp = calloc(pcpu_geom.nr_units, sizeof(*tmp));

		if (tmp && resident_scan(c, tmp) == 0) {
			for (unsigned u = 0; u < pcpu_geom.nr_units; u++)
				units[u] += tmp[u];
			free(tmp);
			return;
		}
		free(tmp);
		if (tmp) { /* the ioctl failed: Linux before 6.7 */
			close(pagemap_fd);
			pagemap_fd = -1;
			res_method = RES_MINCORE;
		}
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
	size_t sizes_first;      /* this chunk's allocation sizes in snap.sizes */
	int min_alloc, med_alloc, max_alloc;
	uint64_t resident;
};

struct set_snap {
	uint64_t chunks, nr_alloc, free_bytes, populated_pages, empty_pop_pages, resident;
};

struct snap {
	struct pcpu_stats st;
	struct chunk_snap *chunks;
	size_t nr_chunks, cap_chunks;
	int *sizes;                  /* live allocation sizes, grouped by chunk */
	size_t nr_sizes, cap_sizes;
	bool overflow;
	struct set_snap sets[PCPU_NR_SETS];
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

static void snap_chunk(struct pcpu_chunk *c, void *arg)
{
	struct snap *s = arg;
	struct chunk_snap *cs;
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
	/* Queued areas (freed, waiting to be zeroed) are allocated in the map, not live. */
	cs->nr_queued = c->nr_queued;
	cs->queued_bytes = c->queued_bytes;
	cs->nr_alloc = m->nr_alloc - c->nr_queued;
	cs->free_bytes = m->free_bytes;
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
	if (c->reserved)
		return; /* its pages are the first chunk's */
	s->st.populated_pages += (uint64_t)m->nr_populated;
	s->sets[c->set].chunks++;
	s->sets[c->set].nr_alloc += (uint64_t)cs->nr_alloc;
	s->sets[c->set].free_bytes += (uint64_t)m->free_bytes;
	s->sets[c->set].populated_pages += (uint64_t)m->nr_populated;
	s->sets[c->set].empty_pop_pages += (uint64_t)m->nr_empty_pop_pages;
}

static void snap_counters(struct snap *s)
{
	struct pcpu_stats *st = &s->st;

	pcpu_front_fold_stats(); /* the front's per-CPU alloc/free tallies */
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
/* Text                                                                                      */
/* ---------------------------------------------------------------------------------------- */

/* The kernel's P() layout: "  name : value". */
static void p_u(FILE *f, const char *name, uint64_t v)
{
	fprintf(f, "  %-20s: %12llu\n", name, (unsigned long long)v);
}

static void p_s(FILE *f, const char *name, const char *v)
{
	fprintf(f, "  %-20s: %12s\n", name, v);
}

static void print_rule(FILE *f, const char *title)
{
	fprintf(f, "\n%s:\n----------------------------------------\n", title);
}

static void print_chunk(FILE *f, const struct chunk_snap *cs)
{
	const char *label = chunk_label(cs);

	fprintf(f, "Chunk %p:%s%s%s\n", (void *)cs->base, *label ? " <- " : "", label,
		cs->isolated && !cs->to_depopulate && !cs->sidelined ? " (isolated)" : "");
	p_s(f, "set", cs->reserved ? "reserved" : set_name(cs->set));
	p_u(f, "slot", cs->reserved ? 0 : (uint64_t)cs->slot);
	p_u(f, "nr_alloc", (uint64_t)cs->nr_alloc);
	p_u(f, "empty_pop_pages", (uint64_t)cs->empty_pop_pages);
	p_u(f, "populated_pages", (uint64_t)cs->nr_populated);
	p_u(f, "nr_pages", (uint64_t)cs->nr_pages);
	p_u(f, "first_bit", (uint64_t)cs->first_bit);
	p_u(f, "free_bytes", (uint64_t)cs->free_bytes);
	p_u(f, "contig_bytes", (uint64_t)cs->contig_bytes);
	p_u(f, "scan_hint_bytes", (uint64_t)cs->scan_bytes);
	p_u(f, "sum_frag", (uint64_t)cs->sum_frag);
	p_u(f, "max_frag", (uint64_t)cs->max_frag);
	p_u(f, "cur_min_alloc", (uint64_t)cs->min_alloc);
	p_u(f, "cur_med_alloc", (uint64_t)cs->med_alloc);
	p_u(f, "cur_max_alloc", (uint64_t)cs->max_alloc);
	p_u(f, "memcg_aware", (uint64_t)(cs->set == 1));
	p_u(f, "nr_queued", (uint64_t)cs->nr_queued);
	p_u(f, "queued_bytes", (uint64_t)cs->queued_bytes);
	if (!cs->reserved)
		p_u(f, "resident_bytes", cs->resident);
	fputc('\n', f);
}

static int cmp_unit_desc(const void *a, const void *b, void *arg)
{
	const uint64_t *r = arg;
	unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;

	if (r[x] != r[y])
		return r[x] < r[y] ? 1 : -1;
	return (x > y) - (x < y);
}

static void print_unit(FILE *f, const struct snap *s, unsigned u)
{
	fprintf(f, "  unit %u (cpu %u, node %d): %llu bytes resident\n", u, unit_cpu(u),
		unit_node(u), (unsigned long long)s->unit_resident[u]);
}

/*
 * Where the memory goes: every unit when there are few; else a summary (units touched,
 * per node), then the units holding the most.
 */
static void print_units(FILE *f, const struct snap *s)
{
	unsigned n = pcpu_geom.nr_units, touched = 0;
	uint64_t max = 0, total = s->st.resident_bytes;
	unsigned *order;

	fprintf(f, "  resident_bytes total %llu (%s%s)\n", (unsigned long long)total,
		s->resident_method,
		s->st.resident_exact ? ", zero-page and memfd page-cache mappings left out"
		: !strcmp(s->resident_method, "pagemap")
			? ", memfd page-cache mappings left out"
			: ", pages mapping the shared zero page counted too");
	if (n <= STATS_UNITS_LISTED) {
		for (unsigned u = 0; u < n; u++)
			print_unit(f, s, u);
		return;
	}
	for (unsigned u = 0; u < n; u++) {
		touched += s->unit_resident[u] != 0;
		if (s->unit_resident[u] > max)
			max = s->unit_resident[u];
	}
	fprintf(f, "  %u units, %u with resident memory; average %llu, max %llu bytes\n", n,
		touched, (unsigned long long)(total / n), (unsigned long long)max);
	for (unsigned g = 0; g < pcpu_topo.nr_groups; g++) {
		const struct pcpu_group *grp = &pcpu_topo.groups[g];
		uint64_t sum = 0;

		for (unsigned u = grp->first_unit; u < grp->first_unit + grp->nr_units; u++)
			sum += s->unit_resident[u];
		fprintf(f, "  node %d (units %u-%u): %llu bytes resident\n", grp->node,
			grp->first_unit, grp->first_unit + grp->nr_units - 1,
			(unsigned long long)sum);
	}
	order = malloc(n * sizeof(*order));
	if (!order)
		return;
	for (unsigned u = 0; u < n; u++)
		order[u] = u;
	qsort_r(order, n, sizeof(*order), cmp_unit_desc, s->unit_resident);
	fprintf(f, "  largest:\n");
	for (unsigned i = 0; i < n && i < STATS_UNITS_TOP && s->unit_resident[order[i]]; i++)
		print_unit(f, s, order[i]);
	free(order);
}

static void print_text(FILE *f, const struct snap *s)
{
	const struct pcpu_stats *st = &s->st;

	fprintf(f, "Percpu Memory Statistics (libpcpu %s)\n", PCPU_VERSION);
	print_rule(f, "Allocation Info");
	p_u(f, "unit_size", st->unit_size);
	p_u(f, "static_size", st->static_size);
	p_u(f, "reserved_size", st->reserved_size);
	p_u(f, "dyn_size", st->dyn_size);
	p_u(f, "page_size", st->page_size);
	p_u(f, "unit_stride", pcpu_geom.stride);
	p_u(f, "nr_units", st->nr_cpus);
	p_u(f, "nr_nodes", st->nr_nodes);
	p_u(f, "nr_groups", st->nr_groups);

	print_rule(f, "Global Stats");
	p_u(f, "nr_alloc", st->nr_alloc);
	p_u(f, "nr_dealloc", st->nr_dealloc);
	p_u(f, "nr_cur_alloc", st->nr_cur_alloc);
	p_u(f, "nr_max_alloc", st->nr_max_alloc);
	p_u(f, "nr_chunks", st->nr_chunks);
	p_u(f, "nr_max_chunks", st->nr_max_chunks);
	p_u(f, "min_alloc_size", st->min_alloc_size);
	p_u(f, "max_alloc_size", st->max_alloc_size);
	p_u(f, "empty_pop_pages", st->empty_pop_pages);
	p_u(f, "populated_pages", st->populated_pages);
	p_u(f, "free_bytes", st->free_bytes);
	p_u(f, "nowait_failures", st->nowait_failures);
	p_u(f, "zeroed_bytes", st->zeroed_bytes);
	p_u(f, "resident_bytes", st->resident_bytes);

	print_rule(f, "Runtime");
	p_s(f, "cpu_mode", cpu_mode_name(st->cpu_mode));
	p_s(f, "index_mode", index_mode_name(st->index_mode));
	if (s->fallback_reason)
		fprintf(f, "  %-20s: cid fell back to cpu: %s\n", "index_fallback",
			s->fallback_reason);
	p_s(f, "numa_binding", st->numa_available ? "yes" : "no");
	p_u(f, "bind_failures", st->bind_failures);
	p_s(f, "zero_source", zero_source_text());
	p_u(f, "memfd_fallbacks", s->memfd_fallbacks);
	p_u(f, "memfd_over_budget", s->memfd_over_budget);
	p_u(f, "balance_runs", st->balance_runs);
	p_u(f, "pages_populated", st->pages_populated);
	p_u(f, "pages_depopulated", st->pages_depopulated);
	p_s(f, "leak_tracking", __atomic_load_n(&pcpu_leaks_on, __ATOMIC_RELAXED) ? "on" : "off");

	print_rule(f, "Chunk Sets");
	for (int i = 0; i < PCPU_NR_SETS; i++) {
		const struct set_snap *t = &s->sets[i];

		fprintf(f, "  %-10s chunks %llu  nr_alloc %llu  free_bytes %llu  populated_pages "
			   "%llu  empty_pop_pages %llu  resident_bytes %llu\n",
			set_name(i), (unsigned long long)t->chunks, (unsigned long long)t->nr_alloc,
			(unsigned long long)t->free_bytes, (unsigned long long)t->populated_pages,
			(unsigned long long)t->empty_pop_pages, (unsigned long long)t->resident);
	}

	print_rule(f, "Accounting Domains");
	if (pcpu_domain_stats_print)
		pcpu_domain_stats_print(f);
	else
		fprintf(f, "  (not linked in)\n");

	print_rule(f, "Resident Memory per Unit");
	print_units(f, s);

	print_rule(f, "Per Chunk Stats");
	for (size_t i = 0; i < s->nr_chunks; i++)
		print_chunk(f, &s->chunks[i]);
}

void pcpu_stats_print(FILE *f)
{
	struct snap s;
	int err;

	if (!f)
		f = stderr;
	err = take_snapshot(&s, true);
	if (err) {
		fprintf(f, "libpcpu: statistics unavailable: %s\n", strerror(-err));
		return;
	}
	print_text(f, &s);
	fflush(f);
	snap_free(&s);
}

/* ---------------------------------------------------------------------------------------- */
/* JSON                                                                                      */
/* ---------------------------------------------------------------------------------------- */

/* Members of one object: a comma before every member but the first. */
struct jobj {
	FILE *f;
	bool more;
};

static void j_key(struct jobj *o, const char *k)
{
	fprintf(o->f, "%s\"%s\":", o->more ? "," : "", k);
	o->more = true;
}

static void j_u(struct jobj *o, const char *k, uint64_t v)
{
	j_key(o, k);
	fprintf(o->f, "%llu", (unsigned long long)v);
}

static void j_b(struct jobj *o, const char *k, bool v)
{
	j_key(o, k);
	fputs(v ? "true" : "false", o->f);
}

/* Our strings are fixed ASCII messages, but escape anyway: output must always parse. */
static void j_str(FILE *f, const char *v)
{
	fputc('"', f);
	for (; *v; v++) {
		unsigned char ch = (unsigned char)*v;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void j_s(struct jobj *o, const char *k, const char *v)
{
	j_key(o, k);
	if (v)
		j_str(o->f, v);
	else
		fputs("null", o->f);
}

static void j_chunk(FILE *f, const struct chunk_snap *cs)
{
	struct jobj o = {.f = f};

	fputc('{', f);
	j_key(&o, "base_addr");
	fprintf(f, "\"%p\"", (void *)cs->base);
	j_s(&o, "label", *chunk_label(cs) ? chunk_label(cs) : NULL);
	j_s(&o, "set", cs->reserved ? "reserved" : set_name(cs->set));
	j_u(&o, "slot", cs->reserved ? 0 : (uint64_t)cs->slot);
	j_b(&o, "isolated", cs->isolated);
	j_u(&o, "nr_alloc", (uint64_t)cs->nr_alloc);
	j_u(&o, "empty_pop_pages", (uint64_t)cs->empty_pop_pages);
	j_u(&o, "populated_pages", (uint64_t)cs->nr_populated);
	j_u(&o, "nr_pages", (uint64_t)cs->nr_pages);
	j_u(&o, "first_bit", (uint64_t)cs->first_bit);
	j_u(&o, "free_bytes", (uint64_t)cs->free_bytes);
	j_u(&o, "contig_bytes", (uint64_t)cs->contig_bytes);
	j_u(&o, "scan_hint_bytes", (uint64_t)cs->scan_bytes);
	j_u(&o, "sum_frag", (uint64_t)cs->sum_frag);
	j_u(&o, "max_frag", (uint64_t)cs->max_frag);
	j_u(&o, "cur_min_alloc", (uint64_t)cs->min_alloc);
	j_u(&o, "cur_med_alloc", (uint64_t)cs->med_alloc);
	j_u(&o, "cur_max_alloc", (uint64_t)cs->max_alloc);
	j_u(&o, "nr_queued", (uint64_t)cs->nr_queued);
	j_u(&o, "queued_bytes", (uint64_t)cs->queued_bytes);
	j_u(&o, "resident_bytes", cs->resident);
	fputc('}', f);
}

static void print_json(FILE *f, const struct snap *s)
{
	const struct pcpu_stats *st = &s->st;
	struct jobj o = {.f = f}, g;

	fputc('{', f);
	j_s(&o, "version", PCPU_VERSION);

	j_key(&o, "alloc_info");
	g = (struct jobj){.f = f};
	fputc('{', f);
	j_u(&g, "unit_size", st->unit_size);
	j_u(&g, "static_size", st->static_size);
	j_u(&g, "reserved_size", st->reserved_size);
	j_u(&g, "dyn_size", st->dyn_size);
	j_u(&g, "page_size", st->page_size);
	j_u(&g, "unit_stride", pcpu_geom.stride);
	j_u(&g, "nr_cpus", st->nr_cpus);
	j_u(&g, "nr_nodes", st->nr_nodes);
	j_u(&g, "nr_groups", st->nr_groups);
	fputc('}', f);

	j_key(&o, "global");
	g = (struct jobj){.f = f};
	fputc('{', f);
	j_u(&g, "nr_alloc", st->nr_alloc);
	j_u(&g, "nr_dealloc", st->nr_dealloc);
	j_u(&g, "nr_cur_alloc", st->nr_cur_alloc);
	j_u(&g, "nr_max_alloc", st->nr_max_alloc);
	j_u(&g, "nr_chunks", st->nr_chunks);
	j_u(&g, "nr_max_chunks", st->nr_max_chunks);
	j_u(&g, "min_alloc_size", st->min_alloc_size);
	j_u(&g, "max_alloc_size", st->max_alloc_size);
	j_u(&g, "empty_pop_pages", st->empty_pop_pages);
	j_u(&g, "populated_pages", st->populated_pages);
	j_u(&g, "free_bytes", st->free_bytes);
	j_u(&g, "nowait_failures", st->nowait_failures);
	j_u(&g, "zeroed_bytes", st->zeroed_bytes);
	j_u(&g, "resident_bytes", st->resident_bytes);
	j_b(&g, "resident_exact", st->resident_exact);
	j_s(&g, "resident_method", s->resident_method);
	fputc('}', f);

	j_key(&o, "runtime");
	g = (struct jobj){.f = f};
	fputc('{', f);
	j_s(&g, "cpu_mode", cpu_mode_name(st->cpu_mode));
	j_s(&g, "index_mode", index_mode_name(st->index_mode));
	j_s(&g, "index_fallback_reason", s->fallback_reason);
	j_b(&g, "numa_available", st->numa_available);
	j_u(&g, "bind_failures", st->bind_failures);
	j_s(&g, "zero_source", pcpu_zero_source == PCPU_ZERO_MEMFD ? "memfd" : "anon");
	j_s(&g, "zero_source_detail", zero_source_text());
	j_b(&g, "zero_source_forced", pcpu_zero_source_forced);
	j_key(&g, "kernel_zero_page");
	fputs(pcpu_kernel_zero_page < 0 ? "null" : pcpu_kernel_zero_page ? "true" : "false", f);
	j_u(&g, "memfd_fallbacks", s->memfd_fallbacks);
	j_u(&g, "memfd_over_budget", s->memfd_over_budget);
	j_u(&g, "balance_runs", st->balance_runs);
	j_u(&g, "pages_populated", st->pages_populated);
	j_u(&g, "pages_depopulated", st->pages_depopulated);
	j_b(&g, "leak_tracking", __atomic_load_n(&pcpu_leaks_on, __ATOMIC_RELAXED));
	fputc('}', f);

	j_key(&o, "sets");
	fputc('[', f);
	for (int i = 0; i < PCPU_NR_SETS; i++) {
		const struct set_snap *t = &s->sets[i];

		g = (struct jobj){.f = f};
		fprintf(f, "%s{", i ? "," : "");
		j_s(&g, "name", set_name(i));
		j_u(&g, "chunks", t->chunks);
		j_u(&g, "nr_alloc", t->nr_alloc);
		j_u(&g, "free_bytes", t->free_bytes);
		j_u(&g, "populated_pages", t->populated_pages);
		j_u(&g, "empty_pop_pages", t->empty_pop_pages);
		j_u(&g, "resident_bytes", t->resident);
		fputc('}', f);
	}
	fputc(']', f);

	j_key(&o, "domains");
	if (pcpu_domain_stats_json)
		pcpu_domain_stats_json(f);
	else
		fputs("null", f);

	j_key(&o, "units");
	fputc('[', f);
	for (unsigned u = 0; u < pcpu_geom.nr_units; u++)
		fprintf(f, "%s{\"unit\":%u,\"cpu\":%u,\"node\":%d,\"resident_bytes\":%llu}",
			u ? "," : "", u, unit_cpu(u), unit_node(u),
			(unsigned long long)s->unit_resident[u]);
	fputc(']', f);

	j_key(&o, "chunks");
	fputc('[', f);
	for (size_t i = 0; i < s->nr_chunks; i++) {
		if (i)
			fputc(',', f);
		j_chunk(f, &s->chunks[i]);
	}
	fputs("]}\n", f);
}

void pcpu_stats_print_json(FILE *f)
{
	struct snap s;
	int err;

	if (!f)
		f = stdout;
	err = take_snapshot(&s, true);
	if (err) {
		fputs("{\"error\":", f);
		j_str(f, strerror(-err));
		fputs("}\n", f);
		return;
	}
	print_json(f, &s);
	fflush(f);
	snap_free(&s);
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
	const char *e = getenv("PCPU_STATS");

	if (!e || !*e || !strcmp(e, "0"))
		return;
	atexit(strcmp(e, "json") ? stats_at_exit_text : stats_at_exit_json);
}
