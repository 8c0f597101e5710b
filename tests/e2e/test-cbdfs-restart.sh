#!/usr/bin/env bash
# A restarted cbdfs is the same host: after kill -9, cbdfs started again
# with the same host name takes its dead host slot over and clears its
# predecessor's blkdev at once, so a writable open works right away (not
# after the janitor's timeout, here 30 s).  A second live cbdfs of the same
# name is refused.  A writable open refused because another host holds the
# backend says who holds it and, for a dead holder, what will free it.
source "$(dirname "$0")/../functions.sh"
requires_fuse
requires python3
test_tmpdir
TRANSPORT=$T/transport
make_image "$T/disk0.img" 32M
write_config "$T/server.ini" "$TRANSPORT" server disk0 "$T/disk0.img" id=0
sed -i 's/^heartbeat_timeout_ms = .*/heartbeat_timeout_ms = 30000/' "$T/server.ini"
start_backend "$T/server.ini" "$T/server.pid"

mount_cbdfs "$T/a" "transport=$TRANSPORT,hostname=client"
A=$CBDFS_PID
wait_for 30 test -e "$T/a/backend0" || fail "no backend0"
exec 3<>"$T/a/backend0"		# holds the writable mapping

log "a second live cbdfs with the same host name is refused"
mkdir -p "$T/twin"
rc=0
out=$("$BUILD/cbdfs" "$T/twin" -f -o "transport=$TRANSPORT,hostname=client" 2>&1) || rc=$?
[ "$rc" != 0 ] || fail "a twin cbdfs was accepted"
grep -q "another cbdfs with host name client is running" <<<"$out" || fail "unclear: $out"

log "another host is refused a writable open, and told who writes it"
mount_cbdfs "$T/b" "transport=$TRANSPORT,hostname=other"
[ "$(cbdfs_errno "$T/b/backend0" rw open)" = EBUSY ] || fail "second writer not refused"
wait_for 30 grep -q "backend0: writable open refused: blkdev [0-9]* (backend 0, host [0-9]*) writes it (alive)" "$T/b.log" ||
	fail "no explanation: $(cat "$T/b.log")"

log "kill -9 the writer: the refusal says the holder is dead and how to clear it"
exec 3<&-
kill -KILL "$A"
wait "$A" 2>/dev/null || true
umount -l "$T/a" 2>/dev/null || true
[ "$(cbdfs_errno "$T/b/backend0" rw open)" = EBUSY ] || fail "refused no more before any clear"
wait_for 30 grep -q "held by blkdev [0-9]* .*whose heartbeat stopped.*cbd-admin clear-blkdev" "$T/b.log" ||
	fail "no dead-holder explanation: $(cat "$T/b.log")"

log "cbdfs started again as host client: its dead blkdev goes at once"
mount_cbdfs "$T/a" "transport=$TRANSPORT,hostname=client"
wait_for 30 grep -q "cleared blkdev [0-9]* .* of our dead predecessor" "$T/a.log" ||
	fail "predecessor's blkdev not cleared: $(cat "$T/a.log")"
[ "$(cbdfs_errno "$T/a/backend0" rw write 0 4096)" = "ok 4096" ] ||
	fail "writable open after the restart"
"$BUILD/cbd-status" -t "$TRANSPORT" --json | python3 -c '
import json, sys
s = json.load(sys.stdin)
names = [h["hostname"] for h in s["hosts"]]
assert names.count("client") == 1, names
' || fail "two hosts named client"
echo PASS
