/* bench_reference.c -- see bench_reference.h. */
#include "bench_reference.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int ref_mistake = REF_MISTAKE_NONE;

/* Feature index of channel c at pixel (row y, column x) of a C x H x W
 * image: channel fastest. */
static int64_t feat_hwc(int32_t C, int32_t H, int32_t W, int32_t c, int32_t x, int32_t y)
{
    if (ref_mistake == REF_MISTAKE_CHW)
        return (int64_t)x + (int64_t)W * ((int64_t)y + (int64_t)H * c);
    return (int64_t)c + (int64_t)C * ((int64_t)x + (int64_t)W * y);
}
static int64_t feat_in(const bu_layer *ly, int32_t c, int32_t x, int32_t y)
{
    return feat_hwc(ly->in_c, ly->in_h, ly->in_w, c, x, y);
}

static int64_t feat_out(const bu_layer *ly, int32_t c, int32_t x, int32_t y)
{
    return feat_hwc(ly->out_c, ly->out_h, ly->out_w, c, x, y);
}

/* Index of a conv weight: output channel o, input channel c, kernel (ky, kx). */
static int64_t wconv(const bu_layer *ly, int32_t o, int32_t c, int32_t kx, int32_t ky)
{
    if (ref_mistake == REF_MISTAKE_KERNEL_T)
        return (int64_t)o + (int64_t)ly->w_rows * ((int64_t)c + (int64_t)ly->in_c *
                                                   ((int64_t)ky + (int64_t)ly->kh * kx));
    return (int64_t)o + (int64_t)ly->w_rows * ((int64_t)c + (int64_t)ly->in_c *
                                               ((int64_t)kx + (int64_t)ly->kw * ky));
}

/* a (n_out, m) = the layer before bias and activation; arg: max pooling's
 * chosen input per output. */
static void layer_forward(const bu_layer *ly, const double *w, const double *b, const double *h,
                          int32_t m, double *a, int64_t *arg)
{
    const int64_t ni = ly->n_in, no = ly->n_out;
    for (int32_t s = 0; s < m; s++) {
        const double *hs = h + (int64_t)s * ni;
        double *as = a + (int64_t)s * no;
        if (ly->kind == FA_LAYER_DENSE) {
            for (int32_t i = 0; i < ly->w_rows; i++) {
                double acc = b[i];
                for (int64_t j = 0; j < ni; j++)
                    acc += w[i + ly->w_rows * j] * hs[j];
                as[i] = acc;
            }
            continue;
        }
        for (int32_t oy = 0; oy < ly->out_h; oy++)
            for (int32_t ox = 0; ox < ly->out_w; ox++)
                for (int32_t o = 0; o < ly->out_c; o++) {
                    const int64_t oi = feat_out(ly, o, ox, oy);
                    if (ly->kind == FA_LAYER_CONV2D) {
                        double acc = b[o];
                        for (int32_t ky = 0; ky < ly->kh; ky++)
                            for (int32_t kx = 0; kx < ly->kw; kx++) {
                                const int32_t iy = oy * ly->stride - ly->pad + ky;
                                const int32_t ix = ox * ly->stride - ly->pad + kx;
                                if (iy < 0 || iy >= ly->in_h || ix < 0 || ix >= ly->in_w)
                                    continue;
                                for (int32_t c = 0; c < ly->in_c; c++)
                                    acc += w[wconv(ly, o, c, kx, ky)] *
                                           hs[feat_in(ly, c, ix, iy)];
                            }
                        as[oi] = acc;
                    } else {
                        /* pooling: window rows scanned top to bottom, the
                         * first maximum kept */
                        double best = 0.0, sum = 0.0;
                        int64_t besti = -1;
                        for (int32_t ky = 0; ky < ly->kh; ky++)
                            for (int32_t kx = 0; kx < ly->kw; kx++) {
                                const int64_t ii = feat_in(ly, o,
                                                        ox * ly->stride + kx,
                                                        oy * ly->stride + ky);
                                sum += hs[ii];
                                if (besti < 0 || hs[ii] > best) {
                                    best = hs[ii];
                                    besti = ii;
                                }
                            }
                        if (ly->kind == FA_LAYER_MAXPOOL) {
                            as[oi] = best;
                            arg[(int64_t)s * no + oi] = besti;
                        } else {
                            as[oi] = sum / (double)(ly->kh * ly->kw);
                        }
                    }
                }
    }
}

/* dx (n_in, m) = J^T dz through B (W-shaped) or the pooling routes. */
static void layer_backward(const bu_layer *ly, const double *B, const double *dz, int32_t m,
                           const int64_t *arg, double *dx)
{
    const int64_t ni = ly->n_in, no = ly->n_out;
    memset(dx, 0, sizeof *dx * (size_t)(ni * m));
    for (int32_t s = 0; s < m; s++) {
        const double *ds = dz + (int64_t)s * no;
        double *xs = dx + (int64_t)s * ni;
        if (ly->kind == FA_LAYER_DENSE) {
            for (int64_t j = 0; j < ni; j++) {
                double acc = 0.0;
                for (int32_t i = 0; i < ly->w_rows; i++)
                    acc += B[i + ly->w_rows * j] * ds[i];
                xs[j] = acc;
            }
            continue;
        }
        for (int32_t oy = 0; oy < ly->out_h; oy++)
            for (int32_t ox = 0; ox < ly->out_w; ox++)
                for (int32_t o = 0; o < ly->out_c; o++) {
                    const double d = ds[feat_out(ly, o, ox, oy)];
                    if (ly->kind == FA_LAYER_MAXPOOL) {
                        if (ref_mistake == REF_MISTAKE_POOL_FIRST)
                            xs[feat_in(ly, o, ox * ly->stride, oy * ly->stride)] += d;
                        else
                            xs[arg[(int64_t)s * no + feat_out(ly, o, ox, oy)]] += d;
                        continue;
                    }
                    for (int32_t ky = 0; ky < ly->kh; ky++)
                        for (int32_t kx = 0; kx < ly->kw; kx++) {
                            if (ly->kind == FA_LAYER_AVGPOOL) {
                                xs[feat_in(ly, o, ox * ly->stride + kx,
                                        oy * ly->stride + ky)] +=
                                    (ref_mistake == REF_MISTAKE_AVG_SCALE
                                         ? d : d / (double)(ly->kh * ly->kw));
                                continue;
                            }
                            const int32_t iy = oy * ly->stride - ly->pad + ky;
                            const int32_t ix = ox * ly->stride - ly->pad + kx;
                            if (iy < 0 || iy >= ly->in_h || ix < 0 || ix >= ly->in_w)
                                continue;
                            for (int32_t c = 0; c < ly->in_c; c++)
                                xs[feat_in(ly, c, ix, iy)] +=
                                    B[wconv(ly, o, c, kx, ky)] * d;
                        }
                }
    }
}

/* dW = sum over samples and pixels of delta * input, db = sum of delta. */
static void layer_grad(const bu_layer *ly, const double *h, const double *delta, int32_t m,
                       double *dw, double *db)
{
    const int64_t ni = ly->n_in, no = ly->n_out;
    memset(dw, 0, sizeof *dw * (size_t)ly->w_rows * (size_t)ly->w_cols);
    memset(db, 0, sizeof *db * (size_t)ly->w_rows);
    for (int32_t s = 0; s < m; s++) {
        const double *hs = h + (int64_t)s * ni, *ds = delta + (int64_t)s * no;
        if (ly->kind == FA_LAYER_DENSE) {
            for (int32_t i = 0; i < ly->w_rows; i++) {
                db[i] += ds[i];
                for (int64_t j = 0; j < ni; j++)
                    dw[i + ly->w_rows * j] += ds[i] * hs[j];
            }
            continue;
        }
        for (int32_t oy = 0; oy < ly->out_h; oy++)
            for (int32_t ox = 0; ox < ly->out_w; ox++)
                for (int32_t o = 0; o < ly->out_c; o++) {
                    const double d = ds[feat_out(ly, o, ox, oy)];
                    db[o] += d;
                    for (int32_t ky = 0; ky < ly->kh; ky++)
                        for (int32_t kx = 0; kx < ly->kw; kx++) {
                            const int32_t iy = oy * ly->stride - ly->pad + ky;
                            const int32_t ix = ox * ly->stride - ly->pad + kx;
                            if (iy < 0 || iy >= ly->in_h || ix < 0 || ix >= ly->in_w)
                                continue;
                            for (int32_t c = 0; c < ly->in_c; c++)
                                dw[wconv(ly, o, c, kx, ky)] +=
                                    d * hs[feat_in(ly, c, ix, iy)];
                        }
                }
    }
}

double ref_update(const bu_arch *a, const ref_layout *lay, const double *p, int mode,
                  double *const *fb, const float *x, const float *t, int32_t m, double *g)
{
    const int32_t L = a->L;
    const int64_t c = a->layer[L].n_out;
    double *h[BU_MAX_LAYERS + 1], *d[BU_MAX_LAYERS + 1];
    int64_t *arg[BU_MAX_LAYERS + 1];
    h[0] = bu_malloc(sizeof(double) * (size_t)(a->layer[1].n_in * m));
    for (int64_t i = 0; i < a->layer[1].n_in * m; i++)
        h[0][i] = x[i];
    for (int32_t l = 1; l <= L; l++) {
        const bu_layer *ly = &a->layer[l];
        h[l] = bu_malloc(sizeof(double) * (size_t)(ly->n_out * m));
        d[l] = bu_malloc(sizeof(double) * (size_t)(ly->n_out * m));
        arg[l] = ly->kind == FA_LAYER_MAXPOOL
                     ? bu_malloc(sizeof(int64_t) * (size_t)(ly->n_out * m)) : NULL;
        layer_forward(ly, p + lay->w_off[l], p + lay->b_off[l], h[l - 1], m, h[l], arg[l]);
        if (ly->w_rows > 0 && l < L)
            for (int64_t i = 0; i < ly->n_out * m; i++)
                h[l][i] = tanh(h[l][i]);
    }

    /* e = (softmax(a_L) - t) / m, and the mean loss */
    double loss = 0.0;
    for (int32_t s = 0; s < m; s++) {
        const double *as = h[L] + s * c;
        double mx = as[0], z = 0.0;
        for (int64_t k = 1; k < c; k++)
            mx = as[k] > mx ? as[k] : mx;
        for (int64_t k = 0; k < c; k++)
            z += exp(as[k] - mx);
        for (int64_t k = 0; k < c; k++) {
            const double tk = t[k + s * c];
            d[L][k + s * c] = (exp(as[k] - mx) / z - tk) / m;
            loss -= tk * (as[k] - mx - log(z)) / m;
        }
    }

    /* hidden errors */
    const int32_t first = bu_arch_first_param(a);
    int has[BU_MAX_LAYERS + 1] = {0};
    has[L] = 1;
    if (mode == REF_BP || mode == REF_CHAIN_B) {
        for (int32_t l = L - 1; l >= first; l--) {
            const bu_layer *up = &a->layer[l + 1], *ly = &a->layer[l];
            const double *B = up->w_rows == 0 ? NULL
                              : mode == REF_BP ? p + lay->w_off[l + 1] : fb[l + 1];
            layer_backward(up, B, d[l + 1], m, arg[l + 1], d[l]);
            if (ly->w_rows > 0 && ref_mistake != REF_MISTAKE_NO_FPRIME)
                for (int64_t i = 0; i < ly->n_out * m; i++)
                    d[l][i] *= 1.0 - h[l][i] * h[l][i];
            has[l] = ly->w_rows > 0;
        }
    } else if (mode != REF_SHALLOW) {
        /* the signal s (c, m) */
        double *sig = bu_malloc(sizeof(double) * (size_t)(c * m));
        for (int64_t i = 0; i < c * m; i++) {
            const double e = d[L][i];
            const double inv = ref_mistake == REF_MISTAKE_SIGNAL ? 1.0 : 1.0 / m;
            const double tsign = ref_mistake == REF_MISTAKE_SIGNAL ? -1.0 : 1.0;
            sig[i] = mode == REF_DIRECT_E ? e
                     : mode == REF_DIRECT_SIGN ? (e > 0 ? 1.0 : e < 0 ? -1.0 : 0.0) * inv
                                               : tsign * (double)t[i] / m;
        }
        for (int32_t l = 1; l < L; l++) {
            const bu_layer *ly = &a->layer[l];
            if (ly->w_rows == 0)
                continue;
            for (int32_t s = 0; s < m; s++)
                for (int64_t i = 0; i < ly->n_out; i++) {
                    double acc = 0.0;
                    for (int64_t k = 0; k < c; k++)
                        acc += fb[l][k + c * i] * sig[k + s * c];
                    const double z = h[l][i + s * ly->n_out];
                    d[l][i + s * ly->n_out] =
                        ref_mistake == REF_MISTAKE_NO_FPRIME ? acc : acc * (1.0 - z * z);
                }
            has[l] = 1;
        }
        free(sig);
    }

    memset(g, 0, sizeof *g * (size_t)lay->n_params);
    for (int32_t l = 1; l <= L; l++)
        if (has[l] && a->layer[l].w_rows > 0)
            layer_grad(&a->layer[l], h[l - 1], d[l], m, g + lay->w_off[l], g + lay->b_off[l]);

    for (int32_t l = 0; l <= L; l++) {
        free(h[l]);
        if (l > 0) {
            free(d[l]);
            free(arg[l]);
        }
    }
    return loss;
}
