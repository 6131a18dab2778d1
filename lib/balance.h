/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * balance - the balance policy (kernel: pcpu_balance_workfn()) and the background pthread
 * ("pcpu-balance") that runs it, or the synchronous run with balance=off: drain the zeroing
 * queue, keep empty populated pages between LOW and HIGH, free fully free chunks beyond
 * one, depopulate chunks queued for reclaim. It acts on chunks only through chunkset.h;
 * its runs are serialised by pcpu_balance_mutex (see chunkset.h for every lock).
 */
#ifndef PCPU_BALANCE_H
#define PCPU_BALANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pcpu_chunk;

/*
 * pcpu_balance_kick - ask for the balance work. Call with no allocator lock held. Never
 * waits for the balancer: sets a flag and, only if the thread sleeps, signals it.
 * @nowait: the caller is a PCPU_NOWAIT allocation, which must never do the work itself
 * (with balance=off, or when no thread can be started, the work is then owed to the next
 * blocking caller). Otherwise, with balance=off, the work runs here and now.
 */
void pcpu_balance_kick(bool nowait);

/*
 * pcpu_balance_nowait_failed - a PCPU_NOWAIT allocation found no populated space: the
 * next run populates HIGH pages whatever the count says (kernel: pcpu_atomic_alloc_failed).
 * Kicks as a PCPU_NOWAIT caller. No allocator lock held.
 */
void pcpu_balance_nowait_failed(void);

/*
 * pcpu_balance_low - an allocation from @c left fewer than LOW empty populated pages (kernel:
 * the check at the end of pcpu_alloc()): populate up to HIGH again, also after a
 * pcpu_trim(). A caller that may block (!@nowait) does it itself, with @c's lowest free
 * pages (pcpu_refill_reserve()), rather than wake the balancer to do it beside it: in a
 * flood of allocations the two would contend for the locks every few pages. It does not
 * wait for pcpu_alloc_mutex to do so: when someone holds it, or @c is NULL, or the refill
 * leaves the reserve below LOW, the balancer is kicked (as pcpu_balance_kick(@nowait)).
 * No allocator lock held.
 */
void pcpu_balance_low(struct pcpu_chunk *c, bool nowait);

/* pcpu_balance_start - start the thread if it is not running (no lock held; cheap). */
void pcpu_balance_start(void);

/*
 * pcpu_balance_work - one run of the balance work; takes its locks itself.
 * @trim: drain the whole zeroing queue first, then give back every free chunk and every
 * empty populated page (the first chunk's included), and keep no pages in reserve until an
 * allocation runs low (pcpu_balance_low()). Return the bytes given back (resident
 * bytes, when trimming).
 */
size_t pcpu_balance_work(bool trim);

/* Life cycle: stop at exit/unload, fork handlers (called from alloc.c's, in lock order). */
void pcpu_balance_init(void);
void pcpu_balance_atfork_prepare(void);
void pcpu_balance_atfork_parent(void);
void pcpu_balance_atfork_child(void);
void pcpu_balance_stop(void);

/* Thread state for tests: true while the balancer thread exists. */
bool pcpu_balance_thread_running(void);

extern unsigned long pcpu_balance_runs;
extern uint64_t pcpu_balance_retries;  /* runs started by the backoff timer */

#endif /* PCPU_BALANCE_H */
