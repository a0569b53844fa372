/*
 * test_rules.c -- properties that tie the rules together.
 * Exact equivalences (on random nets; "equal" is a relative difference of
 * the flat updates below 1e-6, float rounding of differently ordered sums,
 * unless stated bitwise):
 * - FA with every F_l := W_l gives the BP update (one back-projection helper
 *   serves all rules, so this holds to rounding);
 * - DFA on one hidden layer with G_1 := W_2 gives the BP update, and with an
 *   identity hidden layer the before-activation variant does too;
 * - FRSF (and BRSF's first update) with M_l := |W_l| gives BP's update;
 * - KP with B_l := W_l keeps B_l == W_l bitwise after every step under
 *   every optimiser (B takes W's change, the difference is 0 and stays 0)
 *   and gives BP's update throughout;
 * - USF on a net whose weights all have magnitude a gives BP's update with
 *   the hidden layer l's scaled by prod_{k=l+1..L} s_k / a, s_k =
 *   sqrt(2 / (n_{k-1} + n_k)).
 * What rules may change:
 * - FA, DFA, FRSF, DRTP and SDFA never write to their feedback matrices,
 *   BRSF, KP and WM change theirs at every applied step (checksum after
 *   every step of 50), never in compute_update;
 * - SHALLOW leaves the hidden parameters and their optimiser state bitwise
 *   unchanged under every optimiser with weight decay on;
 * - DRTP's hidden update does not depend on the output layer (bitwise);
 * - feedback survives rule switches and set_feedback_init redraws it.
 * Names: every rule has a distinct name and description, fa_enum_lookup
 * finds each (any case, '-' for '_'), fa_rule_info agrees with the table of
 * the header.
 */
#include <ctype.h>

#include "internal.h"
#include "testutil.h"

#define BATCH 5

static void make_data(tu_lcg *g, float *x, int32_t nx, float *t, int32_t nt)
{
    tu_fill(g, x, (int64_t)nx * BATCH, 1.0f);
    tu_fill(g, t, (int64_t)nt * BATCH, 1.0f);
}

/* Relative agreement of two updates, as a norm of the difference. */
static double rel_diff(const float *a, const float *b, int64_t n)
{
    double d = 0, s = 0;
    for (int64_t k = 0; k < n; k++) {
        d += ((double)a[k] - b[k]) * ((double)a[k] - b[k]);
        s += (double)b[k] * b[k];
    }
    return sqrt(d / (s > 0 ? s : 1));
}

typedef struct eq_case {
    int32_t n_layers;
    int32_t sizes[5];
    int32_t acts[4];
    int32_t loss;
} eq_case;

static const eq_case fa_cases[] = {
    {2, {4, 6, 3}, {FA_ACT_TANH, FA_ACT_IDENTITY}, FA_LOSS_MSE},
    {3, {4, 6, 5, 3}, {FA_ACT_SIGMOID, FA_ACT_RELU, FA_ACT_IDENTITY}, FA_LOSS_SOFTMAX_CE},
    {4, {3, 5, 4, 6, 2}, {FA_ACT_LEAKY_RELU, FA_ACT_TANH, FA_ACT_SIGMOID, FA_ACT_TANH},
     FA_LOSS_MSE},
    {3, {4, 6, 5, 2}, {FA_ACT_TANH, FA_ACT_TANH, FA_ACT_IDENTITY}, FA_LOSS_SIGMOID_BCE},
};

START_TEST(test_fa_equals_bp)
{
    const eq_case *c = &fa_cases[_i];
    fa_net *net = tu_net(c->n_layers, c->sizes, c->acts, c->loss, 7 + (uint64_t)_i);
    int32_t nl = c->sizes[c->n_layers];
    float x[8 * BATCH], t[8 * BATCH];
    tu_lcg g = {(uint64_t)_i + 3};
    make_data(&g, x, c->sizes[0], t, nl);
    if (c->loss != FA_LOSS_MSE)
        for (int k = 0; k < nl * BATCH; k++)
            t[k] = c->loss == FA_LOSS_SIGMOID_BCE ? (t[k] > 0) : (k % nl == (k / nl) % nl);
    int64_t n = tu_param_count(net);
    float *p = tu_params(net);
    float *gbp = malloc((size_t)n * sizeof *gbp), *gfa = malloc((size_t)n * sizeof *gfa);
    ck_assert(gbp && gfa);
    for (int32_t l = 2; l <= c->n_layers; l++) {
        int64_t wo, bo;
        TU_OK(fa_net_layer_offsets(net, l, &wo, &bo));
        TU_OK(fa_net_set_feedback(net, FA_RULE_FA, l, p + wo,
                                  (int64_t)c->sizes[l] * c->sizes[l - 1]));
    }
    TU_OK(fa_net_compute_update(net, x, c->sizes[0], t, nl, BATCH, gbp, n, NULL));
    TU_OK(fa_net_set_rule(net, FA_RULE_FA));
    TU_OK(fa_net_compute_update(net, x, c->sizes[0], t, nl, BATCH, gfa, n, NULL));
    double r = rel_diff(gfa, gbp, n);
    ck_assert_msg(r < 1e-6, "case %d: FA with F = W differs from BP by %g", _i, r);
    ck_assert(fa_nrm2(n, gbp) > 1e-3);
    /* The alignment diagnostic agrees: all angles (near) zero. */
    float ang[4];
    TU_OK(fa_net_alignment(net, x, c->sizes[0], t, nl, BATCH, ang, c->n_layers - 1));
    for (int32_t l = 0; l < c->n_layers - 1; l++)
        ck_assert_msg(ang[l] < 0.1f, "case %d: FA=BP angle %g at layer %d", _i, ang[l],
                      l + 1);
    TU_OK(fa_net_feedback_angles(net, FA_RULE_FA, ang, c->n_layers - 1));
    for (int32_t l = 0; l < c->n_layers - 1; l++)
        ck_assert_msg(ang[l] < 0.1f, "case %d: angle(W, F=W) %g", _i, ang[l]);
    free(p);
    free(gbp);
    free(gfa);
    fa_net_free(net);
}
END_TEST

/* _i: 0..2 activation of the hidden layer / loss; DFA after activation;
 * 3: identity hidden layer, DFA before activation (f' = 1 so equal too). */
START_TEST(test_dfa_equals_bp_one_hidden)
{
    static const int32_t hidden_act[] = {FA_ACT_TANH, FA_ACT_SIGMOID, FA_ACT_RELU,
                                         FA_ACT_IDENTITY};
    static const int32_t loss[] = {FA_LOSS_MSE, FA_LOSS_SOFTMAX_CE, FA_LOSS_SIGMOID_BCE,
                                   FA_LOSS_MSE};
    const int32_t sizes[] = {4, 7, 3};
    const int32_t acts[] = {hidden_act[_i], FA_ACT_IDENTITY};
    fa_net *net = tu_net(2, sizes, acts, loss[_i], 21);
    float x[4 * BATCH], t[3 * BATCH];
    tu_lcg g = {99};
    make_data(&g, x, 4, t, 3);
    if (loss[_i] != FA_LOSS_MSE)
        for (int k = 0; k < 3 * BATCH; k++)
            t[k] = k % 3 == 1;
    int64_t n = tu_param_count(net), wo, bo;
    float *p = tu_params(net);
    float *gbp = malloc((size_t)n * sizeof *gbp), *gd = malloc((size_t)n * sizeof *gd);
    ck_assert(gbp && gd);
    TU_OK(fa_net_layer_offsets(net, 2, &wo, &bo));
    TU_OK(fa_net_set_feedback(net, FA_RULE_DFA, 1, p + wo, 3 * 7));
    TU_OK(fa_net_compute_update(net, x, 4, t, 3, BATCH, gbp, n, NULL));
    TU_OK(fa_net_set_rule(net, FA_RULE_DFA));
    if (_i == 3)
        TU_OK(fa_net_set_dfa_variant(net, FA_DFA_BEFORE_ACTIVATION));
    TU_OK(fa_net_compute_update(net, x, 4, t, 3, BATCH, gd, n, NULL));
    double r = rel_diff(gd, gbp, n);
    ck_assert_msg(r < 1e-6, "case %d: DFA with G_1 = W_2 differs from BP by %g", _i, r);
    free(p);
    free(gbp);
    free(gd);
    fa_net_free(net);
}
END_TEST

/* FNV-1a over the bytes of every stored feedback matrix of `rule`. */
static uint64_t feedback_checksum(fa_net *net, int32_t rule, int32_t L)
{
    uint64_t h = UINT64_C(14695981039346656037);
    for (int32_t l = 1; l <= L; l++) {
        int32_t r, c;
        if (fa_net_feedback_shape(net, rule, l, &r, &c) != FA_OK)
            continue; /* no matrix at this layer */
        float buf[64];
        ck_assert((int64_t)r * c <= 64);
        TU_OK(fa_net_get_feedback(net, rule, l, buf, (int64_t)r * c));
        const unsigned char *p = (const unsigned char *)buf;
        for (size_t k = 0; k < (size_t)r * c * sizeof *buf; k++)
            h = (h ^ p[k]) * UINT64_C(1099511628211);
    }
    return h;
}

/* The header: "FA, DFA, FRSF, DRTP and SDFA never modify their feedback;
 * BRSF, KP and WM do, and only when a step is applied". */
static int header_learns(int32_t rule)
{
    return rule == FA_RULE_BRSF || rule == FA_RULE_KP || rule == FA_RULE_WM;
}

/* _i runs over the rules with stored feedback.  50 training steps (with
 * dropout, momentum and weight decay, to run every code path): the
 * feedback checksum after every step is unchanged for the fixed rules and
 * new at every step for the learning ones; compute_update never changes
 * it. */
START_TEST(test_feedback_unchanged)
{
    static const int32_t stored_rules[] = {FA_RULE_FA,   FA_RULE_DFA, FA_RULE_BRSF,
                                           FA_RULE_FRSF, FA_RULE_KP,  FA_RULE_WM,
                                           FA_RULE_DRTP, FA_RULE_SDFA};
    const int32_t rule = stored_rules[_i];
    const char *name = fa_enum_name(FA_ENUM_RULE, rule);
    int32_t learns = -1;
    TU_OK(fa_rule_info(rule, NULL, NULL, &learns, NULL));
    ck_assert_msg(learns == header_learns(rule), "%s: fa_rule_info learns = %d", name, learns);
    const int32_t sizes[] = {6, 8, 7, 4};
    const int32_t acts[] = {FA_ACT_TANH, FA_ACT_RELU, FA_ACT_IDENTITY};
    fa_net *net = tu_net(3, sizes, acts, FA_LOSS_SOFTMAX_CE, 5);
    TU_OK(fa_net_set_rule(net, rule));
    TU_OK(fa_net_set_optimizer(net, FA_OPT_MOMENTUM));
    TU_OK(fa_net_set_dropout(net, 1, 0.2));
    TU_OK(fa_net_set_hparam(net, FA_HP_WEIGHT_DECAY, 1e-3));
    TU_OK(fa_net_set_hparam(net, FA_HP_KP_DECAY, 0.01));
    float x[6 * BATCH], t[4 * BATCH];
    tu_lcg g = {5};
    tu_fill(&g, x, 6 * BATCH, 1.0f);
    for (int k = 0; k < 4 * BATCH; k++)
        t[k] = (k % 4) == (k / 4) % 4;
    const int64_t n = tu_param_count(net);
    float *p0 = tu_params(net), *gr = malloc((size_t)n * sizeof *gr);
    ck_assert_ptr_nonnull(gr);
    const uint64_t first = feedback_checksum(net, rule, 3);
    uint64_t prev = first;
    for (int s = 0; s < 50; s++) {
        TU_OK(fa_net_compute_update(net, x, 6, t, 4, BATCH, gr, n, NULL));
        ck_assert_msg(feedback_checksum(net, rule, 3) == prev,
                      "%s: compute_update changed the feedback (step %d)", name, s);
        if (s % 2)
            TU_OK(fa_net_apply_update(net, gr, n));
        else
            TU_OK(fa_net_train_step(net, x, 6, t, 4, BATCH, NULL));
        const uint64_t now = feedback_checksum(net, rule, 3);
        if (header_learns(rule))
            ck_assert_msg(now != prev, "%s: feedback unchanged by applied step %d", name, s);
        else
            ck_assert_msg(now == first, "%s: feedback changed by applied step %d", name, s);
        prev = now;
    }
    float *p1 = tu_params(net);
    ck_assert_msg(memcmp(p0, p1, (size_t)n * sizeof *p0) != 0,
                  "training did not change the parameters");
    /* Switching rules away and back keeps the matrices. */
    TU_OK(fa_net_set_rule(net, FA_RULE_BP));
    TU_OK(fa_net_train_step(net, x, 6, t, 4, BATCH, NULL));
    TU_OK(fa_net_set_rule(net, rule == FA_RULE_FA ? FA_RULE_DFA : FA_RULE_FA));
    TU_OK(fa_net_train_step(net, x, 6, t, 4, BATCH, NULL));
    TU_OK(fa_net_set_rule(net, rule));
    ck_assert_msg(feedback_checksum(net, rule, 3) == prev,
                  "%s: feedback changed while other rules trained", name);
    /* set_feedback_init redraws the matrices already drawn. */
    TU_OK(fa_net_set_feedback_init(net, FA_DIST_GAUSSIAN, 0.3));
    ck_assert(feedback_checksum(net, rule, 3) != prev);
    free(p0);
    free(p1);
    free(gr);
    fa_net_free(net);
}
END_TEST

/* FRSF with M_l := |W_l| sends the error back through |W| .* sign(W) = W:
 * BP's update.  BRSF's first update too (its M is used as set). */
START_TEST(test_sign_concordant_equals_bp)
{
    const eq_case *c = &fa_cases[_i / 2];
    const int32_t rule = _i % 2 ? FA_RULE_BRSF : FA_RULE_FRSF;
    fa_net *net = tu_net(c->n_layers, c->sizes, c->acts, c->loss, 17 + (uint64_t)_i);
    int32_t nl = c->sizes[c->n_layers];
    float x[8 * BATCH], t[8 * BATCH];
    tu_lcg g = {(uint64_t)_i + 40};
    make_data(&g, x, c->sizes[0], t, nl);
    if (c->loss != FA_LOSS_MSE)
        for (int k = 0; k < nl * BATCH; k++)
            t[k] = c->loss == FA_LOSS_SIGMOID_BCE ? (t[k] > 0) : (k % nl == (k / nl) % nl);
    int64_t n = tu_param_count(net);
    float *p = tu_params(net);
    float *gbp = malloc((size_t)n * sizeof *gbp), *gs = malloc((size_t)n * sizeof *gs);
    ck_assert(gbp && gs);
    for (int32_t l = 2; l <= c->n_layers; l++) {
        int64_t wo, bo, len = (int64_t)c->sizes[l] * c->sizes[l - 1];
        TU_OK(fa_net_layer_offsets(net, l, &wo, &bo));
        float m[64];
        ck_assert(len <= 64);
        for (int64_t k = 0; k < len; k++)
            m[k] = fabsf(p[wo + k]);
        TU_OK(fa_net_set_feedback(net, rule, l, m, len));
    }
    TU_OK(fa_net_compute_update(net, x, c->sizes[0], t, nl, BATCH, gbp, n, NULL));
    TU_OK(fa_net_set_rule(net, rule));
    TU_OK(fa_net_compute_update(net, x, c->sizes[0], t, nl, BATCH, gs, n, NULL));
    double r = rel_diff(gs, gbp, n);
    ck_assert_msg(r < 1e-6, "case %d: %s with M = |W| differs from BP by %g", _i / 2,
                  fa_enum_name(FA_ENUM_RULE, rule), r);
    ck_assert(fa_nrm2(n, gbp) > 1e-3);
    float ang[4];
    TU_OK(fa_net_feedback_angles(net, rule, ang, c->n_layers - 1));
    for (int32_t l = 0; l < c->n_layers - 1; l++)
        ck_assert_msg(ang[l] < 0.1f, "angle(W, |W| sign W) = %g", ang[l]);
    free(p);
    free(gbp);
    free(gs);
    fa_net_free(net);
}
END_TEST

/* KP with B_l := W_l: after every applied step (_i: optimiser x case, 20
 * steps, weight decay and k on) B_l == W_l bitwise, and each KP update
 * equals BP's on the same parameters. */
START_TEST(test_kp_stays_bp)
{
    const int32_t opt = _i % FA_N_OPTIMIZERS;
    const eq_case *c = &fa_cases[_i / FA_N_OPTIMIZERS];
    const int32_t L = c->n_layers, nl = c->sizes[L];
    fa_net *net = tu_net(L, c->sizes, c->acts, c->loss, 31 + (uint64_t)_i);
    TU_OK(fa_net_set_optimizer(net, opt));
    TU_OK(fa_net_set_hparam(net, FA_HP_LR, 0.05));
    TU_OK(fa_net_set_hparam(net, FA_HP_WEIGHT_DECAY, 0.01));
    TU_OK(fa_net_set_hparam(net, FA_HP_KP_DECAY, 0.1));
    float x[8 * BATCH], t[8 * BATCH];
    tu_lcg g = {(uint64_t)_i + 77};
    make_data(&g, x, c->sizes[0], t, nl);
    if (c->loss != FA_LOSS_MSE)
        for (int k = 0; k < nl * BATCH; k++)
            t[k] = c->loss == FA_LOSS_SIGMOID_BCE ? (t[k] > 0) : (k % nl == (k / nl) % nl);
    const int64_t n = tu_param_count(net);
    float *gkp = malloc((size_t)n * sizeof *gkp), *gbp = malloc((size_t)n * sizeof *gbp);
    ck_assert(gkp && gbp);
    float *p = tu_params(net);
    for (int32_t l = 2; l <= L; l++) {
        int64_t wo, bo;
        TU_OK(fa_net_layer_offsets(net, l, &wo, &bo));
        TU_OK(fa_net_set_feedback(net, FA_RULE_KP, l, p + wo,
                                  (int64_t)c->sizes[l] * c->sizes[l - 1]));
    }
    free(p);
    for (int s = 0; s < 20; s++) {
        TU_OK(fa_net_set_rule(net, FA_RULE_BP));
        TU_OK(fa_net_compute_update(net, x, c->sizes[0], t, nl, BATCH, gbp, n, NULL));
        TU_OK(fa_net_set_rule(net, FA_RULE_KP));
        TU_OK(fa_net_compute_update(net, x, c->sizes[0], t, nl, BATCH, gkp, n, NULL));
        double r = rel_diff(gkp, gbp, n);
        ck_assert_msg(r < 1e-6, "optimiser %d case %d step %d: KP (B = W) differs from BP by "
                      "%g", opt, _i / FA_N_OPTIMIZERS, s, r);
        TU_OK(fa_net_apply_update(net, gkp, n));
        p = tu_params(net);
        for (int32_t l = 2; l <= L; l++) {
            int64_t wo, bo, len = (int64_t)c->sizes[l] * c->sizes[l - 1];
            float b[64];
            ck_assert(len <= 64);
            TU_OK(fa_net_layer_offsets(net, l, &wo, &bo));
            TU_OK(fa_net_get_feedback(net, FA_RULE_KP, l, b, len));
            for (int64_t k = 0; k < len; k++) /* equal values: exact, not close */
                TU_CHECK(b[k] == p[wo + k], "optimiser %d step %d: B_%d[%lld] = %.9g, "
                         "W_%d = %.9g", opt, s, l, (long long)k, b[k], l, p[wo + k]);
        }
        free(p);
    }
    free(gkp);
    free(gbp);
    fa_net_free(net);
}
END_TEST

/* USF on weights of one magnitude a: B_k = s_k sign(W_k) = (s_k / a) W_k, so
 * the error reaching hidden layer l is BP's times prod_{k>l} s_k / a, and so
 * is its update; the last layer's update is BP's. */
START_TEST(test_usf_scaled_bp)
{
    static const eq_case usf_cases[] = {
        {2, {4, 6, 3}, {FA_ACT_TANH, FA_ACT_IDENTITY}, FA_LOSS_MSE},
        {3, {4, 6, 5, 3}, {FA_ACT_SIGMOID, FA_ACT_TANH, FA_ACT_IDENTITY}, FA_LOSS_SOFTMAX_CE},
        {4, {3, 5, 4, 6, 2}, {FA_ACT_TANH, FA_ACT_LEAKY_RELU, FA_ACT_TANH, FA_ACT_TANH},
         FA_LOSS_MSE},
    };
    const eq_case *c = &usf_cases[_i];
    const int32_t L = c->n_layers, nl = c->sizes[L];
    const float a = 0.375f;
    fa_net *net = tu_net(L, c->sizes, c->acts, c->loss, 3);
    const int64_t n = tu_param_count(net);
    float *p = tu_params(net);
    tu_lcg g = {(uint64_t)_i + 11};
    for (int32_t l = 1; l <= L; l++) {
        int64_t wo, bo;
        TU_OK(fa_net_layer_offsets(net, l, &wo, &bo));
        for (int64_t k = wo; k < bo; k++)
            p[k] = tu_uniform(&g) < 0 ? -a : a;
        for (int64_t k = bo; k < bo + c->sizes[l]; k++)
            p[k] = 0.5f * tu_uniform(&g);
    }
    TU_OK(fa_net_set_params(net, p, n));
    float x[8 * BATCH], t[8 * BATCH];
    make_data(&g, x, c->sizes[0], t, nl);
    if (c->loss != FA_LOSS_MSE)
        for (int k = 0; k < nl * BATCH; k++)
            t[k] = k % nl == (k / nl) % nl;
    float *gbp = malloc((size_t)n * sizeof *gbp), *gu = malloc((size_t)n * sizeof *gu);
    ck_assert(gbp && gu);
    TU_OK(fa_net_compute_update(net, x, c->sizes[0], t, nl, BATCH, gbp, n, NULL));
    TU_OK(fa_net_set_rule(net, FA_RULE_USF));
    TU_OK(fa_net_compute_update(net, x, c->sizes[0], t, nl, BATCH, gu, n, NULL));
    double factor = 1.0;
    for (int32_t l = L; l >= 1; l--) {
        int64_t wo, bo;
        TU_OK(fa_net_layer_offsets(net, l, &wo, &bo));
        const int64_t len = bo + c->sizes[l] - wo; /* W_l and b_l */
        float *want = malloc((size_t)len * sizeof *want);
        ck_assert_ptr_nonnull(want);
        for (int64_t k = 0; k < len; k++)
            want[k] = (float)(factor * gbp[wo + k]);
        double r = rel_diff(gu + wo, want, len);
        ck_assert_msg(r < 1e-6, "case %d layer %d: USF update != BP's times %g (rel %g)", _i,
                      l, factor, r);
        ck_assert(fa_nrm2(len, want) > 1e-6);
        free(want);
        /* the factor for the layer below: s_l / a */
        factor *= sqrt(2.0 / (c->sizes[l - 1] + c->sizes[l])) / a;
    }
    free(p);
    free(gbp);
    free(gu);
    fa_net_free(net);
}
END_TEST

/* SHALLOW under each optimiser (_i), with weight decay and dropout: 100
 * steps leave the hidden parameters bitwise as they were and their
 * optimiser state entries zero; the output layer learns.  After BP has
 * filled the hidden state, SHALLOW leaves that state as it is too. */
START_TEST(test_shallow_frozen)
{
    const int32_t opt = _i;
    const int32_t sizes[] = {5, 7, 6, 3};
    const int32_t acts[] = {FA_ACT_TANH, FA_ACT_RELU, FA_ACT_IDENTITY};
    fa_net *net = tu_net(3, sizes, acts, FA_LOSS_SOFTMAX_CE, 9);
    TU_OK(fa_net_set_optimizer(net, opt));
    TU_OK(fa_net_set_hparam(net, FA_HP_WEIGHT_DECAY, 0.01));
    TU_OK(fa_net_set_dropout(net, 1, 0.1));
    float x[5 * BATCH], t[3 * BATCH];
    tu_lcg g = {123};
    tu_fill(&g, x, 5 * BATCH, 1.0f);
    for (int k = 0; k < 3 * BATCH; k++)
        t[k] = (k % 3) == (k / 3) % 3;
    const int64_t n = tu_param_count(net);
    int64_t wo3, bo3;
    TU_OK(fa_net_layer_offsets(net, 3, &wo3, &bo3));
    const int64_t nh = wo3; /* hidden parameters come first */
    for (int phase = 0; phase < 2; phase++) {
        if (phase == 1) { /* BP fills every state entry, then SHALLOW */
            TU_OK(fa_net_set_rule(net, FA_RULE_BP));
            for (int s = 0; s < 5; s++)
                TU_OK(fa_net_train_step(net, x, 5, t, 3, BATCH, NULL));
        }
        TU_OK(fa_net_set_rule(net, FA_RULE_SHALLOW));
        float *p0 = tu_params(net);
        float *s0 = malloc(2 * (size_t)n * sizeof *s0);
        ck_assert_ptr_nonnull(s0);
        memcpy(s0, net->opt_state, 2 * (size_t)n * sizeof *s0);
        for (int s = 0; s < 100; s++)
            TU_OK(fa_net_train_step(net, x, 5, t, 3, BATCH, NULL));
        float *p1 = tu_params(net);
        ck_assert_msg(memcmp(p0, p1, (size_t)nh * sizeof *p0) == 0,
                      "optimiser %d phase %d: SHALLOW changed hidden parameters", opt, phase);
        ck_assert_msg(memcmp(p0 + nh, p1 + nh, (size_t)(n - nh) * sizeof *p0) != 0,
                      "optimiser %d: the output layer did not learn", opt);
        for (int v = 0; v < 2; v++) {
            const float *st = net->opt_state + (size_t)v * (size_t)n;
            ck_assert_msg(memcmp(st, s0 + (size_t)v * (size_t)n, (size_t)nh * sizeof *st) == 0,
                          "optimiser %d phase %d: hidden optimiser state %d changed", opt,
                          phase, v);
            for (int64_t k = 0; phase == 0 && k < nh; k++)
                TU_CHECK(st[k] == 0.0f, "optimiser %d: hidden state %d[%lld] = %g", opt,
                         v, (long long)k, st[k]);
        }
        if (phase == 1 && opt != FA_OPT_SGD)
            ck_assert_msg(fa_nrm2(nh, net->opt_state) > 0, "BP left no hidden state to keep");
        free(p0);
        free(p1);
        free(s0);
    }
    fa_net_free(net);
}
END_TEST

/* DRTP's hidden update is built from the targets and the hidden layers'
 * own activity: a new output layer (W_L and b_L) leaves it bitwise as it
 * was, while the output layer's own update changes. */
START_TEST(test_drtp_output_independent)
{
    const eq_case *c = &fa_cases[_i];
    const int32_t L = c->n_layers, nl = c->sizes[L];
    fa_net *net = tu_net(L, c->sizes, c->acts, c->loss, 50 + (uint64_t)_i);
    TU_OK(fa_net_set_rule(net, FA_RULE_DRTP));
    float x[8 * BATCH], t[8 * BATCH];
    tu_lcg g = {(uint64_t)_i + 500};
    make_data(&g, x, c->sizes[0], t, nl);
    if (c->loss != FA_LOSS_MSE)
        for (int k = 0; k < nl * BATCH; k++)
            t[k] = c->loss == FA_LOSS_SIGMOID_BCE ? (t[k] > 0) : (k % nl == (k / nl) % nl);
    const int64_t n = tu_param_count(net);
    int64_t wo, bo;
    TU_OK(fa_net_layer_offsets(net, L, &wo, &bo));
    float *g0 = malloc((size_t)n * sizeof *g0), *g1 = malloc((size_t)n * sizeof *g1);
    ck_assert(g0 && g1);
    TU_OK(fa_net_compute_update(net, x, c->sizes[0], t, nl, BATCH, g0, n, NULL));
    float *p = tu_params(net);
    for (int64_t k = wo; k < n; k++)
        p[k] = 2.0f * tu_uniform(&g);
    TU_OK(fa_net_set_params(net, p, n));
    TU_OK(fa_net_compute_update(net, x, c->sizes[0], t, nl, BATCH, g1, n, NULL));
    ck_assert_msg(memcmp(g0, g1, (size_t)wo * sizeof *g0) == 0,
                  "case %d: DRTP's hidden update depends on the output layer", _i);
    ck_assert(fa_nrm2(wo, g0) > 1e-4);
    ck_assert(memcmp(g0 + wo, g1 + wo, (size_t)(n - wo) * sizeof *g0) != 0);
    free(p);
    free(g0);
    free(g1);
    fa_net_free(net);
}
END_TEST

/* BRSF's M over several steps: unchanged by compute_update (and by
 * fa_net_get_feedback), new after every applied step, both ways of
 * applying one, drawn with the feedback initialisation in force. */
START_TEST(test_brsf_redraws)
{
    const int32_t sizes[] = {4, 6, 5, 3};
    const int32_t acts[] = {FA_ACT_TANH, FA_ACT_TANH, FA_ACT_IDENTITY};
    fa_net *net = tu_net(3, sizes, acts, FA_LOSS_MSE, 4);
    TU_OK(fa_net_set_rule(net, FA_RULE_BRSF));
    float x[4 * BATCH], t[3 * BATCH];
    tu_lcg g = {4};
    make_data(&g, x, 4, t, 3);
    const int64_t n = tu_param_count(net);
    float *gr = malloc((size_t)n * sizeof *gr);
    ck_assert_ptr_nonnull(gr);
    uint64_t prev = feedback_checksum(net, FA_RULE_BRSF, 3);
    ck_assert(feedback_checksum(net, FA_RULE_BRSF, 3) == prev);
    for (int s = 0; s < 10; s++) {
        TU_OK(fa_net_compute_update(net, x, 4, t, 3, BATCH, gr, n, NULL));
        ck_assert_msg(feedback_checksum(net, FA_RULE_BRSF, 3) == prev,
                      "compute_update redrew M (step %d)", s);
        if (s % 2)
            TU_OK(fa_net_train_step(net, x, 4, t, 3, BATCH, NULL));
        else
            TU_OK(fa_net_apply_update(net, gr, n));
        uint64_t now = feedback_checksum(net, FA_RULE_BRSF, 3);
        ck_assert_msg(now != prev, "M not redrawn by applied step %d", s);
        prev = now;
    }
    /* The redraw follows the feedback initialisation in force: under
     * (SIGN, 0.25) the M of every applied step is new and all +-0.25. */
    TU_OK(fa_net_set_feedback_init(net, FA_DIST_SIGN, 0.25));
    for (int s = 0; s < 3; s++) {
        prev = feedback_checksum(net, FA_RULE_BRSF, 3);
        TU_OK(fa_net_train_step(net, x, 4, t, 3, BATCH, NULL));
        ck_assert(feedback_checksum(net, FA_RULE_BRSF, 3) != prev);
        float m[30];
        for (int32_t l = 2; l <= 3; l++) {
            const int len = sizes[l] * sizes[l - 1];
            TU_OK(fa_net_get_feedback(net, FA_RULE_BRSF, l, m, len));
            for (int k = 0; k < len; k++)
                TU_CHECK(fabsf(m[k]) == 0.25f, "M_%d[%d] = %g under (sign, 0.25)", l, k, m[k]);
        }
    }
    free(gr);
    fa_net_free(net);
}
END_TEST

/* Nokland's zero initial condition: from all-zero weights BP cannot move
 * the hidden layers (their gradient is zero), nor can the rules whose
 * feedback is derived from W (sign(0) = 0) or that freeze the hidden
 * layers; every rule with feedback of its own can. */
START_TEST(test_zero_init)
{
    const int32_t sizes[] = {3, 5, 4, 2};
    const int32_t acts[] = {FA_ACT_TANH, FA_ACT_TANH, FA_ACT_IDENTITY};
    float x[3 * BATCH], t[2 * BATCH];
    tu_lcg g = {8};
    make_data(&g, x, 3, t, 2);
    for (int32_t rule = 0; rule < FA_N_RULES; rule++) {
        fa_net *net = tu_net(3, sizes, acts, FA_LOSS_MSE, 2);
        TU_OK(fa_net_init_weights(net, FA_INIT_ZERO));
        TU_OK(fa_net_set_rule(net, rule));
        int64_t n = tu_param_count(net), wo, bo;
        float *gr = malloc((size_t)n * sizeof *gr);
        ck_assert_ptr_nonnull(gr);
        TU_OK(fa_net_compute_update(net, x, 3, t, 2, BATCH, gr, n, NULL));
        TU_OK(fa_net_layer_offsets(net, 1, &wo, &bo));
        double n1 = fa_nrm2(15, gr + wo);
        const fa_rule_desc *d = fa_rule_table[rule];
        if (d->hidden == FA_HIDDEN_NONE ||
            (d->hidden == FA_HIDDEN_CHAIN && d->back != FA_BACK_STORED))
            ck_assert_msg(n1 == 0.0, "rule %s moved W_1 from zero: %g", d->name, n1);
        else
            ck_assert_msg(n1 > 1e-4, "rule %d did not move W_1 from zero", rule);
        free(gr);
        fa_net_free(net);
    }
}
END_TEST

/* The header's table of the rules: feedback kind, stored matrices, whether
 * the library changes them, whether the hidden errors are independent of
 * each other (fa_rule doc block and fa_rule_info), and how the hidden
 * errors are made (fa_hidden_mode, fa_rule_hidden). */
static const struct {
    int32_t rule, kind, stored, learns, parallel, hidden;
} rule_table[] = {
    {FA_RULE_BP, FA_FEEDBACK_NONE, 0, 0, 0, FA_HIDDEN_CHAIN},
    {FA_RULE_FA, FA_FEEDBACK_LAYER, 1, 0, 0, FA_HIDDEN_CHAIN},
    {FA_RULE_DFA, FA_FEEDBACK_DIRECT, 1, 0, 1, FA_HIDDEN_DIRECT},
    {FA_RULE_USF, FA_FEEDBACK_LAYER, 0, 0, 0, FA_HIDDEN_CHAIN},
    {FA_RULE_BRSF, FA_FEEDBACK_LAYER, 1, 1, 0, FA_HIDDEN_CHAIN},
    {FA_RULE_FRSF, FA_FEEDBACK_LAYER, 1, 0, 0, FA_HIDDEN_CHAIN},
    {FA_RULE_KP, FA_FEEDBACK_LAYER, 1, 1, 0, FA_HIDDEN_CHAIN},
    {FA_RULE_WM, FA_FEEDBACK_LAYER, 1, 1, 0, FA_HIDDEN_CHAIN},
    {FA_RULE_DRTP, FA_FEEDBACK_DIRECT, 1, 0, 1, FA_HIDDEN_DIRECT},
    {FA_RULE_SDFA, FA_FEEDBACK_DIRECT, 1, 0, 1, FA_HIDDEN_DIRECT},
    {FA_RULE_SHALLOW, FA_FEEDBACK_NONE, 0, 0, 0, FA_HIDDEN_NONE},
};
#define N_TABLE ((int)(sizeof rule_table / sizeof rule_table[0]))

/* s with every letter upper-cased and every '_' turned into '-'. */
static void shout(const char *s, char *out, size_t len)
{
    size_t k = 0;
    for (; s[k] && k + 1 < len; k++)
        out[k] = s[k] == '_' ? '-' : (char)toupper((unsigned char)s[k]);
    out[k] = '\0';
}

START_TEST(test_names)
{
    ck_assert_int_eq(fa_enum_count(FA_ENUM_RULE), N_TABLE);
    for (int i = 0; i < N_TABLE; i++) {
        const int32_t rule = rule_table[i].rule;
        ck_assert_int_eq(rule, i); /* the values are 0..10 in order */
        const char *name = fa_enum_name(FA_ENUM_RULE, rule);
        const char *desc = fa_enum_description(FA_ENUM_RULE, rule);
        ck_assert_msg(name && *name, "rule %d has no name", rule);
        ck_assert_msg(desc && *desc, "rule %d has no description", rule);
        for (const char *c = name; *c; c++)
            ck_assert_msg(islower((unsigned char)*c) || *c == '_' || isdigit((unsigned char)*c),
                          "rule name '%s' is not lower-case words joined by '_'", name);
        for (int j = 0; j < i; j++) {
            ck_assert_msg(strcmp(name, fa_enum_name(FA_ENUM_RULE, j)) != 0,
                          "rules %d and %d are both '%s'", j, i, name);
            ck_assert_msg(strcmp(desc, fa_enum_description(FA_ENUM_RULE, j)) != 0,
                          "rules %d and %d share a description", j, i);
        }
        int32_t v = -1;
        TU_OK(fa_enum_lookup(FA_ENUM_RULE, name, &v));
        ck_assert_int_eq(v, rule);
        char loud[64];
        shout(name, loud, sizeof loud);
        v = -1;
        TU_OK(fa_enum_lookup(FA_ENUM_RULE, loud, &v));
        ck_assert_msg(v == rule, "lookup of '%s' gave %d, want %d", loud, v, rule);

        int32_t kind = -1, stored = -1, learns = -1, parallel = -1;
        TU_OK(fa_rule_info(rule, &kind, &stored, &learns, &parallel));
        ck_assert_msg(kind == rule_table[i].kind && stored == rule_table[i].stored &&
                          learns == rule_table[i].learns &&
                          parallel == rule_table[i].parallel,
                      "fa_rule_info(%s) = kind %d stored %d learns %d parallel %d, the "
                      "header says %d %d %d %d", name, kind, stored, learns, parallel,
                      rule_table[i].kind, rule_table[i].stored, rule_table[i].learns,
                      rule_table[i].parallel);
        TU_OK(fa_rule_info(rule, NULL, NULL, NULL, NULL));
        int32_t hidden = -1;
        TU_OK(fa_rule_hidden(rule, &hidden));
        ck_assert_msg(hidden == rule_table[i].hidden, "fa_rule_hidden(%s) = %d, the header "
                      "says %d", name, hidden, rule_table[i].hidden);
    }
    ck_assert_ptr_null(fa_enum_name(FA_ENUM_RULE, N_TABLE));
    ck_assert_ptr_null(fa_enum_description(FA_ENUM_RULE, -1));
    ck_assert_int_eq(fa_rule_info(N_TABLE, NULL, NULL, NULL, NULL), FA_ERR_ARG);
    ck_assert_int_eq(fa_rule_info(-1, NULL, NULL, NULL, NULL), FA_ERR_ARG);
    int32_t mode = 77;
    ck_assert_int_eq(fa_rule_hidden(N_TABLE, &mode), FA_ERR_ARG);
    ck_assert_int_eq(fa_rule_hidden(-1, &mode), FA_ERR_ARG);
    ck_assert_int_eq(mode, 77);
    ck_assert_int_eq(fa_rule_hidden(FA_RULE_BP, NULL), FA_ERR_NULL);
    ck_assert_msg(strstr(fa_last_error(), "mode"), "message: %s", fa_last_error());
    /* An unknown name: refused, and the message lists the rules. */
    int32_t v = 77;
    ck_assert_int_eq(fa_enum_lookup(FA_ENUM_RULE, "kolen_pollack", &v), FA_ERR_ARG);
    ck_assert_int_eq(v, 77);
    ck_assert_msg(strstr(fa_last_error(), "shallow") && strstr(fa_last_error(), "drtp"),
                  "message '%s' does not list the rules", fa_last_error());
    ck_assert_int_eq(fa_enum_lookup(FA_ENUM_RULE, "", &v), FA_ERR_ARG);
    ck_assert_int_eq(fa_enum_lookup(FA_ENUM_RULE, "bp ", &v), FA_ERR_ARG);
    /* The rules' own hyperparameters, whose names have '_': found with '-'
     * and in upper case too. */
    static const struct {
        int32_t id;
        const char *name;
    } hp[] = {{FA_HP_KP_DECAY, "kp_decay"}, {FA_HP_WM_LR, "wm_lr"},
              {FA_HP_WM_DECAY, "wm_decay"}, {FA_HP_WM_NOISE, "wm_noise"},
              {FA_HP_WM_BATCH, "wm_batch"}};
    for (size_t i = 0; i < sizeof hp / sizeof hp[0]; i++) {
        const char *name = fa_enum_name(FA_ENUM_HPARAM, hp[i].id);
        ck_assert_msg(name && strcmp(name, hp[i].name) == 0, "hparam %d is '%s', want '%s'",
                      hp[i].id, name ? name : "(null)", hp[i].name);
        const char *desc = fa_enum_description(FA_ENUM_HPARAM, hp[i].id);
        ck_assert(desc && *desc);
        char loud[64];
        shout(name, loud, sizeof loud);
        ck_assert(strchr(loud, '-'));
        v = -1;
        TU_OK(fa_enum_lookup(FA_ENUM_HPARAM, loud, &v));
        ck_assert_msg(v == hp[i].id, "lookup of '%s' gave %d", loud, v);
    }
}
END_TEST

static Suite *rules_suite(void)
{
    Suite *s = suite_create("rules");
    TCase *tc = tcase_create("rules");
    tcase_add_loop_test(tc, test_fa_equals_bp, 0, (int)(sizeof fa_cases / sizeof fa_cases[0]));
    tcase_add_loop_test(tc, test_dfa_equals_bp_one_hidden, 0, 4);
    tcase_add_loop_test(tc, test_sign_concordant_equals_bp, 0,
                        2 * (int)(sizeof fa_cases / sizeof fa_cases[0]));
    tcase_add_loop_test(tc, test_kp_stays_bp, 0,
                        FA_N_OPTIMIZERS * (int)(sizeof fa_cases / sizeof fa_cases[0]));
    tcase_add_loop_test(tc, test_usf_scaled_bp, 0, 3);
    tcase_add_loop_test(tc, test_feedback_unchanged, 0, 8);
    tcase_add_loop_test(tc, test_shallow_frozen, 0, FA_N_OPTIMIZERS);
    tcase_add_loop_test(tc, test_drtp_output_independent, 0,
                        (int)(sizeof fa_cases / sizeof fa_cases[0]));
    tcase_add_test(tc, test_brsf_redraws);
    tcase_add_test(tc, test_zero_init);
    tcase_add_test(tc, test_names);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(rules_suite());
}
