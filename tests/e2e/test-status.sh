#!/usr/bin/env bash
# cbd-status: one clear line and exit 1 for missing, unreadable, garbage,
# blank, too small and corrupted transports, exit 2 for bad usage; never
# writes; then with a real cbd-backend and a held mapping, the JSON (keys,
# types, values matching the config, validated with jq) and the tables;
# a killed client shows as dead; --watch redraws until SIGINT.  I/O:
# exact counts after known requests, rates while a client writes,
# a cbdfs blkdev's mountpoint, and --check on healthy and dead objects.
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
expect_error 2 "unknown option --bogus" "$ST" --bogus
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
expect_error 1 "nopath.ini:1: path: missing in \\[transport\\]" "$ST" -c "$T/nopath.ini"

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
printf '[transport]\npath = %s ; a comment\nsize = 64M\n[backend x]\npath = /dev/null\n' \
	"$T/idle.img" >"$T/idle.ini"
"$ST" -c "$T/idle.ini" --window 50 --json | jq -e --arg p "$T/idle.img" \
	'.transport.path == $p' >/dev/null || fail "-c did not find the transport"
log "the config is read as cbd-backend reads it: relative paths, bad keys"
mkdir "$T/etc"
printf '[transport]\npath = ../idle.img\n' >"$T/etc/rel.ini"
(cd / && "$ST" -c "$T/etc/rel.ini" --window 50 --json) | jq -e --arg p "$T/etc/../idle.img" \
	'.transport.path == $p' >/dev/null || fail "relative path not taken from the config's directory"
out=$(cd / && "$ADM" -c "$T/etc/rel.ini" format 2>&1) || true
grep -qF "$T/etc/../idle.img: already formatted" <<<"$out" ||
	fail "cbd-admin -c: relative path not taken from the config's directory: $out"
printf '[transport]\npath = %s\n[backend x]\nfoo = bar\n' "$T/idle.img" >"$T/bad.ini"
expect_error 1 "^cbd-status: $T/bad.ini:4: foo: unknown key in \\[backend x\\]" "$ST" -c "$T/bad.ini"
if command -v runuser >/dev/null; then
	# an unprivileged reader: works on a readable file, fails clearly
	# on an unreadable one.  It runs a copy in $T: the checkout may
	# live where nobody cannot reach (a 0700 home or temp folder).
	chmod 755 "$T"
	install -m 0755 "$ST" "$T/cbd-status"
	chmod 644 "$T/idle.img"
	runuser -u nobody -- "$T/cbd-status" -t "$T/idle.img" --window 50 >/dev/null ||
		fail "cbd-status as nobody on a readable transport"
	chmod 600 "$T/idle.img"
	expect_error 1 "^cbd-status: $T/idle.img: Permission denied" \
		runuser -u nobody -- "$T/cbd-status" -t "$T/idle.img"
	chmod 700 "$T"
fi


# ---- live objects ---------------------------------------------------
[ -x "$BUILD/cbd-backend" ] || skip "needs $BUILD/cbd-backend (the checks above passed)"
[ -x "$BUILD/cbd-testclient" ] || skip "needs $BUILD/cbd-testclient (the checks above passed)"
TR=$T/transport.img
make_image "$T/disk0.img" 64M
make_image "$T/disk1.img" 32M
make_image "$T/disk2.img" 32M
write_config "$T/cbd.ini" "$TR" node-b disk0 "$T/disk0.img" handlers=2 \
	disk1 "$T/disk1.img" readonly=true disk2 "$T/disk2.img"
# A killed client must be seen dead before this backend's janitor clears
# it: give the janitor a timeout that no busy machine spends on two
# cbd-status runs.
JANITOR_MS=10000
sed -i "s/^heartbeat_timeout_ms = .*/heartbeat_timeout_ms = $JANITOR_MS/" "$T/cbd.ini"
start_backend "$T/cbd.ini" "$T/backend.pid"
# "alive" needs a heartbeat seen in the window: one that a busy machine
# cannot starve the daemons through (dead is dead in any window).
LIVE=(--window 2000)

# start_client NAME QUEUES BACKEND CMD...: a client host mapping BACKEND
# and running CMD...; sets CLIENT_PID once mapped.
start_client() {
	local name=$1 queues=$2 backend=$3
	shift 3
	rm -f "$T/$name.ready"
	"$BUILD/cbd-testclient" -t "$TR" -b "$backend" -H "$name" -q "$queues" \
		--attach-timeout 30000 --ready "$T/$name.ready" "$@" \
		>>"$T/$name.log" 2>&1 &
	CLIENT_PID=$!
	cleanup_fn "stop_daemon $CLIENT_PID"
	wait_for 60 test -e "$T/$name.ready" || { cat "$T/$name.log" >&2; fail "client $name did not map"; }
}
# known I/O, then a mapping held: one request of each (on either queue)
start_client node-a 2 0 write 0 1M 7 read 0 1M 7 flush zeroes 1M 64K hold 3600
A_PID=$CLIENT_PID
# its last request is answered (and so counted) before the hold begins
io_done() { "$ST" -t "$TR" --window 50 --json |
	jq -e '.blkdevs[0].io.ops.write_zeroes == 1' >/dev/null; }
wait_for 60 io_done || fail "node-a's I/O did not complete: $(cat "$T/node-a.log")"

log "JSON of a live transport"
"$ST" -c "$T/cbd.ini" "${LIVE[@]}" --json >"$T/live.json" || fail "cbd-status --json"
J=$T/live.json
q() { jq -e --arg T "$T" --arg TR "$TR" --argjson bpid "$BACKEND_PID" \
	--argjson cpid "$CLIENT_PID" "$1" "$J" >/dev/null || fail "jq: $1 on $(cat "$J")"; }
# keys and types
q '.transport | (.path|type)=="string" and (.size|type)=="number" and
	(.version|type)=="number" and (.flags|type)=="object" and
	(.flags|all(.[]; type=="boolean")) and (.uuid|test("^[0-9a-f-]{36}$")) and
	(.slots|[.hosts,.backends,.blkdevs,.segments]|all(type=="number")) and
	(.segments_used|type)=="number" and (.segments_free|type)=="number"'
q 'all(.hosts[]; (.id|type)=="number" and (.hostname|type)=="string" and
	(.alive|type)=="boolean" and (.heartbeat_age_ms|type)=="number" and
	(.pid|type)=="number" and (.role|type)=="string")'
q 'all(.backends[]; (.id|type)=="number" and (.host_id|type)=="number" and
	(.name|type)=="string" and (.path|type)=="string" and
	(.size|type)=="number" and (.alive|type)=="boolean" and
	(.readonly|type)=="boolean" and (.handlers|type)=="number")'
q 'all(.blkdevs[]; (.id|type)=="number" and (.host_id|type)=="number" and
	(.backend_id|type)=="number" and (.queues|type)=="number" and
	(.readonly|type)=="boolean" and (.alive|type)=="boolean" and
	(.channels|type)=="array" and (.channels|all(type=="number")))'
q 'all(.segments[]; (.id|type)=="number" and (.type|type)=="string" and
	(.state|type)=="string" and (.backend_id|type)=="number" and
	(.blkdev_id|type)=="number" and (.handler|type)=="string")'
# values as configured
q '.transport.path == $TR and .transport.size == 268435456 and
	.transport.version == 1 and .transport.flags.entry_crc == false'
q '[.hosts[] | select(.hostname=="node-b")] | length == 1 and
	.[0].role == "backend" and .[0].alive and .[0].pid == $bpid'
q '[.hosts[] | select(.hostname=="node-a")] | length == 1 and
	.[0].role == "client" and .[0].alive and .[0].pid == $cpid'
q '(.hosts[] | select(.hostname=="node-b") | .id) as $h |
	[.backends[] | select(.name=="disk0")] | length == 1 and
	.[0].path == ($T + "/disk0.img") and .[0].size == 67108864 and
	.[0].readonly == false and .[0].handlers == 2 and .[0].alive and
	.[0].host_id == $h'
q '[.backends[] | select(.name=="disk1")] | length == 1 and
	.[0].path == ($T + "/disk1.img") and .[0].size == 33554432 and
	.[0].readonly == true and .[0].alive'
q '(.hosts[] | select(.hostname=="node-a") | .id) as $h |
	(.backends[] | select(.name=="disk0") | .id) as $b |
	.blkdevs | length == 1 and .[0].host_id == $h and .[0].backend_id == $b and
	.[0].queues == 2 and (.[0].channels | length) == 2 and .[0].alive and
	.[0].readonly == false'
q '.blkdevs[0] as $d | .transport.segments_used == 2 and
	(.segments | length) == 2 and
	all(.segments[]; .type == "channel" and .state == "active" and
	    .blkdev_id == $d.id and .backend_id == $d.backend_id and
	    .handler == "attached") and
	([.segments[].id] | sort) == ($d.channels | sort)'
# disk0 is a file on tmpfs ($T is under /dev/shm): memory, so its handlers
# tell the client it may pack requests (a block device says not:
# test-backend-image)
q 'all(.segments[]; .packs == true)'
q '.transport.segments_used + .transport.segments_free == .transport.slots.segments'

log "I/O counters: exact after known requests, on the blkdev and its backend"
q '(.backends[] | select(.name=="disk0") | .id) as $b |
	(.blkdevs[0].io) as $d | (.backends[] | select(.id == $b) | .io) as $e |
	$d.ops == {bad: 0, read: 1, write: 1, flush: 1, discard: 0, write_zeroes: 1} and
	$d.bytes == {read: 1048576, write: 1048576, flush: 0, discard: 0,
		     write_zeroes: 65536} and
	$d.errors == 0 and $d.errors_window == 0 and $d.timed_out == 0 and
	$d.submitted == 4 and
	$d.inflight == 0 and $d.lost == false and $d.channels == 2 and
	($d.latency_us_log2 | length == 14 and add == 4) and
	$e.ops == $d.ops and $e.bytes == $d.bytes and
	([$d.iops, $d.read_mib_s, $d.write_mib_s] | all(type == "number"))'
q '.blkdevs[0].capabilities | .size == 67108864 and .logical_block_size == 512 and
	.queues == 2 and .queue_depth > 0 and .max_io_bytes >= 1048576 and
	.readonly == false and .flush and .fua and .discard and .write_zeroes'
q '.blkdevs[0].mountpoint == null and all(.hosts[]; .mountpoint == null)'
q '(.backends[] | select(.name=="disk1") | .io) | .channels == 0 and .ops.read == 0'
"$ST" -t "$TR" "${LIVE[@]}" --check >"$T/check.txt" || fail "--check on a healthy transport: $(cat "$T/check.txt")"
[ "$(cat "$T/check.txt")" = "ok: $TR" ] || fail "--check: $(cat "$T/check.txt")"

log "I/O rates while a client writes"
disk2=$(jq -r '.backends[] | select(.name=="disk2") | .id' "$J")
start_client node-s 1 "$disk2" stress --seconds 3600 --qd 4 --log "$T/stress.log"
STRESS_PID=$CLIENT_PID CLIENT_PID=$A_PID
# rates over a window in which the stress client completed requests:
# however slow this machine, some window sees them
writing() { "$ST" -t "$TR" --window 500 --json >"$T/rate.json" &&
	jq -e --argjson b "$disk2" '[.blkdevs[] | select(.backend_id == $b)] |
		length == 1 and .[0].io.iops > 0 and .[0].io.write_mib_s > 0 and
		.[0].io.read_mib_s == 0 and .[0].io.ops.write > 0' "$T/rate.json" >/dev/null; }
wait_for 120 writing || fail "no write rate seen: $(jq -c '.blkdevs' "$T/rate.json")"
jq -e --argjson b "$disk2" '.backends[] | select(.id == $b) | .io.iops > 0 and .io.write_mib_s > 0' \
	"$T/rate.json" >/dev/null || fail "backend rate: $(jq -c '.backends' "$T/rate.json")"
"$ST" -t "$TR" --window 500 >"$T/rate.txt"
grep -qE '^I/O \(rates over [0-9.]+ s\)' "$T/rate.txt" || fail "no I/O table: $(cat "$T/rate.txt")"
grep -qE "^ +backend $disk2 .* ok +disk2\$" "$T/rate.txt" || fail "I/O table: $(cat "$T/rate.txt")"
stop_daemon "$STRESS_PID"
# a clean exit unmaps: the blkdev goes
wait_for 60 sh -c "'$ST' -t '$TR' --window 50 --json | jq -e '.blkdevs | length == 1'" ||
	fail "the stress client's blkdev stayed"

log "tables"
"$ST" -t "$TR" >"$T/live.txt" || fail "cbd-status"
for want in node-a node-b "$T/disk0.img" "$T/disk1.img" "64.0 MiB" \
	"32.0 MiB" HOSTS BACKENDS BLKDEVS SEGMENTS "attached, packs"; do
	grep -qF -- "$want" "$T/live.txt" || fail "table lacks '$want': $(cat "$T/live.txt")"
done
"$ST" -t "$TR" --all --json | jq -e '(.hosts|length) == 32 and
	(.backends|length) == 128 and
	(.segments|length) == .transport.slots.segments' >/dev/null ||
	fail "--all does not list every slot"

log "--watch redraws until SIGINT"
frames() { grep -c '^.\[H.\[2JEvery' "$T/watch.txt" || true; }
frames_over() { [ "$(frames)" -ge "$1" ]; }
"$ST" -t "$TR" --watch 0.2 --window 50 >"$T/watch.txt" 2>&1 &
wpid=$!
cleanup_fn "kill $wpid 2>/dev/null || true"
# as many frames as it takes, however long this machine takes to draw them
wait_for 60 frames_over 3 || fail "--watch drew $(frames) frames: $(cat -v "$T/watch.txt" | head)"
kill -INT $wpid
rc=0
wait $wpid || rc=$?
[ "$rc" = 0 ] || fail "--watch exited $rc on SIGINT"
[ "$(frames)" -ge 3 ] || fail "--watch drew $(frames) frames: $(cat -v "$T/watch.txt" | head)"
json_frames_over() { [ "$(jq -s 'length' "$T/watch.json")" -ge "$1" ]; }
"$ST" -t "$TR" --watch 0.2 --window 50 --json >"$T/watch.json" &
wpid=$!
wait_for 60 json_frames_over 2 || fail "--watch --json: $(cat "$T/watch.json")"
kill -INT $wpid
wait $wpid || fail "--watch --json"
json_frames_over 2 || fail "--watch --json: $(cat "$T/watch.json")"

# cbdfs as a second client: an open file is a mapped blkdev of its host
if [ -x "$BUILD/cbdfs" ] && [ "$(id -u)" = 0 ] && [ -c /dev/fuse ] &&
	command -v fusermount3 >/dev/null; then
	log "an open cbdfs file"
	disk1=$(jq -r '.backends[] | select(.name=="disk1") | .id' "$J")
	mount_cbdfs "$T/mnt" "transport=$TR,hostname=node-c,queues=1"
	exec 3<"$T/mnt/backend$disk1"
	cleanup_fn "exec 3<&- 2>/dev/null || true"
	"$ST" -t "$TR" "${LIVE[@]}" --json >"$J"
	q '(.hosts[] | select(.hostname=="node-c")) as $h |
		(.backends[] | select(.name=="disk1")) as $b |
		$h.role == "client" and $h.alive and
		([.blkdevs[] | select(.host_id == $h.id)] | length == 1 and
		 .[0].backend_id == $b.id and .[0].readonly and .[0].alive and
		 .[0].queues == 1 and (.[0].channels | length) == 1)'
	mnt=$(realpath "$T/mnt")
	q '(.hosts[] | select(.hostname=="node-c")) as $h |
		$h.mountpoint == "'"$mnt"'" and
		([.blkdevs[] | select(.host_id == $h.id)] | .[0].mountpoint == $h.mountpoint and
		 .[0].capabilities.readonly and .[0].capabilities.size == 33554432)'
	"$ST" -t "$TR" | grep -qE "^ +blkdev [0-9]+ .* ok +$mnt\$" ||
		fail "I/O table lacks the mountpoint: $("$ST" -t "$TR")"
	"$ST" -t "$TR" | grep -q 'node-c (' || fail "table lacks the cbdfs blkdev"
	exec 3<&-
	umount_cbdfs "$T/mnt" "$CBDFS_PID"
fi

log "a killed client shows as dead"
kill -9 "$CLIENT_PID"
wait "$CLIENT_PID" 2>/dev/null || true
# well before the backend's janitor ($JANITOR_MS ms timeout) can clear it
"$ST" -t "$TR" "${LIVE[@]}" --json >"$J"
q '.blkdevs | length == 1 and .[0].alive == false and .[0].heartbeat_age_ms >= 200'
q '.hosts[] | select(.hostname=="node-a") | .alive == false'
q '.hosts[] | select(.hostname=="node-b") | .alive == true'
"$ST" -t "$TR" >"$T/dead.txt"
grep -E "^ +[0-9]+ +node-a +client +[0-9]+ +no " "$T/dead.txt" >/dev/null ||
	fail "table does not show node-a dead: $(cat "$T/dead.txt")"
rc=0
"$ST" -t "$TR" "${LIVE[@]}" --check >"$T/check.txt" || rc=$?
[ "$rc" = 1 ] || fail "--check with a dead client: exit $rc"
grep -qE '^dead: host [0-9]+ \(node-a\) ' "$T/check.txt" || fail "--check: $(cat "$T/check.txt")"
grep -qE '^dead: blkdev [0-9]+ ' "$T/check.txt" || fail "--check: $(cat "$T/check.txt")"
grep -q 'node-b' "$T/check.txt" && fail "--check reports the live backend: $(cat "$T/check.txt")"
# with --json: the JSON on stdout, the problems on stderr
rc=0
"$ST" -t "$TR" "${LIVE[@]}" --check --json >"$T/check.json" 2>"$T/check.err" || rc=$?
[ "$rc" = 1 ] && jq -e . "$T/check.json" >/dev/null && grep -q '^dead: host' "$T/check.err" ||
	fail "--check --json: exit $rc, $(cat "$T/check.err")"
# and then the janitor of the live backend clears it
wait_for 60 sh -c "'$ST' -t '$TR' --window 50 --json | jq -e '.blkdevs == [] and .segments == []'" ||
	fail "the janitor did not clear the dead client"

echo "PASS"
