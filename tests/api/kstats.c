/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * kstats - a small per-CPU statistics "module" written in the kernel's idiom and compiled
 * unchanged against <pcpu/kernel.h>, then driven by a storm of threads that keep changing
 * their CPU affinity, and checked exact.
 *
 * The first part is the module: only kernel names (DEFINE_PER_CPU, alloc_percpu,
 * this_cpu_*, per_cpu, per_cpu_ptr, for_each_possible_cpu, percpu_counter_*, u64, ...).
 * The second part is the user-space harness.
 */

/* ======================================================================================== */
/* The module                                                                               */
/* ======================================================================================== */

#include <pcpu/kernel.h>

struct kstats_pkt {
	u64 packets;
	u64 bytes;
	u32 drops;
	u16 last_len;
	u8 flags;
};

static DEFINE_PER_CPU(unsigned long, kstats_events);
static DEFINE_PER_CPU(long, kstats_balance) = 1000;
static DEFINE_PER_CPU(unsigned int, kstats_max_len);
static DEFINE_PER_CPU(u64, kstats_pending);
static DEFINE_PER_CPU(u64, kstats_seq);
static struct kstats_pkt __percpu *kstats_pkt;
static struct percpu_counter kstats_inflight;

static int kstats_init(void)
{
	int cpu, err;

	kstats_pkt = alloc_percpu(struct kstats_pkt);
	if (!kstats_pkt)
		return -ENOMEM;
	err = percpu_counter_init(&kstats_inflight, 0, GFP_KERNEL);
	if (err) {
		free_percpu(kstats_pkt);
		return err;
	}
	for_each_possible_cpu(cpu)
		per_cpu_ptr(kstats_pkt, cpu)->flags = 1;
	return 0;
}

static void kstats_exit(void)
{
	percpu_counter_destroy(&kstats_inflight);
	free_percpu(kstats_pkt);
}

/* A packet of @len bytes arrives. Return its per-CPU sequence number. */
static u64 kstats_rx(unsigned int len)
{
	unsigned int old, seen;

	this_cpu_inc(kstats_pkt->packets);
	this_cpu_add(kstats_pkt->bytes, len);
	this_cpu_write(kstats_pkt->last_len, (u16)len);
	this_cpu_inc(kstats_events);
	__this_cpu_sub(kstats_balance, 2);
	this_cpu_add(kstats_pending, len);
	percpu_counter_inc(&kstats_inflight);

	/* Keep the largest length seen, lock-free. */
	old = this_cpu_read(kstats_max_len);
	while (len > old) {
		seen = this_cpu_cmpxchg(kstats_max_len, old, len);
		if (seen == old)
			break;
		old = seen;
	}
	return this_cpu_inc_return(kstats_seq);
}

static void kstats_drop(void)
{
	raw_cpu_inc(kstats_pkt->drops);
	this_cpu_add(kstats_balance, 1);
}

static void kstats_complete(void)
{
	percpu_counter_dec(&kstats_inflight);
}

/* Move this CPU's pending byte count out; the caller accounts for it. */
static u64 kstats_drain(void)
{
	return this_cpu_xchg(kstats_pending, 0);
}

static u64 kstats_total_packets(void)
{
	u64 sum = 0;
	int cpu;

	for_each_possible_cpu(cpu)
		sum += per_cpu_ptr(kstats_pkt, cpu)->packets;
	return sum;
}

static u64 kstats_total_bytes(void)
{
	u64 sum = 0;
	int cpu;

	for_each_possible_cpu(cpu)
		sum += per_cpu_ptr(kstats_pkt, cpu)->bytes;
	return sum;
}

static u64 kstats_total_drops(void)
{
	u64 sum = 0;
	int cpu;

	for_each_possible_cpu(cpu)
		sum += per_cpu_ptr(kstats_pkt, cpu)->drops;
	return sum;
}

static unsigned long kstats_total_events(void)
{
	unsigned long sum = 0;
	unsigned int cpu;

	for_each_possible_cpu(cpu)
		sum += per_cpu(kstats_events, cpu);
	return sum;
}

static long kstats_total_balance(void)
{
	long sum = 0;
	int cpu;

	for_each_possible_cpu(cpu)
		sum += *per_cpu_ptr(&kstats_balance, cpu);
	return sum;
}

static unsigned int kstats_max(void)
{
	unsigned int max = 0;
	int cpu;

	for_each_possible_cpu(cpu)
		if (per_cpu(kstats_max_len, cpu) > max)
			max = per_cpu(kstats_max_len, cpu);
	return max;
}

static u64 kstats_pending_left(void)
{
	u64 sum = 0;
	int cpu;

	for_each_possible_cpu(cpu)
		sum += per_cpu(kstats_pending, cpu);
	return sum;
}

static u64 kstats_total_seq(void)
{
	u64 sum = 0;
	int cpu;

	for_each_possible_cpu(cpu)
		sum += per_cpu(kstats_seq, cpu);
	return sum;
}

/* ======================================================================================== */
/* The harness                                                                              */
/* ======================================================================================== */

#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

#include "mode_check.h"
#include "test_util.h"
#include "../check_run.h"

enum { THREADS = 12, ITERS = 300000 };
static long iters; /* ITERS, scaled for emulators (test_scaled()) */

struct worker {
	pthread_t t;
	unsigned seed;
	u64 packets, bytes, drops, completes, drained, seq_max;
	unsigned int max_len;
};

static int allowed_cpus[CPU_SETSIZE], nr_allowed;

static unsigned rnd(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

/* Move to a random allowed CPU, or let the scheduler pick among all of them. */
static void hop(unsigned *seed)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	if (rnd(seed) % 4 == 0) {
		for (int i = 0; i < nr_allowed; i++)
			CPU_SET(allowed_cpus[i], &set);
	} else {
		CPU_SET(allowed_cpus[rnd(seed) % (unsigned)nr_allowed], &set);
	}
	sched_setaffinity(0, sizeof(set), &set);
}

static void *storm(void *arg)
{
	struct worker *w = arg;

	for (long i = 0; i < iters; i++) {
		unsigned len = 1 + rnd(&w->seed) % 1500;
		u64 seq;

		if (i % 256 == 0)
			hop(&w->seed);
		seq = kstats_rx(len);
		if (seq > w->seq_max)
			w->seq_max = seq;
		w->packets++;
		w->bytes += len;
		if (len > w->max_len)
			w->max_len = len;
		if (len % 7 == 0) {
			kstats_drop();
			w->drops++;
		}
		if (len % 3) {
			kstats_complete();
			w->completes++;
		}
		if (i % 97 == 0)
			w->drained += kstats_drain();
	}
	return NULL;
}

START_TEST(test_mode)
{
	test_check_mode();
}
END_TEST

START_TEST(test_module_storm)
{
	struct worker w[THREADS] = {0};
	u64 packets = 0, bytes = 0, drops = 0, completes = 0, drained = 0;
	unsigned int max_len = 0;
	long n = (long)num_possible_cpus();
	cpu_set_t set;

	ck_assert_int_eq(sched_getaffinity(0, sizeof(set), &set), 0);
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &set))
			allowed_cpus[nr_allowed++] = c;
	ck_assert_int_gt(nr_allowed, 0);
	iters = test_scaled(ITERS, 3000);

	ck_assert_int_eq(kstats_init(), 0);
	ck_assert_uint_eq(kstats_total_events(), 0);
	ck_assert_int_eq(kstats_total_balance(), 1000 * n);
	for (int i = 0; i < THREADS; i++) {
		w[i].seed = 1234u + (unsigned)i;
		ck_assert_int_eq(pthread_create(&w[i].t, NULL, storm, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(w[i].t, NULL);
		packets += w[i].packets;
		bytes += w[i].bytes;
		drops += w[i].drops;
		completes += w[i].completes;
		drained += w[i].drained;
		if (w[i].max_len > max_len)
			max_len = w[i].max_len;
	}
	ck_assert_uint_eq(packets, (u64)THREADS * iters);
	ck_assert_uint_eq(kstats_total_packets(), packets);
	ck_assert_uint_eq(kstats_total_bytes(), bytes);
	ck_assert_uint_eq(kstats_total_drops(), drops);
	ck_assert_uint_eq(kstats_total_events(), packets);
	ck_assert_uint_eq(kstats_total_seq(), packets);
	ck_assert_int_eq(kstats_total_balance(), 1000 * n - 2 * (long)packets + (long)drops);
	ck_assert_uint_eq(kstats_max(), max_len);
	ck_assert_uint_eq(kstats_pending_left() + drained, bytes);
	ck_assert_int_eq(percpu_counter_sum(&kstats_inflight), (s64)(packets - completes));
	ck_assert_int_eq(percpu_counter_compare(&kstats_inflight, (s64)(packets - completes)),
			 0);
	/* The flags set at init survived on every CPU. */
	for (int cpu = 0; cpu < n; cpu++)
		ck_assert_uint_eq(per_cpu_ptr(kstats_pkt, cpu)->flags, 1);
	kstats_exit();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("kstats");
	TCase *tc = tcase_create("kstats");

	tcase_set_timeout(tc, 280);
	tcase_add_test(tc, test_mode);
	tcase_add_test(tc, test_module_storm);
	suite_add_tcase(s, tc);
	return pcpu_check_run(s, CK_FORK_GETENV);
}
