/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * pcpu-bench - libpcpu and its peers side by side, in one run.
 *
 * The parent runs nothing itself: it re-executes this program once per job, with the job's
 * PCPU_CONF (fake topology, CPU mode, index mode) and CPU affinity set before libpcpu
 * initialises, gathers the rows the child writes to a pipe, computes every ratio against
 * libpcpu's row of the same benchmark and prints a table, JSON or CSV, and charts.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <gnu/libc-version.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pcpu.h>

#include "bench.h"
#include "emit.h"

static const char *const groups[] = {"hot", "alloc", "memory", "read"};
#define NR_GROUPS 4

struct job {
	const char *group;
	const char *label;  /* for the progress line */
	const char *conf;   /* PCPU_CONF for the child, NULL: inherit */
	const char *params; /* --child-params */
	bool confine;       /* confine the child to one CPU before exec */
};

static const struct job jobs[] = {
	{"hot", "hot, real CPUs", NULL, NULL, false},
	{"hot", "hot, getcpu mode", "cpu_mode=getcpu", "getcpu", false},
	/* alloc: the parameter lists the parts to run at that topology (see alloc.c). */
	{"alloc", "alloc, real CPUs", NULL, "pairs,threads,orders,sizes", false},
	{"alloc", "alloc, fake 64x4", "topology=64x4", "pairs,threads,orders,sizes", false},
	{"alloc", "alloc, fake 1024x16", "topology=1024x16", "pairs,threads,orders", false},
	{"alloc", "alloc, fake 4096x64", "topology=4096x64", "pairs,threads", false},
	{"memory", "memory, real CPUs", NULL, NULL, false},
	{"memory", "memory, fake 64x4", "topology=64x4", NULL, false},
	{"memory", "memory, 1 CPU, index=cpu", "index=cpu", "confined-cpu", true},
	{"memory", "memory, 1 CPU, index=cid", "index=cid", "confined-cid", true},
	{"memory", "memory, 1 CPU of 64, index=cpu", "topology=64x4,index=cpu", "confined-cpu",
	 true},
	{"memory", "memory, 1 CPU of 64, index=cid", "topology=64x4,index=cid", "confined-cid",
	 true},
	{"memory", "memory, 1 CPU of 256, index=cpu", "topology=256x4,index=cpu", "confined-cpu",
	 true},
	{"memory", "memory, 1 CPU of 256, index=cid", "topology=256x4,index=cid", "confined-cid",
	 true},
	{"read", "read, real CPUs", NULL, NULL, false},
	{"read", "read, fake 64x4", "topology=64x4", NULL, false},
	{"read", "read, fake 256x4", "topology=256x4", NULL, false},
	{"read", "read, fake 1024x4", "topology=1024x4", NULL, false},
	{"read", "read, fake 4096x4 (counter tree only)", "topology=4096x4", "tree", false},
};
#define NR_JOBS (sizeof(jobs) / sizeof(jobs[0]))

struct row {
	char group[16], bench[80], params[128], impl[64], unit[16];
	int n;                  /* repetitions */
	double min, value, max; /* the caller's figure: value is the median */
	bool has_cpu;           /* the process's CPU ns per op were measured */
	double cmin, cpu, cmax;
	double ratio, cratio;   /* value / libpcpu's value, cpu / libpcpu's cpu */
	bool baseline;
	bool noisy;             /* (max - min) / median above NOISE_LIMIT, caller or CPU */
	int order[3]; /* group, bench, params: rank of first appearance */
	int seq;
};

static struct row *rows;
static int nr_rows;
static char **notes;
static int nr_notes;

enum format { FMT_TABLE, FMT_JSON, FMT_CSV, FMT_MARKDOWN };

/* A figure whose repetitions spread more than this, (max - min) / median, is flagged. */
#define NOISE_LIMIT 0.10
/* Above this load per CPU, from other processes, the figures are flagged. */
#define LOAD_LIMIT 0.5

static struct {
	enum format format;
	const char *plot_dir;
	const char *only;
	bool quiet;
	bool list;
} opt;

static uint64_t t_start;
static bool progress_shown;
/* The command line, for the Markdown header. */
static char command[1024];

/* ---------------------------------------------------------------------------------------- */
/* Progress line                                                                            */
/* ---------------------------------------------------------------------------------------- */

static void show_progress(int job, int njobs, const char *text, bool job_start)
{
	double elapsed = (double)(now_ns() - t_start) / 1e9;

	/* Only runs that last: a quick --only run prints nothing extra. */
	if (opt.quiet || elapsed < 2.0)
		return;
	if (isatty(STDERR_FILENO)) {
		fprintf(stderr, "\r\033[K[%d/%d %3.0fs] %.100s", job, njobs, elapsed, text);
		progress_shown = true;
	} else if (job_start) {
		fprintf(stderr, "pcpu-bench: [%d/%d %3.0fs] %s\n", job, njobs, elapsed, text);
	}
	fflush(stderr);
}

static void clear_progress(void)
{
	if (progress_shown)
		fputs("\r\033[K", stderr);
	progress_shown = false;
}

/* ---------------------------------------------------------------------------------------- */
/* Gathering                                                                                */
/* ---------------------------------------------------------------------------------------- */

static void add_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void add_note(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	if (!s)
		return;
	notes = realloc(notes, sizeof(*notes) * (size_t)(nr_notes + 1));
	if (!notes)
		die("out of memory");
	notes[nr_notes++] = s;
}

static void copy_field(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src ? src : "");
}

/* parse_line - one line of the child protocol (see util.c). */
static void parse_line(char *line, int job, int njobs)
{
	char *f[16];
	int n = 0;
	char *save = NULL, *tok;

	line[strcspn(line, "\n")] = '\0';
	for (tok = strtok_r(line, "\t", &save); tok && n < 16; tok = strtok_r(NULL, "\t", &save))
		f[n++] = tok;
	if (n < 1)
		return;
	if (!strcmp(f[0], "P") && n >= 2) {
		show_progress(job, njobs, f[1], false);
	} else if (!strcmp(f[0], "N") && n >= 2) {
		add_note("%s", f[1]);
	} else if (!strcmp(f[0], "R") && n == 14) {
		struct row *r;

		rows = realloc(rows, sizeof(*rows) * (size_t)(nr_rows + 1));
		if (!rows)
			die("out of memory");
		r = &rows[nr_rows];
		memset(r, 0, sizeof(*r));
		copy_field(r->group, sizeof(r->group), f[1]);
		copy_field(r->bench, sizeof(r->bench), f[2]);
		copy_field(r->params, sizeof(r->params), f[3]);
		copy_field(r->impl, sizeof(r->impl), f[4]);
		copy_field(r->unit, sizeof(r->unit), f[5]);
		r->baseline = f[6][0] == '1';
		r->n = atoi(f[7]);
		r->min = strtod(f[8], NULL);
		r->value = strtod(f[9], NULL);
		r->max = strtod(f[10], NULL);
		r->has_cpu = strcmp(f[11], "-") != 0;
		if (r->has_cpu) {
			r->cmin = strtod(f[11], NULL);
			r->cpu = strtod(f[12], NULL);
			r->cmax = strtod(f[13], NULL);
		}
		r->seq = nr_rows++;
	}
}

static void run_job(const char *self, const struct job *j, int idx, int njobs)
{
	char fdarg[16], repsarg[16], targetarg[32];
	const char *argv[16];
	int fds[2], status, argc = 0;
	pid_t pid;
	FILE *in;
	char *line = NULL;
	size_t cap = 0;

	show_progress(idx, njobs, j->label, true);
	if (pipe(fds))
		die("pipe: %s", strerror(errno));
	fcntl(fds[0], F_SETFD, FD_CLOEXEC);
	snprintf(fdarg, sizeof(fdarg), "%d", fds[1]);
	snprintf(repsarg, sizeof(repsarg), "%d", bopt.reps);
	snprintf(targetarg, sizeof(targetarg), "%g", bopt.target);
	argv[argc++] = self;
	argv[argc++] = "--child";
	argv[argc++] = j->group;
	argv[argc++] = "--child-fd";
	argv[argc++] = fdarg;
	argv[argc++] = "--reps";
	argv[argc++] = repsarg;
	argv[argc++] = "--target";
	argv[argc++] = targetarg;
	if (j->params) {
		argv[argc++] = "--child-params";
		argv[argc++] = j->params;
	}
	if (bopt.full)
		argv[argc++] = "--full";
	argv[argc] = NULL;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		if (j->conf)
			setenv("PCPU_CONF", j->conf, 1);
		if (j->confine) {
			int cpu;

			/* Before exec, so before libpcpu initialises: it sees one allowed CPU. */
			allowed_cpus(&cpu, 1);
			pin_self(cpu);
		}
		execv(self, (char *const *)argv);
		fprintf(stderr, "pcpu-bench: exec %s: %s\n", self, strerror(errno));
		_exit(127);
	}
	close(fds[1]);
	in = fdopen(fds[0], "r");
	if (!in)
		die("fdopen: %s", strerror(errno));
	while (getline(&line, &cap, in) > 0)
		parse_line(line, idx, njobs);
	free(line);
	fclose(in);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFSIGNALED(status))
		add_note("ERROR: job \"%s\" (PCPU_CONF=%s) killed by signal %d (%s)", j->label,
			 j->conf ? j->conf : "", WTERMSIG(status), strsignal(WTERMSIG(status)));
	else if (WEXITSTATUS(status))
		add_note("ERROR: job \"%s\" (PCPU_CONF=%s) exited with status %d", j->label,
			 j->conf ? j->conf : "", WEXITSTATUS(status));
}

/* ---------------------------------------------------------------------------------------- */
/* Ratios and order                                                                         */
/* ---------------------------------------------------------------------------------------- */

static int group_rank(const char *g)
{
	for (int i = 0; i < NR_GROUPS; i++)
		if (!strcmp(groups[i], g))
			return i;
	return NR_GROUPS;
}

static void compute_ratios(void)
{
	for (int i = 0; i < nr_rows; i++) {
		struct row *r = &rows[i];

		r->ratio = NAN;
		r->cratio = NAN;
		for (int j = 0; j < nr_rows; j++) {
			struct row *b = &rows[j];

			if (!b->baseline || strcmp(b->group, r->group) || strcmp(b->bench, r->bench) ||
			    strcmp(b->params, r->params))
				continue;
			if (b->value != 0)
				r->ratio = r->value / b->value;
			if (r->has_cpu && b->has_cpu && b->cpu != 0)
				r->cratio = r->cpu / b->cpu;
			break;
		}
	}
}

static struct row *add_row(void)
{
	struct row *r;

	rows = realloc(rows, sizeof(*rows) * (size_t)(nr_rows + 1));
	if (!rows)
		die("out of memory");
	r = &rows[nr_rows];
	memset(r, 0, sizeof(*r));
	r->seq = nr_rows++;
	return r;
}

/*
 * derive_flatness - for the alloc group's FLAT_BENCH rows at fake topologies, one more row
 * per implementation: its figure divided by the same implementation's on the real CPUs
 * (params ending in REAL_CPUS), for the caller's ns and the process CPU ns alike. A ratio of
 * medians: it has no spread of its own.
 */
static void derive_flatness(void)
{
	size_t sl = strlen(REAL_CPUS);
	int n = nr_rows;

	for (int i = 0; i < n; i++) {
		size_t pl = strlen(rows[i].params);
		struct row x, *d;
		int j;

		if (strcmp(rows[i].group, "alloc") || strcmp(rows[i].bench, FLAT_BENCH) ||
		    (pl >= sl && !strcmp(rows[i].params + pl - sl, REAL_CPUS)))
			continue;
		for (j = 0; j < n; j++) {
			size_t ql = strlen(rows[j].params);

			if (!strcmp(rows[j].group, "alloc") && !strcmp(rows[j].bench, FLAT_BENCH) &&
			    !strcmp(rows[j].impl, rows[i].impl) && ql >= sl &&
			    !strcmp(rows[j].params + ql - sl, REAL_CPUS))
				break;
		}
		if (j == n || rows[j].value == 0)
			continue;
		x = rows[i];
		d = add_row();
		copy_field(d->group, sizeof(d->group), "alloc");
		copy_field(d->bench, sizeof(d->bench), FLAT_BENCH ": / real-CPU figure");
		copy_field(d->params, sizeof(d->params), x.params);
		copy_field(d->impl, sizeof(d->impl), x.impl);
		copy_field(d->unit, sizeof(d->unit), "x");
		d->n = 1;
		d->min = d->value = d->max = x.value / rows[j].value;
		d->has_cpu = x.has_cpu && rows[j].has_cpu && rows[j].cpu != 0;
		if (d->has_cpu)
			d->cmin = d->cpu = d->cmax = x.cpu / rows[j].cpu;
	}
}

/* ---------------------------------------------------------------------------------------- */
/* Noise: spread of the repetitions, load of the machine                                    */
/* ---------------------------------------------------------------------------------------- */

static double spread(double min, double med, double max)
{
	return med != 0 ? (max - min) / fabs(med) : 0;
}

static int nr_noisy, nr_repeated;
static const struct row *noisiest;
static double noisiest_spread;

/* find_noise - flag the noisy rows; after sort_rows, which moves them. */
static void find_noise(void)
{
	for (int i = 0; i < nr_rows; i++) {
		struct row *r = &rows[i];
		double sv, sc = 0;

		if (r->n < 2)
			continue;
		nr_repeated++;
		sv = spread(r->min, r->value, r->max);
		if (r->has_cpu)
			sc = spread(r->cmin, r->cpu, r->cmax);
		if (sc > sv)
			sv = sc;
		if (sv > NOISE_LIMIT) {
			r->noisy = true;
			nr_noisy++;
		}
		if (sv > noisiest_spread) {
			noisiest_spread = sv;
			noisiest = r;
		}
	}
}

struct load {
	double avg[3];        /* getloadavg: 1, 5 and 15 minutes */
	uint64_t busy_ticks;  /* /proc/stat: every CPU's non-idle time, in clock ticks */
	uint64_t own_cpu_ns;  /* this process and its waited-for children */
	uint64_t when;        /* now_ns() */
	bool ok, busy_ok;
};

static struct load load_start, load_end;
static long online_cpus = 1;

static void read_load(struct load *l)
{
	FILE *f = fopen("/proc/stat", "re");
	unsigned long long v[8] = {0};
	struct rusage self, kids;

	l->when = now_ns();
	l->ok = getloadavg(l->avg, 3) == 3;
	l->busy_ok = false;
	if (f) {
		/* cpu user nice system idle iowait irq softirq steal */
		if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
			   &v[3], &v[4], &v[5], &v[6], &v[7]) == 8) {
			l->busy_ticks = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
			l->busy_ok = true;
		}
		fclose(f);
	}
	getrusage(RUSAGE_SELF, &self);
	getrusage(RUSAGE_CHILDREN, &kids);
	l->own_cpu_ns = 0;
	for (int i = 0; i < 2; i++) {
		const struct rusage *ru = i ? &kids : &self;

		l->own_cpu_ns += ((uint64_t)ru->ru_utime.tv_sec + (uint64_t)ru->ru_stime.tv_sec) *
					 1000000000u +
				 ((uint64_t)ru->ru_utime.tv_usec + (uint64_t)ru->ru_stime.tv_usec) * 1000u;
	}
}

/*
 * others_per_cpu - CPUs kept busy by other processes during the run, per online CPU: every
 * CPU's busy time from /proc/stat minus this bench's own (its children included). The end
 * load average cannot say this: it counts the bench's own threads. Negative: unknown.
 */
static double others_per_cpu(void)
{
	double elapsed = (double)(load_end.when - load_start.when) / 1e9;
	double busy, own;
	long hz = sysconf(_SC_CLK_TCK);

	if (!load_start.busy_ok || !load_end.busy_ok || elapsed < 1 || hz <= 0)
		return -1;
	busy = (double)(load_end.busy_ticks - load_start.busy_ticks) / (double)hz;
	own = (double)(load_end.own_cpu_ns - load_start.own_cpu_ns) / 1e9;
	busy -= own;
	return (busy > 0 ? busy : 0) / elapsed / (double)online_cpus;
}

/* print_load - the load lines and every WARNING, @md: as a Markdown list. */
static void print_load(FILE *f, bool md)
{
	const char *li = md ? "- " : "";
	double others = others_per_cpu();
	double start = load_start.ok ? load_start.avg[0] / (double)online_cpus : -1;

	if (load_start.ok)
		fprintf(f, "%sLoad average at the start: %.2f %.2f %.2f (1-minute: %.2f per CPU)\n",
			li, load_start.avg[0], load_start.avg[1], load_start.avg[2], start);
	if (load_end.ok)
		fprintf(f, "%sLoad average at the end: %.2f %.2f %.2f (1-minute: %.2f per CPU, the"
			   " bench's own threads included)\n",
			li, load_end.avg[0], load_end.avg[1], load_end.avg[2],
			load_end.avg[0] / (double)online_cpus);
	if (others >= 0)
		fprintf(f, "%sCPU time taken by other processes during the run: %.2f per CPU\n",
			li, others);
	if (start > LOAD_LIMIT)
		fprintf(f, "%sWARNING: load %.2f per CPU at the start (above %.1f): the figures are"
			   " not to be trusted\n",
			li, start, LOAD_LIMIT);
	if (others > LOAD_LIMIT)
		fprintf(f, "%sWARNING: other processes used %.2f of each CPU during the run"
			   " (above %.1f): the figures are not to be trusted\n",
			li, others, LOAD_LIMIT);
	if (nr_noisy)
		fprintf(f, "%sWARNING: %d of %d repeated figures spread more than %.0f %% ((max -"
			   " min) / median, marked !); the worst, %.0f %%: %s, %s, %s\n",
			li, nr_noisy, nr_repeated, NOISE_LIMIT * 100, noisiest_spread * 100,
			noisiest->bench, noisiest->params, noisiest->impl);
}

/*
 * Rows sorted by group, then bench and params in order of first appearance, then libpcpu,
 * then the others in order of arrival.
 */
static int cmp_rows(const void *a, const void *b)
{
	const struct row *x = a, *y = b;

	for (int k = 0; k < 3; k++)
		if (x->order[k] != y->order[k])
			return x->order[k] - y->order[k];
	/* libpcpu first in each row group, whichever ran first. */
	if (x->baseline != y->baseline)
		return y->baseline - x->baseline;
	return x->seq - y->seq;
}

static void sort_rows(void)
{
	for (int i = 0; i < nr_rows; i++) {
		struct row *r = &rows[i];
		int j;

		r->order[0] = group_rank(r->group);
		for (j = 0; j <= i; j++)
			if (!strcmp(rows[j].group, r->group) && !strcmp(rows[j].bench, r->bench))
				break;
		r->order[1] = j;
		for (j = 0; j <= i; j++)
			if (!strcmp(rows[j].group, r->group) && !strcmp(rows[j].bench, r->bench) &&
			    !strcmp(rows[j].params, r->params))
				break;
		r->order[2] = j;
	}
	qsort(rows, (size_t)nr_rows, sizeof(*rows), cmp_rows);
}

/* ---------------------------------------------------------------------------------------- */
/* Output                                                                                   */
/* ---------------------------------------------------------------------------------------- */

static char machine_cpu[128] = "unknown CPU";
static char machine_kernel[160] = "";

static void machine_info(void)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char buf[256];
	struct utsname u;

	while (f && fgets(buf, sizeof(buf), f)) {
		char *colon = strchr(buf, ':');

		if (strncmp(buf, "model name", 10) || !colon)
			continue;
		colon += 1 + strspn(colon + 1, " \t");
		colon[strcspn(colon, "\n")] = '\0';
		snprintf(machine_cpu, sizeof(machine_cpu), "%s", colon);
		break;
	}
	if (f)
		fclose(f);
	if (!uname(&u))
		snprintf(machine_kernel, sizeof(machine_kernel), "%s %s", u.sysname, u.release);
}

static const char *cpu_mode_str(void)
{
	switch (pcpu_cpu_mode()) {
	case PCPU_MODE_RSEQ_GLIBC:
		return "rseq-glibc";
	case PCPU_MODE_RSEQ_OWN:
		return "rseq-own";
	case PCPU_MODE_GETCPU:
		return "getcpu";
	default:
		return "unknown";
	}
}

static void format_value(char *buf, size_t size, double v)
{
	double a = fabs(v);

	if (a < 10)
		snprintf(buf, size, "%.2f", v);
	else if (a < 1000)
		snprintf(buf, size, "%.1f", v);
	else
		snprintf(buf, size, "%.0f", v);
}

static void format_ratio(char *buf, size_t size, double ratio)
{
	if (isnan(ratio) || isinf(ratio))
		snprintf(buf, size, "-");
	else if (ratio < 10)
		snprintf(buf, size, "%.2fx", ratio);
	else
		snprintf(buf, size, "%.1fx", ratio);
}

static void print_header(FILE *f)
{
	fprintf(f, "pcpu-bench %d.%d.%d: %s, %ld online CPUs, %s, glibc %s, libpcpu mode %s\n",
		PCPU_VERSION_MAJOR, PCPU_VERSION_MINOR, PCPU_VERSION_PATCH, machine_cpu,
		online_cpus, machine_kernel, gnu_get_libc_version(), cpu_mode_str());
	fprintf(f, "%s suite, %d runs per figure: median, then min..max (! marks a spread above"
		   " %.0f %%); vs libpcpu = value / libpcpu's value in this run (above 1.00x: costs"
		   " more than libpcpu, or for a rate, does more)\n",
		bopt.full ? "full" : "default", bopt.reps, NOISE_LIMIT * 100);
	fputs("CPU/op: the whole process's CPU time per operation (getrusage, every thread: the"
	      " library's balancer included)\n",
	      f);
}

/* One row's cells, formatted. */
struct cells {
	char v[24], range[56], ratio[16], cpu[24], crange[56], cratio[16];
};

static void format_range(char *buf, size_t size, int n, double min, double max, bool noisy)
{
	char a[24], b[24];

	if (n < 2) {
		snprintf(buf, size, "-");
		return;
	}
	format_value(a, sizeof(a), min);
	format_value(b, sizeof(b), max);
	snprintf(buf, size, "%s..%s%s", a, b, noisy ? " !" : "");
}

static void row_cells(const struct row *r, struct cells *c)
{
	bool nv = r->n > 1 && spread(r->min, r->value, r->max) > NOISE_LIMIT;
	bool nc = r->n > 1 && r->has_cpu && spread(r->cmin, r->cpu, r->cmax) > NOISE_LIMIT;

	format_value(c->v, sizeof(c->v), r->value);
	format_range(c->range, sizeof(c->range), r->n, r->min, r->max, nv);
	format_ratio(c->ratio, sizeof(c->ratio), r->ratio);
	if (r->has_cpu) {
		format_value(c->cpu, sizeof(c->cpu), r->cpu);
		format_range(c->crange, sizeof(c->crange), r->n, r->cmin, r->cmax, nc);
		format_ratio(c->cratio, sizeof(c->cratio), r->cratio);
	} else {
		snprintf(c->cpu, sizeof(c->cpu), "-");
		snprintf(c->crange, sizeof(c->crange), "-");
		snprintf(c->cratio, sizeof(c->cratio), "-");
	}
}

static bool group_has_cpu(const char *group)
{
	for (int i = 0; i < nr_rows; i++)
		if (!strcmp(rows[i].group, group) && rows[i].has_cpu)
			return true;
	return false;
}

#define MAXW(w, s)                                                                                 \
	do {                                                                                       \
		int l_ = (int)strlen(s);                                                           \
		if (l_ > (w))                                                                      \
			(w) = l_;                                                                  \
	} while (0)

static void print_table(FILE *f)
{
	int wb = 0, wp = 0, wi = 0, wv = 0, wr = 0, wc = 0, wcr = 0;
	const char *group = "";
	bool cpu_cols = false;
	struct cells c;

	print_header(f);
	for (int i = 0; i < nr_rows; i++) {
		const struct row *r = &rows[i];
		bool new_bench = i == 0 || strcmp(r->bench, rows[i - 1].bench) ||
				 strcmp(r->group, rows[i - 1].group);
		bool new_params = new_bench || strcmp(r->params, rows[i - 1].params);

		if (strcmp(group, r->group)) {
			group = r->group;
			cpu_cols = group_has_cpu(group);
			/* Columns as wide as this group's widest cell. */
			wb = 9, wp = 6, wi = 14, wv = 6, wr = 8, wc = 6, wcr = 8;
			for (int j = i; j < nr_rows && !strcmp(rows[j].group, group); j++) {
				row_cells(&rows[j], &c);
				MAXW(wb, rows[j].bench);
				MAXW(wp, rows[j].params);
				MAXW(wi, rows[j].impl);
				MAXW(wv, c.v);
				MAXW(wr, c.range);
				MAXW(wc, c.cpu);
				MAXW(wcr, c.crange);
			}
			fprintf(f, "\n[%s]\n%-*s  %-*s  %-*s  %*s %-*s %-7s  %s", group, wb,
				"benchmark", wp, "params", wi, "implementation", wv, "median", wr,
				"min..max", "unit", "vs libpcpu");
			if (cpu_cols)
				fprintf(f, "  %*s %-*s  %s", wc, "CPU/op", wcr, "min..max",
					"vs libpcpu");
			fputc('\n', f);
		} else if (new_bench) {
			fputc('\n', f);
		}
		row_cells(r, &c);
		fprintf(f, "%-*s  %-*s  %-*s  %*s %-*s %-7s  %*s", wb, new_bench ? r->bench : "",
			wp, new_params ? r->params : "", wi, r->impl, wv, c.v, wr, c.range, r->unit,
			cpu_cols ? 10 : 0, c.ratio);
		if (cpu_cols)
			fprintf(f, "  %*s %-*s  %s", wc, c.cpu, wcr, c.crange, c.cratio);
		fputc('\n', f);
	}
	if (nr_notes)
		fputs("\nnotes:\n", f);
	for (int i = 0; i < nr_notes; i++)
		fprintf(f, "  %s\n", notes[i]);
	fputc('\n', f);
	print_load(f, false);
}

/* A Markdown table cell: a | would end the cell. */
static void md_cell(FILE *f, const char *s)
{
	fputs("| ", f);
	for (; *s; s++) {
		if (*s == '|')
			fputc('\\', f);
		fputc(*s, f);
	}
	fputc(' ', f);
}

/* What each group measures, for the Markdown sections. */
static const char *group_about(const char *group)
{
	if (!strcmp(group, "hot"))
		return "Nanoseconds per counter update, from 1 thread and from one thread per CPU"
		       " (pinned and unpinned): libpcpu's this-CPU add beside hand-made peers and"
		       " librseq's rseq add.";
	if (!strcmp(group, "alloc"))
		return "Allocating and freeing per-CPU objects: the caller's ns and the whole"
		       " process's CPU ns per object, at 2 real CPUs and fake topologies (the process"
		       " on the real CPUs). Every object comes back zero on every CPU: librseq"
		       " allocates with zmalloc; its malloc row does not zero and is not the same"
		       " work. Padded arrays are one cache line per CPU, zeroed. The rows \"/ real-CPU"
		       " figure\" divide each topology's pair figure by the real-CPU one.";
	if (!strcmp(group, "memory"))
		return "What a per-CPU 8-byte counter costs in memory (Pss), after freeing and"
		       " trimming, and with one CPU allowed out of 2, 64 or 256.";
	if (!strcmp(group, "read"))
		return "Summing per-CPU counters over every CPU: one counter over and over, and"
		       " 10,000 counters in one pass.";
	return NULL;
}

/* print_markdown - the whole run as doc/perf.md: machine, command, one table per group. */
static void print_markdown(FILE *f)
{
	char date[64];
	time_t now = time(NULL);
	struct tm tm;
	const char *group = "";
	bool cpu_cols = false;
	struct cells c;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M UTC", &tm);
	fputs("# libpcpu performance\n\n"
	      "Generated by `pcpu-bench --markdown`; regenerate it with the command below, on a"
	      " quiet machine. The README's summary comes from these tables.\n\n",
	      f);
	fprintf(f, "- Machine: %s, %ld online CPUs\n", machine_cpu, online_cpus);
	fprintf(f, "- Kernel: %s, glibc %s, libpcpu %d.%d.%d in CPU mode %s\n", machine_kernel,
		gnu_get_libc_version(), PCPU_VERSION_MAJOR, PCPU_VERSION_MINOR, PCPU_VERSION_PATCH,
		cpu_mode_str());
	fprintf(f, "- Date: %s\n", date);
	fprintf(f, "- Command: `%s`\n", command);
	fprintf(f, "- Suite: %s, %d runs per figure: the median, then min and max of the runs"
		   " (! marks a spread (max - min) / median above %.0f %%)\n",
		bopt.full ? "full" : "default", bopt.reps, NOISE_LIMIT * 100);
	fputs("- vs libpcpu: the value divided by libpcpu's of the same row in this run (above"
	      " 1.00x: costs more than libpcpu, or for a rate, does more)\n"
	      "- CPU/op: the whole process's CPU time per operation (getrusage: every thread, the"
	      " library's balancer included)\n",
	      f);
	print_load(f, true);
	for (int i = 0; i < nr_rows; i++) {
		const struct row *r = &rows[i];

		if (strcmp(group, r->group)) {
			group = r->group;
			cpu_cols = group_has_cpu(group);
			fprintf(f, "\n## %s\n\n", group);
			if (group_about(group))
				fprintf(f, "%s\n\n", group_about(group));
			fputs("| benchmark | params | implementation | median | min..max | unit |"
			      " vs libpcpu |",
			      f);
			if (cpu_cols)
				fputs(" CPU/op | min..max | vs libpcpu |", f);
			fputs("\n|---|---|---|--:|--:|---|--:|", f);
			if (cpu_cols)
				fputs("--:|--:|--:|", f);
			fputc('\n', f);
		}
		row_cells(r, &c);
		md_cell(f, r->bench);
		md_cell(f, r->params);
		md_cell(f, r->impl);
		md_cell(f, c.v);
		md_cell(f, c.range);
		md_cell(f, r->unit);
		md_cell(f, c.ratio);
		if (cpu_cols) {
			md_cell(f, c.cpu);
			md_cell(f, c.crange);
			md_cell(f, c.cratio);
		}
		fputs("|\n", f);
	}
	if (nr_notes)
		fputs("\n## Notes\n\n", f);
	for (int i = 0; i < nr_notes; i++)
		fprintf(f, "- %s\n", notes[i]);
}

/* The project's one JSON string writer (lib/emit.c, compiled into the bench). */
static void json_str(FILE *f, const char *s)
{
	pcpu_emit_json_string(f, s);
}

static void print_json(FILE *f)
{
	fprintf(f, "{\n  \"tool\": \"pcpu-bench\",\n  \"version\": \"%d.%d.%d\"",
		PCPU_VERSION_MAJOR, PCPU_VERSION_MINOR, PCPU_VERSION_PATCH);
	fprintf(f, ",\n  \"suite\": \"%s\",\n  \"reps\": %d,\n  \"machine\": {\"cpu\": ",
		bopt.full ? "full" : "default", bopt.reps);
	json_str(f, machine_cpu);
	fprintf(f, ", \"online_cpus\": %ld, \"kernel\": ", sysconf(_SC_NPROCESSORS_ONLN));
	json_str(f, machine_kernel);
	fputs(", \"glibc\": ", f);
	json_str(f, gnu_get_libc_version());
	fputs(", \"libpcpu_cpu_mode\": ", f);
	json_str(f, cpu_mode_str());
	fputs("},\n  \"load\": {", f);
	if (load_start.ok)
		fprintf(f, "\"start\": [%.2f, %.2f, %.2f], ", load_start.avg[0], load_start.avg[1],
			load_start.avg[2]);
	if (load_end.ok)
		fprintf(f, "\"end\": [%.2f, %.2f, %.2f], ", load_end.avg[0], load_end.avg[1],
			load_end.avg[2]);
	if (others_per_cpu() >= 0)
		fprintf(f, "\"others_per_cpu\": %.3f, ", others_per_cpu());
	fprintf(f, "\"noisy_figures\": %d}", nr_noisy);
	fputs(",\n  \"results\": [", f);
	for (int i = 0; i < nr_rows; i++) {
		const struct row *r = &rows[i];

		fputs(i ? ",\n    {" : "\n    {", f);
		fputs("\"group\": ", f);
		json_str(f, r->group);
		fputs(", \"bench\": ", f);
		json_str(f, r->bench);
		fputs(", \"params\": ", f);
		json_str(f, r->params);
		fputs(", \"impl\": ", f);
		json_str(f, r->impl);
		fprintf(f, ", \"value\": %.6g, \"min\": %.6g, \"max\": %.6g, \"runs\": %d",
			r->value, r->min, r->max, r->n);
		fputs(", \"unit\": ", f);
		json_str(f, r->unit);
		if (isnan(r->ratio) || isinf(r->ratio))
			fputs(", \"ratio\": null", f);
		else
			fprintf(f, ", \"ratio\": %.4f", r->ratio);
		if (r->has_cpu) {
			fprintf(f, ", \"cpu_ns\": %.6g, \"cpu_ns_min\": %.6g, \"cpu_ns_max\": %.6g",
				r->cpu, r->cmin, r->cmax);
			if (isnan(r->cratio) || isinf(r->cratio))
				fputs(", \"cpu_ratio\": null", f);
			else
				fprintf(f, ", \"cpu_ratio\": %.4f", r->cratio);
		}
		fprintf(f, ", \"noisy\": %s", r->noisy ? "true" : "false");
		fprintf(f, ", \"baseline\": %s}", r->baseline ? "true" : "false");
	}
	fputs("\n  ],\n  \"notes\": [", f);
	for (int i = 0; i < nr_notes; i++) {
		fputs(i ? ", " : "", f);
		json_str(f, notes[i]);
	}
	fputs("]\n}\n", f);
}

static void csv_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

static void print_csv(FILE *f)
{
	fputs("group,bench,params,impl,value,min,max,runs,unit,ratio,cpu_ns,cpu_ns_min,cpu_ns_max,"
	      "cpu_ratio\n",
	      f);
	for (int i = 0; i < nr_rows; i++) {
		const struct row *r = &rows[i];

		csv_str(f, r->group);
		fputc(',', f);
		csv_str(f, r->bench);
		fputc(',', f);
		csv_str(f, r->params);
		fputc(',', f);
		csv_str(f, r->impl);
		fprintf(f, ",%.6g,%.6g,%.6g,%d,", r->value, r->min, r->max, r->n);
		csv_str(f, r->unit);
		if (isnan(r->ratio) || isinf(r->ratio))
			fputs(",", f);
		else
			fprintf(f, ",%.4f", r->ratio);
		if (r->has_cpu)
			fprintf(f, ",%.6g,%.6g,%.6g", r->cpu, r->cmin, r->cmax);
		else
			fputs(",,,", f);
		if (isnan(r->cratio) || isinf(r->cratio))
			fputs(",\n", f);
		else
			fprintf(f, ",%.4f\n", r->cratio);
	}
}

/* ---------------------------------------------------------------------------------------- */
/* Charts                                                                                   */
/* ---------------------------------------------------------------------------------------- */

static bool in_path(const char *prog)
{
	const char *path = getenv("PATH");
	char buf[4096];

	if (!path)
		path = "/usr/bin:/bin";
	while (*path) {
		size_t len = strcspn(path, ":");

		snprintf(buf, sizeof(buf), "%.*s/%s", (int)len, path, prog);
		if (len && !access(buf, X_OK))
			return true;
		path += len + (path[len] == ':');
	}
	return false;
}

static void slug(char *dst, size_t size, const char *src)
{
	size_t n = 0;
	bool dash = false;

	for (; *src && n + 1 < size; src++) {
		if ((*src >= 'a' && *src <= 'z') || (*src >= '0' && *src <= '9')) {
			dst[n++] = *src;
			dash = false;
		} else if (*src >= 'A' && *src <= 'Z') {
			dst[n++] = (char)(*src - 'A' + 'a');
			dash = false;
		} else if (!dash && n) {
			dst[n++] = '-';
			dash = true;
		}
	}
	while (n && dst[n - 1] == '-')
		n--;
	dst[n] = '\0';
}

/* gnuplot single-quoted string: a quote is doubled. */
static void gp_str(FILE *f, const char *s)
{
	fputc('\'', f);
	for (; *s; s++) {
		if (*s == '\'')
			fputc('\'', f);
		fputc(*s, f);
	}
	fputc('\'', f);
}

/* One chart per (group, bench): x = params, one bar per implementation. */
static int plot_chart(FILE *gp, int first)
{
	const struct row *r0 = &rows[first];
	const char *impls[16], *params[64];
	int ni = 0, np = 0, end = first, i, a, b;
	double lo = INFINITY, hi = 0;
	char name[160], datpath[4096], pngpath[4096];
	FILE *dat;

	while (end < nr_rows && !strcmp(rows[end].group, r0->group) &&
	       !strcmp(rows[end].bench, r0->bench))
		end++;
	for (i = first; i < end; i++) {
		for (a = 0; a < ni && strcmp(impls[a], rows[i].impl); a++)
			;
		if (a == ni && ni < 16)
			impls[ni++] = rows[i].impl;
		for (b = 0; b < np && strcmp(params[b], rows[i].params); b++)
			;
		if (b == np && np < 64)
			params[np++] = rows[i].params;
		if (rows[i].value > 0 && rows[i].value < lo)
			lo = rows[i].value;
		if (rows[i].value > hi)
			hi = rows[i].value;
	}
	slug(name, sizeof(name), r0->bench);
	snprintf(datpath, sizeof(datpath), "%s/%s-%s.dat", opt.plot_dir, r0->group, name);
	snprintf(pngpath, sizeof(pngpath), "%s/%s-%s.png", opt.plot_dir, r0->group, name);
	dat = fopen(datpath, "w");
	if (!dat) {
		fprintf(stderr, "pcpu-bench: %s: %s\n", datpath, strerror(errno));
		return end;
	}
	fprintf(dat, "# %s: %s (%s)\n", r0->group, r0->bench, r0->unit);
	for (b = 0; b < np; b++) {
		fprintf(dat, "%s", params[b]);
		for (a = 0; a < ni; a++) {
			for (i = first; i < end; i++)
				if (!strcmp(rows[i].impl, impls[a]) && !strcmp(rows[i].params, params[b]))
					break;
			if (i < end)
				fprintf(dat, "\t%.6g", rows[i].value);
			else
				fputs("\t?", dat);
		}
		fputc('\n', dat);
	}
	fclose(dat);

	fputs("set output ", gp);
	gp_str(gp, pngpath);
	fputs("\nset title ", gp);
	{
		char title[256];

		snprintf(title, sizeof(title), "%s: %s (median of %d runs)", r0->group, r0->bench,
			 bopt.reps);
		gp_str(gp, title);
	}
	fputs("\nset ylabel ", gp);
	gp_str(gp, r0->unit);
	/* Values spanning decades get a log scale, which cannot start at 0. */
	if (lo > 0 && hi / lo > 100)
		fputs("\nset logscale y\nset yrange [*:*]\nplot ", gp);
	else
		fputs("\nunset logscale y\nset yrange [0:*]\nplot ", gp);
	for (a = 0; a < ni; a++) {
		if (a)
			fputs(", '' ", gp);
		else
			gp_str(gp, datpath);
		fprintf(gp, " using %d%s title ", a + 2, a ? "" : ":xtic(1)");
		gp_str(gp, impls[a]);
	}
	fputc('\n', gp);
	return end;
}

static void plot(void)
{
	char script[4096], cmd[8192];
	FILE *gp;
	int i, charts = 0;

	if (mkdir(opt.plot_dir, 0755) && errno != EEXIST) {
		fprintf(stderr, "pcpu-bench: mkdir %s: %s\n", opt.plot_dir, strerror(errno));
		return;
	}
	snprintf(script, sizeof(script), "%s/pcpu-bench.gp", opt.plot_dir);
	gp = fopen(script, "w");
	if (!gp) {
		fprintf(stderr, "pcpu-bench: %s: %s\n", script, strerror(errno));
		return;
	}
	fputs("# pcpu-bench charts: gnuplot pcpu-bench.gp\n"
	      "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
	      "  set terminal pngcairo size 1100,550 noenhanced font ',10'\n"
	      "} else {\n"
	      "  set terminal png size 1100,550 noenhanced\n"
	      "}\n"
	      "set datafile separator '\\t'\n"
	      "set datafile missing '?'\n"
	      "set style data histogram\n"
	      "set style histogram clustered gap 1\n"
	      "set style fill solid 0.85 border -1\n"
	      "set boxwidth 0.9\n"
	      "set key outside right top\n"
	      "set grid ytics\n"
	      "set xtics rotate by -25 nomirror\n",
	      gp);
	for (i = 0; i < nr_rows; charts++)
		i = plot_chart(gp, i);
	fclose(gp);
	if (!in_path("gnuplot")) {
		fprintf(stderr,
			"pcpu-bench: gnuplot is not installed: wrote the data and %s, but no PNG "
			"(apt-get install gnuplot-nox, then run gnuplot on it)\n",
			script);
		return;
	}
	snprintf(cmd, sizeof(cmd), "gnuplot '%s'", script);
	if (system(cmd))
		fprintf(stderr, "pcpu-bench: gnuplot failed on %s\n", script);
	else
		fprintf(stderr, "pcpu-bench: wrote %d charts to %s/\n", charts, opt.plot_dir);
}

/* ---------------------------------------------------------------------------------------- */
/* Command line                                                                             */
/* ---------------------------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fputs("Usage: pcpu-bench [OPTION]...\n"
	      "Measure libpcpu and its peers side by side in one run and print ns/op (or bytes)\n"
	      "with the ratio to libpcpu's value of the same benchmark.\n"
	      "\n"
	      "Options:\n"
	      "  --only GROUP[,GROUP]  run only these groups: hot, alloc, memory, read\n"
	      "  --full                the long suite: every repetition and longer limits for the\n"
	      "                        1M-object rows, more counters, longer timed runs\n"
	      "  --reps N              timed runs per measurement: min, median and max are\n"
	      "                        reported (default 5; the 1M-object rows take at most 3\n"
	      "                        unless --full)\n"
	      "  --target SECONDS      how long one timed run should last (default 0.03,\n"
	      "                        0.1 with --full)\n"
	      "  --json                print the results as JSON instead of a table\n"
	      "  --csv                 print the results as CSV instead of a table\n"
	      "  --markdown            print the results as Markdown tables with the machine,\n"
	      "                        date and command (doc/perf.md is made this way)\n"
	      "  --plot DIR            also write one PNG chart per benchmark into DIR with\n"
	      "                        gnuplot (the data and script are written even without it)\n"
	      "  --list                list the jobs (group, PCPU_CONF, CPU confinement) and exit\n"
	      "  -q, --quiet           no progress line on stderr\n"
	      "  -h, --help            this help\n"
	      "\n"
	      "Groups:\n"
	      "  hot     ns per update, 1 thread and one thread per CPU (pinned, unpinned):\n"
	      "          pcpu_this_add, pcpu_counter_add, a plain add through a pointer (the\n"
	      "          floor), a thread-local add, one shared atomic counter, sched_getcpu +\n"
	      "          atomic on a padded array, and pcpu_this_add with PCPU_CONF=cpu_mode=getcpu\n"
	      "  alloc   alloc+free pairs of 8 bytes at the machine's CPUs and fake 64x4,\n"
	      "          1024x16 and 4096x64 topologies (with each one's ratio to the real-CPU\n"
	      "          figure), and of 64-1024 bytes at 2 and 64 CPUs; pairs from 1, 2 (pinned)\n"
	      "          and 4 threads at each topology; 1M 8-byte objects allocated then freed\n"
	      "          in LIFO, FIFO and random order (2, 64, 1024 CPUs); 1M objects of 8-1024\n"
	      "          bytes (2 and 64 CPUs). Against librseq's per-CPU mempool (zmalloc)\n"
	      "          and padded per-CPU arrays from jemalloc and glibc; caller's ns and\n"
	      "          process CPU ns per object\n"
	      "  memory  bytes per CPU per 8-byte counter, Pss left after freeing and after\n"
	      "          trimming; resident bytes per counter and time to sum it when the\n"
	      "          process may use one CPU of 2, 64 or 256, for index=cpu and index=cid\n"
	      "  read    ns to sum one counter and to sum 10,000 counters over 2, 64, 256 and\n"
	      "          1024 CPUs, against padded arrays\n"
	      "\n"
	      "Where the bench was built with librseq (pkg-config librseq), every group also\n"
	      "measures librseq: its rseq add on a counter, its per-CPU mempool's zmalloc and\n"
	      "free, pools with the COW-zero populate policy and max_nr_cpus set to the\n"
	      "topology's CPUs.\n"
	      "\n"
	      "Noise: every figure is repeated (--reps) and shown as median and min..max; the\n"
	      "load average at the start and end and the CPU time other processes took during\n"
	      "the run are printed, with a WARNING line when a figure's spread (max - min) /\n"
	      "median exceeds 10 % or the load from others exceeds 0.5 per CPU.\n"
	      "\n"
	      "Every job runs in a child process of its own (this program run again), with\n"
	      "PCPU_CONF set for the job (topology=NxM, cpu_mode=getcpu, index=cid) and, for\n"
	      "the confined memory jobs, the CPU affinity set before libpcpu initialises. A\n"
	      "PCPU_CONF in the environment applies to the jobs that set none.\n"
	      "Times come from CLOCK_MONOTONIC; ratios compare rows of the same run.\n",
	      f);
}

static bool group_selected(const char *g)
{
	const char *p = opt.only;
	size_t len = strlen(g);

	if (!p)
		return true;
	while (*p) {
		size_t n = strcspn(p, ",");

		if (n == len && !strncmp(p, g, len))
			return true;
		p += n + (p[n] == ',');
	}
	return false;
}

static int child_main(const char *group)
{
	/* The parent reads our pipe; if it goes away, stop quietly. */
	signal(SIGPIPE, SIG_DFL);
	if (!strcmp(group, "hot"))
		group_hot();
	else if (!strcmp(group, "alloc"))
		group_alloc();
	else if (!strcmp(group, "memory"))
		group_memory();
	else if (!strcmp(group, "read"))
		group_read();
	else
		die("unknown group \"%s\"", group);
	return 0;
}

enum {
	OPT_ONLY = 256,
	OPT_FULL,
	OPT_REPS,
	OPT_TARGET,
	OPT_JSON,
	OPT_CSV,
	OPT_MARKDOWN,
	OPT_PLOT,
	OPT_LIST,
	OPT_CHILD,
	OPT_CHILD_FD,
	OPT_CHILD_PARAMS,
};

static const struct option longopts[] = {
	{"only", required_argument, NULL, OPT_ONLY},
	{"full", no_argument, NULL, OPT_FULL},
	{"reps", required_argument, NULL, OPT_REPS},
	{"target", required_argument, NULL, OPT_TARGET},
	{"json", no_argument, NULL, OPT_JSON},
	{"csv", no_argument, NULL, OPT_CSV},
	{"markdown", no_argument, NULL, OPT_MARKDOWN},
	{"plot", required_argument, NULL, OPT_PLOT},
	{"list", no_argument, NULL, OPT_LIST},
	{"quiet", no_argument, NULL, 'q'},
	{"help", no_argument, NULL, 'h'},
	/* Hidden: how the parent runs one job. */
	{"child", required_argument, NULL, OPT_CHILD},
	{"child-fd", required_argument, NULL, OPT_CHILD_FD},
	{"child-params", required_argument, NULL, OPT_CHILD_PARAMS},
	{NULL, 0, NULL, 0},
};

int main(int argc, char **argv)
{
	const char *child = NULL;
	bool target_set = false;
	char self[4096];
	ssize_t len;
	int c, njobs = 0, idx = 0;
	char *end;

	while ((c = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_ONLY:
			opt.only = optarg;
			break;
		case OPT_FULL:
			bopt.full = true;
			break;
		case OPT_REPS:
			bopt.reps = (int)strtol(optarg, &end, 10);
			if (*end || bopt.reps < 1 || bopt.reps > 64)
				die("--reps takes a number from 1 to 64");
			break;
		case OPT_TARGET:
			bopt.target = strtod(optarg, &end);
			if (*end || !(bopt.target > 0) || bopt.target > 60)
				die("--target takes seconds, above 0 and at most 60");
			target_set = true;
			break;
		case OPT_JSON:
			opt.format = FMT_JSON;
			break;
		case OPT_CSV:
			opt.format = FMT_CSV;
			break;
		case OPT_MARKDOWN:
			opt.format = FMT_MARKDOWN;
			break;
		case OPT_PLOT:
			opt.plot_dir = optarg;
			break;
		case OPT_LIST:
			opt.list = true;
			break;
		case 'q':
			opt.quiet = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case OPT_CHILD:
			child = optarg;
			break;
		case OPT_CHILD_FD:
			bench_pipe = (int)strtol(optarg, &end, 10);
			if (*end || bench_pipe < 0)
				die("bad --child-fd");
			break;
		case OPT_CHILD_PARAMS:
			bopt.params = optarg;
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "pcpu-bench: unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (bopt.full && !target_set)
		bopt.target = 0.1;
	if (child)
		return child_main(child);

	if (opt.only) {
		const char *p = opt.only;

		while (*p) {
			size_t n = strcspn(p, ",");
			int g;

			for (g = 0; g < NR_GROUPS; g++)
				if (strlen(groups[g]) == n && !strncmp(groups[g], p, n))
					break;
			if (g == NR_GROUPS)
				die("--only: unknown group \"%.*s\" (hot, alloc, memory, read)", (int)n,
				    p);
			p += n + (p[n] == ',');
		}
	}
	for (size_t j = 0; j < NR_JOBS; j++)
		njobs += group_selected(jobs[j].group);
	if (opt.list) {
		for (size_t j = 0; j < NR_JOBS; j++)
			if (group_selected(jobs[j].group))
				printf("%-7s %-34s PCPU_CONF=%-26s %s%s%s\n", jobs[j].group,
				       jobs[j].label, jobs[j].conf ? jobs[j].conf : "(inherited)",
				       jobs[j].confine ? "one CPU " : "all CPUs",
				       jobs[j].params ? " " : "", jobs[j].params ? jobs[j].params : "");
		return 0;
	}

	/* The command as typed, for the Markdown header: the program by its base name. */
	{
		const char *base = strrchr(argv[0], '/');
		size_t off;

		snprintf(command, sizeof(command), "%s", base ? base + 1 : argv[0]);
		for (int i = 1; i < argc; i++) {
			off = strlen(command);
			snprintf(command + off, sizeof(command) - off, " %s", argv[i]);
		}
	}
	len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (len <= 0)
		die("readlink /proc/self/exe: %s", strerror(errno));
	self[len] = '\0';
	machine_info();
	online_cpus = sysconf(_SC_NPROCESSORS_ONLN);
	if (online_cpus < 1)
		online_cpus = 1;
	read_load(&load_start);
	t_start = now_ns();
	for (size_t j = 0; j < NR_JOBS; j++)
		if (group_selected(jobs[j].group))
			run_job(self, &jobs[j], ++idx, njobs);
	clear_progress();
	read_load(&load_end);
#ifndef PCPU_BENCH_LIBRSEQ
	add_note("%s", LIBRSEQ_ABSENT);
#endif

	derive_flatness();
	compute_ratios();
	sort_rows();
	find_noise();
	switch (opt.format) {
	case FMT_JSON:
		print_json(stdout);
		break;
	case FMT_CSV:
		print_csv(stdout);
		/* CSV has no place for them: the load and any WARNING go to stderr. */
		print_load(stderr, false);
		break;
	case FMT_MARKDOWN:
		print_markdown(stdout);
		break;
	default:
		print_table(stdout);
		fprintf(stdout, "\n(%.0f s)\n", (double)(now_ns() - t_start) / 1e9);
		break;
	}
	if (opt.plot_dir && nr_rows)
		plot();
	for (int i = 0; i < nr_notes; i++)
		if (!strncmp(notes[i], "ERROR", 5))
			return 1;
	return 0;
}
