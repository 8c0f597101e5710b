#!/usr/bin/env bash
# Install the Debian packages of the named groups that are not installed
# yet; do nothing (and need no root) when all are there.  make runs this
# before it builds anything (see the Makefile's stage 1).
#   build   compile the programs and the unit tests (make, make install)
#   run     run the daemons and the demo: FUSE, loop, ext4 (make demo)
#   test    the e2e tests, benchmarks and fuzzers (make check, make bench)
#   vm      boot the QEMU guests of make check-vm
#   fresh   make check-fresh (a debootstrap chroot)
set -euo pipefail

declare -A GROUP=(
	[build]="build-essential pkg-config libfuse3-dev libpmem2-dev
		libdaxctl-dev libinih-dev libjansson-dev libcmocka-dev
		liburing-dev libsystemd-dev perl"
	[run]="fuse3 util-linux mount e2fsprogs procps kmod"
	[test]="fio nbdkit libnbd-bin clang clang-format jq python3 psmisc"
	[vm]="qemu-system-x86 busybox-static ndctl daxctl cpio kmod"
	[fresh]="debootstrap git"
)

want=()
for g in "$@"; do
	[ -n "${GROUP[$g]:-}" ] || { echo "deps: unknown group '$g'" >&2; exit 2; }
	read -r -a pkgs <<<"$(echo ${GROUP[$g]})"
	want+=("${pkgs[@]}")
done
[ ${#want[@]} -gt 0 ] || exit 0

# One dpkg-query for all; packages it does not know are missing too.
installed=$(dpkg-query -W -f='${Status} ${Package}\n' "${want[@]}" 2>/dev/null |
	awk '$1 == "install" && $3 == "installed" { print $4 }' || true)
missing=()
for p in $(printf '%s\n' "${want[@]}" | sort -u); do
	grep -qxF "$p" <<<"$installed" || missing+=("$p")
done
[ ${#missing[@]} -gt 0 ] || exit 0

echo "  DEPS    installing: ${missing[*]}"
if [ "$(id -u)" != 0 ]; then
	echo "deps: these Debian packages are missing and installing them needs root:" \
		"${missing[*]}" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp /tmp/cbd-deps.XXXXXX)
trap 'rm -f "$log"' EXIT
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends \
	"${missing[@]}"; } >"$log" 2>&1; then
	tail -n 30 "$log" >&2
	echo "deps: apt-get failed (see above)" >&2
	exit 1
fi
