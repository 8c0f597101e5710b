#!/usr/bin/env bash
# Run the test scripts named on the command line with cbdfs taking its
# requests over io_uring (CBDFS_IO_URING=on): the fuse module's
# enable_uring is turned on for the run and put back as it was on any
# exit.  Skipped, with a message, where the kernel has no FUSE over
# io_uring or we may not switch it on.
set -u
param=/sys/module/fuse/parameters/enable_uring
if [ ! -w "$param" ]; then
	echo "e2e-io_uring: skipped: $param missing or not writable (a kernel without FUSE over io_uring, or not root)"
	exit 0
fi
old=$(cat "$param")
trap 'echo "$old" >"$param"' EXIT
echo Y >"$param" || { echo "e2e-io_uring: skipped: cannot enable $param"; exit 0; }
CBDFS_IO_URING=on CBD_SUITE=e2e-io_uring "$(dirname "$0")/run-e2e.sh" "$@"
