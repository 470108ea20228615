-- SPDX-License-Identifier: MIT
-- xtsync shadow store, version 3: membership keyed member first.
--
-- Version 1 kept member (job, group_id, member_id) plus the index
-- member_by_member (job, member_id): two b-trees keyed by random UUIDs, so
-- every recorded member was two scattered inserts (a groups page of 1,000
-- members rewrote ~2,000 leaves). The hot lookup is "how many assigned
-- groups is this user in" (once per user decision); the group-first reads
-- (walk or forget one group) happen only on a full re-read of the groups, and
-- become one pass over the job's members. One b-tree, one insert per member.
-- Applied by lib/store.c inside one transaction (user_version = 3).

CREATE TABLE member_v3 (
	job TEXT NOT NULL REFERENCES job(name) ON DELETE CASCADE,
	member_id TEXT NOT NULL,
	group_id TEXT NOT NULL,
	PRIMARY KEY (job, member_id, group_id)
) WITHOUT ROWID;
INSERT INTO member_v3(job, member_id, group_id)
	SELECT job, member_id, group_id FROM member ORDER BY job, member_id, group_id;
DROP TABLE member;
ALTER TABLE member_v3 RENAME TO member;
