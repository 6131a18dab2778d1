/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * Static per-CPU variables (PCPU_DEFINE), the user-space counterpart of the kernel's
 * .data..percpu section and of modules' per-CPU sections.
 *
 * Each PCPU_DEFINE emits a descriptor and a constructor that calls pcpu__static_register()
 * (and a destructor that calls pcpu__static_unregister()). Where the storage comes from
 * depends on which object holds the descriptor:
 *
 *   - the main program (also when it is linked with libpcpu.a, or fully static): the first
 *     chunk's static region, by bump allocation, as the kernel image's per-CPU section is
 *     laid out at the start of the first chunk. Never given back (the kernel's static area
 *     cannot be freed either); unregistering at exit leaves the copies valid, so code that
 *     runs later during exit can still use them.
 *   - any shared object (loaded at start-up or with dlopen): the first chunk's reserved
 *     region, as the kernel serves modules' per-CPU data from pcpu_reserved_chunk. Given
 *     back when the object's destructors run (dlclose, or exit).
 *
 * The object is found with dl_iterate_phdr(): the first object it reports is the main
 * program (glibc documents the link-map order; in a static program it is the only one),
 * and the descriptor's address is looked up in each object's PT_LOAD segments. A
 * descriptor in no object at all (built at run time on the heap) counts as the main
 * program's. dladdr() would give the same answer but is not available in every static
 * link, and it reports the main program's name inconsistently.
 *
 * Sizes (PCPU_CONF static_size= and reserved_size=, or struct pcpu_config): the kernel sizes
 * its static area by the image's .data..percpu and reserves PERCPU_MODULE_RESERVE (8 KiB)
 * for modules. A program's PCPU_DEFINE variables are usually a few counters, so the static
 * region defaults to 16 KiB, and the reserved region to the kernel's 8 KiB; 0 disables a
 * region (everything then falls back). Both are part of the first chunk, which is fully
 * populated, so their cost is virtual until a CPU's copy is written.
 *
 * When the preferred region is full the main program falls back to the reserved region,
 * then to a dynamic allocation; a shared object falls back to a dynamic allocation. Every
 * handle is an ordinary per-CPU handle (pcpu_handle_of()), so every operation works on it.
 *
 * Initial values: the static region is fresh memory that is never reused, so it reads
 * zero; the reserved region is zeroed where a previous user dirtied it. A variable whose
 * initial value is all zero is therefore never written. A nonzero initial value has to be
 * written into the unit of every possible CPU, which costs one page per unit touched: that
 * is unavoidable, and the same price the kernel pays when it copies .data..percpu.
 */
#include <errno.h>
#include <link.h>
#include <string.h>

#include <pcpu.h>

#include "alloc.h"
#include "trace.h"

/*
 * Where a variable's storage came from, kept in desc->priv (0: not registered), with
 * WHERE_MAIN set for the main program's variables.
 */
enum {
	WHERE_NONE = 0,
	WHERE_STATIC = PCPU_REGION_STATIC,
	WHERE_RESERVED = PCPU_REGION_RESERVED,
	WHERE_DYNAMIC = PCPU_REGION_DYNAMIC,
	WHERE_MASK = 0xf,
	WHERE_MAIN = 0x10,
};

/*
 * Handles of variables that fell back to a dynamic allocation: pcpu_free() must reject
 * them like any other static variable. Rare (a region ran out), so a plain array; under
 * pcpu_lock. pcpu_static_nr_dyn is read by pcpu_free() under the same lock.
 */
static void **dyn_handles;
static size_t dyn_cap;
size_t pcpu_static_nr_dyn;

static __attribute__((noreturn)) void die(const struct pcpu__static_desc *d, const char *why)
{
	fprintf(stderr, "libpcpu: PCPU_DEFINE(%s, %zu bytes, align %zu): %s\n",
		d->name ? d->name : "?", d->size, d->align, why);
	fflush(stderr);
	abort();
}

struct find_obj {
	uintptr_t addr;
	int index;   /* object counter */
	int found;   /* index of the object holding addr, or -1 */
};

static int find_obj_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct find_obj *f = arg;

	(void)size;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t start = info->dlpi_addr + ph->p_vaddr;

		if (ph->p_type == PT_LOAD && f->addr >= start && f->addr - start < ph->p_memsz) {
			f->found = f->index;
			return 1;
		}
	}
	f->index++;
	return 0;
}

/* Is @d in the main program (or in no object at all)? See the top of the file. */
static bool in_main_program(const struct pcpu__static_desc *d)
{
	struct find_obj f = {.addr = (uintptr_t)d, .index = 0, .found = -1};

	dl_iterate_phdr(find_obj_cb, &f);
	return f.found <= 0;
}

/* Bump allocation in the static region (pcpu_lock held). Return the offset or -1. */
static long static_take(size_t size, size_t align)
{
	struct pcpu_first_chunk *f = &pcpu_first;
	size_t off = ALIGN_UP(f->static_used, align);

	if (off > f->static_size || f->static_size - off < size)
		return -1;
	f->static_used = off + size;
	return (long)off;
}

/*
 * An area of the reserved region (pcpu_lock held). Return the offset or -1, and in
 * *@dirty whether a previous user may have left nonzero bytes in it.
 */
static int reserved_take(size_t size, size_t align, bool *dirty)
{
	struct pcpu_chunk *r = pcpu_first.reserved;
	long b, n;
	int off;

	if (!r)
		return -1;
	off = pcpu_am_alloc(&r->map, (int)size, (int)align, false);
	if (off < 0)
		return -1;
	b = off / PCPU_MIN_ALLOC_SIZE;
	n = (long)(ALIGN_UP(size, PCPU_MIN_ALLOC_SIZE) / PCPU_MIN_ALLOC_SIZE);
	*dirty = bits_any_in_range(r->dirty, b, n);
	bits_set_range(r->dirty, b, n);
	pcpu_stats_count_alloc((int)ALIGN_UP(size, PCPU_MIN_ALLOC_SIZE));
	return off;
}

static int dyn_remember(void *h)
{
	if (pcpu_static_nr_dyn == dyn_cap) {
		size_t cap = dyn_cap ? 2 * dyn_cap : 16;
		void **n = pcpu_realloc(dyn_handles, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		dyn_handles = n;
		dyn_cap = cap;
	}
	dyn_handles[pcpu_static_nr_dyn++] = h;
	return 0;
}

static void dyn_forget(void *h)
{
	for (size_t i = 0; i < pcpu_static_nr_dyn; i++) {
		if (dyn_handles[i] == h) {
			dyn_handles[i] = dyn_handles[--pcpu_static_nr_dyn];
			return;
		}
	}
}

/* Write @init into every unit's copy of [off, off + size) of the first chunk. */
static void write_init(size_t off, const void *init, size_t size)
{
	for (unsigned u = 0; u < pcpu_geom.nr_units; u++)
		memcpy(pcpu_unit_addr(pcpu_first.dyn, u, off), init, size);
}

void pcpu__static_register(struct pcpu__static_desc *d)
{
	size_t size = d->size ? d->size : 1, align = d->align ? d->align : 1;
	bool init_zero = !d->init || pcpu_mem_is_zero(d->init, d->size);
	bool main_prog, dirty = false;
	int where = WHERE_NONE, err;
	long off = -1;
	void *h;

	/* Constructors may run before anything else touched the library. */
	err = pcpu_ensure_init();
	if (err)
		die(d, "libpcpu failed to initialise");
	/* Idempotent: <pcpu/kernel.h> registers its section from every file that uses it. */
	if (d->priv)
		return;
	if (align & (align - 1) || align > pcpu_geom.page)
		die(d, "alignment not a power of two up to the page size");
	main_prog = in_main_program(d);

	pthread_mutex_lock(&pcpu_lock);
	if (main_prog && (off = static_take(size, align)) >= 0)
		where = WHERE_STATIC;
	else if ((off = reserved_take(size, align, &dirty)) >= 0)
		where = WHERE_RESERVED;
	pthread_mutex_unlock(&pcpu_lock);

	if (where != WHERE_NONE) {
		h = (void *)((uintptr_t)pcpu_first.base + (uintptr_t)off + PCPU_HANDLE_BIAS);
		if (where == WHERE_RESERVED) {
			if (dirty)
				pcpu_zero_area(pcpu_first.reserved, (int)off,
					       (int)ALIGN_UP(size, PCPU_MIN_ALLOC_SIZE));
			pcpu_trace_alloc(__builtin_return_address(0), 1, 0, size, align,
					 pcpu_first.base, (int)off, h,
					 ALIGN_UP(size, PCPU_MIN_ALLOC_SIZE) * pcpu_geom.nr_units,
					 0);
		}
		if (!init_zero)
			write_init((size_t)off, d->init, d->size);
	} else {
		/* Both regions full: an ordinary dynamic allocation, zeroed by pcpu_alloc(). */
		h = pcpu_alloc(size, align, 0);
		if (!h)
			die(d, errno == EINVAL ? "larger than a unit" : "out of per-CPU memory");
		pthread_mutex_lock(&pcpu_lock);
		err = dyn_remember(h);
		pthread_mutex_unlock(&pcpu_lock);
		if (err)
			die(d, "out of memory");
		where = WHERE_DYNAMIC;
		if (!init_zero)
			for (unsigned cpu = 0; cpu < pcpu_geom.nr_units; cpu++)
				memcpy(pcpu_ptr((char *)h, cpu), d->init, d->size);
	}
	/*
	 * Constructors run before any thread can see the variable (and dlopen() returns
	 * only after them): a plain store publishes the handle.
	 */
	*d->handle = h;
	d->priv = (void *)(uintptr_t)(where | (main_prog ? WHERE_MAIN : 0));
}

/*
 * librseq: rseq_prepare_unload(). After a restartable sequence the thread's rseq_cs field
 * keeps pointing at the sequence's descriptor, which lives in the object that ran it, and
 * the kernel reads it at the thread's next preemption: once a shared object is unmapped
 * that read fails and the kernel kills the thread with SIGSEGV. The unloading thread
 * clears its own field here, from the object's destructor, while the object is mapped.
 * Other threads clear theirs on their next preemption (the kernel resets rseq_cs when the
 * thread is outside the sequence); as with librseq, a thread that ran the object's
 * sequences must not stay switched out across its dlclose(). In getcpu mode the offset
 * names an unregistered area, where the store is harmless.
 */
static void rseq_prepare_unload(void)
{
#if defined(__x86_64__)
	__asm__ __volatile__("movq $0, %%fs:(%0)" : : "r"(pcpu__hot.cs_off) : "memory");
#elif defined(__aarch64__)
	char *tp;

	__asm__ __volatile__("mrs %0, tpidr_el0" : "=r"(tp));
	__atomic_store_n((uint64_t *)(tp + pcpu__hot.cs_off), 0, __ATOMIC_RELAXED);
#endif
}

void pcpu__static_unregister(struct pcpu__static_desc *d)
{
	int where = (int)(uintptr_t)d->priv;
	void *h = *d->handle;
	uintptr_t addr;
	int off;

	/*
	 * The main program is unloaded only by exit: keep its variables, wherever they
	 * live, valid for whatever runs later during the exit (other destructors, the
	 * PCPU_STATS report). The static region could not be given back anyway.
	 */
	if (where & WHERE_MAIN)
		return;
	if (where)
		rseq_prepare_unload();
	switch (where & WHERE_MASK) {
	case WHERE_RESERVED:
		addr = pcpu_addr_of(h);
		off = (int)(addr - (uintptr_t)pcpu_first.base);
		pthread_mutex_lock(&pcpu_lock);
		if (!pcpu_am_is_alloc_start(&pcpu_first.reserved->map, off)) {
			pthread_mutex_unlock(&pcpu_lock);
			die(d, "unregistered twice, or its handle was overwritten");
		}
		pcpu_free_area_locked(pcpu_first.reserved, off);
		pthread_mutex_unlock(&pcpu_lock);
		pcpu_trace_free(pcpu_first.base, off, h);
		break;
	case WHERE_DYNAMIC:
		pthread_mutex_lock(&pcpu_lock);
		dyn_forget(h);
		pthread_mutex_unlock(&pcpu_lock);
		pcpu_free(h);
		break;
	default:
		return; /* never registered, or already unregistered */
	}
	/* A use after unregistering faults instead of reaching memory reused by others. */
	*d->handle = NULL;
	d->priv = NULL;
}

const char *pcpu_static_bad_free(uintptr_t addr, const struct pcpu_chunk *c)
{
	uintptr_t base = (uintptr_t)pcpu_first.base;

	if (!c && addr - base < pcpu_first.static_size)
		return "a static per-CPU variable (PCPU_DEFINE), which is never freed";
	if (c && c->reserved)
		return "a per-CPU variable (PCPU_DEFINE) of a shared object: it is freed when the "
		       "object is unloaded";
	for (size_t i = 0; c && i < pcpu_static_nr_dyn; i++)
		if (pcpu_addr_of(dyn_handles[i]) == addr)
			return "a per-CPU variable (PCPU_DEFINE) that fell back to a dynamic "
			       "allocation: it is freed when its object is unloaded";
	return NULL;
}

int pcpu_static_region_of(const void *h)
{
	uintptr_t addr = pcpu_addr_of(h), base = (uintptr_t)pcpu_first.base;
	struct pcpu_chunk *c;
	int where = PCPU_REGION_NONE;

	if (pcpu_ensure_init())
		return PCPU_REGION_NONE;
	if (addr - base < pcpu_first.static_size)
		return PCPU_REGION_STATIC;
	pthread_mutex_lock(&pcpu_lock);
	c = pcpu_chunk_lookup(addr);
	if (c)
		where = c->reserved ? PCPU_REGION_RESERVED : PCPU_REGION_DYNAMIC;
	pthread_mutex_unlock(&pcpu_lock);
	return where;
}
