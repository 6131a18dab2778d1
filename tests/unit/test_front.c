/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * The per-CPU caches of lib/front.c as a mechanism: every object pushed comes out exactly
 * once, under threads that outnumber the CPUs, forced migrations, signals (each of which
 * aborts a sequence in progress), a drainer that keeps taking the arrays away, and fork.
 * Ownership is checked live: a thread that pops a token claims it with an atomic exchange
 * and must find it unclaimed, so a token handed to two threads at once fails at once.
 */
#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <pcpu.h>

#include "../api/mode_check.h"
#include "front.h"
#include "../check_run.h"

#define NR_LISTS 3
#define NR_TOKENS 20000
#define NR_WORKERS 6

/*
 * REQUIRE - ck_assert_msg() without the checkpoint: every ck_assert() that passes sends
 * Check's parent a message, which it parses one by one at the end, and the workers check
 * millions of tokens (seconds of the test's time went there, minutes under the sanitizers).
 * A failure is reported the same way.
 */
#define REQUIRE(cond, ...)                                                                         \
	do {                                                                                       \
		if (!(cond))                                                                       \
			ck_abort_msg(__VA_ARGS__);                                                 \
	} while (0)

static const unsigned caps[NR_LISTS] = {64, 8, 1};
static struct pcpu_front front;
static unsigned char owned[NR_LISTS][NR_TOKENS + 1];
static int stop;

/* Token t of list l: nonzero, distinct per list. */
static uintptr_t token(unsigned l, unsigned t)
{
	return ((uintptr_t)(l + 1) << 32) | (t + 1);
}

static unsigned token_index(uintptr_t v)
{
	return (unsigned)(v & 0xffffffffu) - 1;
}

/* Per-CPU arrays possible here? (Initialises the library first: the mode is known then.) */
static bool percpu_possible(void)
{
	ck_assert_int_gt(pcpu_nr_cpus(), 0);
	return pcpu_front_percpu_possible();
}

static void setup(bool percpu)
{
	ck_assert_int_eq(pcpu_nr_cpus() > 0, 1);
	test_check_mode();
	ck_assert_int_eq(pcpu_front_init(&front, NR_LISTS, caps, pcpu_nr_cpus(), percpu), 0);
	memset(owned, 1, sizeof(owned)); /* every token starts with the test */
	for (unsigned l = 0; l < NR_LISTS; l++)
		for (unsigned t = 0; t < NR_TOKENS; t++) {
			owned[l][t] = 0;
			REQUIRE(pcpu_front_push(&front, l, token(l, t)) >= 0,
				"push of token %u failed", t);
		}
}

static int count_one(unsigned list, uintptr_t v, void *arg)
{
	unsigned (*seen)[NR_TOKENS] = arg;
	unsigned l = (unsigned)(v >> 32) - 1;

	if (l != list || token_index(v) >= NR_TOKENS)
		return -1;
	seen[l][token_index(v)]++;
	return 0;
}

/* Every token on its list exactly once, none held by anybody. */
static void check_all_back(void)
{
	static unsigned seen[NR_LISTS][NR_TOKENS];

	memset(seen, 0, sizeof(seen));
	for (unsigned l = 0; l < NR_LISTS; l++) {
		ck_assert_int_eq(pcpu_front_for_each(&front, 1ULL << l, count_one, NULL, seen), 0);
		ck_assert_uint_eq(pcpu_front_count(&front, l), NR_TOKENS);
	}
	for (unsigned l = 0; l < NR_LISTS; l++)
		for (unsigned t = 0; t < NR_TOKENS; t++)
			REQUIRE(seen[l][t] == 1 && !owned[l][t], "list %u token %u seen %u", l, t,
				seen[l][t]);
}

START_TEST(test_single_thread)
{
	uintptr_t v;

	setup(percpu_possible());
	test_pin_here();
	/* LIFO through the array: the last pushed comes out first. */
	v = pcpu_front_pop(&front, 0);
	ck_assert_uint_ne(v, 0);
	ck_assert_int_ge(pcpu_front_push(&front, 0, v), 0);
	ck_assert_uint_eq(pcpu_front_pop(&front, 0), v);
	ck_assert_int_ge(pcpu_front_push(&front, 0, v), 0);
	/* Empty a list completely, then it reads empty (the other CPUs' arrays drained). */
	pcpu_front_drain(&front, ~0ULL);
	for (unsigned t = 0; t < NR_TOKENS; t++) {
		v = pcpu_front_pop(&front, 2);
		ck_assert_uint_ne(v, 0);
		ck_assert_int_eq(owned[2][token_index(v)], 0);
		owned[2][token_index(v)] = 1;
	}
	ck_assert_uint_eq(pcpu_front_pop(&front, 2), 0);
	ck_assert_uint_eq(pcpu_front_count(&front, 2), 0);
	for (unsigned t = 0; t < NR_TOKENS; t++) {
		owned[2][t] = 0;
		ck_assert_int_ge(pcpu_front_push(&front, 2, token(2, t)), 0);
	}
	if (front.percpu)
		ck_assert_uint_gt(pcpu_front_hits(&front, 0), 0);
	/* After a drain everything sits in the depots. */
	pcpu_front_drain(&front, ~0ULL);
	for (unsigned l = 0; l < NR_LISTS; l++)
		ck_assert_uint_eq(front.depot[l].nr, NR_TOKENS);
	check_all_back();
	pcpu_front_destroy(&front);
}
END_TEST

/*
 * A block costs pages only for the lists its CPU used: with 8 lists of 16 KiB arrays, a CPU
 * that pushes and pops on list 5 only has the block's first page (its header) and list 5's
 * resident, none of the other lists' pages (enabling a block once wrote every capacity),
 * even after counts, hits and a drain of every list.
 */
START_TEST(test_lazy_lists)
{
	static const unsigned big[8] = {2048, 2048, 2048, 2048, 2048, 2048, 2048, 2048};
	struct pcpu_front f;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	unsigned char vec[64];
	uintptr_t lo, hi, l5;
	unsigned resident = 0;

	if (!percpu_possible())
		return; /* no per-CPU arrays here (getcpu mode): nothing to enable */
	test_check_mode();
	ck_assert_int_eq(pcpu_front_init(&f, 8, big, pcpu_nr_cpus(), true), 0);
	test_pin_here();
	for (uintptr_t v = 1; v <= 100; v++)
		ck_assert_int_eq(pcpu_front_push(&f, 5, v), 0 + (v == 1)); /* 1: enabled now */
	for (uintptr_t v = 100; v >= 1; v--)
		ck_assert_uint_eq(pcpu_front_pop(&f, 5), v);
	ck_assert_uint_eq(f.nr_in_use, 1);
	/*
	 * What the balancer and the statistics read of every list must not touch the others
	 * either: a read maps the zero page (mincore counts it), or allocates a page on a
	 * kernel without one.
	 */
	for (unsigned l = 0; l < 8; l++) {
		ck_assert_uint_eq(pcpu_front_count(&f, l), 0);
		(void)pcpu_front_hits(&f, l);
	}
	pcpu_front_drain(&f, ~0ULL);
	lo = (uintptr_t)f.blocks + (uintptr_t)f.in_use[0] * f.block_size;
	hi = lo + f.block_size;
	l5 = lo + f.list_off[5];
	lo &= ~(uintptr_t)(page - 1);
	hi = (hi + page - 1) & ~(uintptr_t)(page - 1);
	ck_assert_uint_le((hi - lo) / page, sizeof(vec));
	ck_assert_int_eq(mincore((void *)lo, hi - lo, vec), 0);
	for (uintptr_t a = lo; a < hi; a += page) {
		bool mine = a == lo || (a + page > l5 && a <= l5 + 16 + 100 * sizeof(uintptr_t));

		if (vec[(a - lo) / page] & 1) {
			resident++;
			ck_assert_msg(mine, "page %zu of the block is resident: another list's",
				      (size_t)((a - lo) / page));
		}
	}
	ck_assert_uint_ge(resident, 2);
	pcpu_front_destroy(&f);
}
END_TEST

/*
 * A locked block (a drainer owns it) is left alone: pushes and pops go to the depot. The
 * thread stays on one CPU, whose block is the only one in use.
 */
START_TEST(test_locked_block)
{
	uint32_t *lock, *count;
	size_t depot;
	uintptr_t v;

	if (!percpu_possible())
		return;
	test_pin_here();
	setup(true);
	ck_assert_uint_eq(front.nr_in_use, 1);
	lock = (uint32_t *)(front.blocks + front.in_use[0] * front.block_size);
	count = (uint32_t *)((char *)lock + front.list_off[0]);
	v = pcpu_front_pop(&front, 0);
	ck_assert_uint_ne(v, 0);
	ck_assert_uint_gt(*count, 0);
	__atomic_store_n(lock, 1, __ATOMIC_RELAXED);
	{
		uint32_t before = *count;

		depot = front.depot[0].nr;
		ck_assert_int_ge(pcpu_front_push(&front, 0, v), 0);
		ck_assert_uint_eq(*count, before);
		ck_assert_uint_eq(front.depot[0].nr, depot + 1);
		ck_assert_uint_eq(pcpu_front_pop(&front, 0), v);
		ck_assert_uint_eq(*count, before);
		ck_assert_uint_eq(front.depot[0].nr, depot);
	}
	__atomic_store_n(lock, 0, __ATOMIC_RELAXED);
	ck_assert_int_ge(pcpu_front_push(&front, 0, v), 0);
	check_all_back();
	pcpu_front_destroy(&front);
}
END_TEST

/* The per-CPU arrays are used exactly when the mode allows them. */
START_TEST(test_percpu_when_possible)
{
	enum pcpu_cpu_mode m = pcpu_cpu_mode();
	bool possible = percpu_possible();

#if defined(__x86_64__)
	ck_assert_int_eq(possible, m != PCPU_MODE_GETCPU);
#else
	ck_assert_int_eq(possible, 0);
#endif
	(void)m;
}
END_TEST

static void on_signal(int sig)
{
	(void)sig;
}

static void *worker(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	uintptr_t held[64];

	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		unsigned l = rand_r(&seed) % NR_LISTS, n = 1 + rand_r(&seed) % 64, got = 0;
		bool many = rand_r(&seed) % 2; /* the batch calls, one sequence each */

		if (many)
			got = (unsigned)pcpu_front_pop_many(&front, l, held, n);
		for (unsigned i = 0; i < n && !many; i++) {
			uintptr_t v = pcpu_front_pop(&front, l);

			if (!v)
				break;
			held[got++] = v;
		}
		for (unsigned i = 0; i < got; i++) {
			uintptr_t v = held[i];

			REQUIRE((v >> 32) == l + 1, "token %#lx popped from list %u",
				(unsigned long)v, l);
			REQUIRE(
			    !__atomic_exchange_n(&owned[l][token_index(v)], 1, __ATOMIC_RELAXED),
			    "token %u of list %u handed out twice", token_index(v), l);
		}
		if (many && got) {
			for (unsigned i = 0; i < got; i++)
				__atomic_store_n(&owned[l][token_index(held[i])], 0,
						 __ATOMIC_RELAXED);
			REQUIRE(pcpu_front_push_many(&front, l, held, got) == got,
				"push_many of %u tokens failed", got);
			got = 0;
		}
		while (got) {
			uintptr_t v = held[--got];

			__atomic_store_n(&owned[l][token_index(v)], 0, __ATOMIC_RELAXED);
			REQUIRE(pcpu_front_push(&front, l, v) >= 0, "push of token %u failed",
				token_index(v));
		}
	}
	return NULL;
}

/* Moves the workers between CPUs and interrupts them. */
static void *disturber(void *arg)
{
	pthread_t *tids = arg;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned i = 0;

	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET((int)(i % (unsigned)(ncpu > 0 ? ncpu : 1)), &set);
		pthread_setaffinity_np(tids[i % NR_WORKERS], sizeof(set), &set);
		pthread_kill(tids[(i + 1) % NR_WORKERS], SIGUSR1);
		if (i % 16 == 15) {
			for (int w = 0; w < NR_WORKERS; w++) {
				CPU_ZERO(&set);
				for (long c = 0; c < ncpu && c < CPU_SETSIZE; c++)
					CPU_SET((int)c, &set);
				pthread_setaffinity_np(tids[w], sizeof(set), &set);
			}
		}
		i++;
		usleep(200);
	}
	return NULL;
}

/* Takes the arrays away all the time: every list, or list 0 only. */
static void *drainer(void *arg)
{
	unsigned i = 0;

	(void)arg;
	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		pcpu_front_drain(&front, i++ % 3 ? ~0ULL : 1);
		if (i % 64 == 0)
			usleep(100);
	}
	return NULL;
}

static void storm(bool percpu, double seconds)
{
	pthread_t tids[NR_WORKERS], dist, dr;
	struct sigaction sa = {.sa_handler = on_signal};

	setup(percpu);
	sigaction(SIGUSR1, &sa, NULL);
	stop = 0;
	for (int i = 0; i < NR_WORKERS; i++)
		ck_assert_int_eq(pthread_create(&tids[i], NULL, worker, (void *)(uintptr_t)(i + 1)),
				 0);
	ck_assert_int_eq(pthread_create(&dist, NULL, disturber, tids), 0);
	ck_assert_int_eq(pthread_create(&dr, NULL, drainer, NULL), 0);
	usleep((useconds_t)(seconds * 1e6));
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < NR_WORKERS; i++)
		pthread_join(tids[i], NULL);
	pthread_join(dist, NULL);
	pthread_join(dr, NULL);
	check_all_back();
	if (front.percpu)
		ck_assert_uint_gt(pcpu_front_hits(&front, 0), 0);
	pcpu_front_destroy(&front);
}

static double stress_seconds(void)
{
	const char *e = getenv("PCPU_STRESS_SECONDS");

	return e ? atof(e) : 2;
}

START_TEST(test_storm)
{
	storm(percpu_possible(), stress_seconds());
}
END_TEST

START_TEST(test_storm_depot_only)
{
	storm(false, stress_seconds() / 2);
}
END_TEST

/* fork with objects in the arrays: the child takes them all, then gives them back. */
START_TEST(test_fork)
{
	pid_t pid;
	int st;

	setup(percpu_possible());
	pcpu_front_atfork_prepare(&front);
	pid = fork();
	if (pid == 0) {
		cpu_set_t set;
		int cpu = sched_getcpu();

		/*
		 * Pops see this CPU's array and the depot, so the child stays on one CPU: a pop
		 * refills the array from the depot, and after a migration the rest of that refill
		 * would sit in another CPU's array, out of sight, and the last pops find nothing
		 * (exit 1 under load, once these tests ran in parallel with others).
		 */
		CPU_ZERO(&set);
		if (cpu < 0)
			_exit(5);
		CPU_SET(cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set))
			_exit(5);
		pcpu_front_atfork_child(&front);
		/* The other arrays come back first. */
		pcpu_front_drain(&front, ~0ULL);
		for (unsigned l = 0; l < NR_LISTS; l++) {
			for (unsigned t = 0; t < NR_TOKENS; t++) {
				uintptr_t v = pcpu_front_pop(&front, l);

				if (!v || owned[l][token_index(v)]++)
					_exit(1);
			}
			if (pcpu_front_pop(&front, l))
				_exit(2);
			for (unsigned t = 0; t < NR_TOKENS; t++)
				if (pcpu_front_push(&front, l, token(l, t)) < 0)
					_exit(3);
			if (pcpu_front_count(&front, l) != NR_TOKENS)
				_exit(4);
		}
		pcpu_front_drain(&front, ~0ULL);
		_exit(0);
	}
	pcpu_front_atfork_parent(&front);
	ck_assert_int_gt(pid, 0);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
	check_all_back();
	pcpu_front_destroy(&front);
}
END_TEST

START_TEST(test_bad_init)
{
	unsigned zero[1] = {0}, big[1] = {1u << 21};

	ck_assert_int_eq(pcpu_front_init(&front, 0, caps, 4, false), -EINVAL);
	ck_assert_int_eq(pcpu_front_init(&front, PCPU_FRONT_MAX_LISTS + 1, caps, 4, false),
			 -EINVAL);
	ck_assert_int_eq(pcpu_front_init(&front, 1, zero, 4, false), -EINVAL);
	ck_assert_int_eq(pcpu_front_init(&front, 1, big, 4, false), -EINVAL);
	ck_assert_int_eq(pcpu_front_init(&front, 1, caps, 0, false), -EINVAL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("front");
	TCase *tc = tcase_create("front");

	tcase_set_timeout(tc, stress_seconds() * 2 + 120);
	tcase_add_test(tc, test_bad_init);
	tcase_add_test(tc, test_percpu_when_possible);
	tcase_add_test(tc, test_single_thread);
	tcase_add_test(tc, test_locked_block);
	tcase_add_test(tc, test_lazy_lists);
	tcase_add_test(tc, test_fork);
	tcase_add_test(tc, test_storm);
	tcase_add_test(tc, test_storm_depot_only);
	suite_add_tcase(s, tc);
	return pcpu_check_run(s, CK_FORK_GETENV);
}
