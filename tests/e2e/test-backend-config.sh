#!/usr/bin/env bash
# cbd-backend refuses every bad config with "FILE:LINE: key: reason" and a
# non-zero exit before it writes anything to the transport; a good config
# creates and formats a missing transport (format = if-empty), and
# format = never / --format / --force behave as documented.
source "$(dirname "$0")/../functions.sh"

test_tmpdir
make_image "$T/disk0.img" 16M
make_image "$T/disk1.img" 16M
TR=$T/transport

# expect_refused CONF LINE KEY REASON: cbd-backend -c CONF exits 1 and says
# exactly "CONF:LINE: KEY: REASON..." on its one error line.
expect_refused() {
	local conf=$1 line=$2 key=$3 reason=$4 out rc=0
	out=$("$BUILD/cbd-backend" -c "$conf" --foreground --pidfile "$T/pid" 2>&1) || rc=$?
	[ "$rc" = 1 ] || fail "$conf: exit $rc, expected 1; output: $out"
	case $out in
	"cbd-backend: $conf:$line: $key: $reason"*) ;;
	*) fail "$conf: got '$out', expected 'cbd-backend: $conf:$line: $key: $reason...'" ;;
	esac
	[ ! -e "$T/pid" ] || fail "$conf: a pidfile was written"
	log "refused: $out"
}

# A config whose [transport] is lines 1-7 (write_config), then ours.
bad() {
	local name=$1
	shift
	write_config "$T/$name.ini" "$TR" node-b "$@"
	echo "$T/$name.ini"
}

check_all_refused() {
	local c
	c=$(bad unknown-key disk0 "$T/disk0.img" "handler = 4")
	expect_refused "$c" 11 handler "unknown key in [backend disk0]"

	c=$(bad unknown-section disk0 "$T/disk0.img")
	printf '[cache]\nsize = 1G\n' >>"$c"
	expect_refused "$c" 11 cache "unknown section"

	c=$(bad bad-number disk0 "$T/disk0.img" "handlers = many")
	expect_refused "$c" 11 handlers "not a number: 'many'"

	c=$(bad handlers-zero disk0 "$T/disk0.img" "handlers = 0")
	expect_refused "$c" 11 handlers "out of range: '0' (expected 1 to 128)"

	c=$(bad handlers-big disk0 "$T/disk0.img" "handlers = 129")
	expect_refused "$c" 11 handlers "out of range: '129' (expected 1 to 128)"

	c=$(bad dup-id disk0 "$T/disk0.img" "id = 1" disk1 "$T/disk1.img" "id = 1")
	expect_refused "$c" 15 id "duplicate id 1 (also backend disk0)"

	c=$(bad dup-name disk0 "$T/disk0.img" disk0 "$T/disk1.img")
	expect_refused "$c" 12 "backend disk0" "duplicate backend name (first at line 9)"

	c=$(bad missing-path disk0 "$T/nothere.img")
	expect_refused "$c" 10 path "$T/nothere.img: No such file or directory"

	c=$(bad too-small disk0 "$T/disk0.img")
	sed -i 's/^size = .*/size = 1M/' "$c"
	expect_refused "$c" 3 size "transport too small: 1.0 MiB (at least"

	c=$(bad bad-format disk0 "$T/disk0.img")
	sed -i 's/^format = .*/format = sometimes/' "$c"
	expect_refused "$c" 4 format "bad value 'sometimes' (expected never or if-empty)"

	c=$(bad bad-bool disk0 "$T/disk0.img" "readonly = perhaps")
	expect_refused "$c" 11 readonly "bad value 'perhaps' (expected true or false)"
}

log "bad configs, transport missing: refused, and the transport is not created"
check_all_refused
[ ! -e "$TR" ] || fail "a refused config created the transport"

log "a good config creates and formats the missing transport"
write_config "$T/good.ini" "$TR" node-b disk0 "$T/disk0.img"
start_backend "$T/good.ini" "$T/good.pid"
"$BUILD/cbd-testclient" -t "$TR" status | grep -q "^backend 0 .*name=disk0" ||
	fail "backend disk0 not registered"
stop_daemon "$BACKEND_PID" || fail "cbd-backend did not stop on SIGTERM"

log "bad configs, transport formatted: refused, and not a byte changes"
sum=$(md5sum <"$TR")
check_all_refused
[ "$(md5sum <"$TR")" = "$sum" ] || fail "a refused config changed the transport"

log "format = never refuses a blank transport and leaves it blank"
truncate -s 0 "$T/blank" && truncate -s 64M "$T/blank"
write_config "$T/never.ini" "$T/blank" node-b disk0 "$T/disk0.img"
sed -i 's/^format = .*/format = never/' "$T/never.ini"
rc=0
out=$("$BUILD/cbd-backend" -c "$T/never.ini" 2>&1) || rc=$?
[ "$rc" = 1 ] || fail "format = never on a blank transport: exit $rc"
grep -q "not formatted; set format = if-empty" <<<"$out" || fail "unclear message: $out"
cmp -s "$T/blank" <(head -c 64M /dev/zero) || fail "the blank transport was written"

log "--format formats it; --format again needs --force"
"$BUILD/cbd-backend" -c "$T/never.ini" --format --pidfile "$T/f.pid" >"$T/f.log" 2>&1 &
pid=$!
cleanup_fn "stop_daemon $pid"
wait_for 60 test -s "$T/f.pid" || { cat "$T/f.log"; fail "--format: not ready"; }
stop_daemon "$pid"
sum=$(md5sum <"$T/blank")
rc=0
out=$("$BUILD/cbd-backend" -c "$T/never.ini" --format 2>&1) || rc=$?
[ "$rc" = 1 ] || fail "--format of a valid transport: exit $rc"
grep -q "already formatted; --format --force" <<<"$out" || fail "unclear message: $out"
[ "$(md5sum <"$T/blank")" = "$sum" ] || fail "a refused --format changed the transport"
"$BUILD/cbd-backend" -c "$T/never.ini" --format --force --pidfile "$T/g.pid" >"$T/g.log" 2>&1 &
pid=$!
cleanup_fn "stop_daemon $pid"
wait_for 60 test -s "$T/g.pid" || { cat "$T/g.log"; fail "--format --force: not ready"; }
grep -q "formatted" "$T/g.log" || fail "--format --force did not format"
stop_daemon "$pid"

log "a second cbd-backend with the same host name is refused"
start_backend "$T/good.ini" "$T/good.pid"
write_config "$T/twin.ini" "$TR" node-b disk1 "$T/disk1.img"
rc=0
out=$("$BUILD/cbd-backend" -c "$T/twin.ini" 2>&1) || rc=$?
[ "$rc" = 1 ] || fail "twin backend: exit $rc"
grep -q "another cbd-backend with this host name is running" <<<"$out" ||
	fail "unclear message: $out"

log "--format --force from another config never formats a live transport"
write_config "$T/other.ini" "$TR" node-c disk1 "$T/disk1.img"
uuid=$("$BUILD/cbd-status" -t "$TR" --json | jq -r .transport.uuid)
rc=0
out=$("$BUILD/cbd-backend" -c "$T/other.ini" --format --force 2>&1) || rc=$?
[ "$rc" = 1 ] || fail "--format --force of a live transport: exit $rc: $out"
# the first live object whose heartbeat moves is named: the host or its backend
grep -Eq "(host 0 \(node-b, backend, pid $BACKEND_PID\)|backend 0 \(disk0, [^)]*\)) is alive; refusing to format a transport in use" <<<"$out" ||
	fail "unclear message: $out"
[ "$(("$BUILD/cbd-status" -t "$TR" --json) | jq -r .transport.uuid)" = "$uuid" ] ||
	fail "the live transport was formatted"
kill -0 "$BACKEND_PID" || fail "the live cbd-backend died"
"$BUILD/cbd-testclient" -t "$TR" status | grep -q "^backend 0 .*name=disk0" ||
	fail "backend disk0 gone after a refused format"
stop_daemon "$BACKEND_PID"

echo PASS
