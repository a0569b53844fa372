#!/usr/bin/python3
"""Known answers for the core library's tests, computed independently of the
library in float64 NumPy straight from the formulas of include/feedbackalign.h.

Regenerate with:

    /usr/bin/python3 tests/gen_known_answers.py > tests/known_answers.h

Every input written to the header (weights, feedback, data, targets) is a
multiple of 1/64 or 1/32 and small, so it is exactly representable as a float:
the C tests feed the library exactly the numbers used here.

Two families of networks: CASES (test_net.c: BP, FA, DFA, optimisers) and
RULE_CASES (test_rule_steps.c: one step of every rule of the fa_rule doc
block -- USF, BRSF, FRSF, KP, WM, DRTP, SDFA, SHALLOW next to BP, FA, DFA --
and KP's applied step under SGD and Adam).  The script also asserts the
identities the header states (KP's difference decays by 1 - k whatever the
optimiser; with SGD and k = lr * wd it is Akrout et al.'s rule; the last
layer learns alike under every rule; SHALLOW's hidden update is zero).
"""

import math
import sys

import numpy as np

# Enum values fixed by the ABI (include/feedbackalign.h).
ACT_IDENTITY, ACT_TANH, ACT_SIGMOID, ACT_RELU, ACT_LEAKY = 0, 1, 2, 3, 4
LOSS_MSE, LOSS_SOFTMAX_CE, LOSS_SIGMOID_BCE = 0, 1, 2
RULE_BP, RULE_FA, RULE_DFA = 0, 1, 2
RULE_USF, RULE_BRSF, RULE_FRSF, RULE_KP, RULE_WM = 3, 4, 5, 6, 7
RULE_DRTP, RULE_SDFA, RULE_SHALLOW = 8, 9, 10
N_RULES = 11
RULE_NAMES = ["bp", "fa", "dfa", "usf", "brsf", "frsf", "kp", "wm", "drtp",
              "sdfa", "shallow"]
# fa_rule_info's feedback kinds (fa_feedback_kind), from the header.
FB_NONE, FB_LAYER, FB_DIRECT = 0, 1, 2
RULE_KIND = [FB_NONE, FB_LAYER, FB_DIRECT, FB_LAYER, FB_LAYER, FB_LAYER,
             FB_LAYER, FB_LAYER, FB_DIRECT, FB_DIRECT, FB_NONE]
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


# ------------------------------------------------- the whole rule family

# Hyperparameters of the rule cases.  KP's decay k is 1/8 so that the
# decay term is far from rounding noise; the third KP variant takes
# k = lr * wd, where the header says KP is exactly Akrout et al.'s rule.
KP_DECAY = 0.125
KP_VARIANTS = [  # (optimiser, lr, weight decay, k)
    (OPT_SGD, LR1, WD, KP_DECAY),
    (OPT_ADAM, LR1, WD, KP_DECAY),
    (OPT_SGD, LR1, WD, LR1 * WD),
]


def usf_scale(sizes, l):
    """s_l = sqrt(2 / (fan_in + fan_out)) of dense layer l (the header)."""
    return math.sqrt(2.0 / (sizes[l - 1] + sizes[l]))


def rule_update(net, flat, x, t, rule, mags=None, stored=None, direct=None):
    """The flat update of any rule, from the fa_rule doc block:
    delta_L = e = dL/dA_L, dW_l = delta_l H_{l-1}^T, db_l = delta_l 1, and
    the hidden errors
      BP       (W_{l+1}^T delta_{l+1}) .* f'(A_l)
      FA/KP/WM (B_{l+1}^T delta_{l+1}) .* f'(A_l), B = stored[l+1]
      USF      B_{l+1} = s_{l+1} sign(W_{l+1})
      BRSF/FRSF B_{l+1} = |M_{l+1}| .* sign(W_{l+1}), M = mags[l+1]
      DFA      (G_l^T e) .* f'(A_l), G = direct[l]
      DRTP     (G_l^T T / m) .* f'(A_l)
      SDFA     (G_l^T sign(e) / m) .* f'(A_l)
      SHALLOW  0
    mags, stored: {l: (n_l, n_{l-1})} for l = 2..L; direct: {l: (n_L, n_l)}
    for l = 1..L-1.  Returns (flat update, loss, e)."""
    ws, hs, As = net.forward(flat, x)
    L = net.L
    m = x.shape[1]
    value, dy = loss_eval(net.loss, hs[-1], t)
    if net.loss == LOSS_MSE:
        e = dy * act_df(net.acts[L - 1], As[L - 1])
    else:
        assert net.acts[L - 1] == ACT_IDENTITY
        e = dy
    deltas = [None] * (L + 1)
    deltas[L] = e
    chain = {RULE_BP: lambda l: ws[l - 1],
             RULE_FA: lambda l: stored[l],
             RULE_KP: lambda l: stored[l],
             RULE_WM: lambda l: stored[l],
             RULE_USF: lambda l: usf_scale(net.sizes, l) * np.sign(ws[l - 1]),
             RULE_BRSF: lambda l: np.abs(mags[l]) * np.sign(ws[l - 1]),
             RULE_FRSF: lambda l: np.abs(mags[l]) * np.sign(ws[l - 1])}
    signal = {RULE_DFA: e, RULE_DRTP: t / m, RULE_SDFA: np.sign(e) / m}
    for l in range(L - 1, 0, -1):
        dfl = act_df(net.acts[l - 1], As[l - 1])
        if rule in chain:
            deltas[l] = (chain[rule](l + 1).T @ deltas[l + 1]) * dfl
        elif rule in signal:
            deltas[l] = (direct[l].T @ signal[rule]) * dfl
        else:
            assert rule == RULE_SHALLOW
            deltas[l] = np.zeros_like(As[l - 1])
    dws = [deltas[l] @ hs[l - 1].T for l in range(1, L + 1)]
    dbs = [np.sum(deltas[l], axis=1, keepdims=True) for l in range(1, L + 1)]
    return Net.flatten(dws, dbs), value, e


def one_step(kind, p, g, lr, wd, mask):
    """One optimiser step from a fresh state, weight decay on weights."""
    return Opt(kind, len(p)).step(p, g + wd * p * mask, lr)


def clear_or_zero(g, what):
    """Adam divides by |g|: each entry exactly zero or clearly not."""
    nz = np.abs(g[g != 0])
    assert nz.size == 0 or np.min(nz) > 1e-6, what


def make_rule_case(name, sizes, acts, loss, batch, seed, targets,
                   zero_target_col=-1, zero_err=None):
    """A net for every rule: hand-set W, b, data, and feedback of both
    layouts: fb_layer (M_l of BRSF/FRSF, B_l of FA/KP/WM, l = 2..L) and
    fb_direct (G_l of DFA/DRTP/SDFA, l = 1..L-1).
    zero_target_col: a sample whose target column is set to zero (DRTP then
    gets no hidden signal from it).  zero_err = (i, j): output row i gets
    zero weights and the bias t[i, j], an identity output, so that
    y[i, j] == t[i, j] exactly and e[i, j] == 0 (SDFA's sign(0) = 0)."""
    rng = np.random.RandomState(seed)
    net = Net(sizes, acts, loss)
    L = net.L
    ws = [quant(rng.uniform(-1, 1, (sizes[l], sizes[l - 1])))
          for l in range(1, L + 1)]
    bs = [quant(rng.uniform(-0.5, 0.5, (sizes[l], 1)))
          for l in range(1, L + 1)]
    x = quant(rng.uniform(-1, 1, (sizes[0], batch)), 32)
    t = targets(rng, sizes[L], batch)
    if zero_target_col >= 0:
        t[:, zero_target_col] = 0.0
    if zero_err is not None:
        i, j = zero_err
        assert loss == LOSS_MSE and acts[L - 1] == ACT_IDENTITY
        ws[L - 1][i, :] = 0.0
        bs[L - 1][i, 0] = t[i, j]
    params = Net.flatten(ws, bs)
    fb_layer = {l: quant(rng.uniform(-1, 1, (sizes[l], sizes[l - 1])))
                for l in range(2, L + 1)}
    fb_direct = {l: quant(rng.uniform(-1, 1, (sizes[L], sizes[l])))
                 for l in range(1, L)}

    _, _, As = net.forward(params, x)
    for l in range(L):  # clear of the ReLU kinks, as in make_case
        assert np.min(np.abs(As[l])) > 1e-3, (name, l)

    c = dict(name=name, sizes=sizes, acts=acts, loss=loss, batch=batch,
             x=x, t=t, params=params, zero_target_col=zero_target_col,
             zero_err=zero_err if zero_err is not None else (-1, -1),
             fb_layer=np.concatenate([fb_layer[l].flatten(order="F")
                                      for l in range(2, L + 1)]),
             fb_direct=np.concatenate([fb_direct[l].flatten(order="F")
                                       for l in range(1, L)]))
    grads, aligns, fbangles = {}, {}, {}
    for rule in range(N_RULES):
        g, value, e = rule_update(net, params, x, t, rule, mags=fb_layer,
                                  stored=fb_layer, direct=fb_direct)
        grads[rule] = g
        if rule == RULE_BP:
            c["loss_value"] = value
            # SDFA's sign(e) must not hinge on rounding: every entry of e is
            # exactly zero (the one built so) or clearly not.
            nz = np.abs(e[e != 0])
            assert np.min(nz) > 1e-3, name
            if zero_err is not None:
                assert e[zero_err] == 0.0
                assert np.count_nonzero(e == 0) == 1
            else:
                assert np.all(e != 0)
    gw = {r: net.unflatten(grads[r])[0] for r in grads}
    for rule in range(N_RULES):
        aligns[rule] = [angle(gw[rule][l - 1], gw[RULE_BP][l - 1])
                        for l in range(1, L)]
    for rule in range(N_RULES):
        kind = RULE_KIND[rule]
        if kind == FB_LAYER:
            back = {RULE_FA: lambda l: fb_layer[l],
                    RULE_KP: lambda l: fb_layer[l],
                    RULE_WM: lambda l: fb_layer[l],
                    RULE_USF: lambda l: usf_scale(sizes, l)
                    * np.sign(ws[l - 1]),
                    RULE_BRSF: lambda l: np.abs(fb_layer[l])
                    * np.sign(ws[l - 1]),
                    RULE_FRSF: lambda l: np.abs(fb_layer[l])
                    * np.sign(ws[l - 1])}[rule]
            fbangles[rule] = [angle(ws[l - 1], back(l))
                              for l in range(2, L + 1)]
        elif kind == FB_DIRECT:
            fd = []
            for l in range(1, L):
                prod = ws[L - 1]
                for k in range(L - 1, l, -1):
                    prod = prod @ ws[k - 1]
                fd.append(angle(prod, fb_direct[l]))
            fbangles[rule] = fd
    # The rules' defining identities, checked on the numbers written out.
    n_hidden = sum(sizes[l] * sizes[l - 1] + sizes[l] for l in range(1, L))
    out = slice(n_hidden, len(params))
    for rule in range(N_RULES):  # the last layer always learns from e
        assert np.array_equal(grads[rule][out], grads[RULE_BP][out])
    assert np.all(grads[RULE_SHALLOW][:n_hidden] == 0.0)
    assert np.array_equal(grads[RULE_BRSF], grads[RULE_FRSF])
    assert np.array_equal(grads[RULE_KP], grads[RULE_FA])
    assert np.array_equal(grads[RULE_WM], grads[RULE_FA])
    for rule in (RULE_USF, RULE_BRSF, RULE_DRTP, RULE_SDFA):
        assert np.max(np.abs(grads[rule][:n_hidden] - grads[RULE_BP][:n_hidden])) > 1e-3
    c.update(grads=grads, aligns=aligns, fbangles=fbangles)
    c["usf_fb"] = np.concatenate([(usf_scale(sizes, l) * np.sign(ws[l - 1]))
                                  .flatten(order="F") for l in range(2, L + 1)])

    # One applied BRSF step (SGD, KA_LR1): the update uses the M set by hand;
    # M is redrawn only afterwards.
    c["sgd_brsf"] = params - LR1 * grads[RULE_BRSF]

    # One applied KP step per variant: W by the optimiser (its weight decay
    # included), then B <- B + (W_new - W_old) - k (B - W_old).
    mask = net.weight_mask()
    kp_p, kp_b = [], []
    for kind, lr, wd, k in KP_VARIANTS:
        g = grads[RULE_KP]
        if kind == OPT_ADAM:
            clear_or_zero(g + wd * params * mask, (name, "kp adam"))
        p1 = one_step(kind, params, g, lr, wd, mask)
        w0, _ = net.unflatten(params)
        w1, _ = net.unflatten(p1)
        b1 = {l: fb_layer[l] + (w1[l - 1] - w0[l - 1])
              - k * (fb_layer[l] - w0[l - 1]) for l in range(2, L + 1)}
        for l in range(2, L + 1):
            # B_new - W_new = (1 - k)(B_old - W_old), whatever the optimiser
            assert np.allclose(b1[l] - w1[l - 1],
                               (1 - k) * (fb_layer[l] - w0[l - 1]),
                               rtol=0, atol=1e-12)
            if kind == OPT_SGD and k == lr * wd:
                # Akrout et al.: B takes -lr delta H^T and decays by lr wd
                gw_l = net.unflatten(g)[0][l - 1]
                akrout = fb_layer[l] - lr * gw_l - lr * wd * fb_layer[l]
                assert np.allclose(b1[l], akrout, rtol=0, atol=1e-12)
        kp_p.append(p1)
        kp_b.append(np.concatenate([b1[l].flatten(order="F")
                                    for l in range(2, L + 1)]))
    c["kp_params"], c["kp_fb"] = kp_p, kp_b
    return c


RULE_CASES = [
    # Output 1 of sample 0 has error exactly 0 (SDFA), sample 2 an all-zero
    # target (DRTP); W_2's zero row also gives sign(0) = 0 to USF/BRSF/FRSF.
    dict(name="tanh_mse", sizes=[3, 4, 2], acts=[ACT_TANH, ACT_IDENTITY],
         loss=LOSS_MSE, batch=3, seed=21, targets=real, zero_target_col=2,
         zero_err=(1, 0)),
    # Three layers: USF's scales of two layers, KP's B_2 and B_3, DRTP and
    # SDFA with two G_l; one-hot targets.
    dict(name="sigmoid_relu_softmax", sizes=[2, 4, 3, 3],
         acts=[ACT_SIGMOID, ACT_RELU, ACT_IDENTITY], loss=LOSS_SOFTMAX_CE,
         batch=3, seed=8, targets=onehot),
    # Sample 1 with all targets 0 under the sigmoid BCE.
    dict(name="leaky_tanh_bce", sizes=[3, 5, 4, 2],
         acts=[ACT_LEAKY, ACT_TANH, ACT_IDENTITY], loss=LOSS_SIGMOID_BCE,
         batch=3, seed=5, targets=binary, zero_target_col=1),
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


def emit_rule_cases(w):
    """The rule cases: one struct per case, arrays per rule indexed by
    fa_rule (NULL where a rule has no such value)."""
    w("/* The whole rule family on hand-set nets (tests/test_rule_steps.c).\n"
      " * fb_layer is M_l for BRSF/FRSF and B_l for FA/KP/WM (l = 2..L),\n"
      " * fb_direct G_l for DFA/DRTP/SDFA (l = 1..L-1), each column-major,\n"
      " * back to back.  KP variants: optimiser, lr, weight decay, k. */\n")
    w("#define KA_N_RULES %d\n#define KA_N_KP %d\n" % (N_RULES, len(KP_VARIANTS)))
    w("static const struct { int32_t opt; double lr, wd, k; } "
      "ka_kp_variants[KA_N_KP] = {\n")
    for kind, lr, wd, k in KP_VARIANTS:
        w("    { %d, %r, %r, %r },\n" % (kind, lr, wd, k))
    w("};\n\n")
    w("typedef struct ka_rule_case {\n"
      "    const char *name;\n"
      "    int32_t n_layers;\n    int32_t sizes[5];\n    int32_t acts[4];\n"
      "    int32_t loss;\n    int32_t batch;\n"
      "    const float *x, *t, *params; /* as ka_net_case */\n"
      "    int64_t n_params;\n"
      "    const float *fb_layer, *fb_direct;\n"
      "    int64_t fb_layer_len, fb_direct_len;\n"
      "    int32_t zero_target_col;   /* sample with t[:, j] == 0, or -1 */\n"
      "    int32_t zero_err_row, zero_err_col; /* e[i, j] == 0 exactly, or -1 */\n"
      "    double loss_value;\n"
      "    const double *grad[KA_N_RULES];    /* fa_net_compute_update */\n"
      "    const double *align[KA_N_RULES];   /* fa_net_alignment, L-1 */\n"
      "    const double *fbangle[KA_N_RULES]; /* fa_net_feedback_angles, L-1;"
      " NULL: no feedback */\n"
      "    const double *usf_fb;   /* s_l sign(W_l), l = 2..L */\n"
      "    const double *sgd_brsf; /* params after one BRSF SGD step, KA_LR1 */\n"
      "    const double *kp_params[KA_N_KP], *kp_fb[KA_N_KP]; /* after one"
      " KP step */\n"
      "} ka_rule_case;\n\n")
    entries = []
    for spec in RULE_CASES:
        c = make_rule_case(**spec)
        p = "ka_rule_" + c["name"] + "_"
        L = len(c["sizes"]) - 1
        for key in ("x", "t", "params", "fb_layer", "fb_direct"):
            w(farr(p + key, c[key]))
        gr, al, fb = [], [], []
        for r in range(N_RULES):
            n = RULE_NAMES[r]
            w(farr(p + "grad_" + n, c["grads"][r], "double"))
            w(farr(p + "align_" + n, c["aligns"][r], "double"))
            gr.append(p + "grad_" + n)
            al.append(p + "align_" + n)
            if r in c["fbangles"]:
                w(farr(p + "fbangle_" + n, c["fbangles"][r], "double"))
                fb.append(p + "fbangle_" + n)
            else:
                fb.append("NULL")
        w(farr(p + "usf_fb", c["usf_fb"], "double"))
        w(farr(p + "sgd_brsf", c["sgd_brsf"], "double"))
        for k in range(len(KP_VARIANTS)):
            w(farr(p + "kp%d_params" % k, c["kp_params"][k], "double"))
            w(farr(p + "kp%d_fb" % k, c["kp_fb"][k], "double"))
        sizes = ", ".join(str(s) for s in c["sizes"])
        acts = ", ".join(str(a) for a in c["acts"])
        kpp = ", ".join("%skp%d_params" % (p, k) for k in range(len(KP_VARIANTS)))
        kpf = ", ".join("%skp%d_fb" % (p, k) for k in range(len(KP_VARIANTS)))
        entries.append(
            "    { \"%s\", %d, {%s}, {%s}, %d, %d, %sx, %st, %sparams, %d,\n"
            "      %sfb_layer, %sfb_direct, %d, %d, %d, %d, %d, %.17g,\n"
            "      {%s},\n      {%s},\n      {%s},\n"
            "      %susf_fb, %ssgd_brsf, {%s}, {%s} },\n"
            % (c["name"], L, sizes, acts, c["loss"], c["batch"], p, p, p,
               len(c["params"]), p, p, len(c["fb_layer"]), len(c["fb_direct"]),
               c["zero_target_col"], c["zero_err"][0], c["zero_err"][1],
               c["loss_value"], ", ".join(gr), ", ".join(al), ", ".join(fb),
               p, p, kpp, kpf))
        w("\n")
    w("static const ka_rule_case ka_rule_cases[] = {\n")
    w("".join(entries))
    w("};\n#define KA_N_RULE_CASES %d\n\n" % len(entries))


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
    emit_rule_cases(w)
    w("#endif /* KNOWN_ANSWERS_H */\n")


if __name__ == "__main__":
    main()
