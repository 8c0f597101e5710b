#!/usr/bin/env bash
# make install into a staging root (DESTDIR) puts the programs, the man
# pages, the example config and the systemd units where they belong, the
# units name the programs where this install put them, and make uninstall
# removes exactly that again.
source "$(dirname "$0")/../functions.sh"
requires pod2man
test_tmpdir
SRC=$(cd "$(dirname "$0")/../.." && pwd)
D=$T/root
mk() { make -C "$SRC" --no-print-directory BUILD="$BUILD" DESTDIR="$D" PREFIX=/opt/cbd "$@"; }

log "make install DESTDIR=... PREFIX=/opt/cbd"
mk install >"$T/install.log" 2>&1 || { cat "$T/install.log"; fail "make install"; }
for f in bin/cbdfs bin/cbd-status bin/cbd-admin bin/cbd-bench sbin/cbd-backend; do
	[ -x "$D/opt/cbd/$f" ] || fail "$f not installed"
done
[ ! -e "$D/opt/cbd/bin/cbd-testclient" ] || fail "the test client was installed"
[ -f "$D/etc/cbd/cbd.ini.example" ] || fail "no cbd.ini.example"
for u in cbd-backend.service cbdfs@.service; do
	[ -f "$D/opt/cbd/lib/systemd/system/$u" ] || fail "unit $u not installed"
done
grep -q '^Type=notify' "$D/opt/cbd/lib/systemd/system/cbd-backend.service" ||
	fail "cbd-backend.service is not Type=notify"
grep -q '^ExecStart=/opt/cbd/sbin/cbd-backend ' "$D/opt/cbd/lib/systemd/system/cbd-backend.service" ||
	fail "cbd-backend.service does not run the installed program"
grep -q '^ExecStart=/opt/cbd/bin/cbdfs ' "$D/opt/cbd/lib/systemd/system/cbdfs@.service" ||
	fail "cbdfs@.service does not run the installed program"
! grep -rq '@[A-Z]*DIR@' "$D/opt/cbd/lib/systemd/system" || fail "a unit kept a placeholder"
if command -v systemd-analyze >/dev/null; then
	systemd-analyze verify --man=no "$D/opt/cbd/lib/systemd/system/cbd-backend.service" \
		>"$T/verify.log" 2>&1 || echo "(systemd-analyze: $(head -3 "$T/verify.log"))"
fi
for m in man1/cbdfs.1 man1/cbd-status.1 man1/cbd-bench.1 man8/cbd-backend.8 \
	 man8/cbd-admin.8 man5/cbd.ini.5; do
	[ -s "$D/opt/cbd/share/man/$m" ] || fail "man page $m not installed"
done

log "make uninstall removes exactly that"
mk uninstall >"$T/uninstall.log" 2>&1 || { cat "$T/uninstall.log"; fail "make uninstall"; }
left=$(find "$D" -type f)
[ -z "$left" ] || fail "left after uninstall: $left"
echo PASS
