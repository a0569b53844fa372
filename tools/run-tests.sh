#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test.
#   1. the Check suite (meson test), plain release build, with the tools'
#      tests and those of fa-train-mpi under mpirun (suite 'mpi'; skipped,
#      and said so below, when meson found no MPI)
#   2. the same suite built with AddressSanitizer + UndefinedBehaviorSanitizer
#   3. the same suite under valgrind (meson test setup 'valgrind'), less
#      the 'mpi' suite: there valgrind would examine the bash script, not
#      the MPI ranks, which the sanitizer build checks
#      (stages 1-3 include suite 'fuzz-replay': every seed and crash input
#      of tests/fuzz replayed through its harness)
#   4. fuzzing: each libFuzzer harness of tests/fuzz for FA_FUZZ_SECONDS
#      (default 60; 0 skips) when clang is installed (tests/fuzz/README.md)
#   5. the Julia package's tests against the plain build
# Exits non-zero if anything fails; the last line is "N passed, N failed".
# Usage: tools/run-tests.sh          (from anywhere; builds under the repo root)
#        FA_FUZZ_SECONDS=300 tools/run-tests.sh   (fuzz longer; 0: no fuzzing)
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

# What identifies a finding across runs: the sanitizer's SUMMARY line (its
# source line and column included: the signatures of the open inputs are
# taken from the same build, so edits elsewhere do not matter) and the name
# of a harness's violated invariant (its message up to the first ':', see
# tests/fuzz/fuzz.h); leak sizes and addresses left out.
fuzz_signature() {
  { grep -m1 '^fuzz: invariant violated: ' "$1" | sed 's/^\(fuzz: invariant violated: [^:]*\).*/\1/'
    grep -m1 '^SUMMARY:' "$1"; } |
    sed -E 's/[0-9]+ byte\(s\) leaked in [0-9]+ allocation\(s\)/leaked/; s/0x[0-9a-f]+/0x/g'
}

# One harness for a bounded time on a copy of its corpus (the committed seeds
# do not grow in a test run), with its past crash inputs among the seeds.
# A crash, leak, timeout or out-of-memory fails the run, and the input is
# copied to tests/fuzz/crashes/<target>/ to be committed as a regression test.
# The exception is a known open bug (an open-* input in crashes/<target>/,
# reported and not yet fixed): found again, it is noted and fuzzing goes on
# for the rest of the time, so a reported bug does not fail every run.
run_fuzzer() {
  local exe=$1 seconds=$2
  local name=${exe##*/fuzz_}
  local base work log rc f sig deadline left restarts=0 runs=0 n
  local known=() found=() dict=() cov=""
  base=${TMPDIR:-}
  if [ -z "$base" ]; then
    if [ -d /dev/shm ] && [ -w /dev/shm ]; then base=/dev/shm; else base=/tmp; fi
  fi
  work=$(mktemp -d "$base/fa-fuzz-run.XXXXXX")
  log="$work/log"
  mkdir -p "$work/corpus" "$work/tmp"
  for f in tests/fuzz/corpus/"$name"/* tests/fuzz/crashes/"$name"/*; do
    [ -f "$f" ] || continue
    case ${f##*/} in
      README*) ;;
      open-*)   # crashes at once: not a seed, but its signature is known
        TMPDIR="$work/tmp" UBSAN_OPTIONS=halt_on_error=1 "$exe" "$f" >"$log" 2>&1 &&
          echo "fuzz_$name: $f no longer crashes: the bug is fixed; drop its open- prefix"
        sig=$(fuzz_signature "$log")
        [ -n "$sig" ] && known+=("$sig") ;;
      *) cp "$f" "$work/corpus/" ;;
    esac
  done
  [ -f "tests/fuzz/$name.dict" ] && dict=("-dict=tests/fuzz/$name.dict")
  deadline=$((SECONDS + seconds))
  while :; do
    left=$((deadline - SECONDS))
    [ "$left" -ge 1 ] || left=1
    rm -rf "$work/artifacts"
    mkdir -p "$work/artifacts"
    # -timeout: one input taking longer is a hang; -rss_limit_mb also limits
    # a single allocation.  The outer timeout only guards against libFuzzer
    # itself not stopping.  TMPDIR: the harnesses' files, removed below even
    # when an input crashed.
    TMPDIR="$work/tmp" ASAN_OPTIONS=detect_leaks=1 \
      UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
      timeout --kill-after=10 $((left + 120)) "$exe" "${dict[@]}" \
        -max_total_time="$left" -timeout=25 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$work/corpus" \
        >"$log" 2>&1
    rc=$?
    n=$(awk '/^stat::number_of_executed_units:/ {print $2}' "$log" | tail -n1)
    runs=$((runs + ${n:-0}))
    cov=$(grep -E '^#[0-9]+[[:space:]]+(DONE|NEW|REDUCE|pulse|INITED)' "$log" | tail -n1 |
          grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' || true)
    found=()
    for f in "$work"/artifacts/crash-* "$work"/artifacts/leak-* \
             "$work"/artifacts/timeout-* "$work"/artifacts/oom-*; do
      [ -f "$f" ] && found+=("$f")
    done
    [ "$rc" -eq 0 ] && [ ${#found[@]} -eq 0 ] && break
    sig=$(fuzz_signature "$log")
    if [ -n "$sig" ] && [ ${#found[@]} -gt 0 ] && printf '%s\n' "${known[@]}" | grep -qxF -- "$sig"; then
      # Go on with the corpus so far for the rest of the time.
      [ "$restarts" -eq 0 ] && echo "fuzz_$name: found a known open bug again: $(echo "$sig" | head -n1)"
      restarts=$((restarts + 1))
      rc=0
      found=()
      [ "$((deadline - SECONDS))" -gt 0 ] && continue
    fi
    break
  done
  if [ "$rc" -eq 0 ] && [ ${#found[@]} -eq 0 ]; then
    [ "$restarts" -gt 0 ] && echo "fuzz_$name: the known open bug(s) came back $restarts times; each time fuzzing went on"
    echo "fuzz_$name: ok, $seconds s, $runs runs ($((runs / (seconds > 0 ? seconds : 1)))/s), $cov"
    passed=$((passed + 1))
  else
    grep -vE '^"|^#+ (Recommended|End of recommended) dictionary' "$log" | tail -n 60
    echo "fuzz_$name: FAILED (exit status $rc)"
    if [ ${#found[@]} -gt 0 ]; then
      mkdir -p "tests/fuzz/crashes/$name"
      for f in "${found[@]}"; do
        cp "$f" "tests/fuzz/crashes/$name/"
        echo "fuzz_$name: the input is saved as tests/fuzz/crashes/$name/${f##*/}:" \
             "reproduce with build/tests/fuzz/replay_$name on it, fix the bug, and" \
             "commit the file (it becomes a regression test of suite fuzz-replay)"
      done
    fi
    failed=$((failed + 1))
  fi
  rm -rf "$work"
}

fuzz_seconds=${FA_FUZZ_SECONDS:-60}
if ! [[ $fuzz_seconds =~ ^[0-9]+$ ]]; then
  echo "== fuzz: FA_FUZZ_SECONDS='$fuzz_seconds' is not a number of seconds"
  failed=$((failed + 1))
elif [ "$fuzz_seconds" -eq 0 ]; then
  echo "== fuzz: skipped: FA_FUZZ_SECONDS=0"
elif ! command -v clang >/dev/null 2>&1; then
  echo "== fuzz: skipped: clang not found (tools/install-deps.sh installs clang and libclang-rt-14-dev)"
else
  echo "== fuzz: each harness for $fuzz_seconds s (FA_FUZZ_SECONDS)"
  # The whole project instrumented for coverage (fuzzer-no-link); only the
  # harnesses link libFuzzer (tests/fuzz/meson.build).  The Check suite is
  # not needed here.
  if CC=clang setup build-fuzz -Dfuzz=true -Dtests=false -Dbenchmarks=false \
       -Dbuildtype=debugoptimized -Db_sanitize=address,undefined -Db_lundef=false \
       "-Dc_args=-fsanitize=fuzzer-no-link -fno-sanitize-recover=undefined"; then
    nfuzz=0
    for exe in build-fuzz/tests/fuzz/fuzz_*; do
      [ -f "$exe" ] && [ -x "$exe" ] || continue
      run_fuzzer "$exe" "$fuzz_seconds"
      nfuzz=$((nfuzz + 1))
    done
    if [ "$nfuzz" -eq 0 ]; then
      echo "== fuzz: no harness was built in build-fuzz/tests/fuzz"
      failed=$((failed + 1))
    fi
  else
    failed=$((failed + 1))
  fi
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
