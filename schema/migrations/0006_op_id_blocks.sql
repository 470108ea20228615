-- SPDX-License-Identifier: MIT
-- xtsync shadow store, version 6: op ids come from blocks reserved in
-- id_block instead of AUTOINCREMENT.
--
-- Why: AUTOINCREMENT reads and rewrites the table's row in sqlite_sequence
-- at every INSERT statement, and a cycle inserts one or two ops per user
-- (benchmark 1: 4 % of the read phase's instructions). The guarantee is
-- kept: an op id is never handed out twice, not even after the highest op
-- was deleted or the daemon restarted. lib/store_ops.c reserves 1,024 ids at a time by
-- raising id_block.next in the transaction that uses the first of them,
-- and forgets its block when a transaction or savepoint rolls back; ids of
-- a block left unused when the daemon stops are skipped.
-- Applied by lib/store.c inside one transaction (user_version = 6).

CREATE TABLE id_block (
	name TEXT PRIMARY KEY NOT NULL,
	next INTEGER NOT NULL                      -- the first id not yet reserved
) WITHOUT ROWID;
INSERT INTO id_block(name, next) VALUES ('op', 1 + max(
	coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'op'), 0),
	coalesce((SELECT max(id) FROM op), 0)));

CREATE TABLE op_v6 (
	id INTEGER PRIMARY KEY,
	job TEXT NOT NULL REFERENCES job(name) ON DELETE CASCADE,
	source_id TEXT NOT NULL,
	kind INTEGER NOT NULL,                      -- enum xts_op_kind
	payload TEXT,                               -- JSON
	state INTEGER NOT NULL,                     -- enum xts_op_state
	attempts INTEGER NOT NULL DEFAULT 0,
	next_attempt INTEGER NOT NULL DEFAULT 0,
	last_error INTEGER NOT NULL DEFAULT 0,
	last_error_msg TEXT,
	cycle_id INTEGER NOT NULL DEFAULT 0,
	created INTEGER NOT NULL,
	updated INTEGER NOT NULL
);
INSERT INTO op_v6 SELECT id, job, source_id, kind, payload, state, attempts, next_attempt,
	last_error, last_error_msg, cycle_id, created, updated FROM op ORDER BY id;
DROP TABLE op;
ALTER TABLE op_v6 RENAME TO op;
CREATE INDEX op_job_state ON op(job, state, id);
CREATE INDEX op_job_source ON op(job, source_id, id);
