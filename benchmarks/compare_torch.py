#!/usr/bin/python3
"""Library against PyTorch on the CPU: the same step checked first, then timed.

The same dense networks (tanh hidden layers, softmax cross-entropy as a mean
over the batch) trained by the same rules (BP, FA, DFA) and optimisers (SGD,
Adam), written in PyTorch from the maths -- not from the library's code --
the way a PyTorch user would write them:

  BP   autograd through F.linear and torch.tanh;
  FA   autograd, each linear layer after the first a torch.autograd.Function
       whose backward uses a fixed matrix B of W's shape
       (grad_input = grad_output @ B), as BioTorch does it;
  DFA  by hand under torch.no_grad: the forward pass, then every hidden error
       from one product of the output error e with the stacked feedback
       G = [G_1|...|G_{L-1}] (n_L, sum n_l), kept column-major as in the
       library, times f'(A_l); weight gradients delta_l^T H_{l-1}.

The optimiser is torch.optim.SGD or torch.optim.Adam in every case.

1. Check.  For every rule and optimiser on each architecture timed, a
   library network is created, given non-zero biases, and its parameters and
   feedback matrices are copied into the PyTorch model (fa_net_get_params,
   fa_net_get_feedback: column-major, so a C-order array of shape
   (cols, rows) has the library's bytes).  Both then take two steps, on the
   same two Fashion-MNIST batches; after each step the losses and every
   parameter tensor must agree within the tolerances below.  If anything
   disagrees, exit 1 and nothing is timed.  --self-test shows that the check
   can fail: it feeds it seven deliberate mistakes (a rule swapped, layouts
   read row-major, DFA without f', a learning rate 1 % off, Adam's betas
   changed) and exits 1 unless every one is caught.
2. Time.  Fresh pairs (the library's own initialisation, copied into
   PyTorch) train on the same Fashion-MNIST batches in interleaved short
   blocks -- library, PyTorch, PyTorch, library, ... (the order rotates
   from repeat to repeat) -- at each thread count n: n OpenBLAS threads
   (openblas_set_num_threads) for the library and for PyTorch, whose
   matrix products go through the same OpenBLAS, and torch.set_num_threads
   for PyTorch's own (OpenMP) element-wise kernels: by default both n and 1
   (--torch-intraop), as separate PyTorch models in the same rotation,
   because on 2 busy cores PyTorch is often faster with 1.  Reported: median
   ms/step of each and the median over repeats of the per-repeat ratio
   torch/library (> 1: the library is faster).

Threads: Debian's torch runs its element-wise kernels on OpenMP (libgomp)
and its matrix products on OpenBLAS's own pthreads.  By default idle
libgomp workers busy-wait, and on a 2-core machine they then hold the cores
that OpenBLAS's threads need (and the other way round): in one run here,
under load, a 784-1000-10 BP step with 2 + 2 threads took 69 ms instead of
8.  That is a clash of two thread pools, not PyTorch's speed, so this script
sets OMP_WAIT_POLICY=PASSIVE before importing torch unless the environment
sets it (the header says which); the library does not use OpenMP.

Usage:
  compare_torch.py --lib BUILD/libfeedbackalign.so [--arch wide|deep|all|784-...]
                   [--opt sgd|adam|all] [--rules BP,FA,DFA] [--threads 1,2]
                   [--torch-intraop same,1] [--steps N] [--repeats N]
                   [--out results/compare-torch.csv] [--check-only] [--self-test]
Exit status: 0 success, 1 the implementations disagree (nothing is timed) or
the self-test missed a mistake, 2 usage or setup error, 77 torch or NumPy is
not available to this interpreter (as a meson test: a skip).
"""

import argparse
import math
import os
import statistics
import sys
import time
from collections import namedtuple
from functools import partial
from dataclasses import dataclass, replace

# Before torch loads libgomp, which reads it once (see "Threads" above).
OMP_WAIT_POLICY_SOURCE = ("environment" if "OMP_WAIT_POLICY" in os.environ
                          else "set by this script")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as exc:  # the meson tests treat 77 as a skip
    print("%s is not available to %s: skipped" % (exc.name, sys.executable))
    sys.exit(77)

from bench_common import (ARCHS, DATA_DIR, arch_name,  # noqa: E402
                          load_data, parse_arch)
import fa_ctypes as fa  # noqa: E402

LR = {"sgd": 0.05, "adam": 1e-3}
LIB_OPT = {"sgd": fa.FA_OPT_SGD, "adam": fa.FA_OPT_ADAM}

# One batch in both forms: x (m, n_0) and one-hot t (m, n_L), C-contiguous
# float32 NumPy for the library; the same memory as torch tensors, with the
# class indices for torch's cross-entropy.
Batch = namedtuple("Batch", "x t x_torch labels onehot")


@dataclass(frozen=True)
class Hyper:
    """Optimiser settings; beta1, beta2 and eps are the library's defaults."""
    lr: float
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8


# ------------------------------------------------------------ architectures

@dataclass(frozen=True)
class Dense:
    n_in: int
    n_out: int
    act: str  # "tanh" or "identity"


@dataclass(frozen=True)
class Arch:
    """A network as a spec: its layers in order.  Dense only for now; a
    convolutional layer (LeNet) becomes another layer kind here, which the
    library side and the PyTorch models each learn to build."""
    sizes: tuple

    @property
    def name(self):
        return arch_name(list(self.sizes))

    @property
    def layers(self):
        L = len(self.sizes) - 1
        return [Dense(self.sizes[l], self.sizes[l + 1],
                      "tanh" if l < L - 1 else "identity") for l in range(L)]

    def lib_activations(self):
        return [fa.FA_ACT_TANH if d.act == "tanh" else fa.FA_ACT_IDENTITY
                for d in self.layers]


# ------------------------------------------------------- the PyTorch models

class LinearFA(torch.autograd.Function):
    """y = x W^T + b whose backward sends the error through a fixed B of W's
    shape (n_out, n_in) instead of W: grad_x = grad_y B (BioTorch's FA)."""

    @staticmethod
    def forward(ctx, x, weight, B, bias):
        ctx.save_for_backward(x, B)
        return torch.addmm(bias, x, weight.t())

    @staticmethod
    def backward(ctx, grad_y):
        x, B = ctx.saved_tensors
        grad_x = grad_y.mm(B) if ctx.needs_input_grad[0] else None
        return grad_x, grad_y.t().mm(x), None, grad_y.sum(0)


def make_optimizer(params, opt, hp, foreach):
    if opt == "sgd":
        return torch.optim.SGD(params, lr=hp.lr, foreach=foreach)
    return torch.optim.Adam(params, lr=hp.lr, betas=(hp.beta1, hp.beta2),
                            eps=hp.eps, foreach=foreach)


class TorchNet:
    """Parameters W_l (n_l, n_{l-1}) (nn.Linear's orientation) and b_l, and
    a torch.optim optimiser over [W_1, b_1, W_2, ...].  A rule is a subclass:
    `lib_rule` names the library's rule, `feedback_layers` the layers whose
    feedback matrix the library holds (they are handed to __init__ in the
    header's orientation: F_l (n_l, n_{l-1}), G_l (n_L, n_l)), and `step`
    trains on one batch and returns the loss before the update."""

    lib_rule = None
    uses_autograd = True

    @staticmethod
    def feedback_layers(n_layers):
        return []

    def __init__(self, arch, weights, biases, feedback, opt, hp, foreach):
        self.spec, self.sizes = arch.layers, arch.sizes
        grad = self.uses_autograd
        self.W = [torch.tensor(w).requires_grad_(grad) for w in weights]
        self.b = [torch.tensor(b).requires_grad_(grad) for b in biases]
        self.params = [p for pair in zip(self.W, self.b) for p in pair]
        self.opt = make_optimizer(self.params, opt, hp, foreach)

    def step(self, x, labels, onehot):
        raise NotImplementedError

    def numpy_params(self):
        """[W_1, b_1, ...] as NumPy arrays, for the check."""
        return [p.detach().numpy() for p in self.params]

    def numpy_grads(self):
        """The last step's update directions [dW_1, db_1, ...]."""
        return [p.grad.numpy() for p in self.params]


class AutogradNet(TorchNet):
    """Forward through `linear`, loss, loss.backward(), optimiser step."""

    def linear(self, l, h):
        return F.linear(h, self.W[l], self.b[l])

    def forward(self, x):
        h = x
        for l, layer in enumerate(self.spec):
            h = self.linear(l, h)
            if layer.act == "tanh":
                h = torch.tanh(h)
        return h

    def step(self, x, labels, onehot):
        loss = F.cross_entropy(self.forward(x), labels)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return loss


class BPNet(AutogradNet):
    lib_rule = fa.FA_RULE_BP


class FANet(AutogradNet):
    """Layer 1's input needs no error, so it stays a plain F.linear; every
    later layer l sends its error back through the fixed F_l."""

    lib_rule = fa.FA_RULE_FA

    @staticmethod
    def feedback_layers(n_layers):
        return list(range(2, n_layers + 1))

    def __init__(self, arch, weights, biases, feedback, opt, hp, foreach):
        super().__init__(arch, weights, biases, feedback, opt, hp, foreach)
        # B[l] stands in for W[l] (0-based), in W's shape.
        self.B = {l - 1: torch.tensor(f) for l, f in feedback.items()}

    def linear(self, l, h):
        if l == 0:
            return super().linear(l, h)
        return LinearFA.apply(h, self.W[l], self.B[l], self.b[l])


class DFANet(TorchNet):
    """By hand, batch-first: H_l (m, n_l), e (m, n_L).  The hidden errors of
    all layers come from one product e G, G = [G_1|...|G_{L-1}] (n_L, H)
    stored column-major (a transposed view of a C-order (H, n_L) tensor, the
    bytes the library holds); delta_l = (e G)[:, block l] * (1 - H_l^2)."""

    lib_rule = fa.FA_RULE_DFA
    uses_autograd = False

    @staticmethod
    def feedback_layers(n_layers):
        return list(range(1, n_layers))

    def __init__(self, arch, weights, biases, feedback, opt, hp, foreach):
        super().__init__(arch, weights, biases, feedback, opt, hp, foreach)
        gt = np.concatenate([feedback[l].T for l in sorted(feedback)])
        self.G = torch.tensor(gt).t()
        self.one = torch.tensor(1.0)
        for p in self.params:  # filled in place by every step
            p.grad = torch.zeros_like(p)
        self.m = None

    def _buffers(self, m):
        if self.m != m:
            self.A = [torch.empty(m, d.n_out) for d in self.spec]
            self.D = torch.empty(m, self.G.shape[1])
            self.fprime = [torch.empty(m, d.n_out) for d in self.spec[:-1]]
            self.m = m

    @torch.no_grad()
    def step(self, x, labels, onehot):
        m, L = x.shape[0], len(self.spec)
        self._buffers(m)
        hs = [x]
        for l, layer in enumerate(self.spec):
            a = torch.addmm(self.b[l], hs[-1], self.W[l].t(), out=self.A[l])
            if layer.act == "tanh":
                a.tanh_()
            hs.append(a)
        logp = torch.log_softmax(hs[-1], dim=1)
        loss = F.nll_loss(logp, labels)
        e = logp.exp_().sub_(onehot).div_(m)  # dL/dA_L = (softmax - T) / m
        torch.mm(e, self.G, out=self.D)
        deltas, o = [], 0
        for l in range(1, L):
            d = self.D[:, o:o + self.sizes[l]]
            o += self.sizes[l]
            fp = torch.addcmul(self.one, hs[l], hs[l], value=-1.0,
                               out=self.fprime[l - 1])  # tanh' = 1 - H^2
            deltas.append(d.mul_(fp))
        deltas.append(e)
        for l, d in enumerate(deltas):
            torch.mm(d.t(), hs[l], out=self.W[l].grad)
            torch.sum(d, 0, out=self.b[l].grad)
        self.opt.step()
        return loss


RULES = {"BP": BPNet, "FA": FANet, "DFA": DFANet}


# ------------------------------------------------------------- pairs

def colmajor(buf, rows, cols):
    """The header's (rows, cols) matrix from its column-major bytes."""
    return buf.reshape(cols, rows).T


def rowmajor(buf, rows, cols):
    """The classic layout mistake (used only by --self-test)."""
    return buf.reshape(rows, cols)


def library_net(lib, arch, rule, opt, hp, seed, bias_scale=0.0):
    """A library network with the rule's feedback drawn; non-zero biases
    U[-bias_scale, bias_scale] if asked (drawn here, set through
    fa_net_set_params)."""
    net = fa.Net(lib, arch.sizes, arch.lib_activations(),
                 fa.FA_LOSS_SOFTMAX_CE, seed)
    net.set_rule(RULES[rule].lib_rule)
    net.set_optimizer(LIB_OPT[opt])
    net.set_hparam(fa.FA_HP_LR, hp.lr)
    net.set_hparam(fa.FA_HP_BETA1, hp.beta1)
    net.set_hparam(fa.FA_HP_BETA2, hp.beta2)
    net.set_hparam(fa.FA_HP_EPSILON, hp.eps)
    if bias_scale:
        flat = net.get_params()
        rng = np.random.default_rng(seed)
        for _, b in net.layer_views(flat):
            b[...] = rng.uniform(-bias_scale, bias_scale, b.size)
        net.set_params(flat)
    return net


def library_layers(net, layout=colmajor):
    """[W_1, b_1, ...] of a library network, W_l as (n_l, n_{l-1})."""
    flat = net.get_params()
    out = []
    for (wo, bo), n_in, n_out in zip(net.offsets, net.sizes[:-1], net.sizes[1:]):
        out.append(layout(flat[wo:wo + n_in * n_out], n_out, n_in))
        out.append(flat[bo:bo + n_out])
    return out


def torch_copy(net, arch, rule, opt, hp, foreach, layout=colmajor):
    """The PyTorch model of `rule` starting from the library network's
    parameters and feedback matrices."""
    layers = library_layers(net, layout)
    lib_rule = RULES[rule].lib_rule
    feedback = {}
    for l in RULES[rule].feedback_layers(len(arch.layers)):
        rows, cols = net.feedback_shape(lib_rule, l)
        feedback[l] = layout(net.get_feedback(lib_rule, l).ravel(), rows, cols)
    c = np.ascontiguousarray
    return RULES[rule](arch, [c(w) for w in layers[0::2]],
                       [c(b) for b in layers[1::2]],
                       {l: c(f) for l, f in feedback.items()}, opt, hp, foreach)


# ----------------------------------------------------------------- the check

# Float32 rounding of the same sums in another order moves an update by
# 1e-6 to 2e-5 of itself (and the loss by a few 1e-7, or 1e-6 after an Adam
# step: the library keeps hyperparameters as float32, so its 1 - beta2 is
# 1 - 0.999f, 1.3e-5 away from torch.optim's double 0.001); a wrong rule,
# transpose or layout moves an update by O(1), a learning rate 1 % off by
# 1e-2.  One exception: Adam's step is about lr * g / (|g| + eps) whatever
# the size of g, so where |g| is within a few eps of zero, the gradient's own
# rounding error (about 1e-9 here) decides a full-size step.  Under Adam the
# coordinates with 0 < |g| < ADAM_MASK in PyTorch's gradient of this or an
# earlier step are therefore left out of both parameter measures (their
# count is printed: at most 2.2 % of a network here); the rest are held to
# the same tolerances as SGD.
TOL = dict(loss=1e-5, param=1e-4, update=1e-4)
ADAM_MASK = 3e-7  # 30 eps: above it, g's rounding moves a step by < 1e-4
CHECK_STEPS = 2  # the second step sees Adam's moments and bias correction at t = 2
CHECK_SEED = 2024


@dataclass(frozen=True)
class Mistake:
    """A deliberate error for --self-test: the check must catch it."""
    what: str
    rule: str
    opt: str
    torch_rule: str = None        # PyTorch runs another rule
    torch_hp: dict = None         # PyTorch gets other optimiser settings
    layout: object = colmajor     # how PyTorch reads the library's bytes
    lib_dfa_variant: int = None   # the library runs another DFA variant


MISTAKES = [
    Mistake("PyTorch runs BP where the library runs FA", "FA", "sgd",
            torch_rule="BP"),
    Mistake("weights and feedback read row-major", "FA", "sgd",
            layout=rowmajor),
    Mistake("DFA feedback read row-major", "DFA", "sgd", layout=rowmajor),
    Mistake("library's DFA without f' (before-activation variant)", "DFA",
            "sgd", lib_dfa_variant=fa.FA_DFA_BEFORE_ACTIVATION),
    Mistake("learning rate 1 % high", "BP", "sgd", torch_hp=dict(lr=0.0505)),
    Mistake("Adam beta2 0.99 (invisible to the first step)", "DFA", "adam",
            torch_hp=dict(beta2=0.99)),
    Mistake("Adam beta1 0.8 (invisible to the first step)", "FA", "adam",
            torch_hp=dict(beta1=0.8)),
]


def compare(before, lib_after, torch_after, keep):
    """(max |p_lib - p_torch| / max |p|, the worst tensor's
    ||u_lib - u_torch|| / ||u_torch||, which tensor) with u = p - before,
    over the coordinates where `keep` (a boolean array per tensor) holds."""
    dp = max(float(np.abs(a.astype(np.float64) - b)[k].max(initial=0.0))
             for a, b, k in zip(lib_after, torch_after, keep))
    pmax = max(float(np.abs(b).max()) for b in torch_after)
    worst, which = 0.0, None
    for i, (p0, a, b, k) in enumerate(zip(before, lib_after, torch_after, keep)):
        u = (b.astype(np.float64) - p0)[k]
        du = (a.astype(np.float64) - b)[k]
        nu, ndu = float(np.linalg.norm(u)), float(np.linalg.norm(du))
        rel = ndu / nu if nu > 0 else (0.0 if ndu == 0 else math.inf)
        if rel >= worst:
            worst, which = rel, "%s%d" % ("Wb"[i % 2], i // 2 + 1)
    return dp / pmax, worst, which


def check(lib, arch, rule, opt, batches, foreach, mistake=None, quiet=False):
    """Both implementations from the same start, CHECK_STEPS steps on the
    given batches; True if every step agrees."""
    hp = Hyper(LR[opt])
    net = library_net(lib, arch, rule, opt, hp, CHECK_SEED, bias_scale=0.1)
    torch_rule, torch_hp, layout = rule, hp, colmajor
    if mistake:
        torch_rule = mistake.torch_rule or rule
        torch_hp = replace(hp, **(mistake.torch_hp or {}))
        layout = mistake.layout
        if mistake.lib_dfa_variant is not None:
            net.set_dfa_variant(mistake.lib_dfa_variant)
    model = torch_copy(net, arch, torch_rule, opt, torch_hp, foreach, layout)
    before = [p.astype(np.float64) for p in library_layers(net)]
    ok, lines = True, []
    keep = [np.ones(p.shape, dtype=bool) for p in before]
    for k, b in enumerate(batches[:CHECK_STEPS]):
        loss_lib = net.train_step(b.x, b.t)
        loss_torch = float(model.step(b.x_torch, b.labels, b.onehot))
        if opt == "adam":  # once left out, always: the difference stays
            for kp, g in zip(keep, model.numpy_grads()):
                kp &= (np.abs(g) >= ADAM_MASK) | (g == 0)
        left_out = sum(int(kp.size - kp.sum()) for kp in keep)
        rel_p, rel_u, which = compare(before, library_layers(net),
                                      model.numpy_params(), keep)
        rel_loss = abs(loss_lib - loss_torch) / abs(loss_torch)
        good = (rel_loss <= TOL["loss"] and rel_p <= TOL["param"]
                and rel_u <= TOL["update"])
        ok &= good
        lines.append("check %-13s %-3s %-4s step %d: loss lib %.6f torch %.6f"
                     "  max|dp|/max|p| %.1e  ||du||/||u|| %.1e (%s)%s  %s" % (
                         arch.name, rule, opt, k + 1, loss_lib, loss_torch,
                         rel_p, rel_u, which,
                         "  0<|g|<%.0e: %d" % (ADAM_MASK, left_out)
                         if opt == "adam" else "", "ok" if good else "DISAGREES"))
    net.close()
    if not quiet:
        print("\n".join(lines), flush=True)
    return ok, lines


def self_test(lib, arch, batches, foreach):
    """Every deliberate mistake must make the check fail."""
    caught_all = True
    for mk in MISTAKES:
        ok, lines = check(lib, arch, mk.rule, mk.opt, batches, foreach,
                          mistake=mk, quiet=True)
        caught_all &= not ok
        print("self-test %-55s %s" % (mk.what + ":", "caught" if not ok
                                      else "MISSED"))
        for line in lines:
            print("    " + line)
    return caught_all


# ------------------------------------------------------------------- timing

def lib_block(net, block):
    """Seconds per step of the library over a block of batches."""
    t0 = time.perf_counter()
    for b in block:
        net.train_step(b.x, b.t)
    return (time.perf_counter() - t0) / len(block)


def torch_block(model, threads, block):
    """Seconds per step of a PyTorch model over a block of batches, with
    `threads` intra-op threads."""
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    for b in block:
        model.step(b.x_torch, b.labels, b.onehot)
    return (time.perf_counter() - t0) / len(block)


def time_rules(lib, arch, opt, rules, batches, steps, repeats, foreach,
               intraop):
    """{rule: {"lib": [s/step], v: [s/step] for v in intraop}}, one entry
    per repeat, each from a block of `steps` steps; v is torch's intra-op
    thread count (OpenBLAS's is set by the caller)."""
    hp = Hyper(LR[opt])
    runners = {}
    for rule in rules:
        net = library_net(lib, arch, rule, opt, hp, seed=1)
        net.reserve(batches[0].x.shape[0])
        run = {"lib": partial(lib_block, net)}
        for v in intraop:  # every model starts from the library's start
            run[v] = partial(torch_block,
                             torch_copy(net, arch, rule, opt, hp, foreach), v)
        for f in run.values():  # warm-up: workspaces, pages, threads
            f(batches[:3])
        runners[rule] = (net, run)
    times = {rule: {who: [] for who in runners[rule][1]} for rule in rules}
    k = 3
    for r in range(repeats):
        block = [batches[(k + i) % len(batches)] for i in range(steps)]
        k += steps
        for rule in rules:
            run = runners[rule][1]
            # All on the same batches, back to back; the order rotates, so
            # that none always inherits another's cache state or
            # still-running threads.
            order = list(run)
            order = order[r % len(order):] + order[:r % len(order)]
            for who in order:
                times[rule][who].append(run[who](block))
    for net, _ in runners.values():
        net.close()
    return times


def quartiles(v):
    q = statistics.quantiles(v, n=4) if len(v) > 1 else [v[0]] * 3
    return q[0], q[1], q[2]


# --------------------------------------------------------------------- main

def torch_summary():
    """One line from torch.__config__.show() and parallel_info()."""
    show = torch.__config__.show()
    keys = {}
    for line in show.splitlines():
        line = line.strip(" -")
        if line.startswith("Build settings:"):
            for item in line[len("Build settings:"):].split(","):
                if "=" in item:
                    k, v = item.strip().split("=", 1)
                    keys[k] = v
        elif line.startswith("CPU capability usage:"):
            keys["CPU capability"] = line.split(":", 1)[1].strip()
    backend = [line.split(":", 1)[1].strip()
               for line in torch.__config__.parallel_info().splitlines()
               if line.startswith("ATen parallel backend")]
    parts = ["%s=%s" % (k, keys[k]) for k in
             ("BLAS_INFO", "LAPACK_INFO", "USE_MKLDNN", "USE_OPENMP",
              "CPU capability") if k in keys]
    if backend:
        parts.append("parallel backend=" + backend[0])
    return "torch %s: %s" % (torch.__version__, ", ".join(parts))


def result_row(times, rule, v, arch, opt, nt, batch):
    """One table and CSV row: the library against the PyTorch model with v
    intra-op threads; ratios are medians of per-repeat ratios."""
    lib_t, torch_t = times[rule]["lib"], times[rule][v]

    def ratio(num, den):
        return statistics.median(a / b for a, b in zip(num, den))
    q1, med, q3 = quartiles([a / b for a, b in zip(torch_t, lib_t)])
    row = dict(arch=arch.name, rule=rule, optimizer=opt, threads=nt,
               torch_intraop_threads=v, batch=batch,
               lib_ms_per_step=1e3 * statistics.median(lib_t),
               torch_ms_per_step=1e3 * statistics.median(torch_t),
               torch_over_lib=med, ratio_q1=q1, ratio_q3=q3)
    if "BP" in times:
        row["lib_vs_bp"] = ratio(lib_t, times["BP"]["lib"])
        row["torch_vs_bp"] = ratio(torch_t, times["BP"][v])
    return row


def make_batches(x, t, batch, n):
    """The first n batches of x (N, n_0) and one-hot t (N, n_L), as views."""
    xt, tt = torch.from_numpy(x), torch.from_numpy(t)
    labels = torch.from_numpy(t.argmax(axis=1))
    return [Batch(x[s], t[s], xt[s], labels[s], tt[s])
            for s in (slice(i * batch, (i + 1) * batch) for i in range(n))]


def set_threads(openblas, n, intraop):
    """n OpenBLAS threads (both implementations' matrix products), intraop
    threads for torch's own kernels."""
    openblas.set_threads(n)
    torch.set_num_threads(intraop)
    if openblas.threads() != n or torch.get_num_threads() != intraop:
        raise RuntimeError("could not set the threads (OpenBLAS %d of %d, "
                           "torch %d of %d)" % (openblas.threads(), n,
                                                torch.get_num_threads(),
                                                intraop))


def intraop_counts(spec, n):
    """torch intra-op thread counts to time at n OpenBLAS threads, from
    --torch-intraop (e.g. 'same,1'), without repeats."""
    out = []
    for item in spec.split(","):
        v = n if item == "same" else int(item)
        if v < 1:
            raise ValueError("--torch-intraop: counts must be >= 1")
        if v not in out:
            out.append(v)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lib", required=True, help="path to libfeedbackalign.so")
    ap.add_argument("--arch", default="all",
                    help="wide (784-1000-10), deep (784-240x7-10), all, or a "
                         "spec such as 784-500-500-10 [all]")
    ap.add_argument("--opt", default="all", choices=["sgd", "adam", "all"])
    ap.add_argument("--rules", default=",".join(RULES),
                    help="comma-separated, of %s [all]" % ",".join(RULES))
    ap.add_argument("--threads", default="1,2",
                    help="thread counts, comma-separated [1,2]")
    ap.add_argument("--torch-intraop", default="same,1",
                    help="torch.set_num_threads values to time, each a"
                         " separate PyTorch model: 'same' as the thread"
                         " count, or a number (1: element-wise work on one"
                         " thread, as in the library) [same,1]")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=5,
                    help="steps per timed block [5]")
    ap.add_argument("--repeats", type=int, default=31,
                    help="timed blocks per rule and implementation [31]")
    ap.add_argument("--foreach", default="off", choices=["off", "on"],
                    help="torch.optim's multi-tensor (foreach) implementation;"
                         " off is torch 1.13's CPU default [off]")
    ap.add_argument("--data", default=DATA_DIR)
    ap.add_argument("--out", default=os.path.join("results", "compare-torch.csv"))
    ap.add_argument("--check-only", action="store_true",
                    help="only the two-step agreement (no timing)")
    ap.add_argument("--self-test", action="store_true",
                    help="show that the check catches deliberate mistakes, "
                         "on the last architecture given (no timing)")
    args = ap.parse_args()

    try:
        archs = [Arch(tuple(parse_arch(a))) for a in
                 (ARCHS.values() if args.arch == "all" else [args.arch])]
        threads = [int(s) for s in args.threads.split(",")]
    except ValueError as exc:
        ap.error(str(exc))
    rules = args.rules.split(",")
    if any(r not in RULES for r in rules):
        ap.error("--rules: each of %s" % ",".join(RULES))
    opts = ["sgd", "adam"] if args.opt == "all" else [args.opt]
    if args.batch < 1 or args.steps < 1 or args.repeats < 1 or min(threads) < 1:
        ap.error("batch, steps, repeats and threads must be >= 1")
    foreach = args.foreach == "on"
    try:
        intraop = {n: intraop_counts(args.torch_intraop, n) for n in threads}
    except ValueError:
        ap.error("--torch-intraop: a comma-separated list of 'same' and "
                 "numbers >= 1")

    try:
        lib = fa.Library(args.lib)
        openblas = fa.OpenBLAS()
    except OSError as exc:
        print("cannot load: %s" % exc, file=sys.stderr)
        return 2
    print("libfeedbackalign %s: %s" % (lib.version(), lib.path))
    print(torch_summary())
    print("numpy %s; OpenBLAS %s (core %s)" % (np.__version__, openblas.config(),
                                               openblas.corename()))
    objs = fa.blas_objects_in_process()
    cores = [o for o in objs if os.path.basename(o).startswith("libopenblas")]
    print("OpenBLAS objects in this process: %s" % ", ".join(objs))
    print("  %s" % ("one OpenBLAS: torch's matrix products and the library's "
                    "run the same kernels" if len(cores) == 1 else
                    "MORE THAN ONE OpenBLAS: thread settings may not reach "
                    "torch's BLAS"))
    print("torch.optim foreach: %s; zero_grad(set_to_none=True); "
          "OMP_WAIT_POLICY=%s (%s)" % (args.foreach, os.environ["OMP_WAIT_POLICY"],
                                       OMP_WAIT_POLICY_SOURCE))

    set_threads(openblas, 1, 1)  # the check runs single-threaded
    data, loaded = {}, {}
    for arch in archs:
        shape = (arch.sizes[0], arch.sizes[-1])
        if shape not in loaded:
            x, t, n_batches, source = load_data(args.data, *shape, args.batch)
            loaded[shape] = make_batches(x, t, args.batch, n_batches), source
        data[arch], source = loaded[shape]
        print("data for %s: %s" % (arch.name, source))

    if args.self_test:
        arch = archs[-1]
        ok = self_test(lib, arch, data[arch], foreach)
        print("the check caught every mistake" if ok else
              "the check MISSED a mistake")
        return 0 if ok else 1

    ok = True
    print("tolerances after each of %d steps: loss %.0e, max|dp|/max|p| %.0e,"
          " ||du||/||u|| of every tensor %.0e (Adam: without 0<|g|<%.0e)" % (
              CHECK_STEPS, TOL["loss"], TOL["param"], TOL["update"], ADAM_MASK))
    for arch in archs:
        for opt in LIB_OPT:  # both optimisers, whichever is timed
            for rule in rules:
                try:
                    ok &= check(lib, arch, rule, opt, data[arch], foreach)[0]
                except fa.LibraryError as exc:
                    print("check %s %s %s: library error: %s" % (
                        arch.name, rule, opt, exc))
                    ok = False
    if not ok:
        print("the library and PyTorch disagree: not timing")
        return 1
    if args.check_only:
        print("all checks agree")
        return 0

    cols = ["arch", "rule", "optimizer", "threads", "torch_intraop_threads",
            "batch", "lib_ms_per_step",
            "torch_ms_per_step", "torch_over_lib", "ratio_q1", "ratio_q3",
            "lib_vs_bp", "torch_vs_bp"]
    rows = []
    for nt in threads:
        set_threads(openblas, nt, nt)
        for arch in archs:
            for opt in opts:
                times = time_rules(lib, arch, opt, rules, data[arch],
                                   args.steps, args.repeats, foreach,
                                   intraop[nt])
                for rule in rules:
                    for v in intraop[nt]:
                        rows.append(result_row(times, rule, v, arch, opt, nt,
                                               args.batch))
                        r = rows[-1]
                        print("timed %s %s %s threads %d/%d: lib %.2f ms, torch"
                              " %.2f ms per step, torch/lib %.2f" % (
                                  arch.name, rule, opt, nt, v,
                                  r["lib_ms_per_step"], r["torch_ms_per_step"],
                                  r["torch_over_lib"]), flush=True)

    print("\nms per step: medians of %d blocks of %d steps of batch %d;"
          " torch/lib: median of the per-block ratios (quartiles), > 1 means"
          " the library is faster.  thr: OpenBLAS threads (both), omp: torch's"
          " intra-op threads.\n" % (args.repeats, args.steps, args.batch))
    fmt = "%-13s %-4s %-4s %3s %3s %8s %9s %9s %13s %7s %9s"
    print(fmt % ("arch", "rule", "opt", "thr", "omp", "lib ms", "torch ms",
                 "torch/lib", "(q1-q3)", "lib/BP", "torch/BP"))
    for r in rows:
        print(fmt % (r["arch"], r["rule"], r["optimizer"], r["threads"],
                     r["torch_intraop_threads"],
                     "%.2f" % r["lib_ms_per_step"], "%.2f" % r["torch_ms_per_step"],
                     "%.2f" % r["torch_over_lib"],
                     "(%.2f-%.2f)" % (r["ratio_q1"], r["ratio_q3"]),
                     "%.2f" % r["lib_vs_bp"] if "lib_vs_bp" in r else "-",
                     "%.2f" % r["torch_vs_bp"] if "torch_vs_bp" in r else "-"))
    out_dir = os.path.dirname(args.out)
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
    with open(args.out, "w") as f:
        f.write(",".join(cols) + "\n")
        for r in rows:
            f.write(",".join(("%.6g" % r[c]) if isinstance(r.get(c), float)
                             else str(r.get(c, "")) for c in cols) + "\n")
    print("\nCSV: %s" % args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
