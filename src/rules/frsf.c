/* frsf.c -- fixed random-magnitude sign-concordant feedback:
 * B_l = |M_l| .* sign(W_l), M_l drawn once (from the feedback
 * initialisation) and stored; the signs follow W_l at every step. */
#include "sign.h"

static void frsf_derive(const fa_net *net, const fa_layer *ly, float *dst)
{
    fa_sign_concordant(fa_w(net, ly), net->fb[FA_RULE_FRSF] + ly->fb_off, 0.0f, dst,
                       (int64_t)ly->w_rows * ly->w_cols);
}

const fa_rule_desc fa_rule_frsf = {
    .name = "frsf",
    .description = "fixed random-magnitude sign-concordant feedback: B = |M| .* sign(W), "
                   "M fixed",
    .feedback = FA_FEEDBACK_LAYER,
    .stored = 1,
    .hidden = FA_HIDDEN_CHAIN,
    .back = FA_BACK_DERIVED,
    .trains_hidden = 1,
    .derive = frsf_derive,
};
