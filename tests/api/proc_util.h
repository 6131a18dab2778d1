/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * proc_util.h - what the tests read of their own process in /proc. No libpcpu here:
 * test_dlclose loads the library with dlopen() and must not link it.
 */
#ifndef PCPU_PROC_UTIL_H
#define PCPU_PROC_UTIL_H

#include <check.h>
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

/*
 * thread_scan - the threads of this process whose name is @name (with @prefix, whose name
 * starts with it): how many, and in *@tid (when not NULL) the first one's tid, or 0.
 */
static inline int thread_scan(const char *name, bool prefix, pid_t *tid)
{
	DIR *d = opendir("/proc/self/task");
	size_t len = strlen(name);
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	if (tid)
		*tid = 0;
	while ((e = readdir(d))) {
		char path[300], comm[64] = "";
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f) && !strncmp(comm, name, len) &&
		    (prefix || comm[len] == '\n')) {
			if (tid && !n)
				*tid = (pid_t)atoi(e->d_name);
			n++;
		}
		fclose(f);
	}
	closedir(d);
	return n;
}

/* count_threads - how many threads of this process have a name starting with @name. */
static inline int count_threads(const char *name)
{
	return thread_scan(name, true, NULL);
}

/* find_thread - the tid of the thread named @name in this process, or 0. */
static inline pid_t find_thread(const char *name)
{
	pid_t tid;

	thread_scan(name, false, &tid);
	return tid;
}

#endif /* PCPU_PROC_UTIL_H */
