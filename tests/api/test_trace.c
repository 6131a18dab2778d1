/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * USDT probes (lib/trace.h) seen from outside, as a user would: readelf -n must list the
 * five probes in libpcpu.so, and bpftrace attached to a running child (-p PID) must see
 * every event with the kernel's fields and the right values:
 *   percpu_alloc_percpu(call_site, reserved, is_atomic, size, align, base_addr, off, ptr,
 *                       bytes_alloc, gfp_flags)
 *   percpu_free_percpu(base_addr, off, ptr)
 *   percpu_alloc_percpu_fail(reserved, is_atomic, size, align)
 *   percpu_create_chunk(base_addr), percpu_destroy_chunk(base_addr)
 * Linked with the shared library. Exit 77 (skipped), saying why, without bpftrace, without
 * privilege, or where the kernel cannot attach uprobes (e.g. tracefs not mounted).
 */
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pcpu.h>

#include "pcpu_config.h"
#include "spawn.h"

#define MARKER_SIZE 4092 /* the child's last allocation: bpftrace exits on it */

static int failures;
static int full; /* the tracer reads all ten fields of percpu_alloc_percpu */

#define CHECK(cond, ...)                                                                      \
	do {                                                                                  \
		if (!(cond)) {                                                                \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                  \
			fprintf(stderr, __VA_ARGS__);                                         \
			fputc('\n', stderr);                                                  \
			failures++;                                                           \
		}                                                                             \
	} while (0)

static const char *const probes[] = {"percpu_alloc_percpu", "percpu_free_percpu",
				     "percpu_alloc_percpu_fail", "percpu_create_chunk",
				     "percpu_destroy_chunk"};

/* What the child did, sent to the parent through a pipe once the work is done. */
struct child_report {
	uintptr_t h24, h100, hbig;
	unsigned nr_cpus;
	size_t unit_size;
};

static void child(int go, int rep)
{
	struct child_report r = {0};
	char c;
	void *fail;

	if (read(go, &c, 1) != 1)
		_exit(3);
	r.nr_cpus = pcpu_nr_cpus();
	{
		struct pcpu_stats st = {.size = sizeof(st)};

		pcpu_stats_get(&st);
		r.unit_size = st.unit_size;
	}
	r.h24 = (uintptr_t)pcpu_alloc(24, 8, 0);
	r.h100 = (uintptr_t)pcpu_alloc(99, 0, 0);                    /* size 100, align 8 */
	fail = pcpu_alloc(r.unit_size, 0, PCPU_NOWAIT);             /* no populated unit free */
	/* A new chunk: page-aligned objects come from plain chunks, and no plain chunk but the
	 * first (too small) exists yet; small ones go to cache-coloured chunks (lib/chunk.h). */
	r.hbig = (uintptr_t)pcpu_alloc(r.unit_size / 2 + 4096, 4096, 0);
	pcpu_free((void *)r.h24);
	pcpu_free((void *)r.h100);
	pcpu_free((void *)r.hbig);
	pcpu_trim(); /* destroys the now free chunk */
	if (write(rep, &r, sizeof(r)) != (ssize_t)sizeof(r))
		_exit(4);
	pcpu_alloc(MARKER_SIZE, 4, 0);
	_exit(fail || !r.h24 || !r.h100 || !r.hbig ? 5 : 0);
}

/* The probes are in the ELF notes of @lib. */
static void check_notes(const char *lib)
{
	char *argv[] = {"readelf", "-n", (char *)lib, NULL};
	static char out[1 << 20];
	int code;

	if (!spawn_in_path("readelf")) {
		printf("readelf not installed: notes not checked\n");
		return;
	}
	code = spawn_code(spawn_capture(argv, NULL, out, sizeof(out)));
	CHECK(code == 0, "readelf -n %s: exit %d", lib, code);
	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		char want[128];

		snprintf(want, sizeof(want), "Name: %s\n", probes[i]);
		CHECK(strstr(out, want) && strstr(out, "Provider: libpcpu"),
		      "readelf -n %s: no USDT note for libpcpu:%s", lib, probes[i]);
	}
	/* The kernel's field widths: see lib/trace.h. */
	{
		static const char *const want[] = {"8@", "1@", "1@", "8@", "8@", "8@", "-4@", "8@",
						   "8@", "8@"};
		const char *p = strstr(out, "Name: percpu_alloc_percpu\n");
		int i = 0;

		p = p ? strstr(p, "Arguments:") : NULL;
		CHECK(p, "no arguments for percpu_alloc_percpu");
		for (p = p ? p + strlen("Arguments:") : NULL; p && *p == ' ' && i < 10; i++) {
			p++;
			CHECK(!strncmp(p, want[i], strlen(want[i])),
			      "percpu_alloc_percpu argument %d: %.12s, expected %s...", i, p, want[i]);
			p += strcspn(p, " \n");
		}
		CHECK(i == 10 && p && *p == '\n', "percpu_alloc_percpu: %d arguments, expected 10", i);
	}
	printf("readelf -n: the five libpcpu probes are in %s, with the kernel's fields\n", lib);
}

/*
 * @full: all ten fields of percpu_alloc_percpu; else arg0-arg5 (call_site .. base_addr),
 * all that bpftrace before 0.24 reads on x86-64, and the rest printed as 0.
 */
static char *script(const char *lib, int full)
{
	char *s;

	if (asprintf(&s,
		 "usdt:%1$s:libpcpu:percpu_alloc_percpu { printf(\"A %%lx %%d %%d %%lu %%lu %%lx "
		 "%%ld %%lx %%lu %%lu\\n\", arg0, arg1, arg2, arg3, arg4, arg5, %3$s); "
		 "if (arg3 == %2$d) { exit(); } }\n"
		 "usdt:%1$s:libpcpu:percpu_free_percpu { printf(\"F %%lx %%ld %%lx\\n\", arg0, "
		 "arg1, arg2); }\n"
		 "usdt:%1$s:libpcpu:percpu_alloc_percpu_fail { printf(\"X %%d %%d %%lu %%lu\\n\", "
		 "arg0, arg1, arg2, arg3); }\n"
		 "usdt:%1$s:libpcpu:percpu_create_chunk { printf(\"C %%lx\\n\", arg0); }\n"
		 "usdt:%1$s:libpcpu:percpu_destroy_chunk { printf(\"D %%lx\\n\", arg0); }\n"
		 "interval:s:30 { exit(); }\n"
		 "BEGIN { printf(\"READY\\n\"); }\n", /* BEGIN runs once all are attached */
		 lib, MARKER_SIZE, full ? "arg6, arg7, arg8, arg9" : "0, 0, 0, 0") < 0)
		_exit(99);
	return s;
}

struct event {
	char kind;
	unsigned long v[10];
};

static int parse(const char *line, struct event *e)
{
	memset(e, 0, sizeof(*e));
	e->kind = line[0];
	switch (line[0]) {
	case 'A':
		return sscanf(line + 1, "%lx %lu %lu %lu %lu %lx %ld %lx %lu %lu", &e->v[0], &e->v[1],
			      &e->v[2], &e->v[3], &e->v[4], &e->v[5], (long *)&e->v[6], &e->v[7],
			      &e->v[8], &e->v[9]) == 10;
	case 'F':
		return sscanf(line + 1, "%lx %ld %lx", &e->v[0], (long *)&e->v[1], &e->v[2]) == 3;
	case 'X':
		return sscanf(line + 1, "%lu %lu %lu %lu", &e->v[0], &e->v[1], &e->v[2], &e->v[3]) == 4;
	case 'C':
	case 'D':
		return sscanf(line + 1, "%lx", &e->v[0]) == 1;
	}
	return 0;
}

/* The allocation event of handle @h, of @size bytes (unique in the child's work). */
static const struct event *find_alloc(const struct event *ev, int n, uintptr_t h,
				      unsigned long size)
{
	for (int i = 0; i < n; i++)
		if (ev[i].kind == 'A' && (full ? ev[i].v[7] == h : ev[i].v[3] == size))
			return &ev[i];
	return NULL;
}

static int count_kind(const struct event *ev, int n, char kind, unsigned long v0)
{
	int c = 0;

	for (int i = 0; i < n; i++)
		c += ev[i].kind == kind && ev[i].v[0] == v0;
	return c;
}

/* One allocation event: the kernel's fields with this allocation's values. */
static void check_alloc(const struct event *ev, int n, uintptr_t h, unsigned long size,
			unsigned long align, const struct child_report *r)
{
	const struct event *a = find_alloc(ev, n, h, size);

	CHECK(a, "no percpu_alloc_percpu event with ptr %#lx, size %lu", (unsigned long)h, size);
	if (!a)
		return;
	CHECK(a->v[0] != 0, "call_site is 0");
	CHECK(a->v[1] == 0 && a->v[2] == 0, "reserved %lu is_atomic %lu", a->v[1], a->v[2]);
	CHECK(a->v[3] == size, "size %lu, expected %lu", a->v[3], size);
	CHECK(a->v[4] == align, "align %lu, expected %lu", a->v[4], align);
	/* Its free names the same chunk. */
	for (int i = 0; i < n; i++)
		if (ev[i].kind == 'F' && ev[i].v[2] == h)
			CHECK(ev[i].v[0] == a->v[5], "free of %#lx: base %#lx, alloc said %#lx",
			      (unsigned long)h, ev[i].v[0], a->v[5]);
	CHECK(count_kind(ev, n, 'F', a->v[5]) >= 1, "no percpu_free_percpu with base %#lx", a->v[5]);
	if (!full)
		return;
	/*
	 * ptr = base_addr + off + the bias that moves every handle out of the canonical range,
	 * and for a cache-coloured chunk's handle one bit more (lib/chunk.h): one or two bits,
	 * none below bit 54.
	 */
	{
		unsigned long bias = a->v[7] - a->v[5] - a->v[6], high = bias & (bias - 1);

		CHECK(a->v[5] != 0 && (bias & -bias) >= 1UL << 54 && !(high & (high - 1)),
		      "ptr %#lx is not base_addr %#lx + off %ld + a bias", a->v[7], a->v[5],
		      (long)a->v[6]);
	}
	CHECK(a->v[8] == size * r->nr_cpus, "bytes_alloc %lu, expected %lu x %u CPUs", a->v[8],
	      size, r->nr_cpus);
	CHECK(a->v[9] == 0, "gfp_flags %lu", a->v[9]);
	for (int i = 0; i < n; i++)
		if (ev[i].kind == 'F' && ev[i].v[2] == h)
			CHECK(ev[i].v[1] == a->v[6], "free of %#lx: off %ld, alloc said %ld",
			      (unsigned long)h, (long)ev[i].v[1], (long)a->v[6]);
}

/* bpftrace 0.24 and later read USDT arguments beyond arg5 (x86-64). */
static int bpftrace_reads_ten_args(void)
{
	char *argv[] = {"bpftrace", "--version", NULL};
	char out[256];
	int major = 0, minor = 0;
	const char *v;

	if (spawn_code(spawn_capture(argv, NULL, out, sizeof(out))) != 0)
		return 0;
	v = strstr(out, "v");
	if (!v || sscanf(v + 1, "%d.%d", &major, &minor) != 2)
		return 0;
#if defined(__x86_64__)
	return major > 0 || minor >= 24;
#else
	return 1;
#endif
}

static int skip(const char *why, const char *detail)
{
	printf("SKIP: %s%s%s\n", why, detail ? "\n" : "", detail ? detail : "");
	return 77;
}

int main(void)
{
	static char buf[1 << 20];
	static struct event ev[4096];
	struct child_report r;
	int go[2], rep[2], out[2], nev = 0, status;
	size_t got = 0;
	pid_t cpid, bpid;
	Dl_info di;
	char lib[4096];
	char pidstr[32];
	FILE *f;
	char line[512];
	int attached = 0;

	if (!PCPU_HAVE_SDT)
		return skip("built without USDT probes (-Dusdt=disabled or no <sys/sdt.h>)", NULL);
	if (!dladdr((void *)pcpu_alloc, &di) || !di.dli_fname || !strstr(di.dli_fname, ".so"))
		return skip("pcpu_alloc is not in a shared library", NULL);
	/* The file as mapped (no "..", no symlink): what the tracer matches in /proc/PID/maps. */
	if (!realpath(di.dli_fname, lib))
		return 99;
	check_notes(lib);
	if (!spawn_in_path("bpftrace"))
		return failures ? 1 : skip("bpftrace is not installed (apt-get install bpftrace)", NULL);
	if (geteuid() != 0)
		return failures ? 1 : skip("attaching uprobes needs root (or CAP_BPF+CAP_PERFMON)", NULL);

	full = bpftrace_reads_ten_args();
	if (!full)
		printf("this bpftrace reads arg0-arg5 only: off, ptr, bytes_alloc and gfp_flags of "
		       "percpu_alloc_percpu are checked in the ELF note, not traced\n");
	if (pipe(go) || pipe(rep) || pipe(out))
		return 99;
	fflush(NULL);
	cpid = fork();
	if (cpid == 0) {
		close(go[1]);
		close(rep[0]);
		close(out[0]); /* bpftrace's output must reach EOF when bpftrace exits */
		close(out[1]);
		child(go[0], rep[1]);
	}
	close(go[0]);
	close(rep[1]);
	snprintf(pidstr, sizeof(pidstr), "%d", (int)cpid);
	bpid = fork();
	if (bpid == 0) {
		dup2(out[1], 1);
		dup2(out[1], 2);
		close(out[0]);
		close(out[1]);
		execlp("bpftrace", "bpftrace", "-B", "line", "-p", pidstr, "-e", script(lib, full),
		       (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	alarm(120);
	f = fdopen(out[0], "r");
	/* Start the child's work once every probe is attached. */
	while (fgets(line, sizeof(line), f)) {
		size_t l = strlen(line);

		if (got + l < sizeof(buf)) {
			memcpy(buf + got, line, l + 1);
			got += l;
		}
		if (!attached && strcmp(line, "READY\n") == 0) {
			attached = 1;
			if (write(go[1], "g", 1) != 1)
				return 99;
			continue;
		}
		if (attached && nev < (int)(sizeof(ev) / sizeof(ev[0])) && parse(line, &ev[nev]))
			nev++;
	}
	fclose(f);
	waitpid(bpid, &status, 0);
	if (!attached) {
		kill(cpid, SIGKILL);
		waitpid(cpid, NULL, 0);
		if (strstr(buf, "tracing") || strstr(buf, "ermission") || strstr(buf, "uprobe") ||
		    strstr(buf, "perf_event_open") || strstr(buf, "BPF"))
			return failures ? 1 : skip("bpftrace could not attach here:", buf);
		fprintf(stderr, "FAIL: bpftrace did not attach:\n%s", buf);
		return 1;
	}
	close(go[1]);
	if (read(rep[0], &r, sizeof(r)) != (ssize_t)sizeof(r)) {
		fprintf(stderr, "FAIL: the child did not report; bpftrace said:\n%s", buf);
		return 1;
	}
	waitpid(cpid, &status, 0);
	CHECK(spawn_code(status) == 0, "child exit %d", spawn_code(status));
	printf("bpftrace saw %d events:\n%s", nev, buf);

	check_alloc(ev, nev, r.h24, 24, 8, &r);
	check_alloc(ev, nev, r.h100, 100, 8, &r); /* rounded to the 4-byte granule */
	check_alloc(ev, nev, r.hbig, r.unit_size / 2 + 4096, 4096, &r);
	{
		int fails = 0;

		for (int i = 0; i < nev; i++)
			fails += ev[i].kind == 'X' && ev[i].v[0] == 0 && ev[i].v[1] == 1 &&
				 ev[i].v[2] == r.unit_size && ev[i].v[3] == 8;
		CHECK(fails == 1, "%d percpu_alloc_percpu_fail(0, 1, %zu, 8) events", fails,
		      r.unit_size);
	}
	{
		const struct event *big = find_alloc(ev, nev, r.hbig, r.unit_size / 2 + 4096);

		if (big) {
			CHECK(count_kind(ev, nev, 'C', big->v[5]) == 1,
			      "no percpu_create_chunk for base %#lx", big->v[5]);
			CHECK(count_kind(ev, nev, 'D', big->v[5]) == 1,
			      "no percpu_destroy_chunk for base %#lx", big->v[5]);
		}
	}
	return failures ? 1 : 0;
}
