#!/usr/bin/env bash
# Discard reaches the backend: fstrim on an ext4 mounted from a loop device
# on cbdfs punches holes into the backing image (its allocated blocks go
# down), and the file system stays consistent.
source "$(dirname "$0")/../functions.sh"
requires_fuse
requires_loop
requires mkfs.ext4
requires fstrim
test_tmpdir
cbdfs_stack 256M

allocated_kib() { du -k "$IMAGE" | cut -f1; }

for dio in off on; do
	log "fstrim through losetup --direct-io=$dio"
	attach_loop "$FILE" --direct-io=$dio
	[ "$(cat /sys/block/"${LOOP_DEV#/dev/}"/queue/discard_max_bytes)" -gt 0 ] ||
		fail "$LOOP_DEV does not offer discard"
	# no discard at mkfs or at rm: only fstrim may free the blocks
	mkfs.ext4 -q -F -E nodiscard "$LOOP_DEV" || fail "mkfs.ext4"
	mount_dev "$LOOP_DEV" "$T/fs" -o nodiscard
	head -c 96M /dev/urandom >"$T/fs/data"
	sync -f "$T/fs"
	full=$(allocated_kib)
	rm "$T/fs/data"
	sync -f "$T/fs"
	[ "$(allocated_kib)" -ge $((full - 1024)) ] ||
		fail "blocks were freed without fstrim"
	fstrim -v "$T/fs" || fail "fstrim"
	after=$(allocated_kib)
	echo "image allocation: ${full} KiB with the file, ${after} KiB after fstrim"
	[ "$after" -le $((full - 90 * 1024)) ] ||
		fail "fstrim freed only $((full - after)) KiB of the image"
	umount_dir "$T/fs"
	e2fsck -fn "$LOOP_DEV" >/dev/null || fail "e2fsck after fstrim"
	detach_loop "$LOOP_DEV" "$FILE"
done
echo PASS
