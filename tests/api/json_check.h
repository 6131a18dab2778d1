/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * json_check.h - a strict little JSON validator (RFC 8259 grammar, no extensions) and a
 * lookup of the first number after a key, so tests can check pcpu_stats_print_json()
 * output without a JSON library.
 */
#ifndef PCPU_TEST_JSON_CHECK_H
#define PCPU_TEST_JSON_CHECK_H

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static const char *json__value(const char *p, int depth);

static const char *json__ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

static const char *json__string(const char *p)
{
	if (*p++ != '"')
		return NULL;
	for (; *p != '"'; p++) {
		if (!*p || (unsigned char)*p < 0x20)
			return NULL;
		if (*p == '\\') {
			p++;
			if (*p == 'u') {
				for (int i = 1; i <= 4; i++)
					if (!isxdigit((unsigned char)p[i]))
						return NULL;
				p += 4;
			} else if (!strchr("\"\\/bfnrt", *p) || !*p) {
				return NULL;
			}
		}
	}
	return p + 1;
}

static const char *json__number(const char *p)
{
	const char *s;

	if (*p == '-')
		p++;
	if (*p == '0')
		p++;
	else if (isdigit((unsigned char)*p))
		while (isdigit((unsigned char)*p))
			p++;
	else
		return NULL;
	if (*p == '.') {
		s = ++p;
		while (isdigit((unsigned char)*p))
			p++;
		if (p == s)
			return NULL;
	}
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		s = p;
		while (isdigit((unsigned char)*p))
			p++;
		if (p == s)
			return NULL;
	}
	return p;
}

static const char *json__container(const char *p, int depth, char close, int object)
{
	p = json__ws(p + 1);
	if (*p == close)
		return p + 1;
	for (;;) {
		if (object) {
			p = json__string(p);
			if (!p)
				return NULL;
			p = json__ws(p);
			if (*p++ != ':')
				return NULL;
		}
		p = json__value(json__ws(p), depth + 1);
		if (!p)
			return NULL;
		p = json__ws(p);
		if (*p == close)
			return p + 1;
		if (*p++ != ',')
			return NULL;
		p = json__ws(p);
	}
}

static const char *json__value(const char *p, int depth)
{
	if (depth > 64)
		return NULL;
	switch (*p) {
	case '{':
		return json__container(p, depth, '}', 1);
	case '[':
		return json__container(p, depth, ']', 0);
	case '"':
		return json__string(p);
	case 't':
		return strncmp(p, "true", 4) ? NULL : p + 4;
	case 'f':
		return strncmp(p, "false", 5) ? NULL : p + 5;
	case 'n':
		return strncmp(p, "null", 4) ? NULL : p + 4;
	default:
		return json__number(p);
	}
}

/* json_valid - 1 when @s is exactly one JSON value (surrounding white space allowed). */
static inline int json_valid(const char *s)
{
	const char *p = json__value(json__ws(s), 0);

	return p && *json__ws(p) == '\0';
}

/* json_number_after - the number following the first "@key": after @from, or -1. */
static inline long long json_number_after(const char *from, const char *key)
{
	char pat[128];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(from, pat);
	return p ? strtoll(p + strlen(pat), NULL, 10) : -1;
}

#endif /* PCPU_TEST_JSON_CHECK_H */
