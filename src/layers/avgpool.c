/* avgpool.c -- average pooling over square windows; the error of an
 * output is shared equally by the k*k inputs of its window.  Layout as in
 * maxpool.c: the inner loops run over the contiguous channels. */
#include <string.h>

#include "pool.h"

FA_KERNEL static void avgpool_forward(const fa_layer *ly, const float *w, const float *x, int32_t ldx,
                            int32_t m, float *z, float *col, int32_t *idx)
{
    (void)w;
    (void)col;
    (void)idx;
    const int32_t C = ly->in_c, W = ly->in_w, k = ly->kh, s = ly->stride;
    const int32_t Ho = ly->out_h, Wo = ly->out_w;
    const float inv = 1.0f / (float)(k * k);
    for (int32_t j = 0; j < m; j++) {
        const float *xs = x + (size_t)j * (size_t)ldx;
        for (int32_t oy = 0; oy < Ho; oy++) {
            for (int32_t ox = 0; ox < Wo; ox++) {
                float *zc = z + (size_t)j * (size_t)ly->n_out +
                            (size_t)C * ((size_t)ox + (size_t)Wo * oy);
                for (int32_t c = 0; c < C; c++)
                    zc[c] = 0.0f;
                for (int32_t ky = 0; ky < k; ky++)
                    for (int32_t kx = 0; kx < k; kx++) {
                        const float *v =
                            xs + (size_t)C * ((size_t)(ox * s + kx) + (size_t)W * (oy * s + ky));
                        for (int32_t c = 0; c < C; c++)
                            zc[c] += v[c];
                    }
                for (int32_t c = 0; c < C; c++)
                    zc[c] *= inv;
            }
        }
    }
}

FA_KERNEL static void avgpool_backward(const fa_layer *ly, const float *B, const float *dz, int32_t m,
                             float *dx, float *scratch, const int32_t *idx)
{
    (void)B;
    (void)scratch;
    (void)idx;
    const int32_t C = ly->in_c, W = ly->in_w, k = ly->kh, s = ly->stride;
    const int32_t Ho = ly->out_h, Wo = ly->out_w;
    const float inv = 1.0f / (float)(k * k);
    memset(dx, 0, (size_t)ly->n_in * (size_t)m * sizeof *dx);
    for (int32_t j = 0; j < m; j++) {
        float *xs = dx + (size_t)j * (size_t)ly->n_in;
        for (int32_t oy = 0; oy < Ho; oy++) {
            for (int32_t ox = 0; ox < Wo; ox++) {
                const float *d = dz + (size_t)j * (size_t)ly->n_out +
                                 (size_t)C * ((size_t)ox + (size_t)Wo * oy);
                for (int32_t ky = 0; ky < k; ky++)
                    for (int32_t kx = 0; kx < k; kx++) {
                        float *v =
                            xs + (size_t)C * ((size_t)(ox * s + kx) + (size_t)W * (oy * s + ky));
                        for (int32_t c = 0; c < C; c++)
                            v[c] += d[c] * inv;
                    }
            }
        }
    }
}

const fa_layer_ops fa_layer_avgpool = {
    .name = "avgpool",
    .description = "average pooling over square windows",
    .has_params = 0,
    .setup = fa_pool_setup,
    .fans = fa_pool_fans,
    .col_floats = fa_pool_none,
    .idx_count = fa_pool_none,
    .scratch_floats = fa_pool_none,
    .forward = avgpool_forward,
    .backward = avgpool_backward,
    .weight_grad = NULL,
};
