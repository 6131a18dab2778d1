/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * placement - are libpcpu's per-CPU copies on their CPU's NUMA node?
 *
 * Allocates three kinds of objects through the public API:
 *   static   PCPU_DEFINE'd variables (the first chunk's static region; left out when
 *            built with -DPLACEMENT_STATIC=0, while the library lacks PCPU_DEFINE support);
 *   dynamic  pcpu_alloc() of mixed sizes, about 3 units' worth per CPU, so that several
 *            dynamic chunks are made besides the first chunk's dynamic region;
 *   nowait   pcpu_alloc(..., PCPU_NOWAIT) after a short sleep, so they come from pages the
 *            balancer populated ahead of need;
 * writes every copy (then reads every copy back: copies must not overlap), and asks
 * move_pages(0, n, pages, NULL, status, 0) for the node of every page of every CPU's copy.
 * The expected node of CPU c is numa_node_of_cpu(c), or, when that node has no memory, the
 * nearest node with memory by numa_distance() (any of them on a tie): numa_util.h.
 *
 * Prints, per kind, how many distinct pages are on the expected node. Passes (exit 0) only
 * when every kind is at 100%: the library binds each unit to its node with mbind before
 * the pages are populated, and the kernel honours a bind strictly while the node has free
 * memory, which the test machines have in plenty (tools/numa-vm/run gives each node >= 128
 * MiB; the test uses a few MiB per node). A misplaced page is therefore a bug, not noise.
 * --min-percent P loosens that for exploration. Without NUMA (numa_available() < 0) there
 * is nothing to observe: the program says so and passes. On a 1-node host it checks the
 * trivial placement (everything on node 0) and the rest of the path.
 *
 * Usage: placement [--bytes-per-cpu B] [--sleep-ms MS] [--min-percent P] [--verbose]
 * Exit: 0 pass, 1 placement below the threshold or a copy corrupted, 2 usage / API failure.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <pcpu.h>

#include "numa_util.h"

/* Optional parts of the library: the test still runs without them. */
#pragma weak pcpu_stats_get
#pragma weak pcpu_verify

/* --- static per-CPU variables: the first chunk --------------------------------------- */

#ifndef PLACEMENT_STATIC
#define PLACEMENT_STATIC 1
#endif
#if PLACEMENT_STATIC
struct big {
	unsigned char bytes[4096];
};
struct mid {
	uint64_t v[64];
};
PCPU_DEFINE(struct big, st_big);
PCPU_DEFINE(struct mid, st_mid);
PCPU_DEFINE(uint64_t, st_u64, 7);
PCPU_DEFINE(int, st_int);
PCPU_DEFINE(char, st_char, 'x');
#endif

/* --- bookkeeping ---------------------------------------------------------------------- */

enum kind { K_STATIC, K_DYNAMIC, K_NOWAIT, K_NR };
static const char *const kind_name[K_NR] = {"static", "dynamic", "nowait"};

struct obj {
	void *handle;  /* per-CPU handle */
	size_t size;
	enum kind kind;
	int dynamic;   /* from pcpu_alloc(): freed at the end */
};

struct ent {
	uintptr_t page;
	int cpu;
};

static struct obj *objs;
static size_t nobjs, capobjs;
static struct ent *ents[K_NR];
static size_t nents[K_NR], capents[K_NR];
static int verbose;

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (!p) {
		perror("realloc");
		exit(2);
	}
	return p;
}

static void add_obj(void *handle, size_t size, enum kind k, int dynamic)
{
	if (nobjs == capobjs) {
		capobjs = capobjs ? 2 * capobjs : 1024;
		objs = xrealloc(objs, capobjs * sizeof(*objs));
	}
	objs[nobjs++] = (struct obj){handle, size, k, dynamic};
}

static void add_ent(enum kind k, uintptr_t page, int cpu)
{
	if (nents[k] == capents[k]) {
		capents[k] = capents[k] ? 2 * capents[k] : 4096;
		ents[k] = xrealloc(ents[k], capents[k] * sizeof(*ents[k]));
	}
	ents[k][nents[k]++] = (struct ent){page, cpu};
}

static int cmp_ent(const void *a, const void *b)
{
	const struct ent *x = a, *y = b;

	if (x->page != y->page)
		return x->page < y->page ? -1 : 1;
	return x->cpu - y->cpu;
}

static unsigned char pattern(size_t obj, unsigned cpu)
{
	return (unsigned char)(0x80 | ((obj * 31 + cpu * 7) & 0x7f));
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --- the check ------------------------------------------------------------------------ */

/* Check one kind; return 1 when it meets @min_percent (or has no page). */
static int check_kind(enum kind k, const struct nt_topo *t, double min_percent)
{
	size_t n = 0, good = 0, absent = 0, shared = 0, shown = 0;
	void **pages;
	int *status;
	unsigned long per_node_good[NT_MAX_NODES] = {0}, per_node_all[NT_MAX_NODES] = {0};
	double pct;

	if (!nents[k]) {
		printf("%-8s no object of this kind\n", kind_name[k]);
		return 1;
	}
	qsort(ents[k], nents[k], sizeof(*ents[k]), cmp_ent);
	/* Distinct pages; a page under copies of CPUs with different expected nodes counts
	 * as wrong (units of different CPUs must not share a page). */
	for (size_t i = 0; i < nents[k]; i++) {
		if (n && ents[k][n - 1].page == ents[k][i].page) {
			if (nt_expected_node(t, ents[k][i].cpu) !=
			    nt_expected_node(t, ents[k][n - 1].cpu)) {
				if (ents[k][n - 1].cpu >= 0)
					shared++;
				ents[k][n - 1].cpu = -1 - ents[k][n - 1].cpu; /* mark */
			}
			continue;
		}
		ents[k][n++] = ents[k][i];
	}
	pages = xrealloc(NULL, n * sizeof(*pages));
	status = xrealloc(NULL, n * sizeof(*status));
	for (size_t i = 0; i < n; i++)
		pages[i] = (void *)ents[k][i].page;
	if (nt_query_nodes(pages, status, n) < 0) {
		printf("%-8s move_pages failed: %s\n", kind_name[k], strerror(errno));
		free(pages);
		free(status);
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		int cpu = ents[k][i].cpu, marked = cpu < 0, st = status[i];
		unsigned char ok[NT_MAX_NODES];
		int exp;

		if (marked)
			cpu = -1 - cpu;
		nt_expected_nodes(t, cpu, ok);
		exp = nt_expected_node(t, cpu);
		per_node_all[exp]++;
		if (!marked && st >= 0 && st < t->nr_nodes && ok[st]) {
			good++;
			per_node_good[exp]++;
			continue;
		}
		if (st < 0)
			absent++;
		if (shown++ < 10)
			printf("  %s page %p of CPU %d: %s%s (status %d), expected node %d\n",
			       kind_name[k], pages[i], cpu,
			       st < 0 ? "not present" : "on another node",
			       marked ? ", shared with another node's CPU" : "", st, exp);
	}
	pct = 100.0 * (double)good / (double)n;
	printf("%-8s %zu/%zu pages on the expected node (%.2f%%)", kind_name[k], good, n, pct);
	if (absent)
		printf(", %zu not present", absent);
	if (shared)
		printf(", %zu shared between nodes' CPUs", shared);
	printf("\n");
	if (verbose || good != n)
		for (int node = 0; node < t->nr_nodes; node++)
			if (per_node_all[node])
				printf("  node %d: %lu/%lu\n", node, per_node_good[node],
				       per_node_all[node]);
	free(pages);
	free(status);
	return pct >= min_percent;
}

int main(int argc, char **argv)
{
	size_t bytes_per_cpu = 0, dyn_bytes = 0;
	long sleep_ms = 200, psz = sysconf(_SC_PAGESIZE);
	double min_percent = 100.0, t0;
	static const size_t sizes[] = {8, 16, 24, 40, 64, 100, 128, 256, 512, 1000, 2048, 4096,
				       6000, 8192, 16384};
	struct pcpu_stats st = {.size = sizeof(st)};
	struct nt_topo t;
	unsigned ncpu;
	size_t nowait_ok = 0, corrupt = 0, nstatic = 0;
	int have_stats = 0, pass = 1, err;

	for (int i = 1; i < argc; i++) {
		if (i + 1 < argc && !strcmp(argv[i], "--bytes-per-cpu"))
			bytes_per_cpu = strtoul(argv[++i], NULL, 0);
		else if (i + 1 < argc && !strcmp(argv[i], "--sleep-ms"))
			sleep_ms = atol(argv[++i]);
		else if (i + 1 < argc && !strcmp(argv[i], "--min-percent"))
			min_percent = atof(argv[++i]);
		else if (!strcmp(argv[i], "--verbose"))
			verbose = 1;
		else {
			fprintf(stderr,
				"usage: %s [--bytes-per-cpu B] [--sleep-ms MS] [--min-percent P] "
				"[--verbose]\n",
				argv[0]);
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	t0 = now_s();
	nt_topo_init(&t);
	ncpu = pcpu_nr_cpus();
	if (pcpu_stats_get && pcpu_stats_get(&st) == 0)
		have_stats = 1;
	printf("placement: %u CPUs (libpcpu), %d nodes (libnuma), NUMA %s", ncpu, t.nr_nodes,
	       t.numa ? "available" : "NOT available");
	if (have_stats)
		printf("; libpcpu: %u nodes, %u groups, unit %zu KiB, numa_available %d",
		       st.nr_nodes, st.nr_groups, st.unit_size >> 10, st.numa_available);
	printf("\n");
	for (int n = 0; n < t.nr_nodes; n++)
		if (!t.has_mem[n])
			printf("  node %d has no memory: its CPUs expect node %d\n", n,
			       nt_node_expected_node(&t, n));

	/* static */
#if PLACEMENT_STATIC
	add_obj(st_big, sizeof(struct big), K_STATIC, 0);
	add_obj(st_mid, sizeof(struct mid), K_STATIC, 0);
	add_obj(st_u64, sizeof(uint64_t), K_STATIC, 0);
	add_obj(st_int, sizeof(int), K_STATIC, 0);
	add_obj(st_char, sizeof(char), K_STATIC, 0);
	nstatic = nobjs;
	for (unsigned c = 0; c < ncpu; c++)
		if (*pcpu_ptr(st_u64, c) != 7 || *pcpu_ptr(st_char, c) != 'x') {
			printf("FAIL: static initial value wrong on CPU %u\n", c);
			pass = 0;
		}
#else
	printf("note: built without static variables (PLACEMENT_STATIC=0: the library has no "
	       "PCPU_DEFINE support yet)\n");
#endif

	/* dynamic: several units' worth per CPU */
	if (!bytes_per_cpu)
		bytes_per_cpu = 3 * (have_stats && st.unit_size ? st.unit_size : (256u << 10));
	for (size_t i = 0; dyn_bytes < bytes_per_cpu; i++) {
		size_t sz = sizes[i % (sizeof(sizes) / sizeof(sizes[0]))];
		void *p = pcpu_alloc(sz, 0, 0);

		if (!p) {
			err = errno;
			printf("FAIL: pcpu_alloc(%zu) after %zu bytes: %s\n", sz, dyn_bytes,
			       strerror(err));
			return 2;
		}
		add_obj(p, sz, K_DYNAMIC, 1);
		dyn_bytes += sz;
	}

	/* nowait: from pages the balancer populated meanwhile */
	usleep((useconds_t)sleep_ms * 1000);
	for (size_t i = 0; i < 2000; i++) {
		size_t sz = sizes[i % 8]; /* small: 8 .. 256 bytes */
		void *p = pcpu_alloc(sz, 0, PCPU_NOWAIT);

		if (!p)
			break;
		add_obj(p, sz, K_NOWAIT, 1);
		nowait_ok++;
	}

	/* write every copy, then read every copy back */
	for (size_t o = 0; o < nobjs; o++)
		for (unsigned c = 0; c < ncpu; c++)
			memset(pcpu_ptr((char *)objs[o].handle, c), pattern(o, c), objs[o].size);
	for (size_t o = 0; o < nobjs; o++)
		for (unsigned c = 0; c < ncpu; c++) {
			const unsigned char *q = (const unsigned char *)pcpu_ptr(
				(char *)objs[o].handle, c);
			uintptr_t first, last;

			for (size_t b = 0; b < objs[o].size; b++)
				if (q[b] != pattern(o, c)) {
					if (corrupt++ < 5)
						printf("FAIL: object %zu (%s, %zu bytes) CPU %u byte "
						       "%zu overwritten\n",
						       o, kind_name[objs[o].kind], objs[o].size, c, b);
					break;
				}
			first = (uintptr_t)q & ~(uintptr_t)(psz - 1);
			last = ((uintptr_t)q + objs[o].size - 1) & ~(uintptr_t)(psz - 1);
			for (uintptr_t pg = first; pg <= last; pg += (uintptr_t)psz)
				add_ent(objs[o].kind, pg, (int)c);
		}
	printf("objects: %zu static, %zu dynamic (%zu bytes per CPU), %zu nowait after %ld ms\n",
	       nstatic, nobjs - nstatic - nowait_ok, dyn_bytes, nowait_ok, sleep_ms);
	if (corrupt) {
		printf("FAIL: %zu copies overwritten by another copy\n", corrupt);
		pass = 0;
	}

	if (!t.numa) {
		printf("placement: no NUMA on this machine: placement not observable; PASS\n");
	} else {
		for (int k = 0; k < K_NR; k++)
			pass &= check_kind((enum kind)k, &t, min_percent);
	}
	if (pcpu_stats_get && pcpu_stats_get(&st) == 0)
		printf("stats: %" PRIu64 " chunks, %" PRIu64 " populated pages, %" PRIu64
		       " bind failures, %" PRIu64 " balance runs, %" PRIu64
		       " nowait failures, numa_available %d\n",
		       st.nr_chunks, st.populated_pages, st.bind_failures, st.balance_runs,
		       st.nowait_failures, st.numa_available);
	if (!nowait_ok)
		printf("note: no PCPU_NOWAIT allocation succeeded (no populated free page)\n");

	for (size_t o = 0; o < nobjs; o++)
		if (objs[o].dynamic)
			pcpu_free(objs[o].handle);
	if (pcpu_verify && pcpu_verify() != 0) {
		printf("FAIL: pcpu_verify after freeing everything\n");
		pass = 0;
	}
	printf("placement: %s (threshold %.2f%%, %.2f s)\n", pass ? "PASS" : "FAIL", min_percent,
	       now_s() - t0);
	return pass ? 0 : 1;
}
