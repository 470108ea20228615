/* SPDX-License-Identifier: MIT */
/* JSON parsing for lib/ and daemon/ (lib/json_load.c): a fast path for the
 * shapes Graph and the store send (same values, accepted inputs and errors
 * as jansson's), and jansson's own parser behind a guard (mem.c) that ends
 * the process cleanly if an allocation fails while jansson parses, because
 * jansson 2.14's lexer corrupts memory after such a failure. Use these
 * instead of json_load* (tests/checksrc.sh enforces it). */
#ifndef XTS_JSON_LOAD_H
#define XTS_JSON_LOAD_H

#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

/* Same arguments, result and ownership as jansson's json_loadb /
 * json_loads / json_loadf / json_load_file: a new reference, or NULL with
 * error filled by jansson. xts_json_loadb (and _loads) with flags 0 or
 * JSON_DECODE_ANY take the fast path; other flags, and any input it does
 * not take (reals, long integers, deep nesting, invalid text), go to
 * jansson. Out of memory inside jansson's parser exits the process
 * (status 1, a message on stderr). Never blocks (loadf/load_file read). */
json_t *xts_json_loadb(const char *buf, size_t len, size_t flags, json_error_t *error);
json_t *xts_json_loads(const char *s, size_t flags, json_error_t *error);
json_t *xts_json_loadf(FILE *f, size_t flags, json_error_t *error);
json_t *xts_json_load_file(const char *path, size_t flags, json_error_t *error);

/* A Graph answer: xts_json_loadb (flags 0), except that a \u0000 inside a
 * string value becomes U+FFFD instead of failing the whole text. jansson
 * refuses \u0000 without JSON_ALLOW_NUL and no C string could carry it, yet
 * one user's attribute holding it would otherwise fail every page of its
 * job's delta, cycle after cycle. A \u0000 in a member name still fails
 * (NULL). Only a text that fails and holds "\u0000" is parsed twice. */
json_t *xts_json_loadb_graph(const char *buf, size_t len, json_error_t *error);

/* The fast path alone (tests): NULL where xts_json_loadb would ask jansson. */
json_t *xts_json__load_fast(const char *buf, size_t len, size_t flags);

#endif
