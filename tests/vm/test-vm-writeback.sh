#!/usr/bin/env bash
# durability = writeback keeps acknowledged writes in the backend host's
# page cache until a flush; this scenario shows that the client learns of
# a loss instead of going on with a disk that went back in time.  Guest A
# writes through cbdfs and flushes; guest B (the backend's host) is
# powered off and rebooted: nothing was lost, A reads its data back.  Then
# A writes without a flush and B is powered off again: after the reboot
# A's I/O on that mapping fails with EIO, and B's log says why.
source "$(dirname "$0")/lib.sh"

guest_b() {
	local boot=$1
	dax_wait
	[ "$boot" != 1 ] || "$BUILD/cbd-admin" -t /dev/dax0.0 format || fail "format"
	b_conf "$RUN/b.ini" 6000 handlers=1 durability=writeback
	start_backend "$RUN/b.ini" /tmp/b.pid
	cp /tmp/b.log "$RUN/b.$boot.log"
	flag_set "b.ready.$boot"
	if [ "$boot" = 3 ]; then
		flag_wait a.done 600
		grep -F "segment 0: lost: writes acknowledged in writeback mode" /tmp/b.log ||
			fail "B did not say the channel was lost: $(cat /tmp/b.log)"
		stop_daemon "$BACKEND_PID" || fail "cbd-backend did not stop"
		return 0
	fi
	sleep infinity
}

guest_a() {
	dax_wait
	flag_wait b.ready.1 300
	mkdir -p /mnt/cbd
	mount_cbdfs /mnt/cbd transport=/dev/dax0.0,hostname=guest-a,queues=1
	wait_for 10 test -e /mnt/cbd/backend0 || fail "no /mnt/cbd/backend0"
	attach_loop /mnt/cbd/backend0 --direct-io=on
	head -c 4M /dev/urandom >/tmp/one
	head -c 4M /dev/urandom >/tmp/two

	log "written and flushed, then B's host crashes: nothing lost"
	dd if=/tmp/one of="$LOOP_DEV" bs=64k oflag=direct conv=fsync status=none || fail "write one"
	flag_set a.flushed
	flag_wait b.ready.2 600
	cmp <(dd if="$LOOP_DEV" bs=64k count=64 iflag=direct status=none) /tmp/one ||
		fail "flushed data lost across B's reboot"

	log "written, not flushed, then B's host crashes: the client's I/O fails"
	dd if=/tmp/two of="$LOOP_DEV" bs=64k seek=64 oflag=direct status=none || fail "write two"
	flag_set a.unflushed
	flag_wait b.ready.3 600
	if dd if="$LOOP_DEV" of=/dev/null bs=64k count=1 skip=64 iflag=direct 2>"$RUN/a.dd.err"; then
		fail "a read after losing unflushed writes succeeded"
	fi
	grep -q 'Input/output error' "$RUN/a.dd.err" || fail "not EIO: $(cat "$RUN/a.dd.err")"
	echo "as expected: $(cat "$RUN/a.dd.err")"
	flag_set a.done
}

power_cycle_b() {
	vm_flag_wait "$1" 600
	sleep 2
	echo "  VM      b: power off"
	vm_kill b
	vm_start b b --disk "$RUN/disk-b.img" --args "$2"
}

vm_main "$@"

vm_setup
make_image "$RUN/disk-b.img" 64M
vm_start b b --disk "$RUN/disk-b.img" --args 1
vm_start a a
power_cycle_b a.flushed 2
power_cycle_b a.unflushed 3
vm_wait a 900
vm_wait b 300
echo PASS
