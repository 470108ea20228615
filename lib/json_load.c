/* SPDX-License-Identifier: MIT */
/* A faster json_loadb for the shapes Graph and the store send: objects,
 * arrays, strings (validated UTF-8, every escape), integers, true, false,
 * null, read with pointer scans instead of jansson's per-character stream.
 * It builds ordinary jansson values. Anything else (reals, integers past 18
 * digits, nesting past 128, any syntax error or invalid UTF-8) is handed to
 * jansson itself, so what is accepted and the errors reported are jansson's.
 * It is not a JSON library: no encoder, no error positions of its own. */
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "json_bytes.h"
#include "json_load.h"
#include "mem.h"

#define FAST_MAX_DEPTH 128

struct fast {
	const unsigned char *p, *end;
	struct xts_buf tmp; /* unescaped text of the current string */
};

static void
skip_ws(struct fast *f)
{
	while (f->p < f->end && (*f->p == ' ' || *f->p == '\n' || *f->p == '\r' || *f->p == '\t'))
		f->p++;
}

/* Length of the valid UTF-8 sequence at p (first byte >= 0x80), or 0 when
 * it is not one jansson accepts: no overlong forms, no surrogates, nothing
 * above U+10FFFF (jansson's utf8_check_first/utf8_check_full). */
static size_t
utf8_len(const unsigned char *p, const unsigned char *end)
{
	unsigned c = p[0], v;
	size_t n, i;

	if (c >= 0xC2 && c <= 0xDF) {
		n = 2;
		v = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		v = c & 0x0F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		v = c & 0x07;
	} else {
		return 0;
	}
	if ((size_t)(end - p) < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		v = (v << 6) | (p[i] & 0x3F);
	}
	if ((n == 3 && v < 0x800) || (n == 4 && v < 0x10000) || (v >= 0xD800 && v <= 0xDFFF) ||
	    v > 0x10FFFF)
		return 0;
	return n;
}

static int
hex4(const unsigned char *p, unsigned *out)
{
	unsigned v = 0;
	int i;

	for (i = 0; i < 4; i++) {
		unsigned c = p[i];

		if (c >= '0' && c <= '9')
			c -= '0';
		else if (c >= 'a' && c <= 'f')
			c -= 'a' - 10;
		else if (c >= 'A' && c <= 'F')
			c -= 'A' - 10;
		else
			return -1;
		v = (v << 4) | c;
	}
	*out = v;
	return 0;
}

/* Decode the escapes of the string whose body starts at f->p (after the
 * opening quote) into f->tmp; on success f->p is past the closing quote. */
static int
string_slow(struct fast *f)
{
	const unsigned char *p = f->p, *end = f->end;
	char u[4];
	int ret = 0;

	xts_buf_reset(&f->tmp);
	while (ret == 0) {
		const unsigned char *run = p;
		unsigned c, cp;
		size_t n;

		while (p < end && *p != '"' && *p != '\\' && *p >= 0x20) {
			if (*p < 0x80) {
				p++;
			} else {
				n = utf8_len(p, end);
				if (n == 0)
					return -1;
				p += n;
			}
		}
		if (p > run && xts_buf_append(&f->tmp, run, (size_t)(p - run)) != 0)
			return -1;
		if (p >= end || *p < 0x20)
			return -1;
		if (*p == '"') {
			f->p = p + 1;
			return 0;
		}
		/* a backslash */
		if (end - p < 2)
			return -1;
		c = p[1];
		p += 2;
		switch (c) {
		case '"': case '\\': case '/':
			ret = xts_buf_putc(&f->tmp, (char)c);
			continue;
		case 'b': ret = xts_buf_putc(&f->tmp, '\b'); continue;
		case 'f': ret = xts_buf_putc(&f->tmp, '\f'); continue;
		case 'n': ret = xts_buf_putc(&f->tmp, '\n'); continue;
		case 'r': ret = xts_buf_putc(&f->tmp, '\r'); continue;
		case 't': ret = xts_buf_putc(&f->tmp, '\t'); continue;
		case 'u':
			break;
		default:
			return -1;
		}
		if (end - p < 4 || hex4(p, &cp) != 0)
			return -1;
		p += 4;
		if (cp >= 0xD800 && cp <= 0xDBFF) {
			unsigned lo;

			if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, &lo) != 0 ||
			    lo < 0xDC00 || lo > 0xDFFF)
				return -1;
			p += 6;
			cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
		} else if ((cp >= 0xDC00 && cp <= 0xDFFF) || cp == 0) {
			return -1; /* lone low surrogate; \u0000 (no JSON_ALLOW_NUL) */
		}
		if (cp < 0x80) {
			u[0] = (char)cp;
			n = 1;
		} else if (cp < 0x800) {
			u[0] = (char)(0xC0 | (cp >> 6));
			u[1] = (char)(0x80 | (cp & 0x3F));
			n = 2;
		} else if (cp < 0x10000) {
			u[0] = (char)(0xE0 | (cp >> 12));
			u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
			u[2] = (char)(0x80 | (cp & 0x3F));
			n = 3;
		} else {
			u[0] = (char)(0xF0 | (cp >> 18));
			u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
			u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
			u[3] = (char)(0x80 | (cp & 0x3F));
			n = 4;
		}
		ret = xts_buf_append(&f->tmp, u, n);
	}
	return -1;
}

/* The high bit of each of the eight bytes of w that ends a plain run of
 * string text: '"', '\\', a control byte (< 0x20) or a byte >= 0x80 (UTF-8,
 * checked one sequence at a time). The lowest flag is exact. */
static inline uint64_t
stop8(uint64_t w)
{
	return xts_json_special8(w) | (w & XTS_BYTES_HIGHS);
}

/* A string at f->p (on the opening quote): *s and *n get its text, in
 * the input (no escapes) or in f->tmp (valid until the next string). */
static int
string(struct fast *f, const char **s, size_t *n)
{
	const unsigned char *p = ++f->p, *end = f->end;

	for (;;) {
		/* eight bytes at a time to the word holding the stop, and on a
		 * little-endian machine (the first byte is the lowest) to the
		 * stop itself; the byte loop finishes the rest */
		while (end - p >= 8) {
			uint64_t w, m;

			memcpy(&w, p, 8);
			m = stop8(w);
			if (m != 0) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
				p += (unsigned)__builtin_ctzll(m) >> 3;
#endif
				break;
			}
			p += 8;
		}
		while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
			p++;
		if (p >= end || *p < 0x20)
			return -1;
		if (*p == '"')
			break;
		if (*p == '\\') {
			if (string_slow(f) != 0)
				return -1;
			*s = f->tmp.p != NULL ? f->tmp.p : "";
			*n = f->tmp.len;
			return 0;
		}
		{
			size_t l = utf8_len(p, end);

			if (l == 0)
				return -1;
			p += l;
		}
	}
	*s = (const char *)f->p;
	*n = (size_t)(p - f->p);
	f->p = p + 1;
	return 0;
}

static json_t *
number(struct fast *f)
{
	const unsigned char *p = f->p, *end = f->end;
	unsigned long long v = 0;
	int neg = 0, digits = 0;

	if (*p == '-') {
		neg = 1;
		p++;
	}
	if (p >= end || *p < '0' || *p > '9')
		return NULL;
	if (*p == '0' && p + 1 < end && p[1] >= '0' && p[1] <= '9')
		return NULL;
	while (p < end && *p >= '0' && *p <= '9') {
		if (++digits > 18)
			return NULL; /* jansson decides overflow */
		v = v * 10 + (unsigned)(*p - '0');
		p++;
	}
	if (p < end && (*p == '.' || *p == 'e' || *p == 'E'))
		return NULL; /* reals: jansson's strtod */
	f->p = p;
	return json_integer(neg ? -(json_int_t)v : (json_int_t)v);
}

static int
literal(struct fast *f, const char *word, size_t n)
{
	if ((size_t)(f->end - f->p) < n || memcmp(f->p, word, n) != 0)
		return -1;
	f->p += n;
	return 0;
}

static json_t *
value(struct fast *f, int depth)
{
	json_t *v = NULL, *item;
	const char *s;
	size_t n;

	skip_ws(f);
	if (f->p >= f->end || depth > FAST_MAX_DEPTH)
		return NULL;
	switch (*f->p) {
	case '{':
		f->p++;
		v = json_object();
		if (v == NULL)
			return NULL;
		skip_ws(f);
		if (f->p < f->end && *f->p == '}') {
			f->p++;
			return v;
		}
		for (;;) {
			char kbuf[128], *key = kbuf;

			skip_ws(f);
			if (f->p >= f->end || *f->p != '"' || string(f, &s, &n) != 0)
				goto fail;
			/* the key's text may be in f->tmp, which the value reuses */
			if (n >= sizeof(kbuf)) {
				key = xts_malloc(n + 1);
				if (key == NULL)
					goto fail;
			}
			memcpy(key, s, n);
			key[n] = '\0';
			skip_ws(f);
			if (f->p >= f->end || *f->p != ':') {
				if (key != kbuf)
					xts_free(key);
				goto fail;
			}
			f->p++;
			item = value(f, depth + 1);
			/* steals item, also on failure */
			if (item == NULL || json_object_setn_new_nocheck(v, key, n, item) != 0) {
				if (key != kbuf)
					xts_free(key);
				goto fail;
			}
			if (key != kbuf)
				xts_free(key);
			skip_ws(f);
			if (f->p < f->end && *f->p == ',') {
				f->p++;
				continue;
			}
			if (f->p < f->end && *f->p == '}') {
				f->p++;
				return v;
			}
			goto fail;
		}
	case '[':
		f->p++;
		v = json_array();
		if (v == NULL)
			return NULL;
		skip_ws(f);
		if (f->p < f->end && *f->p == ']') {
			f->p++;
			return v;
		}
		for (;;) {
			item = value(f, depth + 1);
			if (item == NULL || json_array_append_new(v, item) != 0)
				goto fail;
			skip_ws(f);
			if (f->p < f->end && *f->p == ',') {
				f->p++;
				continue;
			}
			if (f->p < f->end && *f->p == ']') {
				f->p++;
				return v;
			}
			goto fail;
		}
	case '"':
		if (string(f, &s, &n) != 0)
			return NULL;
		return json_stringn_nocheck(s, n);
	case 't':
		return literal(f, "true", 4) == 0 ? json_true() : NULL;
	case 'f':
		return literal(f, "false", 5) == 0 ? json_false() : NULL;
	case 'n':
		return literal(f, "null", 4) == 0 ? json_null() : NULL;
	default:
		return number(f);
	}
fail:
	json_decref(v);
	return NULL;
}

json_t *
xts_json__load_fast(const char *buf, size_t len, size_t flags)
{
	struct fast f;
	json_t *v = NULL;

	if (buf == NULL || (flags & ~(size_t)JSON_DECODE_ANY) != 0)
		return NULL;
	memset(&f, 0, sizeof(f));
	f.p = (const unsigned char *)buf;
	f.end = f.p + len;
	skip_ws(&f);
	if (f.p < f.end && ((flags & JSON_DECODE_ANY) || *f.p == '{' || *f.p == '['))
		v = value(&f, 0);
	if (v != NULL) {
		skip_ws(&f);
		if (f.p != f.end) {
			json_decref(v);
			v = NULL;
		}
	}
	xts_buf_free(&f.tmp);
	return v;
}

json_t *
xts_json_loadb(const char *buf, size_t len, size_t flags, json_error_t *error)
{
	json_t *v = xts_json__load_fast(buf, len, flags);

	if (v != NULL) {
		if (error != NULL)
			memset(error, 0, sizeof(*error));
		return v;
	}
	/* the fast path declined (or ran out of memory, and reported it
	 * cleanly): jansson, under the guard against its lexer's OOM bug */
	xts_mem_json_guard(1);
	v = json_loadb(buf, len, flags, error);
	xts_mem_json_guard(0);
	return v;
}

/* 1 when a member name holds a NUL byte; string values holding one are
 * rewritten with U+FFFD for each NUL. 0, or -1 out of memory. */
static int
nul_fix(json_t *v, int depth)
{
	const char *key;
	json_t *item;
	size_t i;
	int ret;

	if (depth > FAST_MAX_DEPTH * 16)
		return 1;
	if (json_is_string(v)) {
		const char *p = json_string_value(v);
		size_t n = json_string_length(v), k;
		struct xts_buf b = XTS_BUF_INIT;

		if (memchr(p, '\0', n) == NULL)
			return 0;
		ret = 0;
		for (k = 0; k < n && ret == 0; k++)
			ret = p[k] == '\0' ? xts_buf_append(&b, "\xEF\xBF\xBD", 3) : xts_buf_putc(&b, p[k]);
		if (ret == 0)
			ret = json_string_setn_nocheck(v, b.p != NULL ? b.p : "", b.len) == 0 ? 0 : -1;
		xts_buf_free(&b);
		return ret != 0 ? -1 : 0;
	}
	if (json_is_array(v)) {
		json_array_foreach(v, i, item) {
			ret = nul_fix(item, depth + 1);
			if (ret != 0)
				return ret;
		}
		return 0;
	}
	if (json_is_object(v)) {
		void *it;
		for (it = json_object_iter(v); it != NULL; it = json_object_iter_next(v, it)) {
			key = json_object_iter_key(it);
			if (json_object_iter_key_len(it) != strlen(key))
				return 1;
			ret = nul_fix(json_object_iter_value(it), depth + 1);
			if (ret != 0)
				return ret;
		}
	}
	return 0;
}

json_t *
xts_json_loadb_graph(const char *buf, size_t len, json_error_t *error)
{
	json_t *v = xts_json_loadb(buf, len, 0, error);

	if (v != NULL || buf == NULL || memmem(buf, len, "\\u0000", 6) == NULL)
		return v;
	xts_mem_json_guard(1);
	v = json_loadb(buf, len, JSON_ALLOW_NUL, error);
	xts_mem_json_guard(0);
	if (v != NULL && nul_fix(v, 0) != 0) {
		json_decref(v);
		v = NULL;
	}
	return v;
}

json_t *
xts_json_loads(const char *s, size_t flags, json_error_t *error)
{
	return xts_json_loadb(s, strlen(s), flags, error);
}

json_t *
xts_json_loadf(FILE *f, size_t flags, json_error_t *error)
{
	json_t *v;

	xts_mem_json_guard(1);
	v = json_loadf(f, flags, error);
	xts_mem_json_guard(0);
	return v;
}

json_t *
xts_json_load_file(const char *path, size_t flags, json_error_t *error)
{
	json_t *v;

	xts_mem_json_guard(1);
	v = json_load_file(path, flags, error);
	xts_mem_json_guard(0);
	return v;
}
