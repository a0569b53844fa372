#!/bin/sh
# The scaling study in one command: bench_scaling's CSVs, then the plots.
#   benchmarks/run-scaling.sh BUILD_DIR [--quick] [--out DIR] [bench_scaling options]
# e.g. benchmarks/run-scaling.sh build            (full: about 10-20 min quiet)
#      benchmarks/run-scaling.sh build --quick    (a few minutes)
# Writes DIR/{width,depth,batch}.csv and DIR/scaling-{width,depth,batch,dfa-bp}.png
# (DIR: results/scaling, relative to the current directory, unless --out),
# then prints summarize_scaling.py's table.
set -eu
if [ $# -lt 1 ] || [ ! -d "$1" ]; then
    echo "usage: $0 BUILD_DIR [--quick] [--out DIR] [bench_scaling options]" >&2
    exit 2
fi
build=$1
shift
exe=$build/benchmarks/bench_scaling
if [ ! -x "$exe" ]; then
    echo "$0: $exe not found; build first: meson compile -C $build" >&2
    exit 2
fi
out=results/scaling
threads=""
quick=0
prev=""
for a in "$@"; do
    case $prev in
        --out) out=$a ;;
        --threads) threads=$a ;;
    esac
    [ "$a" = --quick ] && quick=1
    prev=$a
done
if [ -z "$threads" ]; then
    if [ $quick = 1 ]; then threads=1; else threads=1,2; fi
fi
case " $* " in
    *" --out "*) "$exe" "$@" ;;
    *) "$exe" --out "$out" "$@" ;;
esac
if command -v gnuplot >/dev/null 2>&1; then
    gnuplot -e "dir='$out'; threads='$(echo "$threads" | tr , ' ')'" \
        "$(dirname "$0")/scaling.gp"
    for p in width depth batch dfa-bp; do
        [ -e "$out/scaling-$p.png" ] && echo "plot: $out/scaling-$p.png"
    done
else
    echo "$0: gnuplot not found: CSVs in $out, no plots" >&2
fi
if [ -x /usr/bin/python3 ]; then
    /usr/bin/python3 "$(dirname "$0")/summarize_scaling.py" "$out"
fi
exit 0
