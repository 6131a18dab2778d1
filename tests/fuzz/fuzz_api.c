/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * fuzz_api - libFuzzer harness for the whole public API, against a reference model.
 *
 * The model is a table of live handles, each with its size, alignment and a tag: every
 * byte i of CPU c's copy must equal pattern(tag, c, i), except the first PREFIX bytes of
 * the copy this thread writes with the this-CPU operations, which the model keeps as plain
 * bytes. The thread is pinned to one CPU in LLVMFuzzerInitialize, so that copy is always
 * the same one (pcpu_this_cpu() is checked to agree before and after each operation).
 * Every result is checked (NULL/errno, zeroed copies, alignment, values returned by the
 * this-CPU operations, counter sums, statistics) and pcpu_verify() runs after every step;
 * any disagreement prints one line and traps. Each input starts and ends with no live
 * handle, so inputs are independent of each other (the library's chunks are not).
 *
 * The topology is fixed per process (the library initialises once): PCPU_CONF when set,
 * else topology PCPU_FUZZ_TOPO (a spec, e.g. "64x4" or "0-3+8-11x2"), else "4x2".
 * tests/fuzz/run-fuzzers.sh runs the harness once per topology of its list.
 *
 * Input: byte 0 is the profile (bit 0: verify every live handle after every op; bits 1-2:
 * size bias), then a stream of ops, an opcode byte followed by its operands (missing
 * operand bytes read as zero):
 *   0-2  alloc: size class + size (3 bytes), align (1), flags (1)
 *   3    alloc with PCPU_NOWAIT (same operands): may fail with ENOMEM only
 *   4-5  free the k-th live handle (1), after checking every copy
 *   6-8  this-CPU op on the k-th handle: op (1), offset (2), width (1), value (8), old (8)
 *   9    rewrite every copy of the k-th handle with a new tag (1), after checking it
 *   10   bad arguments (1 + 3): NULL with EINVAL and nothing changed
 *   11   pcpu_trim() (when the next byte is 0 mod 4), then check every live handle
 *   12   check every live handle and the statistics
 *   13   counter op (1 + 8): init/add/add_batch/sum/compare/set/destroy against a model
 *   14   stats: pcpu_stats_get() fields, pcpu_stats_print() to /dev/null
 *   15   free(NULL), pcpu_nr_cpus(), pcpu_cpu_mode(), pcpu_ptr() of every copy distinct
 */
#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pcpu.h>

#define MAX_LIVE 96
#define PREFIX 64                     /* bytes of the this-CPU copy the model keeps */
#define BUDGET ((size_t)192 << 20)    /* most bytes (size * nr_cpus) live at once */

struct live {
	unsigned char *h;
	size_t size, align;
	unsigned tag;
	unsigned char mine[PREFIX];   /* the first bytes of copy `me` */
};

static struct live live[MAX_LIVE];
static int nlive;
static size_t live_bytes;
static unsigned me;                   /* pcpu_this_cpu() of the pinned thread */
static unsigned nr_cpus;
static size_t page_size, max_size;
static uint64_t base_cur;             /* nr_cur_alloc with nothing of ours live */
static unsigned next_tag = 1;
static int verify_all;
static FILE *devnull;

/* The counter model. */
static struct pcpu_counter counter;
static bool counter_live;
static int64_t counter_value;

#define FAIL(...)                                                                             \
	do {                                                                                  \
		fprintf(stderr, "fuzz_api: " __VA_ARGS__);                                    \
		fputc('\n', stderr);                                                          \
		__builtin_trap();                                                             \
	} while (0)

#define CHECK(cond, ...)                                                                      \
	do {                                                                                  \
		if (!(cond))                                                                  \
			FAIL(__VA_ARGS__);                                                    \
	} while (0)

/* ---------------------------------------------------------------------------------------- */

struct in {
	const uint8_t *p;
	size_t n;
};

static unsigned u8(struct in *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

static uint64_t un(struct in *in, int bytes)
{
	uint64_t v = 0;

	for (int i = 0; i < bytes; i++)
		v |= (uint64_t)u8(in) << (8 * i);
	return v;
}

static unsigned char pattern(unsigned tag, unsigned cpu, size_t i)
{
	return (unsigned char)(tag * 131u + cpu * 37u + (unsigned)i * 7u + (unsigned)(i >> 8));
}

static uint64_t cur_alloc(void)
{
	struct pcpu_stats st = {.size = sizeof(st)};

	CHECK(pcpu_stats_get(&st) == 0, "pcpu_stats_get failed");
	return st.nr_cur_alloc;
}

static void verify(const char *after)
{
	CHECK(pcpu_verify() == 0, "pcpu_verify failed after %s", after);
}

static unsigned char *scratch;       /* one copy's expected bytes (max_size) */

/* The bytes CPU @c's copy of @l should hold, into scratch. */
static void expected_copy(const struct live *l, unsigned c)
{
	for (size_t i = 0; i < l->size; i++)
		scratch[i] = pattern(l->tag, c, i);
	if (c == me)
		memcpy(scratch, l->mine, l->size < PREFIX ? l->size : PREFIX);
}

/* Is every copy of @l what the model says? (memcmp first: byte loops are slow here) */
static void check_live(const struct live *l, const char *what)
{
	for (unsigned c = 0; c < nr_cpus; c++) {
		const unsigned char *p = pcpu_ptr(l->h, c);

		expected_copy(l, c);
		if (!memcmp(p, scratch, l->size))
			continue;
		for (size_t i = 0; i < l->size; i++)
			CHECK(p[i] == scratch[i],
			      "%s: handle %p (size %zu) cpu %u byte %zu is %#x, expected %#x", what,
			      (void *)l->h, l->size, c, i, p[i], scratch[i]);
	}
}

/* Live allocations the library should count: ours, plus the counter's per-CPU deltas. */
static uint64_t expected_cur(void)
{
	return base_cur + (uint64_t)nlive + (counter_live ? 1 : 0);
}

static void check_all(const char *what)
{
	for (int k = 0; k < nlive; k++)
		check_live(&live[k], what);
	CHECK(cur_alloc() == expected_cur(), "%s: %llu live allocations, expected %llu", what,
	      (unsigned long long)cur_alloc(), (unsigned long long)expected_cur());
}

static void fill(struct live *l, unsigned tag)
{
	l->tag = tag;
	for (unsigned c = 0; c < nr_cpus; c++) {
		unsigned char *p = pcpu_ptr(l->h, c);

		for (size_t i = 0; i < l->size; i++)
			p[i] = pattern(tag, c, i);
	}
	for (size_t i = 0; i < PREFIX && i < l->size; i++)
		l->mine[i] = pattern(tag, me, i);
}

/* ---------------------------------------------------------------------------------------- */

static size_t pick_size(struct in *in, int bias)
{
	unsigned cls = (u8(in) + (unsigned)bias) % 8;
	uint64_t v = un(in, 3);

	switch (cls) {
	case 0: case 1: case 2: return 1 + v % 16;
	case 3: case 4: return 1 + v % 256;
	case 5: return 1 + v % 4096;
	case 6: return 1 + v % 32768;
	default: return 1 + v % (v & 0x800000 ? max_size : 65536);
	}
}

static size_t pick_align(unsigned b)
{
	unsigned lg = b % 16;

	if (b & 0x80 || lg > 12)
		return 0; /* natural */
	return (size_t)1 << lg;
}

static void op_alloc(struct in *in, int bias, bool nowait)
{
	size_t size = pick_size(in, bias), align = pick_align(u8(in));
	unsigned fl = u8(in), flags = nowait ? PCPU_NOWAIT : 0;
	size_t eff_align = align, cost = size * nr_cpus;
	uint64_t before = cur_alloc();
	struct live *l;
	void *h;

	if (align > page_size)
		align = page_size;
	if (fl & 1)
		flags |= PCPU_ACCOUNT;
	if (nlive == MAX_LIVE || live_bytes + cost > BUDGET)
		return;
	if (!eff_align)
		for (eff_align = 1; eff_align < size && eff_align < 8; eff_align <<= 1)
			;
	errno = 0;
	h = pcpu_alloc(size, align, flags);
	if (!h) {
		/* Only PCPU_NOWAIT may fail here: everything else has memory to spare. */
		CHECK(nowait, "pcpu_alloc(%zu, %zu, %#x) failed: errno %d", size, align, flags, errno);
		CHECK(errno == ENOMEM, "NOWAIT pcpu_alloc(%zu, %zu) failed with errno %d, not ENOMEM",
		      size, align, errno);
		CHECK(cur_alloc() == before, "a failed alloc changed the live count");
		verify("failed NOWAIT alloc");
		return;
	}
	CHECK(cur_alloc() == before + 1, "alloc: live count %llu, expected %llu",
	      (unsigned long long)cur_alloc(), (unsigned long long)before + 1);
	for (int k = 0; k < nlive; k++)
		CHECK(live[k].h != (unsigned char *)h, "pcpu_alloc returned the live handle %p", h);
	l = &live[nlive++];
	memset(l, 0, sizeof(*l));
	l->h = h;
	l->size = size;
	l->align = eff_align;
	live_bytes += cost;
	for (unsigned c = 0; c < nr_cpus; c++) {
		const unsigned char *p = pcpu_ptr(l->h, c);

		CHECK((uintptr_t)p % eff_align == 0, "cpu %u copy %p of a %zu-aligned alloc", c,
		      (const void *)p, eff_align);
		if (p[0] == 0 && !memcmp(p, p + 1, size - 1))
			continue; /* all zero */
		for (size_t i = 0; i < size; i++)
			CHECK(!p[i], "fresh alloc %p (size %zu) cpu %u byte %zu is %#x, not zero",
			      h, size, c, i, p[i]);
	}
	fill(l, next_tag++);
	verify("alloc");
}

static void free_at(int k)
{
	struct live *l = &live[k];
	uint64_t before = cur_alloc();

	check_live(l, "before free");
	pcpu_free(l->h);
	CHECK(cur_alloc() == before - 1, "free did not drop the live count");
	live_bytes -= l->size * nr_cpus;
	*l = live[--nlive];
	verify("free");
}

/* this-CPU operations at a naturally aligned offset of the first PREFIX bytes. */
#define THIS_OP(T)                                                                            \
	do {                                                                                  \
		T *hp = (T *)(void *)(l->h + off), cur, got = 0, want;                        \
		T v = (T)val, o = (T)oldv;                                                    \
		memcpy(&cur, l->mine + off, sizeof(T));                                       \
		want = cur;                                                                   \
		if (kind == 6)                                                                \
			o = cur; /* a cmpxchg that succeeds */                                 \
		switch (kind) {                                                               \
		case 0: pcpu_this_add(hp, v); want = (T)(cur + v); break;                     \
		case 1: pcpu_this_sub(hp, v); want = (T)(cur - v); break;                     \
		case 2: pcpu_this_inc(hp); want = (T)(cur + 1); break;                        \
		case 3: pcpu_this_dec(hp); want = (T)(cur - 1); break;                        \
		case 4: pcpu_this_write(hp, v); want = v; break;                              \
		case 5: got = pcpu_this_read(hp);                                             \
			CHECK(got == cur, "this_read: %#llx, expected %#llx",                \
			      (unsigned long long)got, (unsigned long long)cur);              \
			break;                                                                \
		case 6: case 7:                                                               \
			got = pcpu_this_cmpxchg(hp, o, v);                                    \
			CHECK(got == cur, "this_cmpxchg returned %#llx, expected %#llx",     \
			      (unsigned long long)got, (unsigned long long)cur);              \
			want = cur == o ? v : cur;                                            \
			break;                                                                \
		case 8: got = pcpu_this_xchg(hp, v);                                          \
			CHECK(got == cur, "this_xchg returned %#llx, expected %#llx",        \
			      (unsigned long long)got, (unsigned long long)cur);              \
			want = v;                                                             \
			break;                                                                \
		default: got = pcpu_this_add_return(hp, v); want = (T)(cur + v);              \
			CHECK(got == want, "this_add_return returned %#llx, expected %#llx", \
			      (unsigned long long)got, (unsigned long long)want);             \
			break;                                                                \
		}                                                                             \
		memcpy(l->mine + off, &want, sizeof(T));                                      \
	} while (0)

static void op_this(struct in *in)
{
	unsigned k = u8(in), kind = u8(in) % 10, offb = (unsigned)un(in, 2), wb = u8(in);
	uint64_t val = un(in, 8), oldv = un(in, 8);
	unsigned width = 1u << (wb % 4), span;
	struct live *l;
	size_t off;
	unsigned c1, c2;

	if (!nlive)
		return;
	l = &live[k % (unsigned)nlive];
	span = (unsigned)(l->size < PREFIX ? l->size : PREFIX);
	while (width > 1 && (width > span || (uintptr_t)pcpu_ptr(l->h, 0) % width))
		width >>= 1; /* copies share their alignment: units are page aligned */
	off = (offb % (span - width + 1)) & ~(size_t)(width - 1);
	c1 = pcpu_this_cpu();
	switch (width) {
	case 1: THIS_OP(uint8_t); break;
	case 2: THIS_OP(uint16_t); break;
	case 4: THIS_OP(uint32_t); break;
	default: THIS_OP(uint64_t); break;
	}
	c2 = pcpu_this_cpu();
	CHECK(c1 == me && c2 == me, "pinned thread moved: this_cpu %u, %u, expected %u", c1, c2, me);
	/* The op touched the copy of `me` only, and exactly as the model says. */
	if (l->size * nr_cpus <= ((size_t)1 << 20))
		check_live(l, "this-CPU op");
	else
		CHECK(!memcmp(pcpu_ptr(l->h, me), l->mine, span), "this-CPU op: copy %u differs", me);
	verify("this-CPU op");
}

static void op_bad(struct in *in)
{
	unsigned which = u8(in) % 8;
	uint64_t r = un(in, 3);
	size_t size = 8, align = 0;
	unsigned flags = 0;
	struct pcpu_stats a = {.size = sizeof(a)}, b = {.size = sizeof(b)};
	void *h;

	switch (which) {
	case 0: size = 0; align = (size_t)1 << (r % 13); break;
	case 1: size = max_size + 1 + r; break;
	case 2: size = SIZE_MAX - r; break;
	case 3: align = (r % 4096) | 3; if (!(align & (align - 1))) align = 3; break;
	case 4: align = page_size << (1 + r % 20); break;
	case 5: flags = 1u << (2 + r % 30); break;
	case 6: size = 1 + r % 64; align = (size_t)1 << (63 - r % 8); break;
	default: size = 0; align = 3; flags = 0x80; break;
	}
	if (r & 0x800000)
		flags |= PCPU_NOWAIT;
	CHECK(pcpu_stats_get(&a) == 0, "stats");
	errno = 0;
	h = pcpu_alloc(size, align, flags);
	CHECK(!h, "pcpu_alloc(%zu, %zu, %#x) succeeded", size, align, flags);
	CHECK(errno == EINVAL, "pcpu_alloc(%zu, %zu, %#x): errno %d, not EINVAL", size, align, flags,
	      errno);
	CHECK(pcpu_stats_get(&b) == 0, "stats");
	CHECK(a.nr_alloc == b.nr_alloc && a.nr_cur_alloc == b.nr_cur_alloc &&
	      a.nr_chunks == b.nr_chunks, "a rejected pcpu_alloc changed the statistics");
	verify("bad arguments");
}

static void op_counter(struct in *in)
{
	unsigned kind = u8(in) % 8;
	int64_t v = (int64_t)un(in, 8);

	if (!counter_live) {
		CHECK(pcpu_counter_init(&counter, v >> 16) == 0, "pcpu_counter_init: errno %d", errno);
		counter_live = true;
		counter_value = v >> 16;
		return;
	}
	v >>= 40 + (kind & 3) * 7; /* steps up to 2^23, 2^16, 2^9 or 2^2 */
	switch (kind) {
	case 0: case 1: case 2:
		pcpu_counter_add(&counter, v);
		counter_value += v;
		break;
	case 3:
		/* A batch at most the default one keeps compare() exact near the value. */
		pcpu_counter_add_batch(&counter, v, (int32_t)(1 + ((uint64_t)v & 31)));
		counter_value += v;
		break;
	case 4:
		CHECK(pcpu_counter_compare(&counter, counter_value) == 0, "counter compare != 0");
		CHECK(pcpu_counter_compare(&counter, counter_value - 1) == 1, "counter compare != 1");
		CHECK(pcpu_counter_compare(&counter, counter_value + 1) == -1, "counter compare != -1");
		break;
	case 5:
		pcpu_counter_set(&counter, v);
		counter_value = v;
		break;
	case 6:
		pcpu_counter_destroy(&counter);
		counter_live = false;
		return;
	default:
		break;
	}
	CHECK(pcpu_counter_sum(&counter) == counter_value, "counter sum %lld, expected %lld",
	      (long long)pcpu_counter_sum(&counter), (long long)counter_value);
}

static void op_stats(void)
{
	struct pcpu_stats st = {.size = sizeof(st)};

	CHECK(pcpu_stats_get(&st) == 0, "pcpu_stats_get");
	CHECK(st.nr_cpus == nr_cpus, "stats nr_cpus %u, expected %u", st.nr_cpus, nr_cpus);
	CHECK(st.nr_cur_alloc == st.nr_alloc - st.nr_dealloc, "stats: cur != alloc - dealloc");
	CHECK(st.nr_cur_alloc <= st.nr_max_alloc, "stats: cur above max");
	CHECK(st.nr_chunks >= 1 && st.nr_chunks <= st.nr_max_chunks, "stats: chunk counts");
	CHECK(st.page_size == page_size, "stats: page size");
	if (devnull)
		pcpu_stats_print(devnull);
	errno = 0;
	CHECK(pcpu_stats_get(NULL) == -1 && errno == EINVAL, "pcpu_stats_get(NULL)");
}

static void op_misc(void)
{
	pcpu_free(NULL);
	CHECK(pcpu_nr_cpus() == nr_cpus, "pcpu_nr_cpus changed");
	CHECK(pcpu_cpu_mode() >= PCPU_MODE_RSEQ_GLIBC && pcpu_cpu_mode() <= PCPU_MODE_GETCPU,
	      "pcpu_cpu_mode %d", (int)pcpu_cpu_mode());
	if (nlive) {
		const struct live *l = &live[0];

		for (unsigned c = 1; c < nr_cpus; c++)
			CHECK((size_t)(pcpu_ptr(l->h, c) - pcpu_ptr(l->h, c - 1)) >= l->size ||
			      pcpu_ptr(l->h, c) < pcpu_ptr(l->h, c - 1),
			      "copies %u and %u overlap", c - 1, c);
	}
}

/* ---------------------------------------------------------------------------------------- */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char conf[160];
	const char *topo = getenv("PCPU_FUZZ_TOPO");
	int cpu = sched_getcpu();
	cpu_set_t set;

	(void)argc, (void)argv;
	if (!getenv("PCPU_CONF")) {
		snprintf(conf, sizeof(conf), "topology=%s", topo && *topo ? topo : "4x2");
		setenv("PCPU_CONF", conf, 1);
	}
	/* Pinned: the this-CPU operations all land on one copy, which the model follows. */
	CPU_ZERO(&set);
	CPU_SET(cpu < 0 ? 0 : cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		perror("fuzz_api: sched_setaffinity");
	fprintf(stderr, "fuzz_api: PCPU_CONF=%s, pinned to CPU %d\n", getenv("PCPU_CONF"), cpu);
	return 0;
}

static void setup_once(void)
{
	static bool done;
	struct pcpu_stats st = {.size = sizeof(st)};

	if (done)
		return;
	done = true;
	nr_cpus = pcpu_nr_cpus();
	CHECK(nr_cpus > 0, "pcpu_nr_cpus() is 0");
	page_size = (size_t)sysconf(_SC_PAGESIZE);
	CHECK(pcpu_stats_get(&st) == 0, "pcpu_stats_get");
	max_size = st.unit_size; /* the largest dynamic allocation */
	me = pcpu_this_cpu();
	CHECK(me < nr_cpus, "pcpu_this_cpu() %u out of range", me);
	devnull = fopen("/dev/null", "w");
	scratch = malloc(max_size);
	CHECK(scratch != NULL, "out of memory");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = {data, size};
	unsigned profile;
	int bias;

	setup_once();
	base_cur = cur_alloc();
	profile = u8(&in);
	verify_all = profile & 1;
	bias = (int)((profile >> 1) & 3) * 2;
	while (in.n) {
		unsigned op = u8(&in) % 16;

		switch (op) {
		case 0: case 1: case 2: op_alloc(&in, bias, false); break;
		case 3: op_alloc(&in, bias, true); break;
		case 4: case 5: {
			unsigned k = u8(&in);

			if (nlive)
				free_at((int)(k % (unsigned)nlive));
			break;
		}
		case 6: case 7: case 8: op_this(&in); break;
		case 9: {
			unsigned k = u8(&in);

			if (nlive) {
				check_live(&live[k % (unsigned)nlive], "before rewrite");
				fill(&live[k % (unsigned)nlive], next_tag++);
			}
			break;
		}
		case 10: op_bad(&in); break;
		case 11:
			/* Trim gives every free page back and costs repopulation: 1 in 4. */
			if (u8(&in) % 4 == 0) {
				(void)pcpu_trim();
				verify("trim");
			}
			check_all("after trim");
			break;
		case 12: check_all("check"); break;
		case 13: op_counter(&in); break;
		case 14: op_stats(); break;
		default: op_misc(); break;
		}
		if (verify_all)
			check_all("op");
		verify("op");
	}
	/* Back to nothing live, so the next input starts from the same model. */
	check_all("end of input");
	while (nlive)
		free_at(nlive - 1);
	if (counter_live) {
		CHECK(pcpu_counter_sum(&counter) == counter_value, "counter sum at end");
		pcpu_counter_destroy(&counter);
		counter_live = false;
	}
	CHECK(live_bytes == 0, "model byte count %zu at end", live_bytes);
	CHECK(cur_alloc() == base_cur, "%lld allocations left behind",
	      (long long)(cur_alloc() - base_cur));
	verify("end of input");
	return 0;
}
