/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * The leak report: every live allocation with its size and caller, grouped by call site,
 * the largest site first, callers resolved to symbols (this program is linked with
 * -rdynamic); freed allocations gone; allocations made before recording show an unknown
 * caller; PCPU_LEAKS=1 prints at exit; each site named by its call instruction, object file
 * and (with libdw) source line.
 */
#include <check.h>
#include <dlfcn.h>
#include <link.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pcpu.h>

#include "pcpu_config.h"
#include "spawn.h"
#include "test_util.h"
#include "../check_run.h"

#ifndef PCPU_TEST_DEBUG_INFO
#define PCPU_TEST_DEBUG_INFO 0
#endif

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
	return print_string(pcpu_leaks_print);
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

/* The call site whose line the report must name (exported, so dladdr() can name it). */
__attribute__((noinline)) void *leak_site_line(int *line)
{
	void *p = pcpu_alloc(2000, 0, 0); *line = __LINE__;

	__asm__ volatile("" ::: "memory");
	return p;
}

/*
 * The report names the call instruction, not the return address: function+offset lands on
 * the call of pcpu_alloc() inside the caller, the object is this program with the offset
 * addr2line takes, and with libdw and debug information the file:line is the call's line.
 */
START_TEST(test_call_site)
{
	const unsigned char *fn = (const unsigned char *)(uintptr_t)leak_site_line, *call;
	char *r, *p, exe[4096], want[4200];
	struct link_map *lm = NULL;
	const ElfW(Sym) *sym = NULL;
	unsigned long off;
	Dl_info di;
	ssize_t n;
	void *h;
	int line = 0;

	pcpu_leaks_enable();
	h = leak_site_line(&line);
	ck_assert_ptr_nonnull(h);
	r = report();
	p = strstr(r, "2000 bytes per CPU in 1 allocation from leak_site_line+0x");
	ck_assert_msg(p, "report:\n%s", r);
	off = strtoul(strchr(p, '+') + 1, NULL, 16);

	/* Inside the caller, on a call whose target is pcpu_alloc(). */
	ck_assert_int_ne(dladdr1(fn, &di, (void **)&sym, RTLD_DL_SYMENT), 0);
	ck_assert_ptr_nonnull(sym);
	ck_assert_uint_gt(off, 0);
	ck_assert_uint_lt(off, sym->st_size);
	call = fn + off;
#if defined(__x86_64__)
	{
		int32_t rel;

		ck_assert_msg(call[0] == 0xe8, "no call rel32 at leak_site_line+0x%lx", off);
		memcpy(&rel, call + 1, sizeof(rel));
		ck_assert_ptr_eq(call + 5 + rel, (const void *)(uintptr_t)pcpu_alloc);
	}
#elif defined(__aarch64__)
	{
		uint32_t insn;
		int32_t imm;

		memcpy(&insn, call, sizeof(insn));
		ck_assert_msg((insn & 0xfc000000u) == 0x94000000u, "no BL at +0x%lx", off);
		imm = (int32_t)(insn << 6) >> 6;
		ck_assert_ptr_eq(call + (intptr_t)imm * 4, (const void *)(uintptr_t)pcpu_alloc);
	}
#endif

	/* The object and the offset in it that addr2line takes. */
	ck_assert_int_ne(dladdr1(call, &di, (void **)&lm, RTLD_DL_LINKMAP), 0);
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	ck_assert_int_gt(n, 0);
	exe[n] = '\0';
	snprintf(want, sizeof(want), " (%s+0x%zx)\n", exe, (size_t)((uintptr_t)call - lm->l_addr));
	ck_assert_msg(strstr(p, want) && strstr(p, want) < strchr(p, '\n') + 1,
		      "no \"%s\" in:\n%s", want, r);

	/* The source line of the call, where libdw and line tables are there. */
	snprintf(want, sizeof(want), "test_leaks.c:%d (", line);
	if (PCPU_HAVE_LIBDW && PCPU_TEST_DEBUG_INFO)
		ck_assert_msg(strstr(p, want) && strstr(p, want) < strchr(p, '\n'),
			      "no \"%s\" on the site's line:\n%s", want, r);
	else if (strstr(p, " at ") && strstr(p, " at ") < strchr(p, '\n'))
		ck_assert_msg(strstr(p, want) && strstr(p, want) < strchr(p, '\n'),
			      "a wrong line:\n%s", r);
	free(r);
	pcpu_free(h);
}
END_TEST

/*
 * A call site in a shared object: named by the object's path while it is loaded; once it
 * is unloaded the report shows the return address alone and reads nothing of it.
 */
START_TEST(test_unloaded_site)
{
	const char *path = getenv("PCPU_TEST_DSO");
	void *(*fn)(size_t);
	void *dso, *h;
	char *r, *p;

	ck_assert_ptr_nonnull(path);
	pcpu_leaks_enable();
	dso = dlopen(path, RTLD_NOW);
	ck_assert_msg(dso, "dlopen: %s", dlerror());
	fn = (void *(*)(size_t))(uintptr_t)dlsym(dso, "dso_leak_alloc");
	ck_assert_ptr_nonnull(fn);
	h = fn(48);
	ck_assert_ptr_nonnull(h);
	r = report();
	p = strstr(r, "48 bytes per CPU in 1 allocation from dso_leak_alloc+0x");
	ck_assert_msg(p, "report:\n%s", r);
	ck_assert_ptr_nonnull(strstr(p, "libdso_leak.so+0x"));
	free(r);
	ck_assert_int_eq(dlclose(dso), 0);
	r = report();
	ck_assert_msg(strstr(r, "48 bytes per CPU in 1 allocation from 0x"), "report:\n%s", r);
	ck_assert_ptr_nonnull(strstr(r, "(return address; in no loaded object)"));
	free(r);
	pcpu_free(h);
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
	tcase_add_test(tc, test_call_site);
	tcase_add_test(tc, test_unloaded_site);
	tcase_add_test(tc, test_env_at_exit);
	suite_add_tcase(s, tc);
	return s;
}

int main(int argc, char **argv)
{

	if (argc == 3 && !strcmp(argv[1], "--child"))
		return child_main(argv[2]);
	return pcpu_check_run(leaks_suite(), CK_FORK_GETENV);
}
