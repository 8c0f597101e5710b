#!/usr/bin/env bash
# Requests whose callers are interrupted: a reader and a writer blocked on
# a stalled backend (SIGSTOP) get SIGINT, then SIGKILL.  The kernel sends
# FUSE_INTERRUPT for the first (block I/O is not interrupted, as on a
# disk: cbdfs lets the request complete) and waits for the answer on the
# second.  Once the backend runs again both callers are gone, every
# request was answered once (no failed replies in the log), and cbdfs
# serves on, its data intact.  make check runs it over /dev/fuse and over
# io_uring.
source "$(dirname "$0")/../functions.sh"
requires_fuse
requires python3
test_tmpdir
cbdfs_stack 64M "queues=2"
cleanup_fn "kill -CONT $BACKEND_PID 2>/dev/null"

head -c 64k /dev/urandom >"$T/data"
dd if="$T/data" of="$FILE" bs=64k oflag=direct conv=notrunc status=none ||
	fail "first write"

# waiting in the kernel for cbdfs's answer
in_fuse() { [ "$(cat "/proc/$1/wchan" 2>/dev/null)" = request_wait_answer ]; }

log "SIGSTOP cbd-backend ($BACKEND_PID); a reader and a writer block"
kill -STOP "$BACKEND_PID"
dd if="$FILE" of=/dev/null bs=4k count=1 iflag=direct status=none &
R=$!
dd if=/dev/zero of="$FILE" bs=4k count=1 seek=64 oflag=direct conv=notrunc status=none &
W=$!
cleanup_fn "kill -KILL $R $W 2>/dev/null"
wait_for 30 in_fuse "$R" || fail "the reader is not waiting for cbdfs"
wait_for 30 in_fuse "$W" || fail "the writer is not waiting for cbdfs"

log "SIGINT, then SIGKILL, to both"
kill -INT "$R" "$W"
kill -0 "$CBDFS_PID" || fail "cbdfs died of an INTERRUPT"
kill -KILL "$R" "$W"
log "SIGCONT cbd-backend: the requests complete, their callers go"
kill -CONT "$BACKEND_PID"
wait_for 30 pid_gone "$R" || fail "the reader never went"
wait_for 30 pid_gone "$W" || fail "the writer never went"
wait "$R" "$W" 2>/dev/null || true # killed: 137

kill -0 "$CBDFS_PID" || fail "cbdfs is gone"
! grep -E "reply to|io_uring: queue" "$MNT.log" ||
	fail "failed replies in the log: $(cat "$MNT.log")"
cmp -n 64k "$T/data" "$FILE" || fail "data changed"
[ "$(cbdfs_errno "$FILE" rw write 4096 4096)" = "ok 4096" ] ||
	fail "no I/O after the interrupted requests"
[ "$(cbdfs_errno "$FILE" rw fsync)" = ok ] || fail "fsync"
echo PASS
