# The VM rig: two-kernel scenarios on an emulated, shared NVDIMM.  Source it
# first thing from a tests/vm/test-*.sh scenario:
#
#   source "$(dirname "$0")/lib.sh"
#   guest_b() { ...runs in guest B... }   # and guest_a, ...
#   vm_main "$@"                          # guest: runs guest_ROLE and exits
#   vm_setup                              # host: image, run folder, NVDIMM
#   vm_start b guest-b --disk "$RUN/disk-b.img"
#   vm_wait b 600                         # the guest's script must pass
#
# One scenario file holds the host's part and every guest's part: a guest
# boots Debian's kernel (tests/vm/image.sh), mounts this machine's root
# read-only over 9p and runs "bash SCENARIO guest ROLE" in it, so guests
# see the same paths, the same build and the same tools as the host.  The
# run folder $RUN (build/tests/vm/NAME) is shared writable by every guest:
# logs, configs and the flag files by which guests and the host wait for
# each other (flag_set / flag_wait).  Every guest of a scenario maps the
# same NVDIMM file, which each kernel turns into /dev/dax0.0 (devdax,
# --map=mem: each kernel keeps its page structs in its own RAM).  All QEMUs
# are powered off and the NVDIMM removed on any exit; logs stay in $RUN.

VM_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$VM_LIB_DIR/../functions.sh"

VM_DIR=${VM_DIR:-$(cd "$VM_LIB_DIR/../.." && pwd)/build/vm}
VM_NVDIMM_SIZE=${VM_NVDIMM_SIZE:-512M}
VM_MEM=${VM_MEM:-1G}
# Everything under TCG is one or two orders of magnitude slower than here:
# deadlines in guests are scaled by this (see wait_for).
VM_SLOW=${VM_SLOW:-10}

# ---- both sides -----------------------------------------------------
# flag_set NAME [TEXT] / flag_wait NAME SECS: files in the run folder.
flag_set() { printf '%s\n' "${2:-}" >"$RUN/flag.$1.tmp" && mv "$RUN/flag.$1.tmp" "$RUN/flag.$1"; }
flag_wait() { wait_for "$2" test -e "$RUN/flag.$1" || fail "no flag $1 after $2 s"; }
flag_get() { cat "$RUN/flag.$1"; }

# ---- guest side -----------------------------------------------------
# vm_main "$@": in a guest (argv "guest ROLE ARGS..."), run guest_ROLE and
# exit with its status; on the host, return.
vm_main() {
	[ "${1:-}" = guest ] || return 0
	local role=$2
	shift 2
	RUN=$CBD_VM_RUN
	export CBD_TIMEOUT_SCALE=$VM_SLOW
	echo "guest $CBD_VM_NAME ($role): $(uname -r), boot $(cat /proc/sys/kernel/random/boot_id)"
	"guest_$role" "$@"
	echo PASS
	exit 0
}

# dax_wait: /dev/dax0.0 of the shared NVDIMM in this kernel.
dax_wait() {
	wait_for 60 test -c /dev/dax0.0 || fail "no /dev/dax0.0: $(ndctl list -N 2>&1)"
}

# b_conf FILE TIMEOUT_MS [KEY=VALUE...]: guest B's cbd-backend config:
# host guest-b on /dev/dax0.0, heartbeats every 500 ms, dead after
# TIMEOUT_MS; backend disk0 (id 0) on its virtio disk /dev/vda with the
# KEYs given (handlers = 2 unless one says otherwise).
b_conf() {
	local file=$1 timeout=$2 kv
	shift 2
	printf '[transport]\npath = /dev/dax0.0\nhostname = guest-b\n' >"$file"
	printf 'heartbeat_interval_ms = 500\nheartbeat_timeout_ms = %s\n\n' "$timeout" >>"$file"
	printf '[backend disk0]\npath = /dev/vda\nid = 0\n' >>"$file"
	[[ " $* " == *" handlers="* ]] || set -- handlers=2 "$@"
	for kv in "$@"; do
		printf '%s = %s\n' "${kv%%=*}" "${kv#*=}" >>"$file"
	done
}

# ---- host side ------------------------------------------------------
declare -A VM_PID=()

vm_cleanup() {
	local rc=$1 n
	for n in "${!VM_PID[@]}"; do
		[ "$rc" = 0 ] || vm_show "$n"
		vm_kill "$n"
	done
	[ -z "${VM_NV:-}" ] || rm -f "$VM_NV"
}

# vm_setup [--blank-nvdimm SIZE]: the guest image, a fresh run folder for
# this scenario ($RUN, logs kept) and a fresh NVDIMM file ($VM_NV) already
# holding the devdax info block (copied from a template made once by a
# guest), or a blank one of SIZE (a label-less raw namespace, /dev/pmem0).
vm_setup() {
	requires_root
	requires qemu-system-x86_64
	local name root d
	name=$(basename "$0" .sh)
	root=$(cd "$VM_LIB_DIR/../.." && pwd)
	# tests/vm/init mounts a tmpfs of the guest's own on these
	for d in "$root" "$BUILD"; do
		case "$d/" in
		/tmp/* | /run/* | /var/tmp/* | /mnt/* | /dev/shm/*)
			fail "the VM rig cannot run from $d: its guests mount their own /tmp /run /var/tmp /mnt /dev/shm over the host's; use a tree elsewhere"
			;;
		esac
	done
	"$VM_LIB_DIR/image.sh" "$VM_DIR" || fail "cannot build the guest image"
	RUN=$root/build/tests/vm/$name
	rm -rf "$RUN"
	mkdir -p "$RUN"
	cleanup_fn 'vm_cleanup $rc'
	if [ "${1:-}" = --blank-nvdimm ]; then
		VM_NV=$(mktemp /dev/shm/cbd-vm-nvdimm.XXXXXX)
		truncate -s "$2" "$VM_NV"
		return 0
	fi
	vm_nvdimm_template
	VM_NV=$(mktemp /dev/shm/cbd-vm-nvdimm.XXXXXX)
	cp --sparse=always "$VM_DIR/nvdimm-$VM_NVDIMM_SIZE.tmpl" "$VM_NV"
}

# The template: a guest turns a blank NVDIMM into devdax (-M mem) once.
vm_nvdimm_template() {
	local tmpl=$VM_DIR/nvdimm-$VM_NVDIMM_SIZE.tmpl
	[ -s "$tmpl" ] && return 0
	echo "  VM      making the devdax NVDIMM template"
	local saved_run=$RUN
	RUN=$VM_DIR/template-run
	rm -rf "$RUN" && mkdir -p "$RUN"
	VM_NV=$tmpl.tmp
	rm -f "$VM_NV" && truncate -s "$VM_NVDIMM_SIZE" "$VM_NV"
	vm_start tmpl nvdimm-template --script "$VM_LIB_DIR/nvdimm-template.sh"
	vm_wait tmpl 300
	mv "$tmpl.tmp" "$tmpl"
	VM_NV=
	RUN=$saved_run
}

# vm_start NAME ROLE [--disk FILE]... [--nvdimm FILE]... [--script FILE]
#          [--args A,B] [--console]: boot guest NAME running guest_ROLE of
# this scenario (or --script) in the background.  Its console is
# $RUN/NAME.console, its script's output $RUN/NAME.log.  --console: in
# the foreground instead, with a root shell on this terminal (tests/vm/lab.sh).
vm_start() {
	local name=$1 role=$2 script=$0 args= accel=${CBD_VM_ACCEL:-tcg}
	local serial="file:$RUN/$name.console" console=0
	shift 2
	local -a extra=() nvs=("$VM_NV")
	while [ $# -gt 0 ]; do
		case $1 in
		--console) console=1 serial=mon:stdio script=shell; shift ;;
		--disk) extra+=(-drive "file=$2,if=virtio,format=raw,cache=writeback"); shift 2 ;;
		--nvdimm) nvs+=("$2"); shift 2 ;;
		--script) script=$2; shift 2 ;;
		--args) args=$2; shift 2 ;;
		*) fail "vm_start: bad argument $1" ;;
		esac
	done
	local i=0 nv
	for nv in "${nvs[@]}"; do
		extra+=(-object "memory-backend-file,id=m$i,share=on,mem-path=$nv,size=$(stat -c %s "$nv")"
			-device "nvdimm,memdev=m$i,id=nv$i")
		i=$((i + 1))
	done
	rm -f "$RUN/$name.rc"
	[ "$script" = "$0" ] && args=guest,$role${args:+,$args}
	[ "$script" = shell ] || script=$(readlink -f "$script")
	local -a qemu=(qemu-system-x86_64 -name "cbd-$name"
		-machine "pc,nvdimm=on,accel=$accel" -cpu max -smp 1
		-m "$VM_MEM,slots=4,maxmem=8G" -nodefaults -no-reboot
		-display none -serial "$serial"
		-kernel "$VM_DIR/vmlinuz" -initrd "$VM_DIR/initramfs.gz"
		-append "console=ttyS0 quiet panic=-1 oops=panic cbd.name=$name cbd.run=$RUN cbd.script=$script cbd.args=$args"
		-fsdev local,id=root,path=/,security_model=none,readonly=on,multidevs=remap
		-device virtio-9p-pci,fsdev=root,mount_tag=hostroot
		-fsdev "local,id=run,path=$RUN,security_model=none,multidevs=remap"
		-device virtio-9p-pci,fsdev=run,mount_tag=run "${extra[@]}")
	if [ $console = 1 ]; then
		"${qemu[@]}"
		return
	fi
	"${qemu[@]}" -monitor none >"$RUN/$name.qemu" 2>&1 &
	VM_PID[$name]=$!
	echo "  VM      $name: booted as pid ${VM_PID[$name]} ($role)"
}

# vm_kill NAME: pull the plug (SIGKILL to its QEMU): the guest's kernel,
# page cache and processes are gone at once, as in a power loss.
vm_kill() {
	local pid=${VM_PID[$1]:-}
	[ -n "$pid" ] || return 0
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	unset "VM_PID[$1]"
	return 0
}

# vm_wait NAME SECS: the guest powers itself off after its script; fail
# unless that script passed (the tail of its log is shown otherwise), and
# at once when another guest's script failed meanwhile.
vm_wait() {
	local name=$1 secs=$2 pid=${VM_PID[$1]}
	if ! wait_for "$secs" vm_done_or_failed "$pid"; then
		vm_show "$name"
		fail "guest $name did not finish within $secs s"
	fi
	vm_check_others "$name" "guest $name"
	wait "$pid" 2>/dev/null || true
	unset "VM_PID[$name]"
	if [ "$(cat "$RUN/$name.rc" 2>/dev/null)" != 0 ]; then
		vm_show "$name"
		fail "guest $name failed (exit $(cat "$RUN/$name.rc" 2>/dev/null || echo '?'))"
	fi
	echo "  VM      $name: passed"
}

# Some guest's script failed (it wrote a non-zero NAME.rc).
vm_any_failed() {
	local n
	for n in "${!VM_PID[@]}"; do
		[ -e "$RUN/$n.rc" ] && [ "$(cat "$RUN/$n.rc")" != 0 ] && return 0
	done
	return 1
}
vm_done_or_failed() { pid_gone "$1" || vm_any_failed; }

# vm_check_others NAME WHAT: fail, showing its logs, if a guest other
# than NAME failed while the host waited for WHAT.
vm_check_others() {
	local n
	for n in "${!VM_PID[@]}"; do
		[ "$n" != "$1" ] && [ -e "$RUN/$n.rc" ] &&
			[ "$(cat "$RUN/$n.rc")" != 0 ] || continue
		vm_show "$n"
		fail "guest $n failed while the host waited for $2"
	done
	return 0
}

# vm_flag_wait FLAG SECS: on the host, wait for a guest's flag; fail at
# once when a guest's script failed meanwhile (no point in waiting).
vm_flag_wait() {
	local flag=$1 secs=$2
	if ! wait_for "$secs" vm_flag_or_failed "$flag"; then
		fail "no flag $flag after $secs s"
	fi
	vm_check_others "" "flag $flag"
}
vm_flag_or_failed() { [ -e "$RUN/flag.$1" ] || vm_any_failed; }

# vm_show NAME: the tails of a guest's log and console.
vm_show() {
	echo "=== $1: last lines of $RUN/$1.log" >&2
	tail -n 40 "$RUN/$1.log" 2>/dev/null | sed 's/^/    /' >&2
	echo "=== $1: last lines of $RUN/$1.console" >&2
	tail -n 15 "$RUN/$1.console" 2>/dev/null | sed 's/^/    /' >&2
	grep -iE 'oops|bug:|panic|call trace' "$RUN/$1.console" 2>/dev/null | head -5 | sed 's/^/    /' >&2
	return 0
}
