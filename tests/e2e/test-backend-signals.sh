#!/usr/bin/env bash
# cbd-backend's process life: --help/--version/bad options, the pidfile
# only once ready (and never on a failed start), --daemon, SIGTERM under
# load (drain, exit 0, slots released, nothing acknowledged lost after a
# restart), SIGHUP adding and removing backends and surviving a bad config.
source "$(dirname "$0")/../functions.sh"

test_tmpdir
make_image "$T/disk0.img" 64M
make_image "$T/disk1.img" 32M
TR=$T/transport
B=$BUILD/cbd-backend
TC=$BUILD/cbd-testclient

status() { "$TC" -t "$TR" status; }

log "--help, --version and bad options"
"$B" --help | grep -q "^Usage: cbd-backend" || fail "--help"
"$B" --version | grep -qx "cbd-backend [0-9.]*" || fail "--version"
for args in "--bogus" "-c x.ini extra" "--daemon --foreground" "--force" "-c"; do
	rc=0
	# shellcheck disable=SC2086
	"$B" $args >"$T/out" 2>&1 || rc=$?
	[ "$rc" = 2 ] || fail "cbd-backend $args: exit $rc, expected 2"
	[ -s "$T/out" ] || fail "cbd-backend $args: no message"
done

log "no pidfile when the start fails"
write_config "$T/cbd.ini" "$TR" node-b disk0 "$T/disk0.img"
sed -i 's/^format = .*/format = never/' "$T/cbd.ini"
rc=0
"$B" -c "$T/cbd.ini" --pidfile "$T/b.pid" >"$T/fail.log" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "start on a blank transport with format = never: exit $rc"
[ ! -e "$T/b.pid" ] || fail "pidfile written by a failed start"
sed -i 's/^format = .*/format = if-empty/' "$T/cbd.ini"

log "the pidfile appears once the backend is registered"
start_backend "$T/cbd.ini" "$T/b.pid"
status | grep -q "^backend 0 .*name=disk0" || fail "pidfile before backend disk0 was registered"

log "SIGTERM under load: drain, exit 0, slots released"
# It runs until told to stop (SIGTERM: drain, exit 0): still running at
# the backend's SIGTERM and after the restart, however slow the machine.
"$TC" -t "$TR" -b 0 -q 4 -H client-a --attach-timeout 30000 stress \
	--seconds 3600 --qd 32 --log "$T/acked" >"$T/stress.log" 2>&1 &
stress=$!
cleanup_fn "kill $stress 2>/dev/null; wait $stress 2>/dev/null"
wait_for 30 grep -q "segment 3: attached" "$T/b.log" || fail "client did not map 4 queues"
acked_over() { [ "$(wc -l <"$T/acked")" -gt "$1" ]; }
wait_for 60 acked_over 1000 || fail "stress makes no progress: $(cat "$T/stress.log")"
kill -TERM "$BACKEND_PID"
rc=0
wait "$BACKEND_PID" || rc=$?
[ "$rc" = 0 ] || { cat "$T/b.log"; fail "SIGTERM: exit $rc"; }
[ ! -e "$T/b.pid" ] || fail "pidfile left behind"
status >"$T/status"
grep -q "name=node-b" "$T/status" && fail "host slot not released: $(cat "$T/status")"
grep -q "^backend " "$T/status" && fail "backend slot not released: $(cat "$T/status")"
grep -q "detached (stopping" "$T/b.log" || fail "handlers did not detach"
log "the client waits; a restart re-adopts backend 0 and the run completes"
start_backend "$T/cbd.ini" "$T/b.pid"
grep -q "re-adopted backend0" "$T/b.log" || fail "backend0 not re-adopted"
n=$(wc -l <"$T/acked")
wait_for 60 acked_over $((n + 100)) ||
	{ cat "$T/stress.log"; fail "stress did not go on after the restart"; }
kill -TERM "$stress"
wait "$stress" || { cat "$T/stress.log"; fail "stress failed across the SIGTERM"; }
"$TC" -t "$TR" -b 0 -H client-b verify-log "$T/acked" ||
	fail "acknowledged writes lost across SIGTERM"

log "SIGHUP adds a backend"
write_config "$T/cbd.ini" "$TR" node-b disk0 "$T/disk0.img" disk1 "$T/disk1.img" "readonly = true"
kill -HUP "$BACKEND_PID"
wait_for 30 sh -c "'$TC' -t '$TR' status | grep -q 'name=disk1 .*ro=1'" ||
	{ cat "$T/b.log"; fail "disk1 not started on SIGHUP"; }
id1=$(status | sed -n 's/^backend \([0-9]*\) .*name=disk1 .*/\1/p')
"$TC" -t "$TR" -b "$id1" --ro -H client-c readzero 0 1M ||
	fail "disk1 not served after SIGHUP"

log "SIGHUP with a bad config keeps the running one"
cp "$T/cbd.ini" "$T/good.ini"
echo "bogus = 1" >>"$T/cbd.ini"
kill -HUP "$BACKEND_PID"
wait_for 30 grep -q "keeping the running configuration" "$T/b.log" ||
	fail "bad config on SIGHUP not reported"
grep -q "cbd.ini:[0-9]*: bogus: unknown key" "$T/b.log" || fail "reload error without file:line: key"
kill -0 "$BACKEND_PID" || fail "cbd-backend died on a bad reload"
[ "$(status | grep -c '^backend ')" = 2 ] || fail "backends changed on a bad reload"

log "SIGHUP removes a backend"
write_config "$T/cbd.ini" "$TR" node-b disk1 "$T/disk1.img" "readonly = true"
kill -HUP "$BACKEND_PID"
wait_for 30 sh -c "! '$TC' -t '$TR' status | grep -q 'name=disk0'" ||
	fail "disk0 not stopped on SIGHUP"
status | grep -q "name=disk1" || fail "disk1 stopped by a SIGHUP that kept it"
"$TC" -t "$TR" -b "$id1" --ro -H client-d readzero 0 64K || fail "disk1 not served any more"

log "SIGINT stops it too"
kill -INT "$BACKEND_PID"
rc=0
wait "$BACKEND_PID" || rc=$?
[ "$rc" = 0 ] || fail "SIGINT: exit $rc"
[ -z "$(status)" ] || fail "slots left after SIGINT: $(status)"

log "--daemon: returns once ready, pidfile names the daemon"
"$B" -c "$T/cbd.ini" --daemon --pidfile "$T/d.pid" || fail "--daemon: exit $?"
[ -s "$T/d.pid" ] || fail "--daemon returned before writing the pidfile"
dpid=$(cat "$T/d.pid")
cleanup_fn "kill $dpid 2>/dev/null"
kill -0 "$dpid" || fail "daemon $dpid not running"
[ "$(ps -o sid= -p "$dpid")" != "$(ps -o sid= -p $$)" ] || fail "daemon still in our session"
status | grep -q "name=disk1" || fail "daemon serves nothing"
kill -TERM "$dpid"
wait_for 30 pid_gone "$dpid" || fail "daemon did not stop on SIGTERM"
[ ! -e "$T/d.pid" ] || fail "daemon left its pidfile"

log "--daemon with a start failure exits 1 and says why"
write_config "$T/bad.ini" "$T/other-transport" node-b disk0 "$T/disk0.img"
sed -i 's/^format = .*/format = never/' "$T/bad.ini"
rc=0
"$B" -c "$T/bad.ini" --daemon --pidfile "$T/e.pid" >"$T/e.log" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "--daemon failing start: exit $rc"
grep -q "not formatted" "$T/e.log" || fail "--daemon failing start: no message on stderr"
[ ! -e "$T/e.pid" ] || fail "--daemon failing start wrote a pidfile"

echo PASS
