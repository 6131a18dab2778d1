/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * counters - per-CPU counters in a multi-threaded program.
 *
 * Several threads count events three ways at once: a plain per-CPU integer bumped with
 * pcpu_this_inc(), a per-CPU struct whose fields are bumped with pcpu_this_add(), and a
 * struct pcpu_counter (the kernel's percpu_counter: per-CPU deltas folded in batches).
 * The main thread folds the copies and checks every total is exact; exit 1 if one is not.
 *
 *   counters [THREADS [ITERATIONS]]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include <pcpu.h>

struct req_stats {
	uint64_t requests;
	uint64_t bytes;
	int64_t balance; /* goes up and down: signed copies that sum to the truth */
};

static uint64_t __pcpu *events;        /* one uint64_t per CPU */
static struct req_stats __pcpu *stats; /* one struct per CPU */
static struct pcpu_counter hits;       /* percpu_counter semantics */
static long iterations = 1000000;

static void *worker(void *arg)
{
	long id = (long)arg;

	for (long i = 0; i < iterations; i++) {
		/* Each is one restartable sequence on this CPU's copy: no lock, no atomic. */
		pcpu_this_inc(events);
		pcpu_this_inc(&stats->requests);
		pcpu_this_add(&stats->bytes, (uint64_t)(i & 1023));
		if (i & 1)
			pcpu_this_dec(&stats->balance);
		else
			pcpu_this_inc(&stats->balance);
		pcpu_counter_add(&hits, 1);
	}
	(void)id;
	return NULL;
}

int main(int argc, char **argv)
{
	long nthreads = argc > 1 ? atol(argv[1]) : 4;
	uint64_t nevents = 0, nrequests = 0, nbytes = 0, want_bytes = 0;
	int64_t balance = 0, approx;
	pthread_t *threads;
	unsigned cpu;
	int bad = 0;

	if (argc > 2)
		iterations = atol(argv[2]);
	if (nthreads < 1 || nthreads > 1024 || iterations < 0) {
		fprintf(stderr, "usage: counters [THREADS [ITERATIONS]]\n");
		return 2;
	}
	events = pcpu_alloc_type(uint64_t);
	stats = pcpu_alloc_type(struct req_stats);
	if (!events || !stats || pcpu_counter_init(&hits, 0)) {
		perror("counters: allocation");
		return 1;
	}
	threads = calloc((size_t)nthreads, sizeof(*threads));
	if (!threads)
		return 1;
	for (long t = 0; t < nthreads; t++)
		if (pthread_create(&threads[t], NULL, worker, (void *)t)) {
			fprintf(stderr, "counters: pthread_create failed\n");
			return 1;
		}
	for (long t = 0; t < nthreads; t++)
		pthread_join(threads[t], NULL);

	/* Every writer is done: folding the copies gives exact totals. */
	pcpu_for_each_cpu(cpu) {
		const struct req_stats *s = pcpu_ptr(stats, cpu);

		nevents += *pcpu_ptr(events, cpu);
		nrequests += s->requests;
		nbytes += s->bytes;
		balance += s->balance;
	}
	for (long i = 0; i < iterations; i++)
		want_bytes += (uint64_t)(i & 1023);
	want_bytes *= (uint64_t)nthreads;
	approx = pcpu_counter_read(&hits);

	printf("%ld threads x %ld iterations on %u possible CPUs\n", nthreads, iterations,
	       pcpu_nr_cpus());
	printf("events    %llu\n", (unsigned long long)nevents);
	printf("requests  %llu\n", (unsigned long long)nrequests);
	printf("bytes     %llu\n", (unsigned long long)nbytes);
	printf("balance   %lld\n", (long long)balance);
	printf("hits      %lld (pcpu_counter_sum), %lld (pcpu_counter_read, approximate)\n",
	       (long long)pcpu_counter_sum(&hits), (long long)approx);

	uint64_t want = (uint64_t)nthreads * (uint64_t)iterations;
	int64_t want_balance = (int64_t)nthreads * (iterations & 1);

	if (nevents != want || nrequests != want) {
		fprintf(stderr, "counters: events %llu, requests %llu, expected %llu\n",
			(unsigned long long)nevents, (unsigned long long)nrequests,
			(unsigned long long)want);
		bad = 1;
	}
	if (nbytes != want_bytes || balance != want_balance) {
		fprintf(stderr, "counters: bytes %llu (expected %llu), balance %lld (expected %lld)\n",
			(unsigned long long)nbytes, (unsigned long long)want_bytes,
			(long long)balance, (long long)want_balance);
		bad = 1;
	}
	if ((uint64_t)pcpu_counter_sum(&hits) != want || pcpu_counter_compare(&hits, (int64_t)want)) {
		fprintf(stderr, "counters: pcpu_counter_sum %lld, expected %llu\n",
			(long long)pcpu_counter_sum(&hits), (unsigned long long)want);
		bad = 1;
	}
	/* read() may lag by at most batch * nr_cpus. */
	if (llabs(approx - (int64_t)want) > (long long)pcpu_counter_batch() * pcpu_nr_cpus()) {
		fprintf(stderr, "counters: pcpu_counter_read %lld too far from %llu\n",
			(long long)approx, (unsigned long long)want);
		bad = 1;
	}
	puts(bad ? "FAILED: totals are not exact" : "all totals exact");

	pcpu_counter_destroy(&hits);
	pcpu_free(stats);
	pcpu_free(events);
	free(threads);
	return bad;
}
