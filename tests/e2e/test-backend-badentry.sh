#!/usr/bin/env bash
# Garbage in a submission ring entry (unknown op, unknown flags, FUA on a
# read, empty write, past the end, offset overflow, data extent outside the
# data area, data length mismatch, flush or discard carrying data, a stale
# sequence number) is completed with an error (EINVAL for every entry that
# fails validation) and the handler goes on serving the same channel.
source "$(dirname "$0")/../functions.sh"

test_tmpdir
make_image "$T/disk0.img" 16M
write_config "$T/cbd.ini" "$T/transport" node-a \
	disk0 "$T/disk0.img" "id = 0" "handlers = 2"
start_backend "$T/cbd.ini" "$T/backend.pid" -v

log "one client: data, every kind of bad entry, the same data again"
tclient -b 0 -H c1 write 0 64K 9 badentry all read 0 64K 9 \
	write 64K 4K 3 read 64K 4K 3 | tee "$T/bad.out"
kinds=$(grep -c '^badentry .*: result -22 ' "$T/bad.out")
[ "$kinds" -ge 11 ] || fail "only $kinds bad entries failed with EINVAL"
grep -q '^badentry seq: result -[1-9]' "$T/bad.out" ||
	fail "a stale entry was not failed"

log "each kind alone, each on a fresh mapping"
for k in op0 op flags fua-read len0 past-end overflow extent data-len \
	 flush-len discard-data seq; do
	tclient -b 0 -H "c-$k" badentry "$k" read 0 64K 9 >/dev/null
done

log "nothing was written by a bad entry; the backend is alive and serving"
cmp <(tclient pattern 0 64K 9) <(head -c 65536 "$T/disk0.img") ||
	fail "the image changed under bad entries"
kill -0 "$BACKEND_PID" || fail "cbd-backend died"
tclient -b 0 -H c2 -q 2 read 64K 4K 3
grep -q 'Invalid argument' "$T/backend.log" ||
	fail "the backend did not log the refused entries"
