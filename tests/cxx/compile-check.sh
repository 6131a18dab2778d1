#!/bin/sh
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The libpcpu authors
#
# compile-check.sh COMPILER LANG STD INCLUDE_DIR SOURCE [FLAG...] - compile SOURCE (headers.c)
# as LANG (c or c++) in standard STD, after <pcpu.h> and every other public header found in
# INCLUDE_DIR/pcpu/*.h at run time (so a header added later is checked too; <pcpu/kernel.h>
# only in C, where it is supported), at -O0 and -O2, with -Wall -Wextra -Werror -pedantic.
# FLAGs are added to every compilation: -DPCPU_NO_INLINE_ASM for the out-of-line primitives,
# --target=aarch64-linux-gnu (Clang) for the AArch64 sequences.
# Exit 0 when every compilation is clean, 1 (with the compiler's output) otherwise,
# 77 (skip) when COMPILER is not installed or cannot build for FLAGs' target at all.
set -u
cc=$1 lang=$2 std=$3 inc=$4 src=$5
shift 5
extra="$*"

command -v "$cc" >/dev/null 2>&1 || { echo "skip: $cc not found"; exit 77; }
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

# A cross target needs that target's C library headers: without them, skip.
printf '#include <stdint.h>\n#include <pthread.h>\nint x;\n' >"$tmp/probe.$lang"
# shellcheck disable=SC2086 # $extra is a list of flags
if ! "$cc" $extra -x "$lang" -c "$tmp/probe.$lang" -o "$tmp/probe.o" >/dev/null 2>&1; then
	echo "skip: $cc $extra cannot compile a trivial $lang program here"
	exit 77
fi

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
	# shellcheck disable=SC2086
	set -- "$cc" $extra -x "$lang" "-std=$std" -Wall -Wextra -Werror -pedantic "$opt" \
		-I "$inc" -c "$tmp/check.$lang" -o "$tmp/check.o"
	echo "$*"
	if ! "$@"; then
		status=1
	fi
done
exit $status
