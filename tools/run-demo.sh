#!/usr/bin/env bash
# The one command of the README: install what is missing, build, and train
# the same network on Fashion-MNIST under every learning rule of the library
# (backprop, feedback alignment, direct feedback alignment, sign symmetry,
# Kolen-Pollack, weight mirrors, DRTP, sign-error DFA, shallow), then print
# the comparison table and the paths of the plots.  A few minutes on two
# cores.
#
# Usage: tools/run-demo.sh [extra fa-train options]
#   Extra options go last and so override the demo's, e.g.
#   tools/run-demo.sh --epochs 20        the full configuration of RESULTS.md
#   tools/run-demo.sh --limit-train 10000 --epochs 2   a quicker look
# Environment: BUILD_DIR (default: build), OUT_DIR (default: results/demo).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
cd "$root"

build=${BUILD_DIR:-build}
out=${OUT_DIR:-results/demo}

echo "== dependencies"
"$here/install-deps.sh"

echo "== build ($build)"
if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build"
fi
meson compile -C "$build"

data=/usr/share/datasets/fashion-mnist
if [ ! -r "$data/train-images-idx3-ubyte.gz" ]; then
    echo "run-demo: Fashion-MNIST not found in $data (Debian package dataset-fashion-mnist)" >&2
    exit 1
fi

# The configuration of tools/RESULTS.md, cut to 2 epochs: every rule is
# already well above chance and the alignment angles have begun to fall.
echo "== every rule on Fashion-MNIST (2 epochs each)"
"$build/tools/fa-train" --data "$data" --compare all \
    --arch 784-500-500-10 --act tanh --input-norm standardize \
    --opt adam --lr 0.001 --lr-decay 0.85 --batch 128 --seed 1 \
    --epochs 2 --out "$out" "$@"
