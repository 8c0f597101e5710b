#!/usr/bin/env bash
# Build what a guest of the VM rig boots, into $VM_DIR (build/vm): Debian's
# own kernel, unpacked from the linux-image .deb (never installed on this
# machine), and a busybox initramfs whose /init (tests/vm/init) loads the
# modules cbd needs and runs the guest's script from the host's root file
# system, shared read-only over 9p.  Does nothing when both are up to date.
# Usage: tests/vm/image.sh VM_DIR
set -euo pipefail

VM_DIR=$1
HERE=$(cd "$(dirname "$0")" && pwd)
# What the guests need: NVDIMM and dax, 9p, virtio disks, FUSE, loop, ext4.
MODULES="libnvdimm nfit nd_pmem nd_btt device_dax dax_pmem kmem 9p
	9pnet_virtio virtio_pci virtio_blk fuse loop ext4 crc32c_generic"

stamp=$(cat "$HERE/image.sh" "$HERE/init" | sha256sum | cut -c1-16)
mkdir -p "$VM_DIR"
cd "$VM_DIR"
if [ -s vmlinuz ] && [ -s initramfs.gz ] && [ "$(cat stamp 2>/dev/null)" = "$stamp" ]; then
	exit 0
fi

# The kernel package linux-image-amd64 points at, fetched with apt.
pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
[ -n "$pkg" ] || { echo "vm: cannot find the kernel package of linux-image-amd64" >&2; exit 1; }
kver=${pkg#linux-image-}
if [ ! -d "kernel-$kver" ]; then
	echo "  VM      fetching $pkg"
	rm -rf deb && mkdir deb
	(cd deb && apt-get download -q "$pkg" >/dev/null 2>&1) ||
		{ echo "vm: apt-get download $pkg failed" >&2; exit 1; }
	rm -rf "kernel-$kver.tmp"
	dpkg-deb -x deb/*.deb "kernel-$kver.tmp"
	depmod -b "kernel-$kver.tmp" "$kver"
	mv "kernel-$kver.tmp" "kernel-$kver"
	rm -rf deb
fi
kroot=$PWD/kernel-$kver

echo "  VM      initramfs for $kver"
rm -rf initramfs.tmp && mkdir -p initramfs.tmp/{bin,dev,proc,sys,host,mods}
cp /bin/busybox initramfs.tmp/bin/busybox
for a in sh mount umount mkdir insmod sleep cat chroot hostname poweroff \
	 mknod echo grep sed ls sync ln cut setsid; do
	ln -s busybox "initramfs.tmp/bin/$a"
done
# Dependency order from modprobe itself; /init insmods them in this order.
: >initramfs.tmp/mods/order
for m in $MODULES; do
	modprobe -d "$kroot" -S "$kver" --ignore-install --show-depends "$m" |
		awk '$1 == "insmod" { print $2 }'
done | awk '!seen[$0]++' | while read -r ko; do
	cp "$ko" initramfs.tmp/mods/
	basename "$ko" >>initramfs.tmp/mods/order
done
install -m 0755 "$HERE/init" initramfs.tmp/init
(cd initramfs.tmp && find . | cpio -o -H newc --quiet) | gzip -1 >initramfs.gz.tmp
mv initramfs.gz.tmp initramfs.gz
cp "$kroot/boot/vmlinuz-$kver" vmlinuz
echo "$kver" >kver
rm -rf initramfs.tmp
echo "$stamp" >stamp
