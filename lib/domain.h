/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * domain - accounting domains, the kernel's memcg accounting of per-CPU memory
 * (pcpu_memcg_pre_alloc_hook / pcpu_memcg_post_alloc_hook / pcpu_memcg_free_hook).
 *
 * A PCPU_ACCOUNT allocation is charged before any allocator lock is taken, to the calling
 * thread's current domain; the allocator then stores the returned owner id in the chunk's
 * per-granule owner slot (chunk->owner[off / 4], the kernel's obj_exts[]) and frees
 * uncharge through it. The id names an owner record (the kernel's obj_cgroup) that points
 * at the domain: destroying a domain repoints its record at the root instead of walking
 * the allocations.
 *
 * Lock order: the domain lock is a leaf. It is never held while taking pcpu_lock or
 * pcpu_alloc_mutex, and the allocator never calls in here with pcpu_lock held.
 */
#ifndef PCPU_DOMAIN_H
#define PCPU_DOMAIN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * pcpu_domain_charge_bytes - what an accounted allocation of @size bytes is charged:
 * S * nr_cpus + (S / 4) * sizeof(owner slot), S = @size rounded up to the 4-byte granule
 * (kernel: pcpu_obj_full_size(), whose owner slot is a pointer; ours is 4 bytes).
 */
size_t pcpu_domain_charge_bytes(size_t size);

/*
 * pcpu_domain_charge - charge an allocation of @size bytes to the calling thread's current
 * domain. Return its owner id (nonzero), or 0 with nothing charged when the domain's limit
 * would be passed. No allocator lock may be held.
 */
uint32_t pcpu_domain_charge(size_t size);

/* pcpu_domain_uncharge - undo pcpu_domain_charge(@size) for owner @id. No allocator lock. */
void pcpu_domain_uncharge(uint32_t id, size_t size);

struct pcpu_emit;
/*
 * pcpu_domain_stats_emit - the "domains" list of the statistics (emit.h): every domain's
 * name, usage, peak, limit, live allocations and refused charges. Takes the domain lock:
 * call it with no lock held.
 */
void pcpu_domain_stats_emit(struct pcpu_emit *e);

#endif /* PCPU_DOMAIN_H */
