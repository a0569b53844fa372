#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test.
#   1. the Check suite (meson test), plain release build, with the tools'
#      tests and those of fa-train-mpi under mpirun (suite 'mpi'; skipped,
#      and said so below, when meson found no MPI)
#   2. the same suite built with AddressSanitizer + UndefinedBehaviorSanitizer
#   3. the same suite under valgrind (meson test setup 'valgrind'), less
#      the 'mpi' suite: there valgrind would examine the bash script, not
#      the MPI ranks, which the sanitizer build checks
#   4. the Julia package's tests against the plain build
# Exits non-zero if anything fails; the last line is "N passed, N failed".
# Usage: tools/run-tests.sh          (from anywhere; builds under the repo root)
set -uo pipefail
cd "$(dirname "$0")/.."

tools/install-deps.sh || { echo "run-tests: installing dependencies failed"; exit 1; }

passed=0
failed=0
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}

# Count meson's summary lines ("Ok: N", "Expected Fail", "Fail: N", "Timeout: N").
run_meson_tests() {
  local label=$1; shift
  local log
  log=$(mktemp)
  echo "== $label: meson test $*"
  meson test "$@" --print-errorlogs 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local ok fail to
  # A skipped test is named, not only counted (its reason is in its log).
  grep -E '^ *[0-9]+/[0-9]+ .* SKIP ' "$log" | sed 's/^ */run-tests: note: skipped: /'
  ok=$(awk '/^Ok:/ {print $2}' "$log" | tail -n1)
  fail=$(awk '/^Fail:/ {print $2}' "$log" | tail -n1)
  to=$(awk '/^Timeout:/ {print $2}' "$log" | tail -n1)
  rm -f "$log"
  passed=$((passed + ${ok:-0}))
  failed=$((failed + ${fail:-0} + ${to:-0}))
  if [ "$rc" -ne 0 ] && [ "${fail:-0}" -eq 0 ] && [ "${to:-0}" -eq 0 ]; then
    failed=$((failed + 1))
  fi
}

setup() {
  local dir=$1; shift
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "$@" >/dev/null || { echo "run-tests: meson setup $dir failed"; meson setup "$dir" "$@"; return 1; }
  fi
  meson compile -C "$dir" >/dev/null || { meson compile -C "$dir"; return 1; }
}

if setup build; then
  if [ ! -x build/tools/fa-train-mpi ]; then
    echo "run-tests: note: MPI was not found when build/ was configured: fa-train-mpi is not built and its tests are skipped"
  fi
  run_meson_tests "plain" -C build
else
  failed=$((failed + 1))
fi

if setup build-sanitize -Dbuildtype=debug -Db_sanitize=address,undefined -Db_lundef=false -Dbenchmarks=false; then
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    run_meson_tests "sanitizers" -C build-sanitize
else
  failed=$((failed + 1))
fi

if [ -f build/build.ninja ]; then
  run_meson_tests "valgrind" -C build --setup valgrind --no-suite slow --no-suite mpi
fi

if [ -f build/build.ninja ]; then
  echo "== julia: tools/test-julia.sh build"
  jlog=$(mktemp)
  tools/test-julia.sh build 2>&1 | tee "$jlog"
  jrc=${PIPESTATUS[0]}
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$jlog" | tail -n1)
  rm -f "$jlog"
  if [ -n "$line" ]; then
    passed=$((passed + $(echo "$line" | awk '{print $1}')))
    failed=$((failed + $(echo "$line" | awk '{print $3}')))
  fi
  if [ "$jrc" -ne 0 ] && { [ -z "$line" ] || [ "$(echo "$line" | awk '{print $3}')" -eq 0 ]; }; then
    failed=$((failed + 1))
  fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
