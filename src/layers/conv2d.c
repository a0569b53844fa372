/* conv2d.c -- 2-D convolution by lowering onto one SGEMM per batch.
 *
 * Images are (C, H*W) per sample, channel fastest (the public layout), so a
 * batch of m images is the (C, H*W*m) matrix whose columns are pixels.  The
 * lowering ("im2col") writes, for every output pixel p of every sample, the
 * column col[:, p] of K = C_in*kh*kw input values under the kernel, row
 * c + C_in*(kx + kw*ky) holding channel c at kernel position (ky, kx), zero
 * where the kernel overhangs the padded border.  Then the whole batch is one
 * GEMM with a long dimension P = H_out*W_out*m:
 *   forward      A  (C_out, P) = W (C_out, K)   col (K, P)
 *   weight grad  dW (C_out, K) = dA (C_out, P)  col^T (P, K)
 *   input error  dcol (K, P)   = B^T (K, C_out) dA (C_out, P), then col2im
 * and A is already the output images in the public layout.  Because input
 * channels are contiguous, the values under one kernel row are C_in*kw
 * consecutive floats of the input wherever the row lies inside the image,
 * so the lowering is mostly plain copies.
 */
#include <string.h>

#include "internal.h"

/* One output size: (in + 2 pad - k) / stride + 1, exactly. */
static int out_size(int32_t in, int32_t k, int32_t stride, int32_t pad, const char *dim,
                    int32_t *out, const char *fn, const char *what)
{
    int64_t span = (int64_t)in + 2 * (int64_t)pad;
    if (k > span)
        return fa_fail(FA_ERR_SIZE, fn, "%s: kernel %s %d is larger than the padded input "
                       "(%lld)", what, dim, (int)k, (long long)span);
    if ((span - k) % stride != 0)
        return fa_fail(FA_ERR_SIZE, fn, "%s: output %s (%lld - %d)/%d + 1 is not an integer; "
                       "change the padding or the stride", what, dim, (long long)span,
                       (int)k, (int)stride);
    const int64_t n = (span - k) / stride + 1;
    if (n > INT32_MAX)
        return fa_fail(FA_ERR_SIZE, fn, "%s: output %s %lld exceeds 2^31-1", what, dim,
                       (long long)n);
    *out = (int32_t)n;
    return FA_OK;
}

static int conv_setup(fa_layer *ly, const char *fn, const char *what)
{
    if (ly->units < 1)
        return fa_fail(FA_ERR_SIZE, fn, "%s: a convolution needs channels >= 1, got %d",
                       what, (int)ly->units);
    if (ly->kh < 1 || ly->kw < 1)
        return fa_fail(FA_ERR_SIZE, fn, "%s: kernel %dx%d, expected sizes >= 1", what,
                       (int)ly->kh, (int)ly->kw);
    if (ly->stride < 1)
        return fa_fail(FA_ERR_SIZE, fn, "%s: stride %d, expected >= 1", what, (int)ly->stride);
    if (ly->pad < 0 || ly->pad >= ly->kh || ly->pad >= ly->kw)
        return fa_fail(FA_ERR_SIZE, fn, "%s: padding %d, expected 0 <= pad < the kernel size",
                       what, (int)ly->pad);
    int rc = out_size(ly->in_h, ly->kh, ly->stride, ly->pad, "height", &ly->out_h, fn, what);
    if (rc || (rc = out_size(ly->in_w, ly->kw, ly->stride, ly->pad, "width", &ly->out_w, fn,
                             what)))
        return rc;
    int64_t k = (int64_t)ly->in_c * ly->kh * ly->kw;
    if (k > INT32_MAX)
        return fa_fail(FA_ERR_SIZE, fn, "%s: kernel volume %lld exceeds 2^31-1", what,
                       (long long)k);
    ly->out_c = ly->units;
    ly->w_rows = ly->units;
    ly->w_cols = (int32_t)k;
    return FA_OK;
}

static void conv_fans(const fa_layer *ly, double *fan_in, double *fan_out)
{
    /* as PyTorch: each fan counts the kernel's receptive field */
    *fan_in = (double)ly->in_c * ly->kh * ly->kw;
    *fan_out = (double)ly->out_c * ly->kh * ly->kw;
}

static int64_t conv_col_floats(const fa_layer *ly)
{
    return (int64_t)ly->w_cols * ly->out_h * ly->out_w;
}

static int64_t conv_no_idx(const fa_layer *ly)
{
    (void)ly;
    return 0;
}

/* col (K, Ho*Wo*m) from x (n_in, m) with ldx. */
FA_KERNEL static void im2col(const fa_layer *ly, const float *x, int32_t ldx, int32_t m, float *col)
{
    const int32_t C = ly->in_c, H = ly->in_h, W = ly->in_w;
    const int32_t Ho = ly->out_h, Wo = ly->out_w, kh = ly->kh, kw = ly->kw;
    const int32_t s = ly->stride, p = ly->pad;
    const size_t K = (size_t)ly->w_cols, row = (size_t)C * (size_t)kw;
    for (int32_t j = 0; j < m; j++) {
        const float *xs = x + (size_t)j * (size_t)ldx;
        for (int32_t oy = 0; oy < Ho; oy++) {
            for (int32_t ox = 0; ox < Wo; ox++) {
                float *c = col + ((size_t)ox + (size_t)Wo * ((size_t)oy + (size_t)Ho * j)) * K;
                const int32_t x0 = ox * s - p;
                for (int32_t ky = 0; ky < kh; ky++) {
                    const int32_t iy = oy * s - p + ky;
                    float *dst = c + (size_t)ky * row;
                    if (iy < 0 || iy >= H) {
                        memset(dst, 0, row * sizeof *dst);
                    } else if (x0 >= 0 && x0 + kw <= W) {
                        memcpy(dst, xs + (size_t)C * ((size_t)x0 + (size_t)W * iy),
                               row * sizeof *dst);
                    } else {
                        for (int32_t kx = 0; kx < kw; kx++) {
                            const int32_t ix = x0 + kx;
                            if (ix < 0 || ix >= W)
                                memset(dst + (size_t)C * kx, 0, (size_t)C * sizeof *dst);
                            else
                                memcpy(dst + (size_t)C * kx,
                                       xs + (size_t)C * ((size_t)ix + (size_t)W * iy),
                                       (size_t)C * sizeof *dst);
                        }
                    }
                }
            }
        }
    }
}

/* dx (n_in, m) contiguous = the sum of dcol's entries onto the pixels they
 * were copied from: the adjoint of im2col. */
FA_KERNEL static void col2im(const fa_layer *ly, const float *dcol, int32_t m, float *dx)
{
    const int32_t C = ly->in_c, H = ly->in_h, W = ly->in_w;
    const int32_t Ho = ly->out_h, Wo = ly->out_w, kh = ly->kh, kw = ly->kw;
    const int32_t s = ly->stride, p = ly->pad;
    const size_t K = (size_t)ly->w_cols, n_in = (size_t)ly->n_in;
    memset(dx, 0, n_in * (size_t)m * sizeof *dx);
    for (int32_t j = 0; j < m; j++) {
        float *xs = dx + (size_t)j * n_in;
        for (int32_t oy = 0; oy < Ho; oy++) {
            for (int32_t ox = 0; ox < Wo; ox++) {
                const float *c =
                    dcol + ((size_t)ox + (size_t)Wo * ((size_t)oy + (size_t)Ho * j)) * K;
                for (int32_t ky = 0; ky < kh; ky++) {
                    const int32_t iy = oy * s - p + ky;
                    if (iy < 0 || iy >= H)
                        continue;
                    for (int32_t kx = 0; kx < kw; kx++) {
                        const int32_t ix = ox * s - p + kx;
                        if (ix < 0 || ix >= W)
                            continue;
                        const float *src = c + (size_t)C * ((size_t)kx + (size_t)kw * ky);
                        float *dst = xs + (size_t)C * ((size_t)ix + (size_t)W * iy);
                        for (int32_t ch = 0; ch < C; ch++)
                            dst[ch] += src[ch];
                    }
                }
            }
        }
    }
}

static void conv_forward(const fa_layer *ly, const float *w, const float *x, int32_t ldx,
                         int32_t m, float *z, float *col, int32_t *idx)
{
    (void)idx;
    const int32_t P = ly->out_h * ly->out_w * m; /* checked to fit by the workspace */
    im2col(ly, x, ldx, m, col);
    /* A (C_out, P) = W (C_out, K) col (K, P) */
    fa_gemm(0, 0, ly->out_c, P, ly->w_cols, 1.0f, w, ly->out_c, col, ly->w_cols, 0.0f, z,
            ly->out_c);
}

static void conv_backward(const fa_layer *ly, const float *B, const float *dz, int32_t m,
                          float *dx, float *scratch, const int32_t *idx)
{
    (void)idx;
    const int32_t P = ly->out_h * ly->out_w * m;
    /* dcol (K, P) = B^T (K, C_out) dA (C_out, P); B has W's shape */
    fa_gemm(1, 0, ly->w_cols, P, ly->out_c, 1.0f, B, ly->out_c, dz, ly->out_c, 0.0f, scratch,
            ly->w_cols);
    col2im(ly, scratch, m, dx);
}

static void conv_weight_grad(const fa_layer *ly, const float *x, int32_t ldx,
                             const float *col, const float *dz, int32_t m, float alpha,
                             float beta, float *dw)
{
    (void)x;
    (void)ldx;
    const int32_t P = ly->out_h * ly->out_w * m;
    /* dW (C_out, K) = alpha dA (C_out, P) col^T (P, K) + beta dW */
    fa_gemm(0, 1, ly->out_c, ly->w_cols, P, alpha, dz, ly->out_c, col, ly->w_cols, beta, dw,
            ly->out_c);
}

const fa_layer_ops fa_layer_conv2d = {
    .name = "conv2d",
    .description = "2-D convolution with stride and zero padding, lowered onto SGEMM",
    .has_params = 1,
    .setup = conv_setup,
    .fans = conv_fans,
    .col_floats = conv_col_floats,
    .idx_count = conv_no_idx,
    .scratch_floats = conv_col_floats,
    .forward = conv_forward,
    .backward = conv_backward,
    .weight_grad = conv_weight_grad,
};
