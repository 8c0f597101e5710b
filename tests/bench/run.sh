#!/usr/bin/env bash
# `make bench`: the fio comparison (cbdfs vs nbdfuse vs raw loop), the idle
# cost of the daemons, then the ring micro-benchmark build/cbd-bench when it
# has been built.  Not part of `make check`.  Extra arguments for each part:
# BENCH_FIO_ARGS, BENCH_IDLE_ARGS, BENCH_RING_ARGS (word-split).
set -u -o pipefail
BUILD=${BUILD:-$(cd "$(dirname "$0")/../.." && pwd)/build}
export BUILD
dir=$(dirname "$0")
stamp=$(date +%Y%m%d-%H%M%S)
rc=0

echo "=== fio: cbdfs vs nbdfuse vs loop on tmpfs"
# shellcheck disable=SC2086
bash "$dir/fio-compare.sh" --keep-going --out "$BUILD/bench/fio-$stamp" \
	${BENCH_FIO_ARGS:-} || rc=1

echo
echo "=== idle: cbd-backend + cbdfs, blkdev mapped, no I/O"
# shellcheck disable=SC2086
bash "$dir/idle.sh" --out "$BUILD/bench/idle-$stamp" ${BENCH_IDLE_ARGS:-} || rc=1

echo
echo "=== ring: cbd-bench"
if [ -x "$BUILD/cbd-bench" ]; then
	# shellcheck disable=SC2086
	"$BUILD/cbd-bench" ${BENCH_RING_ARGS:-} | tee "$BUILD/bench/ring-$stamp.txt" || rc=1
else
	echo "$BUILD/cbd-bench not built: skipped"
fi
exit $rc
