#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The libpcpu authors
#
# The whole test suite (./dev test, and CI through .ci/run). Steps, each in a fresh build
# directory (removed and set up again, so no stale state carries over):
#   gcc       gcc build (-Werror, fault injection on), every suite         build/
#   clang     clang build (-Werror), every suite but numa                   build-clang/
#   asan      clang ASan + UBSan build, every suite but numa                build-asan/
#   tsan      clang TSan build, suite 'tsan' only                           build-tsan/
#   valgrind  memcheck over suite 'valgrind' (single-threaded enough), gcc build/
#   fuzz      each libFuzzer harness for FUZZ_SECONDS (tests/fuzz/run-fuzzers.sh)
#   aarch64   AArch64 cross build (gcc), its suites under qemu-user         build-aarch64/
#             (tools/cross-aarch64.sh: getcpu mode only, qemu-user has no rseq)
#   aarch64-vm  the rseq tests on an emulated AArch64 machine, every CPU mode (the same
#             build; tools/cross-aarch64.sh --system, tools/aarch64-vm/run)
# Every build turns warnings into errors (-Dwerror=true): the project's default is off, for
# packagers whose newer compilers warn where ours do not.
#
# What each sanitizer leaves out, and why (the meson.build files tag the suites):
#   tsan      only suite 'tsan': the hot path, counters, the storm/churn/mixed stress tests,
#             the fuzz corpora. Left out: tests that fork a threaded process (fork_storm:
#             TSan's runtime does not support fork with threads), expect a raw SIGSEGV or
#             set RLIMIT_AS (alloc: TSan owns both), or measure RSS / make a million
#             allocations (lazy, bigtopo: shadow memory). rseq itself is invisible to TSan;
#             <pcpu/this_cpu.h> annotates every this-CPU access as the relaxed atomic it is.
#   valgrind  only suite 'valgrind': memcheck serialises threads and runs the stress tests
#             far too slowly to mean anything within the time budget.
#   asan      everything but numa (qemu guests run their own kernel; nothing to check).
#             handle_segv=0: tests that dereference a handle on purpose expect the SIGSEGV.
# In the clang, sanitizer and AArch64 (qemu-user) builds the area map's model-checking unit
# test runs a shorter random walk (PCPU_AM_OPS, PCPU_AM_DEPTH): the gcc build runs it in full.
#
# Usage: scripts/test-all.sh [STEP]   run every step, or just STEP
# Environment: FUZZ_SECONDS (per harness, default 20), STRESS_SECONDS (passed to meson as
# stress_seconds, default 3), JOBS (parallel tests, default: CPU count).
# Output: a line per step with its duration, a summary, and as the last line
# "N passed, N failed" (tests across all steps; a step that fails to build or run counts as
# one failed test). Exit status: 0 when nothing failed, else 1.
set -uo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
STRESS_SECONDS=${STRESS_SECONDS:-3}
JOBS=${JOBS:-$(nproc)}
export FUZZ_SECONDS
only=${1:-}
start_all=$(date +%s)
logdir=test-logs
rm -rf "$logdir"
mkdir -p "$logdir"

groups=(sanitizers valgrind cross-aarch64 aarch64-vm)
[ -x tools/numa-vm/setup ] && groups+=(numa-vm)
scripts/deps.sh "${groups[@]}" || { echo "test-all: could not install dependencies" >&2; exit 1; }
# bpftrace for the USDT test: best effort (the test skips, saying why, without it), and the
# tracefs mount uprobes need, which a fresh machine may not have.
scripts/deps.sh trace >/dev/null 2>&1 || echo "test-all: bpftrace not installed; the trace test will skip" >&2
if [ "$(id -u)" -eq 0 ] && [ -d /sys/kernel/tracing ] && ! mountpoint -q /sys/kernel/tracing; then
	mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
fi
if [ -x tools/numa-vm/setup ] && { [ -z "$only" ] || [ "$only" = gcc ]; }; then
	tools/numa-vm/setup >"$logdir/numa-vm-setup.log" 2>&1 ||
		echo "test-all: numa-vm setup failed; NUMA tests will skip" >&2
fi

tests_passed=0
tests_failed=0
summary=()

# Add the counts of a meson test log (its closing "Ok: / Fail: ..." block).
count_meson() { # log
	local ok fail timeout upass
	ok=$(awk '/^Ok:/ {print $2}' "$1" | tail -1)
	fail=$(awk '/^Fail:/ {print $2}' "$1" | tail -1)
	timeout=$(awk '/^Timeout:/ {print $2}' "$1" | tail -1)
	upass=$(awk '/^Unexpected Pass:/ {print $3}' "$1" | tail -1)
	step_passed=${ok:-0}
	step_failed=$(( ${fail:-0} + ${timeout:-0} + ${upass:-0} ))
}

step() { # name command...
	local name=$1 t0 rc dt
	shift
	if [ -n "$only" ] && [ "$only" != "$name" ]; then
		return 0
	fi
	echo "=== $name: started $(date +%T)"
	step_passed=0
	step_failed=0
	t0=$(date +%s)
	"$@" >"$logdir/$name.log" 2>&1
	rc=$?
	dt=$(( $(date +%s) - t0 ))
	# A step that failed without failing any test (a build error, a crashed runner).
	if [ $rc -ne 0 ] && [ "$step_failed" -eq 0 ]; then
		step_failed=1
	fi
	tests_passed=$((tests_passed + step_passed))
	tests_failed=$((tests_failed + step_failed))
	if [ $rc -eq 0 ]; then
		summary+=("$(printf '%-10s ok      %4ds  %d passed' "$name" "$dt" "$step_passed")")
		echo "=== $name: ok (${dt}s, $step_passed passed)"
	else
		summary+=("$(printf '%-10s FAILED  %4ds  %d passed, %d failed  (log: %s)' "$name" "$dt" \
			"$step_passed" "$step_failed" "$logdir/$name.log")")
		echo "=== $name: FAILED (${dt}s, $step_passed passed, $step_failed failed); last lines of $logdir/$name.log:"
		grep -E '^ *[0-9]+/[0-9]+ .*(FAIL|TIMEOUT)|ERROR|error:|FAILED' "$logdir/$name.log" | head -40
		# Why each failed test failed: its Check and sanitizer lines (meson's error logs).
		awk '/^>>> / { n = 0; print "--- " substr($0, 1, 160); next }
		     /:[0-9]+:[EF]:|SUMMARY:|ERROR:|Assertion|[Tt]imed out|Early exit/ {
			if (n++ < 12) print "    " substr($0, 1, 400) }' "$logdir/$name.log" | head -80
		tail -n 15 "$logdir/$name.log"
	fi
}

build() { # dir env... -- meson args...
	local dir=$1
	shift
	local envs=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	rm -rf "$dir"
	env "${envs[@]}" meson setup "$dir" -Dwerror=true -Dstress_seconds="$STRESS_SECONDS" "$@" ||
		return 1
	ninja -C "$dir" || return 1
}

mtest() { # dir args...: run, then count the results
	local dir=$1 rc
	shift
	local log=$logdir/$dir.test.log
	meson test -C "$dir" --no-rebuild --print-errorlogs --num-processes "$JOBS" "$@" \
		>"$log" 2>&1
	rc=$?
	cat "$log"
	count_meson "$log"
	return $rc
}

# The area map's model check is long (minutes at -O2): shorter in the instrumented builds and
# under qemu-user (97 s there, the longest test of the aarch64 step).
short_am() { PCPU_AM_OPS=300000 PCPU_AM_DEPTH=5 "$@"; }

gcc_suite() { build build CC=gcc -- -Dfault_injection=true -Dvalgrind=true && mtest build; }
clang_suite() { build build-clang CC=clang -- && short_am mtest build-clang --no-suite numa; }
asan_suite() {
	build build-asan CC=clang -- -Db_sanitize=address,undefined -Db_lundef=false \
		-Dbench=false &&
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:handle_segv=0 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		short_am mtest build-asan --no-suite numa --timeout-multiplier 3
}
tsan_suite() {
	build build-tsan CC=clang -- -Db_sanitize=thread -Db_lundef=false -Dbench=false &&
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
		mtest build-tsan --suite tsan --timeout-multiplier 3
}
valgrind_suite() {
	# Uses the gcc build of the first step (built here when run alone).
	if [ -f build/build.ninja ]; then
		ninja -C build || return 1
	else
		build build CC=gcc -- -Dfault_injection=true -Dvalgrind=true || return 1
	fi
	mtest build --suite valgrind --timeout-multiplier 10 \
		--wrapper 'valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite -q'
}
fuzz_suite() {
	local rc=0 h
	# One run per harness; the API harness at a fake topology with holes and two nodes.
	for h in $(cd tests/fuzz && ls fuzz_*.c | sed 's/^fuzz_//; s/\.c$//'); do
		if PCPU_FUZZ_TOPO=0-3+8-11x2 tests/fuzz/run-fuzzers.sh "$FUZZ_SECONDS" "$h"; then
			step_passed=$((step_passed + 1))
		else
			step_failed=$((step_failed + 1))
			rc=1
		fi
	done
	return $rc
}

# The AArch64 steps: the counts come from the scripts' own last line ("cross-aarch64: N
# passed, N failed, ..." and "aarch64-vm: N passed, N failed ...").
count_line() { # log prefix
	local line
	line=$(grep "^$2: [0-9]* passed, [0-9]* failed" "$1" | tail -1)
	[[ "$line" =~ ^[^:]*:\ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]] || return 0
	step_passed=${BASH_REMATCH[1]}
	step_failed=${BASH_REMATCH[2]}
}
aarch64_suite() {
	local rc=0 log=$logdir/aarch64.run.log
	rm -rf build-aarch64
	CROSS_MESON_ARGS=-Dwerror=true short_am tools/cross-aarch64.sh build-aarch64 >"$log" 2>&1 ||
		rc=$?
	cat "$log"
	count_line "$log" cross-aarch64
	return $rc
}
aarch64_vm_suite() {
	local rc=0 log=$logdir/aarch64-vm.run.log
	# Uses the cross build of the step before (set up here when run alone).
	[ -f build-aarch64/build.ninja ] || rm -rf build-aarch64
	CROSS_MESON_ARGS=-Dwerror=true tools/cross-aarch64.sh --system build-aarch64 >"$log" 2>&1 ||
		rc=$?
	cat "$log"
	count_line "$log" aarch64-vm
	return $rc
}

step gcc gcc_suite
step clang clang_suite
step asan asan_suite
step tsan tsan_suite
step valgrind valgrind_suite
[ -x tests/fuzz/run-fuzzers.sh ] && step fuzz fuzz_suite
step aarch64 aarch64_suite
step aarch64-vm aarch64_vm_suite

total=$(( $(date +%s) - start_all ))
echo
echo "=== summary (logs in $logdir/, total $((total / 60))m$((total % 60))s)"
for s in "${summary[@]}"; do
	echo "  $s"
done
echo "$tests_passed passed, $tests_failed failed"
[ "$tests_failed" -eq 0 ]
