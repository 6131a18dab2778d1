/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * balance - the kernel's pcpu_balance_workfn() run by one background pthread
 * ("pcpu-balance"), or synchronously with balance=off: zero the areas waiting in the zeroing
 * queue, keep empty populated pages between LOW and HIGH, free fully free chunks beyond
 * one, depopulate chunks queued for reclaim.
 *
 * Locks: pcpu_balance_mutex serialises runs of the balance work (the thread, pcpu_trim()
 * and balance=off callers), so that a run can let go of pcpu_alloc_mutex between two
 * pieces of page work without a chunk it is working on being destroyed: only the balance
 * work destroys chunks. Lock order: pcpu_balance_mutex before the allocator's locks.
 */
#ifndef PCPU_BALANCE_H
#define PCPU_BALANCE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

extern pthread_mutex_t pcpu_balance_mutex;

/* Blocking allocators waiting for pcpu_alloc_mutex: the balance work yields it to them. */
extern int pcpu_alloc_mutex_waiters;

/*
 * pcpu_balance_kick - ask for the balance work. Call with no allocator lock held. Never
 * waits for the balancer: sets a flag and, only if the thread sleeps, signals it.
 * @nowait: the caller is a PCPU_NOWAIT allocation, which must never do the work itself
 * (with balance=off, or when no thread can be started, the work is then owed to the next
 * blocking caller). Otherwise, with balance=off, the work runs here and now.
 */
void pcpu_balance_kick(bool nowait);

/* pcpu_balance_start - start the thread if it is not running (no lock held; cheap). */
void pcpu_balance_start(void);

/*
 * pcpu_balance_work - one run of the balance work; takes its locks itself.
 * @trim: also depopulate every empty populated page and free every free chunk.
 * Return the bytes given back (resident bytes, counted with mincore(), when trimming).
 */
size_t pcpu_balance_work(bool trim);

/*
 * pcpu_zero_drain - zero up to @max_batches batches of queued areas (see alloc.h) and free
 * them in the map. Takes pcpu_drain_mutex and pcpu_lock itself; the caller may hold
 * pcpu_alloc_mutex. *@kick is set when that left balance work (a chunk became free, or
 * qualified for reclaim). Return the areas freed (0: the queue was empty).
 */
long pcpu_zero_drain(long max_batches, bool *kick);

/* pcpu_should_reclaim_chunk - kernel: pcpu_should_reclaim_chunk(); pcpu_lock held. */
struct pcpu_chunk;
bool pcpu_should_reclaim_chunk(struct pcpu_chunk *c);
/* pcpu_isolate_chunk - kernel: pcpu_isolate_chunk(); pcpu_lock held. */
void pcpu_isolate_chunk(struct pcpu_chunk *c);
/* pcpu_reintegrate_chunk - kernel: pcpu_reintegrate_chunk(); pcpu_lock held. */
void pcpu_reintegrate_chunk(struct pcpu_chunk *c);

/* Life cycle: stop at exit/unload, fork handlers (called from alloc.c's, in lock order). */
void pcpu_balance_init(void);
void pcpu_balance_atfork_prepare(void);
void pcpu_balance_atfork_parent(void);
void pcpu_balance_atfork_child(void);
void pcpu_balance_stop(void);

/*
 * Lock hold times of the balance work (every run, thread or synchronous), for tests and
 * tools: [0] pcpu_lock, [1] pcpu_alloc_mutex, [2] pcpu_drain_mutex. Nanoseconds.
 */
struct pcpu_hold_stat {
	uint64_t count, total_ns, max_ns;
};
void pcpu_balance_hold_stats(struct pcpu_hold_stat out[3]);

/* Thread state for tests: true while the balancer thread exists. */
bool pcpu_balance_thread_running(void);

extern unsigned long pcpu_balance_runs;
extern uint64_t pcpu_balance_retries;  /* runs started by the backoff timer */
extern uint64_t pcpu_zeroed_bytes;     /* bytes the drain actually wrote (nonzero copies) */

#endif /* PCPU_BALANCE_H */
