#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install what libpcpu needs on Debian 12, only what is missing. Usage: scripts/deps.sh [extra...]
# Groups: base (build + tests), bench (jemalloc, gnuplot), sanitizers (clang runtime), valgrind,
# trace (bpftrace), numa-vm (qemu for the emulated NUMA tests).
set -euo pipefail

want=(meson ninja-build pkg-config gcc clang libnuma-dev check systemtap-sdt-dev scdoc libjson-c-dev
	libdw-dev)
for g in "$@"; do
	case "$g" in
	bench) want+=(libjemalloc-dev gnuplot-nox) ;;
	sanitizers) want+=(libclang-rt-14-dev llvm) ;;
	valgrind) want+=(valgrind) ;;
	trace) want+=(bpftrace) ;;
	numa-vm) want+=(qemu-system-x86 busybox-static cpio) ;;
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
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
