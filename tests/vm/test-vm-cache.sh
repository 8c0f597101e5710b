#!/usr/bin/env bash
# The backend's host dies with writes in its cache that are not on its
# disk, and comes back: none is lost.  Guest B serves its virtio disk with
# a cache in /dev/dax0.0 (persistent: no cache_volatile needed); guest A
# runs fio --verify=crc32c through cbdfs + loop, holds the cache's
# writeback back (cbd-admin cache-writeback --pause, from A: the request
# goes through the shared transport) until cbd-status shows dirty data,
# and then B is powered off hard and booted again.  B's restart replays
# the log from the dax device, A's I/O resumes, fio verifies every block,
# and a clean stop of B writes everything to its disk.
source "$(dirname "$0")/lib.sh"

guest_b() {
	local boot=$1
	dax_wait
	if [ "$boot" = 1 ]; then
		"$BUILD/cbd-admin" -t /dev/dax0.0 format || fail "format"
	fi
	b_conf "$RUN/b.ini" 6000 cache_size=128M cache_data_crc=yes
	start_backend "$RUN/b.ini" /tmp/b.pid
	cp /tmp/b.log "$RUN/b.$boot.log" 2>/dev/null || true
	if [ "$boot" = 2 ]; then
		grep 'cache: replayed' /tmp/b.log || fail "B's restart replayed nothing: $(cat /tmp/b.log)"
	fi
	flag_set "b.ready.$boot"
	if [ "$boot" = 2 ]; then
		flag_wait a.done 1200
		stop_daemon "$BACKEND_PID" || fail "cbd-backend did not stop"
		cp /tmp/b.log "$RUN/b.$boot.log"
		grep 'cache: written back' /tmp/b.log || fail "no writeback at the clean stop"
		return 0
	fi
	sleep infinity
}

guest_a() {
	dax_wait
	flag_wait b.ready.1 300
	mkdir -p /mnt/cbd
	mount_cbdfs /mnt/cbd transport=/dev/dax0.0,hostname=guest-a,queues=2
	wait_for 10 test -e /mnt/cbd/backend0 || fail "no /mnt/cbd/backend0"
	attach_loop /mnt/cbd/backend0 --direct-io=on

	log "fio --verify=crc32c; B powered off with dirty data in its cache"
	"$BUILD/cbd-admin" -t /dev/dax0.0 cache-writeback 0 --pause || fail "pause"
	fio --name=verify --filename="$LOOP_DEV" --ioengine=libaio --direct=1 \
		--rw=randwrite --bsrange=4k-64k --iodepth=16 --size=96M \
		--verify=crc32c --do_verify=1 --verify_fatal=1 \
		--output="$RUN/fio.out" &
	local fio_pid=$!
	wait_for 600 cache_dirty_over /dev/dax0.0 $((4 << 20)) || fail "no dirty data in the cache"
	kill -0 "$fio_pid" 2>/dev/null || fail "fio finished before B's power-off: make its job larger"
	echo "dirty in B's cache: $(cache_field /dev/dax0.0 dirty) bytes"
	flag_set a.dirty
	flag_wait b.ready.2 900
	"$BUILD/cbd-admin" -t /dev/dax0.0 cache-writeback 0 --resume || fail "resume"
	wait "$fio_pid" || { cat "$RUN/fio.out"; fail "fio verify across B's power-off"; }
	grep -E 'err=|WRITE:|READ:' "$RUN/fio.out"
	"$BUILD/cbd-admin" -t /dev/dax0.0 cache-writeback 0 || fail "cache-writeback"
	[ "$(cache_field /dev/dax0.0 dirty)" = 0 ] || fail "dirty after cache-writeback"
	flag_set a.done
}

vm_main "$@"

vm_setup
make_image "$RUN/disk-b.img" 256M
vm_start b b --disk "$RUN/disk-b.img" --args 1
vm_start a a
vm_flag_wait a.dirty 600
echo "  VM      b: power off"
vm_kill b
vm_start b b --disk "$RUN/disk-b.img" --args 2
vm_wait a 900
vm_wait b 300
echo PASS
