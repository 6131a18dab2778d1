/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * topology - possible CPUs, each CPU's NUMA node, and the grouping of units by node
 * (the kernel's pcpu_build_alloc_info() grouping). Knows nothing of memory.
 */
#ifndef PCPU_TOPOLOGY_H
#define PCPU_TOPOLOGY_H

#include <stdbool.h>

struct pcpu_group {
	int node;               /* NUMA node of the group's CPUs */
	int mem_node;           /* node to bind to: @node, or the nearest node with memory */
	unsigned first_unit;    /* units [first_unit, first_unit + nr_units) */
	unsigned nr_units;
};

struct pcpu_topology {
	unsigned nr_cpus;        /* possible CPU ids 0 .. nr_cpus - 1 (holes included) */
	unsigned nr_nodes;       /* node ids 0 .. nr_nodes - 1 */
	unsigned nr_groups;
	unsigned real_nr_cpu_ids; /* CPU ids the running kernel may report */
	bool fake;               /* a PCPU_CONF topology, not the machine */
	bool numa;               /* libnuma available and binding meaningful */
	bool aliased;            /* real CPU ids >= nr_cpus exist: several CPUs share a copy */
	int *cpu_node;           /* [nr_cpus] */
	unsigned *cpu_unit;      /* [nr_cpus] unit index of each CPU */
	unsigned *unit_cpu;      /* [nr_cpus] CPU of each unit */
	unsigned char *cpu_present; /* [nr_cpus] 0 for holes in the possible list */
	struct pcpu_group *groups; /* [nr_groups], in unit order */
};

/* The topology in force (set once by pcpu_topology_init()). */
extern struct pcpu_topology pcpu_topo;

/*
 * pcpu_topology_init - discover the machine (or parse the fake @spec: "N", "NxM", or a
 * list such as "0-3+8-11x2", meaning CPUs 0-3 and 8-11 possible, 2 nodes).
 * Return: 0, -EINVAL for a bad spec, -ENOMEM.
 */
int pcpu_topology_init(struct pcpu_topology *t, const char *spec);

/*
 * pcpu_topology_allowed - fill @allowed[nr_cpus] with 1 for CPUs the process may run on
 * now (sched_getaffinity, which the cgroup cpuset bounds). Return the number allowed.
 */
unsigned pcpu_topology_allowed(const struct pcpu_topology *t, unsigned char *allowed);

#endif /* PCPU_TOPOLOGY_H */
