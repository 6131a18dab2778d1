/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * balance - the kernel's pcpu_balance_workfn() run by one background pthread
 * ("pcpu-balance"), or synchronously with balance=off: keep empty populated pages between
 * LOW and HIGH, free fully free chunks beyond one, depopulate chunks queued for reclaim.
 */
#ifndef PCPU_BALANCE_H
#define PCPU_BALANCE_H

#include <stdbool.h>
#include <stddef.h>

/*
 * pcpu_balance_kick - ask for the balance work. Called with pcpu_lock held; never waits.
 * With balance=off the work is recorded and run by pcpu_balance_sync_pending() once the
 * caller has dropped its locks.
 */
void pcpu_balance_kick(void);

/* pcpu_balance_sync_pending - balance=off: run pending work now (no locks held). */
void pcpu_balance_sync_pending(void);

/*
 * pcpu_balance_work - one run of the balance work; takes pcpu_alloc_mutex and pcpu_lock
 * itself. @trim: also depopulate every empty populated page and free every free chunk.
 * Return the bytes given back.
 */
size_t pcpu_balance_work(bool trim);

/* pcpu_should_reclaim_chunk - kernel: pcpu_should_reclaim_chunk(); pcpu_lock held. */
struct pcpu_chunk;
bool pcpu_should_reclaim_chunk(struct pcpu_chunk *c);
/* pcpu_isolate_chunk - kernel: pcpu_isolate_chunk(); pcpu_lock held. */
void pcpu_isolate_chunk(struct pcpu_chunk *c);
void pcpu_reintegrate_chunk(struct pcpu_chunk *c);

/* Life cycle: start the thread lazily, fork handlers, stop at exit/unload. */
void pcpu_balance_init(void);
void pcpu_balance_atfork_prepare(void);
void pcpu_balance_atfork_parent(void);
void pcpu_balance_atfork_child(void);
void pcpu_balance_stop(void);

extern unsigned long pcpu_balance_runs;

#endif /* PCPU_BALANCE_H */
