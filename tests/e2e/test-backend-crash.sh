#!/usr/bin/env bash
# kill -9 of cbd-backend in the middle of a stress run at QD16 over four
# queues, twice, each time restarted with the same config: the client's
# requests wait while the backend is down, the stress run goes on after
# the restart, every acknowledged write is on the device afterwards, and the
# client never saw a duplicated or stray completion.
source "$(dirname "$0")/../functions.sh"

test_tmpdir
make_image "$T/disk0.img" 64M
write_config "$T/cbd.ini" "$T/transport" node-a \
	disk0 "$T/disk0.img" "id = 0" "handlers = 4"
start_backend "$T/cbd.ini" "$T/backend.pid"

acked() { wc -l <"$T/acked.log"; }
acked_over() { [ "$(acked)" -gt "$1" ]; }
# acked_still: no write was acknowledged for a second (what the client
# had reaped from the dead backend's rings is logged by then).
acked_still() {
	local n
	n=$(acked)
	sleep 1
	[ "$(acked)" = "$n" ]
}

log "stress at QD16 on 4 queues"
: >"$T/acked.log"
# It runs until told to stop (SIGTERM: drain, exit 0), not for a fixed
# time that a slow machine could use up before both rounds are done.
"$BUILD/cbd-testclient" -t "$T/transport" -H stress -b 0 -q 4 \
	--attach-timeout 30000 --io-timeout 30 stress --seconds 3600 --qd 16 \
	--max-len 128K --log "$T/acked.log" >"$T/stress.out" 2>&1 &
SP=$!
cleanup_fn "kill -KILL $SP 2>/dev/null; wait $SP 2>/dev/null"

n2=0
for round in 1 2; do
	# Well into a stream of writes, not at its start.
	wait_for 120 acked_over $((n2 + 10000)) ||
		fail "stress makes no progress: $(cat "$T/stress.out")"
	log "round $round: kill -9 cbd-backend after $(acked) acknowledged writes"
	kill -KILL "$BACKEND_PID"
	wait "$BACKEND_PID" 2>/dev/null || true
	# what completed before the kill may still be on its way to the log
	# (each poll of acked_still takes a second: up to a minute here)
	wait_for 3 acked_still || fail "completions go on with the backend dead"
	n1=$(acked)
	sleep 1
	n2=$(acked)
	# Requests wait for the backend: nothing completes while it is down.
	[ "$n1" = "$n2" ] || fail "completions while the backend was dead ($n1 -> $n2)"
	kill -0 "$SP" 2>/dev/null || fail "stress gave up: $(cat "$T/stress.out")"
	rm -f "$T/backend.pid"
	start_backend "$T/cbd.ini" "$T/backend.pid"
	wait_for 60 acked_over "$n2" ||
		fail "stress did not resume after the restart"
	log "round $round: resumed"
done
wait_for 120 acked_over $((n2 + 1000)) ||
	fail "stress makes no progress after round 2: $(cat "$T/stress.out")"
kill -0 "$SP" 2>/dev/null || fail "stress ended early: $(cat "$T/stress.out")"

rc=0
kill -TERM "$SP"
wait "$SP" || rc=$?
cat "$T/stress.out"
[ "$rc" = 0 ] || fail "stress exited $rc"
grep -q 'not in flight\|bad completion' "$T/stress.out" &&
	fail "the client saw a duplicated or stray completion"
log "backend log:"
grep -E 'attached|detached|registered|adopt' "$T/backend.log" | tail -n 20

log "every acknowledged write is there ($(acked) writes)"
tclient -H verify -b 0 -q 4 verify-log "$T/acked.log"
