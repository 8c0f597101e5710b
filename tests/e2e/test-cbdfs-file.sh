#!/usr/bin/env bash
# The backendN file itself: attributes, names, reads and writes at and
# across the end, O_TRUNC, fsync reaching the backend as fdatasync, and
# fallocate: punch hole -> DISCARD, zero range -> WRITE_ZEROES, other
# modes -> EOPNOTSUPP.
source "$(dirname "$0")/../functions.sh"
requires_fuse
requires strace
requires python3
requires fallocate
test_tmpdir
cbdfs_stack 5G		# sparse; more than a 32-bit length, several DISCARDs
END=$((5 << 30))

log "attributes and names"
[ "$(stat -c '%F %a %s %h' "$FILE")" = "regular file 600 $END 1" ] ||
	fail "stat: $(stat -c '%F %a %s %h' "$FILE")"
[ "$(ls "$MNT" | tr '\n' ' ')" = "backend0 by-name " ] || fail "listing: $(ls "$MNT")"
for bad in backend00 backend1 backendx backend backend-1 disk0; do
	[ ! -e "$MNT/$bad" ] || fail "$bad exists"
done
[ "$(cbdfs_errno "$MNT/backend1" r open)" = ENOENT ] || fail "open backend1"

log "reads and writes at the end of the device"
head -c $((4 << 20)) /dev/urandom >"$T/data"
dd if="$T/data" of="$FILE" bs=1M seek=1 conv=notrunc,fsync status=none
cmp -n $((4 << 20)) -i 0:$((1 << 20)) "$T/data" "$IMAGE" || fail "data not in the image"
cmp -n $((4 << 20)) -i 0:$((1 << 20)) "$T/data" "$FILE" || fail "data not read back"
[ "$(cbdfs_errno "$FILE" r read $END 4096)" = "ok 0" ] || fail "read at the end"
[ "$(cbdfs_errno "$FILE" r read $((END - 100)) 4096)" = "ok 100" ] ||
	fail "read across the end is not short"
[ "$(cbdfs_errno "$FILE" rw write $END 4096)" = ENOSPC ] || fail "write at the end"
[ "$(cbdfs_errno "$FILE" rw write $((END + (1 << 30))) 1)" = ENOSPC ] ||
	fail "write past the end"
[ "$(cbdfs_errno "$FILE" rw write $((END - 512)) 4096)" = "ok 512" ] ||
	fail "write across the end is not short"
[ "$(stat -c %s "$FILE")" = $END ] || fail "size changed: $(stat -c %s "$FILE")"
[ "$(stat -c %s "$IMAGE")" = $END ] || fail "image size changed"

log "O_TRUNC is ignored, as on a block device"
: >"$FILE"
[ "$(stat -c %s "$FILE")" = $END ] || fail "O_TRUNC changed the size"
cmp -n $((4 << 20)) -i 0:$((1 << 20)) "$T/data" "$FILE" || fail "O_TRUNC lost data"

log "fsync reaches the backend as fdatasync"
strace -f -qq -e trace=fdatasync,fsync -o "$T/strace.log" -p "$BACKEND_PID" &
spid=$!
cleanup_fn "kill $spid 2>/dev/null"
# strace attaches to every thread: wait until it has, however long it takes
traced() {
	local s
	for s in /proc/"$BACKEND_PID"/task/*/status; do
		grep -q "^TracerPid:[[:space:]]*$spid\$" "$s" || return 1
	done
}
wait_for 30 traced || fail "strace did not attach to cbd-backend"
[ "$(cbdfs_errno "$FILE" rw write 0 8192)" = "ok 8192" ] || fail "write"
sleep 0.3
! grep -q sync "$T/strace.log" || fail "a plain write synced: $(cat "$T/strace.log")"
[ "$(cbdfs_errno "$FILE" rw fsync)" = ok ] || fail "fsync failed"
wait_for 30 grep -q fdatasync "$T/strace.log" ||
	fail "fsync did not reach the backend: $(cat "$T/strace.log")"
kill "$spid"
wait "$spid" 2>/dev/null || true
cat "$T/strace.log"

log "fallocate: punch hole, zero range, unsupported modes"
alloc() { du -k "$IMAGE" | cut -f1; }
before=$(alloc)
fallocate -p -o $((1 << 20)) -l $((2 << 20)) "$FILE" || fail "punch hole"
cmp -s -n $((2 << 20)) -i $((1 << 20)):0 "$IMAGE" /dev/zero || fail "punched range not zero"
[ "$(alloc)" -le $((before - 2000)) ] || fail "punch hole freed nothing in the image"
cmp -n $((2 << 20)) -i $((2 << 20)):$((3 << 20)) "$T/data" "$IMAGE" ||
	fail "punch hole went too far"
fallocate -z -o $((3 << 20)) -l $((1 << 20)) "$FILE" || fail "zero range"
cmp -s -n $((1 << 20)) -i $((3 << 20)):0 "$IMAGE" /dev/zero || fail "zeroed range not zero"
cmp -n $((1 << 20)) -i $((3 << 20)):$((4 << 20)) "$T/data" "$IMAGE" ||
	fail "zero range went too far"
log "a punch hole over the whole device is split into several DISCARDs"
for off in 0 $((1 << 30)) $((9 << 29)) $((END - 4096)); do
	[ "$(cbdfs_errno "$FILE" rw write $off 4096)" = "ok 4096" ] || fail "marker at $off"
done
[ "$(du -k "$IMAGE" | cut -f1)" -ge 16 ] || fail "markers not in the image"
fallocate -p -o 0 -l $END "$FILE" || fail "punch hole over the whole device"
[ "$(du -k "$IMAGE" | cut -f1)" -eq 0 ] ||
	fail "still allocated after punching everything: $(du -k "$IMAGE")"
for off in 0 $((1 << 30)) $((9 << 29)) $((END - 4096)); do
	cmp -s -n 4096 -i $off:0 "$IMAGE" /dev/zero || fail "marker at $off survived"
done
out=$(fallocate -o 0 -l 4096 "$FILE" 2>&1) && fail "fallocate mode 0 succeeded"
grep -q "not supported" <<<"$out" || fail "fallocate mode 0: $out"
out=$(fallocate -c -o 0 -l 4096 "$FILE" 2>&1) && fail "collapse range succeeded"
[ "$(stat -c %s "$FILE")" = $END ] || fail "fallocate changed the size"
echo PASS
