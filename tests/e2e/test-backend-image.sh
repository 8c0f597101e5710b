#!/usr/bin/env bash
# What a backend serves is its own while it serves it: a second backend
# section, a second cbd-backend (another host name) or anybody else opening
# the image or block device exclusively is refused with a clear message,
# and nothing is written; once the first stops, the second may serve it.
# Images smaller than 4 KiB are refused; other sizes are served rounded
# down to whole 512-byte sectors, and the log says so.
source "$(dirname "$0")/../functions.sh"

test_tmpdir
TR=$T/transport
make_image "$T/disk0.img" 16M

# refused CONFIG PATTERN: cbd-backend exits 1 and says PATTERN.
refused() {
	local rc=0 out
	out=$("$BUILD/cbd-backend" -c "$1" --foreground 2>&1) || rc=$?
	[ "$rc" = 1 ] || fail "$1: exit $rc, expected 1: $out"
	grep -qF -- "$2" <<<"$out" || fail "$1: no '$2' in: $out"
}

log "one config, two sections on one image (by another name): refused by the config check"
ln -s disk0.img "$T/alias.img"
write_config "$T/dup.ini" "$TR" node-a disk0 "$T/disk0.img" disk0b "$T/alias.img"
refused "$T/dup.ini" "path: $T/alias.img: the same file as backend disk0"

log "a second host serving the image of a live backend is refused"
write_config "$T/a.ini" "$TR" node-a disk0 "$T/disk0.img" "id = 0"
start_backend "$T/a.ini" "$T/a.pid"
APID=$BACKEND_PID
write_config "$T/b.ini" "$TR" node-b disk0 "$T/disk0.img" "id = 1"
refused "$T/b.ini" "backend disk0: $T/disk0.img: in use: another backend or process holds it"
"$BUILD/cbd-status" -t "$TR" --json | jq -e '[.backends[] | select(.alive)] | length == 1' \
	>/dev/null || fail "the refused backend shows up in the transport"
log "read-only: shares with nobody who writes"
write_config "$T/ro.ini" "$TR" node-b disk0 "$T/disk0.img" "id = 1" "readonly = true"
refused "$T/ro.ini" "in use"
stop_daemon "$APID" || fail "cbd-backend did not stop"

log "once the first stopped, the second serves it"
start_backend "$T/b.ini" "$T/b.pid"
stop_daemon "$BACKEND_PID" || fail "cbd-backend did not stop"

log "two read-only backends may share an image"
write_config "$T/ro2.ini" "$TR" node-c disk0 "$T/disk0.img" "id = 2" "readonly = true"
start_backend "$T/ro.ini" "$T/ro.pid"
RPID=$BACKEND_PID
start_backend "$T/ro2.ini" "$T/ro2.pid"
stop_daemon "$BACKEND_PID"
stop_daemon "$RPID"

log "sizes: below 4 KiB refused, odd sizes rounded down to 512 B"
for sz in 0 1000 1536 4095; do
	head -c $sz /dev/urandom >"$T/small.img"
	write_config "$T/small.ini" "$TR" node-a tiny "$T/small.img"
	refused "$T/small.ini" "path: $T/small.img: $sz bytes: smaller than 4096 bytes, too small to serve"
done
head -c 4096 /dev/zero >"$T/page.img"
make_image "$T/odd.img" $((10 * 1024 * 1024 + 100))
write_config "$T/odd.ini" "$TR" node-a page "$T/page.img" "id = 3" odd "$T/odd.img" "id = 4"
start_backend "$T/odd.ini" "$T/odd.pid"
grep -qF "backend odd: $T/odd.img: its last 100 bytes are not served: the size is rounded down to whole 512-byte sectors" \
	"$T/odd.log" || fail "no warning about the odd size: $(cat "$T/odd.log")"
sizes=$("$BUILD/cbd-status" -t "$TR" --json | jq -c '[.backends[] | select(.alive) | {name, size}] | sort_by(.name)')
[ "$sizes" = '[{"name":"odd","size":10485760},{"name":"page","size":4096}]' ] ||
	fail "sizes served: $sizes"
stop_daemon "$BACKEND_PID"

if [ "$(id -u)" = 0 ] && losetup -f >/dev/null 2>&1; then
	log "a block device is opened exclusively"
	make_image "$T/blk.img" 16M
	attach_loop "$T/blk.img"
	write_config "$T/blk.ini" "$TR" node-a blk "$LOOP_DEV" "id = 5"
	start_backend "$T/blk.ini" "$T/blk.pid"
	write_config "$T/blk2.ini" "$TR" node-b blk "$LOOP_DEV" "id = 6"
	refused "$T/blk2.ini" "backend blk: $LOOP_DEV: in use"
	log "a block device (here a loop device) is no memory: its handlers do not ask to pack"
	"$BUILD/cbd-testclient" -t "$TR" -b 5 -H node-c -q 2 --attach-timeout 30000 \
		--ready "$T/client.ready" write 0 64K 1 hold 3600 >"$T/client.log" 2>&1 &
	cpid=$!
	cleanup_fn "stop_daemon $cpid"
	wait_for 60 test -e "$T/client.ready" || fail "client did not map: $(cat "$T/client.log")"
	chans() { "$BUILD/cbd-status" -t "$TR" --json | jq -e "[.segments[] |
		select(.type == \"channel\" and .handler == \"attached\")] | length == 2 and $1" >/dev/null; }
	wait_for 60 chans 'true' || fail "channels not attached: $("$BUILD/cbd-status" -t "$TR" --json)"
	chans 'all(.packs == false)' || fail "a loop device said to pack: $("$BUILD/cbd-status" -t "$TR" --json)"
	stop_daemon "$cpid"
	stop_daemon "$BACKEND_PID"
	log "a mounted block device is refused"
	mkfs.ext4 -q "$LOOP_DEV"
	mount_dev "$LOOP_DEV" "$T/m"
	refused "$T/blk.ini" "backend blk: $LOOP_DEV: in use"
	umount_dir "$T/m"
else
	echo "(block device part skipped: needs root and a free loop device)"
fi
echo PASS
