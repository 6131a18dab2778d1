/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * trace - USDT probes with the names and fields of the kernel's percpu trace events
 * (include/trace/events/percpu.h), provider "libpcpu". Each costs one nop when not traced
 * (its arguments are computed into registers or stack slots for the note to name).
 * bpftrace before 0.24 reads only arg0-arg5 of a USDT probe on x86-64; perf, SystemTap and
 * newer bpftrace read all ten of percpu_alloc_percpu.
 *   percpu_alloc_percpu(call_site, reserved, is_atomic, size, align, base_addr, off, ptr,
 *                       bytes_alloc, gfp_flags)
 *   percpu_free_percpu(base_addr, off, ptr)
 *   percpu_alloc_percpu_fail(reserved, is_atomic, size, align)
 *   percpu_create_chunk(base_addr)
 *   percpu_destroy_chunk(base_addr)
 */
#ifndef PCPU_TRACE_H
#define PCPU_TRACE_H

#include "pcpu_config.h"

#if PCPU_HAVE_SDT
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
/*
 * Every argument in a register or an immediate: the default also allows memory operands,
 * which may name a global symbol (e.g. 8@pcpu_first+16(%rip)) that bcc-based tracers
 * cannot read.
 */
#ifndef STAP_SDT_ARG_CONSTRAINT
#define STAP_SDT_ARG_CONSTRAINT nr
#endif
#include <sys/sdt.h>
/*
 * Arguments are cast to the kernel fields' types (unsigned long call_site, bool reserved
 * and is_atomic, size_t size, align and bytes_alloc, int off, pointers, unsigned long
 * gfp_flags, where libpcpu passes its PCPU_* flags), so every call site gives the same
 * widths and a tracer reads them as it reads the kernel's events. size is the request
 * rounded up to the 4-byte granule and align raised to 4, as in the kernel; the fail
 * event is also emitted for EINVAL (the kernel only warns), with the request as given.
 */
#define pcpu_trace_alloc(cs, rsv, atomic, size, align, base, off, ptr, bytes, flags)          \
	STAP_PROBE10(libpcpu, percpu_alloc_percpu, (unsigned long)(uintptr_t)(cs),           \
		     (bool)(rsv), (bool)(atomic), (size_t)(size), (size_t)(align),           \
		     (uintptr_t)(base), (int)(off), (uintptr_t)(ptr), (size_t)(bytes),       \
		     (unsigned long)(flags))
#define pcpu_trace_free(base, off, ptr)                                                       \
	STAP_PROBE3(libpcpu, percpu_free_percpu, (uintptr_t)(base), (int)(off), (uintptr_t)(ptr))
#define pcpu_trace_alloc_fail(rsv, atomic, size, align)                                       \
	STAP_PROBE4(libpcpu, percpu_alloc_percpu_fail, (bool)(rsv), (bool)(atomic),           \
		    (size_t)(size), (size_t)(align))
#define pcpu_trace_create_chunk(base)                                                         \
	STAP_PROBE1(libpcpu, percpu_create_chunk, (uintptr_t)(base))
#define pcpu_trace_destroy_chunk(base)                                                        \
	STAP_PROBE1(libpcpu, percpu_destroy_chunk, (uintptr_t)(base))
#else
/*
 * Without USDT the arguments are still consumed, so a variable kept only for a probe
 * (pcpu_free()'s copy of the chunk base) is not reported as set but unused.
 */
static inline void pcpu_trace_none(int unused, ...)
{
	(void)unused;
}
#define pcpu_trace_alloc(...) pcpu_trace_none(0, __VA_ARGS__)
#define pcpu_trace_free(...) pcpu_trace_none(0, __VA_ARGS__)
#define pcpu_trace_alloc_fail(...) pcpu_trace_none(0, __VA_ARGS__)
#define pcpu_trace_create_chunk(...) pcpu_trace_none(0, __VA_ARGS__)
#define pcpu_trace_destroy_chunk(...) pcpu_trace_none(0, __VA_ARGS__)
#endif

#endif /* PCPU_TRACE_H */
