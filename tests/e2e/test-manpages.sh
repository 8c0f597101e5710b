#!/usr/bin/env bash
# The man pages (docs/*.pod) say what the programs do: every option that a
# program's --help lists (long, short, and cbdfs's -o NAME, libfuse's
# included) is documented in its page as B<...>, and the page documents
# as B<...> no option the program lacks; cbd.ini.5.pod has an "=item
# B<key>" in [transport] for every key of tkeys[] in common/config.c and
# in [backend NAME] for every key of bkeys[], and no other; every page
# has its sections, passes podchecker and pod2man --errors=die (and groff
# -ww, when there); docs/build.mk lists every page.  No root needed.
source "$(dirname "$0")/../functions.sh"
requires pod2man
command -v podchecker >/dev/null || fail "pod2man without podchecker (both come with perl)"
test_tmpdir
SRC=$(cd "$(dirname "$0")/../.." && pwd)
DOCS=$SRC/docs
PROGS=(cbd-backend cbdfs cbd-status cbd-admin cbd-bench)

# help_options PROG: the options PROG --help lists, one per line, as
# "--long", "-s" or "-o NAME".  An option line starts with blanks and a
# dash; its leading tokens are options and their arguments (FILE, PATH,
# N, ...; after -o the option's name), then the description follows.
help_options() {
	"$BUILD/$1" --help | awk '
	/^[ \t]+-/ {
		for (i = 1; i <= NF; i++) {
			t = $i
			sub(/,$/, "", t)
			if (t == "-o" && i < NF) {
				n = $(++i)
				sub(/=.*/, "", n)
				print "-o " n
			} else if (t ~ /^--?[A-Za-z0-9]/) {
				sub(/=.*/, "", t)
				print t
			} else if (t !~ /^[A-Z][A-Z_]*$/) {
				break
			}
		}
	}' | sort -u
}

# pod_options POD: the options a page sets in bold, in the same form.
pod_options() {
	{
		grep -oE 'B<--?[A-Za-z0-9][A-Za-z0-9-]*[>=]' "$1" || true
		grep -oE 'B<-o [A-Za-z0-9_]+' "$1" || true
	} | sed -E 's/^B<//; s/[>=]$//' | sort -u
}

# pod_has POD OPTION: the page sets OPTION in bold (B<opt>, B<opt=...>).
pod_has() {
	grep -qE "B<$(sed 's/[.[\*^$]/\\&/g' <<<"$2")[>=]" "$1"
}

# page_of PROG: its one POD source, docs/PROG.N.pod.
page_of() {
	local pages=("$DOCS/$1".[0-9].pod)
	[ ${#pages[@]} = 1 ] && [ -f "${pages[0]}" ] || fail "$1: no single docs/$1.N.pod"
	echo "${pages[0]}"
}

log "every option of --help is in the page, and the page invents none"
for prog in "${PROGS[@]}"; do
	[ -x "$BUILD/$prog" ] || fail "$BUILD/$prog not built"
	pod=$(page_of "$prog")
	help_options "$prog" >"$T/$prog.help"
	[ "$(wc -l <"$T/$prog.help")" -ge 4 ] ||
		fail "$prog --help: found only $(wc -l <"$T/$prog.help") options: $(cat "$T/$prog.help")"
	missing=()
	while read -r opt; do
		pod_has "$pod" "$opt" || missing+=("$opt")
	done <"$T/$prog.help"
	[ ${#missing[@]} = 0 ] ||
		fail "$(basename "$pod") does not document: ${missing[*]}"
	extra=$(pod_options "$pod" | comm -23 - "$T/$prog.help")
	[ -z "$extra" ] || fail "$(basename "$pod") documents options $prog lacks: $(echo $extra)"
	echo "$prog: $(wc -l <"$T/$prog.help") options documented"
done

log "cbd.ini.5: every key of common/config.c, in its section"
# config_keys ARRAY: the strings of tkeys[] or bkeys[].
config_keys() {
	sed -n "/^static const char \*const $1\[/,/^};/p" "$SRC/common/config.c" |
		grep -oE '"[A-Za-z0-9_]+"' | tr -d '"' | sort -u
}
# section_items HEADING: the "=item B<key>" names of that =head1 section.
section_items() {
	awk -v h="=head1 $1" '/^=head1 / { on = ($0 == h) } on && /^=item B</' \
		"$DOCS/cbd.ini.5.pod" | sed -E 's/^=item B<([^>]*)>.*/\1/' | sort -u
}
for pair in "tkeys:[transport]" "bkeys:[backend NAME]"; do
	arr=${pair%%:*} sec=${pair#*:}
	config_keys "$arr" >"$T/$arr.code"
	[ "$(wc -l <"$T/$arr.code")" -ge 5 ] || fail "cannot read $arr[] from common/config.c"
	section_items "$sec" >"$T/$arr.pod"
	missing=$(comm -23 "$T/$arr.code" "$T/$arr.pod")
	[ -z "$missing" ] || fail "cbd.ini.5.pod, $sec: keys not documented: $(echo $missing)"
	extra=$(comm -13 "$T/$arr.code" "$T/$arr.pod")
	[ -z "$extra" ] || fail "cbd.ini.5.pod, $sec: keys config.c does not accept: $(echo $extra)"
	echo "$sec: $(echo $(cat "$T/$arr.code"))"
done

log "podchecker, pod2man, sections"
for pod in "$DOCS"/*.pod; do
	page=$(basename "$pod" .pod)
	name=${page%.*} section=${page##*.}
	podchecker "$pod" >"$T/$page.check" 2>&1 || {
		cat "$T/$page.check"
		fail "podchecker: $page"
	}
	grep -i 'warning' "$T/$page.check" || true	# shown, not fatal
	pod2man --errors=die --section="$section" --center=cbd --release=cbd \
		--name="$name" "$pod" "$T/$page" 2>"$T/$page.err" || {
		cat "$T/$page.err"
		fail "pod2man: $page"
	}
	[ ! -s "$T/$page.err" ] || { cat "$T/$page.err"; fail "pod2man $page: messages"; }
	grep -q "^\.TH \"*$name\"* \"*$section\"* " "$T/$page" || fail "$page: no .TH $name $section"
	if command -v groff >/dev/null; then
		groff -man -Tutf8 -ww -z "$T/$page" 2>"$T/$page.groff"
		[ ! -s "$T/$page.groff" ] || { cat "$T/$page.groff"; fail "groff: $page"; }
	fi
	need=("NAME" "SYNOPSIS" "DESCRIPTION" "EXAMPLES" "SEE ALSO")
	[ "$section" = 5 ] || need+=("OPTIONS" "EXIT STATUS")
	for h in "${need[@]}"; do
		grep -qx "=head1 $h" "$pod" || fail "$page: no =head1 $h"
	done
	# NAME says "name - what", as whatis(1) and apropos(1) read it
	awk '/^=head1 NAME/ { getline; getline; print; exit }' "$pod" |
		grep -qE "^$(sed 's/\./\\./g' <<<"$name") - ." || fail "$page: NAME is not '$name - ...'"
done

log "docs/build.mk lists every page"
listed=$(sed -n '/^MAN_PAGES :=/,/[^\\]$/p' "$DOCS/build.mk" |
	sed 's/^MAN_PAGES :=//; s/\\$//' | tr -s ' \t' '\n' | sed '/^$/d' | sort)
present=$(cd "$DOCS" && ls -- *.pod | sed 's/\.pod$//' | sort)
[ "$listed" = "$present" ] ||
	fail "MAN_PAGES in docs/build.mk: $(echo $listed); pages: $(echo $present)"
echo PASS
