/* sdfa.c -- sign-error DFA (Frenkel et al.'s sDFA): DFA with sign(e),
 * divided by the batch size so the update stays a batch mean. */
#include "internal.h"

static const float *sdfa_signal(const fa_net *net, const float *e, const float *t,
                                int32_t ldt, int32_t m, float *buf)
{
    (void)t;
    (void)ldt;
    const int64_t n = (int64_t)net->sizes[net->n_layers] * m;
    const float inv = 1.0f / (float)m;
    for (int64_t i = 0; i < n; i++)
        buf[i] = e[i] > 0.0f ? inv : (e[i] < 0.0f ? -inv : 0.0f);
    return buf;
}

const fa_rule_desc fa_rule_sdfa = {
    .name = "sdfa",
    .description = "DFA with the sign of the output error (Frenkel et al. 2021)",
    .feedback = FA_FEEDBACK_DIRECT,
    .stored = 1,
    .hidden = FA_HIDDEN_DIRECT,
    .trains_hidden = 1,
    .signal = sdfa_signal,
};
