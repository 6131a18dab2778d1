#!/bin/sh
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The libpcpu authors
#
# cross-aarch64.sh - cross-build libpcpu for AArch64 and run its test suites under
# qemu-user. Installs what is missing (Debian): the cross compiler, qemu-user, and the
# arm64 multiarch libnuma and Check. qemu-user implements no rseq, so every test must find
# getcpu mode there (tests/api/mode_check.h expects that when rseq is absent); the AArch64
# sequences are compiled, assembled and linked, and their entry (rseq_cs store, index
# load, branch to the slow path) runs, but their commit paths are only run on real
# AArch64 hardware (or a full-system emulator with a Linux guest).
#
# Usage: tools/cross-aarch64.sh [BUILD_DIR] [meson test args...]
#   BUILD_DIR defaults to build-aarch64 beside the source tree's root.
set -eu

src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-"$src/build-aarch64"}
[ $# -gt 0 ] && shift

need=""
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || need="$need gcc-aarch64-linux-gnu"
command -v qemu-aarch64 >/dev/null 2>&1 || need="$need qemu-user"
[ -e /usr/aarch64-linux-gnu/lib/libc.so.6 ] || need="$need libc6-dev-arm64-cross"
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
	dpkg --add-architecture arm64
	apt_update=1
fi
dpkg -s libnuma-dev:arm64 >/dev/null 2>&1 || need="$need libnuma-dev:arm64"
dpkg -s check:arm64 >/dev/null 2>&1 || need="$need check:arm64 libsubunit-dev:arm64"
if [ -n "$need" ]; then
	if [ -n "${apt_update:-}" ] || [ ! -d /var/lib/apt/lists ] ||
	   ! ls /var/lib/apt/lists/*arm64_Packages >/dev/null 2>&1; then
		apt-get update
	fi
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $need
fi

if [ ! -d "$build" ]; then
	meson setup "$build" "$src" --cross-file "$src/tests/cross/aarch64.ini" \
		-Dbench=false -Dusdt=disabled -Dstress_seconds=2
fi
ninja -C "$build"
# qemu-user is slow: the stress tests run 2 s each (stress_seconds above), and timeouts
# are stretched.
meson test -C "$build" --print-errorlogs --timeout-multiplier 4 "$@"
