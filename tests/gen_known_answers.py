#!/usr/bin/python3
"""Known answers for the core library's tests, computed independently of the
library in float64 NumPy straight from the formulas of include/feedbackalign.h.

Regenerate with:

    /usr/bin/python3 tests/gen_known_answers.py > tests/known_answers.h

Every input written to the header (weights, feedback, data, targets) is a
multiple of 1/64 or 1/32 and small, so it is exactly representable as a float:
the C tests feed the library exactly the numbers used here.
"""

import math
import sys

import numpy as np

# Enum values fixed by the ABI (include/feedbackalign.h).
ACT_IDENTITY, ACT_TANH, ACT_SIGMOID, ACT_RELU, ACT_LEAKY = 0, 1, 2, 3, 4
LOSS_MSE, LOSS_SOFTMAX_CE, LOSS_SIGMOID_BCE = 0, 1, 2
RULE_BP, RULE_FA, RULE_DFA = 0, 1, 2
OPT_SGD, OPT_MOMENTUM, OPT_NESTEROV, OPT_ADAM, OPT_RMSPROP = 0, 1, 2, 3, 4

LEAKY_SLOPE = 0.01  # the documented default of FA_HP_LEAKY_SLOPE

# Hyperparameters of the optimiser trajectories (two steps, lr changed
# between them to show that a schedule reaches the optimiser).
LR1, LR2 = 0.1, 0.05
MU = 0.9
BETA1, BETA2, EPS = 0.9, 0.999, 1e-8
RHO = 0.9
WD = 0.05


def quant(a, q=64):
    """Round to a multiple of 1/q: exact in float32."""
    return np.round(np.asarray(a, dtype=np.float64) * q) / q


# ------------------------------------------------------------ activations

def act_f(act, a):
    if act == ACT_IDENTITY:
        return a.copy()
    if act == ACT_TANH:
        return np.tanh(a)
    if act == ACT_SIGMOID:
        return 1.0 / (1.0 + np.exp(-a))
    if act == ACT_RELU:
        return np.where(a > 0, a, 0.0)
    if act == ACT_LEAKY:
        return np.where(a > 0, a, LEAKY_SLOPE * a)
    raise ValueError(act)


def act_df(act, a):
    """f'(a), evaluated from a (the library evaluates it from f(a))."""
    if act == ACT_IDENTITY:
        return np.ones_like(a)
    if act == ACT_TANH:
        return 1.0 / np.cosh(a) ** 2
    if act == ACT_SIGMOID:
        s = 1.0 / (1.0 + np.exp(-a))
        return s * (1.0 - s)
    if act == ACT_RELU:
        return (a > 0).astype(np.float64)
    if act == ACT_LEAKY:
        return np.where(a > 0, 1.0, LEAKY_SLOPE)
    raise ValueError(act)


# ----------------------------------------------------------------- losses

def loss_eval(loss, y, t):
    """Mean loss and dL/dy (already divided by batch), y and t (n, batch)."""
    batch = y.shape[1]
    if loss == LOSS_MSE:
        d = y - t
        return 0.5 * np.sum(d * d) / batch, d / batch
    if loss == LOSS_SOFTMAX_CE:
        m = np.max(y, axis=0, keepdims=True)
        lse = m + np.log(np.sum(np.exp(y - m), axis=0, keepdims=True))
        logp = y - lse
        p = np.exp(logp)
        return -np.sum(t * logp) / batch, (p - t) / batch
    if loss == LOSS_SIGMOID_BCE:
        # log P = -softplus(-y), log(1-P) = -softplus(y), softplus stable.
        def softplus(z):
            return np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))
        v = np.sum(t * softplus(-y) + (1.0 - t) * softplus(y)) / batch
        p = np.where(y >= 0, 1.0 / (1.0 + np.exp(-np.abs(y))),
                     np.exp(-np.abs(y)) / (1.0 + np.exp(-np.abs(y))))
        return v, (p - t) / batch
    raise ValueError(loss)


def loss_link(loss, y):
    if loss == LOSS_SOFTMAX_CE:
        e = np.exp(y - np.max(y, axis=0, keepdims=True))
        return e / np.sum(e, axis=0, keepdims=True)
    if loss == LOSS_SIGMOID_BCE:
        return 1.0 / (1.0 + np.exp(-y))
    return y.copy()


# ---------------------------------------------------------------- network

class Net:
    def __init__(self, sizes, acts, loss):
        self.sizes = list(sizes)
        self.acts = list(acts)
        self.loss = loss
        self.L = len(sizes) - 1

    def unflatten(self, flat):
        ws, bs, k = [], [], 0
        for l in range(1, self.L + 1):
            r, c = self.sizes[l], self.sizes[l - 1]
            ws.append(flat[k:k + r * c].reshape((r, c), order="F"))
            k += r * c
            bs.append(flat[k:k + r].reshape((r, 1)))
            k += r
        assert k == len(flat)
        return ws, bs

    @staticmethod
    def flatten(ws, bs):
        parts = []
        for w, b in zip(ws, bs):
            parts.append(w.flatten(order="F"))
            parts.append(b.flatten())
        return np.concatenate(parts)

    def forward(self, flat, x):
        ws, bs = self.unflatten(flat)
        hs, As = [x], []
        for l in range(self.L):
            a = ws[l] @ hs[-1] + bs[l]
            As.append(a)
            hs.append(act_f(self.acts[l], a))
        return ws, hs, As

    def output(self, flat, x):
        _, hs, _ = self.forward(flat, x)
        return loss_link(self.loss, hs[-1])

    def update(self, flat, x, t, rule, fb_fa=None, fb_dfa=None,
               before=False):
        """The flat update of `rule` and the loss; fb_fa[l] = F_{l+1}
        (l = 1..L-1 index of the receiving layer), fb_dfa[l] = G_l."""
        ws, hs, As = self.forward(flat, x)
        L = self.L
        value, dy = loss_eval(self.loss, hs[-1], t)
        if self.loss == LOSS_MSE:
            e = dy * act_df(self.acts[L - 1], As[L - 1])
        else:
            assert self.acts[L - 1] == ACT_IDENTITY
            e = dy
        deltas = [None] * (L + 1)
        deltas[L] = e
        for l in range(L - 1, 0, -1):
            dfl = act_df(self.acts[l - 1], As[l - 1])
            if rule == RULE_BP:
                deltas[l] = (ws[l].T @ deltas[l + 1]) * dfl
            elif rule == RULE_FA:
                deltas[l] = (fb_fa[l + 1].T @ deltas[l + 1]) * dfl
            else:
                proj = fb_dfa[l].T @ e
                deltas[l] = proj if before else proj * dfl
        dws = [deltas[l] @ hs[l - 1].T for l in range(1, L + 1)]
        dbs = [np.sum(deltas[l], axis=1, keepdims=True)
               for l in range(1, L + 1)]
        return self.flatten(dws, dbs), value

    def weight_mask(self):
        """1 on weights, 0 on biases, in the flat layout."""
        ws = [np.ones((self.sizes[l], self.sizes[l - 1]))
              for l in range(1, self.L + 1)]
        bs = [np.zeros((self.sizes[l], 1)) for l in range(1, self.L + 1)]
        return self.flatten(ws, bs)


def angle(a, b):
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return 90.0
    c = float(np.sum(a * b) / (na * nb))
    return math.degrees(math.acos(max(-1.0, min(1.0, c))))


# -------------------------------------------------------------- optimisers

class Opt:
    """The optimiser formulas of the header, for a flat parameter vector."""

    def __init__(self, kind, n):
        self.kind = kind
        self.v = np.zeros(n)
        self.m = np.zeros(n)
        self.t = 0

    def step(self, p, g, lr):
        k = self.kind
        if k == OPT_SGD:
            return p - lr * g
        if k == OPT_MOMENTUM:
            self.v = MU * self.v + g
            return p - lr * self.v
        if k == OPT_NESTEROV:
            self.v = MU * self.v + g
            return p - lr * (g + MU * self.v)
        if k == OPT_ADAM:
            self.t += 1
            self.m = BETA1 * self.m + (1 - BETA1) * g
            self.v = BETA2 * self.v + (1 - BETA2) * g * g
            mh = self.m / (1 - BETA1 ** self.t)
            vh = self.v / (1 - BETA2 ** self.t)
            return p - lr * mh / (np.sqrt(vh) + EPS)
        if k == OPT_RMSPROP:
            self.v = RHO * self.v + (1 - RHO) * g * g
            return p - lr * g / (np.sqrt(self.v) + EPS)
        raise ValueError(k)


# ------------------------------------------------------------ the cases

def make_case(name, sizes, acts, loss, batch, seed, targets):
    rng = np.random.RandomState(seed)
    net = Net(sizes, acts, loss)
    L = net.L
    ws = [quant(rng.uniform(-1, 1, (sizes[l], sizes[l - 1])))
          for l in range(1, L + 1)]
    bs = [quant(rng.uniform(-0.5, 0.5, (sizes[l], 1)))
          for l in range(1, L + 1)]
    params = Net.flatten(ws, bs)
    x = quant(rng.uniform(-1, 1, (sizes[0], batch)), 32)
    t = targets(rng, sizes[L], batch)
    fb_fa = {l: quant(rng.uniform(-1, 1, (sizes[l], sizes[l - 1])))
             for l in range(2, L + 1)}
    fb_dfa = {l: quant(rng.uniform(-1, 1, (sizes[L], sizes[l])))
              for l in range(1, L)}

    # Pre-activations must keep clear of the kinks of ReLU / leaky ReLU,
    # where f'(a) from f(a) is a convention rather than a derivative.
    _, _, As = net.forward(params, x)
    for l in range(L):
        assert np.min(np.abs(As[l])) > 1e-3, (name, l)

    c = dict(name=name, sizes=sizes, acts=acts, loss=loss, batch=batch,
             x=x, t=t, params=params,
             fb_fa=np.concatenate([fb_fa[l].flatten(order="F")
                                   for l in range(2, L + 1)]),
             fb_dfa=np.concatenate([fb_dfa[l].flatten(order="F")
                                    for l in range(1, L)]))
    c["y"] = net.output(params, x)
    g_bp, c["loss_value"] = net.update(params, x, t, RULE_BP)
    g_fa, _ = net.update(params, x, t, RULE_FA, fb_fa=fb_fa)
    g_dfa, _ = net.update(params, x, t, RULE_DFA, fb_dfa=fb_dfa)
    g_dfb, _ = net.update(params, x, t, RULE_DFA, fb_dfa=fb_dfa, before=True)
    c.update(grad_bp=g_bp, grad_fa=g_fa, grad_dfa=g_dfa, grad_dfa_before=g_dfb)

    # Adam and RMSprop divide by |g|: an entry of the gradient that is zero
    # in exact arithmetic but rounding noise in float would make the
    # comparison meaningless.  Either exactly zero or clearly non-zero.
    for g in (g_bp,):
        nz = np.abs(g[g != 0])
        assert nz.size == 0 or np.min(nz) > 1e-7, name

    # One SGD train step (lr LR1) under each rule.
    c["sgd_bp"] = params - LR1 * g_bp
    c["sgd_fa"] = params - LR1 * g_fa
    c["sgd_dfa"] = params - LR1 * g_dfa
    # One SGD step with weight decay: weights only.
    c["sgd_wd"] = params - LR1 * (g_bp + WD * params * net.weight_mask())

    # Two BP train steps with each optimiser: lr LR1 then LR2.
    traj = []
    for kind in range(5):
        opt = Opt(kind, len(params))
        p = params.copy()
        g, _ = net.update(p, x, t, RULE_BP)
        p = opt.step(p, g, LR1)
        p1 = p.copy()
        g, _ = net.update(p, x, t, RULE_BP)
        nz = np.abs(g[g != 0])
        assert nz.size == 0 or np.min(nz) > 1e-7, (name, kind)
        p = opt.step(p, g, LR2)
        traj.append((p1, p))
    c["traj"] = traj

    # Alignment of the rules' hidden updates with BP, and of the feedback
    # with the forward weights it replaces.
    gb_w, _ = net.unflatten(g_bp)
    gf_w, _ = net.unflatten(g_fa)
    gd_w, _ = net.unflatten(g_dfa)
    c["align_fa"] = [angle(gf_w[l - 1], gb_w[l - 1]) for l in range(1, L)]
    c["align_dfa"] = [angle(gd_w[l - 1], gb_w[l - 1]) for l in range(1, L)]
    c["fbangle_fa"] = [angle(ws[l - 1], fb_fa[l]) for l in range(2, L + 1)]
    fd = []
    for l in range(1, L):
        prod = ws[L - 1]
        for k in range(L - 1, l, -1):
            prod = prod @ ws[k - 1]
        fd.append(angle(prod, fb_dfa[l]))
    c["fbangle_dfa"] = fd
    return c


def onehot(rng, n, batch):
    t = np.zeros((n, batch))
    for j in range(batch):
        t[rng.randint(n), j] = 1.0
    return t


def binary(rng, n, batch):
    t = rng.randint(0, 2, (n, batch)).astype(np.float64)
    t[0, 0] = 0.25  # a soft target too
    return t


def real(rng, n, batch):
    return quant(rng.uniform(-1, 1, (n, batch)), 32)


CASES = [
    ("tanh_mse", [3, 4, 2], [ACT_TANH, ACT_IDENTITY], LOSS_MSE, 3, 11, real),
    # Three classes: with two, every column of P - T is (a, -a) and the
    # hidden updates become nearly collinear, which tests little.  Seed 8
    # leaves some ReLU units of layer 2 off (f' = 0) and some on.
    ("sigmoid_relu_softmax", [2, 4, 3, 3], [ACT_SIGMOID, ACT_RELU,
                                            ACT_IDENTITY],
     LOSS_SOFTMAX_CE, 3, 8, onehot),
    ("sigmoid_bce", [3, 4, 2], [ACT_SIGMOID, ACT_IDENTITY], LOSS_SIGMOID_BCE,
     3, 7, binary),
    ("leaky_tanh_out_mse", [2, 3, 3, 2], [ACT_LEAKY, ACT_TANH, ACT_TANH],
     LOSS_MSE, 2, 3, real),
]


# ------------------------------------------------------ losses on their own

def loss_cases():
    rng = np.random.RandomState(1)
    out = []
    n, batch = 3, 4
    for loss in (LOSS_MSE, LOSS_SOFTMAX_CE, LOSS_SIGMOID_BCE):
        y = quant(rng.uniform(-3, 3, (n, batch)), 32)
        if loss == LOSS_MSE:
            t = real(rng, n, batch)
        elif loss == LOSS_SOFTMAX_CE:
            t = onehot(rng, n, batch)
            t[:, 3] = [0.25, 0.5, 0.25]  # a soft target column
        else:
            t = binary(rng, n, batch)
        out.append(("small", loss, y, t))
    # Huge logits: a naive exp() overflows; the stable forms stay finite.
    y = np.array([[1000.0, -1000.0], [-1000.0, 1000.0], [0.0, 999.0]])
    t = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    out.append(("large", LOSS_SOFTMAX_CE, y, t))
    t = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    out.append(("large", LOSS_SIGMOID_BCE, y, t))
    out.append(("large", LOSS_MSE, quant(y / 10.0), t))
    return out


# -------------------------------------------------------------------- RNG

M64 = (1 << 64) - 1


def splitmix64_stream(seed):
    x = seed & M64
    while True:
        x = (x + 0x9E3779B97F4A7C15) & M64
        z = x
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        yield z ^ (z >> 31)


def rotl(v, k):
    return ((v << k) | (v >> (64 - k))) & M64


def xoshiro256ss(seed, count):
    """Reference xoshiro256** (Blackman & Vigna) with its state filled by
    four consecutive splitmix64 outputs of the seed, the authors'
    recommended seeding."""
    sm = splitmix64_stream(seed)
    s = [next(sm) for _ in range(4)]
    out = []
    for _ in range(count):
        out.append((rotl((s[1] * 5) & M64, 7) * 9) & M64)
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
    return out


RNG_SEEDS = [0, 1, 42, 0xDEADBEEFCAFEF00D]
RNG_COUNT = 8


# ------------------------------------------------------------------ output

def farr(name, a, ctype="float"):
    a = np.asarray(a, dtype=np.float64).ravel(order="F")
    if ctype == "float":
        assert np.all(a.astype(np.float32).astype(np.float64) == a), name
    vals = ", ".join("%.17g" % v for v in a)
    return "static const %s %s[%d] = {%s};\n" % (ctype, name, len(a), vals)


def main():
    w = sys.stdout.write
    w("/* tests/known_answers.h -- generated by tests/gen_known_answers.py;"
      " do not edit.\n")
    w(" * Regenerate: /usr/bin/python3 tests/gen_known_answers.py >"
      " tests/known_answers.h\n")
    w(" * Inputs are float-exact; expected values are float64 results of the"
      "\n * header's formulas, computed without the library. */\n")
    w("#ifndef KNOWN_ANSWERS_H\n#define KNOWN_ANSWERS_H\n\n"
      "#include <stdint.h>\n\n")
    w("#define KA_LR1 %r\n#define KA_LR2 %r\n#define KA_MU %r\n" % (LR1, LR2, MU))
    w("#define KA_BETA1 %r\n#define KA_BETA2 %r\n#define KA_EPS %r\n"
      % (BETA1, BETA2, EPS))
    w("#define KA_RHO %r\n#define KA_WD %r\n\n" % (RHO, WD))
    w("typedef struct ka_net_case {\n"
      "    const char *name;\n"
      "    int32_t n_layers;\n    int32_t sizes[5];\n    int32_t acts[4];\n"
      "    int32_t loss;\n    int32_t batch;\n"
      "    const float *x;      /* (n_0, batch), ld n_0 */\n"
      "    const float *t;      /* (n_L, batch), ld n_L */\n"
      "    const float *params; /* [W_1|b_1|...] */\n"
      "    int64_t n_params;\n"
      "    const float *fb_fa;  /* F_2..F_L, each column-major, back to back */\n"
      "    const float *fb_dfa; /* G_1..G_{L-1}, likewise */\n"
      "    const double *y;     /* fa_net_forward output (n_L, batch) */\n"
      "    double loss_value;\n"
      "    const double *grad_bp, *grad_fa, *grad_dfa, *grad_dfa_before;\n"
      "    const double *sgd_bp, *sgd_fa, *sgd_dfa; /* one SGD step, KA_LR1 */\n"
      "    const double *sgd_wd; /* one SGD step, KA_LR1, weight decay KA_WD */\n"
      "    const double *traj[5][2]; /* per optimiser: params after step 1"
      " (KA_LR1), step 2 (KA_LR2) */\n"
      "    const double *align_fa, *align_dfa; /* fa_net_alignment, L-1 */\n"
      "    const double *fbangle_fa, *fbangle_dfa; /* fa_net_feedback_angles */\n"
      "} ka_net_case;\n\n")
    names = []
    for spec in CASES:
        c = make_case(*spec)
        p = "ka_" + c["name"] + "_"
        names.append(p)
        for key in ("x", "t", "params", "fb_fa", "fb_dfa"):
            w(farr(p + key, c[key]))
        for key in ("y", "grad_bp", "grad_fa", "grad_dfa", "grad_dfa_before",
                    "sgd_bp", "sgd_fa", "sgd_dfa", "sgd_wd", "align_fa",
                    "align_dfa", "fbangle_fa", "fbangle_dfa"):
            w(farr(p + key, c[key], "double"))
        for k, (p1, p2) in enumerate(c["traj"]):
            w(farr(p + "traj%d_1" % k, p1, "double"))
            w(farr(p + "traj%d_2" % k, p2, "double"))
        c["prefix"] = p
        spec_c = c
        L = len(c["sizes"]) - 1
        sizes = ", ".join(str(s) for s in c["sizes"])
        acts = ", ".join(str(a) for a in c["acts"])
        traj = ", ".join("{%straj%d_1, %straj%d_2}" % (p, k, p, k)
                         for k in range(5))
        w("#define %sCASE { \"%s\", %d, {%s}, {%s}, %d, %d, %sx, %st, "
          "%sparams, %d, %sfb_fa, %sfb_dfa, %sy, %.17g, %sgrad_bp, "
          "%sgrad_fa, %sgrad_dfa, %sgrad_dfa_before, %ssgd_bp, %ssgd_fa, "
          "%ssgd_dfa, %ssgd_wd, {%s}, %salign_fa, %salign_dfa, %sfbangle_fa, "
          "%sfbangle_dfa }\n\n"
          % (p.upper(), c["name"], L, sizes, acts, c["loss"], c["batch"],
             p, p, p, len(c["params"]), p, p, p, spec_c["loss_value"],
             p, p, p, p, p, p, p, p, traj, p, p, p, p))
    w("static const ka_net_case ka_net_cases[] = {\n")
    for p in names:
        w("    %sCASE,\n" % p.upper())
    w("};\n#define KA_N_NET_CASES %d\n\n" % len(names))

    w("typedef struct ka_loss_case {\n"
      "    const char *name;\n    int32_t loss;\n    int32_t n, batch;\n"
      "    const float *y, *t; /* (n, batch), ld n */\n"
      "    double value;\n    const double *dy;\n} ka_loss_case;\n\n")
    entries = []
    for i, (kind, loss, y, t) in enumerate(loss_cases()):
        v, dy = loss_eval(loss, y, t)
        assert np.isfinite(v) and np.all(np.isfinite(dy))
        p = "ka_loss%d_" % i
        w(farr(p + "y", y))
        w(farr(p + "t", t))
        w(farr(p + "dy", dy, "double"))
        entries.append("    { \"%s/%d\", %d, %d, %d, %sy, %st, %.17g, %sdy },\n"
                       % (kind, loss, loss, y.shape[0], y.shape[1], p, p, v, p))
    w("static const ka_loss_case ka_loss_cases[] = {\n")
    w("".join(entries))
    w("};\n#define KA_N_LOSS_CASES %d\n\n" % len(entries))
    w("/* fa_rng_next after fa_rng_seed(seed): xoshiro256** seeded by"
      " splitmix64. */\n")
    w("#define KA_RNG_COUNT %d\n" % RNG_COUNT)
    w("static const struct { uint64_t seed; uint64_t next[%d]; } "
      "ka_rng_cases[] = {\n" % RNG_COUNT)
    for seed in RNG_SEEDS:
        vals = ", ".join("UINT64_C(0x%016x)" % v
                         for v in xoshiro256ss(seed, RNG_COUNT))
        w("    { UINT64_C(0x%016x), { %s } },\n" % (seed, vals))
    w("};\n#define KA_N_RNG_CASES %d\n\n" % len(RNG_SEEDS))
    w("#endif /* KNOWN_ANSWERS_H */\n")


if __name__ == "__main__":
    main()
