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
echo "1..7"
if ! command -v systemd-analyze >/dev/null; then
	for i in 1 2 3 4 5 6 7; do echo "ok $i # SKIP systemd-analyze not installed"; done
	exit 0
fi
sed "s|/usr/sbin/xtsyncd|$B/daemon/xtsyncd|g" "$U" >"$T/xtsyncd.service"
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
# ExecReload validates before signalling: the first ExecReload is --check-config.
first=$(grep -m1 '^ExecReload=' "$U")
[[ $first == *"xtsyncd --check-config"* ]] && grep -q '^ExecReload=.*kill -HUP \$MAINPID' "$U" \
	&& echo "ok 4 - ExecReload runs --check-config, then SIGHUP" || echo "not ok 4 - ExecReload order"
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

# 7: `meson install` (into a DESTDIR, with whatever prefix this build has:
# /usr/local unless set up with --prefix) installs a unit whose ExecStart and
# Documentation= name files that the same install put there, and which
# systemd-analyze verify accepts where it was installed.
R=$T/root
if ! out=$(meson install -C "$B" --destdir "$R" --no-rebuild --quiet 2>&1); then
	echo "not ok 7 - meson install"; sed 's/^/#   /' <<<"$out"
	exit 0
fi
unit=$(find "$R" -path '*/lib/systemd/system/xtsyncd.service' | head -1)
exe=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$unit" 2>/dev/null)
doc=$(sed -n 's|^Documentation=file:||p' "$unit" 2>/dev/null)
echo "# installed unit ${unit#"$R"}: ExecStart=$exe, Documentation=$doc"
sed "s|$exe|$R$exe|g" "$unit" >"$T/installed.service" 2>/dev/null
if [ -n "$exe" ] && [ -x "$R$exe" ] && [ -n "$doc" ] && [ -f "$R$doc" ] &&
	vout=$(systemd-analyze verify "$T/installed.service" 2>&1); then
	echo "ok 7 - the installed unit starts the installed xtsyncd ($exe) and names the installed README"
else
	echo "not ok 7 - the installed unit starts the installed xtsyncd (${exe:-none}) and names the installed README"
	sed 's/^/#   /' <<<"${vout:-}"; find "$R" -type f | sed "s|^$R|#   |"
fi
