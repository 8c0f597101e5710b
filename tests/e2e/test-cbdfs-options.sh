#!/usr/bin/env bash
# cbdfs command line: --help, --version, and every bad option, missing or
# invalid transport fails with one "cbdfs: ..." line and a non-zero exit,
# leaves no mount behind and writes nothing to the transport.  A good
# mount registers a client host and unregisters it at unmount.
source "$(dirname "$0")/../functions.sh"
requires_fuse
requires jq
test_tmpdir

CBDFS=$BUILD/cbdfs
M=$T/mnt
mkdir -p "$M"
"$BUILD/cbd-admin" -t "$T/transport" format --size 64M >/dev/null ||
	fail "cbd-admin format"
cp "$T/transport" "$T/transport.orig"
head -c 1M /dev/urandom >"$T/garbage"
cp "$T/garbage" "$T/garbage.orig"
truncate -s 64M "$T/zero"
touch "$T/afile"

# expect_error REGEX ARGS...: cbdfs fails with exactly one matching line
# (a usage error: exit 2, and the line "Try 'cbdfs --help'." after it).
expect_error() {
	local re=$1 out rc=0
	shift
	out=$(timeout 60 "$CBDFS" "$@" 2>&1 </dev/null) || rc=$?
	[ "$rc" -ne 0 ] || fail "cbdfs $* succeeded"
	[ "$rc" -ne 124 ] || fail "cbdfs $* hung"
	if [ "$rc" = 2 ]; then
		[ "$(tail -n 1 <<<"$out")" = "Try 'cbdfs --help'." ] ||
			fail "cbdfs $*: usage error without the --help hint: $out"
		out=$(head -n -1 <<<"$out")
	fi
	[ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] ||
		fail "cbdfs $*: expected one line, got:"$'\n'"$out"
	[[ $out == "cbdfs: "* ]] || fail "cbdfs $*: no 'cbdfs:' prefix: $out"
	grep -qE "$re" <<<"$out" || fail "cbdfs $*: '$out' does not match /$re/"
	! grep -q " $M " /proc/mounts || fail "cbdfs $* left a mount"
	echo "ok: cbdfs $* -> $out"
}

log "help and version"
"$CBDFS" --help | grep -q 'transport=PATH' || fail "--help lacks transport="
"$CBDFS" --help | grep -q 'timeout=SEC' || fail "--help lacks timeout="
"$CBDFS" --version >"$T/version" && [ "$(head -n 1 "$T/version")" = "cbdfs $("$BUILD/cbd-status" --version | cut -d' ' -f2)" ] || fail "--version: $(cat "$T/version")"

log "bad command lines"
expect_error 'no mountpoint' -o "transport=$T/transport"
expect_error 'missing -o transport' "$M"
expect_error 'missing -o transport' "$M" -o hostname=x
expect_error 'queues=0' "$M" -o "transport=$T/transport,queues=0"
expect_error 'queues=33' "$M" -o "transport=$T/transport,queues=33"
expect_error 'queues=two' "$M" -o "transport=$T/transport,queues=two"
expect_error 'timeout=0' "$M" -o "transport=$T/transport,timeout=0"
expect_error 'timeout=1s' "$M" -o "transport=$T/transport,timeout=1s"
expect_error 'hostname=' "$M" -o "transport=$T/transport,hostname=$(printf 'h%.0s' {1..70})"
expect_error "unknown option.*bogus" "$M" -o "transport=$T/transport,bogus"
expect_error 'mount ?point' "$T/nonexistent" -o "transport=$T/transport"
expect_error 'not a directory' "$T/afile" -o "transport=$T/transport"

log "bad transports"
expect_error 'does not exist' "$M" -o "transport=$T/nonexistent"
expect_error 'not a cbd transport' "$M" -o "transport=$T/garbage"
expect_error 'not formatted' "$M" -o "transport=$T/zero"
expect_error 'transport' "$M" -o "transport=$T"

log "nothing was written"
cmp -s "$T/transport" "$T/transport.orig" || fail "the transport was written"
cmp -s "$T/garbage" "$T/garbage.orig" || fail "the garbage file was written"
[ "$(stat -c %s "$T/zero")" = $((64 << 20)) ] || fail "zero file resized"
cmp -s -n $((64 << 20)) "$T/zero" /dev/zero || fail "zero file was written"

log "a good mount registers a client host, unmount releases it"
mount_cbdfs "$M" "transport=$T/transport,hostname=optclient"
[ "$(ls -A "$M")" = "by-name" ] || fail "empty transport lists: $(ls -A "$M")"
[ "$(ls -A "$M/by-name")" = "" ] || fail "empty transport names: $(ls -A "$M/by-name")"
# alive: a heartbeat in a window no busy machine starves cbdfs through
"$BUILD/cbd-status" -t "$T/transport" --window 2000 --json >"$T/st.json"
jq -e '.hosts | map(select(.hostname == "optclient" and .alive)) | length == 1' \
	"$T/st.json" >/dev/null || fail "client host not registered: $(cat "$T/st.json")"
fusermount3 -u "$M"
wait_for 30 pid_gone "$CBDFS_PID" || fail "cbdfs did not exit at unmount"
wait "$CBDFS_PID" || fail "cbdfs exited with $?"
"$BUILD/cbd-status" -t "$T/transport" --json >"$T/st.json"
jq -e '.hosts | length == 0' "$T/st.json" >/dev/null ||
	fail "host slot left: $(cat "$T/st.json")"

log "SIGTERM unmounts and releases too"
mount_cbdfs "$M" "transport=$T/transport,hostname=optclient"
kill -TERM "$CBDFS_PID"
wait_for 30 pid_gone "$CBDFS_PID" || fail "cbdfs ignored SIGTERM"
wait "$CBDFS_PID" || fail "cbdfs exited with $? on SIGTERM"
! grep -q " $M " /proc/mounts || fail "mount left after SIGTERM"
"$BUILD/cbd-status" -t "$T/transport" --json | jq -e '.hosts | length == 0' \
	>/dev/null || fail "host slot left after SIGTERM"
echo PASS
