/* SPDX-License-Identifier: MIT */
/* json_loadb with a fast path (lib/json_load.c): same values, same
 * accepted inputs and same errors as jansson's, faster on Graph pages. */
#ifndef XTS_JSON_LOAD_H
#define XTS_JSON_LOAD_H

#include <stddef.h>

#include <jansson.h>

/* Drop-in for json_loadb(buf, len, flags, error): a new reference or NULL
 * (error filled by jansson). flags 0 and JSON_DECODE_ANY take the fast path;
 * other flags, and any input the fast path does not take (reals, long
 * integers, deep nesting, invalid text), go to json_loadb. Never blocks. */
json_t *xts_json_loadb(const char *buf, size_t len, size_t flags, json_error_t *error);

/* The fast path alone (tests): NULL where xts_json_loadb would ask jansson. */
json_t *xts_json__load_fast(const char *buf, size_t len, size_t flags);

#endif
