/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * metrics-server - a small HTTP/1.1 server that counts what it does per CPU with libpcpu and
 * serves the totals at GET /metrics in the Prometheus text exposition format.
 *
 *   metrics-server [-b ADDRESS] [-t THREADS] PORT
 *
 * Binds 127.0.0.1 by default (-b to choose another address); PORT 0 picks a free port. The
 * first line on stdout is "listening on http://ADDRESS:PORT/". Worker threads (default: one
 * per CPU) each run an epoll loop and accept from the shared listening socket. Every request,
 * byte and response code is counted on the copy of the CPU the worker runs on, with
 * pcpu_this_add(): no lock and no shared cache line on the request path. GET /metrics folds
 * the copies with pcpu_sum64(), every field in one pass (and adds the allocator's
 * pcpu_stats_get()). SIGINT or SIGTERM stops it.
 *
 * Routes: GET or HEAD / answers 200 "hello"; /metrics the metrics; anything else 404; other
 * methods 405; a malformed request 400 and the connection is closed. Keep-alive and
 * pipelining as HTTP/1.1 says; "Connection: close" is honoured.
 *
 * Load it with wrk (https://github.com/wg/wrk), for example:
 *
 *   metrics-server 8080 &
 *   wrk -t2 -c64 -d10s http://127.0.0.1:8080/
 *   curl -s http://127.0.0.1:8080/metrics | grep http_requests_total
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <pcpu.h>

enum code { C200, C400, C404, C405, C413, NR_CODES };
static const int code_num[NR_CODES] = {200, 400, 404, 405, 413};
static const char *const code_text[NR_CODES] = {
	"OK", "Bad Request", "Not Found", "Method Not Allowed", "Content Too Large",
};

/* One copy per CPU; a worker only ever touches the copy of the CPU it runs on. */
struct http_stats {
	uint64_t requests[NR_CODES]; /* responses produced, by status code */
	uint64_t bytes_in;           /* bytes read from clients */
	uint64_t bytes_out;          /* bytes of responses produced */
	uint64_t connections;        /* connections accepted */
};

static struct http_stats __pcpu *stats;
/* Open connections: goes up and down on any CPU; pcpu_counter_sum() gives the gauge. */
static struct pcpu_counter open_conns;
static volatile int stopping;

#define IN_SIZE 8192
#define OUT_HIGH (256 * 1024) /* stop reading a connection that has this much unsent */

struct conn {
	int fd;
	bool close_after;       /* close once the output is flushed */
	uint32_t events;        /* epoll events registered */
	size_t in_len;
	char in[IN_SIZE];
	char *out;
	size_t out_len, out_off, out_cap;
};

static int out_append(struct conn *c, const char *data, size_t len)
{
	if (c->out_len + len > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		char *n;

		while (cap < c->out_len + len)
			cap *= 2;
		n = realloc(c->out, cap);
		if (!n)
			return -1;
		c->out = n;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, data, len);
	c->out_len += len;
	return 0;
}

/* A growable text buffer for the /metrics body. */
struct text {
	char *s;
	size_t len, cap;
};

static void text_printf(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_printf(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->s ? t->s + t->len : NULL, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if (t->len + (size_t)n < t->cap) {
			t->len += (size_t)n;
			return;
		}
		t->cap = (t->cap ? t->cap : 2048) * 2 + (size_t)n;
		t->s = realloc(t->s, t->cap);
		if (!t->s) {
			t->len = t->cap = 0;
			return;
		}
	}
}

static const char *cpu_mode_name(void)
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

/* The 8-byte fields of struct http_stats, in order, as pcpu_sum64() reads them. */
#define NR_FIELDS (sizeof(struct http_stats) / sizeof(uint64_t))
_Static_assert(sizeof(struct http_stats) == NR_FIELDS * sizeof(uint64_t), "only uint64_t fields");

/* render_metrics - fold every CPU's copy into one exposition. */
static void render_metrics(struct text *t)
{
	struct http_stats sum = {0};
	struct pcpu_stats st = {.size = sizeof(st)};
	const void *fields[NR_FIELDS];
	uint64_t totals[NR_FIELDS];
	int i;

	/*
	 * Racy against the workers by design: pcpu_sum64() reads each copy once, unit by unit,
	 * so every total is exact for the requests whose response was produced before it read
	 * their CPU. All the fields in one call: one pass over the units, not one per field.
	 */
	for (size_t f = 0; f < NR_FIELDS; f++)
		fields[f] = (const char *)stats + f * sizeof(uint64_t);
	if (pcpu_sum64(fields, NR_FIELDS, totals) == 0)
		memcpy(&sum, totals, sizeof(sum));

	text_printf(t, "# HELP http_requests_total HTTP requests answered, by status code.\n"
		       "# TYPE http_requests_total counter\n");
	for (i = 0; i < NR_CODES; i++)
		text_printf(t, "http_requests_total{code=\"%d\"} %llu\n", code_num[i],
			    (unsigned long long)sum.requests[i]);
	text_printf(t,
		    "# HELP http_request_bytes_total Bytes read from clients.\n"
		    "# TYPE http_request_bytes_total counter\n"
		    "http_request_bytes_total %llu\n"
		    "# HELP http_response_bytes_total Bytes of responses produced.\n"
		    "# TYPE http_response_bytes_total counter\n"
		    "http_response_bytes_total %llu\n"
		    "# HELP http_connections_total Connections accepted.\n"
		    "# TYPE http_connections_total counter\n"
		    "http_connections_total %llu\n"
		    "# HELP http_connections_open Connections open now.\n"
		    "# TYPE http_connections_open gauge\n"
		    "http_connections_open %lld\n",
		    (unsigned long long)sum.bytes_in, (unsigned long long)sum.bytes_out,
		    (unsigned long long)sum.connections, (long long)pcpu_counter_sum(&open_conns));

	if (pcpu_stats_get(&st))
		return;
	text_printf(t,
		    "# HELP pcpu_info The per-CPU allocator: version and modes.\n"
		    "# TYPE pcpu_info gauge\n"
		    "pcpu_info{version=\"%d.%d.%d\",cpu_mode=\"%s\",index=\"%s\",numa=\"%d\"} 1\n"
		    "# HELP pcpu_cpus Possible CPUs (copies of each per-CPU object).\n"
		    "# TYPE pcpu_cpus gauge\n"
		    "pcpu_cpus %u\n"
		    "# HELP pcpu_nodes NUMA nodes.\n"
		    "# TYPE pcpu_nodes gauge\n"
		    "pcpu_nodes %u\n"
		    "# HELP pcpu_unit_size_bytes Bytes of each CPU's unit of a chunk.\n"
		    "# TYPE pcpu_unit_size_bytes gauge\n"
		    "pcpu_unit_size_bytes %zu\n"
		    "# HELP pcpu_allocations Live per-CPU allocations.\n"
		    "# TYPE pcpu_allocations gauge\n"
		    "pcpu_allocations %llu\n"
		    "# HELP pcpu_allocations_max Most live per-CPU allocations at once.\n"
		    "# TYPE pcpu_allocations_max gauge\n"
		    "pcpu_allocations_max %llu\n"
		    "# HELP pcpu_alloc_total Per-CPU allocations made.\n"
		    "# TYPE pcpu_alloc_total counter\n"
		    "pcpu_alloc_total %llu\n"
		    "# HELP pcpu_free_total Per-CPU allocations freed.\n"
		    "# TYPE pcpu_free_total counter\n"
		    "pcpu_free_total %llu\n"
		    "# HELP pcpu_chunks Chunks in use.\n"
		    "# TYPE pcpu_chunks gauge\n"
		    "pcpu_chunks %llu\n"
		    "# HELP pcpu_populated_pages Page indexes populated, over all chunks.\n"
		    "# TYPE pcpu_populated_pages gauge\n"
		    "pcpu_populated_pages %llu\n"
		    "# HELP pcpu_empty_populated_pages Populated pages with nothing allocated.\n"
		    "# TYPE pcpu_empty_populated_pages gauge\n"
		    "pcpu_empty_populated_pages %llu\n"
		    "# HELP pcpu_resident_bytes Chunk memory resident now, all units.\n"
		    "# TYPE pcpu_resident_bytes gauge\n"
		    "pcpu_resident_bytes %llu\n"
		    "# HELP pcpu_balance_runs_total Runs of the background balancer.\n"
		    "# TYPE pcpu_balance_runs_total counter\n"
		    "pcpu_balance_runs_total %llu\n"
		    "# HELP pcpu_nowait_failures_total PCPU_NOWAIT allocations that failed.\n"
		    "# TYPE pcpu_nowait_failures_total counter\n"
		    "pcpu_nowait_failures_total %llu\n",
		    PCPU_VERSION_MAJOR, PCPU_VERSION_MINOR, PCPU_VERSION_PATCH, cpu_mode_name(),
		    st.index_mode == PCPU_INDEX_CID ? "cid" : "cpu", st.numa_available, st.nr_cpus,
		    st.nr_nodes, st.unit_size, (unsigned long long)st.nr_cur_alloc,
		    (unsigned long long)st.nr_max_alloc, (unsigned long long)st.nr_alloc,
		    (unsigned long long)st.nr_dealloc, (unsigned long long)st.nr_chunks,
		    (unsigned long long)st.populated_pages, (unsigned long long)st.empty_pop_pages,
		    (unsigned long long)st.resident_bytes, (unsigned long long)st.balance_runs,
		    (unsigned long long)st.nowait_failures);
}

/*
 * respond - queue one response and count it. The counts are bumped when the response is
 * produced, before it is written, so a client that has read a response and then asks for
 * /metrics always sees it counted.
 */
static int respond(struct conn *c, enum code code, const char *type, const char *body,
		   size_t body_len, bool head)
{
	char hdr[256];
	int n;

	n = snprintf(hdr, sizeof(hdr),
		     "HTTP/1.1 %d %s\r\nServer: libpcpu-metrics\r\nContent-Type: %s\r\n"
		     "Content-Length: %zu\r\n%s\r\n",
		     code_num[code], code_text[code], type, body_len,
		     c->close_after ? "Connection: close\r\n" : "");
	if (out_append(c, hdr, (size_t)n) || (!head && out_append(c, body, body_len)))
		return -1;
	pcpu_this_inc(&stats->requests[code]);
	pcpu_this_add(&stats->bytes_out, (uint64_t)n + (head ? 0 : body_len));
	return 0;
}

/* header_value - the value of header @name in the header block [@h, @end), or NULL. */
static const char *header_value(const char *h, const char *end, const char *name, size_t *len)
{
	size_t nlen = strlen(name);

	while (h < end) {
		const char *eol = memchr(h, '\n', (size_t)(end - h));

		if (!eol)
			eol = end;
		if ((size_t)(eol - h) > nlen && !strncasecmp(h, name, nlen) && h[nlen] == ':') {
			const char *v = h + nlen + 1;

			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			*len = (size_t)(eol - v);
			while (*len && (v[*len - 1] == '\r' || v[*len - 1] == ' '))
				(*len)--;
			return v;
		}
		h = eol + 1;
	}
	return NULL;
}

/*
 * handle_one - parse and answer the first request in c->in.
 * Return: bytes consumed; 0 when the request is not complete yet; -1 to close now.
 */
static long handle_one(struct conn *c)
{
	char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
	char method[16], path[256], version[16];
	const char *hdrs, *v;
	size_t vlen, hdr_len, body_len = 0;
	bool head, http10;

	if (!end) {
		if (c->in_len < IN_SIZE)
			return 0;
		/* Headers larger than the buffer. */
		c->close_after = true;
		return respond(c, C400, "text/plain", "bad request\n", 12, false) ? -1 : (long)c->in_len;
	}
	hdr_len = (size_t)(end - c->in) + 4;
	*end = '\0';
	if (sscanf(c->in, "%15s %255s %15s", method, path, version) != 3 ||
	    strncmp(version, "HTTP/1.", 7)) {
		c->close_after = true;
		return respond(c, C400, "text/plain", "bad request\n", 12, false) ? -1 : (long)hdr_len;
	}
	hdrs = strchr(c->in, '\n');
	hdrs = hdrs ? hdrs + 1 : end;
	http10 = !strcmp(version, "HTTP/1.0");
	v = header_value(hdrs, end, "Connection", &vlen);
	if (v && vlen == 5 && !strncasecmp(v, "close", 5))
		c->close_after = true;
	else if (http10 && !(v && vlen == 10 && !strncasecmp(v, "keep-alive", 10)))
		c->close_after = true;
	v = header_value(hdrs, end, "Content-Length", &vlen);
	if (v)
		body_len = strtoul(v, NULL, 10);
	if (body_len > IN_SIZE - hdr_len) {
		c->close_after = true;
		return respond(c, C413, "text/plain", "too large\n", 10, false) ? -1 : (long)c->in_len;
	}
	*end = '\r';
	if (c->in_len < hdr_len + body_len)
		return 0; /* the body is still on its way */

	head = !strcmp(method, "HEAD");
	if (strcmp(method, "GET") && !head) {
		if (respond(c, C405, "text/plain", "method not allowed\n", 19, false))
			return -1;
	} else if (!strcmp(path, "/metrics")) {
		struct text t = {0};
		int err;

		render_metrics(&t);
		err = respond(c, C200, "text/plain; version=0.0.4", t.s ? t.s : "", t.len, head);
		free(t.s);
		if (err)
			return -1;
	} else if (!strcmp(path, "/")) {
		if (respond(c, C200, "text/plain", "hello\n", 6, head))
			return -1;
	} else if (respond(c, C404, "text/plain", "not found\n", 10, head)) {
		return -1;
	}
	return (long)(hdr_len + body_len);
}

static void conn_close(int ep, struct conn *c)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->out);
	free(c);
	pcpu_counter_add(&open_conns, -1);
}

/* Write what is queued. Return: 0, or -1 when the connection must close. */
static int conn_flush(int ep, struct conn *c)
{
	struct epoll_event ev;

	while (c->out_off < c->out_len) {
		ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0)
			return -1;
		c->out_off += (size_t)n;
	}
	if (c->out_off == c->out_len) {
		c->out_off = c->out_len = 0;
		if (c->close_after)
			return -1;
	}
	/* Wait for room to write while output is pending; stop reading (level-triggered
	 * epoll would spin) while the output is over the mark or the connection is closing. */
	ev.events = (c->out_len ? EPOLLOUT : 0) |
		    (c->out_len < OUT_HIGH && !c->close_after ? EPOLLIN | EPOLLRDHUP : 0);
	ev.data.ptr = c;
	if (ev.events != c->events && !epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev))
		c->events = ev.events;
	return 0;
}

/* Read and answer what arrived. Return: 0, or -1 when the connection must close. */
static int conn_input(struct conn *c)
{
	for (;;) {
		ssize_t n;
		long used;

		if (c->close_after || c->out_len >= OUT_HIGH)
			return 0;
		n = read(c->fd, c->in + c->in_len, IN_SIZE - c->in_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0)
			return -1; /* EOF or error */
		pcpu_this_add(&stats->bytes_in, (uint64_t)n);
		c->in_len += (size_t)n;
		while (c->in_len && !c->close_after) {
			used = handle_one(c);
			if (used < 0)
				return -1;
			if (used == 0)
				break;
			memmove(c->in, c->in + used, c->in_len - (size_t)used);
			c->in_len -= (size_t)used;
		}
	}
}

static void accept_all(int ep, int lfd)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1;
		struct epoll_event ev;
		struct conn *c;

		if (fd < 0)
			return; /* EAGAIN: another worker took it, or nothing left */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->events = ev.events = EPOLLIN | EPOLLRDHUP;
		ev.data.ptr = c;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)) {
			close(fd);
			free(c);
			continue;
		}
		pcpu_this_inc(&stats->connections);
		pcpu_counter_add(&open_conns, 1);
	}
}

struct worker {
	pthread_t thread;
	int listen_fd;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE}, evs[64];
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, w->listen_fd, &ev)) {
		perror("metrics-server: epoll");
		return NULL;
	}
	while (!__atomic_load_n(&stopping, __ATOMIC_RELAXED)) {
		int n = epoll_wait(ep, evs, 64, 200);

		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;

			if (!c) {
				accept_all(ep, w->listen_fd);
				continue;
			}
			if ((evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) &&
			    conn_input(c)) {
				/* EOF or error: send what the last requests produced, then close. */
				c->close_after = true;
				if (conn_flush(ep, c))
					conn_close(ep, c);
				continue;
			}
			if (conn_flush(ep, c))
				conn_close(ep, c);
		}
	}
	/* Connections still open at shutdown are dropped with the process. */
	close(ep);
	return NULL;
}

static int listen_on(const char *addr, int port, struct sockaddr_in *sa)
{
	socklen_t len = sizeof(*sa);
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	if (fd < 0 || inet_pton(AF_INET, addr, &sa->sin_addr) != 1) {
		fprintf(stderr, "metrics-server: bad address %s\n", addr);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)sa, sizeof(*sa)) || listen(fd, 1024) ||
	    getsockname(fd, (struct sockaddr *)sa, &len)) {
		fprintf(stderr, "metrics-server: %s:%d: %s\n", addr, port, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static void usage(void)
{
	fputs("usage: metrics-server [-b ADDRESS] [-t THREADS] PORT\n"
	      "  -b ADDRESS  IPv4 address to bind (default 127.0.0.1)\n"
	      "  -t THREADS  worker threads (default: one per CPU)\n"
	      "  PORT        TCP port; 0 picks a free one (printed on stdout)\n",
	      stderr);
}

int main(int argc, char **argv)
{
	const char *addr = "127.0.0.1";
	long nthreads = sysconf(_SC_NPROCESSORS_ONLN), port;
	struct sockaddr_in sa;
	struct worker *w;
	sigset_t sigs;
	char *end;
	int opt, lfd, sig;

	while ((opt = getopt(argc, argv, "b:t:h")) != -1) {
		switch (opt) {
		case 'b':
			addr = optarg;
			break;
		case 't':
			nthreads = strtol(optarg, &end, 10);
			if (*end || nthreads < 1 || nthreads > 1024) {
				usage();
				return 2;
			}
			break;
		default:
			usage();
			return opt == 'h' ? 0 : 2;
		}
	}
	if (optind + 1 != argc) {
		usage();
		return 2;
	}
	port = strtol(argv[optind], &end, 10);
	if (*end || port < 0 || port > 65535) {
		usage();
		return 2;
	}
	if (nthreads < 1)
		nthreads = 1;

	stats = pcpu_alloc_type(struct http_stats);
	if (!stats || pcpu_counter_init(&open_conns, 0)) {
		perror("metrics-server: pcpu_alloc");
		return 1;
	}
	lfd = listen_on(addr, (int)port, &sa);
	if (lfd < 0)
		return 1;

	/* Workers inherit the mask: only the main thread takes SIGINT and SIGTERM. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	w = calloc((size_t)nthreads, sizeof(*w));
	if (!w)
		return 1;
	for (long i = 0; i < nthreads; i++) {
		w[i].listen_fd = lfd;
		if (pthread_create(&w[i].thread, NULL, worker_main, &w[i])) {
			fprintf(stderr, "metrics-server: pthread_create failed\n");
			return 1;
		}
	}
	printf("listening on http://%s:%d/ (%ld workers, %u possible CPUs, mode %s)\n", addr,
	       ntohs(sa.sin_port), nthreads, pcpu_nr_cpus(), cpu_mode_name());
	fflush(stdout);

	sigwait(&sigs, &sig);
	__atomic_store_n(&stopping, 1, __ATOMIC_RELAXED);
	for (long i = 0; i < nthreads; i++)
		pthread_join(w[i].thread, NULL);
	close(lfd);

	uint64_t total = 0, requests[NR_CODES];
	const void *fields[NR_CODES];

	for (int i = 0; i < NR_CODES; i++)
		fields[i] = &stats->requests[i]; /* a handle plus a member's offset */
	if (pcpu_sum64(fields, NR_CODES, requests) == 0)
		for (int i = 0; i < NR_CODES; i++)
			total += requests[i];
	fprintf(stderr, "metrics-server: %s, %llu requests served\n", strsignal(sig),
		(unsigned long long)total);
	pcpu_counter_destroy(&open_conns);
	pcpu_free(stats);
	free(w);
	return 0;
}
