/* optimizer.c -- parameter updates from an update direction g.
 * Weight decay is the L2 kind, on weights only: g = dW + wd * W. */
#include <math.h>

#include "internal.h"

int64_t fa_optimizer_state_len(const fa_net *net)
{
    switch (net->optimizer) {
    case FA_OPT_MOMENTUM:
    case FA_OPT_NESTEROV:
    case FA_OPT_RMSPROP:
        return net->n_params;
    case FA_OPT_ADAM:
        return 2 * net->n_params;
    default:
        return 0;
    }
}

/* One optimiser update of count parameters p with direction g (plus
 * wd * p), state vectors s1, s2 (velocity/first moment, second moment).
 * Returns nonzero if a new parameter is not finite: x - x is 0 exactly for
 * finite x, a branch-free test that keeps the loops vectorised. */
static int update_segment(const fa_net *net, float *p,
                           const float *g, float *restrict s1,
                           float *restrict s2, int64_t count, float wd,
                           float bc1, float bc2)
{
    const float lr = (float)net->hp[FA_HP_LR];
    const float mu = (float)net->hp[FA_HP_MOMENTUM];
    const float b1 = (float)net->hp[FA_HP_BETA1];
    const float b2 = (float)net->hp[FA_HP_BETA2];
    const float eps = (float)net->hp[FA_HP_EPSILON];
    const float rho = (float)net->hp[FA_HP_RMS_DECAY];
    int bad = 0;

    switch (net->optimizer) {
    case FA_OPT_MOMENTUM:
        for (int64_t i = 0; i < count; i++) {
            float gi = g[i] + wd * p[i];
            s1[i] = mu * s1[i] + gi;
            p[i] -= lr * s1[i];
            bad |= p[i] - p[i] != 0.0f;
        }
        break;
    case FA_OPT_NESTEROV:
        for (int64_t i = 0; i < count; i++) {
            float gi = g[i] + wd * p[i];
            s1[i] = mu * s1[i] + gi;
            p[i] -= lr * (gi + mu * s1[i]);
            bad |= p[i] - p[i] != 0.0f;
        }
        break;
    case FA_OPT_ADAM:
        for (int64_t i = 0; i < count; i++) {
            float gi = g[i] + wd * p[i];
            s1[i] = b1 * s1[i] + (1.0f - b1) * gi;
            s2[i] = b2 * s2[i] + (1.0f - b2) * gi * gi;
            p[i] -= lr * (s1[i] / bc1) / (sqrtf(s2[i] / bc2) + eps);
            bad |= p[i] - p[i] != 0.0f;
        }
        break;
    case FA_OPT_RMSPROP:
        for (int64_t i = 0; i < count; i++) {
            float gi = g[i] + wd * p[i];
            s1[i] = rho * s1[i] + (1.0f - rho) * gi * gi;
            p[i] -= lr * gi / (sqrtf(s1[i]) + eps);
            bad |= p[i] - p[i] != 0.0f;
        }
        break;
    default: /* FA_OPT_SGD */
        for (int64_t i = 0; i < count; i++) {
            p[i] -= lr * (g[i] + wd * p[i]);
            bad |= p[i] - p[i] != 0.0f;
        }
        break;
    }
    return bad;
}

int fa_optimizer_step(fa_net *net, const float *grad)
{
    int bad = 0;
    const float wd = (float)net->hp[FA_HP_WEIGHT_DECAY];
    float bc1 = 1.0f, bc2 = 1.0f;
    net->opt_step++;
    if (net->optimizer == FA_OPT_ADAM) {
        bc1 = (float)(1.0 - pow(net->hp[FA_HP_BETA1], (double)net->opt_step));
        bc2 = (float)(1.0 - pow(net->hp[FA_HP_BETA2], (double)net->opt_step));
    }
    float *s1 = net->opt_state;
    float *s2 = net->opt_state + net->n_params;
    for (int32_t l = 1; l <= net->n_layers; l++) {
        int64_t nw = (int64_t)net->sizes[l] * net->sizes[l - 1];
        int64_t wo = net->w_off[l], bo = net->b_off[l];
        bad |= update_segment(net, net->params + wo, grad + wo, s1 + wo, s2 + wo, nw,
                              wd, bc1, bc2);
        bad |= update_segment(net, net->params + bo, grad + bo, s1 + bo, s2 + bo,
                              net->sizes[l], 0.0f, bc1, bc2);
    }
    return bad;
}
