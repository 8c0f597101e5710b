#!/usr/bin/env bash
# cbdfs's own memory comes back after big I/O: over io_uring every entry
# of a CPU queue has a 1 MiB payload buffer that 1 MiB requests fill, so
# a queue holds 32 MiB while busy; idle for a few seconds it gives the
# pages back.  Over /dev/fuse the buffers are the workers' and small.
# Either way cbdfs's anonymous memory falls below 24 MiB once idle.
source "$(dirname "$0")/../functions.sh"
requires_fuse
requires_loop
requires fio
test_tmpdir
cd "$T" # fio drops verify state files into the working directory
cbdfs_stack 256M "queues=2"
attach_loop "$FILE" --direct-io=on

anon_kib() { awk '/^RssAnon:/ { print $2 }' "/proc/$CBDFS_PID/status"; }
fio --name=big --filename="$LOOP_DEV" --ioengine=libaio --direct=1 \
	--rw=readwrite --bs=1M --iodepth=32 --time_based --runtime=3 \
	--output=/dev/null || fail "fio"
log "after 3 s of 1 MiB reads and writes at QD32: RssAnon $(anon_kib) KiB"
small() { [ "$(anon_kib)" -lt $((24 << 10)) ]; }
wait_for 60 small || fail "cbdfs still holds $(anon_kib) KiB of anonymous memory when idle"
log "idle: RssAnon $(anon_kib) KiB"
# and the buffers work again after being given back
fio --name=verify --filename="$LOOP_DEV" --ioengine=libaio --direct=1 \
	--rw=randwrite --bs=64k --iodepth=8 --size=32M --verify=crc32c \
	--output="$T/verify.txt" || fail "verified I/O after the trim: $(cat "$T/verify.txt")"
echo PASS
