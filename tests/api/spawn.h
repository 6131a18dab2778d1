/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * spawn.h - run a program (usually this test program again, as a child with a role given on
 * the command line) with extra environment variables, and capture its stdout and stderr
 * together. For what can only be seen from outside: output at exit, aborts, reports of
 * memory checkers, other environment settings (PCPU_CONF is read once per process).
 */
#ifndef PCPU_TEST_SPAWN_H
#define PCPU_TEST_SPAWN_H

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/*
 * spawn_capture - run @argv (argv[0] a path or a name in PATH; see spawn_self()) with the
 * "NAME=value" strings of @env (NULL-terminated, may be NULL) added to the environment (a
 * bare "NAME" removes NAME); its output goes to @out (NUL-terminated, truncated to
 * @len - 1). Return the wait status, or -1 if it could not be started.
 */
static inline int spawn_capture(char *const argv[], const char *const env[], char *out,
				size_t len)
{
	int fd[2], status = -1;
	size_t got = 0;
	pid_t pid;

	if (pipe(fd))
		return -1;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		dup2(fd[1], 1);
		dup2(fd[1], 2);
		close(fd[0]);
		close(fd[1]);
		for (; env && *env; env++) {
			if (strchr(*env, '='))
				putenv((char *)*env);
			else
				unsetenv(*env);
		}
		execvp(argv[0], argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(fd[1]);
	for (;;) {
		char buf[4096];
		ssize_t n = read(fd[0], buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (got + 1 < len) {
			size_t take = (size_t)n < len - 1 - got ? (size_t)n : len - 1 - got;

			memcpy(out + got, buf, take);
			got += take;
		}
	}
	close(fd[0]);
	if (len)
		out[got] = '\0';
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return status;
}

/*
 * spawn_self - the path of this program, to run it again. Not "/proc/self/exe" itself: under
 * valgrind that names valgrind, while readlink() of it gives the program.
 */
static inline char *spawn_self(void)
{
	static char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n <= 0)
		return (char *)"/proc/self/exe";
	self[n] = '\0';
	return self;
}

/* The exit code, or 128 + signal, of a wait status. */
static inline int spawn_code(int status)
{
	if (status == -1)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/*
 * spawn_fault - run this program again as "SELF @role" for a fault-injection sweep: with
 * PCPU_FAULT=@n (the nth fallible call fails), or for @n == 0 PCPU_FAULT_LOG=1 (list the
 * fallible calls). PCPU_CONF is @conf, or when NULL the parent's with balance=off added:
 * no balancer thread, so the same fallible calls in the same order every run. Output into
 * @out as spawn_capture(); return spawn_code() of the child's status.
 */
static inline int spawn_fault(const char *role, long n, const char *conf, char *out,
			      size_t len)
{
	const char *parent = getenv("PCPU_CONF");
	char cf[512], fault[64];
	const char *env[] = {cf, fault, n ? "PCPU_FAULT_LOG" : "PCPU_FAULT", NULL};
	char *argv[] = {spawn_self(), (char *)role, NULL};

	if (conf)
		snprintf(cf, sizeof(cf), "PCPU_CONF=%s", conf);
	else
		snprintf(cf, sizeof(cf), "PCPU_CONF=%s%sbalance=off", parent ? parent : "",
			 parent ? "," : "");
	if (n)
		snprintf(fault, sizeof(fault), "PCPU_FAULT=%ld", n);
	else
		snprintf(fault, sizeof(fault), "PCPU_FAULT_LOG=1");
	return spawn_code(spawn_capture(argv, env, out, len));
}

/* Is @prog an executable somewhere in PATH? */
static inline int spawn_in_path(const char *prog)
{
	const char *path = getenv("PATH");
	char buf[4096];

	if (!path)
		path = "/usr/bin:/bin";
	while (*path) {
		const char *e = strchr(path, ':');
		size_t n = e ? (size_t)(e - path) : strlen(path);

		snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, path, prog);
		if (access(buf, X_OK) == 0)
			return 1;
		path += n + (e ? 1 : 0);
	}
	return 0;
}

#endif /* PCPU_TEST_SPAWN_H */
