/* SPDX-License-Identifier: MIT */
/* The offline `xtsyncctl eval` command: parse its options, load the attribute
 * object, compile and evaluate the expression, print the JSON result.
 * Does not parse the global options (-c, -s) or talk to the daemon. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"
#include "ctl_eval.h"
#include "err.h"
#include "expr.h"
#include "json_load.h"
#include "mem.h"

static void
usage(void)
{
	fprintf(stderr, "usage: xtsyncctl eval [--attributes JSON|@FILE] EXPRESSION\n");
}

/* The whole of @FILE into b; on failure prints why and returns -1. Read
 * here rather than by jansson so a missing file is named with errno's
 * reason, not jansson's "line -1". */
static int
read_attr_file(const char *path, struct xts_buf *b)
{
	char chunk[8192];
	FILE *f;
	size_t n;
	int e = 0;

	f = fopen(path, "re");
	if (!f) {
		fprintf(stderr, "xtsyncctl: cannot read %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (;;) {
		n = fread(chunk, 1, sizeof(chunk), f);
		if (n == 0)
			break;
		if (xts_buf_append(b, chunk, n) != 0) {
			e = ENOMEM;
			break;
		}
	}
	if (e == 0 && ferror(f))
		e = errno != 0 ? errno : EIO;
	fclose(f);
	if (e != 0) {
		fprintf(stderr, "xtsyncctl: cannot read %s: %s\n", path, strerror(e));
		return -1;
	}
	return 0;
}

static json_t *
load_attrs(const char *arg)
{
	struct xts_buf b = XTS_BUF_INIT;
	json_error_t jerr;
	size_t bom;
	json_t *v;

	if (arg[0] == '@') {
		if (read_attr_file(arg + 1, &b) != 0) {
			xts_buf_free(&b);
			return NULL;
		}
		/* a UTF-8 byte-order mark (Windows PowerShell 5.1 writes one) */
		bom = b.len >= 3 && memcmp(b.p, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
		v = xts_json_loadb(b.p != NULL ? b.p + bom : "", b.len - bom, JSON_REJECT_DUPLICATES, &jerr);
		xts_buf_free(&b);
	} else {
		v = xts_json_loads(arg, JSON_REJECT_DUPLICATES, &jerr);
	}
	if (!v) {
		if (arg[0] == '@')
			fprintf(stderr, "error: --attributes %s: line %d: %s\n", arg + 1, jerr.line,
				jerr.text);
		else
			fprintf(stderr, "error: --attributes: column %d: %s\n", jerr.column, jerr.text);
		return NULL;
	}
	if (!json_is_object(v)) {
		fprintf(stderr, "error: --attributes must be a JSON object of attribute names to values\n");
		json_decref(v);
		return NULL;
	}
	return v;
}

int
xts_ctl_eval_main(int argc, char **argv)
{
	struct xts_expr_error err;
	struct xts_expr_ctx ctx;
	const char *attr_arg = NULL, *src = NULL;
	json_t *attrs = NULL, *result = NULL;
	xts_expr *e = NULL;
	unsigned flags = 0;
	char *text = NULL;
	int i, rc, ret = 2;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--attributes") == 0 || strcmp(argv[i], "-a") == 0) {
			if (i + 1 >= argc) {
				usage();
				goto done;
			}
			attr_arg = argv[++i];
		} else if (strncmp(argv[i], "--attributes=", 13) == 0) {
			attr_arg = argv[i] + 13;
		} else if (strcmp(argv[i], "--") == 0 && i + 1 < argc && !src) {
			src = argv[++i];
		} else if (argv[i][0] == '-' && argv[i][1] == '-') {
			fprintf(stderr, "error: eval: unknown option '%s'\n", argv[i]);
			usage();
			goto done;
		} else if (!src) {
			src = argv[i];
		} else {
			usage();
			goto done;
		}
	}
	if (!src) {
		usage();
		goto done;
	}
	if (attr_arg) {
		attrs = load_attrs(attr_arg);
		if (!attrs)
			goto done;
	} else {
		attrs = json_object();
		if (!attrs) {
			ret = 1;
			goto done;
		}
	}
	rc = xts_expr_compile(src, &e, &err);
	if (rc < 0) {
		if (rc == XTS_EPARSE)
			fprintf(stderr, "error: column %d: %s\n", err.column, err.message);
		else
			fprintf(stderr, "error: %s\n", xts_strerror(rc));
		ret = rc == XTS_EPARSE ? 2 : 1;
		goto done;
	}
	memset(&ctx, 0, sizeof(ctx));
	ctx.attrs = attrs;
	rc = xts_expr_eval(e, &ctx, &result, &flags, &err);
	if (rc < 0) {
		if (err.column > 0)
			fprintf(stderr, "error: column %d: %s\n", err.column, err.message);
		else
			fprintf(stderr, "error: %s\n", err.message[0] ? err.message : xts_strerror(rc));
		ret = 1;
		goto done;
	}
	text = json_dumps(result, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!text) {
		fprintf(stderr, "error: %s\n", xts_strerror(XTS_ENOMEM));
		ret = 1;
		goto done;
	}
	printf("%s\n", text);
	if (flags & XTS_EXPR_IGNORE_FLOW)
		fprintf(stderr, "note: IgnoreFlowIfNullOrEmpty: the attribute would not flow\n");
	if (flags & XTS_EXPR_REDACT)
		fprintf(stderr, "note: Redact: logs would show [Redact]\n");
	ret = fflush(stdout) == 0 ? 0 : 1;
done:
	if (text) {
		json_malloc_t ma;
		json_free_t fr;
		json_get_alloc_funcs(&ma, &fr);
		fr(text);
	}
	json_decref(result);
	json_decref(attrs);
	xts_expr_free(e);
	return ret;
}
