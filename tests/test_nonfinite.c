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

/* A failed step with dropout on leaves no trace, not even in the RNG: a net
 * that failed once and then steps again matches a net that only stepped. */
START_TEST(test_failed_step_keeps_rng)
{
    float x[3 * BATCH], t[2 * BATCH];
    fa_net *a = warm_net(FA_RULE_DFA, FA_LOSS_SOFTMAX_CE, x, t);
    fa_net *b = warm_net(FA_RULE_DFA, FA_LOSS_SOFTMAX_CE, x, t);
    TU_OK(fa_net_set_dropout(a, 1, 0.5));
    TU_OK(fa_net_set_dropout(b, 1, 0.5));
    int64_t n = tu_param_count(a);
    float *good = tu_params(a), *huge = malloc((size_t)n * sizeof *huge);
    ck_assert_ptr_nonnull(huge);
    for (int64_t i = 0; i < n; i++)
        huge[i] = 3e38f; /* the output overflows: the loss is not finite */
    TU_OK(fa_net_set_params(a, huge, n));
    ck_assert_int_eq(fa_net_train_step(a, x, 3, t, 2, BATCH, NULL), FA_ERR_NONFINITE);
    TU_OK(fa_net_set_params(a, good, n));
    TU_OK(fa_net_train_step(a, x, 3, t, 2, BATCH, NULL));
    TU_OK(fa_net_train_step(b, x, 3, t, 2, BATCH, NULL));
    ck_assert_msg(memcmp(a->params, b->params, (size_t)n * sizeof(float)) == 0,
                  "a failed dropout step changed what the next step computes");
    free(good);
    free(huge);
    fa_net_free(a);
    fa_net_free(b);
}
END_TEST

/* Diverged parameters: inference reports it instead of returning inf/NaN. */
START_TEST(test_inference_of_diverged_net)
{
    float x[3 * BATCH], t[2 * BATCH], y[2 * BATCH], loss = -1.0f;
    fa_net *net = warm_net(FA_RULE_BP, FA_LOSS_MSE, x, t);
    int64_t n = tu_param_count(net);
    float *p = tu_params(net);
    for (int64_t i = 0; i < n; i++)
        p[i] = 3e38f; /* finite, but W h overflows */
    TU_OK(fa_net_set_params(net, p, n));
    for (int k = 0; k < 2 * BATCH; k++)
        y[k] = 7.0f;
    ck_assert_int_eq(fa_net_forward(net, x, 3, BATCH, y, 2), FA_ERR_NONFINITE);
    ck_assert_msg(strstr(fa_last_error(), "network output") != NULL, "%s", fa_last_error());
    for (int k = 0; k < 2 * BATCH; k++)
        ck_assert_msg(y[k] == 7.0f, "y written on failure");
    ck_assert_int_eq(fa_net_loss(net, x, 3, t, 2, BATCH, &loss), FA_ERR_NONFINITE);
    ck_assert(loss == -1.0f);
    free(p);
    fa_net_free(net);
}
END_TEST

/* A learning rate that would make the update itself overflow is refused
 * before anything is written: parameters, state and RNG stay as they were
 * and the network still saves and loads. */
START_TEST(test_update_overflow_reported)
{
    float x[3 * BATCH], t[2 * BATCH];
    fa_net *net = warm_net(FA_RULE_BP, FA_LOSS_MSE, x, t);
    TU_OK(fa_net_set_optimizer(net, FA_OPT_SGD));
    TU_OK(fa_net_set_hparam(net, FA_HP_LR, 3e38));
    TU_OK(fa_net_set_hparam(net, FA_HP_WEIGHT_DECAY, 3e38));
    int64_t n = tu_param_count(net);
    float *before = tu_params(net);
    const fa_rng rng = net->rng_drop;
    const int64_t step = net->opt_step;
    int rc = fa_net_train_step(net, x, 3, t, 2, BATCH, NULL);
    ck_assert_int_eq(rc, FA_ERR_NONFINITE);
    ck_assert_msg(strstr(fa_last_error(), "float range") != NULL, "%s", fa_last_error());
    float *after = tu_params(net);
    ck_assert(memcmp(before, after, (size_t)n * sizeof *after) == 0);
    ck_assert(memcmp(&rng, &net->rng_drop, sizeof rng) == 0);
    ck_assert_int_eq(net->opt_step, step);
    free(before);
    free(after);
    fa_net_free(net);
}
END_TEST

/* Hyperparameters are judged as the floats the optimiser uses. */
START_TEST(test_hparams_as_floats)
{
    float x[3 * BATCH], t[2 * BATCH];
    fa_net *net = warm_net(FA_RULE_BP, FA_LOSS_MSE, x, t);
    static const struct {
        int32_t hp;
        double v;
        int ok;
    } cases[] = {
        {FA_HP_LR, 1e-50, 0},        /* rounds to 0 */
        {FA_HP_LR, 1e39, 0},         /* rounds to inf */
        {FA_HP_LR, 1e-30, 1},
        {FA_HP_EPSILON, 1e-50, 0},
        {FA_HP_WEIGHT_DECAY, 1e39, 0},
        {FA_HP_BETA2, 0.9999999999, 0}, /* rounds to 1 */
        {FA_HP_BETA2, 0.9999, 1},
        {FA_HP_MOMENTUM, 0.99999999, 0},
        {FA_HP_RMS_DECAY, 0.99999999, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = fa_net_set_hparam(net, cases[i].hp, cases[i].v);
        ck_assert_msg(rc == (cases[i].ok ? FA_OK : FA_ERR_ARG), "hparam %d = %g gave %d",
                      (int)cases[i].hp, cases[i].v, rc);
    }
    ck_assert_int_eq(fa_net_set_feedback_init(net, FA_DIST_UNIFORM, 1e300), FA_ERR_ARG);
    ck_assert_int_eq(fa_net_set_feedback_init(net, FA_DIST_UNIFORM, 1e-50), FA_ERR_ARG);
    TU_OK(fa_net_set_feedback_init(net, FA_DIST_UNIFORM, 0.5));
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
    tcase_add_test(tc, test_failed_step_keeps_rng);
    tcase_add_test(tc, test_inference_of_diverged_net);
    tcase_add_test(tc, test_update_overflow_reported);
    tcase_add_test(tc, test_hparams_as_floats);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(nonfinite_suite());
}
