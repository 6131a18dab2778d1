/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * hmap - lock-free handle -> chunk map with per-object state bytes (see hmap.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "hmap.h"
#include "util.h"

#define HMAP_VA_BITS 48 /* user addresses the map holds; others are never registered */

void **pcpu_hmap_root;
unsigned pcpu_hmap_shift, pcpu_hmap_levels;
bool pcpu_hmap_spread;

__thread struct pcpu_hmeta *pcpu_hmap_last __attribute__((tls_model("initial-exec")));
static pthread_mutex_t hmap_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pcpu_hmeta *free_metas;
static unsigned nr_registered; /* ranges registered now (hmap_lock) */
static size_t state_bytes; /* of every meta: enough for the largest range */
static size_t hmap_page;

/*
 * Nodes, metas and state arrays come from one reservation, handed out in page multiples and
 * never freed: no malloc (which would give the balancer thread an arena of its own) and one
 * mapping, whatever the number of chunks. Untouched pages cost nothing.
 */
#define HMAP_RESERVE ((size_t)256 << 20)
static char *mem, *mem_next;

static void *mem_get(size_t bytes)
{
	void *p;

	bytes = ALIGN_UP(bytes, hmap_page);
	if (!mem || (size_t)(mem + HMAP_RESERVE - mem_next) < bytes)
		return NULL;
	p = mem_next;
	mem_next += bytes;
	return p;
}

int pcpu_hmap_init(size_t max_bytes, size_t page, enum pcpu_hmap_layout layout)
{
	unsigned bits;

	/* The state bytes of a registered range would move under its objects. */
	PCPU_ASSERT(!__atomic_load_n(&nr_registered, __ATOMIC_RELAXED) ||
		    pcpu_hmap_spread == (layout == PCPU_HMAP_SPREAD));
	pcpu_hmap_spread = layout == PCPU_HMAP_SPREAD;
	if (pcpu_hmap_root)
		return 0;
	pcpu_hmap_shift = (unsigned)__builtin_ctzl(page);
	hmap_page = page;
	bits = HMAP_VA_BITS - pcpu_hmap_shift;
	pcpu_hmap_levels = (bits + 8) / 9;
	/*
	 * A range may start mid-granule: one byte more than max_bytes / 4. Whole blocks of
	 * PCPU_HMAP_STATE_BLOCK: the SPREAD layout permutes the bytes within one.
	 */
	state_bytes = ALIGN_UP(max_bytes / 4 + 1, (size_t)PCPU_HMAP_STATE_BLOCK);
	mem = pcpu_sys_mmap(HMAP_RESERVE, PROT_READ | PROT_WRITE);
	if (!mem)
		return -ENOMEM;
	mem_next = mem;
	pcpu_hmap_root = mem_get(512 * sizeof(void *));
	return 0;
}

/* The leaf slot for page key @key, creating nodes on the way if @create. hmap_lock held. */
static void **slot_of(uintptr_t key, bool create)
{
	void **node = pcpu_hmap_root;

	for (unsigned lvl = pcpu_hmap_levels - 1; lvl > 0; lvl--) {
		void **e = &node[(key >> (9 * lvl)) & 511];
		void **next = *e;

		if (!next) {
			if (!create)
				return NULL;
			next = mem_get(512 * sizeof(void *));
			if (!next)
				return NULL;
			/* Published whole: a lookup that sees the pointer sees a zeroed node. */
			__atomic_store_n(e, next, __ATOMIC_RELEASE);
		}
		node = next;
	}
	return &node[key & 511];
}

static void set_range(uintptr_t start, uintptr_t end, struct pcpu_hmeta *from,
		      struct pcpu_hmeta *to)
{
	for (uintptr_t k = start >> pcpu_hmap_shift; k <= (end - 1) >> pcpu_hmap_shift; k++) {
		void **e = slot_of(k, false);

		if (e && *e == from)
			__atomic_store_n(e, to, __ATOMIC_RELEASE);
	}
}

struct pcpu_hmeta *pcpu_hmap_add(struct pcpu_chunk *c, uintptr_t start, uintptr_t end)
{
	struct pcpu_hmeta *m;

	if (!pcpu_hmap_root || end <= start || (end - 1) >> HMAP_VA_BITS ||
	    (end >> 2) - (start >> 2) + 1 > state_bytes)
		return NULL;
	pthread_mutex_lock(&hmap_lock);
	/* Every node first: a failure then leaves the map as it was. */
	for (uintptr_t k = start >> pcpu_hmap_shift; k <= (end - 1) >> pcpu_hmap_shift; k++) {
		if (!slot_of(k, true)) {
			pthread_mutex_unlock(&hmap_lock);
			return NULL;
		}
	}
	m = free_metas;
	if (m) {
		free_metas = m->next;
	} else {
		/* The state array's pages are given back when its chunk goes. */
		m = mem_get(sizeof(*m));
		if (m)
			m->state = mem_get(state_bytes);
		if (!m || !m->state) {
			pthread_mutex_unlock(&hmap_lock);
			return NULL;
		}
	}
	__atomic_add_fetch(&m->gen, 1, __ATOMIC_RELEASE);
	__atomic_store_n(&m->start, start, __ATOMIC_RELAXED);
	__atomic_store_n(&m->end, end, __ATOMIC_RELAXED);
	m->chunk = c;
	m->next = NULL;
	set_range(start, end, NULL, m);
	nr_registered++;
	pthread_mutex_unlock(&hmap_lock);
	return m;
}

void pcpu_hmap_del(struct pcpu_hmeta *m)
{
	if (!m)
		return;
	pthread_mutex_lock(&hmap_lock);
	set_range(m->start, m->end, m, NULL);
	/* Reused later: a stale lookup that acted on it sees the generation move. */
	__atomic_add_fetch(&m->gen, 1, __ATOMIC_RELEASE);
	/*
	 * An empty range: a thread's cached pointer to it (pcpu_hmap_find()) no longer hits,
	 * even for a chunk mapped later at the same addresses, which another meta covers.
	 */
	__atomic_store_n(&m->end, m->start, __ATOMIC_RELAXED);
	m->chunk = NULL;
	/* Every byte is zero: dropping the pages keeps them zero and costs no memory. */
	madvise(m->state, ALIGN_UP(state_bytes, hmap_page), MADV_DONTNEED);
	m->next = free_metas;
	free_metas = m;
	nr_registered--;
	pthread_mutex_unlock(&hmap_lock);
}

void pcpu_hmap_atfork_prepare(void)
{
	pthread_mutex_lock(&hmap_lock);
}

void pcpu_hmap_atfork_parent(void)
{
	pthread_mutex_unlock(&hmap_lock);
}

void pcpu_hmap_atfork_child(void)
{
	pthread_mutex_unlock(&hmap_lock);
}
