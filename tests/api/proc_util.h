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
#include <stdio.h>
#include <string.h>

/* count_threads - how many threads of this process have a name starting with @name. */
static inline int count_threads(const char *name)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d))) {
		char path[300], comm[64] = "";
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f) && !strncmp(comm, name, strlen(name)))
			n++;
		fclose(f);
	}
	closedir(d);
	return n;
}

#endif /* PCPU_PROC_UTIL_H */
