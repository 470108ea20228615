/* SPDX-License-Identifier: MIT */
/* Unit tests for the shadow store on real SQLite files in a temp directory:
 * migrations and version refusal, every CRUD path, op state transitions,
 * staged deletions, reset, a kill -9 crash, disk-full mapping, allocation
 * failure, and a 100k-row bulk load (rate printed as a TAP comment). */
#include <stdarg.h>
#include <stddef.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <sqlite3.h>

#include "err.h"
#include "log.h"
#include "mem.h"
#include "store.h"
#include "store_int.h"
#include "members.h"
#include "tmpdir.h"

struct fx {
	char dir[64];
	char db[128];
	struct xts_store *st;
};

static void
rm_db_files(const char *db)
{
	char p[160];

	unlink(db);
	snprintf(p, sizeof(p), "%s-wal", db);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", db);
	unlink(p);
	snprintf(p, sizeof(p), "%s-journal", db);
	unlink(p);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	if (xts_test_tmpdir(f->dir, sizeof(f->dir), "store") != 0)
		return -1;
	snprintf(f->db, sizeof(f->db), "%s/xtsync.db", f->dir);
	if (xts_store_open(f->dir, &f->st) != 0)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	int ret;

	xts_store_close(f->st);
	ret = xts_test_rmtree(f->dir);
	free(f);
	return ret;
}

/* Run one SQL statement on a separate raw connection; returns the first
 * column of the first row as an int (or -1). */
static int
raw_int(const char *db, const char *sql)
{
	sqlite3 *h = NULL;
	sqlite3_stmt *s = NULL;
	int v = -1;

	if (sqlite3_open(db, &h) != SQLITE_OK)
		goto done;
	if (sqlite3_prepare_v2(h, sql, -1, &s, NULL) != SQLITE_OK)
		goto done;
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int(s, 0);
done:
	sqlite3_finalize(s);
	sqlite3_close(h);
	return v;
}

/* ---- open, migrations, version ------------------------------------------- */

static void
test_migrate_and_reopen(void **state)
{
	struct fx *f = *state;
	struct xts_store_job j;

	assert_true(xts_store_schema_version() >= 1);
	assert_int_equal(xts_store_user_version(f->st), xts_store_schema_version());
	{
		sqlite3_stmt *s = NULL;

		assert_int_equal(sqlite3_prepare_v2(xts_store__db(f->st), "PRAGMA journal_mode", -1, &s,
		    NULL), SQLITE_OK);
		assert_int_equal(sqlite3_step(s), SQLITE_ROW);
		assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
		sqlite3_finalize(s);
	}
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' "
	    "AND name IN ('job','source_user','link','op','member','cycle','outbox')"), 7);
	assert_int_equal(xts_store_job_ensure(f->st, "j1"), 0);
	assert_int_equal(xts_store_job_set_delta(f->st, "j1", "https://graph/delta?token=1"), 0);
	xts_store_close(f->st);
	f->st = NULL;

	assert_int_equal(xts_store_open(f->dir, &f->st), 0);
	assert_int_equal(xts_store_user_version(f->st), xts_store_schema_version());
	assert_int_equal(xts_store_job_get(f->st, "j1", &j), 0);
	assert_string_equal(j.delta_link, "https://graph/delta?token=1");
	xts_store_job_clear(&j);
	assert_int_equal(xts_store_check(f->st), 0);
}

static void
test_newer_version_refused(void **state)
{
	struct fx *f = *state;
	struct xts_store *st2 = (void *)1;
	char sql[64];

	xts_store_close(f->st);
	f->st = NULL;
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", xts_store_schema_version() + 1);
	raw_int(f->db, sql);
	assert_int_equal(raw_int(f->db, "PRAGMA user_version"), xts_store_schema_version() + 1);
	assert_int_equal(xts_store_open(f->dir, &st2), XTS_ESTORE);
	assert_null(st2);
	/* Nothing was changed by the refused open. */
	assert_int_equal(raw_int(f->db, "PRAGMA user_version"), xts_store_schema_version() + 1);
}

/* A store written by schema version 1 (WITHOUT ROWID users and links,
 * membership keyed group first) moves to the current version with its rows,
 * keys and constraints intact. */
static void
test_migrate_from_v1(void **state)
{
	struct fx *f = *state;
	struct xts_store_user_row ur;
	struct xts_store_link_row lr;
	struct xts_store_link l;
	sqlite3 *h = NULL;
	char *msg = NULL;
	long long n = 0;

	xts_store_close(f->st);
	f->st = NULL;
	rm_db_files(f->db);
	assert_int_equal(xts_store_migrations[0].version, 1);
	assert_int_equal(sqlite3_open(f->db, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, "PRAGMA journal_mode = WAL", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, xts_store_migrations[0].sql, NULL, NULL, &msg), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, "PRAGMA user_version = 1;"
	    "INSERT INTO job(name) VALUES ('j');"
	    "INSERT INTO source_user(job, source_id, attrs, in_scope, is_member, manager_id, "
	    "last_seen_cycle) VALUES ('j', 'u-2', '{\"displayName\":\"B\"}', 1, 1, 'u-1', 3), "
	    "('j', 'u-1', '{\"displayName\":\"A\"}', 0, 0, NULL, 2);"
	    "INSERT INTO link(job, source_id, target_id, exported, target_state, origin) VALUES "
	    "('j', 'u-2', 't-2', '{\"displayName\":\"B\"}', 1, 2), "
	    /* version 5: created disabled, recorded active; enabled; exported
	     * that is not JSON; soft-deleted; no exported values at all */
	    "('j', 'u-3', 't-3', '{\"accountEnabled\":false,\"displayName\":\"C\"}', 0, 0), "
	    "('j', 'u-4', 't-4', '{\"accountEnabled\":true}', 0, 0), "
	    "('j', 'u-5', 't-5', 'not json', 0, 0), "
	    "('j', 'u-6', 't-6', '{\"accountEnabled\":false}', 2, 0), "
	    "('j', 'u-7', 't-7', NULL, 0, 0);"
	    "INSERT INTO member(job, group_id, member_id) VALUES ('j', 'g1', 'u-2'), ('j', 'g2', 'u-2'), "
	    "('j', 'g1', 'u-1');"
	    /* ops 5 and 9 left, 12 deleted (AUTOINCREMENT remembers it) */
	    "INSERT INTO op(id, job, source_id, kind, payload, state, created, updated) VALUES "
	    "(5, 'j', 'u-1', 1, '{\"jobTitle\":\"x\"}', 3, 1, 1), (9, 'j', 'u-2', 0, NULL, 0, 1, 1), "
	    "(12, 'j', 'u-2', 1, NULL, 2, 1, 1);"
	    "DELETE FROM op WHERE id = 12;", NULL, NULL, &msg), SQLITE_OK);
	sqlite3_close(h);

	assert_int_equal(xts_store_open(f->dir, &f->st), 0);
	assert_int_equal(xts_store_user_version(f->st), xts_store_schema_version());
	{
		struct xts_store_job sj;

		assert_int_equal(xts_store_job_get(f->st, "j", &sj), 0);
		assert_int_equal(sj.paused, 0); /* version 4's column, on an old row */
		xts_store_job_clear(&sj);
	}
	assert_int_equal(xts_store_user_get(f->st, "j", "u-2", &ur), 0);
	assert_string_equal(json_string_value(json_object_get(ur.u.attrs, "displayName")), "B");
	assert_int_equal(ur.u.in_scope, 1);
	assert_string_equal(ur.u.manager_id, "u-1");
	assert_int_equal(ur.u.last_seen_cycle, 3);
	xts_store_user_row_clear(&ur);
	assert_int_equal(xts_store_user_get(f->st, "j", "u-1", &ur), 0);
	assert_int_equal(ur.u.is_member, 0);
	xts_store_user_row_clear(&ur);
	assert_int_equal(xts_store_user_count(f->st, "j", 0, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(xts_store_link_get(f->st, "j", "u-2", &lr), 0);
	assert_string_equal(lr.l.target_id, "t-2");
	assert_int_equal(lr.l.target_state, XTS_TARGET_DISABLED);
	assert_int_equal(lr.l.origin, XTS_LINK_ADOPTED);
	xts_store_link_row_clear(&lr);
	{
		/* version 5: the state the last write left (accountEnabled) */
		static const struct {
			const char *sid;
			int state;
		} want[] = {
			{ "u-3", XTS_TARGET_DISABLED }, { "u-4", XTS_TARGET_ACTIVE },
			{ "u-5", XTS_TARGET_ACTIVE }, { "u-6", XTS_TARGET_SOFT_DELETED },
			{ "u-7", XTS_TARGET_ACTIVE },
		};
		char sql[128];
		size_t i;

		/* read raw: u-5's exported values do not parse */
		for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
			snprintf(sql, sizeof(sql), "SELECT target_state FROM link WHERE job = 'j' AND source_id = '%s'",
				 want[i].sid);
			assert_int_equal(raw_int(f->db, sql), want[i].state);
		}
	}
	/* version 6: the ops keep their ids and rows; new ids start past the
	 * highest ever used, deleted op 12 included */
	{
		struct xts_store_op_row r;
		long long id = 0;

		assert_int_equal(xts_store_op_get(f->st, 5, &r), 0);
		assert_string_equal(r.o.source_id, "u-1");
		assert_int_equal(r.o.state, XTS_OP_FAILED);
		assert_string_equal(json_string_value(json_object_get(r.o.payload, "jobTitle")), "x");
		xts_store_op_row_clear(&r);
		assert_int_equal(xts_store_op_get(f->st, 9, &r), 0);
		xts_store_op_row_clear(&r);
		assert_int_equal(xts_store_op_add(f->st, "j", "u-1", XTS_OP_UPDATE, NULL, XTS_OP_PLANNED,
		    1, &id), 0);
		assert_int_equal(id, 13);
		assert_int_equal(raw_int(f->db, "SELECT count(*) FROM sqlite_master WHERE name IN "
		    "('op_job_state', 'op_job_source')"), 2);
		assert_int_equal(raw_int(f->db, "SELECT count(*) FROM sqlite_master WHERE name = 'op' "
		    "AND sql LIKE '%AUTOINCREMENT%'"), 0);
	}
	/* The keys still hold: one target per job, one row per source id. */
	memset(&l, 0, sizeof(l));
	l.source_id = "u-1";
	l.target_id = "t-2";
	assert_int_equal(xts_store_link_put(f->st, "j", &l), XTS_EEXIST);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM sqlite_master WHERE name IN "
	    "('source_user_key', 'link_key', 'link_target')"), 3);
	/* version 7: the sweep walks the table; no index is kept for it */
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM sqlite_master WHERE name = "
	    "'source_user_seen'"), 0);
	assert_int_equal(xts_test_member_groups(f->st, "j", "u-2", &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(xts_store_member_remove(f->st, "j", "g1", "u-1"), 0);
	assert_int_equal(xts_test_member_groups(f->st, "j", "u-1", &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM sqlite_master WHERE name = "
	    "'member_by_member'"), 0);
	/* Deleting the job still cascades. */
	assert_int_equal(xts_store_job_delete(f->st, "j"), 0);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM source_user"), 0);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM link"), 0);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM member"), 0);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM op"), 0);
	assert_int_equal(xts_store_check(f->st), 0);
}

static void
test_not_a_database(void **state)
{
	char dir[] = "/tmp/xts-store-bad-XXXXXX";
	char db[64];
	struct xts_store *st = NULL;
	FILE *fp;
	int i;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(db, sizeof(db), "%s/xtsync.db", dir);
	fp = fopen(db, "w");
	assert_non_null(fp);
	for (i = 0; i < 4096; i++)
		fputc("garbage!"[i % 8], fp);
	fclose(fp);
	assert_int_equal(xts_store_open(dir, &st), XTS_ESTORE);
	assert_null(st);
	assert_int_equal(xts_test_rmtree(dir), 0);
	assert_int_equal(xts_store_open("/nonexistent/dir/xts", &st), XTS_EIO);
	assert_null(st);
}

/* ---- file modes and snapshots --------------------------------------------- */

/* Permission bits of path, or -1 if it does not exist. */
static int
file_mode(const char *path)
{
	struct stat sb;

	if (stat(path, &sb) != 0)
		return -1;
	return (int)(sb.st_mode & 0777);
}

static long long
file_size(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
}

/* A new store is created 0600, and so are its WAL and shared-memory files
 * (SQLite gives them the main file's mode), whatever the umask lets through;
 * an existing file keeps the mode the operator gave it. */
static int saved_stderr = -1;
static FILE *capture;

/* stderr (the log) into a temporary file until stderr_capture_end */
static void
stderr_capture_begin(void)
{
	fflush(stderr);
	xts_log_set_level(XTS_LOG_WARNING);
	capture = tmpfile();
	assert_non_null(capture);
	saved_stderr = dup(2);
	assert_true(saved_stderr >= 0);
	assert_true(dup2(fileno(capture), 2) >= 0);
}

static void
stderr_capture_end(char *out, size_t size)
{
	size_t n;

	fflush(stderr);
	xts_log_set_level(XTS_LOG_CRIT);
	assert_true(dup2(saved_stderr, 2) >= 0);
	close(saved_stderr);
	rewind(capture);
	n = fread(out, 1, size - 1, capture);
	out[n] = '\0';
	fclose(capture);
	capture = NULL;
}

static void
test_file_modes(void **state)
{
	char dir[] = "/tmp/xts-store-mode-XXXXXX";
	char db[64], p[80], msg[1024];
	struct xts_store *st = NULL;
	mode_t old = umask(022);
	int fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(db, sizeof(db), "%s/xtsync.db", dir);
	assert_int_equal(xts_store_open(dir, &st), 0);
	assert_int_equal(file_mode(db), 0600);
	assert_int_equal(xts_store_job_ensure(st, "j"), 0);
	snprintf(p, sizeof(p), "%s-wal", db);
	assert_true(file_size(p) > 0);
	assert_int_equal(file_mode(p), 0600);
	snprintf(p, sizeof(p), "%s-shm", db);
	assert_int_equal(file_mode(p), 0600);
	xts_store_close(st);
	st = NULL;
	rm_db_files(db);

	/* an operator's existing (empty) file: opened as it is, not chmod'ed,
	 * with a warning on stderr since others can read it */
	fd = open(db, O_WRONLY | O_CREAT | O_EXCL, 0640);
	assert_true(fd >= 0);
	assert_int_equal(fchmod(fd, 0640), 0);
	close(fd);
	stderr_capture_begin();
	assert_int_equal(xts_store_open(dir, &st), 0);
	stderr_capture_end(msg, sizeof(msg));
	assert_non_null(strstr(msg, "(mode 0640)"));
	assert_non_null(strstr(msg, "chmod 600"));
	assert_int_equal(xts_store_job_ensure(st, "j"), 0);
	assert_int_equal(file_mode(db), 0640);
	xts_store_close(st);
	/* a private one: no warning */
	assert_int_equal(chmod(db, 0600), 0);
	stderr_capture_begin();
	assert_int_equal(xts_store_open(dir, &st), 0);
	stderr_capture_end(msg, sizeof(msg));
	assert_null(strstr(msg, "mode"));
	xts_store_close(st);
	assert_int_equal(xts_test_rmtree(dir), 0);
	umask(old);
}

/* xts_store_snapshot copies what is committed, also when it is only in the
 * WAL (the store is still open and never checkpointed), and nothing of a
 * transaction still open; the copy is 0600. */
static void
test_snapshot(void **state)
{
	struct fx *f = *state;
	char dest[] = "/tmp/xts-store-snap-XXXXXX";
	char empty[] = "/tmp/xts-store-none-XXXXXX";
	char ddb[96], wal[160], bad[96];
	struct xts_store *st = NULL;
	struct xts_store_job j;
	struct xts_store_user u = { .source_id = "u-1", .in_scope = 1, .is_member = 1 };
	struct xts_store_user_row ur;
	mode_t old = umask(022);

	assert_non_null(mkdtemp(dest));
	snprintf(ddb, sizeof(ddb), "%s/xtsync.db", dest);
	assert_int_equal(xts_store_job_ensure(f->st, "j"), 0);
	assert_int_equal(xts_store_job_set_delta(f->st, "j", "https://graph/delta?token=7"), 0);
	assert_int_equal(xts_store_user_put(f->st, "j", &u), 0);
	/* everything so far is in the WAL: the main file holds at most page 1 */
	snprintf(wal, sizeof(wal), "%s-wal", f->db);
	assert_true(file_size(wal) > 0);
	assert_true(file_size(f->db) <= 8192);
	/* a write transaction open on another connection during the copy */
	assert_int_equal(xts_store_begin(f->st), 0);
	assert_int_equal(xts_store_job_ensure(f->st, "uncommitted"), 0);

	assert_int_equal(xts_store_snapshot(f->dir, dest), 0);
	assert_int_equal(file_mode(ddb), 0600);
	assert_int_equal(xts_store_rollback(f->st), 0);
	assert_int_equal(xts_store_open(dest, &st), 0);
	assert_int_equal(xts_store_job_get(st, "j", &j), 0);
	assert_string_equal(j.delta_link, "https://graph/delta?token=7");
	xts_store_job_clear(&j);
	assert_int_equal(xts_store_user_get(st, "j", "u-1", &ur), 0);
	xts_store_user_row_clear(&ur);
	assert_int_equal(xts_store_job_get(st, "uncommitted", &j), XTS_ENOENT);
	assert_int_equal(xts_store_check(st), 0);
	xts_store_close(st);
	st = NULL;

	/* an existing destination is refused and left alone */
	assert_int_equal(xts_store_snapshot(f->dir, dest), XTS_EEXIST);
	assert_int_equal(xts_store_open(dest, &st), 0);
	assert_int_equal(xts_store_job_get(st, "j", &j), 0);
	xts_store_job_clear(&j);
	xts_store_close(st);
	assert_int_equal(xts_test_rmtree(dest), 0);

	/* no store yet: XTS_ENOENT, nothing created on either side */
	assert_non_null(mkdtemp(empty));
	snprintf(dest, sizeof(dest), "/tmp/xts-store-snap-XXXXXX");
	assert_non_null(mkdtemp(dest));
	snprintf(ddb, sizeof(ddb), "%s/xtsync.db", dest);
	assert_int_equal(xts_store_snapshot(empty, dest), XTS_ENOENT);
	assert_int_equal(file_mode(ddb), -1);
	snprintf(bad, sizeof(bad), "%s/xtsync.db", empty);
	assert_int_equal(file_mode(bad), -1);
	assert_int_equal(xts_store_snapshot(NULL, dest), XTS_EINVAL);
	assert_int_equal(xts_store_snapshot(f->dir, ""), XTS_EINVAL);
	/* not a database: XTS_ESTORE, and the partial copy is removed */
	{
		FILE *fp = fopen(bad, "w");
		int i;

		assert_non_null(fp);
		for (i = 0; i < 8192; i++)
			fputc("garbage!"[i % 8], fp);
		fclose(fp);
	}
	assert_int_equal(xts_store_snapshot(empty, dest), XTS_ESTORE);
	assert_int_equal(file_mode(ddb), -1);
	assert_int_equal(xts_test_rmtree(empty), 0);
	assert_int_equal(xts_test_rmtree(dest), 0);
	umask(old);
}

/* A store locked against readers past the retries: XTS_EBUSY after a
 * bounded wait, and no partial copy is left behind. */
static void
test_snapshot_busy(void **state)
{
	struct fx *f = *state;
	char dest[] = "/tmp/xts-store-snap-XXXXXX";
	char ddb[96];
	sqlite3 *h = NULL;
	struct timespec t0, t1;
	long long ms;

	assert_int_equal(xts_store_job_ensure(f->st, "j"), 0);
	xts_store_close(f->st);
	f->st = NULL;
	assert_non_null(mkdtemp(dest));
	snprintf(ddb, sizeof(ddb), "%s/xtsync.db", dest);
	/* WAL with locking_mode=EXCLUSIVE: the holder keeps an exclusive lock
	 * on the file that shuts out every other reader */
	assert_int_equal(sqlite3_open(f->db, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, "PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; "
	    "INSERT INTO job(name) VALUES ('held');", NULL, NULL, NULL), SQLITE_OK);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(xts_store_snapshot(f->dir, dest), XTS_EBUSY);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000LL + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	printf("# store: snapshot of a locked store gave up after %lld ms\n", ms);
	assert_true(ms < 15000);
	assert_int_equal(file_mode(ddb), -1);
	assert_int_equal(sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
	assert_int_equal(xts_store_snapshot(f->dir, dest), 0);
	assert_int_equal(xts_test_rmtree(dest), 0);
}

/* ---- jobs and cycles ------------------------------------------------------ */

static int
count_job_cb(void *arg, const struct xts_store_job *j)
{
	int *n = arg;

	assert_non_null(j->name);
	(*n)++;
	return 0;
}

/* The stored pause of job (1 or 0); the job must have a row. */
static int
stored_paused(struct xts_store *st, const char *job)
{
	struct xts_store_job j;
	int paused;

	memset(&j, 0, sizeof(j));
	assert_int_equal(xts_store_job_get(st, job, &j), 0);
	paused = j.paused;
	xts_store_job_clear(&j);
	return paused;
}

static void
test_job_crud(void **state)
{
	struct fx *f = *state;
	struct xts_store_job j;
	int n = 0;

	assert_int_equal(xts_store_job_get(f->st, "nope", &j), XTS_ENOENT);
	assert_int_equal(xts_store_job_set_delta(f->st, "nope", "x"), XTS_ENOENT);
	assert_int_equal(xts_store_job_ensure(f->st, "a"), 0);
	assert_int_equal(xts_store_job_ensure(f->st, "a"), 0); /* idempotent */
	assert_int_equal(xts_store_job_ensure(f->st, "b"), 0);
	assert_int_equal(xts_store_job_get(f->st, "a", &j), 0);
	assert_string_equal(j.name, "a");
	assert_null(j.delta_link);
	assert_int_equal(j.state, XTS_JOB_IDLE);
	assert_int_equal(j.cycle_counter, 0);
	xts_store_job_clear(&j);

	assert_int_equal(xts_store_job_set_delta(f->st, "a", "users-link"), 0);
	assert_int_equal(xts_store_job_set_groups_delta(f->st, "a", "groups-link"), 0);
	assert_int_equal(xts_store_job_set_fingerprint(f->st, "a", "sha256:abc"), 0);
	assert_int_equal(xts_store_job_set_state(f->st, "a", XTS_JOB_QUARANTINED,
	    "AzureDirectoryB2BManagementPolicyCheckFailure", 1000, 2000, 3), 0);
	assert_int_equal(xts_store_job_set_state(f->st, "a", 99, NULL, 0, 0, 0), XTS_EINVAL);
	assert_int_equal(xts_store_job_get(f->st, "a", &j), 0);
	assert_string_equal(j.delta_link, "users-link");
	assert_string_equal(j.groups_delta_link, "groups-link");
	assert_string_equal(j.schema_fingerprint, "sha256:abc");
	assert_int_equal(j.state, XTS_JOB_QUARANTINED);
	assert_string_equal(j.state_reason, "AzureDirectoryB2BManagementPolicyCheckFailure");
	assert_int_equal(j.quarantine_since, 1000);
	assert_int_equal(j.next_retry, 2000);
	assert_int_equal(j.retry_step, 3);
	xts_store_job_clear(&j);
	assert_int_equal(xts_store_job_set_delta(f->st, "a", NULL), 0);
	assert_int_equal(xts_store_job_get(f->st, "a", &j), 0);
	assert_null(j.delta_link);
	xts_store_job_clear(&j);
	/* pause: off by default, stored and cleared; on a job with no row yet
	 * (paused before its first cycle) the row is created. */
	assert_int_equal(stored_paused(f->st, "a"), 0);
	assert_int_equal(xts_store_job_set_paused(f->st, "a", 1), 0);
	assert_int_equal(stored_paused(f->st, "a"), 1);
	assert_int_equal(xts_store_job_get(f->st, "a", &j), 0);
	assert_int_equal(j.state, XTS_JOB_QUARANTINED); /* the state is not touched */
	xts_store_job_clear(&j);
	assert_int_equal(xts_store_job_set_paused(f->st, "a", 0), 0);
	assert_int_equal(stored_paused(f->st, "a"), 0);
	assert_int_equal(xts_store_job_set_paused(f->st, "c", 1), 0);
	assert_int_equal(stored_paused(f->st, "c"), 1);
	assert_int_equal(xts_store_job_delete(f->st, "c"), 0);

	assert_int_equal(xts_store_job_foreach(f->st, count_job_cb, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(xts_job_state_name(XTS_JOB_DELETIONS_HELD), "deletions-held");
	assert_int_equal(xts_job_state_parse("quarantined"), XTS_JOB_QUARANTINED);
	assert_int_equal(xts_job_state_parse("bogus"), -1);

	/* Deleting a job cascades to its rows. */
	{
		struct xts_store_user u = { .source_id = "u1", .in_scope = 1, .is_member = 1 };
		struct xts_store_link l = { .source_id = "u1", .target_id = "t1" };

		assert_int_equal(xts_store_user_put(f->st, "b", &u), 0);
		assert_int_equal(xts_store_link_put(f->st, "b", &l), 0);
	}
	assert_int_equal(xts_store_job_delete(f->st, "b"), 0);
	assert_int_equal(xts_store_job_delete(f->st, "b"), XTS_ENOENT);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM source_user"), 0);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM link"), 0);
}

struct cyc_seen {
	long long ids[8];
	int n;
};

static int
cycle_cb(void *arg, const struct xts_store_cycle *c)
{
	struct cyc_seen *s = arg;

	if (s->n < 8)
		s->ids[s->n] = c->id;
	s->n++;
	return 0;
}

static void
test_cycles(void **state)
{
	struct fx *f = *state;
	struct xts_store_job j;
	struct cyc_seen seen = { { 0 }, 0 };
	long long c1 = 0, c2 = 0, c3 = 0;
	json_t *counts = json_pack("{s:i,s:i}", "created", 3, "failed", 1);

	assert_int_equal(xts_store_cycle_begin(f->st, "j", XTS_CYCLE_INITIAL, 100, &c1), 0);
	assert_int_equal(c1, 1);
	assert_int_equal(xts_store_cycle_end(f->st, "j", c1, 150, "success", counts), 0);
	assert_int_equal(xts_store_cycle_begin(f->st, "j", XTS_CYCLE_INCREMENTAL, 200, &c2), 0);
	assert_int_equal(c2, 2);
	assert_int_equal(xts_store_cycle_begin(f->st, "j", XTS_CYCLE_INCREMENTAL, 300, &c3), 0);
	assert_int_equal(c3, 3);
	assert_int_equal(xts_store_cycle_begin(f->st, "j", 7, 300, &c3), XTS_EINVAL);
	assert_int_equal(xts_store_cycle_end(f->st, "j", 99, 1, "x", NULL), XTS_ENOENT);
	assert_int_equal(xts_store_job_get(f->st, "j", &j), 0);
	assert_int_equal(j.cycle_counter, 3);
	assert_int_equal(j.last_cycle_start, 300);
	assert_int_equal(j.last_cycle_end, 150);
	assert_string_equal(j.last_cycle_result, "success");
	assert_non_null(j.counts);
	assert_int_equal(json_integer_value(json_object_get(j.counts, "created")), 3);
	xts_store_job_clear(&j);

	assert_int_equal(xts_store_cycle_foreach(f->st, "j", 0, cycle_cb, &seen), 0);
	assert_int_equal(seen.n, 3);
	assert_int_equal(seen.ids[0], 3); /* newest first */
	assert_int_equal(seen.ids[2], 1);
	seen.n = 0;
	assert_int_equal(xts_store_cycle_foreach(f->st, "j", 2, cycle_cb, &seen), 0);
	assert_int_equal(seen.n, 2);
	json_decref(counts);
}

/* What a long-running daemon's store sheds: done ops older than a day, cycle
 * rows but the last 1000, mails sent more than 35 days ago; nothing else. */
static void
test_housekeep(void **state)
{
	struct fx *f = *state;
	long long now = xts_wall_ms(), id, open_id, mail_old, mail_new, mail_unsent, c, n = -1;
	int i, more = -1;

	assert_int_equal(xts_store_job_ensure(f->st, "j"), 0);
	assert_int_equal(xts_store_job_ensure(f->st, "k"), 0);
	assert_int_equal(xts_store_op_add(f->st, "j", "s1", XTS_OP_UPDATE, NULL, XTS_OP_PLANNED, 1, &id), 0);
	assert_int_equal(xts_store_op_start(f->st, id), 0);
	assert_int_equal(xts_store_op_done(f->st, id), 0);
	assert_int_equal(xts_store_op_add(f->st, "j", "s2", XTS_OP_UPDATE, NULL, XTS_OP_PLANNED, 1, &open_id), 0);
	assert_int_equal(xts_store_op_add(f->st, "k", "s3", XTS_OP_UPDATE, NULL, XTS_OP_PLANNED, 1, &id), 0);
	assert_int_equal(xts_store_op_cancel(f->st, id), 0); /* done, but job k's */
	for (i = 0; i < XTS_STORE_KEEP_CYCLES + 5; i++)
		assert_int_equal(xts_store_cycle_begin(f->st, "j", XTS_CYCLE_INCREMENTAL, 100 + i, &c), 0);
	assert_int_equal(xts_store_cycle_begin(f->st, "k", XTS_CYCLE_INCREMENTAL, 100, &c), 0);
	assert_int_equal(xts_store_outbox_add(f->st, "j", "q:1", "a@x", "S", "B", 1, &mail_old), 0);
	assert_int_equal(xts_store_outbox_add(f->st, "j", "q:2", "a@x", "S", "B", 1, &mail_new), 0);
	assert_int_equal(xts_store_outbox_add(f->st, "j", "q:3", "a@x", "S", "B", 1, &mail_unsent), 0);
	assert_int_equal(xts_store_outbox_mark_sent(f->st, mail_old, now - XTS_STORE_KEEP_SENT_MS - 1000), 0);
	assert_int_equal(xts_store_outbox_mark_sent(f->st, mail_new, now - 1000), 0);

	/* today: nothing is old enough but the surplus cycle rows and the old mail */
	assert_int_equal(xts_store_housekeep(f->st, "j", now, &n, &more), 0);
	assert_int_equal(n, 5 + 1);
	assert_int_equal(more, 0);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM cycle WHERE job = 'j'"), XTS_STORE_KEEP_CYCLES);
	assert_int_equal(raw_int(f->db, "SELECT min(id) FROM cycle WHERE job = 'j'"), 6);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM cycle WHERE job = 'k'"), 1);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM outbox"), 2);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM op WHERE state = 2"), 2);
	/* two days later: j's done op goes; its open op, and k's done op, stay */
	assert_int_equal(xts_store_housekeep(f->st, "j", now + 2 * XTS_STORE_KEEP_DONE_MS, &n, &more), 0);
	assert_int_equal(n, 1);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM op WHERE job = 'j'"), 1);
	assert_int_equal(raw_int(f->db, "SELECT id FROM op WHERE job = 'j'"), open_id);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM op WHERE job = 'k'"), 1);
	/* the unsent mail is never dropped */
	assert_int_equal(xts_store_housekeep(f->st, "j", now + 2 * XTS_STORE_KEEP_SENT_MS, &n, NULL), 0);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM outbox"), 1);
	assert_int_equal(raw_int(f->db, "SELECT id FROM outbox"), mail_unsent);
	assert_int_equal(xts_store_housekeep(f->st, NULL, now, &n, &more), XTS_EINVAL);

	/* a backlog (a store upgraded with millions of done ops) goes in chunks,
	 * XTS_STORE_PURGE_CHUNKS of them a call, and says there is more */
	raw_int(f->db, "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k "
	    "WHERE i < 50001) INSERT INTO op(id, job, source_id, kind, state, created, updated) "
	    "SELECT 1000000 + i, 'j', 's' || i, 1, 2, 1, 1 FROM k");
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM op WHERE job = 'j'"), 50002);
	assert_int_equal(xts_store_housekeep(f->st, "j", now, &n, &more), 0);
	assert_int_equal(n, XTS_STORE_PURGE_CHUNK * XTS_STORE_PURGE_CHUNKS);
	assert_int_equal(more, 1);
	assert_int_equal(xts_store_housekeep(f->st, "j", now, &n, &more), 0);
	assert_int_equal(n, 50001 - XTS_STORE_PURGE_CHUNK * XTS_STORE_PURGE_CHUNKS);
	assert_int_equal(more, 0);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM op WHERE job = 'j'"), 1);
}

/* ---- source users --------------------------------------------------------- */

struct user_walk {
	int n;
	char last[64];
	int ordered;
	struct xts_store *st;
	int write_during;
};

static int
user_cb(void *arg, const struct xts_store_user *u)
{
	struct user_walk *w = arg;

	if (w->last[0] && strcmp(w->last, u->source_id) >= 0)
		w->ordered = 0;
	snprintf(w->last, sizeof(w->last), "%s", u->source_id);
	w->n++;
	if (w->write_during) {
		/* Writing from inside the walk must work (no statement is open). */
		struct xts_store_user c = *u;

		c.last_seen_cycle = 42;
		if (xts_store_user_put(w->st, "j", &c) != 0)
			return -1;
	}
	return 0;
}

static void
test_users(void **state)
{
	struct fx *f = *state;
	struct xts_store_user_row r;
	struct user_walk w;
	json_t *attrs = json_pack("{s:s,s:[s,s]}", "displayName", "Adele Vance", "otherMails",
	    "a@x", "b@x");
	char id[32];
	long long n = 0;
	int i;

	assert_int_equal(xts_store_job_ensure(f->st, "j"), 0);
	{
		struct xts_store_user u = { .source_id = "u-1", .attrs = attrs, .in_scope = 1,
			.scope_reason = "group", .is_member = 1, .manager_id = "m-1",
			.last_seen_cycle = 5 };

		assert_int_equal(xts_store_user_put(f->st, "j", &u), 0);
		/* A user of an unknown job violates the foreign key. */
		assert_int_equal(xts_store_user_put(f->st, "nojob", &u), XTS_EINVAL);
	}
	assert_int_equal(xts_store_user_get(f->st, "j", "u-1", &r), 0);
	assert_string_equal(r.u.source_id, "u-1");
	assert_true(json_equal(r.u.attrs, attrs));
	assert_int_equal(r.u.in_scope, 1);
	assert_string_equal(r.u.scope_reason, "group");
	assert_int_equal(r.u.is_member, 1);
	assert_string_equal(r.u.manager_id, "m-1");
	assert_int_equal(r.u.deleted, 0);
	assert_int_equal(r.u.last_seen_cycle, 5);
	xts_store_user_row_clear(&r);
	{
		/* The names alone: displayName; no userPrincipalName in attrs */
		json_t *nm = NULL;

		assert_int_equal(xts_store_user_identity(f->st, "j", "u-1", &nm), 0);
		assert_int_equal(json_object_size(nm), 1);
		assert_string_equal(json_string_value(json_object_get(nm, "displayName")), "Adele Vance");
		json_decref(nm);
		assert_int_equal(xts_store_user_identity(f->st, "j", "u-9", &nm), XTS_ENOENT);
		assert_null(nm);
		/* attrs that are not JSON name nobody (not an error of the statement) */
		assert_int_equal(raw_int(f->db, "UPDATE source_user SET attrs = '{\"displayName\":' "
		    "WHERE source_id = 'u-1' RETURNING 1"), 1);
		assert_int_equal(xts_store_user_identity(f->st, "j", "u-1", &nm), XTS_ENOENT);
		assert_int_equal(raw_int(f->db, "UPDATE source_user SET attrs = "
		    "'{\"displayName\":\"Ad\\u00e8le\",\"userPrincipalName\":\"adele@x\",\"mail\":\"m\"}' "
		    "WHERE source_id = 'u-1' RETURNING 1"), 1);
		assert_int_equal(xts_store_user_identity(f->st, "j", "u-1", &nm), 0);
		assert_int_equal(json_object_size(nm), 2);
		assert_string_equal(json_string_value(json_object_get(nm, "displayName")), "Ad\xc3\xa8le");
		assert_string_equal(json_string_value(json_object_get(nm, "userPrincipalName")), "adele@x");
		json_decref(nm);
	}

	{
		/* Replacing a row stores every field, deleted included. */
		struct xts_store_user u = { .source_id = "u-1", .attrs = attrs, .deleted = 1,
			.last_seen_cycle = 5 };

		assert_int_equal(xts_store_user_put(f->st, "j", &u), 0);
		assert_int_equal(xts_store_user_get(f->st, "j", "u-1", &r), 0);
		assert_int_equal(r.u.deleted, 1);
		assert_int_equal(r.u.in_scope, 0);
		assert_null(r.u.scope_reason);
		xts_store_user_row_clear(&r);
		u.deleted = 0;
		u.in_scope = 1;
		assert_int_equal(xts_store_user_put(f->st, "j", &u), 0);
		assert_int_equal(raw_int(f->db, "SELECT count(*) FROM source_user"), 1);
	}
	assert_int_equal(xts_store_user_mark_deleted(f->st, "j", "u-1", 6), 0);
	assert_int_equal(xts_store_user_get(f->st, "j", "u-1", &r), 0);
	assert_int_equal(r.u.deleted, 1);
	assert_int_equal(r.u.last_seen_cycle, 6);
	xts_store_user_row_clear(&r);
	assert_int_equal(xts_store_user_count(f->st, "j", 1, &n), 0);
	assert_int_equal(n, 0); /* deleted users are not in scope */
	assert_int_equal(xts_store_user_remove(f->st, "j", "u-1"), 0);
	assert_int_equal(xts_store_user_remove(f->st, "j", "u-1"), XTS_ENOENT);
	assert_int_equal(xts_store_user_get(f->st, "j", "u-1", &r), XTS_ENOENT);
	assert_int_equal(xts_store_user_mark_deleted(f->st, "j", "u-1", 6), XTS_ENOENT);

	/* 600 users: more than two keyset pages. Even ids seen in cycle 2. */
	assert_int_equal(xts_store_job_ensure(f->st, "k"), 0);
	assert_int_equal(xts_store_begin(f->st), 0);
	for (i = 0; i < 600; i++) {
		struct xts_store_user u = { .source_id = id, .in_scope = i % 3 != 0, .is_member = 1,
			.last_seen_cycle = i % 2 ? 1 : 2 };

		snprintf(id, sizeof(id), "user-%05d", i);
		assert_int_equal(xts_store_user_put(f->st, "j", &u), 0);
		if (i % 100 == 0) {
			/* another job's rows in between, never seen: not j's */
			snprintf(id, sizeof(id), "other-%05d", i);
			u.last_seen_cycle = 1;
			assert_int_equal(xts_store_user_put(f->st, "k", &u), 0);
		}
	}
	assert_int_equal(xts_store_commit(f->st), 0);
	assert_int_equal(xts_store_user_count(f->st, "j", 0, &n), 0);
	assert_int_equal(n, 600);
	memset(&w, 0, sizeof(w));
	assert_int_equal(xts_store_user_foreach(f->st, "k", 2, user_cb, &w), 0);
	assert_int_equal(w.n, 6);
	assert_int_equal(xts_store_user_count(f->st, "j", 1, &n), 0);
	assert_int_equal(n, 400);

	memset(&w, 0, sizeof(w));
	w.ordered = 1;
	assert_int_equal(xts_store_user_foreach(f->st, "j", 0, user_cb, &w), 0);
	assert_int_equal(w.n, 600);
	assert_true(w.ordered);
	assert_string_equal(w.last, "user-00599");

	memset(&w, 0, sizeof(w));
	w.ordered = 1;
	assert_int_equal(xts_store_user_foreach(f->st, "j", 2, user_cb, &w), 0);
	assert_int_equal(w.n, 300); /* the odd ones were last seen in cycle 1 */
	assert_string_equal(w.last, "user-00599"); /* rowid order within a cycle */

	/* The seen walk with writes that move rows out of (and within) the
	 * range: each wanted row is visited exactly once. */
	assert_int_equal(xts_store_begin(f->st), 0);
	for (i = 0; i < 600; i += 2) {
		struct xts_store_user u = { .source_id = id, .is_member = 1, .last_seen_cycle = 1 + i % 4 };

		snprintf(id, sizeof(id), "user-%05d", i);
		assert_int_equal(xts_store_user_put(f->st, "j", &u), 0);
	}
	assert_int_equal(xts_store_commit(f->st), 0);
	memset(&w, 0, sizeof(w));
	w.st = f->st;
	w.write_during = 1;
	assert_int_equal(xts_store_user_foreach(f->st, "j", 3, user_cb, &w), 0);
	assert_int_equal(w.n, 450); /* 300 odd in cycle 1, 150 even in cycle 1 */
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM source_user WHERE last_seen_cycle = 42"),
	    450);

	/* Writes from the callback: every row touched once, walk completes. */
	memset(&w, 0, sizeof(w));
	w.ordered = 1;
	w.st = f->st;
	w.write_during = 1;
	assert_int_equal(xts_store_user_foreach(f->st, "j", 0, user_cb, &w), 0);
	assert_int_equal(w.n, 600);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM source_user WHERE last_seen_cycle = 42"),
	    600);
	json_decref(attrs);
}

/* ---- links ---------------------------------------------------------------- */

static int
link_count_cb(void *arg, const struct xts_store_link *l)
{
	(void)l;
	(*(int *)arg)++;
	return 0;
}

static int
stop_cb(void *arg, const struct xts_store_link *l)
{
	(void)l;
	(*(int *)arg)++;
	return 7;
}

/* The link of sid holds exported (NULL: none), target state and deleted_at. */
static void
link_is(struct fx *f, const char *sid, const json_t *exported, int state, long long deleted_at)
{
	struct xts_store_link_row r;

	assert_int_equal(xts_store_link_get(f->st, "j", sid, &r), 0);
	if (exported == NULL)
		assert_null(r.l.exported);
	else
		assert_true(json_equal(r.l.exported, (json_t *)exported));
	assert_int_equal(r.l.target_state, state);
	assert_int_equal(r.l.deleted_at, deleted_at);
	xts_store_link_row_clear(&r);
}

static void
test_links(void **state)
{
	struct fx *f = *state;
	struct xts_store_link_row r;
	json_t *exp = json_pack("{s:s}", "displayName", "Adele");
	int n = 0;

	assert_int_equal(xts_store_job_ensure(f->st, "j"), 0);
	{
		struct xts_store_link l = { .source_id = "s1", .target_id = "t1", .exported = exp,
			.origin = XTS_LINK_CREATED };
		struct xts_store_link l2 = { .source_id = "s2", .target_id = "t1" };
		struct xts_store_link bad = { .source_id = "s3", .target_id = "t3", .origin = 9 };

		assert_int_equal(xts_store_link_put(f->st, "j", &l), 0);
		/* t1 is already linked to s1 in this job. */
		assert_int_equal(xts_store_link_put(f->st, "j", &l2), XTS_EEXIST);
		assert_int_equal(xts_store_link_put(f->st, "j", &bad), XTS_EINVAL);
	}
	assert_int_equal(xts_store_link_get(f->st, "j", "s1", &r), 0);
	assert_string_equal(r.l.target_id, "t1");
	assert_true(json_equal(r.l.exported, exp));
	assert_int_equal(r.l.origin, XTS_LINK_CREATED);
	assert_int_equal(r.l.target_state, XTS_TARGET_ACTIVE);
	assert_true(r.l.created > 0);
	xts_store_link_row_clear(&r);
	assert_int_equal(xts_store_link_get_by_target(f->st, "j", "t1", &r), 0);
	assert_string_equal(r.l.source_id, "s1");
	xts_store_link_row_clear(&r);
	assert_int_equal(xts_store_link_get_by_target(f->st, "j", "t9", &r), XTS_ENOENT);
	{
		char *tid = NULL;

		assert_int_equal(xts_store_link_target(f->st, "j", "s1", &tid), 0);
		assert_string_equal(tid, "t1");
		xts_free(tid);
		assert_int_equal(xts_store_link_target(f->st, "j", "s9", &tid), XTS_ENOENT);
		assert_null(tid);
	}

	assert_int_equal(xts_store_link_set_exported(f->st, "j", "s1", NULL), 0);
	assert_int_equal(xts_store_link_set_target_state(f->st, "j", "s1", XTS_TARGET_SOFT_DELETED,
	    12345), 0);
	assert_int_equal(xts_store_link_set_target_state(f->st, "j", "s1", 5, 0), XTS_EINVAL);
	assert_int_equal(xts_store_link_set_exported(f->st, "j", "zz", exp), XTS_ENOENT);
	assert_int_equal(xts_store_link_get(f->st, "j", "s1", &r), 0);
	assert_null(r.l.exported);
	assert_int_equal(r.l.target_state, XTS_TARGET_SOFT_DELETED);
	assert_int_equal(r.l.deleted_at, 12345);
	xts_store_link_row_clear(&r);
	/* link_record: the values alone, the state alone, both, neither */
	assert_int_equal(xts_store_link_record(f->st, "j", "s1", true, exp, -1, 0), 0);
	link_is(f, "s1", exp, XTS_TARGET_SOFT_DELETED, 12345);
	assert_int_equal(xts_store_link_record(f->st, "j", "s1", false, NULL, XTS_TARGET_DISABLED, 0), 0);
	link_is(f, "s1", exp, XTS_TARGET_DISABLED, 0);
	assert_int_equal(xts_store_link_record(f->st, "j", "s1", true, NULL, XTS_TARGET_SOFT_DELETED, 777), 0);
	link_is(f, "s1", NULL, XTS_TARGET_SOFT_DELETED, 777);
	assert_int_equal(xts_store_link_record(f->st, "j", "zz", true, exp, -1, 0), XTS_ENOENT);
	assert_int_equal(xts_store_link_record(f->st, "j", "s1", false, NULL, 9, 0), XTS_EINVAL);

	{
		struct xts_store_link l = { .source_id = "s2", .target_id = "t2",
			.origin = XTS_LINK_MATCHED };

		assert_int_equal(xts_store_link_put(f->st, "j", &l), 0);
	}
	assert_int_equal(xts_store_link_foreach(f->st, "j", link_count_cb, &n), 0);
	assert_int_equal(n, 2);
	n = 0;
	assert_int_equal(xts_store_link_foreach(f->st, "j", stop_cb, &n), 7);
	assert_int_equal(n, 1);
	assert_int_equal(xts_store_link_remove(f->st, "j", "s2"), 0);
	assert_int_equal(xts_store_link_remove(f->st, "j", "s2"), XTS_ENOENT);
	json_decref(exp);
}

/* ---- pending operations --------------------------------------------------- */

static void
assert_op_state(struct xts_store *st, long long id, int state, int attempts)
{
	struct xts_store_op_row r;

	assert_int_equal(xts_store_op_get(st, id, &r), 0);
	assert_int_equal(r.o.state, state);
	assert_int_equal(r.o.attempts, attempts);
	xts_store_op_row_clear(&r);
}

static int
op_ids_cb(void *arg, const struct xts_store_op *o)
{
	long long *ids = arg;

	ids[++ids[0]] = o->id;
	return 0;
}

/* Op ids come from blocks reserved in id_block (migration 6): an id is
 * never handed out twice, not after the highest op was deleted, not after a
 * reopen, and not by a handle whose reservation was rolled back (a
 * transaction or a savepoint) while another handle reserved the same ids. */
static long long
add_op(struct xts_store *st, const char *sid)
{
	long long id = 0;

	assert_int_equal(xts_store_op_add(st, "j", sid, XTS_OP_UPDATE, NULL, XTS_OP_PLANNED, 1, &id), 0);
	assert_true(id > 0);
	return id;
}

static void
test_op_ids_unique(void **state)
{
	struct fx *f = *state;
	struct xts_store *st2 = NULL;
	long long a, b, c, d, e, g, h;

	assert_int_equal(xts_store_job_ensure(f->st, "j"), 0);
	a = add_op(f->st, "s1");
	b = add_op(f->st, "s2");
	assert_int_equal(b, a + 1);
	/* restart: planned ops go, the highest id among them */
	assert_int_equal(xts_store_reset_job(f->st, "j"), 0);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM op"), 0);
	c = add_op(f->st, "s3");
	assert_true(c > b);
	xts_store_close(f->st);
	f->st = NULL;
	assert_int_equal(xts_store_open(f->dir, &f->st), 0);
	d = add_op(f->st, "s4");
	assert_true(d > c);

	/* A rolled-back transaction takes its reservation with it; a second
	 * handle then reserves the same block. The first must not go on
	 * using it. */
	xts_store_close(f->st);
	f->st = NULL;
	assert_int_equal(xts_store_open(f->dir, &f->st), 0);
	assert_int_equal(xts_store_begin(f->st), 0);
	e = add_op(f->st, "s5");
	assert_true(e > d);
	assert_int_equal(xts_store_rollback(f->st), 0);
	assert_int_equal(xts_store_open(f->dir, &st2), 0);
	g = add_op(st2, "s6");
	h = add_op(st2, "s7");
	assert_int_equal(g, e); /* e was never stored: the same block again */
	assert_true(add_op(f->st, "s8") > h);

	/* The same through a savepoint (ROLLBACK TO calls no rollback hook). */
	xts_store_close(st2);
	st2 = NULL;
	xts_store_close(f->st);
	f->st = NULL;
	assert_int_equal(xts_store_open(f->dir, &f->st), 0);
	assert_int_equal(xts_store__sp_begin(f->st), 0);
	e = add_op(f->st, "s9");
	assert_int_equal(xts_store__sp_end(f->st, 0), 0);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM op WHERE source_id = 's9'"), 0);
	assert_int_equal(xts_store_open(f->dir, &st2), 0);
	g = add_op(st2, "s10");
	h = add_op(st2, "s11");
	assert_int_equal(g, e);
	assert_true(add_op(f->st, "s12") > h);
	xts_store_close(st2);
	assert_int_equal(raw_int(f->db, "SELECT count(DISTINCT id) = count(*) FROM op"), 1);

	/* id_block's row removed by hand: the next block starts past the
	 * highest op id instead of failing every insert */
	xts_store_close(f->st);
	f->st = NULL;
	raw_int(f->db, "DELETE FROM id_block");
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM id_block"), 0);
	assert_int_equal(xts_store_open(f->dir, &f->st), 0);
	e = add_op(f->st, "s13");
	assert_int_equal(e, raw_int(f->db, "SELECT max(id) FROM op WHERE source_id <> 's13'") + 1);
	assert_int_equal(raw_int(f->db, "SELECT next FROM id_block WHERE name = 'op'"), e + 1024);
	assert_int_equal(xts_store_check(f->st), 0);
}

static void
test_op_transitions(void **state)
{
	struct fx *f = *state;
	struct xts_store_op_row r;
	json_t *payload = json_pack("{s:s}", "invitedUserEmailAddress", "adele@contoso.example");
	long long id = 0, id2 = 0, n = 0, ids[16] = { 0 };

	assert_int_equal(xts_store_job_ensure(f->st, "j"), 0);
	assert_int_equal(xts_store_op_add(f->st, "j", "s1", XTS_OP_CREATE, payload, XTS_OP_INFLIGHT,
	    1, &id), XTS_EINVAL);
	assert_int_equal(xts_store_op_add(f->st, "j", "s1", XTS_OP_CREATE, payload, XTS_OP_PLANNED,
	    1, &id), 0);
	assert_true(id > 0);
	assert_int_equal(xts_store_op_get(f->st, id, &r), 0);
	assert_string_equal(r.o.source_id, "s1");
	assert_int_equal(r.o.kind, XTS_OP_CREATE);
	assert_true(json_equal(r.o.payload, payload));
	assert_int_equal(r.o.cycle_id, 1);
	xts_store_op_row_clear(&r);

	/* planned: done/fail/requeue are refused */
	assert_int_equal(xts_store_op_done(f->st, id), XTS_EINVAL);
	assert_int_equal(xts_store_op_fail(f->st, id, XTS_EGRAPH, "x", 0), XTS_EINVAL);
	assert_int_equal(xts_store_op_requeue(f->st, id), XTS_EINVAL);
	/* planned -> in-flight -> failed (escrow) -> in-flight -> done */
	assert_int_equal(xts_store_op_start(f->st, id), 0);
	assert_op_state(f->st, id, XTS_OP_INFLIGHT, 1);
	assert_int_equal(xts_store_op_start(f->st, id), XTS_EINVAL);
	assert_int_equal(xts_store_op_set_payload(f->st, id, payload), XTS_EINVAL);
	assert_int_equal(xts_store_op_fail(f->st, id, XTS_ETHROTTLED, "Request_ThrottledTemporarily",
	    5000), 0);
	assert_int_equal(xts_store_op_get(f->st, id, &r), 0);
	assert_int_equal(r.o.state, XTS_OP_FAILED);
	assert_int_equal(r.o.last_error, XTS_ETHROTTLED);
	assert_string_equal(r.o.last_error_msg, "Request_ThrottledTemporarily");
	assert_int_equal(r.o.next_attempt, 5000);
	xts_store_op_row_clear(&r);
	/* due filter: not due at 4999, due at 5000 */
	assert_int_equal(xts_store_op_foreach(f->st, "j", XTS_OP_FAILED, 4999, op_ids_cb, ids), 0);
	assert_int_equal(ids[0], 0);
	assert_int_equal(xts_store_op_foreach(f->st, "j", XTS_OP_FAILED, 5000, op_ids_cb, ids), 0);
	assert_int_equal(ids[0], 1);
	assert_int_equal(ids[1], id);
	assert_int_equal(xts_store_op_start(f->st, id), 0);
	assert_op_state(f->st, id, XTS_OP_INFLIGHT, 2);
	/* crash recovery: in-flight -> planned */
	assert_int_equal(xts_store_op_requeue(f->st, id), 0);
	assert_op_state(f->st, id, XTS_OP_PLANNED, 2);
	assert_int_equal(xts_store_op_start(f->st, id), 0);
	assert_int_equal(xts_store_op_done(f->st, id), 0);
	assert_op_state(f->st, id, XTS_OP_DONE, 3);
	assert_int_equal(xts_store_op_done(f->st, id), XTS_EINVAL);
	assert_int_equal(xts_store_op_cancel(f->st, id), XTS_EINVAL);
	assert_int_equal(xts_store_op_start(f->st, 999999), XTS_ENOENT);
	assert_int_equal(xts_store_op_get(f->st, 999999, &r), XTS_ENOENT);

	/* find_open and cancel */
	assert_int_equal(xts_store_op_find_open(f->st, "j", "s1", -1, &r), XTS_ENOENT);
	assert_int_equal(xts_store_op_add(f->st, "j", "s1", XTS_OP_UPDATE, NULL, XTS_OP_PLANNED, 2,
	    &id2), 0);
	assert_int_equal(xts_store_op_find_open(f->st, "j", "s1", XTS_OP_DELETE, &r), XTS_ENOENT);
	assert_int_equal(xts_store_op_find_open(f->st, "j", "s1", XTS_OP_UPDATE, &r), 0);
	assert_int_equal(r.o.id, id2);
	assert_null(r.o.payload);
	xts_store_op_row_clear(&r);
	assert_int_equal(xts_store_op_find_open(f->st, "j", "s1", -1, &r), 0);
	assert_int_equal(r.o.id, id2);
	xts_store_op_row_clear(&r);
	assert_int_equal(xts_store_op_set_payload(f->st, id2, payload), 0);
	assert_int_equal(xts_store_op_cancel(f->st, id2), 0);
	assert_op_state(f->st, id2, XTS_OP_DONE, 0);
	assert_int_equal(xts_store_op_count(f->st, "j", XTS_OP_DONE, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(xts_store_op_purge_done(f->st, "j", xts_wall_ms() + 1000), 0);
	assert_int_equal(xts_store_op_count(f->st, "j", XTS_OP_DONE, &n), 0);
	assert_int_equal(n, 0);

	/* a create that succeeded becomes its user's manager op, planned afresh:
	 * only from in-flight, only a create */
	{
		json_t *m = json_pack("{s:s}", "manager", "boss");
		long long c = 0;
		assert_non_null(m);
		assert_int_equal(xts_store_op_add(f->st, "j", "s2", XTS_OP_CREATE, payload, XTS_OP_PLANNED, 3,
		    &c), 0);
		assert_int_equal(xts_store_op_to_manager(f->st, c, m), XTS_EINVAL);
		assert_int_equal(xts_store_op_start(f->st, c), 0);
		assert_int_equal(xts_store_op_fail(f->st, c, XTS_EGRAPH, "x", 5000), 0);
		assert_int_equal(xts_store_op_start(f->st, c), 0);
		assert_int_equal(xts_store_op_to_manager(f->st, c, m), 0);
		assert_int_equal(xts_store_op_get(f->st, c, &r), 0);
		assert_int_equal(r.o.kind, XTS_OP_MANAGER);
		assert_int_equal(r.o.state, XTS_OP_PLANNED);
		assert_int_equal(r.o.attempts, 0);
		assert_int_equal(r.o.next_attempt, 0);
		assert_int_equal(r.o.last_error, 0);
		assert_null(r.o.last_error_msg);
		assert_true(json_equal(r.o.payload, m));
		xts_store_op_row_clear(&r);
		assert_int_equal(xts_store_op_find_open(f->st, "j", "s2", XTS_OP_MANAGER, &r), 0);
		assert_int_equal(r.o.id, c);
		xts_store_op_row_clear(&r);
		assert_int_equal(xts_store_op_find_open(f->st, "j", "s2", XTS_OP_CREATE, &r), XTS_ENOENT);
		/* a manager op in flight is not a create */
		assert_int_equal(xts_store_op_start(f->st, c), 0);
		assert_int_equal(xts_store_op_to_manager(f->st, c, m), XTS_EINVAL);
		assert_int_equal(xts_store_op_to_manager(f->st, 999999, m), XTS_ENOENT);
		assert_int_equal(xts_store_op_done(f->st, c), 0);
		json_decref(m);
	}

	assert_string_equal(xts_op_kind_name(XTS_OP_MANAGER), "manager");
	assert_int_equal(xts_op_kind_parse("restore"), XTS_OP_RESTORE);
	assert_string_equal(xts_op_state_name(XTS_OP_INFLIGHT), "in-flight");
	assert_int_equal(xts_op_state_parse("staged"), XTS_OP_STAGED);
	assert_int_equal(xts_op_state_parse("nope"), -1);
	json_decref(payload);
}

static void
test_staged_release_once(void **state)
{
	struct fx *f = *state;
	long long n = 0, released = -1, ids[16] = { 0 };
	char sid[16];
	int i;

	assert_int_equal(xts_store_job_ensure(f->st, "j"), 0);
	assert_int_equal(xts_store_job_ensure(f->st, "other"), 0);
	for (i = 0; i < 5; i++) {
		snprintf(sid, sizeof(sid), "gone-%d", i);
		assert_int_equal(xts_store_op_add(f->st, "j", sid, XTS_OP_DELETE, NULL, XTS_OP_STAGED, 3,
		    NULL), 0);
	}
	assert_int_equal(xts_store_op_add(f->st, "other", "x", XTS_OP_DELETE, NULL, XTS_OP_STAGED, 1,
	    NULL), 0);
	assert_int_equal(xts_store_op_count(f->st, "j", XTS_OP_STAGED, &n), 0);
	assert_int_equal(n, 5);
	assert_int_equal(xts_store_op_release_staged(f->st, "j", &released), 0);
	assert_int_equal(released, 5);
	assert_int_equal(xts_store_op_count(f->st, "j", XTS_OP_PLANNED, &n), 0);
	assert_int_equal(n, 5);
	/* Released exactly once. */
	assert_int_equal(xts_store_op_release_staged(f->st, "j", &released), 0);
	assert_int_equal(released, 0);
	assert_int_equal(xts_store_op_count(f->st, "j", XTS_OP_PLANNED, &n), 0);
	assert_int_equal(n, 5);
	/* The other job's staged deletion is untouched. */
	assert_int_equal(xts_store_op_count(f->st, "other", XTS_OP_STAGED, &n), 0);
	assert_int_equal(n, 1);
	/* Walk the released set in order. */
	assert_int_equal(xts_store_op_foreach(f->st, "j", XTS_OP_PLANNED, 0, op_ids_cb, ids), 0);
	assert_int_equal(ids[0], 5);
	assert_true(ids[1] < ids[5]);
	/* A newly staged set needs a new release. */
	assert_int_equal(xts_store_op_add(f->st, "j", "gone-9", XTS_OP_DELETE, NULL, XTS_OP_STAGED, 4,
	    NULL), 0);
	assert_int_equal(xts_store_op_release_staged(f->st, "j", &released), 0);
	assert_int_equal(released, 1);
}

static void
test_reset_keeps_links(void **state)
{
	struct fx *f = *state;
	struct xts_store_job j;
	struct xts_store_link_row lr;
	struct xts_store_user_row ur;
	json_t *exp = json_pack("{s:s}", "displayName", "A");
	long long cyc = 0, op_inflight = 0, op_planned = 0, n = 0;
	struct xts_store_op_row r;

	assert_int_equal(xts_store_cycle_begin(f->st, "j", XTS_CYCLE_INITIAL, 10, &cyc), 0);
	assert_int_equal(xts_store_job_set_delta(f->st, "j", "d1"), 0);
	assert_int_equal(xts_store_job_set_groups_delta(f->st, "j", "g1"), 0);
	assert_int_equal(xts_store_job_set_fingerprint(f->st, "j", "fp"), 0);
	assert_int_equal(xts_store_job_set_state(f->st, "j", XTS_JOB_QUARANTINED, "X", 1, 2, 3), 0);
	assert_int_equal(xts_store_job_set_paused(f->st, "j", 1), 0);
	{
		struct xts_store_user u = { .source_id = "s1", .in_scope = 1, .is_member = 1 };
		struct xts_store_link l = { .source_id = "s1", .target_id = "t1", .exported = exp,
			.origin = XTS_LINK_CREATED, .target_state = XTS_TARGET_DISABLED };

		assert_int_equal(xts_store_user_put(f->st, "j", &u), 0);
		assert_int_equal(xts_store_link_put(f->st, "j", &l), 0);
		/* another job's row with the same source id: not this job's to reset */
		assert_int_equal(xts_store_job_ensure(f->st, "k"), 0);
		assert_int_equal(xts_store_user_put(f->st, "k", &u), 0);
	}
	assert_int_equal(xts_store_member_add(f->st, "j", "g", "s1"), 0);
	assert_int_equal(xts_store_op_add(f->st, "j", "s2", XTS_OP_CREATE, NULL, XTS_OP_PLANNED, cyc,
	    &op_inflight), 0);
	assert_int_equal(xts_store_op_start(f->st, op_inflight), 0);
	assert_int_equal(xts_store_op_add(f->st, "j", "s1", XTS_OP_UPDATE, NULL, XTS_OP_PLANNED, cyc,
	    &op_planned), 0);
	assert_int_equal(xts_store_outbox_add(f->st, "j", "quarantine:X", "ops@x", "s", "b", 1, NULL), 0);

	assert_int_equal(xts_store_reset_job(f->st, "j"), 0);
	assert_int_equal(xts_store_reset_job(f->st, "nope"), XTS_ENOENT);

	assert_int_equal(xts_store_job_get(f->st, "j", &j), 0);
	assert_null(j.delta_link);
	assert_null(j.groups_delta_link);
	assert_null(j.schema_fingerprint);
	assert_int_equal(j.state, XTS_JOB_IDLE);
	assert_null(j.state_reason);
	assert_int_equal(j.next_retry, 0);
	assert_int_equal(j.cycle_counter, cyc); /* cycle ids never repeat */
	assert_int_equal(j.paused, 1);            /* restart is not resume */
	xts_store_job_clear(&j);
	assert_int_equal(xts_store_user_get(f->st, "j", "s1", &ur), XTS_ENOENT);
	assert_int_equal(xts_store_user_get(f->st, "k", "s1", &ur), 0);
	xts_store_user_row_clear(&ur);
	assert_int_equal(xts_test_member_groups(f->st, "j", "s1", &n), 0);
	assert_int_equal(n, 0);
	/* the link survives with its target id, origin and target state */
	assert_int_equal(xts_store_link_get(f->st, "j", "s1", &lr), 0);
	assert_string_equal(lr.l.target_id, "t1");
	assert_int_equal(lr.l.origin, XTS_LINK_CREATED);
	assert_int_equal(lr.l.target_state, XTS_TARGET_DISABLED);
	assert_null(lr.l.exported);
	xts_store_link_row_clear(&lr);
	/* the in-flight create survives; the planned update does not */
	assert_int_equal(xts_store_op_get(f->st, op_inflight, &r), 0);
	assert_int_equal(r.o.state, XTS_OP_INFLIGHT);
	xts_store_op_row_clear(&r);
	assert_int_equal(xts_store_op_get(f->st, op_planned, &r), XTS_ENOENT);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM cycle"), 1);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM outbox"), 1);
	json_decref(exp);
}

/* ---- membership ----------------------------------------------------------- */

static int
member_cb(void *arg, const char *g, const char *m)
{
	int *n = arg;

	assert_non_null(g);
	assert_non_null(m);
	(*n)++;
	return 0;
}

static void
test_members(void **state)
{
	struct fx *f = *state;
	long long n = 0;
	int walked = 0, i, yes;
	char mid[32];

	assert_int_equal(xts_store_job_ensure(f->st, "j"), 0);
	assert_int_equal(xts_store_member_add(f->st, "j", "g1", "u1"), 0);
	assert_int_equal(xts_store_member_add(f->st, "j", "g1", "u1"), 0); /* idempotent */
	assert_int_equal(xts_store_member_add(f->st, "j", "g2", "u1"), 0);
	assert_int_equal(xts_test_member_groups(f->st, "j", "u1", &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(xts_store_member_remove(f->st, "j", "g2", "u1"), 0);
	assert_int_equal(xts_store_member_remove(f->st, "j", "g2", "u1"), XTS_ENOENT);
	assert_int_equal(xts_test_member_groups(f->st, "j", "u1", &n), 0);
	assert_int_equal(n, 1);
	yes = 0;
	assert_int_equal(xts_store_member_any(f->st, "j", "u1", &yes), 0);
	assert_int_equal(yes, 1);
	assert_int_equal(xts_store_member_any(f->st, "j", "u2", &yes), 0);
	assert_int_equal(yes, 0);
	assert_int_equal(xts_store_member_any(f->st, "other-job", "u1", &yes), 0);
	assert_int_equal(yes, 0);
	for (i = 0; i < 300; i++) {
		snprintf(mid, sizeof(mid), "m%04d", i);
		assert_int_equal(xts_store_member_add(f->st, "j", i < 150 ? "g3" : "g4", mid), 0);
	}
	assert_int_equal(xts_store_member_foreach(f->st, "j", "g3", member_cb, &walked), 0);
	assert_int_equal(walked, 150);
	walked = 0;
	assert_int_equal(xts_store_member_foreach(f->st, "j", NULL, member_cb, &walked), 0);
	assert_int_equal(walked, 301);
	assert_int_equal(xts_store_member_clear_group(f->st, "j", "g3"), 0);
	walked = 0;
	assert_int_equal(xts_store_member_foreach(f->st, "j", NULL, member_cb, &walked), 0);
	assert_int_equal(walked, 151);
}

/* ---- outbox --------------------------------------------------------------- */

static int
mail_ids_cb(void *arg, const struct xts_store_mail *m)
{
	long long *ids = arg;

	ids[++ids[0]] = m->id;
	return 0;
}

static void
test_outbox(void **state)
{
	struct fx *f = *state;
	struct xts_store_mail_row r;
	long long id = 0, id2 = 0, ids[8] = { 0 };

	assert_int_equal(xts_store_outbox_add(f->st, "j", "quarantine:1", "a@x,b@x", "Subj", "Body",
	    1000, &id), 0);
	assert_int_equal(xts_store_outbox_add(f->st, "j", "quarantine:1", "a@x", "S2", "B2", 2000,
	    &id2), XTS_EEXIST);
	assert_int_equal(id2, id);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM outbox"), 1);
	assert_int_equal(xts_store_outbox_get(f->st, id, &r), 0);
	assert_string_equal(r.m.subject, "Subj"); /* the first one is kept */
	assert_string_equal(r.m.recipients, "a@x,b@x");
	assert_int_equal(r.m.sent_at, 0);
	xts_store_mail_row_clear(&r);

	assert_int_equal(xts_store_outbox_foreach_due(f->st, 999, mail_ids_cb, ids), 0);
	assert_int_equal(ids[0], 0);
	assert_int_equal(xts_store_outbox_foreach_due(f->st, 1000, mail_ids_cb, ids), 0);
	assert_int_equal(ids[0], 1);
	assert_int_equal(xts_store_outbox_mark_failed(f->st, id, 5000, "connection refused"), 0);
	ids[0] = 0;
	assert_int_equal(xts_store_outbox_foreach_due(f->st, 4999, mail_ids_cb, ids), 0);
	assert_int_equal(ids[0], 0);
	assert_int_equal(xts_store_outbox_get(f->st, id, &r), 0);
	assert_int_equal(r.m.attempts, 1);
	assert_string_equal(r.m.last_error, "connection refused");
	xts_store_mail_row_clear(&r);
	assert_int_equal(xts_store_outbox_mark_sent(f->st, id, 6000), 0);
	assert_int_equal(xts_store_outbox_mark_sent(f->st, id, 6001), XTS_ENOENT);
	assert_int_equal(xts_store_outbox_foreach_due(f->st, 99999, mail_ids_cb, ids), 0);
	assert_int_equal(ids[0], 0);
	assert_int_equal(xts_store_outbox_get(f->st, 424242, &r), XTS_ENOENT);
}

/* ---- transactions, crash, disk full, allocation failure ------------------- */

static void
test_transactions(void **state)
{
	struct fx *f = *state;
	struct xts_store_job j;

	assert_int_equal(xts_store_commit(f->st), XTS_EINVAL);
	assert_int_equal(xts_store_rollback(f->st), XTS_EINVAL);
	assert_int_equal(xts_store_begin(f->st), 0);
	assert_true(xts_store_in_tx(f->st));
	assert_int_equal(xts_store_begin(f->st), XTS_EINVAL);
	assert_int_equal(xts_store_job_ensure(f->st, "rolled"), 0);
	/* multi-statement calls nest as savepoints inside the transaction */
	{
		long long c = 0;

		assert_int_equal(xts_store_cycle_begin(f->st, "rolled", XTS_CYCLE_INITIAL, 1, &c), 0);
	}
	assert_int_equal(xts_store_rollback(f->st), 0);
	assert_false(xts_store_in_tx(f->st));
	assert_int_equal(xts_store_job_get(f->st, "rolled", &j), XTS_ENOENT);
	assert_int_equal(xts_store_begin(f->st), 0);
	assert_int_equal(xts_store_job_ensure(f->st, "kept"), 0);
	assert_int_equal(xts_store_commit(f->st), 0);
	assert_int_equal(xts_store_job_get(f->st, "kept", &j), 0);
	xts_store_job_clear(&j);
}

static int
raw_sync_level(struct xts_store *st)
{
	sqlite3_stmt *s = NULL;
	int v = -1;

	if (sqlite3_prepare_v2(xts_store__db(st), "PRAGMA synchronous", -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	return v;
}

/* Relaxed transactions: NORMAL only while one is open, FULL back after
 * commit and rollback, xts_store_sync only when needed, and a kill -9 right
 * after a relaxed commit keeps it. */
static void
test_relaxed_transactions(void **state)
{
	struct fx *f = *state;
	struct xts_store_user_row r;
	struct xts_store_user u = { .source_id = "r-1", .in_scope = 1, .is_member = 1 };
	long long n = 0;
	pid_t pid;
	int status = 0;

	assert_int_equal(xts_store_job_ensure(f->st, "j"), 0);
	assert_int_equal(raw_sync_level(f->st), 2); /* FULL */
	assert_int_equal(xts_store_sync(f->st), 0); /* nothing to do */
	assert_int_equal(f->st->unsynced, 0);

	assert_int_equal(xts_store_begin_relaxed(f->st), 0);
	assert_true(xts_store_in_tx(f->st));
	assert_int_equal(xts_store_begin(f->st), XTS_EINVAL);
	assert_int_equal(xts_store_begin_relaxed(f->st), XTS_EINVAL);
	assert_int_equal(xts_store_sync(f->st), XTS_EINVAL);
	assert_int_equal(raw_sync_level(f->st), 1); /* NORMAL */
	assert_int_equal(xts_store_user_put(f->st, "j", &u), 0);
	assert_int_equal(xts_store_commit(f->st), 0);
	assert_int_equal(raw_sync_level(f->st), 2);
	assert_int_equal(f->st->unsynced, 1);
	assert_int_equal(xts_store_user_get(f->st, "j", "r-1", &r), 0);
	xts_store_user_row_clear(&r);
	assert_int_equal(xts_store_sync(f->st), 0);
	assert_int_equal(f->st->unsynced, 0);
	assert_int_equal(xts_store_user_version(f->st), xts_store_schema_version());

	u.source_id = "r-2";
	assert_int_equal(xts_store_begin_relaxed(f->st), 0);
	assert_int_equal(xts_store_user_put(f->st, "j", &u), 0);
	assert_int_equal(xts_store_rollback(f->st), 0);
	assert_int_equal(raw_sync_level(f->st), 2);
	assert_int_equal(f->st->unsynced, 0);
	assert_int_equal(xts_store_user_get(f->st, "j", "r-2", &r), XTS_ENOENT);
	/* An ordinary transaction after a relaxed one is FULL again. */
	assert_int_equal(xts_store_begin(f->st), 0);
	assert_int_equal(raw_sync_level(f->st), 2);
	assert_int_equal(xts_store_rollback(f->st), 0);

	xts_store_close(f->st);
	f->st = NULL;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct xts_store *st = NULL;
		char id[32];
		int i;

		if (xts_store_open(f->dir, &st) != 0 || xts_store_begin_relaxed(st) != 0)
			_exit(10);
		for (i = 0; i < 300; i++) {
			struct xts_store_user c = { .source_id = id, .in_scope = 1, .is_member = 1 };

			snprintf(id, sizeof(id), "relaxed-%04d", i);
			if (xts_store_user_put(st, "j", &c) != 0)
				_exit(11);
		}
		if (xts_store_commit(st) != 0)
			_exit(12);
		raise(SIGKILL);
		_exit(13);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(xts_store_open(f->dir, &f->st), 0);
	assert_int_equal(xts_store_check(f->st), 0);
	assert_int_equal(xts_store_user_count(f->st, "j", 0, &n), 0);
	assert_int_equal(n, 301);
}

/* A VFS over the default one that can fail writes to the WAL: the disk
 * failing under a commit, for the paused batch's lost path. */
static sqlite3_vfs *real_vfs;
static int fail_wal_writes;

struct shim_file {
	sqlite3_file base;
	sqlite3_file *real;
	int wal;
};

#define REAL(f) (((struct shim_file *)(f))->real)
static int
shim_close(sqlite3_file *f)
{
	return REAL(f)->pMethods->xClose(REAL(f));
}

static int
shim_read(sqlite3_file *f, void *b, int n, sqlite3_int64 o)
{
	return REAL(f)->pMethods->xRead(REAL(f), b, n, o);
}

static int
shim_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o)
{
	if (fail_wal_writes && ((struct shim_file *)f)->wal)
		return SQLITE_IOERR_WRITE;
	return REAL(f)->pMethods->xWrite(REAL(f), b, n, o);
}
static int
shim_truncate(sqlite3_file *f, sqlite3_int64 n)
{
	return REAL(f)->pMethods->xTruncate(REAL(f), n);
}

static int
shim_sync(sqlite3_file *f, int fl)
{
	return REAL(f)->pMethods->xSync(REAL(f), fl);
}

static int
shim_size(sqlite3_file *f, sqlite3_int64 *n)
{
	return REAL(f)->pMethods->xFileSize(REAL(f), n);
}

static int
shim_lock(sqlite3_file *f, int l)
{
	return REAL(f)->pMethods->xLock(REAL(f), l);
}

static int
shim_unlock(sqlite3_file *f, int l)
{
	return REAL(f)->pMethods->xUnlock(REAL(f), l);
}

static int
shim_check(sqlite3_file *f, int *r)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), r);
}

static int
shim_fctl(sqlite3_file *f, int op, void *a)
{
	return REAL(f)->pMethods->xFileControl(REAL(f), op, a);
}

static int
shim_sector(sqlite3_file *f)
{
	return REAL(f)->pMethods->xSectorSize(REAL(f));
}

static int
shim_dev(sqlite3_file *f)
{
	return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

static int
shim_shmmap(sqlite3_file *f, int p, int sz, int e, void volatile **m)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), p, sz, e, m);
}

static int
shim_shmlock(sqlite3_file *f, int o, int n, int fl)
{
	return REAL(f)->pMethods->xShmLock(REAL(f), o, n, fl);
}

static void
shim_shmbarrier(sqlite3_file *f)
{
	REAL(f)->pMethods->xShmBarrier(REAL(f));
}

static int
shim_shmunmap(sqlite3_file *f, int d)
{
	return REAL(f)->pMethods->xShmUnmap(REAL(f), d);
}

static int
shim_fetch(sqlite3_file *f, sqlite3_int64 o, int n, void **p)
{
	return REAL(f)->pMethods->xFetch(REAL(f), o, n, p);
}

static int
shim_unfetch(sqlite3_file *f, sqlite3_int64 o, void *p)
{
	return REAL(f)->pMethods->xUnfetch(REAL(f), o, p);
}


static const sqlite3_io_methods shim_io = {
	3, shim_close, shim_read, shim_write, shim_truncate, shim_sync, shim_size, shim_lock,
	shim_unlock, shim_check, shim_fctl, shim_sector, shim_dev, shim_shmmap, shim_shmlock,
	shim_shmbarrier, shim_shmunmap, shim_fetch, shim_unfetch,
};

static int
shim_open(sqlite3_vfs *v, const char *name, sqlite3_file *f, int flags, int *out)
{
	struct shim_file *sf = (struct shim_file *)f;
	int rc;

	(void)v;
	sf->real = (sqlite3_file *)&sf[1];
	sf->wal = (flags & SQLITE_OPEN_WAL) != 0;
	rc = real_vfs->xOpen(real_vfs, name, sf->real, flags, out);
	sf->base.pMethods = rc == SQLITE_OK && sf->real->pMethods != NULL ? &shim_io : NULL;
	return rc;
}

static sqlite3_vfs shim_vfs;

static void
shim_install(void)
{
	real_vfs = sqlite3_vfs_find(NULL);
	assert_non_null(real_vfs);
	shim_vfs = *real_vfs;
	shim_vfs.zName = "xts-test-shim";
	shim_vfs.szOsFile = (int)sizeof(struct shim_file) + real_vfs->szOsFile;
	shim_vfs.xOpen = shim_open;
	shim_vfs.pNext = NULL;
	assert_int_equal(sqlite3_vfs_register(&shim_vfs, 1), SQLITE_OK);
}

static int
user_there(struct xts_store *st, const char *id)
{
	struct xts_store_user_row r;
	int ret = xts_store_user_get(st, "j", id, &r);

	if (ret == 0)
		xts_store_user_row_clear(&r);
	return ret == 0;
}

/* The read phase's batch: one relaxed transaction over several turns,
 * invisible while paused, committed by anybody else's first store call (and
 * that call is not relaxed), owners told apart, aborted cleanly, and a
 * commit that fails on someone else's call reported to its owner as lost,
 * to each owner whose batch was lost. */
static void
test_batch(void **state)
{
	struct fx *f = *state;
	struct xts_store_user u = { .source_id = "b-1", .in_scope = 1, .is_member = 1 };
	struct xts_store_batch g = { 0 }, a = { 0 }, b = { 0 };

	assert_int_equal(xts_store_job_ensure(f->st, "j"), 0);
	assert_int_equal(xts_store_batch_begin(f->st, &g), 0);
	assert_true(g.open);
	assert_true(xts_store_in_tx(f->st));
	assert_int_equal(xts_store_user_put(f->st, "j", &u), 0);
	xts_store_batch_pause(f->st, &g);
	/* Paused: invisible to others, not committed, still relaxed. */
	assert_false(xts_store_in_tx(f->st));
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM source_user"), 0);
	assert_int_equal(raw_sync_level(f->st), 1);
	/* Resumed by its owner: the same transaction. */
	assert_int_equal(xts_store_batch_begin(f->st, &g), 0);
	u.source_id = "b-2";
	assert_int_equal(xts_store_user_put(f->st, "j", &u), 0);
	xts_store_batch_pause(f->st, &g);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM source_user"), 0);
	/* Someone else's plain write commits the batch first and runs with
	 * synchronous=FULL itself. */
	assert_int_equal(xts_store_job_set_delta(f->st, "j", "https://example/delta"), 0);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM source_user"), 2);
	assert_int_equal(raw_sync_level(f->st), 2);
	assert_false(g.open);
	/* The owner's next turn starts a new batch; its commit is fine. */
	assert_int_equal(xts_store_batch_begin(f->st, &g), 0);
	assert_true(g.open);
	u.source_id = "b-3";
	assert_int_equal(xts_store_user_put(f->st, "j", &u), 0);
	assert_int_equal(xts_store_batch_commit(f->st, &g), 0);
	assert_false(g.open);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM source_user"), 3);

	/* Two owners interleaved: each one's begin commits the other's. */
	assert_int_equal(xts_store_batch_begin(f->st, &a), 0);
	u.source_id = "a-1";
	assert_int_equal(xts_store_user_put(f->st, "j", &u), 0);
	xts_store_batch_pause(f->st, &a);
	assert_int_equal(xts_store_batch_begin(f->st, &b), 0);
	assert_false(a.open);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM source_user WHERE source_id = 'a-1'"), 1);
	u.source_id = "b-4";
	assert_int_equal(xts_store_user_put(f->st, "j", &u), 0);
	xts_store_batch_pause(f->st, &b);
	assert_int_equal(xts_store_batch_commit(f->st, &a), 0); /* committed already */
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM source_user WHERE source_id = 'b-4'"), 0);
	assert_int_equal(xts_store_batch_commit(f->st, &b), 0);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM source_user WHERE source_id = 'b-4'"), 1);

	/* Abort drops the open batch; an ordinary transaction follows. */
	assert_int_equal(xts_store_batch_begin(f->st, &g), 0);
	u.source_id = "x-1";
	assert_int_equal(xts_store_user_put(f->st, "j", &u), 0);
	xts_store_batch_pause(f->st, &g);
	xts_store_batch_abort(f->st, &g);
	assert_false(g.open);
	assert_false(user_there(f->st, "x-1"));
	assert_int_equal(xts_store_begin(f->st), 0);
	assert_int_equal(raw_sync_level(f->st), 2);
	assert_int_equal(xts_store_rollback(f->st), 0);
	/* A paused batch and someone else's explicit transaction. */
	assert_int_equal(xts_store_batch_begin(f->st, &g), 0);
	u.source_id = "c-1";
	assert_int_equal(xts_store_user_put(f->st, "j", &u), 0);
	xts_store_batch_pause(f->st, &g);
	assert_int_equal(xts_store_begin(f->st), 0);
	assert_int_equal(xts_store_rollback(f->st), 0);
	assert_true(user_there(f->st, "c-1"));
	assert_int_equal(xts_store_batch_commit(f->st, &g), 0);

	/* Lost: the disk fails under the commits that someone else's calls
	 * make, of two owners' batches in turn; each owner learns of its own. */
	xts_store_close(f->st);
	f->st = NULL;
	shim_install();
	assert_int_equal(xts_store_open(f->dir, &f->st), 0);
	assert_int_equal(xts_store_batch_begin(f->st, &a), 0);
	u.source_id = "lost-a";
	assert_int_equal(xts_store_user_put(f->st, "j", &u), 0);
	xts_store_batch_pause(f->st, &a);
	fail_wal_writes = 1;
	assert_int_not_equal(xts_store_job_set_delta(f->st, "j", NULL), 0);
	fail_wal_writes = 0;
	assert_true(a.lost);
	assert_int_equal(xts_store_batch_begin(f->st, &b), 0);
	u.source_id = "lost-b";
	assert_int_equal(xts_store_user_put(f->st, "j", &u), 0);
	xts_store_batch_pause(f->st, &b);
	fail_wal_writes = 1;
	assert_int_not_equal(xts_store_job_set_delta(f->st, "j", NULL), 0);
	fail_wal_writes = 0;
	assert_int_equal(xts_store_batch_begin(f->st, &a), XTS_ESTORE);
	assert_int_equal(xts_store_batch_commit(f->st, &b), XTS_ESTORE);
	assert_false(a.lost || b.lost || a.open || b.open);
	assert_false(user_there(f->st, "lost-a"));
	assert_false(user_there(f->st, "lost-b"));
	assert_true(user_there(f->st, "b-1"));
	/* The store works on, and so do the owners. */
	assert_int_equal(xts_store_job_set_delta(f->st, "j", NULL), 0);
	assert_int_equal(xts_store_batch_begin(f->st, &a), 0);
	assert_int_equal(xts_store_batch_commit(f->st, &a), 0);
	assert_int_equal(xts_store_check(f->st), 0);
	xts_store_close(f->st);
	f->st = NULL;
	assert_int_equal(sqlite3_vfs_unregister(&shim_vfs), SQLITE_OK);
	assert_int_equal(xts_store_open(f->dir, &f->st), 0);
}

static void
test_crash_mid_transaction(void **state)
{
	struct fx *f = *state;
	struct xts_store_user_row r;
	long long n = 0;
	pid_t pid;
	int status = 0;

	assert_int_equal(xts_store_job_ensure(f->st, "j"), 0);
	xts_store_close(f->st);
	f->st = NULL;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct xts_store *st = NULL;
		char id[32];
		int i;

		if (xts_store_open(f->dir, &st) != 0)
			_exit(10);
		/* page 1: committed */
		if (xts_store_begin(st) != 0)
			_exit(11);
		for (i = 0; i < 500; i++) {
			struct xts_store_user u = { .source_id = id, .in_scope = 1, .is_member = 1 };

			snprintf(id, sizeof(id), "committed-%04d", i);
			if (xts_store_user_put(st, "j", &u) != 0)
				_exit(12);
		}
		if (xts_store_commit(st) != 0)
			_exit(13);
		/* page 2: killed before commit */
		if (xts_store_begin(st) != 0)
			_exit(14);
		for (i = 0; i < 5000; i++) {
			struct xts_store_user u = { .source_id = id, .in_scope = 1, .is_member = 1 };

			snprintf(id, sizeof(id), "uncommitted-%04d", i);
			if (xts_store_user_put(st, "j", &u) != 0)
				_exit(15);
		}
		if (xts_store_link_put(st, "j", &(struct xts_store_link){ .source_id = "x",
		    .target_id = "y" }) != 0)
			_exit(16);
		raise(SIGKILL);
		_exit(17);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);

	assert_int_equal(xts_store_open(f->dir, &f->st), 0);
	assert_int_equal(xts_store_check(f->st), 0);
	assert_int_equal(xts_store_user_count(f->st, "j", 0, &n), 0);
	assert_int_equal(n, 500);
	assert_int_equal(xts_store_user_get(f->st, "j", "committed-0499", &r), 0);
	xts_store_user_row_clear(&r);
	assert_int_equal(xts_store_user_get(f->st, "j", "uncommitted-0000", &r), XTS_ENOENT);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM link"), 0);
}

static void
test_disk_full(void **state)
{
	struct fx *f = *state;
	char *big;
	int i, ret = 0, pages = -1;
	char id[32];

	assert_int_equal(xts_store_job_ensure(f->st, "j"), 0);
	{
		sqlite3_stmt *s = NULL;

		assert_int_equal(sqlite3_prepare_v2(xts_store__db(f->st), "PRAGMA page_count", -1, &s,
		    NULL), SQLITE_OK);
		assert_int_equal(sqlite3_step(s), SQLITE_ROW);
		pages = sqlite3_column_int(s, 0);
		sqlite3_finalize(s);
	}
	{
		char sql[64];

		snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %d", pages + 2);
		assert_int_equal(sqlite3_exec(xts_store__db(f->st), sql, NULL, NULL, NULL), SQLITE_OK);
	}
	big = malloc(20000);
	assert_non_null(big);
	memset(big, 'x', 19999);
	big[19999] = '\0';
	for (i = 0; i < 100 && ret == 0; i++) {
		struct xts_store_user u = { .source_id = id, .scope_reason = big };

		snprintf(id, sizeof(id), "u%d", i);
		ret = xts_store_user_put(f->st, "j", &u);
	}
	free(big);
	assert_int_equal(ret, XTS_ENOSPC);
	/* The store stays usable for reads and small writes that fit. */
	assert_int_equal(xts_store_job_set_delta(f->st, "j", NULL), 0);
	assert_int_equal(xts_store_check(f->st), 0);
}

static void
test_alloc_failure(void **state)
{
	struct fx *f = *state;
	struct xts_store_user_row r;
	json_t *attrs = json_pack("{s:s}", "a", "b");
	unsigned long nth;
	int ret, ok = 0, nomem = 0;

	assert_int_equal(xts_store_job_ensure(f->st, "j"), 0);
	{
		struct xts_store_user u = { .source_id = "s", .attrs = attrs, .scope_reason = "r",
			.manager_id = "m" };

		assert_int_equal(xts_store_user_put(f->st, "j", &u), 0);
	}
	for (nth = 1; nth < 400; nth++) {
		xts_mem_fail_after(nth, 0);
		ret = xts_store_user_get(f->st, "j", "s", &r);
		xts_mem_fail_after(0, 0);
		if (ret == 0) {
			assert_string_equal(r.u.manager_id, "m");
			ok++;
		} else {
			assert_int_equal(ret, XTS_ENOMEM);
			nomem++;
		}
		xts_store_user_row_clear(&r);
	}
	assert_true(nomem > 0);
	assert_true(ok > 0);
	assert_int_equal(xts_store_user_get(f->st, "j", "s", &r), 0);
	xts_store_user_row_clear(&r);
	json_decref(attrs);
}

static void
test_bulk_100k(void **state)
{
	struct fx *f = *state;
	long long t0, t1, n = 0;
	char id[48];
	json_t *attrs = json_pack("{s:s,s:s,s:s}", "displayName", "Some User", "mail",
	    "some.user@contoso.example", "department", "Research");
	int i, page = 1000;

	assert_int_equal(xts_store_job_ensure(f->st, "j"), 0);
	t0 = xts_now_ms();
	for (i = 0; i < 100000; i++) {
		struct xts_store_user u = { .source_id = id, .attrs = attrs, .in_scope = 1,
			.is_member = 1, .last_seen_cycle = 1 };

		if (i % page == 0)
			assert_int_equal(xts_store_begin(f->st), 0);
		snprintf(id, sizeof(id), "%08x-0000-4000-8000-%012d", i, i);
		assert_int_equal(xts_store_user_put(f->st, "j", &u), 0);
		if (i % page == page - 1)
			assert_int_equal(xts_store_commit(f->st), 0);
	}
	t1 = xts_now_ms();
	assert_int_equal(xts_store_user_count(f->st, "j", 0, &n), 0);
	assert_int_equal(n, 100000);
	printf("# store: 100000 source users in pages of %d: %lld ms (%.0f rows/s)\n", page, t1 - t0,
	    100000.0 * 1000.0 / (double)(t1 - t0 > 0 ? t1 - t0 : 1));
	fflush(stdout);
	json_decref(attrs);
}

/* Links and ops across more than two keyset pages (the shared walker):
 * every row once, in key order, a callback may write, a stop is returned. */
struct walk_seen {
	struct xts_store *st;
	int n;
	char last[32];
	long long last_id;
	int ordered;
	int stop_at;
};

static int
walk_link_cb(void *arg, const struct xts_store_link *l)
{
	struct walk_seen *w = arg;

	if (strcmp(l->source_id, w->last) <= 0)
		w->ordered = 0;
	snprintf(w->last, sizeof(w->last), "%s", l->source_id);
	return ++w->n == w->stop_at ? 42 : 0;
}

static int
walk_op_cb(void *arg, const struct xts_store_op *o)
{
	struct walk_seen *w = arg;

	if (o->id <= w->last_id)
		w->ordered = 0;
	w->last_id = o->id;
	w->n++;
	/* write from inside the walk: the op leaves the walked state */
	return xts_store_op_start(w->st, o->id);
}

static void
test_walks_across_pages(void **state)
{
	struct fx *f = *state;
	struct walk_seen w;
	long long n;
	char sid[32], tid[32];
	int i;

	assert_int_equal(xts_store_job_ensure(f->st, "j"), 0);
	assert_int_equal(xts_store_begin(f->st), 0);
	for (i = 0; i < 700; i++) {
		struct xts_store_link l = { .source_id = sid, .target_id = tid, .origin = XTS_LINK_CREATED };

		snprintf(sid, sizeof(sid), "s%04d", i);
		snprintf(tid, sizeof(tid), "t%04d", i);
		assert_int_equal(xts_store_link_put(f->st, "j", &l), 0);
		assert_int_equal(xts_store_op_add(f->st, "j", sid, XTS_OP_UPDATE, NULL, XTS_OP_PLANNED, 1,
		    NULL), 0);
	}
	assert_int_equal(xts_store_commit(f->st), 0);

	memset(&w, 0, sizeof(w));
	w.ordered = 1;
	assert_int_equal(xts_store_link_foreach(f->st, "j", walk_link_cb, &w), 0);
	assert_int_equal(w.n, 700);
	assert_true(w.ordered);

	memset(&w, 0, sizeof(w));
	w.ordered = 1;
	w.stop_at = 300; /* on the second page */
	assert_int_equal(xts_store_link_foreach(f->st, "j", walk_link_cb, &w), 42);
	assert_int_equal(w.n, 300);

	memset(&w, 0, sizeof(w));
	w.ordered = 1;
	w.st = f->st;
	assert_int_equal(xts_store_op_foreach(f->st, "j", XTS_OP_PLANNED, 0, walk_op_cb, &w), 0);
	assert_int_equal(w.n, 700);
	assert_true(w.ordered);
	assert_int_equal(xts_store_op_count(f->st, "j", XTS_OP_PLANNED, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(xts_store_op_count(f->st, "j", XTS_OP_INFLIGHT, &n), 0);
	assert_int_equal(n, 700);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_migrate_and_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_version_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_from_v1, setup, teardown),
		cmocka_unit_test(test_not_a_database),
		cmocka_unit_test(test_file_modes),
		cmocka_unit_test_setup_teardown(test_snapshot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_busy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_job_crud, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cycles, setup, teardown),
		cmocka_unit_test_setup_teardown(test_housekeep, setup, teardown),
		cmocka_unit_test_setup_teardown(test_users, setup, teardown),
		cmocka_unit_test_setup_teardown(test_links, setup, teardown),
		cmocka_unit_test_setup_teardown(test_op_transitions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_op_ids_unique, setup, teardown),
		cmocka_unit_test_setup_teardown(test_staged_release_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_keeps_links, setup, teardown),
		cmocka_unit_test_setup_teardown(test_members, setup, teardown),
		cmocka_unit_test_setup_teardown(test_walks_across_pages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outbox, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transactions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relaxed_transactions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_mid_transaction, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disk_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_alloc_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bulk_100k, setup, teardown),
	};

	if (xts_mem_install() != 0)
		return 1;
	xts_log_init(XTS_LOG_CRIT, 0);
	return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
