#!/usr/bin/env bash
# One command-line style for the five programs (cbd-backend, cbdfs,
# cbd-status, cbd-admin, cbd-bench): an unknown option, a missing
# argument, a bad value and an unexpected argument each give exit 2, the
# line "PROG: message" and then "Try 'PROG --help'." on stderr, and
# nothing on stdout; --version prints "PROG VERSION"; --help goes to
# stdout, exit 0, and lists --help and --version.  Nothing is started.
source "$(dirname "$0")/../functions.sh"
test_tmpdir

# usage_error PROG REGEX ARGS...
usage_error() {
	local prog=$1 re=$2 rc=0
	shift 2
	timeout 60 "$BUILD/$prog" "$@" >"$T/out" 2>"$T/err" </dev/null || rc=$?
	[ "$rc" = 2 ] || fail "$prog $*: exit $rc, want 2 ($(cat "$T/err"))"
	[ ! -s "$T/out" ] || fail "$prog $*: wrote to stdout: $(cat "$T/out")"
	[ "$(wc -l <"$T/err")" = 2 ] || fail "$prog $*: not two lines: $(cat "$T/err")"
	head -n 1 "$T/err" | grep -qE "^$prog: $re\$" ||
		fail "$prog $*: '$(head -n 1 "$T/err")' is not '$prog: $re'"
	[ "$(tail -n 1 "$T/err")" = "Try '$prog --help'." ] ||
		fail "$prog $*: no --help hint: $(cat "$T/err")"
}

log "--help and --version"
for prog in cbd-backend cbdfs cbd-status cbd-admin cbd-bench; do
	"$BUILD/$prog" --version >"$T/out" 2>"$T/err" || fail "$prog --version"
	head -n 1 "$T/out" | grep -qE "^$prog [0-9]+\.[0-9]+\.[0-9]+\$" ||
		fail "$prog --version: $(head -n 1 "$T/out")"
	"$BUILD/$prog" -V >"$T/v" && head -n 1 "$T/v" | grep -qE "^$prog [0-9]" || fail "$prog -V"
	"$BUILD/$prog" --help >"$T/out" 2>"$T/err" || fail "$prog --help: exit $?"
	[ ! -s "$T/err" ] || fail "$prog --help wrote to stderr: $(cat "$T/err")"
	grep -qiE "^usage: $prog " "$T/out" || fail "$prog --help: $(head -n 2 "$T/out")"
	grep -q -- "--help" "$T/out" && grep -q -- "--version" "$T/out" ||
		fail "$prog --help lacks --help or --version"
	"$BUILD/$prog" -h >"$T/h" && cmp -s "$T/h" "$T/out" || fail "$prog -h is not --help"
done

log "unknown options"
for prog in cbd-backend cbdfs cbd-status cbd-admin cbd-bench; do
	usage_error "$prog" "unknown option --bogus" --bogus /x
	usage_error "$prog" "unknown option -Z" -Z /x
done
usage_error cbd-status "unknown option --bogus" --bogus=3

log "missing arguments"
usage_error cbd-backend "option -c needs an argument" -c
usage_error cbd-backend "option --config needs an argument" --config
usage_error cbd-status "option -t needs an argument" -t
usage_error cbd-status "option --window needs an argument" --window
usage_error cbd-admin "option --transport needs an argument" --transport
usage_error cbd-bench "option -q needs an argument" -q
usage_error cbdfs "no mountpoint given" -o "transport=$T/x"

log "bad values"
usage_error cbd-status "--window: .*" -t "$T/x" --window abc
usage_error cbd-status "--watch: .*" -t "$T/x" --watch 0
usage_error cbd-admin "--size: bad size 'x'" -t "$T/x" --size x format
usage_error cbd-bench "--qd: bad value '0'" -q 0
usage_error cbdfs "queues=0: .*" "$T" -o "transport=$T/x,queues=0"

log "unexpected arguments and conflicts"
usage_error cbd-backend "unexpected argument 'extra'" -c "$T/x.ini" extra
usage_error cbd-status "unexpected argument 'extra'" -t "$T/x" extra
usage_error cbd-admin "format takes no argument" -t "$T/x" format extra
usage_error cbd-bench "unexpected argument 'extra'" extra
usage_error cbdfs "too many arguments: .*" a b c
usage_error cbd-backend "--daemon and --foreground exclude each other" --daemon --foreground
usage_error cbd-status "-t and -c exclude each other" -t "$T/x" -c "$T/y"
usage_error cbd-admin "no command given" -t "$T/x"
usage_error cbd-admin "unknown command 'frobnicate'" -t "$T/x" frobnicate

echo "PASS"
