#!/usr/bin/env bash
# A two-host lab by hand: tests/vm/lab.sh NAME boots guest NAME with a root
# shell on this terminal.  Run it in two terminals (e.g. "a" and "b"): both
# guests map the same NVDIMM (/dev/shm/cbd-lab.nvdimm, devdax, kept between
# runs; rm it to start afresh) as /dev/dax0.0, each has its own virtio disk
# /dev/vda (build/tests/vm/lab/disk-NAME.img) and this machine's root
# read-only, so build/ and every tool are there.  The folder
# build/tests/vm/lab is shared writable by both.  exit (or Ctrl-A x)
# powers the guest off.
#   b# cbd-admin -t /dev/dax0.0 format
#   b# printf '[transport]\npath = /dev/dax0.0\n[backend disk0]\npath = /dev/vda\n' >/tmp/b.ini
#   b# cbd-backend -c /tmp/b.ini &
#   a# cbdfs /mnt -o transport=/dev/dax0.0 && losetup -f --show --direct-io=on /mnt/backend0
set -euo pipefail
source "$(dirname "$0")/lib.sh"
name=${1:?usage: $0 NAME}
requires_root
"$VM_LIB_DIR/image.sh" "$VM_DIR"
RUN=$(cd "$VM_LIB_DIR/../.." && pwd)/build/tests/vm/lab
mkdir -p "$RUN"
vm_nvdimm_template
VM_NV=/dev/shm/cbd-lab.nvdimm
[ -e "$VM_NV" ] || cp --sparse=always "$VM_DIR/nvdimm-$VM_NVDIMM_SIZE.tmpl" "$VM_NV"
[ -e "$RUN/disk-$name.img" ] || truncate -s 256M "$RUN/disk-$name.img"
vm_start "$name" shell --console --disk "$RUN/disk-$name.img" \
	--args "$(cd "$VM_LIB_DIR/../.." && pwd)/build"
