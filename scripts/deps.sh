#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install what libpcpu needs on Debian 12, only what is missing. Usage: scripts/deps.sh [extra...]
# Groups: base (build + tests), bench (jemalloc, gnuplot), sanitizers (clang runtime), valgrind,
# trace (bpftrace), numa-vm (qemu for the emulated NUMA tests), cross-aarch64 (the AArch64
# cross compiler, qemu-user and the arm64 multiarch libraries: tools/cross-aarch64.sh),
# aarch64-vm (qemu-system-aarch64 for tools/cross-aarch64.sh --system).
# An arm64 package (name:arm64) makes dpkg learn the arm64 architecture first.
set -euo pipefail

want=(meson ninja-build pkg-config gcc g++ clang libnuma-dev check systemtap-sdt-dev scdoc libjson-c-dev
	libdw-dev)
for g in "$@"; do
	case "$g" in
	bench) want+=(libjemalloc-dev gnuplot-nox) ;;
	sanitizers) want+=(libclang-rt-14-dev llvm) ;;
	valgrind) want+=(valgrind) ;;
	trace) want+=(bpftrace) ;;
	numa-vm) want+=(qemu-system-x86 busybox-static cpio) ;;
	# libc6:arm64 runs the test programs (tests/cross/aarch64.ini says why); the cross
	# libc6-dev links them; python3 counts the results.
	cross-aarch64) want+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user python3
		libc6:arm64 libnuma-dev:arm64 check:arm64 libsubunit-dev:arm64 libjson-c-dev:arm64) ;;
	# The guest's kernel and busybox are fetched by tools/aarch64-vm/run (apt-get download).
	aarch64-vm) want+=(qemu-system-arm cpio) ;;
	*) echo "deps.sh: unknown group $g" >&2; exit 2 ;;
	esac
done

missing=()
for p in "${want[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
if printf '%s\n' "${missing[@]}" | grep -q ':arm64$' &&
   ! dpkg --print-foreign-architectures | grep -qx arm64; then
	echo "deps.sh: adding the arm64 architecture to dpkg" >&2
	$SUDO dpkg --add-architecture arm64
fi
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
