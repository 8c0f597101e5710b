#!/usr/bin/env bash
# fio random writes of 4k-256k blocks at QD32 through a direct-I/O loop
# device on cbdfs, verified with crc32c, with one and with four queues, and
# with requests split into 16 KiB channel commands (chunk=16k); the blkdev
# must really have that many queues, and the data must also be right in
# the backing image.
source "$(dirname "$0")/../functions.sh"
requires_fuse
requires_loop
requires fio
requires jq
test_tmpdir
cd "$T"	# fio drops verify state files into the working directory

SIZE=96M
TRANSPORT=$T/transport
IMAGE=$T/disk0.img
make_image "$IMAGE" 128M
write_config "$T/server.ini" "$TRANSPORT" server disk0 "$IMAGE" id=0 handlers=4
start_backend "$T/server.ini" "$T/server.pid"

for round in "1" "4" "2 16k"; do
	read -r q chunk <<<"$round"
	logpos=$(wc -l <"$T/server.log")
	log "queues=$q${chunk:+ chunk=$chunk}"
	mount_cbdfs "$T/mnt$q" "transport=$TRANSPORT,hostname=client,queues=$q${chunk:+,chunk=$chunk}"
	pid=$CBDFS_PID
	attach_loop "$T/mnt$q/backend0" --direct-io=on
	"$BUILD/cbd-status" -t "$TRANSPORT" --json >"$T/st.json"
	jq -e --argjson q $q '.blkdevs | length == 1 and .[0].queues == $q' \
		"$T/st.json" >/dev/null ||
		fail "blkdev does not have $q queues: $(jq -c .blkdevs "$T/st.json")"
	fio --name=verify-q$q --filename="$LOOP_DEV" --size=$SIZE \
		--rw=randwrite --bsrange=4k-256k --iodepth=32 \
		--ioengine=libaio --direct=1 --verify=crc32c --verify_fatal=1 \
		--randseed=$q --output="$T/fio-q$q.log" ||
		{ cat "$T/fio-q$q.log"; fail "fio verify with queues=$q"; }
	grep -E 'IOPS|err=' "$T/fio-q$q.log"
	# every thread says what it is (top -H, perf): a reaper per queue,
	# the FUSE side, a handler per attached segment, the heartbeats
	has_thread() { # PID NAME (a regex for the whole comm)
		local comms
		comms=$(cat /proc/"$1"/task/*/comm)
		grep -qxE "$2" <<<"$comms" ||
			fail "process $1 has no thread $2: $(sort -u <<<"$comms" | paste -sd' ')"
	}
	for name in "reap-b0.$((q - 1))" heartbeat "fuse-(uring|dev)0"; do
		has_thread "$pid" "$name"
	done
	for name in "handler-s[0-9]+" heartbeat discover; do
		has_thread "$BACKEND_PID" "$name"
	done
	# the same verification straight on the image, without cbdfs
	detach_loop "$LOOP_DEV" "$T/mnt$q/backend0"
	umount_cbdfs "$T/mnt$q" "$pid"
	# the handlers log their request counts when they detach
	detached() { tail -n +$((logpos + 1)) "$T/server.log" | grep -c detached; }
	all_detached() { [ "$(detached)" -ge "$q" ]; }
	wait_for 30 all_detached || fail "handlers did not detach"
	nreq=$(tail -n +$((logpos + 1)) "$T/server.log" |
		sed -n 's/.*detached (.*; \([0-9]*\) requests.*/\1/p' | paste -sd+ | bc)
	echo "channel requests: $nreq"
	if [ -n "$chunk" ]; then
		# each 4k-256k I/O was split into 16k commands: at least
		# 96 MiB / 16 KiB for the writes and as many for the verify
		[ "$nreq" -ge 12288 ] || fail "chunk=16k did not split: $nreq requests"
	else
		[ "$nreq" -lt 6000 ] || fail "unexpected splitting: $nreq requests"
	fi
	fio --name=verify-q$q --filename="$IMAGE" --size=$SIZE \
		--rw=randwrite --bsrange=4k-256k --verify=crc32c \
		--verify_only --verify_fatal=1 --randseed=$q \
		--output="$T/fio-image-q$q.log" ||
		{ cat "$T/fio-image-q$q.log"; fail "image verification, queues=$q"; }
done
echo PASS
