/* SPDX-License-Identifier: MIT */
/* Growable NUL-terminated byte buffer. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "mem.h"

int
xts_buf_reserve(struct xts_buf *b, size_t n)
{
	size_t need, cap;
	char *p;

	if (n > ((size_t)-1) / 2 - b->len)
		return XTS_ENOMEM;
	need = b->len + n + 1;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	p = xts_realloc(b->p, cap);
	if (p == NULL)
		return XTS_ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

int
xts_buf_append(struct xts_buf *b, const void *data, size_t n)
{
	int ret = xts_buf_reserve(b, n);

	if (ret)
		return ret;
	if (n)
		memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

int
xts_buf_puts(struct xts_buf *b, const char *s)
{
	return xts_buf_append(b, s, strlen(s));
}

int
xts_buf_putc(struct xts_buf *b, char c)
{
	/* the common case without reserve and memcpy: JSON text writers call
	 * this for every brace, comma and colon */
	if (b->cap - b->len >= 2) {
		b->p[b->len++] = c;
		b->p[b->len] = '\0';
		return 0;
	}
	return xts_buf_append(b, &c, 1);
}

int
xts_buf_printf(struct xts_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, ret;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return XTS_EINVAL;
	ret = xts_buf_reserve(b, (size_t)n);
	if (ret)
		return ret;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void
xts_buf_reset(struct xts_buf *b)
{
	b->len = 0;
	if (b->p)
		b->p[0] = '\0';
}

void
xts_buf_free(struct xts_buf *b)
{
	xts_free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

char *
xts_buf_steal(struct xts_buf *b)
{
	char *p;

	if (b->p == NULL)
		return xts_strdup("");
	p = b->p;
	b->p = NULL;
	b->len = b->cap = 0;
	return p;
}

const char *
xts_buf_str(const struct xts_buf *b)
{
	return b->p ? b->p : "";
}

int
xts_buf_append_file(struct xts_buf *b, const char *path)
{
	FILE *f = fopen(path, "re");
	char tmp[8192];
	size_t n;
	int ret = 0;

	if (f == NULL)
		return xts_err_from_errno(errno);
	for (;;) {
		n = fread(tmp, 1, sizeof(tmp), f);
		if (n == 0 || ret != 0)
			break;
		ret = xts_buf_append(b, tmp, n);
	}
	if (ret == 0 && ferror(f))
		ret = XTS_EIO;
	fclose(f);
	return ret == 0 ? xts_buf_putc(b, '\n') : ret;
}
