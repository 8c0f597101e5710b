#!/usr/bin/env bash
# cbd-backend serves every op through real channels, driven by
# cbd-testclient: patterns at aligned and unaligned offsets (checked in the
# backing image itself), FUA, flush, discard punching holes, write-zeroes,
# requests past the end refused with EINVAL, read-only backends refusing
# writes with EROFS, and one writer per backend (EBUSY) beside readers.
source "$(dirname "$0")/../functions.sh"

test_tmpdir
requires python3
M=$((1 << 20))

make_image "$T/disk0.img" 64M
make_image "$T/ro0.img" 16M
printf 'read-only data' | dd of="$T/ro0.img" conv=notrunc status=none
write_config "$T/cbd.ini" "$T/transport" node-a \
	disk0 "$T/disk0.img" "id = 0" "handlers = 4" \
	ro0 "$T/ro0.img" "id = 1" "handlers = 2" "readonly = true"
start_backend "$T/cbd.ini" "$T/backend.pid"

log "patterns: aligned, unaligned, across request splits, four queues"
tclient -b 0 -H c1 -q 4 \
	write 0 4M 1 read 0 4M 1 \
	write 4097 12345 2 read 4097 12345 2 read 0 4097 1 read 16442 100000 1 \
	write $((M - 6)) 3000000 3 read $((M - 6)) 3000000 3 \
	write-fua $((63 * M)) 1M 4 read $((63 * M)) 1M 4 \
	write $((64 * M - 1)) 1 5 read $((64 * M - 1)) 1 5 \
	flush

log "the image holds exactly what was written, where it was written"
image_has() { # FILE OFF LEN SEED
	cmp <(tclient pattern "$2" "$3" "$4") \
	    <(dd if="$1" iflag=skip_bytes,count_bytes skip="$2" count="$3" \
		 status=none) || fail "$1: bytes $2+$3 differ from seed $4"
}
image_has "$T/disk0.img" 0 4097 1
image_has "$T/disk0.img" 4097 12345 2
image_has "$T/disk0.img" $((M - 6)) 3000000 3
image_has "$T/disk0.img" $((63 * M)) $((M - 1)) 4
image_has "$T/disk0.img" $((64 * M - 1)) 1 5

log "another client (host) sees the same data"
tclient -b 0 -H c2 -q 2 read 4097 12345 2 read $((M - 6)) 3000000 3

log "discard punches a hole in the image"
tclient -b 0 -H c3 write $((7 * M)) 10M 6 flush
before=$(allocated_kib "$T/disk0.img")
tclient -b 0 -H c3 discard $((8 * M)) 8M flush readzero $((8 * M)) 8M
after=$(allocated_kib "$T/disk0.img")
log "allocated: ${before} KiB -> ${after} KiB"
[ $((before - after)) -ge $((7 * 1024)) ] ||
	fail "discard of 8 MiB freed only $((before - after)) KiB"
python3 - "$T/disk0.img" $((8 * M)) <<'EOF' || fail "no hole where discarded"
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
off = int(sys.argv[2])
sys.exit(0 if os.lseek(fd, off, os.SEEK_HOLE) == off else 1)
EOF
# its neighbours keep their data
tclient -b 0 -H c3 read $((7 * M)) 1M 6 read $((16 * M)) 1M 6

log "write-zeroes, aligned and not, leaves the neighbours alone"
Z=$((20 * M))
tclient -b 0 -H c4 write $Z 1M 7 zeroes $((Z + 100)) 5000 \
	read $Z 100 7 readzero $((Z + 100)) 5000 \
	read $((Z + 5100)) $((M - 5100)) 7 \
	zeroes $((Z + 4096 * 16)) 64K readzero $((Z + 4096 * 16)) 64K \
	read $((Z + 4096 * 32)) 4096 7

log "requests past the end fail with EINVAL, and the channel goes on"
expect_rc 22 tclient -b 0 -H c5 read $((64 * M)) 4096 1
expect_rc 22 tclient -b 0 -H c5 read $((64 * M - 100)) 4096 1
expect_rc 22 tclient -b 0 -H c5 write $((64 * M)) 1 1
expect_rc 22 tclient -b 0 -H c5 discard $((63 * M)) 2M
expect_rc 22 tclient -b 0 -H c5 zeroes $((64 * M - 1)) 2
tclient -b 0 -H c5 read 0 4097 1

log "read-only backend: writable map refused, reads work, writes EROFS"
expect_rc 30 tclient -b 1 -H c6 readzero 0 1
tclient -b 1 -H c6 --ro readzero 100 1M
[ "$(tclient -b 1 -H c6 --ro size)" = $((16 * M)) ] || fail "ro0: wrong size"
expect_rc 30 tclient -b 1 -H c6 --ro write 0 4096 1
expect_rc 30 tclient -b 1 -H c6 --ro zeroes 0 4096
expect_rc 30 tclient -b 1 -H c6 --ro discard 0 4096
[ "$(head -c 14 "$T/ro0.img")" = "read-only data" ] || fail "ro0.img changed"

log "one writer per backend; readers coexist with it"
start_holder w1 -b 0 -q 2
expect_rc 16 tclient -b 0 -H c7 read 0 4097 1
tclient -b 0 -H c8 --ro read 0 4097 1
stop_holder w1
tclient -b 0 -H c7 read 0 4097 1

log "nothing left mapped"
wait_for 30 no_status_line '^(blkdev|segment) ' ||
	fail "mappings left behind: $(tclient status)"
kill -0 "$BACKEND_PID" || fail "cbd-backend died"
