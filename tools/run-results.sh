#!/usr/bin/env bash
# The results of tools/RESULTS.md, in one command: every rule of the library
# on Fashion-MNIST (full training and test sets), two seeds, for
#   mlp    the README's network, 784-500-500-10 tanh, Adam, 20 epochs
#   lenet  LeNet-5 as BioTorch defines it (conv5x5 6, pool, conv5x5 16, pool,
#          conv5x5 120, 84, 10; the first conv padded by 2 on 28x28 images),
#          tanh, Adam, 20 epochs
# The two seeds run side by side, one thread each.  Each run writes its
# --compare output (table, curves, plots) to results/<study>-seed<N>/; the
# script then prints one markdown table per study: test accuracy after the
# last epoch for each seed and their mean, the mean epoch time relative to
# BP, and the final angle of each hidden layer's update to the BP gradient
# (seed 1).
#
# Usage: tools/run-results.sh [mlp|lenet|all] [extra fa-train options]
#   e.g. tools/run-results.sh lenet --epochs 2      (a quick look)
# Environment: BUILD_DIR (default build), OUT_DIR (default results).
# Takes about an hour for "all" on two quiet cores.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
cd "$root"
build=${BUILD_DIR:-build}
out=${OUT_DIR:-results}
study=${1:-all}
[ $# -gt 0 ] && shift

"$here/install-deps.sh"
[ -f "$build/build.ninja" ] || meson setup "$build"
meson compile -C "$build" >/dev/null

common=(--compare all --input-norm standardize --opt adam --lr 0.001 --lr-decay 0.85
        --threads 1 --progress off --align-batch 1000)
mlp=(--arch 784-500-500-10 --act tanh --batch 128 --epochs 20)
lenet=(--arch 1x28x28-c6k5p2-m2-c16k5-m2-c120k5-84-10 --act tanh --batch 64 --epochs 20)

run_study() {
    local name=$1; shift
    local pids=()
    for seed in 1 2; do
        "$build/tools/fa-train" "${common[@]}" "$@" --seed "$seed" \
            --out "$out/$name-seed$seed" "${extra[@]}" >"$out/$name-seed$seed.txt" 2>&1 &
        pids+=($!)
    done
    local st=0
    for p in "${pids[@]}"; do wait "$p" || st=1; done
    [ $st -eq 0 ] || { echo "run-results: a $name run failed; see $out/$name-seed*.txt" >&2; return 1; }
    table "$name"
}

# The --compare table of a run: rule, test acc, epoch time, angles.
rows() {
    sed -n '/^rule .*test acc/,/^$/p' "$1" | sed '1d;/^$/d'
}

table() {
    local name=$1
    echo
    echo "### $name: test accuracy (%) after the last epoch"
    echo
    echo "| rule | seed 1 | seed 2 | mean | epoch time vs BP | final angle to BP, hidden layers |"
    echo "|---|---|---|---|---|---|"
    paste -d'\t' <(rows "$out/$name-seed1.txt") <(rows "$out/$name-seed2.txt") | awk -F'\t' '
        {
            n1 = split($1, a, " +"); n2 = split($2, b, " +")
            ang = ""
            for (i = 8; i <= n1; i++) ang = ang (ang == "" ? "" : " / ") a[i]
            printf "| %s | %.2f | %.2f | **%.2f** | %s | %s |\n", a[1], a[2], b[2],
                   (a[2] + b[2]) / 2, a[7], ang
        }'
}

mkdir -p "$out"
extra=("$@")
case $study in
    mlp) run_study mlp "${mlp[@]}" ;;
    lenet) run_study lenet "${lenet[@]}" ;;
    all) run_study mlp "${mlp[@]}" && run_study lenet "${lenet[@]}" ;;
    *) echo "usage: tools/run-results.sh [mlp|lenet|all] [fa-train options]" >&2; exit 2 ;;
esac
