/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * The environment is ignored where it is not safe: in a setuid or setgid program (AT_SECURE)
 * libpcpu must not read PCPU_CONF, PCPU_STATS, PCPU_LEAKS, PCPU__ZERO_SOURCE or the fault
 * injection variables, as glibc ignores MALLOC_* there.
 *
 * secure_env_helper runs with all of them set: first as a plain program (the control: each
 * one is honoured), then copied into a fresh directory, owned by nobody:nogroup and made
 * setuid+setgid, then setgid only. Run by root, the kernel sets AT_SECURE for those copies
 * because the effective ids differ from the real ones (root running a setuid-root program
 * would not get it). The helper reports getauxval(AT_SECURE) itself, so the test knows the
 * condition held. Without root the control runs and the rest is skipped (exit 77).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <pcpu.h>

#include "pcpu_config.h"
#include "spawn.h"

#define OUT_MAX (1 << 20)
#define SKIP 77

static int failures;

#define CHECK(cond, ...)                                                                      \
	do {                                                                                  \
		if (!(cond)) {                                                                \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);       \
			fprintf(stderr, __VA_ARGS__);                                         \
			fputc('\n', stderr);                                                  \
			failures++;                                                           \
		}                                                                             \
	} while (0)

struct result {
	int code;
	unsigned long at_secure;
	unsigned nr_cpus;
	int zero_forced;
	bool stats, leaks, faults; /* what was printed at exit */
	char *out;
};

static char conf[64];

static struct result run_helper(const char *path)
{
	const char *env[] = {conf, "PCPU_STATS=1", "PCPU_LEAKS=1", "PCPU__ZERO_SOURCE=anon",
			     "PCPU_FAULT_LOG=1", NULL};
	char *argv[] = {(char *)path, NULL};
	struct result r = {.zero_forced = -2};
	const char *line;

	r.out = malloc(OUT_MAX);
	if (!r.out)
		abort();
	r.code = spawn_code(spawn_capture(argv, env, r.out, OUT_MAX));
	line = strstr(r.out, "at_secure=");
	if (!line || sscanf(line, "at_secure=%lu nr_cpus=%u zero_source_forced=%d", &r.at_secure,
			    &r.nr_cpus, &r.zero_forced) != 3)
		r.code = -100;
	r.stats = strstr(r.out, "Percpu Memory Statistics") != NULL;
	r.leaks = strstr(r.out, "live allocation") != NULL;
	r.faults = strstr(r.out, "libpcpu: fault point") != NULL;
	return r;
}

/* A directory on a file system that honours set-user-ID bits; NULL when none. */
static char *suid_dir(void)
{
	static char dir[PATH_MAX];
	char self[PATH_MAX];
	const char *tmp = getenv("TMPDIR");
	const char *cands[3] = {tmp && *tmp ? tmp : "/tmp", self, NULL};
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n > 0) {
		self[n] = '\0';
		*strrchr(self, '/') = '\0'; /* the build directory of this test */
	} else {
		cands[1] = NULL;
	}
	for (int i = 0; cands[i]; i++) {
		struct statvfs v;

		if (statvfs(cands[i], &v) || (v.f_flag & ST_NOSUID))
			continue;
		snprintf(dir, sizeof(dir), "%s/pcpu-secure-XXXXXX", cands[i]);
		if (mkdtemp(dir))
			return dir;
	}
	return NULL;
}

static int copy_file(const char *from, const char *to)
{
	int in = open(from, O_RDONLY | O_CLOEXEC), out;
	char buf[65536];
	ssize_t n;

	if (in < 0)
		return -1;
	out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0700);
	if (out < 0) {
		close(in);
		return -1;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n) {
			n = -1;
			break;
		}
	close(in);
	return close(out) || n < 0 ? -1 : 0;
}

/* The privileged runs must ignore every variable, and must really have had AT_SECURE. */
static void check_ignored(const char *what, const struct result *r, unsigned real_cpus)
{
	CHECK(r->code == 0, "%s: exit %d, output:\n%s", what, r->code, r->out);
	CHECK(r->at_secure == 1, "%s: AT_SECURE is %lu", what, r->at_secure);
	CHECK(r->nr_cpus == real_cpus, "%s: %u CPUs, PCPU_CONF honoured (real: %u)", what,
	      r->nr_cpus, real_cpus);
	CHECK(r->zero_forced == 0, "%s: PCPU__ZERO_SOURCE honoured (%d)", what, r->zero_forced);
	CHECK(!r->stats, "%s: PCPU_STATS printed statistics:\n%s", what, r->out);
	CHECK(!r->leaks, "%s: PCPU_LEAKS printed a leak report:\n%s", what, r->out);
	CHECK(!r->faults, "%s: PCPU_FAULT_LOG honoured:\n%s", what, r->out);
}

int main(void)
{
	const char *helper = getenv("PCPU_TEST_SECURE_HELPER");
	unsigned real = pcpu_nr_cpus(), fake = real == 64 ? 32 : 64;
	char path[PATH_MAX + 32];
	struct passwd *pw;
	struct group *gr;
	struct result r;
	char *dir;

	if (!helper) {
		fprintf(stderr, "PCPU_TEST_SECURE_HELPER is not set\n");
		return 1;
	}
	snprintf(conf, sizeof(conf), "PCPU_CONF=topology=%ux4", fake);

	/* Control: a plain program honours every variable. */
	r = run_helper(helper);
	CHECK(r.code == 0, "control: exit %d, output:\n%s", r.code, r.out);
	CHECK(r.at_secure == 0, "control: AT_SECURE is %lu", r.at_secure);
	CHECK(r.nr_cpus == fake, "control: %u CPUs, PCPU_CONF ignored", r.nr_cpus);
	CHECK(r.zero_forced == 1, "control: PCPU__ZERO_SOURCE ignored");
	CHECK(r.stats, "control: PCPU_STATS=1 printed nothing:\n%s", r.out);
	CHECK(r.leaks, "control: PCPU_LEAKS=1 printed nothing:\n%s", r.out);
	CHECK(r.faults == PCPU_FAULT_INJECT, "control: PCPU_FAULT_LOG=1 %s", r.faults ? "logged" : "logged nothing");
	free(r.out);
	if (failures)
		return 1;

	if (geteuid() != 0) {
		printf("SKIP: the setuid part needs root (to make a program setuid to another "
		       "user); the control passed\n");
		return SKIP;
	}
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1) {
		printf("SKIP: no_new_privs is set, so exec ignores set-ID bits; the control "
		       "passed\n");
		return SKIP;
	}
	pw = getpwnam("nobody");
	gr = getgrnam("nogroup");
	if (!gr)
		gr = getgrnam("nobody");
	if (!pw || !gr || pw->pw_uid == 0 || gr->gr_gid == 0) {
		printf("SKIP: no unprivileged user nobody and group nogroup to own the helper\n");
		return SKIP;
	}
	dir = suid_dir();
	if (!dir) {
		printf("SKIP: no writable directory on a file system without nosuid\n");
		return SKIP;
	}
	snprintf(path, sizeof(path), "%s/secure_env_helper", dir);
	CHECK(copy_file(helper, path) == 0, "copy %s to %s: %s", helper, path, strerror(errno));
	/* chown() clears the set-ID bits, so they are set after it. */
	if (!failures && chown(path, pw->pw_uid, gr->gr_gid)) {
		/* A user namespace without nobody mapped, for one. */
		printf("SKIP: chown to nobody:nogroup: %s; the control passed\n", strerror(errno));
		unlink(path);
		rmdir(dir);
		return SKIP;
	}
	CHECK(chmod(path, 06755) == 0, "chmod: %s", strerror(errno));
	if (!failures) {
		r = run_helper(path);
		check_ignored("setuid+setgid", &r, real);
		free(r.out);
		CHECK(chmod(path, 02755) == 0, "chmod: %s", strerror(errno));
		r = run_helper(path);
		check_ignored("setgid", &r, real);
		free(r.out);
	}
	unlink(path);
	rmdir(dir);
	if (!failures)
		printf("PASS: control honoured the environment; setuid and setgid copies "
		       "(AT_SECURE=1) ignored it\n");
	return failures ? 1 : 0;
}
