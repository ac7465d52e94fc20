#!/bin/sh
# Every public function and macro has a man page (or a .so alias), every
# page is installed, every alias resolves, and every page renders without
# a groff warning.
set -u

top=${srcdir:-.}
man=$top/docs/man
fail=0

bad() {
	echo "check-man: $*" >&2
	fail=1
}

# Public names: exported symbols, inline functions and macros of the headers.
names=$( {
	sed -n 's/^[[:space:]]*\(mmn_[a-z0-9_]*\);$/\1/p' "$top/libmmn/libmmn.map"
	sed -n 's/^static inline [^(]*[ *]\(mmn_[a-z0-9_]*\)(.*/\1/p' \
		"$top/libmmn/include/mmn/mmn.h"
	sed -n 's/^#define \([Mm][Mm][Nn]_[A-Za-z0-9_]*\).*/\1/p' \
		"$top/libmmn/include/mmn/mmn.h" "$top/libmmn/include/mmn/version.h.in"
} | grep -v '^MMN_MMN_H$\|^MMN_VERSION_H$' | sort -u)

for n in $names; do
	[ -f "$man/$n.3" ] || bad "no page for $n: add docs/man/$n.3 (a page or a .so alias)"
done

for f in "$man"/*.[37]; do
	base=${f##*/}
	grep -q "docs/man/$base" "$top/docs/Makemodule.am" ||
		bad "$base is not in dist_man_MANS in docs/Makemodule.am"
	target=$(sed -n '1s/^\.so man[37]\///p' "$f")
	if [ -n "$target" ]; then
		[ -f "$man/$target" ] || bad "$base: .so target $target does not exist"
		head -1 "$man/$target" | grep -q '^\.so' && bad "$base: $target is itself an alias"
	fi
done

if ! command -v groff >/dev/null 2>&1; then
	echo "check-man: SKIP rendering: groff is not installed" >&2
	[ $fail -eq 0 ] && exit 77
	exit 1
fi

for f in "$man"/*.[37]; do
	head -1 "$f" | grep -q '^\.so' && continue
	out=$(groff -man -ww -z "$f" 2>&1)
	[ -z "$out" ] || bad "${f##*/}: $out"
done
exit $fail
