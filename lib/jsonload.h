/* SPDX-License-Identifier: MIT */
/* JSON parsing entry points: jansson's json_load* behind a guard (mem.c)
 * that ends the process cleanly if an allocation fails while jansson parses,
 * because jansson 2.14's lexer corrupts memory after such a failure.
 * Use these instead of json_load* everywhere in lib/ and daemon/. */
#ifndef XTS_JSONLOAD_H
#define XTS_JSONLOAD_H

#include <stdio.h>

#include <jansson.h>

/* Same arguments, result and ownership (a new reference or NULL with err
 * filled) as jansson's json_loadb / json_loads / json_loadf /
 * json_load_file. Out of memory while parsing: exits the process (status 1)
 * with a message on stderr; never returns NULL for it. */
json_t *xts_json_loadb(const char *buf, size_t len, size_t flags, json_error_t *err);
json_t *xts_json_loads(const char *s, size_t flags, json_error_t *err);
json_t *xts_json_loadf(FILE *f, size_t flags, json_error_t *err);
json_t *xts_json_load_file(const char *path, size_t flags, json_error_t *err);

#endif
