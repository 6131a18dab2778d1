/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * emit - one description of a report, written either as text for people or as JSON for
 * programs (jemalloc's emitter is the model). The caller describes the report once: sections
 * of named values, lists of rows or blocks; the emitter lays it out.
 *
 *   text: a section is a titled block of "  name : value" lines; a row is one line
 *         ("  label  name value  name value ..."), its first string member being the label;
 *         a block is a heading line followed by "  name : value" lines.
 *   JSON: one compact object; sections and rows/blocks are objects, lists are arrays; keys
 *         are the names given; strings are always escaped to valid JSON (invalid UTF-8
 *         bytes become U+FFFD).
 *
 * Where the two forms must differ (a summary line only people want, a member the text
 * heading already shows), the caller asks pcpu_emit_is_json(). Nothing here allocates or
 * locks; output errors are left to the FILE.
 *
 * Built into the library and, from the same source, into tools/pcpu-bench (which cannot see
 * the library's hidden symbols): it depends on nothing but the C library.
 */
#ifndef PCPU_EMIT_H
#define PCPU_EMIT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define PCPU_EMIT_MAX_DEPTH 8

struct pcpu_emit {
	FILE *f;
	bool json;
	int depth;                          /* open containers, the report itself included */
	unsigned char kind[PCPU_EMIT_MAX_DEPTH];  /* what each open container is */
	unsigned members[PCPU_EMIT_MAX_DEPTH];    /* members written in it so far */
};

/* pcpu_emit_begin - start a report on @f: JSON "{", or the text @title line (NULL: none). */
void pcpu_emit_begin(struct pcpu_emit *e, FILE *f, bool json, const char *title);
/* pcpu_emit_end - close every open container and the report; JSON ends with a newline. */
void pcpu_emit_end(struct pcpu_emit *e);

static inline bool pcpu_emit_is_json(const struct pcpu_emit *e)
{
	return e->json;
}

/* A section: JSON "key":{...}; text "\nTitle:\n-----" then one "  name : value" per line. */
void pcpu_emit_section_begin(struct pcpu_emit *e, const char *key, const char *title);
void pcpu_emit_section_end(struct pcpu_emit *e);

/* A list: JSON "key":[...]; text the titled rule, then its rows or blocks. */
void pcpu_emit_list_begin(struct pcpu_emit *e, const char *key, const char *title);
void pcpu_emit_list_end(struct pcpu_emit *e);

/* A row of a list: JSON {...}; text one line. */
void pcpu_emit_row_begin(struct pcpu_emit *e);
void pcpu_emit_row_end(struct pcpu_emit *e);

/* A block of a list: JSON {...}; text the @heading line, then one member per line. */
void pcpu_emit_block_begin(struct pcpu_emit *e, const char *heading);
void pcpu_emit_block_end(struct pcpu_emit *e);

/* Members of the innermost section, row or block. */
void pcpu_emit_u64(struct pcpu_emit *e, const char *key, uint64_t v);
void pcpu_emit_i64(struct pcpu_emit *e, const char *key, int64_t v);
void pcpu_emit_bool(struct pcpu_emit *e, const char *key, bool v);
/* @v NULL: JSON null, text "none". */
void pcpu_emit_str(struct pcpu_emit *e, const char *key, const char *v);
/* A member with no value: JSON null, text @text (for what is absent, e.g. not linked in). */
void pcpu_emit_null(struct pcpu_emit *e, const char *key, const char *text);

/* pcpu_emit_text - a free-form line, text only ("  " indented, newline added). */
void pcpu_emit_text(struct pcpu_emit *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * pcpu_emit_json_string - @s as a JSON string, quotes included: '"', '\' and control
 * characters escaped, invalid UTF-8 replaced by \ufffd, so that the output always parses.
 * The one JSON string writer of the project.
 */
void pcpu_emit_json_string(FILE *f, const char *s);

#endif /* PCPU_EMIT_H */
