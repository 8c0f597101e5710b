#!/usr/bin/env bash
# The main job: a loop device on the cbdfs file, with and without
# --direct-io=on; mkfs.ext4, mount, write files, umount, e2fsck -fn clean,
# remount and compare every checksum.
source "$(dirname "$0")/../functions.sh"
requires_fuse
requires_loop
requires mkfs.ext4
requires e2fsck
test_tmpdir
cbdfs_stack 256M

# a reproducible set of files: sizes from a few bytes to several MiB
mkdir -p "$T/src/sub/deeper"
for i in 1 7 4096 65537 1048576 5000000; do
	head -c "$i" /dev/urandom >"$T/src/f$i"
done
for i in $(seq 1 200); do echo "small file $i" >"$T/src/sub/s$i"; done
head -c 3M /dev/urandom >"$T/src/sub/deeper/big"
(cd "$T/src" && find . -type f -print0 | sort -z | xargs -0 sha256sum) \
	>"$T/sums"

for dio in off on; do
	log "losetup --direct-io=$dio"
	attach_loop "$FILE" --direct-io=$dio
	[ "$(losetup -n -O DIO "$LOOP_DEV" | tr -d ' ')" = $([ $dio = on ] && echo 1 || echo 0) ] ||
		fail "$LOOP_DEV: direct I/O is not $dio"
	[ "$(blockdev --getsize64 "$LOOP_DEV")" = $((256 << 20)) ] ||
		fail "$LOOP_DEV has the wrong size"
	mkfs.ext4 -q -F "$LOOP_DEV" || fail "mkfs.ext4"
	mount_dev "$LOOP_DEV" "$T/fs"
	cp -a "$T/src/." "$T/fs/"
	umount_dir "$T/fs"
	e2fsck -fn "$LOOP_DEV" || fail "e2fsck found problems (dio=$dio)"
	mount_dev "$LOOP_DEV" "$T/fs"
	(cd "$T/fs" && sha256sum --quiet -c "$T/sums") ||
		fail "checksums differ after remount (dio=$dio)"
	umount_dir "$T/fs"
	detach_loop "$LOOP_DEV" "$FILE"
done

log "the data is in the backing image itself"
attach_loop "$IMAGE" -r
e2fsck -fn "$LOOP_DEV" || fail "e2fsck of the backing image"
mount_dev "$LOOP_DEV" "$T/fs" -o ro
(cd "$T/fs" && sha256sum --quiet -c "$T/sums") || fail "image checksums"
echo PASS
