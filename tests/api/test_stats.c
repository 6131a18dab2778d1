/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * Statistics: pcpu_stats_get() (arguments, the size prefix rule, counters, resident bytes,
 * consistency while other threads allocate), pcpu_stats_print() (the kernel's percpu_stats
 * sections, fragmentation, units, the cid fallback reason) and pcpu_stats_print_json()
 * (valid JSON that agrees with pcpu_stats_get()), and PCPU_STATS=1 / json at exit.
 * Environment-dependent cases run this program again as a child (see spawn.h).
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pcpu.h>

#include "json_check.h"
#include "spawn.h"

#define OUT_MAX (1 << 20)

static struct pcpu_stats get(void)
{
	struct pcpu_stats st;

	memset(&st, 0, sizeof(st));
	st.size = sizeof(st);
	ck_assert_int_eq(pcpu_stats_get(&st), 0);
	ck_assert_uint_eq(st.size, sizeof(st));
	return st;
}

/* pcpu_stats_print() or _json() into a malloc'ed string. */
static char *print_to_string(int json)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	ck_assert_ptr_nonnull(f);
	if (json)
		pcpu_stats_print_json(f);
	else
		pcpu_stats_print(f);
	fclose(f);
	return buf;
}

static int count_of(const char *s, const char *pat)
{
	int n = 0;

	for (const char *p = strstr(s, pat); p; p = strstr(p + 1, pat))
		n++;
	return n;
}

START_TEST(test_get_args)
{
	unsigned char buf[sizeof(struct pcpu_stats) + 64];
	struct pcpu_stats *st = (struct pcpu_stats *)(void *)buf;
	size_t prefix = offsetof(struct pcpu_stats, nr_chunks);

	errno = 0;
	ck_assert_int_eq(pcpu_stats_get(NULL), -1);
	ck_assert_int_eq(errno, EINVAL);
	memset(buf, 0, sizeof(buf));
	errno = 0;
	ck_assert_int_eq(pcpu_stats_get(st), -1);
	ck_assert_int_eq(errno, EINVAL);

	/* An older caller's smaller struct: only its prefix is written. */
	memset(buf, 0xaa, sizeof(buf));
	st->size = prefix;
	ck_assert_int_eq(pcpu_stats_get(st), 0);
	ck_assert_uint_eq(st->size, prefix);
	ck_assert_uint_eq(st->nr_cpus, pcpu_nr_cpus());
	for (size_t i = prefix; i < sizeof(buf); i++)
		ck_assert_uint_eq(buf[i], 0xaa);

	/* A newer caller's larger struct: what we know, and size says how much. */
	memset(buf, 0, sizeof(buf));
	st->size = sizeof(buf);
	ck_assert_int_eq(pcpu_stats_get(st), 0);
	ck_assert_uint_eq(st->size, sizeof(struct pcpu_stats));
}
END_TEST

START_TEST(test_counters)
{
	struct pcpu_stats a = get(), b;
	void *p[10];

	ck_assert_uint_eq(a.nr_cpus, pcpu_nr_cpus());
	ck_assert_uint_gt(a.unit_size, 0);
	ck_assert_uint_gt(a.page_size, 0);
	ck_assert_uint_ge(a.nr_chunks, 1);
	for (int i = 0; i < 10; i++) {
		p[i] = pcpu_alloc(i == 0 ? 1 : (size_t)i * 100, 0, 0);
		ck_assert_ptr_nonnull(p[i]);
	}
	for (int i = 0; i < 4; i++)
		pcpu_free(p[i]);
	b = get();
	ck_assert_uint_eq(b.nr_alloc, a.nr_alloc + 10);
	ck_assert_uint_eq(b.nr_dealloc, a.nr_dealloc + 4);
	ck_assert_uint_eq(b.nr_cur_alloc, a.nr_cur_alloc + 6);
	ck_assert_uint_eq(b.nr_cur_alloc, b.nr_alloc - b.nr_dealloc);
	/*
	 * The front counts its allocations and frees per CPU and adds them up when the
	 * statistics are read: the maximum is the largest count seen then (here, after the
	 * frees), not the peak in between.
	 */
	ck_assert_uint_ge(b.nr_max_alloc, b.nr_cur_alloc);
	ck_assert_uint_eq(b.min_alloc_size, 4); /* 1 byte, rounded to the granule */
	ck_assert_uint_ge(b.max_alloc_size, 900);
	ck_assert_uint_ge(b.nr_max_chunks, b.nr_chunks);
	ck_assert_uint_gt(b.populated_pages, 0);
	ck_assert_uint_gt(b.free_bytes, 0);
	ck_assert_int_ge(b.cpu_mode, PCPU_MODE_RSEQ_GLIBC);
	ck_assert_int_le(b.cpu_mode, PCPU_MODE_GETCPU);
	ck_assert_int_eq(b.index_mode, PCPU_INDEX_CPU);
	ck_assert_int_eq(b.index_fallback, 0);
	for (int i = 4; i < 10; i++)
		pcpu_free(p[i]);
	ck_assert_int_eq(pcpu_verify(), 0);
}
END_TEST

START_TEST(test_accounted_set)
{
	struct pcpu_stats a = get(), b;
	void *p = pcpu_alloc(64, 0, PCPU_ACCOUNT);

	ck_assert_ptr_nonnull(p);
	b = get();
	ck_assert_uint_ge(b.nr_accounted_chunks, 1);
	ck_assert_uint_eq(b.nr_accounted_alloc, a.nr_accounted_alloc + 1);
	pcpu_free(p);
}
END_TEST

/* Writing every copy of a fresh 64 KiB allocation makes about 64 KiB per unit resident. */
START_TEST(test_resident)
{
	const size_t size = 64 << 10;
	struct pcpu_stats a = get(), b;
	unsigned cpu, n = pcpu_nr_cpus();
	char *p = pcpu_alloc(size, 4096, 0);

	ck_assert_ptr_nonnull(p);
	pcpu_for_each_cpu(cpu)
		memset(pcpu_ptr(p, cpu), 1, size);
	b = get();
	/* Pages shared with earlier allocations may have been resident already. */
	ck_assert_uint_ge(b.resident_bytes, a.resident_bytes + (uint64_t)n * (size - 2 * b.page_size));
	ck_assert_uint_le(b.resident_bytes,
			  (b.populated_pages + 1) * b.page_size * (uint64_t)n);
	pcpu_free(p);
}
END_TEST

START_TEST(test_print_text)
{
	void *a = pcpu_alloc(16, 16, 0), *b = pcpu_alloc(64, 16, 0), *c = pcpu_alloc(16, 16, 0);
	char *s;

	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_nonnull(c);
	pcpu_free(b); /* a hole of 64 bytes before the last allocation */
	s = print_to_string(0);
	ck_assert_ptr_nonnull(strstr(s, "Allocation Info:"));
	ck_assert_ptr_nonnull(strstr(s, "Global Stats:"));
	ck_assert_ptr_nonnull(strstr(s, "Per Chunk Stats:"));
	ck_assert_ptr_nonnull(strstr(s, "<- First Chunk"));
	for (const char *k = "nr_alloc\0nr_dealloc\0nr_cur_alloc\0nr_max_alloc\0nr_chunks\0"
			     "nr_max_chunks\0min_alloc_size\0max_alloc_size\0empty_pop_pages\0"
			     "free_bytes\0contig_bytes\0scan_hint_bytes\0first_bit\0sum_frag\0"
			     "max_frag\0cur_min_alloc\0cur_med_alloc\0cur_max_alloc\0"
			     "populated_pages\0cpu_mode\0index_mode\0bind_failures\0"
			     "balance_runs\0pages_populated\0pages_depopulated\0resident_bytes\0";
	     *k; k += strlen(k) + 1)
		ck_assert_msg(strstr(s, k), "no %s in:\n%s", k, s);
	ck_assert_ptr_nonnull(strstr(s, "Chunk Sets:"));
	ck_assert_ptr_nonnull(strstr(s, "accounted"));
	ck_assert_ptr_nonnull(strstr(s, "Accounting Domains:"));
	ck_assert_ptr_nonnull(strstr(s, "unit 0 (cpu 0, node "));
	free(s);

	s = print_to_string(1);
	{
		long long best = 0;

		for (const char *p = strstr(s, "\"sum_frag\":"); p; p = strstr(p + 1, "\"sum_frag\":"))
			if (json_number_after(p, "sum_frag") > best)
				best = json_number_after(p, "sum_frag");
		ck_assert_int_ge(best, 64);
	}
	free(s);
	pcpu_free(a);
	pcpu_free(c);
}
END_TEST

START_TEST(test_print_json)
{
	void *p = pcpu_alloc(40, 8, 0);
	struct pcpu_stats st;
	char *s, *g;

	ck_assert_ptr_nonnull(p);
	s = print_to_string(1);
	st = get();
	ck_assert_msg(json_valid(s), "invalid JSON:\n%s", s);
	g = strstr(s, "\"global\":");
	ck_assert_ptr_nonnull(g);
	ck_assert_int_eq(json_number_after(g, "nr_cur_alloc"), (long long)st.nr_cur_alloc);
	ck_assert_int_eq(json_number_after(g, "nr_alloc"), (long long)st.nr_alloc);
	ck_assert_int_eq(json_number_after(s, "nr_cpus"), (long long)st.nr_cpus);
	ck_assert_int_eq(count_of(s, "{\"unit\":"), (int)pcpu_nr_cpus());
	ck_assert_ptr_nonnull(strstr(s, "\"chunks\":[{"));
	ck_assert_ptr_nonnull(strstr(s, "\"domains\":"));
	free(s);
	pcpu_free(p);
}
END_TEST

/* Counters read while other threads allocate and free always agree with each other. */
static volatile int stop;

static void *churn(void *arg)
{
	void *v[32] = {0};
	unsigned r = (unsigned)(uintptr_t)arg;

	while (!stop) {
		unsigned i = (r = r * 1103515245u + 12345u) >> 16 & 31;

		if (v[i]) {
			pcpu_free(v[i]);
			v[i] = NULL;
		} else {
			v[i] = pcpu_alloc(4 + (r >> 8) % 2000, 0, (r & 1) ? PCPU_NOWAIT : 0);
		}
	}
	for (int i = 0; i < 32; i++)
		pcpu_free(v[i]);
	return NULL;
}

START_TEST(test_consistent)
{
	pthread_t t[3];

	stop = 0;
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)(i + 1)), 0);
	for (int i = 0; i < 200; i++) {
		struct pcpu_stats st = get();

		ck_assert_uint_eq(st.nr_cur_alloc, st.nr_alloc - st.nr_dealloc);
		ck_assert_uint_le(st.nr_cur_alloc, st.nr_max_alloc);
		ck_assert_uint_le(st.nr_chunks, st.nr_max_chunks);
		if (i % 50 == 0) {
			FILE *f = fopen("/dev/null", "w");

			pcpu_stats_print(f);
			pcpu_stats_print_json(f);
			fclose(f);
		}
	}
	stop = 1;
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	ck_assert_int_eq(pcpu_verify(), 0);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* Children: other environments                                                              */
/* ---------------------------------------------------------------------------------------- */

static char *run_child(const char *role, const char *const env[], int *code)
{
	char *out = malloc(OUT_MAX);
	char *argv[] = {spawn_self(), "--child", (char *)role, NULL};

	ck_assert_ptr_nonnull(out);
	*code = spawn_code(spawn_capture(argv, env, out, OUT_MAX));
	return out;
}

static int child_main(const char *role)
{
	if (!strcmp(role, "alloc-exit")) {
		/* Allocate, leave it live, exit: PCPU_STATS prints at exit. */
		return pcpu_alloc(24, 0, 0) ? 0 : 1;
	}
	if (!strcmp(role, "print")) {
		struct pcpu_stats st = {.size = sizeof(st)};

		if (!pcpu_alloc(24, 0, 0) || pcpu_stats_get(&st))
			return 1;
		pcpu_stats_print(stdout);
		return st.index_fallback ? 3 : 0;
	}
	return 2;
}

START_TEST(test_env_at_exit)
{
	const char *text[] = {"PCPU_STATS=1", NULL};
	const char *json[] = {"PCPU_STATS=json", NULL};
	int code;
	char *out;

	out = run_child("alloc-exit", text, &code);
	ck_assert_int_eq(code, 0);
	ck_assert_msg(strstr(out, "Percpu Memory Statistics"), "output:\n%s", out);
	ck_assert_ptr_nonnull(strstr(out, "nr_cur_alloc"));
	free(out);

	out = run_child("alloc-exit", json, &code);
	ck_assert_int_eq(code, 0);
	ck_assert_msg(json_valid(out), "invalid JSON:\n%s", out);
	ck_assert_int_ge(json_number_after(out, "nr_cur_alloc"), 1);
	free(out);

	out = run_child("alloc-exit", NULL, &code);
	ck_assert_int_eq(code, 0);
	ck_assert_ptr_null(strstr(out, "Percpu Memory Statistics"));
	free(out);
}
END_TEST

/* Many units: a summary per node and the units holding the most, not 64 lines. */
START_TEST(test_many_units)
{
	const char *env[] = {"PCPU_CONF=topology=64x4", NULL};
	int code;
	char *out = run_child("print", env, &code);

	ck_assert_int_eq(code, 0);
	ck_assert_msg(strstr(out, "64 units, "), "output:\n%s", out);
	ck_assert_ptr_nonnull(strstr(out, "node 3 (units 48-63): "));
	ck_assert_ptr_nonnull(strstr(out, "largest:"));
	ck_assert_int_le(count_of(out, "  unit "), 8);
	free(out);
}
END_TEST

START_TEST(test_cid_fallback)
{
	const char *env[] = {"PCPU_CONF=index=cid,cpu_mode=getcpu", NULL};
	int code;
	char *out = run_child("print", env, &code);

	ck_assert_msg(code == 3, "exit %d, output:\n%s", code, out); /* index_fallback set */
	ck_assert_ptr_nonnull(strstr(out, "cid fell back to cpu: "));
	free(out);
}
END_TEST

static Suite *stats_suite(void)
{
	Suite *s = suite_create("stats");
	TCase *tc = tcase_create("api");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_get_args);
	tcase_add_test(tc, test_counters);
	tcase_add_test(tc, test_accounted_set);
	tcase_add_test(tc, test_resident);
	tcase_add_test(tc, test_print_text);
	tcase_add_test(tc, test_print_json);
	tcase_add_test(tc, test_consistent);
	tcase_add_test(tc, test_env_at_exit);
	tcase_add_test(tc, test_many_units);
	tcase_add_test(tc, test_cid_fallback);
	suite_add_tcase(s, tc);
	return s;
}

int main(int argc, char **argv)
{
	SRunner *sr;
	int failed;

	if (argc == 3 && !strcmp(argv[1], "--child"))
		return child_main(argv[2]);
	sr = srunner_create(stats_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
