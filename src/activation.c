/* activation.c -- element-wise activations and their derivatives, and the
 * two fused element-wise passes of a training step: bias + activation after
 * the forward GEMM, and derivative + dropout mask + bias gradient on the way
 * back.  Derivatives are computed from the stored output z = f(a), not from
 * a: tanh and sigmoid need no second evaluation on the backward pass. */
#include <math.h>

#include "internal.h"

/* tanh as a rational function, |error| <= 4.1e-7 over all floats,
 * the form Eigen uses: x clamped to +-7.905 (where tanh rounds to +-1 in
 * float), odd polynomial of degree 13 over even polynomial of degree 6.
 * Branch-free, so the loop vectorises (this file is compiled with
 * -fno-trapping-math for that); about 6x faster than libm's tanhf, which
 * otherwise costs a tenth of a training step.  NaN propagates. */
static inline float fast_tanhf(float x)
{
    const float c = 7.90531110763549805f;
    const float xc = x > c ? c : (x < -c ? -c : x);
    const float x2 = xc * xc;
    float p = -2.76076847742355e-16f;
    p = p * x2 + 2.00018790482477e-13f;
    p = p * x2 + -8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    p = p * xc;
    float q = 1.19825839466702e-06f;
    q = q * x2 + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    /* tiny |x|: tanh(x) == x in float, and avoids p/q rounding */
    return fabsf(x) < 0.0004f ? x : p / q;
}

static FA_KERNEL void act_forward_kernel(int32_t act, float slope, float *z, int32_t n,
                    int32_t batch, int32_t ld)
{
    /* z is (n, batch) with leading dimension ld */
    for (int32_t j = 0; j < batch; j++) {
        float *c = z + (size_t)j * (size_t)ld;
        switch (act) {
        case FA_ACT_TANH:
            for (int32_t i = 0; i < n; i++)
                c[i] = fast_tanhf(c[i]);
            break;
        case FA_ACT_SIGMOID:
            for (int32_t i = 0; i < n; i++)
                c[i] = 1.0f / (1.0f + expf(-c[i]));
            break;
        case FA_ACT_RELU:
            for (int32_t i = 0; i < n; i++)
                c[i] = c[i] > 0.0f ? c[i] : 0.0f;
            break;
        case FA_ACT_LEAKY_RELU:
            for (int32_t i = 0; i < n; i++)
                c[i] = c[i] > 0.0f ? c[i] : slope * c[i];
            break;
        default: /* FA_ACT_IDENTITY */
            break;
        }
    }
}

void fa_act_forward(int32_t act, float slope, float *z, int32_t n,
                    int32_t batch, int32_t ld)
{
    act_forward_kernel(act, slope, z, n, batch, ld);
}

static FA_KERNEL void act_deriv_mul_kernel(int32_t act, float slope, const float *z, int32_t ldz,
                      float *delta, int32_t lddelta, int32_t n, int32_t batch)
{
    /* delta (n, batch) .*= f'(a), z = f(a) (n, batch) */
    if (act == FA_ACT_IDENTITY)
        return;
    for (int32_t j = 0; j < batch; j++) {
        const float *zc = z + (size_t)j * (size_t)ldz;
        float *d = delta + (size_t)j * (size_t)lddelta;
        switch (act) {
        case FA_ACT_TANH:
            for (int32_t i = 0; i < n; i++)
                d[i] *= 1.0f - zc[i] * zc[i];
            break;
        case FA_ACT_SIGMOID:
            for (int32_t i = 0; i < n; i++)
                d[i] *= zc[i] * (1.0f - zc[i]);
            break;
        case FA_ACT_RELU:
            for (int32_t i = 0; i < n; i++)
                d[i] = zc[i] > 0.0f ? d[i] : 0.0f;
            break;
        case FA_ACT_LEAKY_RELU:
            /* slope >= 0, so z > 0 exactly when a > 0 */
            for (int32_t i = 0; i < n; i++)
                d[i] = zc[i] > 0.0f ? d[i] : slope * d[i];
            break;
        default:
            break;
        }
    }
}

void fa_act_deriv_mul(int32_t act, float slope, const float *z, int32_t ldz,
                      float *delta, int32_t lddelta, int32_t n, int32_t batch)
{
    act_deriv_mul_kernel(act, slope, z, ldz, delta, lddelta, n, batch);
}

/* f(v) for one value, the same formulas as fa_act_forward. */
static inline float act_one(int32_t act, float slope, float v)
{
    switch (act) {
    case FA_ACT_TANH:
        return fast_tanhf(v);
    case FA_ACT_SIGMOID:
        return 1.0f / (1.0f + expf(-v));
    case FA_ACT_RELU:
        return v > 0.0f ? v : 0.0f;
    case FA_ACT_LEAKY_RELU:
        return v > 0.0f ? v : slope * v;
    default:
        return v;
    }
}

static FA_KERNEL float bias_act_kernel(int32_t act, float slope, float *z, const float *b, int32_t rows,
                  int64_t cols)
{
    /* z is (rows, cols) contiguous; one pass instead of a bias broadcast
     * before the GEMM and an activation pass after it, which also returns
     * max |z| for the step's overflow bounds.  The switch sits outside the
     * loops so that each inner loop vectorises. */
    uint32_t mx = 0;
    for (int64_t j = 0; j < cols; j++) {
        float *c = z + j * rows;
        switch (act) {
        case FA_ACT_TANH:
            for (int32_t i = 0; i < rows; i++) {
                c[i] = fast_tanhf(c[i] + (b ? b[i] : 0.0f));
                uint32_t u = fa_mag_bits(c[i]);
                mx = u > mx ? u : mx;
            }
            break;
        case FA_ACT_IDENTITY:
            for (int32_t i = 0; i < rows; i++) {
                c[i] += b ? b[i] : 0.0f;
                uint32_t u = fa_mag_bits(c[i]);
                mx = u > mx ? u : mx;
            }
            break;
        default:
            for (int32_t i = 0; i < rows; i++) {
                c[i] = act_one(act, slope, c[i] + (b ? b[i] : 0.0f));
                uint32_t u = fa_mag_bits(c[i]);
                mx = u > mx ? u : mx;
            }
            break;
        }
    }
    return fa_bits_mag(mx);
}

/* Rows below which the passes work on tiles of several columns: a
 * convolution's output has a column of only C_out values per pixel (6 or
 * 16 in LeNet), too short a loop to fill the vectors.  Consecutive columns
 * are contiguous, so k of them form one column of k*rows values, with the
 * bias repeated k times (and the bias gradient folded back at the end). */
#define TILE 64

float fa_bias_act(int32_t act, float slope, float *z, const float *b, int32_t rows,
                  int64_t cols)
{
    if (rows >= TILE || cols < 2)
        return bias_act_kernel(act, slope, z, b, rows, cols);
    const int32_t k = (TILE + rows - 1) / rows, t = k * rows;
    float bt[2 * TILE];
    for (int32_t i = 0; i < t; i++)
        bt[i] = b ? b[i % rows] : 0.0f;
    const int64_t full = cols / k;
    float mx = bias_act_kernel(act, slope, z, bt, t, full);
    float rest = bias_act_kernel(act, slope, z + full * t, b, rows, cols - full * k);
    return rest > mx ? rest : mx;
}

/* d = src .* f'(z), from z = f(a); one column of `rows`. */
static inline void deriv_col(int32_t act, float slope, const float *s,
                             const float *zc, float *d, int32_t rows)
{
    switch (act) {
    case FA_ACT_TANH:
        for (int32_t i = 0; i < rows; i++)
            d[i] = s[i] * (1.0f - zc[i] * zc[i]);
        break;
    case FA_ACT_SIGMOID:
        for (int32_t i = 0; i < rows; i++)
            d[i] = s[i] * (zc[i] * (1.0f - zc[i]));
        break;
    case FA_ACT_RELU:
        for (int32_t i = 0; i < rows; i++)
            d[i] = zc[i] > 0.0f ? s[i] : 0.0f;
        break;
    case FA_ACT_LEAKY_RELU:
        /* slope >= 0, so z > 0 exactly when a > 0 */
        for (int32_t i = 0; i < rows; i++)
            d[i] = zc[i] > 0.0f ? s[i] : slope * s[i];
        break;
    default:
        if (d != s)
            for (int32_t i = 0; i < rows; i++)
                d[i] = s[i];
        break;
    }
}

static FA_KERNEL float delta_finish_kernel(int32_t act, float slope, int with_deriv, const float *src,
                      int64_t ldsrc, const float *z, const float *mask, float *d,
                      int32_t rows, int64_t cols, float *db)
{
    /* d (rows, cols) = src .* f'(z) .* mask, db += d 1: the derivative, the
     * dropout mask and the bias gradient in one pass over the error, which
     * also returns max |d|. */
    uint32_t mx = 0;
    for (int64_t j = 0; j < cols; j++) {
        const float *s = src + j * ldsrc;
        float *dc = d + j * rows;
        deriv_col(with_deriv ? act : FA_ACT_IDENTITY, slope, s, z + j * rows, dc, rows);
        if (mask) {
            const float *mc = mask + j * rows;
            for (int32_t i = 0; i < rows; i++)
                dc[i] *= mc[i];
        }
        if (db)
            for (int32_t i = 0; i < rows; i++)
                db[i] += dc[i];
        for (int32_t i = 0; i < rows; i++) {
            uint32_t u = fa_mag_bits(dc[i]);
            mx = u > mx ? u : mx;
        }
    }
    return fa_bits_mag(mx);
}

float fa_delta_finish(int32_t act, float slope, int with_deriv, const float *src,
                      int64_t ldsrc, const float *z, const float *mask, float *d,
                      int32_t rows, int64_t cols, float *db)
{
    if (rows >= TILE || cols < 2 || ldsrc != rows)
        return delta_finish_kernel(act, slope, with_deriv, src, ldsrc, z, mask, d, rows, cols,
                                   db);
    /* tiles as in fa_bias_act; the tile's bias gradient folded per row */
    const int32_t k = (TILE + rows - 1) / rows, t = k * rows;
    const int64_t full = cols / k, done = full * t;
    float dbt[2 * TILE] = {0};
    float mx = delta_finish_kernel(act, slope, with_deriv, src, t, z, mask, d, t, full,
                                   db ? dbt : NULL);
    float rest = delta_finish_kernel(act, slope, with_deriv, src + done, rows, z + done,
                                     mask ? mask + done : NULL, d + done, rows,
                                     cols - full * k, db);
    if (db)
        for (int32_t i = 0; i < t; i++)
            db[i % rows] += dbt[i];
    return rest > mx ? rest : mx;
}
