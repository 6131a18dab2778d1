#!/bin/sh
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The libpcpu authors
#
# bench.sh - build libpcpu with pcpu-bench and run the benchmark (default suite: a few
# minutes on 2 cores). Arguments go to pcpu-bench: tools/bench.sh --only alloc, --full,
# --json, --csv, --markdown, --plot DIR (see pcpu-bench --help). BUILD_DIR picks the build
# directory (default: build-bench in the source tree).
#
# librseq, the closest peer, gets its columns when its pinned snapshot lies beside the project
# (../shared/peers/librseq/install.sh, or the directory LIBRSEQ_PEER names): it is built into
# BUILD_DIR/librseq and meson finds it there through pkg_config_path. Only the bench links it,
# never the library. Without it the bench says that it skipped librseq.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$src/build-bench}
peer=${LIBRSEQ_PEER:-$src/../shared/peers/librseq}
pcpath=
if [ -f "$peer/install.sh" ]; then
	prefix=$build/librseq
	pc=$prefix/lib/pkgconfig/librseq.pc
	# Built once, and again when the snapshot changes.
	if [ ! -f "$pc" ] || [ "$peer/SOURCE_COMMIT" -nt "$pc" ]; then
		mkdir -p "$build"
		if ! bash "$peer/install.sh" "$prefix" >&2; then
			echo "bench.sh: building librseq from $peer failed: the librseq columns are" \
				"skipped" >&2
			rm -f "$pc"
		fi
	fi
	[ -f "$pc" ] && pcpath=$prefix/lib/pkgconfig
else
	echo "bench.sh: no librseq snapshot at $peer (set LIBRSEQ_PEER to its directory):" \
		"the librseq columns are skipped" >&2
fi
if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" "$src" --buildtype=debugoptimized -Dbench=true \
		${pcpath:+"-Dpkg_config_path=$pcpath"} >/dev/null
elif [ -n "$pcpath" ] && ! grep -q PCPU_BENCH_LIBRSEQ "$build/build.ninja"; then
	# A build directory set up before librseq was there: let meson look again.
	meson configure "$build" "-Dpkg_config_path=$pcpath" >/dev/null
fi
ninja -C "$build" tools/pcpu-bench >/dev/null
if [ ! -x "$build/tools/pcpu-bench" ]; then
	echo "bench.sh: pcpu-bench was not built (is libjemalloc-dev installed?)" >&2
	exit 1
fi
exec "$build/tools/pcpu-bench" "$@"
