#!/bin/sh
# Library against NumPy and the GEMM limit on Fashion-MNIST (see README.md).
#   benchmarks/run-compare.sh BUILD_DIR [compare_numpy.py options]
# e.g. benchmarks/run-compare.sh build --arch all --out results/compare.csv
# Debian's python3 is called explicitly: it is the one whose numpy uses the
# system OpenBLAS that the library links.
set -eu
if [ $# -lt 1 ] || [ ! -d "$1" ]; then
    echo "usage: $0 BUILD_DIR [compare_numpy.py options]" >&2
    exit 2
fi
build=$1
shift
lib=$build/libfeedbackalign.so
if [ ! -e "$lib" ]; then
    echo "$0: $lib not found; build first: meson compile -C $build" >&2
    exit 2
fi
if ! /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
    echo "$0: /usr/bin/python3 with numpy is needed (apt-get install python3-numpy)" >&2
    exit 2
fi
exec /usr/bin/python3 "$(dirname "$0")/compare_numpy.py" --lib "$lib" "$@"
