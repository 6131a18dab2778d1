/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * secure_env_helper - run by test_secure_env, once setuid/setgid to another user (AT_SECURE)
 * and once as a plain program. Prints one line: whether the kernel set AT_SECURE, the CPU
 * count the library settled on (PCPU_CONF=topology=... changes it) and whether the zero
 * source was forced (PCPU__ZERO_SOURCE). It leaves one allocation live and returns, so that
 * PCPU_STATS and PCPU_LEAKS, when honoured, print at exit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/auxv.h>

#include <json-c/json.h>
#include <pcpu.h>

/*
 * In an ASan build, LeakSanitizer's exit check cannot inspect a set-ID process (not
 * dumpable, as under ptrace) and fails it: it is skipped there. The hook is LSan's own.
 */
int __lsan_is_turned_off(void);
int __lsan_is_turned_off(void)
{
	return getauxval(AT_SECURE) != 0;
}

/* runtime.zero_source_forced of the JSON statistics: 1, 0, or -1 when unreadable. */
static int zero_source_forced(void)
{
	json_object *root, *runtime, *forced;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int ret = -1;

	if (!f)
		return -1;
	pcpu_stats_print_json(f);
	fclose(f);
	root = json_tokener_parse(buf);
	if (root && json_object_object_get_ex(root, "runtime", &runtime) &&
	    json_object_object_get_ex(runtime, "zero_source_forced", &forced) &&
	    json_object_is_type(forced, json_type_boolean))
		ret = json_object_get_boolean(forced);
	json_object_put(root);
	free(buf);
	return ret;
}

int main(void)
{
	void *p = pcpu_alloc(24, 0, 0);

	if (!p)
		return 1;
	printf("at_secure=%lu nr_cpus=%u zero_source_forced=%d\n", getauxval(AT_SECURE),
	       pcpu_nr_cpus(), zero_source_forced());
	fflush(stdout);
	return 0; /* p stays live: the leak report lists it */
}
