/* SPDX-License-Identifier: MIT */
/* Compact JSON text in one pass (json_text.h). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "json_bytes.h"
#include "json_text.h"

/* Nonzero when one of the eight bytes of w is below 0x20, '"' or '\\'. */
static inline int
needs_escape8(uint64_t w)
{
	return xts_json_special8(w) != 0;
}

/* Nonzero when no byte of p[0..n) needs escaping: eight bytes at a time,
 * the last eight overlapping what came before. */
static int
clean_text(const char *p, size_t n)
{
	uint64_t w;
	size_t i;

	if (n < 8) {
		for (i = 0; i < n; i++) {
			unsigned char c = (unsigned char)p[i];
			if (c < 0x20 || c == '"' || c == '\\')
				return 0;
		}
		return 1;
	}
	for (i = 0; i + 8 <= n; i += 8) {
		memcpy(&w, p + i, 8);
		if (needs_escape8(w))
			return 0;
	}
	memcpy(&w, p + n - 8, 8);
	return !needs_escape8(w);
}

/* Write p[0..n) as a JSON string at o, which has room for n * 6 + 2 bytes
 * (every byte as \u00XX, and the quotes); returns the end. */
static char *
str_at(char *o, const char *p, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i;

	*o++ = '"';
	if (clean_text(p, n)) {
		/* the common case: names, addresses, ids */
		memcpy(o, p, n);
		o += n;
		*o++ = '"';
		return o;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c >= 0x20 && c != '"' && c != '\\') {
			*o++ = (char)c;
			continue;
		}
		*o++ = '\\';
		switch (c) {
		case '"': *o++ = '"'; break;
		case '\\': *o++ = '\\'; break;
		case '\b': *o++ = 'b'; break;
		case '\f': *o++ = 'f'; break;
		case '\n': *o++ = 'n'; break;
		case '\r': *o++ = 'r'; break;
		case '\t': *o++ = 't'; break;
		default:
			*o++ = 'u';
			*o++ = '0';
			*o++ = '0';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		}
	}
	*o++ = '"';
	return o;
}

char *
xts_json_str_at(char *o, const char *p, size_t n)
{
	return str_at(o, p, n);
}

int
xts_json_str(const char *p, size_t n, struct xts_buf *b)
{
	char *o;

	if (n > ((size_t)-1 - 3) / 6 || xts_buf_reserve(b, n * 6 + 2) != 0)
		return XTS_ENOMEM;
	o = str_at(b->p + b->len, p, n);
	*o = '\0';
	b->len = (size_t)(o - b->p);
	return 0;
}

int
xts_json_text(const json_t *j, struct xts_buf *b, int depth)
{
	char num[32];
	int ret = 0;

	switch (json_typeof(j)) {
	case JSON_OBJECT: {
		void *it;
		int first = 1;

		if (depth > 64)
			break;
		ret = xts_buf_putc(b, '{');
		/* the iterator itself, not json_object_foreach, which looks each
		 * key up again for its value and its successor */
		for (it = json_object_iter((json_t *)j); it != NULL && ret == 0;
		     it = json_object_iter_next((json_t *)j, it)) {
			size_t kn = json_object_iter_key_len(it), vn = 0;
			const json_t *v = json_object_iter_value(it);
			int str = json_is_string(v);
			char *o;

			/* the comma, the key, the colon and a string or null value
			 * (most of a user's attributes) in one reservation, without
			 * the call for the value */
			if (str)
				vn = json_string_length(v);
			if (kn > ((size_t)-1 - 16) / 12 || vn > ((size_t)-1 - 16) / 12 ||
			    xts_buf_reserve(b, kn * 6 + vn * 6 + 8) != 0) {
				ret = XTS_ENOMEM;
				break;
			}
			o = b->p + b->len;
			if (!first)
				*o++ = ',';
			first = 0;
			o = str_at(o, json_object_iter_key(it), kn);
			*o++ = ':';
			if (str) {
				o = str_at(o, json_string_value(v), vn);
			} else if (json_is_null(v)) {
				memcpy(o, "null", 4);
				o += 4;
			}
			*o = '\0';
			b->len = (size_t)(o - b->p);
			if (!str && !json_is_null(v))
				ret = xts_json_text(v, b, depth + 1);
		}
		if (ret == 0)
			ret = xts_buf_putc(b, '}');
		return ret != 0 ? XTS_ENOMEM : 0;
	}
	case JSON_ARRAY: {
		size_t i, n = json_array_size(j);

		if (depth > 64)
			break;
		ret = xts_buf_putc(b, '[');
		for (i = 0; i < n && ret == 0; i++) {
			if (i > 0)
				ret = xts_buf_putc(b, ',');
			if (ret == 0)
				ret = xts_json_text(json_array_get(j, i), b, depth + 1);
		}
		if (ret == 0)
			ret = xts_buf_putc(b, ']');
		return ret != 0 ? XTS_ENOMEM : 0;
	}
	case JSON_STRING:
		return xts_json_str(json_string_value(j), json_string_length(j), b);
	case JSON_INTEGER:
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(j));
		return xts_buf_puts(b, num) != 0 ? XTS_ENOMEM : 0;
	case JSON_TRUE:
		return xts_buf_puts(b, "true") != 0 ? XTS_ENOMEM : 0;
	case JSON_FALSE:
		return xts_buf_puts(b, "false") != 0 ? XTS_ENOMEM : 0;
	case JSON_NULL:
		return xts_buf_puts(b, "null") != 0 ? XTS_ENOMEM : 0;
	default:
		break;
	}
	{
		/* reals and very deep values: jansson's own text */
		size_t len = json_dumpb(j, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);

		if (len == 0 || xts_buf_reserve(b, len + 1) != 0)
			return XTS_ENOMEM;
		if (json_dumpb(j, b->p + b->len, len, JSON_COMPACT | JSON_ENCODE_ANY) != len)
			return XTS_ENOMEM;
		b->len += len;
		b->p[b->len] = '\0';
	}
	return 0;
}

