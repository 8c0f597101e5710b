#!/usr/bin/env bash
# The client's host dies.  Guest A maps backend0 writable (cbdfs + loop)
# and is then powered off hard.  Until the janitor in guest B has cleared
# A's host, blkdev and channel segments, another writer is refused
# (EBUSY); after the timeout B's janitor clears them, and a fresh guest A2
# maps the backend writable and uses it.
source "$(dirname "$0")/lib.sh"

TIMEOUT_MS=20000

# client_gone NAME: no live or dead host NAME left in the transport.
client_gone() {
	! "$BUILD/cbd-status" -t /dev/dax0.0 --json |
		jq -e --arg n "$1" '.hosts[] | select(.hostname == $n)' >/dev/null
}

guest_b() {
	dax_wait
	"$BUILD/cbd-admin" -t /dev/dax0.0 format || fail "format"
	b_conf "$RUN/b.ini" "$TIMEOUT_MS"
	start_backend "$RUN/b.ini" "$RUN/b.pid"
	flag_set b.ready
	flag_wait a.killed 600
	log "A is gone: a second writer is refused until the janitor clears it"
	mkdir -p /mnt/probe
	mount_cbdfs /mnt/probe transport=/dev/dax0.0,hostname=probe
	wait_for 10 test -e /mnt/probe/backend0 || fail "no backend0 in B"
	client_gone guest-a && fail "A's host was cleared before its timeout"
	[ "$(cbdfs_errno /mnt/probe/backend0 rw open)" = EBUSY ] ||
		fail "a second writer was not refused while A's blkdev stood"
	umount_cbdfs /mnt/probe "$CBDFS_PID"
	log "the janitor clears A's host, blkdev and segments"
	wait_for $((TIMEOUT_MS / 1000 * 4)) client_gone guest-a ||
		fail "A was not cleared: $("$BUILD/cbd-status" -t /dev/dax0.0)"
	grep -E 'janitor' "$RUN/b.log" | tail -5
	"$BUILD/cbd-status" -t /dev/dax0.0 --json |
		jq -e '[.segments[] | select(.state == "active")] | length == 0' >/dev/null ||
		fail "A's channel segments are left: $("$BUILD/cbd-status" -t /dev/dax0.0)"
	flag_set b.cleared
	flag_wait a2.done 600
	stop_daemon "$BACKEND_PID" || fail "cbd-backend did not stop"
}

guest_a() {
	dax_wait
	flag_wait b.ready 300
	mkdir -p /mnt/cbd
	mount_cbdfs /mnt/cbd transport=/dev/dax0.0,hostname=guest-a
	wait_for 10 test -e /mnt/cbd/backend0 || fail "no /mnt/cbd/backend0"
	attach_loop /mnt/cbd/backend0 --direct-io=on
	dd if=/dev/urandom of="$LOOP_DEV" bs=64k count=16 oflag=direct status=none
	flag_set a.holding
	sleep infinity
}

guest_a2() {
	dax_wait
	mkdir -p /mnt/cbd
	mount_cbdfs /mnt/cbd transport=/dev/dax0.0,hostname=guest-a2
	wait_for 10 test -e /mnt/cbd/backend0 || fail "no /mnt/cbd/backend0"
	attach_loop /mnt/cbd/backend0 --direct-io=on
	head -c 1M /dev/urandom >/tmp/data
	dd if=/tmp/data of="$LOOP_DEV" bs=64k oflag=direct status=none || fail "write as A2"
	cmp <(dd if="$LOOP_DEV" bs=64k count=16 iflag=direct status=none) /tmp/data ||
		fail "read back as A2"
	flag_set a2.done
}

vm_main "$@"

vm_setup
make_image "$RUN/disk-b.img" 64M
vm_start b b --disk "$RUN/disk-b.img"
vm_start a a
vm_flag_wait a.holding 600
echo "  VM      a: power off"
vm_kill a
flag_set a.killed
vm_flag_wait b.cleared 600
vm_start a2 a2
vm_wait a2 600
vm_wait b 300
echo PASS
