#!/usr/bin/env bash
# A transport formatted with entry and data CRCs: every se/ce and every
# data extent carries a crc32c; fio's verified random writes through cbdfs
# must pass as they do without.
source "$(dirname "$0")/../functions.sh"
requires_fuse
requires_loop
requires fio
requires jq
test_tmpdir
cd "$T"	# fio drops verify state files into the working directory

"$BUILD/cbd-admin" -t "$T/transport" format --size 256M --entry-crc --data-crc \
	>/dev/null || fail "format with crcs"
"$BUILD/cbd-status" -t "$T/transport" --json | jq -c .transport.flags
cbdfs_stack 128M "queues=2"
[ "$TRANSPORT" = "$T/transport" ] || fail "stack uses another transport"
attach_loop "$FILE" --direct-io=on
fio --name=crc --filename="$LOOP_DEV" --size=64M --rw=randwrite \
	--bsrange=4k-256k --iodepth=32 --ioengine=libaio --direct=1 \
	--verify=crc32c --verify_fatal=1 --output="$T/fio.log" ||
	{ cat "$T/fio.log"; fail "fio verify over a crc transport"; }
grep -E 'IOPS|err=' "$T/fio.log"
echo PASS
