/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * storm.cpp - tests/stress/storm.c from C++ (C++11): the same storm, through the C++ forms
 * of the this-CPU operations (function templates over the inline sequences). More threads
 * than CPUs update the same per-CPU objects while one thread keeps narrowing and widening
 * their CPU affinity and another keeps signalling them (the handler updates the same
 * objects); afterwards every folded total must be exact. Beyond storm.c it also updates a
 * PCPU_DEFINE variable with an initialiser, a struct field reached through pcpu_ptr-style
 * handles, and subtracts, and first checks that doubles travel through read, write and xchg
 * bit for bit. Runs for PCPU_STRESS_SECONDS (default 3). No Check runner: plain C++ and
 * exit codes (mode_check.h only for test_expected_mode()).
 */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <limits>
#include <thread>
#include <vector>

#include <pcpu.h>

#include "../api/mode_check.h"

#define CHECK(cond)                                                                           \
	do {                                                                                  \
		if (!(cond)) {                                                                \
			fprintf(stderr, "storm.cpp:%d: check failed: %s\n", __LINE__, #cond); \
			exit(EXIT_FAILURE);                                                   \
		}                                                                             \
	} while (0)

struct pair {
	uint32_t a;
	int64_t b;
};

/* Static per-CPU variables: one zeroed, one starting at -5 on every CPU. */
PCPU_DEFINE(uint64_t, s_loops);
PCPU_DEFINE(int32_t, s_down, -5);

static uint64_t *c64;
static uint32_t *c32;
static uint16_t *c16;
static uint8_t *c8;
static pair *pr;
static pcpu_counter counter;
static std::atomic<bool> stop(false);
static thread_local uint64_t handled;

struct worker {
	std::thread t;
	uint64_t loops = 0;   /* each adds 1, 3, 1, 1, 2 and the C++-only updates below */
	uint64_t handled = 0; /* signal handler runs: each adds 1 to c64 and 5 to c32 */
};

static void on_signal(int)
{
	pcpu_this_inc(c64);
	pcpu_this_add(c32, 5);
	handled++;
}

static void work(worker *w)
{
	uint64_t n = 0;

	while (!stop.load(std::memory_order_relaxed)) {
		pcpu_this_inc(c64);
		pcpu_this_add(c32, 3);
		/* increment by compare-and-swap: a failed cmpxchg returns the value seen */
		uint16_t old = pcpu_this_read(c16), seen;
		while ((seen = pcpu_this_cmpxchg(c16, old, old + 1)) != old)
			old = seen;
		(void)pcpu_this_add_return(c8, 1);
		pcpu_counter_add(&counter, 2);
		pcpu_this_inc(s_loops);
		pcpu_this_dec(s_down);
		pcpu_this_sub(&pr->b, 2);
		pcpu_this_add(&pr->a, 7u);
		n++;
	}
	/*
	 * A signal sent just before the signaller saw stop may still be pending: block it
	 * before reading the count, or its handler could add after the read (as in
	 * tests/stress/storm_util.h). A blocked signal is dropped when the thread exits.
	 */
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	w->loops = n;
	w->handled = handled;
}

/* Narrow each worker to one CPU (a different one each round), then widen to all. */
static void migrate(std::vector<worker> *ws, int ncpus)
{
	unsigned round = 0;

	while (!stop.load(std::memory_order_relaxed)) {
		cpu_set_t set;
		unsigned i = 0;

		for (worker &w : *ws) {
			CPU_ZERO(&set);
			CPU_SET((round + i++) % (unsigned)ncpus, &set);
			pthread_setaffinity_np(w.t.native_handle(), sizeof(set), &set);
		}
		usleep(500);
		CPU_ZERO(&set);
		for (int c = 0; c < ncpus; c++)
			CPU_SET(c, &set);
		for (worker &w : *ws)
			pthread_setaffinity_np(w.t.native_handle(), sizeof(set), &set);
		usleep(500);
		round++;
	}
}

static void signal_all(std::vector<worker> *ws)
{
	unsigned k = 0;

	while (!stop.load(std::memory_order_relaxed)) {
		pthread_kill((*ws)[k++ % ws->size()].t.native_handle(), SIGUSR1);
		if (k % 64 == 0)
			usleep(100);
	}
}

template <typename T> static T sum_copies(T *h)
{
	T s = 0;
	unsigned c;

	pcpu_for_each_cpu(c) s = static_cast<T>(s + *pcpu_ptr(h, c));
	return s;
}

/* Doubles through read, write and xchg: exact copies, -0.0 and a NaN payload included. */
static void check_double_copies(void)
{
	double *d = pcpu_alloc_type(double);
	const double nan = std::numeric_limits<double>::quiet_NaN();
	uint64_t nan_bits, seen_bits;
	double seen;

	CHECK(d);
	/* pinned, so that the reads see the copy the writes hit (test_pin_here() without
	 * Check's assertions, which need a Check runner) */
	cpu_set_t one;
	int cpu = sched_getcpu();
	CHECK(cpu >= 0);
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	CHECK(sched_setaffinity(0, sizeof(one), &one) == 0);
	memcpy(&nan_bits, &nan, sizeof(nan));
	nan_bits |= 0x5a5;
	pcpu_this_write(d, -0.0);
	seen = pcpu_this_read(d);
	CHECK(seen == 0.0 && std::signbit(seen));
	double nan_payload;
	memcpy(&nan_payload, &nan_bits, sizeof(nan_payload));
	seen = pcpu_this_xchg(d, nan_payload);
	CHECK(seen == 0.0 && std::signbit(seen));
	seen = pcpu_this_xchg(d, 1.0 / 3.0);
	memcpy(&seen_bits, &seen, sizeof(seen));
	CHECK(seen_bits == nan_bits);
	CHECK(pcpu_this_read(d) == 1.0 / 3.0);
	pcpu_free(d);
}

int main()
{
	const char *env = getenv("PCPU_STRESS_SECONDS");
	int seconds = env ? atoi(env) : 3;
	int ncpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
	int want = test_expected_mode();
	struct sigaction sa;
	cpu_set_t all;

	if (want)
		CHECK(pcpu_cpu_mode() == want);
	if (seconds < 1)
		seconds = 1;
	CPU_ZERO(&all);
	CHECK(sched_getaffinity(0, sizeof(all), &all) == 0);
	check_double_copies();
	/* Workers inherit the main thread's affinity: widen it again after the pin. */
	CHECK(sched_setaffinity(0, sizeof(all), &all) == 0);

	c64 = pcpu_alloc_type(uint64_t);
	c32 = pcpu_alloc_type(uint32_t);
	c16 = pcpu_alloc_type(uint16_t);
	c8 = pcpu_alloc_type(uint8_t);
	pr = pcpu_alloc_type(pair);
	CHECK(c64 && c32 && c16 && c8 && pr);
	CHECK(pcpu_counter_init(&counter, 0) == 0);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);

	std::vector<worker> ws(static_cast<size_t>(2 * ncpus + 1));
	for (worker &w : ws)
		w.t = std::thread(work, &w);
	std::thread mig(migrate, &ws, ncpus);
	std::thread sig(signal_all, &ws);
	sleep((unsigned)seconds);
	stop.store(true, std::memory_order_relaxed);
	sig.join();
	mig.join();

	uint64_t loops = 0, handled_total = 0;
	for (worker &w : ws) {
		w.t.join();
		loops += w.loops;
		handled_total += w.handled;
	}
	int64_t down = 0, b = 0;
	uint32_t a = 0;
	unsigned c;
	pcpu_for_each_cpu(c) {
		down += *pcpu_ptr(s_down, c);
		b += pcpu_ptr(pr, c)->b;
		a += pcpu_ptr(pr, c)->a;
	}
	fprintf(stderr, "storm.cpp: mode %d, %zu workers on %d CPUs, %llu loops, %llu handlers\n",
		(int)pcpu_cpu_mode(), ws.size(), ncpus, (unsigned long long)loops,
		(unsigned long long)handled_total);
	CHECK(loops > 0);
	CHECK(sum_copies(c64) == loops + handled_total);
	CHECK(sum_copies(c32) == (uint32_t)(3 * loops + 5 * handled_total));
	CHECK(sum_copies(c16) == (uint16_t)loops);
	CHECK(sum_copies(c8) == (uint8_t)loops);
	CHECK(pcpu_counter_sum(&counter) == (int64_t)(2 * loops));
	CHECK(sum_copies(s_loops) == loops);
	CHECK(down == -5 * (int64_t)pcpu_nr_cpus() - (int64_t)loops);
	CHECK(b == -2 * (int64_t)loops);
	CHECK(a == (uint32_t)(7 * loops));
	pcpu_counter_destroy(&counter);
	pcpu_free(c64);
	pcpu_free(c32);
	pcpu_free(c16);
	pcpu_free(c8);
	pcpu_free(pr);
	return EXIT_SUCCESS;
}
