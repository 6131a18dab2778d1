/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * check_run.h - the end of every Check test program's main(): run the suite, free the
 * runner, and turn the failures into the exit status.
 */
#ifndef PCPU_TESTS_CHECK_RUN_H
#define PCPU_TESTS_CHECK_RUN_H

#include <check.h>
#include <stdlib.h>

/*
 * pcpu_check_run - run every test of @s. @fork: CK_FORK (each test in a fresh process,
 * whatever CK_FORK says in the environment) or CK_FORK_GETENV (Check's default). Return
 * EXIT_SUCCESS when every test passed, else EXIT_FAILURE.
 */
static inline int pcpu_check_run(Suite *s, enum fork_status fork)
{
	SRunner *sr = srunner_create(s);
	int failed;

	if (fork != CK_FORK_GETENV)
		srunner_set_fork_status(sr, fork);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif /* PCPU_TESTS_CHECK_RUN_H */
