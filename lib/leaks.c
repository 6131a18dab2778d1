/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * The leak report (kernel: kmemleak, which tracks per-CPU objects through
 * kmemleak_alloc_percpu()): every live allocation with its size and its caller, grouped by
 * call site, the call site holding the most bytes first. The kernel finds leaks by scanning
 * memory for references; a user-space handle lies outside the canonical address range and
 * is copied freely, so libpcpu lists what is live and lets the reader judge, which is what
 * a report at exit is for.
 *
 * Call sites are recorded as return addresses; the report names the call instruction
 * before each one: function+offset, the object file with the offset addr2line takes, and,
 * when the library was built with libdw (elfutils) and the object has line tables, the
 * source file and line of the call.
 */
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pcpu.h>

#include "alloc.h"
#include "leaks.h"
#include "pcpu_config.h"

#if PCPU_HAVE_LIBDW
#include <dwarf.h>
#include <elfutils/libdwfl.h>
#endif

bool pcpu_leaks_on;

/* How many handles of one call site are listed before "... and N more". */
#define LEAKS_LIST_PER_SITE 8

struct leak {
	void *handle;
	void *caller;
	size_t size;
};

struct leak_site {
	void *caller;
	size_t first, nr; /* leaks[first .. first + nr) */
	size_t bytes;
};

void pcpu_leaks_enable(void)
{
	if (pcpu_ensure_init())
		return;
	__atomic_store_n(&pcpu_leaks_on, true, __ATOMIC_RELAXED);
}

void pcpu_leaks_note_slow(struct pcpu_chunk *c, int off, void *call_site)
{
	void **t = pcpu_calloc((size_t)c->map.map_bits, sizeof(*t));

	/*
	 * One pointer per granule; calloc'd, so only the pages where allocations start are
	 * ever touched. Without memory the call site goes unrecorded: a debugging aid must
	 * not fail an allocation.
	 */
	pthread_mutex_lock(&pcpu_lock);
	if (!c->callers) {
		c->callers = t;
		t = NULL;
	}
	if (c->callers)
		c->callers[off / PCPU_MIN_ALLOC_SIZE] = call_site;
	pthread_mutex_unlock(&pcpu_lock);
	pcpu_mfree(t);
}

/* ---------------------------------------------------------------------------------------- */
/* Collecting (pcpu_lock held)                                                               */
/* ---------------------------------------------------------------------------------------- */

struct collect {
	struct leak *v;
	size_t nr, cap;
	bool overflow;
	struct pcpu_chunk *chunk;
};

static int collect_one(int off, int size, void *arg)
{
	struct collect *k = arg;
	struct pcpu_chunk *c = k->chunk;

	if (pcpu_area_queued(c, off))
		return 0; /* freed, waiting to be zeroed */
	if (k->nr == k->cap) {
		k->overflow = true;
		return 1;
	}
	k->v[k->nr++] = (struct leak){
		.handle = pcpu_handle_of(c, off),
		.caller = c->callers ? c->callers[off / PCPU_MIN_ALLOC_SIZE] : NULL,
		.size = (size_t)size,
	};
	return 0;
}

static void collect_chunk(struct pcpu_chunk *c, void *arg)
{
	struct collect *k = arg;

	/* The reserved region holds PCPU_DEFINE variables of loaded objects: not leaks. */
	if (c->reserved || k->overflow)
		return;
	k->chunk = c;
	pcpu_am_for_each_alloc(&c->map, collect_one, k);
}

/*
 * Snapshot every live allocation. The buffer is sized outside the lock, from the live
 * count, and retried if allocations grew meanwhile (as the kernel's percpu_stats does).
 */
static int collect_all(struct collect *k)
{
	size_t cap;

	pthread_mutex_lock(&pcpu_lock);
	cap = (size_t)pcpu_gstats.nr_cur_alloc + 64;
	pthread_mutex_unlock(&pcpu_lock);
	for (;;) {
		memset(k, 0, sizeof(*k));
		k->cap = cap;
		k->v = malloc(cap * sizeof(*k->v));
		if (!k->v)
			return -ENOMEM;
		pthread_mutex_lock(&pcpu_lock);
		pcpu_for_each_chunk(collect_chunk, k);
		pthread_mutex_unlock(&pcpu_lock);
		if (!k->overflow)
			return 0;
		free(k->v);
		cap *= 2;
	}
}

/* ---------------------------------------------------------------------------------------- */
/* Grouping and printing                                                                     */
/* ---------------------------------------------------------------------------------------- */

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;

	return (x > y) - (x < y);
}

/* By call site, then largest first, then by handle (a stable, readable order). */
static int cmp_leak(const void *a, const void *b)
{
	const struct leak *x = a, *y = b;
	int r = cmp_ptr(x->caller, y->caller);

	if (r)
		return r;
	if (x->size != y->size)
		return x->size < y->size ? 1 : -1;
	return cmp_ptr(x->handle, y->handle);
}

static int cmp_site(const void *a, const void *b)
{
	const struct leak_site *x = a, *y = b;

	if (x->bytes != y->bytes)
		return x->bytes < y->bytes ? 1 : -1;
	if (x->nr != y->nr)
		return x->nr < y->nr ? 1 : -1;
	return cmp_ptr(x->caller, y->caller);
}

/*
 * The call instruction that @ra returns from. x86: the two forms compilers emit for a call
 * to another function, call rel32 (e8, 5 bytes) and call *disp32(%rip) (ff 15, 6 bytes,
 * -fno-plt); for any other form, one byte back, which is inside the call instruction (what
 * line tables and addr2line need). AArch64: every call is one 4-byte BL or BLR.
 */
static const unsigned char *call_insn(const void *ra)
{
	const unsigned char *p = ra;

#if defined(__x86_64__) || defined(__i386__)
	if (p[-5] == 0xe8)
		return p - 5;
	if (p[-6] == 0xff && p[-5] == 0x15)
		return p - 6;
	return p - 1;
#elif defined(__aarch64__)
	return p - 4;
#else
	return p - 1;
#endif
}

/* What is known of one call site. */
struct site_info {
	const char *func; /* NULL: no symbol covers it */
	size_t func_off;
	const char *obj;  /* the object file; NULL: none (unloaded since) */
	uintptr_t obj_off; /* the address in that file: addr2line -e OBJ OBJ_OFF */
	const char *src;  /* source file and line, when line tables say */
	const char *dir;  /* the directory @src is relative to, or NULL */
	int line;
};

#if PCPU_HAVE_LIBDW
static const Dwfl_Callbacks dwfl_callbacks = {
	.find_elf = dwfl_linux_proc_find_elf,
	.find_debuginfo = dwfl_standard_find_debuginfo,
};

/* The objects mapped now (re-read for every report: objects come and go with dlopen). */
static Dwfl *dwfl_open(void)
{
	Dwfl *d = dwfl_begin(&dwfl_callbacks);

	if (!d)
		return NULL;
	if (dwfl_linux_proc_report(d, getpid()) || dwfl_report_end(d, NULL, NULL)) {
		dwfl_end(d);
		return NULL;
	}
	return d;
}

/*
 * The compilation unit covering @addr. libdw's own lookup goes through .debug_aranges,
 * which clang does not emit: then walk the units.
 */
static Dwarf_Die *unit_of(Dwfl_Module *m, Dwarf_Addr addr, Dwarf_Addr *bias)
{
	Dwarf_Die *cu = dwfl_module_addrdie(m, addr, bias);

	if (cu)
		return cu;
	while ((cu = dwfl_module_nextcu(m, cu, bias)) != NULL)
		if (dwarf_haspc(cu, addr - *bias) > 0)
			return cu;
	return NULL;
}

/* libdw knows local symbols (.symtab) too, and the line of the call. */
static void dwfl_lookup(Dwfl *d, uintptr_t addr, struct site_info *si)
{
	Dwfl_Module *m = d ? dwfl_addrmodule(d, addr) : NULL;
	Dwarf_Attribute attr;
	Dwarf_Addr bias;
	Dwarf_Die *cu;
	Dwarf_Line *l;
	GElf_Off off;
	GElf_Sym sym;
	const char *name;

	if (!m)
		return;
	name = dwfl_module_addrinfo(m, addr, &off, &sym, NULL, NULL, NULL);
	if (name) {
		si->func = name;
		si->func_off = (size_t)off;
	}
	cu = unit_of(m, addr, &bias);
	l = cu ? dwarf_getsrc_die(cu, addr - bias) : NULL;
	if (!l || dwarf_lineno(l, &si->line))
		return;
	si->src = dwarf_linesrc(l, NULL, NULL);
	/* A path relative to the compilation's directory (as meson builds) is made whole. */
	if (si->src && si->src[0] != '/')
		si->dir = dwarf_formstring(dwarf_attr(cu, DW_AT_comp_dir, &attr));
}
#else
typedef void Dwfl;

static Dwfl *dwfl_open(void)
{
	return NULL;
}

static void dwfl_end(Dwfl *d)
{
	(void)d;
}

static void dwfl_lookup(Dwfl *d, uintptr_t addr, struct site_info *si)
{
	(void)d;
	(void)addr;
	(void)si;
}
#endif

static void print_caller(FILE *f, Dwfl *dw, void *caller)
{
	struct site_info si = {0};
	const unsigned char *call;
	struct link_map *lm = NULL;
	char exe[4096];
	Dl_info di;

	if (!caller) {
		fprintf(f, "unknown caller (allocated before call sites were recorded: set "
			   "PCPU_LEAKS=1 or call pcpu_leaks_enable() first)");
		return;
	}
	/* Its object may be gone (dlclose): look before reading the code before @caller. */
	if (!dladdr1((char *)caller - 1, &di, (void **)&lm, RTLD_DL_LINKMAP) || !di.dli_fname) {
		fprintf(f, "%p (return address; in no loaded object)", caller);
		return;
	}
	call = call_insn(caller);
	si.obj = di.dli_fname;
	/* The program itself: dladdr() gives argv[0], which may be relative or a bare name. */
	if (lm && !lm->l_name[0]) {
		ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

		if (n > 0) {
			exe[n] = '\0';
			si.obj = exe;
		}
	}
	/* The load bias: 0 for a fixed-address executable, the base for PIE and libraries. */
	si.obj_off = (uintptr_t)call - (lm ? (uintptr_t)lm->l_addr : (uintptr_t)di.dli_fbase);
	if (di.dli_sname && di.dli_saddr && call >= (const unsigned char *)di.dli_saddr) {
		si.func = di.dli_sname;
		si.func_off = (size_t)(call - (const unsigned char *)di.dli_saddr);
	}
	dwfl_lookup(dw, (uintptr_t)call, &si);
	if (si.func)
		fprintf(f, "%s+0x%zx", si.func, si.func_off);
	else
		fprintf(f, "%p", (const void *)call);
	if (si.src)
		fprintf(f, " at %s%s%s:%d", si.dir ? si.dir : "", si.dir ? "/" : "", si.src,
			si.line);
	fprintf(f, " (%s+0x%zx)", si.obj, (size_t)si.obj_off);
}

static void print_report(FILE *f, struct leak *v, size_t nr)
{
	struct leak_site *sites;
	size_t nr_sites = 0, bytes = 0;
	unsigned cpus = pcpu_nr_cpus();
	Dwfl *dw;

	qsort(v, nr, sizeof(*v), cmp_leak);
	sites = malloc((nr ? nr : 1) * sizeof(*sites));
	if (!sites) {
		fprintf(f, "libpcpu: leaks: out of memory\n");
		return;
	}
	for (size_t i = 0; i < nr; i++) {
		if (!nr_sites || sites[nr_sites - 1].caller != v[i].caller)
			sites[nr_sites++] = (struct leak_site){.caller = v[i].caller, .first = i};
		sites[nr_sites - 1].nr++;
		sites[nr_sites - 1].bytes += v[i].size;
		bytes += v[i].size;
	}
	qsort(sites, nr_sites, sizeof(*sites), cmp_site);
	dw = nr_sites ? dwfl_open() : NULL;

	fprintf(f, "libpcpu: %zu live allocation%s, %zu bytes per CPU (%zu bytes over %u CPUs), "
		   "from %zu call site%s\n",
		nr, nr == 1 ? "" : "s", bytes, bytes * cpus, cpus, nr_sites,
		nr_sites == 1 ? "" : "s");
	for (size_t s = 0; s < nr_sites; s++) {
		const struct leak_site *st = &sites[s];

		fprintf(f, "  %zu bytes per CPU in %zu allocation%s from ", st->bytes, st->nr,
			st->nr == 1 ? "" : "s");
		print_caller(f, dw, st->caller);
		fputc('\n', f);
		for (size_t i = 0; i < st->nr && i < LEAKS_LIST_PER_SITE; i++) {
			const struct leak *l = &v[st->first + i];

			fprintf(f, "    %p size %zu\n", l->handle, l->size);
		}
		if (st->nr > LEAKS_LIST_PER_SITE)
			fprintf(f, "    ... and %zu more\n", st->nr - LEAKS_LIST_PER_SITE);
	}
	if (dw)
		dwfl_end(dw);
	free(sites);
}

void pcpu_leaks_print(FILE *f)
{
	struct collect k;

	if (!f)
		f = stderr;
	if (pcpu_ensure_init())
		return;
	if (collect_all(&k)) {
		fprintf(f, "libpcpu: leaks: out of memory\n");
		return;
	}
	/* Off the locks: dladdr takes the loader's lock and stdio may allocate. */
	print_report(f, k.v, k.nr);
	fflush(f);
	free(k.v);
}

/* ---------------------------------------------------------------------------------------- */
/* PCPU_LEAKS=1                                                                              */
/* ---------------------------------------------------------------------------------------- */

static void leaks_at_exit(void)
{
	pcpu_leaks_print(stderr);
}

void pcpu_leaks_init(void)
{
	const char *e = pcpu_getenv("PCPU_LEAKS");

	if (!e || !*e || !strcmp(e, "0"))
		return;
	/* Called from the library's initialisation: pcpu_leaks_enable() would recurse. */
	__atomic_store_n(&pcpu_leaks_on, true, __ATOMIC_RELAXED);
	atexit(leaks_at_exit);
}
