/* kp.c -- Kolen-Pollack (Akrout et al. 2019).  B_l starts random and, after
 * every applied optimiser step, receives the same change as W_l, while
 * their difference decays by the factor (1 - k), k = FA_HP_KP_DECAY:
 *   B_l <- B_l + (W_new - W_old) - k (B_l - W_old),
 * i.e. B_new - W_new = (1 - k)(B_old - W_old) whatever the optimiser did to
 * W.  Written as two passes around the optimiser's commit, so that W_old
 * needs no copy: before it, B <- B - W_old (the difference); after it,
 * B <- W_new + (1 - k) B.  Under plain SGD with weight decay wd and
 * k = lr * wd this is exactly Akrout et al.'s rule, in which W and B both
 * take -lr delta H^T and both decay by lr * wd. */
#include "internal.h"

static const fa_hparam_desc kp_hparams[] = {
    {FA_HP_KP_DECAY, "kp_decay",
     "Kolen-Pollack: fraction of the difference B - W removed per applied step", 0.001,
     FA_RANGE_UNIT_OPEN},
};

static int kp_check(fa_net *net, const fa_step_bounds *b, const char *fn)
{
    const double keep = 1.0 - net->hp[FA_HP_KP_DECAY];
    /* |B_new| <= |W_new| + (1 - k)(|B_old| + |W_old|) */
    const double bound =
        b->p_new + keep * ((double)fa_feedback_absmax(net, FA_RULE_KP) + b->p_old);
    if (!(bound < FA_VALUE_LIMIT))
        return fa_fail(FA_ERR_NONFINITE, fn, "the Kolen-Pollack feedback could leave the "
                       "float range (bound %g); nothing was changed", bound);
    return FA_OK;
}

static void kp_before_commit(fa_net *net)
{
    float *fb = net->fb[FA_RULE_KP];
    for (int32_t l = 1; l <= net->n_layers; l++) {
        const fa_layer *ly = &net->layers[l];
        if (ly->fb_off < 0)
            continue;
        const float *w = fa_w(net, ly);
        float *b = fb + ly->fb_off;
        const int64_t n = (int64_t)ly->w_rows * ly->w_cols;
        for (int64_t i = 0; i < n; i++)
            b[i] -= w[i];
    }
}

static void kp_after_commit(fa_net *net)
{
    const float keep = (float)(1.0 - net->hp[FA_HP_KP_DECAY]);
    float *fb = net->fb[FA_RULE_KP];
    uint32_t mx = 0;
    for (int32_t l = 1; l <= net->n_layers; l++) {
        const fa_layer *ly = &net->layers[l];
        if (ly->fb_off < 0)
            continue;
        const float *w = fa_w(net, ly);
        float *b = fb + ly->fb_off;
        const int64_t n = (int64_t)ly->w_rows * ly->w_cols;
        for (int64_t i = 0; i < n; i++) {
            b[i] = w[i] + keep * b[i];
            uint32_t u = fa_mag_bits(b[i]);
            mx = u > mx ? u : mx;
        }
    }
    net->fb_absmax[FA_RULE_KP] = fa_bits_mag(mx);
}

const fa_rule_desc fa_rule_kp = {
    .name = "kp",
    .description = "Kolen-Pollack (Akrout et al. 2019): B takes W's updates and B - W decays",
    .feedback = FA_FEEDBACK_LAYER,
    .stored = 1,
    .learns = 1,
    .hidden = FA_HIDDEN_CHAIN,
    .back = FA_BACK_STORED,
    .trains_hidden = 1,
    .check_commit = kp_check,
    .before_commit = kp_before_commit,
    .after_commit = kp_after_commit,
    .hparams = kp_hparams,
    .n_hparams = (int32_t)(sizeof kp_hparams / sizeof kp_hparams[0]),
};
