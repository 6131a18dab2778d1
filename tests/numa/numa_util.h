/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * numa_util.h - topology helpers shared by the NUMA placement tests (header only).
 *
 * The node a CPU's memory is expected on: the CPU's node when that node has memory, else
 * the nodes with memory at the smallest numa_distance() from it (several on a tie; the
 * kernel's own choice for such CPUs, numa_mem_id(), is one of them).
 */
#ifndef NUMA_UTIL_H
#define NUMA_UTIL_H

#include <numa.h>
#include <numaif.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NT_MAX_NODES 1024

struct nt_topo {
	int nr_nodes;                   /* numa_max_node() + 1 (1 without NUMA) */
	int numa;                       /* numa_available() >= 0 */
	unsigned char has_mem[NT_MAX_NODES];
	unsigned char has_cpu[NT_MAX_NODES];
};

/* Parse a sysfs node list such as "0-3,5" into @set (NT_MAX_NODES entries). */
static inline int nt_read_nodelist(const char *path, unsigned char *set)
{
	char buf[4096], *s, *end;
	FILE *f = fopen(path, "r");

	memset(set, 0, NT_MAX_NODES);
	if (!f)
		return -1;
	if (!fgets(buf, sizeof(buf), f)) {
		fclose(f);
		return -1;
	}
	fclose(f);
	for (s = buf; *s && *s != '\n';) {
		long lo = strtol(s, &end, 10), hi = lo;

		if (end == s)
			break;
		if (*end == '-')
			hi = strtol(end + 1, &end, 10);
		for (long n = lo; n <= hi && n < NT_MAX_NODES; n++)
			if (n >= 0)
				set[n] = 1;
		s = *end == ',' ? end + 1 : end;
	}
	return 0;
}

static inline void nt_topo_init(struct nt_topo *t)
{
	memset(t, 0, sizeof(*t));
	t->numa = numa_available() >= 0;
	t->nr_nodes = t->numa ? numa_max_node() + 1 : 1;
	if (t->nr_nodes > NT_MAX_NODES)
		t->nr_nodes = NT_MAX_NODES;
	if (!t->numa ||
	    nt_read_nodelist("/sys/devices/system/node/has_memory", t->has_mem) < 0) {
		/* No sysfs node information: every node counts as having memory. */
		for (int n = 0; n < t->nr_nodes; n++)
			t->has_mem[n] = 1;
	}
	if (!t->numa || nt_read_nodelist("/sys/devices/system/node/has_cpu", t->has_cpu) < 0)
		for (int n = 0; n < t->nr_nodes; n++)
			t->has_cpu[n] = 1;
}

static inline int nt_node_of_cpu(const struct nt_topo *t, int cpu)
{
	int n;

	if (!t->numa)
		return 0;
	n = numa_node_of_cpu(cpu);
	return n < 0 ? 0 : n;
}

/*
 * nt_node_expected_nodes - set @ok[n] = 1 for every node that memory of a CPU on @node may
 * correctly be on: @node itself when it has memory, else the nearest nodes with memory;
 * every other entry of @ok (NT_MAX_NODES of them) is 0.
 * Return: the number of such nodes (0 only when no node has memory: cannot happen).
 */
static inline int nt_node_expected_nodes(const struct nt_topo *t, int node,
					 unsigned char ok[NT_MAX_NODES])
{
	int best = -1, count = 0;

	memset(ok, 0, NT_MAX_NODES);
	if (node >= 0 && node < t->nr_nodes && t->has_mem[node]) {
		ok[node] = 1;
		return 1;
	}
	for (int n = 0; n < t->nr_nodes; n++) {
		int d;

		if (!t->has_mem[n])
			continue;
		d = numa_distance(node, n);
		if (d <= 0)
			d = 255;
		if (best < 0 || d < best) {
			best = d;
			memset(ok, 0, NT_MAX_NODES);
			count = 0;
		}
		if (d == best) {
			ok[n] = 1;
			count++;
		}
	}
	return count;
}

/* nt_expected_nodes - nt_node_expected_nodes() for the node of @cpu. */
static inline int nt_expected_nodes(const struct nt_topo *t, int cpu,
				    unsigned char ok[NT_MAX_NODES])
{
	return nt_node_expected_nodes(t, nt_node_of_cpu(t, cpu), ok);
}

/* The lowest node that memory of a CPU on @node may be on (for messages). */
static inline int nt_node_expected_node(const struct nt_topo *t, int node)
{
	unsigned char ok[NT_MAX_NODES];

	nt_node_expected_nodes(t, node, ok);
	for (int n = 0; n < t->nr_nodes; n++)
		if (ok[n])
			return n;
	return 0;
}

/* The lowest node that memory of @cpu may be on (for messages). */
static inline int nt_expected_node(const struct nt_topo *t, int cpu)
{
	return nt_node_expected_node(t, nt_node_of_cpu(t, cpu));
}

/*
 * nt_query_nodes - move_pages(0, n, pages, NULL, status, 0) in batches: status[i] is the
 * node of page i, or a negative errno (-ENOENT: not present).
 * Return: 0, or -1 with errno from move_pages.
 */
static inline int nt_query_nodes(void **pages, int *status, size_t n)
{
	const size_t batch = 4096;

	for (size_t i = 0; i < n; i += batch) {
		size_t k = n - i < batch ? n - i : batch;

		if (move_pages(0, (unsigned long)k, pages + i, NULL, status + i, 0) < 0)
			return -1;
	}
	return 0;
}

#endif /* NUMA_UTIL_H */
