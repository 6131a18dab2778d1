/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * The front caches of ready objects (lib/chunkset_front.c) through the API: objects served
 * from the caches read zero on every CPU after their previous owner wrote every copy;
 * pcpu_trim() empties the caches; a double free of an object sitting in a cache (freed,
 * or freed and already zeroed into the ready list) aborts with the one-line message.
 */
#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pcpu.h>

#include "lib/balance.h"
#include "lib/chunkset.h"
#include "front_cached.h"
#include "mode_check.h"
#include "stats_json.h"
#include "../check_run.h"

#define N 5000

#if defined(__SANITIZE_THREAD__)
#define FRONT_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define FRONT_TEST_TSAN 1
#endif
#endif

static uint64_t hits(int k)
{
	struct pcpu_front_class_stats fs;

	pcpu_front_stats(k, &fs);
	return fs.hits;
}

static void pattern(void *h, size_t size, unsigned char v)
{
	unsigned cpu;

	pcpu_for_each_cpu(cpu)
		memset(pcpu_ptr((char *)h, cpu), v, size);
}

static int reads_zero(void *h, size_t size)
{
	unsigned cpu;

	pcpu_for_each_cpu(cpu) {
		const unsigned char *p = (const unsigned char *)pcpu_ptr((char *)h, cpu);

		for (size_t i = 0; i < size; i++)
			if (p[i])
				return 0;
	}
	return 1;
}

/* Every copy written, freed, zeroed by the balance work, handed out again: zero. */
START_TEST(test_reused_objects_read_zero)
{
	static const size_t sizes[] = {4, 8, 12, 24, 64, 128, 1024};
	static void *v[N];

	test_check_mode();
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		int k = pcpu_front_class(sizes[s], 0);
		uint64_t h0;

		ck_assert_int_ge(k, 0);
		for (int i = 0; i < N; i++) {
			v[i] = pcpu_alloc(sizes[s], 0, 0);
			ck_assert_ptr_nonnull(v[i]);
			ck_assert_msg(reads_zero(v[i], sizes[s]), "new object not zero");
			pattern(v[i], sizes[s], (unsigned char)(i | 1));
		}
		for (int i = 0; i < N; i++)
			pcpu_free(v[i]);
		ck_assert_int_eq(pcpu_verify(), 0);
		pcpu_balance_work(false); /* dirty -> zeroed -> ready */
		h0 = hits(k);
		for (int i = 0; i < N; i++) {
			v[i] = pcpu_alloc(sizes[s], 0, 0);
			ck_assert_ptr_nonnull(v[i]);
			ck_assert_msg(reads_zero(v[i], sizes[s]), "reused %zu-byte object not zero",
				      sizes[s]);
		}
		if (pcpu_cpu_mode() != PCPU_MODE_GETCPU && sizeof(void *) == 8)
			ck_assert_uint_gt(hits(k), h0);
		ck_assert_int_eq(pcpu_verify(), 0);
		for (int i = 0; i < N; i++)
			pcpu_free(v[i]);
	}
}
END_TEST

/*
 * The printed statistics show each class's hits, misses and cached bytes: the JSON's
 * "front" rows carry the front's own numbers, and read 0 cached bytes after a trim.
 */
static json_object *front_row(json_object *o, int size)
{
	json_object *a = jarray(o, "front");

	ck_assert_uint_eq(json_object_array_length(a), PCPU_FRONT_NR_CLASSES);
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		json_object *e = json_object_array_get_idx(a, i);

		if (jint(e, "class_size") == size)
			return e;
	}
	ck_abort_msg("no front row for class %d", size);
	return NULL;
}

START_TEST(test_stats_show_classes)
{
	static void *v[N];
	struct pcpu_front_class_stats fs;
	json_object *o, *r;
	int k8 = -1;

	for (int k = 0; k < PCPU_FRONT_NR_CLASSES; k++)
		if (pcpu_front_class_size(k) == 8)
			k8 = k;
	ck_assert_int_ge(k8, 0);
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < N; i++)
			ck_assert_ptr_nonnull(v[i] = pcpu_alloc(8, 0, 0));
		for (int i = 0; i < N; i++)
			pcpu_free(v[i]);
	}
	o = stats_json_now();
	pcpu_front_stats(k8, &fs); /* after the JSON: the counts only grow in between */
	r = front_row(o, 8);
	/* Hits are pops from a CPU's array; getcpu mode has none, only the shared depots. */
	if (pcpu_cpu_mode() != PCPU_MODE_GETCPU)
		ck_assert_int_gt(jint(r, "hits"), 0);
	ck_assert_int_gt(jint(r, "misses"), 0);
	ck_assert_int_le(jint(r, "hits"), (long long)fs.hits);
	ck_assert_int_le(jint(r, "misses"), (long long)fs.misses);
	/* Every allocation of the class tried the front once: a hit or a miss. */
	ck_assert_int_ge(jint(r, "hits") + jint(r, "misses"), 3 * N);
	ck_assert_int_eq(jint(r, "cached_bytes"), 8 * jint(r, "cached_objects"));
	ck_assert_int_gt(jint(r, "cached_bytes"), 0);
	json_object_put(o);
	pcpu_trim();
	o = stats_json_now();
	ck_assert_int_eq(jint(front_row(o, 8), "cached_bytes"), 0);
	ck_assert_int_eq(jint(front_row(o, 8), "cached_objects"), 0);
	json_object_put(o);
}
END_TEST

/* pcpu_trim() takes every cached object back to the map. */
START_TEST(test_trim_empties_caches)
{
	static void *v[N];
	struct pcpu_stats st = {.size = sizeof(st)};

	for (int i = 0; i < N; i++)
		ck_assert_ptr_nonnull(v[i] = pcpu_alloc(8 + 8 * (size_t)(i % 4), 0, 0));
	for (int i = 0; i < N; i++)
		pcpu_free(v[i]);
	ck_assert_uint_gt(front_cached_bytes(), 0);
	pcpu_trim();
	ck_assert_uint_eq(front_cached_bytes(), 0);
	ck_assert_int_eq(pcpu_stats_get(&st), 0);
	ck_assert_uint_eq(st.nr_cur_alloc, 0);
	ck_assert_uint_eq(st.nr_chunks, 1);
	ck_assert_int_eq(pcpu_verify(), 0);
}
END_TEST

static int abort_child(void (*fn)(void), char *out, size_t len)
{
	int fd[2], status;
	ssize_t r;
	size_t got = 0;
	pid_t pid;

	ck_assert_int_eq(pipe(fd), 0);
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		dup2(fd[1], 2);
		close(fd[0]);
		fn();
		_exit(0);
	}
	close(fd[1]);
	while (got + 1 < len && (r = read(fd[0], out + got, len - 1 - got)) > 0)
		got += (size_t)r;
	out[got] = '\0';
	close(fd[0]);
	waitpid(pid, &status, 0);
	return status;
}

static void *victim;

/* Freed, still dirty in this CPU's cache. */
static void double_free_dirty(void)
{
	victim = pcpu_alloc(8, 0, 0);
	pcpu_free(victim);
	pcpu_free(victim);
}

/* Freed, zeroed, back on the ready list: not yet handed out again. */
static void double_free_ready(void)
{
	victim = pcpu_alloc(16, 0, 0);
	pcpu_free(victim);
	pcpu_balance_work(false);
	pcpu_free(victim);
}

/* Two threads free the same object at once: exactly one may succeed. */
static void *free_victim(void *arg)
{
	(void)arg;
	pcpu_free(victim);
	return NULL;
}

static void double_free_racing(void)
{
	for (int i = 0; i < 1000; i++) {
		pthread_t t[2];

		victim = pcpu_alloc(8, 0, 0);
		pthread_create(&t[0], NULL, free_victim, NULL);
		pthread_create(&t[1], NULL, free_victim, NULL);
		pthread_join(t[0], NULL);
		pthread_join(t[1], NULL);
	}
}

static void expect_double_free(void (*fn)(void))
{
	char out[1024];
	int status = abort_child(fn, out, sizeof(out));

	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "no abort: %s", out);
	ck_assert_msg(strstr(out, "libpcpu: pcpu_free(0x") && strstr(out, "double free"),
		      "message: %s", out);
	ck_assert_msg(strchr(out, '\n') == strrchr(out, '\n'), "more than one line: %s", out);
}

START_TEST(test_double_free_of_cached)
{
#ifdef FRONT_TEST_TSAN
	/* TSan's runtime does not support fork() of a threaded process (the balancer runs). */
	return;
#endif
	expect_double_free(double_free_dirty);
	expect_double_free(double_free_ready);
	expect_double_free(double_free_racing);
	ck_assert_int_eq(pcpu_verify(), 0);
}
END_TEST

/*
 * A flood of frees that fills a dirty depot spills into the map's zeroing queue in
 * batches. With PCPU__FRONT_DEPOT_CAP below two batches (the run front-topo-64x4-overflow)
 * the depot fills before a free would kick the balance work, and where the freer zeroes
 * nothing itself (more than 8 units) the queue must hold them; a double free of a queued
 * object still aborts; the structures verify; and once drained, every object allocated
 * again reads zero on every CPU although every copy was written before the free.
 */
enum { FLOOD = 40000 }; /* more than a depot holds (32768) */
static void **flood;

static void double_free_queued(void)
{
	pcpu_free(flood[FLOOD - 1]);
}

START_TEST(test_dirty_depot_overflow)
{
	long bad = 0;

	flood = malloc(FLOOD * sizeof(*flood));
	ck_assert_ptr_nonnull(flood);
	pcpu_balance_stop();
	for (int i = 0; i < FLOOD; i++) {
		flood[i] = pcpu_alloc(8, 0, 0);
		ck_assert_ptr_nonnull(flood[i]);
		pattern(flood[i], 8, 0x5a);
	}
	for (int i = 0; i < FLOOD; i++)
		pcpu_free(flood[i]);
	ck_assert_int_eq(pcpu_verify(), 0);
	if (getenv("PCPU__FRONT_DEPOT_CAP") && pcpu_nr_cpus() > 8) {
		ck_assert_int_gt(pcpu_queued_areas(), 0);
		/* The balancer is stopped: no other thread, so TSan's runtime may fork too. */
		expect_double_free(double_free_queued);
	}
	pcpu_balance_work(true); /* drains the queue and the caches */
	ck_assert_int_eq(pcpu_queued_areas(), 0);
	for (int i = 0; i < FLOOD; i++) {
		flood[i] = pcpu_alloc(8, 0, 0);
		ck_assert_ptr_nonnull(flood[i]);
		bad += !reads_zero(flood[i], 8);
	}
	ck_assert_int_eq(bad, 0);
	for (int i = 0; i < FLOOD; i++)
		pcpu_free(flood[i]);
	ck_assert_int_eq(pcpu_verify(), 0);
	free(flood);
}
END_TEST

/* Threads allocate, pattern every copy, free; every object they get reads zero. */
static int stop;

static void *storm(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	void *held[64];
	long bad = 0;

	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		int n = 1 + (int)(rand_r(&seed) % 64);
		size_t size = 4 * (1 + rand_r(&seed) % 16);

		for (int i = 0; i < n; i++) {
			held[i] = pcpu_alloc(size, 0, 0);
			if (!held[i] || !reads_zero(held[i], size))
				bad++;
			if (held[i])
				pattern(held[i], size, 0xa5);
		}
		for (int i = 0; i < n; i++)
			pcpu_free(held[i]);
	}
	return (void *)bad;
}

START_TEST(test_zero_storm)
{
	pthread_t t[4];
	const char *e = getenv("PCPU_STRESS_SECONDS");
	double secs = e ? atof(e) : 2;

	for (uintptr_t i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, storm, (void *)(i + 1)), 0);
	usleep((useconds_t)(secs * 1e6));
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < 4; i++) {
		void *bad;

		pthread_join(t[i], &bad);
		ck_assert_msg(bad == NULL, "thread %d: %ld objects not zero or not allocated", i,
			      (long)(uintptr_t)bad);
	}
	ck_assert_int_eq(pcpu_verify(), 0);
	pcpu_trim();
	ck_assert_uint_eq(front_cached_bytes(), 0);
}
END_TEST

/*
 * Freed objects come back zero without any balance work: an allocation that finds the
 * ready list empty zeroes the freed ones itself (recycle(), one page-table scan per batch).
 * Their previous owner wrote a sparse set of copies (every seventh CPU, and the last one),
 * so both written and never-written pages of every unit are in play. At fake 64x4,
 * 1024x16 and 4096x64 too (tests/api/meson.build).
 */
START_TEST(test_recycled_objects_read_zero)
{
	static const size_t sizes[] = {8, 24, 64, 256};
	enum { M = 2000 };
	static void *v[M], *w[M];
	unsigned last = 0, cpu;

	pcpu_for_each_cpu(cpu)
		last = cpu;
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		for (int i = 0; i < M; i++) {
			v[i] = pcpu_alloc(sizes[s], 0, 0);
			ck_assert_ptr_nonnull(v[i]);
			pcpu_for_each_cpu(cpu)
				if (cpu % 7 == (unsigned)i % 7 || cpu == last)
					memset(pcpu_ptr((char *)v[i], cpu), 0x5a, sizes[s]);
		}
		for (int i = M - 1; i >= 0; i--)
			pcpu_free(v[i]);
		for (int i = 0; i < M; i++) {
			w[i] = pcpu_alloc(sizes[s], 0, 0);
			ck_assert_ptr_nonnull(w[i]);
			ck_assert_msg(reads_zero(w[i], sizes[s]), "recycled %zu-byte object not zero",
				      sizes[s]);
		}
		ck_assert_int_eq(pcpu_verify(), 0);
		for (int i = 0; i < M; i++)
			pcpu_free(w[i]);
	}
	pcpu_trim();
	ck_assert_uint_eq(front_cached_bytes(), 0);
	ck_assert_int_eq(pcpu_verify(), 0);
}
END_TEST

/*
 * Objects cached after a balance run found the caches empty still age out: the first free
 * after such a run wakes the balancer, whose timed runs then give them back (they would
 * otherwise pin their chunks for good: test_balance's test_frees_empty_chunks under load).
 */
START_TEST(test_cached_objects_age_out)
{
	enum { M = 100 };
	void *v[M];
	int waited = 0;

	for (int i = 0; i < M; i++) {
		v[i] = pcpu_alloc(8, 0, 0);
		ck_assert_ptr_nonnull(v[i]);
	}
	pcpu_trim(); /* a run that finds the caches empty */
	ck_assert_uint_eq(front_cached_bytes(), 0);
	for (int i = 0; i < M; i++)
		pcpu_free(v[i]); /* fewer than any flush or high mark */
	/*
	 * Three reads of zero in a row, 10 ms apart: objects the balancer is zeroing are on
	 * neither list for a moment, so one read of zero may come too early.
	 */
	for (int zeros = 0; zeros < 3 && waited < 20000; waited += 10) {
		zeros = front_cached_bytes() ? 0 : zeros + 1;
		usleep(10000);
	}
	ck_assert_msg(front_cached_bytes() == 0, "%llu bytes still cached after %d ms",
		      (unsigned long long)front_cached_bytes(), waited);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("front");
	TCase *tc = tcase_create("front");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_reused_objects_read_zero);
	tcase_add_test(tc, test_trim_empties_caches);
	tcase_add_test(tc, test_double_free_of_cached);
	tcase_add_test(tc, test_stats_show_classes);
	tcase_add_test(tc, test_zero_storm);
	tcase_add_test(tc, test_cached_objects_age_out);
	suite_add_tcase(s, tc);
	tc = tcase_create("overflow");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_dirty_depot_overflow);
	suite_add_tcase(s, tc);
	tc = tcase_create("scale");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_recycled_objects_read_zero);
	suite_add_tcase(s, tc);
	return pcpu_check_run(s, CK_FORK);
}
