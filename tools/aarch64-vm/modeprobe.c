/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * modeprobe - print what libpcpu chose in this process and prove its hot path works there.
 * Built by tools/aarch64-vm/run with the cross compiler and run in the guest before the
 * tests, once per environment the tests use. Prints one line:
 *
 *   mode=rseq-glibc index=cpu cpus=2 glibc_rseq_size=32 rseq_ok=1 sum=ok ...
 *
 * rseq_ok: the thread's rseq area holds a CPU (or concurrency id) the kernel wrote, so the
 * inline sequences take their commit path, not the slow path. The sum check: THREADS
 * threads each add 1 ITERS times through pcpu_this_inc(); the copies must add up exactly.
 * Exit 0 when the sum is exact, 1 otherwise.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include <pcpu.h>

enum { THREADS = 4, ITERS = 200000 };

extern const unsigned int __rseq_size __attribute__((weak));

static uint64_t *counter;

static void *worker(void *arg)
{
	(void)arg;
	for (int i = 0; i < ITERS; i++)
		pcpu_this_inc(counter);
	return NULL;
}

static const char *mode_name(int m)
{
	switch (m) {
	case PCPU_MODE_RSEQ_GLIBC:
		return "rseq-glibc";
	case PCPU_MODE_RSEQ_OWN:
		return "rseq-own";
	case PCPU_MODE_GETCPU:
		return "getcpu";
	}
	return "?";
}

int main(void)
{
	struct pcpu_stats st;
	pthread_t t[THREADS];
	struct utsname u;
	uint64_t sum = 0;
	unsigned cpu;
	int32_t idx;

	memset(&st, 0, sizeof(st));
	st.size = sizeof(st);
	counter = pcpu_alloc_type(uint64_t);
	if (!counter || pcpu_stats_get(&st)) {
		perror("modeprobe");
		return 1;
	}
	/* One operation so that own-registration mode has registered this thread. */
	pcpu_this_inc(counter);
	idx = *(volatile int32_t *)((char *)__builtin_thread_pointer() + pcpu__hot.idx_off);
	for (int i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, worker, NULL);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	pcpu_for_each_cpu(cpu)
		sum += *pcpu_ptr(counter, cpu);
	uname(&u);
	printf("kernel=%s mode=%s index=%s%s cpus=%u glibc_rseq_size=%u rseq_ok=%d "
	       "sum=%s (%llu of %llu)\n",
	       u.release, mode_name(pcpu_cpu_mode()),
	       st.index_mode == PCPU_INDEX_CID ? "cid" : "cpu",
	       st.index_fallback ? "(fallback)" : "", pcpu_nr_cpus(),
	       &__rseq_size ? __rseq_size : 0, idx >= 0, sum == 1 + (uint64_t)THREADS * ITERS ?
	       "ok" : "WRONG", (unsigned long long)sum,
	       (unsigned long long)(1 + (uint64_t)THREADS * ITERS));
	return sum == 1 + (uint64_t)THREADS * ITERS ? 0 : 1;
}
