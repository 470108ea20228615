/* SPDX-License-Identifier: MIT */
/* Building the matching queries of a create: OData string literals and
 * percent-encoding for GET /users?$filter=... (graph:
 * concepts/filter-query-parameter.md: single quotes inside a literal are
 * doubled). It sends nothing; engine_apply.c runs the queries in order. */
#include <string.h>

#include "buf.h"
#include "engine_internal.h"
#include "err.h"
#include "mem.h"

char *
eng_odata_quote(const char *s)
{
	struct xts_buf b = XTS_BUF_INIT;
	int ret = xts_buf_putc(&b, '\'');

	for (; ret == 0 && *s != '\0'; s++)
		ret = *s == '\'' ? xts_buf_puts(&b, "''") : xts_buf_putc(&b, *s);
	if (ret == 0)
		ret = xts_buf_putc(&b, '\'');
	if (ret != 0) {
		xts_buf_free(&b);
		return NULL;
	}
	return xts_buf_steal(&b);
}

char *
eng_urlenc(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	struct xts_buf b = XTS_BUF_INIT;
	int ret = 0;

	for (; ret == 0 && *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~') {
			ret = xts_buf_putc(&b, (char)c);
		} else {
			char e[3] = { '%', hex[c >> 4], hex[c & 15] };
			ret = xts_buf_append(&b, e, 3);
		}
	}
	if (ret != 0) {
		xts_buf_free(&b);
		return NULL;
	}
	return xts_buf_steal(&b);
}
