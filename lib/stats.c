/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * Statistics (kernel: mm/percpu-stats.c): the global counters and the per-chunk view,
 * taken consistently under the short lock.
 */
#include <errno.h>
#include <string.h>

#include <pcpu.h>

#include "alloc.h"
#include "balance.h"
#include "cpu.h"
#include "topology.h"

static uint64_t populated_pages(void);

static void count_populated(struct pcpu_chunk *c, void *arg)
{
	if (c->reserved)
		return; /* shares the first chunk's pages */
	*(uint64_t *)arg += (uint64_t)c->map.nr_populated;
}

static uint64_t populated_pages(void)
{
	uint64_t n = 0;

	pcpu_for_each_chunk(count_populated, &n);
	return n;
}

int pcpu_stats_get(struct pcpu_stats *st)
{
	struct pcpu_stats s;
	size_t n;

	if (!st || st->size == 0) {
		errno = EINVAL;
		return -1;
	}
	if (pcpu_ensure_init()) {
		errno = ENOMEM;
		return -1;
	}
	memset(&s, 0, sizeof(s));
	s.size = sizeof(s);
	s.unit_size = pcpu_geom.unit_size;
	s.static_size = pcpu_first.static_size;
	s.reserved_size = pcpu_first.reserved_size;
	s.dyn_size = pcpu_first.dyn_size;
	s.page_size = pcpu_geom.page;
	s.nr_cpus = pcpu_topo.nr_cpus;
	s.nr_nodes = pcpu_topo.nr_nodes;
	s.nr_groups = pcpu_topo.nr_groups;
	s.cpu_mode = pcpu_cpu_mode_now();
	s.index_mode = pcpu_cpu_index_now();
	s.numa_available = pcpu_topo.numa;

	pthread_mutex_lock(&pcpu_lock);
	s.nr_alloc = pcpu_gstats.nr_alloc;
	s.nr_dealloc = pcpu_gstats.nr_dealloc;
	s.nr_cur_alloc = pcpu_gstats.nr_cur_alloc;
	s.nr_max_alloc = pcpu_gstats.nr_max_alloc;
	s.nr_chunks = pcpu_gstats.nr_chunks;
	s.nr_max_chunks = pcpu_gstats.nr_max_chunks;
	s.min_alloc_size = pcpu_gstats.nr_alloc ? pcpu_gstats.min_alloc_size : 0;
	s.max_alloc_size = pcpu_gstats.max_alloc_size;
	for (int i = 0; i < PCPU_NR_SETS; i++)
		s.empty_pop_pages += (uint64_t)pcpu_sets[i].nr_empty_pop_pages;
	s.populated_pages = populated_pages();
	s.nowait_failures = pcpu_gstats.nowait_failures;
	pthread_mutex_unlock(&pcpu_lock);

	pthread_mutex_lock(&pcpu_alloc_mutex);
	s.bind_failures = pcpu_chunk_bind_failures;
	s.pages_populated = pcpu_chunk_pages_populated;
	s.pages_depopulated = pcpu_chunk_pages_depopulated;
	s.balance_runs = pcpu_balance_runs;
	pthread_mutex_unlock(&pcpu_alloc_mutex);

	/* A caller built against an older, smaller struct gets its prefix. */
	n = st->size < sizeof(s) ? st->size : sizeof(s);
	memcpy(st, &s, n);
	st->size = n;
	return 0;
}
