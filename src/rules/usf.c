/* usf.c -- uniform sign-concordant feedback (Liao, Leibo & Poggio 2016):
 * B_l = s_l sign(W_l), recomputed from W_l at every step, with the fixed
 * layer scale s_l = sqrt(2 / (fan_in + fan_out)) that BioTorch uses (the
 * Xavier-normal deviation, Xiao et al. 2018), so the backward signal has
 * the size a freshly initialised W would give. */
#include <math.h>

#include "sign.h"

static void usf_derive(const fa_net *net, const fa_layer *ly, float *dst)
{
    double fan_in, fan_out;
    ly->ops->fans(ly, &fan_in, &fan_out);
    const float s = (float)sqrt(2.0 / (fan_in + fan_out));
    fa_sign_concordant(fa_w(net, ly), NULL, s, dst, (int64_t)ly->w_rows * ly->w_cols);
}

const fa_rule_desc fa_rule_usf = {
    .name = "usf",
    .description = "uniform sign-concordant feedback: B = s sign(W) (Liao et al. 2016)",
    .feedback = FA_FEEDBACK_LAYER,
    .hidden = FA_HIDDEN_CHAIN,
    .back = FA_BACK_DERIVED,
    .trains_hidden = 1,
    .derive = usf_derive,
};
