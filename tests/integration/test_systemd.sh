#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The systemd unit (TAP): `systemd-analyze verify` on a copy whose binary
# paths point at the build tree, and the offline security exposure score
# (systemd 252: `systemd-analyze security --offline=true`) must be <= 1.5.
# Does not start the unit (no systemd PID 1 in CI containers); instead the
# unit's directory modes and UMask are replayed: its User= must be able to
# read xtsync.conf in the root-owned ConfigurationDirectory (systemd.exec(5):
# only that directory is not given to User=).
set -u
S=${XTS_SOURCE_ROOT:?}
B=${XTS_BUILD_ROOT:?}
U=$S/systemd/xtsyncd.service
T=$(mktemp -d /tmp/xts_systemd_test.XXXXXX)
trap 'rm -rf "$T"' EXIT
echo "1..8"
if ! command -v systemd-analyze >/dev/null; then
	for i in 1 2 3 4 5 6 7 8; do echo "ok $i # SKIP systemd-analyze not installed"; done
	exit 0
fi
sed -e "s|/usr/sbin/xtsyncd|$B/daemon/xtsyncd|g" -e "s|/usr/bin/xtsyncctl|$B/daemon/xtsyncctl|g" "$U" \
	>"$T/xtsyncd.service"
if out=$(systemd-analyze verify "$T/xtsyncd.service" 2>&1); then
	echo "ok 1 - systemd-analyze verify accepts the unit"
else
	echo "not ok 1 - systemd-analyze verify accepts the unit"; sed 's/^/#   /' <<<"$out"
fi
out=$(systemd-analyze security --offline=true "$U" 2>&1)
score=$(sed -n 's/.*Overall exposure level for xtsyncd.service: \([0-9.]*\).*/\1/p' <<<"$out")
echo "# exposure score: ${score:-unknown}"
if [ -n "$score" ] && awk -v s="$score" 'BEGIN { exit !(s <= 1.5) }'; then
	echo "ok 2 - security exposure $score <= 1.5"
else
	echo "not ok 2 - security exposure ${score:-unknown} <= 1.5"; tail -20 <<<"$out" | sed 's/^/#   /'
fi
grep -q '^Type=notify$' "$U" && grep -q '^WatchdogSec=' "$U" \
	&& echo "ok 3 - Type=notify with a watchdog" || echo "not ok 3 - Type=notify with a watchdog"
# 4: the unit's ExecReload, run as systemd would (its command line, the build's
# binaries) while the daemon runs: the provisioning log was rotated away and
# the edited config is broken. The daemon must reopen its log (logrotate's
# postrotate is `systemctl reload xtsyncd`) and the reload must fail visibly.
R4=$T/reload
mkdir -p "$R4"
printf '[daemon]\nstate_dir = %s\nprovisioning_log = %s/provisioning.log\ncontrol_socket = %s/control.sock\n' \
	"$R4" "$R4" "$R4" >"$R4/xtsync.conf"
"$B/daemon/xtsyncd" -c "$R4/xtsync.conf" --foreground 2>"$R4/daemon.log" &
dpid=$!
for _ in $(seq 100); do [ -S "$R4/control.sock" ] && [ -f "$R4/provisioning.log" ] && break; sleep 0.05; done
mv "$R4/provisioning.log" "$R4/provisioning.log.1" 2>/dev/null
printf 'no_such_key = 1\n' >>"$R4/xtsync.conf"
cmd=$(sed -n 's/^ExecReload=//p' "$T/xtsyncd.service")
# shellcheck disable=SC2086 # the unit's command line, split as systemd splits it
rout=$(${cmd%% *} -c "$R4/xtsync.conf" ${cmd#* } 2>&1); rrc=$?
n=$(grep -c '^ExecReload=' "$U")
kill -TERM "$dpid"; wait "$dpid"
if [ "$n" -eq 1 ] && [ $rrc -eq 1 ] && [[ $rout == *"xtsync.conf:5:"* ]] && [ -f "$R4/provisioning.log" ]; then
	echo "ok 4 - ExecReload ($cmd): the log is reopened though the config is refused, and the reload fails (exit 1)"
else
	echo "not ok 4 - ExecReload ($cmd) with a rotated log and a broken config: rc=$rrc, reopened: $([ -f "$R4/provisioning.log" ] && echo yes || echo no)"
	sed 's/^/#   /' <<<"$rout"; sed 's/^/#   /' "$R4/daemon.log" | tail -5
fi
for k in StateDirectory=xtsync LogsDirectory=xtsync RuntimeDirectory=xtsync ConfigurationDirectory=xtsync \
	'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' ProtectSystem=strict; do
	grep -qx "$k" "$U" || { echo "not ok 5 - unit has $k"; exit 0; }
done
echo "ok 5 - unit has its directories and address families"

# 6: ConfigurationDirectory as systemd makes it (root:root, ConfigurationDirectoryMode),
# a config written under the unit's UMask-free default 0644: another user reads it.
mode=$(sed -n 's/^ConfigurationDirectoryMode=//p' "$U")
if [ "$(id -u)" -ne 0 ] || ! command -v setpriv >/dev/null; then
	echo "ok 6 # SKIP needs root and setpriv"
else
	chmod 0755 "$T" # mktemp's 0700 would hide what is tested
	mkdir -m "${mode:-0755}" "$T/etc" && chown root:root "$T/etc"
	printf '[daemon]\nstate_dir = %s\n' "$T" >"$T/etc/xtsync.conf" && chmod 0644 "$T/etc/xtsync.conf"
	out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$B/daemon/xtsyncd" -c "$T/etc/xtsync.conf" \
		--check-config 2>&1)
	if [[ $out != *"ermission denied"* ]] && [[ $out != *"cannot open"* ]]; then
		echo "ok 6 - the unit's User= can read xtsync.conf in ConfigurationDirectory (mode ${mode:-default})"
	else
		echo "not ok 6 - the unit's User= can read xtsync.conf in ConfigurationDirectory (mode ${mode:-default})"
		sed 's/^/#   /' <<<"$out"
	fi
fi

# 7: root runs `xtsyncd --once` by hand in the directories systemd gave the
# unit's User= (StateDirectory=, LogsDirectory=): the store, its lock and the
# provisioning log it creates belong to that user, who can then start.
if [ "$(id -u)" -ne 0 ] || ! command -v setpriv >/dev/null; then
	echo "ok 7 # SKIP needs root and setpriv"
else
	R8=$T/owned
	mkdir -p "$R8/state" "$R8/log" "$R8/run"
	chmod 0755 "$T" "$R8"
	chown 65534:65534 "$R8/state" "$R8/log" "$R8/run"
	printf '[daemon]\nstate_dir = %s/state\nprovisioning_log = %s/log/provisioning.log\ncontrol_socket = %s/run/c.sock\n' \
		"$R8" "$R8" "$R8" >"$R8/xtsync.conf"
	chmod 0644 "$R8/xtsync.conf"
	out=$("$B/daemon/xtsyncd" -c "$R8/xtsync.conf" --once 2>&1); rc=$?
	owners=$(stat -c '%n %u' "$R8/state/xtsync.db" "$R8/state/xtsync.lock" "$R8/log/provisioning.log" 2>&1)
	out2=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$B/daemon/xtsyncd" -c "$R8/xtsync.conf" --once 2>&1)
	rc2=$?
	# the directory's owner plants the log as a symlink to a file of root's:
	# root's next run must neither give that file away nor write into it
	printf 'root only\n' >"$R8/victim"; chmod 0600 "$R8/victim"
	rm -f "$R8/log/provisioning.log"; ln -s "$R8/victim" "$R8/log/provisioning.log"
	chown -h 65534:65534 "$R8/log/provisioning.log"
	out3=$("$B/daemon/xtsyncd" -c "$R8/xtsync.conf" --once 2>&1); rc3=$?
	victim=$(stat -c '%u' "$R8/victim"):$(cat "$R8/victim"):$rc3
	if [ $rc -eq 0 ] && [ $rc2 -eq 0 ] && [ "$(awk '$2 != 65534' <<<"$owners")" = "" ] &&
		[ "$(wc -l <<<"$owners")" -eq 3 ] && [ "$victim" = "0:root only:1" ] &&
		[[ $out3 == *"provisioning log"* ]]; then
		echo "ok 7 - the store, lock and log root made belong to the directories' owner, who then runs (exit 0); a planted symlink is not followed"
	else
		echo "not ok 7 - files root made in the daemon user's directories: rc=$rc, then as that user rc=$rc2, victim $victim"
		sed 's/^/#   /' <<<"$owners"; sed 's/^/#   /' <<<"$out2" | tail -5
	fi
fi

# 8: `meson install` (into a DESTDIR, with whatever prefix this build has:
# /usr/local unless set up with --prefix) installs a unit whose ExecStart and
# Documentation= name files that the same install put there, and which
# systemd-analyze verify accepts where it was installed.
R=$T/root
if ! out=$(meson install -C "$B" --destdir "$R" --no-rebuild --quiet 2>&1); then
	echo "not ok 8 - meson install"; sed 's/^/#   /' <<<"$out"
	exit 0
fi
unit=$(find "$R" -path '*/lib/systemd/system/xtsyncd.service' | head -1)
exe=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$unit" 2>/dev/null)
doc=$(sed -n 's|^Documentation=file:||p' "$unit" 2>/dev/null)
echo "# installed unit ${unit#"$R"}: ExecStart=$exe, Documentation=$doc"
ctl=$(sed -n 's/^ExecReload=\([^ ]*\).*/\1/p' "$unit" 2>/dev/null)
sed -e "s|$exe|$R$exe|g" -e "s|$ctl|$R$ctl|g" "$unit" >"$T/installed.service" 2>/dev/null
if [ -n "$exe" ] && [ -x "$R$exe" ] && [ -n "$ctl" ] && [ -x "$R$ctl" ] && [ -n "$doc" ] && [ -f "$R$doc" ] &&
	vout=$(systemd-analyze verify "$T/installed.service" 2>&1); then
	echo "ok 8 - the installed unit starts the installed xtsyncd ($exe) and names the installed README"
else
	echo "not ok 8 - the installed unit starts the installed xtsyncd (${exe:-none}) and names the installed README"
	sed 's/^/#   /' <<<"${vout:-}"; find "$R" -type f | sed "s|^$R|#   |"
fi
