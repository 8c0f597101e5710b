#!/usr/bin/env bash
# Run the cmocka unit test binaries named on the command line (from
# $BUILD/tests), each within CBD_UNIT_TIMEOUT seconds (a hang, e.g. a
# writer starved in the cache engine, fails instead of stalling the
# suite), and close with one summary line.
set -u
BUILD=${BUILD:-build}
limit=${CBD_UNIT_TIMEOUT:-600}
pass=0 fail=0 failed=()
for t in "$@"; do
	echo "=== $t"
	timeout --kill-after=10 "$limit" "$BUILD/tests/$t"
	rc=$?
	if [ "$rc" = 0 ]; then
		pass=$((pass + 1))
	else
		[ "$rc" = 124 ] && echo "$t: did not finish within $limit s"
		fail=$((fail + 1))
		failed+=("$t")
	fi
done
[ ${#failed[@]} -eq 0 ] || echo "failed unit tests: ${failed[*]}"
echo "unit: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
