#!/usr/bin/env bash
# fio through loop (--direct-io=on) on the same tmpfs image served in
# several ways in one run: cbd-backend + cbdfs over /dev/fuse (cbdfs) and
# over FUSE io_uring (cbdfs-uring), nbdkit file + nbdfuse (the peer), and
# loop straight on the image (the no-FUSE bound); each side on its own
# copy of the image, all up at once and each job run on every side back
# to back, so that background load hits them alike.  Prints a markdown
# table with each cbdfs side against nbdfuse (checked against the
# DESIGN.md §8 bars) and against loop.  For cbdfs-uring it turns the fuse
# module's enable_uring on for the run and restores it.
#
# Root only.  Everything it creates (temp dir, daemons, FUSE mounts, loop
# devices) is undone on any exit; it touches nothing else.  Raw fio JSON,
# daemon logs and the table stay in the output directory.

usage() {
	cat <<-EOF
	usage: $0 [options]
	  --size SIZE        image size (default 512M)
	  --runtime SEC      measured seconds per job (default 15)
	  --ramp SEC         unmeasured ramp per job (default 2)
	  --repeat N         run every job N times, report the median (default 1)
	  --jobs LIST        comma list of: ${ALL_JOBS[*]} (default all)
	  --sides LIST       comma list of: ${ALL_SIDES[*]} (default all;
	                     cbdfs-uring is n/a where the kernel lacks it)
	  --queues N         cbdfs queues (default 4)
	  --handlers N       cbd-backend handlers (default 4)
	  --durability MODE  the backend's durability: sync (default) or writeback
	  --backend-key "K = V"  one more line of the backend's cbd.ini section
	                     (repeatable), e.g. "poll_us = 30"
	  --image-dir DIR    put the images in a temp folder under DIR (e.g. on
	                     a disk file system) instead of tmpfs
	  --profile          also count the daemons' system calls per request
	                     (perf stat on raw_syscalls:sys_enter)
	  --keep-going       a side that cannot start (or a job that fails) is
	                     reported n/a instead of failing the run
	  --out DIR          results directory (default \$BUILD/bench/fio-DATE)
	EOF
}

ALL_JOBS=(seqwrite seqread randwrite randread randread1 randwrite1)
declare -A JOB_FIO=(
	[seqwrite]="--rw=write --bs=1M --iodepth=8"
	[seqread]="--rw=read --bs=1M --iodepth=8"
	[randwrite]="--rw=randwrite --bs=4k --iodepth=32"
	[randread]="--rw=randread --bs=4k --iodepth=32"
	[randread1]="--rw=randread --bs=4k --iodepth=1"
	[randwrite1]="--rw=randwrite --bs=4k --iodepth=1"
)

SIZE=512M RUNTIME=15 RAMP=2 REPEAT=1 QUEUES=4 HANDLERS=4 KEEP_GOING=0 OUT=
DURABILITY=sync IMAGE_DIR= PROFILE=0 BACKEND_KEYS=
JOBS=("${ALL_JOBS[@]}")
ALL_SIDES=(cbdfs cbdfs-uring nbdfuse loop)
SIDES=("${ALL_SIDES[@]}")
while [ $# -gt 0 ]; do
	case $1 in
	--size) SIZE=$2; shift ;;
	--runtime) RUNTIME=$2; shift ;;
	--ramp) RAMP=$2; shift ;;
	--repeat) REPEAT=$2; shift ;;
	--jobs) IFS=, read -r -a JOBS <<<"$2"; shift ;;
	--sides) IFS=, read -r -a SIDES <<<"$2"; shift ;;
	--queues) QUEUES=$2; shift ;;
	--handlers) HANDLERS=$2; shift ;;
	--durability) DURABILITY=$2; shift ;;
	--backend-key) BACKEND_KEYS+=$'\n'$2; shift ;;
	--image-dir) IMAGE_DIR=$2; shift ;;
	--keep-going) KEEP_GOING=1 ;;
	--profile) PROFILE=1 ;;
	--out) OUT=$2; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
	shift
done
for j in "${JOBS[@]}"; do
	[ -n "${JOB_FIO[$j]:-}" ] || { echo "unknown job: $j" >&2; exit 2; }
done
for s in "${SIDES[@]}"; do
	case $s in cbdfs | cbdfs-uring | nbdfuse | loop) ;; *) echo "unknown side: $s" >&2; exit 2 ;; esac
done

source "$(dirname "$0")/lib.sh"
requires_root
requires fio
requires python3
requires losetup
[ -w /proc/sys/vm/drop_caches ] || skip "cannot drop caches"
[ "$PROFILE" = 0 ] || requires perf

OUT=${OUT:-$BUILD/bench/fio-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
bench_tmpdir
IMAGES=$T
if [ -n "$IMAGE_DIR" ]; then
	IMAGES=$(mktemp -d "$IMAGE_DIR/cbd-bench-images.XXXXXX")
	cleanup_fn "rm -rf --one-file-system '$IMAGES'"
fi
export CBD_BENCH_BACKEND_KEYS="durability = $DURABILITY$BACKEND_KEYS"
FIO_PID=
kill_fio() {
	[ -n "$FIO_PID" ] || return 0
	kill -TERM "$FIO_PID" 2>/dev/null
	wait "$FIO_PID" 2>/dev/null
}
cleanup_fn kill_fio
SIZE_BYTES=$(bench_size_bytes "$SIZE")

{
	echo "date: $(date -Is)"
	echo "host: $(uname -n) $(uname -r), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
	echo "git: $(git -C "$TESTS_DIR/.." describe --always --dirty 2>/dev/null || echo unknown)"
	echo "fio: $(fio --version), nbdkit: $(nbdkit --version 2>/dev/null | head -n1), nbdfuse: $(nbdfuse --version 2>/dev/null | head -n1)"
	echo "image: $SIZE on $(stat -f -c %T "$IMAGES") ($IMAGES), durability=$DURABILITY; runtime ${RUNTIME}s after ${RAMP}s ramp, ${REPEAT} repetition(s); cbdfs queues=$QUEUES, backend handlers=$HANDLERS"
	[ -z "$BACKEND_KEYS" ] || echo "backend keys: $(sed '/^$/d' <<<"$BACKEND_KEYS" | paste -sd ';')"
	echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/env.txt"

# run_job SIDE JOB REP DEV PIDS...: one fio job; JSON to
# $OUT/SIDE-JOB-REP.json, the daemons' CPU time and context switches over
# the whole run (ramp included) to .cpu and .ctx, with --profile their
# system calls (perf stat) to .perf.
PERF_PID=
kill_perf() {
	[ -n "$PERF_PID" ] || return 0
	kill -INT "$PERF_PID" 2>/dev/null
	wait "$PERF_PID" 2>/dev/null
	PERF_PID=
}
cleanup_fn kill_perf
run_job() {
	local side=$1 job=$2 rep=$3 dev=$4 t0 t1 c0 c1 x0 x1 rc base pids
	shift 4
	base=$OUT/$side-$job-$rep
	bench_drop_caches
	if [ "$PROFILE" = 1 ] && [ $# -gt 0 ]; then
		pids=$(echo "$@" | tr ' ' ,)
		perf stat -x, -e raw_syscalls:sys_enter -p "$pids" \
			-o "$base.perf" >/dev/null 2>&1 &
		PERF_PID=$!
	fi
	c0=$(bench_cpu_ticks "$@")
	x0=$(bench_ctx_switches "$@")
	t0=$(date +%s%N)
	# shellcheck disable=SC2086
	fio --name="$job" --filename="$dev" --ioengine=libaio --direct=1 \
		--numjobs=1 --size="$SIZE_BYTES" --time_based \
		--runtime="$RUNTIME" --ramp_time="$RAMP" --norandommap \
		--randrepeat=0 --lat_percentiles=1 \
		--percentile_list=50:99 ${JOB_FIO[$job]} \
		--output-format=json --output="$base.json" 2>"$base.err" &
	# in the background: a wait is interrupted by SIGTERM, a foreground
	# job would delay the trap (and the cleanup) until fio finished
	FIO_PID=$!
	wait "$FIO_PID"
	rc=$?
	FIO_PID=
	t1=$(date +%s%N)
	c1=$(bench_cpu_ticks "$@")
	x1=$(bench_ctx_switches "$@")
	kill_perf
	echo "$((c1 - c0)) $(getconf CLK_TCK) $(((t1 - t0) / 1000000))" >"$base.cpu"
	echo "$((x1 - x0)) $(((t1 - t0) / 1000000))" >"$base.ctx"
	[ "$rc" = 0 ] || rm -f "$base.json"
	return $rc
}

# side_up SIDE: its own image, the stack serving it, a loop device on top;
# sets SIDE_DEV[SIDE] and SIDE_PIDS[SIDE].  All sides stay up for the whole
# run so that each job runs on every side back to back, under the same
# background load.
declare -A SIDE_DEV SIDE_PIDS
side_up() {
	local side=$1 image=$IMAGES/image-$1.raw
	bench_make_image "$image" "$SIZE"
	case $side in
	cbdfs) bench_start_cbd "$T/$side" "$image" "$QUEUES" "$HANDLERS" io_uring=off || return 1 ;;
	cbdfs-uring)
		if ! bench_uring_enable; then
			BENCH_WHY="the kernel has no FUSE over io_uring ($BENCH_URING_PARAM)"
			return 1
		fi
		bench_start_cbd "$T/$side" "$image" "$QUEUES" "$HANDLERS" io_uring=on || return 1
		;;
	nbdfuse) bench_start_nbd "$T/nbd" "$image" || return 1 ;;
	loop) BENCH_FILE=$image BENCH_PIDS='' ;;
	esac
	if ! bench_attach_loop "$BENCH_FILE"; then
		BENCH_WHY="losetup --direct-io=on $BENCH_FILE failed"
		return 1
	fi
	echo "$LOOP_DIO" >"$OUT/$side.dio"
	log "$side: $BENCH_FILE on $LOOP_DEV (direct-io: $LOOP_DIO)"
	SIDE_DEV[$side]=$LOOP_DEV
	SIDE_PIDS[$side]=$BENCH_PIDS
}

# side_lost SIDE WHY: report it; fatal unless --keep-going.
side_lost() {
	echo "$1: $2" | tee "$OUT/$1.na" >&2
	cp "$T"/*/*.log "$OUT/" 2>/dev/null || true
	[ "$KEEP_GOING" = 1 ] || fail "$1: $2"
	rc=1
}

rc=0
up=()
for side in "${SIDES[@]}"; do
	if side_up "$side"; then
		up+=("$side")
	else
		# a kernel without FUSE io_uring: that side is n/a, not a failure
		if [ "$side" = cbdfs-uring ] && [ ! -w "$BENCH_URING_PARAM" ]; then
			echo "$side: $BENCH_WHY" | tee "$OUT/$side.na" >&2
		else
			side_lost "$side" "$BENCH_WHY"
		fi
	fi
done
for ((rep = 1; rep <= REPEAT; rep++)); do
	for job in "${JOBS[@]}"; do
		# rotate the order per repetition: no side always runs first
		for ((i = 0; i < ${#up[@]}; i++)); do
			side=${up[(i + rep - 1) % ${#up[@]}]}
			[ ! -e "$OUT/$side.na" ] || continue
			log "rep $rep/$REPEAT: $side: $job (${JOB_FIO[$job]})"
			# shellcheck disable=SC2086
			if ! run_job "$side" "$job" "$rep" "${SIDE_DEV[$side]}" ${SIDE_PIDS[$side]}; then
				side_lost "$side" "fio $job failed: $(head -n 3 "$OUT/$side-$job-$rep.err" | tr '\n' ' ')"
			fi
		done
	done
done
cp "$T"/*/*.log "$OUT/" 2>/dev/null || true
bench_unwind

python3 - "$OUT" "${JOBS[*]}" "$REPEAT" "$(stat -f -c %T "$IMAGES")" "${SIDES[*]}" >"$OUT/table.md" <<'EOF'
import json, os, sys

out, jobs, reps, imgfs = sys.argv[1], sys.argv[2].split(), int(sys.argv[3]), sys.argv[4]
sides = sys.argv[5].split()
ours = [s for s in sides if s.startswith("cbdfs")]
title = {
    "seqwrite": ("1 MiB seq write, QD8", "bw"),
    "seqread": ("1 MiB seq read, QD8", "bw"),
    "randwrite": ("4 KiB rand write, QD32", "iops"),
    "randread": ("4 KiB rand read, QD32", "iops"),
    "randread1": ("4 KiB rand read, QD1", "iops"),
    "randwrite1": ("4 KiB rand write, QD1", "iops"),
}
bars = {"seqwrite": 1.5, "seqread": 1.5, "randwrite": 2.0, "randread": 2.0}

def one(side, job, rep):
    base = os.path.join(out, f"{side}-{job}-{rep}")
    try:
        with open(base + ".json") as f:
            j = json.load(f)["jobs"][0]
    except (OSError, ValueError, KeyError, IndexError):
        return None
    d = j["write"] if "write" in job else j["read"]
    pct = d.get("lat_ns", {}).get("percentile") or d["clat_ns"]["percentile"]
    r = {"iops": d["iops"], "bw": d["bw_bytes"] / 2**20,
         "p50": pct["50.000000"] / 1000, "p99": pct["99.000000"] / 1000,
         "cpu": None}
    try:
        with open(base + ".cpu") as f:
            ticks, hz, ms = map(int, f.read().split())
        r["cpu"] = 100.0 * ticks / hz / (ms / 1000.0)
    except (OSError, ValueError, ZeroDivisionError):
        pass
    # per request: the daemons' rate over the job (ramp included) over
    # fio's rate
    r["ctx"] = r["sys"] = None
    try:
        with open(base + ".ctx") as f:
            n, ms = map(int, f.read().split())
        r["ctx"] = n / (ms / 1000.0) / r["iops"]
    except (OSError, ValueError, ZeroDivisionError):
        pass
    try:
        with open(base + ".perf") as f:
            for line in f:
                v = line.split(",")
                if len(v) > 2 and "sys_enter" in v[2]:
                    r["sys"] = int(v[0]) / (ms / 1000.0) / r["iops"]
    except (OSError, ValueError, ZeroDivisionError, NameError):
        pass
    return r

def result(side, job):
    """The median repetition (by the job's metric), with the spread."""
    metric = title[job][1]
    runs = [r for r in (one(side, job, i) for i in range(1, reps + 1)) if r]
    if not runs:
        return None
    runs.sort(key=lambda r: r[metric])
    r = dict(runs[len(runs) // 2])
    r["n"] = len(runs)
    r["spread"] = (runs[-1][metric] - runs[0][metric]) / 2 / r[metric] * 100
    return r

def lat(us):
    return f"{us:.0f}" if us >= 100 else f"{us:.1f}"

def cell(r, metric, side):
    if r is None:
        return "n/a"
    v = f"{r['bw']:.0f} MiB/s" if metric == "bw" else f"{r['iops'] / 1000:.1f}k IOPS"
    if r["n"] > 1:
        v += f" ±{r['spread']:.0f}%"
    s = f"{v} ({lat(r['p50'])}/{lat(r['p99'])} µs)"
    if side != "loop" and r["cpu"] is not None:
        s += f", {r['cpu']:.0f}% CPU"
    if side != "loop" and r["ctx"] is not None:
        s += f", {r['ctx']:.1f} cs"
    if side != "loop" and r["sys"] is not None:
        s += f", {r['sys']:.1f} sys"
    return s

def ratio(side, other, job, metric):
    """The median of the per-repetition ratios (the sides ran back to back,
    under the same background load), and its range; None if n/a."""
    rs = []
    for i in range(1, reps + 1):
        c, n = one(side, job, i), one(other, job, i)
        if c and n and n[metric] > 0:
            rs.append(c[metric] / n[metric])
    rs.sort()
    if not rs:
        return None, "n/a"
    r = rs[len(rs) // 2]
    txt = f"{r:.2f}×" if other != "loop" else f"{100 * r:.0f} %"
    if len(rs) > 1:
        txt += (f" ({rs[0]:.2f}–{rs[-1]:.2f})" if other != "loop"
                else f" ({100 * rs[0]:.0f}–{100 * rs[-1]:.0f})")
    return r, txt

names = {"cbdfs": "cbdfs (/dev/fuse)", "cbdfs-uring": "cbdfs (io_uring)",
         "nbdfuse": "nbdfuse", "loop": f"loop on the image ({imgfs}, no FUSE)"}
cols = [names[s] for s in sides]
for s in ours:
    if "nbdfuse" in sides:
        cols.append(f"{s} / nbdfuse (bar)")
    if "loop" in sides:
        cols.append(f"{s} / loop")
print("| job | " + " | ".join(cols) + " |")
print("|---|" + "---|" * len(cols))
for job in jobs:
    name, metric = title[job]
    row = [cell(result(s, job), metric, s) for s in sides]
    for s in ours:
        if "nbdfuse" in sides:
            r, txt = ratio(s, "nbdfuse", job, metric)
            if job in bars and r is not None:
                txt += f" ≥ {bars[job]}× " + ("PASS" if r >= bars[job] else "MISS")
            row.append(txt)
        if "loop" in sides:
            row.append(ratio(s, "loop", job, metric)[1])
    print(f"| {name} | " + " | ".join(row) + " |")
dio = []
for s in sides:
    try:
        with open(os.path.join(out, f"{s}.dio")) as f:
            dio.append(f"{s} {f.read().strip()}")
    except OSError:
        dio.append(f"{s} n/a")
print()
print(("Median of %d runs, ±half the min-max range; the ratio is the median "
       "of the per-run ratios (min–max). " % reps if reps > 1 else "")
      + "Cells: IOPS or MiB/s (p50/p99 total latency in µs from fio lat_ns), "
      "CPU = the side's daemons (cbd-backend + cbdfs, nbdkit + nbdfuse) in % "
      "of one core over the job, cs and sys = their context switches and "
      "system calls per request. loop DIO as reported by losetup: "
      + ", ".join(dio) + ".")
EOF
echo
cat "$OUT/table.md"
echo
echo "results: $OUT"
exit $rc
