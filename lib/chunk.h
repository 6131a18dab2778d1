/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * chunk - the memory of one chunk: a virtual reservation of nr_units units, each bound to
 * its CPU's node, populated and depopulated by page index across all units at once; and the
 * address -> chunk reverse map (the kernel's page->private). Knows nothing of slots.
 *
 * Layout: unit u's region starts at base + u * stride. stride = unit_size + one page: the
 * extra "colour" page staggers the copies of an object across TLB sets (with a power-of-two
 * stride every copy of an object would fall in the same dTLB/STLB set and summing a counter
 * over many CPUs would thrash them), and gives room to the cache colour below.
 *
 * Cache colour. In a coloured chunk, unit u's bytes start (u mod 64) cache lines into its
 * region, so the copies of one object sit at 64 different offsets within their pages and
 * spread over 64 times as many cache sets (L1 is indexed by the page offset; at the same
 * offset 64 copies compete for one set of 8 or 12 ways, and 1024 copies overflow L2's sets
 * too). Summing one counter over 1024 copies went from 14x to 1.2x a padded array's time.
 * A coloured copy is aligned to a cache line at most, so requests aligned to more
 * (PCPU_COLOUR_ALIGN) come from plain chunks, as does the first chunk. The two kinds differ
 * only in the per-CPU constant: coloured handles carry PCPU_HANDLE_COLOUR, which selects the
 * second half of the offset table (PCPU__TAB() in <pcpu.h>).
 *   Logical page i of a coloured unit (bytes [i * page, (i + 1) * page) of the unit) lies
 * on pages i and i + 1 of its region: population prefaults both; depopulation gives back a
 * region page only when both logical pages on it are unpopulated. Everything that works on
 * pages (population, scans, mbind, memfd views) works on regions (pcpu_unit_region());
 * everything that works on objects, on unit addresses (pcpu_unit_addr()).
 *
 * Zero source. Where the kernel maps the shared zero page on a read fault of never-written
 * private anonymous memory, the reservation is anonymous and a copy nobody wrote costs nothing
 * to read. Some kernels do not (pvm_no_zero_page=1): a read allocates a page, and summing a
 * counter over 64 copies costs 64 pages. There every unit of a group is instead a MAP_PRIVATE
 * mapping of one memfd (one per chunk and bind node, closed once mapped): a read maps the
 * memfd's page-cache page, shared by every unit mapping it, and a write copies it into a
 * private page placed by the memfd's shared policy (mbind). Decided once, by probing, in
 * pcpu_geom_init(); PCPU__ZERO_SOURCE=anon|memfd overrides the probe (tests).
 *
 * Access. A chunk is readable and writable from creation (MAP_NORESERVE: it costs nothing
 * until written), so neither population nor depopulation changes a protection. Population
 * prefaults the units of the CPUs the process may run on (one process_madvise() per 1024
 * of them); depopulation finds the pages present in the range with one PAGEMAP_SCAN over
 * the span and gives them back with process_madvise(MADV_DONTNEED), 1024 ranges per call:
 * the system calls follow what the process uses, not the possible CPUs. PCPU_CONF guard=1
 * (or a reservation the kernel refuses to make accessible, as under vm.overcommit_memory=2,
 * where MAP_NORESERVE is ignored) keeps unpopulated pages PROT_NONE instead, at one
 * mprotect per unit and population.
 *
 * Mappings (VMAs) per chunk, for vm.max_map_count. Anonymous zero source: one per bind
 * group (mbind gives each group's range its own policy; one when nothing is bound),
 * whatever is populated. Memfd zero source: one per unit, also whatever is populated
 * (each unit maps offset 0 of its memfd, so neighbours never merge): that cost is bounded
 * by the memfd budget in chunk.c. With guard=1, population splits them further (up to
 * about four per unit in a partly populated chunk).
 */
#ifndef PCPU_CHUNK_H
#define PCPU_CHUNK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "area_map.h"
#include "pagemap.h"
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

/* Coloured chunks' handles also carry this bit (<pcpu.h>); none on 32-bit targets. */
#ifdef PCPU__COLOUR_BIT
#define PCPU_HANDLE_COLOUR ((uintptr_t)1 << PCPU__COLOUR_BIT)
#else
#define PCPU_HANDLE_COLOUR ((uintptr_t)0)
#endif
#define PCPU_COLOUR_ALIGN 64 /* the colour step, and the largest alignment coloured chunks serve */
#define PCPU_NR_COLOURS 64   /* colours: 64 cache lines, one 4 KiB page */

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
	bool guarded;               /* unpopulated pages are PROT_NONE (guard=1) */
	bool coloured;              /* units start at staggered cache lines (above) */
	bool colourless;            /* plain, yet serves small objects: colour is off, or
				     * this chunk could not have it (guarded) */
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
 * pcpu_geom_init - compute the geometry for @unit_size (0: automatic, from @nr_units) and
 * @nr_units, and decide the zero source (probes the kernel once; needs pcpu_topo).
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

/* pcpu_colour_of - where unit @unit's bytes start in its region of a coloured chunk. */
static inline size_t pcpu_colour_of(unsigned unit)
{
	return (size_t)(unit % PCPU_NR_COLOURS) * PCPU_COLOUR_ALIGN;
}

/* pcpu_unit_colour - where unit @unit's bytes start in its region of @c. */
static inline size_t pcpu_unit_colour(const struct pcpu_chunk *c, unsigned unit)
{
	return c->coloured ? pcpu_colour_of(unit) : 0;
}

/* pcpu_unit_region - address of byte @off of unit @unit's region (page-aligned for pages). */
static inline char *pcpu_unit_region(const struct pcpu_chunk *c, unsigned unit, size_t off)
{
	return c->base + (size_t)unit * pcpu_geom.stride + off;
}

/* pcpu_unit_addr - address of byte @off of unit @unit in chunk @c (its copy of that byte). */
static inline char *pcpu_unit_addr(const struct pcpu_chunk *c, unsigned unit, size_t off)
{
	return pcpu_unit_region(c, unit, pcpu_unit_colour(c, unit) + off);
}

/*
 * pcpu_handle_of / pcpu_addr_of - handle <-> unit-0 address (unit 0 has colour 0).
 * pcpu_addr_of() drops the colour bit: check it with pcpu_handle_kind_ok().
 */
static inline void *pcpu_handle_of(const struct pcpu_chunk *c, int off)
{
	return (void *)((uintptr_t)c->base + (uintptr_t)off + PCPU_HANDLE_BIAS +
			(c->coloured ? PCPU_HANDLE_COLOUR : 0));
}
static inline uintptr_t pcpu_addr_of(const void *h)
{
	return ((uintptr_t)h - PCPU_HANDLE_BIAS) & ~PCPU_HANDLE_COLOUR;
}
/*
 * pcpu_handle_copy - where unit @unit's copy of the object behind handle @h lies, from the
 * handle and the geometry alone (pcpu_unit_addr() without the chunk): for a prefetch,
 * before anything says @h is a live handle. Garbage in, a garbage address out.
 */
static inline uintptr_t pcpu_handle_copy(const void *h, unsigned unit)
{
	uintptr_t colour = (uintptr_t)h & PCPU_HANDLE_COLOUR ? pcpu_colour_of(unit) : 0;

	return pcpu_addr_of(h) + (uintptr_t)unit * pcpu_geom.stride + colour;
}

/*
 * pcpu_chunk_serves_align - does @c serve objects aligned to @align? Coloured chunks serve
 * alignments up to a cache line, plain ones larger alignments; small objects go to a plain
 * chunk only where colour is off (and, from PCPU_NOWAIT, as a last resort: chunkset.c).
 */
static inline bool pcpu_chunk_serves_align(const struct pcpu_chunk *c, int align)
{
	if (align > PCPU_COLOUR_ALIGN)
		return !c->coloured;
	return c->coloured || c->colourless;
}
static inline bool pcpu_handle_kind_ok(const struct pcpu_chunk *c, const void *h)
{
	return ((uintptr_t)h & PCPU_HANDLE_COLOUR) == (c->coloured ? PCPU_HANDLE_COLOUR : 0);
}

/*
 * pcpu_chunk_create - reserve and bind a new chunk of @map_bytes served bytes per unit
 * (unit_size for dynamic chunks), every page unpopulated; @coloured asks for cache colour
 * (a guarded chunk has none). Return 0 or -ENOMEM.
 */
int pcpu_chunk_create(struct pcpu_chunk **out, int set, bool coloured);
/* pcpu_chunk_destroy - unmap and free a chunk (the caller took it out of every list). */
void pcpu_chunk_destroy(struct pcpu_chunk *c);

/*
 * pcpu_chunk_populate - make pages [ps, pe) of every unit usable, faulting them in for the
 * units of CPUs the process may run on. Only syscalls: the caller marks the map. On
 * failure nothing stays populated. Return 0 or -ENOMEM. pcpu_alloc_mutex held.
 */
int pcpu_chunk_populate(struct pcpu_chunk *c, int ps, int pe);
/*
 * pcpu_chunk_depopulate - give pages [ps, pe) of every unit back (they read zero again),
 * and with guard=1 make them PROT_NONE. pcpu_alloc_mutex held.
 */
void pcpu_chunk_depopulate(struct pcpu_chunk *c, int ps, int pe);

/* Reverse map of handle addresses (unit-0 range) to chunks; caller holds the short lock. */
int pcpu_chunk_index_add(struct pcpu_chunk *c, uintptr_t start, uintptr_t end);
void pcpu_chunk_index_del(struct pcpu_chunk *c);
struct pcpu_chunk *pcpu_chunk_lookup(uintptr_t addr);
/*
 * Bytes of chunk memory resident in unit @unit, populated pages only, for stats; and in
 * pages [ps, pe) of every unit, for pcpu_trim(). With the anonymous zero source every
 * present page (a page mapping the zero page counts too); with memfd, pages of the
 * process's own only (present and not page cache). Through the pagemap (pagemap.h), one
 * scan for all units; mincore() per unit when that is unreadable.
 */
size_t pcpu_chunk_resident(const struct pcpu_chunk *c, unsigned unit);
size_t pcpu_chunk_resident_pages(const struct pcpu_chunk *c, int ps, int pe);

/* Counters kept by this layer (under the allocation mutex). */
extern uint64_t pcpu_chunk_bind_failures;
extern uint64_t pcpu_chunk_pages_populated, pcpu_chunk_pages_depopulated;

#endif /* PCPU_CHUNK_H */
