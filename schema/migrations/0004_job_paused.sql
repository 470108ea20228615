-- SPDX-License-Identifier: MIT
-- xtsync shadow store, version 4: `xtsyncctl pause JOB` is stored, so a
-- paused job stays paused across a restart of the daemon (an upgrade, a
-- reboot) until `xtsyncctl resume JOB`. `restart JOB` does not touch it.
-- Applied by lib/store.c inside one transaction (user_version = 4).

ALTER TABLE job ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;
