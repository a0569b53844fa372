/* loss.c -- losses and their gradients.  The 1/batch factor of the mean
 * lives here and nowhere else: every gradient downstream is already a batch
 * mean, so rules and optimisers never rescale. */
#include <math.h>

#include "internal.h"

double fa_loss_compute(int32_t loss, const float *y, int32_t ldy,
                       const float *t, int32_t ldt, int32_t n, int32_t batch,
                       float *dy, int32_t lddy)
{
    /* y, t, dy are (n, batch) */
    const double inv_b = 1.0 / (double)batch;
    const float inv_bf = (float)inv_b;
    double total = 0.0;
    for (int32_t j = 0; j < batch; j++) {
        const float *yc = y + (size_t)j * (size_t)ldy;
        const float *tc = t + (size_t)j * (size_t)ldt;
        float *dc = dy ? dy + (size_t)j * (size_t)lddy : NULL;
        switch (loss) {
        case FA_LOSS_SOFTMAX_CE: {
            /* log-sum-exp with the column max subtracted: no overflow */
            float mx = yc[0];
            for (int32_t i = 1; i < n; i++)
                mx = yc[i] > mx ? yc[i] : mx;
            double se = 0.0;
            for (int32_t i = 0; i < n; i++)
                se += exp((double)(yc[i] - mx));
            double lse = (double)mx + log(se);
            for (int32_t i = 0; i < n; i++) {
                if (tc[i] != 0.0f)
                    total -= (double)tc[i] * ((double)yc[i] - lse);
                if (dc)
                    dc[i] = (float)(exp((double)yc[i] - lse) - (double)tc[i]) * inv_bf;
            }
            break;
        }
        case FA_LOSS_SIGMOID_BCE:
            for (int32_t i = 0; i < n; i++) {
                double v = yc[i], tv = tc[i];
                /* max(y,0) - y t + log(1 + exp(-|y|)) */
                total += (v > 0 ? v : 0.0) - v * tv + log1p(exp(-fabs(v)));
                if (dc) {
                    double p = v >= 0 ? 1.0 / (1.0 + exp(-v))
                                      : exp(v) / (1.0 + exp(v));
                    dc[i] = (float)((p - tv) * inv_b);
                }
            }
            break;
        default: /* FA_LOSS_MSE: 1/(2 batch) sum (y - t)^2 */
            for (int32_t i = 0; i < n; i++) {
                float d = yc[i] - tc[i];
                total += 0.5 * (double)d * (double)d;
                if (dc)
                    dc[i] = d * inv_bf;
            }
            break;
        }
    }
    return total * inv_b;
}

void fa_loss_link(int32_t loss, float *y, int32_t n, int32_t batch, int32_t ld)
{
    for (int32_t j = 0; j < batch; j++) {
        float *c = y + (size_t)j * (size_t)ld;
        if (loss == FA_LOSS_SOFTMAX_CE) {
            float mx = c[0];
            for (int32_t i = 1; i < n; i++)
                mx = c[i] > mx ? c[i] : mx;
            float s = 0.0f;
            for (int32_t i = 0; i < n; i++) {
                c[i] = expf(c[i] - mx);
                s += c[i];
            }
            for (int32_t i = 0; i < n; i++)
                c[i] /= s;
        } else if (loss == FA_LOSS_SIGMOID_BCE) {
            for (int32_t i = 0; i < n; i++)
                c[i] = c[i] >= 0.0f ? 1.0f / (1.0f + expf(-c[i]))
                                    : expf(c[i]) / (1.0f + expf(c[i]));
        }
    }
}

FA_API int fa_loss_eval(int32_t loss, const float *y, int32_t ldy,
                        const float *t, int32_t ldt, int32_t n, int32_t batch,
                        float *value, float *dy, int32_t lddy)
{
    static const char fn[] = "fa_loss_eval";
    if (loss < 0 || loss >= FA_N_LOSSES)
        return fa_fail(FA_ERR_ARG, fn, "loss = %d is not a fa_loss (expected 0..%d)",
                       (int)loss, FA_N_LOSSES - 1);
    if (!y)
        return fa_fail(FA_ERR_NULL, fn, "y is NULL (expected an (n, batch) buffer)");
    if (!t)
        return fa_fail(FA_ERR_NULL, fn, "t is NULL (expected an (n, batch) buffer)");
    if (n < 1)
        return fa_fail(FA_ERR_SIZE, fn, "n = %d, expected >= 1", (int)n);
    if (batch < 1)
        return fa_fail(FA_ERR_SIZE, fn, "batch = %d, expected >= 1", (int)batch);
    if (ldy < n)
        return fa_fail(FA_ERR_SIZE, fn, "ldy = %d, expected >= n = %d", (int)ldy, (int)n);
    if (ldt < n)
        return fa_fail(FA_ERR_SIZE, fn, "ldt = %d, expected >= n = %d", (int)ldt, (int)n);
    if (dy && lddy < n)
        return fa_fail(FA_ERR_SIZE, fn, "lddy = %d, expected >= n = %d", (int)lddy, (int)n);
    /* the value first: a refused loss must leave dy as it was */
    double v = fa_loss_compute(loss, y, ldy, t, ldt, n, batch, NULL, 0);
    if (!isfinite((float)v))
        return fa_fail(FA_ERR_NONFINITE, fn, "the loss is %g, %s", v,
                       isfinite(v) ? "beyond the float range" : "not finite");
    if (dy)
        fa_loss_compute(loss, y, ldy, t, ldt, n, batch, dy, lddy);
    if (value)
        *value = (float)v;
    return FA_OK;
}
