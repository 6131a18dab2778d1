/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * Memory goes back: 1,000,000 8-byte objects allocated and freed; once the balancer has
 * run (or pcpu_trim() was called), RSS is back within 2 MiB of where it started and the
 * virtual reservations of the freed chunks are gone from /proc/self/maps.
 */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <pcpu.h>

#include "lib/alloc.h"
#include "../check_run.h"

#define NR_OBJS 1000000
#define SLACK (2L << 20)

/* Under ASan RSS also counts its shadow and quarantine: only the mappings are checked. */
#if defined(__SANITIZE_ADDRESS__)
#define CHECK_RSS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CHECK_RSS 0
#endif
#endif
#ifndef CHECK_RSS
#define CHECK_RSS 1
#endif

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static long rss_bytes(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "re");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fscanf(f, "%ld %ld", &pages, &rss), 2);
	fclose(f);
	return rss * sysconf(_SC_PAGESIZE);
}

/* Is @addr inside any mapping of /proc/self/maps? */
static int mapped(uintptr_t addr)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512];
	int found = 0;

	ck_assert_ptr_nonnull(f);
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && addr >= lo && addr < hi)
			found = 1;
	}
	fclose(f);
	return found;
}

struct probe {
	void **v;
	uintptr_t *addr; /* unit-0 address of one object per 4096 */
	size_t nr_addr;
	long rss0;
};

/* The first chunk is never unmapped (only its free pages go back): its samples do not count. */
static int in_first_chunk(uintptr_t a)
{
	return a >= (uintptr_t)pcpu_first.base && a < (uintptr_t)pcpu_first.base + pcpu_geom.vsize;
}

/* Allocate and free NR_OBJS objects, touching every copy of some, recording addresses. */
static void churn(struct probe *p)
{
	unsigned cpu;

	ck_assert_uint_gt(pcpu_nr_cpus(), 0); /* initialised: its own memory is in the start */
	p->rss0 = rss_bytes();
	p->v = malloc(NR_OBJS * sizeof(*p->v));
	p->addr = malloc((NR_OBJS / 4096 + 1) * sizeof(*p->addr));
	ck_assert(p->v && p->addr);
	for (long i = 0; i < NR_OBJS; i++) {
		p->v[i] = pcpu_alloc(8, 0, 0);
		/* Not ck_assert: a million checkpoints for Check's parent to parse (seconds). */
		if (!p->v[i])
			ck_abort_msg("allocation %ld of %d failed", i, NR_OBJS);
		if (i % 64 == 0)
			pcpu_for_each_cpu(cpu)
				*pcpu_ptr((uint64_t *)p->v[i], cpu) = (uint64_t)i + 1;
		if (i % 4096 == 0)
			p->addr[p->nr_addr++] = (uintptr_t)pcpu_ptr((char *)p->v[i], 0);
	}
	printf("RSS %ld KiB at start, %ld KiB with %d objects\n", p->rss0 >> 10, rss_bytes() >> 10,
	       NR_OBJS);
	for (long i = 0; i < NR_OBJS; i++)
		pcpu_free(p->v[i]);
	free(p->v);
}

/*
 * Sampled addresses still mapped (the first chunk's left out), and the span they cover:
 * from the lowest to the highest, 0 for none.
 */
static size_t still_mapped_span(const struct probe *p, uintptr_t *span)
{
	uintptr_t lo = UINTPTR_MAX, hi = 0;
	size_t still = 0;

	for (size_t i = 0; i < p->nr_addr; i++) {
		if (in_first_chunk(p->addr[i]) || !mapped(p->addr[i]))
			continue;
		still++;
		lo = p->addr[i] < lo ? p->addr[i] : lo;
		hi = p->addr[i] > hi ? p->addr[i] : hi;
	}
	*span = still ? hi - lo : 0;
	return still;
}

/*
 * At most one chunk left besides the first: the samples still mapped lie within one unit
 * (unit-0 addresses of one chunk). Counting them is not enough: a chunk whose objects were
 * handed out at different times can hold a ninth sample of one every 4096 objects.
 */
static bool one_chunk_at_most(const struct probe *p)
{
	uintptr_t span;

	(void)still_mapped_span(p, &span);
	return span < pcpu_geom.unit_size;
}

static void check_returned(struct probe *p, const char *how)
{
	size_t still = 0;
	long rss = rss_bytes();
	uintptr_t span;

	printf("%s: RSS %ld KiB (start %ld KiB)\n", how, rss >> 10, p->rss0 >> 10);
	ck_assert_msg(!CHECK_RSS || rss <= p->rss0 + SLACK, "%s: RSS %ld KiB, started at %ld KiB", how,
		      rss >> 10, p->rss0 >> 10);
	still = still_mapped_span(p, &span);
	/* After a trim no dynamic chunk is left; otherwise at most one free chunk is kept. */
	printf("%s: %zu of %zu sampled addresses still mapped, over %zu KiB\n", how, still,
	       p->nr_addr, (size_t)span >> 10);
	if (!strcmp(how, "trim"))
		ck_assert_uint_eq(still, 0);
	else
		ck_assert_msg(span < pcpu_geom.unit_size,
			      "%s: %zu samples still mapped over %zu KiB: more than one chunk", how,
			      still, (size_t)span >> 10);
	ck_assert_int_eq(pcpu_verify(), 0);
	free(p->addr);
}

START_TEST(test_returned_by_trim)
{
	struct probe p = {0};

	churn(&p);
	pcpu_trim();
	check_returned(&p, "trim");
}
END_TEST

/* Without any call: the balancer alone brings RSS back (the test waits, up to 60 s). */
START_TEST(test_returned_by_balancer)
{
	struct probe p = {0};

	churn(&p);
	for (int i = 0; i < 600; i++) {
		if ((!CHECK_RSS || rss_bytes() <= p.rss0 + SLACK) && one_chunk_at_most(&p))
			break;
		sleep_ms(100);
	}
	check_returned(&p, "balancer");
}
END_TEST

/* balance=off: the frees themselves did the work. */
START_TEST(test_returned_balance_off)
{
	struct pcpu_config cfg = {.size = sizeof(cfg), .balance = -1};
	struct probe p = {0};

	ck_assert_int_eq(pcpu_init(&cfg), 0);
	churn(&p);
	check_returned(&p, "balance=off");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("memory_returned");
	TCase *tc = tcase_create("memory_returned");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_returned_by_trim);
	tcase_add_test(tc, test_returned_by_balancer);
	tcase_add_test(tc, test_returned_balance_off);
	suite_add_tcase(s, tc);
	return pcpu_check_run(s, CK_FORK);
}
