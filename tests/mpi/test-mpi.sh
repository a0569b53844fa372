#!/usr/bin/env bash
# End-to-end tests of fa-train-mpi, data-parallel training over MPI ranks,
# on the loopback only (shared memory between the ranks, the runtime's own
# traffic on lo), with `mpirun --oversubscribe -np 2` and `-np 3` (shards of
# 25+25 and 16+17+17 samples of a batch of 50):
#
#   - after 24 steps the networks of all ranks are bitwise identical
#     (parameters, feedback, optimiser state, model RNG), and equal to one
#     fa-train process trained on the same global batches to within float
#     rounding, for BP, FA, DFA and KP (learned feedback), and so are the
#     epoch losses printed (global batch means); one process under mpirun
#     is bitwise fa-train;
#   - dropout: each rank its own masks, the networks still identical;
#   - failures end the whole job with a non-zero status and a message from
#     rank 0 naming the rank, within seconds: a missing data directory or
#     model file on one rank, a refused step on one rank, ranks that drift
#     apart or never were the same, a rank that is killed or exits without
#     MPI_Finalize, SIGTERM to mpirun (which still leaves a whole model).
#
# The tolerance against one process, and why: a rank's update is the mean
# over its shard, weighted by shard/batch; the all-reduce then sums those
# weighted means, where one process sums the whole batch in one GEMM and
# divides once.  Same terms, other order and other roundings: each update
# entry differs by a few float ulps (relative 1e-7..1e-6), and 24 steps
# through a tanh network carry that along without amplifying it much.  So
#     max |p_mpi - p_one| <= 1e-4 * max |p_one - p_init|
# (the difference judged against what training changed): measured 3e-7 to
# 1.3e-6, a margin of about 100.  A wrong weighting (1/P instead of
# shard/batch, 2 % off for 16/17/17 of 50) measured 4e-3 to 0.16 with
# 3 ranks; a learning rate 1 % off (the negative control below) 1e-2.
# Fixed feedback (FA, DFA) must be bitwise equal to one process's: same
# seed, same draws.
#
# Nothing waits on time: every mpirun runs under `timeout` only as a guard
# against a hang (status 124 is reported as a hang).
#
# Usage: test-mpi.sh FA_TRAIN_MPI FA_TRAIN GEN_SYNTH MODEL_DIFF
set -u

FA_TRAIN_MPI=${1:?usage: test-mpi.sh FA_TRAIN_MPI FA_TRAIN GEN_SYNTH MODEL_DIFF}
FA_TRAIN=${2:?}
GEN_SYNTH=${3:?}
MODEL_DIFF=${4:?}
abs() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
FA_TRAIN_MPI=$(abs "$FA_TRAIN_MPI")
FA_TRAIN=$(abs "$FA_TRAIN")
GEN_SYNTH=$(abs "$GEN_SYNTH")
MODEL_DIFF=$(abs "$MODEL_DIFF")

if ! command -v mpirun >/dev/null 2>&1; then
    echo "mpirun not found (Debian package openmpi-bin; tools/install-deps.sh installs it): MPI tests skipped"
    exit 77
fi
# Open MPI refuses to run as root unless told; the tests run as any user.
if [ "$(id -u)" -eq 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
export OPENBLAS_NUM_THREADS=1
unset FA_TRAIN_MPI_TEST
# The sanitizer build: Open MPI's own leaks are not this project's (see
# lsan.supp); the rest is still checked.  The slow unwinder follows stacks
# through libraries built without frame pointers, so that an allocation
# made by an Open MPI component still names the Open MPI library that
# called it once the component is unloaded.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export LSAN_OPTIONS="suppressions=$here/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/test-mpi.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT

failures=0
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}
pass() {
    echo "ok: $*"
}

# Loopback only: shared memory between the ranks (no single-copy kernel
# mechanism, which some containers forbid), runtime traffic on lo; no
# binding, since -np 3 oversubscribes a 2-core machine.  60 s is far above
# the second or two a run takes; -k: SIGKILL if mpirun ignores SIGTERM.
MPIRUN=(timeout -k 10 60 mpirun --oversubscribe --bind-to none
        --mca btl self,vader --mca btl_vader_single_copy_mechanism none
        --mca oob_tcp_if_include lo)

mkdir -p "$TMP/data" && "$GEN_SYNTH" "$TMP/data" 600 200 \
    || { echo "FAIL: gen-synth could not write the data set"; exit 1; }

# 600 samples, batches of 50: 12 steps per epoch, 24 in all.
RUN=(--threads 1 --progress off --batch 50 --limit-train 600 --limit-test 200 --epochs 2)
BASE=(--data "$TMP/data" "${RUN[@]}" --arch 64-32-32-10)

# run_mpi OUT NP ARGS...: fa-train-mpi on NP ranks, stdout to OUT.out and
# stderr to OUT.err; returns mpirun's status.
run_mpi() {
    local out=$1 np=$2
    shift 2
    "${MPIRUN[@]}" -np "$np" "$FA_TRAIN_MPI" "$@" >"$out.out" 2>"$out.err"
}

# The failure tests' first check: a non-zero status that is not the
# timeout's (124: it had to stop mpirun, a hang).
ended_with_error() { # NAME STATUS
    if [ "$2" -eq 0 ]; then
        fail "$1: exit status 0"
        return 1
    elif [ "$2" -eq 124 ]; then
        fail "$1: hung (stopped by the timeout)"
        return 1
    fi
    return 0
}

# --- the same network on every rank, and as one process would train it ---
for rule in bp fa dfa kp; do
    case $rule in
        bp|fa) opt=(--opt sgd --lr 0.05) ;;
        *) opt=(--opt adam --lr 0.003) ;;
    esac
    args=("${BASE[@]}" --rule "$rule" "${opt[@]}")
    "$FA_TRAIN" "${args[@]}" --epochs 0 --save "$TMP/init-$rule.fa" >/dev/null 2>&1 \
        && "$FA_TRAIN" "${args[@]}" --save "$TMP/one-$rule.fa" >"$TMP/one-$rule.out" 2>&1 \
        || { fail "$rule: fa-train (the one-process reference) failed: $(tail -n 2 "$TMP/one-$rule.out")"; continue; }
    for np in 2 3; do
        name="$rule, $np ranks"
        out="$TMP/mpi-$rule-$np"
        FA_TRAIN_MPI_TEST="save-ranks=$out" run_mpi "$out" "$np" "${args[@]}" \
            --check-every 5 --save "$out.fa"
        st=$?
        if [ $st -ne 0 ]; then
            fail "$name: exit $st: $(cat "$out.err")"
            continue
        fi
        # Only rank 0 prints: one header, one final line.
        if [ "$(grep -c '^final: ' "$out.out")" -ne 1 ] || [ "$(grep -c '^net: ' "$out.out")" -ne 1 ] \
            || ! grep -q "^mpi: $np processes on 1 host .* batch 50 in shards of" "$out.out"; then
            fail "$name: expected one header, one mpi: line and one final line: $(cat "$out.out")"
        fi
        ranks=()
        for ((k = 0; k < np; k++)); do ranks+=("$out.rank$k.fa"); done
        if "$MODEL_DIFF" --exact "$out.fa" "${ranks[@]}" >"$out.exact" 2>&1; then
            pass "$name: the $np ranks' networks are bitwise identical (and equal the saved file)"
        else
            fail "$name: the ranks differ: $(cat "$out.exact")"
        fi
        # The loss printed is the mean over the global batch, as one process
        # prints it (4 decimals: equal up to the rounding of the last one).
        losses() { sed -n 's/^epoch *[1-9][0-9]*\/[0-9]* *loss \([0-9.]*\) .*/\1/p' "$1"; }
        if ! paste <(losses "$TMP/one-$rule.out") <(losses "$out.out") | awk '
                NF != 2 { bad = 1 } { n++; d = $1 - $2; if (d < 0) d = -d; if (d > 0.00015) bad = 1 }
                END { exit bad || n != 2 }'; then
            fail "$name: epoch losses differ from one process's: $(losses "$TMP/one-$rule.out" | tr '\n' ' ') vs $(losses "$out.out" | tr '\n' ' ')"
        fi
        if "$MODEL_DIFF" --tol 1e-4 --init "$TMP/init-$rule.fa" "$TMP/one-$rule.fa" "$out.fa" \
            >"$out.tol" 2>&1; then
            pass "$name: equals one process: $(sed 's/^.*: max/max/' "$out.tol")"
        else
            fail "$name: differs from one process: $(cat "$out.tol")"
        fi
    done
done

# The comparison can fail: a learning rate 1 % off is far outside it.
"$FA_TRAIN" "${BASE[@]}" --rule bp --opt sgd --lr 0.0505 --save "$TMP/off.fa" >/dev/null 2>&1
"$MODEL_DIFF" --tol 1e-4 --init "$TMP/init-bp.fa" "$TMP/one-bp.fa" "$TMP/off.fa" >"$TMP/off.tol" 2>&1
st=$?
if [ $st -eq 1 ] && grep -q EXCEEDED "$TMP/off.tol"; then
    pass "negative control: --lr 1 % off is detected: $(sed 's/^.*: max/max/' "$TMP/off.tol")"
else
    fail "negative control: model-diff exit $st: $(cat "$TMP/off.tol")"
fi

# --- one process under mpirun is fa-train, bit for bit ----------------------
args=("${BASE[@]}" --rule kp --opt adam --lr 0.003 --dropout 0.1)
"$FA_TRAIN" "${args[@]}" --save "$TMP/one-drop.fa" >/dev/null 2>&1
run_mpi "$TMP/np1" 1 "${args[@]}" --save "$TMP/np1.fa"
st=$?
if [ $st -eq 0 ] && cmp -s "$TMP/one-drop.fa" "$TMP/np1.fa"; then
    pass "one rank: the model file equals fa-train's byte for byte (KP, Adam, dropout)"
else
    fail "one rank: exit $st, model files differ: $(cat "$TMP/np1.err")"
fi

# --- dropout: every rank its own masks, one network ------------------------
out="$TMP/drop"
FA_TRAIN_MPI_TEST="save-ranks=$out" run_mpi "$out" 3 "${args[@]}"
st=$?
if [ $st -ne 0 ]; then
    fail "dropout, 3 ranks: exit $st: $(cat "$out.err")"
elif ! "$MODEL_DIFF" --exact "$out.rank0.fa" "$out.rank1.fa" "$out.rank2.fa" >"$out.exact" 2>&1; then
    fail "dropout, 3 ranks: the networks differ: $(cat "$out.exact")"
elif cmp -s "$out.rank0.fa" "$out.rank1.fa" || cmp -s "$out.rank1.fa" "$out.rank2.fa"; then
    fail "dropout, 3 ranks: two ranks share a dropout stream (identical files)"
else
    pass "dropout, 3 ranks: own dropout streams (files differ), identical networks"
fi

# --- --compare: one table from rank 0 ---------------------------------------
run_mpi "$TMP/cmp" 2 "${BASE[@]}" --compare bp,dfa --out "$TMP/cmp-out"
st=$?
if [ $st -eq 0 ] && [ "$(grep -c '^rule .*test acc' "$TMP/cmp.out")" -eq 1 ] \
    && grep -q '^DFA ' "$TMP/cmp.out" && [ -s "$TMP/cmp-out/curve-dfa.dat" ] \
    && [ "$(grep -c '^final: ' "$TMP/cmp.out")" -eq 2 ]; then
    pass "--compare bp,dfa on 2 ranks: one table, the curves"
else
    fail "--compare on 2 ranks: exit $st: $(tail -n 5 "$TMP/cmp.out") $(cat "$TMP/cmp.err")"
fi

# --- failures ----------------------------------------------------------------
# The failing jobs are independent and spend most of their time in mpirun's
# own abort path (a second or two each), so they run at the same time:
# start NAME HOOKS MPIRUN-ARGS... runs one in the background (HOOKS: the
# value of FA_TRAIN_MPI_TEST) and writes its status to NAME.st.
start() {
    local name=$1 hooks=$2
    shift 2
    (FA_TRAIN_MPI_TEST=$hooks "${MPIRUN[@]}" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
     echo $? >"$TMP/$name.st") &
}
# A missing data directory on one rank (mpirun's MPMD form gives rank 2 its
# own command line, as a node without the data would have).
start nodata "" -np 2 "$FA_TRAIN_MPI" "${BASE[@]}" : \
    -np 1 "$FA_TRAIN_MPI" --data "$TMP/nowhere" "${RUN[@]}" --arch 64-32-32-10
# A missing --load file on one rank.
start noload "" -np 1 "$FA_TRAIN_MPI" --data "$TMP/data" "${RUN[@]}" --load "$TMP/one-bp.fa" : \
    -np 1 "$FA_TRAIN_MPI" --data "$TMP/data" "${RUN[@]}" --load "$TMP/none.fa"
# A step that rank 1 alone cannot take (a NaN in its shard: the library
# refuses it): everyone stops at that batch, rank 0 saves the network as it
# was after the batch before.
start nan fault=nan:1:5 -np 3 "$FA_TRAIN_MPI" "${BASE[@]}" --save "$TMP/nan.fa"
# Ranks that drift apart: a rank moves one parameter by one ulp after step
# 3; the check every 5 steps sees it, or without periodic checks the one at
# the end of the epoch.
start drift fault=perturb:1:3 -np 3 "$FA_TRAIN_MPI" "${BASE[@]}" --check-every 5
start drift0 fault=perturb:2:3 -np 3 "$FA_TRAIN_MPI" "${BASE[@]}" --check-every 0
# Ranks that never were the same network: another --seed on rank 2, or a
# hyperparameter only rank 1 was given (seen in the model image).
start seed "" -np 2 "$FA_TRAIN_MPI" "${BASE[@]}" : -np 1 "$FA_TRAIN_MPI" "${BASE[@]}" --seed 2
start hp "" -np 1 "$FA_TRAIN_MPI" "${BASE[@]}" --rule kp : \
    -np 1 "$FA_TRAIN_MPI" "${BASE[@]}" --rule kp --hparam kp-decay=0.01
# A rank that is killed, or exits without MPI_Finalize: mpirun ends the
# job.  The model file given to --save is never half-written: here it
# exists before (a copy of a good model) and must still load afterwards,
# with no temporary file left next to it.
cp "$TMP/one-bp.fa" "$TMP/keep-kill.fa"
cp "$TMP/one-bp.fa" "$TMP/keep-exit.fa"
start kill fault=kill:1:5 -np 3 "$FA_TRAIN_MPI" "${BASE[@]}" --save "$TMP/keep-kill.fa"
start exit fault=exit:2:5 -np 3 "$FA_TRAIN_MPI" "${BASE[@]}" --save "$TMP/keep-exit.fa"
wait

# check NAME DESCRIPTION STATUS-WANTED PATTERN...: the job's status (any
# non-zero, or the one given), and each pattern (grep -E) in its stderr.
check() {
    local name=$1 what=$2 want=$3 st
    shift 3
    st=$(cat "$TMP/$name.st")
    ended_with_error "$what" "$st" || return 1
    if [ "$want" != any ] && [ "$st" -ne "$want" ]; then
        fail "$what: exit $st, expected $want: $(cat "$TMP/$name.err")"
        return 1
    fi
    for pattern in "$@"; do
        if ! grep -Eq -- "$pattern" "$TMP/$name.err"; then
            fail "$what: exit $st, no message like '$pattern': $(cat "$TMP/$name.err")"
            return 1
        fi
    done
    return 0
}

check nodata "missing data on rank 2" 1 \
    "^fa-train-mpi: rank 2 of 3: $TMP/nowhere/train-images-idx3-ubyte.gz: cannot read" \
    "^fa-train-mpi: rank 2 of 3 failed while loading the data: stopping all 3 processes" \
    && if grep -q '^epoch' "$TMP/nodata.out"; then fail "missing data on rank 2: training began"
       else pass "missing data on rank 2: exit 1, $(grep -m1 'rank 2 of 3:' "$TMP/nodata.err")"; fi

check noload "missing --load on rank 1" 1 \
    "^fa-train-mpi: rank 1 of 2: --load $TMP/none.fa: FA_ERR_IO" \
    "rank 1 of 2 failed while setting up the network" \
    && pass "missing --load on rank 1: exit 1, $(grep -m1 'rank 1 of 2:' "$TMP/noload.err")"

check nan "refused step on rank 1" 1 \
    "^fa-train-mpi: rank 1 of 3: rule bp diverged in epoch 1, batch 5 \(fa_net_compute_update: x has a NaN" \
    "^fa-train-mpi: rank 1 of 3 failed in epoch 1, batch 5: stopping all 3 processes" \
    "saved the network as it was after batch 4/12 of epoch 1" \
    && if "$FA_TRAIN" --data "$TMP/data" --threads 1 --load "$TMP/nan.fa" --epochs 0 >/dev/null 2>&1; then
           pass "refused step on rank 1: exit 1, rank and batch named, the network before it saved"
       else fail "refused step on rank 1: the saved network does not load"; fi

check drift "drift on rank 1" 1 \
    "^fa-train-mpi: the parameters differ between the processes after epoch 1, batch 5: rank 1 of 3 holds other values than rank 0" \
    && pass "drift on rank 1: detected at the check after step 5, exit 1"
check drift0 "drift on rank 2, --check-every 0" 1 \
    "the parameters differ between the processes after epoch 1: rank 2 of 3" \
    && pass "drift on rank 2, --check-every 0: detected at the end of epoch 1"

check seed "another --seed on rank 2" 1 \
    "the parameters differ between the processes before training: rank 2 of 3" \
    && if grep -q '^epoch' "$TMP/seed.out"; then fail "another --seed on rank 2: training began"
       else pass "another --seed on rank 2: refused before training"; fi
check hp "another hyperparameter on rank 1" 1 \
    "the networks \(model images.*\) differ between the processes before training: rank 1 of 2" \
    && pass "another hyperparameter on rank 1: refused before training"

for fault in kill exit; do
    case $fault in
        kill) said="mpirun noticed that process rank 1 .* exited on signal 9" ;;
        *) said="mpirun detected that one or more processes exited with non-zero status" ;;
    esac
    if check "$fault" "rank $fault" any "$said"; then
        if ! "$FA_TRAIN" --data "$TMP/data" --threads 1 --load "$TMP/keep-$fault.fa" --epochs 0 >/dev/null 2>&1 \
            || ls "$TMP" | grep -q "keep-$fault\.fa\."; then
            fail "rank $fault: the model file was damaged or a temporary file is left: $(ls "$TMP")"
        else
            pass "rank $fault: the job ended (exit $(cat "$TMP/$fault.st")), mpirun said why, the model file is whole"
        fi
    fi
done

# SIGTERM to mpirun (what Ctrl-C also does): mpirun sends the ranks SIGCONT,
# SIGTERM and, after odls_base_sigkill_timeout seconds (1 by default; 3
# here for a loaded machine), SIGKILL.  The ranks agree to stop, rank 0
# saves, the job ends.  Synchronised on rank 0's output through a FIFO:
# signalled only once epoch 1 has been printed.
fifo="$TMP/sig.fifo"
mkfifo "$fifo"
set -m
"${MPIRUN[@]}" --mca odls_base_sigkill_timeout 3 -np 3 "$FA_TRAIN_MPI" "${BASE[@]}" --arch 64-32-10 \
    --batch 20 --limit-train 200 --limit-test 100 --align-batch 0 --epochs 1000000 \
    --save "$TMP/sig.fa" >"$fifo" 2>"$TMP/sig.err" &
pid=$!
set +m
exec 3<"$fifo"
while IFS= read -r line <&3; do
    case $line in "epoch   1/"*) break ;; esac
done
# the timeout process's child is mpirun
mpirun_pid=$(pgrep -P "$pid" -x mpirun || pgrep -P "$pid")
kill -s TERM "${mpirun_pid:-$pid}" 2>/dev/null
cat <&3 >/dev/null
exec 3<&-
wait "$pid"
st=$?
if [ $st -eq 124 ]; then
    fail "SIGTERM to mpirun: hung"
elif [ $st -eq 0 ]; then
    fail "SIGTERM to mpirun: exit status 0"
elif ! grep -q "saved the network as it was after .* to $TMP/sig.fa" "$TMP/sig.err" \
    || ! "$FA_TRAIN" --data "$TMP/data" --threads 1 --load "$TMP/sig.fa" --epochs 0 >/dev/null 2>&1; then
    fail "SIGTERM to mpirun: exit $st, no loadable model saved: $(cat "$TMP/sig.err")"
else
    pass "SIGTERM to mpirun: exit $st, $(grep -m1 'SIGTERM: stopped' "$TMP/sig.err" | sed 's/^fa-train-mpi: //'), saved and loadable"
fi

# --- fa-train has no MPI options, fa-train-mpi documents them ---------------
if "$FA_TRAIN" --check-every 5 >/dev/null 2>&1; then
    fail "fa-train accepts --check-every"
elif ! "$FA_TRAIN_MPI" --help 2>/dev/null | grep -q -- '--check-every' \
    || "$FA_TRAIN" --help | grep -q -- '--check-every'; then
    fail "--check-every: listed by fa-train or not by fa-train-mpi"
else
    pass "--check-every: fa-train-mpi only"
fi

if [ $failures -ne 0 ]; then
    echo "$failures failure(s)"
    exit 1
fi
echo "all passed"
