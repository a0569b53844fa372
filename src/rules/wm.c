/* wm.c -- weight mirrors (Akrout et al. 2019).  After every applied step,
 * each B_l learns from the layer's response to noise: X (fan_in, k) of
 * N(0, sigma^2) noise in the space W_l acts on (a dense layer's input, a
 * convolution's lowered input) drives the layer's linear part, Y = W_l X,
 * and
 *   B_l <- (1 - lambda) B_l + eta (1/k) Y X^T.
 * E[Y X^T / k] = sigma^2 W_l, so B_l tends to (eta sigma^2 / lambda) W_l --
 * W_l itself at the defaults (eta = lambda = 0.01, sigma = 1).  The mirror
 * uses the linear response of the paper's eq. 7 rather than a sigmoid of
 * it, so it is the same for every activation.  The noise comes from the
 * model RNG stream, so processes that apply the same updates mirror alike. */
#include "internal.h"

static const fa_hparam_desc wm_hparams[] = {
    {FA_HP_WM_LR, "wm_lr", "weight mirrors: learning rate eta of the mirror", 0.01,
     FA_RANGE_NONNEG},
    {FA_HP_WM_DECAY, "wm_decay", "weight mirrors: decay lambda of B per mirror step", 0.01,
     FA_RANGE_UNIT_OPEN},
    {FA_HP_WM_NOISE, "wm_noise", "weight mirrors: standard deviation sigma of the noise", 1.0,
     FA_RANGE_POSITIVE},
    {FA_HP_WM_BATCH, "wm_batch", "weight mirrors: noise samples per mirror step", 64.0,
     FA_RANGE_COUNT},
};

/* Per-layer scratch: noise X (w_cols, k), response Y (w_rows, k) and the
 * estimate (w_rows, w_cols); the largest layer's need. */
static int64_t wm_scratch_floats(const fa_net *net)
{
    const int64_t k = (int64_t)net->hp[FA_HP_WM_BATCH];
    int64_t need = 0;
    for (int32_t l = 1; l <= net->n_layers; l++) {
        const fa_layer *ly = &net->layers[l];
        if (ly->fb_off < 0)
            continue;
        int64_t n = k * ((int64_t)ly->w_cols + ly->w_rows) + (int64_t)ly->w_rows * ly->w_cols;
        need = n > need ? n : need;
    }
    return need;
}

/* Largest |entry| of X and of (1/k) Y X^T, from max |W| = p: every Y entry
 * is a sum of w_cols products of a weight and a draw (|draw| < 8.6 sigma). */
static int wm_check(fa_net *net, const fa_step_bounds *b, const char *fn)
{
    const double sig = 8.6 * net->hp[FA_HP_WM_NOISE];
    const double k = net->hp[FA_HP_WM_BATCH];
    double worst = 0.0;
    for (int32_t l = 1; l <= net->n_layers; l++) {
        const fa_layer *ly = &net->layers[l];
        if (ly->fb_off < 0)
            continue;
        const double y = (double)ly->w_cols * b->p_new * sig;
        const double sum = k * y * sig;
        worst = sig > worst ? sig : worst;
        worst = y > worst ? y : worst;
        worst = sum > worst ? sum : worst;
    }
    const double est = net->hp[FA_HP_WM_LR] * worst;
    const double bound = (1.0 - net->hp[FA_HP_WM_DECAY]) *
                         (double)fa_feedback_absmax(net, FA_RULE_WM) + est;
    if (!(worst < FA_VALUE_LIMIT) || !(bound < FA_VALUE_LIMIT))
        return fa_fail(FA_ERR_NONFINITE, fn, "the weight-mirror step could leave the float "
                       "range (bound %g); nothing was changed", worst > bound ? worst : bound);
    return FA_OK;
}

static void wm_after_commit(fa_net *net)
{
    const int32_t k = (int32_t)net->hp[FA_HP_WM_BATCH];
    const float keep = (float)(1.0 - net->hp[FA_HP_WM_DECAY]);
    const float rate = (float)(net->hp[FA_HP_WM_LR] / k);
    float *fb = net->fb[FA_RULE_WM];
    float *s = net->rule_scratch[FA_RULE_WM];
    uint32_t mx = 0;
    for (int32_t l = 1; l <= net->n_layers; l++) {
        const fa_layer *ly = &net->layers[l];
        if (ly->fb_off < 0)
            continue;
        /* X (fan_in, k) of noise in the space W acts on: the layer's input
         * for a dense layer, its lowering (C_in*kh*kw rows) for a
         * convolution, so that E[Y X^T / k] = sigma^2 W for every kind.
         * (Noise images through the convolution would give one outer
         * product per output pixel: H_out*W_out times W, and less at
         * padded borders.)  Y (w_rows, k) = W X, est (w_rows, w_cols) =
         * Y X^T.  For a dense layer this is what its forward and weight
         * gradient compute. */
        const int32_t rows = ly->w_rows, cols = ly->w_cols;
        float *x = s;
        float *y = x + (size_t)cols * (size_t)k;
        float *est = y + (size_t)rows * (size_t)k;
        fa_fill_random(&net->rng, FA_DIST_GAUSSIAN, net->hp[FA_HP_WM_NOISE], x,
                       (int64_t)cols * k);
        fa_gemm(0, 0, rows, k, cols, 1.0f, fa_w(net, ly), rows, x, cols, 0.0f, y, rows);
        fa_gemm(0, 1, rows, cols, k, 1.0f, y, rows, x, cols, 0.0f, est, rows);
        float *b = fb + ly->fb_off;
        const int64_t n = (int64_t)ly->w_rows * ly->w_cols;
        for (int64_t i = 0; i < n; i++) {
            b[i] = keep * b[i] + rate * est[i];
            uint32_t u = fa_mag_bits(b[i]);
            mx = u > mx ? u : mx;
        }
    }
    net->fb_absmax[FA_RULE_WM] = fa_bits_mag(mx);
}

const fa_rule_desc fa_rule_wm = {
    .name = "wm",
    .description = "weight mirrors (Akrout et al. 2019): B learns W from the layer's "
                   "response to noise",
    .feedback = FA_FEEDBACK_LAYER,
    .stored = 1,
    .learns = 1,
    .hidden = FA_HIDDEN_CHAIN,
    .back = FA_BACK_STORED,
    .trains_hidden = 1,
    .scratch_floats = wm_scratch_floats,
    .check_commit = wm_check,
    .after_commit = wm_after_commit,
    .hparams = wm_hparams,
    .n_hparams = (int32_t)(sizeof wm_hparams / sizeof wm_hparams[0]),
};
