/*
 * test_nonfinite.c -- a step whose loss or update is not finite returns
 * FA_ERR_NONFINITE and leaves the parameters and the whole optimiser state
 * (moments and step count, read from the handle through internal.h)
 * bitwise as they were.  Likewise for the setters that take float buffers.
 */
#include "internal.h"
#include "testutil.h"

#define BATCH 4

typedef struct snapshot {
    float *params, *opt;
    int64_t n, n_opt, step;
} snapshot;

static snapshot take(const fa_net *net)
{
    snapshot s;
    s.n = net->n_params;
    s.n_opt = 2 * net->n_params;
    s.params = malloc((size_t)s.n * sizeof(float));
    s.opt = malloc((size_t)s.n_opt * sizeof(float));
    ck_assert(s.params && s.opt);
    memcpy(s.params, net->params, (size_t)s.n * sizeof(float));
    memcpy(s.opt, net->opt_state, (size_t)s.n_opt * sizeof(float));
    s.step = net->opt_step;
    return s;
}

static void assert_same(const fa_net *net, const snapshot *s, const char *what)
{
    ck_assert_msg(memcmp(net->params, s->params, (size_t)s->n * sizeof(float)) == 0,
                  "%s: parameters changed", what);
    ck_assert_msg(memcmp(net->opt_state, s->opt, (size_t)s->n_opt * sizeof(float)) == 0,
                  "%s: optimiser state changed", what);
    ck_assert_msg(net->opt_step == s->step, "%s: optimiser step count changed", what);
}

static void drop(snapshot *s)
{
    free(s->params);
    free(s->opt);
}

static const int32_t sizes[] = {3, 6, 2};
static const int32_t acts[] = {FA_ACT_TANH, FA_ACT_IDENTITY};

/* A net that has taken a few good Adam steps, so its state is non-zero. */
static fa_net *warm_net(int32_t rule, int32_t loss, float *x, float *t)
{
    fa_net *net = tu_net(2, sizes, acts, loss, 9);
    TU_OK(fa_net_set_rule(net, rule));
    TU_OK(fa_net_set_optimizer(net, FA_OPT_ADAM));
    tu_lcg g = {13};
    tu_fill(&g, x, 3 * BATCH, 1.0f);
    for (int k = 0; k < 2 * BATCH; k++)
        t[k] = loss == FA_LOSS_MSE ? tu_uniform(&g) : (float)(k % 2 == (k / 2) % 2);
    for (int s = 0; s < 3; s++)
        TU_OK(fa_net_train_step(net, x, 3, t, 2, BATCH, NULL));
    return net;
}

/* _i: rule x {NaN in x, inf in x, NaN in t} */
START_TEST(test_bad_input)
{
    int32_t rule = _i / 3, kind = _i % 3;
    float x[3 * BATCH], t[2 * BATCH];
    int32_t loss = rule == FA_RULE_DFA ? FA_LOSS_SOFTMAX_CE : FA_LOSS_MSE;
    fa_net *net = warm_net(rule, loss, x, t);
    if (kind == 0)
        x[4] = NAN;
    else if (kind == 1)
        x[0] = INFINITY;
    else
        t[3] = NAN;
    snapshot s = take(net);
    float loss_out = 0;
    int rc = fa_net_train_step(net, x, 3, t, 2, BATCH, &loss_out);
    ck_assert_msg(rc == FA_ERR_NONFINITE, "rule %d kind %d: train_step gave %d", rule, kind, rc);
    ck_assert(fa_last_error()[0] != '\0');
    assert_same(net, &s, "train_step");
    int64_t n = tu_param_count(net);
    float *gr = malloc((size_t)n * sizeof *gr);
    ck_assert_ptr_nonnull(gr);
    rc = fa_net_compute_update(net, x, 3, t, 2, BATCH, gr, n, NULL);
    ck_assert_msg(rc == FA_ERR_NONFINITE, "compute_update gave %d", rc);
    assert_same(net, &s, "compute_update");
    /* The net still trains once the data is clean. */
    x[4] = 0.5f;
    x[0] = 0.25f;
    t[3] = loss == FA_LOSS_MSE ? 0.5f : 1.0f;
    TU_OK(fa_net_train_step(net, x, 3, t, 2, BATCH, NULL));
    ck_assert(net->opt_step == s.step + 1);
    free(gr);
    drop(&s);
    fa_net_free(net);
}
END_TEST

/* A learning rate so large that the parameters blow up: the first step
 * whose loss (or update) is no longer finite must fail cleanly. */
START_TEST(test_explosion)
{
    int32_t opt = _i == 0 ? FA_OPT_MOMENTUM : FA_OPT_SGD;
    const int32_t s2[] = {3, 6, 2};
    const int32_t a2[] = {FA_ACT_IDENTITY, FA_ACT_IDENTITY};
    fa_net *net = tu_net(2, s2, a2, FA_LOSS_MSE, 3);
    TU_OK(fa_net_set_optimizer(net, opt));
    TU_OK(fa_net_set_hparam(net, FA_HP_LR, 1e15));
    float x[3 * BATCH], t[2 * BATCH];
    tu_lcg g = {21};
    tu_fill(&g, x, 3 * BATCH, 1.0f);
    tu_fill(&g, t, 2 * BATCH, 1.0f);
    int rc = FA_OK, steps = 0;
    snapshot s = take(net);
    while (rc == FA_OK && steps < 20) {
        drop(&s);
        s = take(net);
        rc = fa_net_train_step(net, x, 3, t, 2, BATCH, NULL);
        steps++;
    }
    ck_assert_msg(rc == FA_ERR_NONFINITE, "after %d steps: %d, want FA_ERR_NONFINITE", steps, rc);
    ck_assert_msg(steps > 1, "the first step already failed");
    assert_same(net, &s, "exploding step");
    /* And it keeps failing the same way without touching anything. */
    rc = fa_net_train_step(net, x, 3, t, 2, BATCH, NULL);
    ck_assert_int_eq(rc, FA_ERR_NONFINITE);
    assert_same(net, &s, "repeated exploding step");
    drop(&s);
    fa_net_free(net);
}
END_TEST

START_TEST(test_bad_buffers)
{
    float x[3 * BATCH], t[2 * BATCH];
    fa_net *net = warm_net(FA_RULE_BP, FA_LOSS_MSE, x, t);
    int64_t n = tu_param_count(net);
    float *buf = malloc((size_t)n * sizeof *buf);
    ck_assert_ptr_nonnull(buf);
    snapshot s = take(net);
    const float bad[] = {NAN, INFINITY, -INFINITY};
    for (int b = 0; b < 3; b++) {
        for (int64_t k = 0; k < n; k++)
            buf[k] = 0.01f;
        buf[n - 1] = bad[b]; /* the last entry: a check must cover all */
        ck_assert_int_eq(fa_net_apply_update(net, buf, n), FA_ERR_NONFINITE);
        assert_same(net, &s, "apply_update");
        ck_assert_int_eq(fa_net_set_params(net, buf, n), FA_ERR_NONFINITE);
        assert_same(net, &s, "set_params");
    }
    /* Feedback: a refused matrix leaves the old one in place. */
    float fb[12], fb0[12];
    TU_OK(fa_net_get_feedback(net, FA_RULE_FA, 2, fb0, 12));
    memcpy(fb, fb0, sizeof fb);
    fb[11] = NAN;
    ck_assert_int_eq(fa_net_set_feedback(net, FA_RULE_FA, 2, fb, 12), FA_ERR_NONFINITE);
    TU_OK(fa_net_get_feedback(net, FA_RULE_FA, 2, fb, 12));
    ck_assert(memcmp(fb, fb0, sizeof fb) == 0);
    free(buf);
    drop(&s);
    fa_net_free(net);
}
END_TEST

static Suite *nonfinite_suite(void)
{
    Suite *s = suite_create("nonfinite");
    TCase *tc = tcase_create("nonfinite");
    tcase_add_loop_test(tc, test_bad_input, 0, 3 * FA_N_RULES);
    tcase_add_loop_test(tc, test_explosion, 0, 2);
    tcase_add_test(tc, test_bad_buffers);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(nonfinite_suite());
}
