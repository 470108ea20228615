/* SPDX-License-Identifier: MIT */
/* Date functions of the expression language: CDate, DateAdd, DateDiff,
 * DateFromNum, NumFromDate, FormatDateTime (.NET custom format strings, both
 * directions) and Now. Dates are UTC, proleptic Gregorian, 0001-9999; they
 * travel between functions as "M/d/yyyy h:mm:ss tt" text like Microsoft's.
 * No time zone database: an input offset is applied, output is always UTC. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "expr_internal.h"
#include "mem.h"

#define DEFAULT_FMT "M/d/yyyy h:mm:ss tt"
/* Seconds from 1601-01-01 (Windows FILETIME epoch) to 1970-01-01. */
#define FILETIME_UNIX_DIFF 11644473600LL

struct xdt {
	long long secs; /* Unix seconds, UTC */
	int frac;       /* 100 ns units, 0..9999999 */
};

struct civil {
	int y, mo, d, h, mi, s, frac;
};

static const char *const month_names[] = { "January", "February", "March", "April", "May",
					   "June", "July", "August", "September", "October",
					   "November", "December" };
static const char *const day_names[] = { "Sunday", "Monday", "Tuesday", "Wednesday",
					 "Thursday", "Friday", "Saturday" };

static long long
floordiv(long long a, long long b)
{
	long long q = a / b;

	return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* Howard Hinnant's days_from_civil / civil_from_days. */
static long long
days_from_civil(long long y, unsigned m, unsigned d)
{
	long long era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = floordiv(y, 400);
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (long long)doe - 719468;
}

static void
civil_from_days(long long z, int *y, int *m, int *d)
{
	long long era, yy;
	unsigned doe, yoe, doy, mp;

	z += 719468;
	era = floordiv(z, 146097);
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	yy = (long long)yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = (int)(yy + (*m <= 2));
}

static int
days_in_month(int y, int m)
{
	static const int dm[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return dm[m - 1];
}

static void
to_civil(const struct xdt *t, struct civil *c)
{
	long long days = floordiv(t->secs, 86400), rem = t->secs - days * 86400;

	civil_from_days(days, &c->y, &c->mo, &c->d);
	c->h = (int)(rem / 3600);
	c->mi = (int)(rem / 60 % 60);
	c->s = (int)(rem % 60);
	c->frac = t->frac;
}

/* Range check and conversion; offset_min is the input's UTC offset. */
static int
from_civil(const struct civil *c, int offset_min, struct xdt *t)
{
	if (c->y < 1 || c->y > 9999 || c->mo < 1 || c->mo > 12 || c->d < 1 ||
	    c->d > days_in_month(c->y, c->mo) || c->h < 0 || c->h > 23 || c->mi < 0 || c->mi > 59 ||
	    c->s < 0 || c->s > 59)
		return -1;
	t->secs = days_from_civil(c->y, (unsigned)c->mo, (unsigned)c->d) * 86400 + c->h * 3600 +
		  c->mi * 60 + c->s - (long long)offset_min * 60;
	t->frac = c->frac;
	return 0;
}

/* ---- formatting ------------------------------------------------------- */

static size_t
run_len(const char *f, size_t i)
{
	size_t n = 1;

	while (f[i + n] == f[i])
		n++;
	return n;
}

static int
format_dt(const struct xdt *t, const char *f, struct xts_buf *b)
{
	struct civil c;
	size_t i = 0, n;
	int ret = 0, wd;

	to_civil(t, &c);
	wd = (int)((floordiv(t->secs, 86400) % 7 + 7 + 4) % 7); /* 1970-01-01 was a Thursday */
	while (f[i] && ret == 0) {
		char ch = f[i];
		n = run_len(f, i);
		switch (ch) {
		case 'y':
			if (n == 1)
				ret = xts_buf_printf(b, "%d", c.y % 100);
			else if (n == 2)
				ret = xts_buf_printf(b, "%02d", c.y % 100);
			else
				ret = xts_buf_printf(b, "%0*d", (int)(n > 9 ? 9 : n), c.y);
			break;
		case 'M':
			if (n <= 2)
				ret = xts_buf_printf(b, n == 1 ? "%d" : "%02d", c.mo);
			else
				ret = xts_buf_printf(b, "%.*s", n == 3 ? 3 : 20, month_names[c.mo - 1]);
			break;
		case 'd':
			if (n <= 2)
				ret = xts_buf_printf(b, n == 1 ? "%d" : "%02d", c.d);
			else
				ret = xts_buf_printf(b, "%.*s", n == 3 ? 3 : 20, day_names[wd]);
			break;
		case 'H':
			ret = xts_buf_printf(b, n == 1 ? "%d" : "%02d", c.h);
			break;
		case 'h':
			ret = xts_buf_printf(b, n == 1 ? "%d" : "%02d", c.h % 12 ? c.h % 12 : 12);
			break;
		case 'm':
			ret = xts_buf_printf(b, n == 1 ? "%d" : "%02d", c.mi);
			break;
		case 's':
			ret = xts_buf_printf(b, n == 1 ? "%d" : "%02d", c.s);
			break;
		case 'f':
		case 'F': {
			char digits[8];
			size_t k = n > 7 ? 7 : n;
			snprintf(digits, sizeof(digits), "%07d", c.frac);
			digits[k] = '\0';
			if (ch == 'F')
				while (k > 0 && digits[k - 1] == '0')
					digits[--k] = '\0';
			ret = xts_buf_puts(b, digits);
			break;
		}
		case 't':
			ret = xts_buf_puts(b, n == 1 ? (c.h < 12 ? "A" : "P") : (c.h < 12 ? "AM" : "PM"));
			break;
		case 'z':
			ret = xts_buf_puts(b, n == 1 ? "+0" : n == 2 ? "+00" : "+00:00");
			break;
		case 'K':
			ret = xts_buf_putc(b, 'Z');
			n = 1;
			break;
		case '\'':
		case '"': {
			const char *close = strchr(f + i + 1, ch);
			size_t l = close ? (size_t)(close - (f + i + 1)) : strlen(f + i + 1);
			ret = xts_buf_append(b, f + i + 1, l);
			n = l + (close ? 2 : 1);
			break;
		}
		case '\\':
			if (f[i + 1])
				ret = xts_buf_putc(b, f[i + 1]);
			n = f[i + 1] ? 2 : 1;
			break;
		case '%':
			n = 1;
			break;
		default:
			ret = xts_buf_append(b, f + i, n);
			break;
		}
		i += n;
	}
	return ret;
}

static int
ret_date(struct xts_ev *ev, const struct xts_node *call, const struct xdt *t, json_t **out)
{
	struct xts_buf b = XTS_BUF_INIT;
	int ret = format_dt(t, DEFAULT_FMT, &b);

	if (ret < 0) {
		xts_buf_free(&b);
		return ret;
	}
	return xts_ev_ret_buf(ev, call, &b, out);
}

/* ---- parsing ---------------------------------------------------------- */

static int
digits(const char **p, int min, int max, int *v)
{
	int n = 0;

	*v = 0;
	while (n < max && **p >= '0' && **p <= '9') {
		*v = *v * 10 + (**p - '0');
		(*p)++;
		n++;
	}
	return n >= min ? 0 : -1;
}

/* [+-]hh[:mm] | [+-]hhmm | Z; *off in minutes. */
static int
parse_offset(const char **p, int colon_required, int *off)
{
	int sign, h, m = 0;

	if (**p == 'Z' || **p == 'z') {
		(*p)++;
		*off = 0;
		return 0;
	}
	if (**p != '+' && **p != '-')
		return -1;
	sign = **p == '-' ? -1 : 1;
	(*p)++;
	if (digits(p, 1, 2, &h) < 0)
		return -1;
	if (**p == ':') {
		(*p)++;
		if (digits(p, 2, 2, &m) < 0)
			return -1;
	} else if (colon_required) {
		return -1;
	} else if (**p >= '0' && **p <= '9' && digits(p, 2, 2, &m) < 0) {
		return -1;
	}
	if (h > 14 || m > 59)
		return -1;
	*off = sign * (h * 60 + m);
	return 0;
}

static int
parse_time_part(const char **p, struct civil *c)
{
	if (digits(p, 1, 2, &c->h) < 0 || **p != ':')
		return -1;
	(*p)++;
	if (digits(p, 2, 2, &c->mi) < 0)
		return -1;
	if (**p == ':') {
		(*p)++;
		if (digits(p, 2, 2, &c->s) < 0)
			return -1;
		if (**p == '.' || **p == ',') {
			int k = 0, scale = 1000000;
			(*p)++;
			if (**p < '0' || **p > '9')
				return -1;
			while (**p >= '0' && **p <= '9') {
				if (k++ < 7) {
					c->frac += (**p - '0') * scale;
					scale /= 10;
				}
				(*p)++;
			}
		}
	}
	return 0;
}

/* The date forms Microsoft's examples use: ISO 8601 ("2012-03-16-07:00",
 * "2009-06-15T01:45:30-07:00", "2021-08-24", "2020-12-31 23:59:59-08:00")
 * and the functions' own output "M/d/yyyy h:mm:ss tt". No offset means UTC. */
static int
parse_any(const char *s, struct xdt *t)
{
	struct civil c = { 1, 1, 1, 0, 0, 0, 0 };
	const char *p = s;
	int off = 0;

	while (*p == ' ' || *p == '\t')
		p++;
	if (digits(&p, 4, 4, &c.y) == 0 && *p == '-') {
		p++;
		if (digits(&p, 1, 2, &c.mo) < 0 || *p != '-')
			return -1;
		p++;
		if (digits(&p, 1, 2, &c.d) < 0)
			return -1;
		if ((*p == 'T' || *p == ' ') && p[1] >= '0' && p[1] <= '9') {
			p++;
			if (parse_time_part(&p, &c) < 0)
				return -1;
		}
	} else {
		p = s;
		while (*p == ' ' || *p == '\t')
			p++;
		if (digits(&p, 1, 2, &c.mo) < 0 || *p++ != '/' || digits(&p, 1, 2, &c.d) < 0 ||
		    *p++ != '/' || digits(&p, 4, 4, &c.y) < 0)
			return -1;
		if (*p == ' ' && p[1] >= '0' && p[1] <= '9') {
			p++;
			if (parse_time_part(&p, &c) < 0)
				return -1;
			while (*p == ' ')
				p++;
			if (strncasecmp(p, "AM", 2) == 0 || strncasecmp(p, "PM", 2) == 0) {
				if (c.h < 1 || c.h > 12)
					return -1;
				c.h = c.h % 12 + ((p[0] == 'P' || p[0] == 'p') ? 12 : 0);
				p += 2;
			}
		}
	}
	while (*p == ' ')
		p++;
	if (*p && parse_offset(&p, 0, &off) < 0)
		return -1;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p)
		return -1;
	return from_civil(&c, off, t);
}

static int
match_name(const char **p, const char *const *names, int count, int abbrev, int *idx)
{
	int i;

	for (i = 0; i < count; i++) {
		size_t l = abbrev ? 3 : strlen(names[i]);
		if (strncasecmp(*p, names[i], l) == 0) {
			*p += l;
			*idx = i;
			return 0;
		}
	}
	return -1;
}

/* DateTime.ParseExact with a .NET custom format (invariant culture). */
static int
parse_exact(const char *s, const char *f, struct xdt *t)
{
	struct civil c = { 1, 1, 1, 0, 0, 0, 0 };
	const char *p = s;
	size_t i = 0, n;
	int off = 0, pm = -1, idx, v;

	while (*p == ' ' || *p == '\t')
		p++;
	while (f[i]) {
		char ch = f[i];
		n = run_len(f, i);
		switch (ch) {
		case 'y':
			if (n <= 2) {
				if (digits(&p, n == 1 ? 1 : 2, 2, &v) < 0)
					return -1;
				c.y = v < 50 ? 2000 + v : 1900 + v; /* .NET cutoff 2049 */
			} else if (digits(&p, (int)n, (int)n, &c.y) < 0) {
				return -1;
			}
			break;
		case 'M':
			if (n >= 3) {
				if (match_name(&p, month_names, 12, n == 3, &idx) < 0)
					return -1;
				c.mo = idx + 1;
			} else if (digits(&p, (int)n, 2, &c.mo) < 0) {
				return -1;
			}
			break;
		case 'd':
			if (n >= 3) {
				if (match_name(&p, day_names, 7, n == 3, &idx) < 0)
					return -1;
			} else if (digits(&p, (int)n, 2, &c.d) < 0) {
				return -1;
			}
			break;
		case 'H':
		case 'h':
		case 'm':
		case 's':
			if (digits(&p, (int)(n > 2 ? 2 : n), 2, &v) < 0)
				return -1;
			if (ch == 'H' || ch == 'h')
				c.h = v;
			else if (ch == 'm')
				c.mi = v;
			else
				c.s = v;
			if (ch == 'h' && (v < 1 || v > 12))
				return -1;
			if (ch == 'h' && pm < 0)
				pm = 0;
			break;
		case 'f':
		case 'F': {
			int k = 0, scale = 1000000;
			while (k < (int)n && *p >= '0' && *p <= '9') {
				if (k < 7)
					c.frac += (*p - '0') * scale;
				scale /= 10;
				p++;
				k++;
			}
			if (ch == 'f' && k != (int)n)
				return -1;
			break;
		}
		case 't':
			if (*p == 'A' || *p == 'a')
				pm = 0;
			else if (*p == 'P' || *p == 'p')
				pm = 1;
			else
				return -1;
			p++;
			if (n >= 2) {
				if (*p != 'M' && *p != 'm')
					return -1;
				p++;
			}
			break;
		case 'z':
			if (parse_offset(&p, n >= 3, &off) < 0)
				return -1;
			break;
		case 'K':
			n = 1;
			if (*p == 'Z' || *p == '+' || *p == '-') {
				if (parse_offset(&p, 0, &off) < 0)
					return -1;
			}
			break;
		case '\'':
		case '"': {
			const char *close = strchr(f + i + 1, ch);
			size_t l = close ? (size_t)(close - (f + i + 1)) : strlen(f + i + 1);
			if (strncmp(p, f + i + 1, l) != 0)
				return -1;
			p += l;
			n = l + (close ? 2 : 1);
			break;
		}
		case '\\':
			if (f[i + 1]) {
				if (*p != f[i + 1])
					return -1;
				p++;
			}
			n = f[i + 1] ? 2 : 1;
			break;
		case '%':
			n = 1;
			break;
		default:
			/* literal; 'Z' as a literal also marks the value as UTC */
			n = 1;
			if (*p != ch)
				return -1;
			p++;
			break;
		}
		i += n;
	}
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p)
		return -1;
	if (pm >= 0) {
		if (c.h < 1 || c.h > 12)
			return -1;
		c.h = c.h % 12 + (pm ? 12 : 0);
	}
	return from_civil(&c, off, t);
}

/* ---- the functions ---------------------------------------------------- */

static int
date_arg(struct xts_ev *ev, const struct xts_node *call, int i, struct xdt *t, int *isnull)
{
	char *s = NULL;
	int ret = xts_ev_str(ev, call, i, &s, NULL);

	*isnull = 0;
	if (ret < 0)
		return ret;
	if (!s) {
		*isnull = 1;
		return 0;
	}
	if (parse_any(s, t) < 0)
		ret = xts_ev_fail(ev, call->args[i], "'%s': '%.80s' is not a date", call->fn->name, s);
	xts_free(s);
	return ret;
}

int
xts_fn_cdate(struct xts_ev *ev, const struct xts_node *call, json_t **out)
{
	struct xdt t;
	int isnull, ret = date_arg(ev, call, 0, &t, &isnull);

	if (ret < 0)
		return ret;
	if (isnull) {
		*out = json_null();
		return 0;
	}
	return ret_date(ev, call, &t, out);
}

int
xts_fn_now(struct xts_ev *ev, const struct xts_node *call, json_t **out)
{
	struct xdt t = { (long long)ev->now, 0 };

	return ret_date(ev, call, &t, out);
}

enum { IV_YEAR, IV_QUARTER, IV_MONTH, IV_DAY, IV_WEEKDAY, IV_WEEK, IV_HOUR, IV_MIN, IV_SEC };

/* VB DateAdd/DateDiff interval strings (Microsoft documents yyyy, m, d, ww,
 * h, n, s; VB's q, y and w are accepted too). */
static int
interval_arg(struct xts_ev *ev, const struct xts_node *call, int *iv)
{
	static const struct { const char *s; int iv; } tbl[] = {
		{ "yyyy", IV_YEAR }, { "q", IV_QUARTER }, { "m", IV_MONTH }, { "y", IV_DAY },
		{ "d", IV_DAY },     { "w", IV_WEEKDAY }, { "ww", IV_WEEK }, { "h", IV_HOUR },
		{ "n", IV_MIN },     { "s", IV_SEC },
	};
	char *s = NULL;
	size_t i;
	int ret = xts_ev_str(ev, call, 0, &s, NULL);

	if (ret < 0)
		return ret;
	for (i = 0; s && i < sizeof(tbl) / sizeof(tbl[0]); i++) {
		if (strcasecmp(s, tbl[i].s) == 0) {
			*iv = tbl[i].iv;
			xts_free(s);
			return 0;
		}
	}
	ret = xts_ev_fail(ev, call->args[0], "'%s': unknown interval '%.20s' (use yyyy, m, d, "
			  "ww, h, n or s)", call->fn->name, s ? s : "");
	xts_free(s);
	return ret;
}

int
xts_fn_dateadd(struct xts_ev *ev, const struct xts_node *call, json_t **out)
{
	static const long long unit[] = { 0, 0, 0, 86400, 86400, 604800, 3600, 60, 1 };
	struct xdt t;
	long long v;
	int iv, isnull, dnull, ret;

	ret = interval_arg(ev, call, &iv);
	if (ret == 0)
		ret = xts_ev_int(ev, call, 1, &v, &isnull);
	if (ret == 0)
		ret = date_arg(ev, call, 2, &t, &dnull);
	if (ret < 0)
		return ret;
	if (dnull) {
		*out = json_null();
		return 0;
	}
	if (v > 100000000000LL || v < -100000000000LL)
		return xts_ev_fail(ev, call->args[1], "DateAdd: value out of range");
	if (iv == IV_YEAR || iv == IV_QUARTER || iv == IV_MONTH) {
		struct civil c;
		long long months;
		int dim;
		to_civil(&t, &c);
		months = (long long)c.y * 12 + (c.mo - 1) +
			 v * (iv == IV_YEAR ? 12 : iv == IV_QUARTER ? 3 : 1);
		if (months < 12 || months >= 10000LL * 12)
			return xts_ev_fail(ev, call, "DateAdd: result outside years 1 to 9999");
		c.y = (int)(months / 12);
		c.mo = (int)(months % 12) + 1;
		dim = days_in_month(c.y, c.mo);
		if (c.d > dim) /* like .NET AddMonths: clamp to the month's last day */
			c.d = dim;
		if (from_civil(&c, 0, &t) < 0)
			return xts_ev_fail(ev, call, "DateAdd: result outside years 1 to 9999");
	} else {
		t.secs += v * unit[iv];
		if (t.secs < -62135596800LL || t.secs > 253402300799LL)
			return xts_ev_fail(ev, call, "DateAdd: result outside years 1 to 9999");
	}
	return ret_date(ev, call, &t, out);
}

int
xts_fn_datediff(struct xts_ev *ev, const struct xts_node *call, json_t **out)
{
	struct xdt a, b;
	struct civil ca, cb;
	long long r;
	int iv, n1, n2, ret;

	ret = interval_arg(ev, call, &iv);
	if (ret == 0)
		ret = date_arg(ev, call, 1, &a, &n1);
	if (ret == 0)
		ret = date_arg(ev, call, 2, &b, &n2);
	if (ret < 0)
		return ret;
	if (n1 || n2) {
		*out = json_null();
		return 0;
	}
	to_civil(&a, &ca);
	to_civil(&b, &cb);
	/* Like VB: count the interval boundaries crossed between the dates. */
	switch (iv) {
	case IV_YEAR: r = cb.y - ca.y; break;
	case IV_QUARTER: r = (cb.y * 4LL + (cb.mo - 1) / 3) - (ca.y * 4LL + (ca.mo - 1) / 3); break;
	case IV_MONTH: r = (cb.y * 12LL + cb.mo) - (ca.y * 12LL + ca.mo); break;
	case IV_DAY: r = floordiv(b.secs, 86400) - floordiv(a.secs, 86400); break;
	case IV_WEEKDAY: r = (b.secs - a.secs) / 604800; break;
	/* weeks start on Sunday; 1970-01-04 (Unix day 3) was one */
	case IV_WEEK: r = floordiv(floordiv(b.secs, 86400) - 3, 7) -
			  floordiv(floordiv(a.secs, 86400) - 3, 7); break;
	case IV_HOUR: r = floordiv(b.secs, 3600) - floordiv(a.secs, 3600); break;
	case IV_MIN: r = floordiv(b.secs, 60) - floordiv(a.secs, 60); break;
	default: r = b.secs - a.secs; break;
	}
	*out = json_integer(r);
	return 0;
}

int
xts_fn_datefromnum(struct xts_ev *ev, const struct xts_node *call, json_t **out)
{
	struct xdt t;
	long long v;
	int isnull, ret = xts_ev_int(ev, call, 0, &v, &isnull);

	if (ret < 0)
		return ret;
	/* AD large-integer dates: 0 and 0x7FFFFFFFFFFFFFFF mean "never". */
	if (isnull || v == 0 || v == 0x7FFFFFFFFFFFFFFFLL) {
		*out = json_null();
		return 0;
	}
	if (v < 0 || v / 10000000 - FILETIME_UNIX_DIFF > 253402300799LL)
		return xts_ev_fail(ev, call->args[0], "DateFromNum: %lld is not an AD date", v);
	t.secs = v / 10000000 - FILETIME_UNIX_DIFF;
	t.frac = (int)(v % 10000000);
	return ret_date(ev, call, &t, out);
}

int
xts_fn_numfromdate(struct xts_ev *ev, const struct xts_node *call, json_t **out)
{
	struct xdt t;
	int isnull, ret = date_arg(ev, call, 0, &t, &isnull);

	if (ret < 0)
		return ret;
	if (isnull) {
		*out = json_null();
		return 0;
	}
	if (t.secs < -FILETIME_UNIX_DIFF)
		return xts_ev_fail(ev, call->args[0], "NumFromDate: date before 1601");
	*out = json_integer((t.secs + FILETIME_UNIX_DIFF) * 10000000LL + t.frac);
	return 0;
}

int
xts_fn_formatdatetime(struct xts_ev *ev, const struct xts_node *call, json_t **out)
{
	struct xts_buf b = XTS_BUF_INIT;
	char *s = NULL, *in = NULL, *of = NULL;
	struct xdt t;
	int ret;

	/* Argument 2 (dateTimeStyles) is accepted and ignored: the default
	 * (RoundtripKind, AllowLeading/TrailingWhite) is what is implemented.
	 * Three arguments are the page's older form, FormatDateTime(source,
	 * inputFormat, outputFormat), still in its NumFromDate example. */
	int k = call->nargs == 3 ? 1 : 2;

	ret = xts_ev_str(ev, call, 0, &s, NULL);
	if (ret == 0)
		ret = xts_ev_str(ev, call, k, &in, NULL);
	if (ret == 0)
		ret = xts_ev_str(ev, call, k + 1, &of, NULL);
	if (ret < 0)
		goto done;
	if (!s) {
		*out = json_null();
		goto done;
	}
	if (!in || !of || !*in || !*of) {
		ret = xts_ev_fail(ev, call, "FormatDateTime: inputFormat and outputFormat are required");
		goto done;
	}
	if (parse_exact(s, in, &t) < 0) {
		ret = xts_ev_fail(ev, call->args[0], "FormatDateTime: '%.80s' does not match the "
				  "input format '%.60s'", s, in);
		goto done;
	}
	ret = format_dt(&t, of, &b);
	if (ret == 0)
		ret = xts_ev_ret_buf(ev, call, &b, out);
done:
	xts_free(s);
	xts_free(in);
	xts_free(of);
	xts_buf_free(&b);
	return ret;
}
