/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * Static per-CPU variables (PCPU_DEFINE, PCPU_DECLARE): initial values in every CPU's copy,
 * struct and pointer types, every operation on them, PCPU_DECLARE across translation units,
 * where the storage comes from (static region for the program, reserved region for a
 * shared object, dynamic allocation when a region is full), bad frees of their handles,
 * and a shared object loaded and unloaded 1,000 times with every statistic back where it
 * started. Runs with the default regions and with PCPU_CONF=static_size=0,reserved_size=0,
 * where everything must fall back to dynamic allocations.
 */
#include <check.h>
#include <dlfcn.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pcpu.h>

#include "lib/alloc.h"
#include "mode_check.h"
#include "test_static_decl.h"
#include "../check_run.h"

struct point {
	int32_t x, y;
	int64_t z;
};

struct line64 {
	uint64_t v __attribute__((aligned(64)));
};

PCPU_DEFINE(uint64_t, s_u64);
PCPU_DEFINE(int32_t, s_i32, -5);
PCPU_DEFINE(uint8_t, s_u8, 0xab);
PCPU_DEFINE(int16_t, s_i16);
PCPU_DEFINE(void *, s_ptr, (void *)&s_u64);
PCPU_DEFINE(char, s_char, 'q');
PCPU_DEFINE(struct point, s_point, {.x = 1, .y = -2, .z = 3});
PCPU_DEFINE(struct point, s_point0);
PCPU_DEFINE(struct line64, s_line);
PCPU_DEFINE(int64_t, s_shared, 1000);

static struct pcpu_stats stats_now(void)
{
	struct pcpu_stats st = {.size = sizeof(st)};

	ck_assert_int_eq(pcpu_stats_get(&st), 0);
	return st;
}

/*
 * Where the program's own variables must be, given the configured regions: all static
 * when the static region is large, all dynamic when there are no regions, else any
 * (a small static region spills into the reserved one, then into dynamic chunks): 0.
 */
static int main_region_expected(void)
{
	struct pcpu_stats st = stats_now();

	if (st.static_size >= 1024)
		return PCPU_REGION_STATIC;
	if (st.static_size == 0 && st.reserved_size >= 1024)
		return PCPU_REGION_RESERVED;
	return st.static_size == 0 && st.reserved_size == 0 ? PCPU_REGION_DYNAMIC : 0;
}

START_TEST(test_mode)
{
	test_check_mode();
}
END_TEST

/*
 * The first chunk: set up at initialisation as one mapping whose units hold
 * <static | reserved | dynamic>, fully populated. pcpu_trim() gives back the dynamic
 * region's free pages (issue 15), never a page holding a static or reserved byte; those
 * given back are populated again when an allocation lands there.
 */
/*
 * Read a byte the memory checker rightly considers free (the test looks at the mapping,
 * not at an allocation): not instrumented by ASan.
 */
__attribute__((no_sanitize_address, noinline)) static char peek_unpoisoned(const char *p)
{
	return *(const volatile char *)p;
}

START_TEST(test_first_chunk_layout)
{
	enum { MAX_TRIES = 200000 };
	struct pcpu_first_chunk *f = &pcpu_first;
	struct pcpu_stats st = stats_now();
	size_t page = st.page_size, regions;
	uint64_t **v;
	bool in_first = false;
	int n;
	volatile char sink;

	ck_assert_ptr_nonnull(f->dyn);
	ck_assert_ptr_eq(f->dyn->base, f->base);
	ck_assert_uint_eq(st.static_size, f->static_size);
	ck_assert_uint_eq(st.reserved_size, f->reserved_size);
	ck_assert_uint_eq(f->size % page, 0);
	ck_assert_uint_eq(f->static_size + f->reserved_size + f->dyn_size, f->size);
	ck_assert(f->dyn->immutable);
	ck_assert_int_eq(f->dyn->set, 0);
	/* The dynamic region's map serves [static + reserved, size) only. */
	ck_assert_int_eq(f->dyn->map.start_offset, (int)(f->static_size + f->reserved_size));
	ck_assert_int_eq(f->dyn->map.end_offset, (int)(st.unit_size - f->size));
	if (f->reserved_size) {
		ck_assert_ptr_nonnull(f->reserved);
		ck_assert_ptr_eq(f->reserved->base, f->base);
		ck_assert(f->reserved->immutable && f->reserved->reserved);
		ck_assert_int_eq(f->reserved->map.start_offset, (int)f->static_size);
		ck_assert_int_eq(f->reserved->map.end_offset,
				 (int)(st.unit_size - f->static_size - f->reserved_size));
	} else {
		ck_assert_ptr_null(f->reserved);
	}
	ck_assert_uint_le(f->static_used, f->static_size);
	/* Fully populated at start. */
	ck_assert_int_eq(f->dyn->map.nr_populated, (int)(f->size / page));
	pcpu_trim();
	/* The pages of the static and reserved regions stay, in every unit. */
	regions = (f->static_size + f->reserved_size + page - 1) / page;
	for (size_t i = 0; i < regions; i++)
		ck_assert(pcpu_am_block_populated(&f->dyn->map, (int)i));
	ck_assert_int_ge(f->dyn->map.nr_populated, (int)regions);
	/* The dynamic region's pages free of them went back (the balancer leaves them). */
	if (f->size / page > regions)
		ck_assert_int_lt(f->dyn->map.nr_populated, (int)(f->size / page));
	if (f->reserved)
		ck_assert_int_eq(f->reserved->map.nr_populated, (int)(f->size / page));
	/* Every page of them is readable in every unit (PROT_NONE would fault here). */
	for (unsigned u = 0; u < pcpu_nr_cpus(); u++)
		for (size_t off = 0; off < regions * page; off += page)
			sink = peek_unpoisoned(pcpu_unit_addr(f->dyn, u, off));
	(void)sink;
	ck_assert_int_eq(pcpu_verify(), 0);
	/*
	 * Dynamic allocations reach the first chunk's given-back pages again: populated anew,
	 * zero in every unit, writable. Aligned above a cache line: the first chunk is plain,
	 * and small default-aligned objects go to coloured chunks (lib/chunk.h).
	 */
	v = calloc(MAX_TRIES, sizeof(*v));
	ck_assert_ptr_nonnull(v);
	for (n = 0; n < MAX_TRIES && !in_first; n++) {
		uintptr_t a;

		v[n] = pcpu_alloc(sizeof(uint64_t), 128, 0);
		ck_assert_ptr_nonnull(v[n]);
		a = pcpu_addr_of(v[n]);
		in_first = pcpu_chunk_lookup(a) == f->dyn &&
			   a - (uintptr_t)f->base >= regions * page;
	}
	ck_assert_msg(in_first, "no allocation landed in a given-back page of the first chunk");
	for (unsigned cpu = 0; cpu < pcpu_nr_cpus(); cpu++) {
		ck_assert_uint_eq(*pcpu_ptr(v[n - 1], cpu), 0);
		*pcpu_ptr(v[n - 1], cpu) = cpu + 1;
	}
	for (unsigned cpu = 0; cpu < pcpu_nr_cpus(); cpu++)
		ck_assert_uint_eq(*pcpu_ptr(v[n - 1], cpu), cpu + 1);
	while (n > 0)
		pcpu_free(v[--n]);
	free(v);
	ck_assert_int_eq(pcpu_verify(), 0);
}
END_TEST

START_TEST(test_initial_values)
{
	unsigned cpu;

	pcpu_for_each_cpu(cpu) {
		ck_assert_uint_eq(*pcpu_ptr(s_u64, cpu), 0);
		ck_assert_int_eq(*pcpu_ptr(s_i32, cpu), -5);
		ck_assert_uint_eq(*pcpu_ptr(s_u8, cpu), 0xab);
		ck_assert_int_eq(*pcpu_ptr(s_i16, cpu), 0);
		ck_assert_ptr_eq(*pcpu_ptr(s_ptr, cpu), (void *)&s_u64);
		ck_assert_int_eq(*pcpu_ptr(s_char, cpu), 'q');
		ck_assert_int_eq(pcpu_ptr(s_point, cpu)->x, 1);
		ck_assert_int_eq(pcpu_ptr(s_point, cpu)->y, -2);
		ck_assert_int_eq(pcpu_ptr(s_point, cpu)->z, 3);
		ck_assert_int_eq(pcpu_ptr(s_point0, cpu)->x, 0);
		ck_assert_int_eq(pcpu_ptr(s_point0, cpu)->z, 0);
		ck_assert_uint_eq(pcpu_ptr(s_line, cpu)->v, 0);
		ck_assert_int_eq(*pcpu_ptr(s_shared, cpu), 1000);
	}
}
END_TEST

START_TEST(test_regions_and_alignment)
{
	void *all[] = {s_u64, s_i32, s_u8, s_i16, s_ptr, s_char, s_point, s_point0, s_line,
		       s_shared, decl_counter, decl_pair};
	int want = main_region_expected();
	unsigned cpu;

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		ck_assert_ptr_nonnull(all[i]);
		if (want)
			ck_assert_int_eq(pcpu_static_region_of(all[i]), want);
		else
			ck_assert_int_ne(pcpu_static_region_of(all[i]), PCPU_REGION_NONE);
	}
	/* Handles are ordinary: aligned like the type in every copy, copies all distinct. */
	pcpu_for_each_cpu(cpu) {
		ck_assert_uint_eq((uintptr_t)pcpu_ptr(s_line, cpu) % 64, 0);
		ck_assert_uint_eq((uintptr_t)pcpu_ptr(s_point, cpu) % _Alignof(struct point), 0);
		if (cpu)
			ck_assert_ptr_ne(pcpu_ptr(s_u64, cpu), pcpu_ptr(s_u64, cpu - 1));
	}
	/* Dynamic allocations are told apart from static variables. */
	void *d = pcpu_alloc(8, 0, 0);

	ck_assert_ptr_nonnull(d);
	ck_assert_int_eq(pcpu_static_region_of(d), PCPU_REGION_DYNAMIC);
	pcpu_free(d);
}
END_TEST

START_TEST(test_every_op)
{
	unsigned cpu, me;
	int64_t sum = 0;

	test_pin_here();
	me = pcpu_this_cpu();
	pcpu_this_inc(s_u64);
	pcpu_this_add(s_u64, 10);
	pcpu_this_sub(s_u64, 3);
	pcpu_this_dec(s_u64);
	ck_assert_uint_eq(pcpu_this_read(s_u64), 7);
	ck_assert_uint_eq(*pcpu_ptr(s_u64, me), 7);
	ck_assert_uint_eq(*pcpu_this_ptr(s_u64), 7);
	pcpu_this_write(s_u64, 100);
	ck_assert_uint_eq(pcpu_this_xchg(s_u64, 200), 100);
	ck_assert_uint_eq(pcpu_this_cmpxchg(s_u64, 200, 300), 200);
	ck_assert_uint_eq(pcpu_this_cmpxchg(s_u64, 1, 2), 300);
	ck_assert_uint_eq(pcpu_this_add_return(s_u64, 5), 305);

	/* Narrow types wrap in their own width. */
	pcpu_this_add(s_u8, 0x60);
	ck_assert_uint_eq(pcpu_this_read(s_u8), 0x0b);
	pcpu_this_sub(s_i16, 2);
	ck_assert_int_eq(pcpu_this_read(s_i16), -2);
	pcpu_this_dec(s_i32);
	ck_assert_int_eq(pcpu_this_read(s_i32), -6);
	ck_assert_int_eq(pcpu_this_xchg(s_char, 'z'), 'q');

	/* Pointers: read, write, xchg, cmpxchg. */
	ck_assert_ptr_eq(pcpu_this_read(s_ptr), &s_u64);
	pcpu_this_write(s_ptr, (void *)&s_i32);
	ck_assert_ptr_eq(pcpu_this_cmpxchg(s_ptr, (void *)&s_i32, NULL), &s_i32);
	ck_assert_ptr_null(pcpu_this_xchg(s_ptr, (void *)&s_u8));

	/* Struct members through the handle. */
	pcpu_this_add(&s_point->z, 39);
	pcpu_this_inc(&s_point->x);
	ck_assert_int_eq(pcpu_ptr(s_point, me)->z, 42);
	ck_assert_int_eq(pcpu_ptr(s_point, me)->x, 2);
	pcpu_this_add(&s_line->v, 64);

	/* The other CPUs' copies are untouched. */
	pcpu_for_each_cpu(cpu) {
		sum += (int64_t)*pcpu_ptr(s_u64, cpu);
		if (cpu == me)
			continue;
		ck_assert_uint_eq(*pcpu_ptr(s_u64, cpu), 0);
		ck_assert_uint_eq(*pcpu_ptr(s_u8, cpu), 0xab);
		ck_assert_int_eq(pcpu_ptr(s_point, cpu)->z, 3);
		ck_assert_uint_eq(pcpu_ptr(s_line, cpu)->v, 0);
	}
	ck_assert_int_eq(sum, 305);
}
END_TEST

START_TEST(test_ptr_writes)
{
	unsigned cpu;

	pcpu_for_each_cpu(cpu) {
		*pcpu_ptr(s_u64, cpu) = 1000 + cpu;
		pcpu_ptr(s_point0, cpu)->y = -(int32_t)cpu;
	}
	pcpu_for_each_cpu(cpu) {
		ck_assert_uint_eq(*pcpu_ptr(s_u64, cpu), 1000 + cpu);
		ck_assert_int_eq(pcpu_ptr(s_point0, cpu)->y, -(int32_t)cpu);
		/* Neighbours in the static region did not move. */
		ck_assert_int_eq(*pcpu_ptr(s_i32, cpu), -5);
		ck_assert_int_eq(*pcpu_ptr(s_char, cpu), 'q');
	}
}
END_TEST

START_TEST(test_declare_other_unit)
{
	unsigned cpu, n = pcpu_nr_cpus();
	uint64_t sum = 0;

	pcpu_for_each_cpu(cpu) {
		ck_assert_uint_eq(*pcpu_ptr(decl_counter, cpu), 7);
		ck_assert_int_eq(pcpu_ptr(decl_pair, cpu)->lo, -1);
		ck_assert_int_eq(pcpu_ptr(decl_pair, cpu)->hi, 1);
	}
	for (int i = 0; i < 1000; i++) {
		pcpu_this_inc(decl_counter);
		decl_bump_shared(2);
	}
	pcpu_this_add(&decl_pair->hi, 5);
	pcpu_for_each_cpu(cpu)
		sum += *pcpu_ptr(decl_counter, cpu);
	ck_assert_uint_eq(sum, 7ull * n + 1000);
	ck_assert_int_eq(decl_sum_shared(), 1000ll * n + 2000);
}
END_TEST

enum { T = 8, N = 100000 };

static void *worker(void *arg)
{
	(void)arg;
	for (int i = 0; i < N; i++) {
		pcpu_this_inc(s_u64);
		pcpu_this_sub(s_shared, 3);
	}
	return NULL;
}

START_TEST(test_threads_exact)
{
	pthread_t t[T];
	unsigned cpu, n = pcpu_nr_cpus();
	int64_t sum = 0;
	uint64_t usum = 0;

	for (int i = 0; i < T; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, worker, NULL), 0);
	for (int i = 0; i < T; i++)
		pthread_join(t[i], NULL);
	pcpu_for_each_cpu(cpu) {
		usum += *pcpu_ptr(s_u64, cpu);
		sum += *pcpu_ptr(s_shared, cpu);
	}
	ck_assert_uint_eq(usum, (uint64_t)T * N);
	ck_assert_int_eq(sum, 1000ll * n - 3ll * T * N);
}
END_TEST

/*
 * Run @fn(@arg) in a child whose stderr goes to a pipe: it must abort, and its message
 * must contain @needle.
 */
static void expect_abort(void (*fn)(void *), void *arg, const char *needle)
{
	int fds[2], status;
	char buf[1024] = "";
	ssize_t n, got = 0;
	pid_t pid;

	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(fds[1], 2);
		close(fds[0]);
		signal(SIGABRT, SIG_DFL);
		fn(arg);
		_exit(0);
	}
	close(fds[1]);
	while ((n = read(fds[0], buf + got, sizeof(buf) - 1 - (size_t)got)) > 0)
		got += n;
	close(fds[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
		      "the child did not abort (status %#x)", status);
	ck_assert_msg(strstr(buf, needle), "message \"%s\" lacks \"%s\"", buf, needle);
}

static void free_it(void *p)
{
	pcpu_free(p);
}

START_TEST(test_free_static_aborts)
{
	char addr[32];

	snprintf(addr, sizeof(addr), "%p", (void *)s_u64);
	expect_abort(free_it, s_u64, "PCPU_DEFINE");
	expect_abort(free_it, s_u64, addr);
	expect_abort(free_it, s_point, "PCPU_DEFINE");
	/* An address inside a static variable is no better. */
	expect_abort(free_it, (char *)s_point + 4, "pcpu_free");
}
END_TEST

/* Descriptors registered at run time, as PCPU_DEFINE's constructor does. */
#define NR_RT 400
#define RT_SIZE 512
static struct pcpu__static_desc rt_desc[NR_RT];
static void *rt_handle[NR_RT];
static unsigned char rt_init[RT_SIZE];

/* 4-byte variables that fill what 512-byte ones leave of the reserved region. */
#define NR_SMALL 200
static struct pcpu__static_desc small_desc[NR_SMALL];
static void *small_handle[NR_SMALL];

/* Register 4-byte variables until one falls back to a dynamic allocation. */
static void fill_up_small(void)
{
	static const uint32_t one = 1;

	for (int i = 0; i < NR_SMALL; i++) {
		small_desc[i] = (struct pcpu__static_desc){(void **)&small_handle[i], 4, 4, &one,
							   "small", NULL};
		pcpu__static_register(&small_desc[i]);
		ck_assert_uint_eq(*pcpu_ptr((uint32_t *)small_handle[i], 0), 1);
		if (pcpu_static_region_of(small_handle[i]) == PCPU_REGION_DYNAMIC)
			return;
	}
	ck_abort_msg("%d small variables and still no dynamic one", NR_SMALL);
}

/* Fill both regions (static, then reserved, then dynamic); return how many were made. */
static int register_until_dynamic(int *seen, int want_dynamic)
{
	int i, last = PCPU_REGION_STATIC;

	for (i = 0; i < RT_SIZE; i++)
		rt_init[i] = (unsigned char)(i * 7 + 1);
	for (i = 0; i < NR_RT && seen[PCPU_REGION_DYNAMIC] < want_dynamic; i++) {
		unsigned cpu;
		int where;

		rt_desc[i] = (struct pcpu__static_desc){(void **)&rt_handle[i], RT_SIZE, 8, rt_init,
							"rt", NULL};
		pcpu__static_register(&rt_desc[i]);
		ck_assert_ptr_nonnull(rt_handle[i]);
		where = pcpu_static_region_of(rt_handle[i]);
		/* static -> reserved -> dynamic, never back: nothing was freed meanwhile. */
		ck_assert_int_ge(where, last);
		last = where;
		seen[where]++;
		pcpu_for_each_cpu(cpu)
			ck_assert_int_eq(memcmp(pcpu_ptr((char *)rt_handle[i], cpu), rt_init,
						RT_SIZE), 0);
	}
	return i;
}

START_TEST(test_region_full_fallback)
{
	struct pcpu_stats st = stats_now();
	int seen[4] = {0}, n;
	size_t start = (pcpu_first.static_used + 7) & ~(size_t)7;
	size_t static_fit = start <= pcpu_first.static_size
				    ? (pcpu_first.static_size - start) / RT_SIZE : 0;
	int rsv_free0 = pcpu_first.reserved ? pcpu_first.reserved->map.free_bytes : 0;
	uint64_t cur0 = st.nr_cur_alloc;
	unsigned cpu;

	n = register_until_dynamic(seen, 3);
	ck_assert_int_eq(seen[PCPU_REGION_DYNAMIC], 3);
	/* The static region was used up to the last whole variable. */
	ck_assert_int_eq(seen[PCPU_REGION_STATIC], (int)static_fit);
	if (rsv_free0 >= 2 * RT_SIZE)
		ck_assert_int_gt(seen[PCPU_REGION_RESERVED], 0);
	/* Reserved and dynamic ones are counted as allocations; static ones are not. */
	st = stats_now();
	ck_assert_uint_eq(st.nr_cur_alloc,
			  cur0 + (uint64_t)seen[PCPU_REGION_RESERVED] + seen[PCPU_REGION_DYNAMIC]);
	if (pcpu_first.reserved)
		ck_assert_int_eq(pcpu_first.reserved->map.free_bytes,
				 rsv_free0 - seen[PCPU_REGION_RESERVED] * RT_SIZE);
	/* No two variables overlap: tag each, then check every tag. */
	for (int i = 0; i < n; i++)
		pcpu_for_each_cpu(cpu)
			memset(pcpu_ptr((char *)rt_handle[i], cpu), i & 0xff, RT_SIZE);
	for (int i = 0; i < n; i++)
		pcpu_for_each_cpu(cpu)
			for (int b = 0; b < RT_SIZE; b++)
				ck_assert_int_eq(((unsigned char *)pcpu_ptr((char *)rt_handle[i],
									     cpu))[b],
						 i & 0xff);
	/* The program's variables are still where they were. */
	ck_assert_int_eq(*pcpu_ptr(s_i32, 0), -5);
	ck_assert_int_eq(pcpu_verify(), 0);
	/* A main-program variable stays valid after unregistering (exit runs it). */
	pcpu__static_unregister(&rt_desc[n - 1]);
	ck_assert_ptr_nonnull(rt_handle[n - 1]);
	ck_assert_uint_eq(stats_now().nr_cur_alloc, st.nr_cur_alloc);
}
END_TEST

START_TEST(test_free_fallback_aborts)
{
	int seen[4] = {0}, n;
	int first_rsv = -1;

	n = register_until_dynamic(seen, 1);
	for (int i = 0; i < n; i++)
		if (first_rsv < 0 && pcpu_static_region_of(rt_handle[i]) == PCPU_REGION_RESERVED)
			first_rsv = i;
	expect_abort(free_it, rt_handle[n - 1], "fell back to a dynamic allocation");
	if (first_rsv >= 0)
		expect_abort(free_it, rt_handle[first_rsv], "PCPU_DEFINE");
	/* The aborted frees happened in children: here everything is intact. */
	ck_assert_int_eq(pcpu_verify(), 0);
}
END_TEST

#define DSO_NR_HANDLES 5

static void *dso_load(const char *path, void *h[DSO_NR_HANDLES])
{
	int (*check)(void **);
	void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);

	ck_assert_msg(dl != NULL, "dlopen: %s", dlerror());
	check = (int (*)(void **))dlsym(dl, "dso_check");
	ck_assert_ptr_nonnull(check);
	ck_assert_int_eq(check(h), 0);
	return dl;
}

START_TEST(test_dso_reserved_cycles)
{
	const char *path = getenv("PCPU_TEST_DSO");
	struct pcpu_stats st0, st;
	struct pcpu_chunk *rsv = pcpu_first.reserved;
	int rsv_free0 = rsv ? rsv->map.free_bytes : 0, want;
	void *h[DSO_NR_HANDLES], *first[DSO_NR_HANDLES];

	ck_assert_msg(path != NULL, "PCPU_TEST_DSO is not set");
	st0 = stats_now();
	/*
	 * Reserved when the program's reserved region has room, dynamic without one; with
	 * a little room, some of each.
	 */
	want = rsv && rsv_free0 >= 1024 ? PCPU_REGION_RESERVED
	       : !rsv			  ? PCPU_REGION_DYNAMIC
					  : 0;
	for (int i = 0; i < 1000; i++) {
		void *dl = dso_load(path, h);

		for (int j = 0; j < DSO_NR_HANDLES; j++) {
			int where = pcpu_static_region_of(h[j]);

			if (want)
				ck_assert_int_eq(where, want);
			else
				ck_assert(where == PCPU_REGION_RESERVED ||
					  where == PCPU_REGION_DYNAMIC);
		}
		if (i == 0) {
			memcpy(first, h, sizeof(h));
			st = stats_now();
			ck_assert_uint_eq(st.nr_cur_alloc, st0.nr_cur_alloc + DSO_NR_HANDLES);
			ck_assert_int_eq(pcpu_verify(), 0);
		}
		/* The handles are not freeable: the object's unloading frees them. */
		if (i == 1)
			expect_abort(free_it, h[0], "PCPU_DEFINE");
		ck_assert_int_eq(dlclose(dl), 0);
		/* Really unloaded, so its destructors ran. */
		ck_assert_ptr_null(dlopen(path, RTLD_NOW | RTLD_NOLOAD));
	}
	st = stats_now();
	ck_assert_uint_eq(st.nr_cur_alloc, st0.nr_cur_alloc);
	ck_assert_uint_eq(st.nr_alloc - st0.nr_alloc, 1000 * DSO_NR_HANDLES);
	ck_assert_uint_eq(st.nr_dealloc - st0.nr_dealloc, 1000 * DSO_NR_HANDLES);
	if (rsv)
		ck_assert_int_eq(rsv->map.free_bytes, rsv_free0);
	ck_assert_int_eq(pcpu_verify(), 0);
	/* The reserved region is reused, not leaked: the same areas come back. */
	if (want == PCPU_REGION_RESERVED) {
		void *dl = dso_load(path, h);

		ck_assert_int_eq(memcmp(h, first, sizeof(h)), 0);
		ck_assert_int_eq(dlclose(dl), 0);
	}
}
END_TEST

START_TEST(test_reserved_full_dso_falls_back)
{
	const char *path = getenv("PCPU_TEST_DSO");
	int seen[4] = {0};
	void *h[DSO_NR_HANDLES];
	struct pcpu_stats st0;
	void *dl;

	ck_assert_msg(path != NULL, "PCPU_TEST_DSO is not set");
	/* Use up the static and reserved regions, then load the object. */
	register_until_dynamic(seen, 1);
	fill_up_small();
	st0 = stats_now();
	dl = dso_load(path, h);
	for (int j = 0; j < DSO_NR_HANDLES; j++)
		ck_assert_int_eq(pcpu_static_region_of(h[j]), PCPU_REGION_DYNAMIC);
	ck_assert_uint_eq(stats_now().nr_cur_alloc, st0.nr_cur_alloc + DSO_NR_HANDLES);
	ck_assert_int_eq(dlclose(dl), 0);
	ck_assert_uint_eq(stats_now().nr_cur_alloc, st0.nr_cur_alloc);
	ck_assert_int_eq(pcpu_verify(), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("static");
	TCase *tc = tcase_create("static");

	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, test_mode);
	tcase_add_test(tc, test_first_chunk_layout);
	tcase_add_test(tc, test_initial_values);
	tcase_add_test(tc, test_regions_and_alignment);
	tcase_add_test(tc, test_every_op);
	tcase_add_test(tc, test_ptr_writes);
	tcase_add_test(tc, test_declare_other_unit);
	tcase_add_test(tc, test_threads_exact);
	tcase_add_test(tc, test_free_static_aborts);
	tcase_add_test(tc, test_region_full_fallback);
	tcase_add_test(tc, test_free_fallback_aborts);
	tcase_add_test(tc, test_dso_reserved_cycles);
	tcase_add_test(tc, test_reserved_full_dso_falls_back);
	suite_add_tcase(s, tc);
	/* Each test in its own process: several of them use up the regions on purpose. */
	return pcpu_check_run(s, CK_FORK);
}
