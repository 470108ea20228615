/* SPDX-License-Identifier: MIT */
/* Small text helpers shared across modules: predicates on identifiers and a
 * bounded formatter for short messages and JSON paths. */
#ifndef XTS_TEXT_H
#define XTS_TEXT_H

#include <stddef.h>

/* 1 when s is a GUID in its 8-4-4-4-12 hex form (either case), else 0;
 * NULL is not one. */
int xts_is_guid(const char *s);

/* JSON paths in messages are built from fixed member names and indexes, so
 * they stay short; xts_strf truncates safely if one ever did not. */
#define XTS_PATH_MAX 512
/* snprintf into dst (size n) that leaves "" instead of a partial string on
 * an encoding error: for messages and paths that may be truncated. */
void xts_strf(char *dst, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
