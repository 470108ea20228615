-- SPDX-License-Identifier: MIT
-- xtsync shadow store, version 7: source_user_seen (job, last_seen_cycle)
-- goes.
--
-- Why: the index served one walk, the sweep at the end of an initial cycle
-- (users the full read did not return), yet every new user paid an insert
-- into it and every user a later cycle returned paid a move within it: 7.5 %
-- of the engine's instructions per new user in benchmark 1 (57 M of 765 M
-- over 10,000 users), an index append that splits a page every ~130 users.
-- The sweep now walks the table in rowid order (lib/store_sql.h,
-- USER_PAGE_SEEN): one pass over the rows, at the end of a cycle that has
-- just read every user of the job from Graph.
-- Applied by lib/store.c inside one transaction (user_version = 7).

DROP INDEX IF EXISTS source_user_seen;
