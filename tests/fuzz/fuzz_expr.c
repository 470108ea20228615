/* SPDX-License-Identifier: MIT */
/* libFuzzer target: compile arbitrary bytes as a mapping expression and, when
 * they compile, evaluate against a fixed attribute object. Finds crashes,
 * leaks and hangs (regex match limit); does not check results. */
#include <stdint.h>
#include <stddef.h>
#include <string.h>

#include "expr.h"
#include "mem.h"

static json_t *attrs;

static int
fixed_random(void *arg, unsigned char *buf, size_t len)
{
	(void)arg;
	memset(buf, 0x5a, len);
	return 0;
}

static int
unique_every_other(void *arg, const json_t *v)
{
	(void)arg;
	return json_string_length(v) % 2;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct xts_expr_error err;
	struct xts_expr_ctx ctx;
	xts_expr *e = NULL;
	json_t *res = NULL;
	unsigned flags;
	char *src;

	if (!attrs) {
		attrs = json_loads(
			"{\"givenName\":\"Zoë\",\"surname\":\"Ångström-O'Neil\",\"mail\":null,"
			"\"userPrincipalName\":\"John.Doe@contoso.com\",\"proxyAddresses\":"
			"[\"SMTP:a@x\",\"smtp:b@x\",\"SMTP:a@x\"],\"StatusHireDate\":\"2012-03-16-07:00\","
			"\"telephoneNumber\":\"+91 9998887777\",\"n\":42,\"r\":2.5,\"b\":true,"
			"\"lastLogonTimestamp\":\"129699324000000000\",\"empty\":\"\",\"arr\":[]}",
			0, NULL);
		if (!attrs)
			return 0;
	}
	if (size > XTS_EXPR_MAX_LEN + 1)
		return 0;
	src = xts_malloc(size + 1);
	if (!src)
		return 0;
	memcpy(src, data, size);
	src[size] = '\0';
	if (xts_expr_compile(src, &e, &err) == 0) {
		memset(&ctx, 0, sizeof(ctx));
		ctx.attrs = attrs;
		ctx.now = 1625240018;
		ctx.random = fixed_random;
		ctx.is_unique = unique_every_other;
		if (xts_expr_eval(e, &ctx, &res, &flags, &err) == 0) {
			char *t = xts_value_to_text(res);
			xts_free(t);
			json_decref(res);
		}
		xts_expr_free(e);
	}
	xts_free(src);
	return 0;
}
