/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * The allocator's entry points (kernel: pcpu_alloc(), free_percpu(),
 * pcpu_setup_first_chunk()): request validation, the alloc and free paths over the chunk-set
 * layer (chunkset.h), the first chunk, the library's initialisation, fork and verify.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <pcpu.h>

#include "alloc.h"
#include "balance.h"
#include "cpu.h"
#include "domain.h"
#include "topology.h"
#include "checker.h"
#include "leaks.h"
#include "trace.h"

struct pcpu_first_chunk pcpu_first;
bool pcpu_initialized;

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_error;
static const struct pcpu_config *init_cfg;
static size_t max_alloc_size;

/*
 * The first chunk (kernel: pcpu_setup_first_chunk()): one reservation whose units hold
 * <static | reserved | dynamic>, fully populated at start. The reserved and dynamic regions
 * are two area maps over the same memory, each serving its own byte range (the kernel's
 * region chunks). The balancer never depopulates it; pcpu_trim() gives back the dynamic
 * region's free pages, which come back on demand.
 */
static int setup_first_chunk(void)
{
	struct pcpu_first_chunk *f = &pcpu_first;
	size_t page = pcpu_geom.page;
	struct pcpu_chunk *dyn, *rsv = NULL;
	int err;

	f->static_size = ALIGN_UP(pcpu_settings.static_size, PCPU_MIN_ALLOC_SIZE);
	f->reserved_size = ALIGN_UP(pcpu_settings.reserved_size, PCPU_MIN_ALLOC_SIZE);
	f->size = ALIGN_UP(f->static_size + f->reserved_size + pcpu_settings.first_dyn_size, page);
	if (f->size > pcpu_geom.unit_size)
		f->size = pcpu_geom.unit_size;
	f->dyn_size = f->size - f->static_size - f->reserved_size;

	err = pcpu_chunk_create(&dyn, 0, false);
	if (err)
		return err;
	f->base = dyn->base;
	pcpu_am_destroy(&dyn->map);
	err = pcpu_am_init(&dyn->map, (int)pcpu_geom.unit_size, (int)page,
			   (int)(f->static_size + f->reserved_size),
			   (int)(pcpu_geom.unit_size - f->size), false);
	if (err)
		goto fail;
	dyn->immutable = true;
	if (f->reserved_size) {
		rsv = pcpu_calloc(1, sizeof(*rsv));
		if (!rsv) {
			err = -ENOMEM;
			goto fail;
		}
		list_init(&rsv->list);
		rsv->base = dyn->base;
		rsv->immutable = rsv->reserved = true;
		rsv->dirty = pcpu_calloc(BITS_TO_LONGS(dyn->map.map_bits), sizeof(unsigned long));
		err = rsv->dirty ? pcpu_am_init(&rsv->map, (int)pcpu_geom.unit_size, (int)page,
						(int)f->static_size,
						(int)(pcpu_geom.unit_size - f->static_size -
						      f->reserved_size),
						false)
				 : -ENOMEM;
		if (err)
			goto fail;
	}
	err = pcpu_chunk_populate(dyn, 0, (int)(f->size / page));
	if (err)
		goto fail;
	pcpu_am_populated(&dyn->map, 0, (int)(f->size / page));
	if (rsv)
		pcpu_am_populated(&rsv->map, 0, (int)(f->size / page));
	err = pcpu_add_first_chunk(dyn, (uintptr_t)f->base + f->static_size + f->reserved_size,
				   (uintptr_t)f->base + f->size, rsv,
				   (uintptr_t)f->base + f->static_size,
				   (uintptr_t)f->base + f->static_size + f->reserved_size);
	if (err)
		goto fail;
	f->dyn = dyn;
	f->reserved = rsv;
	return 0;
fail:
	if (rsv) {
		pcpu_am_destroy(&rsv->map);
		pcpu_mfree(rsv->dirty);
		pcpu_mfree(rsv);
	}
	pcpu_chunk_destroy(dyn);
	return err;
}

/* ---------------------------------------------------------------------------------------- */
/* Initialisation                                                                            */
/* ---------------------------------------------------------------------------------------- */

static void fill_offsets(void)
{
	unsigned n = pcpu_topo.real_nr_cpu_ids > pcpu_topo.nr_cpus ? pcpu_topo.real_nr_cpu_ids
								     : pcpu_topo.nr_cpus;

	if (n > PCPU_MAX_CPUS)
		n = PCPU_MAX_CPUS;
	/*
	 * unit offset - bias: a handle (unit-0 address + bias) plus this lands on the unit.
	 * Real CPU ids beyond a fake topology alias a copy (the CPU layer then uses atomics).
	 * The second half, for coloured chunks' handles (chunk.h): the unit's colour added,
	 * the handle's colour bit taken away.
	 */
	for (unsigned cpu = 0; cpu < n; cpu++) {
		unsigned unit = pcpu_topo.cpu_unit[cpu % pcpu_topo.nr_cpus];
		uintptr_t off = (uintptr_t)unit * pcpu_geom.stride - PCPU_HANDLE_BIAS;

		pcpu__offset[cpu] = off;
		pcpu__offset[PCPU_MAX_CPUS + cpu] =
		    off + (uintptr_t)(unit % PCPU_NR_COLOURS) * PCPU_COLOUR_ALIGN - PCPU_HANDLE_COLOUR;
	}
}

/*
 * fork(): take every allocator lock, in the lock order (chunkset.h), so that no other
 * thread is inside the allocator at the moment of the fork and the child gets consistent
 * structures (in particular no batch of the zeroing queue half drained: pcpu_drain_mutex
 * covers it).
 * Then the balancer's own lock, taken last: nobody holding it waits for another lock.
 */
static void atfork_prepare(void)
{
	pthread_mutex_lock(&pcpu_balance_mutex);
	pthread_mutex_lock(&pcpu_alloc_mutex);
	pthread_mutex_lock(&pcpu_drain_mutex);
	pthread_mutex_lock(&pcpu_lock);
	pcpu_front_cache_atfork_prepare();
	pcpu_balance_atfork_prepare();
}

static void atfork_parent(void)
{
	pcpu_balance_atfork_parent();
	pcpu_front_cache_atfork_parent();
	pthread_mutex_unlock(&pcpu_lock);
	pthread_mutex_unlock(&pcpu_drain_mutex);
	pthread_mutex_unlock(&pcpu_alloc_mutex);
	pthread_mutex_unlock(&pcpu_balance_mutex);
}

static void atfork_child(void)
{
	/*
	 * The child has only this thread: the locks taken in prepare are ours to release
	 * (glibc's default mutexes do not check the owner, whose thread id changed).
	 */
	pcpu_balance_atfork_child();
	pcpu_front_cache_atfork_child();
	pthread_mutex_unlock(&pcpu_lock);
	pthread_mutex_unlock(&pcpu_drain_mutex);
	pthread_mutex_unlock(&pcpu_alloc_mutex);
	pthread_mutex_unlock(&pcpu_balance_mutex);
	pcpu_cpu_atfork_child();
}

static void do_init(void)
{
	int err;

	pcpu_config_defaults(&pcpu_settings);
	pcpu_config_parse(&pcpu_settings, pcpu_getenv("PCPU_CONF"));
	err = pcpu_config_apply(&pcpu_settings, init_cfg);
	if (err)
		goto out;
	err = pcpu_topology_init(&pcpu_topo, pcpu_settings.topology);
	if (err == -EINVAL && pcpu_settings.topology[0]) {
		pcpu_warn("PCPU_CONF: bad topology \"%s\", using the machine's",
			  pcpu_settings.topology);
		pcpu_settings.topology[0] = '\0';
		err = pcpu_topology_init(&pcpu_topo, NULL);
	}
	if (err)
		goto out;
	pcpu_geom_init(pcpu_settings.unit_size, pcpu_topo.nr_cpus);
	max_alloc_size = pcpu_geom.unit_size;
	pcpu_gstats.min_alloc_size = pcpu_geom.unit_size;
	err = pcpu_chunkset_init();
	if (err)
		goto out;
	fill_offsets();
	err = pcpu_cpu_init(&pcpu_settings, &pcpu_topo);
	if (err)
		goto out;
	err = setup_first_chunk();
	if (err)
		goto out;
	err = pcpu_front_cache_init();
	if (err)
		goto out;
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
	pcpu_balance_init();
	pcpu_stats_init();
	pcpu_leaks_init();
	__atomic_store_n(&pcpu_initialized, true, __ATOMIC_RELEASE);
out:
	init_error = err;
}

int pcpu_ensure_init(void)
{
	if (likely(__atomic_load_n(&pcpu_initialized, __ATOMIC_ACQUIRE)))
		return 0;
	pthread_once(&init_once, do_init);
	return init_error;
}

int pcpu_init(const struct pcpu_config *cfg)
{
	static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
	int err;

	pthread_mutex_lock(&init_lock);
	if (__atomic_load_n(&pcpu_initialized, __ATOMIC_ACQUIRE)) {
		pthread_mutex_unlock(&init_lock);
		errno = EBUSY;
		return -1;
	}
	if (cfg) {
		struct pcpu_settings probe;

		/* Reject a bad config before committing to it: nothing changes on EINVAL. */
		pcpu_config_defaults(&probe);
		if (pcpu_config_apply(&probe, cfg)) {
			pthread_mutex_unlock(&init_lock);
			errno = EINVAL;
			return -1;
		}
	}
	init_cfg = cfg;
	err = pcpu_ensure_init();
	init_cfg = NULL;
	pthread_mutex_unlock(&init_lock);
	if (err) {
		errno = -err;
		return -1;
	}
	return 0;
}

unsigned pcpu_nr_cpus(void)
{
	if (unlikely(pcpu_ensure_init()))
		return 0;
	return pcpu_topo.nr_cpus;
}

/* ---------------------------------------------------------------------------------------- */
/* Allocation and free                                                                       */
/* ---------------------------------------------------------------------------------------- */

static void stats_alloc(int size)
{
	pcpu_gstats.nr_alloc++;
	pcpu_gstats.nr_cur_alloc++;
	if (pcpu_gstats.nr_cur_alloc > pcpu_gstats.nr_max_alloc)
		pcpu_gstats.nr_max_alloc = pcpu_gstats.nr_cur_alloc;
	if ((size_t)size < pcpu_gstats.min_alloc_size)
		pcpu_gstats.min_alloc_size = (size_t)size;
	if ((size_t)size > pcpu_gstats.max_alloc_size)
		pcpu_gstats.max_alloc_size = (size_t)size;
}

void pcpu_stats_count_alloc(int size)
{
	stats_alloc(size);
}

static void *alloc_fail(int size, int align, bool nowait, const char *why)
{
	static int warn_budget = 10; /* kernel: the same budget of ten messages */

	pcpu_trace_alloc_fail(0, nowait, size, align);
	if (!nowait && __atomic_fetch_sub(&warn_budget, 1, __ATOMIC_RELAXED) > 0)
		pcpu_warn("allocation failed, size=%d align=%d atomic=%d, %s", size, align, nowait,
			  why);
	errno = ENOMEM;
	return NULL;
}

/*
 * The slow path of a blocking allocation (kernel: the pcpu_alloc() walk under
 * pcpu_alloc_mutex): any free space, populated or not; else zero queued areas here, since
 * the caller needs their space and that is cheaper than a chunk; else a new chunk.
 * Called and returns with pcpu_alloc_mutex and pcpu_lock held (timed). Return the offset,
 * or -1 with *@why set. *@kick: the draining left balance work.
 */
static int alloc_slow(int set, int size, int align, struct pcpu_chunk **c, const char **why,
		      bool *kick)
{
	for (;;) {
		int off = pcpu_alloc_from_slots(set, size, align, false, c);

		if (off >= 0)
			return off;
		if (pcpu_queued_areas()) {
			long n;

			pcpu_release(PCPU_SHORT_LOCK);
			n = pcpu_zero_drain(1, kick);
			pcpu_hold(PCPU_SHORT_LOCK);
			if (n)
				continue;
		}
		if (pcpu_free_chunk_serves(set, align)) {
			/* A free chunk did not fit: only possible for a request above a unit. */
			*why = "no chunk fits";
			return -1;
		}
		if (pcpu_create_chunk(set, align)) {
			*why = "failed to allocate new chunk";
			return -1;
		}
	}
}

static void *do_alloc(size_t size_in, size_t align_in, unsigned flags, void *call_site)
{
	bool nowait = flags & PCPU_NOWAIT;
	int set = (flags & PCPU_ACCOUNT) ? 1 : 0;
	struct pcpu_chunk *c = NULL;
	const char *why = NULL;
	bool mutex = false, kick = false, low, note_slow;
	int size, align, off, err;
	void *h;

	size = (int)ALIGN_UP(size_in, PCPU_MIN_ALLOC_SIZE);
	align = align_in < PCPU_MIN_ALLOC_SIZE ? PCPU_MIN_ALLOC_SIZE : (int)align_in;

	/*
	 * Populated free space first, under pcpu_lock alone: that is all PCPU_NOWAIT may use,
	 * and for a blocking caller it is the common case, which then waits for no mutex (below
	 * LOW it refills the reserve if the mutex is free: pcpu_balance_low()). Free space is
	 * always zero (see the zeroing queue), so nothing is zeroed.
	 */
	pthread_mutex_lock(&pcpu_lock);
	off = pcpu_alloc_from_slots(set, size, align, true, &c);
	if (off < 0 && nowait)
		off = pcpu_alloc_nowait_fallback(set, size, align, &c);
	if (off < 0 && nowait) {
		pcpu_gstats.nowait_failures++;
		pthread_mutex_unlock(&pcpu_lock);
		pcpu_balance_nowait_failed();
		return alloc_fail(size, align, nowait, "atomic alloc failed, no space left");
	}
	if (off < 0) {
		pthread_mutex_unlock(&pcpu_lock);
		pcpu_balance_start();
		/* The slow path's holds are timed (pcpu_hold_stats()), the fast path's not. */
		pcpu_alloc_mutex_lock();
		pcpu_hold(PCPU_SHORT_LOCK);
		mutex = true;
		off = alloc_slow(set, size, align, &c, &why, &kick);
		if (off < 0) {
			pcpu_release(PCPU_SHORT_LOCK);
			pcpu_release(PCPU_ALLOC_MUTEX);
			if (kick)
				pcpu_balance_kick(false);
			return alloc_fail(size, align, nowait, why);
		}
	}
	stats_alloc(size);
	note_slow = pcpu_leaks_note_locked(c, off, call_site);
	/* kernel: the LOW check at the end of pcpu_alloc() */
	low = pcpu_nr_empty_pop_pages(-1) < (int)pcpu_settings.empty_low;
	if (mutex)
		pcpu_release(PCPU_SHORT_LOCK);
	else
		pthread_mutex_unlock(&pcpu_lock);

	if (mutex) {
		err = pcpu_populate_area(c, off, size);
		if (err) {
			/* The area was free, hence zero: straight back into the map. */
			pthread_mutex_lock(&pcpu_lock);
			pcpu_free_area_locked(c, off);
			/* Nothing happened, as far as the statistics go. */
			pcpu_gstats.nr_alloc--;
			pcpu_gstats.nr_dealloc--;
			pthread_mutex_unlock(&pcpu_lock);
			pcpu_release(PCPU_ALLOC_MUTEX);
			if (low)
				pcpu_balance_low(NULL, false);
			if (kick)
				pcpu_balance_kick(false);
			return alloc_fail(size, align, nowait, "failed to populate");
		}
		pcpu_release(PCPU_ALLOC_MUTEX);
	}
	if (low)
		pcpu_balance_low(c, nowait);
	if (kick) /* work the drain left (a second free chunk, one to reclaim): not the reserve's */
		pcpu_balance_kick(nowait);
	if (unlikely(note_slow))
		pcpu_leaks_note_slow(c, off, call_site);
	/* Memory checkers: the (zero) copies become addressable. */
	pcpu_checker_alloc(&pcpu_lock, c, off, size);
	h = pcpu_handle_of(c, off);
	/*
	 * As the kernel's event: the size rounded to the 4-byte granule, and bytes_alloc
	 * (pcpu_obj_full_size()) the copies plus the accounting metadata of the allocation.
	 */
	pcpu_trace_alloc(call_site, c->reserved, nowait, size, align, c->base, off, h,
			 (size_t)size * pcpu_geom.nr_units +
				 (set ? (size_t)size / PCPU_MIN_ALLOC_SIZE * sizeof(*c->owner) : 0),
			 flags);
	return h;
}

static bool valid_args(size_t size, size_t *align, unsigned flags)
{
	if (flags & ~(PCPU_NOWAIT | PCPU_ACCOUNT))
		return false;
	if (size == 0 || size > max_alloc_size)
		return false;
	if (*align == 0) {
		size_t a = 1;

		while (a < size && a < 8)
			a <<= 1;
		*align = a;
	}
	return !(*align & (*align - 1)) && *align <= pcpu_geom.page;
}

/*
 * PCPU_ACCOUNT (kernel: pcpu_memcg_pre_alloc_hook() and pcpu_memcg_post_alloc_hook()):
 * charge the thread's domain before taking any lock, give the charge back if the
 * allocation fails, and record the owner at the allocation's first granule so that
 * pcpu_free() uncharges whoever owns the charge by then.
 */
static void *alloc_accounted(size_t size, size_t align, unsigned flags, void *call_site)
{
	uint32_t owner = pcpu_domain_charge(size);
	struct pcpu_chunk *c;
	uintptr_t addr;
	void *h;
	int e;

	if (!owner) {
		pcpu_trace_alloc_fail(0, !!(flags & PCPU_NOWAIT), size, align);
		errno = ENOMEM;
		return NULL;
	}
	h = do_alloc(size, align, flags, call_site);
	if (!h) {
		e = errno;
		pcpu_domain_uncharge(owner, size);
		errno = e;
		return NULL;
	}
	/* Not published yet: nobody can free it before the owner is recorded. */
	addr = pcpu_addr_of(h);
	pthread_mutex_lock(&pcpu_lock);
	c = pcpu_chunk_lookup(addr);
	PCPU_ASSERT(c && c->owner);
	c->owner[(addr - (uintptr_t)c->base) / PCPU_MIN_ALLOC_SIZE] = owner;
	pthread_mutex_unlock(&pcpu_lock);
	return h;
}

void *pcpu_alloc(size_t size, size_t align, unsigned flags)
{
	int err = pcpu_ensure_init(), cls;
	void *h;

	if (err) {
		errno = -err;
		return NULL;
	}
	if (!valid_args(size, &align, flags)) {
		pcpu_trace_alloc_fail(0, !!(flags & PCPU_NOWAIT), size, align);
		errno = EINVAL;
		return NULL;
	}
	if (flags & PCPU_ACCOUNT)
		return alloc_accounted(size, align, flags, __builtin_return_address(0));
	/*
	 * While call sites are recorded (leaks), small requests bypass the front too: the
	 * report then shows the exact sizes asked for, not the class sizes.
	 */
	cls = __atomic_load_n(&pcpu_leaks_on, __ATOMIC_RELAXED) ? -1 : pcpu_front_class(size, align);
	if (cls >= 0) {
		/*
		 * Small requests: a ready object of the class from the front; failing that, one
		 * of the class size from the map, which the front takes back when it is freed.
		 */
		h = pcpu_front_alloc(cls, size, flags & PCPU_NOWAIT, __builtin_return_address(0));
		if (h)
			return h;
		h = do_alloc((size_t)pcpu_front_class_size(cls), (size_t)pcpu_front_class_align(cls),
			     flags, __builtin_return_address(0));
		if (h)
			pcpu_front_adopt(h, cls);
		return h;
	}
	return do_alloc(size, align, flags, __builtin_return_address(0));
}

void pcpu_bad_free(const void *p, const char *why)
{
	fprintf(stderr, "libpcpu: pcpu_free(%p): %s\n", p, why);
	fflush(stderr);
	abort();
}

void pcpu_free(void *p)
{
	struct pcpu_chunk *c;
	uint32_t owner = 0;
	uintptr_t addr;
	int freed;
	void *base;
	bool kick;
	int off;

	if (!p)
		return;
	if (!__atomic_load_n(&pcpu_initialized, __ATOMIC_ACQUIRE))
		pcpu_bad_free(p, "not a live allocation (libpcpu has allocated nothing yet)");
	/* A live front object: no lock, into this CPU's cache of freed objects. */
	if (pcpu_front_free(p))
		return;
	addr = pcpu_addr_of(p);
	pthread_mutex_lock(&pcpu_lock);
	c = pcpu_chunk_lookup(addr);
	/* PCPU_DEFINE variables are not live allocations: only their unloading frees them. */
	if (unlikely(!c || c->reserved || pcpu_static_nr_dyn)) {
		const char *why = pcpu_static_bad_free(addr, c);

		if (why) {
			pthread_mutex_unlock(&pcpu_lock);
			pcpu_bad_free(p, why);
		}
	}
	if (!c || !pcpu_handle_kind_ok(c, p)) {
		pthread_mutex_unlock(&pcpu_lock);
		pcpu_bad_free(p, "not a live allocation (not a per-CPU handle of libpcpu)");
	}
	off = (int)(addr - (uintptr_t)c->base);
	/* A queued area is still allocated in the map, but no longer the caller's. */
	if (!pcpu_am_is_alloc_start(&c->map, off) || pcpu_area_queued(c, off)) {
		pthread_mutex_unlock(&pcpu_lock);
		pcpu_bad_free(p, "not a live allocation (double free, or a pointer inside one)");
	}
	if (c->owner) {
		/* kernel: pcpu_memcg_free_hook(); uncharged once the lock is dropped. */
		owner = c->owner[off / PCPU_MIN_ALLOC_SIZE];
		c->owner[off / PCPU_MIN_ALLOC_SIZE] = 0;
	}
	/* Not a front object any more (if it was one the front could not take). */
	pcpu_front_forget(c, off);
	/* Zeroing size x CPUs bytes is the balancer's: the area only joins the queue. */
	freed = pcpu_queue_area(c, off, &kick);
	/* The chunk may be destroyed once the lock is dropped: the probe gets a copy. */
	base = c->base;
	pthread_mutex_unlock(&pcpu_lock);
	if (owner)
		pcpu_domain_uncharge(owner, (size_t)freed);
	pcpu_trace_free(base, off, p);
	if (kick)
		pcpu_balance_kick(false);
}

/* ---------------------------------------------------------------------------------------- */
/* Verification                                                                              */
/* ---------------------------------------------------------------------------------------- */

int pcpu_verify_locked(char *why, size_t len)
{
	pcpu_front_fold_stats();
	if (pcpu_chunkset_verify(why, len) || pcpu_front_verify(why, len))
		return -1;
	if (pcpu_gstats.nr_cur_alloc != pcpu_gstats.nr_alloc - pcpu_gstats.nr_dealloc) {
		snprintf(why, len, "stats: %llu live allocations but %llu made and %llu freed",
			 (unsigned long long)pcpu_gstats.nr_cur_alloc,
			 (unsigned long long)pcpu_gstats.nr_alloc,
			 (unsigned long long)pcpu_gstats.nr_dealloc);
		return -1;
	}
	return 0;
}

int pcpu_verify(void)
{
	char why[512];
	int err;

	if (pcpu_ensure_init())
		return -1;
	pthread_mutex_lock(&pcpu_lock);
	err = pcpu_verify_locked(why, sizeof(why));
	pthread_mutex_unlock(&pcpu_lock);
	if (err) {
		fprintf(stderr, "libpcpu: pcpu_verify: %s\n", why);
		return -1;
	}
	return 0;
}

size_t pcpu_trim(void)
{
	if (pcpu_ensure_init())
		return 0;
	return pcpu_balance_work(true);
}

/* Library unload (dlclose) or exit of a statically linked program. */
__attribute__((destructor)) static void alloc_fini(void)
{
	if (!__atomic_load_n(&pcpu_initialized, __ATOMIC_ACQUIRE))
		return;
	pcpu_balance_stop();
	pcpu_pagemap_fini();
	pcpu_cpu_fini();
}
