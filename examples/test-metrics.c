/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * test-metrics - end-to-end test of metrics-server.
 *
 *   test-metrics PATH-TO-metrics-server
 *
 * Starts the server on a free loopback port (port 0, read back from its first line), sends a
 * bounded burst of concurrent requests from its own client threads (keep-alive, pipelined,
 * 404s, HEADs, POSTs answered 405), then checks that GET /metrics reports exactly the
 * requests, status codes, bytes and connections it produced, and stops the server with
 * SIGTERM. Loopback only; no curl or other tool needed. Exit 0 on success, 1 on a mismatch.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define THREADS 8
#define CONNS 4     /* keep-alive connections per thread, one after the other */
#define REQS 40     /* requests per keep-alive connection */
#define PIPELINED 16 /* requests sent in one write on one more connection per thread */

static int port;

struct tally {
	uint64_t codes[600];
	uint64_t sent, received, conns, requests;
	int errors;
};

struct rbuf {
	size_t len;
	char buf[65536];
};

static int dial(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = {.tv_sec = 10};

	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	if (fd < 0)
		return -1;
	/* A stuck server fails the test instead of hanging it. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -1;
	}
	return fd;
}

static int send_all(int fd, const char *s, size_t len, struct tally *t)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = write(fd, s + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	t->sent += len;
	return 0;
}

/* read_response - one whole response from @fd into @rb. Return: status code, or -1. */
static int read_response(int fd, struct rbuf *rb, bool head, struct tally *t)
{
	for (;;) {
		char *end = memmem(rb->buf, rb->len, "\r\n\r\n", 4);

		if (end) {
			size_t hdr = (size_t)(end - rb->buf) + 4, body = 0, total;
			char *cl = memmem(rb->buf, hdr, "Content-Length:", 15);
			int code;

			if (sscanf(rb->buf, "HTTP/1.1 %d", &code) != 1)
				return -1;
			if (cl)
				body = strtoul(cl + 15, NULL, 10);
			total = hdr + (head ? 0 : body);
			if (rb->len >= total) {
				t->received += total;
				memmove(rb->buf, rb->buf + total, rb->len - total);
				rb->len -= total;
				return code;
			}
		}
		if (rb->len == sizeof(rb->buf))
			return -1;
		ssize_t n = read(fd, rb->buf + rb->len, sizeof(rb->buf) - rb->len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		rb->len += (size_t)n;
	}
}

/* The request number @i of a connection: mostly GET /, some 404, HEAD and POST (405). */
static int make_request(char *buf, size_t size, int i, bool last, bool *head)
{
	const char *conn = last ? "Connection: close\r\n" : "";

	*head = false;
	switch (i % 10) {
	case 7:
		return snprintf(buf, size, "GET /missing/%d HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n",
				i, conn);
	case 8:
		*head = true;
		return snprintf(buf, size, "HEAD / HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n", conn);
	case 9:
		return snprintf(buf, size,
				"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n%s\r\n"
				"hello",
				conn);
	default:
		return snprintf(buf, size,
				"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: test-metrics\r\n"
				"%s\r\n",
				conn);
	}
}

static void *client(void *arg)
{
	struct tally *t = arg;
	struct rbuf *rb = malloc(sizeof(*rb));
	char req[512], batch[PIPELINED * 128];
	bool head;

	if (!rb) {
		t->errors++;
		return NULL;
	}
	for (int c = 0; c < CONNS; c++) {
		int fd = dial();

		if (fd < 0) {
			t->errors++;
			continue;
		}
		t->conns++;
		rb->len = 0;
		for (int i = 0; i < REQS; i++) {
			int len = make_request(req, sizeof(req), i, i == REQS - 1, &head);
			int code;

			if (send_all(fd, req, (size_t)len, t)) {
				t->errors++;
				break;
			}
			t->requests++;
			code = read_response(fd, rb, head, t);
			if (code < 100 || code >= 600) {
				t->errors++;
				break;
			}
			t->codes[code]++;
		}
		/* After "Connection: close" the server closes: expect EOF. */
		if (read(fd, rb->buf, 1) != 0)
			t->errors++;
		close(fd);
	}

	/* Pipelining: every request in one write, then every response. */
	int fd = dial(), len = 0;

	if (fd < 0) {
		t->errors++;
		free(rb);
		return NULL;
	}
	t->conns++;
	for (int i = 0; i < PIPELINED; i++)
		len += snprintf(batch + len, sizeof(batch) - (size_t)len,
				"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", i % 4 ? "/" : "/nope");
	if (send_all(fd, batch, (size_t)len, t))
		t->errors++;
	rb->len = 0;
	for (int i = 0; i < PIPELINED; i++) {
		int code = read_response(fd, rb, false, t);

		t->requests++;
		if (code < 100 || code >= 600) {
			t->errors++;
			break;
		}
		t->codes[code]++;
	}
	close(fd);
	free(rb);
	return NULL;
}

/* metric - the value of the line starting with @name (labels included) in @text, or -1. */
static long long metric(const char *text, const char *name)
{
	size_t len = strlen(name);
	const char *p = text;

	while ((p = strstr(p, name))) {
		if ((p == text || p[-1] == '\n') && p[len] == ' ')
			return strtoll(p + len + 1, NULL, 10);
		p += len;
	}
	return -1;
}

static pid_t server;

static void stop_server(void)
{
	if (server > 0)
		kill(server, SIGKILL);
}

static void on_alarm(int sig)
{
	(void)sig;
	stop_server();
	static const char msg[] = "test-metrics: timed out\n";
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0)
		_exit(1);
	_exit(1);
}

int main(int argc, char **argv)
{
	static struct tally tally[THREADS], sum;
	static struct rbuf rb;
	pthread_t threads[THREADS];
	char line[512], *text;
	const char *metrics_req =
		"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
	int out[2], status, fd, bad = 0;
	FILE *f;

	if (argc != 2) {
		fprintf(stderr, "usage: test-metrics PATH-TO-metrics-server\n");
		return 2;
	}
	signal(SIGALRM, on_alarm);
	signal(SIGPIPE, SIG_IGN);
	alarm(60);

	if (pipe(out))
		return 1;
	server = fork();
	if (server == 0) {
		dup2(out[1], STDOUT_FILENO);
		close(out[0]);
		close(out[1]);
		execl(argv[1], argv[1], "-t", "4", "0", (char *)NULL);
		perror("test-metrics: exec");
		_exit(127);
	}
	close(out[1]);
	f = fdopen(out[0], "r");
	if (server < 0 || !f || !fgets(line, sizeof(line), f) ||
	    sscanf(line, "listening on http://127.0.0.1:%d/", &port) != 1) {
		fprintf(stderr, "test-metrics: the server did not start\n");
		stop_server();
		return 1;
	}
	printf("server: %s", line);

	for (int i = 0; i < THREADS; i++)
		pthread_create(&threads[i], NULL, client, &tally[i]);
	for (int i = 0; i < THREADS; i++) {
		pthread_join(threads[i], NULL);
		for (int c = 0; c < 600; c++)
			sum.codes[c] += tally[i].codes[c];
		sum.sent += tally[i].sent;
		sum.received += tally[i].received;
		sum.conns += tally[i].conns;
		sum.requests += tally[i].requests;
		sum.errors += tally[i].errors;
	}
	printf("client: %llu requests on %llu connections, %llu bytes sent, %llu received; "
	       "200: %llu, 404: %llu, 405: %llu\n",
	       (unsigned long long)sum.requests, (unsigned long long)sum.conns,
	       (unsigned long long)sum.sent, (unsigned long long)sum.received,
	       (unsigned long long)sum.codes[200], (unsigned long long)sum.codes[404],
	       (unsigned long long)sum.codes[405]);
	if (sum.errors) {
		fprintf(stderr, "test-metrics: %d client errors\n", sum.errors);
		bad = 1;
	}

	/* The burst is over; every response was counted before it was sent. */
	fd = dial();
	if (fd < 0) {
		fprintf(stderr, "test-metrics: cannot connect for /metrics\n");
		stop_server();
		return 1;
	}
	if (write(fd, metrics_req, strlen(metrics_req)) != (ssize_t)strlen(metrics_req))
		bad = 1;
	for (;;) {
		ssize_t n = read(fd, rb.buf + rb.len, sizeof(rb.buf) - 1 - rb.len);

		if (n <= 0)
			break;
		rb.len += (size_t)n;
	}
	close(fd);
	rb.buf[rb.len] = '\0';
	text = strstr(rb.buf, "\r\n\r\n");
	if (strncmp(rb.buf, "HTTP/1.1 200", 12) || !text) {
		fprintf(stderr, "test-metrics: bad /metrics response:\n%s\n", rb.buf);
		stop_server();
		return 1;
	}
	text += 4;

	struct {
		const char *name;
		long long want;
	} checks[] = {
		{"http_requests_total{code=\"200\"}", (long long)sum.codes[200]},
		{"http_requests_total{code=\"404\"}", (long long)sum.codes[404]},
		{"http_requests_total{code=\"405\"}", (long long)sum.codes[405]},
		{"http_requests_total{code=\"400\"}", 0},
		{"http_requests_total{code=\"413\"}", 0},
		/* The /metrics request was read before the page was made; its answer was not. */
		{"http_request_bytes_total", (long long)(sum.sent + strlen(metrics_req))},
		{"http_response_bytes_total", (long long)sum.received},
		{"http_connections_total", (long long)sum.conns + 1},
	};
	long long total = 0;

	for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
		long long got = metric(text, checks[i].name);

		printf("  %-36s %10lld %s\n", checks[i].name, got,
		       got == checks[i].want ? "ok" : "MISMATCH");
		if (got != checks[i].want) {
			fprintf(stderr, "test-metrics: %s is %lld, expected %lld\n", checks[i].name,
				got, checks[i].want);
			bad = 1;
		}
		if (i < 5)
			total += got;
	}
	if (total != (long long)sum.requests) {
		fprintf(stderr, "test-metrics: %lld requests counted, %llu sent\n", total,
			(unsigned long long)sum.requests);
		bad = 1;
	}
	if (metric(text, "pcpu_cpus") < 1 || metric(text, "pcpu_allocations") < 1) {
		fprintf(stderr, "test-metrics: allocator stats missing from /metrics\n");
		bad = 1;
	}

	kill(server, SIGTERM);
	if (waitpid(server, &status, 0) != server || !WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "test-metrics: the server did not exit cleanly (status %#x)\n",
			status);
		bad = 1;
	}
	server = 0;
	puts(bad ? "FAILED" : "metrics totals match the requests sent");
	return bad;
}
