#!/usr/bin/env bash
# kill -9 of cbdfs while a loop device on it does I/O: the backend's
# janitor clears the dead host's blkdev, its channel segments and its
# writer lock, so that another cbdfs can then map the backend writable.
source "$(dirname "$0")/../functions.sh"
requires_fuse
requires_loop
requires jq
requires python3
test_tmpdir
cbdfs_stack 64M "queues=2"
VICTIM=$CBDFS_PID

status() { "$BUILD/cbd-status" -t "$TRANSPORT" --json; }

attach_loop "$FILE" --direct-io=on
dd if="$LOOP_DEV" of=/dev/null bs=64k iflag=direct status=none 2>/dev/null &
reader=$!
cleanup_fn "kill $reader 2>/dev/null"
status >"$T/before.json"
jq -e '.blkdevs | length == 1 and .[0].queues == 2' "$T/before.json" >/dev/null ||
	fail "no blkdev mapped: $(jq -c .blkdevs "$T/before.json")"
jq -e '[.segments[] | select(.state != "free")] | length >= 2' "$T/before.json" \
	>/dev/null || fail "no channel segments: $(jq -c .segments "$T/before.json")"

mount_cbdfs "$T/mnt2" "transport=$TRANSPORT,hostname=survivor"
[ "$(cbdfs_errno "$T/mnt2/backend0" rw open)" = EBUSY ] ||
	fail "second writer not refused while the first lives"

log "kill -9 cbdfs ($VICTIM)"
kill -KILL "$VICTIM"
wait "$VICTIM" 2>/dev/null || true

cleared() {
	status >"$T/after.json" &&
		jq -e '(.blkdevs | length == 0) and
			([.hosts[] | select(.hostname == "client")] | length == 0) and
			([.segments[] | select(.state != "free")] | length == 0)' \
			"$T/after.json" >/dev/null
}
wait_for 60 cleared || fail "janitor did not clear the dead cbdfs: $(cat "$T/after.json")"
jq -c '{hosts: [.hosts[].hostname], blkdevs, segments}' "$T/after.json"
[ "$(cbdfs_errno "$T/mnt2/backend0" rw write 0 4096)" = "ok 4096" ] ||
	fail "writable open after the janitor cleared the dead writer"
echo PASS
