/* dense.c -- the fully connected layer: A = W x + b.
 * x is (n_in, m) with ldx, W is (n_out, n_in), A is (n_out, m). */
#include "internal.h"

static int dense_setup(fa_layer *ly, const char *fn, const char *what)
{
    if (ly->units < 1)
        return fa_fail(FA_ERR_SIZE, fn, "%s: a dense layer needs units >= 1, got %d", what,
                       (int)ly->units);
    if (ly->kh || ly->kw || ly->stride || ly->pad)
        return fa_fail(FA_ERR_ARG, fn, "%s: a dense layer takes no kernel, stride or "
                       "padding (got %d, %d, %d, %d)", what, (int)ly->kh, (int)ly->kw,
                       (int)ly->stride, (int)ly->pad);
    ly->out_c = ly->units;
    ly->out_h = 1;
    ly->out_w = 1;
    ly->w_rows = ly->units;
    ly->w_cols = ly->n_in;
    return FA_OK;
}

static void dense_fans(const fa_layer *ly, double *fan_in, double *fan_out)
{
    *fan_in = ly->n_in;
    *fan_out = ly->n_out;
}

static int64_t dense_none(const fa_layer *ly)
{
    (void)ly;
    return 0;
}

static void dense_forward(const fa_layer *ly, const float *w, const float *x, int32_t ldx,
                          int32_t m, float *z, float *col, int32_t *idx)
{
    (void)col;
    (void)idx;
    /* z (n_out, m) = W (n_out, n_in) x (n_in, m) */
    fa_gemm(0, 0, ly->n_out, m, ly->n_in, 1.0f, w, ly->n_out, x, ldx, 0.0f, z, ly->n_out);
}

static void dense_backward(const fa_layer *ly, const float *B, const float *dz, int32_t m,
                           float *dx, float *scratch, const int32_t *idx)
{
    (void)scratch;
    (void)idx;
    /* dx (n_in, m) = B^T (n_in, n_out) dz (n_out, m); B has W's shape */
    fa_gemm(1, 0, ly->n_in, m, ly->n_out, 1.0f, B, ly->n_out, dz, ly->n_out, 0.0f, dx,
            ly->n_in);
}

static void dense_weight_grad(const fa_layer *ly, const float *x, int32_t ldx,
                              const float *col, const float *dz, int32_t m, float alpha,
                              float beta, float *dw)
{
    (void)col;
    /* dW (n_out, n_in) = alpha dz (n_out, m) x^T (m, n_in) + beta dW */
    fa_gemm(0, 1, ly->n_out, ly->n_in, m, alpha, dz, ly->n_out, x, ldx, beta, dw, ly->n_out);
}

const fa_layer_ops fa_layer_dense = {
    .name = "dense",
    .description = "fully connected layer, A = W x + b",
    .has_params = 1,
    .setup = dense_setup,
    .fans = dense_fans,
    .col_floats = dense_none,
    .idx_count = dense_none,
    .scratch_floats = dense_none,
    .forward = dense_forward,
    .backward = dense_backward,
    .weight_grad = dense_weight_grad,
};
