/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * The leak report (kernel: kmemleak, which tracks per-CPU objects through
 * kmemleak_alloc_percpu()): every live allocation with its size and its caller, grouped by
 * call site, the call site holding the most bytes first. The kernel finds leaks by scanning
 * memory for references; a user-space handle lies outside the canonical address range and
 * is copied freely, so libpcpu lists what is live and lets the reader judge, which is what
 * a report at exit is for.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <pcpu.h>

#include "alloc.h"
#include "leaks.h"

bool pcpu_leaks_on;

/* How many handles of one call site are listed before "... and N more". */
#define LEAKS_LIST_PER_SITE 8

struct leak {
	void *handle;
	void *caller;
	size_t size;
};

struct leak_site {
	void *caller;
	size_t first, nr; /* leaks[first .. first + nr) */
	size_t bytes;
};

void pcpu_leaks_enable(void)
{
	if (pcpu_ensure_init())
		return;
	__atomic_store_n(&pcpu_leaks_on, true, __ATOMIC_RELAXED);
}

void pcpu_leaks_note_slow(struct pcpu_chunk *c, int off, void *call_site)
{
	void **t = pcpu_calloc((size_t)c->map.map_bits, sizeof(*t));

	/*
	 * One pointer per granule; calloc'd, so only the pages where allocations start are
	 * ever touched. Without memory the call site goes unrecorded: a debugging aid must
	 * not fail an allocation.
	 */
	pthread_mutex_lock(&pcpu_lock);
	if (!c->callers) {
		c->callers = t;
		t = NULL;
	}
	if (c->callers)
		c->callers[off / PCPU_MIN_ALLOC_SIZE] = call_site;
	pthread_mutex_unlock(&pcpu_lock);
	pcpu_mfree(t);
}

/* ---------------------------------------------------------------------------------------- */
/* Collecting (pcpu_lock held)                                                               */
/* ---------------------------------------------------------------------------------------- */

struct collect {
	struct leak *v;
	size_t nr, cap;
	bool overflow;
	struct pcpu_chunk *chunk;
};

static int collect_one(int off, int size, void *arg)
{
	struct collect *k = arg;
	struct pcpu_chunk *c = k->chunk;

	if (pcpu_area_queued(c, off))
		return 0; /* freed, waiting to be zeroed */
	if (k->nr == k->cap) {
		k->overflow = true;
		return 1;
	}
	k->v[k->nr++] = (struct leak){
		.handle = pcpu_handle_of(c, off),
		.caller = c->callers ? c->callers[off / PCPU_MIN_ALLOC_SIZE] : NULL,
		.size = (size_t)size,
	};
	return 0;
}

static void collect_chunk(struct pcpu_chunk *c, void *arg)
{
	struct collect *k = arg;

	/* The reserved region holds PCPU_DEFINE variables of loaded objects: not leaks. */
	if (c->reserved || k->overflow)
		return;
	k->chunk = c;
	pcpu_am_for_each_alloc(&c->map, collect_one, k);
}

/*
 * Snapshot every live allocation. The buffer is sized outside the lock, from the live
 * count, and retried if allocations grew meanwhile (as the kernel's percpu_stats does).
 */
static int collect_all(struct collect *k)
{
	size_t cap;

	pthread_mutex_lock(&pcpu_lock);
	cap = (size_t)pcpu_gstats.nr_cur_alloc + 64;
	pthread_mutex_unlock(&pcpu_lock);
	for (;;) {
		memset(k, 0, sizeof(*k));
		k->cap = cap;
		k->v = malloc(cap * sizeof(*k->v));
		if (!k->v)
			return -ENOMEM;
		pthread_mutex_lock(&pcpu_lock);
		pcpu_for_each_chunk(collect_chunk, k);
		pthread_mutex_unlock(&pcpu_lock);
		if (!k->overflow)
			return 0;
		free(k->v);
		cap *= 2;
	}
}

/* ---------------------------------------------------------------------------------------- */
/* Grouping and printing                                                                     */
/* ---------------------------------------------------------------------------------------- */

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;

	return (x > y) - (x < y);
}

/* By call site, then largest first, then by handle (a stable, readable order). */
static int cmp_leak(const void *a, const void *b)
{
	const struct leak *x = a, *y = b;
	int r = cmp_ptr(x->caller, y->caller);

	if (r)
		return r;
	if (x->size != y->size)
		return x->size < y->size ? 1 : -1;
	return cmp_ptr(x->handle, y->handle);
}

static int cmp_site(const void *a, const void *b)
{
	const struct leak_site *x = a, *y = b;

	if (x->bytes != y->bytes)
		return x->bytes < y->bytes ? 1 : -1;
	if (x->nr != y->nr)
		return x->nr < y->nr ? 1 : -1;
	return cmp_ptr(x->caller, y->caller);
}

static void print_caller(FILE *f, void *caller)
{
	Dl_info di;
	const char *file;

	if (!caller) {
		fprintf(f, "unknown caller (allocated before call sites were recorded: set "
			   "PCPU_LEAKS=1 or call pcpu_leaks_enable() first)");
		return;
	}
	/* A return address: look up the call instruction, which ends just before it. */
	if (!dladdr((char *)caller - 1, &di) || !di.dli_fname) {
		fprintf(f, "%p", caller);
		return;
	}
	file = strrchr(di.dli_fname, '/');
	file = file ? file + 1 : di.dli_fname;
	if (di.dli_sname && di.dli_saddr)
		fprintf(f, "%s+0x%zx (%s) [%p]", di.dli_sname,
			(size_t)((char *)caller - (char *)di.dli_saddr), file, caller);
	else /* no dynamic symbol: the offset in the file is what addr2line takes */
		fprintf(f, "%s+0x%zx [%p]", file, (size_t)((char *)caller - (char *)di.dli_fbase),
			caller);
}

static void print_report(FILE *f, struct leak *v, size_t nr)
{
	struct leak_site *sites;
	size_t nr_sites = 0, bytes = 0;
	unsigned cpus = pcpu_nr_cpus();

	qsort(v, nr, sizeof(*v), cmp_leak);
	sites = malloc((nr ? nr : 1) * sizeof(*sites));
	if (!sites) {
		fprintf(f, "libpcpu: leaks: out of memory\n");
		return;
	}
	for (size_t i = 0; i < nr; i++) {
		if (!nr_sites || sites[nr_sites - 1].caller != v[i].caller)
			sites[nr_sites++] = (struct leak_site){.caller = v[i].caller, .first = i};
		sites[nr_sites - 1].nr++;
		sites[nr_sites - 1].bytes += v[i].size;
		bytes += v[i].size;
	}
	qsort(sites, nr_sites, sizeof(*sites), cmp_site);

	fprintf(f, "libpcpu: %zu live allocation%s, %zu bytes per CPU (%zu bytes over %u CPUs), "
		   "from %zu call site%s\n",
		nr, nr == 1 ? "" : "s", bytes, bytes * cpus, cpus, nr_sites,
		nr_sites == 1 ? "" : "s");
	for (size_t s = 0; s < nr_sites; s++) {
		const struct leak_site *st = &sites[s];

		fprintf(f, "  %zu bytes per CPU in %zu allocation%s from ", st->bytes, st->nr,
			st->nr == 1 ? "" : "s");
		print_caller(f, st->caller);
		fputc('\n', f);
		for (size_t i = 0; i < st->nr && i < LEAKS_LIST_PER_SITE; i++) {
			const struct leak *l = &v[st->first + i];

			fprintf(f, "    %p size %zu\n", l->handle, l->size);
		}
		if (st->nr > LEAKS_LIST_PER_SITE)
			fprintf(f, "    ... and %zu more\n", st->nr - LEAKS_LIST_PER_SITE);
	}
	free(sites);
}

void pcpu_leaks_print(FILE *f)
{
	struct collect k;

	if (!f)
		f = stderr;
	if (pcpu_ensure_init())
		return;
	if (collect_all(&k)) {
		fprintf(f, "libpcpu: leaks: out of memory\n");
		return;
	}
	/* Off the locks: dladdr takes the loader's lock and stdio may allocate. */
	print_report(f, k.v, k.nr);
	fflush(f);
	free(k.v);
}

/* ---------------------------------------------------------------------------------------- */
/* PCPU_LEAKS=1                                                                              */
/* ---------------------------------------------------------------------------------------- */

static void leaks_at_exit(void)
{
	pcpu_leaks_print(stderr);
}

void pcpu_leaks_init(void)
{
	const char *e = pcpu_getenv("PCPU_LEAKS");

	if (!e || !*e || !strcmp(e, "0"))
		return;
	/* Called from the library's initialisation: pcpu_leaks_enable() would recurse. */
	__atomic_store_n(&pcpu_leaks_on, true, __ATOMIC_RELAXED);
	atexit(leaks_at_exit);
}
