"""ctypes binding of libfeedbackalign (and of OpenBLAS's thread control) for
the Python benchmarks.  Shared by compare_numpy.py and compare_torch.py.

Only what the benchmarks need is declared, from include/feedbackalign.h;
the enum values are fixed by the header (part of the ABI).

Layout: the library is column-major.  A C-contiguous NumPy array of shape
(batch, features) has the bytes of the (features, batch) column-major matrix
with ld = features, so data batches pass without copies.  Likewise a
column-major matrix (rows, cols) -- a weight W_l (n_l, n_{l-1}), a feedback
matrix -- has the bytes of a C-contiguous array of shape (cols, rows): this
module hands matrices out in that form ("transposed view" below), and the
caller transposes (a view) where it wants the mathematical orientation.

Needs NumPy; the importing script decides what a missing NumPy means.
"""

import ctypes
import os

import numpy as np

# ------------------------------------------------------------------ enums
FA_OK = 0
FA_ACT_IDENTITY, FA_ACT_TANH = 0, 1
FA_LOSS_SOFTMAX_CE = 1
FA_RULE_BP, FA_RULE_FA, FA_RULE_DFA = 0, 1, 2
FA_DFA_AFTER_ACTIVATION, FA_DFA_BEFORE_ACTIVATION = 0, 1
FA_OPT_SGD, FA_OPT_ADAM = 0, 3
FA_HP_LR, FA_HP_BETA1, FA_HP_BETA2, FA_HP_EPSILON = 0, 2, 3, 4
FA_LAYER_DENSE, FA_LAYER_CONV2D, FA_LAYER_MAXPOOL, FA_LAYER_AVGPOOL = 0, 1, 2, 3

c_int32, c_int64, c_float, c_double = (ctypes.c_int32, ctypes.c_int64,
                                       ctypes.c_float, ctypes.c_double)
c_void_p, P = ctypes.c_void_p, ctypes.POINTER


class LibraryError(RuntimeError):
    pass


def ptr(a):
    """The data pointer of a NumPy array, for a float * argument."""
    return a.ctypes.data_as(c_void_p)


class Library:
    """The loaded shared library with the entry points the benchmarks use."""

    SIGNATURES = {
        "fa_net_create": [P(c_void_p), c_int32, P(c_int32), P(c_int32),
                          c_int32, ctypes.c_uint64],
        "fa_net_set_rule": [c_void_p, c_int32],
        "fa_net_set_dfa_variant": [c_void_p, c_int32],
        "fa_net_set_optimizer": [c_void_p, c_int32],
        "fa_net_set_hparam": [c_void_p, c_int32, c_double],
        "fa_net_reserve": [c_void_p, c_int32],
        "fa_net_param_count": [c_void_p, P(c_int64)],
        "fa_net_get_params": [c_void_p, c_void_p, c_int64],
        "fa_net_set_params": [c_void_p, c_void_p, c_int64],
        "fa_net_layer_offsets": [c_void_p, c_int32, P(c_int64), P(c_int64)],
        "fa_net_feedback_shape": [c_void_p, c_int32, c_int32, P(c_int32),
                                  P(c_int32)],
        "fa_net_get_feedback": [c_void_p, c_int32, c_int32, c_void_p, c_int64],
        "fa_net_set_feedback": [c_void_p, c_int32, c_int32, c_void_p, c_int64],
        "fa_net_train_step": [c_void_p, c_void_p, c_int32, c_void_p, c_int32,
                              c_int32, P(c_float)],
        "fa_spec_parse": [P(c_void_p), ctypes.c_char_p, c_int32, c_int32],
        "fa_spec_num_layers": [c_void_p, P(c_int32)],
        "fa_spec_layer": [c_void_p, c_int32] + [P(c_int32)] * 7,
        "fa_spec_shape": [c_void_p, c_int32] + [P(c_int32)] * 3,
        "fa_net_create_from_spec": [P(c_void_p), c_void_p, c_int32,
                                    ctypes.c_uint64],
        "fa_net_num_layers": [c_void_p, P(c_int32)],
        "fa_net_get_sizes": [c_void_p, P(c_int32), c_int64],
        "fa_net_weight_shape": [c_void_p, c_int32, P(c_int32), P(c_int32)],
    }

    def __init__(self, path):
        self.path = os.path.abspath(path)
        self.dll = d = ctypes.CDLL(self.path)
        for name, args in self.SIGNATURES.items():
            f = getattr(d, name)
            f.argtypes, f.restype = args, ctypes.c_int
        d.fa_net_free.argtypes, d.fa_net_free.restype = [c_void_p], None
        d.fa_spec_free.argtypes, d.fa_spec_free.restype = [c_void_p], None
        d.fa_status_string.argtypes = [c_int32]
        d.fa_status_string.restype = ctypes.c_char_p
        d.fa_last_error.argtypes, d.fa_last_error.restype = [], ctypes.c_char_p
        d.fa_version_string.argtypes = []
        d.fa_version_string.restype = ctypes.c_char_p

    def version(self):
        return self.dll.fa_version_string().decode()

    def error(self, name, rc):
        return LibraryError("%s: %s (%s)" % (
            name, self.dll.fa_status_string(rc).decode(),
            self.dll.fa_last_error().decode()))

    def call(self, name, *args):
        rc = getattr(self.dll, name)(*args)
        if rc != FA_OK:
            raise self.error(name, rc)

    def parse_spec(self, text, hidden_act=FA_ACT_TANH,
                   output_act=FA_ACT_IDENTITY):
        """A spec handle from its text form (free it with fa_spec_free)."""
        s = c_void_p()
        self.call("fa_spec_parse", ctypes.byref(s), text.encode(), hidden_act,
                  output_act)
        return s

    def spec_layers(self, text, hidden_act=FA_ACT_TANH,
                    output_act=FA_ACT_IDENTITY):
        """The layers of a spec text as the library resolves them: a list of
        dicts with kind, units, kh, kw, stride, pad, act and the input and
        output shapes (channels, height, width)."""
        s = self.parse_spec(text, hidden_act, output_act)
        try:
            n = c_int32()
            self.call("fa_spec_num_layers", s, ctypes.byref(n))
            out = []
            for l in range(1, n.value + 1):
                v = [c_int32() for _ in range(7)]
                self.call("fa_spec_layer", s, l, *[ctypes.byref(x) for x in v])
                shapes = []
                for k in (l - 1, l):
                    c = [c_int32() for _ in range(3)]
                    self.call("fa_spec_shape", s, k, *[ctypes.byref(x) for x in c])
                    shapes.append(tuple(x.value for x in c))
                out.append(dict(zip(("kind", "units", "kh", "kw", "stride", "pad",
                                     "act"), (x.value for x in v)),
                                in_shape=shapes[0], out_shape=shapes[1]))
            return out
        finally:
            self.dll.fa_spec_free(s)


class Net:
    """One library network (a handle) and the calls on it: a dense network
    from its widths and activations (fa_net_create), or any network from
    the text form of a spec (spec=..., fa_net_create_from_spec; hidden
    layers tanh, the last identity unless the text says otherwise)."""

    def __init__(self, lib, sizes, activations, loss, seed, spec=None):
        self.lib = lib
        self.h = c_void_p()
        if spec is None:
            L = len(sizes) - 1
            lib.call("fa_net_create", ctypes.byref(self.h), L,
                     (c_int32 * (L + 1))(*sizes), (c_int32 * L)(*activations),
                     loss, seed)
        else:
            s = lib.parse_spec(spec)
            try:
                lib.call("fa_net_create_from_spec", ctypes.byref(self.h), s,
                         loss, seed)
            finally:
                lib.dll.fa_spec_free(s)
        n_layers = c_int32()
        lib.call("fa_net_num_layers", self.h, ctypes.byref(n_layers))
        L = n_layers.value
        widths = (c_int32 * (L + 1))()
        lib.call("fa_net_get_sizes", self.h, widths, L + 1)
        self.sizes = list(widths)  # features n_0 .. n_L
        n = c_int64()
        lib.call("fa_net_param_count", self.h, ctypes.byref(n))
        self.n_params = n.value
        self.offsets = []  # (W_l offset, b_l offset) for l = 1..L
        self.weight_shapes = []  # (rows, cols) of W_l, (0, 0) for pooling
        for l in range(1, L + 1):
            w, b = c_int64(), c_int64()
            lib.call("fa_net_layer_offsets", self.h, l, ctypes.byref(w),
                     ctypes.byref(b))
            self.offsets.append((w.value, b.value))
            r, c = c_int32(), c_int32()
            lib.call("fa_net_weight_shape", self.h, l, ctypes.byref(r),
                     ctypes.byref(c))
            self.weight_shapes.append((r.value, c.value))
        self._loss = c_float()
        self._step = lib.dll.fa_net_train_step

    def set_rule(self, rule):
        self.lib.call("fa_net_set_rule", self.h, rule)

    def set_dfa_variant(self, variant):
        self.lib.call("fa_net_set_dfa_variant", self.h, variant)

    def set_optimizer(self, opt):
        self.lib.call("fa_net_set_optimizer", self.h, opt)

    def set_hparam(self, hp, value):
        self.lib.call("fa_net_set_hparam", self.h, hp, value)

    def reserve(self, batch):
        self.lib.call("fa_net_reserve", self.h, batch)

    # -- parameters: the flat block [W_1|b_1|...|W_L|b_L]
    def get_params(self):
        flat = np.empty(self.n_params, dtype=np.float32)
        self.lib.call("fa_net_get_params", self.h, ptr(flat), self.n_params)
        return flat

    def set_params(self, flat):
        flat = np.ascontiguousarray(flat, dtype=np.float32)
        self.lib.call("fa_net_set_params", self.h, ptr(flat), flat.size)

    def layer_views(self, flat):
        """[(Wt_l, b_l), ...] for the layers with parameters: views into a
        flat parameter block; Wt_l is the transposed view of W_l (rows,
        cols), shape (cols, rows) -- (n_{l-1}, n_l) for a dense layer."""
        out = []
        for (wo, bo), (rows, cols) in zip(self.offsets, self.weight_shapes):
            if rows:
                out.append((flat[wo:wo + rows * cols].reshape(cols, rows),
                            flat[bo:bo + rows]))
        return out

    # -- feedback matrices
    def feedback_shape(self, rule, layer):
        """(rows, cols) of F_layer (FA) or G_layer (DFA), as the header has it."""
        rows, cols = c_int32(), c_int32()
        self.lib.call("fa_net_feedback_shape", self.h, rule, layer,
                      ctypes.byref(rows), ctypes.byref(cols))
        return rows.value, cols.value

    def get_feedback(self, rule, layer):
        """The transposed view: a C-contiguous (cols, rows) array."""
        rows, cols = self.feedback_shape(rule, layer)
        buf = np.empty((cols, rows), dtype=np.float32)
        self.lib.call("fa_net_get_feedback", self.h, rule, layer, ptr(buf),
                      buf.size)
        return buf

    def set_feedback(self, rule, layer, transposed):
        """From the transposed view, a (cols, rows) array."""
        rows, cols = self.feedback_shape(rule, layer)
        if transposed.shape != (cols, rows):
            raise LibraryError("feedback %d: library shape (%d, %d), given the "
                               "transposed shape %s" % (layer, rows, cols,
                                                        transposed.shape))
        buf = np.ascontiguousarray(transposed, dtype=np.float32)
        self.lib.call("fa_net_set_feedback", self.h, rule, layer, ptr(buf),
                      buf.size)

    # -- training
    def train_step(self, x, t):
        """x (batch, n_0), t (batch, n_L): C-contiguous float32.  Returns the
        loss before the update."""
        rc = self._step(self.h, x.ctypes.data, self.sizes[0], t.ctypes.data,
                        self.sizes[-1], x.shape[0], ctypes.byref(self._loss))
        if rc != FA_OK:
            raise self.lib.error("fa_net_train_step", rc)
        return self._loss.value

    def close(self):
        if getattr(self, "h", None):
            self.lib.dll.fa_net_free(self.h)
            self.h = None

    def __del__(self):
        self.close()


class OpenBLAS:
    """The OpenBLAS the library links (libopenblas.so.0, already loaded by
    the library, so this is the same instance): thread count and build."""

    def __init__(self):
        self.dll = ctypes.CDLL("libopenblas.so.0")
        self.dll.openblas_set_num_threads.argtypes = [ctypes.c_int]
        self.dll.openblas_set_num_threads.restype = None
        self.dll.openblas_get_num_threads.restype = ctypes.c_int
        self.dll.openblas_get_config.restype = ctypes.c_char_p
        self.dll.openblas_get_corename.restype = ctypes.c_char_p

    def set_threads(self, n):
        self.dll.openblas_set_num_threads(n)

    def threads(self):
        return self.dll.openblas_get_num_threads()

    def config(self):
        return self.dll.openblas_get_config().decode()

    def corename(self):
        return self.dll.openblas_get_corename().decode()


def blas_objects_in_process():
    """Paths of the OpenBLAS shared objects mapped into this process."""
    with open("/proc/self/maps") as f:
        return sorted({line.split()[-1] for line in f
                       if "openblas" in line and ".so" in line})
