/* SPDX-License-Identifier: MIT */
/* The store's SQL, one X-macro line per statement: store_int.h turns it into
 * an enum and store.c into the text table the statement cache prepares.
 * No include guard on purpose (included twice with different macros). */
#define XTS_JOB_COLS "name, delta_link, groups_delta_link, schema_fingerprint, state, " \
	"state_reason, quarantine_since, next_retry, retry_step, cycle_counter, " \
	"last_cycle_start, last_cycle_end, last_cycle_result, counts, paused"
#define XTS_USER_COLS "source_id, attrs, in_scope, scope_reason, is_member, manager_id, " \
	"deleted, last_seen_cycle"
#define XTS_LINK_COLS "source_id, target_id, exported, target_state, deleted_at, origin, " \
	"created, updated"
#define XTS_OP_COLS "id, source_id, kind, payload, state, attempts, next_attempt, " \
	"last_error, last_error_msg, cycle_id, created, updated"
#define XTS_MAIL_COLS "id, job, event_key, recipients, subject, body, created, sent_at, " \
	"next_attempt, attempts, last_error"

XTS_STORE_STMT(BEGIN, "BEGIN IMMEDIATE")
XTS_STORE_STMT(COMMIT, "COMMIT")
XTS_STORE_STMT(ROLLBACK, "ROLLBACK")
XTS_STORE_STMT(SYNC_NORMAL, "PRAGMA synchronous = NORMAL")
XTS_STORE_STMT(SYNC_FULL, "PRAGMA synchronous = FULL")
XTS_STORE_STMT(SP_BEGIN, "SAVEPOINT xts_sp")
XTS_STORE_STMT(SP_RELEASE, "RELEASE xts_sp")
XTS_STORE_STMT(SP_ROLLBACK, "ROLLBACK TO xts_sp")

XTS_STORE_STMT(JOB_ENSURE, "INSERT OR IGNORE INTO job(name) VALUES (?)")
XTS_STORE_STMT(JOB_GET, "SELECT " XTS_JOB_COLS " FROM job WHERE name = ?")
XTS_STORE_STMT(JOB_PAGE, "SELECT " XTS_JOB_COLS " FROM job WHERE name > ? ORDER BY name LIMIT ?")
XTS_STORE_STMT(JOB_DELETE, "DELETE FROM job WHERE name = ?")
XTS_STORE_STMT(JOB_SET_DELTA, "UPDATE job SET delta_link = ? WHERE name = ?")
XTS_STORE_STMT(JOB_SET_GDELTA, "UPDATE job SET groups_delta_link = ? WHERE name = ?")
XTS_STORE_STMT(JOB_SET_FP, "UPDATE job SET schema_fingerprint = ? WHERE name = ?")
XTS_STORE_STMT(JOB_SET_STATE, "UPDATE job SET state = ?, state_reason = ?, quarantine_since = ?, "
	"next_retry = ?, retry_step = ? WHERE name = ?")
XTS_STORE_STMT(JOB_SET_PAUSED, "UPDATE job SET paused = ? WHERE name = ?")
XTS_STORE_STMT(RESET_JOB, "UPDATE job SET delta_link = NULL, groups_delta_link = NULL, "
	"schema_fingerprint = NULL, state = 0, state_reason = NULL, quarantine_since = 0, "
	"next_retry = 0, retry_step = 0 WHERE name = ?")
/* NOT INDEXED: the table in rowid order, not the rows one random page each
 * in source id order (100,000 users: 0.38 s of CPU against 1.12 s) */
XTS_STORE_STMT(RESET_USERS, "DELETE FROM source_user NOT INDEXED WHERE job = ?")
XTS_STORE_STMT(RESET_MEMBERS, "DELETE FROM member WHERE job = ?")
XTS_STORE_STMT(RESET_OPS, "DELETE FROM op WHERE job = ? AND state <> 1")
XTS_STORE_STMT(FORGET_LINKS, "DELETE FROM link WHERE job = ?")
XTS_STORE_STMT(FORGET_OPS, "DELETE FROM op WHERE job = ?")
XTS_STORE_STMT(RESET_LINKS, "UPDATE link SET exported = NULL, updated = ? WHERE job = ?")

XTS_STORE_STMT(CYCLE_BUMP, "UPDATE job SET cycle_counter = cycle_counter + 1, last_cycle_start = ? "
	"WHERE name = ? RETURNING cycle_counter")
XTS_STORE_STMT(CYCLE_INSERT, "INSERT INTO cycle(job, id, kind, started) VALUES (?, ?, ?, ?)")
XTS_STORE_STMT(CYCLE_END, "UPDATE cycle SET ended = ?, result = ?, counts = ? WHERE job = ? AND id = ?")
XTS_STORE_STMT(CYCLE_END_JOB, "UPDATE job SET last_cycle_end = ?, last_cycle_result = ?, counts = ? "
	"WHERE name = ?")
XTS_STORE_STMT(CYCLE_PAGE, "SELECT id, kind, started, ended, result, counts FROM cycle "
	"WHERE job = ? AND id < ? ORDER BY id DESC LIMIT ?")

/* An upsert, not INSERT OR REPLACE: a replaced row would get a new rowid
 * (a delete and an append) instead of being updated in place. */
XTS_STORE_STMT(USER_PUT, "INSERT INTO source_user(job, " XTS_USER_COLS ") "
	"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(job, source_id) DO UPDATE SET "
	"attrs = excluded.attrs, in_scope = excluded.in_scope, scope_reason = excluded.scope_reason, "
	"is_member = excluded.is_member, manager_id = excluded.manager_id, deleted = excluded.deleted, "
	"last_seen_cycle = excluded.last_seen_cycle")
/* A new user's row: nothing happens when the row exists (changes() = 0). */
XTS_STORE_STMT(USER_INSERT, "INSERT INTO source_user(job, " XTS_USER_COLS ") "
	"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(job, source_id) DO NOTHING")
XTS_STORE_STMT(USER_GET, "SELECT " XTS_USER_COLS " FROM source_user WHERE job = ? AND source_id = ?")
/* What a provisioning-log line names a user by, without parsing its whole
 * attrs into objects (an op that writes no attribute needs no more). */
XTS_STORE_STMT(USER_IDENTITY, "SELECT json_extract(attrs, '$.displayName'), "
	"json_extract(attrs, '$.userPrincipalName') FROM source_user WHERE job = ? AND source_id = ? "
	"AND json_valid(attrs)")
XTS_STORE_STMT(USER_MARK_DELETED, "UPDATE source_user SET deleted = 1, last_seen_cycle = ? "
	"WHERE job = ? AND source_id = ?")
XTS_STORE_STMT(USER_REMOVE, "DELETE FROM source_user WHERE job = ? AND source_id = ?")
XTS_STORE_STMT(USER_PAGE, "SELECT " XTS_USER_COLS " FROM source_user WHERE job = ? AND source_id > ? "
	"ORDER BY source_id LIMIT ?")
/* The sweep's walk: the job's rows last seen before cycle ?2, in rowid
 * order (keyset ?3). NOT INDEXED: with the job's key index SQLite would
 * sort the job's rows by rowid for every page; the rowid range is one pass
 * over the table for the whole walk (migration 0007 dropped the index this
 * walk once had). */
XTS_STORE_STMT(USER_PAGE_SEEN, "SELECT " XTS_USER_COLS ", rowid FROM source_user NOT INDEXED "
	"WHERE rowid > ?3 AND job = ?1 AND last_seen_cycle < ?2 ORDER BY rowid LIMIT ?4")
XTS_STORE_STMT(USER_COUNT, "SELECT count(*) FROM source_user WHERE job = ?")
/* Every cycle's end counts the job's users in scope. NOT INDEXED: through
 * source_user_key SQLite would fetch the rows in source id order, one random
 * table page per row (100,000 users: 0.33-0.50 s); the table in rowid order
 * reads each page once (0.03 s), at the price of also reading other jobs'
 * rows. Migration 0007 dropped source_user_seen, whose (job, last_seen_cycle)
 * order had happened to keep this count sequential. */
XTS_STORE_STMT(USER_COUNT_SCOPE, "SELECT count(*) FROM source_user NOT INDEXED WHERE job = ? "
	"AND in_scope = 1 AND deleted = 0")

XTS_STORE_STMT(LINK_PUT, "INSERT INTO link(job, " XTS_LINK_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
	"ON CONFLICT(job, source_id) DO UPDATE SET target_id = excluded.target_id, "
	"exported = excluded.exported, target_state = excluded.target_state, "
	"deleted_at = excluded.deleted_at, origin = excluded.origin, updated = excluded.updated")
XTS_STORE_STMT(LINK_GET, "SELECT " XTS_LINK_COLS " FROM link WHERE job = ? AND source_id = ?")
XTS_STORE_STMT(LINK_TARGET, "SELECT target_id FROM link WHERE job = ? AND source_id = ?")
XTS_STORE_STMT(LINK_GET_BY_TARGET, "SELECT " XTS_LINK_COLS " FROM link WHERE job = ? AND target_id = ?")
XTS_STORE_STMT(LINK_SET_EXPORTED, "UPDATE link SET exported = ?, updated = ? WHERE job = ? AND source_id = ?")
XTS_STORE_STMT(LINK_SET_STATE, "UPDATE link SET target_state = ?, deleted_at = ?, updated = ? "
	"WHERE job = ? AND source_id = ?")
/* op_record's write of a link: exported (when ?1), the target state (when
 * ?3 >= 0), in one statement */
XTS_STORE_STMT(LINK_RECORD, "UPDATE link SET exported = CASE WHEN ?1 THEN ?2 ELSE exported END, "
	"target_state = CASE WHEN ?3 >= 0 THEN ?3 ELSE target_state END, "
	"deleted_at = CASE WHEN ?3 >= 0 THEN ?4 ELSE deleted_at END, updated = ?5 "
	"WHERE job = ?6 AND source_id = ?7")
XTS_STORE_STMT(LINK_REMOVE, "DELETE FROM link WHERE job = ? AND source_id = ?")
XTS_STORE_STMT(LINK_PAGE, "SELECT " XTS_LINK_COLS " FROM link WHERE job = ? AND source_id > ? "
	"ORDER BY source_id LIMIT ?")

XTS_STORE_STMT(OP_ADD, "INSERT INTO op(id, job, source_id, kind, payload, state, cycle_id, created, "
	"updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
/* Reserve ?2 ids: the block is [result - ?2, result). A row that is gone
 * (a hand-edited store) starts again past the highest op id. */
XTS_STORE_STMT(ID_RESERVE, "INSERT INTO id_block(name, next) "
	"VALUES (?1, (SELECT coalesce(max(id), 0) FROM op) + 1 + ?2) "
	"ON CONFLICT(name) DO UPDATE SET next = next + ?2 RETURNING next")
XTS_STORE_STMT(OP_GET, "SELECT " XTS_OP_COLS " FROM op WHERE id = ?")
XTS_STORE_STMT(OP_STATE, "SELECT state FROM op WHERE id = ?")
XTS_STORE_STMT(OP_START, "UPDATE op SET state = 1, attempts = attempts + 1, updated = ? "
	"WHERE id = ? AND state IN (0, 3)")
XTS_STORE_STMT(OP_DONE, "UPDATE op SET state = 2, updated = ? WHERE id = ? AND state = 1")
/* An in-flight create that succeeded becomes its user's manager op, planned
 * afresh: the reference is written once the user exists (engine_apply.c). */
XTS_STORE_STMT(OP_TO_MANAGER, "UPDATE op SET kind = 5, payload = ?, state = 0, attempts = 0, "
	"next_attempt = 0, last_error = 0, last_error_msg = NULL, updated = ? WHERE id = ? AND state = 1 "
	"AND kind = 0")
XTS_STORE_STMT(OP_FAIL, "UPDATE op SET state = 3, last_error = ?, last_error_msg = ?, next_attempt = ?, "
	"updated = ? WHERE id = ? AND state = 1")
XTS_STORE_STMT(OP_REQUEUE, "UPDATE op SET state = 0, updated = ? WHERE id = ? AND state = 1")
XTS_STORE_STMT(OP_CANCEL, "UPDATE op SET state = 2, updated = ? WHERE id = ? AND state <> 2")
XTS_STORE_STMT(OP_SET_PAYLOAD, "UPDATE op SET payload = ?, updated = ? WHERE id = ? AND state IN (0, 3, 4)")
XTS_STORE_STMT(OP_PAGE, "SELECT " XTS_OP_COLS " FROM op WHERE job = ? AND state = ? AND id > ? "
	"ORDER BY id LIMIT ?")
XTS_STORE_STMT(OP_PAGE_DUE, "SELECT " XTS_OP_COLS " FROM op WHERE job = ? AND state = ? AND id > ? "
	"AND next_attempt <= ? ORDER BY id LIMIT ?")
/* The apply window's walks: reference (manager, kind 5) ops only, or every
 * other kind, filtered in SQL so that skipped rows are never decoded. */
XTS_STORE_STMT(OP_PAGE_REFS, "SELECT " XTS_OP_COLS " FROM op WHERE job = ? AND state = ? AND id > ? "
	"AND (kind = 5) = ? ORDER BY id LIMIT ?")
XTS_STORE_STMT(OP_PAGE_DUE_REFS, "SELECT " XTS_OP_COLS " FROM op WHERE job = ? AND state = ? AND id > ? "
	"AND next_attempt <= ? AND (kind = 5) = ? ORDER BY id LIMIT ?")
XTS_STORE_STMT(OP_FIND_OPEN, "SELECT " XTS_OP_COLS " FROM op WHERE job = ?1 AND source_id = ?2 "
	"AND state <> 2 AND (?3 < 0 OR kind = ?3) ORDER BY id DESC LIMIT 1")
XTS_STORE_STMT(OP_COUNT, "SELECT count(*) FROM op WHERE job = ? AND state = ?")
XTS_STORE_STMT(JOB_UNTOUCHED, "SELECT NOT EXISTS (SELECT 1 FROM op WHERE job = ?1 AND state <> 2) "
	"AND NOT EXISTS (SELECT 1 FROM link WHERE job = ?1)")
XTS_STORE_STMT(OP_RELEASE, "UPDATE op SET state = 0, updated = ? WHERE job = ? AND state = 4")
XTS_STORE_STMT(OP_DUE_NOW, "UPDATE op SET next_attempt = 0, updated = ? WHERE job = ? AND source_id = ? "
	"AND state = 3")
XTS_STORE_STMT(OP_DUE_NOW_JOB, "UPDATE op SET next_attempt = 0, updated = ? WHERE job = ? AND state = 3 "
	"AND next_attempt > 0")
/* Deferred manager references (ReferenceNotYetProvisioned) whose manager
 * has a target user now: due at once, not after their escrow back-off. */
XTS_STORE_STMT(OP_REFS_DUE, "UPDATE op SET next_attempt = 0, updated = ?1 WHERE job = ?2 AND state = 3 "
	"AND kind = 5 AND next_attempt > 0 AND last_error = ?3 "
	"AND last_error_msg LIKE 'ReferenceNotYetProvisioned:%' AND EXISTS (SELECT 1 FROM link "
	"WHERE link.job = ?2 AND link.source_id = json_extract(op.payload, '$.manager'))")
XTS_STORE_STMT(OP_PURGE, "DELETE FROM op WHERE job = ? AND state = 2 AND updated < ?")
/* Housekeeping (xts_store_housekeep): a chunk of a job's done ops updated
 * before ?2 (oldest first), its cycle rows but the last ?2, and mails sent
 * before ?1. */
XTS_STORE_STMT(OP_PURGE_CHUNK, "DELETE FROM op WHERE id IN (SELECT id FROM op WHERE job = ?1 AND state = 2 "
	"AND updated < ?2 ORDER BY id LIMIT ?3)")
XTS_STORE_STMT(CYCLE_PURGE, "DELETE FROM cycle WHERE job = ?1 AND id <= (SELECT max(id) FROM cycle "
	"WHERE job = ?1) - ?2")
XTS_STORE_STMT(OB_PURGE, "DELETE FROM outbox WHERE sent_at > 0 AND sent_at < ?")

/* member's key is (job, member_id, group_id) (migration 0003): the group-first
 * statements below scan the job's members once. */
XTS_STORE_STMT(MEM_ADD, "INSERT OR IGNORE INTO member(job, group_id, member_id) VALUES (?, ?, ?)")
XTS_STORE_STMT(MEM_REMOVE, "DELETE FROM member WHERE job = ? AND group_id = ? AND member_id = ?")
XTS_STORE_STMT(MEM_CLEAR_GROUP, "DELETE FROM member WHERE job = ? AND group_id = ?")
/* the plan's per-user question: a seek and no aggregate (count's context
 * and second step cost a quarter of this lookup) */
XTS_STORE_STMT(MEM_ANY, "SELECT EXISTS (SELECT 1 FROM member WHERE job = ? AND member_id = ?)")
XTS_STORE_STMT(MEM_PAGE_GROUP, "SELECT group_id, member_id FROM member WHERE job = ? AND group_id = ? "
	"AND member_id > ? ORDER BY member_id LIMIT ?")
XTS_STORE_STMT(MEM_PAGE_ALL, "SELECT group_id, member_id FROM member WHERE job = ?1 "
	"AND (member_id, group_id) > (?3, ?2) ORDER BY member_id, group_id LIMIT ?4")

XTS_STORE_STMT(OB_ADD, "INSERT INTO outbox(job, event_key, recipients, subject, body, created, "
	"next_attempt) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(job, event_key) DO NOTHING")
XTS_STORE_STMT(OB_ID, "SELECT id FROM outbox WHERE job = ? AND event_key = ?")
XTS_STORE_STMT(OB_GET, "SELECT " XTS_MAIL_COLS " FROM outbox WHERE id = ?")
XTS_STORE_STMT(OB_PAGE_DUE, "SELECT " XTS_MAIL_COLS " FROM outbox WHERE sent_at = 0 "
	"AND next_attempt <= ? AND id > ? ORDER BY id LIMIT ?")
XTS_STORE_STMT(OB_NEXT, "SELECT coalesce(min(next_attempt) + 1, 0) FROM outbox WHERE sent_at = 0 "
	"AND next_attempt < ?")
XTS_STORE_STMT(OB_SENT, "UPDATE outbox SET sent_at = ? WHERE id = ? AND sent_at = 0")
XTS_STORE_STMT(OB_FAILED, "UPDATE outbox SET attempts = attempts + 1, next_attempt = ?, last_error = ? "
	"WHERE id = ? AND sent_at = 0")
