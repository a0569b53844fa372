#!/usr/bin/env bash
# Time a Julia training epoch against build/tools/fa-train's (see
# benchmarks/julia_overhead.jl for what is timed and the options).
#
# Usage: benchmarks/run-julia-overhead.sh BUILD_DIR [options of julia_overhead.jl]
#   e.g. benchmarks/run-julia-overhead.sh build --rules bp,fa,dfa --repeats 3
#
# Finds or installs Julia (tools/install-julia.sh), points the package at
# BUILD_DIR/libfeedbackalign.so and runs the script with one BLAS thread
# unless --threads says otherwise.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
if [ $# -lt 1 ]; then
  echo "usage: benchmarks/run-julia-overhead.sh BUILD_DIR [options]" >&2
  exit 2
fi
build="$1"; shift
if [ ! -d "$build" ] && [ -d "$root/$build" ]; then build="$root/$build"; fi
[ -d "$build" ] || { echo "run-julia-overhead: BUILD_DIR '$build' is not a directory" >&2; exit 2; }
build="$(cd "$build" && pwd)"
for f in libfeedbackalign.so tools/fa-train; do
  [ -e "$build/$f" ] || { echo "run-julia-overhead: $build/$f not found (meson compile -C $build)" >&2; exit 2; }
done

if command -v julia >/dev/null 2>&1; then
  julia="$(command -v julia)"
else
  julia="$("$root/tools/install-julia.sh" | tail -n1)"
fi

export FEEDBACKALIGN_LIB="$build/libfeedbackalign.so"
exec "$julia" --startup-file=no --project="$root/julia/FeedbackAlign" \
  "$root/benchmarks/julia_overhead.jl" --build "$build" "$@"
