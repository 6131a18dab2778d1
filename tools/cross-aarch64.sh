#!/bin/sh
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The libpcpu authors
#
# cross-aarch64.sh - cross-build libpcpu for AArch64 and run its test suites under
# qemu-user. Installs what is missing through scripts/deps.sh (groups cross-aarch64 and,
# with --system, aarch64-vm): the cross compiler, qemu-user, and the arm64 multiarch glibc,
# libnuma and Check. Ends with "N passed, N failed"; exits non-zero when a test failed or
# timed out.
#
# Usage: tools/cross-aarch64.sh [--system] [BUILD_DIR] [meson test args...]
#   BUILD_DIR defaults to build-aarch64 beside the source tree's root; it is set up when it
#   does not exist, with the extra meson options in $CROSS_MESON_ARGS (scripts/test-all.sh
#   passes -Dwerror=true).
#   --system   after the build, run the rseq tests on an emulated AArch64 machine instead
#              (tools/aarch64-vm/run: a Debian arm64 kernel under qemu-system-aarch64).
#   With meson test args (a suite, test names...), exactly those run: no exclusions.
#
# qemu-user implements no rseq, so every test must find getcpu mode there
# (tests/api/mode_check.h expects that when rseq is absent); the AArch64 sequences are
# compiled, assembled and linked, and their entry (rseq_cs store, index load, branch to the
# slow path) runs, but their commit paths run only on a kernel: use --system.
#
# Under qemu-user every getcpu() is an emulated system call, about 3 us instead of 10 ns,
# so loops of millions of operations take minutes. PCPU_TEST_SCALE (default 100 here; set
# it to 1 for the native counts) divides the iteration counts of the API tests through
# test_scaled() in tests/api/test_util.h; the stress tests run for a time, shortened with
# -Dstress_seconds=2 below. What the tests check is unchanged.
#
# Left out of the default run, because they cannot work under qemu-user (the same tests run
# in the native suite, ./dev test):
#   suite numa       its guests are x86-64 machines (tools/numa-vm), which cannot run the
#                    aarch64 programs
#   suite trace      USDT probes are disabled here (no arm64 <sys/sdt.h>), and bpftrace
#                    cannot attach to a program emulated by qemu
#   stats, leaks, metrics-server, secure_env
#                    they run a program again (spawn.h, the example's test driver), and
#                    the host kernel cannot execute an arm64 binary without a binfmt_misc
#                    handler for qemu (not registered here; that is host configuration)
#   alloc, alloc-topo-*, domain, front
#                    their ENOMEM cases set RLIMIT_AS, which qemu-user accepts and ignores
#                    (it would limit the emulator), and their abort cases see qemu's own
#                    "uncaught target signal" line after the library's message
#   fork_storm       qemu-user 7.2 aborts ("qemu_plugin_vcpu_init_hook: assertion failed")
#                    when a child forked from a threaded process creates a thread (it
#                    runs, and passes, under tools/aarch64-vm/run)
#   static-noregions the same qemu bug: with no static or reserved region, its variables
#                    are dynamic allocations made by constructors, which create a cache-
#                    coloured chunk and so start the balancer thread before Check forks
#                    each test (the native suite runs it)
#   dlclose          it checks that the balancer thread is gone from /proc/self/task once
#                    dlclose() has joined it; under qemu-user the host thread outlives the
#                    guest thread's exit, so it is still listed just after the join
#   lazy, memory_returned, trim, population
#                    they measure the process's resident memory (Pss, RSS), its mappings
#                    or its system calls, which under qemu-user are the emulator's (its
#                    translated code, its own mappings and syscalls)
set -eu

src=$(cd "$(dirname "$0")/.." && pwd)
system=0
if [ "${1:-}" = --system ]; then
	system=1
	shift
fi
build=${1:-"$src/build-aarch64"}
[ $# -gt 0 ] && shift

# What is missing (the cross compiler, qemu-user, the arm64 multiarch glibc, libnuma and
# Check; qemu-system-arm for --system) comes from the project's dependency script.
groups=cross-aarch64
[ "$system" = 1 ] && groups="$groups aarch64-vm"
# shellcheck disable=SC2086
"$src/scripts/deps.sh" $groups

if [ ! -d "$build" ]; then
	# shellcheck disable=SC2086  # CROSS_MESON_ARGS is a list of options
	meson setup "$build" "$src" --cross-file "$src/tests/cross/aarch64.ini" \
		-Dbench=false -Dusdt=disabled -Dstress_seconds=2 ${CROSS_MESON_ARGS:-}
fi
ninja -C "$build"

if [ "$system" = 1 ]; then
	exec "$src/tools/aarch64-vm/run" "$build"
fi

export PCPU_TEST_SCALE="${PCPU_TEST_SCALE:-100}"
if [ $# -eq 0 ]; then
	# Every test but the ones above (meson test takes names to run, not to skip).
	skip='numa-.*|trace|stats-.*|leaks-.*|metrics-server|alloc-.*|domain-.*|lazy-.*'
	skip="$skip|memory_returned-.*|fork_storm-.*|dlclose-.*|trim-.*|population-.*|secure_env|front-.*"
	skip="$skip|static-noregions"
	# shellcheck disable=SC2046
	set -- $(meson test -C "$build" --list --no-rebuild 2>/dev/null |
		sed -n 's|^.* / ||p' | grep -Ev "^($skip)\$")
	[ $# -gt 0 ] || { echo "cross-aarch64: no tests found in $build" >&2; exit 1; }
	all=$(meson test -C "$build" --list --no-rebuild 2>/dev/null | grep -c ' / ')
	echo "cross-aarch64: running $# tests; $((all - $#)) left out (see the header of $0)"
fi

start=$(date +%s)
rc=0
# Timeouts are stretched for a loaded machine: qemu-user is slow, and the CPU-bound tests
# run two at a time on two cores.
meson test -C "$build" --no-rebuild --print-errorlogs --timeout-multiplier 4 "$@" || rc=$?
wall=$(($(date +%s) - start))

# The slowest tests and the counts, from meson's log of this run.
python3 - "$build/meson-logs/testlog.json" "$wall" <<'EOF' || rc=1
import json, sys
res = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("cross-aarch64: slowest tests:")
for r in sorted(res, key=lambda r: -r["duration"])[:8]:
    print("  %7.1f s  %s (%s)" % (r["duration"], r["name"], r["result"]))
ok = sum(r["result"] in ("OK", "EXPECTEDFAIL") for r in res)
skip = sum(r["result"] == "SKIP" for r in res)
bad = len(res) - ok - skip
print("cross-aarch64: %d passed, %d failed, %d skipped in %s s (qemu-user, PCPU_TEST_SCALE=%s)"
      % (ok, bad, skip, sys.argv[2], __import__("os").environ["PCPU_TEST_SCALE"]))
sys.exit(1 if bad else 0)
EOF
exit "$rc"
