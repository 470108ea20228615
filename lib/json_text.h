/* SPDX-License-Identifier: MIT */
/* Compact JSON text of a jansson value, in one pass (lib/json_text.c), for
 * the store's JSON columns, provisioning-log lines and Graph request bodies.
 * jansson's json_dumps/json_dumpb run a UTF-8 decoder per character, format
 * a loop-check key with snprintf for every object and array, and json_dumpb
 * needs two passes to fill a caller's buffer: this was the largest cost of
 * storing a page of users, and of sending a $batch envelope. */
#ifndef XTS_JSON_TEXT_H
#define XTS_JSON_TEXT_H

#include <stddef.h>

#include <jansson.h>

#include "buf.h"

/* Append the text of j to b: the same text as json_dumpb(JSON_COMPACT |
 * JSON_ENCODE_ANY), keys in insertion order, '"', '\\' and control
 * characters escaped, other bytes (valid UTF-8, as jansson guarantees)
 * copied. Reals and anything nested deeper than 64 levels below depth go
 * through jansson. 0, or XTS_ENOMEM (b may then hold part of the text:
 * callers drop it). */
int xts_json_text(const json_t *j, struct xts_buf *b, int depth);
/* Append p[0..n) as a JSON string (quoted, escaped as above). 0 or
 * XTS_ENOMEM (b unchanged). */
int xts_json_str(const char *p, size_t n, struct xts_buf *b);
/* Write p[0..n) as a JSON string at o, which has room for n * 6 + 2 bytes
 * (every byte as \u00XX, and the quotes); returns the end. No NUL. */
char *xts_json_str_at(char *o, const char *p, size_t n);

#endif
