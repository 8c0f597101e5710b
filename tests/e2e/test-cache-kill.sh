#!/usr/bin/env bash
# The cache loses nothing acknowledged: fio writes (crc32c verify
# headers) through a cached backend, and kill -9 of cbd-backend three
# times, each while the cache holds writes not yet on the disk
# (writeback paused, cbd-status shows them dirty).  Each restart replays
# them; fio then verifies every block through the cache, and after a
# clean stop the backing image itself holds exactly what fio wrote.
source "$(dirname "$0")/../functions.sh"
requires_fuse
requires_loop
requires fio
test_tmpdir
cd "$T"	# fio drops verify state files into the working directory
export CBD_TEST_TRANSPORT_SIZE=512M
cbdfs_stack 256M "queues=2" cache_size=192M cache_volatile=yes \
	cache_data_crc=yes
attach_loop "$FILE" --direct-io=on

# The writes alone first (the rate makes them last at least 12 s on any
# machine, and they wait while the backend is down, so every kill falls
# among them), verified afterwards through the cache and on the image.
job=(--name=cache-kill --size=192M --rw=randwrite --bsrange=4k-256k
	--verify=crc32c --verify_fatal=1 --iodepth=32 --ioengine=libaio
	--direct=1)
fio "${job[@]}" --filename="$LOOP_DEV" --do_verify=0 --rate=16m \
	--output="$T/fio.log" &
fio_pid=$!
cleanup_fn "kill $fio_pid 2>/dev/null"

for round in 1 2 3; do
	"$BUILD/cbd-admin" -t "$TRANSPORT" cache-writeback 0 --pause >/dev/null ||
		fail "cache-writeback --pause"
	wait_for 120 cache_dirty_over "$TRANSPORT" $((8 << 20)) ||
		{ cat "$T/fio.log"; fail "no dirty data in the cache before kill $round"; }
	kill -0 "$fio_pid" 2>/dev/null || fail "fio ended before kill $round"
	log "kill -9 cbd-backend ($BACKEND_PID) with $(cache_field "$TRANSPORT" dirty) bytes dirty, round $round"
	kill -KILL "$BACKEND_PID"
	wait "$BACKEND_PID" 2>/dev/null || true
	[ "$(cache_field "$TRANSPORT" dirty_kept)" = True ] ||
		fail "cbd-status does not say the dead backend's cache is dirty"
	rm -f "$T/server.pid"
	start_backend "$CONF" "$T/server.pid"
	[ "$(grep -c 'cache: replayed' "$T/server.log")" -eq "$round" ] ||
		fail "restart $round replayed nothing"
	"$BUILD/cbd-admin" -t "$TRANSPORT" cache-writeback 0 --resume >/dev/null
done

wait "$fio_pid" || { cat "$T/fio.log"; fail "fio failed across the kills"; }
fio "${job[@]}" --filename="$LOOP_DEV" --verify_only --output="$T/fio-verify.log" ||
	{ cat "$T/fio-verify.log"; fail "data read back through the cache differs"; }
grep -q 'read: IOPS' "$T/fio-verify.log" || fail "fio did not verify"

log "clean stop: everything goes to the image"
detach_loop "$LOOP_DEV" "$FILE"
umount_cbdfs "$MNT" "$CBDFS_PID"
stop_daemon "$BACKEND_PID" || fail "cbd-backend did not stop cleanly"
grep -q 'cache: written back' "$T/server.log" || fail "no writeback at stop"
fio "${job[@]}" --filename="$IMAGE" --verify_only --output="$T/fio-image.log" ||
	{ cat "$T/fio-image.log"; fail "the image differs from what fio wrote"; }
grep -q "read: IOPS" "$T/fio-image.log" || fail "fio did not verify the image"
echo PASS
