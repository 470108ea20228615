/* SPDX-License-Identifier: MIT */
/* Small text helpers shared across modules (text.h). */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "text.h"

int
xts_is_guid(const char *s)
{
	static const int groups[] = { 8, 4, 4, 4, 12 };
	int g, i;

	if (s == NULL)
		return 0;
	for (g = 0; g < 5; g++) {
		for (i = 0; i < groups[g]; i++, s++)
			if (!isxdigit((unsigned char)*s))
				return 0;
		if (g < 4 && *s++ != '-')
			return 0;
	}
	return *s == '\0';
}

void
xts_strf(char *dst, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (vsnprintf(dst, n, fmt, ap) < 0)
		dst[0] = '\0';
	va_end(ap);
}

size_t
xts_text_unsafe_at(const char *s)
{
	const unsigned char *u = (const unsigned char *)s;

	if (u[0] < 0x20 || u[0] == 0x7f)
		return u[0] != '\0';
	if (u[0] == 0xc2 && u[1] >= 0x80 && u[1] <= 0x9f)
		return 2;
	if (u[0] == 0xe2 && ((u[1] == 0x80 && u[2] >= 0xaa && u[2] <= 0xae) ||
			     (u[1] == 0x81 && u[2] >= 0xa6 && u[2] <= 0xa9)))
		return 3;
	return 0;
}

void
xts_text_scrub(char *s)
{
	size_t n;

	while (s != NULL && *s != '\0') {
		n = xts_text_unsafe_at(s);
		if (n == 0) {
			s++;
			continue;
		}
		memset(s, '?', n);
		s += n;
	}
}

int
xts_is_object_id(const char *s)
{
	size_t n = 0;

	if (s == NULL)
		return 0;
	for (; s[n] != '\0'; n++)
		if (n >= 64 || !(isalnum((unsigned char)s[n]) || s[n] == '-'))
			return 0;
	return n > 0;
}
