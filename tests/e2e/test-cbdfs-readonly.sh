#!/usr/bin/env bash
# Read-only: a backend with readonly = true shows as mode 0400, refuses
# writable opens with EROFS, serves reads (also through a loop device, which
# losetup then sets up read-only); a cbdfs mounted with -o ro refuses writes
# to a writable backend and maps it read-only.
source "$(dirname "$0")/../functions.sh"
requires_fuse
requires_loop
requires python3
requires jq
test_tmpdir

TRANSPORT=$T/transport
head -c 16M /dev/urandom >"$T/ro.img"
cp "$T/ro.img" "$T/ro.orig"
make_image "$T/rw.img" 16M
write_config "$T/server.ini" "$TRANSPORT" server \
	ro "$T/ro.img" id=0 readonly=true \
	rw "$T/rw.img" id=1
start_backend "$T/server.ini" "$T/server.pid"
mount_cbdfs "$T/mnt" "transport=$TRANSPORT,hostname=client"
RO=$T/mnt/backend0
RW=$T/mnt/backend1
wait_for 30 test -e "$RW" || fail "backends did not appear"

log "read-only backend"
[ "$(stat -c %a "$RO")" = 400 ] || fail "mode $(stat -c %a "$RO"), not 400"
[ "$(stat -c %a "$RW")" = 600 ] || fail "writable backend mode $(stat -c %a "$RW")"
[ "$(cbdfs_errno "$RO" rw open)" = EROFS ] || fail "O_RDWR open of a read-only backend"
[ "$(cbdfs_errno "$RO" w open)" = EROFS ] || fail "O_WRONLY open of a read-only backend"
cmp "$RO" "$T/ro.orig" || fail "reads differ from the image"
exec 3<"$RO"	# hold a read-only mapping open
"$BUILD/cbd-status" -t "$TRANSPORT" --json >"$T/st.json"
jq -e '.blkdevs | length == 1' "$T/st.json" >/dev/null || fail "no blkdev mapped"
attach_loop "$RO"
[ "$(losetup -n -O RO "$LOOP_DEV" | tr -d ' ')" = 1 ] || fail "loop device is writable"
cmp "$LOOP_DEV" "$T/ro.orig" || fail "loop reads differ"
out=$(dd if=/dev/zero of="$LOOP_DEV" bs=4k count=1 oflag=direct 2>&1) &&
	fail "write to the read-only loop device succeeded"
echo "expected: $out"
detach_loop "$LOOP_DEV" "$RO"
exec 3<&-
cmp "$T/ro.img" "$T/ro.orig" || fail "the read-only image changed"

log "cbdfs -o ro"
fusermount3 -u "$T/mnt"
mount_cbdfs "$T/mntro" "transport=$TRANSPORT,hostname=roclient,ro"
[ "$(stat -c %a "$T/mntro/backend1")" = 400 ] || fail "ro mount: mode not 400"
[ "$(cbdfs_errno "$T/mntro/backend1" rw open)" = EROFS ] || fail "ro mount: writable open"
exec 3<"$T/mntro/backend1"
"$BUILD/cbd-status" -t "$TRANSPORT" --json >"$T/st.json"
jq -e '.blkdevs | length == 1' "$T/st.json" >/dev/null || fail "no blkdev mapped"
# a read-only mapping leaves the writer lock free for another host
mount_cbdfs "$T/mnt2" "transport=$TRANSPORT,hostname=writer"
[ "$(cbdfs_errno "$T/mnt2/backend1" rw write 0 4096)" = "ok 4096" ] ||
	fail "another host cannot write next to a read-only mapping"
cmp -n 4096 "$T/mntro/backend1" "$T/rw.img" || fail "read-only mapping reads stale data"
exec 3<&-
echo PASS
