/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * PCPU_CONF is parsed here and nowhere else (jemalloc's MALLOC_CONF model): a string of
 * key=value pairs separated by commas. A malformed pair is reported once and ignored; the
 * rest still applies. The library never crashes on a bad setting.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config.h"
#include "util.h"

struct pcpu_settings pcpu_settings;

const char *pcpu_getenv(const char *name)
{
	return secure_getenv(name);
}

void pcpu_config_defaults(struct pcpu_settings *s)
{
	memset(s, 0, sizeof(*s));
	s->unit_size = 0; /* automatic: pcpu_geom_init() picks it from the CPU count */
	/* The kernel's defaults: 8 KiB reserved for modules, 28 KiB (+ slack) dynamic. */
	s->static_size = 16 << 10;
	s->reserved_size = 8 << 10;
	s->first_dyn_size = 40 << 10;
	s->balance = true;
	s->empty_low = 2;  /* PCPU_EMPTY_POP_PAGES_LOW */
	s->empty_high = 4; /* PCPU_EMPTY_POP_PAGES_HIGH */
	s->cpu_mode = 0;
	s->index_mode = PCPU_INDEX_CPU;
	s->debug = false;
	s->colour = true;
}

/* parse_size - "65536", "64k", "1m": bytes. */
static int parse_size(const char *v, size_t *out)
{
	char *end;
	unsigned long long n;

	errno = 0;
	n = strtoull(v, &end, 0);
	if (errno || end == v || *v == '-')
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K': n <<= 10; end++; break;
	case 'm': case 'M': n <<= 20; end++; break;
	case 'g': case 'G': n <<= 30; end++; break;
	}
	if (*end)
		return -EINVAL;
	*out = n;
	return 0;
}

static int parse_bool(const char *v, bool *out)
{
	if (!strcmp(v, "1") || !strcasecmp(v, "on") || !strcasecmp(v, "true") ||
	    !strcasecmp(v, "yes")) {
		*out = true;
		return 0;
	}
	if (!strcmp(v, "0") || !strcasecmp(v, "off") || !strcasecmp(v, "false") ||
	    !strcasecmp(v, "no")) {
		*out = false;
		return 0;
	}
	return -EINVAL;
}

static int parse_uint(const char *v, unsigned *out)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno || end == v || *end || *v == '-' || n > 1u << 20)
		return -EINVAL;
	*out = n;
	return 0;
}

static int check_unit_size(size_t n)
{
	long page = sysconf(_SC_PAGESIZE);

	if (n < (64 << 10) || n > (64u << 20) || n % page || (n & (n - 1)))
		return -EINVAL;
	return 0;
}

static int check_region_size(size_t n, size_t max)
{
	if (n % 4 || n > max)
		return -EINVAL;
	return 0;
}

static int set_pair(struct pcpu_settings *s, const char *k, const char *v)
{
	size_t sz;
	unsigned u;
	bool b;

	if (!strcmp(k, "unit_size")) {
		if (parse_size(v, &sz) || check_unit_size(sz))
			return -EINVAL;
		s->unit_size = sz;
	} else if (!strcmp(k, "static_size") || !strcmp(k, "reserved_size") ||
		   !strcmp(k, "dyn_size")) {
		if (parse_size(v, &sz) || check_region_size(sz, 16 << 20))
			return -EINVAL;
		if (k[0] == 's')
			s->static_size = sz;
		else if (k[0] == 'r')
			s->reserved_size = sz;
		else
			s->first_dyn_size = sz;
	} else if (!strcmp(k, "balance")) {
		if (parse_bool(v, &b))
			return -EINVAL;
		s->balance = b;
	} else if (!strcmp(k, "empty_low") || !strcmp(k, "empty_high")) {
		if (parse_uint(v, &u))
			return -EINVAL;
		if (!strcmp(k, "empty_low"))
			s->empty_low = u;
		else
			s->empty_high = u;
	} else if (!strcmp(k, "cpu_mode")) {
		if (!strcmp(v, "auto"))
			s->cpu_mode = 0;
		else if (!strcmp(v, "glibc"))
			s->cpu_mode = PCPU_MODE_RSEQ_GLIBC;
		else if (!strcmp(v, "own"))
			s->cpu_mode = PCPU_MODE_RSEQ_OWN;
		else if (!strcmp(v, "getcpu"))
			s->cpu_mode = PCPU_MODE_GETCPU;
		else
			return -EINVAL;
	} else if (!strcmp(k, "index")) {
		if (!strcmp(v, "cpu"))
			s->index_mode = PCPU_INDEX_CPU;
		else if (!strcmp(v, "cid"))
			s->index_mode = PCPU_INDEX_CID;
		else
			return -EINVAL;
	} else if (!strcmp(k, "debug")) {
		if (parse_bool(v, &b))
			return -EINVAL;
		s->debug = b;
	} else if (!strcmp(k, "guard")) {
		if (parse_bool(v, &b))
			return -EINVAL;
		s->guard = b;
	} else if (!strcmp(k, "colour")) {
		if (parse_bool(v, &b))
			return -EINVAL;
		s->colour = b;
	} else if (!strcmp(k, "topology")) {
		if (!*v || strlen(v) >= sizeof(s->topology) ||
		    strspn(v, "0123456789x-+") != strlen(v))
			return -EINVAL;
		strcpy(s->topology, v);
	} else {
		return -ENOENT;
	}
	return 0;
}

void pcpu_config_parse(struct pcpu_settings *s, const char *str)
{
	char *copy, *pair, *save = NULL;

	if (!str || !*str)
		return;
	copy = strdup(str);
	if (!copy)
		return;
	for (pair = strtok_r(copy, ",", &save); pair; pair = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(pair, '=');
		int err;

		if (!eq) {
			pcpu_warn("PCPU_CONF: malformed setting \"%s\" (expected key=value), ignored",
				  pair);
			continue;
		}
		*eq = '\0';
		err = set_pair(s, pair, eq + 1);
		if (err == -ENOENT)
			pcpu_warn("PCPU_CONF: unknown key \"%s\", ignored", pair);
		else if (err)
			pcpu_warn("PCPU_CONF: bad value \"%s\" for %s, ignored", eq + 1, pair);
	}
	free(copy);
	/* The balancer thresholds must be ordered; otherwise keep the defaults. */
	if (s->empty_low > s->empty_high) {
		pcpu_warn("PCPU_CONF: empty_low %u above empty_high %u, both ignored", s->empty_low,
			  s->empty_high);
		s->empty_low = 2;
		s->empty_high = 4;
	}
}

int pcpu_config_apply(struct pcpu_settings *s, const struct pcpu_config *cfg)
{
	struct pcpu_config c;
	size_t n;

	if (!cfg)
		return 0;
	if (cfg->size == 0 || cfg->size > 4096)
		return -EINVAL;
	/* Accept smaller (older) and larger (newer, unknown tail must be zero) structs. */
	memset(&c, 0, sizeof(c));
	n = cfg->size < sizeof(c) ? cfg->size : sizeof(c);
	memcpy(&c, cfg, n);
	for (size_t i = sizeof(c); i < cfg->size; i++)
		if (((const unsigned char *)cfg)[i])
			return -EINVAL;
	if (c.unit_size && check_unit_size(c.unit_size))
		return -EINVAL;
	if (c.static_size && check_region_size(c.static_size, 16 << 20))
		return -EINVAL;
	if (c.reserved_size && check_region_size(c.reserved_size, 16 << 20))
		return -EINVAL;
	if (c.balance < -1 || c.balance > 1)
		return -EINVAL;
	if (c.cpu_mode < 0 || c.cpu_mode > PCPU_MODE_GETCPU)
		return -EINVAL;
	if (c.index_mode < 0 || c.index_mode > PCPU_INDEX_CID)
		return -EINVAL;
	if ((c.empty_pages_low || c.empty_pages_high) &&
	    (c.empty_pages_low > c.empty_pages_high && c.empty_pages_high))
		return -EINVAL;
	if (c.topology && (strlen(c.topology) >= sizeof(s->topology) ||
			   strspn(c.topology, "0123456789x-+") != strlen(c.topology)))
		return -EINVAL;

	if (c.unit_size)
		s->unit_size = c.unit_size;
	if (c.static_size)
		s->static_size = c.static_size;
	if (c.reserved_size)
		s->reserved_size = c.reserved_size;
	if (c.balance)
		s->balance = c.balance > 0;
	if (c.empty_pages_low)
		s->empty_low = c.empty_pages_low;
	if (c.empty_pages_high)
		s->empty_high = c.empty_pages_high;
	if (c.cpu_mode)
		s->cpu_mode = c.cpu_mode;
	if (c.index_mode)
		s->index_mode = c.index_mode;
	if (c.debug)
		s->debug = c.debug > 0;
	if (c.topology)
		strcpy(s->topology, c.topology);
	return 0;
}
