# Shared helpers for the e2e tests; source it first thing:
#
#   source "$(dirname "$0")/../functions.sh"
#   requires_root; requires mkfs.ext4
#   test_tmpdir            # sets $T
#   start_backend ...      # sets $BACKEND_PID
#
# Helpers that create something set a global (T, BACKEND_PID, CBDFS_PID,
# LOOP_DEV) instead of printing it: called as $(...) they would run in a
# subshell and their cleanup registration would be lost.
#
# Everything a test creates (daemons, FUSE mounts, loop devices, mounts,
# files) is registered with cleanup_fn as it is created, and undone in
# reverse order on exit, whatever the exit path.  Tests only ever touch
# what they created themselves.

set -euo pipefail

BUILD=${BUILD:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/build}
export BUILD
TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# ---- skipping -------------------------------------------------------
skip() { echo "skipped: $*"; exit 77; }
requires() { command -v "$1" >/dev/null 2>&1 || skip "needs $1"; }
requires_root() { [ "$(id -u)" = 0 ] || skip "needs root"; }
requires_fuse() {
	requires_root
	[ -c /dev/fuse ] || skip "needs /dev/fuse"
	requires fusermount3
}
requires_loop() {
	requires_root
	requires losetup
	losetup -f >/dev/null 2>&1 || skip "no free loop device"
}

fail() { echo "FAIL: $*" >&2; exit 1; }
log() { echo "--- $*"; }

# ---- cleanup --------------------------------------------------------
_cleanup_fns=()
cleanup_fn() { _cleanup_fns+=("$*"); }
_run_cleanup() {
	local rc=$? i
	set +e
	for ((i = ${#_cleanup_fns[@]} - 1; i >= 0; i--)); do
		eval "${_cleanup_fns[$i]}"
	done
	exit $rc
}
trap _run_cleanup EXIT
trap 'exit 130' INT TERM

# A fresh directory under /dev/shm (tmpfs), removed at exit: sets T.
test_tmpdir() {
	T=$(mktemp -d /dev/shm/cbd-test.XXXXXX)
	cleanup_fn "rm -rf '$T'"
}

# ---- waiting --------------------------------------------------------
# wait_for SECONDS CMD...: poll CMD every 50 ms until it succeeds.  The
# deadline is multiplied by CBD_TIMEOUT_SCALE (default 1; the VM rig's
# emulated guests set it), so a slow machine only makes a test slower.
# For a condition that normally holds within milliseconds give tens of
# seconds: the deadline only stops a hung test, a busy machine must never
# reach it.  No test asserts how fast something happened.
wait_for() {
	local secs=$(($1 * ${CBD_TIMEOUT_SCALE:-1})) i
	shift
	for ((i = 0; i < secs * 20; i++)); do
		if "$@" >/dev/null 2>&1; then return 0; fi
		sleep 0.05
	done
	return 1
}

# pid_gone PID: the process has exited (wait_for 30 pid_gone $PID).
pid_gone() { ! kill -0 "$1" 2>/dev/null; }

# ---- configs --------------------------------------------------------
# write_config FILE TRANSPORT HOSTNAME [BACKEND_NAME PATH [extra keys]]...
# Short heartbeats so that death is noticed in about a second.
write_config() {
	local file=$1 transport=$2 host=$3
	shift 3
	cat >"$file" <<-EOF
	[transport]
	path = $transport
	size = ${CBD_TEST_TRANSPORT_SIZE:-256M}
	format = if-empty
	hostname = $host
	heartbeat_interval_ms = 100
	heartbeat_timeout_ms = 1500
	EOF
	while [ $# -ge 2 ]; do
		printf '\n[backend %s]\npath = %s\n' "$1" "$2" >>"$file"
		shift 2
		while [ $# -gt 0 ] && [[ $1 == *=* ]]; do
			printf '%s\n' "$1" >>"$file"
			shift
		done
	done
}

# make_image FILE SIZE: a sparse backing image.
make_image() { truncate -s "$2" "$1"; }

# ---- daemons --------------------------------------------------------
# start_backend CONFIG PIDFILE [args...]: start cbd-backend in the
# foreground (background job), wait for the pidfile (ready), register stop.
# Sets BACKEND_PID; the log goes to PIDFILE with .log instead of .pid.
start_backend() {
	local conf=$1 pidfile=$2 logf
	shift 2
	logf=${pidfile%.pid}.log
	"$BUILD/cbd-backend" -c "$conf" --foreground --pidfile "$pidfile" "$@" \
		>>"$logf" 2>&1 &
	local pid=$!
	cleanup_fn "stop_daemon $pid"
	if ! wait_for 60 test -s "$pidfile"; then
		cat "$logf" >&2
		fail "cbd-backend ($conf) did not become ready"
	fi
	[ "$(cat "$pidfile")" = "$pid" ] || fail "pidfile $pidfile does not hold $pid"
	BACKEND_PID=$pid
}

# stop_daemon PID: SIGTERM, wait up to 60 s; needing SIGKILL fails the test.
stop_daemon() {
	local pid=$1
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	if wait_for 60 pid_gone "$pid"; then
		wait "$pid" 2>/dev/null
		return 0
	fi
	echo "daemon $pid did not stop on SIGTERM; killing it" >&2
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 1
}

# mount_cbdfs MOUNTPOINT OPTIONS [args...]: mount cbdfs in the foreground
# (background job), wait until mounted, register unmount and stop.
# Sets CBDFS_PID; the log goes to MOUNTPOINT.log.
mount_cbdfs() {
	local mnt=$1 opts=$2 logf
	shift 2
	mkdir -p "$mnt"
	logf=$mnt.log
	"$BUILD/cbdfs" "$mnt" -f -o "$opts" "$@" >>"$logf" 2>&1 &
	local pid=$!
	cleanup_fn "umount_cbdfs '$mnt' $pid"
	if ! wait_for 60 mountpoint -q "$mnt"; then
		cat "$logf" >&2
		fail "cbdfs did not mount $mnt"
	fi
	CBDFS_PID=$pid
}

umount_cbdfs() {
	local mnt=$1 pid=$2
	if mountpoint -q "$mnt" 2>/dev/null; then
		fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null
	fi
	stop_daemon "$pid" || true
	# A killed cbdfs leaves a dead mount behind: lazily detach it.
	if grep -q " $mnt " /proc/mounts; then umount -l "$mnt" 2>/dev/null; fi
	return 0
}

# ---- block devices ---------------------------------------------------
# attach_loop FILE [losetup args...]: sets LOOP_DEV.
attach_loop() {
	local file=$1
	shift
	LOOP_DEV=$(losetup -f --show "$@" "$file") || fail "losetup $file"
	cleanup_fn "detach_loop $LOOP_DEV '$file'"
}

# loop_gone DEV FILE: DEV is no loop device on FILE (any more).
loop_gone() { ! losetup "$1" 2>/dev/null | grep -qF "$2"; }

detach_loop() {
	local dev=$1 file=$2
	# only our own device: it must still point at our file
	! loop_gone "$dev" "$file" || return 0
	wait_for 30 losetup -d "$dev" || true
	# losetup -d only marks autoclear while busy; wait until it is gone
	wait_for 30 loop_gone "$dev" "$file" || true
}

# mount_dev DEV DIR [mount args...]
mount_dev() {
	local dev=$1 dir=$2
	shift 2
	mkdir -p "$dir"
	mount "$@" "$dev" "$dir" || fail "mount $dev $dir"
	cleanup_fn "umount_dir '$dir'"
}

# unmounted DIR: DIR is no mount point, or unmounting it worked now.
unmounted() { ! mountpoint -q "$1" 2>/dev/null || umount "$1" 2>/dev/null; }

umount_dir() {
	wait_for 30 unmounted "$1" || umount -l "$1" 2>/dev/null
}

# ---- caches -----------------------------------------------------------
# cache_field TRANSPORT NAME: NAME of the first cache in cbd-status --json
# ("count": how many caches there are).
cache_field() {
	"$BUILD/cbd-status" -t "$1" --json | python3 -c '
import json, sys
c = json.load(sys.stdin)["caches"]
print(len(c) if sys.argv[1] == "count" else c[0][sys.argv[1]])' "$2"
}
# cache_dirty_over TRANSPORT BYTES: the first cache holds more dirty data.
cache_dirty_over() { [ "$(cache_field "$1" dirty)" -gt "$2" ] 2>/dev/null; }

# ---- cbdfs tests (tests/e2e/test-cbdfs-*.sh) ---------------------------
# cbdfs_stack SIZE [CBDFS_OPTS [BACKEND_KEYS...]]: in $T, a file transport,
# an image of SIZE served as backend0 ("disk0", handlers = 4) by one
# cbd-backend (host "server"), and cbdfs (host "client") on $T/mnt.  Sets
# TRANSPORT, IMAGE, CONF, MNT, FILE (= $MNT/backend0), BACKEND_PID and
# CBDFS_PID.
cbdfs_stack() {
	local size=$1 opts=${2:-}
	shift $(($# < 2 ? $# : 2))
	TRANSPORT=$T/transport
	IMAGE=$T/disk0.img
	CONF=$T/server.ini
	MNT=$T/mnt
	make_image "$IMAGE" "$size"
	write_config "$CONF" "$TRANSPORT" server disk0 "$IMAGE" id=0 handlers=4 "$@"
	start_backend "$CONF" "$T/server.pid"
	mount_cbdfs "$MNT" "transport=$TRANSPORT,hostname=client${opts:+,$opts}"
	FILE=$MNT/backend0
	wait_for 30 test -e "$FILE" || fail "$FILE did not appear"
}

# cbdfs_errno FILE FLAGS OP [ARGS]: run one file operation through
# python3 and print the errno name it failed with, or "ok".
#   OP: open | read OFF LEN | write OFF LEN | fsync
cbdfs_errno() {
	python3 - "$@" <<-'PY'
	import errno, os, sys
	path, flags, op = sys.argv[1], sys.argv[2], sys.argv[3]
	args = [int(a) for a in sys.argv[4:]]
	fl = {"r": os.O_RDONLY, "w": os.O_WRONLY, "rw": os.O_RDWR}[flags]
	try:
	    fd = os.open(path, fl)
	    if op == "read":
	        n = len(os.pread(fd, args[1], args[0]))
	        print("ok", n)
	    elif op == "write":
	        n = os.pwrite(fd, b"\xa5" * args[1], args[0])
	        print("ok", n)
	    elif op == "fsync":
	        os.fsync(fd)
	        print("ok")
	    else:
	        print("ok")
	    os.close(fd)
	except OSError as e:
	    print(errno.errorcode.get(e.errno, str(e.errno)))
	PY
}

# ---- backend tests (tests/e2e/test-backend-*.sh): cbd-testclient ------
# tclient ARGS...: cbd-testclient on $TC_TRANSPORT (default $T/transport);
# with an I/O timeout, so that a broken backend fails a test, not hangs it.
# TC_ATTACH_MS: how long a test client waits for the handlers to attach
# (normally milliseconds).
TC_ATTACH_MS=${TC_ATTACH_MS:-30000}
tclient() {
	"$BUILD/cbd-testclient" -t "${TC_TRANSPORT:-$T/transport}" \
		--attach-timeout "$TC_ATTACH_MS" \
		--io-timeout "${TC_IO_TIMEOUT:-30}" "$@"
}

# expect_rc RC CMD...: CMD must exit with status RC.
expect_rc() {
	local want=$1 rc=0
	shift
	"$@" || rc=$?
	[ "$rc" = "$want" ] || fail "$*: exit $rc, expected $want"
}

# allocated_kib FILE: KiB of storage a (sparse) file really uses.
allocated_kib() { echo $(( $(stat --format '%b * %B' "$1") / 1024 )); }

# start_holder NAME TCLIENT-ARGS...: a testclient host NAME that maps a
# backend and holds it in the background; returns once it is mapped.
# Sets HOLDER_PID; the log is $T/NAME.log.
declare -A HOLDERS=()
start_holder() {
	local name=$1 pid
	shift
	rm -f "$T/$name.ready"
	# The binary itself, not tclient: $! must be the client's pid.
	"$BUILD/cbd-testclient" -t "${TC_TRANSPORT:-$T/transport}" -H "$name" \
		--attach-timeout "$TC_ATTACH_MS" "$@" --ready "$T/$name.ready" \
		hold 600 >"$T/$name.log" 2>&1 &
	pid=$!
	HOLDERS[$name]=$pid
	cleanup_fn "kill -KILL $pid 2>/dev/null; wait $pid 2>/dev/null"
	wait_for 60 test -e "$T/$name.ready" ||
		fail "holder $name did not map: $(cat "$T/$name.log")"
	HOLDER_PID=$pid
}

# stop_holder NAME: unmap and exit cleanly (SIGTERM); it must exit 0.
stop_holder() {
	local pid=${HOLDERS[$1]} rc=0
	kill -TERM "$pid"
	wait "$pid" || rc=$?
	[ "$rc" = 0 ] || fail "holder $1 exited $rc: $(cat "$T/$1.log")"
}

# kill_holder NAME: SIGKILL, leaving its host and blkdev behind.
kill_holder() {
	kill -KILL "${HOLDERS[$1]}"
	wait "${HOLDERS[$1]}" 2>/dev/null || true
}

# status_has ERE / no_status_line ERE: look at the active slots.
status_has() { tclient status | grep -Eq "$1"; }
no_status_line() { ! tclient status | grep -Eq "$1"; }
