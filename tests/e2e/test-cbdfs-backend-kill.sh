#!/usr/bin/env bash
# Nothing acknowledged is lost: kill -9 of cbd-backend in the middle of a
# verified fio run (QD32, 4k-256k random writes through a direct-I/O loop
# device on cbdfs), restart it with the same config: I/O waits meanwhile,
# then resumes, and fio's crc32c verification passes.
source "$(dirname "$0")/../functions.sh"
requires_fuse
requires_loop
requires fio
test_tmpdir
cd "$T"	# fio drops verify state files into the working directory
cbdfs_stack 256M "queues=2"
attach_loop "$FILE" --direct-io=on

fio --name=kill-verify --filename="$LOOP_DEV" --size=192M \
	--rw=randwrite --bsrange=4k-256k --iodepth=32 --ioengine=libaio \
	--direct=1 --verify=crc32c --verify_fatal=1 --rate=48m \
	--output="$T/fio.log" &
fio_pid=$!
cleanup_fn "kill $fio_pid 2>/dev/null"

# MiB fio wrote to the loop device so far.  The kills follow fio's
# progress, not the clock: fio waits while the backend is down, so each
# round comes well into the run and far from its end on any machine.
written_mib() { echo $(( $(awk '{print $7}' "/sys/block/${LOOP_DEV#/dev/}/stat") / 2048 )); }
written_over() { [ "$(written_mib)" -ge "$1" ]; }

for round in 1 2; do
	want=$(( $(written_mib) + 24 ))
	wait_for 120 written_over "$want" ||
		{ cat "$T/fio.log"; fail "fio makes no progress before kill $round"; }
	kill -0 "$fio_pid" 2>/dev/null || fail "fio ended before kill $round"
	log "kill -9 cbd-backend ($BACKEND_PID), round $round"
	kill -KILL "$BACKEND_PID"
	wait "$BACKEND_PID" 2>/dev/null || true
	sleep 0.5
	kill -0 "$fio_pid" 2>/dev/null || fail "fio did not wait for the backend"
	rm -f "$T/server.pid"
	start_backend "$CONF" "$T/server.pid"
	log "cbd-backend restarted as $BACKEND_PID"
done

wait "$fio_pid" || { cat "$T/fio.log"; fail "fio failed after backend restarts"; }
grep -E 'IOPS|err=' "$T/fio.log"
# fio verified every block it wrote (reads), check that it did read back
grep -q 'read: IOPS' "$T/fio.log" || fail "fio did not verify"
echo PASS
