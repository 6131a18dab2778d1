#!/bin/sh
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The libpcpu authors
#
# bench.sh - build libpcpu with pcpu-bench and run the benchmark (default suite, under two
# minutes on 2 cores). Arguments go to pcpu-bench: tools/bench.sh --only hot, --full,
# --json, --csv, --plot DIR (see pcpu-bench --help). BUILD_DIR picks the build directory
# (default: build-bench in the source tree).
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$src/build-bench}
if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" "$src" --buildtype=debugoptimized -Dbench=true >/dev/null
fi
ninja -C "$build" tools/pcpu-bench >/dev/null
if [ ! -x "$build/tools/pcpu-bench" ]; then
	echo "bench.sh: pcpu-bench was not built (is libjemalloc-dev installed?)" >&2
	exit 1
fi
exec "$build/tools/pcpu-bench" "$@"
