/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * Lazy population (issue 11): a process that may run on one CPU of a large (fake) machine
 * pays memory for the copies it writes, not for every possible CPU.
 *
 * main() pins the process to one CPU (CPU 1 when there is one: the same as starting it
 * under `taskset -c 1`) before anything initialises the library. Each test runs in its own
 * forked child (Check's fork mode, forced) and appends its fake topology to PCPU_CONF before
 * its first libpcpu call, so every test starts a fresh library under the CPU mode the
 * suite's environment asks for (glibc, own or getcpu).
 *
 *   lazy_cpu       topology=64x4: 1,000,000 8-byte objects, each bumped once with
 *                  pcpu_this_inc(); the sum over all 64 copies of each is exactly 1, the
 *                  copy of pcpu_this_cpu() holds it, and resident memory grows by less
 *                  than two units' worth of the objects (2 x 8 MiB) plus 4 MiB.
 *   lazy_cid       the same with index=cid: the copy written is copy 0.
 *   read_unwritten reading all 64 copies of 200,000 objects nobody wrote costs nothing.
 *   big_topology   topology=4096x64: 100,000 8-byte objects, written through this CPU,
 *                  16 of them read through all 4096 copies: memory grows by a few units, not 4096.
 *
 * Resident memory is RSS from /proc/self/statm. Under ASan or TSan, whose shadow memory
 * grows with what the program touches, the memory bounds are not checked (sums are).
 */
#include <check.h>
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <pcpu.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SHADOW_MEMORY 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||                 \
	__has_feature(memory_sanitizer)
#define SHADOW_MEMORY 1
#endif
#endif
#ifndef SHADOW_MEMORY
#define SHADOW_MEMORY 0
#endif

#define MIB ((size_t)1 << 20)

/*
 * For loops of a million checks: ck_assert() records a checkpoint on every success
 * (Check's _mark_point), and a million of them cost megabytes of the very memory these
 * tests measure. REQUIRE costs nothing until it fails.
 */
#define REQUIRE(cond, ...)                                                                    \
	do {                                                                                  \
		if (!(cond))                                                                  \
			ck_abort_msg(__VA_ARGS__);                                            \
	} while (0)

static int pinned_cpu = -1;

static size_t rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long size = 0, resident = 0;

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fscanf(f, "%lu %lu", &size, &resident), 2);
	fclose(f);
	return resident * (size_t)sysconf(_SC_PAGESIZE);
}

/* Append @extra to PCPU_CONF (keeping the suite's cpu_mode) before the library starts. */
static void conf_add(const char *extra)
{
	const char *old = getenv("PCPU_CONF");
	char buf[256];

	if (old && *old)
		snprintf(buf, sizeof(buf), "%s,%s", old, extra);
	else
		snprintf(buf, sizeof(buf), "%s", extra);
	ck_assert_int_eq(setenv("PCPU_CONF", buf, 1), 0);
}

static int index_mode(void)
{
	struct pcpu_stats st = {.size = sizeof(st)};

	ck_assert_int_eq(pcpu_stats_get(&st), 0);
	return st.index_mode;
}

/*
 * Does a read of a never-written anonymous page map the shared zero page (costing no
 * memory)? Not on every kernel: some virtual machines' kernels turn it off (for example
 * the pvm_no_zero_page=1 boot option), and there every read of a never-written copy costs
 * a page, whatever the library does. The bounds that involve such reads are then only
 * reported, and the bounds on writing are checked before any of them.
 */
static int kernel_has_zero_page(void)
{
	static int known = -1;
	size_t len = 16 * MIB, base;
	volatile char *p;
	unsigned s = 0;

	if (known >= 0)
		return known;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert(p != MAP_FAILED);
	madvise((void *)p, len, MADV_NOHUGEPAGE);
	base = rss_bytes();
	for (size_t o = 0; o < len; o += 4096)
		s += (unsigned)p[o];
	known = s == 0 && rss_bytes() < base + len / 4;
	munmap((void *)p, len);
	if (!known)
		fprintf(stderr, "NOTE: this kernel maps no zero page (reading a never-written page "
				"allocates it): read-side memory bounds are reported, not checked\n");
	return known;
}

/* Check a memory bound; @reads: the growth includes reads of never-written copies. */
static void check_bound(const char *what, size_t grew, size_t limit, int reads)
{
	int check = !SHADOW_MEMORY && (!reads || kernel_has_zero_page());

	fprintf(stderr, "%s: mode %d, index %d, RSS grew %.1f MiB (limit %.1f MiB)%s\n", what,
		(int)pcpu_cpu_mode(), index_mode(), (double)grew / MIB, (double)limit / MIB,
		check ? "" : " [not checked]");
	if (check)
		ck_assert_msg(grew <= limit, "%s: RSS grew %zu bytes, limit %zu", what, grew, limit);
}

/* Bytes the RSS grew by since @base (0 when it shrank). */
static size_t grown(size_t base)
{
	size_t now = rss_bytes();

	return now > base ? now - base : 0;
}

/*
 * The issue 11 scenario: @n 8-byte objects bumped once each through this CPU, every sum
 * over all copies exact; @want_copy is the copy that must hold the increments (-1: the
 * copy pcpu_this_cpu() names).
 */
static void bump_and_sum(size_t n, int want_copy, const char *what)
{
	uint64_t **h = malloc(n * sizeof(*h));
	unsigned nr = pcpu_nr_cpus(), copy, cpu;
	size_t base, i, limit;

	ck_assert_ptr_nonnull(h);
	memset(h, 0, n * sizeof(*h));
	/* The library is up (pcpu_nr_cpus) and the handle table resident: the baseline. */
	base = rss_bytes();
	copy = want_copy >= 0 ? (unsigned)want_copy : pcpu_this_cpu();
	ck_assert_uint_lt(copy, nr);
	for (i = 0; i < n; i++) {
		h[i] = pcpu_alloc(sizeof(uint64_t), 0, 0);
		REQUIRE(h[i] != NULL, "alloc %zu failed: errno %d", i, errno);
		pcpu_this_inc(h[i]);
	}
	/* One thread, one allowed CPU: the index never changed. */
	ck_assert_uint_eq(pcpu_this_cpu(), copy);
	/* 8 MiB of objects per unit for 1M: at most two units (the written and the allowed
	 * CPU's prefaulted one) plus metadata. */
	limit = 2 * n * sizeof(uint64_t) + 4 * MIB;
	check_bound(what, grown(base), limit, 0);
	for (i = 0; i < n; i++) {
		uint64_t sum = 0;

		pcpu_for_each_cpu(cpu)
			sum += *pcpu_ptr(h[i], cpu);
		REQUIRE(sum == 1, "object %zu: sum %llu over %u copies", i, (unsigned long long)sum,
			nr);
		REQUIRE(*pcpu_ptr(h[i], copy) == 1, "object %zu: copy %u is %llu", i, copy,
			(unsigned long long)*pcpu_ptr(h[i], copy));
	}
	/* Reading every copy of everything costs nothing more (where reads are free). */
	check_bound("  and after summing every copy", grown(base), limit, 1);
	ck_assert_int_eq(pcpu_verify(), 0);
	for (i = 0; i < n; i++)
		pcpu_free(h[i]);
	ck_assert_int_eq(pcpu_verify(), 0);
	free(h);
}

START_TEST(test_lazy_cpu)
{
	conf_add("topology=64x4");
	ck_assert_uint_eq(pcpu_nr_cpus(), 64);
	ck_assert_int_eq(index_mode(), PCPU_INDEX_CPU);
	if (pcpu_cpu_mode() != PCPU_MODE_GETCPU && pinned_cpu >= 0)
		ck_assert_int_eq((int)pcpu_this_cpu(), pinned_cpu);
	bump_and_sum(1000000, -1, "lazy_cpu");
}
END_TEST

START_TEST(test_lazy_cid)
{
	conf_add("topology=64x4,index=cid");
	ck_assert_uint_eq(pcpu_nr_cpus(), 64);
	if (index_mode() != PCPU_INDEX_CID) {
		/* getcpu mode, or a kernel without mm_cid: the library says it fell back. */
		fprintf(stderr, "lazy_cid: index=cid fell back to cpu (mode %d)\n",
			(int)pcpu_cpu_mode());
		bump_and_sum(1000000, -1, "lazy_cid (fallback)");
		return;
	}
	/* One thread in the process: its concurrency id is 0. */
	ck_assert_uint_eq(pcpu_this_cpu(), 0);
	bump_and_sum(1000000, 0, "lazy_cid");
}
END_TEST

START_TEST(test_read_unwritten)
{
	enum { N = 200000 };
	uint64_t **h = calloc(N, sizeof(*h));
	unsigned cpu;
	size_t base;
	uint64_t sum = 0;

	conf_add("topology=64x4");
	ck_assert_ptr_nonnull(h);
	ck_assert_uint_eq(pcpu_nr_cpus(), 64);
	for (size_t i = 0; i < N; i++) {
		h[i] = pcpu_alloc(sizeof(uint64_t), 0, 0);
		REQUIRE(h[i] != NULL, "alloc %zu failed: errno %d", i, errno);
	}
	base = rss_bytes();
	for (int round = 0; round < 2; round++)
		for (size_t i = 0; i < N; i++)
			pcpu_for_each_cpu(cpu)
				sum += *(volatile uint64_t *)pcpu_ptr(h[i], cpu);
	REQUIRE(sum == 0, "never-written copies read %llu", (unsigned long long)sum);
	/* Page tables for the zero page mappings are not RSS; allow stdio and the like. */
	check_bound("read_unwritten", grown(base), MIB, 1);
	for (size_t i = 0; i < N; i++)
		pcpu_free(h[i]);
	ck_assert_int_eq(pcpu_verify(), 0);
	free(h);
}
END_TEST

START_TEST(test_big_topology)
{
	enum { N = 100000 };
	uint64_t **h = calloc(N, sizeof(*h));
	unsigned cpu, copy;
	size_t base, unit_bytes = N * sizeof(uint64_t);

	conf_add("topology=4096x64");
	ck_assert_ptr_nonnull(h);
	ck_assert_uint_eq(pcpu_nr_cpus(), 4096);
	base = rss_bytes();
	for (size_t i = 0; i < N; i++) {
		h[i] = pcpu_alloc(sizeof(uint64_t), 0, 0);
		REQUIRE(h[i] != NULL, "alloc %zu failed: errno %d", i, errno);
		pcpu_this_add(h[i], i);
	}
	copy = pcpu_this_cpu();
	/* A few units' worth (written, allowed, metadata), nowhere near 4096 of them. */
	check_bound("big_topology", grown(base), 4 * unit_bytes + 8 * MIB, 0);
	for (size_t i = 0; i < N; i++) {
		uint64_t sum = 0;

		REQUIRE(*pcpu_ptr(h[i], copy) == i, "object %zu: copy %u is %llu", i, copy,
			(unsigned long long)*pcpu_ptr(h[i], copy));
		/* Every copy of 16 objects spread over the chunks (reads fault pages in where
		 * the kernel has no zero page: 4096 x 16 of them). */
		if (i % (N / 16))
			continue;
		pcpu_for_each_cpu(cpu)
			sum += *pcpu_ptr(h[i], cpu);
		REQUIRE(sum == i, "object %zu: sum %llu over 4096 copies", i, (unsigned long long)sum);
	}
	check_bound("  and after reading every copy", grown(base), 4 * unit_bytes + 8 * MIB, 1);
	ck_assert_int_eq(pcpu_verify(), 0);
	for (size_t i = 0; i < N; i++)
		pcpu_free(h[i]);
	ck_assert_int_eq(pcpu_verify(), 0);
	free(h);
}
END_TEST

/* Pin to one CPU, as `taskset -c 1` would: CPU 1 when allowed, else the first allowed. */
static void pin_one_cpu(void)
{
	cpu_set_t set;
	int cpu = -1;

	if (sched_getaffinity(0, sizeof(set), &set))
		return;
	if (CPU_ISSET(1, &set))
		cpu = 1;
	for (int c = 0; cpu < 0 && c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &set))
			cpu = c;
	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) == 0)
		pinned_cpu = cpu;
}

int main(void)
{
	Suite *s = suite_create("lazy");
	TCase *tc = tcase_create("lazy");
	SRunner *sr;
	int failed;

	/* Before any libpcpu call: population must see the narrowed affinity. */
	pin_one_cpu();
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_lazy_cpu);
	tcase_add_test(tc, test_lazy_cid);
	tcase_add_test(tc, test_read_unwritten);
	tcase_add_test(tc, test_big_topology);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	/* Each test needs a library of its own: its own topology and RSS baseline. */
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
