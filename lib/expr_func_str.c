/* SPDX-License-Identifier: MIT */
/* Text functions of the expression language: Append, Join, Left, Mid, Word,
 * Split, StripSpaces, InStr, CStr, case mapping (ToLower/ToUpper/PCase via
 * libunistring), NormalizeDiacritics, ConvertToBase64/UTF8Hex, Replace
 * (plain and PCRE2 forms), RandomString and Guid. No date handling here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/rand.h>
#include <unicase.h>
#include <unictype.h>
#include <uninorm.h>
#include <unistr.h>

#include "err.h"
#include "expr_internal.h"
#include "mem.h"

/* Run a libunistring transformation into memory we own: libunistring writes
 * into resultbuf when it is large enough, else mallocs (then we copy). */
typedef uint8_t *(*u8_xform)(const uint8_t *s, size_t n, const char *lang, uninorm_t nf,
			     uint8_t *resultbuf, size_t *lengthp);

static int
u8_apply(u8_xform f, uninorm_t nf, const char *lang, const char *s, size_t n, struct xts_buf *out)
{
	size_t cap = n * 3 + 16, rlen = cap;
	uint8_t *r;
	int ret;

	ret = xts_buf_reserve(out, cap);
	if (ret < 0)
		return ret;
	r = f((const uint8_t *)s, n, lang, nf, (uint8_t *)out->p + out->len, &rlen);
	if (!r)
		return XTS_ENOMEM;
	if (r != (uint8_t *)out->p + out->len) {
		ret = xts_buf_append(out, r, rlen);
		free(r); /* allocated by libunistring */
		return ret;
	}
	out->len += rlen;
	out->p[out->len] = '\0';
	return 0;
}

static uint8_t *
norm_adapter_nfd(const uint8_t *s, size_t n, const char *lang, uninorm_t nf, uint8_t *rb,
		 size_t *lp)
{
	return u8_normalize(nf, s, n, rb, lp);
}

static int
rnd_bytes(struct xts_ev *ev, unsigned char *buf, size_t n)
{
	if (ev->ctx->random)
		return ev->ctx->random(ev->ctx->random_arg, buf, n) < 0 ? XTS_EIO : 0;
	return RAND_bytes(buf, (int)n) == 1 ? 0 : XTS_EIO;
}

/* Uniform integer in [0, n) by rejection sampling (n <= 256). */
static int
rnd_below(struct xts_ev *ev, unsigned n, unsigned *out)
{
	unsigned char b;
	int ret, tries;

	for (tries = 0; tries < 1000; tries++) {
		ret = rnd_bytes(ev, &b, 1);
		if (ret < 0)
			return ret;
		if (b < 256 - 256 % n) {
			*out = b % n;
			return 0;
		}
	}
	return XTS_EIO;
}

int
xts_fn_append(struct xts_ev *ev, const struct xts_node *call, json_t **out)
{
	struct xts_buf b = XTS_BUF_INIT;
	char *s1 = NULL, *s2 = NULL;
	size_t l1, l2;
	int ret;

	ret = xts_ev_str(ev, call, 0, &s1, &l1);
	if (ret == 0)
		ret = xts_ev_str(ev, call, 1, &s2, &l2);
	if (ret < 0)
		goto done;
	if (!s1 && !s2) {
		*out = json_null();
		goto done;
	}
	if (s1)
		ret = xts_buf_append(&b, s1, l1);
	if (ret == 0 && s2)
		ret = xts_buf_append(&b, s2, l2);
	if (ret == 0)
		ret = xts_ev_ret_buf(ev, call, &b, out);
done:
	xts_free(s1);
	xts_free(s2);
	xts_buf_free(&b);
	return ret;
}

int
xts_fn_cstr(struct xts_ev *ev, const struct xts_node *call, json_t **out)
{
	char *s = NULL;
	size_t n;
	int ret = xts_ev_str(ev, call, 0, &s, &n);

	if (ret < 0)
		return ret;
	*out = s ? json_stringn(s, n) : json_null();
	xts_free(s);
	return *out ? 0 : XTS_ENOMEM;
}

int
xts_fn_base64(struct xts_ev *ev, const struct xts_node *call, json_t **out)
{
	static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	struct xts_buf u16 = XTS_BUF_INIT, b = XTS_BUF_INIT;
	char *s = NULL;
	size_t n, i;
	int ret;

	ret = xts_ev_str(ev, call, 0, &s, &n);
	if (ret < 0 || !s) {
		if (ret == 0)
			*out = json_null();
		goto done;
	}
	/* "a Unicode base64 string": .NET's Encoding.Unicode is UTF-16LE. */
	for (i = 0; i < n;) {
		ucs4_t uc;
		int k = u8_mbtouc(&uc, (const uint8_t *)s + i, n - i);
		unsigned char w[4];
		size_t wl = 2;
		if (uc >= 0x10000) {
			unsigned hi = 0xD800 + ((uc - 0x10000) >> 10), lo = 0xDC00 + ((uc - 0x10000) & 0x3FF);
			w[0] = hi & 0xFF; w[1] = hi >> 8; w[2] = lo & 0xFF; w[3] = lo >> 8;
			wl = 4;
		} else {
			w[0] = uc & 0xFF; w[1] = (uc >> 8) & 0xFF;
		}
		ret = xts_buf_append(&u16, w, wl);
		if (ret < 0)
			goto done;
		i += (size_t)(k > 0 ? k : 1);
	}
	for (i = 0; i < u16.len; i += 3) {
		unsigned char *p = (unsigned char *)u16.p + i;
		size_t left = u16.len - i;
		unsigned v = (unsigned)p[0] << 16 | (left > 1 ? (unsigned)p[1] << 8 : 0) |
			     (left > 2 ? p[2] : 0);
		char q[4] = { tbl[v >> 18 & 63], tbl[v >> 12 & 63],
			      left > 1 ? tbl[v >> 6 & 63] : '=', left > 2 ? tbl[v & 63] : '=' };
		ret = xts_buf_append(&b, q, 4);
		if (ret < 0)
			goto done;
	}
	ret = xts_ev_ret_buf(ev, call, &b, out);
done:
	xts_free(s);
	xts_buf_free(&u16);
	xts_buf_free(&b);
	return ret;
}

int
xts_fn_utf8hex(struct xts_ev *ev, const struct xts_node *call, json_t **out)
{
	struct xts_buf b = XTS_BUF_INIT;
	char *s = NULL;
	size_t n, i;
	int ret;

	ret = xts_ev_str(ev, call, 0, &s, &n);
	if (ret < 0 || !s) {
		if (ret == 0)
			*out = json_null();
		goto done;
	}
	for (i = 0; i < n; i++) {
		ret = xts_buf_printf(&b, "%02X", (unsigned char)s[i]);
		if (ret < 0)
			goto done;
	}
	ret = xts_ev_ret_buf(ev, call, &b, out);
done:
	xts_free(s);
	xts_buf_free(&b);
	return ret;
}

/* Per-code-point case mapping, as .NET's String.ToUpper/ToLower(CultureInfo)
 * do it: Unicode's simple mappings only, so the character count never changes
 * (positions found in folded text are positions in the original; ß stays ß,
 * ﬁ stays ﬁ, a final Σ lowers to σ). turkic: the tr/az culture rules for
 * dotted and dotless i. */
static int
case_simple(const char *s, size_t n, bool upper, bool turkic, struct xts_buf *b)
{
	size_t i;
	int ret;

	for (i = 0; i < n;) {
		ucs4_t uc, m;
		uint8_t enc[6];
		int k = u8_mbtouc(&uc, (const uint8_t *)s + i, n - i), el;

		if (turkic && upper && uc == 0x69)
			m = 0x130; /* i -> İ */
		else if (turkic && !upper && uc == 0x49)
			m = 0x131; /* I -> ı */
		else
			m = upper ? uc_toupper(uc) : uc_tolower(uc);
		el = u8_uctomb(enc, m, sizeof(enc));
		if (el < 0)
			return XTS_EINVAL;
		ret = xts_buf_append(b, enc, (size_t)el);
		if (ret < 0)
			return ret;
		i += (size_t)(k > 0 ? k : 1);
	}
	return 0;
}

int
xts_fn_instr(struct xts_ev *ev, const struct xts_node *call, json_t **out)
{
	struct xts_buf f1 = XTS_BUF_INIT, f2 = XTS_BUF_INIT;
	char *s1 = NULL, *s2 = NULL, *mode = NULL;
	const char *h, *nd, *hit;
	size_t l1, l2, hl, nl, off;
	long long start = 1;
	int isnull = 1, ret;

	ret = xts_ev_str(ev, call, 0, &s1, &l1);
	if (ret == 0)
		ret = xts_ev_str(ev, call, 1, &s2, &l2);
	if (ret == 0 && xts_arg_given(call, 2))
		ret = xts_ev_int(ev, call, 2, &start, &isnull);
	if (ret == 0)
		ret = xts_ev_str(ev, call, 3, &mode, NULL);
	if (ret < 0)
		goto done;
	if (isnull)
		start = 1;
	if (start < 1) {
		ret = xts_ev_fail(ev, call->args[2], "InStr: start must be 1 or more");
		goto done;
	}
	if (!s1 || !s2) { /* null string: not found */
		*out = json_integer(0);
		goto done;
	}
	h = s1; hl = l1; nd = s2; nl = l2;
	if (mode && strcasecmp(mode, "vbTextCompare") == 0) {
		ret = case_simple(s1, l1, false, false, &f1);
		if (ret == 0)
			ret = case_simple(s2, l2, false, false, &f2);
		if (ret < 0)
			goto done;
		h = xts_buf_str(&f1); hl = f1.len; nd = xts_buf_str(&f2); nl = f2.len;
	} else if (mode && strcasecmp(mode, "vbBinaryCompare") != 0 && mode[0]) {
		ret = xts_ev_fail(ev, call->args[3],
				  "InStr: compareType must be vbBinaryCompare or vbTextCompare");
		goto done;
	}
	if ((unsigned long long)start > xts_u8_count(h, hl) + 1) {
		*out = json_integer(0);
		goto done;
	}
	off = xts_u8_offset(h, hl, (size_t)start - 1);
	hit = nl == 0 ? h + off : memmem(h + off, hl - off, nd, nl);
	*out = json_integer(hit ? (json_int_t)xts_u8_count(h, (size_t)(hit - h)) + 1 : 0);
done:
	xts_free(s1);
	xts_free(s2);
	xts_free(mode);
	xts_buf_free(&f1);
	xts_buf_free(&f2);
	return ret;
}

static int
join_value(const json_t *v, const char *sep, size_t seplen, int *first, struct xts_buf *b)
{
	size_t i;
	json_t *it;
	int ret;

	if (json_is_array(v)) {
		json_array_foreach(v, i, it) {
			ret = join_value(it, sep, seplen, first, b);
			if (ret < 0)
				return ret;
		}
		return 0;
	}
	if (json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0))
		return 0; /* Join(", ", "", [surname], [givenName]) gives "Doe, John" */
	if (json_is_object(v))
		return XTS_EINVAL;
	if (!*first) {
		ret = xts_buf_append(b, sep, seplen);
		if (ret < 0)
			return ret;
	}
	*first = 0;
	return xts_val_text(v, b);
}

int
xts_fn_join(struct xts_ev *ev, const struct xts_node *call, json_t **out)
{
	struct xts_buf b = XTS_BUF_INIT;
	char *sep = NULL;
	size_t seplen;
	int i, first = 1, ret;

	ret = xts_ev_str(ev, call, 0, &sep, &seplen);
	if (ret < 0)
		goto done;
	for (i = 1; i < call->nargs; i++) {
		json_t *v;
		ret = xts_ev_arg(ev, call, i, &v);
		if (ret < 0)
			goto done;
		ret = join_value(v, sep ? sep : "", sep ? seplen : 0, &first, &b);
		json_decref(v);
		if (ret == XTS_EINVAL) {
			ret = xts_ev_fail(ev, call->args[i], "Join: argument %d has no text form", i + 1);
			goto done;
		}
		if (ret < 0)
			goto done;
	}
	ret = xts_ev_ret_buf(ev, call, &b, out);
done:
	xts_free(sep);
	xts_buf_free(&b);
	return ret;
}

int
xts_fn_left(struct xts_ev *ev, const struct xts_node *call, json_t **out)
{
	char *s = NULL;
	size_t n;
	long long k;
	int isnull, ret;

	ret = xts_ev_str(ev, call, 0, &s, &n);
	if (ret == 0)
		ret = xts_ev_int(ev, call, 1, &k, &isnull);
	if (ret < 0)
		goto done;
	/* Documented: null string -> "", numChars 0 -> "", < 0 -> the input. */
	if (!s)
		*out = json_string("");
	else if (k < 0 || isnull)
		*out = json_stringn(s, n);
	else
		*out = json_stringn(s, xts_u8_offset(s, n, (size_t)k));
	if (!*out)
		ret = XTS_ENOMEM;
done:
	xts_free(s);
	return ret;
}

int
xts_fn_mid(struct xts_ev *ev, const struct xts_node *call, json_t **out)
{
	char *s = NULL;
	size_t n, a, z;
	long long start, len;
	int n1, n2, ret;

	ret = xts_ev_str(ev, call, 0, &s, &n);
	if (ret == 0)
		ret = xts_ev_int(ev, call, 1, &start, &n1);
	if (ret == 0)
		ret = xts_ev_int(ev, call, 2, &len, &n2);
	if (ret < 0)
		goto done;
	if (!s) {
		*out = json_null();
		goto done;
	}
	if (n1 || start < 1) {
		ret = xts_ev_fail(ev, call->args[1], "Mid: start must be 1 or more");
		goto done;
	}
	if (n2 || len < 0) {
		ret = xts_ev_fail(ev, call->args[2], "Mid: length must be 0 or more");
		goto done;
	}
	a = xts_u8_offset(s, n, (size_t)start - 1);
	z = (unsigned long long)len >= n ? n : xts_u8_offset(s + a, n - a, (size_t)len) + a;
	*out = json_stringn(s + a, z - a);
	if (!*out)
		ret = XTS_ENOMEM;
done:
	xts_free(s);
	return ret;
}

/* Letters NFD does not decompose, mapped as Microsoft's NormalizeDiacritics
 * table does (functions-for-customizing-application-data.md). */
static const char *
diacritic_special(ucs4_t uc)
{
	switch (uc) {
	case 0x00E6: return "ae"; /* æ */
	case 0x00C6: return "AE"; /* Æ */
	case 0x00F8: return "oe"; /* ø */
	case 0x00D8: return "OE"; /* Ø */
	case 0x0153: return "oe"; /* œ */
	case 0x0152: return "OE"; /* Œ */
	case 0x00DF: return "ss"; /* ß */
	case 0x0142: return "l";  /* ł */
	case 0x0141: return "L";  /* Ł */
	case 0x0131: return "i";  /* ı */
	default: return NULL;
	}
}

int
xts_fn_normdiac(struct xts_ev *ev, const struct xts_node *call, json_t **out)
{
	struct xts_buf d = XTS_BUF_INIT, s2 = XTS_BUF_INIT, r = XTS_BUF_INIT;
	char *s = NULL;
	size_t n, i;
	int ret;

	ret = xts_ev_str(ev, call, 0, &s, &n);
	if (ret < 0 || !s) {
		if (ret == 0)
			*out = json_null();
		goto done;
	}
	ret = u8_apply(norm_adapter_nfd, UNINORM_NFD, NULL, s, n, &d);
	if (ret < 0)
		goto done;
	for (i = 0; i < d.len;) {
		ucs4_t uc;
		int k = u8_mbtouc(&uc, (const uint8_t *)d.p + i, d.len - i);
		const char *sp = diacritic_special(uc);
		if (sp)
			ret = xts_buf_puts(&s2, sp);
		else if (!uc_is_general_category(uc, UC_CATEGORY_Mn))
			ret = xts_buf_append(&s2, d.p + i, (size_t)k);
		if (ret < 0)
			goto done;
		i += (size_t)(k > 0 ? k : 1);
	}
	/* Recompose what is left (e.g. Hangul), so only marks disappear. */
	ret = u8_apply(norm_adapter_nfd, UNINORM_NFC, NULL, xts_buf_str(&s2), s2.len, &r);
	if (ret < 0)
		goto done;
	ret = xts_ev_ret_buf(ev, call, &r, out);
done:
	xts_free(s);
	xts_buf_free(&d);
	xts_buf_free(&s2);
	xts_buf_free(&r);
	return ret;
}

/* .NET TextInfo.ToTitleCase word separators (the categories Microsoft lists
 * under PCase's remarks). */
static int
dotnet_separator(ucs4_t uc)
{
	uc_general_category_t cats = uc_general_category_or(
		uc_general_category_or(uc_general_category_or(UC_CATEGORY_Z, UC_CATEGORY_Cc),
				       uc_general_category_or(UC_CATEGORY_Cf, UC_CATEGORY_P)),
		UC_CATEGORY_S);

	return uc_is_general_category(uc, cats);
}

int
xts_fn_pcase(struct xts_ev *ev, const struct xts_node *call, json_t **out)
{
	struct xts_buf b = XTS_BUF_INIT;
	char *s = NULL, *seps = NULL;
	size_t n, sl = 0, i;
	int in_word = 0, ret;

	ret = xts_ev_str(ev, call, 0, &s, &n);
	if (ret == 0 && xts_arg_given(call, 1))
		ret = xts_ev_str(ev, call, 1, &seps, &sl);
	if (ret < 0 || !s) {
		if (ret == 0)
			*out = json_null();
		goto done;
	}
	for (i = 0; i < n;) {
		ucs4_t uc, m;
		uint8_t enc[6];
		int k = u8_mbtouc(&uc, (const uint8_t *)s + i, n - i), el, sep;
		if (seps) {
			uint8_t one[6];
			int ol = u8_uctomb(one, uc, sizeof(one));
			sep = ol > 0 && memmem(seps, sl, one, (size_t)ol) != NULL;
		} else {
			/* an apostrophe inside a word does not start a new one
			 * (.NET: "don't" -> "Don't") */
			sep = dotnet_separator(uc) && !(in_word && (uc == '\'' || uc == 0x2019));
		}
		if (sep) {
			m = uc;
			in_word = 0;
		} else if (!in_word) {
			m = uc_totitle(uc);
			in_word = 1;
		} else {
			m = uc_tolower(uc);
		}
		el = u8_uctomb(enc, m, sizeof(enc));
		ret = el > 0 ? xts_buf_append(&b, enc, (size_t)el) : XTS_EINVAL;
		if (ret < 0)
			goto done;
		i += (size_t)(k > 0 ? k : 1);
	}
	ret = xts_ev_ret_buf(ev, call, &b, out);
done:
	xts_free(s);
	xts_free(seps);
	xts_buf_free(&b);
	return ret;
}

int
xts_fn_split(struct xts_ev *ev, const struct xts_node *call, json_t **out)
{
	char *s = NULL, *d = NULL;
	size_t n, dl, pos = 0;
	json_t *arr = NULL, *it;
	int ret;

	ret = xts_ev_str(ev, call, 0, &s, &n);
	if (ret == 0)
		ret = xts_ev_str(ev, call, 1, &d, &dl);
	if (ret < 0 || !s) {
		if (ret == 0)
			*out = json_null();
		goto done;
	}
	arr = json_array();
	if (!arr) {
		ret = XTS_ENOMEM;
		goto done;
	}
	for (;;) {
		const char *hit = d && dl ? memmem(s + pos, n - pos, d, dl) : NULL;
		size_t end = hit ? (size_t)(hit - s) : n;
		it = json_stringn(s + pos, end - pos);
		if (!it || json_array_append_new(arr, it) < 0) {
			ret = XTS_ENOMEM;
			goto done;
		}
		if (!hit)
			break;
		pos = end + dl;
	}
	*out = arr;
	arr = NULL;
done:
	xts_free(s);
	xts_free(d);
	json_decref(arr);
	return ret;
}

int
xts_fn_stripspaces(struct xts_ev *ev, const struct xts_node *call, json_t **out)
{
	struct xts_buf b = XTS_BUF_INIT;
	char *s = NULL;
	size_t n, i;
	int ret;

	ret = xts_ev_str(ev, call, 0, &s, &n);
	if (ret < 0 || !s) {
		if (ret == 0)
			*out = json_null();
		goto done;
	}
	ret = xts_buf_reserve(&b, n + 1);
	for (i = 0; ret == 0 && i < n; i++)
		if (s[i] != ' ')
			ret = xts_buf_putc(&b, s[i]);
	if (ret == 0)
		ret = xts_ev_ret_buf(ev, call, &b, out);
done:
	xts_free(s);
	xts_buf_free(&b);
	return ret;
}

/* The culture argument: Turkish and Azeri are the cultures whose casing
 * differs from the invariant one (dotted and dotless i). */
static bool
culture_turkic(const char *c)
{
	return c != NULL && (strncasecmp(c, "tr", 2) == 0 || strncasecmp(c, "az", 2) == 0) &&
	       (c[2] == '\0' || c[2] == '-' || c[2] == '_');
}

static int
change_case(struct xts_ev *ev, const struct xts_node *call, bool upper, json_t **out)
{
	struct xts_buf b = XTS_BUF_INIT;
	char *s = NULL, *cul = NULL;
	size_t n;
	int ret;

	ret = xts_ev_str(ev, call, 0, &s, &n);
	if (ret == 0)
		ret = xts_ev_str(ev, call, 1, &cul, NULL);
	if (ret < 0 || !s) {
		if (ret == 0)
			*out = json_null();
		goto done;
	}
	ret = xts_buf_reserve(&b, n + 1);
	if (ret == 0)
		ret = case_simple(s, n, upper, culture_turkic(cul), &b);
	if (ret == 0)
		ret = xts_ev_ret_buf(ev, call, &b, out);
done:
	xts_free(s);
	xts_free(cul);
	xts_buf_free(&b);
	return ret;
}

int
xts_fn_tolower(struct xts_ev *ev, const struct xts_node *call, json_t **out)
{
	return change_case(ev, call, false, out);
}

int
xts_fn_toupper(struct xts_ev *ev, const struct xts_node *call, json_t **out)
{
	return change_case(ev, call, true, out);
}

int
xts_fn_word(struct xts_ev *ev, const struct xts_node *call, json_t **out)
{
	char *s = NULL, *d = NULL;
	size_t n, dl, i, ws = 0;
	long long want, cur = 0;
	int isnull, in = 0, ret;

	ret = xts_ev_str(ev, call, 0, &s, &n);
	if (ret == 0)
		ret = xts_ev_int(ev, call, 1, &want, &isnull);
	if (ret == 0)
		ret = xts_ev_str(ev, call, 2, &d, &dl);
	if (ret < 0)
		goto done;
	*out = NULL;
	if (s && !isnull && want >= 1) {
		for (i = 0; i <= n; i++) {
			int delim = i == n || (d && (unsigned char)s[i] < 0x80 &&
					       memchr(d, s[i], dl) != NULL);
			/* multi-byte delimiters: compare by character */
			if (!delim && d && ((unsigned char)s[i] & 0xC0) == 0xC0) {
				int k = u8_mblen((const uint8_t *)s + i, n - i);
				delim = k > 0 && memmem(d, dl, s + i, (size_t)k) != NULL;
			}
			if (delim && in) {
				if (++cur == want) {
					*out = json_stringn(s + ws, i - ws);
					break;
				}
				in = 0;
			} else if (!delim && !in) {
				in = 1;
				ws = i;
			}
			if (delim && i < n && ((unsigned char)s[i] & 0xC0) == 0xC0) {
				int k = u8_mblen((const uint8_t *)s + i, n - i);
				if (k > 1)
					i += (size_t)k - 1;
			}
		}
	}
	if (!*out)
		*out = json_string("");
	if (!*out)
		ret = XTS_ENOMEM;
done:
	xts_free(s);
	xts_free(d);
	return ret;
}

/* ---- Replace ---------------------------------------------------------- */

static int
replace_all(const char *s, size_t n, const char *old, size_t ol, const char *rep, size_t rl,
	    struct xts_buf *b)
{
	size_t pos = 0;
	int ret;

	/* An empty oldValue matches nowhere (found by fuzz_expr: it looped,
	 * appending the replacement until memory ran out). */
	if (ol == 0)
		return xts_buf_append(b, s, n);
	while (pos <= n) {
		const char *hit = memmem(s + pos, n - pos, old, ol);
		size_t end = hit ? (size_t)(hit - s) : n;
		ret = xts_buf_append(b, s + pos, end - pos);
		if (ret < 0 || !hit)
			return ret;
		ret = xts_buf_append(b, rep, rl);
		if (ret < 0)
			return ret;
		pos = end + ol;
	}
	return 0;
}

static int
append_group(const pcre2_code *re, pcre2_match_data *md, const char *subj, uint32_t g,
	     struct xts_buf *b)
{
	PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
	uint32_t cnt = pcre2_get_ovector_count(md);

	if (g >= cnt || ov[2 * g] == PCRE2_UNSET)
		return 0;
	return xts_buf_append(b, subj + ov[2 * g], ov[2 * g + 1] - ov[2 * g]);
}

/* .NET substitutions: $$, $&, $n, ${name}; anything else is literal. */
static int
expand_rep(const pcre2_code *re, pcre2_match_data *md, const char *subj, const char *rep,
	   size_t rl, struct xts_buf *b)
{
	size_t i;
	int ret = 0;

	for (i = 0; i < rl && ret == 0; i++) {
		if (rep[i] != '$' || i + 1 >= rl) {
			ret = xts_buf_putc(b, rep[i]);
			continue;
		}
		if (rep[i + 1] == '$') {
			ret = xts_buf_putc(b, '$');
			i++;
		} else if (rep[i + 1] == '&') {
			ret = append_group(re, md, subj, 0, b);
			i++;
		} else if (rep[i + 1] >= '0' && rep[i + 1] <= '9') {
			uint32_t g = 0, cap = 0;
			size_t j = i + 1;
			pcre2_pattern_info(re, PCRE2_INFO_CAPTURECOUNT, &cap);
			while (j < rl && rep[j] >= '0' && rep[j] <= '9' && g * 10 + (uint32_t)(rep[j] - '0') <= cap)
				g = g * 10 + (uint32_t)(rep[j++] - '0');
			if (j == i + 1) {
				ret = xts_buf_putc(b, '$');
				continue;
			}
			ret = append_group(re, md, subj, g, b);
			i = j - 1;
		} else if (rep[i + 1] == '{') {
			const char *close = memchr(rep + i + 2, '}', rl - i - 2);
			char name[128];
			size_t nl = close ? (size_t)(close - (rep + i + 2)) : 0;
			int gn = -1;
			if (close && nl > 0 && nl < sizeof(name)) {
				memcpy(name, rep + i + 2, nl);
				name[nl] = '\0';
				gn = pcre2_substring_number_from_name(re, (PCRE2_SPTR)name);
				if (gn < 0 && strspn(name, "0123456789") == nl) {
					uint32_t cap = 0;
					pcre2_pattern_info(re, PCRE2_INFO_CAPTURECOUNT, &cap);
					gn = (int)strtol(name, NULL, 10);
					if ((uint32_t)gn > cap)
						gn = -1;
				}
			}
			if (gn < 0) {
				ret = xts_buf_putc(b, '$');
				continue;
			}
			ret = append_group(re, md, subj, (uint32_t)gn, b);
			i += nl + 2;
		} else {
			ret = xts_buf_putc(b, '$');
		}
	}
	return ret;
}

static int
re_fail(struct xts_ev *ev, const struct xts_node *call, int rc)
{
	if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT)
		return xts_ev_fail(ev, call->args[2], "Replace: regular expression too complex "
				   "for this input (match limit reached)");
	if (rc == PCRE2_ERROR_NOMEMORY)
		return XTS_ENOMEM;
	return xts_ev_fail(ev, call->args[2], "Replace: regular expression match failed (%d)", rc);
}

/* Replace matches (or, with group > 0, the group's span inside each match). */
static int
regex_replace(struct xts_ev *ev, const struct xts_node *call, const pcre2_code *re,
	      const char *s, size_t n, int group, const char *rep, size_t rl, struct xts_buf *b)
{
	pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
	size_t start = 0, last = 0;
	int ret = 0;

	if (!md)
		return XTS_ENOMEM;
	while (start <= n) {
		PCRE2_SIZE *ov;
		size_t a, z;
		int rc = xts_re_match(re, s, n, start, md);
		if (rc == PCRE2_ERROR_NOMATCH)
			break;
		if (rc < 0) {
			ret = re_fail(ev, call, rc);
			goto done;
		}
		ov = pcre2_get_ovector_pointer(md);
		if (group > 0) {
			a = ov[2 * group];
			z = ov[2 * group + 1];
		} else {
			a = ov[0];
			z = ov[1];
		}
		if (a != PCRE2_UNSET && a >= last) {
			ret = xts_buf_append(b, s + last, a - last);
			if (ret == 0)
				ret = group > 0 ? xts_buf_append(b, rep, rl) :
						  expand_rep(re, md, s, rep, rl, b);
			if (ret < 0)
				goto done;
			last = z;
		}
		if (ov[1] > ov[0]) {
			start = ov[1];
		} else {
			int k;
			if (ov[0] >= n)
				break;
			k = u8_mblen((const uint8_t *)s + ov[0], n - ov[0]);
			start = ov[0] + (size_t)(k > 0 ? k : 1);
		}
	}
	ret = xts_buf_append(b, s + last, n - last);
done:
	pcre2_match_data_free(md);
	return ret;
}

int
xts_fn_replace_check(struct xts_node *call, struct xts_expr_error *err)
{
	const struct xts_node *pat = call->args[2];
	char msg[200];

	if (pat->kind != XN_CONST || !json_is_string(pat->val))
		return 0;
	call->re = xts_re_compile(json_string_value(pat->val), json_string_length(pat->val), msg,
				  sizeof(msg));
	if (call->re)
		return 0;
	if (err) {
		err->column = pat->col;
		snprintf(err->message, sizeof(err->message), "Replace: %s", msg);
	}
	return XTS_EPARSE;
}

int
xts_fn_replace(struct xts_ev *ev, const struct xts_node *call, json_t **out)
{
	struct xts_buf b = XTS_BUF_INIT;
	char *src = NULL, *old = NULL, *pat = NULL, *grp = NULL, *rep = NULL, *ra = NULL,
	     *tmpl = NULL;
	size_t sl, ol, pl, rl, ral, tl;
	pcre2_code *own = NULL;
	const pcre2_code *re;
	int ret, gnum = 0;

	*out = NULL;
	ret = xts_ev_str(ev, call, 0, &src, &sl);
	if (ret == 0)
		ret = xts_ev_str(ev, call, 1, &old, &ol);
	if (ret == 0)
		ret = xts_ev_str(ev, call, 4, &rep, &rl);
	if (ret == 0)
		ret = xts_ev_str(ev, call, 6, &tmpl, &tl);
	if (ret < 0)
		goto done;
	if (xts_arg_given(call, 1)) {
		if (xts_arg_given(call, 6)) { /* oldValue + template */
			if (!src || !tmpl) {
				*out = src ? json_string("") : json_null();
				goto done;
			}
			ret = replace_all(tmpl, tl, old ? old : "", old ? ol : 0, src, sl, &b);
		} else { /* oldValue + replacementValue */
			if (!src) {
				*out = json_null();
				goto done;
			}
			ret = old && ol ? replace_all(src, sl, old, ol, rep ? rep : "", rep ? rl : 0, &b)
					: xts_buf_append(&b, src, sl);
		}
		if (ret == 0)
			ret = xts_ev_ret_buf(ev, call, &b, out);
		goto done;
	}
	if (!xts_arg_given(call, 2)) {
		*out = src ? json_stringn(src, sl) : json_null();
		goto done;
	}
	re = call->re;
	if (!re) {
		char msg[200];
		ret = xts_ev_str(ev, call, 2, &pat, &pl);
		if (ret < 0)
			goto done;
		if (!pat) {
			*out = src ? json_stringn(src, sl) : json_null();
			goto done;
		}
		own = xts_re_compile(pat, pl, msg, sizeof(msg));
		if (!own) {
			ret = xts_ev_fail(ev, call->args[2], "Replace: %s", msg);
			goto done;
		}
		re = own;
	}
	if (xts_arg_given(call, 3)) {
		ret = xts_ev_str(ev, call, 3, &grp, NULL);
		if (ret < 0)
			goto done;
		gnum = grp ? pcre2_substring_number_from_name(re, (PCRE2_SPTR)grp) : -1;
		if (gnum < 0) {
			ret = xts_ev_fail(ev, call->args[3], "Replace: the pattern has no group named '%s'",
					  grp ? grp : "");
			goto done;
		}
	}
	if (gnum > 0 && xts_arg_given(call, 5)) {
		/* source has a value: keep it; else extract the group from the
		 * replacement attribute. */
		pcre2_match_data *md;
		int rc;
		if (src && sl) {
			*out = json_stringn(src, sl);
			goto done;
		}
		ret = xts_ev_str(ev, call, 5, &ra, &ral);
		if (ret < 0 || !ra) {
			if (ret == 0)
				*out = json_null();
			goto done;
		}
		md = pcre2_match_data_create_from_pattern(re, NULL);
		if (!md) {
			ret = XTS_ENOMEM;
			goto done;
		}
		rc = xts_re_match(re, ra, ral, 0, md);
		if (rc >= 0)
			ret = append_group(re, md, ra, (uint32_t)gnum, &b);
		else if (rc != PCRE2_ERROR_NOMATCH)
			ret = re_fail(ev, call, rc);
		pcre2_match_data_free(md);
		if (ret < 0)
			goto done;
		if (rc < 0) {
			*out = json_null();
			goto done;
		}
		ret = xts_ev_ret_buf(ev, call, &b, out);
		goto done;
	}
	if (!src) {
		*out = json_null();
		goto done;
	}
	ret = regex_replace(ev, call, re, src, sl, gnum, rep ? rep : "", rep ? rl : 0, &b);
	if (ret == 0)
		ret = xts_ev_ret_buf(ev, call, &b, out);
done:
	if (ret == 0 && !*out)
		ret = XTS_ENOMEM;
	if (own)
		pcre2_code_free(own);
	xts_free(src);
	xts_free(old);
	xts_free(pat);
	xts_free(grp);
	xts_free(rep);
	xts_free(ra);
	xts_free(tmpl);
	xts_buf_free(&b);
	return ret;
}

/* ---- RandomString and Guid ------------------------------------------- */

/* Windows password complexity "special characters" (the page RandomString
 * links to): ~!@#$%^&*_-+=`|\(){}[]:;"'<>,.?/ */
static const char rs_special[] = "~!@#$%^&*_-+=`|\\(){}[]:;\"'<>,.?/";

static size_t
rs_class(const char *set, const char *avoid, char *dst)
{
	size_t n = 0;

	for (; *set; set++)
		if (!avoid || !strchr(avoid, *set))
			dst[n++] = *set;
	dst[n] = '\0';
	return n;
}

int
xts_fn_randomstring(struct xts_ev *ev, const struct xts_node *call, json_t **out)
{
	char cls[4][96], all[400], res[257], *avoid = NULL;
	size_t cn[4], an = 0;
	long long len, mins[4], total = 0;
	int i, isnull, ret;
	unsigned r;
	long long pos = 0;

	ret = xts_ev_int(ev, call, 0, &len, &isnull);
	for (i = 0; ret == 0 && i < 4; i++)
		ret = xts_ev_int(ev, call, i + 1, &mins[i], &isnull);
	if (ret == 0)
		ret = xts_ev_str(ev, call, 5, &avoid, NULL);
	if (ret < 0)
		goto done;
	if (len < 1 || len > 256) {
		ret = xts_ev_fail(ev, call->args[0], "RandomString: length must be 1 to 256");
		goto done;
	}
	cn[0] = rs_class("0123456789", avoid, cls[0]);
	cn[1] = rs_class(rs_special, avoid, cls[1]);
	cn[2] = rs_class("ABCDEFGHIJKLMNOPQRSTUVWXYZ", avoid, cls[2]);
	cn[3] = rs_class("abcdefghijklmnopqrstuvwxyz", avoid, cls[3]);
	for (i = 0; i < 4; i++) {
		if (mins[i] < 0 || (mins[i] > 0 && cn[i] == 0)) {
			ret = xts_ev_fail(ev, call->args[i + 1],
					  "RandomString: impossible minimum in argument %d", i + 2);
			goto done;
		}
		total += mins[i];
		memcpy(all + an, cls[i], cn[i]);
		an += cn[i];
	}
	if (total > len || an == 0) {
		ret = xts_ev_fail(ev, call, "RandomString: the minimums add up to more than length");
		goto done;
	}
	for (i = 0; i < 4; i++) {
		long long k;
		for (k = 0; k < mins[i]; k++) {
			ret = rnd_below(ev, (unsigned)cn[i], &r);
			if (ret < 0)
				goto rnd_err;
			res[pos++] = cls[i][r];
		}
	}
	while (pos < len) {
		ret = rnd_below(ev, (unsigned)an, &r);
		if (ret < 0)
			goto rnd_err;
		res[pos++] = all[r];
	}
	for (pos = len - 1; pos > 0; pos--) { /* Fisher-Yates */
		char t;
		ret = rnd_below(ev, (unsigned)pos + 1, &r);
		if (ret < 0)
			goto rnd_err;
		t = res[pos];
		res[pos] = res[r];
		res[r] = t;
	}
	*out = json_stringn(res, (size_t)len);
	ret = *out ? 0 : XTS_ENOMEM;
	goto done;
rnd_err:
	ret = xts_ev_fail(ev, call, "RandomString: no random bytes available");
done:
	xts_free(avoid);
	return ret;
}

int
xts_fn_guid(struct xts_ev *ev, const struct xts_node *call, json_t **out)
{
	unsigned char g[16];
	char s[37];

	if (rnd_bytes(ev, g, sizeof(g)) < 0)
		return xts_ev_fail(ev, call, "Guid: no random bytes available");
	g[6] = (unsigned char)((g[6] & 0x0F) | 0x40); /* version 4 */
	g[8] = (unsigned char)((g[8] & 0x3F) | 0x80); /* RFC 4122 variant */
	snprintf(s, sizeof(s),
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", g[0], g[1],
		 g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9], g[10], g[11], g[12], g[13], g[14],
		 g[15]);
	*out = json_string(s);
	return *out ? 0 : XTS_ENOMEM;
}
