#!/usr/bin/python3
"""Library against PyTorch on the CPU: the same step checked first, then timed.

The same networks -- dense 784-1000-10 and 784-240x7-10, and LeNet-5 on
28x28 images (1x28x28-c6k5p2-m2-c16k5-m2-c120k5-84-10); tanh hidden layers,
softmax cross-entropy as a mean over the batch -- trained by the same rules
(BP, FA, DFA) and optimisers (SGD, Adam), written in PyTorch from the maths
-- not from the library's code -- the way a PyTorch user would write them:

  BP   autograd through F.linear / F.conv2d, F.max_pool2d and torch.tanh;
  FA   autograd, each layer with parameters after the first a
       torch.autograd.Function whose backward uses a fixed matrix B of W's
       shape (dense: grad_input = grad_output @ B; convolution: the
       transposed convolution with B), as BioTorch does it;
  DFA  by hand under torch.no_grad: the forward pass, then every hidden error
       from one product of the output error e with the stacked feedback
       G = [G_1|...|G_{L-1}] (n_L, sum n_l), kept column-major as in the
       library, times f'(A_l); weight gradients delta_l^T H_{l-1} (a
       convolution's from aten's convolution backward).

Layouts: the library's images are channel-fastest (feature c + C*(x + W*y),
a C array [H][W][C]) and its conv W is (C_out, C_in*kh*kw) column-major with
column c + C_in*(kx + kw*ky); PyTorch's images are NCHW and its kernels
(C_out, C_in, kh, kw).  conv_kernel() and hwc_to_nchw() convert; before a
dense layer PyTorch flattens in the library's order.

The optimiser is torch.optim.SGD or torch.optim.Adam in every case.

1. Check.  For every rule and optimiser on each architecture timed, a
   library network is created, given non-zero biases, and its parameters and
   feedback matrices are copied into the PyTorch model (fa_net_get_params,
   fa_net_get_feedback: column-major, so a C-order array of shape
   (cols, rows) has the library's bytes).  Both then take two steps, on the
   same two Fashion-MNIST batches; after each step the losses and every
   parameter tensor must agree within the tolerances below.  If anything
   disagrees, exit 1 and nothing is timed.  --self-test shows that the check
   can fail: it feeds it deliberate mistakes (a rule swapped, layouts read
   row-major, DFA without f', a learning rate 1 % off, Adam's betas changed;
   on LeNet also conv kernels and feedback read with ky and kx swapped and
   DFA's conv blocks read channel-first) on every network given and exits 1
   unless every one is caught.
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
sets it (the header says which); the library does not use OpenMP.  For the
same reason it sets OPENBLAS_THREAD_TIMEOUT=4 (OpenBLAS's idle threads
sleep at once instead of spinning for 2^28 cycles) unless the environment
sets it: at 2 threads the library runs a convolutional network's products
on its own threads with OpenBLAS on one, and OpenBLAS's workers, woken by
PyTorch's dense products, would otherwise spin on the same cores.

Usage:
  compare_torch.py --lib BUILD/libfeedbackalign.so [--arch wide,deep,lenet|all|SPEC]
                   [--opt sgd|adam|all] [--rules BP,FA,DFA] [--threads 1,2]
                   [--torch-intraop same,1] [--batch 128] [--conv-batch 64,128]
                   [--steps N] [--repeats N]
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
# Before torch loads OpenBLAS, which reads it once (see "Threads" above).
BLAS_TIMEOUT_SOURCE = ("environment" if "OPENBLAS_THREAD_TIMEOUT" in os.environ
                       else "set by this script")
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as exc:  # the meson tests treat 77 as a skip
    print("%s is not available to %s: skipped" % (exc.name, sys.executable))
    sys.exit(77)

from bench_common import (ARCHS, CONV_ARCHS, DATA_DIR, arch_name,  # noqa: E402
                          load_data, parse_arch)
import fa_ctypes as fa  # noqa: E402

LR = {"sgd": 0.05, "adam": 1e-3}
LIB_OPT = {"sgd": fa.FA_OPT_SGD, "adam": fa.FA_OPT_ADAM}

# One batch in both forms: x (m, n_0) and one-hot t (m, n_L), C-contiguous
# float32 NumPy for the library; the same memory as torch tensors (x as
# (m, C, H, W) for an image network), with the class indices for torch's
# cross-entropy.
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
    has_params = True


@dataclass(frozen=True)
class Conv:
    """A convolution; shapes are (channels, height, width)."""
    c_in: int
    c_out: int
    kh: int
    kw: int
    stride: int
    pad: int
    act: str
    in_shape: tuple
    out_shape: tuple
    has_params = True


@dataclass(frozen=True)
class Pool:
    kind: str  # "max" or "avg"
    size: int
    stride: int
    in_shape: tuple
    out_shape: tuple
    act = "identity"
    has_params = False


@dataclass(frozen=True)
class Arch:
    """A network as a spec: its text form (the library's fa_spec_parse reads
    it), a name, and its layers as the library resolves them (Dense, Conv,
    Pool), which the library side and the PyTorch models each build."""
    spec: str
    name: str
    layers: tuple
    in_shape: tuple  # (channels, height, width); (n_0, 1, 1) for dense input

    @staticmethod
    def from_spec(lib, spec, name=None):
        acts = {fa.FA_ACT_TANH: "tanh", fa.FA_ACT_IDENTITY: "identity"}
        layers = []
        for d in lib.spec_layers(spec):
            (ci, hi, wi), (co, ho, wo) = d["in_shape"], d["out_shape"]
            if d["kind"] == fa.FA_LAYER_DENSE:
                layers.append(Dense(ci * hi * wi, co * ho * wo, acts[d["act"]]))
            elif d["kind"] == fa.FA_LAYER_CONV2D:
                layers.append(Conv(ci, co, d["kh"], d["kw"], d["stride"], d["pad"],
                                   acts[d["act"]], d["in_shape"], d["out_shape"]))
            else:
                layers.append(Pool("max" if d["kind"] == fa.FA_LAYER_MAXPOOL
                                   else "avg", d["kh"], d["stride"],
                                   d["in_shape"], d["out_shape"]))
        return Arch(spec, name or spec, tuple(layers),
                    lib.spec_layers(spec)[0]["in_shape"])

    @property
    def images(self):
        return any(not isinstance(layer, Dense) for layer in self.layers)

    @property
    def sizes(self):
        """Features n_0 .. n_L."""
        c, h, w = self.in_shape
        out = [c * h * w]
        for layer in self.layers:
            if isinstance(layer, Dense):
                out.append(layer.n_out)
            else:
                c, h, w = layer.out_shape
                out.append(c * h * w)
        return out

    @property
    def param_layers(self):
        """Library layer numbers (1-based) of the layers with parameters."""
        return [l + 1 for l, layer in enumerate(self.layers) if layer.has_params]


def arch_from_arg(lib, name):
    """wide, deep, lenet, or a spec text (dense '784-500-10' or any)."""
    if name in CONV_ARCHS:
        return Arch.from_spec(lib, CONV_ARCHS[name], name)
    spec = ARCHS.get(name, name)
    try:
        sizes = parse_arch(spec)  # a dense spec: the name the other programs use
        return Arch.from_spec(lib, spec, arch_name(sizes))
    except ValueError:
        return Arch.from_spec(lib, spec)


def hwc_to_nchw(h, shape):
    """The library's image layout (channel fastest: feature c + C*(x + W*y))
    of a batch (m, C*H*W) as torch's (m, C, H, W) view."""
    c, hh, ww = shape
    return h.reshape(h.shape[0], hh, ww, c).permute(0, 3, 1, 2)


def nchw_to_hwc(h):
    """Back: (m, C, H, W) to (m, C*H*W) in the library's feature order (what
    a dense layer after an image sees)."""
    return h.permute(0, 2, 3, 1).reshape(h.shape[0], -1)


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


def conv_backward(grad_y, x, weight, stride, pad, need_x):
    """grad_x through `weight` (or None), grad_w, grad_b of a convolution:
    aten's own convolution backward, the kernel autograd runs for Conv2d."""
    return torch.ops.aten.convolution_backward(
        grad_y, x, weight, [weight.shape[0]], [stride, stride], [pad, pad],
        [1, 1], False, [0, 0], 1, [need_x, True, True])


class Conv2dFA(torch.autograd.Function):
    """conv2d whose backward sends the error through a fixed B of W's shape
    (C_out, C_in, kh, kw): grad_x is the transposed convolution with B, as
    BioTorch's FA convolution does (there with torch.nn.grad.conv2d_input /
    conv2d_weight; here with aten's convolution_backward, the same kernels
    autograd runs for BP, so that FA does not pay for a slower path)."""

    @staticmethod
    def forward(ctx, x, weight, B, bias, stride, pad):
        ctx.save_for_backward(x, B)
        ctx.conf = (stride, pad)
        return F.conv2d(x, weight, bias, stride, pad)

    @staticmethod
    def backward(ctx, grad_y):
        x, B = ctx.saved_tensors
        stride, pad = ctx.conf
        gx, gw, gb = conv_backward(grad_y, x, B, stride, pad,
                                   ctx.needs_input_grad[0])
        return gx, gw, None, gb, None, None


def make_optimizer(params, opt, hp, foreach):
    if opt == "sgd":
        return torch.optim.SGD(params, lr=hp.lr, foreach=foreach)
    return torch.optim.Adam(params, lr=hp.lr, betas=(hp.beta1, hp.beta2),
                            eps=hp.eps, foreach=foreach)


class TorchNet:
    """Parameters W_l and b_l of the layers with parameters, W in PyTorch's
    orientation (nn.Linear's (n_out, n_in), nn.Conv2d's (C_out, C_in, kh,
    kw)), and a torch.optim optimiser over [W_1, b_1, W_2, ...].  A rule is
    a subclass: `lib_rule` names the library's rule, `feedback_layers` the
    layers whose feedback matrix the library holds (they are handed to
    __init__ as {library layer: matrix}, a LAYER-kind B_l in W_l's PyTorch
    shape, a DIRECT G_l as (n_L, n_l) with the library's feature order),
    and `step` trains on one batch and returns the loss before the
    update."""

    lib_rule = None
    uses_autograd = True

    @staticmethod
    def feedback_layers(arch):
        return []

    def __init__(self, arch, weights, biases, feedback, opt, hp, foreach):
        self.arch, self.spec, self.sizes = arch, arch.layers, arch.sizes
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
    """Forward through `linear` / `conv` / pooling, loss, loss.backward(),
    optimiser step.  Images are NCHW; before a dense layer they are
    flattened in the library's feature order (channel fastest)."""

    def linear(self, i, h):
        return F.linear(h, self.W[i], self.b[i])

    def conv(self, i, h, layer):
        return F.conv2d(h, self.W[i], self.b[i], layer.stride, layer.pad)

    def forward(self, x):
        h, i = x, 0
        for layer in self.spec:
            if isinstance(layer, Dense):
                if h.dim() == 4:
                    h = nchw_to_hwc(h)
                h = self.linear(i, h)
                i += 1
            elif isinstance(layer, Conv):
                h = self.conv(i, h, layer)
                i += 1
            elif layer.kind == "max":
                h = F.max_pool2d(h, layer.size, layer.stride)
            else:
                h = F.avg_pool2d(h, layer.size, layer.stride)
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
    """The first layer with parameters needs no input error, so it stays a
    plain F.linear / F.conv2d; every later one sends its error back through
    its fixed F_l."""

    lib_rule = fa.FA_RULE_FA

    @staticmethod
    def feedback_layers(arch):
        return arch.param_layers[1:]

    def __init__(self, arch, weights, biases, feedback, opt, hp, foreach):
        super().__init__(arch, weights, biases, feedback, opt, hp, foreach)
        # B[i] stands in for W[i] (i: index among the layers with
        # parameters), in W's shape.
        index = {l: i for i, l in enumerate(arch.param_layers)}
        self.B = {index[l]: torch.tensor(f) for l, f in feedback.items()}

    def linear(self, i, h):
        if i == 0:
            return super().linear(i, h)
        return LinearFA.apply(h, self.W[i], self.B[i], self.b[i])

    def conv(self, i, h, layer):
        if i == 0:
            return super().conv(i, h, layer)
        return Conv2dFA.apply(h, self.W[i], self.B[i], self.b[i], layer.stride,
                              layer.pad)


class DFANet(TorchNet):
    """By hand, batch-first: H_l (m, n_l), e (m, n_L).  The hidden errors of
    all layers come from one product e G, G = [G_1|...|G_{L-1}] (n_L, H)
    stored column-major (a transposed view of a C-order (H, n_L) tensor, the
    bytes the library holds); delta_l = (e G)[:, block l] * (1 - H_l^2).
    Dense networks only; DFAConvNet below takes images."""

    lib_rule = fa.FA_RULE_DFA
    uses_autograd = False

    @staticmethod
    def feedback_layers(arch):
        return arch.param_layers[:-1]

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


class DFAConvNet(DFANet):
    """DFA on a network with images, by hand: the forward pass (NCHW,
    pooling, flattened in the library's order before a dense layer), then
    D = e G as above; a convolution's block of D is its output in the
    library's layout (channel fastest), viewed as NCHW; its weight and bias
    gradients come from aten's convolution backward (no input error)."""

    block_to_nchw = staticmethod(hwc_to_nchw)

    def _buffers(self, m):
        if self.m != m:
            self.D = torch.empty(m, self.G.shape[1])
            self.m = m

    @torch.no_grad()
    def step(self, x, labels, onehot):
        m = x.shape[0]
        self._buffers(m)
        h, i = x, 0
        inputs, outputs = [], []  # of the layers with parameters
        for layer in self.spec:
            if isinstance(layer, Dense):
                if h.dim() == 4:
                    h = nchw_to_hwc(h)
                inputs.append(h)
                h = torch.addmm(self.b[i], h, self.W[i].t())
                i += 1
            elif isinstance(layer, Conv):
                inputs.append(h)
                h = F.conv2d(h, self.W[i], self.b[i], layer.stride, layer.pad)
                i += 1
            elif layer.kind == "max":
                h = F.max_pool2d(h, layer.size, layer.stride)
            else:
                h = F.avg_pool2d(h, layer.size, layer.stride)
            if layer.act == "tanh":
                h.tanh_()
            if layer.has_params:
                outputs.append(h)
        logp = torch.log_softmax(h, dim=1)
        loss = F.nll_loss(logp, labels)
        e = logp.exp_().sub_(onehot).div_(m)
        torch.mm(e, self.G, out=self.D)
        o, n_hidden = 0, len(self.W) - 1
        layers = [layer for layer in self.spec if layer.has_params]
        for i, layer in enumerate(layers):
            if i < n_hidden:
                hi = outputs[i]
                n = hi[0].numel()
                d = self.D[:, o:o + n]
                o += n
                if isinstance(layer, Conv):
                    d = self.block_to_nchw(d, layer.out_shape)
                d = d * (1.0 - hi * hi)  # tanh' = 1 - H^2
            else:
                d = e
            if isinstance(layer, Conv):
                _, gw, gb = conv_backward(d, inputs[i], self.W[i], layer.stride,
                                          layer.pad, False)
                self.W[i].grad.copy_(gw)
                self.b[i].grad.copy_(gb)
            else:
                torch.mm(d.t(), inputs[i], out=self.W[i].grad)
                torch.sum(d, 0, out=self.b[i].grad)
        self.opt.step()
        return loss


DFANet.image_variant = DFAConvNet


class DFAConvNetCHW(DFAConvNet):
    """A layout mistake (--self-test): G's block of a convolution read as
    if the library's features were channel-first."""

    @staticmethod
    def block_to_nchw(d, shape):
        return d.reshape(d.shape[0], *shape)

RULES = {"BP": BPNet, "FA": FANet, "DFA": DFANet}


def model_class(rule, arch):
    cls = RULES[rule]
    return getattr(cls, "image_variant", cls) if arch.images else cls


# ------------------------------------------------------------- pairs

def colmajor(buf, rows, cols):
    """The header's (rows, cols) matrix from its column-major bytes."""
    return buf.reshape(cols, rows).T


def rowmajor(buf, rows, cols):
    """The classic layout mistake (used only by --self-test)."""
    return buf.reshape(rows, cols)


def conv_kernel(buf, layer):
    """PyTorch's (C_out, C_in, kh, kw) from the library's W (C_out, K),
    column-major, column c + C_in*(kx + kw*ky): its bytes are a C-order
    (kh, kw, C_in, C_out) array."""
    return buf.reshape(layer.kh, layer.kw, layer.c_in, layer.c_out).transpose(3, 2, 0, 1)


def conv_kernel_swapped(buf, layer):
    """A layout mistake (--self-test): ky and kx swapped."""
    return buf.reshape(layer.kw, layer.kh, layer.c_in, layer.c_out).transpose(3, 2, 1, 0)


def weight_from_library(buf, layer, rows, cols, layout, kernel):
    if isinstance(layer, Conv):
        return kernel(buf, layer)
    return layout(buf, rows, cols)


def library_net(lib, arch, rule, opt, hp, seed, bias_scale=0.0):
    """A library network with the rule's feedback drawn; non-zero biases
    U[-bias_scale, bias_scale] if asked (drawn here, set through
    fa_net_set_params)."""
    net = fa.Net(lib, None, None, fa.FA_LOSS_SOFTMAX_CE, seed, spec=arch.spec)
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


def library_layers(net, arch, layout=colmajor, kernel=conv_kernel):
    """[W_1, b_1, ...] of a library network's layers with parameters, W_l
    in PyTorch's orientation."""
    flat = net.get_params()
    out = []
    for (wo, bo), (rows, cols), layer in zip(net.offsets, net.weight_shapes,
                                             arch.layers):
        if rows:
            out.append(weight_from_library(flat[wo:wo + rows * cols], layer,
                                           rows, cols, layout, kernel))
            out.append(flat[bo:bo + rows])
    return out


def torch_copy(net, arch, rule, opt, hp, foreach, layout=colmajor,
               kernel=conv_kernel, cls=None):
    """The PyTorch model of `rule` (or of the class cls) starting from the
    library network's parameters and feedback matrices."""
    layers = library_layers(net, arch, layout, kernel)
    lib_rule = RULES[rule].lib_rule
    cls = cls or model_class(rule, arch)
    feedback = {}
    for l in cls.feedback_layers(arch):
        rows, cols = net.feedback_shape(lib_rule, l)
        buf = net.get_feedback(lib_rule, l).ravel()
        if cls.lib_rule == fa.FA_RULE_DFA:  # G_l (n_L, n_l), any layer kind
            feedback[l] = layout(buf, rows, cols)
        else:  # B_l in W_l's shape
            feedback[l] = weight_from_library(buf, arch.layers[l - 1], rows,
                                              cols, layout, kernel)
    c = np.ascontiguousarray
    return cls(arch, [c(w) for w in layers[0::2]], [c(b) for b in layers[1::2]],
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
# One more exception, measured: under plain SGD the library folds the update
# into the weight GEMM (W <- W - lr dW with GEMM beta = 1), so OpenBLAS adds
# each k-block's partial product into W and every addition rounds at W's
# magnitude.  For a convolution the GEMM's k is P = H_out*W_out*m (50176 for
# LeNet's first layer at batch 64): its applied update then differs from
# p0 - lr*g by 1.4e-4 (FA) and 4.7e-5 (BP) of itself at batch 64, 2.1e-4 at
# 128, where forming g first gives 1.4e-5 (see benchmarks/README.md, "Library
# issues noticed").  Convolution weights under SGD are held to this instead;
# layout mistakes move them by O(1), a wrong learning rate by 1e-2.
TOL_CONV_SGD_UPDATE = 5e-4
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
    kernel: object = conv_kernel  # how PyTorch reads a conv W or B
    torch_cls: type = None        # PyTorch runs this model class instead
    images_only: bool = False     # only on networks with image layers


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
    Mistake("conv kernels read with ky and kx swapped", "BP", "sgd",
            kernel=conv_kernel_swapped, images_only=True),
    Mistake("conv feedback B read with ky and kx swapped", "FA", "sgd",
            kernel=conv_kernel_swapped, images_only=True),
    Mistake("DFA's G blocks of a conv layer read channel-first", "DFA", "sgd",
            torch_cls=DFAConvNetCHW, images_only=True),
]


def compare(before, lib_after, torch_after, keep, layers, tols):
    """(max |p_lib - p_torch| / max |p|, the worst tensor's
    ||u_lib - u_torch|| / ||u_torch||, which tensor, whether every tensor
    is within its tolerance in `tols`) with u = p - before, over the
    coordinates where `keep` (a boolean array per tensor) holds; `layers`
    numbers the tensors' layers as the library does."""
    dp = max(float(np.abs(a.astype(np.float64) - b)[k].max(initial=0.0))
             for a, b, k in zip(lib_after, torch_after, keep))
    pmax = max(float(np.abs(b).max()) for b in torch_after)
    worst, which, within = 0.0, None, True
    for i, (p0, a, b, k) in enumerate(zip(before, lib_after, torch_after, keep)):
        u = (b.astype(np.float64) - p0)[k]
        du = (a.astype(np.float64) - b)[k]
        nu, ndu = float(np.linalg.norm(u)), float(np.linalg.norm(du))
        rel = ndu / nu if nu > 0 else (0.0 if ndu == 0 else math.inf)
        within &= rel <= tols[i]
        if rel >= worst:
            worst, which = rel, "%s%d" % ("Wb"[i % 2], layers[i // 2])
    return dp / pmax, worst, which, within


def check(lib, arch, rule, opt, batches, foreach, mistake=None, quiet=False):
    """Both implementations from the same start, CHECK_STEPS steps on the
    given batches; True if every step agrees."""
    hp = Hyper(LR[opt])
    net = library_net(lib, arch, rule, opt, hp, CHECK_SEED, bias_scale=0.1)
    torch_rule, torch_hp, layout, kernel, cls = rule, hp, colmajor, conv_kernel, None
    if mistake:
        torch_rule = mistake.torch_rule or rule
        torch_hp = replace(hp, **(mistake.torch_hp or {}))
        layout, kernel, cls = mistake.layout, mistake.kernel, mistake.torch_cls
        if mistake.lib_dfa_variant is not None:
            net.set_dfa_variant(mistake.lib_dfa_variant)
    model = torch_copy(net, arch, torch_rule, opt, torch_hp, foreach, layout,
                       kernel, cls)
    before = [p.astype(np.float64) for p in library_layers(net, arch)]
    ok, lines = True, []
    keep = [np.ones(p.shape, dtype=bool) for p in before]
    conv = [isinstance(arch.layers[l - 1], Conv) for l in arch.param_layers]
    tols = [TOL_CONV_SGD_UPDATE if opt == "sgd" and conv[i // 2] and i % 2 == 0
            else TOL["update"] for i in range(len(before))]
    for k, b in enumerate(batches[:CHECK_STEPS]):
        loss_lib = net.train_step(b.x, b.t)
        loss_torch = float(model.step(b.x_torch, b.labels, b.onehot))
        if opt == "adam":  # once left out, always: the difference stays
            for kp, g in zip(keep, model.numpy_grads()):
                kp &= (np.abs(g) >= ADAM_MASK) | (g == 0)
        left_out = sum(int(kp.size - kp.sum()) for kp in keep)
        rel_p, rel_u, which, within = compare(
            before, library_layers(net, arch), model.numpy_params(), keep,
            arch.param_layers, tols)
        rel_loss = abs(loss_lib - loss_torch) / abs(loss_torch)
        good = rel_loss <= TOL["loss"] and rel_p <= TOL["param"] and within
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


def self_test(lib, archs, data, foreach):
    """Every deliberate mistake must make the check fail, on every network
    given (mistakes about image layers on the networks that have them)."""
    caught_all = True
    for arch in archs:
        for mk in MISTAKES:
            if mk.images_only and not arch.images:
                continue
            ok, lines = check(lib, arch, mk.rule, mk.opt, data[arch], foreach,
                              mistake=mk, quiet=True)
            caught_all &= not ok
            print("self-test %-13s %-55s %s" % (arch.name, mk.what + ":",
                                                "caught" if not ok else "MISSED"))
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


def make_batches(x, t, batch, arch):
    """The batches of x (N, n_0) and one-hot t (N, n_L), as views; for an
    image network PyTorch's x is the (m, C, H, W) view of the library's
    (channel-fastest) layout -- for one channel the same bytes, contiguous."""
    xt, tt = torch.from_numpy(x), torch.from_numpy(t)
    labels = torch.from_numpy(t.argmax(axis=1))
    image = arch.images

    def tx(s):
        return hwc_to_nchw(xt[s], arch.in_shape) if image else xt[s]
    return [Batch(x[s], t[s], tx(s), labels[s], tt[s])
            for s in (slice(i * batch, (i + 1) * batch)
                      for i in range(x.shape[0] // batch))]


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
                    help="wide (784-1000-10), deep (784-240x7-10), lenet"
                         " (%s), all, or a spec such as 784-500-500-10,"
                         " comma-separated [all: wide,deep,lenet]"
                         % CONV_ARCHS["lenet"])
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
    ap.add_argument("--batch", type=int, default=128,
                    help="batch size of the dense networks [128]")
    ap.add_argument("--conv-batch", default="64,128",
                    help="batch sizes of networks with image layers,"
                         " comma-separated [64,128]")
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
                         "on every architecture given (no timing)")
    args = ap.parse_args()

    arch_names = (list(ARCHS) + list(CONV_ARCHS) if args.arch == "all"
                  else args.arch.split(","))
    try:
        threads = [int(s) for s in args.threads.split(",")]
        conv_batches = [int(s) for s in args.conv_batch.split(",")]
    except ValueError as exc:
        ap.error(str(exc))
    rules = args.rules.split(",")
    if any(r not in RULES for r in rules):
        ap.error("--rules: each of %s" % ",".join(RULES))
    opts = ["sgd", "adam"] if args.opt == "all" else [args.opt]
    if (args.batch < 1 or min(conv_batches) < 1 or args.steps < 1
            or args.repeats < 1 or min(threads) < 1):
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
    try:
        archs = [arch_from_arg(lib, a) for a in arch_names]
    except fa.LibraryError as exc:
        ap.error("--arch: %s" % exc)
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
          "OMP_WAIT_POLICY=%s (%s); OPENBLAS_THREAD_TIMEOUT=%s (%s)"
          % (args.foreach, os.environ["OMP_WAIT_POLICY"], OMP_WAIT_POLICY_SOURCE,
             os.environ["OPENBLAS_THREAD_TIMEOUT"], BLAS_TIMEOUT_SOURCE))

    set_threads(openblas, 1, 1)  # the check runs single-threaded
    sizes = {arch: conv_batches if arch.images else [args.batch] for arch in archs}
    data, loaded = {}, {}  # data[(arch, batch)]: batches; data[arch]: the check's
    for arch in archs:
        shape = (arch.sizes[0], arch.sizes[-1])
        if shape not in loaded:
            x, t, _, source = load_data(args.data, *shape, 1)
            loaded[shape] = x, t, source
        x, t, source = loaded[shape]
        for b in sizes[arch]:
            data[(arch, b)] = make_batches(x, t, b, arch)
        data[arch] = data[(arch, sizes[arch][0])]
        print("data for %s: %s; batch %s" % (arch.name, source,
                                             ",".join(map(str, sizes[arch]))))

    if args.self_test:
        ok = self_test(lib, archs, data, foreach)
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
            for bsz in sizes[arch]:
                for opt in opts:
                    times = time_rules(lib, arch, opt, rules, data[(arch, bsz)],
                                       args.steps, args.repeats, foreach,
                                       intraop[nt])
                    for rule in rules:
                        for v in intraop[nt]:
                            rows.append(result_row(times, rule, v, arch, opt, nt,
                                                   bsz))
                            r = rows[-1]
                            print("timed %s batch %d %s %s threads %d/%d: lib %.2f"
                                  " ms, torch %.2f ms per step, torch/lib %.2f" % (
                                      arch.name, bsz, rule, opt, nt, v,
                                      r["lib_ms_per_step"], r["torch_ms_per_step"],
                                      r["torch_over_lib"]), flush=True)

    print("\nms per step: medians of %d blocks of %d steps; torch/lib: median"
          " of the per-block ratios (quartiles), > 1 means the library is"
          " faster.  thr: OpenBLAS threads (both), omp: torch's intra-op"
          " threads.\n" % (args.repeats, args.steps))
    fmt = "%-13s %5s %-4s %-4s %3s %3s %8s %9s %9s %13s %7s %9s"
    print(fmt % ("arch", "batch", "rule", "opt", "thr", "omp", "lib ms", "torch ms",
                 "torch/lib", "(q1-q3)", "lib/BP", "torch/BP"))
    for r in rows:
        print(fmt % (r["arch"], r["batch"], r["rule"], r["optimizer"], r["threads"],
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
