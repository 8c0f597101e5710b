#!/usr/bin/env bash
# Idle cost of cbd-backend + cbdfs with a blkdev mapped (a loop device on the
# backend file) and no I/O: CPU over a window from /proc/PID/stat
# utime+stime (and schedstat ns), and each daemon's memory from
# /proc/PID/status, against the DESIGN.md §8 bars (< 1% of one core
# together, < 64 MiB RSS each with queues=4).
#
# Root only; everything it creates is undone on any exit.

usage() {
	cat <<-EOF
	usage: $0 [options]
	  --seconds N    idle window (default 10)
	  --settle N     seconds between the warm-up and the window (default 3)
	  --no-warmup    no fio burst before the window
	  --queues N     cbdfs queues (default 4)
	  --handlers N   cbd-backend handlers (default 4)
	  --size SIZE    image size (default 512M)
	  --peer         also measure nbdkit + nbdfuse the same way
	  --io-uring     also measure cbdfs with -o io_uring=on (turns the
	                 fuse module's enable_uring on, and back)
	  --out DIR      results directory (default \$BUILD/bench/idle-DATE)
	EOF
}

SECONDS_IDLE=10 SETTLE=3 WARMUP=1 QUEUES=4 HANDLERS=4 SIZE=512M PEER=0 OUT=
URING=0
while [ $# -gt 0 ]; do
	case $1 in
	--seconds) SECONDS_IDLE=$2; shift ;;
	--settle) SETTLE=$2; shift ;;
	--no-warmup) WARMUP=0 ;;
	--queues) QUEUES=$2; shift ;;
	--handlers) HANDLERS=$2; shift ;;
	--size) SIZE=$2; shift ;;
	--peer) PEER=1 ;;
	--io-uring) URING=1 ;;
	--out) OUT=$2; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
	shift
done

source "$(dirname "$0")/lib.sh"
requires_root
requires losetup
[ "$WARMUP" = 0 ] || requires fio

OUT=${OUT:-$BUILD/bench/idle-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
bench_tmpdir
IMAGE=$T/image.raw
bench_make_image "$IMAGE" "$SIZE"
HZ=$(getconf CLK_TCK)

# warm_up DEV: touch every queue's data area the way a real workload does,
# so that the RSS below is the working one, not the freshly started one.
warm_up() {
	fio --name=warmup --filename="$1" --ioengine=libaio --direct=1 \
		--rw=randrw --bs=4k --iodepth=32 --numjobs=1 --time_based \
		--runtime=2 --output=/dev/null &&
		fio --name=warmup --filename="$1" --ioengine=libaio \
			--direct=1 --rw=readwrite --bs=1M --iodepth=8 \
			--numjobs=1 --time_based --runtime=1 --output=/dev/null
}

# measure SIDE NAME:PID...: one row per daemon plus the total.
measure() {
	local side=$1 item pid
	shift
	local pids=() names=() t0 t1 n0=() n1=() k0=() k1=() i
	for item in "$@"; do
		names+=("${item%%:*}")
		pids+=("${item#*:}")
	done
	for i in "${!pids[@]}"; do
		k0[i]=$(bench_cpu_ticks "${pids[i]}")
		n0[i]=$(bench_cpu_ns "${pids[i]}")
	done
	t0=$(date +%s%N)
	sleep "$SECONDS_IDLE"
	t1=$(date +%s%N)
	for i in "${!pids[@]}"; do
		k1[i]=$(bench_cpu_ticks "${pids[i]}")
		n1[i]=$(bench_cpu_ns "${pids[i]}")
	done
	local wall_ns=$((t1 - t0)) tk=0 tn=0
	for i in "${!pids[@]}"; do
		pid=${pids[i]}
		tk=$((tk + k1[i] - k0[i]))
		tn=$((tn + n1[i] - n0[i]))
		printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
			"$side" "${names[i]}" \
			"$(awk -v t=$((k1[i] - k0[i])) -v hz="$HZ" -v w=$wall_ns 'BEGIN { printf "%.2f%%", 100 * t / hz / (w / 1e9) }')" \
			"$(awk -v n=$((n1[i] - n0[i])) -v w=$wall_ns 'BEGIN { printf "%.3f%%", 100 * n / w }')" \
			"$(rss_verdict "$pid")" "$(private_verdict "$pid")" \
			"$(kib "$pid" RssShmem)" "$(pss "$pid")" \
			"$(kib "$pid" VmHWM)" \
			"$(bench_status_kib "$pid" Threads)"
	done
	printf '| %s | **total** | %s | %s | | | | | | |\n' "$side" \
		"$(awk -v t=$tk -v hz="$HZ" -v w=$wall_ns 'BEGIN { printf "%.2f%%", 100 * t / hz / (w / 1e9) }')" \
		"$(awk -v n=$tn -v w=$wall_ns 'BEGIN { p = 100 * n / w; printf "%.3f%% %s", p, (p < 1 ? "PASS" : "MISS") }')"
}

# kib PID FIELD: a /proc/PID/status field in MiB.
kib() {
	local v
	v=$(bench_status_kib "$1" "$2")
	[ "$v" = n/a ] && { echo n/a; return; }
	awk -v k="$v" 'BEGIN { printf "%.1f", k / 1024 }'
}

# rss_verdict PID: VmRSS in MiB against the 64 MiB bar.
rss_verdict() {
	local v
	v=$(bench_status_kib "$1" VmRSS)
	[ "$v" = n/a ] && { echo n/a; return; }
	awk -v k="$v" 'BEGIN { printf "%.1f %s", k / 1024, (k < 65536 ? "PASS" : "MISS") }'
}

# private_verdict PID: RssAnon + RssFile (what the daemon holds alone,
# leaving out the transport pages it shares) against the same bar.
private_verdict() {
	local a f
	a=$(bench_status_kib "$1" RssAnon)
	f=$(bench_status_kib "$1" RssFile)
	[ "$a" = n/a ] || [ "$f" = n/a ] && { echo n/a; return; }
	awk -v k=$((a + f)) 'BEGIN { printf "%.1f %s", k / 1024, (k < 65536 ? "PASS" : "MISS") }'
}

# pss PID: proportional set size in MiB (shared pages split between
# their users), from smaps_rollup.
pss() {
	awk '$1 == "Pss:" { printf "%.1f", $2 / 1024; found = 1 }
		END { if (!found) print "n/a" }' "/proc/$1/smaps_rollup" 2>/dev/null ||
		echo n/a
}

# run_side SIDE: stack up, map, warm up, settle, measure, tear down.
run_side() {
	local side=$1 pids=() items=()
	case $side in
	cbdfs | cbdfs-uring)
		if [ "$side" = cbdfs ]; then
			bench_start_cbd "$T/cbd" "$IMAGE" "$QUEUES" "$HANDLERS" io_uring=off || return 1
		else
			bench_uring_enable || { BENCH_WHY="the kernel has no FUSE over io_uring"; return 1; }
			bench_start_cbd "$T/cbd" "$IMAGE" "$QUEUES" "$HANDLERS" io_uring=on || return 1
		fi
		read -r -a pids <<<"$BENCH_PIDS"
		items=("cbd-backend:${pids[0]}" "cbdfs:${pids[1]}") ;;
	nbdfuse)
		bench_start_nbd "$T/nbd" "$IMAGE" || return 1
		read -r -a pids <<<"$BENCH_PIDS"
		items=("nbdkit:${pids[0]}" "nbdfuse:${pids[1]}") ;;
	esac
	if ! bench_attach_loop "$BENCH_FILE"; then
		BENCH_WHY="losetup --direct-io=on $BENCH_FILE failed"
		return 1
	fi
	log "$side: $BENCH_FILE on $LOOP_DEV (direct-io: $LOOP_DIO)"
	if [ "$WARMUP" = 1 ]; then
		log "$side: warm-up (3 s of fio)"
		warm_up "$LOOP_DEV" || { BENCH_WHY="warm-up fio failed"; return 1; }
	fi
	log "$side: settling ${SETTLE}s, then ${SECONDS_IDLE}s idle"
	sleep "$SETTLE"
	measure "$side" "${items[@]}" >>"$OUT/idle.md"
}

{
	echo "date: $(date -Is); $(uname -n) $(uname -r), $(nproc) CPUs"
	echo "queues=$QUEUES handlers=$HANDLERS, window ${SECONDS_IDLE}s after ${SETTLE}s settle, warm-up=$WARMUP"
	echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/env.txt"
cat >"$OUT/idle.md" <<-EOF
| side | daemon | CPU (stat ticks) | CPU (schedstat) | VmRSS MiB | Anon+File MiB | RssShmem MiB | Pss MiB | VmHWM MiB | threads |
|---|---|---|---|---|---|---|---|---|---|
EOF

sides=(cbdfs)
[ "$URING" = 0 ] || sides+=(cbdfs-uring)
[ "$PEER" = 0 ] || sides+=(nbdfuse)
rc=0
for side in "${sides[@]}"; do
	if ! run_side "$side"; then
		echo "$side: $BENCH_WHY" >&2
		cp "$T"/*/*.log "$OUT/" 2>/dev/null || true
		rc=1
	fi
	bench_unwind
done
echo
cat "$OUT/idle.md"
echo
echo "Bars: CPU total < 1% of one core; RSS of each daemon < 64 MiB.  VmRSS"
echo "includes RssShmem, the transport pages the daemon has touched (shared"
echo "with the other daemon); Anon+File is what the daemon holds alone."
echo "results: $OUT"
exit $rc
