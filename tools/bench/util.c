/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * util.c - timing, reporting, CPU affinity, resident memory and the peer allocators of
 * pcpu-bench.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <jemalloc/jemalloc.h>
#include <pcpu.h>

#include "bench.h"

/*
 * glibc's allocator under its internal names: linking jemalloc makes malloc() and free()
 * jemalloc's, so the glibc peer calls these to stay glibc.
 */
extern void *__libc_memalign(size_t align, size_t size);
extern void __libc_free(void *p);

/* The write end of the pipe to the parent (set by main); -1: stdout. */
int bench_pipe = -1;

struct bench_opts bopt = {
	.reps = 5,
	.target = 0.03,
};

const char *const peer_name[NR_PEERS] = {
	[PEER_PCPU] = "libpcpu",
	[PEER_JEMALLOC] = "padded/jemalloc",
	[PEER_GLIBC] = "padded/glibc",
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

double median(double *v, int n)
{
	if (n <= 0)
		return 0;
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	if (n & 1)
		return v[n / 2];
	return (v[n / 2 - 1] + v[n / 2]) / 2;
}

uint64_t proc_cpu_ns(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru))
		return 0;
	return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * 1000000000u +
	       ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000u;
}

void reps_add(struct reps *r, const struct stopwatch *w, double ops)
{
	uint64_t wall = now_ns(), cpu = proc_cpu_ns();

	if (r->n >= MAX_REPS)
		return;
	r->v[r->n] = (double)(wall - w->wall) / ops;
	r->cpu[r->n] = (double)(cpu - w->cpu) / ops;
	r->has_cpu = true;
	r->n++;
}

/* Write one whole line to the parent; a line below PIPE_BUF is written atomically. */
static void emit(const char *line)
{
	int fd = bench_pipe >= 0 ? bench_pipe : STDOUT_FILENO;
	size_t len = strlen(line), off = 0;

	while (off < len) {
		ssize_t n = write(fd, line + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		off += (size_t)n;
	}
}

/* Tabs and newlines separate fields and lines in the protocol: replace them. */
static void sanitize(char *s)
{
	for (; *s; s++)
		if (*s == '\t' || *s == '\n')
			*s = ' ';
}

/*
 * The row line: R, group, bench, params, impl, unit, baseline, then the repetition count
 * and min, median, max of the caller's value, then min, median, max of the process CPU ns
 * per op ("-" where not measured).
 */
static void emit_row(const char *group, const char *bench, const char *params, const char *impl,
		     const char *unit, bool baseline, const double *v, const double *cpu, int n)
{
	double a[MAX_REPS], c[3] = {0, 0, 0}, m[3];
	char line[640], cbuf[96] = "-\t-\t-";

	if (n > MAX_REPS)
		n = MAX_REPS;
	if (n < 1)
		return;
	memcpy(a, v, sizeof(*v) * (size_t)n);
	m[1] = median(a, n); /* sorts a */
	m[0] = a[0];
	m[2] = a[n - 1];
	if (cpu) {
		memcpy(a, cpu, sizeof(*cpu) * (size_t)n);
		c[1] = median(a, n);
		c[0] = a[0];
		c[2] = a[n - 1];
		snprintf(cbuf, sizeof(cbuf), "%.6g\t%.6g\t%.6g", c[0], c[1], c[2]);
	}
	snprintf(line, sizeof(line), "R\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%.6g\t%.6g\t%.6g\t%s\n",
		 group, bench, params, impl, unit, baseline, n, m[0], m[1], m[2], cbuf);
	emit(line);
}

void report(const char *group, const char *bench, const char *params, const char *impl,
	    double value, const char *unit, bool baseline)
{
	emit_row(group, bench, params, impl, unit, baseline, &value, NULL, 1);
}

void report_reps(const char *group, const char *bench, const char *params, const char *impl,
		 const double *runs, int n, const char *unit, bool baseline)
{
	emit_row(group, bench, params, impl, unit, baseline, runs, NULL, n);
}

void report_cpu(const char *group, const char *bench, const char *params, const char *impl,
		const struct reps *r, const char *unit, bool baseline)
{
	emit_row(group, bench, params, impl, unit, baseline, r->v, r->has_cpu ? r->cpu : NULL,
		 r->n);
}

static void emit_text(char kind, const char *fmt, va_list ap)
{
	char text[400], line[420];

	vsnprintf(text, sizeof(text), fmt, ap);
	sanitize(text);
	snprintf(line, sizeof(line), "%c\t%s\n", kind, text);
	emit(line);
}

void note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit_text('N', fmt, ap);
	va_end(ap);
}

void progress(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit_text('P', fmt, ap);
	va_end(ap);
}

void die(const char *fmt, ...)
{
	va_list ap;

	fputs("pcpu-bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

int allowed_cpus(int *list, int max)
{
	cpu_set_t set;
	int cpu, n = 0;

	if (sched_getaffinity(0, sizeof(set), &set))
		return 1;
	for (cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		if (!CPU_ISSET(cpu, &set))
			continue;
		if (list && n < max)
			list[n] = cpu;
		n++;
	}
	return n ? n : 1;
}

void pin_self(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

/*
 * The process's resident memory, proportional (Pss from /proc/self/smaps_rollup): a page
 * shared by several mappings counts once, as the memory it is. Reading a never-written
 * copy maps a shared page (the kernel's zero page, or on kernels without one libpcpu's
 * memfd page and librseq's COW-zero init page): RSS would count that page once per
 * mapping, Pss once. Falls back to the RSS of /proc/self/statm before Linux 4.14.
 */
uint64_t pss_bytes(void)
{
	char buf[256];
	unsigned long size = 0, resident = 0, kb;
	FILE *f = fopen("/proc/self/smaps_rollup", "re");
	int fd;
	ssize_t n;

	if (f) {
		while (fgets(buf, sizeof(buf), f)) {
			if (sscanf(buf, "Pss: %lu kB", &kb) == 1) {
				fclose(f);
				return (uint64_t)kb * 1024;
			}
		}
		fclose(f);
	}
	fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	if (sscanf(buf, "%lu %lu", &size, &resident) != 2)
		return 0;
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

void *big_alloc(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		die("mmap of %zu bytes: %s", bytes, strerror(errno));
	/* Fault it in now so it does not show up in a later difference of resident memory. */
	memset(p, 0, bytes);
	return p;
}

void big_free(void *p, size_t bytes)
{
	munmap(p, bytes);
}

void *peer_alloc(enum peer p, size_t size, unsigned ncpus)
{
	size_t bytes = padded_slot(size) * ncpus;
	void *obj;

	switch (p) {
	case PEER_PCPU:
		return pcpu_alloc(size, 0, 0);
	case PEER_JEMALLOC:
		return mallocx(bytes, MALLOCX_ALIGN(CACHE_LINE) | MALLOCX_ZERO);
	case PEER_GLIBC:
		obj = __libc_memalign(CACHE_LINE, bytes);
		if (obj)
			memset(obj, 0, bytes);
		return obj;
	default:
		return NULL;
	}
}

void peer_free(enum peer p, void *obj, size_t size, unsigned ncpus)
{
	(void)size;
	(void)ncpus;
	switch (p) {
	case PEER_PCPU:
		pcpu_free(obj);
		break;
	case PEER_JEMALLOC:
		dallocx(obj, MALLOCX_ALIGN(CACHE_LINE));
		break;
	case PEER_GLIBC:
		__libc_free(obj);
		break;
	default:
		break;
	}
}

void *peer_copy(enum peer p, void *obj, size_t size, unsigned cpu)
{
	if (p == PEER_PCPU)
		return pcpu_ptr(obj, cpu);
	return (char *)obj + padded_slot(size) * cpu;
}

void peer_trim(enum peer p)
{
	switch (p) {
	case PEER_PCPU:
		pcpu_trim();
		break;
	case PEER_JEMALLOC:
		/* Purge every arena: unused dirty pages go back to the system. */
		mallctl("arena.4096.purge", NULL, NULL, NULL, 0);
		break;
	case PEER_GLIBC:
		malloc_trim(0);
		break;
	default:
		break;
	}
}
