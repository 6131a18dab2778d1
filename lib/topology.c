/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * Topology: possible CPUs and their nodes, from libnuma (or a fake spec for tests), and the
 * grouping of units by node. As in the kernel, each group's units are contiguous in a chunk
 * so a whole group is bound with one mbind call.
 */
#include <errno.h>
#include <numa.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include <pcpu.h>

#include "topology.h"
#include "util.h"

struct pcpu_topology pcpu_topo;

/* The highest CPU id the running kernel may report, plus one. */
static unsigned real_cpu_ids(void)
{
	struct bitmask *bm;
	unsigned n = 0;

	bm = numa_parse_cpustring_all("all");
	if (bm) {
		for (unsigned i = 0; i < bm->size; i++)
			if (numa_bitmask_isbitset(bm, i))
				n = i + 1;
		numa_bitmask_free(bm);
	}
	if (!n)
		n = numa_num_possible_cpus() > 0 ? (unsigned)numa_num_possible_cpus() : 1;
	return n;
}

/* Possible CPUs of the machine: /sys/devices/system/cpu/possible through libnuma. */
static struct bitmask *real_possible(void)
{
	FILE *f = fopen("/sys/devices/system/cpu/possible", "re");
	char buf[4096];
	struct bitmask *bm = NULL;

	if (f) {
		if (fgets(buf, sizeof(buf), f)) {
			buf[strcspn(buf, "\n")] = '\0';
			bm = numa_parse_cpustring_all(buf);
		}
		fclose(f);
	}
	return bm;
}

/* Nearest node with memory to @node (itself when it has memory); -1 if none known. */
static int nearest_mem_node(int node)
{
	int best = -1, best_d = 1 << 30;
	int max = numa_max_node();

	if (numa_node_size64(node, NULL) > 0)
		return node;
	for (int n = 0; n <= max; n++) {
		int d;

		if (n == node || numa_node_size64(n, NULL) <= 0)
			continue;
		d = numa_distance(node, n);
		if (d <= 0)
			d = 255;
		if (d < best_d) {
			best_d = d;
			best = n;
		}
	}
	return best;
}

static int alloc_arrays(struct pcpu_topology *t)
{
	t->cpu_node = pcpu_calloc(t->nr_cpus, sizeof(*t->cpu_node));
	t->cpu_unit = pcpu_calloc(t->nr_cpus, sizeof(*t->cpu_unit));
	t->unit_cpu = pcpu_calloc(t->nr_cpus, sizeof(*t->unit_cpu));
	t->cpu_present = pcpu_calloc(t->nr_cpus, 1);
	t->groups = pcpu_calloc(t->nr_nodes, sizeof(*t->groups));
	if (!t->cpu_node || !t->cpu_unit || !t->unit_cpu || !t->cpu_present || !t->groups)
		return -ENOMEM;
	return 0;
}

/*
 * Parse a fake spec: "N" | "NxM" | "LIST" | "LISTxM" where LIST is ranges joined by '+'
 * (commas separate PCPU_CONF pairs). Present CPUs are spread over the M nodes in blocks.
 */
static int parse_fake(struct pcpu_topology *t, const char *spec)
{
	char list[256];
	const char *x = strchr(spec, 'x');
	unsigned nodes = 1, nr_present = 0, i = 0;
	unsigned char *present;
	unsigned max = 0;
	char *p, *save = NULL;
	bool is_list = strpbrk(spec, "-+") != NULL;
	int err;

	if (x) {
		char *end;

		nodes = strtoul(x + 1, &end, 10);
		if (*end || !nodes || nodes > 1024)
			return -EINVAL;
	}
	snprintf(list, sizeof(list), "%.*s", x ? (int)(x - spec) : (int)strlen(spec), spec);
	if (!*list)
		return -EINVAL;
	present = calloc(PCPU_MAX_CPUS, 1);
	if (!present)
		return -ENOMEM;
	if (!is_list) {
		unsigned long n = strtoul(list, NULL, 10);

		if (!n || n > PCPU_MAX_CPUS)
			goto bad;
		memset(present, 1, n);
		max = n;
	} else {
		for (p = strtok_r(list, "+", &save); p; p = strtok_r(NULL, "+", &save)) {
			char *end;
			unsigned long a = strtoul(p, &end, 10), b = a;

			if (end == p)
				goto bad;
			if (*end == '-')
				b = strtoul(end + 1, &end, 10);
			if (*end || b < a || b >= PCPU_MAX_CPUS)
				goto bad;
			memset(present + a, 1, b - a + 1);
			if (b + 1 > max)
				max = b + 1;
		}
	}
	for (i = 0; i < max; i++)
		nr_present += present[i];
	if (nodes > nr_present)
		goto bad;
	t->nr_cpus = max;
	t->nr_nodes = nodes;
	err = alloc_arrays(t);
	if (err) {
		free(present);
		return err;
	}
	{
		unsigned k = 0;
		int last = 0;

		for (i = 0; i < max; i++) {
			t->cpu_present[i] = present[i];
			if (present[i])
				last = (int)((unsigned long)k++ * nodes / nr_present);
			/* A hole takes the node of the CPU before it: it costs nothing unless used. */
			t->cpu_node[i] = last;
		}
	}
	free(present);
	t->fake = true;
	return 0;
bad:
	free(present);
	return -EINVAL;
}

static int discover_real(struct pcpu_topology *t)
{
	struct bitmask *bm = real_possible();
	unsigned max = 0;
	int err;

	if (bm) {
		for (unsigned i = 0; i < bm->size && i < PCPU_MAX_CPUS; i++)
			if (numa_bitmask_isbitset(bm, i))
				max = i + 1;
	}
	if (!max)
		max = real_cpu_ids();
	if (max > PCPU_MAX_CPUS)
		max = PCPU_MAX_CPUS;
	t->nr_cpus = max;
	t->nr_nodes = t->numa ? (unsigned)numa_max_node() + 1 : 1;
	err = alloc_arrays(t);
	if (err) {
		if (bm)
			numa_bitmask_free(bm);
		return err;
	}
	for (unsigned i = 0; i < max; i++) {
		int node = t->numa ? numa_node_of_cpu(i) : 0;

		t->cpu_present[i] = !bm || numa_bitmask_isbitset(bm, i);
		t->cpu_node[i] = node < 0 ? (i ? t->cpu_node[i - 1] : 0) : node;
	}
	if (bm)
		numa_bitmask_free(bm);
	return 0;
}

/* Units grouped by node, nodes in increasing order, CPUs in increasing order within. */
static void build_groups(struct pcpu_topology *t)
{
	unsigned unit = 0;

	t->nr_groups = 0;
	for (unsigned node = 0; node < t->nr_nodes; node++) {
		struct pcpu_group *g = &t->groups[t->nr_groups];

		g->node = node;
		g->first_unit = unit;
		g->nr_units = 0;
		for (unsigned cpu = 0; cpu < t->nr_cpus; cpu++) {
			if (t->cpu_node[cpu] != (int)node)
				continue;
			t->cpu_unit[cpu] = unit;
			t->unit_cpu[unit] = cpu;
			unit++;
			g->nr_units++;
		}
		if (!g->nr_units)
			continue;
		if (t->fake)
			g->mem_node = t->numa && (int)node <= numa_max_node() ? (int)node : -1;
		else
			g->mem_node = t->numa ? nearest_mem_node(node) : -1;
		t->nr_groups++;
	}
}

int pcpu_topology_init(struct pcpu_topology *t, const char *spec)
{
	int err;

	memset(t, 0, sizeof(*t));
	t->numa = numa_available() >= 0;
	t->real_nr_cpu_ids = real_cpu_ids();
	if (spec && *spec)
		err = parse_fake(t, spec);
	else
		err = discover_real(t);
	if (err)
		return err;
	/* A node id beyond the table (a broken libnuma answer) folds onto node 0. */
	for (unsigned i = 0; i < t->nr_cpus; i++)
		if (t->cpu_node[i] < 0 || (unsigned)t->cpu_node[i] >= t->nr_nodes)
			t->cpu_node[i] = 0;
	build_groups(t);
	t->aliased = t->real_nr_cpu_ids > t->nr_cpus;
	return 0;
}

unsigned pcpu_topology_allowed(const struct pcpu_topology *t, unsigned char *allowed)
{
	cpu_set_t *set;
	size_t setsize;
	unsigned ncpu = t->real_nr_cpu_ids > t->nr_cpus ? t->real_nr_cpu_ids : t->nr_cpus;
	unsigned n = 0;

	memset(allowed, 0, t->nr_cpus);
	set = CPU_ALLOC(ncpu);
	if (!set)
		goto all;
	setsize = CPU_ALLOC_SIZE(ncpu);
	if (sched_getaffinity(0, setsize, set)) {
		CPU_FREE(set);
		goto all;
	}
	/* A real CPU id beyond a fake topology maps to the copy it aliases. */
	for (unsigned c = 0; c < ncpu; c++) {
		if (!CPU_ISSET_S(c, setsize, set))
			continue;
		if (!allowed[c % t->nr_cpus])
			n++;
		allowed[c % t->nr_cpus] = 1;
	}
	CPU_FREE(set);
	if (n)
		return n;
all:
	memset(allowed, 1, t->nr_cpus);
	return t->nr_cpus;
}
