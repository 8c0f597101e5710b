#!/usr/bin/env bash
# make demo: the main job on one machine, step by step.  A file transport
# and a backing image in a temp folder under /dev/shm, cbd-backend serving
# the image, cbdfs showing it as a file, losetup, mkfs.ext4, mount, write
# and verify a file, remount and verify again, cbd-status; everything is
# torn down on any exit.  Usage: tests/demo.sh BUILD_DIR (as root).
set -euo pipefail

BUILD=$(cd "${1:-build}" && pwd)
for prog in cbd-backend cbdfs; do
	[ -x "$BUILD/$prog" ] || { echo "demo: $BUILD/$prog missing: run make" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "demo: must run as root (FUSE mount, losetup, mount)" >&2; exit 1; }
for tool in losetup mkfs.ext4 fusermount3 sha256sum; do
	command -v $tool >/dev/null || { echo "demo: needs $tool (make deps)" >&2; exit 1; }
done

if [ -t 1 ]; then B=$'\033[1m' N=$'\033[0m'; else B= N=; fi
step() { printf '\n%s==> %s%s\n' "$B" "$*" "$N"; }
run() { printf '    $ %s\n' "$*"; "$@"; }

D=
BACKEND_PID=
CBDFS_PID=
LOOP=
teardown() {
	local rc=$?
	set +e
	trap - EXIT INT TERM
	step "tear down"
	if [ -n "$D" ] && mountpoint -q "$D/fs" 2>/dev/null; then run umount "$D/fs"; fi
	if [ -n "$LOOP" ]; then run losetup -d "$LOOP"; fi
	if [ -n "$CBDFS_PID" ] && kill -0 "$CBDFS_PID" 2>/dev/null; then
		mountpoint -q "$D/cbd" && run fusermount3 -u "$D/cbd"
		for _ in $(seq 600); do kill -0 "$CBDFS_PID" 2>/dev/null || break; sleep 0.1; done
		kill "$CBDFS_PID" 2>/dev/null
	fi
	if [ -n "$BACKEND_PID" ] && kill -0 "$BACKEND_PID" 2>/dev/null; then
		run kill -TERM "$BACKEND_PID"
		for _ in $(seq 600); do kill -0 "$BACKEND_PID" 2>/dev/null || break; sleep 0.1; done
	fi
	if [ -n "$D" ]; then
		grep -q " $D/cbd " /proc/mounts && umount -l "$D/cbd"
		run rm -rf "$D"
	fi
	if [ $rc -eq 0 ]; then
		printf '\n%sdemo: OK%s\n' "$B" "$N"
	else
		printf '\n%sdemo: FAILED (exit %s)%s\n' "$B" "$rc" "$N" >&2
	fi
	exit $rc
}
trap teardown EXIT
trap 'exit 130' INT TERM

step "a temp folder with a 256 MiB backing image and a config"
D=$(mktemp -d /dev/shm/cbd-demo.XXXXXX)
run truncate -s 256M "$D/disk0.img"
cat >"$D/cbd.ini" <<EOF
[transport]
path = $D/transport
size = 256M
format = if-empty
hostname = demo-server
heartbeat_interval_ms = 200
heartbeat_timeout_ms = 2000

[backend disk0]
path = $D/disk0.img
id = 0
handlers = 2
EOF
sed 's/^/    | /' "$D/cbd.ini"

step "start cbd-backend (host demo-server): creates and formats the transport"
"$BUILD/cbd-backend" -c "$D/cbd.ini" --foreground --pidfile "$D/backend.pid" \
	>"$D/backend.log" 2>&1 &
BACKEND_PID=$!
for _ in $(seq 600); do [ -s "$D/backend.pid" ] && break; sleep 0.1; done
[ -s "$D/backend.pid" ] || { cat "$D/backend.log"; exit 1; }
sed 's/^/    | /' "$D/backend.log"

step "mount cbdfs (host demo-client): every backend is a file"
mkdir "$D/cbd"
printf '    $ %s\n' "cbdfs $D/cbd -f -o transport=$D/transport,hostname=demo-client &"
"$BUILD/cbdfs" "$D/cbd" -f -o "transport=$D/transport,hostname=demo-client" \
	>"$D/cbdfs.log" 2>&1 &
CBDFS_PID=$!
for _ in $(seq 600); do [ -e "$D/cbd/backend0" ] && break; sleep 0.1; done
[ -e "$D/cbd/backend0" ] || { cat "$D/cbdfs.log"; exit 1; }
run ls -l "$D/cbd"

step "attach backend0 to a loop device"
printf '    $ %s\n' "losetup -f --show --direct-io=on $D/cbd/backend0"
LOOP=$(losetup -f --show --direct-io=on "$D/cbd/backend0")
run losetup -l "$LOOP"

step "make an ext4 file system and mount it"
run mkfs.ext4 -q "$LOOP"
mkdir "$D/fs"
run mount "$LOOP" "$D/fs"
run df -h "$D/fs"

step "write a 32 MiB file and verify it"
run dd if=/dev/urandom of="$D/fs/hello.bin" bs=1M count=32 status=none
run sync
(cd "$D/fs" && sha256sum hello.bin) >"$D/hello.sha256"
sed 's/^/    | /' "$D/hello.sha256"
(cd "$D/fs" && run sha256sum -c "$D/hello.sha256")

step "unmount, remount, verify again"
run umount "$D/fs"
run mount "$LOOP" "$D/fs"
(cd "$D/fs" && run sha256sum -c "$D/hello.sha256")

if [ -x "$BUILD/cbd-status" ]; then
	step "cbd-status"
	run "$BUILD/cbd-status" -t "$D/transport"
	step "cbd-status --json"
	run "$BUILD/cbd-status" -t "$D/transport" --json
fi
