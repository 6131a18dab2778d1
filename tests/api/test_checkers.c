/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * Memory checkers see per-CPU copies as heap blocks (lib/checker.h), both ways:
 *   - a read of a freed allocation's copy, and a read past the end of a copy, are reported;
 *   - a correct program (allocations, frees, reuse of freed space, NOWAIT, counters, trim,
 *     stats and leak reports) runs without a report.
 * Each scenario runs as a child: under AddressSanitizer when this build has it (the child
 * is this program, instrumented like the library), and under a fresh valgrind when the
 * library was built with -Dvalgrind=true and valgrind is installed. Exit 77 (skipped) when
 * neither applies, saying why.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pcpu.h>

#include "pcpu_config.h"
#include "spawn.h"

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_ASAN 1
#endif
#endif
#ifndef HAVE_ASAN
#define HAVE_ASAN 0
#endif

#define OUT_MAX (1 << 20)

static int failures;

#define CHECK(cond, ...)                                                                      \
	do {                                                                                  \
		if (!(cond)) {                                                                \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                  \
			fprintf(stderr, __VA_ARGS__);                                         \
			fputc('\n', stderr);                                                  \
			failures++;                                                           \
		}                                                                             \
	} while (0)

/* ---------------------------------------------------------------------------------------- */
/* Child scenarios                                                                           */
/* ---------------------------------------------------------------------------------------- */

static int read_byte(const void *p)
{
	return *(const volatile unsigned char *)p;
}

/* A use after free: the copy of a freed allocation is read. */
static int child_uaf(void)
{
	unsigned last = pcpu_nr_cpus() - 1;
	uint64_t *p = pcpu_alloc(64, 0, 0);

	if (!p)
		return 1;
	*pcpu_ptr(p, last) = 42;
	pcpu_free(p);
	printf("read %d\n", read_byte(pcpu_ptr(p, last)));
	return 0;
}

/* An overflow: the byte just past the end of a copy, free space, is read. */
static int child_overflow(void)
{
	unsigned char *p = pcpu_alloc(40, 64, 0);

	if (!p)
		return 1;
	memset(pcpu_ptr(p, 0), 1, 40);
	printf("read %d\n", read_byte(pcpu_ptr(p, 0) + 40));
	pcpu_free(p);
	return 0;
}

/* Everything a correct program does, touching only live copies. */
static int child_clean(void)
{
	void *v[256] = {0};
	unsigned cpu, r = 1;
	struct pcpu_counter cnt;
	FILE *null = fopen("/dev/null", "w");
	int bad = 0;

	pcpu_leaks_enable();
	for (int round = 0; round < 4000; round++) {
		unsigned i = (r = r * 1103515245u + 12345u) >> 16 & 255;
		size_t size = 1 + (r >> 4) % (round % 97 == 0 ? 40000 : 300);

		if (v[i]) {
			pcpu_free(v[i]);
			v[i] = NULL;
			continue;
		}
		v[i] = pcpu_alloc(size, 0, (r & 8) ? PCPU_NOWAIT : 0);
		if (!v[i])
			continue;
		/* Copies of reused space must read zero, then are written whole. */
		pcpu_for_each_cpu(cpu) {
			unsigned char *c = pcpu_ptr((unsigned char *)v[i], cpu);

			for (size_t b = 0; b < size; b++)
				bad |= c[b];
			memset(c, 0xa5, size);
		}
		if (round % 1000 == 999)
			pcpu_trim();
	}
	if (pcpu_counter_init(&cnt, 0) == 0) {
		for (int i = 0; i < 1000; i++)
			pcpu_counter_add(&cnt, 3);
		bad |= pcpu_counter_sum(&cnt) != 3000;
		pcpu_counter_destroy(&cnt);
	}
	pcpu_stats_print(null);
	pcpu_stats_print_json(null);
	pcpu_leaks_print(null);
	for (int i = 0; i < 256; i++)
		pcpu_free(v[i]);
	pcpu_trim();
	fclose(null);
	if (bad || pcpu_verify())
		return 1;
	printf("clean done\n");
	return 0;
}

static int child_main(const char *role)
{
	if (!strcmp(role, "uaf"))
		return child_uaf();
	if (!strcmp(role, "overflow"))
		return child_overflow();
	if (!strcmp(role, "clean"))
		return child_clean();
	return 2;
}

/* ---------------------------------------------------------------------------------------- */
/* The parent                                                                                */
/* ---------------------------------------------------------------------------------------- */

static char out[OUT_MAX];

static void expect_report(const char *checker, char *const argv[], const char *const env[],
			  const char *role, const char *needle)
{
	int code = spawn_code(spawn_capture(argv, env, out, sizeof(out)));

	CHECK(code != 0 && strstr(out, needle), "%s, %s: exit %d, expected a report with \"%s\":\n%s",
	      checker, role, code, needle, out);
	if (strstr(out, needle))
		printf("%s, %s: reported (exit %d)\n", checker, role, code);
}

static void expect_clean(const char *checker, char *const argv[], const char *const env[],
			 const char *bad)
{
	int code = spawn_code(spawn_capture(argv, env, out, sizeof(out)));

	CHECK(code == 0 && !strstr(out, bad) && strstr(out, "clean done"),
	      "%s, clean: exit %d, expected no report:\n%s", checker, code, out);
	if (code == 0)
		printf("%s, clean: no report\n", checker);
}

static int run_asan(void)
{
	/* The child inherits the suite's ASAN_OPTIONS (abort_on_error, leak detection). */
	char *uaf[] = {spawn_self(), "--child", "uaf", NULL};
	char *ovf[] = {spawn_self(), "--child", "overflow", NULL};
	char *clean[] = {spawn_self(), "--child", "clean", NULL};

	expect_report("asan", uaf, NULL, "uaf", "use-after-poison");
	expect_report("asan", ovf, NULL, "overflow", "use-after-poison");
	expect_clean("asan", clean, NULL, "ERROR: AddressSanitizer");
	return 1;
}

static int run_valgrind(const char *self)
{
	char *vg[] = {"valgrind", "-q", "--error-exitcode=42", "--leak-check=full",
		      "--errors-for-leak-kinds=definite", (char *)self, "--child", NULL, NULL};
	const char *roles[] = {"uaf", "overflow"};

	for (int i = 0; i < 2; i++) {
		vg[7] = (char *)roles[i];
		expect_report("valgrind", vg, NULL, roles[i], "Invalid read of size 1");
	}
	vg[7] = "clean";
	expect_clean("valgrind", vg, NULL, "Invalid ");
	return 1;
}

int main(int argc, char **argv)
{
	char self[4096];
	ssize_t n;
	int ran = 0;

	if (argc == 3 && !strcmp(argv[1], "--child"))
		return child_main(argv[2]);
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return 99;
	self[n] = '\0';

	if (HAVE_ASAN)
		ran += run_asan();
	if (PCPU_VALGRIND && !HAVE_ASAN) {
		if (spawn_in_path("valgrind"))
			ran += run_valgrind(self);
		else
			printf("valgrind hooks compiled in, but valgrind is not installed\n");
	}
	if (!ran) {
		printf("SKIP: no memory checker here: build with -Db_sanitize=address, or with "
		       "-Dvalgrind=true and valgrind installed\n");
		return 77;
	}
	return failures ? 1 : 0;
}
