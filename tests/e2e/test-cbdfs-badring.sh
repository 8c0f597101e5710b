#!/usr/bin/env bash
# A channel whose completion ring goes bad (a completion that no request
# asked for, as a broken handler would post it): cbdfs stops using that
# channel, the read in flight on it fails with EIO instead of hanging, the
# next one on the same open file fails at once, cbdfs stays up, and once
# the file is closed (the blkdev unmapped) a new open maps fresh channels
# and reads and writes work again.  Runs over /dev/fuse and over io_uring
# (make check runs the test-cbdfs-* scripts in both modes).
source "$(dirname "$0")/../functions.sh"
requires_fuse
requires jq
requires python3
test_tmpdir
cbdfs_stack 64M "queues=1"
cleanup_fn "kill -CONT $BACKEND_PID 2>/dev/null"

channel_json() {
	"$BUILD/cbd-status" -t "$TRANSPORT" --json |
		jq -c '[.segments[] | select(.type == "channel")]'
}
inflight_one() {
	[ "$(channel_json | jq '.[0].inflight // 0')" -ge 1 ] 2>/dev/null
}

# A reader that holds the file open: one read that works (the blkdev is
# mapped and its handler attached), then, on "go", two more; the errno
# of each goes to $T/reads.
python3 - "$FILE" "$T" <<-'PY' &
	import errno, os, sys, time
	path, t = sys.argv[1], sys.argv[2]
	def log(s):
	    with open(t + "/reads", "a") as f:
	        f.write(s + "\n")
	def read():
	    try:
	        os.pread(fd, 4096, 0)
	        return "ok"
	    except OSError as e:
	        return errno.errorcode[e.errno]
	fd = os.open(path, os.O_RDONLY)
	log("first " + read())
	while not os.path.exists(t + "/go"):
	    time.sleep(0.05)
	log("second " + read())
	third = read()
	os.close(fd) # at once: the RELEASE may meet a thread still polling
	log("third " + third)
	log("closed")
PY
reader=$!
cleanup_fn "kill $reader 2>/dev/null"
wait_for 30 grep -q '^first' "$T/reads" || fail "the first read did not return"
grep -qx 'first ok' "$T/reads" || fail "first read: $(cat "$T/reads")"
[ "$(channel_json | jq length)" = 1 ] || fail "expected one channel: $(channel_json)"
seg=$(channel_json | jq '.[0].id')

log "backend stopped; a read in flight on segment $seg"
kill -STOP "$BACKEND_PID"
touch "$T/go"
wait_for 30 inflight_one || fail "no read in flight: $(channel_json)"
"$BUILD/cbd-testclient" -t "$TRANSPORT" -H rogue badcompletion "$seg" ||
	fail "badcompletion"
wait_for 60 grep -q '^second' "$T/reads" || fail "the read in flight still hangs"
grep -qx 'second EIO' "$T/reads" || fail "read in flight: $(cat "$T/reads")"
wait_for 30 grep -q '^third' "$T/reads" || fail "the next read hangs"
grep -qx 'third EIO' "$T/reads" || fail "next read: $(cat "$T/reads")"
grep -q 'channel unusable' "$MNT.log" || fail "cbdfs did not say so: $(tail -n 5 "$MNT.log")"
kill -0 "$CBDFS_PID" || fail "cbdfs died"

log "backend continued; the file closed and opened again"
kill -CONT "$BACKEND_PID"
wait_for 60 grep -q '^closed' "$T/reads" || fail "close hangs"
wait "$reader"
[ "$(cbdfs_errno "$FILE" rw write 0 4096)" = "ok 4096" ] || fail "write after reopen"
[ "$(cbdfs_errno "$FILE" rw read 0 4096)" = "ok 4096" ] || fail "read after reopen"
[ "$(cbdfs_errno "$FILE" rw fsync)" = ok ] || fail "fsync after reopen"

fusermount3 -u "$MNT" || fail "unmount"
wait_for 30 pid_gone "$CBDFS_PID" || fail "cbdfs did not exit after the unmount"
wait "$CBDFS_PID"
rc=$?
[ "$rc" = 0 ] || fail "cbdfs exited $rc: $(tail -n 5 "$MNT.log")"
echo PASS
