#!/bin/sh
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The libpcpu authors
#
# compile-fail.sh COMPILER LANG INCLUDE_DIR - the type rules of <pcpu/this_cpu.h> hold in
# LANG (c or c++): each snippet below must fail to compile, with the rule's own message on
# a compiler error line (so neither a silent acceptance nor an unrelated error passes).
# As a control, the same snippet on a uint64_t handle must compile cleanly, so that a
# broken setup (include path, compiler) cannot pass for a rule that holds.
# Exit 0 when every case behaves, 1 otherwise, 77 (skip) when COMPILER is not installed.
set -u
cc=$1 lang=$2 inc=$3

command -v "$cc" >/dev/null 2>&1 || { echo "skip: $cc not found"; exit 77; }
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

arith='only integer handles can be added to'
cmp='only integer and pointer handles can be compared exactly'
copy='only integer, pointer and floating-point handles'
failures=0

# compile TYPE STATEMENT: write the snippet, compile it; output in $tmp/out.
compile() {
	cat >"$tmp/snippet.$lang" <<SNIPPET
#include <pcpu.h>
struct two_ints { int a, b; };
void use($1 *p);
void use($1 *p)
{
	$2;
}
SNIPPET
	"$cc" -x "$lang" -std=$std -Wall -Wextra -Werror -pedantic -I "$inc" \
		-c "$tmp/snippet.$lang" -o "$tmp/snippet.o" >"$tmp/out" 2>&1
}

# must_fail TYPE STATEMENT MESSAGE
must_fail() {
	if compile "$1" "$2"; then
		echo "FAIL: '$2' on a $1 handle compiled"
		failures=$((failures + 1))
	elif ! grep -i 'error' "$tmp/out" | grep -qF "$3"; then
		echo "FAIL: '$2' on a $1 handle failed without the rule's message \"$3\":"
		cat "$tmp/out"
		failures=$((failures + 1))
	else
		echo "ok: '$2' on a $1 handle: $3"
	fi
}

# must_build TYPE STATEMENT: the control.
must_build() {
	if compile "$1" "$2"; then
		echo "ok: '$2' on a $1 handle compiles"
	else
		echo "FAIL: control '$2' on a $1 handle does not compile:"
		cat "$tmp/out"
		failures=$((failures + 1))
	fi
}

if [ "$lang" = c ]; then
	std=c11
else
	std=c++11
fi

for op in 'pcpu_this_add(p, 1)' 'pcpu_this_sub(p, 1)' 'pcpu_this_inc(p)' 'pcpu_this_dec(p)' \
	  '(void)pcpu_this_add_return(p, 1)'; do
	must_build uint64_t "$op"
	must_fail double "$op" "$arith"
	must_fail float "$op" "$arith"
	must_fail 'struct two_ints' "$op" "$arith"
	must_fail 'void *' "$op" "$arith"
done
must_build uint64_t '(void)pcpu_this_cmpxchg(p, 1, 2)'
must_fail double '(void)pcpu_this_cmpxchg(p, 1.0, 2.0)' "$cmp"
must_build double '(void)pcpu_this_xchg(p, 1.5)'
must_fail 'struct two_ints' '(void)pcpu_this_read(p)' "$copy"

# PCPU_DEFINE without a name; its control, with a name and a braced initialiser.
printf '#include <pcpu.h>\nstruct two_ints { int a, b; };\n%s;\n' \
	'PCPU_DEFINE(struct two_ints, pair, {1, 2})' >"$tmp/d.$lang"
if ! "$cc" -x "$lang" -std=$std -Wall -Wextra -Werror -pedantic -I "$inc" -c "$tmp/d.$lang" \
	-o "$tmp/d.o" >"$tmp/out" 2>&1; then
	echo "FAIL: control PCPU_DEFINE(struct two_ints, pair, {1, 2}) does not compile:"
	cat "$tmp/out"
	failures=$((failures + 1))
fi
printf '#include <pcpu.h>\nPCPU_DEFINE(int);\n' >"$tmp/d.$lang"
if "$cc" -x "$lang" -std=$std -I "$inc" -c "$tmp/d.$lang" -o "$tmp/d.o" >"$tmp/out" 2>&1; then
	echo "FAIL: PCPU_DEFINE(int) compiled"
	failures=$((failures + 1))
elif ! grep 'error' "$tmp/out" | grep -qF 'a type and a name are needed'; then
	echo "FAIL: PCPU_DEFINE(int) failed without its message:"
	cat "$tmp/out"
	failures=$((failures + 1))
else
	echo "ok: PCPU_DEFINE(int): a type and a name are needed"
fi

# <pcpu/kernel.h> is C only: from C++ one clear #error.
if [ "$lang" != c ]; then
	printf '#include <pcpu/kernel.h>\n' >"$tmp/k.$lang"
	if "$cc" -x "$lang" -I "$inc" -c "$tmp/k.$lang" -o "$tmp/k.o" >"$tmp/out" 2>&1; then
		echo "FAIL: <pcpu/kernel.h> compiled as C++"
		failures=$((failures + 1))
	elif ! grep 'error' "$tmp/out" | grep -qF 'is C only'; then
		echo "FAIL: <pcpu/kernel.h> from C++ without its #error:"
		cat "$tmp/out"
		failures=$((failures + 1))
	else
		echo "ok: <pcpu/kernel.h> from C++: #error, $(grep -c 'error' "$tmp/out") error line(s)"
	fi
fi

echo "$failures failure(s)"
[ "$failures" -eq 0 ]
