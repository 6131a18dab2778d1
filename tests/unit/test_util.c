/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * pcpu_mem_is_zero() (lib/util.c), which decides whether a copy is zeroed: its path for
 * small copies aligned to 4 (pcpu_or_small(), lib/util.h, which the free path also uses)
 * and its line-at-a-time loop must give the same answer as a byte-by-byte check for every
 * length up to 80 bytes, at every alignment, with one nonzero byte at each place (and
 * only just outside the range: never seen).
 */
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "util.h"
#include "../check_run.h"

START_TEST(test_mem_is_zero)
{
	_Alignas(64) unsigned char buf[160];

	for (size_t align = 0; align < 8; align++) {
		for (size_t n = 0; n <= 80; n++) {
			unsigned char *p = buf + 8 + align;

			memset(buf, 0, sizeof(buf));
			ck_assert_msg(pcpu_mem_is_zero(p, n), "zero, %zu bytes at +%zu", n, align);
			/* A byte just outside the range on either side is not ours. */
			p[-1] = 0x80;
			p[n] = 0x01;
			ck_assert_msg(pcpu_mem_is_zero(p, n), "neighbours, %zu at +%zu", n, align);
			p[-1] = p[n] = 0;
			for (size_t i = 0; i < n; i++) {
				for (unsigned v = 1; v < 256; v <<= 1) {
					p[i] = (unsigned char)v;
					ck_assert_msg(!pcpu_mem_is_zero(p, n),
						      "byte %zu = %#x of %zu at +%zu", i, v, n,
						      align);
				}
				p[i] = 0;
			}
		}
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("util");
	TCase *tc = tcase_create("util");

	tcase_add_test(tc, test_mem_is_zero);
	suite_add_tcase(s, tc);
	return pcpu_check_run(s, CK_FORK_GETENV);
}
