/* SPDX-License-Identifier: MIT */
/* The keyset page walk shared by every xts_store_*_foreach (store_int.h):
 * one place for the rule that no statement is open while callbacks run.
 * It knows no table; the walk description supplies statements and rows. */
#include <string.h>

#include <sqlite3.h>

#include "err.h"
#include "mem.h"
#include "store_int.h"

#define ROW(w, base, i) ((void *)((char *)(base) + (size_t)(i) * (w)->row_size))

int
xts_store__walk(struct xts_store *st, const struct xts_store__walk *w, void *ctx)
{
	void *page, *last;
	int have_last = 0, n, i, rc, ret = 0;

	/* One extra slot keeps the previous page's last row as the next key. */
	page = xts_calloc(XTS_STORE_PAGE + 1, w->row_size);
	if (page == NULL)
		return XTS_ENOMEM;
	last = ROW(w, page, XTS_STORE_PAGE);
	for (;;) {
		sqlite3_stmt *s = w->page(st, ctx, have_last ? last : NULL, &ret);

		/* Text is bound SQLITE_TRANSIENT: the key row can go now. */
		if (have_last) {
			w->clear(last);
			have_last = 0;
		}
		if (s == NULL)
			break;
		for (n = 0; ret == 0 && n < XTS_STORE_PAGE; n++) {
			rc = sqlite3_step(s);
			if (rc == SQLITE_DONE)
				break;
			if (rc != SQLITE_ROW) {
				ret = xts_store__err(st, rc, w->what);
				break;
			}
			ret = w->decode(s, ROW(w, page, n));
			if (ret < 0)
				break; /* the decoder left row n cleared */
		}
		sqlite3_reset(s);
		for (i = 0; i < n && ret == 0; i++)
			ret = w->visit(ctx, ROW(w, page, i));
		if (ret == 0 && n > 0) {
			memcpy(last, ROW(w, page, n - 1), w->row_size);
			memset(ROW(w, page, n - 1), 0, w->row_size);
			have_last = 1;
		}
		for (i = 0; i < n; i++)
			w->clear(ROW(w, page, i));
		if (ret != 0 || n < XTS_STORE_PAGE)
			break;
	}
	if (have_last)
		w->clear(last);
	xts_free(page);
	return ret;
}
