/* maxpool.c -- max pooling.  x is (C, H*W) per sample, channel fastest, so
 * a window's values for all channels are contiguous runs of C floats: the
 * inner loops run over channels and vectorise.  The forward pass keeps, for
 * every output value, the index (within its sample) of the input it came
 * from; the backward pass sends each error there (the first maximum on
 * ties, as the window is scanned row by row). */
#include <string.h>

#include "pool.h"

static int64_t maxpool_idx(const fa_layer *ly)
{
    return ly->n_out;
}

FA_KERNEL static void maxpool_forward(const fa_layer *ly, const float *w, const float *x, int32_t ldx,
                            int32_t m, float *z, float *col, int32_t *idx)
{
    (void)w;
    (void)col;
    const int32_t C = ly->in_c, W = ly->in_w, k = ly->kh, s = ly->stride;
    const int32_t Ho = ly->out_h, Wo = ly->out_w;
    for (int32_t j = 0; j < m; j++) {
        const float *xs = x + (size_t)j * (size_t)ldx;
        for (int32_t oy = 0; oy < Ho; oy++) {
            for (int32_t ox = 0; ox < Wo; ox++) {
                const size_t o = (size_t)j * (size_t)ly->n_out +
                                 (size_t)C * ((size_t)ox + (size_t)Wo * oy);
                float *restrict zc = z + o;
                int32_t *restrict ic = idx + o;
                /* the window's first pixel starts the maximum; the others
                 * replace it only when strictly larger (first on ties) */
                const int32_t pix0 = ox * s + W * (oy * s);
                const float *v0 = xs + (size_t)C * (size_t)pix0;
                for (int32_t c = 0; c < C; c++) {
                    zc[c] = v0[c];
                    ic[c] = C * pix0 + c;
                }
                /* the rest in row-major order (no division per pixel) */
                for (int32_t dy = 0; dy < k; dy++)
                    for (int32_t dx = dy == 0; dx < k; dx++) {
                        const int32_t pix = pix0 + dx + W * dy;
                        const float *v = xs + (size_t)C * (size_t)pix;
                        const int32_t base = C * pix;
                        /* branch-free: with a few channels the loop is
                         * scalar, and a branch on data mispredicts */
                        for (int32_t c = 0; c < C; c++) {
                            const float a = v[c], cur = zc[c];
                            const int32_t take = -(int32_t)(a > cur); /* 0 or all ones */
                            zc[c] = a > cur ? a : cur;
                            ic[c] = (ic[c] & ~take) | ((base + c) & take);
                        }
                    }
            }
        }
    }
}

FA_KERNEL static void maxpool_backward(const fa_layer *ly, const float *B, const float *dz, int32_t m,
                             float *dx, float *scratch, const int32_t *idx)
{
    (void)B;
    (void)scratch;
    const size_t n_in = (size_t)ly->n_in, n_out = (size_t)ly->n_out;
    memset(dx, 0, n_in * (size_t)m * sizeof *dx);
    for (int32_t j = 0; j < m; j++) {
        float *xs = dx + (size_t)j * n_in;
        const float *d = dz + (size_t)j * n_out;
        const int32_t *ic = idx + (size_t)j * n_out;
        /* += : overlapping windows (stride < size) can share a maximum */
        for (size_t o = 0; o < n_out; o++)
            xs[ic[o]] += d[o];
    }
}

const fa_layer_ops fa_layer_maxpool = {
    .name = "maxpool",
    .description = "max pooling over square windows",
    .has_params = 0,
    .setup = fa_pool_setup,
    .fans = fa_pool_fans,
    .col_floats = fa_pool_none,
    .idx_count = maxpool_idx,
    .scratch_floats = fa_pool_none,
    .forward = maxpool_forward,
    .backward = maxpool_backward,
    .weight_grad = NULL,
};
