#!/bin/sh
# Builds tests/litmus-readside.c and the library's protocol code with
# ThreadSanitizer, three times: as they are, and with notifier.c's acquire
# loads, then its release stores, made relaxed (the compiler's memory-order
# macros redefined for that one file). The first must run clean; TSan must
# report the data race on the litmus page in each of the other two. This
# shows the litmus test can fail on any CPU, x86 included.
# Exit 77 (skip) without a compiler that links -fsanitize=thread.
set -u

srcdir=${srcdir:-.}
top=$(cd "$srcdir" && pwd)
build=$(pwd)
cc=${TSAN_CC:-clang}
cflags="-std=gnu11 -g -O1 -fsanitize=thread -DMMN_DEBUG=1 -I$build -I$build/libmmn/include
	-I$top/libmmn/include -I$top/libmmn -I$top/tests"

work=$(mktemp -d) || exit 1
trap 'rm -rf "$work"' EXIT

if ! echo 'int main(void) { return 0; }' |
	$cc -fsanitize=thread -x c - -o "$work/probe" 2>/dev/null || ! "$work/probe"; then
	echo "SKIP: $cc cannot build and run with -fsanitize=thread"
	exit 77
fi
if [ ! -f "$build/config.h" ]; then
	echo "SKIP: run from the build directory (config.h not found)"
	exit 77
fi

for f in bug version itree index; do
	$cc $cflags -c "$top/libmmn/$f.c" -o "$work/$f.o" || exit 1
done
$cc $cflags -c "$top/tests/litmus-readside.c" -o "$work/litmus.o" || exit 1

# run NAME [-D...]: notifier.c built with the flags, linked, run briefly.
run() {
	name=$1
	shift
	$cc $cflags -Wno-builtin-macro-redefined "$@" -c "$top/libmmn/notifier.c" \
		-o "$work/notifier-$name.o" || exit 1
	$cc -fsanitize=thread -o "$work/litmus-$name" "$work/litmus.o" "$work/notifier-$name.o" \
		"$work/bug.o" "$work/version.o" "$work/itree.o" "$work/index.o" -lpthread || exit 1
	TSAN_OPTIONS="halt_on_error=1 exitcode=66" "$work/litmus-$name" 20000 \
		>"$work/$name.log" 2>&1
	status=$?
}

run design
if [ "$status" != 0 ]; then
	echo "FAIL: the litmus test under TSan, real code (exit $status):"
	cat "$work/design.log"
	exit 1
fi
echo "design: $(grep '^litmus-readside:' "$work/design.log"), no race"

for order in ACQUIRE RELEASE; do
	run "relaxed-$order" -U__ATOMIC_$order -D__ATOMIC_$order=__ATOMIC_RELAXED
	if [ "$status" = 0 ] || ! grep -q 'ThreadSanitizer: data race' "$work/relaxed-$order.log" ||
	   ! grep -q 'reader_main' "$work/relaxed-$order.log"; then
		echo "FAIL: with notifier.c's $order made relaxed, TSan saw no race (exit $status):"
		cat "$work/relaxed-$order.log"
		exit 1
	fi
	echo "notifier.c with $order relaxed: caught: $(grep -m1 'SUMMARY' "$work/relaxed-$order.log")"
done
