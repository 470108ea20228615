-- SPDX-License-Identifier: MIT
-- xtsync shadow store, version 1: jobs, source users, links, pending
-- operations, assigned-group membership, cycle history, notification outbox.
-- Applied by lib/store.c inside one transaction (user_version = 1); it holds
-- no data and no PRAGMAs that cannot run inside a transaction.
-- Times are wall-clock milliseconds since the epoch; 0 means none.

CREATE TABLE job (
	name TEXT PRIMARY KEY NOT NULL,
	delta_link TEXT,
	groups_delta_link TEXT,
	schema_fingerprint TEXT,
	state INTEGER NOT NULL DEFAULT 0,          -- enum xts_job_state
	state_reason TEXT,
	quarantine_since INTEGER NOT NULL DEFAULT 0,
	next_retry INTEGER NOT NULL DEFAULT 0,
	retry_step INTEGER NOT NULL DEFAULT 0,
	cycle_counter INTEGER NOT NULL DEFAULT 0,
	last_cycle_start INTEGER NOT NULL DEFAULT 0,
	last_cycle_end INTEGER NOT NULL DEFAULT 0,
	last_cycle_result TEXT,
	counts TEXT                                 -- JSON object
) WITHOUT ROWID;

CREATE TABLE source_user (
	job TEXT NOT NULL REFERENCES job(name) ON DELETE CASCADE,
	source_id TEXT NOT NULL,
	attrs TEXT,                                 -- JSON object: selected attributes only
	in_scope INTEGER NOT NULL DEFAULT 0,
	scope_reason TEXT,
	is_member INTEGER NOT NULL DEFAULT 1,
	manager_id TEXT,
	deleted INTEGER NOT NULL DEFAULT 0,
	last_seen_cycle INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (job, source_id)
) WITHOUT ROWID;
CREATE INDEX source_user_seen ON source_user(job, last_seen_cycle);

CREATE TABLE link (
	job TEXT NOT NULL REFERENCES job(name) ON DELETE CASCADE,
	source_id TEXT NOT NULL,
	target_id TEXT NOT NULL,
	exported TEXT,                              -- JSON object: last written values
	target_state INTEGER NOT NULL DEFAULT 0,    -- enum xts_target_state
	deleted_at INTEGER NOT NULL DEFAULT 0,
	origin INTEGER NOT NULL DEFAULT 0,          -- enum xts_link_origin
	created INTEGER NOT NULL DEFAULT 0,
	updated INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (job, source_id),
	UNIQUE (job, target_id)
) WITHOUT ROWID;

CREATE TABLE op (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
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
CREATE INDEX op_job_state ON op(job, state, id);
CREATE INDEX op_job_source ON op(job, source_id, id);

CREATE TABLE member (
	job TEXT NOT NULL REFERENCES job(name) ON DELETE CASCADE,
	group_id TEXT NOT NULL,
	member_id TEXT NOT NULL,
	PRIMARY KEY (job, group_id, member_id)
) WITHOUT ROWID;
CREATE INDEX member_by_member ON member(job, member_id);

CREATE TABLE cycle (
	job TEXT NOT NULL REFERENCES job(name) ON DELETE CASCADE,
	id INTEGER NOT NULL,
	kind INTEGER NOT NULL,                      -- enum xts_cycle_kind
	started INTEGER NOT NULL,
	ended INTEGER NOT NULL DEFAULT 0,
	result TEXT,
	counts TEXT,                                -- JSON object
	PRIMARY KEY (job, id)
) WITHOUT ROWID;

-- Not tied to job rows by a foreign key: a mail about a job that is then
-- removed from the config must still go out.
CREATE TABLE outbox (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	job TEXT NOT NULL,
	event_key TEXT NOT NULL,
	recipients TEXT NOT NULL,
	subject TEXT NOT NULL,
	body TEXT NOT NULL,
	created INTEGER NOT NULL,
	sent_at INTEGER NOT NULL DEFAULT 0,
	attempts INTEGER NOT NULL DEFAULT 0,
	next_attempt INTEGER NOT NULL DEFAULT 0,
	last_error TEXT,
	UNIQUE (job, event_key)
);
CREATE INDEX outbox_due ON outbox(sent_at, next_attempt);
