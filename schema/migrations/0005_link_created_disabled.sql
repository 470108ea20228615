-- SPDX-License-Identifier: MIT
-- xtsync shadow store, version 5: a link's target_state agrees with the
-- accountEnabled it last wrote.
--
-- Before version 5 a user created disabled (the built-in schema maps
-- accountEnabled, so a disabled source user is created disabled) was recorded
-- active (0). When it then left scope, deprovision = disable sent a PATCH
-- that changed nothing and logged accountEnabled false -> false. The engine
-- now records the state its write leaves; this brings older links in line:
-- an active link whose exported values say accountEnabled false is disabled
-- (1). Soft-deleted links (2) keep their state. Exported values that are not
-- valid JSON are left alone (CASE, not AND: SQLite does not promise to
-- evaluate AND's operands in order, and json_extract fails on bad JSON).
-- Applied by lib/store.c inside one transaction (user_version = 5).

UPDATE link SET target_state = 1
	WHERE target_state = 0
	AND CASE WHEN json_valid(exported) THEN json_extract(exported, '$.accountEnabled') = 0 ELSE 0 END;
