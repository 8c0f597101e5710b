#!/usr/bin/env bash
# make check-fresh: prove the README's quick start on a machine that has
# none of the project's packages.  A debootstrap --variant=minbase bookworm
# root (made once and cached as a tarball under /var/cache/cbd-fresh/) is
# unpacked into a temp folder; /dev, /proc and /sys are bound in so that
# FUSE and loop devices work.  Inside it: the README's prerequisites
# (apt-get install build-essential git), a clone of this repository's HEAD,
# and `make demo` as the very first make command.  Fails unless the demo
# passes and the project's libraries were absent before it ran.
# Everything it mounts, starts or unpacks goes away on any exit.
# Usage: tests/fresh/run.sh (as root).  CBD_FRESH_KEEP_CACHE=0 rebuilds
# the cached root.
set -euo pipefail

SRC=$(git -C "$(dirname "$0")/../.." rev-parse --show-toplevel)
CACHE=${CBD_FRESH_CACHE:-/var/cache/cbd-fresh}
MIRROR=${CBD_FRESH_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
BASE=$CACHE/$SUITE-minbase.tar
LIBS="libfuse3-dev libpmem2-dev libdaxctl-dev libinih-dev libjansson-dev libcmocka-dev liburing-dev"

say() { printf '  FRESH   %s\n' "$*"; }
die() { echo "check-fresh: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (chroot, bind mounts)"
command -v debootstrap >/dev/null || die "needs debootstrap (make deps)"

D=
cleanup() {
	local rc=$? pid
	set +e
	trap - EXIT INT TERM
	if [ -n "$D" ]; then
		# Anything still running inside the root (a failed demo's
		# daemons) is ours: stop it before unmounting.
		for pid in $(ls /proc | grep -E '^[0-9]+$'); do
			[ "$(readlink "/proc/$pid/root" 2>/dev/null)" = "$D/root" ] &&
				kill -9 "$pid" 2>/dev/null
		done
		for m in $(awk -v r="$D/root" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r); do
			umount -l "$m" 2>/dev/null
		done
		if awk -v r="$D/" 'index($2, r) == 1 { bad = 1 } END { exit !bad }' /proc/mounts; then
			echo "check-fresh: mounts left under $D; not removing it" >&2
			rc=1
		else
			rm -rf --one-file-system "$D"
		fi
	fi
	[ $rc -eq 0 ] && say "OK" || echo "check-fresh: FAILED (exit $rc)" >&2
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

D=$(mktemp -d /tmp/cbd-fresh.XXXXXX)
mkdir -p "$CACHE/archives/partial"
if [ ! -s "$BASE" ] || [ "${CBD_FRESH_KEEP_CACHE:-1}" = 0 ]; then
	say "debootstrap --variant=minbase $SUITE (cached in $BASE)"
	debootstrap --variant=minbase --cache-dir="$CACHE/archives" \
		"$SUITE" "$D/base" "$MIRROR" >"$D/debootstrap.log" 2>&1 ||
		{ tail -n 30 "$D/debootstrap.log" >&2; die "debootstrap failed"; }
	tar -C "$D/base" -cf "$BASE.tmp" . && mv "$BASE.tmp" "$BASE"
	rm -rf --one-file-system "$D/base"
fi

say "unpack a fresh root from $BASE"
mkdir "$D/root"
tar -C "$D/root" -xf "$BASE"
R=$D/root
# Bind mounts are slaves, so that unmounting them never reaches the host.
for fs in dev proc sys; do
	mount --rbind "/$fs" "$R/$fs"
	mount --make-rslave "$R/$fs"
done
# Downloaded packages are kept between runs; installing them is not.
mount --bind "$CACHE/archives" "$R/var/cache/apt/archives"
cp /etc/resolv.conf "$R/etc/resolv.conf" 2>/dev/null || true
mkdir "$R/origin"
mount --bind -o ro "$SRC" "$R/origin"

in_root() { chroot "$R" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
	HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }

say "apt-get install build-essential git (the README's prerequisites)"
in_root sh -c 'apt-get update -qq && apt-get install -y -qq build-essential git' \
	>"$D/apt.log" 2>&1 || { tail -n 30 "$D/apt.log" >&2; die "apt-get failed"; }

for lib in $LIBS; do
	if in_root dpkg-query -W -f='${Status}\n' "$lib" 2>/dev/null | grep -q 'ok installed'; then
		die "the fresh root already has $lib: not a fresh machine"
	fi
done

say "git clone $(git -C "$SRC" rev-parse --short HEAD) && make demo"
[ -z "$(git -C "$SRC" status --porcelain --untracked-files=no)" ] ||
	say "note: uncommitted changes in $SRC are not part of this test"
in_root git clone -q /origin /root/cbd
if ! in_root sh -c 'cd /root/cbd && make demo' >"$D/demo.log" 2>&1; then
	tail -n 60 "$D/demo.log" >&2
	die "make demo failed on a fresh machine"
fi
grep -q 'DEPS    installing:' "$D/demo.log" || die "make demo installed nothing: not a fresh machine?"
grep -q '^demo: OK' "$D/demo.log" || { tail -n 30 "$D/demo.log" >&2; die "no 'demo: OK'"; }
for lib in $LIBS; do
	in_root dpkg-query -W -f='${Status}\n' "$lib" | grep -q 'ok installed' ||
		die "make demo passed without installing $lib"
done
grep 'DEPS    installing:' "$D/demo.log" | sed 's/^/        /'
