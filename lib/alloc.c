/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * The allocator (kernel: mm/percpu.c, the parts above the area map and the backend):
 * chunk slots and chunk choice, the first chunk, zeroing, free with validation, and the
 * library's initialisation.
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

pthread_mutex_t pcpu_lock = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t pcpu_alloc_mutex = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t pcpu_drain_mutex = PTHREAD_MUTEX_INITIALIZER;
struct list_head pcpu_zero_queue = {&pcpu_zero_queue, &pcpu_zero_queue};
long pcpu_queued_areas, pcpu_queued_bytes;

struct pcpu_chunk_set pcpu_sets[PCPU_NR_SETS];
int pcpu_nr_slots, pcpu_sidelined_slot, pcpu_free_slot, pcpu_to_depopulate_slot;
struct pcpu_first_chunk pcpu_first;
struct pcpu_global_stats pcpu_gstats;
bool pcpu_initialized;
bool pcpu_atomic_alloc_failed;

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_error;
static const struct pcpu_config *init_cfg;
static size_t max_alloc_size;

/* ---------------------------------------------------------------------------------------- */
/* Slots                                                                                     */
/* ---------------------------------------------------------------------------------------- */

static int fls_int(unsigned x)
{
	return x ? 32 - __builtin_clz(x) : 0;
}

/* kernel: __pcpu_size_to_slot() */
static int size_to_slot(int bytes)
{
	int s = fls_int((unsigned)bytes) - 3;

	return s < 1 ? 1 : s;
}

/* kernel: pcpu_size_to_slot() */
static int alloc_size_to_slot(int bytes)
{
	if (bytes == (int)pcpu_geom.unit_size)
		return pcpu_free_slot;
	return size_to_slot(bytes);
}

/* kernel: pcpu_chunk_slot() */
int pcpu_chunk_slot(const struct pcpu_chunk *c)
{
	int contig = pcpu_am_contig_bytes(&c->map);

	if (c->map.free_bytes < PCPU_MIN_ALLOC_SIZE || contig == 0)
		return 0;
	return alloc_size_to_slot(contig);
}

/* kernel: __pcpu_chunk_move() */
static void chunk_move(struct pcpu_chunk *c, int slot, bool front)
{
	struct list_head *head = &pcpu_sets[c->set].slots[slot];

	list_del(&c->list);
	if (front)
		list_add(&c->list, head);
	else
		list_add_tail(&c->list, head);
	c->slot = slot;
}

void pcpu_chunk_move(struct pcpu_chunk *c, int slot)
{
	chunk_move(c, slot, true);
}

/* kernel: pcpu_chunk_relocate(): more free space goes to the head, less to the tail. */
void pcpu_chunk_relocate(struct pcpu_chunk *c, int oslot)
{
	int nslot = pcpu_chunk_slot(c);

	if (c->reserved || c->isolated)
		return;
	if (oslot != nslot)
		chunk_move(c, nslot, oslot < nslot);
}

void pcpu_update_empty_pages(struct pcpu_chunk *c, int before)
{
	if (c->reserved || c->isolated)
		return;
	pcpu_sets[c->set].nr_empty_pop_pages += c->map.nr_empty_pop_pages - before;
}

static int total_empty_pop_pages(void)
{
	int n = 0;

	for (int s = 0; s < PCPU_NR_SETS; s++)
		n += pcpu_sets[s].nr_empty_pop_pages;
	return n;
}

void pcpu_for_each_chunk(void (*fn)(struct pcpu_chunk *c, void *arg), void *arg)
{
	if (pcpu_first.reserved)
		fn(pcpu_first.reserved, arg);
	for (int s = 0; s < PCPU_NR_SETS; s++) {
		for (int slot = 0; slot < pcpu_nr_slots; slot++) {
			struct list_head *h = &pcpu_sets[s].slots[slot], *p, *n;

			for (p = h->next, n = p->next; p != h; p = n, n = p->next)
				fn(list_entry(p, struct pcpu_chunk, list), arg);
		}
	}
}

/* ---------------------------------------------------------------------------------------- */
/* Population and zeroing                                                                    */
/* ---------------------------------------------------------------------------------------- */

/* Bookkeeping after pages [ps, pe) were populated (pcpu_lock held). */
static void mark_populated(struct pcpu_chunk *c, int ps, int pe)
{
	int before = c->map.nr_empty_pop_pages;

	/* Fresh pages read zero in every unit, like all free space: nothing to zero. */
	pcpu_am_populated(&c->map, ps, pe - ps);
	pcpu_update_empty_pages(c, before);
}

/* kernel: the populate loop of pcpu_alloc() (pcpu_for_each_unpop_region + pcpu_populate_chunk) */
int pcpu_populate_area(struct pcpu_chunk *c, int off, int size)
{
	int ps = off / (int)pcpu_geom.page;
	int pe = (off + size + (int)pcpu_geom.page - 1) / (int)pcpu_geom.page;

	for (int rs = ps; rs < pe;) {
		int re, err;

		rs = pcpu_am_next_unpop(&c->map, rs);
		if (rs >= pe)
			break;
		re = pcpu_am_next_pop(&c->map, rs);
		if (re > pe)
			re = pe;
		err = pcpu_chunk_populate(c, rs, re);
		if (err)
			return err;
		pthread_mutex_lock(&pcpu_lock);
		mark_populated(c, rs, re);
		pthread_mutex_unlock(&pcpu_lock);
		rs = re;
	}
	return 0;
}

/*
 * Zero an area in every unit. A copy that already reads zero is left alone: a page that
 * was never written maps the shared zero page, and writing zeros there would give the
 * process a page of memory for nothing.
 */
void pcpu_zero_area(struct pcpu_chunk *c, int off, int size)
{
	for (unsigned u = 0; u < pcpu_geom.nr_units; u++) {
		char *p = pcpu_unit_addr(c, u, (size_t)off);

		if (!pcpu_mem_is_zero(p, (size_t)size))
			memset(p, 0, (size_t)size);
	}
}

/* ---------------------------------------------------------------------------------------- */
/* Chunks                                                                                    */
/* ---------------------------------------------------------------------------------------- */

/* Create a dynamic chunk and put it on set @set's free slot. pcpu_alloc_mutex held. */
static int create_chunk(int set)
{
	struct pcpu_chunk *c;
	int err;

	err = pcpu_chunk_create(&c, set);
	if (err)
		return err;
	pthread_mutex_lock(&pcpu_lock);
	err = pcpu_chunk_index_add(c, (uintptr_t)c->base, (uintptr_t)c->base + pcpu_geom.unit_size);
	if (err) {
		pthread_mutex_unlock(&pcpu_lock);
		pcpu_chunk_destroy(c);
		return err;
	}
	c->slot = pcpu_chunk_slot(c);
	list_add(&c->list, &pcpu_sets[set].slots[c->slot]);
	pcpu_sets[set].nr_chunks++;
	pcpu_gstats.nr_chunks++;
	if (pcpu_gstats.nr_chunks > pcpu_gstats.nr_max_chunks)
		pcpu_gstats.nr_max_chunks = pcpu_gstats.nr_chunks;
	pthread_mutex_unlock(&pcpu_lock);
	pcpu_trace_create_chunk(c->base);
	return 0;
}

/*
 * The first chunk (kernel: pcpu_setup_first_chunk()): one reservation whose units hold
 * <static | reserved | dynamic>, fully populated at start and never depopulated. The
 * reserved and dynamic regions are two area maps over the same memory, each serving its
 * own byte range (the kernel's region chunks).
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

	err = pcpu_chunk_create(&dyn, 0);
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
	pthread_mutex_lock(&pcpu_lock);
	err = pcpu_chunk_index_add(dyn, (uintptr_t)f->base + f->static_size + f->reserved_size,
				   (uintptr_t)f->base + f->size);
	if (!err && rsv)
		err = pcpu_chunk_index_add(rsv, (uintptr_t)f->base + f->static_size,
					   (uintptr_t)f->base + f->static_size + f->reserved_size);
	if (err) {
		pcpu_chunk_index_del(dyn);
		pthread_mutex_unlock(&pcpu_lock);
		goto fail;
	}
	dyn->slot = pcpu_chunk_slot(dyn);
	list_add(&dyn->list, &pcpu_sets[0].slots[dyn->slot]);
	pcpu_sets[0].nr_empty_pop_pages += dyn->map.nr_empty_pop_pages;
	pcpu_sets[0].nr_chunks++;
	pcpu_gstats.nr_chunks = pcpu_gstats.nr_max_chunks = 1;
	pthread_mutex_unlock(&pcpu_lock);
	f->dyn = dyn;
	f->reserved = rsv;
	pcpu_trace_create_chunk(f->base);
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
	 */
	for (unsigned cpu = 0; cpu < n; cpu++)
		pcpu__offset[cpu] = (uintptr_t)pcpu_topo.cpu_unit[cpu % pcpu_topo.nr_cpus] *
					    pcpu_geom.stride -
				    PCPU_HANDLE_BIAS;
}

static int init_slots(void)
{
	pcpu_sidelined_slot = size_to_slot((int)pcpu_geom.unit_size) + 1;
	pcpu_free_slot = pcpu_sidelined_slot + 1;
	pcpu_to_depopulate_slot = pcpu_free_slot + 1;
	pcpu_nr_slots = pcpu_to_depopulate_slot + 1;
	for (int s = 0; s < PCPU_NR_SETS; s++) {
		pcpu_sets[s].slots = pcpu_calloc((size_t)pcpu_nr_slots, sizeof(struct list_head));
		if (!pcpu_sets[s].slots)
			return -ENOMEM;
		for (int i = 0; i < pcpu_nr_slots; i++)
			list_init(&pcpu_sets[s].slots[i]);
	}
	return 0;
}

/*
 * fork(): take every allocator lock, in the lock order, so that no other thread is inside
 * the allocator at the moment of the fork and the child gets consistent structures (in
 * particular no batch of the zeroing queue half drained: pcpu_drain_mutex covers it).
 * Then the balancer's own lock, taken last: nobody holding it waits for another lock.
 */
static void atfork_prepare(void)
{
	pthread_mutex_lock(&pcpu_balance_mutex);
	pthread_mutex_lock(&pcpu_alloc_mutex);
	pthread_mutex_lock(&pcpu_drain_mutex);
	pthread_mutex_lock(&pcpu_lock);
	pcpu_balance_atfork_prepare();
}

static void atfork_parent(void)
{
	pcpu_balance_atfork_parent();
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
	err = init_slots();
	if (err)
		goto out;
	fill_offsets();
	err = pcpu_cpu_init(&pcpu_settings, &pcpu_topo);
	if (err)
		goto out;
	err = setup_first_chunk();
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

/*
 * Try the chunks of @set, fullest fitting first (kernel: the slot walk of pcpu_alloc()).
 * pcpu_lock held. Return the offset and the chunk, or -1.
 */
static int alloc_from_slots(int set, int size, int align, bool nowait, struct pcpu_chunk **out)
{
	for (int slot = size_to_slot(size); slot <= pcpu_free_slot; slot++) {
		struct list_head *h = &pcpu_sets[set].slots[slot], *p, *n;

		for (p = h->next, n = p->next; p != h; p = n, n = p->next) {
			struct pcpu_chunk *c = list_entry(p, struct pcpu_chunk, list);
			int before = c->map.nr_empty_pop_pages;
			int oslot = c->slot;
			int off;

			off = pcpu_am_alloc(&c->map, size, align, nowait);
			if (off < 0) {
				/* Small or badly aligned requests stop rescanning it. */
				if (slot < PCPU_SLOT_FAIL_THRESHOLD)
					chunk_move(c, 0, false);
				continue;
			}
			/*
			 * Account first: an isolated chunk's change is not in the set's count
			 * (a no-op here), and reintegrating adds its pages as they are now.
			 * The other order counted the allocation's pages twice.
			 */
			pcpu_update_empty_pages(c, before);
			if (c->isolated)
				pcpu_reintegrate_chunk(c);
			pcpu_chunk_relocate(c, oslot);
			*out = c;
			return off;
		}
	}
	return -1;
}

/*
 * Queue the freed allocation at @off of @c for zeroing (pcpu_lock held): it stays allocated
 * in the map, flagged in c->queued, until pcpu_zero_drain() has zeroed it. For the caller
 * it is gone: the statistics count it freed now. Return its size; *@kick is set when the
 * balancer should drain: the queue just grew past another page per unit (the balancer
 * zeroes in batches, one wake-up per several hundred small frees), or every allocation left in a
 * dynamic chunk is queued (draining empties it: kernel: the free slot kick of free_percpu()).
 */
static int queue_area(struct pcpu_chunk *c, int off, bool *kick)
{
	int size = pcpu_am_alloc_size(&c->map, off);
	long before = pcpu_queued_bytes;

	bit_set(c->queued, off / PCPU_MIN_ALLOC_SIZE);
	if (!c->nr_queued++)
		list_add_tail(&c->queue_list, &pcpu_zero_queue);
	if (off / PCPU_MIN_ALLOC_SIZE < c->queue_first)
		c->queue_first = off / PCPU_MIN_ALLOC_SIZE;
	c->queued_bytes += size;
	pcpu_queued_areas++;
	pcpu_queued_bytes += size;
	pcpu_gstats.nr_dealloc++;
	pcpu_gstats.nr_cur_alloc--;
	/* A use after free is reported from now on, not only once the area is drained. */
	pcpu_checker_free(c, off, size);
	*kick = before / (long)pcpu_geom.page != pcpu_queued_bytes / (long)pcpu_geom.page ||
		(!c->immutable && c->nr_queued == c->map.nr_alloc);
	return size;
}

/* Does a free leave work for the balancer? (kernel: the tail of free_percpu()) */
static bool free_needs_balance(struct pcpu_chunk *c)
{
	if (c->immutable || c->reserved)
		return false;
	if (c->slot == pcpu_free_slot) {
		struct list_head *h = &pcpu_sets[c->set].slots[pcpu_free_slot];

		/* Keep one free chunk: a second one is the balancer's to destroy. */
		return h->next != h->prev;
	}
	if (pcpu_should_reclaim_chunk(c)) {
		pcpu_isolate_chunk(c);
		return true;
	}
	return false;
}

bool pcpu_free_queued_locked(struct pcpu_chunk *c, int off)
{
	int before = c->map.nr_empty_pop_pages;
	int oslot = c->slot;
	int size = pcpu_am_free(&c->map, off);

	PCPU_ASSERT(size > 0 && bit_test(c->queued, off / PCPU_MIN_ALLOC_SIZE));
	bit_clear(c->queued, off / PCPU_MIN_ALLOC_SIZE);
	c->queued_bytes -= size;
	pcpu_queued_areas--;
	pcpu_queued_bytes -= size;
	if (!--c->nr_queued) {
		list_del(&c->queue_list);
		c->queue_first = c->map.map_bits;
	}
	pcpu_checker_free(c, off, size);
	pcpu_update_empty_pages(c, before);
	pcpu_chunk_relocate(c, oslot);
	return free_needs_balance(c);
}

static bool free_slot_empty(int set)
{
	return list_empty(&pcpu_sets[set].slots[pcpu_free_slot]);
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
 * Called and returns with pcpu_alloc_mutex and pcpu_lock held. Return the offset, or -1
 * with *@why set. *@kick: the draining left balance work.
 */
static int alloc_slow(int set, int size, int align, struct pcpu_chunk **c, const char **why,
		      bool *kick)
{
	for (;;) {
		int off = alloc_from_slots(set, size, align, false, c);

		if (off >= 0)
			return off;
		if (pcpu_queued_areas) {
			long n;

			pthread_mutex_unlock(&pcpu_lock);
			n = pcpu_zero_drain(1, kick);
			pthread_mutex_lock(&pcpu_lock);
			if (n)
				continue;
		}
		if (!free_slot_empty(set)) {
			/* A free chunk did not fit: only possible for a request above a unit. */
			*why = "no chunk fits";
			return -1;
		}
		pthread_mutex_unlock(&pcpu_lock);
		if (create_chunk(set)) {
			pthread_mutex_lock(&pcpu_lock);
			*why = "failed to allocate new chunk";
			return -1;
		}
		pthread_mutex_lock(&pcpu_lock);
	}
}

static void *do_alloc(size_t size_in, size_t align_in, unsigned flags, void *call_site)
{
	bool nowait = flags & PCPU_NOWAIT;
	int set = (flags & PCPU_ACCOUNT) ? 1 : 0;
	struct pcpu_chunk *c = NULL;
	const char *why = NULL;
	bool mutex = false, kick = false, note_slow;
	int size, align, off, err;
	void *h;

	size = (int)ALIGN_UP(size_in, PCPU_MIN_ALLOC_SIZE);
	align = align_in < PCPU_MIN_ALLOC_SIZE ? PCPU_MIN_ALLOC_SIZE : (int)align_in;

	/*
	 * Populated free space first, under pcpu_lock alone: that is all PCPU_NOWAIT may use,
	 * and for a blocking caller it is the common case, which then takes no mutex and maps
	 * nothing. Free space is always zero (see the zeroing queue), so nothing is zeroed.
	 */
	pthread_mutex_lock(&pcpu_lock);
	off = alloc_from_slots(set, size, align, true, &c);
	if (off < 0 && nowait) {
		pcpu_atomic_alloc_failed = true;
		pcpu_gstats.nowait_failures++;
		pthread_mutex_unlock(&pcpu_lock);
		pcpu_balance_kick(true);
		return alloc_fail(size, align, nowait, "atomic alloc failed, no space left");
	}
	if (off < 0) {
		pthread_mutex_unlock(&pcpu_lock);
		pcpu_balance_start();
		/* The balance work hands the mutex over between pieces of page work. */
		__atomic_add_fetch(&pcpu_alloc_mutex_waiters, 1, __ATOMIC_RELAXED);
		pthread_mutex_lock(&pcpu_alloc_mutex);
		__atomic_sub_fetch(&pcpu_alloc_mutex_waiters, 1, __ATOMIC_RELAXED);
		pthread_mutex_lock(&pcpu_lock);
		mutex = true;
		off = alloc_slow(set, size, align, &c, &why, &kick);
		if (off < 0) {
			pthread_mutex_unlock(&pcpu_lock);
			pthread_mutex_unlock(&pcpu_alloc_mutex);
			if (kick)
				pcpu_balance_kick(false);
			return alloc_fail(size, align, nowait, why);
		}
	}
	stats_alloc(size);
	note_slow = pcpu_leaks_note_locked(c, off, call_site);
	/* kernel: the LOW check at the end of pcpu_alloc() */
	if (total_empty_pop_pages() < (int)pcpu_settings.empty_low)
		kick = true;
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
			pthread_mutex_unlock(&pcpu_alloc_mutex);
			if (kick)
				pcpu_balance_kick(false);
			return alloc_fail(size, align, nowait, "failed to populate");
		}
		pthread_mutex_unlock(&pcpu_alloc_mutex);
	}
	if (kick)
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
	int err = pcpu_ensure_init();

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
	return do_alloc(size, align, flags, __builtin_return_address(0));
}

/* kernel: pcpu_free_area() + relocation; the caller validated @off. */
int pcpu_free_area_locked(struct pcpu_chunk *c, int off)
{
	int before = c->map.nr_empty_pop_pages;
	int oslot = c->slot;
	int freed = pcpu_am_free(&c->map, off);

	pcpu_checker_free(c, off, freed);
	pcpu_gstats.nr_dealloc++;
	pcpu_gstats.nr_cur_alloc--;
	pcpu_update_empty_pages(c, before);
	pcpu_chunk_relocate(c, oslot);
	return freed;
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
	if (!c) {
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
	/* Zeroing size x CPUs bytes is the balancer's: the area only joins the queue. */
	freed = queue_area(c, off, &kick);
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

struct verify_ctx {
	char *why;
	size_t len;
	int err;
	int empty[PCPU_NR_SETS];
	long queued_areas, queued_bytes, queued_chunks;
};

/* The zeroing queue of @c: every flagged granule starts a live area, the counts add up. */
static void verify_queue(struct pcpu_chunk *c, struct verify_ctx *v)
{
	long n = 0, bytes = 0;

	if (!c->queued)
		return;
	for (int w = 0; w < BITS_TO_LONGS(c->map.map_bits); w++) {
		for (unsigned long bits = c->queued[w]; bits; bits &= bits - 1) {
			int g = w * BITS_PER_LONG + __builtin_ctzl(bits);
			int off = g * PCPU_MIN_ALLOC_SIZE;

			if (g < c->queue_first || !pcpu_am_is_alloc_start(&c->map, off)) {
				snprintf(v->why, v->len,
					 "chunk %p: queued area at %d is not an allocation start "
					 "(or below queue_first %d)",
					 (void *)c->base, off, c->queue_first);
				v->err = -1;
				return;
			}
			n++;
			bytes += pcpu_am_alloc_size(&c->map, off);
		}
	}
	if (n != c->nr_queued || bytes != c->queued_bytes ||
	    list_empty(&c->queue_list) != (n == 0)) {
		snprintf(v->why, v->len, "chunk %p: %ld areas (%ld bytes) queued, %d (%d) recorded%s",
			 (void *)c->base, n, bytes, c->nr_queued, c->queued_bytes,
			 list_empty(&c->queue_list) != (n == 0) ? ", queue membership wrong" : "");
		v->err = -1;
		return;
	}
	v->queued_areas += n;
	v->queued_bytes += bytes;
	v->queued_chunks += n > 0;
}

static void verify_chunk(struct pcpu_chunk *c, void *arg)
{
	struct verify_ctx *v = arg;
	char buf[256];

	if (v->err)
		return;
	if (pcpu_am_verify(&c->map, buf, sizeof(buf))) {
		snprintf(v->why, v->len, "chunk %p: %s", (void *)c->base, buf);
		v->err = -1;
		return;
	}
	verify_queue(c, v);
	if (v->err || c->reserved)
		return;
	/* A chunk that failed a small request is parked on slot 0 (the fail threshold). */
	if (!c->isolated && c->slot != pcpu_chunk_slot(c) &&
	    !(c->slot == 0 && pcpu_chunk_slot(c) < PCPU_SLOT_FAIL_THRESHOLD)) {
		snprintf(v->why, v->len, "chunk %p: on slot %d, belongs on slot %d",
			 (void *)c->base, c->slot, pcpu_chunk_slot(c));
		v->err = -1;
		return;
	}
	if (c->isolated && c->slot != pcpu_to_depopulate_slot && c->slot != pcpu_sidelined_slot) {
		snprintf(v->why, v->len, "chunk %p: isolated but on slot %d", (void *)c->base,
			 c->slot);
		v->err = -1;
		return;
	}
	if (!c->isolated)
		v->empty[c->set] += c->map.nr_empty_pop_pages;
}

int pcpu_verify_locked(char *why, size_t len)
{
	struct verify_ctx v = {.why = why, .len = len};
	long on_queue = 0;

	pcpu_for_each_chunk(verify_chunk, &v);
	if (v.err)
		return -1;
	for (struct list_head *p = pcpu_zero_queue.next; p != &pcpu_zero_queue; p = p->next)
		on_queue++;
	if (v.queued_areas != pcpu_queued_areas || v.queued_bytes != pcpu_queued_bytes ||
	    v.queued_chunks != on_queue) {
		snprintf(why, len,
			 "zeroing queue: %ld areas, %ld bytes in %ld chunks; recorded %ld, %ld, %ld",
			 v.queued_areas, v.queued_bytes, v.queued_chunks, pcpu_queued_areas,
			 pcpu_queued_bytes, on_queue);
		return -1;
	}
	for (int s = 0; s < PCPU_NR_SETS; s++) {
		if (v.empty[s] != pcpu_sets[s].nr_empty_pop_pages) {
			snprintf(why, len, "set %d: %d empty populated pages counted, %d recorded", s,
				 v.empty[s], pcpu_sets[s].nr_empty_pop_pages);
			return -1;
		}
	}
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
