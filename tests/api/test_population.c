/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * Population costs what the process uses (issue 15): the system calls of one population and
 * one depopulation, and the mappings of a partly populated chunk, are the same at fake
 * 64x4, 1024x16 and 4096x64 (the process runs on the real CPUs either way), with both zero
 * sources. Each topology is a fresh process (PCPU_CONF is read once): this program run
 * again with the role "measure", which drives the chunk layer directly (lib/chunk.h) and
 * prints what it counted; the system calls are those counted by the library's wrappers
 * (pcpu_sys_calls, lib/util.h). Also: 20,000 mixed objects (5,000 under ASan) through the
 * public API hold
 * about as many mappings at 4096x64 as at 64x4; and a fork child's resident_bytes
 * describes the child even after the parent asked for statistics (one pagemap helper, one
 * fork policy: lib/pagemap.h).
 */
#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pcpu.h>

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif
#ifdef TEST_ASAN
#include <sanitizer/asan_interface.h>
#endif

#include "lib/chunk.h"
#include "lib/topology.h"
#include "spawn.h"
#include "test_util.h"
#include "../check_run.h"

/* Lines of /proc/self/maps that start inside [lo, hi), or every line when lo == hi. */
static int count_maps(uintptr_t lo, uintptr_t hi)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512];
	int n = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		uintptr_t s = (uintptr_t)strtoull(line, NULL, 16);

		n += lo == hi || (s >= lo && s < hi);
	}
	fclose(f);
	return n;
}

/*
 * Write one byte into page @pg of unit @u of @c, as the owner of an object there would
 * (under ASan the library poisons free bytes of populated pages: say this one is in use).
 */
static void touch(struct pcpu_chunk *c, unsigned u, int pg)
{
	char *p = pcpu_unit_addr(c, u, (size_t)pg * pcpu_geom.page);

#ifdef TEST_ASAN
	ASAN_UNPOISON_MEMORY_REGION(p, 1);
#endif
	*(volatile char *)p = 1;
}

/*
 * The child: one fresh chunk, a warm-up population and depopulation (the pagemap and pidfd
 * are opened once per process), then the counted ones. balance=0: no other thread calls
 * the chunk layer meanwhile. Prints "units U pop P depop D written W maps_before B
 * maps_partial M maps_after A".
 */
static int measure(void)
{
	struct pcpu_chunk *c;
	uint64_t t0, pop, depop, written;
	uintptr_t lo, hi;
	int before, partial, after;

	if (pcpu_init(NULL) || pcpu_chunk_create(&c, 0, true)) {
		fprintf(stderr, "measure: no chunk\n");
		return 2;
	}
	lo = (uintptr_t)c->base;
	hi = lo + pcpu_geom.vsize;
	if (pcpu_chunk_populate(c, 0, 1))
		return 3;
	pcpu_chunk_depopulate(c, 0, 1);
	before = count_maps(lo, hi);

	t0 = __atomic_load_n(&pcpu_sys_calls, __ATOMIC_RELAXED);
	if (pcpu_chunk_populate(c, 2, 4))
		return 3;
	pop = __atomic_load_n(&pcpu_sys_calls, __ATOMIC_RELAXED) - t0;
	/* Partly populated, and a few copies of other CPUs written, as a program would. */
	for (unsigned u = 0; u < pcpu_geom.nr_units; u += 61)
		touch(c, u, 3);
	partial = count_maps(lo, hi);
	t0 = __atomic_load_n(&pcpu_sys_calls, __ATOMIC_RELAXED);
	pcpu_chunk_depopulate(c, 2, 4);
	depop = __atomic_load_n(&pcpu_sys_calls, __ATOMIC_RELAXED) - t0;
	after = count_maps(lo, hi);
	/* Depopulated pages read zero again, in every unit. */
	for (unsigned u = 0; u < pcpu_geom.nr_units; u++)
		for (int pg = 2; pg < 4; pg++)
			if (*(volatile char *)pcpu_unit_addr(c, u, (size_t)pg * pcpu_geom.page)) {
				fprintf(stderr, "measure: unit %u page %d not zero\n", u, pg);
				return 4;
			}
	/* Every copy written: the cost may follow the copies written, never more. */
	if (pcpu_chunk_populate(c, 2, 4))
		return 3;
	for (unsigned u = 0; u < pcpu_geom.nr_units; u++)
		touch(c, u, 2);
	t0 = __atomic_load_n(&pcpu_sys_calls, __ATOMIC_RELAXED);
	pcpu_chunk_depopulate(c, 2, 4);
	written = __atomic_load_n(&pcpu_sys_calls, __ATOMIC_RELAXED) - t0;
	printf("units %u pop %llu depop %llu written %llu maps_before %d maps_partial %d "
	       "maps_after %d\n",
	       pcpu_geom.nr_units, (unsigned long long)pop, (unsigned long long)depop,
	       (unsigned long long)written, before, partial, after);
	pcpu_chunk_destroy(c);
	return 0;
}

/*
 * The child: a depopulated page read in a fork child. Prints "guarded G", G 1 when the read
 * faulted (PCPU_CONF guard=1: unpopulated pages are PROT_NONE), 0 when it read zero.
 */
enum { GUARD_FAULTED = 42 };

static void guard_fault(int sig)
{
	(void)sig;
	_exit(GUARD_FAULTED);
}

static int guard(void)
{
	struct pcpu_chunk *c;
	int status;
	pid_t pid;

	if (pcpu_init(NULL) || pcpu_chunk_create(&c, 0, true) || pcpu_chunk_populate(c, 2, 4))
		return 2;
	touch(c, pcpu_geom.nr_units - 1, 2);
	pcpu_chunk_depopulate(c, 2, 4);
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		/* Our own handler: a sanitizer's would turn the fault into an exit status. */
		struct sigaction sa = {.sa_handler = guard_fault};

		sigaction(SIGSEGV, &sa, NULL);
		_exit(*(volatile char *)pcpu_unit_addr(c, pcpu_geom.nr_units - 1,
						       2 * pcpu_geom.page) != 0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return 2;
	if (WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != GUARD_FAULTED)
		return 3; /* not zero after depopulation */
	printf("guarded %d\n", WEXITSTATUS(status) == GUARD_FAULTED);
	pcpu_chunk_destroy(c);
	return 0;
}

/*
 * The child: 20,000 mixed objects as test_alloc's test_many makes, the mapping count. Under
 * ASan 5,000 (still several chunks, which is what the count is about): its checker poisons
 * every one of the 4096 copies on each allocation and free, and 20,000 took 19 s there.
 */
#ifdef TEST_ASAN
#define NR_MIXED 5000
#else
#define NR_MIXED 20000
#endif
static int mixed(void)
{
	enum { N = NR_MIXED };
	struct pcpu_stats st = {.size = sizeof(st)};
	void **h = calloc(N, sizeof(*h));
	int maps;

	srand(1);
	for (int i = 0; i < N; i++) {
		size_t sz = (rand() % 8) ? 1 + (size_t)(rand() % 64) : 1 + (size_t)(rand() % 4096);

		h[i] = pcpu_alloc(sz, 0, 0);
		if (!h[i])
			return 2;
		*(unsigned char *)pcpu_ptr((unsigned char *)h[i], pcpu_nr_cpus() - 1) = 1;
	}
	for (int i = 0; i < N; i += 2)
		pcpu_free(h[i]);
	maps = count_maps(0, 0);
	if (pcpu_stats_get(&st))
		return 3;
	printf("chunks %llu maps %d\n", (unsigned long long)st.nr_chunks, maps);
	for (int i = 1; i < N; i += 2)
		pcpu_free(h[i]);
	free(h);
	return 0;
}

/*
 * Does this kernel have what flat costs need: PAGEMAP_SCAN (6.7) and process_madvise() of
 * MADV_POPULATE_WRITE and MADV_DONTNEED on ourselves (6.13)? Elsewhere the library falls
 * back to calls per unit (chunk.h), which the test then checks for correctness only.
 */
static bool kernel_flat(void)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	char *p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct iovec v = {p, page};
	struct pcpu_page_region r[1];
	struct pcpu_pm_scan_arg a = {.size = sizeof(a),
				     .start = (uintptr_t)p,
				     .end = (uintptr_t)p + page,
				     .vec = (uintptr_t)r,
				     .vec_len = 1,
				     .category_anyof_mask = PCPU_PAGE_IS_PRESENT,
				     .return_mask = PCPU_PAGE_IS_PRESENT};
	int pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	int fd = open("/proc/self/pagemap", O_RDONLY);
	bool ok = p != MAP_FAILED && pidfd >= 0 && fd >= 0;

	ok = ok && syscall(SYS_process_madvise, pidfd, &v, 1, 23 /* MADV_POPULATE_WRITE */, 0) ==
		       (long)page;
	ok = ok && ioctl(fd, PCPU_PAGEMAP_SCAN, &a) == 1;
	ok = ok && syscall(SYS_process_madvise, pidfd, &v, 1, MADV_DONTNEED, 0) == (long)page;
	if (fd >= 0)
		close(fd);
	if (pidfd >= 0)
		close(pidfd);
	if (p != MAP_FAILED)
		munmap(p, page);
	return ok;
}

struct counts {
	unsigned units;
	unsigned long long pop, depop, written;
	int before, partial, after;
};

static struct counts run_measure(const char *topo, const char *zero)
{
	char conf[128], zs[64], out[8192];
	const char *env[] = {conf, zs, NULL};
	char *argv[] = {spawn_self(), (char *)"measure", NULL};
	struct counts k;
	const char *p;
	int status;

	snprintf(conf, sizeof(conf), "PCPU_CONF=topology=%s,balance=0", topo);
	snprintf(zs, sizeof(zs), "PCPU__ZERO_SOURCE=%s", zero);
	status = spawn_capture(argv, env, out, sizeof(out));
	ck_assert_msg(spawn_code(status) == 0, "%s %s: %s", topo, zero, out);
	p = strstr(out, "units ");
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(sscanf(p,
				"units %u pop %llu depop %llu written %llu maps_before %d "
				"maps_partial %d maps_after %d",
				&k.units, &k.pop, &k.depop, &k.written, &k.before, &k.partial,
				&k.after),
			 7);
	printf("%-8s %-5s units %4u: populate %llu syscalls, depopulate %llu (all %u copies "
	       "written: %llu); chunk mappings %d / partly populated %d / after %d\n",
	       topo, zero, k.units, k.pop, k.depop, k.units, k.written, k.before, k.partial,
	       k.after);
	return k;
}

static void check_flat(const char *zero)
{
	static const char *const topo[] = {"64x4", "1024x16", "4096x64"};
	bool flat = kernel_flat();
	struct counts k[3];

	for (int i = 0; i < 3; i++)
		k[i] = run_measure(topo[i], zero);
	if (!flat)
		printf("no PAGEMAP_SCAN or process_madvise() on ourselves: the fallbacks, checked "
		       "for correctness only\n");
	for (int i = 0; i < 3; i++) {
		/* Population and depopulation never change the chunk's mappings. */
		ck_assert_int_eq(k[i].partial, k[i].before);
		ck_assert_int_eq(k[i].after, k[i].before);
		if (!strcmp(zero, "anon"))
			ck_assert_int_eq(k[i].partial, k[0].partial); /* one per bind group */
		else
			ck_assert_int_le(k[i].partial, (int)k[i].units); /* one view per unit */
		if (!flat)
			continue;
		/* The same system calls at every unit count, and a handful of them. */
		ck_assert_uint_eq(k[i].pop, k[0].pop);
		ck_assert_uint_eq(k[i].depop, k[0].depop);
		ck_assert_uint_le(k[i].pop, 4);
		ck_assert_uint_le(k[i].depop, 4);
		/*
		 * With every copy written, what the process wrote: one scan per 256 runs of
		 * present pages (one or two per unit written) and one process_madvise() per
		 * 1024 ranges; never one call per unit.
		 */
		ck_assert_uint_le(k[i].written, 2 + k[i].units / 128 + k[i].units / 1024);
	}
}

START_TEST(test_syscalls_flat_anon)
{
	check_flat("anon");
}
END_TEST

START_TEST(test_syscalls_flat_memfd)
{
	check_flat("memfd");
}
END_TEST

static void run_mixed(const char *topo, unsigned long long *chunks, int *maps)
{
	char conf[128], out[8192];
	const char *env[] = {conf, "PCPU__ZERO_SOURCE=anon", NULL};
	char *argv[] = {spawn_self(), (char *)"mixed", NULL};
	const char *p;

	snprintf(conf, sizeof(conf), "PCPU_CONF=topology=%s", topo);
	ck_assert_msg(spawn_code(spawn_capture(argv, env, out, sizeof(out))) == 0, "%s: %s", topo,
		      out);
	p = strstr(out, "chunks ");
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(sscanf(p, "chunks %llu maps %d", chunks, maps), 2);
	printf("%d mixed objects, half freed, at %s: %llu chunks, %d mappings\n", NR_MIXED, topo,
	       *chunks, *maps);
}

/*
 * Run this program as @role with @conf in the environment; return the number its output
 * prints after @key (the child's verdict), failing the test if it exits nonzero.
 */
static int run_role(const char *role, const char *conf, const char *key)
{
	const char *env[] = {conf, NULL};
	char *argv[] = {spawn_self(), (char *)role, NULL};
	char out[4096];
	const char *p;
	int v = -1;

	ck_assert_msg(spawn_code(spawn_capture(argv, env, out, sizeof(out))) == 0, "%s %s: %s",
		      role, conf, out);
	p = strstr(out, key);
	ck_assert_msg(p != NULL, "%s %s: no \"%s\" in %s", role, conf, key, out);
	ck_assert_int_eq(sscanf(p + strlen(key), "%d", &v), 1);
	return v;
}

static int run_guard(const char *conf)
{
	return run_role("guard", conf, "guarded ");
}

/*
 * The child: a coloured chunk's logical pages straddle their region's pages (lib/chunk.h).
 * Pages 2, 3 and 4 populated and marked in the map, a pattern in the first and last bytes of
 * each of them in every unit; depopulating page 3 alone must keep pages 2 and 4 whole (the
 * region pages it shares with them stay) and make page 3 read zero where it was written.
 * Then 2 and 4 go too, and everything of 2..4 reads zero. Prints "neighbours ok C", C 1
 * when the chunk is coloured.
 */
static bool span_is(struct pcpu_chunk *c, unsigned u, int pg, unsigned char v)
{
	size_t page = pcpu_geom.page;
	unsigned char *p = (unsigned char *)pcpu_unit_addr(c, u, (size_t)pg * page);

#ifdef TEST_ASAN
	ASAN_UNPOISON_MEMORY_REGION(p, page);
#endif
	return p[0] == v && p[page - 1] == v;
}

static int neighbours(void)
{
	size_t page;
	struct pcpu_chunk *c;

	if (pcpu_init(NULL) || pcpu_chunk_create(&c, 0, true) || pcpu_chunk_populate(c, 2, 5))
		return 2;
	page = pcpu_geom.page;
	pcpu_am_populated(&c->map, 2, 3);
	for (unsigned u = 0; u < pcpu_geom.nr_units; u++)
		for (int pg = 2; pg < 5; pg++) {
			unsigned char *p = (unsigned char *)pcpu_unit_addr(c, u, (size_t)pg * page);

#ifdef TEST_ASAN
			ASAN_UNPOISON_MEMORY_REGION(p, page);
#endif
			p[0] = p[page - 1] = (unsigned char)(0x10 + pg);
		}
	pcpu_chunk_depopulate(c, 3, 4);
	pcpu_am_depopulated(&c->map, 3, 1);
	for (unsigned u = 0; u < pcpu_geom.nr_units; u++) {
		if (!span_is(c, u, 2, 0x12) || !span_is(c, u, 4, 0x14)) {
			fprintf(stderr, "neighbours: unit %u lost a neighbour's bytes\n", u);
			return 4;
		}
		/* Its first byte shares a region page with page 2, its last with page 4. */
		if (!c->coloured && !span_is(c, u, 3, 0)) {
			fprintf(stderr, "neighbours: unit %u page 3 not given back\n", u);
			return 5;
		}
	}
	pcpu_chunk_depopulate(c, 2, 3);
	pcpu_am_depopulated(&c->map, 2, 1);
	pcpu_chunk_depopulate(c, 4, 5);
	pcpu_am_depopulated(&c->map, 4, 1);
	for (unsigned u = 0; u < pcpu_geom.nr_units; u++)
		for (int pg = 2; pg < 5; pg++)
			if (!span_is(c, u, pg, 0)) {
				fprintf(stderr, "neighbours: unit %u page %d not zero\n", u, pg);
				return 6;
			}
	printf("neighbours ok %d\n", c->coloured);
	pcpu_chunk_destroy(c);
	return 0;
}

static int run_neighbours(const char *conf)
{
	return run_role("neighbours", conf, "neighbours ok ");
}

START_TEST(test_coloured_neighbours)
{
	ck_assert_int_eq(run_neighbours("PCPU_CONF=topology=64x4,balance=0"), PCPU_HANDLE_COLOUR != 0);
	ck_assert_int_eq(run_neighbours("PCPU_CONF=topology=64x4,balance=0,colour=0"), 0);
	ck_assert_int_eq(run_neighbours("PCPU_CONF=topology=2x1,balance=0"), PCPU_HANDLE_COLOUR != 0);
}
END_TEST

/* guard=1 (libpcpu(7)): a read of a depopulated page faults; by default it reads zero. */
START_TEST(test_guard)
{
	ck_assert_int_eq(run_guard("PCPU_CONF=topology=64x4,balance=0,guard=1"), 1);
	ck_assert_int_eq(run_guard("PCPU_CONF=topology=64x4,balance=0"), 0);
	ck_assert_int_eq(run_guard("PCPU_CONF=topology=64x4,balance=0,guard=0"), 0);
}
END_TEST

START_TEST(test_mixed_maps)
{
	unsigned long long c64, c4096;
	int m64, m4096;

	run_mixed("64x4", &c64, &m64);
	run_mixed("4096x64", &c4096, &m4096);
	/* Per chunk, not per unit: 16,482 mappings at 4096x64 before issue 15. */
	ck_assert_int_le(m4096 - m64, 8 * (int)(c4096 > c64 ? c4096 - c64 + 1 : 1));
}
END_TEST

/*
 * Fork: the parent measured resident memory (the pagemap descriptor is open); the child
 * writes every copy of new objects on pages the parent never touched and must see them,
 * and the parent must not.
 */
START_TEST(test_fork_resident)
{
	enum { N = 2048, SZ = 256 }; /* 512 KiB per unit: more than the parent has */
	struct pcpu_stats before = stats_now(), after;
	void *keep = pcpu_alloc(8, 0, 0);
	int status;
	pid_t pid;

	ck_assert_ptr_nonnull(keep);
	before = stats_now();
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		static void *h[N];
		uint64_t want = (uint64_t)N * SZ * pcpu_nr_cpus();
		struct pcpu_stats st;

		for (int i = 0; i < N; i++) {
			h[i] = pcpu_alloc(SZ, 0, 0);
			if (!h[i])
				_exit(2);
			for (unsigned cpu = 0; cpu < pcpu_nr_cpus(); cpu++)
				memset(pcpu_ptr((char *)h[i], cpu), 0x5a, SZ);
		}
		st = stats_now();
		/* Every byte written is in a page of the child's own. */
		if (st.resident_bytes < want) {
			fprintf(stderr, "child: resident %llu, before %llu, wrote %llu\n",
				(unsigned long long)st.resident_bytes,
				(unsigned long long)before.resident_bytes,
				(unsigned long long)want);
			_exit(1);
		}
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "the child's resident_bytes did not describe the child (status %d)", status);
	after = stats_now();
	/* The child's writes are not the parent's. */
	ck_assert_uint_lt(after.resident_bytes,
			  before.resident_bytes + (uint64_t)N * SZ * pcpu_nr_cpus() / 2);
	pcpu_free(keep);
}
END_TEST

/*
 * Fork, the other way: a child that gives pages back must give back its own. The parent's
 * objects fill pages of their own (written in every copy); the child frees them and trims,
 * which depopulates those pages in the child: found with the parent's pagemap, they would
 * be the parent's present pages, not the child's, and the child would keep its copies
 * (measured: that fails here). The parent's copies must keep their bytes.
 */
START_TEST(test_fork_give_back)
{
	enum { N = 256, SZ = 512 }; /* 128 KiB per unit */
	static void *h[N];
	int status;
	pid_t pid;

	for (int i = 0; i < N; i++) {
		h[i] = pcpu_alloc(SZ, 0, 0);
		ck_assert_ptr_nonnull(h[i]);
		fill(h[i], SZ, (unsigned)i + 1);
	}
	pcpu_trim(); /* the parent's own population and depopulation open its descriptors */
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct pcpu_stats st = {.size = sizeof(st)};

		for (int i = 0; i < N; i++)
			pcpu_free(h[i]);
		pcpu_trim();
		if (pcpu_stats_get(&st))
			_exit(2);
		/* The child's pages went back: fewer than a fifth of the objects' bytes stay. */
		_exit(st.resident_bytes > (uint64_t)N * SZ * pcpu_nr_cpus() / 5);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
	for (int i = 0; i < N; i++) {
		ck_assert_msg(check(h[i], SZ, (unsigned)i + 1, 0), "object %d lost its bytes", i);
		pcpu_free(h[i]);
	}
}
END_TEST

int main(int argc, char **argv)
{
	Suite *s;
	TCase *tc;

	if (argc > 1 && !strcmp(argv[1], "measure"))
		return measure();
	if (argc > 1 && !strcmp(argv[1], "mixed"))
		return mixed();
	if (argc > 1 && !strcmp(argv[1], "guard"))
		return guard();
	if (argc > 1 && !strcmp(argv[1], "neighbours"))
		return neighbours();
	s = suite_create("population");
	tc = tcase_create("population");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_syscalls_flat_anon);
	tcase_add_test(tc, test_syscalls_flat_memfd);
	tcase_add_test(tc, test_guard);
	tcase_add_test(tc, test_coloured_neighbours);
	tcase_add_test(tc, test_mixed_maps);
	tcase_add_test(tc, test_fork_resident);
	tcase_add_test(tc, test_fork_give_back);
	suite_add_tcase(s, tc);
	return pcpu_check_run(s, CK_FORK_GETENV);
}
