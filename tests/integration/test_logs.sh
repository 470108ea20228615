#!/bin/bash
# SPDX-License-Identifier: MIT
# Integration test of `xtsyncctl logs` (daemon/ctl_logs.c) on a provisioning
# log written by the real writer (lib/provlog.c): filters, --json, --since,
# usage errors, and --follow across copytruncate and rename rotation.
# It does not start the daemon. TAP output. $1 = the store_tool binary.
set -u
tool=$1
dir=$(mktemp -d /tmp/xts-logs-XXXXXX)
log=$dir/provisioning.log
n=0
fail=0
fpid=
cleanup() { [ -n "$fpid" ] && kill "$fpid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
ok() { n=$((n+1)); echo "ok $n - $1"; }
nok() { n=$((n+1)); fail=$((fail+1)); echo "not ok $n - $1"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else nok "$what"; fi; }
logs() { "$tool" logs "$log" logs "$@"; }
put() { "$tool" provlog "$log" "$@"; }

echo "1..34"
put contoso-to-fabrikam Create success adele@contoso.example t-0001 "" 7200000   # 2 h old
put contoso-to-fabrikam Update failure alex@contoso.example t-0002 AzureActiveDirectoryForbidden
put fabrikam-to-contoso Delete success megan@fabrikam.example t-0003
put fabrikam-to-contoso StagedDelete skipped lee@fabrikam.example t-0004
check "writer produced 4 lines" test "$(wc -l <"$log")" -eq 4
check "redacted values never reach the file" bash -c "! grep -q SECRET- '$log'"

out=$(logs); rc=$?
check "logs exits 0" test $rc -eq 0
check "one readable line per entry" test "$(printf '%s\n' "$out" | wc -l)" -eq 4
line=$(printf '%s\n' "$out" | grep alex@)
check "readable line has time, job, action, status" \
	bash -c "[[ '$line' =~ ^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z\ contoso-to-fabrikam\ Update\ failure ]]"
check "readable line has user and target" bash -c "[[ '$line' == *'user=alex@contoso.example target=t-0002'* ]]"
check "readable line has changed attributes" bash -c "[[ '$line' == *'changed=displayName,employeeId '* ]]"
check "a value written unchanged is counted as re-asserted, not listed as changed" \
	bash -c "[[ '$line' == *' reasserted=1'* && '$line' != *city* ]]"
check "readable line has the error" bash -c "[[ '$line' == *'error=AzureActiveDirectoryForbidden: The operation failed.'* ]]"

check "--job filters" test "$(logs --job fabrikam-to-contoso | wc -l)" -eq 2
check "--action is case-insensitive" test "$(logs --action stageddelete | grep -c lee@)" -eq 1
check "--status filters" test "$(logs --status failure | wc -l)" -eq 1
check "--user matches the UPN" test "$(logs --user megan@fabrikam.example | grep -c ' Delete ')" -eq 1
check "--user matches the target id" test "$(logs --user t-0004 | wc -l)" -eq 1
check "filters combine" test "$(logs --job contoso-to-fabrikam --status success | grep -c adele@)" -eq 1
check "--since 1h drops the 2 h old entry" test "$(logs --since 1h | grep -c adele@)" -eq 0
check "--since 3h keeps it" test "$(logs --since 3h | grep -c adele@)" -eq 1
check "--since ISO 8601 in the future matches nothing" test "$(logs --since 2999-01-01T00:00:00Z | wc -l)" -eq 0
check "--since takes repeated units (1h30m drops the 2 h old entry; 2h30m, 1d1h and 9000 seconds keep it)" \
	test "$(logs --since 1h30m | grep -c adele@)$(logs --since 2h30m | grep -c adele@)$(logs --since 1d1h | grep -c adele@)$(logs --since 9000 | grep -c adele@)" = 0111
# a time without a zone is local time (ISO 8601; as journalctl and date -d read it)
three_ago=$(TZ=UTC-9 date -d '-3 hours' +%Y-%m-%dT%H:%M:%S)
check "--since without a zone is local time (TZ=UTC-9, 3 h ago keeps the 2 h old entry)" \
	test "$(TZ=UTC-9 "$tool" logs "$log" logs --since "$three_ago" | grep -c adele@)" -eq 1
json=$(logs --json --status failure)
check "--json prints the stored line unchanged" test "$json" = "$(grep alex@ "$log")"
check "--json output is JSON" bash -c "printf '%s' '$json' | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); assert d[\"provisioningStatusInfo\"][\"errorInformation\"][\"errorCode\"]==\"AzureActiveDirectoryForbidden\"'"

"$tool" provlog "$dir/u.log" contoso-to-fabrikam Update success 'Åsa.Novák@contoso.example' t-0201
check "--user ignores case beyond ASCII (åsa.novák finds Åsa.Novák)" \
	test "$("$tool" logs "$dir/u.log" logs --user 'åsa.novák@CONTOSO.example' | wc -l)" -eq 1
logs --since yesterday >/dev/null 2>&1; rc1=$?
logs --action Explode >/dev/null 2>&1; rc2=$?
logs extra-arg >/dev/null 2>&1; rc3=$?
logs --since 2026-11-31T00:00:00Z >/dev/null 2>&1; rc4=$?
logs --since 1h30 >/dev/null 2>&1; rc5=$?
check "usage errors exit 2 (also a day that does not exist, a number without a unit after one)" \
	test "$rc1$rc2$rc3$rc4$rc5" = 22222
"$tool" logs "$dir/missing.log" logs >"$dir/missing.out" 2>&1; rc=$?
check "a log not written yet prints nothing and exits 0" test $rc -eq 0 -a ! -s "$dir/missing.out"
"$tool" logs "$dir/no-such-dir/x.log" logs >/dev/null 2>&1; rc=$?
check "a log in a missing directory exits 1" test $rc -eq 1
printf 'not json\n{"half": \n\x1b[31m\n' >>"$log"
check "garbage lines are skipped" test "$(logs 2>/dev/null | wc -l)" -eq 4

# --follow: new lines, copytruncate, rename
fout=$dir/follow.out
"$tool" logs "$log" logs --follow --job contoso-to-fabrikam >"$fout" 2>/dev/null &
fpid=$!
wait_for() { local i; for i in $(seq 1 50); do grep -q "$1" "$fout" && return 0; sleep 0.1; done; return 1; }
put contoso-to-fabrikam Update success f1@contoso.example t-0101
put fabrikam-to-contoso Update success other@fabrikam.example t-0102
check "--follow shows an appended line" wait_for f1@contoso.example
sleep 0.3
cp "$log" "$log.1" && : >"$log"          # copytruncate
sleep 0.5
put contoso-to-fabrikam Disable success f2@contoso.example t-0103
check "--follow survives copytruncate" wait_for f2@contoso.example
mv "$log" "$log.2"                       # rename rotation
put contoso-to-fabrikam Delete success f3@contoso.example t-0104
check "--follow survives rename rotation" wait_for f3@contoso.example
# copytruncate, then more bytes than the file held before, all between two
# polls (the follower stopped meanwhile): the size alone does not show it
sleep 0.3
kill -STOP "$fpid"
cp "$log" "$log.3" && : >"$log"
put contoso-to-fabrikam Update success f4a@contoso.example t-0105
put contoso-to-fabrikam Update success f4b@contoso.example t-0106
put contoso-to-fabrikam Update success f4c@contoso.example t-0107
kill -CONT "$fpid"
check "--follow after a copytruncate that grew back past the old size between polls: no line lost" \
	bash -c "for i in \$(seq 1 50); do grep -q f4c@ '$fout' && break; sleep 0.1; done; [ \$(grep -c f4a@ '$fout') -eq 1 ] && [ \$(grep -c f4b@ '$fout') -eq 1 ] && [ \$(grep -c f4c@ '$fout') -eq 1 ]"
kill -TERM "$fpid"; wait "$fpid"; rc=$?; fpid=
check "--follow exits 0 on SIGTERM" test $rc -eq 0
check "--follow printed each entry once and no other job" \
	bash -c "[ \$(grep -c f1@ '$fout') -eq 1 ] && [ \$(grep -c f2@ '$fout') -eq 1 ] && [ \$(grep -c f3@ '$fout') -eq 1 ] && ! grep -q other@ '$fout'"
# Permission denied names who may read it (needs root to switch users).
if [ "$(id -u)" -ne 0 ]; then
	n=$((n + 1)); echo "ok $n # SKIP the permission hint needs root"
else
	pd=$(mktemp -d /tmp/xts-logs-perm-XXXXXX)
	cp "$log" "$pd/p.log"
	chmod 0640 "$pd/p.log"
	chmod 0755 "$pd"
	as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$tool" logs "$1" logs 2>&1; }
	o1=$(as_nobody "$pd/p.log"); r1=$?
	chmod 0700 "$pd"
	o2=$(as_nobody "$pd/p.log"); r2=$?
	rm -rf "$pd"
	if [ $r1 -eq 1 ] && [[ $o1 == *"Permission denied"* ]] && [[ $o1 == *"readable by group root: run as root or add your user to that group"* ]] &&
	   [ $r2 -eq 1 ] && [[ $o2 == *"its directory is not open to you"* ]]; then
		ok "permission denied: exit 1 and a hint naming the file's group (or its directory)"
	else
		nok "permission hint"; echo "#   $r1: $o1"; echo "#   $r2: $o2"
	fi
fi
[ $fail -eq 0 ]
