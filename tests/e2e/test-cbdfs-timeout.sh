#!/usr/bin/env bash
# timeout=SEC: with the backend stopped (SIGSTOP) reads and writes fail
# with EIO after about SEC seconds instead of waiting; once the backend
# runs again the same file works.  Without timeout= I/O waits instead.
source "$(dirname "$0")/../functions.sh"
requires_fuse
requires python3
test_tmpdir
cbdfs_stack 64M "timeout=2"
cleanup_fn "kill -CONT $BACKEND_PID 2>/dev/null"

# timed FILE read|write OFF: the errno name (or ok) into $OUT and the
# duration of the operation alone, in seconds, into $ELAPSED; OUT=hang
# after a minute (timeout= not honoured).
timed() {
	read -r OUT ELAPSED < <(timeout 60 python3 - "$@" <<-'PY'
	import errno, os, sys, time
	fd = os.open(sys.argv[1], os.O_RDWR)
	t0 = time.monotonic()
	try:
	    if sys.argv[2] == "read":
	        os.pread(fd, 4096, int(sys.argv[3]))
	    else:
	        os.pwrite(fd, b"x" * 4096, int(sys.argv[3]))
	    r = "ok"
	except OSError as e:
	    r = errno.errorcode[e.errno]
	print(r, "%.3f" % (time.monotonic() - t0))
	PY
	) || true
	[ -n "$OUT" ] || { OUT=hang; ELAPSED=60; }
}

[ "$(cbdfs_errno "$FILE" rw write 0 4096)" = "ok 4096" ] || fail "write"
exec 3<>"$FILE"		# keep the blkdev mapped while the backend is stopped

for op in "read 0" "write 8192"; do
	log "$op with the backend stopped"
	kill -STOP "$BACKEND_PID"
	timed "$FILE" $op
	kill -CONT "$BACKEND_PID"
	echo "$op: $OUT after ${ELAPSED}s"
	[ "$OUT" = EIO ] || fail "$op: $OUT, not EIO"
	# not before timeout=2 (each request's age is counted from its own
	# submission, within the operation); later is only a slow machine
	(($(echo "$ELAPSED >= 1.9" | bc -l))) ||
		fail "$op failed after ${ELAPSED}s, before timeout=2"
	[ "$(cbdfs_errno "$FILE" rw read 0 4096)" = "ok 4096" ] ||
		fail "read after the backend continued"
done
[ "$(cbdfs_errno "$FILE" rw fsync)" = ok ] || fail "fsync after recovery"

log "without timeout= I/O waits for the backend"
mount_cbdfs "$T/mnt2" "transport=$TRANSPORT,hostname=patient"
exec 3<&-
exec 4<"$T/mnt2/backend0"	# mapped before the backend stops
kill -STOP "$BACKEND_PID"
cbdfs_errno "$T/mnt2/backend0" r read 0 4096 >"$T/wait.out" &
reader=$!
sleep 4
kill -0 "$reader" 2>/dev/null || fail "read did not wait: $(cat "$T/wait.out")"
kill -CONT "$BACKEND_PID"
wait "$reader"
[ "$(cat "$T/wait.out")" = "ok 4096" ] || fail "waiting read: $(cat "$T/wait.out")"
exec 4<&-
echo PASS
