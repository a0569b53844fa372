"""Helpers shared by the Python benchmarks: the named architectures and the
Fashion-MNIST training set.  Needs NumPy."""

import gzip
import os

import numpy as np

ARCHS = {"wide": "784-1000-10", "deep": "784-240x7-10"}
# Networks with image layers, given as the library's spec text (fa_spec_parse):
# LeNet-5 on 28x28 inputs (the first convolution padded by 2).
CONV_ARCHS = {"lenet": "1x28x28-c6k5p2-m2-c16k5-m2-c120k5-84-10"}
TRAIN_SAMPLES = 60000
DATA_DIR = "/usr/share/datasets/fashion-mnist"


def parse_arch(spec):
    spec = ARCHS.get(spec, spec)
    sizes = []
    for part in spec.split("-"):
        if "x" in part:
            w, r = part.split("x")
            sizes += [int(w)] * int(r)
        else:
            sizes.append(int(part))
    # At least one hidden layer: without one the three rules are the same.
    if len(sizes) < 3 or min(sizes) < 1:
        raise ValueError("bad architecture %r: need input-hidden...-output, "
                         "every width >= 1" % spec)
    return sizes


def arch_name(sizes):
    hidden = sizes[1:-1]
    if len(hidden) > 2 and len(set(hidden)) == 1:
        return "%d-%dx%d-%d" % (sizes[0], hidden[0], len(hidden), sizes[-1])
    return "-".join(str(s) for s in sizes)


def read_idx(path):
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_data(data_dir, n_in, n_out, batch):
    """Training images (N, n_in) in [0, 1] and one-hot labels (N, n_out),
    shuffled once with a fixed seed; synthetic data of the same shapes if
    the files are missing or the input width is not 784."""
    img = os.path.join(data_dir, "train-images-idx3-ubyte.gz")
    lab = os.path.join(data_dir, "train-labels-idx1-ubyte.gz")
    rng = np.random.default_rng(0)
    if n_in == 784 and n_out == 10 and os.path.exists(img) and os.path.exists(lab):
        x = read_idx(img).reshape(-1, 784).astype(np.float32) / np.float32(255.0)
        y = read_idx(lab).astype(np.int64)
        source = "Fashion-MNIST training set (%d images)" % x.shape[0]
    else:
        x = rng.random((TRAIN_SAMPLES, n_in), dtype=np.float32)
        y = rng.integers(0, n_out, TRAIN_SAMPLES)
        source = "synthetic data (Fashion-MNIST not found)"
    perm = rng.permutation(x.shape[0])
    x = np.ascontiguousarray(x[perm])
    t = np.zeros((x.shape[0], n_out), dtype=np.float32)
    t[np.arange(x.shape[0]), y[perm]] = 1.0
    n_batches = x.shape[0] // batch
    return x, t, n_batches, source
