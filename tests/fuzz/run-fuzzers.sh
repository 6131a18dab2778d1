#!/bin/sh
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The libpcpu authors
#
# run-fuzzers.sh - build libFuzzer harnesses with ASan and UBSan and run each for a while.
#
# Usage: tests/fuzz/run-fuzzers.sh [SECONDS] [HARNESS...]
#   SECONDS   per harness (default: $FUZZ_SECONDS, else 30)
#   HARNESS   names of tests/fuzz/fuzz_<name>.c (default: every one present)
# Environment:
#   CC                 a clang with libFuzzer (default clang)
#   FUZZ_OUT           build and work directory (default: a fresh temporary one, removed)
#   FUZZ_JOBS          parallel fuzzing jobs per harness (default 1)
#   FUZZ_EXTRA_CFLAGS  added to every build
#   FUZZ_BUILD_DIR     a meson build directory whose pcpu_config.h to use (default: one is
#                      written with every optional feature off)
# Seeds come from tests/fuzz/corpus/<name>/ and are only read; new inputs go to the work
# directory. Crash reproducers are kept in the work directory (kept when a crash occurs).
# Exit status: 0 when every harness built and none crashed, 1 when one crashed, 2 on a
# build or usage error (the other harnesses still run).
set -eu

top=$(cd "$(dirname "$0")/../.." && pwd)
secs=${FUZZ_SECONDS:-30}
case ${1:-} in
[0-9]*) secs=$1; shift ;;
esac
cc=${CC:-clang}
jobs=${FUZZ_JOBS:-1}

if [ $# -eq 0 ]; then
	for f in "$top"/tests/fuzz/fuzz_*.c; do
		[ -e "$f" ] || continue
		n=${f##*/fuzz_}
		set -- "$@" "${n%.c}"
	done
fi
[ $# -gt 0 ] || { echo "run-fuzzers: no harness found" >&2; exit 2; }

if [ -n "${FUZZ_OUT:-}" ]; then
	out=$FUZZ_OUT
	keep=1
else
	out=$(mktemp -d "${TMPDIR:-/tmp}/pcpu-fuzz.XXXXXX")
	keep=0
fi
mkdir -p "$out"

# Library sources include meson's generated pcpu_config.h.
if [ -n "${FUZZ_BUILD_DIR:-}" ] && [ -f "$FUZZ_BUILD_DIR/pcpu_config.h" ]; then
	cp "$FUZZ_BUILD_DIR/pcpu_config.h" "$out/pcpu_config.h"
elif [ ! -f "$out/pcpu_config.h" ]; then
	cat >"$out/pcpu_config.h" <<-CONF
	#define PCPU_HAVE_SDT 0
	#define PCPU_FAULT_INJECT 0
	#define PCPU_DEBUG_CHECKS 0
	#define PCPU_VALGRIND 0
	#define PCPU_VERSION "fuzz"
	CONF
fi

# The sources a harness needs besides itself. The area map is pure; the API harness links
# the whole library.
sources() {
	case $1 in
	area_map) echo "lib/area_map.c" ;;
	api) ls lib/*.c ;;
	*) echo "" ;;
	esac
}

# Flags for those sources: the library's own sources see the hot-path block writable.
cflags() {
	case $1 in
	api) echo "-DPCPU__BUILDING_LIBRARY" ;;
	*) echo "" ;;
	esac
}

libs() {
	case $1 in
	# libdw when the configuration copied from a meson build has it (leak report lines)
	api) echo "-lnuma -lpthread -ldl$(grep -qs 'PCPU_HAVE_LIBDW 1' "$out/pcpu_config.h" &&
		echo " -ldw")" ;;
	*) echo "" ;;
	esac
}

status=0
build_failed=0
cd "$top"
for h in "$@"; do
	src=tests/fuzz/fuzz_$h.c
	[ -f "$src" ] || { echo "run-fuzzers: $src not found" >&2; exit 2; }
	bin=$out/fuzz_$h
	echo "run-fuzzers: building $h"
	# shellcheck disable=SC2046,SC2086
	$cc -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -g -O1 \
		-D_GNU_SOURCE -I include -I lib -I "$out" $(cflags "$h") ${FUZZ_EXTRA_CFLAGS:-} \
		"$src" $(sources "$h") $(libs "$h") -o "$bin" || {
		echo "run-fuzzers: $h does not build" >&2
		build_failed=1
		continue
	}

	work=$out/corpus_$h
	art=$out/artifacts_$h
	mkdir -p "$work" "$art"
	seeds=$top/tests/fuzz/corpus/$h
	[ -d "$seeds" ] || seeds=
	par=
	[ "$jobs" -le 1 ] || par="-jobs=$jobs -workers=$jobs"

	echo "run-fuzzers: running $h for ${secs}s"
	bad=0
	# libFuzzer writes per-job logs to the current directory: run inside the work dir.
	# shellcheck disable=SC2086
	if ! (cd "$out" && "$bin" -max_total_time="$secs" -print_final_stats=1 $par \
		-artifact_prefix="$art/" "$work" $seeds >"$out/$h.log" 2>&1); then
		bad=1
	fi
	[ -z "$par" ] || cat "$out"/fuzz-*.log >>"$out/$h.log" 2>/dev/null || true
	grep -E '^stat::number_of_executed_units|^Done ' "$out/$h.log" || true
	if ls "$art"/crash-* "$art"/leak-* "$art"/timeout-* "$art"/oom-* >/dev/null 2>&1; then
		bad=1
	fi
	if [ $bad -ne 0 ]; then
		echo "run-fuzzers: $h FAILED; log $out/$h.log, inputs in $art" >&2
		tail -n 40 "$out/$h.log" >&2
		status=1
		keep=1
	else
		echo "run-fuzzers: $h ok"
	fi
done

[ $keep -eq 1 ] || rm -rf "$out"
[ $status -ne 0 ] || [ $build_failed -eq 0 ] || status=2
exit $status
