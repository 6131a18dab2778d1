/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * bench.h - shared pieces of pcpu-bench: options, timing, result reporting and the peer
 * allocators every group compares libpcpu against.
 *
 * Every measurement runs in a child process (the bench re-executes itself with a hidden
 * --child option), so each one starts from a fresh heap, a fresh libpcpu and the PCPU_CONF
 * and CPU affinity it needs; the child sends its results to the parent through a pipe as
 * tab-separated lines.
 */
#ifndef PCPU_BENCH_H
#define PCPU_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Most repetitions of one figure. */
#define MAX_REPS 64

struct bench_opts {
	bool full;      /* --full: long suite */
	int reps;       /* runs per measurement; min, median and max are reported */
	double target;  /* seconds one timed run should last */
	const char *params; /* child: job parameters (e.g. "confined") */
};

extern struct bench_opts bopt;
/* Child: the write end of the pipe to the parent; -1 writes the rows to stdout. */
extern int bench_pipe;

/* now_ns - CLOCK_MONOTONIC in nanoseconds. */
static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Keep the compiler from deleting or merging a computation whose result is @v. */
#define bench_keep(v) __asm__ volatile("" : : "r"(v) : "memory")
/* Compiler barrier: memory is read and written again after it. */
#define bench_barrier() __asm__ volatile("" : : : "memory")

double median(double *v, int n);

/*
 * proc_cpu_ns - CPU time of the whole process so far, every thread (the library's balancer
 * included), user + system, from getrusage(RUSAGE_SELF).
 */
uint64_t proc_cpu_ns(void);

/*
 * struct reps - the repetitions of one figure: the caller's value per operation and, where
 * measured, the whole process's CPU ns per operation.
 */
struct reps {
	double v[MAX_REPS];
	double cpu[MAX_REPS];
	int n;
	bool has_cpu;
};

/* A timed stretch: wall clock and process CPU time at its start. */
struct stopwatch {
	uint64_t wall, cpu;
};

static inline void stopwatch_start(struct stopwatch *w)
{
	w->cpu = proc_cpu_ns();
	w->wall = now_ns();
}

/* reps_add - one repetition of @ops operations timed by @w: wall and CPU ns per op. */
void reps_add(struct reps *r, const struct stopwatch *w, double ops);

/*
 * report - one result row (in a child, written to the parent's pipe).
 * @group, @bench: what is measured; @params: the x value (threads, size, CPUs);
 * @impl: who is measured; @baseline: this row is the "libpcpu" the ratios divide by.
 * Strings must not contain tabs or newlines.
 */
void report(const char *group, const char *bench, const char *params, const char *impl,
	    double value, const char *unit, bool baseline);
/*
 * report_reps - one result row from the @n repetitions in @runs (caller's value per op):
 * min, median and max go to the parent.
 */
void report_reps(const char *group, const char *bench, const char *params, const char *impl,
		 const double *runs, int n, const char *unit, bool baseline);
/* report_cpu - the same from @r, with the process CPU ns per op where @r has them. */
void report_cpu(const char *group, const char *bench, const char *params, const char *impl,
		const struct reps *r, const char *unit, bool baseline);
/* note - a free-text remark shown under the table. */
void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* progress - what the child is doing now, for the parent's progress line. */
void progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* die - print to stderr and exit(2). */
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Number of CPUs this process may run on, and the i-th of them. */
int allowed_cpus(int *list, int max);
/* pin_self - bind the calling thread to CPU @cpu. */
void pin_self(int cpu);

/* rss_bytes - resident set size of the process now. */
uint64_t pss_bytes(void);
/* big_alloc - zeroed bookkeeping memory straight from mmap, outside every measured heap. */
void *big_alloc(size_t bytes);
void big_free(void *p, size_t bytes);

/* ---- peers: per-CPU data laid out by hand, one cache-line padded slot per CPU ---- */

#define CACHE_LINE 64

enum peer {
	PEER_PCPU,     /* libpcpu: pcpu_alloc / pcpu_free */
	PEER_JEMALLOC, /* padded array from jemalloc: mallocx(MALLOCX_ALIGN(64)|MALLOCX_ZERO) */
	PEER_GLIBC,    /* padded array from glibc: __libc_memalign + memset */
	NR_PEERS,
};

extern const char *const peer_name[NR_PEERS];

/* Bytes of one CPU's slot in a padded array holding an object of @size bytes. */
static inline size_t padded_slot(size_t size)
{
	return (size + CACHE_LINE - 1) & ~(size_t)(CACHE_LINE - 1);
}

/* peer_alloc - one zeroed @size-byte object per CPU of @ncpus; NULL on failure. */
void *peer_alloc(enum peer p, size_t size, unsigned ncpus);
void peer_free(enum peer p, void *obj, size_t size, unsigned ncpus);
/* peer_copy - CPU @cpu's copy of @obj. */
void *peer_copy(enum peer p, void *obj, size_t size, unsigned cpu);
/* peer_trim - give free memory back (pcpu_trim, malloc_trim, jemalloc purge). */
void peer_trim(enum peer p);

/*
 * ---- librseq (tools/bench/lrseq.c), built when meson finds it: PCPU_BENCH_LIBRSEQ ----
 * Counters from a librseq per-CPU mempool, COW-zero populate policy, max_nr_cpus = the
 * topology's CPU count; updated with rseq_load_add_store__ptr(RSEQ_PERCPU_CPU_ID).
 */
#define LIBRSEQ_NAME "librseq"
#define LIBRSEQ_ABSENT "librseq: not installed (pkg-config librseq not found), column skipped"

struct lrseq_pool;

struct lrseq_pool *lrseq_pool_open(unsigned ncpus);
void lrseq_pool_close(struct lrseq_pool *pool);
uint64_t *lrseq_alloc(struct lrseq_pool *pool, bool zero);
void lrseq_free(uint64_t *ctr);
/*
 * Objects of any size for the alloc group: a COW-zero pool of @item_len-byte items for
 * @ncpus CPUs with a per-CPU stride of @stride bytes (0: librseq's default).
 */
struct lrseq_pool *lrseq_pool_open_items(unsigned ncpus, size_t item_len, size_t stride);
void *lrseq_obj_alloc(struct lrseq_pool *pool, bool zero);
void lrseq_obj_free(void *obj, size_t stride);
uint64_t *lrseq_copy(uint64_t *ctr, unsigned cpu);
int lrseq_thread_init(void);
void lrseq_add_loop(uint64_t *ctr, long n);
uint64_t lrseq_sum(uint64_t *ctr, unsigned ncpus);
unsigned lrseq_possible_cpus(void);
/* Bytes between two CPUs' copies of one counter (librseq's default pool stride). */
extern const size_t lrseq_stride;

/*
 * The alloc group's 8-byte pair at every topology: the parent adds, per implementation, the
 * ratio of each fake topology's figure to the real CPUs' one (the row whose params end in
 * REAL_CPUS).
 */
#define FLAT_BENCH "alloc+free 8 B pair"
#define REAL_CPUS " (real)"

/* The groups: each runs in its own child process. */
void group_hot(void);
void group_alloc(void);
void group_memory(void);
void group_read(void);

#endif /* PCPU_BENCH_H */
