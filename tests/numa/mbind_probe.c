/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * mbind_probe - proves that a machine (an emulated one from tools/numa-vm/run, or the host)
 * has the NUMA topology asked for and that placement can be observed, without libpcpu:
 *
 *   1. topology: with --cpus/--nodes/--memless, the machine has that many CPUs and nodes,
 *      the CPUs spread evenly (node i: CPUs [i*C/N, (i+1)*C/N)), the last K nodes without
 *      memory;
 *   2. mbind(MPOL_BIND) to every node with memory puts every touched page there, as
 *      move_pages(0, n, pages, NULL, status, 0) reports;
 *   3. mbind to a node without memory fails with EINVAL;
 *   4. on every CPU (thread pinned there): sched_getcpu() and glibc's rseq area name it, and
 *      a page first touched there lands on the CPU's expected node (its own, or the nearest
 *      node with memory: see numa_util.h).
 *
 * Usage: mbind_probe [--cpus C] [--nodes N] [--memless K]
 * Exit: 0 when every check passes, 1 otherwise (each failure is printed).
 */
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/rseq.h>
#include <unistd.h>

#include "numa_util.h"

#define PAGES_PER_NODE 16

static int failures;

#define FAIL(...)                                                                             \
	do {                                                                                  \
		printf("FAIL: " __VA_ARGS__);                                                 \
		failures++;                                                                   \
	} while (0)

static int rseq_cpu(void)
{
	const struct rseq *rs;

	if (__rseq_size == 0)
		return -2; /* glibc did not register rseq */
	rs = (const struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
	return (int)(int32_t)__atomic_load_n(&rs->cpu_id, __ATOMIC_RELAXED);
}

static void check_topology(const struct nt_topo *t, long want_cpus, long want_nodes,
			   long want_memless)
{
	int ncpus = numa_num_configured_cpus();

	if (!t->numa)
		ncpus = (int)sysconf(_SC_NPROCESSORS_CONF);
	printf("topology: %d CPUs, %d nodes, NUMA %s\n", ncpus, t->nr_nodes,
	       t->numa ? "available" : "not available");
	for (int n = 0; n < t->nr_nodes; n++) {
		long long freep = 0, size = t->numa ? numa_node_size64(n, &freep) : 0;
		int first = -1, last = -1, count = 0;

		for (int c = 0; c < ncpus; c++)
			if (nt_node_of_cpu(t, c) == n) {
				if (first < 0)
					first = c;
				last = c;
				count++;
			}
		printf("  node %d: %d CPUs (%d-%d), %s, %lld MiB, expected node of its CPUs %d\n",
		       n, count, first, last, t->has_mem[n] ? "memory" : "NO memory",
		       size > 0 ? size >> 20 : 0, first >= 0 ? nt_expected_node(t, first) : -1);
	}
	if (want_cpus && ncpus != want_cpus)
		FAIL("%d CPUs, expected %ld\n", ncpus, want_cpus);
	if (want_nodes && t->nr_nodes != want_nodes)
		FAIL("%d nodes, expected %ld\n", t->nr_nodes, want_nodes);
	if (want_cpus && want_nodes && ncpus == want_cpus && t->nr_nodes == want_nodes) {
		for (int c = 0; c < ncpus; c++) {
			int want = -1;

			for (int n = 0; n < want_nodes; n++)
				if (c >= n * want_cpus / want_nodes &&
				    c < (n + 1) * want_cpus / want_nodes)
					want = n;
			if (nt_node_of_cpu(t, c) != want)
				FAIL("CPU %d is on node %d, expected %d\n", c, nt_node_of_cpu(t, c),
				     want);
		}
		for (int n = 0; n < want_nodes; n++) {
			int want_mem = n < want_nodes - want_memless;

			if (t->has_mem[n] != want_mem)
				FAIL("node %d %s memory, expected %s\n", n,
				     t->has_mem[n] ? "has" : "has no", want_mem ? "some" : "none");
		}
	}
}

static void check_mbind(const struct nt_topo *t)
{
	long psz = sysconf(_SC_PAGESIZE);

	if (!t->numa) {
		printf("mbind: skipped (no NUMA)\n");
		return;
	}
	for (int n = 0; n < t->nr_nodes; n++) {
		size_t len = (size_t)psz * PAGES_PER_NODE;
		unsigned long mask[NT_MAX_NODES / (8 * sizeof(unsigned long))] = {0};
		void *pages[PAGES_PER_NODE];
		int status[PAGES_PER_NODE], good = 0;
		char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
			       0);

		if (p == MAP_FAILED) {
			FAIL("mmap: %s\n", strerror(errno));
			return;
		}
		mask[n / (8 * sizeof(unsigned long))] |= 1ul << (n % (8 * sizeof(unsigned long)));
		if (mbind(p, len, MPOL_BIND, mask, NT_MAX_NODES, MPOL_MF_STRICT) != 0) {
			int e = errno;

			if (t->has_mem[n] || e != EINVAL)
				FAIL("mbind to node %d (%s): %s\n", n,
				     t->has_mem[n] ? "memory" : "memoryless", strerror(e));
			else
				printf("mbind: node %d (memoryless): EINVAL as expected\n", n);
			munmap(p, len);
			continue;
		}
		if (!t->has_mem[n]) {
			FAIL("mbind to memoryless node %d succeeded\n", n);
			munmap(p, len);
			continue;
		}
		memset(p, 0x5a, len);
		for (int i = 0; i < PAGES_PER_NODE; i++)
			pages[i] = p + (size_t)i * psz;
		if (nt_query_nodes(pages, status, PAGES_PER_NODE) < 0) {
			FAIL("move_pages: %s\n", strerror(errno));
		} else {
			for (int i = 0; i < PAGES_PER_NODE; i++)
				good += status[i] == n;
			if (good != PAGES_PER_NODE)
				FAIL("mbind to node %d: %d/%d pages there (first status %d)\n", n, good,
				     PAGES_PER_NODE, status[0]);
			else
				printf("mbind: node %d: %d/%d pages there\n", n, good, PAGES_PER_NODE);
		}
		munmap(p, len);
	}
}

static void check_cpus(const struct nt_topo *t)
{
	long psz = sysconf(_SC_PAGESIZE);
	int ncpus = t->numa ? numa_num_configured_cpus() : (int)sysconf(_SC_NPROCESSORS_CONF);
	int pinned = 0, local = 0, rseq_ok = 0, rseq_seen = 0;
	cpu_set_t old;

	sched_getaffinity(0, sizeof(old), &old);
	for (int c = 0; c < ncpus && c < CPU_SETSIZE; c++) {
		cpu_set_t one;
		unsigned char ok[NT_MAX_NODES];
		char *p;
		void *page;
		int status = -1, rc, now;

		if (!CPU_ISSET(c, &old))
			continue; /* not allowed here (cgroup cpuset on the host) */
		CPU_ZERO(&one);
		CPU_SET(c, &one);
		if (sched_setaffinity(0, sizeof(one), &one) != 0) {
			FAIL("sched_setaffinity(CPU %d): %s\n", c, strerror(errno));
			continue;
		}
		now = sched_getcpu();
		if (now != c) {
			FAIL("pinned to CPU %d, sched_getcpu() says %d\n", c, now);
			continue;
		}
		pinned++;
		rc = rseq_cpu();
		if (rc != -2) {
			rseq_seen++;
			if (rc == c)
				rseq_ok++;
			else
				FAIL("on CPU %d, rseq cpu_id says %d\n", c, rc);
		}
		if (!t->numa)
			continue;
		p = mmap(NULL, (size_t)psz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
			 0);
		if (p == MAP_FAILED) {
			FAIL("mmap: %s\n", strerror(errno));
			continue;
		}
		p[0] = 1; /* first touch, default policy: the local node (or the nearest) */
		page = p;
		nt_expected_nodes(t, c, ok);
		if (nt_query_nodes(&page, &status, 1) < 0)
			FAIL("move_pages: %s\n", strerror(errno));
		else if (status < 0 || status >= t->nr_nodes || !ok[status])
			FAIL("page first touched on CPU %d (node %d) is on node %d, expected %d\n", c,
			     nt_node_of_cpu(t, c), status, nt_expected_node(t, c));
		else
			local++;
		munmap(p, (size_t)psz);
	}
	sched_setaffinity(0, sizeof(old), &old);
	printf("cpus: %d CPUs visited; sched_getcpu right on all; rseq %s (%d/%d right); "
	       "first touch on the expected node %d/%d\n",
	       pinned, rseq_seen ? "registered" : "NOT registered by glibc", rseq_ok, rseq_seen,
	       local, t->numa ? pinned : 0);
	if (!rseq_seen)
		printf("note: glibc did not register rseq (tunable glibc.pthread.rseq=0?)\n");
}

int main(int argc, char **argv)
{
	long want_cpus = 0, want_nodes = 0, want_memless = 0;
	struct nt_topo t;

	for (int i = 1; i < argc; i++) {
		if (i + 1 < argc && !strcmp(argv[i], "--cpus"))
			want_cpus = atol(argv[++i]);
		else if (i + 1 < argc && !strcmp(argv[i], "--nodes"))
			want_nodes = atol(argv[++i]);
		else if (i + 1 < argc && !strcmp(argv[i], "--memless"))
			want_memless = atol(argv[++i]);
		else {
			fprintf(stderr, "usage: %s [--cpus C] [--nodes N] [--memless K]\n", argv[0]);
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	nt_topo_init(&t);
	check_topology(&t, want_cpus, want_nodes, want_memless);
	check_mbind(&t);
	check_cpus(&t);
	if (failures) {
		printf("mbind_probe: %d check(s) FAILED\n", failures);
		return 1;
	}
	printf("mbind_probe: all checks passed\n");
	return 0;
}
