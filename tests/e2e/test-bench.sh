#!/usr/bin/env bash
# cbd-bench: usage errors exit 2; a run prints its table (and --json one
# object with sane numbers); the default temp transport is gone afterwards;
# -t creates and removes a new file, formats a blank one and keeps it,
# refuses a valid transport without --force; --crc works.  Numbers are not
# judged here (see tests/bench/), only that they were measured.
source "$(dirname "$0")/../functions.sh"
requires jq
test_tmpdir

B=$BUILD/cbd-bench
QUICK=(-s 1 --idle 0 --copy-qd 4)

log "usage and version"
"$B" --version | grep -qE '^cbd-bench [0-9]' || fail "--version"
"$B" -V | grep -qE '^cbd-bench [0-9]' || fail "-V"
"$B" --help | grep -q -- '--transport PATH' || fail "--help lacks -t"
"$B" -h | grep -q -- '--json' || fail "-h lacks --json"
for args in "--bogus" "-s 0" "--seconds x" "-q 0" "--copy-qd 65" \
	"--spin-ns 0" "--idle -1" "extra"; do
	rc=0
	# shellcheck disable=SC2086
	"$B" $args >"$T/out" 2>"$T/err" || rc=$?
	[ "$rc" = 2 ] || fail "cbd-bench $args: exit $rc, want 2"
	[ -s "$T/err" ] || fail "cbd-bench $args: nothing on stderr"
	[ ! -s "$T/out" ] || fail "cbd-bench $args: wrote to stdout"
done

log "default run: table, nothing left in /dev/shm"
before=$(find /dev/shm -maxdepth 1 -name 'cbd-bench-*' | sort)
"$B" -s 1 --idle 1 --copy-qd 4 >"$T/table" || fail "default run failed"
cat "$T/table"
for row in "QD1 4 KiB round trip p50" "QD1 4 KiB round trip p99" "^QD32 " \
	"128 KiB WRITE" "128 KiB READ" "memcpy into" "memcpy out of" \
	"WRITE copy / memcpy" "READ copy / memcpy" "idle null handler CPU"; do
	grep -qE -- "$row" "$T/table" || fail "table lacks '$row'"
done
after=$(find /dev/shm -maxdepth 1 -name 'cbd-bench-*' | sort)
[ "$before" = "$after" ] || fail "left behind: $(comm -13 <(echo "$before") <(echo "$after"))"

log "--json"
"$B" "${QUICK[@]}" --json >"$T/json" || fail "--json run failed"
[ "$(wc -l <"$T/json")" = 1 ] || fail "--json: not one line"
jq -e '(.qd1_p50_us > 0) and (.qd1_p99_us >= .qd1_p50_us) and
	(.qd_iops > 0) and (.qd == 32) and (.copy_qd == 4) and
	(.write_copy_gbs > 0) and (.read_copy_gbs > 0) and
	(.memcpy_write_gbs > 0) and (.memcpy_read_gbs > 0) and
	(.write_copy_ratio > 0) and (.read_copy_ratio > 0) and
	(.crc == false) and (.idle_handler_cpu_pct == -1)' "$T/json" \
	>/dev/null || fail "--json: unexpected $(cat "$T/json")"

log "-t: a new path is created and removed"
"$B" "${QUICK[@]}" -t "$T/new" --json >/dev/null || fail "-t new failed"
[ ! -e "$T/new" ] || fail "-t new: $T/new left behind"

log "-t: a blank file is formatted and kept; then refused without --force"
truncate -s 64M "$T/blank"
"$B" "${QUICK[@]}" -t "$T/blank" --crc --json >"$T/json" || fail "-t blank failed"
jq -e '.crc == true' "$T/json" >/dev/null || fail "--crc not reported"
[ -s "$T/blank" ] || fail "-t blank: file removed"
rc=0
"$B" "${QUICK[@]}" -t "$T/blank" >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" = 1 ] || fail "-t formatted without --force: exit $rc, want 1"
grep -q -- "--force" "$T/err" || fail "refusal does not name --force: $(cat "$T/err")"
"$B" "${QUICK[@]}" -t "$T/blank" --force --json >/dev/null ||
	fail "-t formatted --force failed"
log "ok"
