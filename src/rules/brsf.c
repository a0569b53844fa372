/* brsf.c -- batchwise random-magnitude sign-concordant feedback:
 * B_l = |M_l| .* sign(W_l) with M_l redrawn after every applied step.
 * Redrawing after the commit (not before the next update) keeps a failed
 * step free of side effects and lets fa_net_compute_update, which never
 * changes feedback, use the M_l that the next applied step will use. */
#include "sign.h"

static void brsf_derive(const fa_net *net, const fa_layer *ly, float *dst)
{
    fa_sign_concordant(fa_w(net, ly), net->fb[FA_RULE_BRSF] + ly->fb_off, 0.0f, dst,
                       (int64_t)ly->w_rows * ly->w_cols);
}

static void brsf_after_commit(fa_net *net)
{
    fa_feedback_draw(net, FA_RULE_BRSF);
}

const fa_rule_desc fa_rule_brsf = {
    .name = "brsf",
    .description = "batchwise random-magnitude sign-concordant feedback: B = |M| .* sign(W), "
                   "M redrawn every step",
    .feedback = FA_FEEDBACK_LAYER,
    .stored = 1,
    .learns = 1,
    .hidden = FA_HIDDEN_CHAIN,
    .back = FA_BACK_DERIVED,
    .trains_hidden = 1,
    .derive = brsf_derive,
    .after_commit = brsf_after_commit,
};
