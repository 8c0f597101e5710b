#!/usr/bin/env bash
# A cbdfs stalled (SIGSTOP) past the janitor's heartbeat timeout is taken
# for dead: the backend's janitor clears its host, blkdev and channels and
# another cbdfs maps the backend writable.  When the stalled cbdfs runs
# again it must notice, never touch the cleared channels (the data another
# host writes stays intact), fail its I/O and exit non-zero.
source "$(dirname "$0")/../functions.sh"
requires_fuse
requires jq
requires python3
test_tmpdir
cbdfs_stack 64M "queues=2"
STALLED=$CBDFS_PID
cleanup_fn "kill -CONT $STALLED 2>/dev/null"

exec 3<>"$FILE"		# a writable mapping held by the host about to stall
[ "$(cbdfs_errno "$FILE" rw write 0 4096)" = "ok 4096" ] || fail "write"

log "SIGSTOP cbdfs ($STALLED) until the janitor clears it"
kill -STOP "$STALLED"
cleared() {
	"$BUILD/cbd-status" -t "$TRANSPORT" --json >"$T/st.json" &&
		jq -e '(.blkdevs | length == 0) and
			([.hosts[] | select(.hostname == "client")] | length == 0)' \
			"$T/st.json" >/dev/null
}
wait_for 60 cleared || fail "janitor did not clear the stalled cbdfs: $(cat "$T/st.json")"

log "another host maps the backend and writes"
mount_cbdfs "$T/mnt2" "transport=$TRANSPORT,hostname=other,queues=2"
exec 4<>"$T/mnt2/backend0"	# its channels may reuse the freed segments
head -c 1M /dev/urandom >"$T/data"
dd if="$T/data" of="$T/mnt2/backend0" bs=64k conv=notrunc,fsync status=none ||
	fail "the other host cannot write"

log "SIGCONT the stalled cbdfs"
kill -CONT "$STALLED"
wait_for 30 pid_gone "$STALLED" || fail "the stalled cbdfs did not exit"
rc=0
wait "$STALLED" || rc=$?
[ "$rc" -ne 0 ] || fail "the stalled cbdfs exited 0"
grep -q "cleared by a janitor" "$MNT.log" || fail "no message: $(cat "$MNT.log")"
exec 3<&-
# the other host's mapping and data are untouched
dd if="$T/data" of="$T/mnt2/backend0" bs=64k seek=16 conv=notrunc,fsync status=none ||
	fail "the other host's mapping broke"
cmp -n 1M "$T/data" "$T/mnt2/backend0" || fail "data of the other host changed"
cmp -n 1M -i 0:1M "$T/data" "$T/mnt2/backend0" || fail "second write of the other host"
"$BUILD/cbd-status" -t "$TRANSPORT" --json | jq -e '.blkdevs | length == 1' \
	>/dev/null || fail "the other host's blkdev is gone"
exec 4<&-
echo PASS
