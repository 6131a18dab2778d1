/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * Lazy population (issue 11): a process that may run on one CPU of a large (fake) machine
 * pays memory for the copies it writes, not for every possible CPU; and reading a copy
 * nobody wrote costs nothing, also on kernels that map no zero page on a read fault of
 * never-written anonymous memory (pvm_no_zero_page=1), where the library maps its units
 * as private views of a memfd instead (the memfd zero source, lib/chunk.h).
 *
 * main() pins the process to one CPU (CPU 1 when there is one: the same as starting it
 * under `taskset -c 1`) before anything initialises the library. Each test runs in its own
 * forked child (Check's fork mode, forced) and appends its fake topology to PCPU_CONF (and
 * sets PCPU__ZERO_SOURCE when it forces one) before its first libpcpu call, so every test
 * starts a fresh library under the CPU mode the suite's environment asks for (glibc, own
 * or getcpu).
 *
 *   lazy_cpu       topology=64x4: 1,000,000 8-byte objects (250,000 under a sanitizer),
 *                  each bumped once with pcpu_this_inc(); the sum over all 64 copies of
 *                  each is exactly 1, the copy of pcpu_this_cpu() holds it; memory grows
 *                  by the units written or prefaulted (8 MiB each) plus 4 MiB after the
 *                  writes, and after reading every copy by at most one more unit per memfd
 *                  (the shared page-cache pages never-written copies read) where reads are
 *                  free.
 *   lazy_cid       the same with index=cid: the copy written is copy 0.
 *   lazy_*_memfd   the same with PCPU__ZERO_SOURCE=memfd (skipped where the probe picks
 *                  memfd anyway: they would repeat lazy_cpu and lazy_cid).
 *   lazy_cpu_anon  PCPU__ZERO_SOURCE=anon: where the kernel maps no zero page the reads
 *                  cannot be free, and only the writes are bounded.
 *   read_unwritten reading all 64 copies of 200,000 objects nobody wrote costs nothing.
 *   big_topology   topology=4096x64: 100,000 8-byte objects (40,000 under a sanitizer),
 *                  written through this CPU, 16 of them read through all 4096 copies:
 *                  memory grows by a few units, not 4096.
 *   drain_unwritten  memfd: freeing objects whose other copies were only read makes the
 *                  zeroing drain write nothing there: no private page appears, and the
 *                  statistics show resident memory in the written unit only.
 *   repopulate     memfd: pages written in every unit, freed, given back by pcpu_trim() and
 *                  populated again read zero in every unit, and cost nothing until written.
 *
 * Memory is the proportional set size (Pss) from /proc/self/smaps_rollup: a page mapped
 * many times in the process (the zero page, a memfd's page-cache page) counts once there,
 * where VmRSS counts it once per mapping; VmRSS and RssAnon are printed for the record.
 * Under ASan or TSan, whose shadow memory grows with what the program touches, the memory
 * bounds are not checked (sums are).
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

#include "proc_util.h"
#include "../check_run.h"

#define MIB ((size_t)1 << 20)
#define KIB ((size_t)1 << 10)

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

/* Memory figures, in bytes. */
struct mem {
	size_t pss, anon;  /* smaps_rollup: Pss, Anonymous (private pages of our own) */
	size_t rss, rss_anon; /* status: VmRSS, RssAnon */
};

static struct mem mem_now(void)
{
	struct mem m;

	m.pss = (size_t)proc_kb("/proc/self/smaps_rollup", "Pss");
	m.anon = (size_t)proc_kb("/proc/self/smaps_rollup", "Anonymous");
	m.rss = (size_t)proc_kb("/proc/self/status", "VmRSS");
	m.rss_anon = (size_t)proc_kb("/proc/self/status", "RssAnon");
	return m;
}

static double grew_mib(size_t now, size_t base)
{
	return now > base ? (double)(now - base) / MIB : -(double)(base - now) / MIB;
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

static void force_source(const char *src)
{
	ck_assert_int_eq(setenv("PCPU__ZERO_SOURCE", src, 1), 0);
}

static int index_mode(void)
{
	struct pcpu_stats st = {.size = sizeof(st)};

	ck_assert_int_eq(pcpu_stats_get(&st), 0);
	return st.index_mode;
}

/* The statistics in JSON (malloc'd). */
static char *stats_json(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	ck_assert_ptr_nonnull(f);
	pcpu_stats_print_json(f);
	fclose(f);
	ck_assert_ptr_nonnull(buf);
	return buf;
}

/* The number after "@key": in @s, or -1. */
static long long json_num(const char *s, const char *key)
{
	char k[64];
	const char *p;

	snprintf(k, sizeof(k), "\"%s\":", key);
	p = strstr(s, k);
	return p ? strtoll(p + strlen(k), NULL, 10) : -1;
}

/*
 * The library's zero source ("anon" or "memfd") and its memfd fallback count. The statistics
 * allocate (a JSON snapshot of a million allocations takes megabytes of malloc'd memory
 * that glibc may keep): call this outside the measurements.
 */
static int lib_source_memfd(long long *fallbacks)
{
	char *s = stats_json();
	int memfd;

	ck_assert_msg(strstr(s, "\"zero_source\":\""), "no zero_source in the stats");
	memfd = strstr(s, "\"zero_source\":\"memfd\"") != NULL;
	if (fallbacks)
		*fallbacks = json_num(s, "memfd_fallbacks");
	free(s);
	return memfd;
}

/*
 * Does a read of a never-written anonymous page map the shared zero page (costing no
 * memory)? Not on every kernel: some virtual machines' kernels turn it off (for example
 * the pvm_no_zero_page=1 boot option), and there every read of a never-written copy of an
 * anonymous chunk costs a page. The library then maps memfd views (memfd zero source).
 * Measured here independently of the library's own probe, which it checks.
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
	base = mem_now().rss_anon;
	for (size_t o = 0; o < len; o += 4096)
		s += (unsigned)p[o];
	known = s == 0 && mem_now().rss_anon < base + len / 4;
	munmap((void *)p, len);
	return known;
}

/*
 * Where do reads of never-written copies cost nothing? With the memfd zero source (minus
 * chunks that fell back to anonymous memory), or anonymous memory on a kernel with the
 * zero page. @why: the reason when not.
 */
static int reads_free(const char **why)
{
	long long fallbacks = 0;
	int memfd = lib_source_memfd(&fallbacks);

	*why = NULL;
	if (SHADOW_MEMORY)
		*why = "sanitizer shadow memory";
	else if (memfd && fallbacks)
		*why = "some chunks fell back to anonymous memory (memfd_fallbacks)";
	else if (!memfd && !kernel_has_zero_page())
		*why = "anon zero source on a kernel that maps no zero page: every read of a "
		       "never-written copy allocates a page";
	return !*why;
}

/*
 * Memfds per chunk of topology NxM with @nodes fake nodes: one per machine node the fake
 * nodes bind to and one for those the machine lacks; one in all on a machine with one node
 * (lib/chunk.c group_memfd_key()). Each can add a unit's worth of shared page-cache pages
 * once every copy is read.
 */
static unsigned memfds_per_chunk(unsigned nodes)
{
	unsigned have = 0, n = 0;
	char path[64];

	for (unsigned i = 0; i < 1024; i++) {
		snprintf(path, sizeof(path), "/sys/devices/system/node/node%u", i);
		if (access(path, F_OK) == 0) {
			have++;
			n += i < nodes;
		}
	}
	if (have <= 1)
		return 1;
	return n + (n < nodes);
}

/*
 * Check a memory bound on Pss growth from @base to @now; @checked: else only reported,
 * with @why.
 */
static void check_bound(const char *what, const struct mem *base, const struct mem *now,
			size_t limit, int checked, const char *why)
{
	struct mem m = *now;
	size_t grew = m.pss > base->pss ? m.pss - base->pss : 0;

	fprintf(stderr,
		"%s: mode %d, index %d: Pss grew %.1f MiB (limit %.1f MiB), VmRSS %.1f MiB, "
		"RssAnon %.1f MiB%s%s%s\n",
		what, (int)pcpu_cpu_mode(), index_mode(), grew_mib(m.pss, base->pss),
		(double)limit / MIB, grew_mib(m.rss, base->rss),
		grew_mib(m.rss_anon, base->rss_anon), checked ? "" : " [not checked: ",
		checked ? "" : why, checked ? "" : "]");
	if (checked)
		ck_assert_msg(grew <= limit, "%s: Pss grew %zu bytes, limit %zu", what, grew,
			      limit);
}

/* Is @cpu one the process may run on? */
static int cpu_allowed(unsigned cpu)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set))
		return 0;
	return cpu < CPU_SETSIZE && CPU_ISSET(cpu, &set);
}

static unsigned nr_allowed(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set))
		return 1;
	return (unsigned)CPU_COUNT(&set);
}

/*
 * The issue 11 scenario: @n 8-byte objects bumped once each through this CPU, every sum
 * over all copies exact; @want_copy is the copy that must hold the increments (-1: the
 * copy pcpu_this_cpu() names).
 */
static void bump_and_sum(size_t n, int want_copy, const char *what)
{
	uint64_t **h = malloc(n * sizeof(*h));
	unsigned nr = pcpu_nr_cpus(), copy, cpu, units;
	size_t i, unit_bytes = n * sizeof(uint64_t), limit;
	const char *why = NULL;
	int free_reads, memfd = lib_source_memfd(NULL);
	struct mem base, now;

	ck_assert_ptr_nonnull(h);
	memset(h, 0, n * sizeof(*h));
	/* The library is up (pcpu_nr_cpus) and the handle table resident: the baseline. */
	base = mem_now();
	copy = want_copy >= 0 ? (unsigned)want_copy : pcpu_this_cpu();
	ck_assert_uint_lt(copy, nr);
	for (i = 0; i < n; i++) {
		h[i] = pcpu_alloc(sizeof(uint64_t), 0, 0);
		REQUIRE(h[i] != NULL, "alloc %zu failed: errno %d", i, errno);
		pcpu_this_inc(h[i]);
	}
	/* One thread, one allowed CPU: the index never changed. */
	ck_assert_uint_eq(pcpu_this_cpu(), copy);
	/*
	 * 8 MiB of objects per unit for 1M: at most two units (the written and the allowed
	 * CPU's prefaulted one, the same in index=cpu) plus metadata.
	 */
	units = nr_allowed() + !cpu_allowed(copy);
	limit = (units > 2 ? units : 2) * unit_bytes + 4 * MIB;
	now = mem_now();
	check_bound(what, &base, &now, limit, !SHADOW_MEMORY, "sanitizer shadow memory");
	for (i = 0; i < n; i++) {
		uint64_t sum = 0;

		pcpu_for_each_cpu(cpu)
			sum += *pcpu_ptr(h[i], cpu);
		REQUIRE(sum == 1, "object %zu: sum %llu over %u copies", i, (unsigned long long)sum,
			nr);
		REQUIRE(*pcpu_ptr(h[i], copy) == 1, "object %zu: copy %u is %llu", i, copy,
			(unsigned long long)*pcpu_ptr(h[i], copy));
	}
	/*
	 * Reading every copy of everything costs at most the page-cache pages the memfds'
	 * views share: a unit's worth per memfd, counted once in Pss however many units map
	 * them (none with the anonymous zero page).
	 */
	now = mem_now();
	free_reads = reads_free(&why);
	if (memfd)
		limit += memfds_per_chunk(4) * unit_bytes;
	check_bound("  and after summing every copy", &base, &now, limit, free_reads, why);
	ck_assert_int_eq(pcpu_verify(), 0);
	for (i = 0; i < n; i++)
		pcpu_free(h[i]);
	ck_assert_int_eq(pcpu_verify(), 0);
	free(h);
}

/* The library must pick memfd exactly where the kernel maps no zero page. */
static void check_probe(void)
{
	int memfd = lib_source_memfd(NULL);

	fprintf(stderr, "zero source: %s (kernel %s the zero page)\n", memfd ? "memfd" : "anon",
		kernel_has_zero_page() ? "maps" : "does not map");
	ck_assert_int_eq(memfd, !kernel_has_zero_page());
}

/*
 * Objects bumped by lazy_cpu and lazy_cid: a million, 250,000 under a sanitizer (still 8
 * chunks of 256 KiB units; the memory bounds that need the full count are not checked
 * there, the sums are), where the five tests that bump them took 20 s of ASan's 80 s.
 */
#define NR_BUMPED (SHADOW_MEMORY ? 250000 : 1000000)

static void lazy_cpu(const char *what)
{
	conf_add("topology=64x4");
	ck_assert_uint_eq(pcpu_nr_cpus(), 64);
	ck_assert_int_eq(index_mode(), PCPU_INDEX_CPU);
	if (pcpu_cpu_mode() != PCPU_MODE_GETCPU && pinned_cpu >= 0)
		ck_assert_int_eq((int)pcpu_this_cpu(), pinned_cpu);
	bump_and_sum(NR_BUMPED, -1, what);
}

static void lazy_cid(const char *what)
{
	char buf[128];

	conf_add("topology=64x4,index=cid");
	ck_assert_uint_eq(pcpu_nr_cpus(), 64);
	if (index_mode() != PCPU_INDEX_CID) {
		/* getcpu mode, or a kernel without mm_cid: the library says it fell back. */
		fprintf(stderr, "%s: index=cid fell back to cpu (mode %d)\n", what,
			(int)pcpu_cpu_mode());
		snprintf(buf, sizeof(buf), "%s (fallback)", what);
		bump_and_sum(NR_BUMPED, -1, buf);
		return;
	}
	/* One thread in the process: its concurrency id is 0. */
	ck_assert_uint_eq(pcpu_this_cpu(), 0);
	bump_and_sum(NR_BUMPED, 0, what);
}

START_TEST(test_lazy_cpu)
{
	lazy_cpu("lazy_cpu");
	check_probe();
}
END_TEST

START_TEST(test_lazy_cid)
{
	lazy_cid("lazy_cid");
	check_probe();
}
END_TEST

/* Forcing memfd repeats lazy_cpu/lazy_cid where the probe picks it: skip those. */
static int memfd_is_default(const char *what)
{
	if (kernel_has_zero_page())
		return 0;
	fprintf(stderr, "%s: the probe picks memfd on this kernel: covered by %.8s\n", what,
		what);
	return 1;
}

START_TEST(test_lazy_cpu_memfd)
{
	if (memfd_is_default("lazy_cpu_memfd"))
		return;
	force_source("memfd");
	lazy_cpu("lazy_cpu_memfd");
	ck_assert(lib_source_memfd(NULL));
}
END_TEST

START_TEST(test_lazy_cid_memfd)
{
	if (memfd_is_default("lazy_cid_memfd"))
		return;
	force_source("memfd");
	lazy_cid("lazy_cid_memfd");
	ck_assert(lib_source_memfd(NULL));
}
END_TEST

START_TEST(test_lazy_cpu_anon)
{
	force_source("anon");
	lazy_cpu("lazy_cpu_anon");
	ck_assert(!lib_source_memfd(NULL));
}
END_TEST

START_TEST(test_read_unwritten)
{
	enum { N = 200000 };
	uint64_t **h = calloc(N, sizeof(*h));
	unsigned cpu;
	struct mem base, now;
	uint64_t sum = 0;
	const char *why;
	size_t limit = MIB;
	int free_reads;

	conf_add("topology=64x4");
	ck_assert_ptr_nonnull(h);
	ck_assert_uint_eq(pcpu_nr_cpus(), 64);
	if (lib_source_memfd(NULL))
		limit += memfds_per_chunk(4) * N * sizeof(uint64_t);
	for (size_t i = 0; i < N; i++) {
		h[i] = pcpu_alloc(sizeof(uint64_t), 0, 0);
		REQUIRE(h[i] != NULL, "alloc %zu failed: errno %d", i, errno);
	}
	base = mem_now();
	for (int round = 0; round < 2; round++)
		for (size_t i = 0; i < N; i++)
			pcpu_for_each_cpu(cpu)
				sum += *(volatile uint64_t *)pcpu_ptr(h[i], cpu);
	REQUIRE(sum == 0, "never-written copies read %llu", (unsigned long long)sum);
	/*
	 * Page tables are not in Pss; allow stdio and the like, and with memfd views the
	 * page-cache pages they share (a unit's worth per memfd).
	 */
	now = mem_now();
	free_reads = reads_free(&why);
	check_bound("read_unwritten", &base, &now, limit, free_reads, why);
	for (size_t i = 0; i < N; i++)
		pcpu_free(h[i]);
	ck_assert_int_eq(pcpu_verify(), 0);
	free(h);
}
END_TEST

START_TEST(test_big_topology)
{
	/*
	 * Under a sanitizer 40,000 (still more than the 32,768 a 256 KiB unit holds: objects
	 * in more than one chunk): its checker poisons and unpoisons all 4096 copies of every
	 * allocation and free, and 100,000 took 48 s of ASan's 80 s for this program. The
	 * memory bounds, which need the full count, are not checked there anyway.
	 */
	enum { N = SHADOW_MEMORY ? 40000 : 100000 };
	uint64_t **h = calloc(N, sizeof(*h));
	unsigned cpu, copy;
	size_t unit_bytes = N * sizeof(uint64_t), limit = 4 * unit_bytes + 8 * MIB;
	struct mem base, now;
	const char *why;
	int free_reads;

	conf_add("topology=4096x64");
	ck_assert_ptr_nonnull(h);
	ck_assert_uint_eq(pcpu_nr_cpus(), 4096);
	base = mem_now();
	for (size_t i = 0; i < N; i++) {
		h[i] = pcpu_alloc(sizeof(uint64_t), 0, 0);
		REQUIRE(h[i] != NULL, "alloc %zu failed: errno %d", i, errno);
		pcpu_this_add(h[i], i);
	}
	copy = pcpu_this_cpu();
	/* A few units' worth (written, allowed, metadata), nowhere near 4096 of them. */
	now = mem_now();
	check_bound("big_topology", &base, &now, limit, !SHADOW_MEMORY, "sanitizer shadow memory");
	for (size_t i = 0; i < N; i++) {
		uint64_t sum = 0;

		REQUIRE(*pcpu_ptr(h[i], copy) == i, "object %zu: copy %u is %llu", i, copy,
			(unsigned long long)*pcpu_ptr(h[i], copy));
		/* Every copy of 16 objects spread over the chunks (reads of anonymous chunks
		 * fault pages in where the kernel has no zero page: 4096 x 16 of them). */
		if (i % (N / 16))
			continue;
		pcpu_for_each_cpu(cpu)
			sum += *pcpu_ptr(h[i], cpu);
		REQUIRE(sum == i, "object %zu: sum %llu over 4096 copies", i, (unsigned long long)sum);
	}
	/* 16 page-cache pages per memfd (and fault-around neighbours, counted once). */
	now = mem_now();
	free_reads = reads_free(&why);
	check_bound("  and after reading every copy", &base, &now, limit + 64 * 16 * 4096,
		    free_reads, why);
	ck_assert_int_eq(pcpu_verify(), 0);
	for (size_t i = 0; i < N; i++)
		pcpu_free(h[i]);
	ck_assert_int_eq(pcpu_verify(), 0);
	free(h);
}
END_TEST

/* Resident bytes of unit @u in the statistics' JSON @s, and its CPU in *@cpu. */
static long long unit_resident(const char *s, unsigned u, unsigned *cpu)
{
	char k[48];
	const char *p;

	snprintf(k, sizeof(k), "{\"unit\":%u,", u);
	p = strstr(s, k);
	ck_assert_ptr_nonnull(p);
	*cpu = (unsigned)json_num(p, "cpu");
	return json_num(p, "resident_bytes");
}

/*
 * The zeroing drain on memfd views: objects written in this CPU's copy, every other copy
 * read; freeing half of them (the pages stay populated) queues them, and the drain (run by
 * pcpu_trim()) zeroes the written copies only: the others map the memfd's page cache and
 * were never written, so no private page appears in them.
 */
START_TEST(test_drain_unwritten)
{
	enum { N = 200000 };
	uint64_t **h = calloc(N, sizeof(*h));
	unsigned cpu, copy, others = 0;
	struct mem before, after;
	uint64_t sum = 0;
	char *s;

	force_source("memfd");
	conf_add("topology=64x4,balance=off");
	ck_assert_ptr_nonnull(h);
	ck_assert_uint_eq(pcpu_nr_cpus(), 64);
	ck_assert(lib_source_memfd(NULL));
	copy = pcpu_this_cpu();
	for (size_t i = 0; i < N; i++) {
		h[i] = pcpu_alloc(sizeof(uint64_t), 0, 0);
		REQUIRE(h[i] != NULL, "alloc %zu failed: errno %d", i, errno);
		*pcpu_ptr(h[i], copy) = i + 1;
	}
	for (size_t i = 0; i < N; i++)
		pcpu_for_each_cpu(cpu)
			sum += *(volatile uint64_t *)pcpu_ptr(h[i], cpu);
	REQUIRE(sum == (uint64_t)N * (N + 1) / 2, "sum %llu", (unsigned long long)sum);
	before = mem_now();
	for (size_t i = 0; i < N; i += 2)
		pcpu_free(h[i]);
	pcpu_trim(); /* drains the zeroing queue; no page is empty, none is given back */
	after = mem_now();
	fprintf(stderr,
		"drain_unwritten: Anonymous %.1f -> %.1f MiB, Pss grew %.1f MiB, VmRSS %.1f MiB, "
		"RssAnon %.1f MiB\n",
		(double)before.anon / MIB, (double)after.anon / MIB,
		grew_mib(after.pss, before.pss), grew_mib(after.rss, before.rss),
		grew_mib(after.rss_anon, before.rss_anon));
	if (!SHADOW_MEMORY)
		ck_assert_msg(after.anon <= before.anon + 256 * KIB,
			      "the drain wrote never-written pages: Anonymous %zu -> %zu",
			      before.anon, after.anon);
	/*
	 * The statistics (PAGEMAP_SCAN, page cache left out) agree unit by unit: only the
	 * written copy's unit and the allowed CPUs' (prefaulted) hold pages of their own.
	 */
	s = stats_json();
	ck_assert_int_eq(json_num(s, "nr_queued"), 0);
	for (unsigned u = 0; u < 64; u++)
		if (unit_resident(s, u, &cpu) > 0 && cpu != copy && !cpu_allowed(cpu))
			others++;
	ck_assert_msg(!others, "%u never-written units hold pages of their own", others);
	free(s);
	for (size_t i = 0; i < N; i++) {
		if (i % 2)
			REQUIRE(*pcpu_ptr(h[i], copy) == i + 1, "object %zu: copy is %llu", i,
				(unsigned long long)*pcpu_ptr(h[i], copy));
		if (i % 2)
			pcpu_free(h[i]);
	}
	ck_assert_int_eq(pcpu_verify(), 0);
	free(h);
}
END_TEST

/*
 * Depopulation and population again on memfd views: every copy of many objects written
 * (private pages in every unit), all freed but the last (the chunk stays), pcpu_trim()
 * gives the empty pages back; objects allocated again over the same pages read zero in
 * every unit and cost no private page but the allowed CPUs' prefaulted ones.
 */
START_TEST(test_repopulate)
{
	enum { N = 100000 };
	uint64_t **h = calloc(N, sizeof(*h));
	uintptr_t lo = UINTPTR_MAX, hi = 0;
	unsigned cpu;
	struct mem written, trimmed, reread;
	size_t unit_bytes = N * sizeof(uint64_t), given, reused = 0;

	force_source("memfd");
	conf_add("topology=64x4");
	ck_assert_ptr_nonnull(h);
	ck_assert(lib_source_memfd(NULL));
	for (size_t i = 0; i < N; i++) {
		h[i] = pcpu_alloc(sizeof(uint64_t), 0, 0);
		REQUIRE(h[i] != NULL, "alloc %zu failed: errno %d", i, errno);
		pcpu_for_each_cpu(cpu)
			*pcpu_ptr(h[i], cpu) = i + cpu + 1;
		if (i < N - 1) {
			lo = (uintptr_t)h[i] < lo ? (uintptr_t)h[i] : lo;
			hi = (uintptr_t)h[i] > hi ? (uintptr_t)h[i] : hi;
		}
	}
	written = mem_now();
	for (size_t i = 0; i < N - 1; i++)
		pcpu_free(h[i]);
	given = pcpu_trim();
	trimmed = mem_now();
	for (size_t i = 0; i < N - 1; i++) {
		uint64_t sum = 0;

		h[i] = pcpu_alloc(sizeof(uint64_t), 0, 0);
		REQUIRE(h[i] != NULL, "alloc %zu failed: errno %d", i, errno);
		reused += (uintptr_t)h[i] >= lo && (uintptr_t)h[i] <= hi;
		pcpu_for_each_cpu(cpu)
			sum |= *(volatile uint64_t *)pcpu_ptr(h[i], cpu);
		REQUIRE(sum == 0, "object %zu: a copy reads %llx after repopulation", i,
			(unsigned long long)sum);
	}
	reread = mem_now();
	fprintf(stderr,
		"repopulate: trim gave back %.1f MiB; Anonymous %.1f (written) -> %.1f (trimmed) "
		"-> %.1f MiB (reallocated, every copy read); %zu of %d handles reused\n",
		(double)given / MIB, (double)written.anon / MIB, (double)trimmed.anon / MIB,
		(double)reread.anon / MIB, reused, N - 1);
	/*
	 * The same addresses came back. (The pages may have gone back before pcpu_trim(): the
	 * balance work after the frees reclaims empty pages too; its answer is only printed.)
	 */
	ck_assert_uint_ge(reused, (N - 1) / 2);
	if (!SHADOW_MEMORY) {
		ck_assert_uint_le(trimmed.anon + 32 * unit_bytes, written.anon);
		/* Reading them back: the allowed CPUs' units only (prefaulted). */
		ck_assert_uint_le(reread.anon, trimmed.anon + nr_allowed() * unit_bytes + MIB);
	}
	pcpu_for_each_cpu(cpu)
		REQUIRE(*pcpu_ptr(h[N - 1], cpu) == N - 1 + cpu + 1, "the kept object changed");
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

	/* Before any libpcpu call: population must see the narrowed affinity. */
	pin_one_cpu();
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_lazy_cpu);
	tcase_add_test(tc, test_lazy_cid);
	tcase_add_test(tc, test_lazy_cpu_memfd);
	tcase_add_test(tc, test_lazy_cid_memfd);
	tcase_add_test(tc, test_lazy_cpu_anon);
	tcase_add_test(tc, test_read_unwritten);
	tcase_add_test(tc, test_big_topology);
	tcase_add_test(tc, test_drain_unwritten);
	tcase_add_test(tc, test_repopulate);
	suite_add_tcase(s, tc);
	/* Each test needs a library of its own: its own topology, zero source and baseline. */
	return pcpu_check_run(s, CK_FORK);
}
