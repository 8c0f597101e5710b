#!/usr/bin/env bash
# Bad devices get clear errors and nothing is written, in a real kernel
# with real NVDIMM namespaces: /dev/pmem0 (a block device: every kernel
# maps it through its own page cache), a character device that is not a
# dax device, a file on a network file system (the 9p run folder), a dax
# device smaller than the smallest transport, a dax device whose page map
# lives on the device (--map=dev: works, with a warning that two hosts
# must not share it), and a dax device in system-ram mode.
source "$(dirname "$0")/lib.sh"

# refused MESSAGE CMD...: CMD exits non-zero and says MESSAGE.
refused() {
	local want=$1 out rc=0
	shift
	out=$("$@" 2>&1) || rc=$?
	[ "$rc" != 0 ] || fail "$*: accepted: $out"
	grep -qF -- "$want" <<<"$out" || fail "$*: no '$want' in: $out"
	echo "refused as expected: $*: $out"
}

# untouched DEV: the first MiB of DEV is still all zero.
untouched() {
	cmp <(head -c 1M "$1") <(head -c 1M /dev/zero) || { od -An -tx1 "$1" | head -5; fail "$1 was written"; }
}

guest_c() {
	local ADM=$BUILD/cbd-admin ST=$BUILD/cbd-status
	wait_for 60 test -b /dev/pmem0 || fail "no /dev/pmem0: $(ndctl list -N 2>&1)"

	log "/dev/pmem0, a block device, is not a transport"
	refused "a block device such as /dev/pmem0 goes through each kernel's page cache" \
		"$ADM" -t /dev/pmem0 format
	refused "is not shared memory" "$ST" -t /dev/pmem0
	mkdir -p /mnt/cbd
	refused "is not shared memory" "$BUILD/cbdfs" /mnt/cbd -f -o transport=/dev/pmem0
	untouched /dev/pmem0

	log "a character device that is not a dax device"
	refused "neither a regular file nor a dax device" "$ADM" -t /dev/null format

	log "a file on a network file system (9p)"
	truncate -s 64M "$RUN/on-9p.img"
	refused "a file on a network or FUSE file system" "$ADM" -t "$RUN/on-9p.img" format
	cmp -s "$RUN/on-9p.img" <(head -c 64M /dev/zero) || fail "the 9p file was written"

	log "a dax device smaller than a transport"
	ndctl create-namespace -f -e namespace1.0 -m devdax -M mem >/dev/null ||
		fail "devdax on the small NVDIMM"
	wait_for 30 test -c /dev/dax1.0 || fail "no /dev/dax1.0"
	refused "too small" "$ADM" -t /dev/dax1.0 format

	log "a dax device with its page map on the device (--map=dev)"
	ndctl create-namespace -f -e namespace0.0 -m devdax -M dev >/dev/null ||
		fail "devdax --map=dev"
	wait_for 30 test -c /dev/dax0.0 || fail "no /dev/dax0.0"
	out=$("$ADM" -t /dev/dax0.0 format 2>&1) || fail "format --map=dev: $out"
	grep -qF "must not be shared by two hosts" <<<"$out" || fail "no warning: $out"
	echo "$out"

	log "a dax device in system-ram mode"
	if daxctl reconfigure-device --mode=system-ram --force dax0.0 >"$RUN/daxctl.out" 2>&1; then
		if [ -c /dev/dax0.0 ]; then
			refused "system-ram mode" "$ADM" -t /dev/dax0.0 format
		else
			refused "does not exist" "$ADM" -t /dev/dax0.0 format
		fi
		daxctl list | tee "$RUN/daxctl.list"
	else
		echo "skipped: daxctl reconfigure-device --mode=system-ram failed here: $(cat "$RUN/daxctl.out")"
	fi
}

vm_main "$@"

vm_setup --blank-nvdimm 512M	# label-less: namespace0.0, raw: /dev/pmem0
truncate -s 16M "$RUN/nv-small.img"	# namespace1.0
vm_start c c --nvdimm "$RUN/nv-small.img"
vm_wait c 600
echo PASS
