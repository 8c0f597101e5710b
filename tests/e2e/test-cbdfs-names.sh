#!/usr/bin/env bash
# by-name/NAME -> ../backendN: one link per backend name, as the config
# names it; ext4 on a loop device attached through the link; a name two
# backend hosts serve goes to the lower id, and to the other one when
# that stops; a stopped backend's link goes; lookups of anything else,
# and opening or writing the directory, fail as on any filesystem.
source "$(dirname "$0")/../functions.sh"
requires_fuse
requires_loop
requires mkfs.ext4
requires python3
test_tmpdir
cbdfs_stack 64M
B=$MNT/by-name

log "the link of the configured name"
[ -d "$B" ] && [ ! -L "$B" ] || fail "$B is not a directory"
[ "$(ls "$B")" = disk0 ] || fail "by-name lists: $(ls -A "$B")"
[ "$(readlink "$B/disk0")" = ../backend0 ] || fail "link: $(readlink "$B/disk0")"
[ "$(stat -c '%F %h' "$B/disk0")" = "symbolic link 1" ] || fail "stat: $(stat -c '%F %h' "$B/disk0")"
[ "$(stat -L -c '%s %i' "$B/disk0")" = "$(stat -c '%s %i' "$FILE")" ] ||
	fail "the link does not lead to backend0"
[ "$(stat -c %h "$MNT")" = 3 ] || fail "root links: $(stat -c %h "$MNT")"
for bad in disk1 backend0 . .. "a/b" DISK0; do
	[ "$bad" = . ] || [ "$bad" = .. ] || [ ! -e "$B/$bad" ] || fail "by-name/$bad exists"
done
[ "$(cbdfs_errno "$B" w open)" = EISDIR ] || fail "opening by-name for writing is not EISDIR"
[ "$(cbdfs_errno "$B/x" w open)" != ok ] || fail "created a file in by-name"
! ln -s ../backend0 "$B/mine" 2>/dev/null || fail "made a link in by-name"
! mkdir "$MNT/dir" 2>/dev/null || fail "made a directory"

log "ext4 on a loop device attached by name"
attach_loop "$B/disk0" --direct-io=on
mkfs.ext4 -q -F "$LOOP_DEV" >/dev/null || fail "mkfs.ext4 on $LOOP_DEV"
mount_dev "$LOOP_DEV" "$T/fs"
head -c 4M /dev/urandom >"$T/data"
cp "$T/data" "$T/fs/f"
umount_dir "$T/fs"
mount_dev "$LOOP_DEV" "$T/fs"
cmp "$T/data" "$T/fs/f" || fail "ext4 did not read back what it wrote"
# the loop device names the file it resolved
losetup -n -O BACK-FILE "$LOOP_DEV" | grep -qF "$MNT/backend0" ||
	fail "loop backing file: $(losetup -n -O BACK-FILE "$LOOP_DEV")"
umount_dir "$T/fs"
detach_loop "$LOOP_DEV" "$MNT/backend0"

log "a name served twice: the lower id, then the other"
make_image "$T/other.img" 32M
make_image "$T/extra.img" 16M
write_config "$T/other.ini" "$TRANSPORT" server2 disk0 "$T/other.img" id=5 \
	extra "$T/extra.img" id=6
start_backend "$T/other.ini" "$T/other.pid"
OTHER_PID=$BACKEND_PID
wait_for 30 test -e "$MNT/backend6" || fail "backend6 did not appear"
wait_for 30 test -e "$B/extra" || fail "by-name/extra did not appear"
[ "$(ls "$B" | tr '\n' ' ')" = "disk0 extra " ] || fail "by-name lists: $(ls "$B")"
[ "$(readlink "$B/disk0")" = ../backend0 ] || fail "disk0 -> $(readlink "$B/disk0")"
[ "$(readlink "$B/extra")" = ../backend6 ] || fail "extra -> $(readlink "$B/extra")"
[ "$(stat -L -c %s "$B/extra")" = $((16 << 20)) ] || fail "extra size"
# the first server stops: its disk0 goes, the name moves to backend5
stop_daemon "$(cat "$T/server.pid")" || fail "stop the first server"
moved() { [ "$(readlink "$B/disk0" 2>/dev/null)" = ../backend5 ]; }
wait_for 30 moved || fail "disk0 -> $(readlink "$B/disk0") after its server stopped"
[ "$(stat -L -c %s "$B/disk0")" = $((32 << 20)) ] || fail "disk0 is not backend5"
[ ! -e "$MNT/backend0" ] || fail "backend0 stayed"
# and the second server stops: nothing is left
stop_daemon "$OTHER_PID" || fail "stop the second server"
gone() { [ -z "$(ls -A "$B")" ]; }
wait_for 30 gone || fail "by-name still lists: $(ls -A "$B")"
[ ! -L "$B/disk0" ] || fail "a dangling link stayed"

echo "PASS"
