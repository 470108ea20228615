/* SPDX-License-Identifier: MIT */
/* libFuzzer target: arbitrary bytes as Graph response bodies into every
 * parser the client has (delta/list pages, members@delta, $batch responses,
 * token-endpoint answers, Graph error bodies, Retry-After, link origin
 * checks). It checks for crashes, leaks and UB, not for semantics - except
 * that the fast JSON reader must give jansson's result (abort otherwise). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "auth.h"
#include "err.h"
#include "graph.h"
#include "http.h"
#include "json_load.h"
#include "log.h"
#include "mem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
on_members(void *arg, const struct xts_member_event *ev, size_t n, int last)
{
	size_t i, *count = arg;

	for (i = 0; i < n; i++)
		*count += strlen(ev[i].group_id) + (ev[i].member_id != NULL ? strlen(ev[i].member_id) : 0) +
			  (size_t)ev[i].removed;
	return last;
}

static void
on_sub(void *arg, const char *id, long status, json_t *body, long long ra, double pct)
{
	size_t *count = arg;

	*count += strlen(id) + (size_t)(status & 1) + (body != NULL) + (ra > 0) + (pct >= 0.8);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int init;
	struct xts_graph_error ge;
	json_t *j, *value;
	const char *next, *delta;
	char *tok = NULL, detail[256], *s;
	long long exp;
	long code;
	size_t count = 0;

	if (!init) {
		xts_log_init(XTS_LOG_CRIT, 0);
		init = 1;
	}
	memset(&ge, 0, sizeof(ge));
	xts_graph_error_parse((const char *)data, size, &ge);
	if (xts_auth_parse_token_response(200, (const char *)data, size, &tok, &exp, &code, detail,
					  sizeof(detail)) == 0)
		xts_free(tok);
	tok = NULL;
	if (xts_auth_parse_token_response(400, (const char *)data, size, &tok, &exp, &code, detail,
					  sizeof(detail)) == 0)
		xts_free(tok);
	j = json_loadb((const char *)data, size, 0, NULL);
	{
		/* The fast reader (lib/json_load.c) must agree with jansson on
		 * every input: same verdict, same value, same key order. */
		json_t *f = xts_json_loadb((const char *)data, size, 0, NULL);
		char *a = f != NULL ? json_dumps(f, JSON_COMPACT) : NULL;
		char *b = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
		json_malloc_t jm;
		json_free_t jf;

		if ((f == NULL) != (j == NULL) || (f != NULL && !json_equal(f, j)) ||
		    (a != NULL && b != NULL && strcmp(a, b) != 0))
			abort();
		json_get_alloc_funcs(&jm, &jf);
		jf(a);
		jf(b);
		json_decref(f);
		/* Graph's answers are read with \u0000 tolerated: without one
		 * it must be the same reader, with one it must not crash. */
		f = xts_json_loadb_graph((const char *)data, size, NULL);
		if (memmem(data, size, "\\u0000", 6) == NULL && ((f == NULL) != (j == NULL) ||
		    (f != NULL && !json_equal(f, j))))
			abort();
		json_decref(f);
	}
	if (j != NULL) {
		if (xts_graph_page_parse(j, &value, &next, &delta) == 0) {
			xts_graph_members_parse(value, on_members, &count, 1);
			if (next != NULL)
				xts_http_same_origin(next, "https://graph.microsoft.com");
			if (delta != NULL)
				xts_http_same_origin(delta, "http://127.0.0.1:8080");
			/* a link the pager follows: whatever the server wrote, a
			 * resolved link is on the endpoint's origin */
			if (next != NULL) {
				char *abs = NULL;

				if (xts_http_link_resolve("http://127.0.0.1:8080/p", "/v1.0/", next, &abs) == 0 &&
				    (abs == NULL || xts_http_same_origin(abs, "http://127.0.0.1:8080") != 0))
					abort();
				xts_free(abs);
			}
		}
		xts_batch_parse_response(j, on_sub, &count);
		json_decref(j);
	}
	s = xts_strndup((const char *)data, size < 200 ? size : 200);
	if (s != NULL) {
		xts_http_parse_retry_after(s, 1700000000);
		xts_http_url_check(s);
		xts_throttle_cost_of("GET", s);
		xts_free(s);
	}
	return 0;
}
