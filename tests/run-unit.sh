#!/usr/bin/env bash
# Run the cmocka unit test binaries named on the command line (from
# $BUILD/tests) and close with one summary line.
set -u
BUILD=${BUILD:-build}
pass=0 fail=0 failed=()
for t in "$@"; do
	echo "=== $t"
	if "$BUILD/tests/$t"; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
		failed+=("$t")
	fi
done
[ ${#failed[@]} -eq 0 ] || echo "failed unit tests: ${failed[*]}"
echo "unit: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
