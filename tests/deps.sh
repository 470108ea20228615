#!/bin/sh
# SPDX-License-Identifier: MIT
# Install the Debian 12 packages needed to build xtsync, run its tests and the
# bundled Graph emulator. Idempotent; needs root (or sudo) on a fresh machine.
set -eu
PKGS="build-essential meson ninja-build pkg-config clang libclang-rt-14-dev
libcurl4-openssl-dev libjansson-dev libsqlite3-dev libuv1-dev libssl-dev
libinih-dev libpcre2-dev libunistring-dev libcmocka-dev
python3 python3-cryptography python3-aiosmtpd sqlite3 curl openssl
systemd procps iproute2 valgrind strace"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
echo "tests/deps.sh: installing:$missing" >&2
$SUDO apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
