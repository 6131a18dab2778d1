/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * Statistics: pcpu_stats_get() (arguments, the size prefix rule, counters, resident bytes,
 * consistency while other threads allocate), pcpu_stats_print() (the kernel's percpu_stats
 * sections, fragmentation, units, the cid fallback reason) and pcpu_stats_print_json()
 * (valid JSON, parsed with json-c, that agrees with pcpu_stats_get()); the chunk-set table
 * against the allocations made; PCPU_STATS=1 / json at exit.
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

#include "pcpu_config.h"
#include "spawn.h"
#include "stats_json.h"
#include "../check_run.h"

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

/*
 * Text: the value of "  @key : value" in section @title, or of "key value" in the row of
 * that section whose label is @row (NULL: a section line). -1 when absent.
 */
static long long text_value(const char *s, const char *title, const char *row, const char *key)
{
	char head[64], pat[64];
	const char *sec, *end, *p;

	snprintf(head, sizeof(head), "\n%s:\n", title);
	sec = strstr(s, head);
	if (!sec)
		return -1;
	sec += strlen(head);
	end = strstr(sec, "\n\n");
	end = end ? end : sec + strlen(sec);
	if (row) {
		snprintf(pat, sizeof(pat), "\n  %s ", row);
		p = strstr(sec - 1, pat);
		if (!p || p > end)
			return -1;
		sec = p + 1;
		end = strchr(sec, '\n');
		snprintf(pat, sizeof(pat), "  %s ", key);
	} else {
		snprintf(pat, sizeof(pat), "\n  %-20s: ", key);
		sec--;
	}
	p = strstr(sec, pat);
	if (!p || (end && p > end))
		return -1;
	return strtoll(p + strlen(pat), NULL, 10);
}

START_TEST(test_print_text)
{
	void *a = pcpu_alloc(16, 16, 0), *b = pcpu_alloc(64, 16, 0), *c = pcpu_alloc(16, 16, 0);
	void *d = pcpu_alloc(40, 0, PCPU_ACCOUNT);
	json_object *j;
	long long best = 0;
	struct pcpu_stats st;
	char *s;

	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_nonnull(c);
	ck_assert_ptr_nonnull(d);
	pcpu_free(b); /* a hole of 64 bytes before the last allocation */
	s = stats_print_string(0);
	st = get();
	j = stats_json_now();
	/* The counters in the text are those of the moment (nothing allocates meanwhile). */
	ck_assert_int_eq(text_value(s, "Global Stats", NULL, "nr_alloc"), (long long)st.nr_alloc);
	ck_assert_int_eq(text_value(s, "Global Stats", NULL, "nr_dealloc"), (long long)st.nr_dealloc);
	ck_assert_int_eq(text_value(s, "Global Stats", NULL, "nr_cur_alloc"),
			 (long long)st.nr_cur_alloc);
	ck_assert_int_eq(text_value(s, "Global Stats", NULL, "max_alloc_size"),
			 (long long)st.max_alloc_size);
	ck_assert_int_eq(text_value(s, "Allocation Info", NULL, "unit_size"),
			 (long long)st.unit_size);
	ck_assert_int_eq(text_value(s, "Allocation Info", NULL, "nr_cpus"), (long long)st.nr_cpus);
	/* One chunk-set table, its rows those of the JSON. */
	ck_assert_int_eq(count_of(s, "Chunk Sets:"), 1);
	ck_assert_msg(!strstr(s, "set 0 (plain)"), "a second set table:\n%s", s);
	for (const char *set = "plain\0accounted\0"; *set; set += strlen(set) + 1) {
		json_object *t = jfind(j, "sets", set);

		ck_assert_int_eq(text_value(s, "Chunk Sets", set, "nr_alloc"), jint(t, "nr_alloc"));
		ck_assert_int_eq(text_value(s, "Chunk Sets", set, "alloc_bytes"),
				 jint(t, "alloc_bytes"));
		ck_assert_int_eq(text_value(s, "Chunk Sets", set, "chunks"), jint(t, "chunks"));
	}
	ck_assert_int_eq(text_value(s, "Accounting Domains", "root", "allocs"),
			 jint(jfind(j, "domains", "root"), "allocs"));
	ck_assert_int_eq(text_value(s, "Resident Memory per Unit", "unit", "cpu"), 0);
	ck_assert_int_eq(count_of(s, "\n  unit "), (int)pcpu_nr_cpus());
	ck_assert_int_eq(count_of(s, "\nChunk 0x"),
			 (int)json_object_array_length(jarray(j, "chunks")));
	ck_assert_int_eq(count_of(s, "<- First Chunk"), 1);
	/* Fragmentation: the 64-byte hole before c. */
	for (size_t i = 0; i < json_object_array_length(jarray(j, "chunks")); i++) {
		long long v = jint(json_object_array_get_idx(jarray(j, "chunks"), i), "sum_frag");

		best = v > best ? v : best;
	}
	ck_assert_int_ge(best, 64);
	ck_assert_int_ge(text_value(s, "Per Chunk Stats", NULL, "sum_frag"), 0);
	json_object_put(j);
	free(s);
	pcpu_free(a);
	pcpu_free(c);
	pcpu_free(d);
}
END_TEST

START_TEST(test_print_json)
{
	void *p = pcpu_alloc(40, 8, 0);
	struct pcpu_stats st;
	json_object *j, *units;

	ck_assert_ptr_nonnull(p);
	j = stats_json_now();
	st = get();
	ck_assert_str_eq(jstr(j, "version"), PCPU_VERSION);
	{
		/* The header's numbers and meson's project version are one version. */
		char hdr[32];

		snprintf(hdr, sizeof(hdr), "%d.%d.%d", PCPU_VERSION_MAJOR, PCPU_VERSION_MINOR,
			 PCPU_VERSION_PATCH);
		ck_assert_str_eq(hdr, PCPU_VERSION);
	}
	ck_assert_int_eq(jint(j, "global.nr_cur_alloc"), (long long)st.nr_cur_alloc);
	ck_assert_int_eq(jint(j, "global.nr_alloc"), (long long)st.nr_alloc);
	ck_assert_int_eq(jint(j, "global.nr_dealloc"), (long long)st.nr_dealloc);
	ck_assert_int_eq(jint(j, "global.nr_chunks"), (long long)st.nr_chunks);
	ck_assert_int_eq(jint(j, "global.min_alloc_size"), (long long)st.min_alloc_size);
	ck_assert_int_eq(jint(j, "global.max_alloc_size"), (long long)st.max_alloc_size);
	ck_assert_int_eq(jint(j, "alloc_info.nr_cpus"), (long long)st.nr_cpus);
	ck_assert_int_eq(jint(j, "alloc_info.unit_size"), (long long)st.unit_size);
	ck_assert_int_eq(jint(j, "alloc_info.page_size"), (long long)st.page_size);
	ck_assert_str_eq(jstr(j, "runtime.index_mode"), "cpu");
	ck_assert_ptr_null(jstr(j, "runtime.index_fallback_reason"));
	units = jarray(j, "units");
	ck_assert_uint_eq(json_object_array_length(units), pcpu_nr_cpus());
	for (size_t u = 0; u < json_object_array_length(units); u++)
		ck_assert_int_eq(jint(json_object_array_get_idx(units, u), "unit"), (long long)u);
	ck_assert_uint_eq(json_object_array_length(jarray(j, "chunks")), st.nr_chunks + 1);
	jfind(j, "domains", "root");
	json_object_put(j);
	pcpu_free(p);
}
END_TEST

/* The sum of member @key over the chunks whose "set" is @set. */
static long long chunks_sum(json_object *j, const char *set, const char *key)
{
	json_object *a = jarray(j, "chunks");
	long long sum = 0;

	for (size_t i = 0; i < json_object_array_length(a); i++) {
		json_object *c = json_object_array_get_idx(a, i);

		if (!strcmp(jstr(c, "set"), set))
			sum += jint(c, key);
	}
	return sum;
}

/* Every live allocation is in one set or the reserved region, and the chunks add up. */
static void check_sets_add_up(json_object *j)
{
	long long live = jint(jfind(j, "regions", "reserved"), "nr_alloc");

	for (const char *set = "plain\0accounted\0"; *set; set += strlen(set) + 1) {
		json_object *t = jfind(j, "sets", set);

		live += jint(t, "nr_alloc");
		ck_assert_int_eq(chunks_sum(j, set, "nr_alloc"), jint(t, "nr_alloc"));
		ck_assert_int_eq(chunks_sum(j, set, "alloc_bytes"), jint(t, "alloc_bytes"));
		ck_assert_int_eq(chunks_sum(j, set, "nr_queued"), jint(t, "nr_queued"));
		ck_assert_int_eq(chunks_sum(j, set, "free_bytes"), jint(t, "free_bytes"));
	}
	ck_assert_int_eq(live, jint(j, "global.nr_cur_alloc"));
	ck_assert_int_eq(jint(j, "global.nr_cur_alloc"),
			 jint(j, "global.nr_alloc") - jint(j, "global.nr_dealloc"));
}

/*
 * The chunk-set table against the allocations made: N plain and M accounted allocations
 * of known sizes show up as N and M more live allocations of those sizes (rounded up to
 * the 4-byte granule) in their sets, and leave again when freed.
 */
START_TEST(test_set_table)
{
	static const size_t plain[] = {1, 7, 24, 100, 4096, 333};
	static const size_t acct[] = {12, 64, 1000};
	enum { N = sizeof(plain) / sizeof(plain[0]), M = sizeof(acct) / sizeof(acct[0]) };
	void *hp[N], *ha[M];
	long long pbytes = 0, abytes = 0, fbytes;
	json_object *a, *b, *c;

	a = stats_json_now();
	check_sets_add_up(a);
	for (int i = 0; i < N; i++) {
		hp[i] = pcpu_alloc(plain[i], 0, 0);
		ck_assert_ptr_nonnull(hp[i]);
		pbytes += (long long)((plain[i] + 3) & ~(size_t)3);
	}
	for (int i = 0; i < M; i++) {
		ha[i] = pcpu_alloc(acct[i], 0, PCPU_ACCOUNT);
		ck_assert_ptr_nonnull(ha[i]);
		abytes += (long long)((acct[i] + 3) & ~(size_t)3);
	}
	b = stats_json_now();
	check_sets_add_up(b);
	ck_assert_int_eq(jint(jfind(b, "sets", "plain"), "nr_alloc"),
			 jint(jfind(a, "sets", "plain"), "nr_alloc") + N);
	ck_assert_int_eq(jint(jfind(b, "sets", "plain"), "alloc_bytes"),
			 jint(jfind(a, "sets", "plain"), "alloc_bytes") + pbytes);
	ck_assert_int_eq(jint(jfind(b, "sets", "accounted"), "nr_alloc"),
			 jint(jfind(a, "sets", "accounted"), "nr_alloc") + M);
	ck_assert_int_eq(jint(jfind(b, "sets", "accounted"), "alloc_bytes"),
			 jint(jfind(a, "sets", "accounted"), "alloc_bytes") + abytes);
	ck_assert_int_ge(jint(jfind(b, "sets", "accounted"), "chunks"), 1);
	ck_assert_int_eq(jint(b, "global.nr_alloc"), jint(a, "global.nr_alloc") + N + M);
	ck_assert_int_eq(jint(b, "global.nr_dealloc"), jint(a, "global.nr_dealloc"));
	ck_assert_int_eq(jint(b, "global.nr_cur_alloc"), jint(a, "global.nr_cur_alloc") + N + M);
	ck_assert_int_eq(jint(jfind(b, "domains", "root"), "allocs"),
			 jint(jfind(a, "domains", "root"), "allocs") + M);

	/* Free two plain and one accounted: freed areas are queued or free, never live. */
	pcpu_free(hp[1]);
	pcpu_free(hp[4]);
	pcpu_free(ha[2]);
	fbytes = 8 + 4096;
	c = stats_json_now();
	check_sets_add_up(c);
	ck_assert_int_eq(jint(jfind(c, "sets", "plain"), "nr_alloc"),
			 jint(jfind(b, "sets", "plain"), "nr_alloc") - 2);
	ck_assert_int_eq(jint(jfind(c, "sets", "plain"), "alloc_bytes"),
			 jint(jfind(b, "sets", "plain"), "alloc_bytes") - fbytes);
	ck_assert_int_eq(jint(jfind(c, "sets", "accounted"), "nr_alloc"),
			 jint(jfind(b, "sets", "accounted"), "nr_alloc") - 1);
	ck_assert_int_eq(jint(jfind(c, "sets", "accounted"), "alloc_bytes"),
			 jint(jfind(b, "sets", "accounted"), "alloc_bytes") - 1000);
	ck_assert_int_eq(jint(c, "global.nr_dealloc"), jint(b, "global.nr_dealloc") + 3);
	ck_assert_int_eq(jint(jfind(c, "domains", "root"), "allocs"),
			 jint(jfind(b, "domains", "root"), "allocs") - 1);
	for (int i = 0; i < N; i++)
		if (i != 1 && i != 4)
			pcpu_free(hp[i]);
	pcpu_free(ha[0]);
	pcpu_free(ha[1]);
	json_object_put(a);
	json_object_put(b);
	json_object_put(c);
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
	if (!strcmp(role, "print-json")) {
		struct pcpu_stats st = {.size = sizeof(st)};

		if (pcpu_stats_get(&st))
			return 1;
		pcpu_stats_print_json(stdout);
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

	json_object *j, *t;

	/* The child's one allocation of 24 bytes is live at exit. */
	out = run_child("alloc-exit", text, &code);
	ck_assert_int_eq(code, 0);
	ck_assert_msg(strstr(out, "Percpu Memory Statistics"), "output:\n%s", out);
	ck_assert_int_eq(text_value(out, "Global Stats", NULL, "nr_cur_alloc"), 1);
	ck_assert_int_eq(text_value(out, "Chunk Sets", "plain", "alloc_bytes"), 24);
	free(out);

	out = run_child("alloc-exit", json, &code);
	ck_assert_int_eq(code, 0);
	j = json_parse_strict(out);
	ck_assert_int_eq(jint(j, "global.nr_alloc"), 1);
	ck_assert_int_eq(jint(j, "global.nr_cur_alloc"), 1);
	t = jfind(j, "sets", "plain");
	ck_assert_int_eq(jint(t, "nr_alloc"), 1);
	ck_assert_int_eq(jint(t, "alloc_bytes"), 24);
	ck_assert_int_eq(jint(jfind(j, "sets", "accounted"), "nr_alloc"), 0);
	json_object_put(j);
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
	char *out = run_child("print-json", env, &code);
	json_object *j;
	const char *why;

	ck_assert_msg(code == 3, "exit %d, output:\n%s", code, out); /* index_fallback set */
	j = json_parse_strict(out);
	ck_assert_str_eq(jstr(j, "runtime.index_mode"), "cpu");
	why = jstr(j, "runtime.index_fallback_reason");
	ck_assert_msg(why && *why, "no fallback reason:\n%s", out);
	json_object_put(j);
	free(out);
	out = run_child("print", env, &code);
	ck_assert_int_eq(code, 3);
	ck_assert_msg(strstr(out, "index_fallback_reason: ") && !strstr(out, "index_fallback_reason:         none"),
		      "output:\n%s", out);
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
	tcase_add_test(tc, test_set_table);
	tcase_add_test(tc, test_consistent);
	tcase_add_test(tc, test_env_at_exit);
	tcase_add_test(tc, test_many_units);
	tcase_add_test(tc, test_cid_fallback);
	suite_add_tcase(s, tc);
	return s;
}

int main(int argc, char **argv)
{

	if (argc == 3 && !strcmp(argv[1], "--child"))
		return child_main(argv[2]);
	return pcpu_check_run(stats_suite(), CK_FORK_GETENV);
}
