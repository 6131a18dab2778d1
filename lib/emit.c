/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * The report emitter (see emit.h). Text mirrors the kernel's percpu_stats layout: the P()
 * lines "  name : value" with names in 20 columns and values right-aligned in 12.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

#include "emit.h"

enum { K_TOP, K_SECTION, K_LIST, K_ROW, K_BLOCK };

#define TEXT_NAME_W 20
#define TEXT_VALUE_W 12
#define TEXT_LABEL_W 12

/* ---------------------------------------------------------------------------------------- */
/* Strings                                                                                   */
/* ---------------------------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at @s, or 0 when it is not one (RFC 3629). */
static size_t utf8_len(const unsigned char *s)
{
	unsigned char c = s[0];
	size_t n;
	unsigned char lo = 0x80, hi = 0xbf; /* range of the second byte */

	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0; /* overlong */
		else if (c == 0xed)
			hi = 0x9f; /* surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90; /* overlong */
		else if (c == 0xf4)
			hi = 0x8f; /* beyond U+10FFFF */
	} else {
		return 0;
	}
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

void pcpu_emit_json_string(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	fputc('"', f);
	while (*p) {
		size_t n;

		if (*p == '"' || *p == '\\') {
			fputc('\\', f);
			fputc(*p++, f);
		} else if (*p < 0x20) {
			fprintf(f, "\\u%04x", *p++);
		} else if (*p < 0x80) {
			fputc(*p++, f);
		} else if ((n = utf8_len(p)) != 0) {
			fwrite(p, 1, n, f);
			p += n;
		} else {
			/* A caller's string (a domain name) need not be UTF-8: stay valid JSON. */
			fputs("\\ufffd", f);
			p++;
		}
	}
	fputc('"', f);
}

/* Text: a caller's string with control characters shown as '?', so lines stay lines. */
static void text_string(FILE *f, const char *s)
{
	for (; *s; s++)
		fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, f);
}

static void text_padded(FILE *f, const char *s, int width, bool right)
{
	int pad = width - (int)strlen(s);

	if (right)
		for (; pad > 0; pad--)
			fputc(' ', f);
	text_string(f, s);
	if (!right)
		for (; pad > 0; pad--)
			fputc(' ', f);
}

/* ---------------------------------------------------------------------------------------- */
/* Containers                                                                                */
/* ---------------------------------------------------------------------------------------- */

static unsigned char inner(const struct pcpu_emit *e)
{
	return e->kind[e->depth - 1];
}

/* JSON: the separator before a new member or item, and its key when it has one. */
static void json_key(struct pcpu_emit *e, const char *key)
{
	if (e->members[e->depth - 1]++)
		fputc(',', e->f);
	if (inner(e) != K_LIST) {
		pcpu_emit_json_string(e->f, key);
		fputc(':', e->f);
	}
}

static void push(struct pcpu_emit *e, unsigned char kind)
{
	/* Deeper nesting is a caller's bug; flatten rather than write past the arrays. */
	if (e->depth == PCPU_EMIT_MAX_DEPTH)
		return;
	e->kind[e->depth] = kind;
	e->members[e->depth] = 0;
	e->depth++;
}

static void pop(struct pcpu_emit *e, unsigned char kind)
{
	if (e->depth <= 1 || inner(e) != kind)
		return;
	e->depth--;
	if (e->json) {
		fputc(kind == K_LIST ? ']' : '}', e->f);
		return;
	}
	if (kind == K_ROW || kind == K_BLOCK)
		fputc('\n', e->f);
}

void pcpu_emit_begin(struct pcpu_emit *e, FILE *f, bool json, const char *title)
{
	memset(e, 0, sizeof(*e));
	e->f = f;
	e->json = json;
	push(e, K_TOP);
	if (json)
		fputc('{', f);
	else if (title)
		fprintf(f, "%s\n", title);
}

void pcpu_emit_end(struct pcpu_emit *e)
{
	while (e->depth > 1)
		pop(e, inner(e));
	if (e->json)
		fputs("}\n", e->f);
	e->depth = 0;
}

static void titled(struct pcpu_emit *e, const char *key, const char *title, unsigned char kind)
{
	if (e->json) {
		json_key(e, key);
		fputc(kind == K_LIST ? '[' : '{', e->f);
	} else {
		fprintf(e->f, "\n%s:\n----------------------------------------\n", title);
	}
	push(e, kind);
}

void pcpu_emit_section_begin(struct pcpu_emit *e, const char *key, const char *title)
{
	titled(e, key, title, K_SECTION);
}

void pcpu_emit_section_end(struct pcpu_emit *e)
{
	pop(e, K_SECTION);
}

void pcpu_emit_list_begin(struct pcpu_emit *e, const char *key, const char *title)
{
	titled(e, key, title, K_LIST);
}

void pcpu_emit_list_end(struct pcpu_emit *e)
{
	pop(e, K_LIST);
}

void pcpu_emit_row_begin(struct pcpu_emit *e)
{
	if (e->json) {
		json_key(e, NULL);
		fputc('{', e->f);
	} else {
		fputs("  ", e->f);
	}
	push(e, K_ROW);
}

void pcpu_emit_row_end(struct pcpu_emit *e)
{
	pop(e, K_ROW);
}

void pcpu_emit_block_begin(struct pcpu_emit *e, const char *heading)
{
	if (e->json) {
		json_key(e, NULL);
		fputc('{', e->f);
	} else {
		text_string(e->f, heading);
		fputc('\n', e->f);
	}
	push(e, K_BLOCK);
}

void pcpu_emit_block_end(struct pcpu_emit *e)
{
	pop(e, K_BLOCK);
}

/* ---------------------------------------------------------------------------------------- */
/* Members                                                                                   */
/* ---------------------------------------------------------------------------------------- */

/*
 * Text of one member whose value reads @v. In a row the first string member is the row's
 * label (its name is not printed); the others are "name value".
 */
static void text_member(struct pcpu_emit *e, const char *key, const char *v, bool is_str)
{
	FILE *f = e->f;

	if (inner(e) == K_ROW) {
		unsigned n = e->members[e->depth - 1]++;

		if (n == 0 && is_str) {
			text_padded(f, v, TEXT_LABEL_W, false);
			return;
		}
		fprintf(f, "%s%s ", n ? "  " : "", key);
		text_string(f, v);
		return;
	}
	fputs("  ", f);
	text_padded(f, key, TEXT_NAME_W, false);
	fputs(": ", f);
	text_padded(f, v, TEXT_VALUE_W, true);
	fputc('\n', f);
}

/* A member that is not a string: @json as it stands in JSON, @text in the text form. */
static void scalar(struct pcpu_emit *e, const char *key, const char *json, const char *text)
{
	if (e->json) {
		json_key(e, key);
		fputs(json, e->f);
		return;
	}
	text_member(e, key, text, false);
}

void pcpu_emit_u64(struct pcpu_emit *e, const char *key, uint64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	scalar(e, key, buf, buf);
}

void pcpu_emit_i64(struct pcpu_emit *e, const char *key, int64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%" PRId64, v);
	scalar(e, key, buf, buf);
}

void pcpu_emit_bool(struct pcpu_emit *e, const char *key, bool v)
{
	scalar(e, key, v ? "true" : "false", v ? "yes" : "no");
}

void pcpu_emit_str(struct pcpu_emit *e, const char *key, const char *v)
{
	if (e->json) {
		json_key(e, key);
		if (v)
			pcpu_emit_json_string(e->f, v);
		else
			fputs("null", e->f);
		return;
	}
	text_member(e, key, v ? v : "none", v != NULL);
}

void pcpu_emit_null(struct pcpu_emit *e, const char *key, const char *text)
{
	scalar(e, key, "null", text);
}

void pcpu_emit_text(struct pcpu_emit *e, const char *fmt, ...)
{
	va_list ap;

	if (e->json)
		return;
	fputs("  ", e->f);
	va_start(ap, fmt);
	vfprintf(e->f, fmt, ap);
	va_end(ap);
	fputc('\n', e->f);
}
