/* SPDX-License-Identifier: MIT */
/* Allocator wrappers with a failure-injection hook for anomaly tests. They
 * forward to libc; only jansson's small blocks are kept on per-thread free
 * lists for reuse (json_malloc below). Not an arena. */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <sqlite3.h>

#include "err.h"
#include "mem.h"

static unsigned long alloc_count;
static unsigned long fail_at;
static int fail_sticky;

static size_t fail_size;
static unsigned long fail_size_nth;
static _Thread_local int json_parsing;

static int
should_fail(size_t n)
{
	if (fail_size != 0 && n == fail_size && --fail_size_nth == 0) {
		fail_size = 0;
		return 1;
	}
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
	if (should_fail(n))
		return NULL;
	return malloc(n ? n : 1);
}

void *
xts_calloc(size_t n, size_t size)
{
	if (should_fail(n * size))
		return NULL;
	return calloc(n ? n : 1, size ? size : 1);
}

void *
xts_realloc(void *p, size_t n)
{
	if (should_fail(n))
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

void
xts_mem_fail_size(size_t n, unsigned long nth)
{
	fail_size_nth = nth;
	fail_size = nth != 0 ? n : 0;
}

unsigned long
xts_mem_count(void)
{
	return alloc_count;
}

/* jansson 2.14's lexer ignores a failed allocation while it saves the text
 * of a token (lex_save drops strbuffer_append_byte's error; akheron/jansson
 * issue #362, PR #735) and goes on with inconsistent state: an assert, or a
 * heap overflow that corrupts memory. So an allocation that fails while
 * jansson parses ends the process at once, cleanly, before jansson can damage
 * anything: the store is crash-safe and a restart (systemd's Restart=) resumes.
 * Everywhere else jansson reports a failed allocation properly. */
static void
json_parse_oom(void)
{
	static const char msg[] = "xtsync: crit: out of memory inside the JSON parser, which cannot recover "
				  "from it (jansson 2.14); exiting at once, the store is consistent and a "
				  "restart resumes\n";

	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) {
		/* nothing better to do: exiting anyway */
	}
	_exit(1);
}

/* jansson's small blocks (values, object pairs, string texts: a page of
 * 100 users is ~20,000 of them, all freed together with the page) are
 * recycled through per-thread free lists by size class. glibc's tcache keeps
 * 7 blocks per size, so freeing a page's tree sent most blocks through
 * _int_free and the next page's parse through _int_malloc; a list here costs
 * a few instructions either way (benchmark 1: tests/bench/README.md). The
 * blocks stay ordinary malloc blocks, class chosen by malloc_usable_size on
 * the way back, so anything jansson hands out (json_dumps) may still be
 * freed with xts_free or free. Each list holds at most JPOOL_DEPTH blocks
 * (what one page's tree frees; never more than ~9 MiB over all classes,
 * per thread), the rest go back to libc. Not under AddressSanitizer, which
 * must see every free to find a use after it. */
#if defined(__SANITIZE_ADDRESS__)
#define JPOOL 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define JPOOL 0
#endif
#endif
#ifndef JPOOL
#define JPOOL 1
#endif

#if JPOOL

#define JPOOL_CLASSES 16      /* usable sizes 24, 40, ..., 264 */
#define JPOOL_DEPTH 4096

struct jpool_block {
	struct jpool_block *next;
};

struct jpool {
	struct jpool_block *head[JPOOL_CLASSES];
	unsigned count[JPOOL_CLASSES];
};

static _Thread_local struct jpool jpool;
/* glibc's MALLOC_PERTURB_ (the test runner sets it) for the blocks kept
 * here too: freed and handed-out memory filled as glibc fills it, so a use
 * after free still reads garbage. Read once by xts_mem_install. */
static int jpool_perturb;

static void *
json_malloc(size_t n)
{
	size_t c = n <= 24 ? 0 : (n - 24 + 15) / 16;
	void *p;

	if (c < JPOOL_CLASSES && jpool.head[c] != NULL) {
		struct jpool_block *b = jpool.head[c];

		if (should_fail(n)) {
			p = NULL;
		} else {
			jpool.head[c] = b->next;
			jpool.count[c]--;
			if (jpool_perturb != 0)
				memset(b, jpool_perturb ^ 0xff, n);
			return b;
		}
	} else {
		p = xts_malloc(n);
	}
	if (p == NULL && json_parsing)
		json_parse_oom();
	return p;
}

static void
json_free(void *p)
{
	size_t u, c;

	if (p == NULL)
		return;
	u = malloc_usable_size(p);
	c = (u - 24) / 16; /* usable sizes are 24 + 16k: the class it fills */
	if (u >= 24 && c < JPOOL_CLASSES && jpool.count[c] < JPOOL_DEPTH) {
		struct jpool_block *b = p;

		if (jpool_perturb != 0)
			memset(p, jpool_perturb, u);
		b->next = jpool.head[c];
		jpool.head[c] = b;
		jpool.count[c]++;
		return;
	}
	free(p);
}

static void
jpool_drain(void)
{
	for (size_t c = 0; c < JPOOL_CLASSES; c++) {
		while (jpool.head[c] != NULL) {
			struct jpool_block *b = jpool.head[c];

			jpool.head[c] = b->next;
			free(b);
		}
		jpool.count[c] = 0;
	}
}

unsigned long
xts_mem_pooled(void)
{
	unsigned long n = 0;

	for (size_t c = 0; c < JPOOL_CLASSES; c++)
		n += jpool.count[c];
	return n;
}
#else
static void
jpool_drain(void)
{
}

unsigned long
xts_mem_pooled(void)
{
	return 0;
}

static void *
json_malloc(size_t n)
{
	void *p = xts_malloc(n);

	if (p == NULL && json_parsing)
		json_parse_oom();
	return p;
}

static void
json_free(void *p)
{
	xts_free(p);
}
#endif

void
xts_mem_trim(void)
{
	jpool_drain();
#ifdef __GLIBC__
	malloc_trim(0);
#endif
}

void
xts_mem_json_guard(int on)
{
	json_parsing += on ? 1 : -1;
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
#if JPOOL
	{
		const char *pe = getenv("MALLOC_PERTURB_");

		jpool_perturb = pe != NULL ? (int)(strtol(pe, NULL, 10) & 0xff) : 0;
	}
#endif
	json_set_alloc_funcs(json_malloc, json_free);
	/* No memory statistics: SQLite would take a global mutex around every
	 * allocation to keep them, and nothing here reads them. */
	if (sqlite3_config(SQLITE_CONFIG_MALLOC, &sq_methods) != SQLITE_OK ||
	    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) != SQLITE_OK)
		return XTS_EINTERNAL;
	if (curl_global_init_mem(CURL_GLOBAL_DEFAULT, xts_malloc, xts_free, xts_realloc,
				 xts_strdup, xts_calloc) != CURLE_OK)
		return XTS_EINTERNAL;
	installed = 1;
	return 0;
}
