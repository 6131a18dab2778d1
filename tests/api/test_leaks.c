/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * The leak report: every live allocation with its size and caller, grouped by call site,
 * the largest site first, callers resolved to symbols (this program is linked with
 * -rdynamic); freed allocations gone; allocations made before recording show an unknown
 * caller; PCPU_LEAKS=1 prints at exit.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <pcpu.h>

#include "spawn.h"

#define OUT_MAX (1 << 20)

/* Two call sites, exported so dladdr() can name them. */
__attribute__((noinline)) void *leak_site_small(void)
{
	void *p = pcpu_alloc(100, 0, 0);

	__asm__ volatile("" ::: "memory"); /* keep the call a call, not a tail call */
	return p;
}

__attribute__((noinline)) void *leak_site_large(void)
{
	void *p = pcpu_alloc(1000, 0, 0);

	__asm__ volatile("" ::: "memory");
	return p;
}

static char *report(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	ck_assert_ptr_nonnull(f);
	pcpu_leaks_print(f);
	fclose(f);
	return buf;
}

START_TEST(test_grouped_largest_first)
{
	void *s[3], *l;
	char *r, *ps, *pl;
	char want[64];

	pcpu_leaks_enable();
	for (int i = 0; i < 3; i++)
		s[i] = leak_site_small();
	l = leak_site_large();
	r = report();
	ck_assert_msg(strstr(r, "4 live allocations, 1300 bytes per CPU"), "report:\n%s", r);
	ck_assert_ptr_nonnull(strstr(r, "from 2 call sites"));
	ps = strstr(r, "300 bytes per CPU in 3 allocations from leak_site_small+0x");
	pl = strstr(r, "1000 bytes per CPU in 1 allocation from leak_site_large+0x");
	ck_assert_msg(ps && pl, "report:\n%s", r);
	ck_assert_msg(pl < ps, "largest site not first:\n%s", r);
	snprintf(want, sizeof(want), "    %p size 1000\n", l);
	ck_assert_ptr_nonnull(strstr(r, want));
	for (int i = 0; i < 3; i++) {
		snprintf(want, sizeof(want), "    %p size 100\n", s[i]);
		ck_assert_msg(strstr(r, want), "no %s in:\n%s", want, r);
	}
	free(r);

	pcpu_free(l);
	pcpu_free(s[1]);
	r = report();
	ck_assert_msg(strstr(r, "2 live allocations, 200 bytes per CPU"), "report:\n%s", r);
	ck_assert_ptr_null(strstr(r, "leak_site_large"));
	snprintf(want, sizeof(want), "%p", s[1]);
	ck_assert_ptr_null(strstr(r, want));
	free(r);
	pcpu_free(s[0]);
	pcpu_free(s[2]);
	r = report();
	ck_assert_msg(strstr(r, "0 live allocations"), "report:\n%s", r);
	free(r);
}
END_TEST

/* Many allocations of one site: listed up to a limit, then counted. */
START_TEST(test_many_one_site)
{
	void *v[40];
	char *r;

	pcpu_leaks_enable();
	for (int i = 0; i < 40; i++)
		v[i] = leak_site_small();
	r = report();
	ck_assert_msg(strstr(r, "4000 bytes per CPU in 40 allocations from leak_site_small"),
		      "report:\n%s", r);
	ck_assert_ptr_nonnull(strstr(r, "... and 32 more"));
	free(r);
	for (int i = 0; i < 40; i++)
		pcpu_free(v[i]);
}
END_TEST

START_TEST(test_before_enable)
{
	void *a = leak_site_large(), *b;
	char *r;

	pcpu_leaks_enable();
	b = leak_site_small();
	r = report();
	ck_assert_msg(strstr(r, "1000 bytes per CPU in 1 allocation from unknown caller"),
		      "report:\n%s", r);
	ck_assert_ptr_nonnull(strstr(r, "100 bytes per CPU in 1 allocation from leak_site_small"));
	free(r);
	pcpu_free(a);
	pcpu_free(b);
}
END_TEST

static int child_main(const char *role)
{
	if (!strcmp(role, "leak")) {
		/* Two allocations never freed: PCPU_LEAKS=1 reports them at exit. */
		return leak_site_small() && leak_site_large() ? 0 : 1;
	}
	return 2;
}

START_TEST(test_env_at_exit)
{
	const char *env[] = {"PCPU_LEAKS=1", NULL};
	char *argv[] = {spawn_self(), "--child", "leak", NULL};
	char *out = malloc(OUT_MAX);
	int code;

	ck_assert_ptr_nonnull(out);
	code = spawn_code(spawn_capture(argv, env, out, OUT_MAX));
	ck_assert_int_eq(code, 0);
	ck_assert_msg(strstr(out, "2 live allocations, 1100 bytes per CPU"), "output:\n%s", out);
	ck_assert_ptr_nonnull(strstr(out, "from leak_site_large+0x"));
	ck_assert_ptr_nonnull(strstr(out, "from leak_site_small+0x"));

	code = spawn_code(spawn_capture(argv, NULL, out, OUT_MAX));
	ck_assert_int_eq(code, 0);
	ck_assert_ptr_null(strstr(out, "live allocation"));
	free(out);
}
END_TEST

static Suite *leaks_suite(void)
{
	Suite *s = suite_create("leaks");
	TCase *tc = tcase_create("api");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_grouped_largest_first);
	tcase_add_test(tc, test_many_one_site);
	tcase_add_test(tc, test_before_enable);
	tcase_add_test(tc, test_env_at_exit);
	suite_add_tcase(s, tc);
	return s;
}

int main(int argc, char **argv)
{
	SRunner *sr;
	int failed;

	if (argc == 3 && !strcmp(argv[1], "--child"))
		return child_main(argv[2]);
	sr = srunner_create(leaks_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
