-- SPDX-License-Identifier: MIT
-- xtsync shadow store, version 2: source_user and link become rowid tables
-- keyed by a unique index on (job, source_id), and the unused
-- source_user_seen index goes.
--
-- Why: both rows carry a JSON object (~650 bytes for the built-in schema).
-- In a WITHOUT ROWID table every interior b-tree cell holds a whole row, so
-- a 4 KiB interior page had a fan-out of about 4: a 100,000-user tree was
-- ~9 levels deep, every lookup read that many pages and every page of 100
-- inserts (random UUID keys) rewrote hundreds of interior pages into the WAL
-- (~19 WAL frames per user in benchmark 1). As rowid tables, new rows are
-- appended in insertion order and only the small key index is scattered.
-- source_user_seen was never chosen by the planner (the sweep walks the
-- primary key); version 2 indexes (job, last_seen_cycle) again on the rowid
-- table, where rows of one cycle are in insertion order, for the sweep walk.
-- Applied by lib/store.c inside one transaction (user_version = 2).

CREATE TABLE source_user_v2 (
	job TEXT NOT NULL REFERENCES job(name) ON DELETE CASCADE,
	source_id TEXT NOT NULL,
	attrs TEXT,                                 -- JSON object: selected attributes only
	in_scope INTEGER NOT NULL DEFAULT 0,
	scope_reason TEXT,
	is_member INTEGER NOT NULL DEFAULT 1,
	manager_id TEXT,
	deleted INTEGER NOT NULL DEFAULT 0,
	last_seen_cycle INTEGER NOT NULL DEFAULT 0
);
INSERT INTO source_user_v2(job, source_id, attrs, in_scope, scope_reason, is_member, manager_id,
	deleted, last_seen_cycle)
	SELECT job, source_id, attrs, in_scope, scope_reason, is_member, manager_id, deleted,
		last_seen_cycle FROM source_user ORDER BY job, source_id;
DROP TABLE source_user;
ALTER TABLE source_user_v2 RENAME TO source_user;
CREATE UNIQUE INDEX source_user_key ON source_user(job, source_id);
CREATE INDEX source_user_seen ON source_user(job, last_seen_cycle);

CREATE TABLE link_v2 (
	job TEXT NOT NULL REFERENCES job(name) ON DELETE CASCADE,
	source_id TEXT NOT NULL,
	target_id TEXT NOT NULL,
	exported TEXT,                              -- JSON object: last written values
	target_state INTEGER NOT NULL DEFAULT 0,    -- enum xts_target_state
	deleted_at INTEGER NOT NULL DEFAULT 0,
	origin INTEGER NOT NULL DEFAULT 0,          -- enum xts_link_origin
	created INTEGER NOT NULL DEFAULT 0,
	updated INTEGER NOT NULL DEFAULT 0
);
INSERT INTO link_v2(job, source_id, target_id, exported, target_state, deleted_at, origin, created,
	updated)
	SELECT job, source_id, target_id, exported, target_state, deleted_at, origin, created, updated
		FROM link ORDER BY job, source_id;
DROP TABLE link;
ALTER TABLE link_v2 RENAME TO link;
CREATE UNIQUE INDEX link_key ON link(job, source_id);
CREATE UNIQUE INDEX link_target ON link(job, target_id);
