#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The whole test suite (./dev test, and CI through .ci/run):
#   1. gcc build (-Werror), every Check suite           (build/)
#   2. clang build (-Werror), every Check suite         (build-clang/)
#   3. ASan + UBSan build, every suite                  (build-asan/)
#   4. TSan build, the suites TSan can follow           (build-tsan/)
#   5. valgrind memcheck over the single-threaded tests (build/)
#   6. each libFuzzer harness for FUZZ_SECONDS          (tests/fuzz/run-fuzzers.sh)
# Exits nonzero when any step fails; prints "N passed, N failed" at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
export FUZZ_SECONDS
only=${1:-}

groups=(sanitizers valgrind)
[ -x tools/numa-vm/setup ] && groups+=(numa-vm)
scripts/deps.sh "${groups[@]}" || { echo "test-all: could not install dependencies" >&2; exit 1; }
[ -x tools/numa-vm/setup ] && { tools/numa-vm/setup >/dev/null || echo "test-all: numa-vm setup failed; NUMA tests will skip" >&2; }

passed=0
failed=0
failed_steps=()

step() { # name command...
	local name=$1
	shift
	if [ -n "$only" ] && [ "$only" != "$name" ]; then
		return 0
	fi
	echo "=== $name: $*"
	if "$@"; then
		passed=$((passed + 1))
		echo "=== $name: ok"
	else
		failed=$((failed + 1))
		failed_steps+=("$name")
		echo "=== $name: FAILED"
	fi
}

build() { # dir env... -- meson args...
	local dir=$1
	shift
	local envs=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	rm -rf "$dir"
	env "${envs[@]}" meson setup "$dir" "$@" >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log"; return 1; }
	ninja -C "$dir" || return 1
}

mtest() { # dir args...
	local dir=$1
	shift
	meson test -C "$dir" --print-errorlogs --num-processes 2 "$@"
}

gcc_suite() { build build CC=gcc -- -Dfault_injection=true && mtest build; }
clang_suite() { build build-clang CC=clang -- && mtest build-clang --no-suite numa; }
asan_suite() {
	build build-asan CC=clang -- -Db_sanitize=address,undefined -Db_lundef=false \
		-Dbench=false && \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		mtest build-asan --no-suite numa
}
tsan_suite() {
	build build-tsan CC=clang -- -Db_sanitize=thread -Db_lundef=false -Dbench=false && \
	TSAN_OPTIONS=halt_on_error=1 mtest build-tsan --suite tsan
}
valgrind_suite() {
	mtest build --suite valgrind \
		--wrapper 'valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite -q'
}
fuzz_suite() { tests/fuzz/run-fuzzers.sh; }

step gcc gcc_suite
step clang clang_suite
step asan asan_suite
step tsan tsan_suite
step valgrind valgrind_suite
[ -x tests/fuzz/run-fuzzers.sh ] && step fuzz fuzz_suite

echo
[ $failed -gt 0 ] && echo "failed steps: ${failed_steps[*]}"
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
