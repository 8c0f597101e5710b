#!/usr/bin/env bash
# cbd-backend as an operator runs it: --check-config validates a config and
# the files it names without touching anything; --log-file keeps every line
# (time-stamped) also once daemonized; every SIGHUP reload logs its result,
# a bad one that the running configuration stays; without syslog a daemon
# keeps logging to its stderr instead of losing the lines.
source "$(dirname "$0")/../functions.sh"

test_tmpdir
B=$BUILD/cbd-backend
TR=$T/transport
make_image "$T/disk0.img" 32M
make_image "$T/disk1.img" 32M
write_config "$T/good.ini" "$TR" node-b disk0 "$T/disk0.img"

log "--check-config: good config, nothing created"
out=$("$B" -c "$T/good.ini" --check-config 2>&1) || fail "--check-config of a good config: $out"
grep -qF "$T/good.ini: configuration OK: transport $TR, 1 backend" <<<"$out" ||
	fail "unclear: $out"
[ ! -e "$TR" ] || fail "--check-config created the transport"
rc=0
out=$("$B" -c "$T/good.ini" --check-config --format 2>&1) || rc=$?
[ "$rc" = 2 ] || fail "--check-config --format: exit $rc"

log "--check-config: a bad config or a missing file, exit 1 and why"
write_config "$T/bad.ini" "$TR" node-b disk0 "$T/nope.img"
rc=0
out=$("$B" -c "$T/bad.ini" --check-config 2>&1) || rc=$?
[ "$rc" = 1 ] || fail "--check-config of a bad config: exit $rc"
grep -q "bad.ini:10: path: $T/nope.img: No such file or directory" <<<"$out" ||
	fail "unclear: $out"

log "--daemon --log-file: every line, reloads included"
"$B" -c "$T/good.ini" --daemon --pidfile "$T/b.pid" --log-file "$T/b.log" ||
	fail "--daemon --log-file did not start"
pid=$(cat "$T/b.pid")
cleanup_fn "stop_daemon $pid"
grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+ cbd-backend: ready: host0, 1 backends served$' "$T/b.log" ||
	fail "no time-stamped ready line: $(cat "$T/b.log")"
cp "$T/good.ini" "$T/b.ini"
write_config "$T/good.ini" "$TR" node-b disk0 "$T/disk0.img" disk1 "$T/disk1.img"
kill -HUP "$pid"
wait_for 30 grep -q "reload: $T/good.ini: done: 2 backends served (1 started, 0 stopped, 0 failed to start)" "$T/b.log" ||
	fail "no reload result: $(cat "$T/b.log")"
echo "[transport" >>"$T/good.ini"
kill -HUP "$pid"
wait_for 30 grep -q "reload: .*keeping the running configuration" "$T/b.log" ||
	fail "a bad reload was not logged: $(cat "$T/b.log")"
stop_daemon "$pid" || fail "cbd-backend did not stop"
grep -q "cbd-backend: stopped$" "$T/b.log" || fail "no stop line in the log file"

if [ ! -S /dev/log ]; then
	log "--daemon without syslog: the lines go on to stderr"
	"$B" -c "$T/b.ini" --daemon --pidfile "$T/c.pid" 2>"$T/c.err" ||
		fail "--daemon did not start: $(cat "$T/c.err")"
	pid=$(cat "$T/c.pid")
	cleanup_fn "stop_daemon $pid"
	wait_for 30 grep -q "no syslog (/dev/log): logging to stderr" "$T/c.err" ||
		fail "no fallback warning: $(cat "$T/c.err")"
	kill -HUP "$pid"
	wait_for 30 grep -q "reload: .*done: 1 backend served" "$T/c.err" ||
		fail "a reload after daemonizing was lost: $(cat "$T/c.err")"
	stop_daemon "$pid" || fail "cbd-backend did not stop"
else
	echo "(/dev/log exists here: the no-syslog fallback is not exercised)"
fi
echo PASS
