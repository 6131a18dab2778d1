/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * trace - USDT probes with the names and fields of the kernel's percpu trace events
 * (include/trace/events/percpu.h), provider "libpcpu". Each costs one nop when not traced.
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
#include <sys/sdt.h>
#define pcpu_trace_alloc(cs, rsv, atomic, size, align, base, off, ptr, bytes, flags)          \
	STAP_PROBE10(libpcpu, percpu_alloc_percpu, cs, rsv, atomic, size, align, base, off,   \
		     ptr, bytes, flags)
#define pcpu_trace_free(base, off, ptr) STAP_PROBE3(libpcpu, percpu_free_percpu, base, off, ptr)
#define pcpu_trace_alloc_fail(rsv, atomic, size, align)                                       \
	STAP_PROBE4(libpcpu, percpu_alloc_percpu_fail, rsv, atomic, size, align)
#define pcpu_trace_create_chunk(base) STAP_PROBE1(libpcpu, percpu_create_chunk, base)
#define pcpu_trace_destroy_chunk(base) STAP_PROBE1(libpcpu, percpu_destroy_chunk, base)
#else
#define pcpu_trace_alloc(...) ((void)0)
#define pcpu_trace_free(...) ((void)0)
#define pcpu_trace_alloc_fail(...) ((void)0)
#define pcpu_trace_create_chunk(...) ((void)0)
#define pcpu_trace_destroy_chunk(...) ((void)0)
#endif

#endif /* PCPU_TRACE_H */
