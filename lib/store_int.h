/* SPDX-License-Identifier: MIT */
/* Internals shared by the store_*.c files (not part of the store's API):
 * the connection, the prepared-statement cache, SQLite error mapping and
 * small bind/column helpers. Tests may include it to reach the raw handle. */
#ifndef XTS_STORE_INT_H
#define XTS_STORE_INT_H

#include <jansson.h>
#include <sqlite3.h>

#include "buf.h"
#include "store.h"

struct xts_store_migration {
	int version;
	const char *sql;
};
/* Generated at build time from schema/migrations (store_embed.py). */
extern const struct xts_store_migration xts_store_migrations[];
extern const int xts_store_n_migrations;

/* Every statement the store runs, prepared once on first use and cached. */
enum xts_store_stmt {
#define XTS_STORE_STMT(id, sql) XTS_ST_##id,
#include "store_sql.h"
#undef XTS_STORE_STMT
	XTS_ST__COUNT
};

struct xts_store {
	sqlite3 *db;
	char *path;
	int in_tx;        /* explicit xts_store_begin transaction open */
	/* Op ids reserved in id_block and not yet used: [op_id_next, op_id_end).
	 * Emptied when a transaction or savepoint rolls back (the reservation
	 * may be undone with it). */
	long long op_id_next, op_id_end;
	int sp_depth;     /* internal savepoints open */
	int relaxed;      /* synchronous=NORMAL set by xts_store_begin_relaxed, FULL not yet back */
	int unsynced;     /* a relaxed commit since the last xts_store_sync */
	long long commits; /* write transactions committed, explicit or not (xts_store_commits) */
	struct xts_store_batch *batch; /* the open relaxed batch's owner handle, NULL = none */
	int batch_active;          /* its owner is using the store now (not paused) */
	sqlite3_stmt *stmt[XTS_ST__COUNT];
	struct xts_buf jbuf; /* scratch for serialising 'j' parameters */
};

/* The raw handle (tests: PRAGMA max_page_count and the like). */
sqlite3 *xts_store__db(struct xts_store *st);

/* Map a SQLite result code to XTS_E* and log sqlite's message once with
 * `what` (the operation). SQLITE_OK/ROW/DONE map to 0. */
int xts_store__err(struct xts_store *st, int rc, const char *what);

/* The cached statement, reset and with bindings cleared; NULL and *err set
 * on failure. */
sqlite3_stmt *xts_store__stmt(struct xts_store *st, enum xts_store_stmt id, int *err);

/* Bind parameters 1..n by a format: 't' text (NULL binds NULL), 'i' int,
 * 'I' long long, 'j' const json_t * (NULL binds NULL, serialised compact:
 * xts_json_text).
 * 0 or XTS_E*. */
int xts_store__bind(struct xts_store *st, sqlite3_stmt *s, const char *fmt, ...);

/* Step a statement that returns no row; resets it. 0 or XTS_E*. */
int xts_store__run(struct xts_store *st, sqlite3_stmt *s, const char *what);
/* Prepare-bind-run in one: the cached statement `id` with `fmt` bindings.
 * *changes (may be NULL) gets sqlite3_changes(). */
int xts_store__exec(struct xts_store *st, enum xts_store_stmt id, int *changes, const char *fmt, ...);
/* Run statement id (parameters bound by fmt as xts_store__bind) that returns
 * one row of one integer column into *out; `what` names it in the log.
 * 0 or XTS_E* (*out = 0). */
int xts_store__int(struct xts_store *st, enum xts_store_stmt id, long long *out, const char *what,
    const char *fmt, ...);

/* Column copies: NULL column -> NULL with *err untouched; allocation or
 * JSON failure sets *err. */
char *xts_store__col_dup(sqlite3_stmt *s, int col, int *err);
json_t *xts_store__col_json(sqlite3_stmt *s, int col, int *err);

/* Internal atomic section: a SAVEPOINT (works inside and outside an
 * explicit transaction). end(ok=1) releases, end(ok=0) rolls back to it.
 * Returns 0 or XTS_E*. */
int xts_store__sp_begin(struct xts_store *st);
int xts_store__sp_end(struct xts_store *st, int ok);

/* Keyset page size for foreach walks. */
#define XTS_STORE_PAGE 256

/* A keyset walk over one table (every xts_store_*_foreach): rows are read a
 * page at a time into an array, the statement is reset, and only then are
 * they visited — so no statement is open while a callback runs and a
 * callback may write to the store. The next page starts after the last row
 * of the previous one. */
struct xts_store__walk {
	size_t row_size;
	/* The page statement, prepared and bound for the rows after `last`
	 * (a decoded row; NULL for the first page). NULL and *err on failure. */
	sqlite3_stmt *(*page)(struct xts_store *st, void *ctx, const void *last, int *err);
	/* Fill row from the current result row; on failure leave it cleared. */
	int (*decode)(sqlite3_stmt *s, void *row);
	/* The caller's callback: 0 continues, anything else stops the walk. */
	int (*visit)(void *ctx, void *row);
	/* Free what a decoded (or zeroed) row owns and zero it. */
	void (*clear)(void *row);
	const char *what; /* for error messages, e.g. "user walk" */
};
/* Run the walk; returns 0, the first non-zero visit result, or XTS_E*. */
int xts_store__walk(struct xts_store *st, const struct xts_store__walk *w, void *ctx);

#endif
