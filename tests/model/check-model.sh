#!/bin/sh
# Checks the protocol model (protocol.pml) exhaustively with spin: the real
# design must pass, and each deliberately re-introduced bug must be caught.
# Exit 77 (skip) without spin.
set -u

srcdir=${srcdir:-.}
model=$(cd "$srcdir/tests/model" && pwd)/protocol.pml
cc=${PAN_CC:-cc}
bugs="BUG_REMOVE_EARLY BUG_SEQ_BEFORE_APPLY BUG_READ_NO_WAIT BUG_INSERT_NO_STAMP"

if ! command -v spin >/dev/null 2>&1; then
	echo "SKIP: spin is not installed (Debian package 'spin')"
	exit 77
fi

work=$(mktemp -d) || exit 1
trap 'rm -rf "$work"' EXIT

# check [-DBUG]: build the verifier and search every state; sets $errors.
check() {
	rm -f "$work"/pan*
	if ! (cd "$work" && spin "$@" -a "$model" >spin.log 2>&1); then
		echo "FAIL: spin $* -a: $(cat "$work/spin.log")"
		exit 1
	fi
	if ! (cd "$work" && $cc -O2 -w -DSAFETY -o pan pan.c); then
		echo "FAIL: cannot compile the verifier with $cc"
		exit 1
	fi
	(cd "$work" && ./pan -m100000 >pan.log 2>&1)
	errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$work/pan.log")
	if [ -z "$errors" ]; then
		echo "FAIL: no result from the verifier: $(cat "$work/pan.log")"
		exit 1
	fi
}

check
if [ "$errors" != 0 ]; then
	echo "FAIL: the model of the real design has $errors error(s):"
	cat "$work/pan.log"
	exit 1
fi
echo "design: no error in $(sed -n 's/^ *\([0-9]*\) states, stored.*/\1/p' "$work/pan.log") states," \
	"$(sed -n 's/^ *\([0-9]*\) transitions.*/\1/p' "$work/pan.log") transitions"

for bug in $bugs; do
	check "-D$bug"
	if [ "$errors" = 0 ]; then
		echo "FAIL: the checker did not catch $bug"
		exit 1
	fi
	echo "$bug: caught: $(grep -m1 -E 'assertion violated|invalid end state' "$work/pan.log")"
done
