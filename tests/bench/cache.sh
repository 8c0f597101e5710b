#!/usr/bin/env bash
# The pcache benchmark: fio through cbdfs and a loop device (--direct-io=on)
# on a backing image on a real disk (not tmpfs), with the backend's cache
# off and on, in the same run.  Jobs: 4k random writes at QD1 without and
# with an fsync after each write (a FLUSH to the backend), 4k random
# writes at QD32, and 1 MiB sequential writes at QD8; then the ring-only
# round trip of a cached 4k write (cbd-bench --cache, no FUSE) next to
# dm-pcache's published 5-7 us.  Prints a markdown table; not part of
# `make check`.
#
# Usage: cache.sh [--dir DIR] [--size SIZE] [--cache SIZE] [--runtime S]
#                 [--out DIR]
#   --dir      where the backing image goes (default /var/tmp; must not be
#              tmpfs); the transport is a file on /dev/shm
#   --size     image size (default 2G); --cache cache_size (default 1G)
set -u -o pipefail
source "$(dirname "$0")/lib.sh"
BUILD=${BUILD:-$(cd "$(dirname "$0")/../.." && pwd)/build}
DIR=/var/tmp SIZE=2G CACHE=1G RUNTIME=10 OUT=
while [ $# -gt 0 ]; do
	case $1 in
	--dir) DIR=$2; shift 2 ;;
	--size) SIZE=$2; shift 2 ;;
	--cache) CACHE=$2; shift 2 ;;
	--runtime) RUNTIME=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	*) echo "usage: $0 [--dir DIR] [--size SIZE] [--cache SIZE] [--runtime S] [--out DIR]" >&2; exit 2 ;;
	esac
done
requires_root
requires fio
requires python3
[ "$(stat -f -c %T "$DIR")" != tmpfs ] || { echo "$DIR is tmpfs: the cache is measured against a real disk" >&2; exit 2; }
bench_tmpdir
OUT=${OUT:-$T/out}
mkdir -p "$OUT"
IMG=$(mktemp "$DIR/cbd-bench-cache.XXXXXX")
cleanup_fn "rm -f '$IMG'"
log "image $IMG ($SIZE, $(stat -f -c %T "$DIR")), cache $CACHE, $RUNTIME s per job"
bench_make_image "$IMG" "$SIZE"

JOBS=(qd1 qd1-fsync qd1-fsync-wt qd32 seq1m)
job_args() {
	case $1 in
	qd1) echo --rw=randwrite --bs=4k --iodepth=1 ;;
	qd1-fsync*) echo --rw=randwrite --bs=4k --iodepth=1 --fsync=1 ;;
	qd32) echo --rw=randwrite --bs=4k --iodepth=32 ;;
	seq1m) echo --rw=write --bs=1M --iodepth=8 ;;
	esac
}

for side in off on; do
	keys=
	cache_mib=$(( $(bench_size_bytes "$CACHE") >> 20 ))
	if [ $side = on ]; then
		keys="cache_size = $CACHE
cache_volatile = yes"
	fi
	export CBD_BENCH_BACKEND_KEYS=$keys
	export CBD_BENCH_TRANSPORT_SIZE=$((cache_mib + 512))M
	mkdir -p "$T/$side"
	bench_start_cbd "$T/$side" "$IMG" 2 4 || { echo "cache $side: $BENCH_WHY" >&2; exit 1; }
	bench_attach_loop "$BENCH_FILE" || { echo "losetup failed" >&2; exit 1; }
	wc=/sys/block/${LOOP_DEV#/dev/}/queue/write_cache
	for job in "${JOBS[@]}"; do
		# A cached backend has no volatile write cache: told so, the
		# block layer sends no flushes at all (as nbd without
		# SEND_FLUSH, ublk without VOLATILE_CACHE).
		[ "$job" != qd1-fsync-wt ] || echo "write through" >"$wc"
		# shellcheck disable=SC2046
		fio --name="$job" --filename="$LOOP_DEV" --ioengine=libaio --direct=1 \
			--time_based --runtime="$RUNTIME" --randrepeat=0 \
			$(job_args "$job") --output-format=json \
			--output="$OUT/$side-$job.json" >/dev/null 2>"$OUT/$side-$job.err" ||
			{ cat "$OUT/$side-$job.err" >&2; exit 1; }
		echo "write back" >"$wc"
	done
	bench_unwind
done

ring=$("$BUILD/cbd-bench" --cache "$IMG" -s 3 --idle 0 --json 2>/dev/null)
python3 - "$OUT" "$ring" "${JOBS[*]}" <<'PY' | tee "$OUT/table.md"
import json, sys
out, ring, jobs = sys.argv[1], sys.argv[2], sys.argv[3].split()
def get(side, job):
    with open(f"{out}/{side}-{job}.json") as f:
        w = json.load(f)["jobs"][0]["write"]
    return w["iops"], w["bw"] / 1024, w["clat_ns"]["percentile"].get("50.000000", 0) / 1000
names = {"qd1": "4k randwrite QD1", "qd1-fsync": "4k randwrite QD1, fsync after each",
         "qd1-fsync-wt": "... loop write_cache = write through",
         "qd32": "4k randwrite QD32", "seq1m": "1 MiB seq write QD8"}
r = {(s, j): get(s, j) for s in ("off", "on") for j in jobs}
print("| job | cache off | cache on | on/off |")
print("|---|---|---|---|")
for j in jobs:
    (i0, b0, p0), (i1, b1, p1) = r["off", j], r["on", j]
    if j == "seq1m":
        print(f"| {names[j]} | {b0:.0f} MiB/s | {b1:.0f} MiB/s | {b1 / b0:.2f}x |")
    else:
        print(f"| {names[j]} | {i0 / 1000:.1f}k IOPS, p50 {p0:.0f} us | {i1 / 1000:.1f}k IOPS, p50 {p1:.0f} us | {i1 / i0:.2f}x |")
on_q, off_f = r["on", "qd1"][0], r["off", "qd1-fsync"][0]
print()
for j, how in (("qd1-fsync", "each flush a FUSE FSYNC and a FLUSH to the backend"),
               ("qd1-fsync-wt", "no flushes sent: the device says it has no volatile cache")):
    on_f = r["on", j][0]
    print(f"flushed / unflushed QD1 with the cache ({how}): {on_f / on_q * 100:.0f} % (target >= 80 %);"
          f" flushed QD1, cache on / off (write-back loop): {on_f / off_f:.2f}x (target >= 4x)")
try:
    p50 = json.loads(ring)["qd1_p50_us"]
    print(f"ring-only cached 4k write (cbd-bench --cache): p50 {p50:.2f} us (target <= 5 us; dm-pcache publishes 5-7 us)")
except Exception:
    print("cbd-bench --cache: no result")
PY
