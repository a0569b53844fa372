#!/bin/sh
# Where the time of a training step goes: perf record on bench_step --loop,
# then the samples grouped (OpenBLAS's kernel and packing, each library
# function, libc's memcpy/memset, the kernel, the rest).
#   benchmarks/profile-step.sh BUILD_DIR ARCH,RULE,OPT,THREADS,BATCH[,SECONDS] [--limit]
# e.g. benchmarks/profile-step.sh build lenet,bp,sgd,1,128
#      benchmarks/profile-step.sh build deep,dfa,adam,2,128,10
#      benchmarks/profile-step.sh build lenet,bp,sgd,1,128 --limit   (the GEMM limit alone)
# ARCH is wide, deep, lenet or a spec; SECONDS defaults to 8.  Uses the
# software event cpu-clock, which works in virtual machines without
# hardware counters (perf stat -e instructions says <not supported> here).
# Also prints bench_step's per-GEMM breakdown of the limit.
set -eu
if [ $# -lt 2 ] || [ ! -d "$1" ]; then
    echo "usage: $0 BUILD_DIR ARCH,RULE,OPT,THREADS,BATCH[,SECONDS] [--limit]" >&2
    exit 2
fi
build=$1
what=$2
shift 2
exe=$build/benchmarks/bench_step
if [ ! -x "$exe" ]; then
    echo "$0: $exe not found; build first: meson compile -C $build" >&2
    exit 2
fi
if ! command -v perf >/dev/null 2>&1; then
    echo "$0: perf not found (apt-get install linux-perf)" >&2
    exit 2
fi
case $what in
    *,*,*,*,*,*) ;;
    *) what=$what,8 ;;
esac
data=$(mktemp "${TMPDIR:-/tmp}/profile-step.XXXXXX")
trap 'rm -f "$data" "$data.old"' EXIT
perf record -q -e cpu-clock -F 2000 -o "$data" -- "$exe" --loop "$what" "$@"
echo
echo "samples by group (% of the run; cpu-clock):"
perf report -i "$data" --stdio --sort dso,symbol 2>/dev/null |
awk '
/^#/ || NF < 4 { next }
{
    pct = $1; sub("%", "", pct); dso = $2; sym = $4
    if (dso ~ /openblas/) {
        if (sym ~ /kernel/) g = "OpenBLAS: GEMM micro-kernel"
        else if (sym ~ /copy/) g = "OpenBLAS: packing (copy) of operands"
        else g = "OpenBLAS: other (drivers, threads, beta scaling)"
    } else if (dso ~ /feedbackalign/ || dso ~ /bench_step/) {
        if (sym ~ /@plt/) g = "library: PLT stubs (memcpy/memset calls)"
        else g = "library: " sym
    } else if (dso ~ /^libc/) {
        if (sym ~ /memmove|memcpy/) g = "libc: memcpy/memmove"
        else if (sym ~ /memset/) g = "libc: memset"
        else if (sym ~ /sched_yield/) g = "libc: sched_yield (OpenBLAS threads waiting)"
        else g = "libc: other"
    } else if (dso ~ /kernel/) {
        g = "kernel (scheduler, page faults, syscalls)"
    } else {
        g = "other: " dso
    }
    sum[g] += pct
}
END { for (g in sum) if (sum[g] >= 0.3) printf "%7.2f%%  %s\n", sum[g], g }' |
sort -rn
