/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * chunk - the memory of one chunk: a virtual reservation of nr_units units, each bound to
 * its CPU's node, populated and depopulated by page index across all units at once; and the
 * address -> chunk reverse map (the kernel's page->private). Knows nothing of slots.
 *
 * Layout: unit u starts at base + u * stride. stride = unit_size + one page: the extra
 * "colour" page staggers the copies of an object across TLB sets (with a power-of-two
 * stride every copy of an object would fall in the same dTLB/STLB set and summing a counter
 * over many CPUs would thrash them). The colour page is made accessible with the unit's last
 * page but never touched, so it costs no memory and lets a fully populated chunk stay one
 * mapping.
 *
 * Zero source. Where the kernel maps the shared zero page on a read fault of never-written
 * private anonymous memory, the reservation is anonymous and a copy nobody wrote costs nothing
 * to read. Some kernels do not (pvm_no_zero_page=1): a read allocates a page, and summing a
 * counter over 64 copies costs 64 pages. There every unit of a group is instead a MAP_PRIVATE
 * mapping of one memfd (one per chunk and bind node, closed once mapped): a read maps the
 * memfd's page-cache page, shared by every unit mapping it, and a write copies it into a
 * private page placed by the memfd's shared policy (mbind). Decided once, by probing, in
 * pcpu_geom_init(); PCPU__ZERO_SOURCE=anon|memfd overrides the probe (tests).
 */
#ifndef PCPU_CHUNK_H
#define PCPU_CHUNK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>

#include "area_map.h"
#include "util.h"

/*
 * Handles live outside the canonical address range so that a raw dereference faults:
 * handle = unit-0 address + PCPU_HANDLE_BIAS, and pcpu__offset[cpu] = unit offset - bias.
 * On AArch64 bits 56-63 are ignored by loads (top-byte ignore), so bit 55 is used there: an
 * address with it set belongs to the kernel half and faults in user space.
 */
#if defined(__aarch64__)
#define PCPU_HANDLE_BIAS ((uintptr_t)1 << 55)
#elif UINTPTR_MAX > 0xffffffffu
#define PCPU_HANDLE_BIAS ((uintptr_t)1 << 63)
#else
#define PCPU_HANDLE_BIAS ((uintptr_t)0)
#endif

struct pcpu_geom {
	size_t page;          /* page size */
	size_t unit_size;     /* bytes of a unit (dynamic chunks) */
	size_t stride;        /* unit_size + one colour page */
	unsigned nr_units;    /* == possible CPUs */
	int nr_pages;         /* pages per unit */
	size_t vsize;         /* bytes reserved per chunk */
};
extern struct pcpu_geom pcpu_geom;

struct pcpu_chunk {
	struct list_head list;      /* slot list membership */
	struct pcpu_area_map map;   /* allocation state (the area map layer) */
	char *base;                 /* start of the reservation; unit 0 starts here */
	int slot;
	int set;                    /* chunk set: 0 plain, 1 accounted */
	bool immutable;             /* first chunk regions: never reclaimed nor destroyed */
	bool isolated;              /* queued for reclaim: invisible to allocation */
	bool reserved;              /* the reserved region: never on a slot list */
	bool owns_mapping;          /* false for the reserved view of the first chunk */
	bool memfd;                 /* units are memfd views (zero source memfd) */
	unsigned long *dirty;       /* reserved region only (static.c): granules that may be
				     * nonzero in some unit */
	/*
	 * The zeroing queue (chunkset.c): freed areas stay allocated in the map, with their start
	 * granule set here, until the balancer (or a caller short of clean space) has zeroed
	 * them in every unit and freed them in the map. pcpu_lock.
	 */
	unsigned long *queued;
	struct list_head queue_list; /* on the zeroing queue (chunkset.c) while nr_queued > 0 */
	int nr_queued;               /* areas queued */
	int queued_bytes;            /* their bytes per unit */
	int queue_first;             /* no queued granule below this one */
	uint32_t *owner;            /* per-granule accounting owner id (set 1), else NULL */
	uint64_t nr_populate_calls; /* stats */
	void **callers;             /* leaks: caller of the allocation starting at each granule,
				     * or NULL until call sites are recorded (lib/leaks.c) */
};

/*
 * pcpu_geom_init - compute the geometry for @unit_size and @nr_units, and decide the zero
 * source (probes the kernel once; needs pcpu_topo).
 */
void pcpu_geom_init(size_t unit_size, unsigned nr_units);

enum pcpu_zero_source {
	PCPU_ZERO_ANON,  /* anonymous memory: reads of never-written copies map the zero page */
	PCPU_ZERO_MEMFD, /* MAP_PRIVATE memfd views: reads map one shared page-cache page */
};
extern enum pcpu_zero_source pcpu_zero_source;
extern int pcpu_kernel_zero_page;     /* probe: 1 yes, 0 no, -1 unknown */
extern bool pcpu_zero_source_forced;  /* set by PCPU__ZERO_SOURCE */
extern uint64_t pcpu_chunk_memfd_fallbacks; /* memfd mode: chunks left anonymous */
extern uint64_t pcpu_chunk_memfd_over_budget; /* of which for the mapping budget */

/*
 * PAGEMAP_SCAN (Linux 6.7) on /proc/self/pagemap: page categories by range. Defined here
 * because older uapi headers lack it.
 */
struct pcpu_page_region {
	uint64_t start, end, categories;
};
struct pcpu_pm_scan_arg {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define PCPU_PAGEMAP_SCAN _IOWR('f', 16, struct pcpu_pm_scan_arg)
#define PCPU_PAGE_IS_FILE (1u << 2)
#define PCPU_PAGE_IS_PRESENT (1u << 3)
#define PCPU_PAGE_IS_PFNZERO (1u << 5)

/* /proc/self/pagemap entry bits. */
#define PCPU_PM_PRESENT (1ULL << 63)
#define PCPU_PM_SWAPPED (1ULL << 62)
#define PCPU_PM_FILE (1ULL << 61) /* a page-cache page: in a chunk, never written */

/* pcpu_pm_written - a pagemap entry of chunk memory that may hold data. */
static inline bool pcpu_pm_written(uint64_t ent)
{
	return (ent & (PCPU_PM_PRESENT | PCPU_PM_FILE)) == PCPU_PM_PRESENT ||
	       (ent & PCPU_PM_SWAPPED);
}

/* pcpu_unit_addr - address of byte @off of unit @unit in chunk @c. */
static inline char *pcpu_unit_addr(const struct pcpu_chunk *c, unsigned unit, size_t off)
{
	return c->base + (size_t)unit * pcpu_geom.stride + off;
}

/* pcpu_handle_of / pcpu_addr_of - handle <-> unit-0 address. */
static inline void *pcpu_handle_of(const struct pcpu_chunk *c, int off)
{
	return (void *)((uintptr_t)c->base + (uintptr_t)off + PCPU_HANDLE_BIAS);
}
static inline uintptr_t pcpu_addr_of(const void *h)
{
	return (uintptr_t)h - PCPU_HANDLE_BIAS;
}

/*
 * pcpu_chunk_create - reserve and bind a new chunk of @map_bytes served bytes per unit
 * (unit_size for dynamic chunks), every page unpopulated. Return 0 or -ENOMEM.
 */
int pcpu_chunk_create(struct pcpu_chunk **out, int set);
/* pcpu_chunk_destroy - unmap and free a chunk (the caller took it out of every list). */
void pcpu_chunk_destroy(struct pcpu_chunk *c);

/*
 * pcpu_chunk_populate - make pages [ps, pe) of every unit accessible, faulting them in for
 * the units of CPUs the process may run on. Only syscalls: the caller marks the map. On
 * failure nothing stays populated. Return 0 or -ENOMEM.
 */
int pcpu_chunk_populate(struct pcpu_chunk *c, int ps, int pe);
/* pcpu_chunk_depopulate - give pages [ps, pe) of every unit back and make them PROT_NONE. */
void pcpu_chunk_depopulate(struct pcpu_chunk *c, int ps, int pe);

/* Reverse map of handle addresses (unit-0 range) to chunks; caller holds the short lock. */
int pcpu_chunk_index_add(struct pcpu_chunk *c, uintptr_t start, uintptr_t end);
void pcpu_chunk_index_del(struct pcpu_chunk *c);
struct pcpu_chunk *pcpu_chunk_lookup(uintptr_t addr);
/*
 * Bytes of chunk memory resident in unit @unit, populated pages only, for stats; and in
 * pages [ps, pe) of every unit, for pcpu_trim(). mincore() with the anonymous zero source
 * (a page mapping the zero page counts too); with memfd, pages of the process's own only
 * (/proc/self/pagemap: present and not page cache), mincore() when that is unreadable.
 */
size_t pcpu_chunk_resident(const struct pcpu_chunk *c, unsigned unit);
size_t pcpu_chunk_resident_pages(const struct pcpu_chunk *c, int ps, int pe);

/* Counters kept by this layer (under the allocation mutex). */
extern uint64_t pcpu_chunk_bind_failures;
extern uint64_t pcpu_chunk_pages_populated, pcpu_chunk_pages_depopulated;

#endif /* PCPU_CHUNK_H */
