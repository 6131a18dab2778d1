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
 * SHADOW_MEMORY - built with ASan, TSan or MSan, whose shadow memory grows with what the
 * program touches: the process's memory figures then say little about the library's.
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SHADOW_MEMORY 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||                 \
	__has_feature(memory_sanitizer)
#define SHADOW_MEMORY 1
#endif
#endif
#ifndef SHADOW_MEMORY
#define SHADOW_MEMORY 0
#endif

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

/*
 * proc_kb - the "@key: N kB" line of the /proc file @path (e.g. Pss in
 * /proc/self/smaps_rollup, RssAnon in /proc/self/status), in bytes; the line must exist.
 */
static inline long long proc_kb(const char *path, const char *key)
{
	FILE *f = fopen(path, "re");
	size_t klen = strlen(key);
	long long v = -1;
	char line[256];

	ck_assert_msg(f, "%s: cannot open", path);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, klen) && line[klen] == ':') {
			v = strtoll(line + klen + 1, NULL, 10) * 1024;
			break;
		}
	fclose(f);
	ck_assert_msg(v >= 0, "%s: no %s line", path, key);
	return v;
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
