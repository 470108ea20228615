/* SPDX-License-Identifier: MIT */
/* Small text helpers shared across modules (text.h). */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>

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
