/* drtp.c -- direct random target projection (Frenkel, Lefebvre & Bol 2021):
 * the hidden layers receive the targets, not the error, through fixed
 * random G_l: delta_l = (G_l^T T / m) .* f'(A_l).  The sign is the
 * reference code's (+T, its "grad_output_est = labels.mm(B)"); the 1/m
 * keeps the update a batch mean like every other rule's. */
#include "internal.h"

static const float *drtp_signal(const fa_net *net, const float *e, const float *t,
                                int32_t ldt, int32_t m, float *buf)
{
    (void)e;
    const int32_t n = net->sizes[net->n_layers];
    const float inv = 1.0f / (float)m;
    for (int32_t j = 0; j < m; j++)
        for (int32_t i = 0; i < n; i++)
            buf[i + (size_t)j * (size_t)n] = t[i + (size_t)j * (size_t)ldt] * inv;
    return buf;
}

const fa_rule_desc fa_rule_drtp = {
    .name = "drtp",
    .description = "direct random target projection (Frenkel et al. 2021): the targets to "
                   "every hidden layer through fixed random matrices",
    .feedback = FA_FEEDBACK_DIRECT,
    .stored = 1,
    .hidden = FA_HIDDEN_DIRECT,
    .trains_hidden = 1,
    .signal = drtp_signal,
};
