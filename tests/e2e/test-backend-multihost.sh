#!/usr/bin/env bash
# Two cbd-backend processes with different host names on one transport
# file are two hosts, each serving one backend, both reachable by clients.
# A backend host stopped for less than the timeout is kept.  After kill -9
# of one, the survivor's janitor keeps its backend while a live client maps
# it; once that client is killed too, the janitor clears the client's
# blkdev and segments, the dead backend and the dead host, in that order,
# soon after the timeout, and never anything alive.  A killed
# client of the live backend is cleared the same way.  The dead host's
# config then starts again and serves its data; killed again with nothing
# mapped, it is cleared right after the timeout.
source "$(dirname "$0")/../functions.sh"

test_tmpdir
TIMEOUT_MS=1500		# heartbeat_timeout_ms of write_config
make_image "$T/a.img" 32M
make_image "$T/b.img" 32M
write_config "$T/a.ini" "$T/transport" host-a disk-a "$T/a.img" "id = 0"
write_config "$T/b.ini" "$T/transport" host-b disk-b "$T/b.img" "id = 1"
start_backend "$T/a.ini" "$T/a.pid"
APID=$BACKEND_PID
start_backend "$T/b.ini" "$T/b.pid"
BPID=$BACKEND_PID
tclient status

log "two hosts, each backend reachable"
status_has '^host [0-9]+ name=host-a role=backend' || fail "no host-a"
status_has '^host [0-9]+ name=host-b role=backend' || fail "no host-b"
tclient -b 0 -H c1 -q 2 write 0 1M 10 read 0 1M 10
tclient -b 1 -H c2 -q 2 write 0 1M 11 read 0 1M 11

log "clients holding a mapping of each backend"
start_holder hold-a -b 0
start_holder hold-b -b 1 -q 2
tclient status

log "host-b stopped for less than the timeout is only slow: kept"
t0=$(date +%s%N)
kill -STOP "$BPID"
sleep 0.5
kill -CONT "$BPID"
stopped=$(( ($(date +%s%N) - t0) / 1000000 ))
# Only a stop well short of the timeout can be judged: a machine that
# delayed the SIGCONT that long made host-b legitimately dead.
[ "$stopped" -lt $((TIMEOUT_MS - 500)) ] ||
	skip "this machine kept host-b stopped for ${stopped} ms: cannot judge"
sleep 2
status_has '^backend 1 ' || fail "a slow backend was cleared"
status_has 'name=host-b' || fail "a slow host was cleared"
tclient -b 1 -H c3 --ro read 0 1M 11

log "kill -9 host-b: its backend is kept while hold-b maps it"
kill -KILL "$BPID"
wait "$BPID" 2>/dev/null || true
sleep $((TIMEOUT_MS / 1000 + 2))
status_has '^backend 1 ' || fail "a dead backend mapped by a live client was cleared"
status_has 'name=host-b' || fail "the dead backend's host went before its backend"
status_has 'name=hold-b role=client' || fail "a live client host was cleared"
status_has '^blkdev [0-9]+ host=[0-9]+ backend=1 ' || fail "a live blkdev was cleared"

log "kill -9 hold-b: blkdev, segments, backend 1 and host-b are cleared"
kill_holder hold-b
start=$(date +%s%N)
wait_for 60 no_status_line 'name=host-b' ||
	fail "host-b not cleared: $(tclient status)"
took=$(( ($(date +%s%N) - start) / 1000000 ))
log "cleared ${took} ms after the kill (timeout ${TIMEOUT_MS} ms)"
tclient status
no_status_line '^backend 1 ' || fail "backend 1 left behind"
no_status_line 'name=hold-b' || fail "host hold-b left behind"
no_status_line 'backend=1 ' || fail "blkdev or segment of backend 1 left behind"
# the janitor said what it did, dependents first
grep 'janitor: ' "$T/a.log"
order=$(grep -Eo 'janitor: (segment|blkdev|backend|host) [0-9]+ \([^)]*\)|janitor: (segment|blkdev) [0-9]+' \
	"$T/a.log" | awk '{print $2}' | uniq | tr '\n' ' ')
case "$order" in
*"segment blkdev "*"backend host "*) ;;
*) fail "janitor order: $order" ;;
esac

log "never anything alive: host-a, backend 0 and hold-a stay"
status_has 'name=host-a' || fail "host-a cleared"
status_has '^backend 0 ' || fail "backend 0 cleared"
status_has 'name=hold-a role=client' || fail "hold-a cleared"
status_has '^blkdev [0-9]+ host=[0-9]+ backend=0 ' || fail "hold-a's blkdev cleared"

log "kill -9 hold-a: the janitor asks host-a's handler to detach, then clears"
kill_holder hold-a
wait_for 60 no_status_line '^(blkdev|segment) |name=hold-a' ||
	fail "hold-a not cleared: $(tclient status)"
grep -q 'segment .*detached' "$T/a.log" || fail "handler did not detach"
kill -0 "$APID" || fail "host-a died"
tclient -b 0 -H c4 read 0 1M 10

log "host-b starts again and serves its data"
rm -f "$T/b.pid"
start_backend "$T/b.ini" "$T/b.pid"
tclient -b 1 -H c5 read 0 1M 11

log "kill -9 host-b with nothing mapped: cleared soon after the timeout"
kill -KILL "$BACKEND_PID"
wait "$BACKEND_PID" 2>/dev/null || true
start=$(date +%s%N)
wait_for 60 no_status_line 'name=host-b|^backend 1 ' ||
	fail "host-b not cleared: $(tclient status)"
took=$(( ($(date +%s%N) - start) / 1000000 ))
log "cleared ${took} ms after the kill (timeout ${TIMEOUT_MS} ms)"
# Not before the timeout, on the janitor's own clock: the age it saw.
age=$(sed -n 's/.*janitor: host [0-9]* (host-b): cleared: heartbeat stopped \([0-9]*\) ms ago.*/\1/p' \
	"$T/a.log" | tail -n 1)
[ -n "$age" ] || fail "no janitor line for host-b: $(grep 'janitor: ' "$T/a.log")"
[ "$age" -ge "$TIMEOUT_MS" ] || fail "host-b cleared after only ${age} ms without a heartbeat"
status_has 'name=host-a' || fail "host-a cleared"
