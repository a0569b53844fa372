#!/usr/bin/env bash
# Epoch time of fa-train on Fashion-MNIST with one process and 1 thread
# (1x1), one process and 2 threads (1x2), and fa-train-mpi with 2 processes
# of 1 thread (2x1), for 784-1000-10 and 784-240x7-10, in one run: the
# configurations are interleaved, repeat after repeat, so that load from
# other processes falls on all of them alike; the median epoch time of each
# is reported with its speed relative to 1x1.
#
# Usage: benchmarks/run-mpi-scaling.sh BUILD_DIR [--repeats N] [--epochs N]
#            [--opt adam|sgd|...] [--rule bp|fa|dfa|...] [--data DIR]
#            [--arch "784-1000-10 784-240x7-10"] [--out FILE.csv]
# Defaults: 3 repeats of 1 epoch each, Adam (lr 0.001), BP, batch 128,
# standardised inputs, Fashion-MNIST from /usr/share/datasets/fashion-mnist.
# The epoch time is fa-train's own (training steps only; evaluation is
# outside it, and cut to 1000 test samples to save time).
#
# The load average is printed before and after: figures taken while other
# processes use the cores are provisional.
set -euo pipefail

build=${1:?usage: run-mpi-scaling.sh BUILD_DIR [options]}
shift
repeats=3
epochs=1
opt=adam
rule=bp
data=/usr/share/datasets/fashion-mnist
archs="784-1000-10 784-240x7-10"
out=""
while [ $# -gt 0 ]; do
    case $1 in
        --repeats) repeats=$2; shift 2 ;;
        --epochs) epochs=$2; shift 2 ;;
        --opt) opt=$2; shift 2 ;;
        --rule) rule=$2; shift 2 ;;
        --data) data=$2; shift 2 ;;
        --arch) archs=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        *) echo "run-mpi-scaling: unknown option $1" >&2; exit 2 ;;
    esac
done

fa_train=$build/tools/fa-train
fa_train_mpi=$build/tools/fa-train-mpi
for p in "$fa_train" "$fa_train_mpi"; do
    [ -x "$p" ] || { echo "run-mpi-scaling: $p not built (fa-train-mpi needs MPI: meson setup -Dmpi=enabled)" >&2; exit 2; }
done
command -v mpirun >/dev/null || { echo "run-mpi-scaling: mpirun not found (openmpi-bin)" >&2; exit 2; }
[ -r "$data/train-images-idx3-ubyte.gz" ] || [ -r "$data/train-images-idx3-ubyte" ] \
    || { echo "run-mpi-scaling: no Fashion-MNIST in $data" >&2; exit 2; }
if [ "$(id -u)" -eq 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
unset OPENBLAS_NUM_THREADS # --threads decides

common=(--data "$data" --progress off --align-batch 0 --limit-test 1000
        --input-norm standardize --batch 128 --seed 1 --rule "$rule" --opt "$opt"
        --epochs "$epochs")
[ "$opt" = adam ] && common+=(--lr 0.001)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
csv=$tmp/epochs.csv
echo "arch,config,repeat,epoch,epoch_s" >"$csv"

# run CONFIG ARCH: one training; its epoch times appended to the CSV.
run() {
    local cfg=$1 arch=$2 rep=$3 log=$tmp/run.txt
    case $cfg in
        1x1) "$fa_train" "${common[@]}" --arch "$arch" --threads 1 >"$log" 2>&1 ;;
        1x2) "$fa_train" "${common[@]}" --arch "$arch" --threads 2 >"$log" 2>&1 ;;
        2x1) mpirun -np 2 --bind-to core --mca btl self,vader "$fa_train_mpi" \
                 "${common[@]}" --arch "$arch" --threads 1 >"$log" 2>&1 ;;
    esac || { echo "run-mpi-scaling: $cfg $arch failed:" >&2; cat "$log" >&2; exit 1; }
    sed -n 's/^epoch *\([0-9]*\)\/[0-9]* .* time *\([0-9.]*\)s .*/\1 \2/p' "$log" \
        | awk -v a="$arch" -v c="$cfg" -v r="$rep" '$1 > 0 { print a "," c "," r "," $1 "," $2 }' >>"$csv"
}

echo "# $("$fa_train" --data "$data" --epochs 0 --limit-train 1 --limit-test 1 --arch 784-10 2>/dev/null | grep '^blas:')"
echo "# $(mpirun --version | head -n 1); $(nproc) cores"
echo "# $repeats repeats x $epochs epoch(s); rule $rule, optimiser $opt, batch 128"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for rep in $(seq 1 "$repeats"); do
    for arch in $archs; do
        for cfg in 1x1 1x2 2x1; do
            run "$cfg" "$arch" "$rep"
        done
    done
done
echo "# load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"

# Median epoch time per arch and configuration, and speed against 1x1.
printf "%-13s %-6s %12s %10s %8s\n" arch config "epoch s" "vs 1x1" epochs
for arch in $archs; do
    ref=""
    for cfg in 1x1 1x2 2x1; do
        med=$(awk -F, -v a="$arch" -v c="$cfg" '$1 == a && $2 == c { print $5 }' "$csv" \
              | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
        n=$(awk -F, -v a="$arch" -v c="$cfg" '$1 == a && $2 == c' "$csv" | wc -l)
        [ -z "$ref" ] && ref=$med
        printf "%-13s %-6s %12.2f %9.2fx %8d\n" "$arch" "$cfg" "$med" \
            "$(awk -v r="$ref" -v m="$med" 'BEGIN { print r / m }')" "$n"
    done
done
if [ -n "$out" ]; then
    cp "$csv" "$out"
    echo "# epoch times: $out"
fi
