/* dfa.c -- direct feedback alignment (Nokland 2016): every hidden layer
 * receives the output error e through its own fixed random G_l. */
#include "internal.h"

static const float *dfa_signal(const fa_net *net, const float *e, const float *t,
                               int32_t ldt, int32_t m, float *buf)
{
    (void)net;
    (void)t;
    (void)ldt;
    (void)m;
    (void)buf;
    return e;
}

const fa_rule_desc fa_rule_dfa = {
    .name = "dfa",
    .description = "direct feedback alignment (Nokland 2016): the output error to every "
                   "hidden layer through fixed random matrices",
    .feedback = FA_FEEDBACK_DIRECT,
    .stored = 1,
    .hidden = FA_HIDDEN_DIRECT,
    .trains_hidden = 1,
    .signal = dfa_signal,
};
