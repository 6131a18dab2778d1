/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * cpu - which copy a thread uses and how it updates it.
 *
 * Three modes, chosen once by pcpu_cpu_init():
 *   PCPU_MODE_RSEQ_GLIBC  glibc registered an rseq area for every thread (glibc >= 2.35):
 *                         the inline sequences use it, at __rseq_offset from the thread
 *                         pointer.
 *   PCPU_MODE_RSEQ_OWN    glibc's registration is off (GLIBC_TUNABLES=glibc.pthread.rseq=0)
 *                         or absent: libpcpu registers its own TLS area per thread, lazily,
 *                         from the slow path of the first operation, and unregisters it at
 *                         thread exit.
 *   PCPU_MODE_GETCPU      no rseq (old kernel, seccomp, another registrant), forced by the
 *                         settings, or an aliased topology: every operation takes the slow
 *                         path and does an atomic read-modify-write on the copy getcpu()
 *                         names.
 *
 * The inline sequences (include/pcpu/arch/) know none of this: they read the index at
 * pcpu__hot.idx_off from the thread pointer and branch here when it is negative. In getcpu
 * mode it points at an area that is never registered, whose index stays -1, and callers
 * built against <pcpu.h> do not even run the sequence: pcpu__hot.atomic sends them to an
 * inline atomic update of the copy pcpu__getcpu() names.
 *
 * The mode is process-wide and never changes after initialisation, because the modes do not
 * mix: an rseq update is a plain load and store, and an atomic update of the same copy from
 * a thread on another CPU could land between them and be lost.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cpu.h"
#include "util.h"

/* ---------------------------------------------------------------------------------------- */
/* The hot globals                                                                          */
/* ---------------------------------------------------------------------------------------- */

_Static_assert(PCPU_MAX_CPUS * 8 == 65536, "update the size of pcpu__offset below");
#ifdef PCPU__COLOUR_BIT
/* PCPU__TAB() selects the second half by adding 0x10000 bytes: it must be one half. */
_Static_assert(PCPU_MAX_CPUS * 8 == 0x10000, "update PCPU__TAB() in <pcpu.h>");
#endif

/*
 * pcpu__hot (see <pcpu.h>) and the offset table it points to are read by every this-CPU
 * operation. The table is defined in assembly so its page offset is under control: per-CPU
 * units are page aligned and the first allocations in them sit at low page offsets; had the
 * table started at page offset 0, the load of offset[cpu] would share address bits 11:0
 * with the store to a counter just before it, and the CPU's store-forwarding check (which
 * compares only those bits first: "4K aliasing") would stall it. Measured with librseq: a
 * page-aligned rseq area against a counter at page offset 0 made adds 60% slower. Callers
 * reach the table only through pcpu__hot.offset, so a position-dependent executable never
 * copies it into its own .bss (a copy relocation would lose the placement).
 *
 * The table: a 4 KiB-aligned block in .bss (it costs nothing until touched), the table at
 * page offset 0xc40; two halves of 64 KiB, plain chunks' and coloured chunks' (PCPU__TAB()),
 * so both start at that page offset. pcpu__hot: 32 bytes in .data, pointing at the table
 * from the start.
 */
#if defined(__x86_64__)
#define PCPU__ASM_NOBITS "@nobits"
#define PCPU__ASM_OBJECT "@object"
#else
#define PCPU__ASM_NOBITS "%nobits"
#define PCPU__ASM_OBJECT "%object"
#endif
__asm__("\t.pushsection .bss.pcpu__table, \"aw\", " PCPU__ASM_NOBITS "\n"
	"\t.balign 4096\n"
	"\t.skip 0xc40\n"
	"\t.globl pcpu__offset\n"
	"\t.hidden pcpu__offset\n"
	"\t.type pcpu__offset, " PCPU__ASM_OBJECT "\n"
	"\t.size pcpu__offset, 131072\n"
	"pcpu__offset:\n"
	"\t.skip 131072\n"
	"\t.popsection\n"
	"\t.pushsection .data.pcpu__hot, \"aw\"\n"
	"\t.balign 32\n"
	"\t.globl pcpu__hot\n"
	"\t.type pcpu__hot, " PCPU__ASM_OBJECT "\n"
	"\t.size pcpu__hot, 32\n"
	"pcpu__hot:\n"
	"\t.quad pcpu__offset, 0, 0, 0\n"
	"\t.popsection\n");
_Static_assert(sizeof(struct pcpu__hot) == 32, "update the size of pcpu__hot above");

/* ---------------------------------------------------------------------------------------- */
/* rseq areas                                                                               */
/* ---------------------------------------------------------------------------------------- */

/* The kernel's struct rseq (uapi/linux/rseq.h), written out: older headers lack mm_cid. */
struct pcpu_rseq_abi {
	uint32_t cpu_id_start;
	uint32_t cpu_id;        /* +4: CPU number, or (u32)-1 / -2 when not registered */
	uint64_t rseq_cs;       /* +8: the critical section in progress */
	uint32_t flags;
	uint32_t node_id;       /* +20, Linux 6.3 */
	uint32_t mm_cid;        /* +24, Linux 6.3: concurrency id */
	uint32_t padding;
} __attribute__((aligned(32)));

#define RSEQ_OFF_CPU_ID 4
#define RSEQ_OFF_CS 8
#define RSEQ_OFF_MM_CID 24
#define RSEQ_FEATURE_MM_CID_END 28 /* AT_RSEQ_FEATURE_SIZE needed for mm_cid */
#define RSEQ_FLAG_UNREGISTER 1
#ifndef AT_RSEQ_FEATURE_SIZE
#define AT_RSEQ_FEATURE_SIZE 27
#endif

_Static_assert(offsetof(struct pcpu_rseq_abi, cpu_id) == RSEQ_OFF_CPU_ID, "rseq ABI");
_Static_assert(offsetof(struct pcpu_rseq_abi, rseq_cs) == RSEQ_OFF_CS, "rseq ABI");
_Static_assert(offsetof(struct pcpu_rseq_abi, mm_cid) == RSEQ_OFF_MM_CID, "rseq ABI");
_Static_assert(sizeof(struct pcpu_rseq_abi) == 32, "rseq ABI: the original 32-byte size");

/*
 * glibc's registration (2.35+). Weak, so the library still loads on an older glibc, where
 * they resolve to NULL. __rseq_size is the feature size glibc uses, 0 when it did not
 * register (tunable off, or the kernel refused).
 */
extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));

/*
 * Our own area, one per thread. initial-exec TLS: its offset from the thread pointer is
 * the same in every thread (which the single pcpu__hot.idx_off needs) and reaching it
 * never calls __tls_get_addr, which is not async-signal-safe. Every thread starts with
 * cpu_id and mm_cid at (u32)-1, so its first operation takes the slow path.
 * It is 32 bytes and 32-aligned: the length every kernel accepts.
 */
static __thread struct pcpu_rseq_abi own_area
	__attribute__((tls_model("initial-exec"))) = {
		.cpu_id = UINT32_MAX,
		.mm_cid = UINT32_MAX,
};
/* This thread's registration of own_area: 0 none, 1 registered, -1 refused. */
static __thread int own_state __attribute__((tls_model("initial-exec")));

static enum pcpu_cpu_mode cpu_mode;     /* 0 until pcpu_cpu_init() */
static enum pcpu_index_mode index_mode;
static const char *fallback_reason;     /* why index=cid fell back to cpu */
static unsigned cpu_nr = 1;             /* possible CPUs (the topology's) */
static pthread_key_t own_key;           /* its destructor unregisters own_area */
static bool glibc_cpu_ok;               /* glibc registered: its cpu_id is at glibc_cpu_off */
static ptrdiff_t glibc_cpu_off;
static bool own_key_ok;

/* The thread pointer that __rseq_offset and our offsets are relative to. */
static inline char *thread_pointer(void)
{
#if defined(__x86_64__)
	char *tp;

	/* %fs:0 holds the TCB's own address, which is the %fs base. */
	__asm__("movq %%fs:0, %0" : "=r"(tp));
	return tp;
#elif defined(__aarch64__)
	char *tp;

	__asm__("mrs %0, tpidr_el0" : "=r"(tp));
	return tp;
#else
	return (char *)__builtin_thread_pointer();
#endif
}

#ifdef PCPU__ARCH_RSEQ
/* The 32-bit index the inline sequences read, as they read it (sign-extended). */
static inline int32_t area_index(void)
{
	return __atomic_load_n((int32_t *)(thread_pointer() + pcpu__hot.idx_off),
			       __ATOMIC_RELAXED);
}

static long sys_rseq(void *area, uint32_t len, int flags, uint32_t sig)
{
#ifdef __NR_rseq
	return syscall(__NR_rseq, area, len, flags, sig);
#else
	(void)area, (void)len, (void)flags, (void)sig;
	errno = ENOSYS;
	return -1;
#endif
}

/*
 * own_register - register own_area for the calling thread. Return 0 or -errno.
 * Async-signal-safe (a handler may call it while the thread is inside it): the kernel
 * answers EBUSY when this very area is already registered with the same length and
 * signature, which covers a registration completed by an interrupting handler and the
 * child of fork(), which inherits its parent thread's registration. Another registrant's
 * area (librseq, a runtime) makes the kernel answer EINVAL: we then leave it alone.
 */
static int own_register(void)
{
	long ret;

	if (own_state == 1)
		return 0;
	if (own_state < 0)
		return -EBUSY;
	ret = sys_rseq(&own_area, sizeof(own_area), 0, PCPU__RSEQ_SIG);
	if (ret && errno != EBUSY) {
		int err = errno;

		own_state = -1;
		return -err;
	}
	own_state = 1;
	/* Any non-NULL value: it only arms the thread-exit destructor. */
	if (own_key_ok)
		pthread_setspecific(own_key, (void *)1);
	return 0;
}

/*
 * own_unregister - thread-exit destructor. Signals are blocked around it: once the kernel
 * forgets the area it resets mm_cid to 0, and a handler running an operation in cid mode
 * before we put -1 back would run a sequence nobody restarts. An operation after this (from
 * a later destructor) takes the slow path and registers again, which re-arms the key.
 */
static void own_unregister(void *arg)
{
	sigset_t all, old;

	(void)arg;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	if (own_state == 1)
		sys_rseq(&own_area, sizeof(own_area), RSEQ_FLAG_UNREGISTER, PCPU__RSEQ_SIG);
	own_state = 0;
	__atomic_store_n(&own_area.cpu_id, UINT32_MAX, __ATOMIC_RELAXED);
	__atomic_store_n(&own_area.mm_cid, UINT32_MAX, __ATOMIC_RELAXED);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static bool glibc_registered(void)
{
	const struct pcpu_rseq_abi *a;

	if (!&__rseq_size || !&__rseq_offset || __rseq_size == 0)
		return false;
	a = (const struct pcpu_rseq_abi *)(thread_pointer() + __rseq_offset);
	return (int32_t)__atomic_load_n(&a->cpu_id, __ATOMIC_RELAXED) >= 0;
}
#endif /* PCPU__ARCH_RSEQ */

/* Point the inline sequences at the area @area_off from the thread pointer. */
static void set_area(ptrdiff_t area_off, bool cid)
{
	pcpu__hot.cs_off = area_off + RSEQ_OFF_CS;
	pcpu__hot.idx_off = area_off + (cid ? RSEQ_OFF_MM_CID : RSEQ_OFF_CPU_ID);
}

static ptrdiff_t own_area_off(void)
{
	return (char *)&own_area - thread_pointer();
}

/*
 * Before pcpu_cpu_init() the offsets point at own_area, unregistered: any operation
 * takes the slow path (which initialises the library) instead of writing through
 * whatever the thread pointer offset 0 holds (on x86-64, the TCB's self pointer).
 */
__attribute__((constructor(101))) static void cpu_early(void)
{
	/* Same priority as PCPU_DEFINE's constructors, which may have initialised us. */
	if (!cpu_mode)
		set_area(own_area_off(), false);
}

/* ---------------------------------------------------------------------------------------- */
/* Mode selection                                                                           */
/* ---------------------------------------------------------------------------------------- */

static bool have_mm_cid(void)
{
	return getauxval(AT_RSEQ_FEATURE_SIZE) >= RSEQ_FEATURE_MM_CID_END;
}

int pcpu_cpu_init(const struct pcpu_settings *s, const struct pcpu_topology *t)
{
	enum pcpu_cpu_mode mode = PCPU_MODE_GETCPU;
	bool want_cid = s->index_mode == PCPU_INDEX_CID;
	ptrdiff_t area = own_area_off();

	cpu_nr = t->nr_cpus ? t->nr_cpus : 1;
	fallback_reason = NULL;
#ifdef PCPU__ARCH_RSEQ
	if (&__rseq_size && &__rseq_offset && __rseq_size) {
		glibc_cpu_off = __rseq_offset + RSEQ_OFF_CPU_ID;
		glibc_cpu_ok = true;
	}
#endif
	if (!own_key_ok && pthread_key_create(&own_key, own_unregister) == 0)
		own_key_ok = true;

#ifdef PCPU__ARCH_RSEQ
	if (s->cpu_mode == PCPU_MODE_GETCPU) {
		mode = PCPU_MODE_GETCPU;
	} else if (t->aliased) {
		/*
		 * A fake topology with fewer CPUs than the machine: two real CPUs share one
		 * copy, and an rseq sequence only excludes other threads of its own CPU. Only
		 * atomic updates are exact then, so the whole process uses getcpu mode.
		 */
		mode = PCPU_MODE_GETCPU;
		if (s->cpu_mode)
			pcpu_warn("cpu_mode ignored: the fake topology aliases CPUs, using getcpu");
	} else if (glibc_registered()) {
		mode = PCPU_MODE_RSEQ_GLIBC;
		area = __rseq_offset;
		/* Two registrations per thread are impossible: glibc's stays in use. */
		if (s->cpu_mode == PCPU_MODE_RSEQ_OWN)
			pcpu_warn("cpu_mode=own impossible: glibc registered rseq; using it");
	} else if (own_register() == 0) {
		mode = PCPU_MODE_RSEQ_OWN;
		if (s->cpu_mode == PCPU_MODE_RSEQ_GLIBC)
			pcpu_warn("cpu_mode=glibc impossible: glibc did not register rseq");
	} else {
		mode = PCPU_MODE_GETCPU;
		if (s->cpu_mode && s->cpu_mode != PCPU_MODE_GETCPU)
			pcpu_warn("rseq unavailable: using getcpu mode");
	}
#endif
	if (want_cid) {
		if (mode == PCPU_MODE_GETCPU)
			fallback_reason = "no rseq in getcpu mode: mm_cid unavailable";
		else if (!have_mm_cid())
			fallback_reason = "kernel does not provide rseq mm_cid (Linux < 6.3)";
	}
	index_mode = want_cid && !fallback_reason ? PCPU_INDEX_CID : PCPU_INDEX_CPU;
	set_area(area, index_mode == PCPU_INDEX_CID);
	pcpu__hot.atomic = mode == PCPU_MODE_GETCPU;
	/* Published to other threads by the library's init (pthread_once and a release). */
	cpu_mode = mode;
	return 0;
}

enum pcpu_cpu_mode pcpu_cpu_mode_now(void)
{
	return cpu_mode;
}

enum pcpu_index_mode pcpu_cpu_index_now(void)
{
	return index_mode ? index_mode : PCPU_INDEX_CPU;
}

const char *pcpu_cpu_fallback_reason(void)
{
	return fallback_reason;
}

enum pcpu_cpu_mode pcpu_cpu_mode(void)
{
	(void)pcpu_nr_cpus(); /* initialises the library */
	return cpu_mode ? cpu_mode : PCPU_MODE_GETCPU;
}

void pcpu_cpu_atfork_child(void)
{
#ifdef PCPU__ARCH_RSEQ
	/*
	 * fork() copies the calling thread's registration into the child (same area, same
	 * TLS address); the other threads do not exist there. Trust our state only if the
	 * kernel still fills the area; else forget it so the next operation registers again.
	 */
	if (cpu_mode == PCPU_MODE_RSEQ_OWN && own_state == 1 &&
	    (int32_t)__atomic_load_n(&own_area.cpu_id, __ATOMIC_RELAXED) < 0)
		own_state = 0;
	if (own_state < 0)
		own_state = 0;
#endif
}

void pcpu_cpu_fini(void)
{
#ifdef PCPU__ARCH_RSEQ
	/*
	 * The rseq_cs word of this thread's area (glibc's or ours) still points at the
	 * descriptor of its last sequence, in code about to be unmapped: the kernel reads it
	 * at the next preemption, fails, and kills the process (dlclose-own: 1 run in 10). A
	 * sequence ended is never resumed: zero is always right here.
	 */
	if (cpu_mode == PCPU_MODE_RSEQ_GLIBC || cpu_mode == PCPU_MODE_RSEQ_OWN)
		__atomic_store_n((uint64_t *)(thread_pointer() + pcpu__hot.cs_off), 0,
				 __ATOMIC_RELAXED);
	/* Our area is in this library's TLS, and the key's destructor in its code. */
	own_unregister(NULL);
	if (own_key_ok) {
		pthread_key_delete(own_key);
		own_key_ok = false;
	}
#endif
}

/* ---------------------------------------------------------------------------------------- */
/* Slow paths                                                                               */
/* ---------------------------------------------------------------------------------------- */

/*
 * rseq_ready - may this thread run the inline sequence now? True when its area has a
 * valid index (registering own_area first if that is our mode). False means: use the
 * atomic getcpu update. Never waits: a registration the kernel refuses is not retried.
 */
static bool rseq_ready(void)
{
	if (unlikely(!cpu_mode)) {
		int saved = errno; /* the slow paths leave errno alone */

		(void)pcpu_nr_cpus(); /* an operation before initialisation */
		errno = saved;
	}
#ifdef PCPU__ARCH_RSEQ
	if (cpu_mode == PCPU_MODE_RSEQ_OWN && own_state == 0) {
		int saved = errno, err = own_register();

		errno = saved;
		if (err < 0) {
			static bool warned;

			/*
			 * Another registrant owns this thread's rseq: its updates become
			 * atomic, which other threads' plain sequences on the same copy may
			 * overwrite. Say so once.
			 */
			if (!__atomic_exchange_n(&warned, true, __ATOMIC_RELAXED))
				pcpu_warn("a thread's rseq is registered elsewhere: "
					  "its per-CPU updates are atomic, not exact");
		}
	}
	if (cpu_mode == PCPU_MODE_RSEQ_GLIBC || cpu_mode == PCPU_MODE_RSEQ_OWN)
		return area_index() >= 0;
#endif
	return false;
}

/*
 * The copy index getcpu() names. Real CPU ids past the (fake) topology alias modulo
 * nr_cpus, as pcpu__offset[] does. glibc's sched_getcpu() reads its rseq area when it has
 * one, else the vDSO: no system call either way.
 */
static inline unsigned getcpu_index(void)
{
	int cpu = -1;
	unsigned c;

#ifdef PCPU__ARCH_RSEQ
	/*
	 * What sched_getcpu() would do, without its call and errno: read the CPU from glibc's
	 * area when glibc registered one (getcpu mode may be forced while it did).
	 */
	if (glibc_cpu_ok)
		cpu = (int32_t)__atomic_load_n((const uint32_t *)(thread_pointer() + glibc_cpu_off),
					       __ATOMIC_RELAXED);
#endif
	if (cpu < 0) {
		int saved = errno; /* the slow paths leave errno alone */

		cpu = sched_getcpu();
		errno = saved;
	}
	c = cpu < 0 ? 0 : (unsigned)cpu;

	if (unlikely(c >= cpu_nr))
		c %= cpu_nr;
	return c;
}

unsigned pcpu__getcpu(void)
{
	return getcpu_index();
}

static inline char *getcpu_copy(const void *h)
{
	/* Integer arithmetic: a handle lies outside the address space, so pointer arithmetic
	 * on it would overflow (undefined behaviour, and UBSan says so). */
	return (char *)((uintptr_t)h + PCPU__TAB(h)[getcpu_index()]);
}

/*
 * The atomic fallback uses relaxed ordering: the restartable sequences give no ordering
 * either (plain loads and stores), and per-CPU data only needs each update to be indivisible.
 * A reader folding copies orders itself (e.g. by joining the writers).
 */
#define ATOMIC_SWITCH(size, p, OP)                                                            \
	do {                                                                                  \
		switch (size) {                                                               \
		case 1: OP(uint8_t, p); break;                                                \
		case 2: OP(uint16_t, p); break;                                               \
		case 4: OP(uint32_t, p); break;                                               \
		default: OP(uint64_t, p); break;                                              \
		}                                                                             \
	} while (0)

void pcpu__slow_add(void *h, uint64_t v, unsigned size)
{

	if (rseq_ready()) {
		switch (size) {
		case 1: pcpu__add_8(h, (uint8_t)v); break;
		case 2: pcpu__add_16(h, (uint16_t)v); break;
		case 4: pcpu__add_32(h, (uint32_t)v); break;
		default: pcpu__add_64(h, v); break;
		}
	} else {
		char *p = getcpu_copy(h);
#define OP_ADD(T, p) __atomic_fetch_add((T *)(p), (T)v, __ATOMIC_RELAXED)
		ATOMIC_SWITCH(size, p, OP_ADD);
	}
}

void pcpu__slow_write(void *h, uint64_t v, unsigned size)
{

	if (rseq_ready()) {
		switch (size) {
		case 1: pcpu__write_8(h, (uint8_t)v); break;
		case 2: pcpu__write_16(h, (uint16_t)v); break;
		case 4: pcpu__write_32(h, (uint32_t)v); break;
		default: pcpu__write_64(h, v); break;
		}
	} else {
		char *p = getcpu_copy(h);
#define OP_WRITE(T, p) __atomic_store_n((T *)(p), (T)v, __ATOMIC_RELAXED)
		ATOMIC_SWITCH(size, p, OP_WRITE);
	}
}

uint64_t pcpu__slow_read(const void *h, unsigned size)
{
	uint64_t r;

	if (rseq_ready()) {
		switch (size) {
		case 1: r = pcpu__read_8(h); break;
		case 2: r = pcpu__read_16(h); break;
		case 4: r = pcpu__read_32(h); break;
		default: r = pcpu__read_64(h); break;
		}
	} else {
		char *p = getcpu_copy(h);
#define OP_READ(T, p) r = __atomic_load_n((T *)(p), __ATOMIC_RELAXED)
		ATOMIC_SWITCH(size, p, OP_READ);
	}
	return r;
}

uint64_t pcpu__slow_xchg(void *h, uint64_t v, unsigned size)
{
	uint64_t r;

	if (rseq_ready()) {
		switch (size) {
		case 1: r = pcpu__xchg_8(h, (uint8_t)v); break;
		case 2: r = pcpu__xchg_16(h, (uint16_t)v); break;
		case 4: r = pcpu__xchg_32(h, (uint32_t)v); break;
		default: r = pcpu__xchg_64(h, v); break;
		}
	} else {
		char *p = getcpu_copy(h);
#define OP_XCHG(T, p) r = __atomic_exchange_n((T *)(p), (T)v, __ATOMIC_RELAXED)
		ATOMIC_SWITCH(size, p, OP_XCHG);
	}
	return r;
}

uint64_t pcpu__slow_cmpxchg(void *h, uint64_t old, uint64_t nv, unsigned size)
{
	uint64_t r;

	if (rseq_ready()) {
		switch (size) {
		case 1: r = pcpu__cmpxchg_8(h, (uint8_t)old, (uint8_t)nv); break;
		case 2: r = pcpu__cmpxchg_16(h, (uint16_t)old, (uint16_t)nv); break;
		case 4: r = pcpu__cmpxchg_32(h, (uint32_t)old, (uint32_t)nv); break;
		default: r = pcpu__cmpxchg_64(h, old, nv); break;
		}
	} else {
		char *p = getcpu_copy(h);
		/* On failure the builtin stores the value seen into e: that is the result. */
#define OP_CMPXCHG(T, p)                                                                      \
	do {                                                                                  \
		T e = (T)old;                                                                 \
		__atomic_compare_exchange_n((T *)(p), &e, (T)nv, false, __ATOMIC_RELAXED,     \
					    __ATOMIC_RELAXED);                                \
		r = e;                                                                        \
	} while (0)
		ATOMIC_SWITCH(size, p, OP_CMPXCHG);
	}
	return r;
}

uint64_t pcpu__slow_add_return(void *h, uint64_t v, unsigned size)
{
	uint64_t r;

	if (rseq_ready()) {
		switch (size) {
		case 1: r = pcpu__add_return_8(h, (uint8_t)v); break;
		case 2: r = pcpu__add_return_16(h, (uint16_t)v); break;
		case 4: r = pcpu__add_return_32(h, (uint32_t)v); break;
		default: r = pcpu__add_return_64(h, v); break;
		}
	} else {
		char *p = getcpu_copy(h);
#define OP_ADD_RETURN(T, p) r = __atomic_add_fetch((T *)(p), (T)v, __ATOMIC_RELAXED)
		ATOMIC_SWITCH(size, p, OP_ADD_RETURN);
	}
	return r;
}

int pcpu__slow_add_bounded(int32_t *h, int64_t v, int32_t batch)
{
	int ret;

	if (rseq_ready()) {
		ret = pcpu__add_bounded(h, v, batch);
	} else {
		/* The same test as the sequence, as a compare-and-swap loop on the copy. */
		int32_t *p = (int32_t *)getcpu_copy(h);
		int32_t cur = __atomic_load_n(p, __ATOMIC_RELAXED);

		for (;;) {
			int64_t sum = (int64_t)cur + v;

			if (sum <= -(int64_t)batch || sum >= (int64_t)batch) {
				ret = -1;
				break;
			}
			if (__atomic_compare_exchange_n(p, &cur, (int32_t)sum, true,
							__ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
				ret = 0;
				break;
			}
		}
	}
	return ret;
}

/* ---------------------------------------------------------------------------------------- */
/* Which copy                                                                               */
/* ---------------------------------------------------------------------------------------- */

unsigned pcpu_cpu_current(void)
{
	unsigned c;

#ifdef PCPU__ARCH_RSEQ
	if (rseq_ready()) {
		c = (unsigned)area_index();
			return c;
	}
#endif
	if (unlikely(!cpu_nr)) {
		int saved = errno;

		(void)pcpu_nr_cpus();
		errno = saved;
	}
	c = cpu_nr ? getcpu_index() : 0;
	return c;
}

unsigned pcpu_this_cpu(void)
{
	return pcpu_cpu_current();
}
