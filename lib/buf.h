/* SPDX-License-Identifier: MIT */
/* Growable byte buffer, always NUL-terminated. Used for HTTP bodies, JSON
 * text and messages; not a string library. */
#ifndef XTS_BUF_H
#define XTS_BUF_H

#include <stddef.h>

struct xts_buf {
	char *p;    /* NUL-terminated when cap > 0 */
	size_t len; /* bytes used, excluding the NUL */
	size_t cap;
};

#define XTS_BUF_INIT { NULL, 0, 0 }

/* Make room for n more bytes; 0 or XTS_ENOMEM. */
int xts_buf_reserve(struct xts_buf *b, size_t n);
int xts_buf_append(struct xts_buf *b, const void *data, size_t n);
int xts_buf_puts(struct xts_buf *b, const char *s);
int xts_buf_putc(struct xts_buf *b, char c);
/* Append the whole file at path, then a newline (a PEM bundle in the
 * making). 0, or XTS_E* from errno (XTS_ENOENT...), XTS_EIO, XTS_ENOMEM. */
int xts_buf_append_file(struct xts_buf *b, const char *path);
int xts_buf_printf(struct xts_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Keep the allocation, forget the contents. */
void xts_buf_reset(struct xts_buf *b);
void xts_buf_free(struct xts_buf *b);
/* Hand the string to the caller (who frees it with xts_free); b is reset.
 * Returns "" allocated when empty, NULL only on ENOMEM. */
char *xts_buf_steal(struct xts_buf *b);
/* "" when nothing was ever appended. */
const char *xts_buf_str(const struct xts_buf *b);

#endif
