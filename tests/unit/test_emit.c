/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * The report emitter (lib/emit.c): the JSON it writes parses (json-c, strict) with every
 * value where it was put, strings of any bytes included (invalid UTF-8 becomes U+FFFD,
 * valid UTF-8 passes through); the text layout is the kernel's "  name : value" lines,
 * one line per row with its label first, a heading per block.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "emit.h"
#include "../check_run.h"

/* Run @fn with an emitter on a memory stream; return what it wrote (malloc'ed). */
static char *emitted(void (*fn)(struct pcpu_emit *e), bool json)
{
	static char *buf; /* static: see tests/api/stats_json.h on gcc 12 */
	static size_t len;
	struct pcpu_emit e;
	FILE *f;

	buf = NULL;
	f = open_memstream(&buf, &len);
	ck_assert_ptr_nonnull(f);
	pcpu_emit_begin(&e, f, json, "Title");
	fn(&e);
	pcpu_emit_end(&e);
	fclose(f);
	return buf;
}

static json_object *parse(const char *s)
{
	json_tokener *tok = json_tokener_new();
	json_object *o;

	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, s, (int)strlen(s));
	ck_assert_msg(o && json_tokener_get_error(tok) == json_tokener_success, "invalid: %s", s);
	/* One value and its newline: json-c takes trailing white space in. */
	ck_assert_uint_eq(json_tokener_get_parse_end(tok), strlen(s));
	ck_assert_str_eq(s + strlen(s) - 2, "}\n");
	json_tokener_free(tok);
	return o;
}

static json_object *member(json_object *o, const char *key)
{
	json_object *v;

	ck_assert_msg(json_object_object_get_ex(o, key, &v), "no %s", key);
	return v;
}

static const char *str_arg;

static void one_string(struct pcpu_emit *e)
{
	pcpu_emit_str(e, "s", str_arg);
}

/* The JSON string of @in read back by json-c. */
static char *round_trip(const char *in)
{
	char *out, *s;
	json_object *o;

	str_arg = in;
	s = emitted(one_string, true);
	o = parse(s);
	out = strdup(json_object_get_string(member(o, "s")));
	json_object_put(o);
	free(s);
	return out;
}

START_TEST(test_strings)
{
	char all[256], *out;
	static const char *const valid[] = {"plain", "caf\xc3\xa9", "\xe2\x82\xac 5",
					    "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf", "q\"b\\s/"};
	/* Each is one bad byte or a sequence UTF-8 forbids: overlong, surrogate, too big,
	 * cut short. Each byte that starts no valid sequence becomes one U+FFFD. */
	static const struct {
		const char *in, *out;
	} bad[] = {
		{"\xff", "\xef\xbf\xbd"},
		{"a\xc0\x80z", "a\xef\xbf\xbd\xef\xbf\xbdz"},
		{"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
		{"\xf5\x80\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
		{"\xe2\x82", "\xef\xbf\xbd\xef\xbf\xbd"},
		{"\xf0\x8f\xbf\xbf", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
	};

	/* Every ASCII byte, control characters included, comes back as it was. */
	for (int i = 1; i < 128; i++)
		all[i - 1] = (char)i;
	all[127] = '\0';
	out = round_trip(all);
	ck_assert_str_eq(out, all);
	free(out);
	for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
		out = round_trip(valid[i]);
		ck_assert_str_eq(out, valid[i]);
		free(out);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		out = round_trip(bad[i].in);
		ck_assert_msg(!strcmp(out, bad[i].out), "case %zu", i);
		free(out);
	}
}
END_TEST

static void report(struct pcpu_emit *e)
{
	pcpu_emit_section_begin(e, "info", "Info");
	pcpu_emit_u64(e, "big", UINT64_MAX);
	pcpu_emit_i64(e, "neg", -5);
	pcpu_emit_bool(e, "yes", true);
	pcpu_emit_str(e, "none", NULL);
	pcpu_emit_null(e, "absent", "unknown");
	pcpu_emit_section_end(e);
	pcpu_emit_list_begin(e, "rows", "Rows");
	pcpu_emit_text(e, "a line for people");
	for (int i = 0; i < 2; i++) {
		pcpu_emit_row_begin(e);
		pcpu_emit_str(e, "name", i ? "second" : "first");
		pcpu_emit_u64(e, "n", (uint64_t)i);
		pcpu_emit_row_end(e);
	}
	pcpu_emit_list_end(e);
	pcpu_emit_list_begin(e, "blocks", "Blocks");
	pcpu_emit_block_begin(e, "Block one:");
	pcpu_emit_u64(e, "size", 42);
	pcpu_emit_block_end(e);
	pcpu_emit_list_end(e);
	pcpu_emit_list_begin(e, "empty", "Empty");
	pcpu_emit_list_end(e);
}

START_TEST(test_json_layout)
{
	char *s = emitted(report, true);
	json_object *o = parse(s), *info, *rows, *blocks;

	info = member(o, "info");
	ck_assert_uint_eq((uint64_t)json_object_get_uint64(member(info, "big")), UINT64_MAX);
	ck_assert_int_eq(json_object_get_int64(member(info, "neg")), -5);
	ck_assert(json_object_get_boolean(member(info, "yes")));
	ck_assert(json_object_is_type(member(info, "none"), json_type_null));
	ck_assert(json_object_is_type(member(info, "absent"), json_type_null));
	rows = member(o, "rows");
	ck_assert_uint_eq(json_object_array_length(rows), 2);
	ck_assert_str_eq(json_object_get_string(member(json_object_array_get_idx(rows, 1), "name")),
			 "second");
	ck_assert_int_eq(json_object_get_int(member(json_object_array_get_idx(rows, 1), "n")), 1);
	blocks = member(o, "blocks");
	ck_assert_uint_eq(json_object_array_length(blocks), 1);
	ck_assert_int_eq(json_object_get_int(member(json_object_array_get_idx(blocks, 0), "size")),
			 42);
	ck_assert_uint_eq(json_object_array_length(member(o, "empty")), 0);
	ck_assert_ptr_null(strstr(s, "a line for people")); /* text only */
	ck_assert_ptr_null(strstr(s, "Title"));
	json_object_put(o);
	free(s);
}
END_TEST

START_TEST(test_text_layout)
{
	char *s = emitted(report, false);

	ck_assert_str_eq(s, "Title\n"
			    "\nInfo:\n----------------------------------------\n"
			    "  big                 : 18446744073709551615\n"
			    "  neg                 :           -5\n"
			    "  yes                 :          yes\n"
			    "  none                :         none\n"
			    "  absent              :      unknown\n"
			    "\nRows:\n----------------------------------------\n"
			    "  a line for people\n"
			    "  first         n 0\n"
			    "  second        n 1\n"
			    "\nBlocks:\n----------------------------------------\n"
			    "Block one:\n"
			    "  size                :           42\n"
			    "\n"
			    "\nEmpty:\n----------------------------------------\n");
	free(s);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("emit");
	TCase *tc = tcase_create("emit");

	tcase_add_test(tc, test_strings);
	tcase_add_test(tc, test_json_layout);
	tcase_add_test(tc, test_text_layout);
	suite_add_tcase(s, tc);
	return pcpu_check_run(s, CK_FORK_GETENV);
}
