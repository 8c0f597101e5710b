#!/usr/bin/env bash
# The /dev/fuse workers take turns so that a request sent alone (queue
# depth 1) is read by the worker that answered the one before, not by
# whichever has slept longest: 2000 direct 4 KiB reads one after the other
# are all read(2) from /dev/fuse by one of the four workers.  At depth
# they all read: a verified fio at QD32 passes, and an fsync (a request
# that blocks) does not keep the others from being read.
source "$(dirname "$0")/../functions.sh"
requires_fuse
requires fio
[ "${CBDFS_IO_URING:-}" != on ] ||
	skip "over io_uring the /dev/fuse worker reads only FORGET and INTERRUPT"
test_tmpdir
cd "$T" # fio drops verify state files into the working directory
CBDFS_IO_URING=off cbdfs_stack 64M "max_threads=4"

# read(2) calls of each fuse-devN thread: "TID COUNT" lines
dev_reads() {
	local d
	for d in /proc/"$CBDFS_PID"/task/*; do
		grep -q '^fuse-dev' "$d/comm" 2>/dev/null || continue
		echo "${d##*/} $(awk '/^syscr:/ { print $2 }' "$d/io")"
	done
}
[ "$(dev_reads | wc -l)" = 4 ] || fail "expected 4 fuse-dev threads: $(dev_reads)"

before=$(dev_reads)
dd if="$FILE" of=/dev/null bs=4k count=2000 iflag=direct status=none ||
	fail "direct reads"
after=$(dev_reads)
read -r max total < <(join <(sort <<<"$before") <(sort <<<"$after") |
	awk '{ d = $3 - $2; t += d; if (d > m) m = d } END { print m + 0, t + 0 }')
log "reads of /dev/fuse per worker, before: $(paste -sd' ' <<<"$before"); after: $(paste -sd' ' <<<"$after")"
[ "$total" -ge 2000 ] || fail "$total reads of /dev/fuse for 2000 requests"
# the open, flush and release pass the turn on: a few reads elsewhere
[ "$max" -ge 1990 ] || fail "the busiest worker read $max of $total requests"

fio --name=depth --filename="$FILE" --ioengine=libaio --direct=1 \
	--rw=randwrite --bs=4k --iodepth=32 --size=16M --verify=crc32c \
	--output="$T/fio.txt" &
fio_pid=$!
cleanup_fn "kill $fio_pid 2>/dev/null"
for _ in 1 2 3 4 5; do
	timeout 60 python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
os.fsync(fd)' "$FILE" || fail "fsync during QD32 writes"
done
wait "$fio_pid" || fail "verified fio at QD32: $(cat "$T/fio.txt")"
echo PASS
