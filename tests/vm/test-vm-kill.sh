#!/usr/bin/env bash
# fio --verify=crc32c across kernels (4k-256k, QD32, queues=2): guest A
# writes through cbdfs + loop to guest B's virtio disk; cbd-backend in B is
# killed with SIGKILL mid-run and started again.  It re-attaches the
# channels and executes what was submitted but not completed: the verify
# passes, no completion lost or duplicated.
source "$(dirname "$0")/lib.sh"

guest_b() {
	dax_wait
	"$BUILD/cbd-admin" -t /dev/dax0.0 format || fail "format"
	b_conf "$RUN/b.ini" 10000
	start_backend "$RUN/b.ini" "$RUN/b.pid"
	flag_set b.ready
	flag_wait a.fio 300
	sleep 8
	[ ! -e "$RUN/flag.a.fio-done" ] || fail "fio ended before the kill: make its job larger"
	log "kill -9 cbd-backend mid-run"
	kill -KILL "$BACKEND_PID"
	wait "$BACKEND_PID" 2>/dev/null || true
	rm -f "$RUN/b.pid"
	sleep 2
	start_backend "$RUN/b.ini" "$RUN/b.pid"
	grep -E 're-adopted|attached' "$RUN/b.log" | tail -3
	flag_set b.restarted
	flag_wait a.done 900
	stop_daemon "$BACKEND_PID" || fail "cbd-backend did not stop"
}

guest_a() {
	dax_wait
	flag_wait b.ready 300
	mkdir -p /mnt/cbd
	mount_cbdfs /mnt/cbd transport=/dev/dax0.0,hostname=guest-a,queues=2
	wait_for 10 test -e /mnt/cbd/backend0 || fail "no /mnt/cbd/backend0"
	attach_loop /mnt/cbd/backend0 --direct-io=on
	flag_set a.fio
	fio --name=verify --filename="$LOOP_DEV" --ioengine=libaio --direct=1 \
		--rw=randwrite --bsrange=4k-256k --iodepth=32 --size=200M \
		--verify=crc32c --do_verify=1 --verify_fatal=1 \
		--output="$RUN/fio.out" || { cat "$RUN/fio.out"; fail "fio verify across a kill -9"; }
	flag_set a.fio-done
	[ -e "$RUN/flag.b.restarted" ] || fail "fio ended before cbd-backend was restarted"
	grep -E 'err=|WRITE:|READ:' "$RUN/fio.out"
	flag_set a.done
}

vm_main "$@"

vm_setup
make_image "$RUN/disk-b.img" 256M
vm_start b b --disk "$RUN/disk-b.img"
vm_start a a
vm_wait a 900
vm_wait b 300
echo PASS
