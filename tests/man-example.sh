#!/bin/sh
# SPDX-License-Identifier: MIT
# The EXAMPLE of mmn_sub_register(3) is the code that
# tests/check-example-dma-pauser compiles and runs: same text, line for line
# (the source's leading comment aside).
srcdir=${srcdir:-.}
man="$srcdir/docs/man/mmn_sub_register.3"
src="$srcdir/tests/example-dma-pauser.c"
tmp=${TMPDIR:-/tmp}/man-example.$$
trap 'rm -f "$tmp.man" "$tmp.src"' EXIT

# Between .EX and .EE of the EXAMPLE section, roff escapes undone.
sed -n '/^\.SH EXAMPLE/,/^\.EE/p' "$man" | sed -e '1,/^\.EX/d' -e '/^\.EE/d' \
	-e 's/\\-/-/g' -e 's/\\e/\\/g' -e "s/\\\\(aq/'/g" > "$tmp.man"
# The source after its leading comment and the blank line that follows it.
sed -e '1,/^ \*\//d' "$src" | sed -e '1{/^$/d;}' > "$tmp.src"
if [ ! -s "$tmp.man" ]; then
	echo "man-example: no EXAMPLE in $man" >&2
	exit 1
fi
if ! diff -u "$tmp.src" "$tmp.man"; then
	echo "man-example: the EXAMPLE of $man differs from $src" >&2
	exit 1
fi
echo "man-example: mmn_sub_register(3) EXAMPLE matches $src"
