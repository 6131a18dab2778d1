/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * Fault injection (-Dfault_injection=true): the workload below is run once with
 * PCPU_FAULT_LOG=1 to count its fallible calls (mmap, mprotect, mbind, madvise, metadata
 * malloc), then once per call N = 1..count with PCPU_FAULT=N, each in a fresh process
 * (the library reads the variables once). Every failure must turn into NULL + ENOMEM for
 * the caller, or be absorbed by the balance work; pcpu_verify() stays clean; allocations
 * made before keep their contents; nothing leaks: at the end the mapping count, the chunk
 * count and the live allocations are back where they started. balance=off makes the call
 * sequence the same in every run.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pcpu.h>
#include "spawn.h"
#include "test_util.h"
#include "../check_run.h"

#define NR 300

static const size_t sizes[] = {8, 4, 24, 100, 1000, 4096, 32768, 12, 64};

static int count_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "re");
	int n = 0, c;

	if (!f)
		return -1;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

#define FAIL_IF(cond, ...)                                                                    \
	do {                                                                                  \
		if (cond) {                                                                   \
			fprintf(stderr, "workload: " __VA_ARGS__);                            \
			fprintf(stderr, " (%s:%d)\n", __FILE__, __LINE__);                    \
			exit(2);                                                              \
		}                                                                             \
	} while (0)

static void *try_alloc(size_t size, unsigned flags, long *enomem)
{
	void *p;

	errno = 0;
	p = pcpu_alloc(size, 0, flags);
	if (!p) {
		FAIL_IF(errno != ENOMEM, "alloc(%zu) failed with errno %d", size, errno);
		(*enomem)++;
	} else {
		FAIL_IF(!check(p, size, 0, 1), "alloc(%zu) not zero", size);
	}
	return p;
}

static int workload(void)
{
	static void *v[2 * NR];
	static size_t sz[2 * NR];
	struct pcpu_stats st0 = {.size = sizeof(st0)}, st = {.size = sizeof(st)};
	long enomem = 0;
	int maps0;

	/* A failure during initialisation: every call reports ENOMEM, nothing else. */
	if (pcpu_nr_cpus() == 0) {
		errno = 0;
		FAIL_IF(pcpu_alloc(8, 0, 0) || errno != ENOMEM, "failed init but alloc works");
		return 0;
	}
	FAIL_IF(pcpu_stats_get(&st0), "stats");
	maps0 = count_maps();

	for (int i = 0; i < NR; i++) {
		sz[i] = sizes[i % (sizeof(sizes) / sizeof(sizes[0]))];
		v[i] = try_alloc(sz[i], i % 7 == 3 ? PCPU_NOWAIT : 0, &enomem);
		if (v[i])
			fill(v[i], sz[i], (unsigned)i);
		if (i % 100 == 0)
			FAIL_IF(pcpu_verify(), "verify after alloc %d", i);
	}
	for (int i = 0; i < NR; i += 3) {
		pcpu_free(v[i]);
		v[i] = NULL;
	}
	FAIL_IF(pcpu_verify(), "verify after frees");
	for (int i = NR; i < 2 * NR; i++) {
		sz[i] = sizes[(i * 7) % (sizeof(sizes) / sizeof(sizes[0]))];
		v[i] = try_alloc(sz[i], i % 5 == 0 ? PCPU_NOWAIT : 0, &enomem);
		if (v[i])
			fill(v[i], sz[i], (unsigned)i);
	}
	FAIL_IF(pcpu_verify(), "verify after second round");
	/* Nothing made before a failure was lost or changed. */
	for (int i = 0; i < 2 * NR; i++)
		FAIL_IF(v[i] && !check(v[i], sz[i], (unsigned)i, 0), "allocation %d changed", i);
	pcpu_trim();
	FAIL_IF(pcpu_verify(), "verify after trim");
	for (int i = 0; i < 2 * NR; i++)
		FAIL_IF(v[i] && !check(v[i], sz[i], (unsigned)i, 0), "allocation %d changed", i);
	for (int i = 0; i < 2 * NR; i++)
		pcpu_free(v[i]);
	pcpu_trim();
	FAIL_IF(pcpu_verify(), "verify at the end");
	FAIL_IF(pcpu_stats_get(&st), "stats");
	FAIL_IF(st.nr_cur_alloc != st0.nr_cur_alloc, "%llu allocations live",
		(unsigned long long)st.nr_cur_alloc);
	FAIL_IF(st.nr_chunks != 1, "%llu chunks left", (unsigned long long)st.nr_chunks);
	FAIL_IF(count_maps() > maps0, "%d mappings, %d at the start", count_maps(), maps0);
	printf("workload: ok, %ld ENOMEM\n", enomem);
	return 0;
}

START_TEST(test_fault_sweep)
{
	static char log[1 << 22];
	long count = 0, n;
	const char *p;
	int rc;

	rc = spawn_fault("--workload", 0, NULL, log, sizeof(log));
	ck_assert_msg(rc == 0, "workload without faults failed (%d): %.2000s", rc, log);
	for (p = log; (p = strstr(p, "fault point ")); p++)
		if (sscanf(p, "fault point %ld:", &n) == 1 && n > count)
			count = n;
	printf("fault sweep: %ld fallible calls\n", count);
	ck_assert_int_gt(count, 10);
	if (getenv("PCPU_TEST_FAULT_MAX") && atol(getenv("PCPU_TEST_FAULT_MAX")) < count)
		count = atol(getenv("PCPU_TEST_FAULT_MAX")); /* for quick manual runs */
	for (n = 1; n <= count; n++) {
		rc = spawn_fault("--workload", n, NULL, log, 1 << 16);
		ck_assert_msg(rc == 0, "PCPU_FAULT=%ld: exit %d: %.2000s", n, rc, log);
	}
}
END_TEST

int main(int argc, char **argv)
{
	Suite *s;
	TCase *tc;

	if (argc > 1 && !strcmp(argv[1], "--workload"))
		return workload();
	s = suite_create("faults");
	tc = tcase_create("faults");
	tcase_set_timeout(tc, 1200);
	tcase_add_test(tc, test_fault_sweep);
	suite_add_tcase(s, tc);
	return pcpu_check_run(s, CK_FORK_GETENV);
}
