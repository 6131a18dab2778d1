/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * test_this_cpu - the this-CPU operations: every operation on every operand type, the
 * semantics of wraparound and of a failed cmpxchg, the kernel's lib/percpu_test.c cases,
 * the mode the environment implies, and exactness with several threads, signal handlers
 * and fork(). Built twice: with the inline assembly and with PCPU_NO_INLINE_ASM.
 *
 * Single-threaded semantics need one copy throughout, so those tests pin the thread to the
 * CPU it runs on (Check runs each test in its own child process).
 */
#include <check.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pcpu.h>

#include "mode_check.h"
#include "../check_run.h"

/* Sum of every copy, as uint64_t (wraps like the operand type once truncated). */
#define SUM_COPIES(p)                                                                         \
	({                                                                                    \
		uint64_t s_ = 0;                                                              \
		unsigned c_;                                                                  \
		pcpu_for_each_cpu(c_) s_ += (uint64_t)*pcpu_ptr((p), c_);                      \
		s_;                                                                           \
	})

START_TEST(test_mode)
{
	int want = test_expected_mode();
	enum pcpu_cpu_mode m = pcpu_cpu_mode();

	ck_assert(m == PCPU_MODE_RSEQ_GLIBC || m == PCPU_MODE_RSEQ_OWN || m == PCPU_MODE_GETCPU);
	if (want)
		ck_assert_int_eq(m, want);
	for (int i = 0; i < 1000; i++)
		ck_assert_uint_lt(pcpu_this_cpu(), pcpu_nr_cpus());
}
END_TEST

/*
 * Every operation on type T, pinned: the copy this CPU sees is the one pcpu_this_ptr()
 * names. MIN/MAX exercise wraparound in the width of T.
 */
#define INT_TYPE_TEST(name, T, MIN, MAX)                                                      \
START_TEST(name)                                                                              \
{                                                                                             \
	T *p = pcpu_alloc_type(T);                                                            \
	T *mine;                                                                              \
	T v;                                                                                  \
                                                                                              \
	ck_assert_ptr_nonnull(p);                                                             \
	test_pin_here();                                                                           \
	mine = pcpu_this_ptr(p);                                                              \
	ck_assert(pcpu_this_read(p) == 0);                                                    \
	pcpu_this_add(p, 5);                                                                  \
	ck_assert(*mine == 5);                                                                \
	pcpu_this_sub(p, 7);                                                                  \
	ck_assert(*mine == (T)-2);                                                            \
	pcpu_this_inc(p);                                                                     \
	pcpu_this_inc(p);                                                                     \
	pcpu_this_inc(p);                                                                     \
	ck_assert(*mine == 1);                                                                \
	pcpu_this_dec(p);                                                                     \
	ck_assert(pcpu_this_read(p) == 0);                                                    \
	/* wraparound at both ends */                                                         \
	pcpu_this_write(p, (T)(MAX));                                                         \
	ck_assert(pcpu_this_read(p) == (T)(MAX));                                             \
	pcpu_this_inc(p);                                                                     \
	ck_assert(*mine == (T)(MIN));                                                         \
	pcpu_this_dec(p);                                                                     \
	ck_assert(*mine == (T)(MAX));                                                         \
	ck_assert(pcpu_this_add_return(p, 2) == (T)((T)(MIN) + 1));                           \
	/* xchg returns the old value */                                                      \
	v = pcpu_this_xchg(p, (T)42);                                                         \
	ck_assert(v == (T)((T)(MIN) + 1));                                                    \
	ck_assert(*mine == 42);                                                               \
	/* cmpxchg: failure leaves the copy and returns what it saw */                        \
	v = pcpu_this_cmpxchg(p, (T)41, (T)7);                                                \
	ck_assert(v == 42);                                                                   \
	ck_assert(*mine == 42);                                                               \
	v = pcpu_this_cmpxchg(p, (T)42, (T)(MIN));                                            \
	ck_assert(v == 42);                                                                   \
	ck_assert(*mine == (T)(MIN));                                                         \
	v = pcpu_this_cmpxchg(p, (T)(MIN), (T)(MAX));                                         \
	ck_assert(v == (T)(MIN));                                                             \
	ck_assert(pcpu_this_read(p) == (T)(MAX));                                             \
	ck_assert(pcpu_this_add_return(p, -(T)1) == (T)((T)(MAX) - 1));                       \
	/* no other copy was touched */                                                       \
	{                                                                                     \
		unsigned c;                                                                   \
		pcpu_for_each_cpu(c) if (pcpu_ptr(p, c) != mine) ck_assert(*pcpu_ptr(p, c) == 0); \
	}                                                                                     \
	pcpu_free(p);                                                                         \
}                                                                                             \
END_TEST

INT_TYPE_TEST(test_int8, int8_t, INT8_MIN, INT8_MAX)
INT_TYPE_TEST(test_uint8, uint8_t, 0, UINT8_MAX)
INT_TYPE_TEST(test_int16, int16_t, INT16_MIN, INT16_MAX)
INT_TYPE_TEST(test_uint16, uint16_t, 0, UINT16_MAX)
INT_TYPE_TEST(test_int32, int32_t, INT32_MIN, INT32_MAX)
INT_TYPE_TEST(test_uint32, uint32_t, 0, UINT32_MAX)
INT_TYPE_TEST(test_int64, int64_t, INT64_MIN, INT64_MAX)
INT_TYPE_TEST(test_uint64, uint64_t, 0, UINT64_MAX)

/* Neighbours must survive sub-word operations (no widened store). */
START_TEST(test_subword_neighbours)
{
	struct quad {
		uint8_t a, b;
		uint16_t c;
		uint32_t d;
	};
	struct quad *q = pcpu_alloc_type(struct quad), *mine;

	ck_assert_ptr_nonnull(q);
	test_pin_here();
	mine = pcpu_this_ptr(q);
	mine->a = 0x11;
	mine->b = 0xff;
	mine->c = 0xffff;
	mine->d = 0x33333333;
	pcpu_this_inc(&q->b);
	pcpu_this_add(&q->c, 1);
	ck_assert_uint_eq(mine->a, 0x11);
	ck_assert_uint_eq(mine->b, 0);
	ck_assert_uint_eq(mine->c, 0);
	ck_assert_uint_eq(mine->d, 0x33333333);
	ck_assert_uint_eq(pcpu_this_xchg(&q->a, 0x22), 0x11);
	ck_assert_uint_eq(pcpu_this_cmpxchg(&q->c, 0, 0x8000), 0);
	ck_assert_uint_eq(mine->b, 0);
	ck_assert_uint_eq(mine->d, 0x33333333);
	ck_assert_uint_eq(mine->c, 0x8000);
	pcpu_free(q);
}
END_TEST

START_TEST(test_pointers)
{
	static int x, y;
	int **p = pcpu_alloc_type(int *);
	int **mine;
	const char *const *cp = (const char *const *)pcpu_alloc_type(char *);

	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_nonnull(cp);
	test_pin_here();
	mine = pcpu_this_ptr(p);
	ck_assert_ptr_null(pcpu_this_read(p));
	pcpu_this_write(p, &x);
	ck_assert_ptr_eq(*mine, &x);
	ck_assert_ptr_eq(pcpu_this_read(p), &x);
	ck_assert_ptr_eq(pcpu_this_xchg(p, &y), &x);
	ck_assert_ptr_eq(pcpu_this_cmpxchg(p, &x, NULL), &y); /* fails */
	ck_assert_ptr_eq(*mine, &y);
	ck_assert_ptr_eq(pcpu_this_cmpxchg(p, &y, NULL), &y);
	ck_assert_ptr_null(*mine);
	ck_assert_ptr_null(pcpu_this_read(cp)); /* a read through a const handle */
	pcpu_free(p);
	pcpu_free((void *)cp);
}
END_TEST

/* The cases of the kernel's lib/percpu_test.c, mirrored on plain variables. */
START_TEST(test_kernel_percpu_test)
{
	long *long_counter = pcpu_alloc_type(long);
	unsigned long *ulong_counter = pcpu_alloc_type(unsigned long);
	volatile unsigned int ui_one = 1;
	long l = 0;
	unsigned long ul = 0;

	ck_assert_ptr_nonnull(long_counter);
	ck_assert_ptr_nonnull(ulong_counter);
	test_pin_here();
#define CHECK(native, pcp, expected)                                                          \
	do {                                                                                  \
		ck_assert_msg((native) == (expected), "native %lx expected %lx",              \
			      (unsigned long)(native), (unsigned long)(expected));            \
		ck_assert_msg(pcpu_this_read(pcp) == (expected), "pcpu %lx expected %lx",     \
			      (unsigned long)pcpu_this_read(pcp), (unsigned long)(expected)); \
	} while (0)

	l += -1;
	pcpu_this_add(long_counter, -1);
	CHECK(l, long_counter, -1);
	l += 1;
	pcpu_this_add(long_counter, 1);
	CHECK(l, long_counter, 0);

	ul = 0;
	pcpu_this_write(ulong_counter, 0);
	ul += 1UL;
	pcpu_this_add(ulong_counter, 1UL);
	CHECK(ul, ulong_counter, 1);
	ul += -1UL;
	pcpu_this_add(ulong_counter, -1UL);
	CHECK(ul, ulong_counter, 0);
	ul += -(unsigned long)1;
	pcpu_this_add(ulong_counter, -(unsigned long)1);
	CHECK(ul, ulong_counter, -1UL);

	ul = 0;
	pcpu_this_write(ulong_counter, 0);
	ul--;
	pcpu_this_dec(ulong_counter);
	CHECK(ul, ulong_counter, -1UL);
	CHECK(ul, ulong_counter, ULONG_MAX);

	/* -(unsigned int)1 does not sign-extend: 0xffffffff, then 0x100000000 */
	l = 0;
	pcpu_this_write(long_counter, 0);
	l += -ui_one;
	pcpu_this_add(long_counter, -ui_one);
	CHECK(l, long_counter, 0xffffffff);
	l += ui_one;
	pcpu_this_add(long_counter, ui_one);
	CHECK(l, long_counter, (long)0x100000000LL);

	/* sub of an unsigned int from a long: negated in the long's type */
	l = 0;
	pcpu_this_write(long_counter, 0);
	l -= ui_one;
	pcpu_this_sub(long_counter, ui_one);
	CHECK(l, long_counter, -1);
	CHECK(l, long_counter, (long)ULONG_MAX);

	l = 1;
	pcpu_this_write(long_counter, 1);
	l -= ui_one;
	pcpu_this_sub(long_counter, ui_one);
	CHECK(l, long_counter, 0);

	ul = 0;
	pcpu_this_write(ulong_counter, 0);
	ul -= ui_one;
	pcpu_this_sub(ulong_counter, ui_one);
	CHECK(ul, ulong_counter, -1UL);
	ul += ui_one;
	pcpu_this_add(ulong_counter, ui_one);
	CHECK(ul, ulong_counter, 0);

	/* UINT_MAX through an unsigned long: the 64-bit width is kept */
	ul = 0;
	pcpu_this_write(ulong_counter, 0);
	ul += (unsigned long long)UINT32_MAX;
	pcpu_this_add(ulong_counter, (unsigned long long)UINT32_MAX);
	CHECK(ul, ulong_counter, 0xffffffffUL);

	/* sub_return from 3: 2, then 1 */
	ul = 3;
	pcpu_this_write(ulong_counter, 3);
	ul -= 1;
	ck_assert_uint_eq(pcpu_this_add_return(ulong_counter, -(unsigned long)1), 2);
	CHECK(ul, ulong_counter, 2);
	ck_assert_uint_eq(pcpu_this_add_return(ulong_counter, -(unsigned long)1), 1);
#undef CHECK
	pcpu_free(long_counter);
	pcpu_free(ulong_counter);
}
END_TEST

/*
 * The arithmetic of the architecture's sequences, whatever the mode: point the sequences at
 * a fake area of this thread whose index is always valid (here the last CPU), and check
 * each operation against that CPU's copy. The fake area is not registered, so nothing would
 * restart a sequence, which single-threaded code does not need. Under qemu-user (no rseq:
 * getcpu mode) this is what runs the commit paths of the AArch64 sequences.
 */
static __thread struct {
	uint32_t cpu_id_start, cpu_id;
	uint64_t rseq_cs;
	uint32_t more[4];
} fake_area __attribute__((aligned(32), unused));

#define FAKE_AREA_CHECK(T, MAX)                                                               \
	do {                                                                                  \
		T *p = pcpu_alloc_type(T), *c;                                                \
		ck_assert_ptr_nonnull(p);                                                     \
		c = pcpu_ptr(p, cpu);                                                         \
		pcpu_this_write(p, (T)(MAX));                                                 \
		ck_assert(*c == (T)(MAX));                                                    \
		pcpu_this_inc(p);                                                             \
		ck_assert(*c == (T)((uint64_t)(T)(MAX) + 1));                                           \
		pcpu_this_sub(p, 3);                                                          \
		ck_assert(pcpu_this_read(p) == (T)((uint64_t)(T)(MAX) - 2));                            \
		ck_assert(pcpu_this_add_return(p, 5) == (T)((uint64_t)(T)(MAX) + 3));                   \
		ck_assert(pcpu_this_xchg(p, (T)9) == (T)((uint64_t)(T)(MAX) + 3));                      \
		ck_assert(pcpu_this_cmpxchg(p, (T)8, (T)1) == 9);                             \
		ck_assert(*c == 9);                                                           \
		ck_assert(pcpu_this_cmpxchg(p, (T)9, (T)(MAX)) == 9);                         \
		ck_assert(*c == (T)(MAX));                                                    \
		ck_assert(SUM_COPIES(p) == (uint64_t)*c);                                     \
		pcpu_free(p);                                                                 \
	} while (0)

#ifdef PCPU__ARCH_RSEQ
/*
 * The hot block as the library sees it, writable. Callers see it const: the compiler may
 * keep it in registers for a whole function, or drop a store to it that it can see, so it
 * is written through a pointer the compiler cannot trace, and the checks run in a function
 * of their own, called after the block was changed.
 */
static struct pcpu__hot *hot_rw(void)
{
	struct pcpu__hot *w = (struct pcpu__hot *)&pcpu__hot;

	__asm__ __volatile__("" : "+r"(w) : : "memory");
	return w;
}

static __attribute__((noinline)) void fake_area_checks(unsigned cpu)
{
	int32_t *d = pcpu_alloc_type(int32_t);

	ck_assert_ptr_nonnull(d);
	FAKE_AREA_CHECK(int8_t, INT8_MAX);
	FAKE_AREA_CHECK(uint8_t, UINT8_MAX);
	FAKE_AREA_CHECK(int16_t, INT16_MAX);
	FAKE_AREA_CHECK(uint16_t, UINT16_MAX);
	FAKE_AREA_CHECK(int32_t, INT32_MAX);
	FAKE_AREA_CHECK(uint32_t, UINT32_MAX);
	FAKE_AREA_CHECK(int64_t, INT64_MAX);
	FAKE_AREA_CHECK(uint64_t, UINT64_MAX);
	/* the counter primitive: within (-batch, batch) it adds, else it refuses */
	ck_assert_int_eq(pcpu__add_bounded(d, 3, 4), 0);
	ck_assert_int_eq(*pcpu_ptr(d, cpu), 3);
	ck_assert_int_eq(pcpu__add_bounded(d, 1, 4), -1);
	ck_assert_int_eq(pcpu__add_bounded(d, -6, 4), 0);
	ck_assert_int_eq(*pcpu_ptr(d, cpu), -3);
	ck_assert_int_eq(pcpu__add_bounded(d, -1, 4), -1);
	ck_assert_int_eq(pcpu__add_bounded(d, INT32_MAX, INT32_MAX), 0);
	ck_assert_int_eq(*pcpu_ptr(d, cpu), INT32_MAX - 3);
	ck_assert_int_eq(pcpu__add_bounded(d, 3, INT32_MAX), -1);
	ck_assert_int_eq(*pcpu_ptr(d, cpu), INT32_MAX - 3);
	pcpu_free(d);
}
#endif

START_TEST(test_arch_sequences)
{
#ifdef PCPU__ARCH_RSEQ
	struct pcpu__hot saved;
	char *tp = __builtin_thread_pointer();
	unsigned cpu = pcpu_nr_cpus() - 1;

	struct pcpu__hot *w = hot_rw();

	saved = *w;
	fake_area.cpu_id = cpu;
	w->cs_off = (char *)&fake_area.rseq_cs - tp;
	w->idx_off = (char *)&fake_area.cpu_id - tp;
	w->atomic = 0; /* run the sequences in getcpu mode too */
	fake_area_checks(cpu);
	/* a negative index sends every operation to the slow path, which is still exact */
	fake_area.cpu_id = UINT32_MAX;
	*hot_rw() = saved;
#endif
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* Concurrency                                                                              */
/* ---------------------------------------------------------------------------------------- */

static uint64_t *shared_u64;
static uint32_t *shared_u32;
static int stop_flag;
static __thread uint64_t handled;

static void on_signal(int sig)
{
	(void)sig;
	/* Interrupts the thread in the middle of its own operations on the same copies. */
	pcpu_this_inc(shared_u64);
	pcpu_this_add(shared_u32, 3);
	handled++;
}

struct worker {
	pthread_t tid;
	uint64_t done;
};

static void *incrementer(void *arg)
{
	struct worker *w = arg;
	uint64_t n = 0;

	while (!__atomic_load_n(&stop_flag, __ATOMIC_RELAXED)) {
		pcpu_this_inc(shared_u64);
		pcpu_this_add(shared_u32, 3);
		n++;
	}
	w->done = n + handled;
	return NULL;
}

/* Threads on every CPU, signals landing in the middle: nothing lost. */
START_TEST(test_threads_and_signals)
{
	enum { NR = 5 };
	struct worker w[NR];
	struct sigaction sa = {.sa_handler = on_signal};
	uint64_t total = 0;

	shared_u64 = pcpu_alloc_type(uint64_t);
	shared_u32 = pcpu_alloc_type(uint32_t);
	ck_assert_ptr_nonnull(shared_u64);
	ck_assert_ptr_nonnull(shared_u32);
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
	stop_flag = 0;
	for (int i = 0; i < NR; i++)
		ck_assert_int_eq(pthread_create(&w[i].tid, NULL, incrementer, &w[i]), 0);
	for (int k = 0; k < 20000; k++)
		pthread_kill(w[k % NR].tid, SIGUSR1);
	usleep(50000);
	__atomic_store_n(&stop_flag, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < NR; i++) {
		pthread_join(w[i].tid, NULL);
		total += w[i].done;
	}
	/* join orders every update before the fold */
	ck_assert_uint_eq(SUM_COPIES(shared_u64), total);
	ck_assert_uint_eq((uint32_t)SUM_COPIES(shared_u32), (uint32_t)(3 * total));
	pcpu_free(shared_u64);
	pcpu_free(shared_u32);
}
END_TEST

static void *short_lived(void *arg)
{
	/* The first operation of a thread registers (own mode); its exit unregisters. */
	pcpu_this_inc((uint64_t *)arg);
	pcpu_this_add((uint64_t *)arg, 2);
	return NULL;
}

START_TEST(test_thread_churn)
{
	uint64_t *p = pcpu_alloc_type(uint64_t);

	ck_assert_ptr_nonnull(p);
	for (int round = 0; round < 200; round++) {
		pthread_t t[4];

		for (int i = 0; i < 4; i++)
			ck_assert_int_eq(pthread_create(&t[i], NULL, short_lived, p), 0);
		for (int i = 0; i < 4; i++)
			pthread_join(t[i], NULL);
	}
	ck_assert_uint_eq(SUM_COPIES(p), 200 * 4 * 3);
	pcpu_free(p);
}
END_TEST

/* The child keeps working (own mode: it inherits the calling thread's registration). */
START_TEST(test_fork)
{
	uint64_t *p = pcpu_alloc_type(uint64_t);
	pid_t pid;
	int status;

	ck_assert_ptr_nonnull(p);
	pcpu_this_inc(p);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int ok;

		for (int i = 0; i < 100000; i++)
			pcpu_this_inc(p);
		ok = SUM_COPIES(p) == 100001 && (int)pcpu_cpu_mode() == test_expected_mode();
		_exit(ok ? 0 : 1);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	ck_assert_uint_eq(SUM_COPIES(p), 1);
	pcpu_free(p);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("this_cpu");
	TCase *tc = tcase_create("ops");

	tcase_add_test(tc, test_mode);
	tcase_add_test(tc, test_int8);
	tcase_add_test(tc, test_uint8);
	tcase_add_test(tc, test_int16);
	tcase_add_test(tc, test_uint16);
	tcase_add_test(tc, test_int32);
	tcase_add_test(tc, test_uint32);
	tcase_add_test(tc, test_int64);
	tcase_add_test(tc, test_uint64);
	tcase_add_test(tc, test_subword_neighbours);
	tcase_add_test(tc, test_pointers);
	tcase_add_test(tc, test_kernel_percpu_test);
	tcase_add_test(tc, test_arch_sequences);
	suite_add_tcase(s, tc);
	tc = tcase_create("concurrency");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_threads_and_signals);
	tcase_add_test(tc, test_thread_churn);
	tcase_add_test(tc, test_fork);
	suite_add_tcase(s, tc);
	return pcpu_check_run(s, CK_FORK_GETENV);
}
