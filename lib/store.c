/* SPDX-License-Identifier: MIT */
/* The store's core: open (pragmas, embedded migrations, version check),
 * transactions, the prepared-statement cache, SQLite error mapping, and the
 * job and cycle rows. Users, links and membership are in store_rows.c;
 * operations and the outbox in store_ops.c. No policy lives here. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "fsown.h"
#include "json_load.h"
#include "json_text.h"
#include "log.h"
#include "mem.h"
#include "store_int.h"

static const char *const stmt_sql[XTS_ST__COUNT] = {
#define XTS_STORE_STMT(id, sql) [XTS_ST_##id] = sql,
#include "store_sql.h"
#undef XTS_STORE_STMT
};

/* ---- error mapping and helpers ------------------------------------------ */

/* xts_store__err for any connection: db (may be NULL) gives the message,
 * path names the database in the corruption message. */
static int
map_err(sqlite3 *db, const char *path, int rc, const char *what)
{
	int prim = rc & 0xff;
	int ret;
	const char *msg = db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc);

	switch (prim) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return 0;
	case SQLITE_FULL:
		ret = XTS_ENOSPC;
		break;
	case SQLITE_IOERR:
		ret = rc == SQLITE_IOERR_NOMEM ? XTS_ENOMEM : XTS_EIO;
		break;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		ret = XTS_ESTORE;
		xts_log_rl(XTS_LOG_CRIT, 60000, 3,
		    "store: %s: the database %s is corrupt (%s); stop the daemon and restore "
		    "or remove it (a removed store makes the next cycle an initial one)",
		    what, path != NULL ? path : "", msg);
		return ret;
	case SQLITE_NOMEM:
		ret = XTS_ENOMEM;
		break;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		/* not XTS_EAGAIN, which callers read as "the job is running" */
		ret = XTS_EBUSY;
		break;
	case SQLITE_CONSTRAINT:
		if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
			xts_debug("store: %s: %s", what, msg);
			return XTS_EEXIST;
		}
		ret = XTS_EINVAL;
		break;
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_AUTH:
		ret = XTS_EPERM;
		break;
	case SQLITE_CANTOPEN:
		ret = XTS_EIO;
		break;
	case SQLITE_RANGE:
	case SQLITE_MISUSE:
	case SQLITE_MISMATCH:
	case SQLITE_TOOBIG:
		ret = prim == SQLITE_TOOBIG ? XTS_ETOOBIG : XTS_EINTERNAL;
		break;
	default:
		ret = XTS_ESTORE;
		break;
	}
	xts_log_rl(XTS_LOG_ERR, 10000, 5, "store: %s: %s (sqlite %d) -> %s", what, msg, rc,
	    xts_errname(ret));
	return ret;
}

int
xts_store__err(struct xts_store *st, int rc, const char *what)
{
	return map_err(st != NULL ? st->db : NULL, st != NULL ? st->path : NULL, rc, what);
}

sqlite3 *
xts_store__db(struct xts_store *st)
{
	return st->db;
}

/* Put synchronous=FULL back after a relaxed transaction (which ended in
 * commit, rollback or an error). Called again before every statement until
 * it succeeds: nothing runs with NORMAL outside xts_store_begin_relaxed. */
static int
sync_restore(struct xts_store *st)
{
	char *msg = NULL;
	int rc;

	if (!st->relaxed || st->in_tx || !sqlite3_get_autocommit(st->db))
		return 0;
	rc = sqlite3_exec(st->db, "PRAGMA synchronous = FULL", NULL, NULL, &msg);
	sqlite3_free(msg);
	if (rc != SQLITE_OK)
		return xts_store__err(st, rc, "synchronous = FULL");
	st->relaxed = 0;
	return 0;
}

static int batch_yield(struct xts_store *st);

sqlite3_stmt *
xts_store__stmt(struct xts_store *st, enum xts_store_stmt id, int *err)
{
	sqlite3_stmt *s = st->stmt[id];
	int rc;

	if (st->batch != NULL && !st->batch_active) {
		*err = batch_yield(st);
		if (*err != 0)
			return NULL;
	}
	if (st->relaxed) {
		*err = sync_restore(st);
		if (*err != 0)
			return NULL;
	}
	if (s == NULL) {
		rc = sqlite3_prepare_v3(st->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &s, NULL);
		if (rc != SQLITE_OK) {
			*err = xts_store__err(st, rc, "prepare");
			return NULL;
		}
		st->stmt[id] = s;
		return s;
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return s;
}

/* text_static: the statement is stepped and reset before the caller's
 * strings can go (xts_store__exec), so 't' texts are bound without a copy.
 * 'j' texts live in st->jbuf, which the next 'j' reuses: always copied. */
static int
bind_v(struct xts_store *st, sqlite3_stmt *s, const char *fmt, va_list ap, int text_static)
{
	int i, rc = SQLITE_OK;

	for (i = 1; *fmt && rc == SQLITE_OK; fmt++, i++) {
		switch (*fmt) {
		case 't': {
			const char *t = va_arg(ap, const char *);

			rc = t ? sqlite3_bind_text(s, i, t, -1, text_static ? SQLITE_STATIC : SQLITE_TRANSIENT) :
				 sqlite3_bind_null(s, i);
			break;
		}
		case 'i':
			rc = sqlite3_bind_int(s, i, va_arg(ap, int));
			break;
		case 'I':
			rc = sqlite3_bind_int64(s, i, va_arg(ap, long long));
			break;
		case 'j': {
			const json_t *j = va_arg(ap, const json_t *);
			int r;

			if (j == NULL) {
				rc = sqlite3_bind_null(s, i);
				break;
			}
			xts_buf_reset(&st->jbuf);
			r = xts_json_text(j, &st->jbuf, 0);
			if (r != 0)
				return r;
			rc = sqlite3_bind_text(s, i, st->jbuf.p != NULL ? st->jbuf.p : "", (int)st->jbuf.len,
			    SQLITE_TRANSIENT);
			break;
		}
		default:
			return XTS_EINTERNAL;
		}
	}
	return rc == SQLITE_OK ? 0 : xts_store__err(st, rc, "bind");
}

int
xts_store__bind(struct xts_store *st, sqlite3_stmt *s, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = bind_v(st, s, fmt, ap, 0);
	va_end(ap);
	return ret;
}

int
xts_store__run(struct xts_store *st, sqlite3_stmt *s, const char *what)
{
	int rc = sqlite3_step(s);
	int ret = 0;

	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		ret = xts_store__err(st, rc, what);
	sqlite3_reset(s);
	return ret;
}

/* The cached statement id with parameters bound (text without a copy: the
 * caller runs it at once); NULL and *err on failure. */
static sqlite3_stmt *
stmt_bound(struct xts_store *st, enum xts_store_stmt id, int *err, const char *fmt, va_list ap)
{
	sqlite3_stmt *s = xts_store__stmt(st, id, err);

	if (s == NULL)
		return NULL;
	*err = bind_v(st, s, fmt, ap, 1);
	return *err == 0 ? s : NULL;
}

int
xts_store__exec(struct xts_store *st, enum xts_store_stmt id, int *changes, const char *fmt, ...)
{
	sqlite3_stmt *s;
	va_list ap;
	int ret = 0;

	va_start(ap, fmt);
	s = stmt_bound(st, id, &ret, fmt, ap);
	va_end(ap);
	if (s == NULL)
		return ret;
	ret = xts_store__run(st, s, stmt_sql[id]);
	if (ret == 0 && changes)
		*changes = sqlite3_changes(st->db);
	return ret;
}

int
xts_store__int(struct xts_store *st, enum xts_store_stmt id, long long *out, const char *what,
    const char *fmt, ...)
{
	sqlite3_stmt *s;
	va_list ap;
	int rc, ret = 0;

	*out = 0;
	va_start(ap, fmt);
	s = stmt_bound(st, id, &ret, fmt, ap);
	va_end(ap);
	if (s == NULL)
		return ret;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(s, 0);
	else
		ret = xts_store__err(st, rc == SQLITE_DONE ? SQLITE_INTERNAL : rc, what);
	sqlite3_reset(s);
	return ret;
}

char *
xts_store__col_dup(sqlite3_stmt *s, int col, int *err)
{
	const unsigned char *t = sqlite3_column_text(s, col);
	char *d;

	if (t == NULL)
		return NULL;
	d = xts_strndup((const char *)t, (size_t)sqlite3_column_bytes(s, col));
	if (d == NULL)
		*err = XTS_ENOMEM;
	return d;
}

json_t *
xts_store__col_json(sqlite3_stmt *s, int col, int *err)
{
	const char *t = (const char *)sqlite3_column_text(s, col);
	json_error_t jerr;
	json_t *j;

	if (t == NULL)
		return NULL;
	j = xts_json_loadb(t, (size_t)sqlite3_column_bytes(s, col), JSON_DECODE_ANY, &jerr);
	if (j == NULL) {
		if (json_error_code(&jerr) == json_error_out_of_memory) {
			*err = XTS_ENOMEM;
		} else {
			xts_log_rl(XTS_LOG_ERR, 10000, 5, "store: stored JSON does not parse: %s",
			    jerr.text);
			*err = XTS_ESTORE;
		}
	}
	return j;
}

int
xts_store__sp_begin(struct xts_store *st)
{
	int ret = xts_store__exec(st, XTS_ST_SP_BEGIN, NULL, "");

	if (ret == 0)
		st->sp_depth++;
	return ret;
}

int
xts_store__sp_end(struct xts_store *st, int ok)
{
	int ret = 0;

	if (st->sp_depth <= 0)
		return XTS_EINTERNAL;
	if (!ok) {
		ret = xts_store__exec(st, XTS_ST_SP_ROLLBACK, NULL, "");
		st->op_id_next = st->op_id_end = 0; /* the reservation may be undone */
	}
	/* RELEASE after ROLLBACK TO closes the savepoint (and, outermost, the
	 * transaction it opened). */
	if (xts_store__exec(st, XTS_ST_SP_RELEASE, NULL, "") < 0 && ret == 0)
		ret = XTS_ESTORE;
	st->sp_depth--;
	if (ret < 0 && !sqlite3_get_autocommit(st->db) && !st->in_tx)
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	return ret;
}

/* ---- open / migrations / close ------------------------------------------ */

int
xts_store_schema_version(void)
{
	return xts_store_n_migrations;
}

static int
pragma_int(struct xts_store *st, const char *sql, int *out)
{
	sqlite3_stmt *s = NULL;
	int rc, ret = 0;

	rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);
	if (rc != SQLITE_OK)
		return xts_store__err(st, rc, sql);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int(s, 0);
	else
		ret = rc == SQLITE_DONE ? XTS_ESTORE : xts_store__err(st, rc, sql);
	sqlite3_finalize(s);
	return ret;
}

static int
exec_sql(struct xts_store *st, const char *sql, const char *what)
{
	char *msg = NULL;
	int rc = sqlite3_exec(st->db, sql, NULL, NULL, &msg);

	sqlite3_free(msg);
	return rc == SQLITE_OK ? 0 : xts_store__err(st, rc, what);
}

int
xts_store_user_version(struct xts_store *st)
{
	int v = -1;

	if (pragma_int(st, "PRAGMA user_version", &v) < 0)
		return -1;
	return v;
}

static int
migrate(struct xts_store *st)
{
	char sql[64];
	int v = 0, i, ret;

	ret = pragma_int(st, "PRAGMA user_version", &v);
	if (ret < 0)
		return ret;
	if (v > xts_store_n_migrations) {
		xts_err("store: %s has schema version %d but this xtsync knows only up to %d; "
		    "refusing to open it (run the newer xtsync, or restore a matching backup)",
		    st->path, v, xts_store_n_migrations);
		return XTS_ESTORE;
	}
	for (i = v; i < xts_store_n_migrations; i++) {
		const struct xts_store_migration *m = &xts_store_migrations[i];

		ret = exec_sql(st, "BEGIN IMMEDIATE", "migration begin");
		if (ret < 0)
			return ret;
		ret = exec_sql(st, m->sql, "migration");
		if (ret == 0) {
			snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", m->version);
			ret = exec_sql(st, sql, "migration version");
		}
		if (ret == 0)
			ret = exec_sql(st, "COMMIT", "migration commit");
		if (ret < 0) {
			sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
			xts_err("store: %s: migration to schema version %d failed: %s", st->path,
			    m->version, xts_strerror(ret));
			return ret;
		}
		xts_info("store: %s: migrated to schema version %d", st->path, m->version);
	}
	return 0;
}

/* Create path as an empty file of mode 0600 (owner only). The store holds a
 * whole tenant's user attributes, and SQLite would create it 0644 less the
 * umask; its -wal, -shm and -journal files take the main file's mode. An
 * existing file keeps its mode (the operator may have chosen another):
 * 0 then, unless must_be_new (XTS_EEXIST). *created (may be NULL) = 1 when
 * this call made the file. 0 or XTS_E* (logged). */
/* Root (a hand-run --once) must not leave the store, or its WAL files, to
 * itself in the daemon's state_dir (fsown.h). SQLite gives the WAL files it
 * creates the database's owner. */
static void
give_files(const char *db_path)
{
	char p[4096];

	xts_give_to_dir_owner(-1, db_path);
	if (snprintf(p, sizeof(p), "%s-wal", db_path) < (int)sizeof(p))
		xts_give_to_dir_owner(-1, p);
	if (snprintf(p, sizeof(p), "%s-shm", db_path) < (int)sizeof(p))
		xts_give_to_dir_owner(-1, p);
}

static int
create_private(const char *path, int must_be_new, int *created)
{
	int fd, e;

	if (created != NULL)
		*created = 0;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd >= 0) {
		if (created != NULL)
			*created = 1;
		if (close(fd) != 0) {
			e = errno;
			xts_err("store: cannot create %s: %s", path, strerror(e));
			return xts_err_from_errno(e);
		}
		return 0;
	}
	e = errno;
	if (e == EEXIST && !must_be_new) {
		struct stat sb;
		/* The operator's file is kept as it is, but a store others
		 * can read gives away a whole tenant's user attributes. */
		if (stat(path, &sb) == 0 && (sb.st_mode & 077) != 0)
			xts_warn("store: %s is readable or writable by others than its owner (mode %04o); "
				 "it holds the source users' attributes: chmod 600 it",
				 path, (unsigned)(sb.st_mode & 07777));
		return 0;
	}
	xts_err("store: cannot create %s: %s", path, strerror(e));
	/* a missing directory was XTS_EIO (SQLite's "cannot open") before */
	return e == ENOENT ? XTS_EIO : xts_err_from_errno(e);
}

/* Every rollback of a transaction, ours or SQLite's own after an error:
 * an op id block reserved in it is reserved no more. */
static void
on_rollback(void *arg)
{
	struct xts_store *st = arg;

	st->op_id_next = st->op_id_end = 0;
}

/* Every commit of a write, ours or a statement's own: each is one WAL
 * append and, but for relaxed ones, one fsync. */
static int
on_commit(void *arg)
{
	struct xts_store *st = arg;

	st->commits++;
	return 0;
}

long long
xts_store_commits(const struct xts_store *st)
{
	return st->commits;
}

int
xts_store_open_path(const char *db_path, struct xts_store **out)
{
	struct xts_store *st = NULL;
	int rc, ret = 0, v = 0;

	*out = NULL;
	if (db_path == NULL || *db_path == '\0')
		return XTS_EINVAL;
	st = xts_calloc(1, sizeof(*st));
	if (st == NULL)
		return XTS_ENOMEM;
	st->path = xts_strdup(db_path);
	if (st->path == NULL) {
		ret = XTS_ENOMEM;
		goto done;
	}
	if (strcmp(db_path, ":memory:") != 0) {
		ret = create_private(db_path, 0, NULL);
		if (ret < 0)
			goto done;
	}
	rc = sqlite3_open_v2(db_path, &st->db,
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
	    (xts_dir_owned_by_other(db_path) ? SQLITE_OPEN_NOFOLLOW : 0), NULL);
	if (rc != SQLITE_OK) {
		xts_err("store: cannot open %s: %s", db_path,
		    st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
		ret = (rc & 0xff) == SQLITE_NOMEM ? XTS_ENOMEM : XTS_EIO;
		goto done;
	}
	sqlite3_extended_result_codes(st->db, 1);
	give_files(db_path);
	sqlite3_rollback_hook(st->db, on_rollback, st);
	sqlite3_commit_hook(st->db, on_commit, st);
	rc = sqlite3_busy_timeout(st->db, 5000);
	if (rc != SQLITE_OK) {
		ret = xts_store__err(st, rc, "busy_timeout");
		goto done;
	}
	/* 8 KiB pages for a new store (a no-op on an existing one): fewer,
	 * shallower b-tree pages for rows of about 1 KiB; benchmark 1 runs 10 %
	 * faster than with 4 KiB. Must come before the first table. */
	ret = exec_sql(st, "PRAGMA page_size = 8192", "page_size");
	if (ret < 0)
		goto done;
	/* journal_mode answers with the mode in force: insist on wal. */
	{
		sqlite3_stmt *s = NULL;

		rc = sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &s, NULL);
		if (rc == SQLITE_OK)
			rc = sqlite3_step(s);
		if (rc == SQLITE_ROW) {
			const char *mode = (const char *)sqlite3_column_text(s, 0);

			if (mode == NULL || strcmp(mode, "wal") != 0) {
				xts_err("store: %s: cannot switch to WAL mode (got %s)", db_path,
				    mode ? mode : "nothing");
				ret = XTS_ESTORE;
			}
		} else {
			ret = xts_store__err(st, rc, "journal_mode");
		}
		sqlite3_finalize(s);
		if (ret < 0)
			goto done;
	}
	/* cache_size 16 MiB (SQLite's default is 2 MiB): the hot interior and
	 * key-index pages of a large job stay in memory; it is a ceiling, a
	 * small store never uses it. wal_autocheckpoint 10,000 pages (80 MiB of
	 * 8 KiB pages; default 1,000): a page rewritten by many page-sized
	 * transactions (the scattered key indexes) is copied into the database
	 * once per checkpoint, not once per 1,000 frames; journal_size_limit
	 * truncates the WAL back to 64 MiB after a checkpoint that let it grow
	 * past. */
	ret = exec_sql(st, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; "
	    "PRAGMA cache_size = -16384; PRAGMA wal_autocheckpoint = 10000; "
	    "PRAGMA journal_size_limit = 67108864;", "pragmas");
	if (ret < 0)
		goto done;
	ret = pragma_int(st, "PRAGMA foreign_keys", &v);
	if (ret == 0 && v != 1) {
		xts_err("store: this SQLite cannot enforce foreign keys");
		ret = XTS_ESTORE;
	}
	if (ret < 0)
		goto done;
	ret = migrate(st);
done:
	if (ret < 0) {
		xts_store_close(st);
		return ret;
	}
	*out = st;
	return 0;
}

/* dir/xtsync.db into buf. 0, XTS_EINVAL (no dir) or XTS_ERANGE (too long). */
static int
db_file(const char *dir, char *buf, size_t len)
{
	int n;

	if (dir == NULL || *dir == '\0')
		return XTS_EINVAL;
	n = snprintf(buf, len, "%s/xtsync.db", dir);
	if (n < 0 || (size_t)n >= len)
		return XTS_ERANGE;
	return 0;
}

int
xts_store_open(const char *state_dir, struct xts_store **out)
{
	char path[4096];
	int ret;

	*out = NULL;
	ret = db_file(state_dir, path, sizeof(path));
	if (ret < 0)
		return ret;
	return xts_store_open_path(path, out);
}

/* A reader of a WAL database waits only briefly (WAL recovery, the moment a
 * checkpoint restarts the log): each attempt waits up to SNAP_BUSY_MS for
 * the locks, and a busy attempt is retried after SNAP_PAUSE_MS, at most
 * SNAP_TRIES times (1.4 to 3.4 s in all). */
#define SNAP_BUSY_MS 1000
#define SNAP_PAUSE_MS 200
#define SNAP_TRIES 3

static int
is_busy(int rc)
{
	return (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED;
}

/* Open path with flags for the snapshot; 0 or XTS_E* (logged). */
static int
snap_db_open(const char *path, int flags, sqlite3 **db)
{
	int rc = sqlite3_open_v2(path, db, flags | SQLITE_OPEN_NOMUTEX, NULL);

	if (rc == SQLITE_OK) {
		sqlite3_extended_result_codes(*db, 1);
		rc = sqlite3_busy_timeout(*db, SNAP_BUSY_MS);
	}
	return rc == SQLITE_OK ? 0 : map_err(*db, path, rc, "snapshot: open");
}

/* Whether path's -wal or -shm exists. */
static bool
has_wal_files(const char *path)
{
	char p[4112];

	snprintf(p, sizeof(p), "%s-wal", path);
	if (access(p, F_OK) == 0)
		return true;
	snprintf(p, sizeof(p), "%s-shm", path);
	return access(p, F_OK) == 0;
}

/* A read-only connection creates the -wal and -shm of a WAL store that had
 * none (nothing else had it open) and cannot remove them at close. A
 * read-write connection that reads and closes does, if it is then the last
 * connection (SQLite's own check, under its locks; else it leaves them to
 * the last one). Best effort: the snapshot is already taken. */
static void
tidy_wal_files(const char *path)
{
	sqlite3 *db = NULL;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) == SQLITE_OK &&
	    sqlite3_exec(db, "PRAGMA query_only = ON; SELECT count(*) FROM sqlite_schema", NULL, NULL, NULL) !=
		SQLITE_OK)
		xts_debug("store: snapshot: %s: %s", path, sqlite3_errmsg(db));
	sqlite3_close(db);
}

/* Copy from's committed state into to in one backup step (one read
 * transaction), retrying a busy store. 0 or XTS_E* (logged). */
static int
snap_copy(sqlite3 *src, sqlite3 *dst, const char *from, const char *to)
{
	sqlite3_backup *bk;
	int rc, rc2, tries;

	bk = sqlite3_backup_init(dst, "main", src, "main");
	if (bk == NULL)
		return map_err(dst, to, sqlite3_extended_errcode(dst), "snapshot: backup init");
	for (tries = 1;; tries++) {
		rc = sqlite3_backup_step(bk, -1);
		if (rc == SQLITE_DONE || !is_busy(rc) || tries == SNAP_TRIES)
			break;
		xts_debug("store: snapshot of %s: store busy (%s), retrying", from, sqlite3_errstr(rc));
		sqlite3_sleep(SNAP_PAUSE_MS);
	}
	rc2 = sqlite3_backup_finish(bk);
	if (rc == SQLITE_DONE)
		rc = rc2;
	if (rc == SQLITE_OK)
		return 0;
	if (is_busy(rc)) {
		xts_err("store: snapshot of %s: the store stayed locked through %d attempts (%s); "
		    "try again", from, SNAP_TRIES, sqlite3_errstr(rc));
		return XTS_EBUSY;
	}
	return map_err(dst, from, rc, "snapshot: backup");
}

int
xts_store_snapshot(const char *state_dir, const char *dest_dir)
{
	char from[4096], to[4096], p[4112];
	sqlite3 *src = NULL, *dst = NULL;
	struct stat sb;
	bool had_wal = true;
	int ret, e, created = 0;

	ret = db_file(state_dir, from, sizeof(from));
	if (ret == 0)
		ret = db_file(dest_dir, to, sizeof(to));
	if (ret < 0)
		return ret;
	if (stat(from, &sb) != 0) {
		e = errno;
		if (e == ENOENT) {
			xts_debug("store: snapshot: no store in %s yet", state_dir);
			return XTS_ENOENT;
		}
		xts_err("store: snapshot: cannot read %s: %s", from, strerror(e));
		return xts_err_from_errno(e);
	}
	ret = create_private(to, 1, &created);
	if (ret < 0)
		goto done;
	had_wal = has_wal_files(from);
	ret = snap_db_open(from, SQLITE_OPEN_READONLY, &src);
	if (ret == 0)
		ret = snap_db_open(to, SQLITE_OPEN_READWRITE, &dst);
	if (ret < 0)
		goto done;
	/* a scratch copy: nothing is lost if a crash tears it, so no fsync */
	if (sqlite3_exec(dst, "PRAGMA synchronous = OFF", NULL, NULL, NULL) != SQLITE_OK) {
		ret = map_err(dst, to, sqlite3_extended_errcode(dst), "snapshot: synchronous");
		goto done;
	}
	ret = snap_copy(src, dst, from, to);
done:
	if (src != NULL && sqlite3_close(src) != SQLITE_OK)
		xts_err("store: snapshot: close %s: %s", from, sqlite3_errmsg(src));
	else if (src != NULL && !had_wal)
		tidy_wal_files(from);
	if (dst != NULL && sqlite3_close(dst) != SQLITE_OK) {
		xts_err("store: snapshot: close %s: %s", to, sqlite3_errmsg(dst));
		if (ret == 0)
			ret = XTS_EIO;
	}
	if (ret < 0 && created) {
		unlink(to);
		snprintf(p, sizeof(p), "%s-journal", to);
		unlink(p);
	}
	if (ret == 0)
		xts_debug("store: snapshot of %s written to %s", from, to);
	return ret;
}

void
xts_store_close(struct xts_store *st)
{
	int i;

	if (st == NULL)
		return;
	for (i = 0; i < XTS_ST__COUNT; i++)
		sqlite3_finalize(st->stmt[i]);
	if (st->db) {
		if (!sqlite3_get_autocommit(st->db))
			sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
		if (sqlite3_close(st->db) != SQLITE_OK)
			xts_err("store: close %s: %s", st->path ? st->path : "", sqlite3_errmsg(st->db));
	}
	xts_free(st->path);
	xts_buf_free(&st->jbuf);
	xts_free(st);
}

/* ---- transactions -------------------------------------------------------- */

/* Someone other than its owner uses the store: commit the paused batch
 * first. A failed commit rolls it back; its owner learns at its next
 * xts_store_batch_begin/commit. */
/* Close the handle's open batch: commit or roll back. */
static int
batch_close(struct xts_store *st, struct xts_store_batch *b, int commit)
{
	int ret = 0;

	st->batch_active = 1;
	if (commit)
		ret = xts_store_commit(st);
	else if (st->in_tx)
		ret = xts_store_rollback(st);
	st->batch = NULL;
	st->batch_active = 0;
	b->open = 0;
	return ret;
}

static int
batch_yield(struct xts_store *st)
{
	struct xts_store_batch *b = st->batch;
	int ret;

	if (b == NULL || st->batch_active)
		return 0;
	ret = batch_close(st, b, 1);
	if (ret != 0) {
		xts_err("store: committing the paused read batch failed: %s", xts_strerror(ret));
		b->lost = 1;
	}
	return ret;
}

/* Before a transaction of our own: commit a paused batch; none may be open. */
static int
tx_can_begin(struct xts_store *st)
{
	int ret = batch_yield(st);

	if (ret == 0 && (st->in_tx || st->sp_depth > 0))
		ret = XTS_EINVAL;
	return ret;
}

int
xts_store_begin(struct xts_store *st)
{
	int ret = tx_can_begin(st);

	if (ret != 0)
		return ret;
	ret = xts_store__exec(st, XTS_ST_BEGIN, NULL, "");
	if (ret == 0)
		st->in_tx = 1;
	return ret;
}

int
xts_store_begin_relaxed(struct xts_store *st)
{
	int ret = tx_can_begin(st);

	if (ret != 0)
		return ret;
	/* SQLite refuses to change synchronous inside a transaction, and in WAL
	 * mode reads it at COMMIT: set it here, restore it when the
	 * transaction is over (sync_restore). */
	ret = xts_store__exec(st, XTS_ST_SYNC_NORMAL, NULL, "");
	if (ret == 0)
		ret = xts_store__exec(st, XTS_ST_BEGIN, NULL, "");
	st->relaxed = 1;
	if (ret == 0)
		st->in_tx = 1;
	else if (sync_restore(st) != 0)
		ret = XTS_ESTORE;
	return ret;
}

int
xts_store_commit(struct xts_store *st)
{
	int ret;

	ret = batch_yield(st);
	if (ret != 0)
		return ret;
	if (!st->in_tx)
		return XTS_EINVAL;
	ret = xts_store__exec(st, XTS_ST_COMMIT, NULL, "");
	if (ret < 0) {
		/* A failed COMMIT (disk full, I/O) may leave the transaction open:
		 * roll it back so that the next call starts clean. */
		if (!sqlite3_get_autocommit(st->db))
			sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	}
	st->in_tx = 0;
	if (st->relaxed) {
		if (ret == 0)
			st->unsynced = 1;
		if (sync_restore(st) != 0 && ret == 0)
			ret = XTS_ESTORE;
	}
	return ret;
}

int
xts_store_sync(struct xts_store *st)
{
	char sql[64];
	int ret;

	ret = tx_can_begin(st);
	if (ret != 0)
		return ret;
	if (!st->unsynced)
		return 0;
	ret = sync_restore(st);
	if (ret != 0)
		return ret;
	/* Any write commits with an fsync of the WAL, and that fsync covers the
	 * frames of the relaxed commits before it. user_version is a write
	 * that always happens (page 1) and changes nothing. */
	snprintf(sql, sizeof(sql), "BEGIN IMMEDIATE; PRAGMA user_version = %d; COMMIT",
	    xts_store_n_migrations);
	ret = exec_sql(st, sql, "sync");
	if (ret != 0) {
		if (!sqlite3_get_autocommit(st->db))
			sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
		return ret;
	}
	st->unsynced = 0;
	return 0;
}

int
xts_store_rollback(struct xts_store *st)
{
	int ret = 0;

	if (batch_yield(st) != 0 || !st->in_tx)
		return XTS_EINVAL;
	if (!sqlite3_get_autocommit(st->db))
		ret = xts_store__exec(st, XTS_ST_ROLLBACK, NULL, "");
	st->in_tx = 0;
	if (st->relaxed && sync_restore(st) != 0 && ret == 0)
		ret = XTS_ESTORE;
	return ret;
}

int
xts_store_in_tx(const struct xts_store *st)
{
	return st->in_tx && (st->batch == NULL || st->batch_active);
}

int
xts_store_savepoint(struct xts_store *st)
{
	if (!xts_store_in_tx(st))
		return XTS_EINVAL;
	return xts_store__sp_begin(st);
}

int
xts_store_savepoint_end(struct xts_store *st, int keep)
{
	if (!xts_store_in_tx(st))
		return XTS_EINVAL;
	return xts_store__sp_end(st, keep);
}

int
xts_store_batch_begin(struct xts_store *st, struct xts_store_batch *b)
{
	int ret;

	if (b->lost) {
		b->lost = 0;
		return XTS_ESTORE;
	}
	if (st->batch == b) {
		st->batch_active = 1;
		return 0;
	}
	/* Not open (never, or committed on someone else's call): begin anew. */
	ret = xts_store_begin_relaxed(st);
	if (ret != 0)
		return ret;
	st->batch = b;
	st->batch_active = 1;
	b->open = 1;
	return 0;
}

void
xts_store_batch_pause(struct xts_store *st, struct xts_store_batch *b)
{
	if (st->batch == b)
		st->batch_active = 0;
}


int
xts_store_batch_commit(struct xts_store *st, struct xts_store_batch *b)
{
	if (b->lost) {
		b->lost = 0;
		return XTS_ESTORE;
	}
	return st->batch == b ? batch_close(st, b, 1) : 0;
}

void
xts_store_batch_abort(struct xts_store *st, struct xts_store_batch *b)
{
	b->lost = 0;
	if (st->batch == b)
		batch_close(st, b, 0);
}

int
xts_store_check(struct xts_store *st)
{
	sqlite3_stmt *s = NULL;
	int rc, ret = 0;

	rc = sqlite3_prepare_v2(st->db, "PRAGMA integrity_check", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return xts_store__err(st, rc, "integrity_check");
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		const char *r = (const char *)sqlite3_column_text(s, 0);

		if (r == NULL || strcmp(r, "ok") != 0) {
			xts_err("store: %s: integrity_check: %s", st->path, r ? r : "(null)");
			ret = XTS_ESTORE;
		}
	} else {
		ret = xts_store__err(st, rc, "integrity_check");
	}
	sqlite3_finalize(s);
	return ret;
}

/* ---- jobs ---------------------------------------------------------------- */

static const char *const job_state_names[] = { "idle", "quarantined", "deletions-held", "disabled" };

const char *
xts_job_state_name(int state)
{
	if (state < 0 || state >= (int)(sizeof(job_state_names) / sizeof(job_state_names[0])))
		return "unknown";
	return job_state_names[state];
}

int
xts_job_state_parse(const char *s)
{
	int i;

	for (i = 0; s && i < (int)(sizeof(job_state_names) / sizeof(job_state_names[0])); i++)
		if (strcmp(s, job_state_names[i]) == 0)
			return i;
	return -1;
}

void
xts_store_job_clear(struct xts_store_job *j)
{
	if (j == NULL)
		return;
	xts_free(j->name);
	xts_free(j->delta_link);
	xts_free(j->groups_delta_link);
	xts_free(j->schema_fingerprint);
	xts_free(j->state_reason);
	xts_free(j->last_cycle_result);
	json_decref(j->counts);
	memset(j, 0, sizeof(*j));
}

static int
job_from_row(sqlite3_stmt *s, struct xts_store_job *j)
{
	int err = 0;

	memset(j, 0, sizeof(*j));
	j->name = xts_store__col_dup(s, 0, &err);
	j->delta_link = xts_store__col_dup(s, 1, &err);
	j->groups_delta_link = xts_store__col_dup(s, 2, &err);
	j->schema_fingerprint = xts_store__col_dup(s, 3, &err);
	j->state = sqlite3_column_int(s, 4);
	j->state_reason = xts_store__col_dup(s, 5, &err);
	j->quarantine_since = sqlite3_column_int64(s, 6);
	j->next_retry = sqlite3_column_int64(s, 7);
	j->retry_step = sqlite3_column_int(s, 8);
	j->cycle_counter = sqlite3_column_int64(s, 9);
	j->last_cycle_start = sqlite3_column_int64(s, 10);
	j->last_cycle_end = sqlite3_column_int64(s, 11);
	j->last_cycle_result = xts_store__col_dup(s, 12, &err);
	j->counts = xts_store__col_json(s, 13, &err);
	j->paused = sqlite3_column_int(s, 14) != 0;
	if (err < 0)
		xts_store_job_clear(j);
	return err;
}

int
xts_store_job_ensure(struct xts_store *st, const char *job)
{
	if (job == NULL)
		return XTS_EINVAL;
	return xts_store__exec(st, XTS_ST_JOB_ENSURE, NULL, "t", job);
}

int
xts_store_job_get(struct xts_store *st, const char *job, struct xts_store_job *out)
{
	sqlite3_stmt *s;
	int rc, ret = 0;

	memset(out, 0, sizeof(*out));
	if (job == NULL)
		return XTS_EINVAL;
	s = xts_store__stmt(st, XTS_ST_JOB_GET, &ret);
	if (s == NULL)
		return ret;
	ret = xts_store__bind(st, s, "t", job);
	if (ret < 0)
		goto done;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		ret = job_from_row(s, out);
	else if (rc == SQLITE_DONE)
		ret = XTS_ENOENT;
	else
		ret = xts_store__err(st, rc, "job get");
done:
	sqlite3_reset(s);
	return ret;
}

int
xts_store_job_delete(struct xts_store *st, const char *job)
{
	int changes = 0, ret;

	if (job == NULL)
		return XTS_EINVAL;
	ret = xts_store__exec(st, XTS_ST_JOB_DELETE, &changes, "t", job);
	if (ret == 0 && changes == 0)
		ret = XTS_ENOENT;
	return ret;
}

int
xts_store_job_foreach(struct xts_store *st,
    int (*cb)(void *arg, const struct xts_store_job *j), void *arg)
{
	struct xts_store_job page[32];
	char *after = NULL;
	int n, i, rc, ret = 0;

	for (;;) {
		sqlite3_stmt *s = xts_store__stmt(st, XTS_ST_JOB_PAGE, &ret);

		if (s == NULL)
			break;
		ret = xts_store__bind(st, s, "ti", after ? after : "", 32);
		for (n = 0; ret == 0 && n < 32; n++) {
			rc = sqlite3_step(s);
			if (rc == SQLITE_DONE)
				break;
			if (rc != SQLITE_ROW) {
				ret = xts_store__err(st, rc, "job walk");
				break;
			}
			ret = job_from_row(s, &page[n]);
			if (ret < 0)
				break;
		}
		sqlite3_reset(s);
		for (i = 0; i < n && ret == 0; i++)
			ret = cb(arg, &page[i]);
		if (ret == 0 && n > 0) {
			xts_free(after);
			after = xts_strdup(page[n - 1].name);
			if (after == NULL)
				ret = XTS_ENOMEM;
		}
		for (i = 0; i < n; i++)
			xts_store_job_clear(&page[i]);
		if (ret != 0 || n < 32)
			break;
	}
	xts_free(after);
	return ret;
}

static int
job_update(struct xts_store *st, enum xts_store_stmt id, const char *job, const char *value)
{
	int changes = 0, ret;

	if (job == NULL)
		return XTS_EINVAL;
	ret = xts_store__exec(st, id, &changes, "tt", value, job);
	if (ret == 0 && changes == 0)
		ret = XTS_ENOENT;
	return ret;
}

int
xts_store_job_set_delta(struct xts_store *st, const char *job, const char *users_link)
{
	return job_update(st, XTS_ST_JOB_SET_DELTA, job, users_link);
}

int
xts_store_job_set_groups_delta(struct xts_store *st, const char *job, const char *groups_link)
{
	return job_update(st, XTS_ST_JOB_SET_GDELTA, job, groups_link);
}

int
xts_store_job_set_fingerprint(struct xts_store *st, const char *job, const char *fingerprint)
{
	return job_update(st, XTS_ST_JOB_SET_FP, job, fingerprint);
}

int
xts_store_job_set_state(struct xts_store *st, const char *job, int state, const char *reason,
    long long quarantine_since, long long next_retry, int retry_step)
{
	int changes = 0, ret;

	if (job == NULL || xts_job_state_name(state)[0] == 'u')
		return XTS_EINVAL;
	ret = xts_store__exec(st, XTS_ST_JOB_SET_STATE, &changes, "itIIit", state, reason,
	    quarantine_since, next_retry, retry_step, job);
	if (ret == 0 && changes == 0)
		ret = XTS_ENOENT;
	return ret;
}

int
xts_store_job_set_paused(struct xts_store *st, const char *job, int paused)
{
	int ret;

	if (job == NULL)
		return XTS_EINVAL;
	ret = xts_store__exec(st, XTS_ST_JOB_ENSURE, NULL, "t", job);
	if (ret == 0)
		ret = xts_store__exec(st, XTS_ST_JOB_SET_PAUSED, NULL, "it", paused != 0, job);
	return ret;
}

static int
reset_job(struct xts_store *st, const char *job, int forget_links)
{
	int changes = 0, ret;

	if (job == NULL)
		return XTS_EINVAL;
	ret = xts_store__sp_begin(st);
	if (ret < 0)
		return ret;
	ret = xts_store__exec(st, XTS_ST_RESET_JOB, &changes, "t", job);
	if (ret == 0 && changes == 0)
		ret = XTS_ENOENT;
	if (ret == 0)
		ret = xts_store__exec(st, XTS_ST_RESET_USERS, NULL, "t", job);
	if (ret == 0)
		ret = xts_store__exec(st, XTS_ST_RESET_MEMBERS, NULL, "t", job);
	/* in-flight operations went to the old tenants: resolving them in the
	 * new ones would be wrong, so a forget drops them too */
	if (ret == 0)
		ret = xts_store__exec(st, forget_links ? XTS_ST_FORGET_OPS : XTS_ST_RESET_OPS, NULL, "t", job);
	if (ret == 0 && forget_links)
		ret = xts_store__exec(st, XTS_ST_FORGET_LINKS, NULL, "t", job);
	else if (ret == 0)
		ret = xts_store__exec(st, XTS_ST_RESET_LINKS, NULL, "It", xts_wall_ms(), job);
	if (xts_store__sp_end(st, ret == 0) < 0 && ret == 0)
		ret = XTS_ESTORE;
	return ret;
}

int
xts_store_reset_job(struct xts_store *st, const char *job)
{
	return reset_job(st, job, 0);
}

int
xts_store_forget_job(struct xts_store *st, const char *job)
{
	return reset_job(st, job, 1);
}

/* ---- cycles -------------------------------------------------------------- */

int
xts_store_cycle_begin(struct xts_store *st, const char *job, int kind, long long now,
    long long *cycle_id)
{
	sqlite3_stmt *s;
	long long id = 0;
	int rc, ret;

	if (job == NULL || cycle_id == NULL ||
	    (kind != XTS_CYCLE_INITIAL && kind != XTS_CYCLE_INCREMENTAL))
		return XTS_EINVAL;
	ret = xts_store__sp_begin(st);
	if (ret < 0)
		return ret;
	ret = xts_store__exec(st, XTS_ST_JOB_ENSURE, NULL, "t", job);
	if (ret < 0)
		goto done;
	s = xts_store__stmt(st, XTS_ST_CYCLE_BUMP, &ret);
	if (s == NULL)
		goto done;
	ret = xts_store__bind(st, s, "It", now, job);
	if (ret == 0) {
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW) {
			id = sqlite3_column_int64(s, 0);
			rc = sqlite3_step(s);
		}
		if (rc != SQLITE_DONE)
			ret = xts_store__err(st, rc, "cycle begin");
	}
	sqlite3_reset(s);
	if (ret == 0 && id <= 0)
		ret = XTS_EINTERNAL;
	if (ret == 0)
		ret = xts_store__exec(st, XTS_ST_CYCLE_INSERT, NULL, "tIiI", job, id, kind, now);
done:
	if (xts_store__sp_end(st, ret == 0) < 0 && ret == 0)
		ret = XTS_ESTORE;
	if (ret == 0)
		*cycle_id = id;
	return ret;
}

int
xts_store_cycle_end(struct xts_store *st, const char *job, long long cycle_id, long long now,
    const char *result, const json_t *counts)
{
	int changes = 0, ret;

	if (job == NULL || cycle_id <= 0)
		return XTS_EINVAL;
	ret = xts_store__sp_begin(st);
	if (ret < 0)
		return ret;
	ret = xts_store__exec(st, XTS_ST_CYCLE_END, &changes, "ItjtI", now, result, counts, job,
	    cycle_id);
	if (ret == 0 && changes == 0)
		ret = XTS_ENOENT;
	if (ret == 0)
		ret = xts_store__exec(st, XTS_ST_CYCLE_END_JOB, NULL, "Itjt", now, result, counts, job);
	if (xts_store__sp_end(st, ret == 0) < 0 && ret == 0)
		ret = XTS_ESTORE;
	return ret;
}

struct cycle_row {
	struct xts_store_cycle c;
	char *result;
};

int
xts_store_cycle_foreach(struct xts_store *st, const char *job, int limit,
    int (*cb)(void *arg, const struct xts_store_cycle *c), void *arg)
{
	struct cycle_row page[64];
	long long before = (long long)(~0ULL >> 1);
	int seen = 0, n, i, rc, ret = 0, want;

	if (job == NULL || limit < 0)
		return XTS_EINVAL;
	for (;;) {
		sqlite3_stmt *s = xts_store__stmt(st, XTS_ST_CYCLE_PAGE, &ret);

		if (s == NULL)
			break;
		want = 64;
		if (limit > 0 && limit - seen < want)
			want = limit - seen;
		ret = xts_store__bind(st, s, "tIi", job, before, want);
		for (n = 0; ret == 0 && n < want; n++) {
			rc = sqlite3_step(s);
			if (rc == SQLITE_DONE)
				break;
			if (rc != SQLITE_ROW) {
				ret = xts_store__err(st, rc, "cycle walk");
				break;
			}
			memset(&page[n], 0, sizeof(page[n]));
			page[n].c.id = sqlite3_column_int64(s, 0);
			page[n].c.kind = sqlite3_column_int(s, 1);
			page[n].c.started = sqlite3_column_int64(s, 2);
			page[n].c.ended = sqlite3_column_int64(s, 3);
			page[n].result = xts_store__col_dup(s, 4, &ret);
			page[n].c.result = page[n].result;
			page[n].c.counts = xts_store__col_json(s, 5, &ret);
			if (ret < 0) {
				n++;
				break;
			}
		}
		sqlite3_reset(s);
		for (i = 0; i < n && ret == 0; i++)
			ret = cb(arg, &page[i].c);
		if (n > 0)
			before = page[n - 1].c.id;
		for (i = 0; i < n; i++) {
			xts_free(page[i].result);
			json_decref(page[i].c.counts);
		}
		seen += n;
		if (ret != 0 || n < want || (limit > 0 && seen >= limit))
			break;
	}
	return ret;
}
