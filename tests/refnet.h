/*
 * refnet.h -- a naive float64 reference of the network maths, written from
 * the definitions in include/feedbackalign.h (not from src/): dense, conv2d,
 * max- and average-pooling layers, the activations, the three losses, and
 * the hidden errors of BP, of a rule with layer feedback (B_l in W_l's
 * shape, applied transposed) and of a rule with direct feedback (G_l from
 * the output to layer l).  Direct loops over the definitions, one sample at
 * a time, double accumulation; slow and obviously correct is the point.
 *
 * Layout (the header's): an image of C channels, H rows, W columns is the
 * column of C*H*W features with feature c + C*(x + W*y) = channel c of the
 * pixel at row y, column x.  A convolution's W is (C_out, C_in*kh*kw) with
 * column c + C_in*(kx + kw*ky) for input channel c at kernel row ky, column
 * kx; parameters are [W_1|b_1|...|W_L|b_L], each W column-major, layers
 * without parameters taking no space.
 *
 * Used by test_layers.c and test_gradcheck.c.
 */
#ifndef FA_TESTS_REFNET_H
#define FA_TESTS_REFNET_H

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "feedbackalign.h"

#define RN_MAX_LAYERS 8

/* One layer as the spec builder takes it.  Pooling: kh is the window,
 * stride 0 means the window size; units, kw, pad and act are ignored. */
typedef struct rn_desc {
    int32_t kind, units, kh, kw, stride, pad, act;
} rn_desc;

typedef struct rn_layer {
    rn_desc d;
    int32_t ic, ih, iw;   /* input image */
    int32_t oc, oh, ow;   /* output image */
    int32_t nin, nout;
    int32_t wrows, wcols; /* 0, 0 without parameters */
    int64_t woff, boff;
} rn_layer;

typedef struct rn_net {
    int32_t L, loss;
    double slope; /* leaky ReLU */
    rn_layer ly[RN_MAX_LAYERS + 1]; /* 1..L */
    int64_t nparams;
} rn_net;

static inline int rn_has_params(int32_t kind)
{
    return kind == FA_LAYER_DENSE || kind == FA_LAYER_CONV2D;
}

/* Shapes and offsets from the header's formulas; a geometry that does not
 * divide exactly aborts the test (the cases are chosen to be valid). */
static inline void rn_build(rn_net *n, int32_t c, int32_t h, int32_t w, const rn_desc *d,
                            int32_t L, int32_t loss)
{
    ck_assert_int_le(L, RN_MAX_LAYERS);
    memset(n, 0, sizeof *n);
    n->L = L;
    n->loss = loss;
    n->slope = 0.01;
    int64_t off = 0;
    for (int32_t l = 1; l <= L; l++) {
        rn_layer *ly = &n->ly[l];
        ly->d = d[l - 1];
        ly->ic = c;
        ly->ih = h;
        ly->iw = w;
        ly->nin = c * h * w;
        switch (ly->d.kind) {
        case FA_LAYER_DENSE:
            ly->oc = ly->d.units;
            ly->oh = ly->ow = 1;
            ly->wrows = ly->d.units;
            ly->wcols = ly->nin;
            break;
        case FA_LAYER_CONV2D: {
            const int32_t s = ly->d.stride, p = ly->d.pad;
            ck_assert_int_eq((h + 2 * p - ly->d.kh) % s, 0);
            ck_assert_int_eq((w + 2 * p - ly->d.kw) % s, 0);
            ly->oc = ly->d.units;
            ly->oh = (h + 2 * p - ly->d.kh) / s + 1;
            ly->ow = (w + 2 * p - ly->d.kw) / s + 1;
            ly->wrows = ly->d.units;
            ly->wcols = c * ly->d.kh * ly->d.kw;
            break;
        }
        default: { /* pooling */
            const int32_t k = ly->d.kh;
            if (ly->d.stride == 0)
                ly->d.stride = k;
            ly->d.kw = k;
            ly->d.pad = 0;
            ly->d.units = 0;
            ly->d.act = FA_ACT_IDENTITY;
            ck_assert_int_eq((h - k) % ly->d.stride, 0);
            ck_assert_int_eq((w - k) % ly->d.stride, 0);
            ly->oc = c;
            ly->oh = (h - k) / ly->d.stride + 1;
            ly->ow = (w - k) / ly->d.stride + 1;
            break;
        }
        }
        ly->nout = ly->oc * ly->oh * ly->ow;
        ly->woff = off;
        ly->boff = off + (int64_t)ly->wrows * ly->wcols;
        off = ly->boff + ly->wrows;
        c = ly->oc;
        h = ly->oh;
        w = ly->ow;
    }
    n->nparams = off;
}

/* The library network of the same layers, built with the spec builder;
 * its shapes, parameter count and offsets must be the reference's. */
static inline fa_net *rn_make_net(const rn_net *n, int32_t c, int32_t h, int32_t w,
                                  uint64_t seed)
{
    fa_spec *spec = NULL;
    int rc = fa_spec_create(&spec, c, h, w);
    ck_assert_msg(rc == FA_OK, "fa_spec_create: %s", fa_last_error());
    for (int32_t l = 1; l <= n->L; l++) {
        const rn_desc *d = &n->ly[l].d;
        if (d->kind == FA_LAYER_DENSE)
            rc = fa_spec_add_dense(spec, d->units, d->act);
        else if (d->kind == FA_LAYER_CONV2D)
            rc = fa_spec_add_conv2d(spec, d->units, d->kh, d->kw, d->stride, d->pad, d->act);
        else
            rc = fa_spec_add_pool(spec, d->kind, d->kh, d->stride);
        ck_assert_msg(rc == FA_OK, "adding layer %d: %s", (int)l, fa_last_error());
        int32_t sc, sh, sw;
        ck_assert_int_eq(fa_spec_shape(spec, l, &sc, &sh, &sw), FA_OK);
        ck_assert_msg(sc == n->ly[l].oc && sh == n->ly[l].oh && sw == n->ly[l].ow,
                      "layer %d: library shape %dx%dx%d, reference %dx%dx%d", (int)l, (int)sc,
                      (int)sh, (int)sw, (int)n->ly[l].oc, (int)n->ly[l].oh, (int)n->ly[l].ow);
    }
    fa_net *net = NULL;
    rc = fa_net_create_from_spec(&net, spec, n->loss, seed);
    fa_spec_free(spec);
    ck_assert_msg(rc == FA_OK, "fa_net_create_from_spec: %s", fa_last_error());
    int64_t np = 0;
    ck_assert_int_eq(fa_net_param_count(net, &np), FA_OK);
    ck_assert_int_eq(np, n->nparams);
    for (int32_t l = 1; l <= n->L; l++) {
        int64_t wo, bo;
        int32_t r, cc;
        ck_assert_int_eq(fa_net_layer_offsets(net, l, &wo, &bo), FA_OK);
        ck_assert_int_eq(wo, n->ly[l].woff);
        ck_assert_int_eq(bo, n->ly[l].boff);
        ck_assert_int_eq(fa_net_weight_shape(net, l, &r, &cc), FA_OK);
        ck_assert_int_eq(r, n->ly[l].wrows);
        ck_assert_int_eq(cc, n->ly[l].wcols);
    }
    return net;
}

/* ------------------------------------------------------ one layer, one sample */

static inline double rn_act(int32_t act, double slope, double a)
{
    switch (act) {
    case FA_ACT_TANH:
        return tanh(a);
    case FA_ACT_SIGMOID:
        return 1.0 / (1.0 + exp(-a));
    case FA_ACT_RELU:
        return a > 0 ? a : 0.0;
    case FA_ACT_LEAKY_RELU:
        return a > 0 ? a : slope * a;
    default:
        return a;
    }
}

static inline double rn_dact(int32_t act, double slope, double a)
{
    switch (act) {
    case FA_ACT_TANH: {
        double t = tanh(a);
        return 1.0 - t * t;
    }
    case FA_ACT_SIGMOID: {
        double s = 1.0 / (1.0 + exp(-a));
        return s * (1.0 - s);
    }
    case FA_ACT_RELU:
        return a > 0 ? 1.0 : 0.0;
    case FA_ACT_LEAKY_RELU:
        return a > 0 ? 1.0 : slope;
    default:
        return 1.0;
    }
}

/* Input value of channel c at (row iy, column ix), zero outside the image
 * (the convolution's zero padding). */
static inline double rn_pix(const rn_layer *ly, const double *in, int32_t c, int32_t iy,
                            int32_t ix)
{
    if (iy < 0 || iy >= ly->ih || ix < 0 || ix >= ly->iw)
        return 0.0;
    return in[c + ly->ic * (ix + ly->iw * iy)];
}

/* a (nout) = the layer before its activation; arg: the max-pool's chosen
 * input index per output. */
static inline void rn_layer_forward(const rn_layer *ly, const double *W, const double *b,
                                    const double *in, double *a, int32_t *arg)
{
    const rn_desc *d = &ly->d;
    if (d->kind == FA_LAYER_DENSE) {
        for (int32_t i = 0; i < ly->nout; i++) {
            double s = b[i];
            for (int32_t k = 0; k < ly->nin; k++)
                s += W[i + (int64_t)ly->wrows * k] * in[k];
            a[i] = s;
        }
        return;
    }
    for (int32_t oy = 0; oy < ly->oh; oy++)
        for (int32_t ox = 0; ox < ly->ow; ox++)
            for (int32_t co = 0; co < ly->oc; co++) {
                const int32_t o = co + ly->oc * (ox + ly->ow * oy);
                if (d->kind == FA_LAYER_CONV2D) {
                    double s = b[co];
                    for (int32_t ky = 0; ky < d->kh; ky++)
                        for (int32_t kx = 0; kx < d->kw; kx++)
                            for (int32_t c = 0; c < ly->ic; c++)
                                s += W[co + (int64_t)ly->oc * (c + ly->ic * (kx + d->kw * ky))] *
                                     rn_pix(ly, in, c, oy * d->stride - d->pad + ky,
                                            ox * d->stride - d->pad + kx);
                    a[o] = s;
                } else if (d->kind == FA_LAYER_MAXPOOL) {
                    /* the first maximum in row-by-row window order wins */
                    int32_t best = -1;
                    for (int32_t ky = 0; ky < d->kh; ky++)
                        for (int32_t kx = 0; kx < d->kh; kx++) {
                            int32_t iy = oy * d->stride + ky, ix = ox * d->stride + kx;
                            int32_t i = co + ly->ic * (ix + ly->iw * iy);
                            if (best < 0 || in[i] > in[best])
                                best = i;
                        }
                    a[o] = in[best];
                    arg[o] = best;
                } else {
                    double s = 0;
                    for (int32_t ky = 0; ky < d->kh; ky++)
                        for (int32_t kx = 0; kx < d->kh; kx++)
                            s += in[co + ly->ic * (ox * d->stride + kx +
                                                   ly->iw * (oy * d->stride + ky))];
                    a[o] = s / (d->kh * d->kh);
                }
            }
}

/* din (nin) = J^T dout, with B in place of W for layers with parameters. */
static inline void rn_layer_backward(const rn_layer *ly, const double *B, const double *dout,
                                     const int32_t *arg, double *din)
{
    const rn_desc *d = &ly->d;
    for (int32_t k = 0; k < ly->nin; k++)
        din[k] = 0;
    if (d->kind == FA_LAYER_DENSE) {
        for (int32_t k = 0; k < ly->nin; k++)
            for (int32_t i = 0; i < ly->nout; i++)
                din[k] += B[i + (int64_t)ly->wrows * k] * dout[i];
        return;
    }
    for (int32_t oy = 0; oy < ly->oh; oy++)
        for (int32_t ox = 0; ox < ly->ow; ox++)
            for (int32_t co = 0; co < ly->oc; co++) {
                const int32_t o = co + ly->oc * (ox + ly->ow * oy);
                if (d->kind == FA_LAYER_MAXPOOL) {
                    din[arg[o]] += dout[o]; /* overlapping windows accumulate */
                    continue;
                }
                for (int32_t ky = 0; ky < d->kh; ky++)
                    for (int32_t kx = 0; kx < d->kw; kx++) {
                        int32_t iy = oy * d->stride - d->pad + ky;
                        int32_t ix = ox * d->stride - d->pad + kx;
                        if (iy < 0 || iy >= ly->ih || ix < 0 || ix >= ly->iw)
                            continue;
                        if (d->kind == FA_LAYER_AVGPOOL) {
                            din[co + ly->ic * (ix + ly->iw * iy)] += dout[o] / (d->kh * d->kh);
                            continue;
                        }
                        for (int32_t c = 0; c < ly->ic; c++)
                            din[c + ly->ic * (ix + ly->iw * iy)] +=
                                B[co + (int64_t)ly->oc * (c + ly->ic * (kx + d->kw * ky))] *
                                dout[o];
                    }
            }
}

/* dW += dA in^T (through the convolution's window), db += dA. */
static inline void rn_layer_wgrad(const rn_layer *ly, const double *in, const double *da,
                                  double *dW, double *db)
{
    const rn_desc *d = &ly->d;
    if (d->kind == FA_LAYER_DENSE) {
        for (int32_t i = 0; i < ly->nout; i++) {
            db[i] += da[i];
            for (int32_t k = 0; k < ly->nin; k++)
                dW[i + (int64_t)ly->wrows * k] += da[i] * in[k];
        }
        return;
    }
    for (int32_t oy = 0; oy < ly->oh; oy++)
        for (int32_t ox = 0; ox < ly->ow; ox++)
            for (int32_t co = 0; co < ly->oc; co++) {
                const double g = da[co + ly->oc * (ox + ly->ow * oy)];
                db[co] += g;
                for (int32_t ky = 0; ky < d->kh; ky++)
                    for (int32_t kx = 0; kx < d->kw; kx++)
                        for (int32_t c = 0; c < ly->ic; c++)
                            dW[co + (int64_t)ly->oc * (c + ly->ic * (kx + d->kw * ky))] +=
                                g * rn_pix(ly, in, c, oy * d->stride - d->pad + ky,
                                           ox * d->stride - d->pad + kx);
            }
}

/* ------------------------------------------------------------- the network */

/* Everything a forward pass leaves, for a batch of m. */
typedef struct rn_state {
    int32_t m;
    double *a[RN_MAX_LAYERS + 1];   /* before the activation (pooling: output) */
    double *z[RN_MAX_LAYERS + 1];   /* after it; z[0] the input */
    int32_t *arg[RN_MAX_LAYERS + 1];
} rn_state;

static inline void rn_state_free(rn_state *st)
{
    for (int32_t l = 0; l <= RN_MAX_LAYERS; l++) {
        free(st->a[l]);
        free(st->z[l]);
        free(st->arg[l]);
    }
    memset(st, 0, sizeof *st);
}

/* Forward pass of x (nin_1, m) with ldx, parameters p (double). */
static inline void rn_forward(const rn_net *n, const double *p, const float *x, int32_t ldx,
                              int32_t m, rn_state *st)
{
    rn_state_free(st);
    st->m = m;
    const int32_t n0 = n->ly[1].nin;
    st->z[0] = malloc(sizeof(double) * (size_t)n0 * (size_t)m);
    ck_assert_ptr_nonnull(st->z[0]);
    for (int32_t j = 0; j < m; j++)
        for (int32_t i = 0; i < n0; i++)
            st->z[0][i + (size_t)n0 * j] = x[i + (size_t)ldx * j];
    for (int32_t l = 1; l <= n->L; l++) {
        const rn_layer *ly = &n->ly[l];
        const size_t no = (size_t)ly->nout;
        st->a[l] = malloc(sizeof(double) * no * (size_t)m);
        st->z[l] = malloc(sizeof(double) * no * (size_t)m);
        st->arg[l] = malloc(sizeof(int32_t) * no * (size_t)m);
        ck_assert(st->a[l] && st->z[l] && st->arg[l]);
        for (int32_t j = 0; j < m; j++) {
            double *a = st->a[l] + no * j, *z = st->z[l] + no * j;
            rn_layer_forward(ly, p + ly->woff, p + ly->boff, st->z[l - 1] + (size_t)ly->nin * j,
                             a, st->arg[l] + no * j);
            for (size_t i = 0; i < no; i++)
                z[i] = rn_has_params(ly->d.kind) ? rn_act(ly->d.act, n->slope, a[i]) : a[i];
        }
    }
}

/* Mean loss of the last forward pass against t (nL, m) with ldt; if e is
 * not NULL it receives dL/dA_L (nL, m), divided by m. */
static inline double rn_loss(const rn_net *n, const rn_state *st, const float *t, int32_t ldt,
                             double *e)
{
    const rn_layer *out = &n->ly[n->L];
    const int32_t nl = out->nout, m = st->m;
    double total = 0;
    for (int32_t j = 0; j < m; j++) {
        const double *a = st->a[n->L] + (size_t)nl * j, *z = st->z[n->L] + (size_t)nl * j;
        const float *tc = t + (size_t)ldt * j;
        double *ec = e ? e + (size_t)nl * j : NULL;
        if (n->loss == FA_LOSS_MSE) {
            for (int32_t i = 0; i < nl; i++) {
                total += 0.5 * (z[i] - tc[i]) * (z[i] - tc[i]);
                if (ec)
                    ec[i] = (z[i] - tc[i]) / m * rn_dact(out->d.act, n->slope, a[i]);
            }
        } else if (n->loss == FA_LOSS_SOFTMAX_CE) {
            double mx = a[0], s = 0;
            for (int32_t i = 1; i < nl; i++)
                mx = a[i] > mx ? a[i] : mx;
            for (int32_t i = 0; i < nl; i++)
                s += exp(a[i] - mx);
            for (int32_t i = 0; i < nl; i++) {
                double logp = a[i] - mx - log(s);
                total -= tc[i] * logp;
                if (ec)
                    ec[i] = (exp(logp) - tc[i]) / m;
            }
        } else {
            for (int32_t i = 0; i < nl; i++) {
                double v = a[i];
                total += (v > 0 ? v : 0) - v * tc[i] + log1p(exp(-fabs(v)));
                if (ec)
                    ec[i] = (1.0 / (1.0 + exp(-v)) - tc[i]) / m;
            }
        }
    }
    return total / m;
}

/* The output as fa_net_forward gives it: f(A_L), or the fused loss's
 * probabilities. */
static inline void rn_output(const rn_net *n, const rn_state *st, double *y)
{
    const int32_t nl = n->ly[n->L].nout;
    for (int32_t j = 0; j < st->m; j++) {
        const double *a = st->a[n->L] + (size_t)nl * j, *z = st->z[n->L] + (size_t)nl * j;
        double *yc = y + (size_t)nl * j;
        if (n->loss == FA_LOSS_SOFTMAX_CE) {
            double mx = a[0], s = 0;
            for (int32_t i = 1; i < nl; i++)
                mx = a[i] > mx ? a[i] : mx;
            for (int32_t i = 0; i < nl; i++)
                s += exp(a[i] - mx);
            for (int32_t i = 0; i < nl; i++)
                yc[i] = exp(a[i] - mx) / s;
        } else if (n->loss == FA_LOSS_SIGMOID_BCE) {
            for (int32_t i = 0; i < nl; i++)
                yc[i] = 1.0 / (1.0 + exp(-a[i]));
        } else {
            for (int32_t i = 0; i < nl; i++)
                yc[i] = z[i];
        }
    }
}

/* How the hidden errors arise (the header's rules). */
enum {
    RN_BP = 0,     /* through W itself */
    RN_LAYER = 1,  /* through B_l in W_l's shape (fb, in the parameter layout) */
    RN_DIRECT = 2  /* delta_l = (G_l^T e) .* f'(A_l); G[l] (nL, n_l) */
};

/* The update of every parameter after rn_forward (grad in the parameter
 * layout, overwritten); loss returned. */
static inline double rn_update(const rn_net *n, const double *p, const rn_state *st,
                               const float *t, int32_t ldt, int mode, const double *fb,
                               const double *const *G, double *grad)
{
    const int32_t L = n->L, m = st->m, nl = n->ly[L].nout;
    memset(grad, 0, sizeof(double) * (size_t)n->nparams);
    double *e = malloc(sizeof(double) * (size_t)nl * (size_t)m);
    ck_assert_ptr_nonnull(e);
    double loss = rn_loss(n, st, t, ldt, e);
    /* delta of the current layer (dL/dA), then of the layer below */
    double *delta = e;
    for (int32_t l = L; l >= 1; l--) {
        const rn_layer *ly = &n->ly[l];
        if (rn_has_params(ly->d.kind))
            for (int32_t j = 0; j < m; j++)
                rn_layer_wgrad(ly, st->z[l - 1] + (size_t)ly->nin * j,
                               delta + (size_t)ly->nout * j, grad + ly->woff,
                               grad + ly->boff);
        if (l == 1)
            break;
        const rn_layer *below = &n->ly[l - 1];
        double *d = malloc(sizeof(double) * (size_t)below->nout * (size_t)m);
        ck_assert_ptr_nonnull(d);
        if (mode == RN_DIRECT) {
            /* every hidden layer with parameters from e; pooling layers
             * take no error (nothing below reads it) */
            for (int64_t i = 0; i < (int64_t)below->nout * m; i++)
                d[i] = 0;
            if (rn_has_params(below->d.kind))
                for (int32_t j = 0; j < m; j++)
                    for (int32_t k = 0; k < below->nout; k++) {
                        double s = 0;
                        for (int32_t i = 0; i < nl; i++)
                            s += G[l - 1][i + (int64_t)nl * k] * e[i + (size_t)nl * j];
                        d[k + (size_t)below->nout * j] =
                            s * rn_dact(below->d.act, n->slope,
                                        st->a[l - 1][k + (size_t)below->nout * j]);
                    }
        } else {
            const double *B = mode == RN_LAYER ? fb + ly->woff : p + ly->woff;
            for (int32_t j = 0; j < m; j++) {
                double *dc = d + (size_t)below->nout * j;
                rn_layer_backward(ly, B, delta + (size_t)ly->nout * j,
                                  st->arg[l] + (size_t)ly->nout * j, dc);
                if (rn_has_params(below->d.kind))
                    for (int32_t k = 0; k < below->nout; k++)
                        dc[k] *= rn_dact(below->d.act, n->slope,
                                         st->a[l - 1][k + (size_t)below->nout * j]);
            }
        }
        if (delta != e)
            free(delta);
        delta = d;
    }
    if (delta != e)
        free(delta);
    free(e);
    return loss;
}

/* Float parameters to double. */
static inline double *rn_to_double(const float *p, int64_t n)
{
    double *d = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    ck_assert_ptr_nonnull(d);
    for (int64_t i = 0; i < n; i++)
        d[i] = p[i];
    return d;
}

#endif /* FA_TESTS_REFNET_H */
