/* SPDX-License-Identifier: MIT */
/* Small text helpers shared across modules: predicates on identifiers and a
 * bounded formatter for short messages and JSON paths. */
#ifndef XTS_TEXT_H
#define XTS_TEXT_H

#include <stddef.h>

/* 1 when s is a GUID in its 8-4-4-4-12 hex form (either case), else 0;
 * NULL is not one. */
int xts_is_guid(const char *s);

/* 1 when s can be a directory object id as Graph writes it (a GUID; tests
 * use short ids like "u-7"): 1 to 64 ASCII letters, digits and '-'. An id
 * goes into request paths and log lines, so anything else (a '/', '?', '%',
 * a quote, a control character) is refused where it enters. */
int xts_is_object_id(const char *s);

/* Bytes at s that must not reach a log line or a terminal, 0 when *s starts
 * a safe character: a C0 control or DEL (1), a C1 control U+0080-U+009F
 * (2: a terminal may read U+009B as ESC [), or a bidirectional override or
 * isolate U+202A-U+202E, U+2066-U+2069 (3: they reorder what a line seems
 * to say). Tenant data (names, ids, Graph's error messages) goes through
 * it. s must be NUL-terminated. */
size_t xts_text_unsafe_at(const char *s);
/* Replace, in place, each unsafe sequence of s with as many '?'. */
void xts_text_scrub(char *s);

/* JSON paths in messages are built from fixed member names and indexes, so
 * they stay short; xts_strf truncates safely if one ever did not. */
#define XTS_PATH_MAX 512
/* snprintf into dst (size n) that leaves "" instead of a partial string on
 * an encoding error: for messages and paths that may be truncated. */
void xts_strf(char *dst, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
