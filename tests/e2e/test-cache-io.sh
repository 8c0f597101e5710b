#!/usr/bin/env bash
# The cache in front of a backend, through cbdfs and a loop device:
# sustained writes far beyond its size with the writeback held back
# (back-pressure, never an error), discard and zeroing through it, ext4
# and e2fsck on it, cbd-admin cache-writeback, and the operator's
# mistakes it refuses: a cache on a file transport without
# cache_volatile, formatting or clearing a dead backend's dirty cache.
source "$(dirname "$0")/../functions.sh"
requires_fuse
requires_loop
requires mkfs.ext4
requires e2fsck
requires blkdiscard
test_tmpdir
export CBD_TEST_TRANSPORT_SIZE=512M

log "a cache on a file transport needs cache_volatile = yes"
make_image "$T/bad.img" 64M
write_config "$T/bad.ini" "$T/bad-transport" server disk0 "$T/bad.img" \
	cache_size=128M
"$BUILD/cbd-backend" -c "$T/bad.ini" --foreground >"$T/bad.log" 2>&1 &&
	fail "cbd-backend started a volatile cache without cache_volatile"
grep -q 'cache_size: .*cache_volatile = yes' "$T/bad.log" ||
	{ cat "$T/bad.log"; fail "no clear error for a volatile cache"; }

cbdfs_stack 256M "queues=2" cache_size=128M cache_volatile=yes \
	cache_data_crc=yes cache_gc_percent=50
attach_loop "$FILE" --direct-io=on
admin() { "$BUILD/cbd-admin" -t "$TRANSPORT" "$@"; }

log "writes of 3 x the cache's size, writeback paused: they wait, never fail"
admin cache-writeback 0 --pause >/dev/null
head -c 256M /dev/urandom >"$T/data"
for pass in 1 2 3; do
	dd if="$T/data" of="$LOOP_DEV" bs=1M oflag=direct status=none ||
		fail "write pass $pass through a full cache"
done
cmp "$T/data" "$LOOP_DEV" || fail "data read back through the cache differs"
"$BUILD/cbd-status" -t "$TRANSPORT" | grep -A3 '^CACHES' ||
	fail "cbd-status shows no cache"

log "discard and zeroing go through the cache, in order"
blkdiscard -o $((16 << 20)) -l $((8 << 20)) "$LOOP_DEV" || fail "blkdiscard"
blkdiscard -z -o $((64 << 20)) -l $((4 << 20)) "$LOOP_DEV" || fail "blkdiscard -z"
cmp -n $((8 << 20)) <(dd if="$LOOP_DEV" bs=1M skip=16 count=8 iflag=direct status=none) /dev/zero ||
	fail "a discarded range does not read as zeroes"
cmp -n $((4 << 20)) <(dd if="$LOOP_DEV" bs=1M skip=64 count=4 iflag=direct status=none) /dev/zero ||
	fail "a zeroed range does not read as zeroes"
cmp -n $((16 << 20)) <(dd if="$LOOP_DEV" bs=1M count=16 iflag=direct status=none) "$T/data" ||
	fail "data before the discarded range changed"

log "cbd-admin cache-writeback: everything is on the image"
admin cache-writeback 0 || fail "cache-writeback"
dd if=/dev/zero of="$T/data" bs=1M seek=16 count=8 conv=notrunc status=none
dd if=/dev/zero of="$T/data" bs=1M seek=64 count=4 conv=notrunc status=none
cmp "$T/data" "$IMAGE" || fail "the image differs after cache-writeback"
admin cache-writeback 0 --resume >/dev/null

log "ext4 on the cache, e2fsck clean"
mkfs.ext4 -q -F "$LOOP_DEV" || fail "mkfs.ext4"
mount_dev "$LOOP_DEV" "$T/fs"
mkdir -p "$T/fs/d"
for i in $(seq 1 50); do head -c $((i * 7919)) /dev/urandom >"$T/fs/d/f$i"; done
(cd "$T/fs" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$T/sums"
umount_dir "$T/fs"
e2fsck -fn "$LOOP_DEV" || fail "e2fsck through the cache"

log "a dead backend's dirty cache: kept, refused to format and clear"
admin cache-writeback 0 --pause >/dev/null
mount_dev "$LOOP_DEV" "$T/fs"
head -c 8M /dev/urandom >"$T/fs/late"
(cd "$T/fs" && sha256sum late) >>"$T/sums"
umount_dir "$T/fs"
detach_loop "$LOOP_DEV" "$FILE"
umount_cbdfs "$MNT" "$CBDFS_PID"
kill -KILL "$BACKEND_PID"
wait "$BACKEND_PID" 2>/dev/null || true
"$BUILD/cbd-status" -t "$TRANSPORT" --check >"$T/check.out" &&
	fail "cbd-status --check passed with a stopped dirty cache"
grep -q '^cache: backend 0: stopped with writes not yet on its disk' "$T/check.out" ||
	{ cat "$T/check.out"; fail "--check does not name the dirty cache"; }
admin format --force 2>"$T/format.err" &&
	fail "format --force went over a dirty cache"
grep -q 'holds a cache with writes not yet on' "$T/format.err" ||
	{ cat "$T/format.err"; fail "format: no reason given"; }
seg=$(cache_field "$TRANSPORT" segment)
admin clear-segment "$seg" 2>"$T/clear.err" &&
	fail "clear-segment freed a dirty cache"
grep -q 'not yet written back' "$T/clear.err" ||
	{ cat "$T/clear.err"; fail "clear-segment: no reason given"; }
admin clear-dead >/dev/null 2>&1 || true
[ "$(cache_field "$TRANSPORT" count)" = 1 ] ||
	fail "clear-dead dropped the dirty cache"

log "a read-only restart would miss what the cache holds: refused"
sed 's/^cache_size *=.*/readonly = true/' "$CONF" >"$T/ro.ini"
"$BUILD/cbd-backend" -c "$T/ro.ini" --foreground >"$T/ro.log" 2>&1 &&
	fail "a read-only backend started over its own dirty cache"
grep -q 'a read-only backend cannot write back' "$T/ro.log" ||
	{ cat "$T/ro.log"; fail "read-only over a dirty cache: no reason given"; }

log "the restart writes it back; a clean stop gives the cache up"
rm -f "$T/server.pid"
start_backend "$CONF" "$T/server.pid"
grep -q 'cache: replayed' "$T/server.log" || fail "nothing replayed"
stop_daemon "$BACKEND_PID" || fail "cbd-backend did not stop cleanly"
attach_loop "$IMAGE" -r
e2fsck -fn "$LOOP_DEV" || fail "e2fsck of the image after the writeback"
mount_dev "$LOOP_DEV" "$T/fs" -o ro
(cd "$T/fs" && sha256sum --quiet -c "$T/sums") || fail "files on the image differ"
echo PASS
