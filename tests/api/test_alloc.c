/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * The allocator through the public API: zeroed copies, alignment, distinct copies per CPU,
 * every error path (EINVAL, ENOMEM with nothing changed, bad frees that abort with a message
 * naming the address), handles that fault when dereferenced, and many allocations across
 * chunks checked with pcpu_verify(). Run under several fake topologies (PCPU_CONF), with the
 * expected CPU count in PCPU_TEST_NR_CPUS.
 */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pcpu.h>

#include "proc_util.h"
#include "test_util.h"
#include "../check_run.h"

static unsigned seed = 12345;

static unsigned rnd(void)
{
	seed = seed * 1103515245u + 12345u;
	return seed >> 8;
}

static uint64_t nr_alloc_now(void)
{
	struct pcpu_stats st = {.size = sizeof(st)};

	ck_assert_int_eq(pcpu_stats_get(&st), 0);
	return st.nr_cur_alloc;
}

START_TEST(test_topology)
{
	const char *want = getenv("PCPU_TEST_NR_CPUS");

	ck_assert_uint_gt(pcpu_nr_cpus(), 0);
	if (want)
		ck_assert_uint_eq(pcpu_nr_cpus(), (unsigned)atoi(want));
	ck_assert_uint_lt(pcpu_this_cpu(), pcpu_nr_cpus());
}
END_TEST

/*
 * The unit size the topology gets (PCPU_TEST_UNIT_KIB), which is also the largest
 * allocation: a unit's worth works, a byte more is EINVAL.
 */
START_TEST(test_unit_size)
{
	const char *want = getenv("PCPU_TEST_UNIT_KIB");
	struct pcpu_stats st = {.size = sizeof(st)};
	void *h;

	ck_assert_int_eq(pcpu_stats_get(&st), 0);
	if (want)
		ck_assert_uint_eq(st.unit_size, (size_t)atoi(want) << 10);
	h = pcpu_alloc(st.unit_size, 0, 0);
	ck_assert_ptr_nonnull(h);
	ck_assert(all_zero(h, st.unit_size));
	pcpu_free(h);
	errno = 0;
	ck_assert_ptr_null(pcpu_alloc(st.unit_size + 1, 0, 0));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(pcpu_verify(), 0);
}
END_TEST

START_TEST(test_zeroed_and_distinct)
{
	static const size_t sizes[] = {1, 2, 3, 4, 7, 8, 12, 16, 33, 64, 100, 256, 1000,
				       4096, 5000, 32768};

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		void *h = pcpu_alloc(sizes[i], 0, 0);
		unsigned cpu;

		ck_assert_ptr_nonnull(h);
		ck_assert(all_zero(h, sizes[i]));
		/* Copies never overlap: each CPU's pattern survives the others' writes. */
		fill(h, sizes[i], (unsigned)i);
		ck_assert(check(h, sizes[i], (unsigned)i, 0));
		pcpu_for_each_cpu(cpu) {
			if (cpu)
				ck_assert_ptr_ne(pcpu_ptr((char *)h, cpu), pcpu_ptr((char *)h, 0));
		}
		pcpu_free(h);
	}
	ck_assert_int_eq(pcpu_verify(), 0);
}
END_TEST

START_TEST(test_reuse_is_zeroed)
{
	/* A freed area handed out again must read zero in every unit. */
	for (int round = 0; round < 50; round++) {
		size_t size = 1 + rnd() % 300;
		void *h = pcpu_alloc(size, 0, 0);

		ck_assert_ptr_nonnull(h);
		ck_assert(all_zero(h, size));
		fill(h, size, (unsigned)round);
		pcpu_free(h);
	}
	ck_assert_int_eq(pcpu_verify(), 0);
}
END_TEST

START_TEST(test_alignment)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	for (size_t align = 1; align <= page; align <<= 1) {
		void *pad = pcpu_alloc(4, 4, 0);
		void *h = pcpu_alloc(24, align, 0);
		unsigned cpu;

		ck_assert_ptr_nonnull(h);
		pcpu_for_each_cpu(cpu)
			ck_assert_uint_eq((uintptr_t)pcpu_ptr((char *)h, cpu) % align, 0);
		pcpu_free(h);
		pcpu_free(pad);
	}
	/* align 0: natural, min(8, pow2 >= size). */
	{
		void *a = pcpu_alloc(2, 0, 0), *b = pcpu_alloc(100, 0, 0);

		ck_assert_uint_eq((uintptr_t)pcpu_ptr((char *)a, 0) % 2, 0);
		ck_assert_uint_eq((uintptr_t)pcpu_ptr((char *)b, 0) % 8, 0);
		pcpu_free(a);
		pcpu_free(b);
	}
}
END_TEST

/*
 * Cache colour (lib/chunk.h): the copies of a small object start at different cache lines
 * of their pages, one colour per unit for up to 64 units, so they spread over the cache
 * sets; objects aligned to more than a cache line keep that alignment in every copy (plain
 * chunks). PCPU_CONF colour=0 turns colour off: every copy at one page offset.
 */
static unsigned nr_colours_of(void *h)
{
	uint64_t seen = 0;
	unsigned cpu, n = 0;

	pcpu_for_each_cpu(cpu) {
		unsigned colour = (unsigned)((uintptr_t)pcpu_ptr((char *)h, cpu) % 4096 / 64);

		if (!(seen & (UINT64_C(1) << colour)))
			n++;
		seen |= UINT64_C(1) << colour;
	}
	return n;
}

START_TEST(test_colour)
{
	const char *conf = getenv("PCPU_CONF");
	bool off = conf && strstr(conf, "colour=0");
	unsigned nr = pcpu_nr_cpus(), want = off ? 1 : nr < 64 ? nr : 64;
	void *small[64], *big[8];

	/* Past the first chunk, which is plain: small objects skip it while colour is on. */
	for (int i = 0; i < 64; i++) {
		small[i] = pcpu_alloc(8 + (size_t)i % 5 * 8, i % 2 ? 64 : 0, 0);
		ck_assert_ptr_nonnull(small[i]);
		ck_assert_uint_eq(nr_colours_of(small[i]), want);
	}
	for (int i = 0; i < 8; i++) {
		unsigned cpu;
		size_t align = (size_t)128 << (i % 6);

		big[i] = pcpu_alloc(24, align, 0);
		ck_assert_ptr_nonnull(big[i]);
		pcpu_for_each_cpu(cpu)
			ck_assert_uint_eq((uintptr_t)pcpu_ptr((char *)big[i], cpu) % align, 0);
		ck_assert(all_zero(big[i], 24));
		fill(big[i], 24, (unsigned)i);
	}
	/* Both kinds side by side: each copy its own, every operation on the right one. */
	for (int i = 0; i < 64; i++) {
		ck_assert(all_zero(small[i], 8));
		fill(small[i], 8, (unsigned)i + 100);
	}
	for (int i = 0; i < 8; i++)
		ck_assert(check(big[i], 24, (unsigned)i, 0));
	for (int i = 0; i < 64; i++) {
		ck_assert(check(small[i], 8, (unsigned)i + 100, 0));
		pcpu_this_add((uint64_t __pcpu *)small[i], 1);
	}
	ck_assert_int_eq(pcpu_verify(), 0);
	for (int i = 0; i < 64; i++)
		pcpu_free(small[i]);
	for (int i = 0; i < 8; i++)
		pcpu_free(big[i]);
	ck_assert_int_eq(pcpu_verify(), 0);
}
END_TEST

START_TEST(test_alloc_type)
{
	struct s {
		long a;
		char b[20];
	} *h = pcpu_alloc_type(struct s);
	unsigned cpu;

	ck_assert_ptr_nonnull(h);
	pcpu_for_each_cpu(cpu) {
		ck_assert_int_eq(pcpu_ptr(h, cpu)->a, 0);
		pcpu_ptr(h, cpu)->a = cpu + 1;
		ck_assert_uint_eq((uintptr_t)pcpu_ptr(h, cpu) % _Alignof(struct s), 0);
	}
	pcpu_for_each_cpu(cpu)
		ck_assert_int_eq(pcpu_ptr(h, cpu)->a, (long)cpu + 1);
	pcpu_free(h);
	pcpu_free(NULL); /* no-op */
}
END_TEST

START_TEST(test_einval)
{
	struct pcpu_stats before = {.size = sizeof(before)}, after = {.size = sizeof(after)};
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	static const struct {
		size_t size, align;
		unsigned flags;
	} bad[] = {
		{0, 0, 0}, {8, 3, 0}, {8, 6, 0}, {8, 0, 0x100}, {SIZE_MAX, 0, 0},
		{(size_t)1 << 40, 8, 0}, {64u << 20, 8, 0},
	};

	ck_assert_int_eq(pcpu_stats_get(&before), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		ck_assert_ptr_null(pcpu_alloc(bad[i].size, bad[i].align, bad[i].flags));
		ck_assert_int_eq(errno, EINVAL);
	}
	errno = 0;
	ck_assert_ptr_null(pcpu_alloc(8, page * 2, 0));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_null(pcpu_alloc(8, page * 2, PCPU_NOWAIT));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(pcpu_stats_get(&after), 0);
	ck_assert_uint_eq(before.nr_alloc, after.nr_alloc);
	ck_assert_uint_eq(before.nr_chunks, after.nr_chunks);
	ck_assert_int_eq(pcpu_verify(), 0);
	/* The largest allocation the API promises. */
	{
		void *h = pcpu_alloc(32768, 0, 0);

		ck_assert_ptr_nonnull(h);
		ck_assert(all_zero(h, 32768));
		pcpu_free(h);
	}
}
END_TEST

START_TEST(test_enomem_changes_nothing)
{
	/* Run out of address space: every failure is ENOMEM, earlier allocations stay intact. */
	struct rlimit rl;
	void *keep[64];
	int n = 0, fails = 0;
	uint64_t live;

	for (int i = 0; i < 64; i++) {
		keep[i] = pcpu_alloc(100, 0, 0);
		ck_assert_ptr_nonnull(keep[i]);
		fill(keep[i], 100, (unsigned)i);
	}
	live = nr_alloc_now();
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	return; /* the sanitizers' shadow memory does not live with an address-space limit */
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
	return;
#endif
#endif
	{
		FILE *f = fopen("/proc/self/statm", "r");
		unsigned long vm_pages = 0;

		ck_assert_ptr_nonnull(f);
		ck_assert_int_eq(fscanf(f, "%lu", &vm_pages), 1);
		fclose(f);
		getrlimit(RLIMIT_AS, &rl);
		/* A little room above what is mapped now: a few chunks, then ENOMEM. */
		rl.rlim_cur = vm_pages * (unsigned long)sysconf(_SC_PAGESIZE) + (16u << 20);
		if (setrlimit(RLIMIT_AS, &rl))
			return;
	}
	for (int i = 0; i < 100000 && fails < 5; i++) {
		void *h = pcpu_alloc(32768, 0, 0);

		if (!h) {
			ck_assert_int_eq(errno, ENOMEM);
			ck_assert_uint_eq(nr_alloc_now(), live + (uint64_t)n);
			ck_assert_int_eq(pcpu_verify(), 0);
			fails++;
			continue;
		}
		n++;
	}
	ck_assert_int_gt(fails, 0);
	for (int i = 0; i < 64; i++) {
		ck_assert(check(keep[i], 100, (unsigned)i, 0));
		pcpu_free(keep[i]);
	}
	ck_assert_int_eq(pcpu_verify(), 0);
}
END_TEST

/* Run @fn in a child with stderr captured; return its status and what it printed. */
static int run_child(void (*fn)(void *), void *arg, char *out, size_t outlen)
{
	int fds[2];
	pid_t pid;
	int status;
	ssize_t n, total = 0;

	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(fds[1], 2);
		close(fds[0]);
		fn(arg);
		_exit(0);
	}
	close(fds[1]);
	while ((n = read(fds[0], out + total, outlen - 1 - (size_t)total)) > 0)
		total += n;
	out[total] = '\0';
	close(fds[0]);
	waitpid(pid, &status, 0);
	return status;
}

static void *bad_ptr;

static void do_free_bad(void *arg)
{
	(void)arg;
	pcpu_free(bad_ptr);
}

static void expect_abort(void *p)
{
	char out[512], want[64];
	int status;

	bad_ptr = p;
	status = run_child(do_free_bad, NULL, out, sizeof(out));
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
		      "free of %p did not abort", p);
	snprintf(want, sizeof(want), "%p", p);
	ck_assert_msg(strstr(out, want) != NULL, "message does not name %s: %s", want, out);
	ck_assert_msg(strchr(out, '\n') == strrchr(out, '\n'), "more than one line: %s", out);
}

START_TEST(test_bad_free)
{
	void *h = pcpu_alloc(64, 0, 0), *g = pcpu_alloc(8, 0, 0);
	void *m = malloc(16);
	int local;

	ck_assert_ptr_nonnull(h);
	expect_abort((char *)h + 4);           /* interior */
	expect_abort((char *)h + 1);           /* unaligned interior */
	expect_abort((void *)(uintptr_t)0x1234); /* garbage */
	expect_abort(m);                       /* someone else's memory */
	expect_abort(&local);                  /* the stack */
	expect_abort(pcpu_ptr((char *)h, 0));  /* a copy, not the handle */
#ifdef PCPU__COLOUR_BIT
	{
		/* A handle with its colour bit flipped names no object (lib/chunk.h). */
		void *big = pcpu_alloc(64, 4096, 0);
		uintptr_t bit = (uintptr_t)1 << PCPU__COLOUR_BIT;

		ck_assert_ptr_nonnull(big);
		expect_abort((void *)((uintptr_t)big ^ bit));
		expect_abort((void *)((uintptr_t)g ^ bit));
		pcpu_free(big);
	}
#endif
	pcpu_free(g);
	expect_abort(g);                       /* double free */
	/* The parent's state is untouched by all of that. */
	ck_assert_int_eq(pcpu_verify(), 0);
	pcpu_free(h);
	free(m);
}
END_TEST

static void do_deref(void *arg)
{
	volatile long *p = arg;

	(void)*p;
}

START_TEST(test_handle_faults)
{
	long *h = pcpu_alloc_type(long);
	char out[256];
	int status = run_child(do_deref, h, out, sizeof(out));

	ck_assert(WIFSIGNALED(status));
#if defined(__SANITIZE_ADDRESS__)
	/* ASan catches the fault itself and, with abort_on_error, ends with SIGABRT. */
	ck_assert(WTERMSIG(status) == SIGSEGV || WTERMSIG(status) == SIGBUS ||
		  WTERMSIG(status) == SIGABRT);
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
	ck_assert(WTERMSIG(status) == SIGSEGV || WTERMSIG(status) == SIGBUS ||
		  WTERMSIG(status) == SIGABRT);
#else
	ck_assert(WTERMSIG(status) == SIGSEGV || WTERMSIG(status) == SIGBUS);
#endif
#else
	ck_assert(WTERMSIG(status) == SIGSEGV || WTERMSIG(status) == SIGBUS);
#endif
	pcpu_free(h);
}
END_TEST

START_TEST(test_many)
{
	/* Mixed sizes across several chunks, freed in random order, verified along the way. */
	enum { N = 20000 };
	/*
	 * Under a sanitizer on fake machines of over 256 CPUs, 5,000 (still several chunks): its
	 * checker poisons and unpoisons every copy on each allocation and free, and 20,000 at
	 * 4096x64 took 39 s under ASan.
	 */
	const int n = SHADOW_MEMORY && pcpu_nr_cpus() > 256 ? N / 4 : N;
	void **h = calloc(N, sizeof(*h));
	size_t *sz = calloc(N, sizeof(*sz));

	for (int i = 0; i < n; i++) {
		sz[i] = (rnd() % 8) ? 1 + rnd() % 64 : 1 + rnd() % 4096;
		h[i] = pcpu_alloc(sz[i], 0, 0);
		ck_assert_ptr_nonnull(h[i]);
		*(unsigned char *)pcpu_ptr((unsigned char *)h[i], pcpu_nr_cpus() - 1) = (unsigned char)i;
		if (i % (n / 4) == 0)
			ck_assert_int_eq(pcpu_verify(), 0);
	}
	for (int i = n - 1; i > 0; i--) {
		int j = (int)(rnd() % (unsigned)(i + 1));
		void *t = h[i];
		size_t s = sz[i];

		h[i] = h[j];
		sz[i] = sz[j];
		h[j] = t;
		sz[j] = s;
	}
	for (int i = 0; i < n; i++) {
		pcpu_free(h[i]);
		if (i % (n / 4) == 0)
			ck_assert_int_eq(pcpu_verify(), 0);
	}
	ck_assert_int_eq(pcpu_verify(), 0);
	free(h);
	free(sz);
}
END_TEST

START_TEST(test_init_twice)
{
	struct pcpu_config cfg = {.size = sizeof(cfg)};

	(void)pcpu_nr_cpus();
	errno = 0;
	ck_assert_int_eq(pcpu_init(&cfg), -1);
	ck_assert_int_eq(errno, EBUSY);
}
END_TEST

START_TEST(test_init_bad_config)
{
	struct pcpu_config cfg = {.size = sizeof(cfg), .unit_size = 12345};

	errno = 0;
	ck_assert_int_eq(pcpu_init(&cfg), -1);
	ck_assert_int_eq(errno, EINVAL);
	cfg.unit_size = 0;
	cfg.size = 0;
	ck_assert_int_eq(pcpu_init(&cfg), -1);
	ck_assert_int_eq(errno, EINVAL);
	/* A good one still works afterwards. */
	cfg.size = sizeof(cfg);
	cfg.unit_size = 128 << 10;
	ck_assert_int_eq(pcpu_init(&cfg), 0);
	{
		struct pcpu_stats st = {.size = sizeof(st)};

		ck_assert_int_eq(pcpu_stats_get(&st), 0);
		ck_assert_uint_eq(st.unit_size, 128 << 10);
	}
}
END_TEST

static Suite *alloc_suite(void)
{
	Suite *s = suite_create("alloc");
	TCase *tc = tcase_create("api");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_topology);
	tcase_add_test(tc, test_unit_size);
	tcase_add_test(tc, test_zeroed_and_distinct);
	tcase_add_test(tc, test_reuse_is_zeroed);
	tcase_add_test(tc, test_alignment);
	tcase_add_test(tc, test_colour);
	tcase_add_test(tc, test_alloc_type);
	tcase_add_test(tc, test_einval);
	tcase_add_test(tc, test_enomem_changes_nothing);
	tcase_add_test(tc, test_bad_free);
	tcase_add_test(tc, test_handle_faults);
	tcase_add_test(tc, test_many);
	tcase_add_test(tc, test_init_twice);
	tcase_add_test(tc, test_init_bad_config);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	const char *s = getenv("PCPU_TEST_SEED");

	if (s)
		seed = (unsigned)atoi(s);
	return pcpu_check_run(alloc_suite(), CK_FORK_GETENV);
}
