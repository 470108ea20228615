/* SPDX-License-Identifier: MIT */
/* The project's allocator. Every allocation in lib/ and daemon/ goes through
 * these so that tests can inject "fail the Nth allocation" (anomaly testing);
 * jansson, SQLite and libcurl are pointed at the same hooks by xts_mem_install()
 * (jansson's small blocks are recycled through per-thread free lists, mem.c).
 * Allocation failure is reported, never aborts, with one exception: inside
 * jansson's parser it ends the process (xts_mem_json_guard, json_load.h). */
#ifndef XTS_MEM_H
#define XTS_MEM_H

#include <stddef.h>

void *xts_malloc(size_t n);
void *xts_calloc(size_t n, size_t size);
void *xts_realloc(void *p, size_t n);
void xts_free(void *p);
/* Copy of s (NULL if s is NULL or memory ran out). Caller frees with xts_free. */
char *xts_strdup(const char *s);
/* Copy of the first n bytes of s, NUL-terminated. */
char *xts_strndup(const char *s, size_t n);

/* Route jansson, SQLite and libcurl allocations through xts_malloc & co.
 * Call once, before any of those libraries is used. Returns 0 or XTS_E*. */
int xts_mem_install(void);

/* Test hook: make the Nth allocation from now (1-based) and every later one
 * fail when sticky is non-zero, or only that one otherwise. n == 0 disables. */
void xts_mem_fail_after(unsigned long n, int sticky);
/* While on (calls nest), an allocation that fails through jansson's allocator
 * ends the process (see mem.c: jansson's parser cannot survive one). Only
 * json_load.c sets it, around jansson's own parser. */
void xts_mem_json_guard(int on);
/* Test hook: the nth allocation from now of exactly n bytes fails (once);
 * nth == 0 disables. */
void xts_mem_fail_size(size_t n, unsigned long nth);
/* Hand back memory kept for reuse: the calling thread's pooled jansson
 * blocks, then whatever the C library can return to the system
 * (malloc_trim). For idle moments, e.g. when no cycle runs any more. */
void xts_mem_trim(void);
/* Blocks the calling thread's jansson pool holds now (0 without a pool). */
unsigned long xts_mem_pooled(void);
/* Allocations made since start (for the fail-Nth loop). */
unsigned long xts_mem_count(void);

#endif
