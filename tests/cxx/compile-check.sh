#!/bin/sh
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The libpcpu authors
#
# compile-check.sh COMPILER LANG STD INCLUDE_DIR SOURCE - compile SOURCE (tests/cxx/headers.c)
# as LANG (c or c++) in standard STD, after <pcpu.h> and every other public header found in
# INCLUDE_DIR/pcpu/*.h at run time (so a header added later is checked too; <pcpu/kernel.h>
# only in C, where it is supported), at -O0 and -O2, with -Wall -Wextra -Werror -pedantic.
# Exit 0 when every compilation is clean, 1 (with the compiler's output) otherwise,
# 77 (skip) when COMPILER is not installed.
set -u
cc=$1 lang=$2 std=$3 inc=$4 src=$5

command -v "$cc" >/dev/null 2>&1 || { echo "skip: $cc not found"; exit 77; }
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

{
	echo '#include <pcpu.h>'
	for h in "$inc"/pcpu/*.h; do
		name=$(basename "$h")
		if [ "$name" = kernel.h ] && [ "$lang" != c ]; then
			continue
		fi
		echo "#include <pcpu/$name>"
	done
	echo "#include \"$src\""
} >"$tmp/check.$lang"
echo "headers checked:"
grep '^#include <' "$tmp/check.$lang"

status=0
for opt in -O0 -O2; do
	set -- "$cc" -x "$lang" "-std=$std" -Wall -Wextra -Werror -pedantic "$opt" \
		-I "$inc" -c "$tmp/check.$lang" -o "$tmp/check.o"
	echo "$*"
	if ! "$@"; then
		status=1
	fi
done
exit $status
