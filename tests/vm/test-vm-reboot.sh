#!/usr/bin/env bash
# The backend's host dies and comes back: no acknowledged write is lost.
# Guest A runs fio --verify=crc32c through cbdfs + loop while guest B,
# which serves its virtio disk, is powered off hard (its QEMU killed: its
# kernel, page cache and processes gone at once) and booted again with
# the same disk and config (a new boot id).  cbd-backend re-adopts its
# backend and channels, A's I/O (which waited meanwhile) resumes, and the
# verify passes.  Then the same with ext4 mounted in A: writes go on after
# B's second reboot, and e2fsck -f after unmount is clean.
source "$(dirname "$0")/lib.sh"

# guest_b BOOT: boot 1 formats; every boot serves, says so, and waits to
# be killed (or, on the last boot, for A to finish).
guest_b() {
	local boot=$1
	dax_wait
	if [ "$boot" = 1 ]; then
		"$BUILD/cbd-admin" -t /dev/dax0.0 format || fail "format"
	fi
	b_conf "$RUN/b.ini" 6000
	start_backend "$RUN/b.ini" "/tmp/b.pid"
	cp /tmp/b.log "$RUN/b.$boot.log" 2>/dev/null || true
	flag_set "b.ready.$boot"
	if [ "$boot" = 3 ]; then
		flag_wait a.done 1200
		stop_daemon "$BACKEND_PID" || fail "cbd-backend did not stop"
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

	log "fio --verify=crc32c while B is powered off and rebooted"
	flag_set a.fio
	fio --name=verify --filename="$LOOP_DEV" --ioengine=libaio --direct=1 \
		--rw=randwrite --bsrange=4k-64k --iodepth=16 --size=160M \
		--verify=crc32c --do_verify=1 --verify_fatal=1 \
		--output="$RUN/fio.out" || { cat "$RUN/fio.out"; fail "fio verify across B's reboot"; }
	flag_set a.fio-done
	grep -E 'err=|WRITE:|READ:' "$RUN/fio.out"
	flag_wait b.ready.2 600

	log "ext4 in A while B is powered off and rebooted again"
	mkfs.ext4 -q "$LOOP_DEV"
	mount_dev "$LOOP_DEV" /mnt/fs
	local i=0
	flag_set a.ext4
	while [ ! -e "$RUN/flag.b.ready.3" ] || [ $i -lt 40 ]; do
		i=$((i + 1))
		head -c $((64 * 1024 + i * 512)) /dev/urandom >"/mnt/fs/f$i"
		[ $((i % 8)) = 0 ] && sync
		[ $i -lt 2000 ] || fail "B did not come back"
	done
	echo "$i files written around the power-off"
	(cd /mnt/fs && sha256sum f* >/tmp/sums)
	umount_dir /mnt/fs
	e2fsck -fn "$LOOP_DEV" || fail "e2fsck after B's reboot"
	mount_dev "$LOOP_DEV" /mnt/fs
	(cd /mnt/fs && sha256sum -c --quiet /tmp/sums) || fail "checksums after remount"
	umount_dir /mnt/fs
	flag_set a.done
}

# power_cycle_b FLAG BOOT: once A set FLAG, pull B's plug, boot it again.
power_cycle_b() {
	vm_flag_wait "$1" 600
	sleep "${2:-5}"
	[ ! -e "$RUN/flag.a.fio-done" ] || [ "$1" != a.fio ] ||
		fail "fio finished before B's power-off: make its job larger"
	echo "  VM      b: power off"
	vm_kill b
	vm_start b b --disk "$RUN/disk-b.img" --args "$3"
}

vm_main "$@"

vm_setup
make_image "$RUN/disk-b.img" 256M
vm_start b b --disk "$RUN/disk-b.img" --args 1
vm_start a a
power_cycle_b a.fio 8 2
power_cycle_b a.ext4 5 3
vm_wait a 900
vm_wait b 300
echo PASS
