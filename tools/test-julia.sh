#!/usr/bin/env bash
# Run the Julia package's tests against a meson build of the library.
#
# Usage: tools/test-julia.sh BUILD_DIR      (e.g. tools/test-julia.sh build)
#
# BUILD_DIR is taken relative to the current directory, or else to the top of
# the source tree.  Installs Julia with tools/install-julia.sh if no `julia`
# is on PATH, points the package at BUILD_DIR/libfeedbackalign.so
# (FEEDBACKALIGN_LIB) and at the C interop program
# BUILD_DIR/tests/interop/fa-model-roundtrip (FEEDBACKALIGN_ROUNDTRIP), and
# runs julia/FeedbackAlign/test/runtests.jl.
# Exits non-zero on any failure; the last line of output is always
# "N passed, N failed" (counts of @test results).
set -uo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"

if [ $# -ne 1 ]; then
  echo "usage: tools/test-julia.sh BUILD_DIR" >&2
  echo "0 passed, 1 failed"
  exit 2
fi

build="$1"
if [ ! -d "$build" ] && [ -d "$root/$build" ]; then build="$root/$build"; fi
if [ ! -d "$build" ]; then
  echo "test-julia: BUILD_DIR '$1' is not a directory (run: meson setup build && meson compile -C build)" >&2
  echo "0 passed, 1 failed"
  exit 1
fi
build="$(cd "$build" && pwd)"
lib="$build/libfeedbackalign.so"
if [ ! -e "$lib" ]; then
  echo "test-julia: $lib not found (run: meson compile -C $build)" >&2
  echo "0 passed, 1 failed"
  exit 1
fi

if command -v julia >/dev/null 2>&1; then
  julia="$(command -v julia)"
else
  julia="$("$root/tools/install-julia.sh" | tail -n1)"
  if [ -z "$julia" ] || [ ! -x "$julia" ]; then
    echo "test-julia: installing Julia failed (tools/install-julia.sh)" >&2
    echo "0 passed, 1 failed"
    exit 1
  fi
fi

counts="$(mktemp)"
trap 'rm -f "$counts"' EXIT

export FEEDBACKALIGN_LIB="$lib"
if [ -z "${FEEDBACKALIGN_ROUNDTRIP:-}" ] && [ -x "$build/tests/interop/fa-model-roundtrip" ]; then
  export FEEDBACKALIGN_ROUNDTRIP="$build/tests/interop/fa-model-roundtrip"
fi
export FEEDBACKALIGN_TEST_COUNTS="$counts"
# One BLAS thread: the machine's cores are shared, and bitwise comparisons
# between the Julia and C sides need the same thread count on both.
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"

echo "test-julia: $("$julia" --version) with $lib"
"$julia" --startup-file=no --project="$root/julia/FeedbackAlign" \
  "$root/julia/FeedbackAlign/test/runtests.jl"
rc=$?

line="$(tail -n1 "$counts" 2>/dev/null)"
if ! echo "$line" | grep -Eq '^[0-9]+ passed, [0-9]+ failed$'; then
  # Julia died before reporting (a crash, or an error outside any test set).
  echo "test-julia: julia exited with status $rc before reporting its test counts" >&2
  echo "0 passed, 1 failed"
  exit 1
fi
if [ "$rc" -eq 0 ] && [ "$(echo "$line" | awk '{print $3}')" -ne 0 ]; then rc=1; fi
if [ "$rc" -ne 0 ] && [ "$(echo "$line" | awk '{print $3}')" -eq 0 ]; then
  # Tests reported no failure but julia still failed: count that as one.
  line="$(echo "$line" | awk '{print $1}') passed, 1 failed"
fi
echo "$line"
exit "$rc"
