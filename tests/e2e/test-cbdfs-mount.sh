#!/usr/bin/env bash
# The ecosystem's way to mount: "mount -t fuse.cbdfs SOURCE MOUNTPOINT" and
# an /etc/fstab line (tried with mount -T FILE) run mount.fuse3, which
# calls "cbdfs SOURCE MOUNTPOINT -o OPTIONS": SOURCE is the transport,
# the generic mount options (defaults, _netdev, rw, nofail, ...) are
# ignored and cbdfs's own (hostname=, queues=) are used; umount unmounts
# and cbdfs exits.  Also: cbdfs SOURCE MOUNTPOINT by hand, and a SOURCE
# that disagrees with -o transport= is refused.
#
# mount(8) gives mount.fuse3 a fixed PATH (/usr/local/bin among it): the
# test runs in a mount namespace of its own, where a tmpfs over
# /usr/local/bin holds cbdfs, so that this machine's is never touched.
if [ -z "${CBD_MOUNT_NS:-}" ]; then
	[ "$(id -u)" = 0 ] || { echo "skipped: needs root"; exit 77; }
	command -v unshare >/dev/null || { echo "skipped: needs unshare"; exit 77; }
	exec unshare -m --propagation private env CBD_MOUNT_NS=1 bash "$0" "$@"
fi
source "$(dirname "$0")/../functions.sh"
requires_fuse
requires jq
[ -x /sbin/mount.fuse3 ] || skip "needs mount.fuse3"
mount -t tmpfs cbd-test-bin /usr/local/bin || fail "tmpfs on /usr/local/bin"
ln -s "$BUILD/cbdfs" /usr/local/bin/cbdfs
test_tmpdir
TRANSPORT=$T/transport
make_image "$T/disk0.img" 32M
write_config "$T/server.ini" "$TRANSPORT" server disk0 "$T/disk0.img" id=0
start_backend "$T/server.ini" "$T/server.pid"
mkdir -p "$T/m"

# mounted_as MNT HOST: cbdfs on MNT shows backend0 and registered HOST.
mounted_as() {
	wait_for 30 test -e "$1/backend0" || fail "$1/backend0 did not appear"
	"$BUILD/cbd-status" -t "$TRANSPORT" --json | jq -e --arg h "$2" \
		'[.hosts[] | select(.hostname == $h and .alive)] | length == 1' >/dev/null ||
		fail "no live host $2"
}
unmounted_cleanly() {
	umount "$1" || fail "umount $1"
	wait_for 30 bash -c "! pgrep -f '^cbdfs $TRANSPORT $1 ' >/dev/null" ||
		fail "cbdfs on $1 did not exit"
}
cleanup_fn "umount -l '$T/m' 2>/dev/null; true"

log "mount -t fuse.cbdfs SOURCE MOUNTPOINT -o generic,and,own options"
mount -t fuse.cbdfs "$TRANSPORT" "$T/m" -o rw,nosuid,nodev,noatime,_netdev,hostname=via-mount,queues=2 ||
	fail "mount -t fuse.cbdfs"
mounted_as "$T/m" via-mount
grep -q "^$TRANSPORT $T/m fuse.cbdfs " /proc/mounts ||
	fail "not a fuse.cbdfs mount of the transport: $(grep " $T/m " /proc/mounts)"
unmounted_cleanly "$T/m"

log "an fstab line (mount -T FILE)"
printf '# test fstab\n%s  %s  fuse.cbdfs  defaults,_netdev,nofail,x-systemd.requires=%s,hostname=via-fstab  0 0\n' \
	"$TRANSPORT" "$T/m" "$TRANSPORT" >"$T/fstab"
mount -T "$T/fstab" "$T/m" || fail "mount -T fstab"
mounted_as "$T/m" via-fstab
unmounted_cleanly "$T/m"

log "cbdfs SOURCE MOUNTPOINT by hand"
mkdir -p "$T/m2"
"$BUILD/cbdfs" "$TRANSPORT" "$T/m2" -f -o hostname=by-hand >"$T/m2.log" 2>&1 &
pid=$!
cleanup_fn "umount_cbdfs '$T/m2' $pid"
wait_for 60 mountpoint -q "$T/m2" || fail "cbdfs SOURCE MOUNTPOINT: $(cat "$T/m2.log")"
mounted_as "$T/m2" by-hand
umount_cbdfs "$T/m2" "$pid"

log "SOURCE and -o transport= must agree"
rc=0
out=$("$BUILD/cbdfs" "$T/other" "$T/m" -f -o "transport=$TRANSPORT" 2>&1) || rc=$?
[ "$rc" = 2 ] || fail "disagreeing SOURCE: exit $rc: $out"
grep -q "cbdfs: SOURCE $T/other and -o transport=$TRANSPORT disagree" <<<"$out" ||
	fail "unclear message: $out"
echo PASS
