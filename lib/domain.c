/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * Accounting domains (kernel: the memcg hooks of mm/percpu.c, and obj_cgroup).
 *
 * Charge: a PCPU_ACCOUNT allocation of size bytes costs S * nr_cpus + (S / 4) * 4 bytes,
 * S = size rounded up to the 4-byte granule: its copies, plus its share of the chunk's
 * per-granule owner array (one uint32_t per granule, where the kernel keeps one pointer).
 * It is charged to the calling thread's current domain (thread-local; the root when none
 * was set) before the allocator takes a lock, and uncharged if the allocation then fails,
 * as pcpu_memcg_pre_alloc_hook() / pcpu_memcg_post_alloc_hook() do.
 *
 * Owner records (the kernel's obj_cgroup): each domain has one, named by a 32-bit id that
 * the allocator stores in chunk->owner[] at the allocation's first granule. A free looks the
 * record up and uncharges the domain it points at now. Destroying a domain points its record
 * at the root and moves its usage there in O(1), without walking the allocations; the
 * record lives on until its last allocation is freed, then its id is reused.
 *
 * There is no hierarchy (the API has no parent argument): the root is every domain's
 * parent, and its usage counts what is charged to it directly plus what destroyed domains
 * left behind, not the usage of live domains.
 *
 * Locking: one leaf mutex, domain_lock, serialises charges, uncharges, create and destroy;
 * it is held for a few instructions and never with an allocator lock (the allocator charges
 * before taking its locks and uncharges after dropping them). Usage counters are also
 * updated with atomic stores, so pcpu_domain_usage() reads them without the lock.
 */
#include <errno.h>
#include <string.h>

#include <pcpu.h>

#include "alloc.h"
#include "domain.h"
#include "emit.h"

struct pcpu_objcg {
	struct pcpu_domain *dom;   /* charged and uncharged; the root once dom is destroyed */
	size_t nr_live;            /* live allocations charged through this record */
	uint32_t id;
	bool dead;                 /* its domain was destroyed */
};

struct pcpu_domain {
	struct list_head list;     /* on the domains list */
	char *name;
	size_t limit;              /* 0: none */
	size_t usage;              /* bytes; atomic stores under domain_lock */
	size_t peak;               /* highest usage seen, for stats */
	uint64_t nr_failed;        /* charges refused by the limit */
	struct pcpu_objcg *objcg;
};

static pthread_mutex_t domain_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pcpu_objcg root_objcg;
static struct pcpu_domain root_domain = {.name = (char *)"root", .objcg = &root_objcg};
static struct pcpu_objcg root_objcg = {.dom = &root_domain, .id = 1};
static struct list_head domains = {&domains, &domains};

/* Owner records by id; id 0 means "not accounted" and is never used. */
#define OBJCG_FIRST_CAP 64
static struct pcpu_objcg *objcg_first[OBJCG_FIRST_CAP] = {[1] = &root_objcg};
static struct pcpu_objcg **objcgs = objcg_first;
static uint32_t objcg_cap = OBJCG_FIRST_CAP;
static uint32_t objcg_next = 2;    /* ids below it were handed out once */
static uint32_t *free_ids;         /* ids to reuse */
static uint32_t nr_free_ids, free_ids_cap;

static __thread struct pcpu_domain *cur_domain; /* NULL: the root */

static struct pcpu_domain *dom_or_root(const struct pcpu_domain *d)
{
	return d ? (struct pcpu_domain *)d : &root_domain;
}

size_t pcpu_domain_charge_bytes(size_t size)
{
	size_t s = ALIGN_UP(size, PCPU_MIN_ALLOC_SIZE);

	return s * pcpu_geom.nr_units + (s / PCPU_MIN_ALLOC_SIZE) * sizeof(uint32_t);
}

static void set_usage(struct pcpu_domain *d, size_t v)
{
	/* Written under domain_lock; the atomic store lets pcpu_domain_usage() skip it. */
	__atomic_store_n(&d->usage, v, __ATOMIC_RELAXED);
	if (v > d->peak)
		d->peak = v;
}

/* Give @o's id back (domain_lock held); the root's record is never released. */
static void objcg_release(struct pcpu_objcg *o)
{
	if (o == &root_objcg)
		return;
	objcgs[o->id] = NULL;
	/* free_ids has room: it was grown when the id was handed out. */
	free_ids[nr_free_ids++] = o->id;
	pcpu_mfree(o);
}

/* Hand out an id for @o (domain_lock held). Return 0 or -ENOMEM. */
static int objcg_assign(struct pcpu_objcg *o)
{
	uint32_t id;

	/* Room to give every id back later, so that objcg_release() cannot fail. */
	if (objcg_next - 1 >= free_ids_cap) {
		uint32_t cap = free_ids_cap ? 2 * free_ids_cap : 64;
		uint32_t *n = pcpu_realloc(free_ids, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		free_ids = n;
		free_ids_cap = cap;
	}
	if (nr_free_ids) {
		id = free_ids[--nr_free_ids];
	} else {
		if (objcg_next == objcg_cap) {
			uint32_t cap = 2 * objcg_cap;
			struct pcpu_objcg **n;

			if (cap < objcg_cap)
				return -ENOMEM;
			n = pcpu_calloc(cap, sizeof(*n));
			if (!n)
				return -ENOMEM;
			memcpy(n, objcgs, objcg_cap * sizeof(*n));
			if (objcgs != objcg_first)
				pcpu_mfree(objcgs);
			objcgs = n;
			objcg_cap = cap;
		}
		id = objcg_next++;
	}
	o->id = id;
	objcgs[id] = o;
	return 0;
}

struct pcpu_domain *pcpu_domain_create(const char *name, size_t limit_bytes)
{
	struct pcpu_domain *d;
	struct pcpu_objcg *o;
	size_t len;
	int err;

	if (!name) {
		errno = EINVAL;
		return NULL;
	}
	len = strlen(name);
	d = pcpu_calloc(1, sizeof(*d));
	o = pcpu_calloc(1, sizeof(*o));
	if (d)
		d->name = pcpu_malloc(len + 1);
	if (!d || !o || !d->name)
		goto fail;
	memcpy(d->name, name, len + 1);
	d->limit = limit_bytes;
	d->objcg = o;
	o->dom = d;
	pthread_mutex_lock(&domain_lock);
	err = objcg_assign(o);
	if (!err)
		list_add_tail(&d->list, &domains);
	pthread_mutex_unlock(&domain_lock);
	if (err)
		goto fail;
	return d;
fail:
	if (d)
		pcpu_mfree(d->name);
	pcpu_mfree(d);
	pcpu_mfree(o);
	errno = ENOMEM;
	return NULL;
}

/* kernel: memcg_reparent_objcgs() - the record now charges the root; O(1). */
void pcpu_domain_destroy(struct pcpu_domain *d)
{
	struct pcpu_objcg *o;

	if (!d || d == &root_domain)
		return;
	pthread_mutex_lock(&domain_lock);
	list_del(&d->list);
	o = d->objcg;
	o->dom = &root_domain;
	o->dead = true;
	set_usage(&root_domain, root_domain.usage + d->usage);
	set_usage(d, 0);
	if (o->nr_live == 0)
		objcg_release(o);
	pthread_mutex_unlock(&domain_lock);
	if (cur_domain == d)
		cur_domain = NULL;
	pcpu_mfree(d->name);
	pcpu_mfree(d);
}

struct pcpu_domain *pcpu_domain_set_current(struct pcpu_domain *d)
{
	struct pcpu_domain *old = cur_domain;

	cur_domain = d == &root_domain ? NULL : d;
	return old;
}

size_t pcpu_domain_usage(const struct pcpu_domain *d)
{
	return __atomic_load_n(&dom_or_root(d)->usage, __ATOMIC_RELAXED);
}

/* kernel: pcpu_memcg_pre_alloc_hook() + obj_cgroup_charge() */
uint32_t pcpu_domain_charge(size_t size)
{
	struct pcpu_domain *d = dom_or_root(cur_domain);
	size_t bytes = pcpu_domain_charge_bytes(size);
	uint32_t id = 0;

	pthread_mutex_lock(&domain_lock);
	if (d->limit && (bytes > d->limit || d->usage > d->limit - bytes)) {
		d->nr_failed++;
	} else {
		set_usage(d, d->usage + bytes);
		d->objcg->nr_live++;
		id = d->objcg->id;
	}
	pthread_mutex_unlock(&domain_lock);
	return id;
}

/* kernel: pcpu_memcg_free_hook() + obj_cgroup_uncharge() */
void pcpu_domain_uncharge(uint32_t id, size_t size)
{
	size_t bytes = pcpu_domain_charge_bytes(size);
	struct pcpu_objcg *o;

	pthread_mutex_lock(&domain_lock);
	o = id < objcg_cap ? objcgs[id] : NULL;
	if (unlikely(!o)) {
		pthread_mutex_unlock(&domain_lock);
		pcpu_warn("accounting: uncharge of unknown owner %u", id);
		return;
	}
	PCPU_ASSERT(o->dom->usage >= bytes && o->nr_live > 0);
	set_usage(o->dom, o->dom->usage - bytes);
	if (--o->nr_live == 0 && o->dead)
		objcg_release(o);
	pthread_mutex_unlock(&domain_lock);
}

/* A fork while another thread holds domain_lock must not leave the child a locked mutex. */
static void domain_atfork_prepare(void)
{
	pthread_mutex_lock(&domain_lock);
}

static void domain_atfork_parent(void)
{
	pthread_mutex_unlock(&domain_lock);
}

__attribute__((constructor)) static void domain_init(void)
{
	pthread_atfork(domain_atfork_prepare, domain_atfork_parent, domain_atfork_parent);
}

/* ---------------------------------------------------------------------------------------- */
/* Statistics                                                                                */
/* ---------------------------------------------------------------------------------------- */

struct dom_row {
	char name[64];
	size_t limit, usage, peak;
	uint64_t nr_live, nr_failed;
};

static void fill_row(struct dom_row *r, const struct pcpu_domain *d, uint64_t nr_live)
{
	snprintf(r->name, sizeof(r->name), "%s", d->name);
	r->limit = d->limit;
	r->usage = d->usage;
	r->peak = d->peak;
	r->nr_live = nr_live;
	r->nr_failed = d->nr_failed;
}

/*
 * Copy the root and every live domain into a malloc'ed array (so that printing, which may
 * block on @f, happens without domain_lock). Return the count, 0 on ENOMEM.
 */
static size_t take_domains(struct dom_row **out)
{
	struct dom_row *rows = NULL;
	size_t n = 0, cap = 16;
	struct list_head *p;

	for (;;) {
		pcpu_mfree(rows);
		rows = pcpu_calloc(cap, sizeof(*rows));
		if (!rows)
			return 0;
		pthread_mutex_lock(&domain_lock);
		n = 1;
		for (p = domains.next; p != &domains; p = p->next)
			n++;
		if (n <= cap)
			break;
		pthread_mutex_unlock(&domain_lock);
		cap = 2 * n;
	}
	/* The root's allocations: its own plus those left by destroyed domains. */
	fill_row(&rows[0], &root_domain, 0);
	for (uint32_t id = 1; id < objcg_next; id++)
		if (objcgs[id] && objcgs[id]->dom == &root_domain)
			rows[0].nr_live += objcgs[id]->nr_live;
	n = 1;
	for (p = domains.next; p != &domains; p = p->next) {
		struct pcpu_domain *d = list_entry(p, struct pcpu_domain, list);

		fill_row(&rows[n++], d, d->objcg->nr_live);
	}
	pthread_mutex_unlock(&domain_lock);
	*out = rows;
	return n;
}

/*
 * The domains' list of the statistics (stats.c calls this through a weak hook): the root,
 * then every live domain, each with its charge, peak, limit (0: none), live allocations
 * and refused charges.
 */
void pcpu_domain_stats_emit(struct pcpu_emit *e)
{
	struct dom_row *rows = NULL;
	size_t n = take_domains(&rows);

	pcpu_emit_list_begin(e, "domains", "Accounting Domains");
	pcpu_emit_text(e, "(charge = size * nr_cpus + size, size rounded to 4; limit 0: none)");
	for (size_t i = 0; i < n; i++) {
		const struct dom_row *r = &rows[i];

		pcpu_emit_row_begin(e);
		pcpu_emit_str(e, "name", r->name);
		pcpu_emit_u64(e, "usage", r->usage);
		pcpu_emit_u64(e, "peak", r->peak);
		pcpu_emit_u64(e, "limit", r->limit);
		pcpu_emit_u64(e, "allocs", r->nr_live);
		pcpu_emit_u64(e, "failed", r->nr_failed);
		pcpu_emit_row_end(e);
	}
	pcpu_emit_list_end(e);
	pcpu_mfree(rows);
}
