/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * front - per-CPU caches of objects, the mechanism (see front.h for the design).
 *
 * Block layout (one block per CPU index, block_size bytes, a multiple of 128 so that two
 * CPUs never share a cache line or its adjacent-line prefetch pair):
 *
 *   +0   u32 lock      nonzero while a drainer owns the block
 *   +4   u32 enabled   the block was set up (on the in-use list)
 *   +8   u64 tally[PCPU_FRONT_NR_TALLIES]  the caller's event counters
 *   then u64 lists     bit l: list l was enabled (its cap written); the others are never
 *                      read, so their pages stay untouched
 *   then, for each list l at list_off[l] (8-aligned):
 *   +0   u32 count     objects in the array: the commit of every sequence stores it
 *   +4   u32 cap       0 until the list is enabled: its first use takes the slow path
 *   +8   u64 hits      pops served here (see rseq_pop() for its precision)
 *   +16  u64 slot[cap]
 */
#include <errno.h>
#include <linux/membarrier.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <pcpu.h>

#include "chunk.h" /* PCPU_HANDLE_BIAS */
#include "cpu.h"
#include "front.h"
#include "util.h"

#define BLOCK_ALIGN 128
#define BLOCK_LISTS (8 + 8 * PCPU_FRONT_NR_TALLIES) /* offset of the enabled lists' mask */
#define BLOCK_HDR (BLOCK_LISTS + 8)
#define LIST_HDR 16

#if defined(__SANITIZE_THREAD__)
#define FRONT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define FRONT_TSAN 1
#endif
#endif

#ifdef FRONT_TSAN
/*
 * TSan cannot see the sequences: an object pushed by one thread and popped by another
 * would look unsynchronised, and so would everything the two threads did to its memory.
 * Pushing releases the object, popping acquires it, as the sequences' plain stores and
 * loads do on x86 (TSO) for the slot and count they use.
 */
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
/*
 * A handle lies outside the canonical range on purpose (PCPU_HANDLE_BIAS), where TSan's
 * shadow lookup faults (and its deadly-signal report then deadlocks on its own slot lock
 * in a forked child): synchronise on the object's unit-0 address instead, which is mapped.
 */
#define tsan_addr(obj)                                                                        \
	((void *)((uintptr_t)(obj) & ~(uintptr_t)(PCPU_HANDLE_BIAS | PCPU_HANDLE_COLOUR)))
#define tsan_acquire(obj) __tsan_acquire(tsan_addr(obj))
#define tsan_release(obj) __tsan_release(tsan_addr(obj))
#else
#define tsan_acquire(obj) ((void)0)
#define tsan_release(obj) ((void)0)
#endif

static size_t depot_bytes(unsigned nr_lists)
{
	return (size_t)nr_lists * PCPU_FRONT_DEPOT_CAP * sizeof(uintptr_t);
}

static inline char *block_of(const struct pcpu_front *f, unsigned idx)
{
	return f->blocks + (size_t)idx * f->block_size;
}

/*
 * list_on - was list @l of block @b enabled? Only those are read: on a kernel without the
 * shared zero page a read of an untouched list's page would allocate it.
 */
static inline bool list_on(char *b, unsigned l)
{
	return __atomic_load_n((uint64_t *)(b + BLOCK_LISTS), __ATOMIC_RELAXED) >> l & 1;
}

static inline uint32_t *list_count(const struct pcpu_front *f, char *b, unsigned l)
{
	return (uint32_t *)(b + f->list_off[l]);
}

static inline uint32_t *list_capp(const struct pcpu_front *f, char *b, unsigned l)
{
	return (uint32_t *)(b + f->list_off[l] + 4);
}

static inline uint64_t *list_hits(const struct pcpu_front *f, char *b, unsigned l)
{
	return (uint64_t *)(b + f->list_off[l] + 8);
}

static inline uintptr_t *list_slots(const struct pcpu_front *f, char *b, unsigned l)
{
	return (uintptr_t *)(b + f->list_off[l] + LIST_HDR);
}

/* ---------------------------------------------------------------------------------------- */
/* The sequences                                                                            */
/* ---------------------------------------------------------------------------------------- */

#if defined(__x86_64__) && defined(PCPU__ARCH_RSEQ)
#define FRONT_RSEQ 1
/*
 * Same shape, descriptor and abort handler (PCPU__X86_END) as the this-CPU operations
 * (<pcpu/arch/x86_64.h>): 1: arms rseq_cs, 2: is start_ip, 4: post_commit_ip, the abort
 * handler jumps back to 1:. The index is compared unsigned against the block count, so a
 * negative index (no rseq in this thread, getcpu mode) and an index beyond the blocks both
 * leave for the slow path. A locked block (a drainer owns it) does too.
 */
#define FRONT_BEGIN                                                                           \
	"1:\n\t"                                                                              \
	"leaq 3f(%%rip), %[t]\n\t"                                                            \
	"movq %[t], %%fs:(%[cs])\n\t"                                                         \
	"2:\n\t"                                                                              \
	"movslq %%fs:(%[idx]), %[t]\n\t"                                                      \
	"cmpq %[nb], %[t]\n\t"                                                                \
	"jae %l[slow]\n\t"                                                                    \
	"imulq %[bs], %[t]\n\t"                                                               \
	"addq %[base], %[t]\n\t"                                                              \
	"cmpl $0, (%[t])\n\t"                                                                 \
	"jne %l[slow]\n\t"

#define FRONT_IN(f, l)                                                                        \
	[cs] "r"(pcpu__hot.cs_off), [idx] "r"(pcpu__hot.idx_off),                             \
		[nb] "r"((uint64_t)(f)->nr_blocks), [bs] "r"((uint64_t)(f)->block_size),      \
		[base] "r"((f)->blocks), [lo] "r"((uint64_t)(f)->list_off[l])

/*
 * Pop: count - 1 is the top slot; the slot is loaded, the hit counted, and the new count
 * stored last (the commit). The hit counter is a plain add before the commit: an abort
 * right after it counts a hit twice, which costs nothing and happens only on preemption
 * or migration between two instructions. Return the object, or 0 (slow path needed).
 */
static inline __attribute__((always_inline)) uintptr_t rseq_pop(const struct pcpu_front *f,
								unsigned l)
{
	uint64_t t, c, r;

	__asm__ __volatile__ goto(FRONT_BEGIN
				  "movl (%[t], %[lo]), %k[c]\n\t"
				  "testl %k[c], %k[c]\n\t"
				  "jz %l[slow]\n\t"
				  "subl $1, %k[c]\n\t"
				  "leaq 16(%[t], %[lo]), %[r]\n\t"
				  "movq (%[r], %[c], 8), %[r]\n\t"
				  "addq $1, 8(%[t], %[lo])\n\t"
				  "movl %k[c], (%[t], %[lo])\n\t" /* commit */
				  PCPU__X86_END
				  : [t] "=&r"(t), [c] "=&r"(c), [r] "=&r"(r)
				  : FRONT_IN(f, l)
				  : "memory", "cc"
				  : slow);
	return r;
slow:
	return 0;
}

/*
 * Push: the slot above the count is written first (harmless if the sequence aborts: it is
 * above the count), then the count (the commit). Return true when stored.
 */
static inline __attribute__((always_inline)) bool rseq_push(const struct pcpu_front *f,
							    unsigned l, uintptr_t v)
{
	uint64_t t, c, r;

	__asm__ __volatile__ goto(FRONT_BEGIN
				  "movl (%[t], %[lo]), %k[c]\n\t"
				  "cmpl 4(%[t], %[lo]), %k[c]\n\t"
				  "jae %l[slow]\n\t"
				  "leaq 16(%[t], %[lo]), %[r]\n\t"
				  "movq %[v], (%[r], %[c], 8)\n\t"
				  "addl $1, %k[c]\n\t"
				  "movl %k[c], (%[t], %[lo])\n\t" /* commit */
				  PCPU__X86_END
				  : [t] "=&r"(t), [c] "=&r"(c), [r] "=&r"(r)
				  : [v] "r"(v), FRONT_IN(f, l)
				  : "memory", "cc"
				  : slow);
	return true;
slow:
	return false;
}

/*
 * The batch sequences are plain asm, not asm goto: GCC 12 used an asm goto output on the
 * goto path as if the asm had set it (wrong code seen in pop_slow()). Their bail-outs jump
 * to 7:, after the sequence, which returns 0; the block count and size come from memory,
 * as these need more registers.
 */
#define FRONT_BEGIN_NG                                                                        \
	"1:\n\t"                                                                              \
	"leaq 3f(%%rip), %[t]\n\t"                                                            \
	"movq %[t], %%fs:(%[cs])\n\t"                                                         \
	"2:\n\t"                                                                              \
	"movslq %%fs:(%[idx]), %[t]\n\t"                                                      \
	"cmpq %[nb], %[t]\n\t"                                                                \
	"jae 7f\n\t"                                                                          \
	"imulq %[bs], %[t]\n\t"                                                               \
	"addq %[base], %[t]\n\t"                                                              \
	"cmpl $0, (%[t])\n\t"                                                                 \
	"jne 7f\n\t"

#define FRONT_END_NG                                                                          \
	PCPU__X86_END                                                                         \
	"jmp 8f\n\t"                                                                          \
	"7:\n\t"                                                                              \
	"xorl %k[n], %k[n]\n\t"                                                               \
	"8:\n\t"

#define FRONT_IN_M(f, l)                                                                      \
	[cs] "r"(pcpu__hot.cs_off), [idx] "r"(pcpu__hot.idx_off), [nb] "m"((f)->nr_blocks64), \
		[bs] "m"((f)->block_size64), [base] "r"((f)->blocks),                          \
		[lo] "r"((uint64_t)(f)->list_off[l])

/*
 * Pop many: the top min(count, @max) objects into @out (lowest slot first), then the new
 * count (the commit). After an abort the copy is simply made again. No hits counted: the
 * allocator's own batches use this, not its callers. Return how many, 0 for the slow path.
 */
static inline __attribute__((always_inline)) size_t rseq_pop_many(const struct pcpu_front *f,
								  unsigned l, uintptr_t *out,
								  uint64_t max)
{
	uint64_t t, c, r, n, k, x;

	__asm__ __volatile__(FRONT_BEGIN_NG
			     "movl (%[t], %[lo]), %k[c]\n\t"
			     "movq %[max], %[n]\n\t"
			     "cmpq %[c], %[n]\n\t"
			     "cmovaq %[c], %[n]\n\t"
			     "testq %[n], %[n]\n\t"
			     "jz 7f\n\t"
			     "subq %[n], %[c]\n\t"
			     "leaq 16(%[t], %[lo]), %[r]\n\t"
			     "leaq (%[r], %[c], 8), %[r]\n\t"
			     "xorl %k[k], %k[k]\n\t"
			     "6:\n\t"
			     "movq (%[r], %[k], 8), %[x]\n\t"
			     "movq %[x], (%[out], %[k], 8)\n\t"
			     "addq $1, %[k]\n\t"
			     "cmpq %[n], %[k]\n\t"
			     "jb 6b\n\t"
			     "movl %k[c], (%[t], %[lo])\n\t" /* commit */
			     FRONT_END_NG
			     : [t] "=&r"(t), [c] "=&r"(c), [r] "=&r"(r), [n] "=&r"(n),
			       [k] "=&r"(k), [x] "=&r"(x)
			     : [out] "r"(out), [max] "m"(max), FRONT_IN_M(f, l)
			     : "memory", "cc");
	return n;
}

/*
 * Push many: min(room, @want) objects of @objs into the slots above the count (harmless if
 * the sequence aborts), then the new count (the commit). Return how many, 0: slow path.
 */
static inline __attribute__((always_inline)) size_t rseq_push_many(const struct pcpu_front *f,
								   unsigned l,
								   const uintptr_t *objs,
								   uint64_t want)
{
	uint64_t t, c, r, n, k, x;

	__asm__ __volatile__(FRONT_BEGIN_NG
			     "movl (%[t], %[lo]), %k[c]\n\t"
			     "movl 4(%[t], %[lo]), %k[n]\n\t"
			     "subq %[c], %[n]\n\t"
			     "cmpq %[want], %[n]\n\t"
			     "cmovaq %[want], %[n]\n\t"
			     "testq %[n], %[n]\n\t"
			     "jz 7f\n\t"
			     "leaq 16(%[t], %[lo]), %[r]\n\t"
			     "leaq (%[r], %[c], 8), %[r]\n\t"
			     "xorl %k[k], %k[k]\n\t"
			     "6:\n\t"
			     "movq (%[objs], %[k], 8), %[x]\n\t"
			     "movq %[x], (%[r], %[k], 8)\n\t"
			     "addq $1, %[k]\n\t"
			     "cmpq %[n], %[k]\n\t"
			     "jb 6b\n\t"
			     "addq %[n], %[c]\n\t"
			     "movl %k[c], (%[t], %[lo])\n\t" /* commit */
			     FRONT_END_NG
			     : [t] "=&r"(t), [c] "=&r"(c), [r] "=&r"(r), [n] "=&r"(n),
			       [k] "=&r"(k), [x] "=&r"(x)
			     : [objs] "r"(objs), [want] "m"(want), FRONT_IN_M(f, l)
			     : "memory", "cc");
	return n;
}

/* Tally: add 1 to counter @c of this CPU's block; the add is the commit. Needs it enabled. */
static inline __attribute__((always_inline)) bool rseq_tally(const struct pcpu_front *f,
							     unsigned c)
{
	uint64_t t;

	__asm__ __volatile__ goto("1:\n\t"
				  "leaq 3f(%%rip), %[t]\n\t"
				  "movq %[t], %%fs:(%[cs])\n\t"
				  "2:\n\t"
				  "movslq %%fs:(%[idx]), %[t]\n\t"
				  "cmpq %[nb], %[t]\n\t"
				  "jae %l[slow]\n\t"
				  "imulq %[bs], %[t]\n\t"
				  "addq %[base], %[t]\n\t"
				  "cmpl $0, 4(%[t])\n\t"
				  "je %l[slow]\n\t"
				  "addq $1, 8(%[t], %[c], 8)\n\t" /* commit */
				  PCPU__X86_END
				  : [t] "=&r"(t)
				  : [c] "r"((uint64_t)c), [cs] "r"(pcpu__hot.cs_off),
				    [idx] "r"(pcpu__hot.idx_off), [nb] "r"((uint64_t)f->nr_blocks),
				    [bs] "r"((uint64_t)f->block_size), [base] "r"(f->blocks)
				  : "memory", "cc"
				  : slow);
	return true;
slow:
	return false;
}
#else
/* No sequences here (AArch64 and others, or no asm goto): the depots serve everything. */
static inline bool rseq_tally(const struct pcpu_front *f, unsigned c)
{
	(void)f, (void)c;
	return false;
}

#define FRONT_RSEQ 0
static inline uintptr_t rseq_pop(const struct pcpu_front *f, unsigned l)
{
	(void)f, (void)l;
	return 0;
}

static inline bool rseq_push(const struct pcpu_front *f, unsigned l, uintptr_t v)
{
	(void)f, (void)l, (void)v;
	return false;
}

static inline size_t rseq_pop_many(const struct pcpu_front *f, unsigned l, uintptr_t *out,
				   uint64_t max)
{
	(void)f, (void)l, (void)out, (void)max;
	return 0;
}

static inline size_t rseq_push_many(const struct pcpu_front *f, unsigned l,
				    const uintptr_t *objs, uint64_t want)
{
	(void)f, (void)l, (void)objs, (void)want;
	return 0;
}
#endif

/* ---------------------------------------------------------------------------------------- */
/* Set-up                                                                                   */
/* ---------------------------------------------------------------------------------------- */

static int membarrier(int cmd, unsigned flags)
{
#ifdef __NR_membarrier
	return (int)syscall(__NR_membarrier, cmd, flags, 0);
#else
	(void)cmd, (void)flags;
	errno = ENOSYS;
	return -1;
#endif
}

static int mb_state; /* 0 unknown, 1 registered, -1 unavailable */

static bool mb_register(void)
{
	int cmds = membarrier(MEMBARRIER_CMD_QUERY, 0);

	if (cmds < 0 || !(cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ))
		return false;
	return membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ, 0) == 0;
}

bool pcpu_front_percpu_possible(void)
{
	enum pcpu_cpu_mode mode = pcpu_cpu_mode_now();

	if (!FRONT_RSEQ || (mode != PCPU_MODE_RSEQ_GLIBC && mode != PCPU_MODE_RSEQ_OWN))
		return false;
	if (!mb_state)
		mb_state = mb_register() ? 1 : -1;
	return mb_state > 0;
}

int pcpu_front_init(struct pcpu_front *f, unsigned nr_lists, const unsigned *cap,
		    unsigned nr_cpus, bool percpu)
{
	size_t off = BLOCK_HDR;

	memset(f, 0, sizeof(*f));
	if (!nr_lists || nr_lists > PCPU_FRONT_MAX_LISTS || !nr_cpus)
		return -EINVAL;
	f->nr_lists = nr_lists;
	for (unsigned l = 0; l < nr_lists; l++) {
		if (!cap[l] || cap[l] > (1u << 20))
			return -EINVAL;
		f->list_off[l] = (uint32_t)off;
		f->list_cap[l] = cap[l];
		off += LIST_HDR + (size_t)cap[l] * sizeof(uintptr_t);
	}
	f->block_size = ALIGN_UP(off, (size_t)BLOCK_ALIGN);
	f->block_size64 = f->block_size;
	f->percpu = percpu && FRONT_RSEQ;
	/*
	 * The depots: PCPU_FRONT_DEPOT_CAP objects each, in one reservation made now (no
	 * malloc later, in whichever thread; one mapping), which costs only what is used.
	 */
	f->depot_mem = pcpu_sys_mmap(depot_bytes(nr_lists), PROT_READ | PROT_WRITE);
	if (!f->depot_mem)
		return -ENOMEM;
	for (unsigned l = 0; l < nr_lists; l++) {
		f->depot[l].objs = (uintptr_t *)f->depot_mem + (size_t)l * PCPU_FRONT_DEPOT_CAP;
		f->depot[l].cap = PCPU_FRONT_DEPOT_CAP;
	}
	pthread_mutex_init(&f->lock, NULL);
	/* No blocks: every index is out of range and the sequences always bail out. */
	if (!f->percpu)
		return 0;
	f->nr_blocks = nr_cpus;
	f->nr_blocks64 = nr_cpus;
	f->in_use = pcpu_calloc(nr_cpus, sizeof(*f->in_use));
	if (!f->in_use) {
		pcpu_sys_munmap(f->depot_mem, depot_bytes(nr_lists));
		return -ENOMEM;
	}
	/*
	 * Accessible and zero from the start: a block costs a page only once a thread of
	 * its CPU enabled it (or, on a kernel without the zero page, read it).
	 */
	f->blocks = pcpu_sys_mmap(f->block_size * nr_cpus, PROT_READ | PROT_WRITE);
	if (!f->blocks) {
		pcpu_mfree(f->in_use);
		f->in_use = NULL;
		pcpu_sys_munmap(f->depot_mem, depot_bytes(nr_lists));
		return -ENOMEM;
	}
	return 0;
}

void pcpu_front_destroy(struct pcpu_front *f)
{
	if (f->blocks)
		munmap(f->blocks, f->block_size * f->nr_blocks);
	pcpu_mfree(f->in_use);
	if (f->depot_mem)
		pcpu_sys_munmap(f->depot_mem, depot_bytes(f->nr_lists));
	pthread_mutex_destroy(&f->lock);
	memset(f, 0, sizeof(*f));
}

/* ---------------------------------------------------------------------------------------- */
/* Depots (f->lock held)                                                                    */
/* ---------------------------------------------------------------------------------------- */

void pcpu_front_limit_depots(struct pcpu_front *f, size_t cap)
{
	for (unsigned l = 0; l < f->nr_lists; l++)
		if (cap < f->depot[l].cap)
			f->depot[l].cap = cap;
}

static int depot_reserve(struct pcpu_front_depot *d, size_t more)
{
	/* Fixed capacity: a full depot makes the caller keep its objects (see front.h). */
	return d->nr + more <= d->cap ? 0 : -ENOMEM;
}

/* Give memory back when a depot that grew large is mostly empty again (f->lock held). */
static void depot_shrink(struct pcpu_front *f, struct pcpu_front_depot *d)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	uintptr_t lo = ALIGN_UP((uintptr_t)(d->objs + d->nr) + page, page);
	uintptr_t hi = ALIGN_DOWN((uintptr_t)(d->objs + d->cap), page);

	(void)f;
	/* Pages past the objects held: zero again, no memory, still usable. */
	if (d->nr < d->cap / 4 && hi > lo + 16 * page)
		madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

/*
 * Enable list @l of the calling CPU's block, if it is not: the block first (put it on the
 * in-use list), then the list's capacity. Lists are enabled one by one, as they are used:
 * a block's pages cost memory only for the lists its CPU uses (a program of 8-byte objects
 * touches 2 of 40 lists; writing every capacity at once touched 19 pages of a block at 64
 * units). Return true when something was enabled now (the caller retries its sequence).
 */
static bool enable_list(struct pcpu_front *f, unsigned l)
{
	bool done = false;
	unsigned idx;
	char *b;

	if (!f->percpu)
		return false;
	idx = pcpu_cpu_current(); /* registers rseq for this thread in own mode */
	if (idx >= f->nr_blocks)
		return false;
	b = block_of(f, idx);
	if (__atomic_load_n((uint32_t *)(b + 4), __ATOMIC_ACQUIRE) && list_on(b, l))
		return false;
	pthread_mutex_lock(&f->lock);
	if (!*(uint32_t *)(b + 4)) {
		f->in_use[f->nr_in_use++] = idx;
		__atomic_store_n((uint32_t *)(b + 4), 1, __ATOMIC_RELEASE);
		done = true;
	}
	if (!list_on(b, l)) {
		__atomic_store_n(list_capp(f, b, l), f->list_cap[l], __ATOMIC_RELAXED);
		__atomic_or_fetch((uint64_t *)(b + BLOCK_LISTS), 1ULL << l, __ATOMIC_RELAXED);
		done = true;
	}
	pthread_mutex_unlock(&f->lock);
	return done;
}

/* ---------------------------------------------------------------------------------------- */
/* Pop and push                                                                             */
/* ---------------------------------------------------------------------------------------- */

static uintptr_t pop_slow(struct pcpu_front *f, unsigned l)
{
	struct pcpu_front_depot *d = &f->depot[l];
	uintptr_t obj = 0;

	if (enable_list(f, l)) {
		obj = rseq_pop(f, l);
		if (obj)
			return obj;
	}
	pthread_mutex_lock(&f->lock);
	d->misses++;
	if (d->nr) {
		size_t n = f->percpu ? f->list_cap[l] / 2 : 0;

		obj = d->objs[--d->nr];
		/* Half an array's worth to this CPU, in one sequence: the next pops hit. */
		if (n > d->nr)
			n = d->nr;
		if (n) {
			uintptr_t *from = d->objs + d->nr - n;
			size_t k = rseq_push_many(f, l, from, n);

			/* Fewer when other threads on this CPU filled it meanwhile. */
			memmove(from, from + k, (n - k) * sizeof(*from));
			d->nr -= k;
		}
		if (d->nr < d->low)
			d->low = d->nr;
	}
	pthread_mutex_unlock(&f->lock);
	return obj;
}

uintptr_t pcpu_front_pop(struct pcpu_front *f, unsigned l)
{
	uintptr_t obj = rseq_pop(f, l);

	if (unlikely(!obj))
		obj = pop_slow(f, l);
	if (obj)
		tsan_acquire(obj);
	return obj;
}

size_t pcpu_front_pop_many(struct pcpu_front *f, unsigned l, uintptr_t *out, size_t max)
{
	size_t n = 0;

	while (n < max) {
		size_t k = rseq_pop_many(f, l, out + n, max - n);
		uintptr_t obj;

		if (k) {
			n += k;
			continue;
		}
		obj = pop_slow(f, l); /* refills the array from the depot */
		if (!obj)
			break;
		out[n++] = obj;
	}
	for (size_t i = 0; i < n; i++)
		tsan_acquire(out[i]);
	return n;
}

static int push_slow(struct pcpu_front *f, unsigned l, uintptr_t obj);

size_t pcpu_front_push_many(struct pcpu_front *f, unsigned l, const uintptr_t *objs, size_t n)
{
	size_t done = 0;

	for (size_t i = 0; i < n; i++)
		tsan_release(objs[i]);
	while (done < n) {
		size_t k = rseq_push_many(f, l, objs + done, n - done);

		if (k) {
			done += k;
			continue;
		}
		if (push_slow(f, l, objs[done])) /* half the array to the depot */
			break;
		done++;
	}
	return done;
}

static int push_slow(struct pcpu_front *f, unsigned l, uintptr_t obj)
{
	struct pcpu_front_depot *d = &f->depot[l];
	size_t n = f->percpu ? f->list_cap[l] / 2 : 0;
	int err;

	if (enable_list(f, l) && rseq_push(f, l, obj))
		return 0; /* the array took it after all: the depot did not change */
	pthread_mutex_lock(&f->lock);
	err = depot_reserve(d, n + 1);
	if (err) {
		pthread_mutex_unlock(&f->lock);
		return err;
	}
	d->overflows++;
	/*
	 * Half the array to the depot in one sequence, so that the next pushes hit. Taken as
	 * a pop takes them, as drain_locked() does: whoever reads them from the depot under
	 * f->lock (pcpu_verify) then sees the writes made before they were pushed.
	 */
	if (n) {
		size_t k = rseq_pop_many(f, l, d->objs + d->nr, n);

		for (size_t i = 0; i < k; i++)
			tsan_acquire(d->objs[d->nr + i]);
		d->nr += k;
	}
	if (!rseq_push(f, l, obj))
		d->objs[d->nr++] = obj;
	pthread_mutex_unlock(&f->lock);
	return 0;
}

int pcpu_front_push(struct pcpu_front *f, unsigned l, uintptr_t obj)
{
	int err;

	tsan_release(obj);
	if (likely(rseq_push(f, l, obj)))
		return 0;
	err = push_slow(f, l, obj);
	return err ? err : 1;
}

void pcpu_front_tally(struct pcpu_front *f, unsigned c)
{
	/* Not this CPU's block (getcpu mode, first use): a shared counter, rarely. */
	if (unlikely(!rseq_tally(f, c)))
		__atomic_add_fetch(&f->tally_slow[c], 1, __ATOMIC_RELAXED);
}

uint64_t pcpu_front_tally_sum(struct pcpu_front *f, unsigned c)
{
	uint64_t n = __atomic_load_n(&f->tally_slow[c], __ATOMIC_RELAXED);

	pthread_mutex_lock(&f->lock);
	for (unsigned i = 0; i < f->nr_in_use; i++)
		n += __atomic_load_n((uint64_t *)(block_of(f, f->in_use[i]) + 8) + c,
				     __ATOMIC_RELAXED);
	pthread_mutex_unlock(&f->lock);
	return n;
}

size_t pcpu_front_depot_nr(struct pcpu_front *f, unsigned l)
{
	size_t n;

	pthread_mutex_lock(&f->lock);
	n = f->depot[l].nr;
	pthread_mutex_unlock(&f->lock);
	return n;
}

size_t pcpu_front_pop_depot(struct pcpu_front *f, unsigned l, uintptr_t *out, size_t max)
{
	struct pcpu_front_depot *d = &f->depot[l];
	size_t n;

	pthread_mutex_lock(&f->lock);
	n = d->nr < max ? d->nr : max;
	d->nr -= n;
	memcpy(out, d->objs + d->nr, n * sizeof(*out));
	if (d->nr < d->low)
		d->low = d->nr;
	depot_shrink(f, d);
	pthread_mutex_unlock(&f->lock);
	for (size_t i = 0; i < n; i++)
		tsan_acquire(out[i]);
	return n;
}

size_t pcpu_front_pop_cold(struct pcpu_front *f, unsigned l, uintptr_t *out, size_t max)
{
	struct pcpu_front_depot *d = &f->depot[l];
	size_t n;

	pthread_mutex_lock(&f->lock);
	n = d->low < d->nr ? d->low : d->nr;
	if (n > max)
		n = max;
	/* The bottom of the stack: the objects pushed longest ago. */
	memcpy(out, d->objs, n * sizeof(*out));
	memmove(d->objs, d->objs + n, (d->nr - n) * sizeof(*out));
	d->nr -= n;
	d->low -= n;
	depot_shrink(f, d);
	pthread_mutex_unlock(&f->lock);
	for (size_t i = 0; i < n; i++)
		tsan_acquire(out[i]);
	return n;
}

void pcpu_front_age(struct pcpu_front *f)
{
	pthread_mutex_lock(&f->lock);
	for (unsigned l = 0; l < f->nr_lists; l++)
		f->depot[l].low = f->depot[l].nr;
	pthread_mutex_unlock(&f->lock);
}

int pcpu_front_push_depot(struct pcpu_front *f, unsigned l, const uintptr_t *objs, size_t n)
{
	struct pcpu_front_depot *d = &f->depot[l];
	int err;

	for (size_t i = 0; i < n; i++)
		tsan_release(objs[i]);
	pthread_mutex_lock(&f->lock);
	err = depot_reserve(d, n);
	if (!err) {
		memcpy(d->objs + d->nr, objs, n * sizeof(*objs));
		d->nr += n;
	}
	pthread_mutex_unlock(&f->lock);
	return err;
}

/* ---------------------------------------------------------------------------------------- */
/* Draining, counting                                                                       */
/* ---------------------------------------------------------------------------------------- */

/* Move the arrays of the lists in @mask into the depots (f->lock held). */
static size_t drain_locked(struct pcpu_front *f, uint64_t mask)
{
	size_t moved = 0;

	if (!f->percpu || !f->nr_in_use)
		return 0;
	for (unsigned i = 0; i < f->nr_in_use; i++)
		__atomic_store_n((uint32_t *)block_of(f, f->in_use[i]), 1, __ATOMIC_RELAXED);
	/*
	 * Every sequence that read a lock word as clear has committed or will restart and
	 * read it set: from here the arrays are ours. Registration succeeded at init, and the
	 * command cannot fail for a registered process.
	 */
	if (membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ, 0))
		pcpu_warn("membarrier(PRIVATE_EXPEDITED_RSEQ) failed: %s", strerror(errno));
	for (unsigned i = 0; i < f->nr_in_use; i++) {
		char *b = block_of(f, f->in_use[i]);

		for (unsigned l = 0; l < f->nr_lists; l++) {
			struct pcpu_front_depot *d = &f->depot[l];
			uint32_t *cnt;
			uint32_t n;

			if (!(mask & (1ULL << l)) || !list_on(b, l))
				continue;
			cnt = list_count(f, b, l);
			n = __atomic_load_n(cnt, __ATOMIC_RELAXED);
			if (!n || depot_reserve(d, n))
				continue; /* out of memory: the objects stay where they are */
			memcpy(d->objs + d->nr, list_slots(f, b, l), n * sizeof(uintptr_t));
			/* The drainer takes the objects as a pop would (the fence is the sync). */
			for (uint32_t j = 0; j < n; j++)
				tsan_acquire(d->objs[d->nr + j]);
			d->nr += n;
			moved += n;
			__atomic_store_n(cnt, 0, __ATOMIC_RELAXED);
		}
	}
	/* Release: a sequence that reads the lock clear then sees the counts written above. */
	for (unsigned i = 0; i < f->nr_in_use; i++)
		__atomic_store_n((uint32_t *)block_of(f, f->in_use[i]), 0, __ATOMIC_RELEASE);
	return moved;
}

size_t pcpu_front_drain(struct pcpu_front *f, uint64_t mask)
{
	size_t n;

	pthread_mutex_lock(&f->lock);
	n = drain_locked(f, mask);
	pthread_mutex_unlock(&f->lock);
	return n;
}

size_t pcpu_front_count(struct pcpu_front *f, unsigned l)
{
	size_t n;

	pthread_mutex_lock(&f->lock);
	n = f->depot[l].nr;
	for (unsigned i = 0; i < f->nr_in_use; i++) {
		char *b = block_of(f, f->in_use[i]);

		if (list_on(b, l))
			n += __atomic_load_n(list_count(f, b, l), __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&f->lock);
	return n;
}

uint64_t pcpu_front_hits(struct pcpu_front *f, unsigned l)
{
	uint64_t n = 0;

	pthread_mutex_lock(&f->lock);
	for (unsigned i = 0; i < f->nr_in_use; i++) {
		char *b = block_of(f, f->in_use[i]);

		if (list_on(b, l))
			n += __atomic_load_n(list_hits(f, b, l), __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&f->lock);
	return n;
}

int pcpu_front_for_each(struct pcpu_front *f, uint64_t mask,
			int (*fn)(unsigned l, uintptr_t obj, void *arg), void (*done)(void *arg),
			void *arg)
{
	int ret = 0;

	pthread_mutex_lock(&f->lock);
	drain_locked(f, mask);
	for (unsigned l = 0; l < f->nr_lists && !ret; l++) {
		struct pcpu_front_depot *d = &f->depot[l];

		if (!(mask & (1ULL << l)))
			continue;
		for (size_t i = 0; i < d->nr && !ret; i++)
			ret = fn(l, d->objs[i], arg);
	}
	if (!ret && done)
		done(arg);
	pthread_mutex_unlock(&f->lock);
	return ret;
}

/* ---------------------------------------------------------------------------------------- */
/* fork                                                                                     */
/* ---------------------------------------------------------------------------------------- */

void pcpu_front_atfork_prepare(struct pcpu_front *f)
{
	pthread_mutex_lock(&f->lock);
}

void pcpu_front_atfork_parent(struct pcpu_front *f)
{
	pthread_mutex_unlock(&f->lock);
}

void pcpu_front_atfork_child(struct pcpu_front *f)
{
	/*
	 * The child is one thread, and the arrays are consistent (a sequence commits with
	 * one store). The membarrier registration belongs to the parent's mm: register the
	 * child; if that fails, empty the arrays now (nobody else runs) and use the depots.
	 */
	if (f->percpu && mb_state > 0 && !mb_register()) {
		for (unsigned i = 0; i < f->nr_in_use; i++) {
			char *b = block_of(f, f->in_use[i]);

			for (unsigned l = 0; l < f->nr_lists; l++) {
				struct pcpu_front_depot *d = &f->depot[l];
				uint32_t n = list_on(b, l) ? *list_count(f, b, l) : 0;

				if (!n || depot_reserve(d, n))
					continue;
				memcpy(d->objs + d->nr, list_slots(f, b, l), n * sizeof(uintptr_t));
				d->nr += n;
				*list_count(f, b, l) = 0;
			}
		}
		/* Objects that found no room in a depot are forgotten: leaked, never reused. */
		munmap(f->blocks, f->block_size * f->nr_blocks);
		f->blocks = NULL;
		f->nr_blocks = 0;
		f->nr_blocks64 = 0;
		f->nr_in_use = 0;
		f->percpu = false;
	}
	pthread_mutex_unlock(&f->lock);
}
