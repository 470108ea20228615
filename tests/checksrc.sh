#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# What a compiler will not catch (after curl's checksrc): banned libc calls,
# assignments inside if/while conditions, missing SPDX lines, and secrets or
# build outputs in git. Prints TAP, one test per rule.
set -u
cd "${XTS_SOURCE_ROOT:-$(dirname "$0")/..}" || exit 1
files=$(git ls-files 'lib/*.c' 'lib/*.h' 'daemon/*.c' 'daemon/*.h' 2>/dev/null)
[ -n "$files" ] || files=$(ls lib/*.[ch] daemon/*.[ch])
n=0 failed=0
check() { # description, offending lines (empty = pass)
	n=$((n + 1))
	if [ -z "$2" ]; then
		echo "ok $n - $1"
	else
		echo "not ok $n - $1"; failed=$((failed + 1))
		printf '%s\n' "$2" | head -20 | sed 's/^/# /'
	fi
}
echo "1..6"
# shellcheck disable=SC2086
check "no sprintf/strcpy/strcat/strtok/atoi/gets" \
	"$(grep -nE '(^|[^_a-zA-Z0-9])(v?sprintf|strcpy|strcat|strtok|atoi|atol|gets)[[:space:]]*\(' $files /dev/null | grep -v 'checksrc: allow')"
# shellcheck disable=SC2086
check "no assignment inside if/while conditions" \
	"$(grep -nE '(if|while)[[:space:]]*\(\(?[[:space:]]*[a-zA-Z_][a-zA-Z0-9_>.-]*(\[[^]]*\])?[[:space:]]*=[^=]' $files /dev/null)"
# shellcheck disable=SC2086
check "every C file starts with an SPDX line" \
	"$(for f in $files; do head -1 "$f" | grep -q SPDX-License-Identifier || echo "$f"; done)"
# jansson's own loaders corrupt memory when an allocation fails mid-parse
# (lib/mem.c, json_load.c): lib/ and daemon/ parse through xts_json_load* (json_load.h)
# shellcheck disable=SC2086
check "JSON parsed only through xts_json_load* (json_load.h)" \
	"$(grep -nE '(^|[^_a-zA-Z0-9])json_load(b|s|f|_file|_callback)[[:space:]]*\(' $files /dev/null | grep -v '^lib/json_load.c:')"
check "no build outputs or databases tracked" \
	"$(git ls-files 2>/dev/null | grep -E '(^|/)(build[^/]*/|builddir/)|^build[^/]*\.log$|\.(o|a|so|db|db-wal|db-shm)$' )"
check "no private keys tracked" \
	"$(git grep -lE 'BEGIN (RSA |EC |)PRIVATE KEY' 2>/dev/null | grep -v '^tests/checksrc.sh$')"
exit $((failed > 0))
