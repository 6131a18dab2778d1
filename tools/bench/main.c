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
	{"alloc", "alloc, real CPUs", NULL, NULL, false},
	{"alloc", "alloc, fake 64x4", "topology=64x4", NULL, false},
	{"alloc", "alloc, fake 256x4", "topology=256x4", NULL, false},
	{"memory", "memory, real CPUs", NULL, NULL, false},
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
	char group[16], bench[80], params[64], impl[64], unit[16];
	double value, ratio;
	bool baseline;
	int order[3]; /* group, bench, params: rank of first appearance */
	int seq;
};

static struct row *rows;
static int nr_rows;
static char **notes;
static int nr_notes;

enum format { FMT_TABLE, FMT_JSON, FMT_CSV };

static struct {
	enum format format;
	const char *plot_dir;
	const char *only;
	bool quiet;
	bool list;
} opt;

static uint64_t t_start;
static bool progress_shown;

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
	char *f[8];
	int n = 0;
	char *save = NULL, *tok;

	line[strcspn(line, "\n")] = '\0';
	for (tok = strtok_r(line, "\t", &save); tok && n < 8; tok = strtok_r(NULL, "\t", &save))
		f[n++] = tok;
	if (n < 1)
		return;
	if (!strcmp(f[0], "P") && n >= 2) {
		show_progress(job, njobs, f[1], false);
	} else if (!strcmp(f[0], "N") && n >= 2) {
		add_note("%s", f[1]);
	} else if (!strcmp(f[0], "R") && n == 8) {
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
		r->value = strtod(f[5], NULL);
		copy_field(r->unit, sizeof(r->unit), f[6]);
		r->baseline = f[7][0] == '1';
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
		for (int j = 0; j < nr_rows; j++) {
			struct row *b = &rows[j];

			if (!b->baseline || strcmp(b->group, r->group) || strcmp(b->bench, r->bench) ||
			    strcmp(b->params, r->params))
				continue;
			if (b->value != 0)
				r->ratio = r->value / b->value;
			break;
		}
	}
}

/* Rows sorted by group, then bench and params in order of first appearance, then arrival. */
static int cmp_rows(const void *a, const void *b)
{
	const struct row *x = a, *y = b;

	for (int k = 0; k < 3; k++)
		if (x->order[k] != y->order[k])
			return x->order[k] - y->order[k];
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

static void format_ratio(char *buf, size_t size, const struct row *r)
{
	if (isnan(r->ratio) || isinf(r->ratio))
		snprintf(buf, size, "-");
	else if (r->ratio < 10)
		snprintf(buf, size, "%.2fx", r->ratio);
	else
		snprintf(buf, size, "%.1fx", r->ratio);
}

static void print_header(FILE *f)
{
	fprintf(f, "pcpu-bench %d.%d.%d: %s, %ld online CPUs, %s, glibc %s, libpcpu mode %s\n",
		PCPU_VERSION_MAJOR, PCPU_VERSION_MINOR, PCPU_VERSION_PATCH, machine_cpu,
		sysconf(_SC_NPROCESSORS_ONLN), machine_kernel, gnu_get_libc_version(),
		cpu_mode_str());
	fprintf(f, "%s suite, median of %d runs; vs libpcpu = value / libpcpu's value in this run"
		   " (above 1.00x: costs more than libpcpu)\n",
		bopt.full ? "full" : "default", bopt.reps);
}

static void print_table(FILE *f)
{
	int wb = 9, wp = 6, wi = 14;
	const char *group = "";

	for (int i = 0; i < nr_rows; i++) {
		int lb = (int)strlen(rows[i].bench), lp = (int)strlen(rows[i].params);
		int li = (int)strlen(rows[i].impl);

		wb = lb > wb ? lb : wb;
		wp = lp > wp ? lp : wp;
		wi = li > wi ? li : wi;
	}
	print_header(f);
	for (int i = 0; i < nr_rows; i++) {
		const struct row *r = &rows[i];
		bool new_bench = i == 0 || strcmp(r->bench, rows[i - 1].bench) ||
				 strcmp(r->group, rows[i - 1].group);
		bool new_params = new_bench || strcmp(r->params, rows[i - 1].params);
		char v[32], ratio[32];

		if (strcmp(group, r->group)) {
			group = r->group;
			fprintf(f, "\n[%s]\n%-*s  %-*s  %-*s  %10s %-6s  %s\n", group, wb, "benchmark",
				wp, "params", wi, "implementation", "value", "unit", "vs libpcpu");
		} else if (new_bench) {
			fputc('\n', f);
		}
		format_value(v, sizeof(v), r->value);
		format_ratio(ratio, sizeof(ratio), r);
		fprintf(f, "%-*s  %-*s  %-*s  %10s %-6s  %s\n", wb, new_bench ? r->bench : "", wp,
			new_params ? r->params : "", wi, r->impl, v, r->unit, ratio);
	}
	if (nr_notes)
		fputs("\nnotes:\n", f);
	for (int i = 0; i < nr_notes; i++)
		fprintf(f, "  %s\n", notes[i]);
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
	fputs("},\n  \"results\": [", f);
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
		fprintf(f, ", \"value\": %.6g, \"unit\": ", r->value);
		json_str(f, r->unit);
		if (isnan(r->ratio) || isinf(r->ratio))
			fputs(", \"ratio\": null", f);
		else
			fprintf(f, ", \"ratio\": %.4f", r->ratio);
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
	fputs("group,bench,params,impl,value,unit,ratio\n", f);
	for (int i = 0; i < nr_rows; i++) {
		const struct row *r = &rows[i];

		csv_str(f, r->group);
		fputc(',', f);
		csv_str(f, r->bench);
		fputc(',', f);
		csv_str(f, r->params);
		fputc(',', f);
		csv_str(f, r->impl);
		fprintf(f, ",%.6g,", r->value);
		csv_str(f, r->unit);
		if (isnan(r->ratio) || isinf(r->ratio))
			fputs(",\n", f);
		else
			fprintf(f, ",%.4f\n", r->ratio);
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
	      "  --full                the long suite: 1M objects in the 2017 experiment, more\n"
	      "                        counters, longer timed runs (several minutes)\n"
	      "  --reps N              timed runs per measurement, the median is reported\n"
	      "                        (default 5)\n"
	      "  --target SECONDS      how long one timed run should last (default 0.03,\n"
	      "                        0.1 with --full)\n"
	      "  --json                print the results as JSON instead of a table\n"
	      "  --csv                 print the results as CSV instead of a table\n"
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
	      "  alloc   alloc+free pairs of 8-1024 bytes, and the 2017 kernel experiment\n"
	      "          (allocate N objects of 4-1024 bytes, free in order, alternating, in\n"
	      "          reverse), against padded per-CPU arrays from jemalloc and glibc, at the\n"
	      "          machine's CPUs and fake 64x4 and 256x4 topologies\n"
	      "  memory  bytes per CPU per 8-byte counter, Pss left after freeing and after\n"
	      "          trimming; resident bytes per counter and time to sum it when the\n"
	      "          process may use one CPU of 2, 64 or 256, for index=cpu and index=cid\n"
	      "  read    ns to sum one counter and to sum 10,000 counters over 2, 64, 256 and\n"
	      "          1024 CPUs, against padded arrays\n"
	      "\n"
	      "Where the bench was built with librseq (pkg-config librseq), hot, memory and\n"
	      "read also measure librseq: its rseq add on a counter from a per-CPU mempool\n"
	      "with the COW-zero populate policy, max_nr_cpus set to the topology's CPUs.\n"
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
				printf("%-7s %-34s PCPU_CONF=%-26s %s\n", jobs[j].group, jobs[j].label,
				       jobs[j].conf ? jobs[j].conf : "(inherited)",
				       jobs[j].confine ? "one CPU" : "all CPUs");
		return 0;
	}

	len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (len <= 0)
		die("readlink /proc/self/exe: %s", strerror(errno));
	self[len] = '\0';
	machine_info();
	t_start = now_ns();
	for (size_t j = 0; j < NR_JOBS; j++)
		if (group_selected(jobs[j].group))
			run_job(self, &jobs[j], ++idx, njobs);
	clear_progress();
#ifndef PCPU_BENCH_LIBRSEQ
	if (group_selected("hot") || group_selected("memory") || group_selected("read"))
		add_note("%s", LIBRSEQ_ABSENT);
#endif

	compute_ratios();
	sort_rows();
	switch (opt.format) {
	case FMT_JSON:
		print_json(stdout);
		break;
	case FMT_CSV:
		print_csv(stdout);
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
