/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * chunkset - the chunk-set layer (kernel: the chunk lists, pcpu_create_chunk(),
 * pcpu_populate_chunk() and friends of mm/percpu.c): every chunk the allocator serves from,
 * sorted into slots by free space, in two sets (plain, accounted); chunk creation and
 * destruction; population and depopulation of page runs with their bookkeeping; the count
 * of empty populated pages; isolation for reclaim; the zeroing queue and its drain; and the
 * library's locks. Above it: alloc.c (request validation, the alloc and free paths, the
 * first chunk, init, fork) and balance.c (policy and the background thread). Below it:
 * chunk.h (one chunk's memory) and area_map.h (one chunk's allocation state).
 *
 * LOCKS - this is their one home. In the order they are taken:
 *
 *   (init_lock          alloc.c: pcpu_init() holds it while the library initialises, which
 *                       takes the locks below; outermost, taken by nobody else.)
 *   pcpu_balance_mutex  serialises runs of the balance work (the balancer thread,
 *                       pcpu_trim(), balance=off callers). Only its holder destroys chunks,
 *                       so a run may hand pcpu_alloc_mutex over between two pieces of page
 *                       work and keep pointers to chunks (pcpu_alloc_mutex_yield()).
 *   pcpu_alloc_mutex    (kernel: pcpu_alloc_mutex) chunk creation and destruction,
 *                       population and depopulation. Holding it, no page of a chunk changes
 *                       state and no chunk appears or disappears (stats rely on it).
 *   pcpu_drain_mutex    one drainer of the zeroing queue at a time: the batch being zeroed
 *                       (pcpu_lock dropped) is the holder's. Never held across page work.
 *   pcpu_lock           (kernel: the pcpu_lock spinlock) the short lock: area maps, slots,
 *                       set counters, the zeroing queue, the reverse map, pcpu_gstats, the
 *                       static variables' bookkeeping. Never held across a system call.
 *   leaves              bal_lock (balance.c: the thread's state and condition variable),
 *                       domain_lock (domain.c), each struct pcpu_counter's lock (counter.c),
 *                       the front's lock (front.c: depots, drains) and hmap_lock (hmap.c):
 *                       nothing else is taken while holding one. The fork handlers take
 *                       the front's and the map's locks after the allocator's, and bal_lock
 *                       last, holding all of the above.
 *
 * A NOWAIT allocation takes pcpu_lock only. The fork handlers (alloc.c) take all four, in
 * this order.
 *
 * Functions that drop and retake a lock they were called with (they say so) must be called
 * with it taken through pcpu_hold(), which times holds for pcpu_hold_stats().
 */
#ifndef PCPU_CHUNKSET_H
#define PCPU_CHUNKSET_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chunk.h"

extern pthread_mutex_t pcpu_balance_mutex;
extern pthread_mutex_t pcpu_alloc_mutex;
extern pthread_mutex_t pcpu_drain_mutex;
extern pthread_mutex_t pcpu_lock;

/* The three allocator locks, for timed holds. */
enum pcpu_lock_id { PCPU_SHORT_LOCK, PCPU_ALLOC_MUTEX, PCPU_DRAIN_MUTEX, PCPU_NR_LOCKS };

/* pcpu_hold / pcpu_release - take / drop a lock, timing the hold (slow paths only). */
void pcpu_hold(enum pcpu_lock_id id);
void pcpu_release(enum pcpu_lock_id id);

/* Hold times of every timed hold (the balance work, slow allocations, drains), in ns. */
struct pcpu_hold_stat {
	uint64_t count, total_ns, max_ns;
};
void pcpu_hold_stats(struct pcpu_hold_stat out[PCPU_NR_LOCKS]);

/*
 * pcpu_alloc_mutex_lock - take pcpu_alloc_mutex (timed) as a blocking allocator: while it
 * waits, the balance work hands the mutex over between pieces of page work.
 */
void pcpu_alloc_mutex_lock(void);
/* pcpu_alloc_mutex_trylock - take pcpu_alloc_mutex (timed) if nobody holds it; never waits. */
bool pcpu_alloc_mutex_trylock(void);
/*
 * pcpu_alloc_mutex_yield - hand pcpu_alloc_mutex to a blocking allocator that waits for it,
 * if any. pcpu_alloc_mutex and pcpu_lock held (timed) on entry and exit.
 */
void pcpu_alloc_mutex_yield(void);

/* ---------------------------------------------------------------------------------------- */
/* Statistics                                                                                */
/* ---------------------------------------------------------------------------------------- */

/*
 * The global counters (kernel: pcpu_stats), under pcpu_lock. The alloc and free paths
 * count allocations (alloc.c, static.c and this layer's free functions); this layer counts
 * chunks and the bytes its drain zeroed.
 */
struct pcpu_global_stats {
	uint64_t nr_alloc, nr_dealloc, nr_cur_alloc, nr_max_alloc;
	uint64_t nr_chunks, nr_max_chunks;
	size_t min_alloc_size, max_alloc_size;
	uint64_t nowait_failures;
	uint64_t zeroed_bytes; /* bytes the drain wrote: nonzero copies of freed areas */
};
extern struct pcpu_global_stats pcpu_gstats;

/* ---------------------------------------------------------------------------------------- */
/* Sets and slots                                                                            */
/* ---------------------------------------------------------------------------------------- */

#define PCPU_NR_SETS 2 /* chunk sets: 0 plain, 1 accounted (PCPU_ACCOUNT) */
#define PCPU_SLOT_FAIL_THRESHOLD 3

/*
 * Slot numbers (kernel: pcpu_nr_slots and the three special slots), set by
 * pcpu_chunkset_init() and constant afterwards. Slots 1 .. pcpu_sidelined_slot - 1 hold
 * chunks by the size of their largest free run; slot 0 full chunks (or ones that failed
 * small requests); then the sidelined slot (isolated, not to depopulate), the free slot
 * (entirely free chunks) and the to-depopulate slot (isolated for reclaim).
 */
extern int pcpu_nr_slots, pcpu_sidelined_slot, pcpu_free_slot, pcpu_to_depopulate_slot;

/* pcpu_chunkset_init - set up the slots; after pcpu_geom_init(). Return 0 or -ENOMEM. */
int pcpu_chunkset_init(void);

/* pcpu_size_to_slot - the lowest slot whose chunks have @bytes free in one run. */
int pcpu_size_to_slot(int bytes);
/* pcpu_chunk_slot - kernel: pcpu_chunk_slot(). */
int pcpu_chunk_slot(const struct pcpu_chunk *c);
/* pcpu_chunk_relocate - kernel: pcpu_chunk_relocate(); pcpu_lock held. */
void pcpu_chunk_relocate(struct pcpu_chunk *c, int oslot);
/* pcpu_chunk_move - put @c at the head of slot @slot of its set; pcpu_lock held. */
void pcpu_chunk_move(struct pcpu_chunk *c, int slot);

/*
 * pcpu_slot_first / pcpu_slot_next - walk slot @slot of set @set: its first chunk, the one
 * after @c on @c's slot list; NULL at the end. pcpu_lock held.
 */
struct pcpu_chunk *pcpu_slot_first(int set, int slot);
struct pcpu_chunk *pcpu_slot_next(const struct pcpu_chunk *c);

/* pcpu_set_nr_chunks - chunks of set @set (the first chunk counts in set 0). pcpu_lock. */
int pcpu_set_nr_chunks(int set);

/*
 * pcpu_alloc_from_slots - allocate @size bytes aligned to @align from the chunks of @set,
 * fullest fitting first (kernel: the slot walk of pcpu_alloc()), among the chunks that serve
 * @align (pcpu_chunk_serves_align(): coloured ones up to a cache line). @pop_only: populated
 * pages only (PCPU_NOWAIT, and every caller's first try). pcpu_lock held. Return the offset
 * and *@out, or -1.
 */
int pcpu_alloc_from_slots(int set, int size, int align, bool pop_only, struct pcpu_chunk **out);
/*
 * pcpu_alloc_nowait_fallback - a PCPU_NOWAIT request's last resort: populated space in any
 * chunk the alignment allows, a small object in a plain chunk too (uncoloured, but served).
 * pcpu_lock held. Return the offset or -1.
 */
int pcpu_alloc_nowait_fallback(int set, int size, int align, struct pcpu_chunk **out);

/*
 * pcpu_alloc_many_from_slots - up to @max allocations of @size bytes aligned to @align, all
 * from one chunk of @set: the first the slot walk of pcpu_alloc_from_slots() finds that
 * fits one (with the same moves of chunks that fit none, and the same reintegration and
 * relocation of the one that does). Their offsets go to @offs, in increasing order, the
 * chunk to *@out; pcpu_am_alloc_many() takes them, its metadata work once per free run.
 * Like pcpu_alloc_from_slots(), it counts nothing in pcpu_gstats: the caller does (the
 * front counts objects when it hands them out). pcpu_lock held.
 * Return the number allocated, 0 when no chunk fits one.
 */
int pcpu_alloc_many_from_slots(int set, int size, int align, bool pop_only, int max, int *offs,
			       struct pcpu_chunk **out);

/*
 * pcpu_free_area_locked - free the allocation at @off of @c in its map, relocating the
 * chunk (kernel: pcpu_free_area()); for areas that are zero in every unit. The caller
 * validated @off. pcpu_lock held. Return the bytes freed.
 */
int pcpu_free_area_locked(struct pcpu_chunk *c, int off);

/* Every chunk, for stats and verify: @fn for each (the reserved region first); pcpu_lock. */
void pcpu_for_each_chunk(void (*fn)(struct pcpu_chunk *c, void *arg), void *arg);

/* ---------------------------------------------------------------------------------------- */
/* Empty populated pages and reclaim                                                         */
/* ---------------------------------------------------------------------------------------- */

/*
 * The reserve: the empty populated pages kept between LOW and HIGH for PCPU_NOWAIT requests
 * are those of chunks that serve small requests (pcpu_chunk_in_reserve(): not the reserved
 * chunk and, while colour is on, not the plain chunks, the first chunk among them, which
 * serve only alignments beyond a cache line). The kernel counts every chunk: all of its
 * chunks serve every request.
 *
 * pcpu_nr_empty_pop_pages - the reserve of set @set: empty populated pages of its chunks in
 * the reserve that are not isolated (kernel: pcpu_nr_empty_pop_pages); @set < 0: of every
 * set. pcpu_chunk_reserve_pages - what @c adds to it now. pcpu_lock held.
 */
bool pcpu_chunk_in_reserve(const struct pcpu_chunk *c);
int pcpu_chunk_reserve_pages(const struct pcpu_chunk *c);
int pcpu_nr_empty_pop_pages(int set);

/* pcpu_should_reclaim_chunk - kernel: pcpu_should_reclaim_chunk(); pcpu_lock held. */
bool pcpu_should_reclaim_chunk(const struct pcpu_chunk *c);
/* pcpu_isolate_chunk - kernel: pcpu_isolate_chunk(); pcpu_lock held. */
void pcpu_isolate_chunk(struct pcpu_chunk *c);
/* pcpu_reintegrate_chunk - kernel: pcpu_reintegrate_chunk(); pcpu_lock held. */
void pcpu_reintegrate_chunk(struct pcpu_chunk *c);

/* ---------------------------------------------------------------------------------------- */
/* Chunks and their pages (page work: pcpu_alloc_mutex held)                                 */
/* ---------------------------------------------------------------------------------------- */

/*
 * pcpu_create_chunk - a new dynamic chunk for set @set, on its free slot (kernel:
 * pcpu_create_chunk()), for objects aligned to @align: coloured up to PCPU_COLOUR_ALIGN
 * (chunk.h), plain above. pcpu_alloc_mutex and pcpu_lock held (timed); pcpu_lock dropped
 * while the chunk is mapped. Return 0 or -ENOMEM.
 */
int pcpu_create_chunk(int set, int align);
/* pcpu_free_chunk_serves - does set @set hold a free chunk for @align? pcpu_lock held. */
bool pcpu_free_chunk_serves(int set, int align);

/*
 * pcpu_add_first_chunk - register the first chunk: @dyn, its dynamic region (populated,
 * maps set up, on set 0's slots from now on), and @rsv, its reserved region (or NULL; never
 * on a slot list). @dyn_start/@dyn_end and @rsv_start/@rsv_end: their unit-0 handle ranges.
 * Return 0 or -ENOMEM (nothing registered).
 */
int pcpu_add_first_chunk(struct pcpu_chunk *dyn, uintptr_t dyn_start, uintptr_t dyn_end,
			 struct pcpu_chunk *rsv, uintptr_t rsv_start, uintptr_t rsv_end);

/*
 * pcpu_destroy_chunk - unlink and unmap @c (kernel: pcpu_destroy_chunk()), a dynamic chunk
 * without live or queued areas. pcpu_balance_mutex, pcpu_alloc_mutex and pcpu_lock held
 * (timed); pcpu_lock dropped around the unmap. Return @c's resident bytes when @count.
 */
size_t pcpu_destroy_chunk(struct pcpu_chunk *c, bool count);

/*
 * pcpu_populate_area - populate every unpopulated page of [off, off + size) of @c (kernel:
 * the populate loop of pcpu_alloc()). pcpu_alloc_mutex held, pcpu_lock NOT held.
 * Return 0 or -ENOMEM.
 */
int pcpu_populate_area(struct pcpu_chunk *c, int off, int size);

/* pcpu_empty_unpop_pages - @c's entirely free pages that are not populated; pcpu_lock. */
int pcpu_empty_unpop_pages(const struct pcpu_chunk *c);

/*
 * pcpu_populate_lowest - populate up to @nr_pages of @c's entirely free unpopulated pages,
 * lowest first (packs toward the chunk start), handing the mutex over between runs.
 * pcpu_alloc_mutex and pcpu_lock held (timed); pcpu_lock dropped around the system calls.
 * Return the pages populated, or -ENOMEM.
 */
int pcpu_populate_lowest(struct pcpu_chunk *c, int nr_pages);

/*
 * pcpu_refill_reserve - bring @c's set's reserve back up to HIGH with @c's lowest free
 * pages, if @c holds reserve pages and is not isolated (the policy, who calls it and when:
 * pcpu_balance_low()). A population failure is left to the balancer. pcpu_alloc_mutex held
 * (timed), pcpu_lock not. Return whether the reserve is at LOW at least.
 */
bool pcpu_refill_reserve(struct pcpu_chunk *c);

/*
 * pcpu_depopulate_empty - give back @c's empty populated pages, last first (kernel: the page
 * loop of pcpu_reclaim_populated()), while @c's set keeps at least @keep pages in its
 * reserve, @c's own counted as if it were not isolated (@keep < 0, or @c not in the
 * reserve: all of them). pcpu_alloc_mutex and pcpu_lock held (timed); pcpu_lock
 * dropped around the system calls, the mutex handed over between runs. *@stopped: stopped
 * for @keep. Return the resident bytes given back when @count, else 0.
 */
size_t pcpu_depopulate_empty(struct pcpu_chunk *c, bool count, int keep, bool *stopped);

/*
 * pcpu_depopulate_all - every empty populated page of every chunk, the first chunk's
 * dynamic region included (pcpu_trim()).
 * pcpu_balance_mutex, pcpu_alloc_mutex and pcpu_lock held (timed). Return the resident
 * bytes given back.
 */
size_t pcpu_depopulate_all(void);

/* ---------------------------------------------------------------------------------------- */
/* Zeroing                                                                                   */
/* ---------------------------------------------------------------------------------------- */

/*
 * Free space in a chunk's map is always zero in every unit (fresh pages are zero,
 * depopulated pages come back zero), so allocation never zeroes. A free does not zero
 * either: pcpu_queue_area() leaves the area allocated in the map, flags its start granule
 * in chunk->queued (a second free of it is still a bad free) and puts the chunk on the
 * zeroing queue. pcpu_zero_drain() (the balancer, a blocking allocator with no clean space
 * left, pcpu_trim()) zeroes queued areas in every unit and only then frees them in the map.
 */

/* pcpu_area_queued - true when the allocation at @off of @c is nobody's: freed and awaiting
 * zeroing, or held by the front caches. */
bool pcpu_front_cached(const struct pcpu_chunk *c, int off);
static inline bool pcpu_area_queued(const struct pcpu_chunk *c, int off)
{
	/* A front-cached object, too, is allocated in the map but nobody's allocation. */
	return (c->queued && bit_test(c->queued, off / PCPU_MIN_ALLOC_SIZE)) ||
	       pcpu_front_cached(c, off);
}

/*
 * pcpu_queue_area - queue the live allocation at @off of @c for zeroing; for the caller
 * and the statistics it is freed now. pcpu_lock held. Return its size; *@kick: the balancer
 * should drain (the queue grew past another page per unit, or every allocation left in a
 * dynamic chunk is queued).
 */
int pcpu_queue_area(struct pcpu_chunk *c, int off, bool *kick);

/*
 * pcpu_zero_drain - zero up to @max_batches batches of queued areas and free them in the
 * map. Takes pcpu_drain_mutex and pcpu_lock itself; the caller may hold pcpu_alloc_mutex
 * and holds neither of the others. *@kick is set when that left balance work (a chunk
 * became free, or qualified for reclaim). Return the areas freed (0: the queue was empty).
 */
long pcpu_zero_drain(long max_batches, bool *kick);

/* pcpu_queued_areas / pcpu_queued_bytes - what the queue holds (bytes per unit); pcpu_lock. */
long pcpu_queued_areas(void);
long pcpu_queued_bytes(void);

/*
 * pcpu_zero_area - zero [off, off + size) of @c in every unit, leaving every copy that
 * already reads zero untouched (a never-written page stays unwritten).
 */
void pcpu_zero_area(struct pcpu_chunk *c, int off, int size);

/* ---------------------------------------------------------------------------------------- */
/* Front caches                                                                              */
/* ---------------------------------------------------------------------------------------- */

/*
 * The front (chunkset_front.c; the per-CPU mechanism is front.h, the lock-free handle map
 * hmap.h): per size class (every multiple of 4 up to 64 bytes, and 128, 256, 512, 1024;
 * plain set only), a "ready" list of objects zero in every unit and a "dirty"
 * list of freed ones, each a per-CPU array plus a depot. An object in either list stays
 * allocated in its chunk's map; its state byte (hmap) says CACHED, a handed-out one LIVE.
 * pcpu_free() of a LIVE object flips it to CACHED with one atomic compare-and-swap and
 * pushes it on the dirty list; the balance work zeroes dirty batches
 * (pcpu_zero_objects()) and moves them to the ready list up to the high mark, the rest (and
 * everything on pcpu_trim(), and objects of chunks isolated for reclaim) back to the map.
 */
#define PCPU_FRONT_NR_CLASSES 20  /* 4, 8, ... 64 bytes, then 128, 256, 512, 1024 */
#define PCPU_FRONT_MAX_SIZE 1024

/* pcpu_front_class_size / _align - bytes and alignment of class @k's objects. */
static inline int pcpu_front_class_size(int k)
{
	return k < 16 ? 4 * (k + 1) : 128 << (k - 16);
}

static inline int pcpu_front_class_align(int k)
{
	int s = pcpu_front_class_size(k);

	/* The default alignment of a request of that size: the smallest of 8 and the power
	 * of two at or above it (4 for 4 bytes); whole powers of two above 64 pack naturally. */
	return s <= 4 ? 4 : s <= 64 ? 8 : s;
}

/*
 * pcpu_front_class - the class serving @size bytes aligned to @align, or -1. Only sizes a
 * class holds exactly (after rounding to the 4-byte granule): the map then records the
 * size asked for, so statistics, leak reports and trace events stay exact.
 */
static inline int pcpu_front_class(size_t size, size_t align)
{
	size_t s = (size + 3) & ~(size_t)3;
	int k;

	if (s <= 64)
		k = (int)(s / 4) - 1;
	else if (s <= PCPU_FRONT_MAX_SIZE && !(s & (s - 1)))
		k = 16 + (int)(8 * sizeof(long)) - 1 - __builtin_clzl(s) - 7;
	else
		return -1;
	return align <= (size_t)pcpu_front_class_align(k) ? k : -1;
}

/* pcpu_front_cache_init - after the CPU layer: set up the caches (or leave them off). */
int pcpu_front_cache_init(void);
/*
 * pcpu_front_cycles_singles - do CPUs reuse the object they freed last rather than cycle
 * batches? So they do in the classes whose freeing thread zeroes the copies (at most 8
 * units: all of the small classes there, the common ones). The handle map's layout of the
 * state bytes follows (hmap.h).
 */
bool pcpu_front_cycles_singles(void);

/*
 * pcpu_front_alloc - a ready object of class @cls for the caller (@call_site, who asked
 * for @size bytes: the statistics' smallest and largest request), from the
 * caches or a batch of the map's populated free space (taken below LOW, the reserve is
 * refilled as pcpu_balance_low() says). NULL when there is neither: the
 * caller allocates one of the class size through the map and hands it to
 * pcpu_front_adopt(). No lock held.
 */
void *pcpu_front_alloc(int cls, size_t size, bool nowait, void *call_site);
/* pcpu_front_adopt - make @h, just allocated from the map with class @cls's size, a front
 * object (freed through the caches). */
void pcpu_front_adopt(void *h, int cls);
/*
 * pcpu_front_free - free @p if it is a live front object (no lock). Return false when it
 * is not (or not provably): the caller takes the locked path, which validates and reports.
 */
bool pcpu_front_free(void *p);
/* pcpu_front_forget - the locked free path frees the object at @off of @c: clear its state. */
void pcpu_front_forget(const struct pcpu_chunk *c, int off);
/* pcpu_front_cached - is the object at @off of @c sitting in a front cache? */
bool pcpu_front_cached(const struct pcpu_chunk *c, int off);

/* pcpu_front_chunk_added / removed - (un)register a chunk's unit-0 range (chunkset.c). */
void pcpu_front_chunk_added(struct pcpu_chunk *c, uintptr_t start, uintptr_t end);
void pcpu_front_chunk_removed(struct pcpu_chunk *c);

/*
 * pcpu_front_balance - the balance work's step for the caches: zero dirty objects, keep
 * ready ones up to the high mark, give the rest back to the map; @trim: all of them, after
 * draining every CPU's arrays; @idle: a timed run with nothing asked for: the arrays come
 * back to the depots and what nobody took since the last run goes back to the map. Holds
 * no lock on entry (takes pcpu_drain_mutex, pcpu_lock). Return true while the caches hold
 * objects (the balancer then runs again after a while, so that they age out).
 */
bool pcpu_front_balance(bool trim, bool idle);

/* pcpu_front_fold_stats - add the per-CPU alloc/free tallies to pcpu_gstats (pcpu_lock). */
void pcpu_front_fold_stats(void);

/*
 * pcpu_zero_objects - zero @n objects of @size bytes at ascending offsets @offs of @c in
 * every unit, leaving copies that read zero (or were never written) untouched. Takes
 * pcpu_drain_mutex. Return the bytes written.
 */
size_t pcpu_zero_objects(struct pcpu_chunk *c, const int *offs, int n, int size);

/*
 * pcpu_front_return_locked - free a cached object (zero in every unit, nobody's allocation:
 * the statistics do not count it) at @off of @c in the map. pcpu_lock held. Return true
 * when that left balance work (as a drained free does: a second free chunk, a chunk to
 * reclaim, which it isolates).
 */
bool pcpu_front_return_locked(struct pcpu_chunk *c, int off);
/*
 * pcpu_front_return_many_locked - the same for the @n objects of @size bytes at the strictly
 * increasing offsets @offs of @c, with one call of pcpu_am_free_many() and one relocation.
 */
bool pcpu_front_return_many_locked(struct pcpu_chunk *c, const int *offs, int n, int size);

/* Front statistics for class @cls: hits, misses, bytes per unit cached (ready + dirty). */
struct pcpu_front_class_stats {
	uint64_t hits, misses, cached_objects, cached_bytes;
};
void pcpu_front_stats(int cls, struct pcpu_front_class_stats *out);

/* pcpu_front_verify - check every cached object (pcpu_lock held). 0, or -1 with @why. */
int pcpu_front_verify(char *why, size_t len);

/* fork: the caches' locks, taken after pcpu_lock (alloc.c's handlers). */
void pcpu_front_cache_atfork_prepare(void);
void pcpu_front_cache_atfork_parent(void);
void pcpu_front_cache_atfork_child(void);

/* ---------------------------------------------------------------------------------------- */
/* Verification and life cycle                                                               */
/* ---------------------------------------------------------------------------------------- */

/*
 * pcpu_chunkset_verify - check every chunk's map, slot and queue, the queue totals and the
 * set counters. pcpu_lock held. Return 0, or -1 with a one-line reason in @why.
 */
int pcpu_chunkset_verify(char *why, size_t len);

#endif /* PCPU_CHUNKSET_H */
