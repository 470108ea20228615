/* SPDX-License-Identifier: MIT */
/* Allocator wrappers with a failure-injection hook for anomaly tests. Not a
 * pool or an arena: it forwards to libc. */
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>
#include <sqlite3.h>

#include "err.h"
#include "mem.h"

static unsigned long alloc_count;
static unsigned long fail_at;
static int fail_sticky;

static int
should_fail(void)
{
	alloc_count++;
	if (fail_at == 0)
		return 0;
	if (alloc_count == fail_at)
		return 1;
	return fail_sticky && alloc_count > fail_at;
}

void *
xts_malloc(size_t n)
{
	if (should_fail())
		return NULL;
	return malloc(n ? n : 1);
}

void *
xts_calloc(size_t n, size_t size)
{
	if (should_fail())
		return NULL;
	return calloc(n ? n : 1, size ? size : 1);
}

void *
xts_realloc(void *p, size_t n)
{
	if (should_fail())
		return NULL;
	return realloc(p, n ? n : 1);
}

void
xts_free(void *p)
{
	free(p);
}

char *
xts_strndup(const char *s, size_t n)
{
	char *d;

	if (s == NULL)
		return NULL;
	d = xts_malloc(n + 1);
	if (d == NULL)
		return NULL;
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

char *
xts_strdup(const char *s)
{
	return s ? xts_strndup(s, strlen(s)) : NULL;
}

void
xts_mem_fail_after(unsigned long n, int sticky)
{
	fail_at = n ? alloc_count + n : 0;
	fail_sticky = sticky;
}

unsigned long
xts_mem_count(void)
{
	return alloc_count;
}

/* SQLite wants the allocation size back from a pointer: keep it in a header. */
typedef union {
	size_t size;
	long double align;
} sq_hdr;

static void *
sq_malloc(int n)
{
	sq_hdr *h = xts_malloc(sizeof(*h) + (size_t)n);

	if (h == NULL)
		return NULL;
	h->size = (size_t)n;
	return h + 1;
}

static void
sq_free(void *p)
{
	if (p)
		xts_free((sq_hdr *)p - 1);
}

static void *
sq_realloc(void *p, int n)
{
	sq_hdr *h;

	if (p == NULL)
		return sq_malloc(n);
	h = xts_realloc((sq_hdr *)p - 1, sizeof(*h) + (size_t)n);
	if (h == NULL)
		return NULL;
	h->size = (size_t)n;
	return h + 1;
}

static int
sq_size(void *p)
{
	return p ? (int)((sq_hdr *)p - 1)->size : 0;
}

static int
sq_roundup(int n)
{
	return (n + 7) & ~7;
}

static int
sq_init(void *arg)
{
	(void)arg;
	return SQLITE_OK;
}

static void
sq_shutdown(void *arg)
{
	(void)arg;
}

static const sqlite3_mem_methods sq_methods = {
	sq_malloc, sq_free, sq_realloc, sq_size, sq_roundup, sq_init, sq_shutdown, NULL,
};

int
xts_mem_install(void)
{
	static int installed;

	if (installed)
		return 0;
	json_set_alloc_funcs(xts_malloc, xts_free);
	if (sqlite3_config(SQLITE_CONFIG_MALLOC, &sq_methods) != SQLITE_OK)
		return XTS_EINTERNAL;
	if (curl_global_init_mem(CURL_GLOBAL_DEFAULT, xts_malloc, xts_free, xts_realloc,
				 xts_strdup, xts_calloc) != CURLE_OK)
		return XTS_EINTERNAL;
	installed = 1;
	return 0;
}
