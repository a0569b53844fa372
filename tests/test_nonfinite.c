/*
 * test_nonfinite.c -- a step whose loss or update is not finite returns
 * FA_ERR_NONFINITE and leaves the parameters and the whole optimiser state
 * (moments and step count, read from the handle through internal.h)
 * bitwise as they were.  Likewise for the setters that take float buffers.
 * And the invariant of the header: a call that returns FA_OK leaves a
 * network that saves and loads -- huge gradients, a saturated step count,
 * large feedback scales, losses beyond the float range and rule steps
 * whose feedback would overflow.
 */
#define _POSIX_C_SOURCE 200809L

#include <float.h>
#include <unistd.h>

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

/* ------------------------------------------------------------------------
 * "A call that returns FA_OK leaves a network that saves and loads" (the
 * invariant of the header comment), and a call that fails changes nothing.
 * ------------------------------------------------------------------------ */

/* Everything a failed call could have changed: parameters, the whole
 * optimiser state and step count, every stored feedback block, both RNG
 * streams, and the feedback settings. */
typedef struct full_snapshot {
    float *params, *opt, *fb[FA_N_RULES];
    int64_t n, step;
    fa_rng rng, rng_drop;
    int32_t fb_dist, rule, optimizer;
    double fb_scale;
} full_snapshot;

static full_snapshot take_full(const fa_net *net)
{
    full_snapshot s;
    memset(&s, 0, sizeof s);
    s.n = net->n_params;
    s.params = malloc((size_t)s.n * sizeof(float));
    s.opt = malloc(2 * (size_t)s.n * sizeof(float));
    ck_assert(s.params && s.opt);
    memcpy(s.params, net->params, (size_t)s.n * sizeof(float));
    memcpy(s.opt, net->opt_state, 2 * (size_t)s.n * sizeof(float));
    for (int32_t r = 0; r < FA_N_RULES; r++) {
        if (!net->fb[r])
            continue;
        size_t bytes = (size_t)fa_feedback_len(net, r) * sizeof(float);
        s.fb[r] = malloc(bytes);
        ck_assert_ptr_nonnull(s.fb[r]);
        memcpy(s.fb[r], net->fb[r], bytes);
    }
    s.step = net->opt_step;
    s.rng = net->rng;
    s.rng_drop = net->rng_drop;
    s.fb_dist = net->fb_dist;
    s.fb_scale = net->fb_scale;
    s.rule = net->rule;
    s.optimizer = net->optimizer;
    return s;
}

static void assert_same_full(const fa_net *net, const full_snapshot *s, const char *what)
{
    ck_assert_msg(memcmp(net->params, s->params, (size_t)s->n * sizeof(float)) == 0,
                  "%s: parameters changed", what);
    ck_assert_msg(memcmp(net->opt_state, s->opt, 2 * (size_t)s->n * sizeof(float)) == 0,
                  "%s: optimiser state changed", what);
    ck_assert_msg(net->opt_step == s->step, "%s: step count changed", what);
    for (int32_t r = 0; r < FA_N_RULES; r++) {
        ck_assert_msg((net->fb[r] != NULL) == (s->fb[r] != NULL), "%s: feedback of rule %s "
                      "appeared or vanished", what, fa_enum_name(FA_ENUM_RULE, r));
        if (s->fb[r])
            ck_assert_msg(memcmp(net->fb[r], s->fb[r],
                                 (size_t)fa_feedback_len(net, r) * sizeof(float)) == 0,
                          "%s: feedback of rule %s changed", what,
                          fa_enum_name(FA_ENUM_RULE, r));
    }
    ck_assert_msg(memcmp(&net->rng, &s->rng, sizeof s->rng) == 0, "%s: model RNG moved", what);
    ck_assert_msg(memcmp(&net->rng_drop, &s->rng_drop, sizeof s->rng_drop) == 0,
                  "%s: dropout RNG moved", what);
    ck_assert_msg(net->fb_dist == s->fb_dist && net->fb_scale == s->fb_scale,
                  "%s: feedback initialisation changed", what);
    ck_assert_msg(net->rule == s->rule && net->optimizer == s->optimizer,
                  "%s: rule or optimiser changed", what);
}

static void drop_full(full_snapshot *s)
{
    free(s->params);
    free(s->opt);
    for (int32_t r = 0; r < FA_N_RULES; r++)
        free(s->fb[r]);
}

/* The network saves (as an image and as a file) and loads back to the
 * same image. */
static void assert_saves_and_loads(const fa_net *net, const char *what)
{
    int64_t need = 0, need2 = 0;
    unsigned char *img, *img2;
    fa_net *back = NULL;
    char path[512];
    const char *tmp = getenv("TMPDIR");
    int fd;

    TU_OK(fa_net_save_image(net, NULL, 0, &need));
    img = malloc((size_t)need);
    ck_assert_ptr_nonnull(img);
    TU_OK(fa_net_save_image(net, img, need, NULL));
    ck_assert_msg(fa_net_load_image(&back, img, need) == FA_OK, "%s: the image does not load: "
                  "%s", what, fa_last_error());
    TU_OK(fa_net_save_image(back, NULL, 0, &need2));
    ck_assert_int_eq(need2, need);
    img2 = malloc((size_t)need2);
    ck_assert_ptr_nonnull(img2);
    TU_OK(fa_net_save_image(back, img2, need2, NULL));
    ck_assert_msg(memcmp(img, img2, (size_t)need) == 0, "%s: the loaded network differs", what);
    fa_net_free(back);
    back = NULL;

    snprintf(path, sizeof path, "%s/fa-nonfinite-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    TU_OK(fa_net_save(net, path));
    ck_assert_msg(fa_net_load(&back, path) == FA_OK, "%s: the file does not load: %s", what,
                  fa_last_error());
    unlink(path);
    fa_net_free(back);
    free(img);
    free(img2);
}

/* A net with dropout on its hidden layer and rule/optimiser set, warmed up
 * by 3 good steps (non-zero state, both streams advanced). */
static fa_net *rule_net(int32_t rule, int32_t opt, float *x, float *t)
{
    fa_net *net = tu_net(2, sizes, acts, FA_LOSS_MSE, 5);
    TU_OK(fa_net_set_rule(net, FA_RULE_FA)); /* a second block */
    TU_OK(fa_net_set_rule(net, rule));
    TU_OK(fa_net_set_optimizer(net, opt));
    TU_OK(fa_net_set_dropout(net, 1, 0.5));
    tu_lcg g = {77};
    tu_fill(&g, x, 3 * BATCH, 1.0f);
    tu_fill(&g, t, 2 * BATCH, 0.5f);
    for (int s = 0; s < 3; s++)
        TU_OK(fa_net_train_step(net, x, 3, t, 2, BATCH, NULL));
    return net;
}

/* (a) Under Adam and RMSprop a gradient whose square overflows a float is
 * refused with nothing changed.  Old behaviour (0.1): the step ran; the
 * second moment became inf while the parameters, divided by sqrt(inf),
 * stayed finite, so the step returned FA_OK and the next fa_net_save wrote
 * a file that fa_net_load refuses ("optimiser state entry ... is not
 * finite").  Likewise for targets of 1e22, whose loss (~1e44) 0.1 took as
 * finite because it checked it as a double, and for a single target of
 * 2e19, whose loss (2e38) is a float but whose gradient squared is not.
 * _i: {Adam, RMSprop} x {BRSF, KP, WM} (rules whose feedback moves). */
START_TEST(test_huge_gradient_refused)
{
    static const int32_t opts[] = {FA_OPT_ADAM, FA_OPT_RMSPROP};
    static const int32_t rules[] = {FA_RULE_BRSF, FA_RULE_KP, FA_RULE_WM};
    const int32_t opt = opts[_i / 3], rule = rules[_i % 3];
    float x[3 * BATCH], t[2 * BATCH], big[2 * BATCH], loss = -7.0f;
    fa_net *net = rule_net(rule, opt, x, t);
    int64_t n = tu_param_count(net);
    float *g = malloc((size_t)n * sizeof *g);
    ck_assert_ptr_nonnull(g);

    full_snapshot s = take_full(net);
    for (int64_t i = 0; i < n; i++)
        g[i] = 0.01f;
    g[n / 2] = 1e30f;
    ck_assert_int_eq(fa_net_apply_update(net, g, n), FA_ERR_NONFINITE);
    ck_assert_msg(strstr(fa_last_error(), "float range") != NULL, "%s", fa_last_error());
    assert_same_full(net, &s, "apply_update(1e30)");
    assert_saves_and_loads(net, "after a refused apply_update");

    for (int k = 0; k < 2 * BATCH; k++)
        big[k] = 1e22f;
    ck_assert_int_eq(fa_net_train_step(net, x, 3, big, 2, BATCH, &loss), FA_ERR_NONFINITE);
    ck_assert(loss == -7.0f);
    assert_same_full(net, &s, "train_step(t = 1e22)");

    /* batch 1: loss 1/2 (2e19)^2 = 2e38 is a float, the output error
     * 2e19 squared (4e38) is not */
    for (int k = 0; k < 2; k++)
        big[k] = k == 0 ? 2e19f : 0.0f;
    ck_assert_int_eq(fa_net_train_step(net, x, 3, big, 2, 1, &loss), FA_ERR_NONFINITE);
    ck_assert_msg(strstr(fa_last_error(), "optimiser step could leave the float range") != NULL,
                  "%s", fa_last_error());
    ck_assert(loss == -7.0f);
    assert_same_full(net, &s, "train_step(t = 2e19, batch 1)");
    assert_saves_and_loads(net, "after refused steps");

    /* and the network still trains */
    TU_OK(fa_net_train_step(net, x, 3, t, 2, BATCH, NULL));
    ck_assert(net->opt_step == s.step + 1);
    assert_saves_and_loads(net, "after a good step");
    drop_full(&s);
    free(g);
    fa_net_free(net);
}
END_TEST

/* Offset of the optimiser step count in a format-2 image of a network of L
 * layers, from the field list in src/image.c: magic 8, version 4, byte
 * order 4, n_layers 4, input 12, 28 per layer record, loss/rule/variant/
 * dist/optimizer 20, fb_scale 8, n_hparams 4, 13 hyperparameters of 8,
 * dropout 8 per hidden layer. */
static size_t step_offset(int32_t L)
{
    return 8 + 4 + 4 + 4 + 12 + 28 * (size_t)L + 20 + 8 + 4 + 8 * FA_N_HPARAMS +
           8 * (size_t)(L - 1);
}

/* (b) A step count of INT64_MAX (a valid image) loads, and steps after it
 * neither overflow nor wrap: the count saturates and the network saves and
 * loads.  Old behaviour: net->opt_step++ overflowed (undefined behaviour,
 * reported by UBSan; in practice it wrapped to INT64_MIN), and the next
 * save wrote a negative step count that fa_net_load refuses.  _i: every
 * optimiser. */
START_TEST(test_step_count_saturates)
{
    float x[3 * BATCH], t[2 * BATCH];
    fa_net *net = rule_net(FA_RULE_DFA, _i, x, t), *big = NULL;
    int64_t need = 0, step;
    size_t off = step_offset(2);
    unsigned char *img;
    uint32_t crc;

    TU_OK(fa_net_save_image(net, NULL, 0, &need));
    img = malloc((size_t)need);
    ck_assert_ptr_nonnull(img);
    TU_OK(fa_net_save_image(net, img, need, NULL));
    memcpy(&step, img + off, 8);
    ck_assert_msg(step == 3, "the step count is not at offset %zu (found %lld)", off,
                  (long long)step);
    step = INT64_MAX;
    memcpy(img + off, &step, 8);
    crc = fa_crc32(0, img, (size_t)need - 4);
    memcpy(img + need - 4, &crc, 4);
    TU_OK(fa_net_load_image(&big, img, need));
    ck_assert(big->opt_step == INT64_MAX);

    float *before = tu_params(big);
    for (int s = 0; s < 3; s++) {
        TU_OK(fa_net_train_step(big, x, 3, t, 2, BATCH, NULL));
        ck_assert_msg(big->opt_step == INT64_MAX, "step %d: count %lld", s,
                      (long long)big->opt_step);
    }
    float *after = tu_params(big);
    ck_assert_msg(memcmp(before, after, (size_t)tu_param_count(big) * sizeof(float)) != 0,
                  "the steps changed nothing");
    for (int64_t i = 0; i < tu_param_count(big); i++)
        ck_assert(isfinite(after[i]));
    assert_saves_and_loads(big, "after steps at INT64_MAX");
    free(before);
    free(after);
    free(img);
    fa_net_free(big);
    fa_net_free(net);
}
END_TEST

/* (c) fa_net_set_feedback_init refuses a Gaussian scale whose draws could
 * overflow (|draw| < 8.58 s, so s <= FLT_MAX / 8.58 = 3.966e37) and changes
 * nothing; 3.9e37 is accepted and every drawn entry is finite; uniform and
 * sign accept FLT_MAX.  Old behaviour: every float scale was accepted for
 * every distribution, so a Gaussian scale of 1e38 drew infinities into the
 * feedback (and the network no longer saved loadably). */
START_TEST(test_feedback_scale_limits)
{
    float x[3 * BATCH], t[2 * BATCH];
    fa_net *net = rule_net(FA_RULE_KP, FA_OPT_SGD, x, t);
    const int32_t stored[] = {FA_RULE_FA, FA_RULE_DFA, FA_RULE_KP};
    TU_OK(fa_net_set_rule(net, FA_RULE_DFA)); /* three blocks: FA, KP, DFA */
    full_snapshot s = take_full(net);

    static const double too_big[] = {4.0e37, 3.97e37, 1e38, 3.4e38};
    for (size_t k = 0; k < sizeof too_big / sizeof too_big[0]; k++) {
        ck_assert_msg(fa_net_set_feedback_init(net, FA_DIST_GAUSSIAN, too_big[k]) == FA_ERR_ARG,
                      "Gaussian scale %g accepted", too_big[k]);
        ck_assert(strstr(fa_last_error(), "scale") != NULL);
        assert_same_full(net, &s, "refused Gaussian scale");
    }
    ck_assert_int_eq(fa_net_set_feedback_init(net, FA_DIST_UNIFORM, 3.5e38), FA_ERR_ARG);
    ck_assert_int_eq(fa_net_set_feedback_init(net, FA_DIST_SIGN, 3.5e38), FA_ERR_ARG);
    assert_same_full(net, &s, "refused scales");

    const struct {
        int32_t dist;
        double scale;
    } ok[] = {{FA_DIST_GAUSSIAN, 3.9e37}, {FA_DIST_UNIFORM, FLT_MAX}, {FA_DIST_SIGN, FLT_MAX}};
    for (size_t k = 0; k < sizeof ok / sizeof ok[0]; k++) {
        TU_OK(fa_net_set_feedback_init(net, ok[k].dist, ok[k].scale));
        ck_assert(net->fb_dist == ok[k].dist && net->fb_scale == ok[k].scale);
        float mx = 0.0f;
        for (size_t r = 0; r < 3; r++) {
            const float *fb = net->fb[stored[r]];
            ck_assert_ptr_nonnull(fb);
            for (int64_t i = 0; i < fa_feedback_len(net, stored[r]); i++) {
                TU_CHECK(isfinite(fb[i]), "%s scale %g: %s feedback entry %lld is %g",
                         fa_enum_name(FA_ENUM_DISTRIBUTION, ok[k].dist), ok[k].scale,
                         fa_enum_name(FA_ENUM_RULE, stored[r]), (long long)i, (double)fb[i]);
                mx = fabsf(fb[i]) > mx ? fabsf(fb[i]) : mx;
            }
        }
        /* the scale took effect: the draws are of its size */
        ck_assert_msg(mx > 0.01 * ok[k].scale, "largest entry %g for scale %g", (double)mx,
                      ok[k].scale);
        if (ok[k].dist == FA_DIST_SIGN)
            ck_assert(mx == FLT_MAX);
        assert_saves_and_loads(net, "after a large feedback scale");
    }
    drop_full(&s);
    fa_net_free(net);
}
END_TEST

/* (d) A loss that is finite as a double but beyond the float range is
 * FA_ERR_NONFINITE, never success with inf, and writes nothing.  Old
 * behaviour: the loss was checked (if at all) as a double and converted
 * to float on return, so fa_net_loss, fa_net_train_step and fa_loss_eval
 * returned FA_OK with *loss = inf (and the step went ahead). */
START_TEST(test_loss_beyond_float)
{
    float x[3 * BATCH], t[2 * BATCH], big[2 * BATCH], loss = -7.0f;
    fa_net *net = rule_net(FA_RULE_BP, FA_OPT_MOMENTUM, x, t);
    full_snapshot s = take_full(net);
    for (int k = 0; k < 2 * BATCH; k++)
        big[k] = k % 2 ? 1e20f : -1e20f;

    ck_assert_int_eq(fa_net_loss(net, x, 3, big, 2, BATCH, &loss), FA_ERR_NONFINITE);
    ck_assert_msg(strstr(fa_last_error(), "beyond the float range") != NULL, "%s",
                  fa_last_error());
    ck_assert(loss == -7.0f);
    ck_assert_int_eq(fa_net_train_step(net, x, 3, big, 2, BATCH, &loss), FA_ERR_NONFINITE);
    ck_assert_msg(strstr(fa_last_error(), "beyond the float range") != NULL, "%s",
                  fa_last_error());
    ck_assert(loss == -7.0f);
    assert_same_full(net, &s, "train_step with a loss beyond the float range");
    assert_saves_and_loads(net, "after a refused step");

    /* fa_loss_eval: outputs 1e20, targets -1e20: (2e20)^2 / 2 = 2e40 */
    float y[4] = {1e20f, 1e20f, 0.0f, 1e20f}, tt[4] = {-1e20f, -1e20f, 0.0f, -1e20f};
    float dy[4] = {5.0f, 5.0f, 5.0f, 5.0f};
    ck_assert_int_eq(fa_loss_eval(FA_LOSS_MSE, y, 2, tt, 2, 2, 2, &loss, dy, 2),
                     FA_ERR_NONFINITE);
    ck_assert_msg(strstr(fa_last_error(), "beyond the float range") != NULL, "%s",
                  fa_last_error());
    ck_assert(loss == -7.0f);
    for (int k = 0; k < 4; k++)
        ck_assert_msg(dy[k] == 5.0f, "a failed fa_loss_eval wrote dy[%d] = %g", k, (double)dy[k]);
    ck_assert_int_eq(fa_loss_eval(FA_LOSS_MSE, y, 2, tt, 2, 2, 2, NULL, NULL, 0),
                     FA_ERR_NONFINITE);
    /* just inside: 1/2 (2e19)^2 = 2e38 per sample, mean over 2 samples */
    y[0] = 1e19f;
    tt[0] = -1e19f;
    y[1] = y[3] = tt[1] = tt[3] = 0.0f;
    TU_OK(fa_loss_eval(FA_LOSS_MSE, y, 2, tt, 2, 2, 2, &loss, NULL, 0));
    ck_assert(isfinite(loss) && loss > 9.9e37f && loss < 1.01e38f);
    drop_full(&s);
    fa_net_free(net);
}
END_TEST

/* (e) Kolen-Pollack and weight-mirror steps whose feedback update could
 * overflow are refused with nothing changed.  The crafted values are
 * finite and within what the optimiser itself accepts (|W| below 8.5e37),
 * and the update direction is tiny, so only the rule's own check can
 * refuse.  Old behaviour (the rules without their check_commit): KP's
 * B - W_old = 3.3e38 + 8e37 overflowed to inf, and WM's mirror estimate
 * (1/k) sum Y X^T with Y = W X, W = 1e37, summed 64 products of ~1e37 to
 * inf; either way the step returned FA_OK with infinite feedback, which
 * no file can hold. */
START_TEST(test_rule_feedback_overflow_refused)
{
    float x[3 * BATCH], t[2 * BATCH];
    const int32_t rule = _i == 0 ? FA_RULE_KP : FA_RULE_WM;
    fa_net *net = rule_net(rule, FA_OPT_SGD, x, t);
    int64_t n = tu_param_count(net), wo, bo;
    float *p = tu_params(net), *g = malloc((size_t)n * sizeof *g);
    float fb[12];
    ck_assert_ptr_nonnull(g);
    TU_OK(fa_net_layer_offsets(net, 2, &wo, &bo));
    ck_assert_int_eq(bo - wo, 12); /* W_2 is (2, 6) */
    if (rule == FA_RULE_KP) {
        for (int k = 0; k < 12; k++) {
            p[wo + k] = -8e37f;
            fb[k] = 3.3e38f;
        }
        TU_OK(fa_net_set_feedback(net, FA_RULE_KP, 2, fb, 12));
    } else {
        for (int k = 0; k < 12; k++)
            p[wo + k] = 1e37f;
    }
    TU_OK(fa_net_set_params(net, p, n));
    for (int64_t i = 0; i < n; i++)
        g[i] = 1e-3f;
    full_snapshot s = take_full(net);
    ck_assert_int_eq(fa_net_apply_update(net, g, n), FA_ERR_NONFINITE);
    ck_assert_msg(strstr(fa_last_error(), rule == FA_RULE_KP ? "Kolen-Pollack"
                                                              : "weight-mirror") != NULL,
                  "%s", fa_last_error());
    assert_same_full(net, &s, fa_enum_name(FA_ENUM_RULE, rule));
    assert_saves_and_loads(net, "after a refused rule step");

    /* WM with a noise so large that the mirror overflows for any weights */
    if (rule == FA_RULE_WM) {
        float *good = tu_params(net);
        tu_lcg lg = {5};
        tu_fill(&lg, good, n, 0.5f);
        TU_OK(fa_net_set_params(net, good, n));
        TU_OK(fa_net_set_hparam(net, FA_HP_WM_NOISE, 1e19));
        drop_full(&s);
        s = take_full(net);
        ck_assert_int_eq(fa_net_apply_update(net, g, n), FA_ERR_NONFINITE);
        ck_assert_msg(strstr(fa_last_error(), "weight-mirror") != NULL, "%s", fa_last_error());
        assert_same_full(net, &s, "WM with noise 1e19");
        TU_OK(fa_net_set_hparam(net, FA_HP_WM_NOISE, 1.0));
        TU_OK(fa_net_apply_update(net, g, n));
        assert_saves_and_loads(net, "WM after a good step");
        free(good);
    }
    drop_full(&s);
    free(p);
    free(g);
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
    tcase_add_loop_test(tc, test_huge_gradient_refused, 0, 6);
    tcase_add_loop_test(tc, test_step_count_saturates, 0, FA_N_OPTIMIZERS);
    tcase_add_test(tc, test_feedback_scale_limits);
    tcase_add_test(tc, test_loss_beyond_float);
    tcase_add_loop_test(tc, test_rule_feedback_overflow_refused, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(nonfinite_suite());
}
