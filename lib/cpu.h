/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * cpu - how the CPU number is read: glibc's rseq area, libpcpu's own per-thread rseq
 * registration, or getcpu; the out-of-line slow paths of the this-CPU operations.
 * The inline fast paths live in include/pcpu/this_cpu.h and include/pcpu/arch/.
 */
#ifndef PCPU_CPU_H
#define PCPU_CPU_H

#include <pcpu.h>

#include "config.h"
#include "topology.h"

/*
 * The translation table pcpu__hot.offset points to (defined in cpu.c, filled by alloc.c):
 * plain chunks' entries, then coloured chunks' (PCPU__TAB() in <pcpu.h>).
 */
extern __attribute__((visibility("hidden"))) uintptr_t pcpu__offset[2 * PCPU_MAX_CPUS];

/*
 * pcpu_cpu_init - choose the CPU mode and index mode (settings, environment, what the
 * kernel and glibc offer) once pcpu__offset[] is filled for every CPU id the kernel may
 * report. Called once, under the library's init. Return 0 (it always finds a working mode).
 */
int pcpu_cpu_init(const struct pcpu_settings *s, const struct pcpu_topology *t);

/* Mode and index mode in force, and why cid fell back to cpu (NULL if it did not). */
enum pcpu_cpu_mode pcpu_cpu_mode_now(void);
enum pcpu_index_mode pcpu_cpu_index_now(void);
const char *pcpu_cpu_fallback_reason(void);

/* pcpu_cpu_current - the copy index this thread should use now (slow, always correct). */
unsigned pcpu_cpu_current(void);

/* Called in the child after fork(). */
void pcpu_cpu_atfork_child(void);

/*
 * pcpu_cpu_fini - the library is being unloaded (dlclose): forget the calling thread's
 * rseq state (see cpu.c). Other threads' cannot be reached: README's Limits.
 */
void pcpu_cpu_fini(void);

#endif /* PCPU_CPU_H */
