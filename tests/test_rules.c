/*
 * test_rules.c -- properties that tie the three rules together:
 * - FA with every F_l := W_l gives the BP update (one back-projection helper
 *   serves all rules, so this holds to rounding);
 * - DFA on one hidden layer with G_1 := W_2 gives the BP update, and with an
 *   identity hidden layer the before-activation variant does too;
 * - FA and DFA never write to their feedback matrices (bitwise checksum over
 *   50 training steps);
 * - feedback survives rule switches and set_feedback_init redraws it.
 */
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

/* 50 training steps under FA and DFA (with dropout and momentum, to run
 * every code path) leave every feedback matrix bitwise unchanged. */
START_TEST(test_feedback_unchanged)
{
    int32_t rule = _i == 0 ? FA_RULE_FA : FA_RULE_DFA;
    const int32_t sizes[] = {6, 8, 7, 4};
    const int32_t acts[] = {FA_ACT_TANH, FA_ACT_RELU, FA_ACT_IDENTITY};
    fa_net *net = tu_net(3, sizes, acts, FA_LOSS_SOFTMAX_CE, 5);
    TU_OK(fa_net_set_rule(net, rule));
    TU_OK(fa_net_set_optimizer(net, FA_OPT_MOMENTUM));
    TU_OK(fa_net_set_dropout(net, 1, 0.2));
    TU_OK(fa_net_set_hparam(net, FA_HP_WEIGHT_DECAY, 1e-3));
    float before[2][64], after[2][64];
    int32_t lo = rule == FA_RULE_FA ? 2 : 1;
    int64_t len[2];
    for (int32_t l = lo; l < lo + 2; l++) {
        int32_t r, c;
        TU_OK(fa_net_feedback_shape(net, rule, l, &r, &c));
        len[l - lo] = (int64_t)r * c;
        ck_assert(len[l - lo] <= 64);
        TU_OK(fa_net_get_feedback(net, rule, l, before[l - lo], len[l - lo]));
    }
    float x[6 * BATCH], t[4 * BATCH];
    tu_lcg g = {5};
    tu_fill(&g, x, 6 * BATCH, 1.0f);
    for (int k = 0; k < 4 * BATCH; k++)
        t[k] = (k % 4) == (k / 4) % 4;
    float *p0 = tu_params(net);
    for (int s = 0; s < 50; s++)
        TU_OK(fa_net_train_step(net, x, 6, t, 4, BATCH, NULL));
    float *p1 = tu_params(net);
    ck_assert_msg(memcmp(p0, p1, (size_t)tu_param_count(net) * sizeof *p0) != 0,
                  "training did not change the parameters");
    for (int32_t l = lo; l < lo + 2; l++) {
        TU_OK(fa_net_get_feedback(net, rule, l, after[l - lo], len[l - lo]));
        ck_assert_msg(memcmp(before[l - lo], after[l - lo],
                             (size_t)len[l - lo] * sizeof(float)) == 0,
                      "rule %d: feedback matrix of layer %d changed in training", rule, l);
    }
    /* Switching rules away and back keeps the matrices. */
    TU_OK(fa_net_set_rule(net, FA_RULE_BP));
    TU_OK(fa_net_train_step(net, x, 6, t, 4, BATCH, NULL));
    TU_OK(fa_net_set_rule(net, rule == FA_RULE_FA ? FA_RULE_DFA : FA_RULE_FA));
    TU_OK(fa_net_set_rule(net, rule));
    TU_OK(fa_net_get_feedback(net, rule, lo, after[0], len[0]));
    ck_assert(memcmp(before[0], after[0], (size_t)len[0] * sizeof(float)) == 0);
    /* set_feedback_init redraws the matrices already drawn. */
    TU_OK(fa_net_set_feedback_init(net, FA_DIST_GAUSSIAN, 0.3));
    TU_OK(fa_net_get_feedback(net, rule, lo, after[0], len[0]));
    ck_assert(memcmp(before[0], after[0], (size_t)len[0] * sizeof(float)) != 0);
    free(p0);
    free(p1);
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

static Suite *rules_suite(void)
{
    Suite *s = suite_create("rules");
    TCase *tc = tcase_create("rules");
    tcase_add_loop_test(tc, test_fa_equals_bp, 0, (int)(sizeof fa_cases / sizeof fa_cases[0]));
    tcase_add_loop_test(tc, test_dfa_equals_bp_one_hidden, 0, 4);
    tcase_add_loop_test(tc, test_feedback_unchanged, 0, 2);
    tcase_add_test(tc, test_zero_init);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(rules_suite());
}
