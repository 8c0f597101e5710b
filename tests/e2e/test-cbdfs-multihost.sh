#!/usr/bin/env bash
# Several hosts on one transport file: two cbd-backend hosts each serving a
# backend, both reachable through one cbdfs; the listing follows backends
# that start later and ones that stop or die; across two cbdfs hosts a
# backend has one writer (EBUSY for the second while the first holds it,
# success once it is released) while read-only mappings coexist.
source "$(dirname "$0")/../functions.sh"
requires_fuse
requires python3
test_tmpdir

TRANSPORT=$T/transport
for i in 0 1 2; do make_image "$T/disk$i.img" 16M; done
write_config "$T/s0.ini" "$TRANSPORT" server0 disk0 "$T/disk0.img" id=0
write_config "$T/s1.ini" "$TRANSPORT" server1 disk1 "$T/disk1.img" id=1
write_config "$T/s2.ini" "$TRANSPORT" server2 disk2 "$T/disk2.img" id=2
start_backend "$T/s0.ini" "$T/s0.pid"
start_backend "$T/s1.ini" "$T/s1.pid"
S1=$BACKEND_PID
mount_cbdfs "$T/a" "transport=$TRANSPORT,hostname=clienta"
A=$T/a

listing() { ls "$A" | grep -v '^by-name$' | tr '\n' ' ' | sed 's/ $//'; }
listing_is() { [ "$(listing)" = "$1" ]; }

log "two backend hosts, one cbdfs"
wait_for 30 listing_is "backend0 backend1" || fail "listing: $(listing)"
for i in 0 1; do
	head -c 1M /dev/urandom >"$T/data$i"
	dd if="$T/data$i" of="$A/backend$i" bs=64k seek=3 conv=notrunc,fsync status=none ||
		fail "write backend$i"
	cmp -n 1M -i 0:$((192 << 10)) "$T/data$i" "$T/disk$i.img" ||
		fail "backend$i data not in disk$i.img"
	cmp -n 1M -i 0:$((192 << 10)) "$T/data$i" "$A/backend$i" ||
		fail "backend$i reads back wrong"
done

log "a backend started later appears, stopped ones disappear"
start_backend "$T/s2.ini" "$T/s2.pid"
S2=$BACKEND_PID
wait_for 30 listing_is "backend0 backend1 backend2" || fail "backend2 did not appear: $(listing)"
[ "$(stat -c %s "$A/backend2")" = $((16 << 20)) ] || fail "backend2 size"
stop_daemon "$S2" || fail "server2 did not stop"
wait_for 30 listing_is "backend0 backend1" || fail "stopped backend2 still listed: $(listing)"
kill -KILL "$S1"
wait "$S1" 2>/dev/null || true
# dead once its heartbeat has not moved for heartbeat_timeout_ms (1.5 s)
wait_for 30 listing_is "backend0" || fail "killed backend1 still listed: $(listing)"
# the kernel may cache the name for a while
wait_for 30 test ! -e "$A/backend1" || fail "backend1 still resolves"

log "one writer per backend across cbdfs hosts"
mount_cbdfs "$T/b" "transport=$TRANSPORT,hostname=clientb"
B=$T/b
wait_for 30 test -e "$B/backend0" || fail "backend0 not visible on the second host"
exec 3<>"$A/backend0"	# host a holds a writable mapping
[ "$(cbdfs_errno "$B/backend0" rw open)" = EBUSY ] || fail "second writer not refused"
[ "$(cbdfs_errno "$B/backend0" w open)" = EBUSY ] || fail "second O_WRONLY writer not refused"
# the same host shares its mapping
[ "$(cbdfs_errno "$A/backend0" rw write 0 4096)" = "ok 4096" ] || fail "second open on host a"
# read-only mappings coexist with the writer
[ "$(cbdfs_errno "$B/backend0" r read 0 4096)" = "ok 4096" ] || fail "reader on host b refused"
cmp -n 4096 "$B/backend0" "$T/disk0.img" || fail "host b reads other data"
exec 3<&-
[ "$(cbdfs_errno "$B/backend0" rw write 4096 4096)" = "ok 4096" ] ||
	fail "host b cannot write after host a released"
exec 3<>"$B/backend0"
[ "$(cbdfs_errno "$A/backend0" rw open)" = EBUSY ] || fail "host a not refused now"
exec 3<&-
echo PASS
