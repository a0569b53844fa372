/* activation.c -- element-wise activations and their derivatives.
 * Derivatives are computed from the stored output z = f(a), not from a:
 * tanh and sigmoid need no second evaluation on the backward pass. */
#include <math.h>

#include "internal.h"

void fa_act_forward(int32_t act, float slope, float *z, int32_t n,
                    int32_t batch, int32_t ld)
{
    /* z is (n, batch) with leading dimension ld */
    for (int32_t j = 0; j < batch; j++) {
        float *c = z + (size_t)j * (size_t)ld;
        switch (act) {
        case FA_ACT_TANH:
            for (int32_t i = 0; i < n; i++)
                c[i] = tanhf(c[i]);
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

void fa_act_deriv_mul(int32_t act, float slope, const float *z, int32_t ldz,
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
