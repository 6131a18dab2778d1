/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/* demo - what libpcpu does, in a few lines. */
#include <pthread.h>
#include <stdio.h>

#include <pcpu.h>

static uint64_t __pcpu *hits; /* one uint64_t per CPU: a handle, never dereferenced */

static void *bump(void *arg)
{
	for (int i = 0; i < 1000000; i++)
		pcpu_this_inc(hits); /* this CPU's copy: no lock, no atomic */
	return arg;
}

int main(void)
{
	static const char *const mode[] = {"?", "rseq (glibc)", "rseq (own)", "getcpu + atomic"};
	pthread_t t[4];
	uint64_t total = 0;
	unsigned cpu;

	hits = pcpu_alloc_type(uint64_t);
	if (!hits)
		return 1;
	printf("libpcpu: %u possible CPUs, this-CPU ops use %s\n", pcpu_nr_cpus(),
	       mode[pcpu_cpu_mode() <= 3 ? pcpu_cpu_mode() : 0]);
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, bump, NULL);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	pcpu_for_each_cpu(cpu) {
		if (*pcpu_ptr(hits, cpu))
			printf("  CPU %u's copy: %llu\n", cpu, (unsigned long long)*pcpu_ptr(hits, cpu));
		total += *pcpu_ptr(hits, cpu);
	}
	printf("4 threads x 1000000 increments, summed over CPUs: %llu\n", (unsigned long long)total);
	pcpu_free(hits);
	return total != 4000000;
}
