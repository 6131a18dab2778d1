/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * stats_json.h - the statistics as parsed JSON (json-c, strict mode), and lookups that fail
 * the test when a member is missing or of the wrong type, so tests check numbers, not text.
 */
#ifndef PCPU_TEST_STATS_JSON_H
#define PCPU_TEST_STATS_JSON_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <pcpu.h>

#include "test_util.h"

/* json_parse_strict - @s as one JSON value (RFC 8259, nothing after it), or fail the test. */
static inline json_object *json_parse_strict(const char *s)
{
	json_tokener *tok = json_tokener_new();
	json_object *o;
	size_t len = strlen(s);

	ck_assert_ptr_nonnull(tok);
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, s, (int)len);
	ck_assert_msg(o && json_tokener_get_error(tok) == json_tokener_success,
		      "invalid JSON (%s) at offset %zu of:\n%s",
		      json_tokener_error_desc(json_tokener_get_error(tok)),
		      json_tokener_get_parse_end(tok), s);
	/* Only white space may follow the value. */
	for (size_t i = json_tokener_get_parse_end(tok); i < len; i++)
		ck_assert_msg(strchr(" \t\r\n", s[i]), "text after the JSON value:\n%s", s + i);
	json_tokener_free(tok);
	return o;
}

/* pcpu_stats_print() (@json 0) or pcpu_stats_print_json() into a malloc'ed string. */
static inline char *stats_print_string(int json)
{
	return print_string(json ? pcpu_stats_print_json : pcpu_stats_print);
}

/* The statistics now, parsed; release with json_object_put(). */
static inline json_object *stats_json_now(void)
{
	char *s = stats_print_string(1);
	json_object *o = json_parse_strict(s);

	free(s);
	return o;
}

/* jget - the member at @path ("global.nr_alloc": object keys joined by dots), or fail. */
static inline json_object *jget(json_object *o, const char *path)
{
	char key[128];

	while (*path) {
		size_t n = strcspn(path, ".");

		ck_assert_uint_lt(n, sizeof(key));
		memcpy(key, path, n);
		key[n] = '\0';
		ck_assert_msg(json_object_is_type(o, json_type_object) &&
				      json_object_object_get_ex(o, key, &o),
			      "no \"%s\" in the JSON statistics", key);
		path += n + (path[n] == '.');
	}
	return o;
}

/* jint - the integer at @path, or fail. */
static inline long long jint(json_object *o, const char *path)
{
	o = jget(o, path);
	ck_assert_msg(json_object_is_type(o, json_type_int), "%s is not an integer", path);
	return (long long)json_object_get_int64(o);
}

/* jstr - the string at @path (NULL for null), or fail. */
static inline const char *jstr(json_object *o, const char *path)
{
	o = jget(o, path);
	if (json_object_is_type(o, json_type_null))
		return NULL;
	ck_assert_msg(json_object_is_type(o, json_type_string), "%s is not a string", path);
	return json_object_get_string(o);
}

/* jarray - the array at @path, or fail. */
static inline json_object *jarray(json_object *o, const char *path)
{
	o = jget(o, path);
	ck_assert_msg(json_object_is_type(o, json_type_array), "%s is not an array", path);
	return o;
}

/* jfind - the element of array @path whose "name" is @name, or fail. */
static inline json_object *jfind(json_object *o, const char *path, const char *name)
{
	json_object *a = jarray(o, path);

	for (size_t i = 0; i < json_object_array_length(a); i++) {
		json_object *e = json_object_array_get_idx(a, i);
		const char *n = jstr(e, "name");

		if (n && !strcmp(n, name))
			return e;
	}
	ck_abort_msg("no \"%s\" in %s", name, path);
	return NULL;
}

#endif /* PCPU_TEST_STATS_JSON_H */
