#!/usr/bin/env bash
# The mission's command on a real dax device, across two kernels.
# Guest B formats /dev/dax0.0 with cbd-admin and serves its virtio disk
# /dev/vda with cbd-backend; guest A mounts cbdfs on the same device,
# attaches backend0 to a loop device, makes ext4, writes files, checks
# them, unmounts, e2fsck -f, remounts and checks again.  cbd-status in both
# guests sees both hosts alive.  Then both daemons idle for 10 s without a
# shared futex: a request after that completes, and neither daemon spins
# (each guest prints its daemon's idle CPU and the wake-up latency next to
# the documented bound).
source "$(dirname "$0")/lib.sh"

# both_alive: cbd-status in this guest sees guest-a's and guest-b's hosts.
both_alive() {
	"$BUILD/cbd-status" -t /dev/dax0.0 --json | tee "$RUN/status.$CBD_VM_NAME.json" |
		jq -e '[.hosts[] | select(.alive) | .hostname] | sort == ["a", "guest-b"]' >/dev/null
}

# cpu_pct PID SECS: CPU use of PID (all threads) over SECS, in % of a core.
cpu_pct() {
	local pid=$1 secs=$2 t0 t1 hz
	hz=$(getconf CLK_TCK)
	t0=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
	sleep "$secs"
	t1=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
	echo $(( (t1 - t0) * 100 / (hz * secs) ))
}

# read_us BLOCK: microseconds one direct 4 KiB read of the loop device takes.
read_us() {
	local t0 t1
	t0=$(date +%s%N)
	dd if="$LOOP_DEV" of=/dev/null bs=4k count=1 skip="$1" iflag=direct status=none || return 1
	t1=$(date +%s%N)
	echo $(( (t1 - t0) / 1000 ))
}

guest_b() {
	dax_wait
	"$BUILD/cbd-admin" -t /dev/dax0.0 format || fail "cbd-admin format /dev/dax0.0"
	b_conf "$RUN/b.ini" 10000
	start_backend "$RUN/b.ini" "$RUN/b.pid"
	flag_set b.ready
	flag_wait a.mapped 120
	both_alive || fail "cbd-status in B: not both hosts alive: $(cat "$RUN/status.b.json")"
	flag_wait a.idle 600
	local cpu
	cpu=$(cpu_pct "$BACKEND_PID" 10)
	echo "idle cbd-backend CPU over 10 s: $cpu % of a core"
	flag_set b.cpu "$cpu"
	[ "$cpu" -lt 20 ] || fail "idle cbd-backend uses $cpu % of a core"
	flag_wait a.done 600
	stop_daemon "$BACKEND_PID" || fail "cbd-backend did not stop"
}

guest_a() {
	dax_wait
	flag_wait b.ready 120
	mkdir -p /mnt/cbd
	mount_cbdfs /mnt/cbd transport=/dev/dax0.0,hostname=a
	wait_for 10 test -e /mnt/cbd/backend0 || fail "no /mnt/cbd/backend0"
	attach_loop /mnt/cbd/backend0 --direct-io=on
	both_alive || fail "cbd-status in A: not both hosts alive: $(cat "$RUN/status.a.json")"
	flag_set a.mapped

	log "ext4 on backend0 across kernels"
	mkfs.ext4 -q "$LOOP_DEV"
	mount_dev "$LOOP_DEV" /mnt/fs
	mkdir /mnt/fs/d
	for i in $(seq 40); do
		head -c $((i * 37 * 1024)) /dev/urandom >"/mnt/fs/d/f$i"
	done
	(cd /mnt/fs && find d -type f -exec sha256sum {} + | sort -k2) >/tmp/sums
	umount_dir /mnt/fs
	e2fsck -fn "$LOOP_DEV" || fail "e2fsck after unmount"
	echo 3 >/proc/sys/vm/drop_caches
	mount_dev "$LOOP_DEV" /mnt/fs
	(cd /mnt/fs && sha256sum -c --quiet /tmp/sums) || fail "checksums after remount"
	umount_dir /mnt/fs

	log "idle for 10 s, then one request"
	local cpu busy idle
	busy=$(read_us 100)	# warm: dd is loaded, the handler spins
	flag_set a.idle
	cpu=$(cpu_pct "$CBDFS_PID" 10)
	echo "idle cbdfs CPU over 10 s: $cpu % of a core"
	idle=$(read_us 12345) || fail "a read after 10 s idle"
	echo "wake-up: a 4 KiB read took $busy us busy, $idle us after 10 s idle" \
		"(across hosts no doorbell reaches a sleeping handler: it polls," \
		"at least every 5 ms; under emulation every step is slower)"
	[ "$cpu" -lt 20 ] || fail "idle cbdfs uses $cpu % of a core"
	flag_wait b.cpu 120
	flag_set a.done
}

vm_main "$@"

vm_setup
make_image "$RUN/disk-b.img" 256M
vm_start b b --disk "$RUN/disk-b.img"
vm_start a a
vm_wait a 900
vm_wait b 300
echo "idle CPU: cbd-backend $(flag_get b.cpu) %, see a.log for cbdfs and the wake-up"
echo PASS
