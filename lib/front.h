/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * front - per-CPU caches of objects (tcmalloc's per-CPU caches, the kernel slab's per-CPU
 * sheaves): the mechanism only. A front holds @nr_lists lists of opaque nonzero 8-byte
 * values (the allocator keeps handles in them: one "ready" and one "dirty" list per size
 * class). Each list has, per CPU index (the index the this-CPU operations use: the rseq
 * cpu_id, or mm_cid with index=cid), a small array with a count, and one shared depot.
 *
 * Fast path: pcpu_front_pop()/pcpu_front_push() are restartable sequences on the calling
 * thread's CPU block (x86-64 assembly in front.c): load the count, bail out if the block is
 * locked or the array empty/full, load/store the slot, commit by storing the count. No lock,
 * no atomic instruction. Slow path (the array empty or full, the block locked for a drain,
 * no rseq in this thread, getcpu mode, another architecture): the depot, under its mutex,
 * exchanging half an array at a time.
 *
 * Draining (pcpu_front_drain()): the drainer sets the lock word of every block in use, then
 * issues membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ): afterwards no sequence that
 * read the lock word as clear is still running (each either committed or was aborted and
 * restarts, then reads the lock set), so the drainer owns every array until it clears the
 * word again. When the process cannot register for that membarrier command the per-CPU
 * arrays are never used: everything goes through the depots.
 *
 * A block costs memory only once a thread has used it, and only for the lists it used:
 * blocks sit in a MAP_NORESERVE mapping indexed by CPU index, their arrays start with
 * capacity 0 (a fresh zero page), so the first push or pop of a list on a CPU takes the
 * slow path, which enables the list (writes its capacity) and the first time the block
 * (records it in the in-use list). Drains and counts walk that list only: their cost follows the
 * CPUs the process ran on, not the possible CPUs.
 *
 * Locks: one mutex per front (f->lock) for the depots, the in-use list and drains. It is a
 * leaf with respect to the allocator's locks: callers may hold pcpu_lock when they call in
 * (nothing here calls back out).
 */
#ifndef PCPU_FRONT_H
#define PCPU_FRONT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PCPU_FRONT_MAX_LISTS 64
#define PCPU_FRONT_NR_TALLIES 2 /* per-CPU event counters of the caller's */
#define PCPU_FRONT_DEPOT_CAP 32768 /* objects a depot holds at most */

struct pcpu_front_depot {
	uintptr_t *objs;          /* a stack of at most cap objects */
	size_t nr, cap;
	uint64_t misses;          /* pops that found the CPU array empty (under f->lock) */
	uint64_t overflows;       /* pushes that found the CPU array full */
	size_t low;               /* fewest objects held since pcpu_front_age() */
};

struct pcpu_front {
	char *blocks;             /* nr_blocks blocks of block_size bytes */
	size_t block_size;
	unsigned nr_blocks;
	uint64_t nr_blocks64, block_size64; /* the same, as the batch sequences read them */
	unsigned nr_lists;
	bool percpu;              /* per-CPU arrays in use (x86-64, rseq, membarrier) */
	uint32_t list_off[PCPU_FRONT_MAX_LISTS]; /* byte offset of each list in a block */
	uint32_t list_cap[PCPU_FRONT_MAX_LISTS]; /* capacity of each CPU array */
	pthread_mutex_t lock;
	void *depot_mem;          /* every depot's array */
	struct pcpu_front_depot depot[PCPU_FRONT_MAX_LISTS];
	unsigned *in_use;         /* CPU indexes whose block was enabled, in order */
	unsigned nr_in_use;
	uint64_t tally_slow[PCPU_FRONT_NR_TALLIES]; /* tallies of threads without a block */
};

/*
 * pcpu_front_init - set up @f with @nr_lists lists (at most PCPU_FRONT_MAX_LISTS), list l
 * keeping at most @cap[l] objects per CPU, for CPU indexes 0 .. @nr_cpus - 1.
 * @percpu false: depots only. Return 0, -EINVAL or -ENOMEM (nothing allocated then).
 */
int pcpu_front_init(struct pcpu_front *f, unsigned nr_lists, const unsigned *cap,
		    unsigned nr_cpus, bool percpu);
/*
 * pcpu_front_limit_depots - hold at most @cap objects (<= PCPU_FRONT_DEPOT_CAP) in each of
 * @f's depots from now on; for tests that fill one. Before any object is in @f.
 */
void pcpu_front_limit_depots(struct pcpu_front *f, size_t cap);
/* pcpu_front_destroy - free @f's memory (objects still in it are forgotten). */
void pcpu_front_destroy(struct pcpu_front *f);

/*
 * pcpu_front_percpu_possible - may fronts use per-CPU arrays in this process (rseq mode,
 * an architecture with the sequences, membarrier RSEQ registered)? Registers the process
 * for membarrier on the first call.
 */
bool pcpu_front_percpu_possible(void);

/*
 * pcpu_front_pop - take an object of list @l: this CPU's array first, then the depot
 * (refilling the array with up to half its capacity). Return it, or 0 when both are empty.
 * MT-safe.
 */
uintptr_t pcpu_front_pop(struct pcpu_front *f, unsigned l);

/*
 * pcpu_front_push - put @obj (nonzero) on list @l: this CPU's array, else the depot (half
 * the array moves there first). Return 0 (stored in the array), 1 (the depot took objects),
 * or -ENOMEM when the depot is full (the object was not stored: the caller keeps it).
 * MT-safe.
 */
int pcpu_front_push(struct pcpu_front *f, unsigned l, uintptr_t obj);

/*
 * pcpu_front_pop_many - take up to @max objects of list @l into @out: this CPU's array in
 * one sequence, then the depot. Return how many. MT-safe.
 * pcpu_front_push_many - put the @n objects of @objs on list @l: this CPU's array in one
 * sequence, the overflow through the depot. Return how many were stored (fewer than @n
 * only when the depot is full: the caller keeps objs[return ...]). MT-safe.
 */
size_t pcpu_front_pop_many(struct pcpu_front *f, unsigned l, uintptr_t *out, size_t max);
size_t pcpu_front_push_many(struct pcpu_front *f, unsigned l, const uintptr_t *objs, size_t n);

/*
 * pcpu_front_tally - add 1 to the calling CPU's counter @c (< PCPU_FRONT_NR_TALLIES): a
 * restartable add, or a shared atomic where the thread has no block. pcpu_front_tally_sum
 * - their total.
 */
void pcpu_front_tally(struct pcpu_front *f, unsigned c);
uint64_t pcpu_front_tally_sum(struct pcpu_front *f, unsigned c);

/*
 * Ageing: pcpu_front_pop_cold() takes up to @max of the objects of @l's depot that nobody
 * took since the last pcpu_front_age() (the depot's low-water mark), oldest first.
 */
size_t pcpu_front_pop_cold(struct pcpu_front *f, unsigned l, uintptr_t *out, size_t max);
void pcpu_front_age(struct pcpu_front *f);

/* pcpu_front_depot_nr - objects in @l's depot now (takes f->lock). */
size_t pcpu_front_depot_nr(struct pcpu_front *f, unsigned l);
/* pcpu_front_pop_depot - take up to @max objects of list @l from the depot only. */
size_t pcpu_front_pop_depot(struct pcpu_front *f, unsigned l, uintptr_t *out, size_t max);
/* pcpu_front_push_depot - add @n objects to @l's depot. Return 0 or -ENOMEM (none added). */
int pcpu_front_push_depot(struct pcpu_front *f, unsigned l, const uintptr_t *objs, size_t n);

/*
 * pcpu_front_drain - move every object of the lists in @mask (bit l: list l) from every
 * CPU array into the depots. Takes f->lock. Return the objects moved.
 */
size_t pcpu_front_drain(struct pcpu_front *f, uint64_t mask);

/*
 * pcpu_front_count - objects on list @l, in the depot and in the CPU arrays (the arrays
 * read without stopping their CPUs: exact only when nobody pushes or pops meanwhile).
 */
size_t pcpu_front_count(struct pcpu_front *f, unsigned l);
/* pcpu_front_hits - pops of list @l served by a CPU array (per-CPU counters, summed). */
uint64_t pcpu_front_hits(struct pcpu_front *f, unsigned l);

/*
 * pcpu_front_for_each - call @fn for every object of the lists in @mask, with f->lock held
 * throughout and the CPU arrays drained into the depots first: one consistent pass (objects
 * that enter the arrays meanwhile are not visited); then @done (if not NULL), still under
 * f->lock, while the depots cannot change. Return the first nonzero value @fn returns, or 0.
 */
int pcpu_front_for_each(struct pcpu_front *f, uint64_t mask,
			int (*fn)(unsigned l, uintptr_t obj, void *arg), void (*done)(void *arg),
			void *arg);

/* fork(): the handlers take f->lock around the fork (after the allocator's locks). */
void pcpu_front_atfork_prepare(struct pcpu_front *f);
void pcpu_front_atfork_parent(struct pcpu_front *f);
void pcpu_front_atfork_child(struct pcpu_front *f);

#endif /* PCPU_FRONT_H */
