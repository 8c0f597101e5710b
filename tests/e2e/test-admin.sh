#!/usr/bin/env bash
# cbd-admin: format creates, refuses a valid (or non-blank) transport
# without --force and a live one even with it; clear-* refuses live and
# referenced objects with the reason, and clears what kill -9 left behind
# when no janitor runs (backend killed too).
source "$(dirname "$0")/../functions.sh"
requires jq
test_tmpdir

ST=$BUILD/cbd-status
ADM=$BUILD/cbd-admin
TR=$T/transport.img

# expect RC PATTERN CMD...: exit code RC and PATTERN in stdout+stderr.
expect() {
	local want=$1 pat=$2 rc=0
	shift 2
	"$@" >"$T/out" 2>&1 || rc=$?
	[ "$rc" = "$want" ] || fail "$*: exit $rc, want $want: $(cat "$T/out")"
	grep -qE -- "$pat" "$T/out" || fail "$*: output '$(cat "$T/out")' lacks /$pat/"
}
status_json() { "$ST" -t "$TR" --window 300 --json; }
# "is alive" needs a heartbeat seen in the window: give the live daemons a
# window that a busy machine cannot starve them through (dead is dead in
# any window).
LIVE=(--window 2000)

log "usage"
"$ADM" --version | grep -qE '^cbd-admin [0-9]' || fail "--version"
"$ADM" --help | grep -q 'clear-blkdev' || fail "--help"
expect 2 "no command" "$ADM" -t "$TR"
expect 2 "unknown command" "$ADM" -t "$TR" frobnicate
expect 2 "needs an id" "$ADM" -t "$TR" clear-host
expect 2 "are for format" "$ADM" -t "$TR" clear-host 0 --force
expect 2 "bad size" "$ADM" -t "$TR" format --size lots
expect 2 "takes no argument" "$ADM" -t "$TR" format 1

log "format"
expect 1 "does not exist; give --size" "$ADM" -t "$TR" format
expect 1 "below the minimum" "$ADM" -t "$T/tiny" format --size 1M
[ ! -e "$T/tiny" ] || fail "a failed format left $T/tiny behind"
expect 0 "formatted $TR: 256.0 MiB" "$ADM" -t "$TR" format --size 256M --entry-crc
status_json | jq -e '.transport.size == 268435456 and
	.transport.flags.entry_crc and (.transport.flags.data_crc | not)' \
	>/dev/null || fail "formatted transport looks wrong"
uuid=$(status_json | jq -r .transport.uuid)
expect 1 "already formatted; use --force" "$ADM" -t "$TR" format
[ "$(status_json | jq -r .transport.uuid)" = "$uuid" ] || fail "refused format changed the transport"
expect 0 "formatted" "$ADM" -t "$TR" format --force
[ "$(status_json | jq -r .transport.uuid)" != "$uuid" ] || fail "--force did not reformat"
head -c 1M /dev/urandom >"$T/garbage"
truncate -s 64M "$T/garbage"
expect 1 "use --force" "$ADM" -t "$T/garbage" format
expect 0 "formatted" "$ADM" -t "$T/garbage" format --force
"$ST" -t "$T/garbage" --window 20 >/dev/null || fail "forced format of garbage"
printf '[transport]\npath = %s\nsize = 64M\n' "$T/fromcfg.img" >"$T/cfg.ini"
expect 0 "formatted $T/fromcfg.img: 64.0 MiB" "$ADM" -c "$T/cfg.ini" format
expect 0 "host 5 is free: nothing to clear" "$ADM" -t "$TR" clear-host 5
expect 1 "no host 32 in this transport" "$ADM" -t "$TR" clear-host 32

log "refusals while alive"
[ -x "$BUILD/cbd-backend" ] || skip "needs $BUILD/cbd-backend (the checks above passed)"
[ -x "$BUILD/cbd-testclient" ] || skip "needs $BUILD/cbd-testclient (the checks above passed)"
make_image "$T/disk0.img" 64M
write_config "$T/cbd.ini" "$TR" node-b disk0 "$T/disk0.img" handlers=2
start_backend "$T/cbd.ini" "$T/backend.pid"
rm -f "$T/ready"
# held until killed below, however long the steps before take
"$BUILD/cbd-testclient" -t "$TR" -b 0 -H node-a -q 2 --ready "$T/ready" \
	--attach-timeout 30000 hold 3600 >>"$T/client.log" 2>&1 &
CLIENT_PID=$!
cleanup_fn "stop_daemon $CLIENT_PID"
wait_for 60 test -e "$T/ready" || { cat "$T/client.log" >&2; fail "client did not map"; }

J=$(status_json)
srv=$(jq -r '.hosts[] | select(.hostname=="node-b") | .id' <<<"$J")
cli=$(jq -r '.hosts[] | select(.hostname=="node-a") | .id' <<<"$J")
be=$(jq -r '.backends[] | select(.name=="disk0") | .id' <<<"$J")
bd=$(jq -r '.blkdevs[0].id' <<<"$J")
seg=$(jq -r '.blkdevs[0].channels[0]' <<<"$J")
[ -n "$srv" ] && [ -n "$cli" ] && [ -n "$be" ] && [ "$bd" != null ] ||
	fail "unexpected transport: $J"

# it names the first live object whose heartbeat it sees move: any of them
expect 1 "(host $srv \(node-b, backend, pid $BACKEND_PID\)|host $cli \(node-a, client, pid $CLIENT_PID\)|backend $be \(disk0, |blkdev $bd \(backend $be, host $cli\)) is alive; stop it" \
	"$ADM" -t "$TR" format --force
expect 1 "clear-host: host $srv \(node-b.*is alive" "$ADM" -t "$TR" "${LIVE[@]}" clear-host "$srv"
expect 1 "clear-host: host $cli \(node-a.*is alive" "$ADM" -t "$TR" "${LIVE[@]}" clear-host "$cli"
expect 1 "clear-backend: backend $be \(disk0.*is alive" "$ADM" -t "$TR" "${LIVE[@]}" clear-backend "$be"
expect 1 "clear-blkdev: blkdev $bd .*is alive" "$ADM" -t "$TR" "${LIVE[@]}" clear-blkdev "$bd"
expect 1 "clear-segment: segment $seg .*belongs to live blkdev $bd" \
	"$ADM" -t "$TR" "${LIVE[@]}" clear-segment "$seg"

log "kill -9 the backend: dead, but still used by a live client"
kill -9 "$BACKEND_PID"
wait "$BACKEND_PID" 2>/dev/null || true
expect 1 "backend $be \(disk0.*is mapped by live blkdev $bd" \
	"$ADM" -t "$TR" "${LIVE[@]}" clear-backend "$be"
expect 1 "host $srv \(node-b.*serves backend $be .*mapped by live blkdev $bd" \
	"$ADM" -t "$TR" "${LIVE[@]}" clear-host "$srv"
expect 1 "blkdev $bd .*is alive" "$ADM" -t "$TR" "${LIVE[@]}" clear-blkdev "$bd"
# clear-dead keeps the dead backend and host a live client still needs
expect 0 "clear-dead: backend $be \(disk0.*is mapped by live blkdev $bd" \
	"$ADM" -t "$TR" "${LIVE[@]}" clear-dead
status_json | jq -e '(.backends|length) == 1 and (.blkdevs|length) == 1' >/dev/null ||
	fail "clear-dead cleared what a live client uses: $(status_json)"

log "kill -9 the client too: nobody left, no janitor; cbd-admin clears"
kill -9 "$CLIENT_PID"
wait "$CLIENT_PID" 2>/dev/null || true
status_json | jq -e '(.blkdevs|length) == 1 and (.hosts|length) == 2 and
	all(.hosts[], .backends[], .blkdevs[]; .alive == false)' >/dev/null ||
	fail "after kill -9: $(status_json)"
expect 0 "cleared blkdev $bd " "$ADM" -t "$TR" clear-blkdev "$bd"
grep -q "cleared segment $seg " "$T/out" || fail "channel segment $seg not cleared: $(cat "$T/out")"
status_json | jq -e '.blkdevs == [] and .segments == [] and
	.transport.segments_used == 0 and (.backends[0].writer_blkdev == null)' \
	>/dev/null || fail "blkdev leftovers: $(status_json)"
expect 0 "nothing to clear" "$ADM" -t "$TR" clear-blkdev "$bd"
expect 0 "cleared backend $be \(disk0" "$ADM" -t "$TR" clear-backend "$be"
expect 0 "cleared host $cli \(node-a" "$ADM" -t "$TR" clear-host "$cli"
expect 0 "cleared host $srv \(node-b" "$ADM" -t "$TR" clear-host "$srv"
status_json | jq -e '.hosts == [] and .backends == [] and .blkdevs == [] and
	.segments == []' >/dev/null || fail "leftovers: $(status_json)"
expect 0 "formatted" "$ADM" -t "$TR" format --force

log "clear-dead: everything dead, in order, in one go"
rm -f "$T/backend.pid"	# the killed backend left it behind
start_backend "$T/cbd.ini" "$T/backend.pid"
rm -f "$T/ready"
"$BUILD/cbd-testclient" -t "$TR" -b 0 -H node-a -q 2 --ready "$T/ready" \
	--attach-timeout 30000 hold 3600 >>"$T/client.log" 2>&1 &
CLIENT_PID=$!
cleanup_fn "stop_daemon $CLIENT_PID"
wait_for 60 test -e "$T/ready" || { cat "$T/client.log" >&2; fail "client did not map"; }
kill -9 "$CLIENT_PID" "$BACKEND_PID"
wait "$CLIENT_PID" "$BACKEND_PID" 2>/dev/null || true
expect 0 "cleared blkdev " "$ADM" -t "$TR" clear-dead
for what in "cleared segment " "cleared backend .* \(disk0" "cleared host .*node-a" "cleared host .*node-b"; do
	grep -qE "$what" "$T/out" || fail "clear-dead: no /$what/ in $(cat "$T/out")"
done
status_json | jq -e '.hosts == [] and .backends == [] and .blkdevs == [] and
	.segments == []' >/dev/null || fail "clear-dead left: $(status_json)"
expect 0 "nothing was cleared" "$ADM" -t "$TR" clear-dead

log "a dead host is cleared with everything it owns"
rm -f "$T/backend.pid"	# the killed backend left it behind
start_backend "$T/cbd.ini" "$T/backend.pid"
kill -9 "$BACKEND_PID"
wait "$BACKEND_PID" 2>/dev/null || true
srv=$(status_json | jq -r '.hosts[0].id')
expect 0 "cleared host $srv \(node-b" "$ADM" -t "$TR" clear-host "$srv"
grep -q "cleared backend .* (disk0" "$T/out" || fail "backend not cleared with its host: $(cat "$T/out")"
status_json | jq -e '.hosts == [] and .backends == []' >/dev/null ||
	fail "leftovers: $(status_json)"

echo "PASS"
