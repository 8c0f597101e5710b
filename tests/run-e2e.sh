#!/usr/bin/env bash
# Run the test scripts named on the command line (tests/e2e/test-*.sh,
# tests/vm/test-*.sh), one at a time, each with a time limit
# (CBD_TEST_TIMEOUT seconds); keep each log in $BUILD/tests/DIR/NAME.log
# and show the tail of the log of a failure.  Exit 77 means skipped.
set -u
BUILD=${BUILD:-$(pwd)/build}
export BUILD
limit=${CBD_TEST_TIMEOUT:-300}
pass=0 fail=0 skip=0 failed=()

for t in "$@"; do
	name=$(basename "$t" .sh)
	logdir=$BUILD/tests/$(basename "$(dirname "$t")")
	mkdir -p "$logdir"
	log=$logdir/$name.log
	start=$(date +%s)
	timeout --kill-after=20 "$limit" bash "$t" >"$log" 2>&1
	rc=$?
	secs=$(( $(date +%s) - start ))
	case $rc in
	0)  echo "PASS: $name (${secs}s)"; pass=$((pass + 1)) ;;
	77) echo "SKIP: $name: $(tail -n 1 "$log")"; skip=$((skip + 1)) ;;
	*)  echo "FAIL: $name (exit $rc, ${secs}s); last lines of $log:"
	    tail -n 40 "$log" | sed 's/^/    /'
	    fail=$((fail + 1)); failed+=("$name") ;;
	esac
done
[ ${#failed[@]} -eq 0 ] || echo "failed ${CBD_SUITE:-e2e} tests: ${failed[*]}"
echo "${CBD_SUITE:-e2e}: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
