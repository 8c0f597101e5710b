# shellcheck shell=bash
# Helpers shared by the benchmark scripts (fio-compare.sh, idle.sh); source
# it once, near the top.  Single-threaded bash: no concurrency contract.
#
# It sources tests/functions.sh for its cleanup machinery (cleanup_fn, run in
# reverse order on any exit), stop_daemon, umount_cbdfs and detach_loop.  On
# top of that it keeps a second, resettable undo stack (bench_push /
# bench_unwind) so that a script can tear one stack down (e.g. the cbdfs side)
# and build the next one (nbdfuse) in the same run; anything still on that
# stack at exit is undone by the EXIT trap as well.

# shellcheck source=../functions.sh
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"

# ---- per-stack undo ---------------------------------------------------
_bench_undo=()
bench_push() { _bench_undo+=("$*"); }
bench_unwind() {
	local i
	for ((i = ${#_bench_undo[@]} - 1; i >= 0; i--)); do
		eval "${_bench_undo[$i]}" || true
	done
	_bench_undo=()
}

# ---- small utilities ---------------------------------------------------
# bench_tmpdir: a fresh directory under /dev/shm, removed at exit; sets T.
# The undo stack is registered after it, so it runs first: mounts and
# daemons are gone before the directory is removed (and --one-file-system
# keeps rm out of a mount that would not go away).
bench_tmpdir() {
	T=$(mktemp -d /dev/shm/cbd-bench.XXXXXX)
	cleanup_fn "rm -rf --one-file-system '$T'"
	cleanup_fn bench_unwind
}

# bench_make_image FILE SIZE: a fully allocated image, so that every side
# reads real tmpfs pages rather than holes.
bench_make_image() {
	local file=$1 size=$2
	rm -f "$file"
	fallocate -l "$size" "$file" 2>/dev/null ||
		{ truncate -s "$size" "$file" && dd if=/dev/zero of="$file" \
			bs=1M count=$(($(stat -c %s "$file") >> 20)) \
			conv=notrunc status=none; }
}

# bench_size_bytes 512M -> 536870912 (K/M/G/T suffixes, powers of two).
bench_size_bytes() { numfmt --from=iec "${1%B}"; }

bench_drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
}

# bench_uring_enable: the fuse module's enable_uring on (1 if the kernel
# has none), set back to what it was on exit.
BENCH_URING_PARAM=/sys/module/fuse/parameters/enable_uring
BENCH_URING_WAS=
bench_uring_enable() {
	[ -w "$BENCH_URING_PARAM" ] || return 1
	if [ -z "$BENCH_URING_WAS" ]; then
		BENCH_URING_WAS=$(cat "$BENCH_URING_PARAM")
		cleanup_fn "echo '$BENCH_URING_WAS' >'$BENCH_URING_PARAM'"
	fi
	echo Y >"$BENCH_URING_PARAM"
}

# bench_ctx_switches PID...: context switches (voluntary and not) summed
# over the live threads of the processes.
bench_ctx_switches() {
	local pid sum=0 f k v
	for pid in "$@"; do
		for f in /proc/"$pid"/task/*/status; do
			while read -r k v; do
				case $k in
				voluntary_ctxt_switches: | nonvoluntary_ctxt_switches:) sum=$((sum + v)) ;;
				esac
			done <"$f" 2>/dev/null
		done
	done
	echo "$sum"
}

# bench_cpu_ticks PID...: utime+stime (clock ticks) summed over the
# processes (all their threads, dead ones included); a gone pid counts 0.
bench_cpu_ticks() {
	local pid sum=0 stat
	for pid in "$@"; do
		stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
		# comm may hold spaces: drop everything up to ") "
		stat=${stat##*) }
		# shellcheck disable=SC2086
		set -- $stat
		sum=$((sum + ${12} + ${13}))
	done
	echo "$sum"
}

# bench_cpu_ns PID...: on-CPU time in ns of the live threads of the
# processes, from /proc/PID/task/*/schedstat (finer than clock ticks).
bench_cpu_ns() {
	local pid f sum=0 ns rest
	for pid in "$@"; do
		for f in /proc/"$pid"/task/*/schedstat; do
			read -r ns rest 2>/dev/null <"$f" || continue
			sum=$((sum + ns))
		done
	done
	echo "$sum"
}

# bench_status_kib PID FIELD: a kB field of /proc/PID/status (VmRSS, ...).
bench_status_kib() {
	awk -v f="$2:" '$1 == f { print $2; found = 1 } END { if (!found) print "n/a" }' \
		"/proc/$1/status" 2>/dev/null || echo n/a
}

# ---- block devices ---------------------------------------------------
# bench_attach_loop FILE: losetup --direct-io=on, sets LOOP_DEV and LOOP_DIO
# (what the kernel actually did: 1 or 0) and pushes the detach.  losetup -f
# can lose a race with a concurrent user (another test grabbing the same
# free device) and still leave our file bound somewhere: the file path is
# ours alone, so look it up by file instead of trusting the exit status.
bench_attach_loop() {
	local file=$1 dev
	LOOP_DEV=
	for _ in 1 2 3 4 5; do
		dev=$(losetup -f --show --direct-io=on "$file" 2>/dev/null) || dev=
		[ -n "$dev" ] || dev=$(losetup --list -n -O NAME -j "$file" | head -n 1)
		if [ -n "$dev" ]; then
			LOOP_DEV=$dev
			break
		fi
		sleep 0.2
	done
	[ -n "$LOOP_DEV" ] || return 1
	# every device bound to our file is ours, including race leftovers
	for dev in $(losetup --list -n -O NAME -j "$file"); do
		bench_push "detach_loop $dev '$file'"
	done
	LOOP_DIO=$(losetup --list -n -O DIO "$LOOP_DEV" | tr -d ' ')
}

# ---- daemons -----------------------------------------------------------
# bench_wait_pidfile SECS FILE PID: the daemon wrote its pidfile (ready) and
# is still alive.
bench_wait_pidfile() {
	local secs=$1 file=$2 pid=$3 i
	for ((i = 0; i < secs * 20; i++)); do
		[ -s "$file" ] && return 0
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

# bench_start_cbd DIR IMAGE QUEUES HANDLERS [OPTS]: cbd-backend serving IMAGE on a
# file transport in DIR, and cbdfs mounted on DIR/mnt.  Sets BENCH_FILE (the
# backendN file), BENCH_PIDS (daemons) and BENCH_WHY on failure.  Logs go
# to DIR/*.log.
bench_start_cbd() {
	local d=$1 image=$2 queues=$3 handlers=$4 opts=${5:-} bpid fpid f i
	BENCH_FILE='' BENCH_PIDS='' BENCH_WHY=''
	if [ ! -x "$BUILD/cbd-backend" ] || [ ! -x "$BUILD/cbdfs" ]; then
		BENCH_WHY="$BUILD/cbd-backend or $BUILD/cbdfs not built"
		return 1
	fi
	mkdir -p "$d/mnt"
	cat >"$d/cbd.ini" <<-EOF
	[transport]
	path = $d/transport
	size = ${CBD_BENCH_TRANSPORT_SIZE:-256M}
	format = if-empty
	hostname = bench-$$

	[backend disk0]
	path = $image
	handlers = $handlers
	${CBD_BENCH_BACKEND_KEYS:-}
	EOF
	"$BUILD/cbd-backend" -c "$d/cbd.ini" --foreground \
		--pidfile "$d/backend.pid" >"$d/backend.log" 2>&1 &
	bpid=$!
	bench_push "stop_daemon $bpid"
	if ! bench_wait_pidfile 30 "$d/backend.pid" "$bpid"; then
		BENCH_WHY="cbd-backend did not become ready: $(tail -n 3 "$d/backend.log" | tr '\n' ' ')"
		return 1
	fi
	# OPTS: the caller's -o options (io_uring=...); CBDFS_BENCH_OPTS: more
	# for experiments (max_threads=N...)
	opts=$opts${CBDFS_BENCH_OPTS:+,$CBDFS_BENCH_OPTS}
	"$BUILD/cbdfs" "$d/mnt" -f \
		-o "transport=$d/transport,queues=$queues${opts:+,${opts#,}}" \
		>"$d/cbdfs.log" 2>&1 &
	fpid=$!
	bench_push "umount_cbdfs '$d/mnt' $fpid"
	if ! wait_for 30 mountpoint -q "$d/mnt"; then
		BENCH_WHY="cbdfs did not mount: $(tail -n 3 "$d/cbdfs.log" | tr '\n' ' ')"
		return 1
	fi
	for ((i = 0; i < 200; i++)); do
		for f in "$d"/mnt/backend*; do
			[ -e "$f" ] && BENCH_FILE=$f && break 2
		done
		sleep 0.05
	done
	if [ -z "$BENCH_FILE" ]; then
		BENCH_WHY="no backend file appeared in $d/mnt"
		return 1
	fi
	BENCH_PIDS="$bpid $fpid"
}

# bench_start_nbd DIR IMAGE: nbdkit's file plugin on a unix socket and
# nbdfuse on DIR/mnt (defaults of both: 16 nbdkit threads, 4 multi-conn
# connections).  Sets BENCH_FILE (DIR/mnt/nbd), BENCH_PIDS, BENCH_WHY.
bench_start_nbd() {
	local d=$1 image=$2 kpid npid
	BENCH_FILE='' BENCH_PIDS='' BENCH_WHY=''
	if ! command -v nbdkit >/dev/null || ! command -v nbdfuse >/dev/null; then
		BENCH_WHY="nbdkit or nbdfuse not installed"
		return 1
	fi
	mkdir -p "$d/mnt"
	nbdkit -f -U "$d/sock" -P "$d/nbdkit.pid" file "$image" \
		>"$d/nbdkit.log" 2>&1 &
	kpid=$!
	bench_push "stop_daemon $kpid"
	if ! bench_wait_pidfile 30 "$d/nbdkit.pid" "$kpid"; then
		BENCH_WHY="nbdkit did not start: $(tail -n 3 "$d/nbdkit.log" | tr '\n' ' ')"
		return 1
	fi
	nbdfuse -P "$d/nbdfuse.pid" "$d/mnt" --unix "$d/sock" \
		>"$d/nbdfuse.log" 2>&1 &
	npid=$!
	bench_push "umount_cbdfs '$d/mnt' $npid"
	if ! bench_wait_pidfile 30 "$d/nbdfuse.pid" "$npid" ||
		! wait_for 10 test -e "$d/mnt/nbd"; then
		BENCH_WHY="nbdfuse did not mount: $(tail -n 3 "$d/nbdfuse.log" | tr '\n' ' ')"
		return 1
	fi
	BENCH_FILE=$d/mnt/nbd
	BENCH_PIDS="$kpid $npid"
}
