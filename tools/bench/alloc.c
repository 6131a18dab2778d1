/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * alloc.c - the "alloc" group: the cost of allocating and freeing per-CPU objects, libpcpu
 * beside librseq's per-CPU mempool and cache-line padded per-CPU arrays.
 *
 * The parent runs this group once per topology (2 real CPUs, fake 64x4, 1024x16, 4096x64:
 * PCPU_CONF=topology=..., the process on the real CPUs) and says through the job parameter
 * which parts to run (a comma-separated list):
 *  - pairs:   alloc+free pairs of 8 bytes (and of 64, 256 and 1024 bytes with "sizes");
 *  - threads: 8-byte pairs from 1 thread, 2 threads pinned to 2 CPUs and 4 unpinned threads
 *             (rows of a fake topology say it: the threads run on the real CPUs):
 *             ns per pair, total pairs per second, and 2 threads' total over 1 thread's;
 *  - orders:  1M 8-byte objects allocated, then freed in LIFO, FIFO and random order;
 *  - sizes:   1M objects of 8, 64, 256 and 1024 bytes allocated, then freed in FIFO order.
 *
 * Every figure has two measures per object: the caller's wall-clock ns, and the whole
 * process's CPU ns (getrusage: every thread, so work the library hands to its balancer
 * thread, such as zeroing freed objects, is counted too).
 *
 * Same work for everyone: every object comes back zero on every CPU. libpcpu zeroes on its
 * own; librseq allocates with rseq_mempool_percpu_zmalloc (a COW-zero pool: it reads every
 * CPU's copy and writes the ones that are not zero); padded arrays come from jemalloc with
 * MALLOCX_ZERO or from glibc with a memset. One more row, "librseq malloc (no zeroing)",
 * shows librseq's rseq_mempool_percpu_malloc, which does not zero: it is not the same work.
 * The librseq pools and padded arrays are sized for the topology's CPU count (pcpu_nr_cpus),
 * not the machine's.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jemalloc/jemalloc.h>
#include <pcpu.h>

#include "bench.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Who is measured. */
enum impl {
	I_PCPU,        /* pcpu_alloc / pcpu_free */
	I_LRSEQ,       /* librseq zmalloc / free, COW-zero pool */
	I_LRSEQ_RAW,   /* librseq malloc / free: no zeroing */
	I_JEMALLOC,    /* padded array, mallocx(MALLOCX_ZERO) / dallocx */
	I_GLIBC,       /* padded array, __libc_memalign + memset / __libc_free */
	NR_IMPLS,
};

static const char *const impl_name[NR_IMPLS] = {
	[I_PCPU] = "libpcpu",
	[I_LRSEQ] = LIBRSEQ_NAME " zmalloc",
	[I_LRSEQ_RAW] = LIBRSEQ_NAME " malloc (no zeroing)",
	[I_JEMALLOC] = "padded/jemalloc",
	[I_GLIBC] = "padded/glibc",
};

/* One implementation set up for objects of one size at the topology's CPU count. */
struct impl_ctx {
	enum impl impl;
	size_t size;
	unsigned ncpus;
	size_t stride;            /* librseq: the pool's per-CPU stride, 0: default */
	struct lrseq_pool *pool;  /* librseq */
};

/* librseq through these, so that the group builds without it (and then skips its rows). */
#ifdef PCPU_BENCH_LIBRSEQ
#define HAVE_LIBRSEQ 1
static struct lrseq_pool *rs_open(unsigned ncpus, size_t len, size_t stride)
{
	return lrseq_pool_open_items(ncpus, len, stride);
}
static void rs_close(struct lrseq_pool *pool)
{
	lrseq_pool_close(pool);
}
static inline void *rs_alloc(struct lrseq_pool *pool, bool zero)
{
	return lrseq_obj_alloc(pool, zero);
}
static inline void rs_free(void *obj, size_t stride)
{
	lrseq_obj_free(obj, stride);
}
static int rs_thread_init(void)
{
	return lrseq_thread_init();
}
#else
#define HAVE_LIBRSEQ 0
static struct lrseq_pool *rs_open(unsigned ncpus, size_t len, size_t stride)
{
	(void)ncpus, (void)len, (void)stride;
	return NULL;
}
static void rs_close(struct lrseq_pool *pool)
{
	(void)pool;
}
static inline void *rs_alloc(struct lrseq_pool *pool, bool zero)
{
	(void)pool, (void)zero;
	return NULL;
}
static inline void rs_free(void *obj, size_t stride)
{
	(void)obj, (void)stride;
}
static int rs_thread_init(void)
{
	return -1;
}
#endif

static bool is_lrseq(enum impl i)
{
	return i == I_LRSEQ || i == I_LRSEQ_RAW;
}

/*
 * ctx_open - set up @impl for @size-byte objects; @nobj: how many may live at once (sizes
 * the librseq pool's stride so that a million objects fit in about 128 ranges; below that
 * librseq's default 64 KiB stride). Return: false if the implementation is unavailable.
 */
static bool ctx_open(struct impl_ctx *c, enum impl impl, size_t size, long nobj)
{
	*c = (struct impl_ctx){.impl = impl, .size = size, .ncpus = pcpu_nr_cpus()};
	if (!is_lrseq(impl))
		return true;
	if (!HAVE_LIBRSEQ)
		return false;
	if (rs_thread_init()) {
		note("alloc: librseq: rseq registration failed, column skipped");
		return false;
	}
	{
		size_t item = 8, need;

		while (item < size)
			item <<= 1;
		need = item * (size_t)nobj / 128;
		if (need > (64u << 10)) {
			c->stride = 64u << 10;
			while (c->stride < need)
				c->stride <<= 1;
		}
	}
	c->pool = rs_open(c->ncpus, size, c->stride);
	return c->pool != NULL;
}

static void ctx_close(struct impl_ctx *c)
{
	if (c->pool)
		rs_close(c->pool);
	c->pool = NULL;
}

static inline void *obj_alloc(const struct impl_ctx *c)
{
	switch (c->impl) {
	case I_PCPU:
		return peer_alloc(PEER_PCPU, c->size, c->ncpus);
	case I_LRSEQ:
		return rs_alloc(c->pool, true);
	case I_LRSEQ_RAW:
		return rs_alloc(c->pool, false);
	case I_JEMALLOC:
		return peer_alloc(PEER_JEMALLOC, c->size, c->ncpus);
	case I_GLIBC:
		return peer_alloc(PEER_GLIBC, c->size, c->ncpus);
	default:
		return NULL;
	}
}

static inline void obj_free(const struct impl_ctx *c, void *obj)
{
	switch (c->impl) {
	case I_PCPU:
		peer_free(PEER_PCPU, obj, c->size, c->ncpus);
		break;
	case I_LRSEQ:
	case I_LRSEQ_RAW:
		rs_free(obj, c->stride);
		break;
	case I_JEMALLOC:
		peer_free(PEER_JEMALLOC, obj, c->size, c->ncpus);
		break;
	case I_GLIBC:
		peer_free(PEER_GLIBC, obj, c->size, c->ncpus);
		break;
	default:
		break;
	}
}

/* The parameter shown for every row of this job: the CPU count and where it comes from. */
static char topo[64];
/* The threads rows' prefix: the topology when it is a fake one, else nothing. */
static char fake_prefix[68];

static void set_topo_label(void)
{
	const char *conf = getenv("PCPU_CONF");
	const char *t = conf ? strstr(conf, "topology=") : NULL;

	if (t) {
		t += strlen("topology=");
		snprintf(topo, sizeof(topo), "%u CPUs (%.*s)", pcpu_nr_cpus(),
			 (int)strcspn(t, ","), t);
		snprintf(fake_prefix, sizeof(fake_prefix), "%s, ", topo);
	} else {
		snprintf(topo, sizeof(topo), "%u CPUs%s", pcpu_nr_cpus(), REAL_CPUS);
	}
}

static bool part(const char *name)
{
	const char *p = bopt.params ? bopt.params : "pairs";
	size_t len = strlen(name);

	while (*p) {
		size_t n = strcspn(p, ",");

		if (n == len && !strncmp(p, name, len))
			return true;
		p += n + (p[n] == ',');
	}
	return false;
}

static int reps_for(int cap)
{
	return bopt.full || bopt.reps < cap ? bopt.reps : cap;
}

/* ---- alloc+free pairs ---- */

/* @n pairs, one object alive at a time. Return: false if an allocation failed. */
static bool pairs_loop(const struct impl_ctx *c, long n)
{
	for (long i = 0; i < n; i++) {
		void *obj = obj_alloc(c);

		if (!obj)
			return false;
		bench_keep(obj);
		obj_free(c, obj);
	}
	return true;
}

static void pairs_one(enum impl impl, size_t size)
{
	struct impl_ctx c;
	struct stopwatch w;
	struct reps r = {0};
	char bench[64];
	double per;
	long n;

	if (!ctx_open(&c, impl, size, 1))
		return;
	snprintf(bench, sizeof(bench), "alloc+free %zu B pair", size);
	progress("alloc: %s, %s, %s", bench, topo, impl_name[impl]);
	stopwatch_start(&w);
	if (!pairs_loop(&c, 256)) {
		note("alloc: %s failed to allocate %zu bytes at %s", impl_name[impl], size, topo);
		ctx_close(&c);
		return;
	}
	per = (double)(now_ns() - w.wall) / 256;
	n = (long)(bopt.target * 1e9 / (per > 1 ? per : 1));
	n = n < 256 ? 256 : n > 20000000 ? 20000000 : n;
	for (int k = 0; k < bopt.reps && k < MAX_REPS; k++) {
		stopwatch_start(&w);
		pairs_loop(&c, n);
		reps_add(&r, &w, (double)n);
	}
	report_cpu("alloc", bench, topo, impl_name[impl], &r, "ns/pair", impl == I_PCPU);
	ctx_close(&c);
}

static void pairs(void)
{
	static const size_t sizes[] = {8, 64, 256, 1024};
	size_t nsizes = part("sizes") ? ARRAY_SIZE(sizes) : 1;

	for (size_t s = 0; s < nsizes; s++)
		for (int i = 0; i < NR_IMPLS; i++)
			pairs_one((enum impl)i, sizes[s]);
}

/* ---- threads ---- */

struct pair_thread {
	pthread_t thread;
	const struct impl_ctx *c;
	long n;
	int pin;  /* -1: not pinned */
	pthread_barrier_t *ready, *start;
	uint64_t t0, t1; /* this thread's timed run */
	bool failed;
};

static void *pair_thread_main(void *arg)
{
	struct pair_thread *t = arg;

	if (t->pin >= 0)
		pin_self(t->pin);
	if (is_lrseq(t->c->impl) && rs_thread_init())
		t->failed = true;
	/* Warm up this thread's path in the allocator (its CPU's caches, its rseq area). */
	if (!t->failed && !pairs_loop(t->c, t->n / 64 + 1))
		t->failed = true;
	pthread_barrier_wait(t->ready);
	pthread_barrier_wait(t->start);
	t->t0 = now_ns();
	if (!t->failed && !pairs_loop(t->c, t->n))
		t->failed = true;
	t->t1 = now_ns();
	return NULL;
}

/*
 * One timed run of @nthreads threads doing @n pairs each. Adds to @caller the mean thread's
 * ns per pair with the process CPU ns per pair, and to @rate the total Mpairs per second.
 *
 * Every thread warms up and waits at @ready; the process CPU clock starts then, and @start
 * lets them go. The rate counts from the first thread's start to the last one's end, from
 * the threads' own clocks: the main thread may wake from a barrier after they have run.
 */
static bool threads_run(const struct impl_ctx *c, int nthreads, const int *pin, long n,
			struct reps *caller, double *rate)
{
	struct pair_thread t[4];
	pthread_barrier_t ready, start;
	struct stopwatch w;
	uint64_t first = UINT64_MAX, last = 0;
	double sum = 0;
	bool ok = true;
	int i;

	pthread_barrier_init(&ready, NULL, (unsigned)nthreads + 1);
	pthread_barrier_init(&start, NULL, (unsigned)nthreads + 1);
	for (i = 0; i < nthreads; i++) {
		t[i] = (struct pair_thread){
			.c = c, .n = n, .pin = pin ? pin[i] : -1, .ready = &ready, .start = &start,
		};
		if (pthread_create(&t[i].thread, NULL, pair_thread_main, &t[i]))
			die("alloc: pthread_create failed");
	}
	pthread_barrier_wait(&ready);
	stopwatch_start(&w);
	pthread_barrier_wait(&start);
	for (i = 0; i < nthreads; i++) {
		pthread_join(t[i].thread, NULL);
		sum += (double)(t[i].t1 - t[i].t0);
		first = t[i].t0 < first ? t[i].t0 : first;
		last = t[i].t1 > last ? t[i].t1 : last;
		ok &= !t[i].failed;
	}
	pthread_barrier_destroy(&ready);
	pthread_barrier_destroy(&start);
	if (ok && caller->n < MAX_REPS) {
		double pairs = (double)n * nthreads;

		reps_add(caller, &w, pairs); /* CPU per pair of the whole process */
		caller->v[caller->n - 1] = sum / nthreads / (double)n;
		*rate = pairs / ((double)(last - first) / 1e9) / 1e6;
	}
	return ok;
}

static void threads_one(enum impl impl)
{
	int cpus[2], ncpu = allowed_cpus(cpus, 2);
	static const int counts[] = {1, 2, 4};
	double med[3] = {0, 0, 0};
	struct impl_ctx c;
	long n;

	if (ncpu < 2) {
		note("alloc: threads: only %d CPU allowed, rows skipped", ncpu);
		return;
	}
	if (!ctx_open(&c, impl, 8, 64))
		return;
	/* Calibrate on one thread: each thread then runs about the target time. */
	{
		struct stopwatch w;
		double per;

		stopwatch_start(&w);
		pairs_loop(&c, 1024);
		per = (double)(now_ns() - w.wall) / 1024;
		n = (long)(bopt.target * 1e9 / (per > 1 ? per : 1));
		n = n < 1024 ? 1024 : n > 20000000 ? 20000000 : n;
	}
	for (size_t k = 0; k < ARRAY_SIZE(counts); k++) {
		int nt = counts[k];
		struct reps caller = {0}, rate = {0};
		char params[128];

		if (nt == 1)
			snprintf(params, sizeof(params), "%s1 thread", fake_prefix);
		else if (nt == 2)
			snprintf(params, sizeof(params), "%s2 threads pinned to CPUs %d,%d",
				 fake_prefix, cpus[0], cpus[1]);
		else
			snprintf(params, sizeof(params), "%s%d threads unpinned", fake_prefix, nt);
		progress("alloc: threads, %s, %s", params, impl_name[impl]);
		for (int r = 0; r < bopt.reps && r < MAX_REPS; r++) {
			double mps = 0;

			if (!threads_run(&c, nt, nt == 2 ? cpus : NULL, n, &caller, &mps)) {
				note("alloc: threads: %s failed at %s", impl_name[impl], params);
				ctx_close(&c);
				return;
			}
			rate.v[rate.n++] = mps;
		}
		report_cpu("alloc", "threads: alloc+free 8 B pair, per thread", params,
			   impl_name[impl], &caller, "ns/pair", impl == I_PCPU);
		report_reps("alloc", "threads: total alloc+free 8 B pairs", params, impl_name[impl],
			    rate.v, rate.n, "Mpair/s", impl == I_PCPU);
		med[k] = median(rate.v, rate.n);
	}
	if (med[0] > 0) {
		char params[128];

		snprintf(params, sizeof(params), "%s2 threads pinned", fake_prefix);
		report("alloc", "threads: total pairs/s of 2 threads / 1 thread", params,
		       impl_name[impl], med[1] / med[0], "x", impl == I_PCPU);
	}
	ctx_close(&c);
}

static void threads(void)
{
	threads_one(I_PCPU);
	threads_one(I_LRSEQ);
}

/* ---- a million objects ---- */

#define MILLION 1000000L

enum order { ORDER_LIFO, ORDER_FIFO, ORDER_RANDOM, NR_ORDERS };

static const char *const order_name[NR_ORDERS] = {"LIFO", "FIFO", "random"};

/* xorshift64: the same random free order for every implementation. */
static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Put @objs[0..n) in the order they will be freed. */
static void arrange(void **objs, long n, enum order o)
{
	uint64_t seed = 0x9e3779b97f4a7c15ull;

	if (o == ORDER_LIFO) {
		for (long i = 0, j = n - 1; i < j; i++, j--) {
			void *t = objs[i];

			objs[i] = objs[j];
			objs[j] = t;
		}
	} else if (o == ORDER_RANDOM) {
		for (long i = n - 1; i > 0; i--) {
			long j = (long)(rng_next(&seed) % (uint64_t)(i + 1));
			void *t = objs[i];

			objs[i] = objs[j];
			objs[j] = t;
		}
	}
}

/*
 * One pass: allocate @n objects, then free them in @o. The rearranging of the pointer array
 * between the two is not timed. Return: false on an allocation failure (all freed again).
 */
static bool million_pass(const struct impl_ctx *c, void **objs, long n, enum order o,
			 struct reps *ra, struct reps *rf)
{
	struct stopwatch w;
	long i;

	stopwatch_start(&w);
	for (i = 0; i < n; i++) {
		objs[i] = obj_alloc(c);
		if (!objs[i])
			break;
	}
	if (i < n) {
		while (i--)
			obj_free(c, objs[i]);
		return false;
	}
	if (ra)
		reps_add(ra, &w, (double)n);
	arrange(objs, n, o);
	stopwatch_start(&w);
	for (i = 0; i < n; i++)
		obj_free(c, objs[i]);
	if (rf)
		reps_add(rf, &w, (double)n);
	return true;
}

/* Lines of /proc/self/maps: the process's mapping count. */
static long count_mappings(void)
{
	FILE *f = fopen("/proc/self/maps", "re");
	long n = 0;
	int ch;

	if (!f)
		return -1;
	while ((ch = getc(f)) != EOF)
		n += ch == '\n';
	fclose(f);
	return n;
}

/*
 * after_pcpu - after libpcpu's million objects: give its memory back with pcpu_trim(), and
 * say how many mappings stay, since every peer measured later in this process shares the
 * mapping limit (vm.max_map_count) with them.
 */
static void after_pcpu(const char *what, size_t size)
{
	long before = count_mappings(), after;

	pcpu_trim();
	after = count_mappings();
	if (before > 4096)
		note("alloc: %s x %zu B at %s: the process had %ld mappings after libpcpu freed them"
		     " all, %ld after pcpu_trim()", what, size, topo, before, after);
}

/*
 * million - @n objects of @size bytes from @impl, freed in each order of @orders: per-object
 * alloc and free rows. One untimed pass first, so every timed pass finds the allocator in
 * the same state (chunks or ranges already mapped, as in a program that has been running).
 */
static void million(enum impl impl, size_t size, long n, const enum order *orders, int norders,
		    const char *what)
{
	/* Seconds one point may run before it stops repeating (at least 2 passes). */
	double limit = bopt.full ? 120 : 8;
	int nreps = reps_for(3);
	char bench[96], label[96];
	struct impl_ctx c;
	void **objs;
	uint64_t t0;

	if (!ctx_open(&c, impl, size, n))
		return;
	snprintf(label, sizeof(label), "%s", impl_name[impl]);
	if (n != MILLION)
		snprintf(label, sizeof(label), "%s (%ld objects)", impl_name[impl], n);
	objs = big_alloc((size_t)n * sizeof(*objs));
	progress("alloc: %s %zu B objects, %s, %s", what, size, topo, label);
	t0 = now_ns();
	if (!million_pass(&c, objs, n, ORDER_FIFO, NULL, NULL)) {
		note("alloc: %s ran out of memory with %ld objects of %zu B at %s", label, n, size,
		     topo);
		goto out;
	}
	for (int k = 0; k < norders; k++) {
		struct reps ra = {0}, rf = {0};
		enum order o = orders[k];

		for (int r = 0; r < nreps; r++) {
			if (r >= 2 && (double)(now_ns() - t0) / 1e9 > limit) {
				note("alloc: %s, %zu B, %s at %s stopped after %d runs (%.0f s limit)",
				     label, size, order_name[o], topo, r, limit);
				break;
			}
			if (!million_pass(&c, objs, n, o, &ra, &rf)) {
				note("alloc: %s ran out of memory at %s", label, topo);
				goto out;
			}
		}
		snprintf(bench, sizeof(bench), "%s x %zu B, %s: alloc", what, size, order_name[o]);
		report_cpu("alloc", bench, topo, label, &ra, "ns/obj", impl == I_PCPU);
		snprintf(bench, sizeof(bench), "%s x %zu B, %s: free", what, size, order_name[o]);
		report_cpu("alloc", bench, topo, label, &rf, "ns/obj", impl == I_PCPU);
	}
out:
	big_free(objs, (size_t)n * sizeof(*objs));
	ctx_close(&c);
	if (impl == I_PCPU)
		after_pcpu(what, size);
}

/*
 * The peers run before libpcpu in each point: what an allocator leaves behind in the
 * process (mappings, address space) cannot then weigh on the others' figures.
 */
static void orders(void)
{
	static const enum order all[] = {ORDER_LIFO, ORDER_FIFO, ORDER_RANDOM};

	if (pcpu_nr_cpus() <= 64)
		million(I_LRSEQ, 8, MILLION, all, NR_ORDERS, "1M");
	million(I_PCPU, 8, MILLION, all, NR_ORDERS, "1M");
}

static void sizes(void)
{
	static const size_t sz[] = {8, 64, 256, 1024};
	static const enum order fifo[] = {ORDER_FIFO};
	/* Padded arrays take a cache line per CPU per object: bound their footprint. */
	double budget = bopt.full ? 8.0 * (1 << 30) : 1.0 * (1 << 30);

	for (size_t s = 0; s < ARRAY_SIZE(sz); s++) {
		long nj = (long)(budget / ((double)padded_slot(sz[s]) * pcpu_nr_cpus()));

		million(I_JEMALLOC, sz[s], nj < MILLION ? nj : MILLION, fifo, 1, "1M");
		/* 8 B in FIFO order is a row of orders() already. */
		if (sz[s] != 8 || !part("orders")) {
			million(I_LRSEQ, sz[s], MILLION, fifo, 1, "1M");
			million(I_PCPU, sz[s], MILLION, fifo, 1, "1M");
		}
	}
}

void group_alloc(void)
{
	set_topo_label();
	if (part("pairs"))
		pairs();
	if (part("threads"))
		threads();
	if (part("orders"))
		orders();
	if (part("sizes"))
		sizes();
}
