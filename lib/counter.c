/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * counter - the kernel's percpu_counter (lib/percpu_counter.c): a 64-bit count plus one
 * 32-bit delta per CPU. Adds go to this CPU's delta (a restartable sequence, inline in
 * <pcpu.h>); a delta that would reach the batch is folded into the count under the lock.
 * read() is the folded count alone; sum() adds every delta.
 *
 * Deltas are summed over every possible CPU: user space gets no CPU hotplug notification,
 * so the kernel's online-CPU and dying-CPU bookkeeping has no equivalent here.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>

#include <pcpu.h>

#include "util.h"

int32_t pcpu__counter_batch;

/* kernel: compute_batch_value() - max(32, 2 * nr_cpus). */
int32_t pcpu_counter_batch(void)
{
	unsigned n = pcpu_nr_cpus();

	return n > 16 ? (int32_t)(2 * n) : 32;
}

/* kernel: percpu_counter_init() */
int pcpu_counter_init(struct pcpu_counter *c, int64_t initial)
{
	if (!c) {
		errno = EINVAL;
		return -1;
	}
	c->counters = pcpu_alloc(sizeof(int32_t), sizeof(int32_t), 0);
	if (!c->counters)
		return -1; /* errno set by pcpu_alloc(): ENOMEM */
	if (pthread_mutex_init(&c->lock, NULL)) {
		pcpu_free(c->counters);
		c->counters = NULL;
		errno = ENOMEM;
		return -1;
	}
	c->count = initial;
	/* Every caller computes the same value: a relaxed store is enough. */
	__atomic_store_n(&pcpu__counter_batch, pcpu_counter_batch(), __ATOMIC_RELAXED);
	return 0;
}

/* kernel: percpu_counter_destroy() */
void pcpu_counter_destroy(struct pcpu_counter *c)
{
	if (!c || !c->counters)
		return;
	pcpu_free(c->counters);
	c->counters = NULL;
	pthread_mutex_destroy(&c->lock);
}

/*
 * The slow half of percpu_counter_add_batch(). Taking this CPU's delta with an
 * indivisible exchange against 0 makes the move exact wherever the thread runs next:
 * whatever the delta held when it was taken goes into the count, and adds that land on
 * the copy afterwards stay there. The count is written under the lock, so folds do not
 * lose each other; the relaxed store pairs with the lock-free read in pcpu_counter_read().
 */
void pcpu__counter_fold(struct pcpu_counter *c, int64_t v)
{
	int32_t delta;

	pthread_mutex_lock(&c->lock);
	delta = pcpu_this_xchg(c->counters, 0);
	__atomic_store_n(&c->count, c->count + delta + v, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&c->lock);
}

/* kernel: percpu_counter_add_batch(); (name) keeps the header's macro away. */
void(pcpu_counter_add_batch)(struct pcpu_counter *c, int64_t v, int32_t batch)
{
	pcpu__counter_add_batch(c, v, batch);
}

/* kernel: percpu_counter_add() */
void(pcpu_counter_add)(struct pcpu_counter *c, int64_t v)
{
	pcpu__counter_add_batch(c, v, __atomic_load_n(&pcpu__counter_batch, __ATOMIC_RELAXED));
}

/* kernel: percpu_counter_read() - racy by design; the relaxed load keeps it a clean race. */
int64_t pcpu_counter_read(const struct pcpu_counter *c)
{
	return __atomic_load_n(&c->count, __ATOMIC_RELAXED);
}

/* kernel: __percpu_counter_sum() - every possible CPU, see the top of the file. */
int64_t pcpu_counter_sum(struct pcpu_counter *c)
{
	unsigned cpu;
	int64_t ret;

	pthread_mutex_lock(&c->lock);
	ret = c->count;
	pcpu_for_each_cpu(cpu)
		ret += __atomic_load_n(pcpu_ptr(c->counters, cpu), __ATOMIC_RELAXED);
	pthread_mutex_unlock(&c->lock);
	return ret;
}

/* kernel: __percpu_counter_compare() with the default batch. */
int pcpu_counter_compare(struct pcpu_counter *c, int64_t rhs)
{
	int64_t count = pcpu_counter_read(c);
	int64_t slack = (int64_t)__atomic_load_n(&pcpu__counter_batch, __ATOMIC_RELAXED) *
			(int64_t)pcpu_nr_cpus();

	int64_t d;

	/* Beyond the error bound read() alone decides; else the exact sum does. */
	if (__builtin_sub_overflow(count, rhs, &d))
		return count > rhs ? 1 : -1;
	if (d > slack)
		return 1;
	if (d < -slack)
		return -1;
	count = pcpu_counter_sum(c);
	return count > rhs ? 1 : count < rhs ? -1 : 0;
}

/* kernel: percpu_counter_set() - not atomic against concurrent adds, as in Linux. */
void pcpu_counter_set(struct pcpu_counter *c, int64_t v)
{
	unsigned cpu;

	pthread_mutex_lock(&c->lock);
	pcpu_for_each_cpu(cpu)
		__atomic_store_n(pcpu_ptr(c->counters, cpu), 0, __ATOMIC_RELAXED);
	__atomic_store_n(&c->count, v, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&c->lock);
}
