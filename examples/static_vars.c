/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * static_vars - per-CPU variables defined at file scope with PCPU_DEFINE, like the kernel's
 * DEFINE_PER_CPU: their storage is set up before main() runs, every copy starts at the
 * initial value given (zero when none), and the name is a handle for every per-CPU operation.
 * Exit 1 if a total is not what the threads did.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include <pcpu.h>

struct limits {
	int32_t low, high;
};

PCPU_DEFINE(uint64_t, nr_events);                        /* every copy 0 */
PCPU_DEFINE(int64_t, credit, 100);                       /* every copy 100 */
PCPU_DEFINE(struct limits, limits, {.low = -1, .high = 1}); /* a struct, initialised */

#define THREADS 4
#define ITERATIONS 200000

static void *worker(void *arg)
{
	(void)arg;
	for (int i = 0; i < ITERATIONS; i++) {
		pcpu_this_inc(nr_events);
		pcpu_this_sub(credit, 2);
		if (i % 1000 == 0)
			pcpu_this_add(&limits->high, 1);
	}
	return NULL;
}

int main(void)
{
	pthread_t threads[THREADS];
	unsigned cpu, n = pcpu_nr_cpus();
	uint64_t events = 0;
	int64_t credit_sum = 0, high_sum = 0;
	int bad = 0;

	/* Before any thread ran: every copy holds its initial value. */
	pcpu_for_each_cpu(cpu) {
		if (*pcpu_ptr(nr_events, cpu) != 0 || *pcpu_ptr(credit, cpu) != 100 ||
		    pcpu_ptr(limits, cpu)->low != -1 || pcpu_ptr(limits, cpu)->high != 1) {
			fprintf(stderr, "static_vars: CPU %u's copies do not start at their values\n",
				cpu);
			bad = 1;
		}
	}

	for (int t = 0; t < THREADS; t++)
		if (pthread_create(&threads[t], NULL, worker, NULL))
			return 1;
	for (int t = 0; t < THREADS; t++)
		pthread_join(threads[t], NULL);

	pcpu_for_each_cpu(cpu) {
		events += *pcpu_ptr(nr_events, cpu);
		credit_sum += *pcpu_ptr(credit, cpu);
		high_sum += pcpu_ptr(limits, cpu)->high;
	}
	printf("%u CPUs: nr_events %llu, credit %lld, limits.high summed %lld\n", n,
	       (unsigned long long)events, (long long)credit_sum, (long long)high_sum);
	printf("this CPU (%u): nr_events %llu\n", pcpu_this_cpu(),
	       (unsigned long long)pcpu_this_read(nr_events));

	if (events != (uint64_t)THREADS * ITERATIONS) {
		fprintf(stderr, "static_vars: nr_events %llu, expected %d\n",
			(unsigned long long)events, THREADS * ITERATIONS);
		bad = 1;
	}
	if (credit_sum != 100LL * n - 2LL * THREADS * ITERATIONS) {
		fprintf(stderr, "static_vars: credit %lld, expected %lld\n", (long long)credit_sum,
			100LL * n - 2LL * THREADS * ITERATIONS);
		bad = 1;
	}
	if (high_sum != (int64_t)n + THREADS * (ITERATIONS / 1000)) {
		fprintf(stderr, "static_vars: limits.high %lld, expected %lld\n", (long long)high_sum,
			(long long)n + THREADS * (ITERATIONS / 1000));
		bad = 1;
	}
	puts(bad ? "FAILED" : "all per-CPU variables exact");
	return bad;
}
