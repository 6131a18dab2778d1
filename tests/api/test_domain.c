/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * Accounting domains (the kernel's memcg accounting of per-CPU memory): exact charges
 * (size rounded to 4, times nr_cpus, plus one 4-byte owner slot per 4-byte granule),
 * limits (ENOMEM with nothing charged and nothing allocated), the thread-local current
 * domain, destroy (allocations stay valid, the charge moves to the root, a later free
 * uncharges the root), the root as usage(NULL), accounted allocations in a chunk set of
 * their own, concurrent charging, and the stats printer.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <pcpu.h>

#include "lib/alloc.h"
#include "lib/domain.h"
#include "mode_check.h"
#include "stats_json.h"
#include "../check_run.h"

/* The documented charge of an accounted allocation of @size bytes. */
static size_t charge(size_t size)
{
	size_t s = (size + 3) & ~(size_t)3;

	return s * pcpu_nr_cpus() + (s / 4) * 4;
}

static uint64_t cur_allocs(void)
{
	struct pcpu_stats st = {.size = sizeof(st)};

	ck_assert_int_eq(pcpu_stats_get(&st), 0);
	return st.nr_cur_alloc;
}

/* The chunk set @h was served from (0 plain, 1 accounted). */
static int set_of(void *h)
{
	struct pcpu_chunk *c;
	int set;

	pthread_mutex_lock(&pcpu_lock);
	c = pcpu_chunk_lookup(pcpu_addr_of(h));
	ck_assert_ptr_nonnull(c);
	set = c->set;
	pthread_mutex_unlock(&pcpu_lock);
	return set;
}

START_TEST(test_mode)
{
	test_check_mode();
}
END_TEST

START_TEST(test_charge_exact)
{
	static const size_t sizes[] = {1, 2, 3, 4, 5, 8, 24, 100, 1000, 4096, 32768};
	struct pcpu_domain *d = pcpu_domain_create("exact", 0);
	size_t root0 = pcpu_domain_usage(NULL), total = 0;
	void *h[sizeof(sizes) / sizeof(sizes[0])];

	ck_assert_ptr_nonnull(d);
	ck_assert_uint_eq(pcpu_domain_usage(d), 0);
	ck_assert_ptr_null(pcpu_domain_set_current(d));
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		h[i] = pcpu_alloc(sizes[i], 0, PCPU_ACCOUNT);
		ck_assert_ptr_nonnull(h[i]);
		total += charge(sizes[i]);
		ck_assert_uint_eq(pcpu_domain_usage(d), total);
		ck_assert_uint_eq(pcpu_domain_charge_bytes(sizes[i]), charge(sizes[i]));
		/* Served from the accounted chunk set. */
		ck_assert_int_eq(set_of(h[i]), 1);
	}
	/* Unaccounted allocations charge nobody and come from set 0. */
	void *plain = pcpu_alloc(64, 0, 0);

	ck_assert_ptr_nonnull(plain);
	ck_assert_int_eq(set_of(plain), 0);
	ck_assert_uint_eq(pcpu_domain_usage(d), total);
	ck_assert_uint_eq(pcpu_domain_usage(NULL), root0);
	pcpu_free(plain);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		total -= charge(sizes[i]);
		pcpu_free(h[i]);
		ck_assert_uint_eq(pcpu_domain_usage(d), total);
	}
	ck_assert_uint_eq(pcpu_domain_usage(d), 0);
	ck_assert_ptr_eq(pcpu_domain_set_current(NULL), d);
	pcpu_domain_destroy(d);
	ck_assert_uint_eq(pcpu_domain_usage(NULL), root0);
	ck_assert_int_eq(pcpu_verify(), 0);
}
END_TEST

START_TEST(test_limit)
{
	size_t one = charge(64);
	struct pcpu_domain *d = pcpu_domain_create("limited", 3 * one + one / 2);
	struct pcpu_domain *exact = pcpu_domain_create("exact-limit", one);
	void *h[3], *x;
	uint64_t allocs;

	ck_assert_ptr_nonnull(d);
	pcpu_domain_set_current(d);
	for (int i = 0; i < 3; i++) {
		h[i] = pcpu_alloc(64, 0, PCPU_ACCOUNT);
		ck_assert_ptr_nonnull(h[i]);
	}
	ck_assert_uint_eq(pcpu_domain_usage(d), 3 * one);
	allocs = cur_allocs();
	errno = 0;
	x = pcpu_alloc(64, 0, PCPU_ACCOUNT);
	ck_assert_ptr_null(x);
	ck_assert_int_eq(errno, ENOMEM);
	/* Nothing charged, nothing allocated. */
	ck_assert_uint_eq(pcpu_domain_usage(d), 3 * one);
	ck_assert_uint_eq(cur_allocs(), allocs);
	/* Also with PCPU_NOWAIT, and for a request that alone is above the limit. */
	errno = 0;
	ck_assert_ptr_null(pcpu_alloc(64, 0, PCPU_ACCOUNT | PCPU_NOWAIT));
	ck_assert_int_eq(errno, ENOMEM);
	ck_assert_ptr_null(pcpu_alloc(32768, 0, PCPU_ACCOUNT));
	ck_assert_int_eq(errno, ENOMEM);
	ck_assert_uint_eq(pcpu_domain_usage(d), 3 * one);
	ck_assert_uint_eq(cur_allocs(), allocs);
	/* A smaller request still fits the remaining room. */
	x = pcpu_alloc(16, 0, PCPU_ACCOUNT);
	ck_assert_ptr_nonnull(x);
	ck_assert_uint_eq(pcpu_domain_usage(d), 3 * one + charge(16));
	pcpu_free(x);
	/* Unaccounted allocations ignore the limit. */
	x = pcpu_alloc(4096, 0, 0);
	ck_assert_ptr_nonnull(x);
	pcpu_free(x);
	/* Freeing makes room again. */
	pcpu_free(h[0]);
	h[0] = pcpu_alloc(64, 0, PCPU_ACCOUNT);
	ck_assert_ptr_nonnull(h[0]);
	/* A limit equal to the charge is enough (the limit is inclusive). */
	pcpu_domain_set_current(exact);
	x = pcpu_alloc(64, 0, PCPU_ACCOUNT);
	ck_assert_ptr_nonnull(x);
	ck_assert_uint_eq(pcpu_domain_usage(exact), one);
	ck_assert_ptr_null(pcpu_alloc(1, 0, PCPU_ACCOUNT));
	pcpu_free(x);
	pcpu_domain_set_current(NULL);
	for (int i = 0; i < 3; i++)
		pcpu_free(h[i]);
	ck_assert_uint_eq(pcpu_domain_usage(d), 0);
	ck_assert_uint_eq(pcpu_domain_usage(exact), 0);
	pcpu_domain_destroy(d);
	pcpu_domain_destroy(exact);
	ck_assert_int_eq(pcpu_verify(), 0);
}
END_TEST

/* A failed allocation after a successful charge gives the charge back. */
START_TEST(test_failure_uncharges)
{
	struct pcpu_domain *d = pcpu_domain_create("fail", 0);
	uint64_t allocs;

	pcpu_domain_set_current(d);
	allocs = cur_allocs();
	/* Larger than any chunk: passes the arguments check only up to the unit size. */
	errno = 0;
	ck_assert_ptr_null(pcpu_alloc((size_t)1 << 40, 0, PCPU_ACCOUNT));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_null(pcpu_alloc(8, 3, PCPU_ACCOUNT));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_uint_eq(pcpu_domain_usage(d), 0);
	ck_assert_uint_eq(cur_allocs(), allocs);

	/*
	 * Out of address space once the charge is taken: cap RLIMIT_AS just above what the
	 * process maps now, then allocate until a new chunk cannot be made. Every failed
	 * allocation must have given its charge back (this runs in Check's forked child).
	 */
	struct rlimit rl;
	unsigned long pages = 0;
	FILE *f;
	int ok = 0, failed = 0;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	/* The sanitizers' shadow memory cannot live under an address-space limit. */
	pcpu_domain_set_current(NULL);
	return;
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
	pcpu_domain_set_current(NULL);
	return;
#endif
#endif
	f = fopen("/proc/self/statm", "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fscanf(f, "%lu", &pages), 1);
	fclose(f);
	ck_assert_int_eq(getrlimit(RLIMIT_AS, &rl), 0);
	rl.rlim_cur = pages * (rlim_t)sysconf(_SC_PAGESIZE) + (256 << 10);
	ck_assert_int_eq(setrlimit(RLIMIT_AS, &rl), 0);
	for (int i = 0; i < 2000 && failed < 3; i++) {
		errno = 0;
		if (pcpu_alloc(32768, 0, PCPU_ACCOUNT)) {
			ok++;
		} else {
			ck_assert_int_eq(errno, ENOMEM);
			failed++;
		}
	}
	ck_assert_int_eq(failed, 3);
	ck_assert_uint_eq(pcpu_domain_usage(d), (size_t)ok * charge(32768));
	ck_assert_uint_eq(cur_allocs(), allocs + (uint64_t)ok);
	pcpu_domain_set_current(NULL);
}
END_TEST

struct thr_arg {
	struct pcpu_domain *d;
	int n;
	size_t size;
	void **h;
	struct pcpu_domain *seen_initial;
};

static void *thr_alloc(void *p)
{
	struct thr_arg *a = p;

	/* A new thread starts in the root. */
	a->seen_initial = pcpu_domain_set_current(a->d);
	for (int i = 0; i < a->n; i++) {
		a->h[i] = pcpu_alloc(a->size, 0, PCPU_ACCOUNT);
		ck_assert_ptr_nonnull(a->h[i]);
	}
	return NULL;
}

START_TEST(test_current_per_thread)
{
	struct pcpu_domain *d1 = pcpu_domain_create("t1", 0), *d2 = pcpu_domain_create("t2", 0);
	struct pcpu_domain *mine = pcpu_domain_create("main", 0);
	void *h1[50], *h2[70];
	struct thr_arg a1 = {d1, 50, 24, h1, (struct pcpu_domain *)1};
	struct thr_arg a2 = {d2, 70, 40, h2, (struct pcpu_domain *)1};
	size_t root0 = pcpu_domain_usage(NULL);
	pthread_t t1, t2;

	pcpu_domain_set_current(mine);
	ck_assert_int_eq(pthread_create(&t1, NULL, thr_alloc, &a1), 0);
	ck_assert_int_eq(pthread_create(&t2, NULL, thr_alloc, &a2), 0);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	ck_assert_ptr_null(a1.seen_initial);
	ck_assert_ptr_null(a2.seen_initial);
	ck_assert_uint_eq(pcpu_domain_usage(d1), 50 * charge(24));
	ck_assert_uint_eq(pcpu_domain_usage(d2), 70 * charge(40));
	/* This thread's own domain and the root saw none of it. */
	ck_assert_uint_eq(pcpu_domain_usage(mine), 0);
	ck_assert_uint_eq(pcpu_domain_usage(NULL), root0);
	ck_assert_ptr_eq(pcpu_domain_set_current(NULL), mine);
	/* Frees uncharge the owner, whichever thread frees. */
	for (int i = 0; i < 50; i++)
		pcpu_free(h1[i]);
	for (int i = 0; i < 70; i++)
		pcpu_free(h2[i]);
	ck_assert_uint_eq(pcpu_domain_usage(d1), 0);
	ck_assert_uint_eq(pcpu_domain_usage(d2), 0);
	pcpu_domain_destroy(d1);
	pcpu_domain_destroy(d2);
	pcpu_domain_destroy(mine);
}
END_TEST

START_TEST(test_root_is_null)
{
	size_t root0 = pcpu_domain_usage(NULL);
	void *h;

	/* No domain set: PCPU_ACCOUNT charges the root. */
	ck_assert_ptr_null(pcpu_domain_set_current(NULL));
	h = pcpu_alloc(48, 0, PCPU_ACCOUNT);
	ck_assert_ptr_nonnull(h);
	ck_assert_uint_eq(pcpu_domain_usage(NULL), root0 + charge(48));
	pcpu_free(h);
	ck_assert_uint_eq(pcpu_domain_usage(NULL), root0);
}
END_TEST

START_TEST(test_destroy_reparents)
{
	struct pcpu_domain *d = pcpu_domain_create("doomed", 1 << 20);
	size_t root0 = pcpu_domain_usage(NULL);
	uint64_t *h[20];
	unsigned cpu;

	pcpu_domain_set_current(d);
	for (int i = 0; i < 20; i++) {
		h[i] = pcpu_alloc(sizeof(uint64_t), 0, PCPU_ACCOUNT);
		ck_assert_ptr_nonnull(h[i]);
		pcpu_for_each_cpu(cpu)
			*pcpu_ptr(h[i], cpu) = (uint64_t)i * 1000 + cpu;
	}
	ck_assert_uint_eq(pcpu_domain_usage(d), 20 * charge(8));
	pcpu_domain_set_current(NULL);
	pcpu_domain_destroy(d);
	/* The charge moved to the root; the allocations are untouched and usable. */
	ck_assert_uint_eq(pcpu_domain_usage(NULL), root0 + 20 * charge(8));
	for (int i = 0; i < 20; i++) {
		pcpu_for_each_cpu(cpu)
			ck_assert_uint_eq(*pcpu_ptr(h[i], cpu), (uint64_t)i * 1000 + cpu);
		pcpu_this_add(h[i], 5);
	}
	ck_assert_int_eq(pcpu_verify(), 0);
	/* A free after the destroy uncharges the root. */
	for (int i = 0; i < 20; i++) {
		pcpu_free(h[i]);
		ck_assert_uint_eq(pcpu_domain_usage(NULL), root0 + (19 - (size_t)i) * charge(8));
	}
	ck_assert_uint_eq(pcpu_domain_usage(NULL), root0);
}
END_TEST

/* Many domains created and destroyed with live allocations: owner ids are reused. */
START_TEST(test_many_domains)
{
	enum { D = 300 };
	void *h[D];
	size_t root0 = pcpu_domain_usage(NULL);

	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < D; i++) {
			char name[32];
			struct pcpu_domain *d;

			snprintf(name, sizeof(name), "d%d", i);
			d = pcpu_domain_create(name, 0);
			ck_assert_ptr_nonnull(d);
			pcpu_domain_set_current(d);
			h[i] = pcpu_alloc(12, 0, PCPU_ACCOUNT);
			ck_assert_ptr_nonnull(h[i]);
			pcpu_domain_set_current(NULL);
			ck_assert_uint_eq(pcpu_domain_usage(d), charge(12));
			pcpu_domain_destroy(d);
		}
		ck_assert_uint_eq(pcpu_domain_usage(NULL), root0 + D * charge(12));
		for (int i = 0; i < D; i++)
			pcpu_free(h[i]);
		ck_assert_uint_eq(pcpu_domain_usage(NULL), root0);
	}
	ck_assert_int_eq(pcpu_verify(), 0);
}
END_TEST

enum { STORM_THREADS = 8, STORM_ITERS = 20000 };
static struct pcpu_domain *storm_dom[4];

static void *storm(void *p)
{
	unsigned seed = (unsigned)(uintptr_t)p;
	void *live[16] = {0};

	for (int i = 0; i < STORM_ITERS; i++) {
		int k;

		seed = seed * 1103515245u + 12345u;
		k = (int)((seed >> 8) % 16);
		if (live[k]) {
			pcpu_free(live[k]);
			live[k] = NULL;
			continue;
		}
		pcpu_domain_set_current(storm_dom[(seed >> 16) % 4]);
		live[k] = pcpu_alloc(4 + (seed >> 20) % 200, 0,
				     PCPU_ACCOUNT | ((seed & 0x100) ? PCPU_NOWAIT : 0));
	}
	for (int k = 0; k < 16; k++)
		pcpu_free(live[k]);
	pcpu_domain_set_current(NULL);
	return NULL;
}

START_TEST(test_concurrent)
{
	pthread_t t[STORM_THREADS];
	size_t root0 = pcpu_domain_usage(NULL);

	for (int i = 0; i < 3; i++)
		storm_dom[i] = pcpu_domain_create("storm", 0);
	storm_dom[3] = NULL; /* the root */
	for (int i = 0; i < STORM_THREADS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, storm, (void *)(uintptr_t)(i + 1)), 0);
	for (int i = 0; i < STORM_THREADS; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < 3; i++) {
		ck_assert_uint_eq(pcpu_domain_usage(storm_dom[i]), 0);
		pcpu_domain_destroy(storm_dom[i]);
	}
	ck_assert_uint_eq(pcpu_domain_usage(NULL), root0);
	ck_assert_int_eq(pcpu_verify(), 0);
}
END_TEST

START_TEST(test_create_args_and_stats)
{
	/* A quote, a control character and a byte that is not UTF-8. */
	static const char odd[] = "odd\x01\xff";
	struct pcpu_domain *d, *o;
	json_object *j, *r;
	char *text, *line, want[128];
	void *h;

	errno = 0;
	ck_assert_ptr_null(pcpu_domain_create(NULL, 0));
	ck_assert_int_eq(errno, EINVAL);
	pcpu_domain_destroy(NULL);
	d = pcpu_domain_create("tenant-\"42\"", 123456789);
	o = pcpu_domain_create(odd, 0);
	ck_assert_ptr_nonnull(d);
	ck_assert_ptr_nonnull(o);
	pcpu_domain_set_current(d);
	h = pcpu_alloc(100, 0, PCPU_ACCOUNT);
	ck_assert_ptr_nonnull(h);
	pcpu_domain_set_current(NULL);

	/* The names survive JSON escaping; invalid UTF-8 becomes U+FFFD. */
	j = stats_json_now();
	r = jfind(j, "domains", "tenant-\"42\"");
	ck_assert_int_eq(jint(r, "limit"), 123456789);
	ck_assert_int_eq(jint(r, "usage"), (long long)charge(100));
	ck_assert_int_eq(jint(r, "peak"), (long long)charge(100));
	ck_assert_int_eq(jint(r, "allocs"), 1);
	ck_assert_int_eq(jint(r, "failed"), 0);
	r = jfind(j, "domains", "odd\x01\xef\xbf\xbd");
	ck_assert_int_eq(jint(r, "usage"), 0);
	ck_assert_int_eq(jint(r, "limit"), 0);
	ck_assert_int_ge(jint(jfind(j, "sets", "accounted"), "nr_alloc"), 1);
	ck_assert_int_ge(jint(jfind(j, "sets", "accounted"), "alloc_bytes"), 100);
	json_object_put(j);

	/* Text: one row per domain, the control character shown as '?'. */
	text = stats_print_string(0);
	line = strstr(text, "\n  tenant-\"42\" ");
	ck_assert_ptr_nonnull(line);
	snprintf(want, sizeof(want), " usage %zu  peak %zu  limit 123456789  allocs 1  failed 0\n",
		 charge(100), charge(100));
	ck_assert_ptr_eq(strstr(line, want), strchr(line + 1, '\n') - strlen(want) + 1);
	ck_assert_ptr_nonnull(strstr(text, "\n  odd?\xff "));
	free(text);

	pcpu_free(h);
	pcpu_domain_destroy(d);
	pcpu_domain_destroy(o);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("domain");
	TCase *tc = tcase_create("domain");

	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, test_mode);
	tcase_add_test(tc, test_charge_exact);
	tcase_add_test(tc, test_limit);
	tcase_add_test(tc, test_failure_uncharges);
	tcase_add_test(tc, test_current_per_thread);
	tcase_add_test(tc, test_root_is_null);
	tcase_add_test(tc, test_destroy_reparents);
	tcase_add_test(tc, test_many_domains);
	tcase_add_test(tc, test_concurrent);
	tcase_add_test(tc, test_create_args_and_stats);
	suite_add_tcase(s, tc);
	return pcpu_check_run(s, CK_FORK_GETENV);
}
