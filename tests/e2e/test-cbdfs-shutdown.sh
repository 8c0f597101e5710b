#!/usr/bin/env bash
# SIGTERM of cbdfs while a loop device still holds its file open: cbdfs
# drains, unmaps the blkdev and unregisters its host itself (at once, not
# after the janitor's heartbeat timeout), unmounts and exits 0; the loop
# device then fails I/O instead of hanging.
source "$(dirname "$0")/../functions.sh"
requires_fuse
requires_loop
requires jq
test_tmpdir
cbdfs_stack 64M

attach_loop "$FILE" --direct-io=on
# once cbdfs has unmounted itself the loop device's file shows as just
# "/backend0", which detach_loop does not recognise: detach it by name
cleanup_fn "[ \"\$(cat /sys/block/${LOOP_DEV#/dev/}/loop/backing_file 2>/dev/null)\" = /backend0 ] && losetup -d $LOOP_DEV"
dd if=/dev/urandom of="$LOOP_DEV" bs=1M count=8 oflag=direct status=none ||
	fail "write through the loop device"
"$BUILD/cbd-status" -t "$TRANSPORT" --json | jq -e '.blkdevs | length == 1' \
	>/dev/null || fail "no blkdev mapped"

log "SIGTERM cbdfs ($CBDFS_PID) with the loop device attached"
kill -TERM "$CBDFS_PID"
wait_for 30 pid_gone "$CBDFS_PID" || fail "cbdfs did not exit on SIGTERM"
wait "$CBDFS_PID" || fail "cbdfs exited with $?"
"$BUILD/cbd-status" -t "$TRANSPORT" --json >"$T/st.json"
jq -e '(.blkdevs | length == 0) and ([.hosts[] | select(.hostname == "client")] | length == 0)' \
	"$T/st.json" >/dev/null || fail "not released by cbdfs: $(jq -c '{blkdevs, hosts}' "$T/st.json")"
# by cbdfs itself, not by the janitor after the heartbeat timeout (which
# a slow machine could let pass before the look above)
! grep -q 'janitor: .*: cleared' "$T/server.log" ||
	fail "the janitor cleared what cbdfs should have released: $(grep 'janitor: ' "$T/server.log")"
! grep -q " $MNT " /proc/mounts || fail "still mounted"
timeout 60 dd if="$LOOP_DEV" of=/dev/null bs=4k count=1 iflag=direct status=none &&
	fail "loop I/O succeeded without cbdfs"
[ $? -ne 124 ] || fail "loop I/O hangs after cbdfs exited"
echo PASS
