#!/bin/sh
# Checks the protocol model (protocol.pml) exhaustively with spin, in each
# of its configurations: the real design must pass, every state of the
# protocol's processes must be reached by at least one configuration, and
# each deliberately re-introduced bug must be caught.
# Exit 77 (skip) without spin.
set -u

srcdir=${srcdir:-.}
model=$(cd "$srcdir/tests/model" && pwd)/protocol.pml
cc=${PAN_CC:-cc}
configs="CONFIG_RANGE CONFIG_WHOLE CONFIG_CANCEL CONFIG_REGISTER CONFIG_CHURN"
# Each seeded bug, with the configuration that exercises its code.
bugs="BUG_REMOVE_EARLY:CONFIG_RANGE
BUG_SEQ_BEFORE_APPLY:CONFIG_RANGE
BUG_END_NOT_LAST:CONFIG_RANGE
BUG_READ_NO_WAIT:CONFIG_RANGE
BUG_READ_LOAD_ORDER:CONFIG_RANGE
BUG_INSERT_EVEN_NO_STAMP:CONFIG_RANGE
BUG_REMOVE_PENDING_DEFERS:CONFIG_RANGE
BUG_OVERLAP_STAB_START:CONFIG_RANGE
BUG_REFUSE_NO_END:CONFIG_RANGE
BUG_UNDO_SKIPS:CONFIG_WHOLE
BUG_UNREGISTER_NO_WAIT:CONFIG_WHOLE
BUG_RANGE_CANCEL_SKIPS:CONFIG_RANGE
BUG_REGISTER_NO_SKIP:CONFIG_REGISTER
BUG_SKIP_UNLOCKED:CONFIG_REGISTER
BUG_HEARD_AFTER_UNLOCK:CONFIG_REGISTER
BUG_END_QUIET_UNLOCKED:CONFIG_REGISTER
BUG_FAST_END_LAST:CONFIG_RANGE
BUG_QUIET_REFUSE_NO_END:CONFIG_REGISTER"
# States that may stay unreached, one "proctype<TAB>spin's line" each,
# every one with a comment saying why it cannot be reached by design.
# Empty: every process of the model ends, and every branch is taken.
allowed_unreached=""

if ! command -v spin >/dev/null 2>&1; then
	echo "SKIP: spin is not installed (Debian package 'spin')"
	exit 77
fi

work=$(mktemp -d) || exit 1
trap 'rm -rf "$work"' EXIT

# check NAME -OLEVEL -D...: build the verifier and search every state; the
# report goes to $work/NAME.log and the count of errors to $errors. COLLAPSE
# compresses the stored states without losing any (the search stays
# exhaustive); it halves the memory of the larger configuration. Compiling
# pan.c costs more than most searches: -O1 for the full searches of the
# design, -O0 for the seeded bugs, whose searches stop at the first error.
check() {
	name=$1
	opt=$2
	shift 2
	rm -f "$work"/pan "$work"/pan.[bchmpt]*
	if ! (cd "$work" && spin "$@" -a "$model" >spin.log 2>&1); then
		echo "FAIL: spin $* -a: $(cat "$work/spin.log")"
		exit 1
	fi
	if ! (cd "$work" && $cc $opt -w -DSAFETY -DCOLLAPSE -o pan pan.c); then
		echo "FAIL: cannot compile the verifier with $cc"
		exit 1
	fi
	(cd "$work" && ./pan -m100000 -w24 >"$name.log" 2>&1)
	errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$work/$name.log")
	if [ -z "$errors" ]; then
		echo "FAIL: no result from the verifier: $(cat "$work/$name.log")"
		exit 1
	fi
}

# unreached LOG: spin's "unreached in proctype P" lists, one
# "P<TAB>file:line, state N, "statement"" a line.
unreached() {
	awk '/^unreached in proctype / { p = $4; next }
	     /^unreached in init/ { p = "init"; next }
	     /^unreached in / { p = ""; next }
	     /^\t\(/ { next }
	     /^\t/ && p != "" { sub(/^\t/, ""); print p "\t" $0; next }
	     { p = "" }' "$1"
}

for c in $configs; do
	check "$c" -O1 "-D$c"
	if [ "$errors" != 0 ]; then
		echo "FAIL: the model of the real design ($c) has $errors error(s):"
		cat "$work/$c.log"
		exit 1
	fi
	# An error-free search that stopped early (depth, memory) proves nothing.
	if grep -E 'Search not completed|max search depth too small|out of memory' "$work/$c.log"; then
		echo "FAIL: the search of $c did not complete"
		exit 1
	fi
	echo "design, $c: no error in" \
		"$(sed -n 's/^ *\([0-9]*\) states, stored.*/\1/p' "$work/$c.log") states," \
		"$(sed -n 's/^ *\([0-9]*\) transitions.*/\1/p' "$work/$c.log") transitions"
	unreached "$work/$c.log" | sort -u >"$work/$c.unreached"
	# init differs with the configuration: each must reach all of it.
	if grep '^init	' "$work/$c.unreached"; then
		echo "FAIL: $c leaves the states of init above unreached"
		exit 1
	fi
done

# A state of a protocol process counts as reached when any configuration
# reaches it: fail on those that every configuration leaves unreached.
nconfigs=$(echo $configs | wc -w)
cat "$work"/*.unreached | grep -v '^init	' | sort | uniq -c |
	awk -v n="$nconfigs" '$1 == n { sub(/^ *[0-9]+ /, ""); print }' >"$work/never"
if [ -n "$allowed_unreached" ]; then
	printf '%s\n' "$allowed_unreached" | grep -v -x -F -f - "$work/never" >"$work/never.left"
else
	cp "$work/never" "$work/never.left"
fi
if [ -s "$work/never.left" ]; then
	echo "FAIL: no configuration reaches these states of the model:"
	cat "$work/never.left"
	exit 1
fi
echo "every state of the protocol's processes is reached"

for entry in $bugs; do
	bug=${entry%%:*}
	c=${entry#*:}
	check "$bug" -O0 "-D$bug" "-D$c"
	if [ "$errors" = 0 ]; then
		echo "FAIL: the checker did not catch $bug ($c)"
		exit 1
	fi
	echo "$bug: caught in $c: $(grep -m1 -E 'assertion violated|invalid end state' "$work/$bug.log")"
done
