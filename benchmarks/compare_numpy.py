#!/usr/bin/python3
"""Library against plain NumPy and against the GEMM limit, one run, one machine.

A NumPy implementation of BP, FA and DFA (tanh hidden layers, softmax
cross-entropy, SGD or Adam), written from the maths in the design notes and
not from the library's code, is first made to compute the same step as
libfeedbackalign: both start from the same parameters and feedback matrices,
take one step on the same batch, and must agree.  Only then are both timed on
Fashion-MNIST batches, together with the step's GEMMs called directly through
cblas_sgemm of the same OpenBLAS (same shapes, same transposes, same run) --
the limit no implementation on this BLAS can beat.

Layout: the library is column-major.  A C-contiguous NumPy array of shape
(batch, features) is the (features, batch) column-major matrix with
ld = features, so data batches pass without copies; likewise the NumPy
weights are kept as Wt = W^T of shape (n_{l-1}, n_l), whose C-order bytes are
the library's column-major W_l (n_l, n_{l-1}).

Usage:
  compare_numpy.py --lib BUILD/libfeedbackalign.so [--arch wide|deep|all|784-...]
                   [--opt sgd|adam|all] [--threads 1,2] [--steps N]
                   [--repeats N] [--out results/compare.csv] [--check-only]
Exit status: 0 success, 1 the implementations disagree (nothing is timed),
2 usage or setup error, 77 NumPy is not available (--check-only as a test).
"""

import argparse
import ctypes
import math
import os
import statistics
import sys
import time

try:
    import numpy as np
except ImportError:  # the meson test treats 77 as a skip
    print("numpy is not available to %s: skipped" % sys.executable)
    sys.exit(77)

# ------------------------------------------------------------ the library
from fa_ctypes import (FA_ACT_IDENTITY, FA_ACT_TANH, FA_HP_BETA1,  # noqa: E402
                       FA_HP_BETA2, FA_HP_EPSILON, FA_HP_LR, FA_LOSS_SOFTMAX_CE,
                       FA_OPT_ADAM, FA_OPT_SGD, FA_RULE_BP, FA_RULE_DFA,
                       FA_RULE_FA, Library, LibraryError, Net, OpenBLAS,
                       blas_objects_in_process)
from bench_common import (ARCHS, DATA_DIR, TRAIN_SAMPLES,  # noqa: E402
                          arch_name, load_data, parse_arch)

RULES = {"BP": FA_RULE_BP, "FA": FA_RULE_FA, "DFA": FA_RULE_DFA}
OPTS = {"sgd": FA_OPT_SGD, "adam": FA_OPT_ADAM}
LR = {"sgd": 0.05, "adam": 1e-3}
ADAM = dict(beta1=0.9, beta2=0.999, eps=1e-8)  # the library's defaults

c_float, c_void_p = ctypes.c_float, ctypes.c_void_p


class LibNet(Net):
    """A library network holding exactly the parameters of a NumPy net."""

    def __init__(self, lib, ref, rule, opt):
        L = len(ref.sizes) - 1
        super().__init__(lib, ref.sizes, [FA_ACT_TANH] * (L - 1) + [FA_ACT_IDENTITY],
                         FA_LOSS_SOFTMAX_CE, 1)
        self.set_rule(RULES[rule])
        self.set_optimizer(OPTS[opt])
        self.set_hparam(FA_HP_LR, ref.lr)
        if opt == "adam":
            self.set_hparam(FA_HP_BETA1, ADAM["beta1"])
            self.set_hparam(FA_HP_BETA2, ADAM["beta2"])
            self.set_hparam(FA_HP_EPSILON, ADAM["eps"])
        flat = np.zeros(self.n_params, dtype=np.float32)
        for (wt_view, b_view), wt, b in zip(self.layer_views(flat), ref.wt, ref.b):
            wt_view[...] = wt  # Wt C-order == W col-major
            b_view[...] = b
        self.set_params(flat)
        for layer, fb in ref.feedback_by_layer().items():
            self.set_feedback(RULES[rule], layer, fb)

    def step(self, x, t):
        """x (batch, n_0), t (batch, n_L): C-contiguous float32."""
        return self.train_step(x, t)

    def layers(self):
        return [a.copy() for pair in self.layer_views(self.get_params())
                for a in pair]


# ----------------------------------------------------- the NumPy implementation

class NumpyNet:
    """Dense tanh net, softmax cross-entropy, trained by BP, FA or DFA.

    Batch-first: H_l is (batch, n_l); the weights are Wt_l = W_l^T of shape
    (n_{l-1}, n_l), so A_l = H_{l-1} Wt_l + b_l.  Feedback matrices are kept
    the same way, transposed: Ft_l = F_l^T (n_{l-1}, n_l) for FA and
    Gt_l = G_l^T (n_l, c) for DFA, stacked into one (sum n_l, c) matrix so all
    hidden errors of DFA come from one product with e.
    """

    def __init__(self, sizes, rule, opt, seed):
        rng = np.random.default_rng(seed)
        self.sizes, self.rule, self.opt, self.lr = sizes, rule, opt, LR[opt]
        L = len(sizes) - 1
        self.wt, self.b = [], []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            r = math.sqrt(6.0 / (n_in + n_out))  # Xavier uniform
            self.wt.append(rng.uniform(-r, r, (n_in, n_out)).astype(np.float32))
            # Non-zero biases, so that the check covers the bias path.
            self.b.append(rng.uniform(-0.1, 0.1, n_out).astype(np.float32))
        self.ft, self.gt = [None] * (L + 1), None
        if rule == "FA":  # F_l for l = 2..L, U[-1/sqrt(n_{l-1}), ...]
            for l in range(2, L + 1):
                s = 1.0 / math.sqrt(sizes[l - 1])
                self.ft[l] = rng.uniform(-s, s, (sizes[l - 1], sizes[l])).astype(
                    np.float32)
        elif rule == "DFA":  # G_l for l = 1..L-1, scale 1/sqrt(n_l)
            self.gt = np.concatenate([
                rng.uniform(-1.0, 1.0, (sizes[l], sizes[-1])) / math.sqrt(sizes[l])
                for l in range(1, L)]).astype(np.float32)
        self.params = [p for pair in zip(self.wt, self.b) for p in pair]
        if opt == "adam":
            self.m = [np.zeros_like(p) for p in self.params]
            self.v = [np.zeros_like(p) for p in self.params]
            self.t = 0

    def feedback_by_layer(self):
        """Layer -> the library's matrix as a (cols, rows) C-order array."""
        L = len(self.sizes) - 1
        if self.rule == "FA":
            return {l: self.ft[l] for l in range(2, L + 1)}
        if self.rule == "DFA":
            out, o = {}, 0
            for l in range(1, L):
                out[l] = self.gt[o:o + self.sizes[l]]
                o += self.sizes[l]
            return out
        return {}

    def step(self, x, t):
        m, L = x.shape[0], len(self.sizes) - 1
        hs = [x]
        for l in range(L):
            a = hs[-1] @ self.wt[l]
            a += self.b[l]
            if l < L - 1:
                np.tanh(a, out=a)
            hs.append(a)
        # Softmax cross-entropy, shifted by the row maximum; the 1/m lives here.
        z = hs[-1] - hs[-1].max(axis=1, keepdims=True)
        ez = np.exp(z)
        s = ez.sum(axis=1, keepdims=True)
        loss = float(-(t * (z - np.log(s))).sum() / m)
        e = (ez / s - t) / np.float32(m)

        deltas = [None] * (L + 1)
        deltas[L] = e
        if self.rule == "DFA":
            d = e @ self.gt.T  # every hidden error at once: (m, sum n_l)
            o = 0
            for l in range(1, L):
                h = hs[l]
                deltas[l] = d[:, o:o + self.sizes[l]] * (1.0 - h * h)
                o += self.sizes[l]
        else:
            for l in range(L - 1, 0, -1):
                back = self.wt[l] if self.rule == "BP" else self.ft[l + 1]
                h = hs[l]
                deltas[l] = (deltas[l + 1] @ back.T) * (1.0 - h * h)
        grads = []
        for l in range(1, L + 1):
            grads.append(hs[l - 1].T @ deltas[l])
            grads.append(deltas[l].sum(axis=0))

        if self.opt == "sgd":
            for p, g in zip(self.params, grads):
                p -= self.lr * g
        else:
            self.t += 1
            b1, b2, eps = ADAM["beta1"], ADAM["beta2"], ADAM["eps"]
            c1, c2 = 1.0 - b1 ** self.t, 1.0 - b2 ** self.t
            for p, g, mm, vv in zip(self.params, grads, self.m, self.v):
                mm *= b1
                mm += (1.0 - b1) * g
                vv *= b2
                vv += (1.0 - b2) * (g * g)
                p -= self.lr * (mm / c1) / (np.sqrt(vv / c2) + eps)
        return loss


# --------------------------------------------------------------- the check

def agreement(before, lib_after, np_after):
    """Largest parameter difference relative to the largest parameter, and
    the update difference relative to the update (both over all layers)."""
    dp = max(float(np.abs(a.astype(np.float64) - b).max())
             for a, b in zip(lib_after, np_after))
    pmax = max(float(np.abs(b).max()) for b in np_after)
    du2 = u2 = 0.0
    for p0, a, b in zip(before, lib_after, np_after):
        u_lib = a.astype(np.float64) - p0
        u_np = b.astype(np.float64) - p0
        du2 += float(((u_lib - u_np) ** 2).sum())
        u2 += float((u_np ** 2).sum())
    if u2 == 0.0:  # no update at all (e.g. one softmax output): must match
        return dp / pmax, 0.0 if du2 == 0.0 else float("inf")
    return dp / pmax, math.sqrt(du2 / u2)


def make_pair(lib, sizes, rule, opt, seed=2024):
    ref = NumpyNet(sizes, rule, opt, seed)
    return ref, LibNet(lib, ref, rule, opt)


def check_one_step(lib, sizes, rule, opt, x, t):
    ref, net = make_pair(lib, sizes, rule, opt)
    before = [p.astype(np.float64) for p in ref.params]
    loss_lib = net.step(x, t)
    loss_np = ref.step(x, t)
    rel_p, rel_u = agreement(before, net.layers(), ref.params)
    rel_loss = abs(loss_lib - loss_np) / max(abs(loss_np), 1e-30)
    # Float32 rounding of the same sums in another order stays near 1e-6 of
    # the update under SGD; a wrong rule, layout or transpose shows as O(1).
    # Adam's first step is lr * g / (|g| + eps), about lr * sign(g): where
    # |g| is near eps, rounding differences of g are amplified to a sizeable
    # part of lr in single coordinates, so the largest single difference is
    # held to 1e-3 there, while the update as a whole must still agree.
    tol_p, tol_u = (1e-4, 1e-4) if opt == "sgd" else (1e-3, 3e-4)
    ok = rel_p <= tol_p and rel_u <= tol_u and rel_loss <= 1e-5
    print("check %-13s %-3s %-4s loss lib %.6f numpy %.6f  max|dp|/max|p| %.1e"
          "  ||du||/||u|| %.1e  %s" % (arch_name(sizes), rule, opt, loss_lib,
                                      loss_np, rel_p, rel_u,
                                      "ok" if ok else "DISAGREES"))
    return ok


# ------------------------------------------------------------- the limit

class Sgemm:
    """cblas_sgemm of the OpenBLAS already loaded by the library, called at
    exactly the step's shapes and transposes (column-major)."""

    COL_MAJOR, NO_TRANS, TRANS = 102, 111, 112

    def __init__(self):
        self.openblas = OpenBLAS()
        f = self.openblas.dll.cblas_sgemm
        f.restype = None
        f.argtypes = [ctypes.c_int] * 6 + [c_float, c_void_p, ctypes.c_int,
                                           c_void_p, ctypes.c_int, c_float,
                                           c_void_p, ctypes.c_int]
        self.f = f

    def set_threads(self, n):
        self.openblas.set_threads(n)

    def plan(self, sizes, rule, m):
        """Argument tuples for one step's GEMMs, and their FLOPs.
          forward  A_l (n_l, m) = W_l H_{l-1}                        NN
          gradient dW_l (n_l, n_{l-1}) = D_l H_{l-1}^T                NT
          BP/FA    D_l (n_l, m) = B_{l+1}^T D_{l+1}, l = L-1..1       TN
          DFA      D (sum n_l, m) = G^T e, G (c, sum n_l)             TN"""
        L, n = len(sizes) - 1, sizes
        rng = np.random.default_rng(1)
        keep = []

        def buf(rows, cols):
            a = (rng.random(rows * cols, dtype=np.float32) - 0.5) * 0.01
            keep.append(a)
            return a.ctypes.data

        N, T = self.NO_TRANS, self.TRANS
        h = [buf(n[0], m)] + [buf(n[l], m) for l in range(1, L + 1)]
        d = [None] + [buf(n[l], m) for l in range(1, L + 1)]
        w = [None] + [buf(n[l], n[l - 1]) for l in range(1, L + 1)]
        dw = [None] + [buf(n[l], n[l - 1]) for l in range(1, L + 1)]
        fb = [None] + [buf(n[l], n[l - 1]) for l in range(1, L + 1)]
        ops, flops = [], 0.0

        def add(ta, tb, mm, nn, kk, a, lda, b, ldb, c, ldc):
            nonlocal flops
            ops.append((self.COL_MAJOR, ta, tb, mm, nn, kk, 1.0, a, lda, b, ldb,
                        0.0, c, ldc))
            flops += 2.0 * mm * nn * kk

        for l in range(1, L + 1):
            add(N, N, n[l], m, n[l - 1], w[l], n[l], h[l - 1], n[l - 1], h[l], n[l])
        if rule == "DFA" and L > 1:
            nh = sum(n[1:L])
            add(T, N, nh, m, n[L], buf(n[L], nh), n[L], d[L], n[L], buf(nh, m), nh)
        for l in range(L, 0, -1):
            add(N, T, n[l], n[l - 1], m, d[l], n[l], h[l - 1], n[l - 1], dw[l], n[l])
            if l >= 2 and rule != "DFA":
                add(T, N, n[l - 1], m, n[l], w[l] if rule == "BP" else fb[l], n[l],
                    d[l], n[l], d[l - 1], n[l - 1])
        return ops, flops, keep

    def run(self, ops):
        f = self.f
        for args in ops:
            f(*args)


def anchors_flops(sizes, rule, m):
    """The FLOP count of anchors.md, as a cross-check of the plan."""
    L = len(sizes) - 1
    f = sum(4.0 * m * sizes[l] * sizes[l - 1] for l in range(1, L + 1))
    if rule == "DFA":
        f += 2.0 * m * sizes[-1] * sum(sizes[1:L])
    else:
        f += sum(2.0 * m * sizes[l] * sizes[l - 1] for l in range(2, L + 1))
    return f


# ------------------------------------------------------------------ timing

def time_rules(lib, gemm, sizes, opt, x, t, n_batches, batch, steps, repeats,
               stat):
    """Seconds per step of the library, NumPy and the limit for every rule:
    {rule: (lib, numpy, limit, flops)}."""
    batches = [(x[i * batch:(i + 1) * batch], t[i * batch:(i + 1) * batch])
               for i in range(n_batches)]
    setup = {}
    for rule in RULES:
        ref, net = make_pair(lib, sizes, rule, opt)
        net.reserve(batch)
        ops, flops, keep = gemm.plan(sizes, rule, batch)
        if abs(flops - anchors_flops(sizes, rule, batch)) > 0.5:
            raise RuntimeError("GEMM plan FLOPs disagree with the anchors formula")
        for i in range(3):  # warm-up: pages touched, BLAS threads running
            net.step(*batches[i])
            ref.step(*batches[i])
            gemm.run(ops)
        setup[rule] = (ref, net, ops, flops, keep)
    times = {rule: ([], [], []) for rule in RULES}
    k = 3
    # Every repeat runs each rule's library, NumPy and limit blocks back to
    # back, so that load from other processes, which comes and goes within
    # seconds, falls on all nine alike and the ratios stay meaningful.
    for _ in range(repeats):
        idx = [(k + i) % n_batches for i in range(steps)]
        k += steps
        for rule in RULES:
            ref, net, ops, _flops, _keep = setup[rule]
            t0 = time.perf_counter()
            for i in idx:
                net.step(*batches[i])
            t1 = time.perf_counter()
            for i in idx:
                ref.step(*batches[i])
            t2 = time.perf_counter()
            for _i in idx:
                gemm.run(ops)
            t3 = time.perf_counter()
            for lst, dt in zip(times[rule], (t1 - t0, t2 - t1, t3 - t2)):
                lst.append(dt / steps)
    f = statistics.median if stat == "median" else min
    out = {rule: dict(lib=f(times[rule][0]), numpy=f(times[rule][1]),
                      limit=f(times[rule][2]), flops=setup[rule][3])
           for rule in RULES}
    # Ratios from times taken within the same repeat (a few hundred ms
    # apart) see the same load; with "median" they are the median of the
    # per-repeat ratios, with "min" the ratio of the minima.
    for rule in RULES:
        lib_t, np_t, lim_t = times[rule]
        pairs = {"speedup": (np_t, lib_t), "over_limit": (lib_t, lim_t),
                 "lib_vs_bp": (lib_t, times["BP"][0]),
                 "numpy_vs_bp": (np_t, times["BP"][1])}
        for key, (num, den) in pairs.items():
            if stat == "median":
                out[rule][key] = statistics.median(a / b for a, b in zip(num, den))
            else:
                out[rule][key] = min(num) / min(den)
    return out


# -------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lib", required=True, help="path to libfeedbackalign.so")
    ap.add_argument("--arch", default="wide",
                    help="wide (784-1000-10), deep (784-240x7-10), all, or a "
                         "spec such as 784-500-500-10 [wide]")
    ap.add_argument("--opt", default="sgd", choices=["sgd", "adam", "all"])
    ap.add_argument("--threads", default="1,2",
                    help="OpenBLAS thread counts, comma-separated [1,2]")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=4,
                    help="steps per timed block [4]")
    ap.add_argument("--repeats", type=int, default=21,
                    help="timed repeats per rule [21]")
    ap.add_argument("--stat", default="median", choices=["median", "min"],
                    help="statistic over the repeats; min suits a machine "
                         "shared with other jobs, where load only adds time "
                         "[median]")
    ap.add_argument("--data", default=DATA_DIR)
    ap.add_argument("--out", default=os.path.join("results", "compare.csv"))
    ap.add_argument("--check-only", action="store_true",
                    help="only the one-step agreement (no timing)")
    args = ap.parse_args()

    archs = (list(ARCHS.values()) if args.arch == "all" else [args.arch])
    try:
        archs = [parse_arch(a) for a in archs]
        threads = [int(s) for s in args.threads.split(",")]
    except ValueError as exc:
        ap.error(str(exc))
    opts = ["sgd", "adam"] if args.opt == "all" else [args.opt]
    if args.batch < 1 or args.steps < 1 or args.repeats < 1 or min(threads) < 1:
        ap.error("batch, steps, repeats and threads must be >= 1")

    try:
        lib = Library(args.lib)
        gemm = Sgemm()
    except OSError as exc:
        print("cannot load: %s" % exc, file=sys.stderr)
        return 2
    print("libfeedbackalign %s: %s" % (lib.version(), lib.path))
    print("numpy %s; OpenBLAS %s" % (np.__version__, gemm.openblas.config()))
    print("OpenBLAS objects in this process: %s"
          % ", ".join(blas_objects_in_process()))

    # The check: every rule and optimiser, every architecture, one batch.
    ok = True
    data = {}
    for sizes in archs:
        data[tuple(sizes)] = load_data(args.data, sizes[0], sizes[-1], args.batch)
        x, t, _, source = data[tuple(sizes)]
        print("data for %s: %s" % (arch_name(sizes), source))
        for opt in OPTS:  # both optimisers, whichever is timed
            for rule in RULES:
                try:
                    ok &= check_one_step(lib, sizes, rule, opt, x[:args.batch],
                                         t[:args.batch])
                except LibraryError as exc:
                    print("check %s %s %s: library error: %s" % (
                        arch_name(sizes), rule, opt, exc))
                    ok = False
    if not ok:
        print("the library and NumPy disagree: not timing")
        return 1
    if args.check_only:
        print("all one-step checks agree")
        return 0

    cols = ["arch", "rule", "optimizer", "threads", "batch", "lib_epoch_s",
            "numpy_epoch_s", "limit_epoch_s", "lib_speedup_vs_numpy",
            "lib_over_limit", "lib_vs_bp", "numpy_vs_bp", "lib_gflops"]
    rows = []
    steps_per_epoch = TRAIN_SAMPLES / args.batch
    for nt in threads:
        gemm.set_threads(nt)
        for sizes in archs:
            x, t, n_batches, _ = data[tuple(sizes)]
            for opt in opts:
                res = time_rules(lib, gemm, sizes, opt, x, t, n_batches,
                                 args.batch, args.steps, args.repeats, args.stat)
                for rule in RULES:
                    q = res[rule]
                    rows.append(dict(
                        arch=arch_name(sizes), rule=rule, optimizer=opt,
                        threads=nt, batch=args.batch,
                        lib_epoch_s=q["lib"] * steps_per_epoch,
                        numpy_epoch_s=q["numpy"] * steps_per_epoch,
                        limit_epoch_s=q["limit"] * steps_per_epoch,
                        lib_speedup_vs_numpy=q["speedup"],
                        lib_over_limit=q["over_limit"],
                        lib_vs_bp=q["lib_vs_bp"], numpy_vs_bp=q["numpy_vs_bp"],
                        lib_gflops=q["flops"] / q["lib"] * 1e-9))
                    r = rows[-1]
                    print("timed %s %s %s threads %d: lib %.2f s, numpy %.2f s,"
                          " limit %.2f s per epoch" % (
                              r["arch"], rule, opt, nt, r["lib_epoch_s"],
                              r["numpy_epoch_s"], r["limit_epoch_s"]),
                          flush=True)

    print("\nOne epoch = %d samples = %.2f steps of batch %d, from the %s of"
          " %d repeats of %d steps.\n" % (TRAIN_SAMPLES, steps_per_epoch,
                                          args.batch, args.stat, args.repeats,
                                          args.steps))
    head = ("arch", "rule", "opt", "thr", "lib s", "numpy s", "limit s",
            "lib/numpy x", "lib/limit", "vs BP",
            "GFLOP/s")
    fmt = "%-13s %-4s %-4s %3s %8s %8s %8s %11s %9s %6s %8s"
    print(fmt % head)
    for r in rows:
        print(fmt % (r["arch"], r["rule"], r["optimizer"], r["threads"],
                     "%.2f" % r["lib_epoch_s"], "%.2f" % r["numpy_epoch_s"],
                     "%.2f" % r["limit_epoch_s"],
                     "%.2f" % r["lib_speedup_vs_numpy"],
                     "%.3f" % r["lib_over_limit"], "%.3f" % r["lib_vs_bp"],
                     "%.1f" % r["lib_gflops"]))
    out_dir = os.path.dirname(args.out)
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
    with open(args.out, "w") as f:
        f.write(",".join(cols) + "\n")
        for r in rows:
            f.write(",".join(("%.6g" % r[c]) if isinstance(r[c], float)
                             else str(r[c]) for c in cols) + "\n")
    print("\nCSV: %s" % args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
