#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# System test of the xtsyncd process and xtsyncctl (TAP): options, exit codes,
# --check-config, the control socket (status, reload, malformed and hostile
# requests, peer check), SIGHUP/SIGTERM, and sd_notify datagrams received by a
# small python listener. It does not test sync cycles (the engine's tests do).
set -u
B=${XTS_BUILD_ROOT:?}/daemon
S=${XTS_SOURCE_ROOT:?}
PY=/usr/bin/python3
D=$(mktemp -d /tmp/xts_daemon_test.XXXXXX)
chmod 755 "$D"
n=0
fails=0
DPID=
NPID=

ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "#   $l"; done; }
check() { # description, then a command; ok when it succeeds
	local what=$1; shift
	if "$@"; then ok "$what"; else nok "$what" "command: $*"; fi
}
cleanup() {
	[ -n "$DPID" ] && kill "$DPID" 2>/dev/null
	[ -n "$NPID" ] && kill "$NPID" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$D"
}
trap cleanup EXIT

mkconf() { sed "s|@DIR@|$D|g" "$S/tests/integration/configs/$1" >"$D/$2"; }
printf 'test-secret\n' >"$D/secret"
chmod 600 "$D/secret"
mkconf good.conf xtsync.conf
mkconf broken.conf broken.conf
CTL=("$B/xtsyncctl" -c "$D/xtsync.conf")

# request RAW-BYTES-FILE: send the file's bytes on the socket, print the replies
cat >"$D/req.py" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
s.connect(sys.argv[1])
s.sendall(open(sys.argv[2], 'rb').read())
want = int(sys.argv[3]) if len(sys.argv) > 3 else 1
out = b''
try:
    while out.count(b'\n') < want:
        c = s.recv(65536)
        if not c:
            break
        out += c
except socket.timeout:
    pass
sys.stdout.write(out.decode('utf-8', 'replace'))
EOF
# sd_notify listener: appends each datagram (newlines as '|') to a file
cat >"$D/notify.py" <<'EOF'
import socket, sys, os
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], 'a', buffering=1) as f:
    while True:
        m = s.recv(4096).decode('utf-8', 'replace')
        f.write(m.replace('\n', '|') + '\n')
EOF

wait_for() { # seconds, command...
	local t=$(( $1 * 10 )); shift
	while [ $t -gt 0 ]; do "$@" && return 0; sleep 0.1; t=$((t - 1)); done
	return 1
}
req() { printf '%s' "$1" >"$D/req.bin"; $PY "$D/req.py" "$D/control.sock" "$D/req.bin" "${2:-1}"; }

echo "1..53"

# --- options and --check-config -------------------------------------------
out=$("$B/xtsyncd" --version); rc=$?
[ $rc -eq 0 ] && [[ $out == "xtsyncd "[0-9]* ]] && ok "--version prints the version" || nok "--version" "$out rc=$rc"
out=$("$B/xtsyncd" --no-such-option 2>&1); rc=$?
[ $rc -eq 2 ] && ok "unknown option exits 2" || nok "unknown option exits 2" "rc=$rc"
out=$("$B/xtsyncd" -c "$D/xtsync.conf" --dry-run 2>&1); rc=$?
[ $rc -eq 2 ] && [[ $out == *"--dry-run needs --once"* ]] && ok "--dry-run without --once exits 2" || nok "--dry-run alone" "$out rc=$rc"
out=$("$B/xtsyncd" -c "$D/xtsync.conf" --check-config 2>&1); rc=$?
[ $rc -eq 0 ] && [[ $out == *": ok (2 tenant(s), 1 job(s))"* ]] && ok "--check-config on a good config exits 0" || nok "--check-config good" "$out rc=$rc"
out=$("$B/xtsyncd" -c "$D/broken.conf" --check-config 2>&1); rc=$?
[ $rc -eq 2 ] && ok "--check-config on a broken config exits 2" || nok "--check-config broken exit" "rc=$rc" "$out"
for want in "$D/broken.conf:5: log_level: 'chatty' is not one of" \
	"$D/broken.conf:9: client_id: 'not-a-guid' is not a GUID" \
	"$D/broken.conf:12: [job \"loop\"]: scope = assigned needs assigned_groups" \
	"$D/broken.conf:14: [job \"loop\"]: source and target are the same tenant 'contoso'" \
	"$D/broken.conf:15: interval: 'soon' is not a duration"; do
	[[ $out == *"$want"* ]] && ok "check-config reports: ${want#"$D/"}" || nok "check-config reports: ${want#"$D/"}" "$out"
done
out=$("$B/xtsyncd" -c "$D/nonexistent.conf" --check-config 2>&1); rc=$?
[ $rc -eq 2 ] && [[ $out == *"nonexistent.conf: cannot open"* ]] && ok "missing config file exits 2 with a message" || nok "missing config" "$out rc=$rc"
chmod 644 "$D/secret"
out=$("$B/xtsyncd" -c "$D/xtsync.conf" --check-config 2>&1); rc=$?
chmod 600 "$D/secret"
[ $rc -eq 2 ] && [[ $out == *"xtsync.conf:14: client_secret_file: $D/secret is readable by others"* ]] \
	&& ok "a world-readable secret file is refused" || nok "readable secret refused" "$out"

# a job's schema file is validated too, its problems reported at the schema line
printf '{"synchronizationRules": 5}\n' >"$D/bad_schema.json"
sed 's|^interval = 1h$|interval = 1h\nschema = bad_schema.json|' "$D/xtsync.conf" >"$D/schema.conf"
out=$("$B/xtsyncd" -c "$D/schema.conf" --check-config 2>&1); rc=$?
[ $rc -eq 2 ] && [[ $out == "$D/schema.conf:30: schema $D/bad_schema.json: \$.synchronizationRules:"* ]] \
	&& ok "--check-config validates each job's schema file (FILE:LINE of schema =)" || nok "schema check" "rc=$rc" "$out"

# a config with problems elsewhere still has each job's schema checked: one
# run prints every problem (an expression syntax error and a bad value here)
$PY - "$S/schema/cross-tenant-schema.json" "$D/broken_expr.json" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
for am in s["synchronizationRules"][0]["objectMappings"][0]["attributeMappings"]:
    if am["targetAttributeName"] == "accountEnabled":
        am["source"] = {"type": "Function", "name": "Not", "expression": "Not([accountEnabled]", "parameters": []}
json.dump(s, open(sys.argv[2], "w"))
EOF
sed 's|^interval = 1h$|interval = 1h\nschema = broken_expr.json\ndeprovision = remove|' "$D/xtsync.conf" >"$D/both.conf"
out=$("$B/xtsyncd" -c "$D/both.conf" --check-config 2>&1); rc=$?
[ $rc -eq 2 ] && [[ $out == "$D/both.conf:30: schema $D/broken_expr.json: "*".source.expression: column 21: expected ')'"* ]] \
	&& [[ $out == *$'\n'"$D/both.conf:31: deprovision: 'remove' is not one of"* ]] \
	&& ok "--check-config prints schema and config problems together, by line" || nok "schema + config problems" "rc=$rc" "$out"
sed 's|^interval = 1h$|interval = 1h\nschema = no_such_schema.json\ndeprovision = remove|' "$D/xtsync.conf" >"$D/noschema.conf"
out=$("$B/xtsyncd" -c "$D/noschema.conf" --check-config 2>&1); rc=$?
[ $rc -eq 2 ] && [ "$(grep -c no_such_schema.json <<<"$out")" -eq 1 ] && [[ $out == *"noschema.conf:31: deprovision:"* ]] \
	&& ok "a missing schema file is reported once, beside the other problems" || nok "missing schema once" "rc=$rc" "$out"

# conf/xtsync.conf, with its credentials provided the systemd way
mkdir -m 700 "$D/creds"
for c in smtp-password contoso-secret fabrikam-secret; do printf 'x\n' >"$D/creds/$c"; chmod 600 "$D/creds/$c"; done
out=$(CREDENTIALS_DIRECTORY="$D/creds" "$B/xtsyncd" -c "$S/conf/xtsync.conf" --check-config 2>&1); rc=$?
[ $rc -eq 0 ] && ok "conf/xtsync.conf passes --check-config (credentials in \$CREDENTIALS_DIRECTORY)" || nok "example config" "rc=$rc" "$out"
out=$(env -u CREDENTIALS_DIRECTORY "$B/xtsyncd" -c "$S/conf/xtsync.conf" --check-config 2>&1); rc=$?
[ $rc -eq 0 ] && [[ $out == *"xtsync.conf:28: client_secret_file: systemd credential 'contoso-secret' not checked"* ]] \
	&& ok "without \$CREDENTIALS_DIRECTORY the example passes, its credentials noted as unchecked" || nok "example without creds" "rc=$rc" "$out"
mkdir -m 700 "$D/nocreds"
out=$(CREDENTIALS_DIRECTORY="$D/nocreds" "$B/xtsyncd" -c "$S/conf/xtsync.conf" --check-config 2>&1); rc=$?
[ $rc -eq 2 ] && [[ $out == *"xtsync.conf:28: client_secret_file: "*"contoso-secret"* ]] \
	&& ok "a credential missing from \$CREDENTIALS_DIRECTORY is a problem" || nok "missing credential" "rc=$rc" "$out"

# --- --once without a reachable tenant -------------------------------------
out=$(timeout 20 "$B/xtsyncd" -c "$D/xtsync.conf" --once 2>&1); rc=$?
[ $rc -eq 1 ] && ok "--once with failing cycles exits 1" || nok "--once exit 1" "rc=$rc" "$out"
out=$(timeout 20 "$B/xtsyncd" -c "$D/xtsync.conf" --once --job nope 2>&1); rc=$?
[ $rc -eq 2 ] && [[ $out == *"--job nope: no such job"* ]] && ok "--once --job with an unknown job exits 2" || nok "--job unknown" "rc=$rc" "$out"

# --- the daemon --------------------------------------------------------------
$PY "$D/notify.py" "$D/notify.sock" "$D/notify.log" &
NPID=$!
wait_for 5 test -S "$D/notify.sock"
NOTIFY_SOCKET="$D/notify.sock" WATCHDOG_USEC=400000 "$B/xtsyncd" -c "$D/xtsync.conf" --foreground 2>"$D/daemon.log" &
DPID=$!
if wait_for 10 test -S "$D/control.sock"; then ok "daemon starts and creates its control socket"; else nok "daemon starts" "$(cat "$D/daemon.log")"; fi
mode=$(stat -c %a "$D/control.sock")
[ "$mode" = 660 ] && ok "control socket mode is 0660" || nok "socket mode" "mode=$mode"
check "READY=1 sent to NOTIFY_SOCKET" wait_for 5 grep -q '^READY=1' "$D/notify.log"
check "WATCHDOG=1 sent at half of WATCHDOG_USEC" wait_for 5 grep -q '^WATCHDOG=1' "$D/notify.log"

out=$("${CTL[@]}" status); rc=$?
[ $rc -eq 0 ] && [[ $out == *"contoso-to-fabrikam"* ]] && [[ $out == *"STATE"* ]] && ok "xtsyncctl status prints a table with the job" || nok "status table" "rc=$rc" "$out"
out=$("${CTL[@]}" status --json); rc=$?
echo "$out" | $PY -c 'import json,sys; d=json.load(sys.stdin); j=d["jobs"][0]; assert d["ok"] is True and j["name"]=="contoso-to-fabrikam" and j["state"] in ("idle","running") and j["source"]=="contoso"' 2>/dev/null \
	&& ok "xtsyncctl status --json is JSON with the job's name, state and source" || nok "status --json" "$out"

# reload with a valid config adding a job
mkconf reload_add.conf xtsync.conf
out=$("${CTL[@]}" reload 2>&1); rc=$?
[ $rc -eq 0 ] && ok "xtsyncctl reload with a valid config succeeds" || nok "reload valid" "rc=$rc" "$out"
out=$("${CTL[@]}" status --json)
[[ $out == *'"fabrikam-to-contoso"'* ]] && ok "the new job appears in status after reload" || nok "new job after reload" "$out"
check "RELOADING=1 with MONOTONIC_USEC sent" grep -q '^RELOADING=1|MONOTONIC_USEC=[0-9]*$' "$D/notify.log"

# reload with an invalid config: refused, old config keeps running
cp "$D/xtsync.conf" "$D/good_copy.conf"
cp "$D/broken.conf" "$D/xtsync.conf"
out=$("${CTL[@]}" -s "$D/control.sock" reload 2>&1); rc=$?
[ $rc -eq 1 ] && [[ $out == *"configuration has errors, not reloading"* ]] && [[ $out == *"xtsync.conf:15: interval"* ]] \
	&& ok "reload with an invalid config is refused with its FILE:LINE problems" || nok "reload invalid" "rc=$rc" "$out"
check "daemon log says 'configuration has errors, not reloading'" grep -q 'configuration has errors, not reloading' "$D/daemon.log"
out=$("$B/xtsyncctl" -s "$D/control.sock" status --json)
[[ $out == *'"fabrikam-to-contoso"'* ]] && ok "old config still running after a refused reload" || nok "old config kept" "$out"

# SIGHUP: invalid (refused) then valid (job removed)
before=$(grep -c 'configuration has errors, not reloading' "$D/daemon.log")
kill -HUP "$DPID"
refusals_above() { [ "$(grep -c 'configuration has errors, not reloading' "$D/daemon.log")" -gt "$1" ]; }
wait_for 5 refusals_above "$before" \
	&& ok "SIGHUP with an invalid config is refused with a log line" || nok "SIGHUP invalid" "$(tail -5 "$D/daemon.log")"
# a whole-file problem is logged as FILE: message (no line), as --check-config prints it
rm "$D/xtsync.conf"
before=$(grep -c 'configuration has errors, not reloading' "$D/daemon.log")
kill -HUP "$DPID"
wait_for 5 refusals_above "$before"
grep -q "xtsync.conf: cannot open: No such file or directory" "$D/daemon.log" && ! grep -q 'xtsync.conf:0:' "$D/daemon.log" \
	&& ok "SIGHUP without a config file: refused, logged as 'FILE: cannot open: ...'" || nok "SIGHUP no file" "$(tail -5 "$D/daemon.log")"
mkconf good.conf xtsync.conf
kill -HUP "$DPID"
wait_for 5 sh -c "! '$B/xtsyncctl' -s '$D/control.sock' status --json | grep -q fabrikam-to-contoso" \
	&& ok "SIGHUP with a valid config applies it (job removed)" || nok "SIGHUP valid" "$(tail -5 "$D/daemon.log")"

# job commands
out=$("${CTL[@]}" pause contoso-to-fabrikam); rc=$?
st=$("${CTL[@]}" status --json | $PY -c 'import json,sys; print(json.load(sys.stdin)["jobs"][0]["state"])')
[ $rc -eq 0 ] && [ "$st" = paused ] && ok "pause puts the job in state paused" || nok "pause" "rc=$rc state=$st $out"
out=$("${CTL[@]}" sync contoso-to-fabrikam 2>&1); rc=$?
[ $rc -eq 1 ] && [[ $out == *"is paused (xtsyncctl pause); \`xtsyncctl resume\` runs it again"* ]] && ok "sync of a paused job is refused (exit 1)" || nok "sync paused" "rc=$rc $out"
out=$("${CTL[@]}" resume contoso-to-fabrikam); rc=$?
st=$("${CTL[@]}" status --json | $PY -c 'import json,sys; print(json.load(sys.stdin)["jobs"][0]["state"])')
[ $rc -eq 0 ] && [ "$st" != paused ] && ok "resume ends the paused state" || nok "resume" "rc=$rc state=$st"
out=$("${CTL[@]}" sync no-such-job 2>&1); rc=$?
[ $rc -eq 2 ] && [[ $out == *"no job named 'no-such-job'"* ]] && ok "sync of an unknown job is a usage error (exit 2) with a message" || nok "sync unknown" "rc=$rc $out"
out=$("${CTL[@]}" sync 2>&1); rc=$?
[ $rc -eq 2 ] && ok "a missing JOB argument is a usage error (exit 2)" || nok "usage exit 2" "rc=$rc"

# malformed and hostile requests
out=$(req $'garbage\n')
[[ $out == *'"ok":false'*'malformed request: not JSON'* ]] && ok "garbage gets an error reply" || nok "garbage" "$out"
out=$(req $'[1,2]\n{"cmd":42}\n' 2)
[[ $(grep -c 'expected a JSON object with a string' <<<"$out") -eq 2 ]] && ok "non-object JSON and a non-string cmd get error replies" || nok "non-object" "$out"
out=$(req $'{"cmd":"frobnicate"}\n{"cmd":"pause"}\n' 2)
[[ $out == *"unknown command 'frobnicate'"* ]] && [[ $out == *"'pause' needs a \\\"job\\\" name"* ]] && ok "unknown command and missing job get error replies" || nok "unknown cmd" "$out"
head -c 70000 /dev/zero | tr '\0' 'a' >"$D/big.bin"
out=$($PY "$D/req.py" "$D/control.sock" "$D/big.bin")
[[ $out == *"request too large"* ]] && ok "an oversized request gets 'request too large'" || nok "oversized" "$out"
# a silent client must not block others; many clients at once
exec 7> >(exec $PY -c 'import socket,sys,time; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); time.sleep(4)' "$D/control.sock")
sleep 0.3
pids=()
for i in $(seq 1 20); do "${CTL[@]}" status --json >"$D/many.$i" 2>&1 & pids+=($!); done
okc=0
for i in $(seq 1 20); do wait "${pids[$((i - 1))]}" && grep -q '"ok": true' "$D/many.$i" && okc=$((okc + 1)); done
[ $okc -eq 20 ] && ok "20 concurrent clients all answered while a silent client is connected" || nok "concurrent clients" "$okc/20"
exec 7>&-
check "daemon survived all of it" kill -0 "$DPID"

# peer check (needs root to switch users)
if [ "$(id -u)" -ne 0 ]; then
	for i in 1 2; do n=$((n + 1)); echo "ok $n # SKIP peer checks need root"; done
else
out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$B/xtsyncctl" -s "$D/control.sock" status 2>&1); rc=$?
[ $rc -eq 1 ] && [[ $out == *"Permission denied"* ]] && ok "a non-permitted user cannot connect (socket mode)" || nok "nobody connect" "rc=$rc $out"
chmod 666 "$D/control.sock"
out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$B/xtsyncctl" -s "$D/control.sock" status 2>&1); rc=$?
[ $rc -eq 1 ] && [[ $out == *"permission denied: root or a member of control_group required"* ]] \
	&& grep -q 'refused connection from uid 65534' "$D/daemon.log" \
	&& ok "even on a 0666 socket, SO_PEERCRED refuses a non-permitted user (reply + log line)" || nok "peercred" "rc=$rc $out"
fi

# SIGTERM
kill -TERM "$DPID"
t0=$(date +%s%N)
wait "$DPID"; rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
DPID=
[ $rc -eq 0 ] && [ $ms -lt 5000 ] && ok "SIGTERM: exit 0 in ${ms} ms" || nok "SIGTERM" "rc=$rc ms=$ms" "$(tail -5 "$D/daemon.log")"
check "STOPPING=1 sent" grep -q '^STOPPING=1' "$D/notify.log"
check "control socket removed on exit" test ! -e "$D/control.sock"

# control_group: a member may use the socket
grp=$(getent group 65534 | cut -d: -f1)
sed -i "s|^log_level = debug|log_level = debug\ncontrol_group = $grp|" "$D/xtsync.conf"
"$B/xtsyncd" -c "$D/xtsync.conf" 2>"$D/daemon2.log" &
DPID=$!
wait_for 10 test -S "$D/control.sock"
if [ "$(id -u)" -eq 0 ]; then
	# primary group something else, control_group only as a supplementary group
	out=$(setpriv --reuid=65534 --regid=65533 --groups=65534 "$B/xtsyncctl" -s "$D/control.sock" status 2>&1); rc=$?
else
	out="(not root)"; rc=0
fi
[ $rc -eq 0 ] && [[ $out == *contoso-to-fabrikam* || $out == "(not root)" ]] && ok "a member of control_group ($grp, supplementary) is allowed" || nok "control_group member" "rc=$rc $out" "$(cat "$D/daemon2.log")"
kill -INT "$DPID"; wait "$DPID"; rc=$?; DPID=
[ $rc -eq 0 ] && ok "SIGINT: exit 0" || nok "SIGINT" "rc=$rc"

[ "$n" -eq 53 ] || echo "# planned 53, ran $n"
exit 0
