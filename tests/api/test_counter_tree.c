/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * struct pcpu_counter_tree: init's EINVAL and ENOMEM paths; the bound's shape; and, over
 * many random add sequences, that at every quiescent point the precise sum is exact,
 * approx <= sum <= approx + inaccuracy, and compare agrees with the precise sum at
 * sum - 1, sum, sum + 1 and at both ends of the bound, +-1.
 *
 * Many CPUs on a small machine: a fake topology (PCPU_CONF=topology=4096x64) gives 4096
 * leaves, but only the CPUs the machine has are ever "this CPU". The random and adversarial
 * sequences therefore also emulate an add on any CPU c, single-threaded, exactly as the
 * inline add does it: add to c's leaf (through pcpu_ptr) and, when the bits above the batch
 * change, call the library's carry path, pcpu__counter_tree_carry(), for CPU c. Real adds
 * (pcpu_counter_tree_add) are mixed in, and the adversarial case is also run with real adds
 * from a thread pinned on each CPU the machine has.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pcpu.h>

#include "mode_check.h"
#include "pcpu_config.h"
#include "spawn.h"
#include "../check_run.h"

static uint64_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* An add on CPU @cpu, as pcpu__counter_tree_add() does it there (single-threaded use). */
static void emu_add(struct pcpu_counter_tree *t, unsigned cpu, int64_t v)
{
	uint64_t *leaf = pcpu_ptr(t->leaves, cpu);
	uint64_t old = *leaf, nv = old + (uint64_t)v;

	*leaf = nv;
	if ((old ^ nv) & ~t->mask)
		pcpu__counter_tree_carry(t, cpu, old, nv);
}

static int cmp(int64_t a, int64_t b)
{
	return a > b ? 1 : a < b ? -1 : 0;
}

/* Everything that must hold with no add in flight, given the true value @want. */
static void check_quiescent(struct pcpu_counter_tree *t, int64_t want)
{
	int64_t s = pcpu_counter_tree_sum(t), a = pcpu_counter_tree_approx(t);
	uint64_t b = pcpu_counter_tree_inaccuracy(t);
	int64_t probe[] = {s - 1, s, s + 1, a - 1, a, a + 1, (int64_t)((uint64_t)a + b) - 1,
			   (int64_t)((uint64_t)a + b), (int64_t)((uint64_t)a + b + 1)};

	ck_assert_int_eq(s, want);
	/* sum - approx is the part not yet carried: in [0, bound] (no wrap in these tests) */
	ck_assert_msg(s >= a && (uint64_t)s - (uint64_t)a <= b, "sum %lld approx %lld bound %llu",
		      (long long)s, (long long)a, (unsigned long long)b);
	for (size_t i = 0; i < sizeof(probe) / sizeof(probe[0]); i++)
		ck_assert_msg(pcpu_counter_tree_compare(t, probe[i]) == cmp(s, probe[i]),
			      "compare(%lld) with sum %lld approx %lld bound %llu",
			      (long long)probe[i], (long long)s, (long long)a,
			      (unsigned long long)b);
}

static unsigned ceil_log2(unsigned n)
{
	unsigned l = 0;

	while ((1u << l) < n)
		l++;
	return l;
}

START_TEST(test_init_errors)
{
	struct pcpu_counter_tree t;

	test_check_mode();
	errno = 0;
	ck_assert_int_eq(pcpu_counter_tree_init(NULL, 0, 0), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(pcpu_counter_tree_init(&t, 0, 3), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(pcpu_counter_tree_init(&t, 0, 48), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(pcpu_counter_tree_init(&t, -5, 0), 0);
	check_quiescent(&t, -5);
	pcpu_counter_tree_destroy(&t);
	pcpu_counter_tree_destroy(&t); /* twice: no-op */
	pcpu_counter_tree_destroy(NULL);
	/* and again after destroy */
	ck_assert_int_eq(pcpu_counter_tree_init(&t, 1, 1u << 31), 0);
	check_quiescent(&t, 1);
	pcpu_counter_tree_destroy(&t);
}
END_TEST

/* The bound: n (batch - 1) at least, batch * n * ceil(log2 n) at most (n >= 2). */
START_TEST(test_bound_shape)
{
	unsigned n = pcpu_nr_cpus();

	for (uint32_t batch = 1; batch && batch <= (1u << 20); batch <<= 3) {
		struct pcpu_counter_tree t;
		uint64_t b;

		ck_assert_int_eq(pcpu_counter_tree_init(&t, 0, batch), 0);
		b = pcpu_counter_tree_inaccuracy(&t);
		ck_assert_uint_ge(b, (uint64_t)n * (batch - 1));
		if (n >= 2)
			ck_assert_uint_le(b, (uint64_t)batch * n * ceil_log2(n));
		else
			ck_assert_uint_eq(b, batch - 1);
		pcpu_counter_tree_destroy(&t);
	}
}
END_TEST

/*
 * Adversarial: every leaf to batch - 1, then every node below the root to its largest
 * remainder (batch << (L - 1) at level L: add that much on the first CPU under it, which
 * passes the levels below without changing their remainders). The error is then exactly
 * the bound, which is therefore tight.
 */
static void push_to_bound(struct pcpu_counter_tree *t, int64_t *want)
{
	unsigned n = pcpu_nr_cpus();
	uint64_t batch = t->mask + 1;

	for (unsigned c = 0; c < n; c++) {
		int64_t v = (int64_t)(t->mask - (*pcpu_ptr(t->leaves, c) & t->mask));

		emu_add(t, c, v);
		*want += v;
	}
	for (uint32_t l = 1; l < t->nr_levels; l++)
		for (uint64_t j = 0; (j << l) < n; j++) {
			emu_add(t, (unsigned)(j << l), (int64_t)(batch << (l - 1)));
			*want += (int64_t)(batch << (l - 1));
		}
}

START_TEST(test_adversarial_tight)
{
	static const uint32_t batches[] = {1, 2, 32, 1024};

	for (size_t i = 0; i < sizeof(batches) / sizeof(batches[0]); i++) {
		struct pcpu_counter_tree t;
		int64_t want = 1000;

		ck_assert_int_eq(pcpu_counter_tree_init(&t, want, batches[i]), 0);
		push_to_bound(&t, &want);
		check_quiescent(&t, want);
		ck_assert_uint_eq((uint64_t)(pcpu_counter_tree_sum(&t) -
					     pcpu_counter_tree_approx(&t)),
				  pcpu_counter_tree_inaccuracy(&t));
		/* one more on any leaf carries; the bound still holds */
		emu_add(&t, 0, 1);
		want++;
		check_quiescent(&t, want);
		pcpu_counter_tree_destroy(&t);
	}
}
END_TEST

/* Random sequences: random CPUs, sizes from +-1 to +-2^40, bursts that push every leaf to
 * just under (or just over) its batch, and real adds from this thread. */
START_TEST(test_random_sequences)
{
	unsigned n = pcpu_nr_cpus();
	int seqs = n > 256 ? 6 : 40;
	int steps = n > 256 ? 4000 : 3000;
	/* sum reads every leaf: check every step on small machines, sparser on big ones */
	int every = n > 256 ? 97 : n > 16 ? 7 : 1;

	for (int q = 0; q < seqs; q++) {
		struct pcpu_counter_tree t;
		uint64_t x = 0x9e3779b97f4a7c15ull * (uint64_t)(q + 1);
		uint32_t batch = 1u << (rnd(&x) % 12);
		int64_t want = (int64_t)(rnd(&x) % 2000) - 1000;

		ck_assert_int_eq(pcpu_counter_tree_init(&t, want, batch), 0);
		for (int s = 0; s < steps; s++) {
			unsigned cpu = (unsigned)(rnd(&x) % n);
			uint64_t r = rnd(&x);
			int64_t v;

			switch (r % 8) {
			case 0: /* every leaf to just under its batch */
				for (unsigned c = 0; c < n; c++) {
					v = (int64_t)(t.mask - (*pcpu_ptr(t.leaves, c) & t.mask));
					emu_add(&t, c, v);
					want += v;
				}
				break;
			case 1: /* a real add, on whatever CPU this thread runs */
				v = (int64_t)((r >> 8) % (4 * batch)) - 2 * (int64_t)batch;
				pcpu_counter_tree_add(&t, v);
				want += v;
				break;
			case 2: /* big */
				v = (int64_t)((r >> 8) % (1ull << 40)) - (1ll << 39);
				emu_add(&t, cpu, v);
				want += v;
				break;
			default: /* around the batch */
				v = (int64_t)((r >> 8) % (4 * batch + 1)) - 2 * (int64_t)batch;
				emu_add(&t, cpu, v);
				want += v;
				break;
			}
			if (s % every == 0 || (r % 8) == 0)
				check_quiescent(&t, want);
		}
		check_quiescent(&t, want);
		pcpu_counter_tree_destroy(&t);
	}
}
END_TEST

/* The adversarial pattern with real adds, from a thread pinned on each CPU the machine has. */
struct pinned {
	struct pcpu_counter_tree *t;
	int cpu;
	int64_t added;
};

static void *pinned_pusher(void *arg)
{
	struct pinned *p = arg;
	cpu_set_t set;
	uint64_t batch = p->t->mask + 1;

	CPU_ZERO(&set);
	CPU_SET(p->cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		return NULL;
	/* to just under the batch, then one batch at a time up the levels */
	pcpu_counter_tree_add(p->t, (int64_t)p->t->mask);
	p->added += (int64_t)p->t->mask;
	for (uint32_t l = 1; l < p->t->nr_levels; l++) {
		pcpu_counter_tree_add(p->t, (int64_t)(batch << (l - 1)));
		p->added += (int64_t)(batch << (l - 1));
	}
	return NULL;
}

START_TEST(test_pinned_real_adds)
{
	int ncpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
	struct pinned p[64];
	struct pcpu_counter_tree t;
	int64_t want = 0;

	if (ncpus > 64)
		ncpus = 64;
	ck_assert_int_eq(pcpu_counter_tree_init(&t, 0, 16), 0);
	for (int round = 0; round < 20; round++) {
		for (int c = 0; c < ncpus; c++) {
			pthread_t tid;

			p[c] = (struct pinned){.t = &t, .cpu = c};
			ck_assert_int_eq(pthread_create(&tid, NULL, pinned_pusher, &p[c]), 0);
			pthread_join(tid, NULL);
			want += p[c].added;
		}
		check_quiescent(&t, want);
	}
	pcpu_counter_tree_destroy(&t);
}
END_TEST

#if PCPU_FAULT_INJECT
/* Fault injection: every fallible call of init fails in turn: -1 + ENOMEM, nothing kept. */
static int fault_child(void)
{
	struct pcpu_stats st0 = {.size = sizeof(st0)}, st = {.size = sizeof(st)};
	struct pcpu_counter_tree t;
	int r;

	setvbuf(stdout, NULL, _IONBF, 0);
	if (!pcpu_nr_cpus() || pcpu_stats_get(&st0))
		return 3;
	fprintf(stderr, "init-begin\n");
	errno = 0;
	r = pcpu_counter_tree_init(&t, 5, 0);
	fprintf(stderr, "init-end\n");
	if (r) {
		if (r != -1 || errno != ENOMEM)
			return 4;
		if (pcpu_stats_get(&st) || st.nr_cur_alloc != st0.nr_cur_alloc)
			return 5;
		fprintf(stderr, "enomem\n");
		return 0;
	}
	pcpu_counter_tree_add(&t, 7);
	if (pcpu_counter_tree_sum(&t) != 12)
		return 6;
	pcpu_counter_tree_destroy(&t);
	return 0;
}

START_TEST(test_init_enomem)
{
	static char log[1 << 20];
	long points[16], n;
	bool must_fail[16];
	int np = 0, nfail = 0, rc;
	const char *p, *end;
	char what[32];

	ck_assert_int_eq(spawn_fault("--fault-child", 0, NULL, log, sizeof(log)), 0);
	p = strstr(log, "init-begin");
	end = strstr(log, "init-end");
	ck_assert(p && end);
	/*
	 * The nodes' calloc; the leaves' pcpu_alloc too when it has to map memory (a new
	 * cache-coloured chunk: small objects no longer come from the first chunk). Allocation
	 * failures must fail the init with ENOMEM and nothing allocated; the chunk layer's
	 * tolerated failures (a reservation retried PROT_NONE, an mbind only counted) may
	 * instead let it succeed, and then the counter must count right (the child checks).
	 */
	for (; (p = strstr(p, "fault point ")) && p < end && np < 16; p++)
		if (sscanf(p, "fault point %ld: %31s", &n, what) == 2) {
			must_fail[np] = !strcmp(what, "calloc") || !strcmp(what, "malloc");
			points[np++] = n;
		}
	ck_assert_int_ge(np, 1);
	for (int i = 0; i < np; i++) {
		rc = spawn_fault("--fault-child", points[i], NULL, log, sizeof(log));
		ck_assert_msg(rc == 0, "PCPU_FAULT=%ld: exit %d: %.2000s", points[i], rc, log);
		ck_assert_msg(!must_fail[i] || strstr(log, "enomem"),
			      "PCPU_FAULT=%ld: init did not fail: %.2000s", points[i], log);
		nfail += strstr(log, "enomem") != NULL;
	}
	ck_assert_int_ge(nfail, 1);
}
END_TEST
#endif

int main(int argc, char **argv)
{
	Suite *s;
	TCase *tc;

#if PCPU_FAULT_INJECT
	if (argc > 1 && !strcmp(argv[1], "--fault-child"))
		return fault_child();
#else
	(void)argc;
	(void)argv;
#endif
	s = suite_create("counter_tree");
	tc = tcase_create("counter_tree");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_init_errors);
	tcase_add_test(tc, test_bound_shape);
	tcase_add_test(tc, test_adversarial_tight);
	tcase_add_test(tc, test_random_sequences);
	tcase_add_test(tc, test_pinned_real_adds);
#if PCPU_FAULT_INJECT
	tcase_add_test(tc, test_init_enomem);
#endif
	suite_add_tcase(s, tc);
	return pcpu_check_run(s, CK_FORK_GETENV);
}
