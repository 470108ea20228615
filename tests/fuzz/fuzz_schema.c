/* SPDX-License-Identifier: MIT */
/* libFuzzer target: bytes -> JSON -> synchronizationSchema load/validate,
 * and (when it loads) the fingerprint, the scoping filter and the mappings on
 * a user built from the same bytes. Must never crash, hang or leak. Not a
 * correctness test (tests/unit/test_schema.c, test_filter.c are). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "mapping.h"
#include "mem.h"
#include "schema.h"
#include "scope_filter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
fixed_random(void *arg, unsigned char *buf, size_t len)
{
	(void)arg;
	memset(buf, 0x5a, len);
	return 0;
}

static void
count_attr(const char *name, void *arg)
{
	size_t *n = arg;

	if (name[0] != '\0')
		(*n)++;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct xts_schema_problems probs = XTS_SCHEMA_PROBLEMS_INIT;
	struct xts_schema *s = NULL;
	struct xts_expr_error err;
	struct xts_expr_ctx ctx;
	json_t *doc, *user, *out = NULL, *red = NULL, *chg = NULL;
	const char *reason = NULL;
	char fp[65];
	size_t n = 0;
	int in = 0;

	doc = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
	if (doc == NULL)
		return 0;
	if (xts_schema_load_json(doc, &s, &probs) == 0) {
		xts_schema_fingerprint(s, fp);
		xts_schema_foreach_source_attr(s, count_attr, &n);
		/* The document's own "user" member (if any) is the source user. */
		user = json_object_get(doc, "user");
		if (!json_is_object(user))
			user = doc;
		xts_scope_filter_eval(s, user, &in, &reason);
		xts_scope_filter_eval_input(s, user, &in, &reason);
		memset(&ctx, 0, sizeof(ctx));
		ctx.now = 1700000000;
		ctx.random = fixed_random;
		if (xts_mapping_apply_ctx(s, user, 1, &ctx, &out, &red, &err) == 0) {
			xts_mapping_diff(s, out, user, &chg);
			json_decref(chg);
			chg = NULL;
			xts_mapping_diff(s, out, NULL, &chg);
		}
	}
	/* The same bytes as a bare scoping filter. */
	{
		struct xts_filter *f = NULL;
		if (xts_filter_compile(doc, "$", &f, &probs) == 0) {
			xts_filter_eval(f, doc, &in, &reason);
			xts_filter_free(f);
		}
	}
	json_decref(chg);
	json_decref(out);
	json_decref(red);
	xts_schema_free(s);
	xts_schema_problems_free(&probs);
	json_decref(doc);
	return 0;
}
