/*
 * test_optimizer.c -- optimisers driven through fa_net_apply_update with
 * hand-chosen update directions, against the formulas of the header
 * evaluated here in double: every optimiser over three steps with the
 * hyperparameters changed between steps, weight decay on weights only,
 * state reset by set_optimizer / reset_optimizer, and the hyperparameter
 * defaults and ranges the header documents.
 */
#include "internal.h"
#include "testutil.h"

/* A 2-3-2 network: 9 + 3 weights/biases in layer 1, 6 + 2 in layer 2. */
static const int32_t sizes[] = {2, 3, 2};
static const int32_t acts[] = {FA_ACT_TANH, FA_ACT_IDENTITY};
#define NP 20

typedef struct ref_opt {
    int kind;
    double v[NP], m[NP];
    int t;
} ref_opt;

/* One step of the header's formulas; g already includes weight decay. */
static void ref_step(ref_opt *o, double *p, const double *g, int64_t n, double lr,
                     double mu, double b1, double b2, double eps, double rho)
{
    o->t++;
    for (int64_t k = 0; k < n; k++) {
        switch (o->kind) {
        case FA_OPT_SGD: p[k] -= lr * g[k]; break;
        case FA_OPT_MOMENTUM:
            o->v[k] = mu * o->v[k] + g[k];
            p[k] -= lr * o->v[k];
            break;
        case FA_OPT_NESTEROV:
            o->v[k] = mu * o->v[k] + g[k];
            p[k] -= lr * (g[k] + mu * o->v[k]);
            break;
        case FA_OPT_ADAM: {
            o->m[k] = b1 * o->m[k] + (1 - b1) * g[k];
            o->v[k] = b2 * o->v[k] + (1 - b2) * g[k] * g[k];
            double mh = o->m[k] / (1 - pow(b1, o->t)), vh = o->v[k] / (1 - pow(b2, o->t));
            p[k] -= lr * mh / (sqrt(vh) + eps);
            break;
        }
        default:
            o->v[k] = rho * o->v[k] + (1 - rho) * g[k] * g[k];
            p[k] -= lr * g[k] / (sqrt(o->v[k]) + eps);
        }
    }
}

static int is_weight(int64_t k)
{
    /* [W_1 (6) | b_1 (3) | W_2 (6) | b_2 (2)] for sizes 2-3-2. */
    return k < 6 || (k >= 9 && k < 15);
}

START_TEST(test_formulas)
{
    int kind = _i % FA_N_OPTIMIZERS;
    int with_wd = _i >= FA_N_OPTIMIZERS;
    fa_net *net = tu_net(2, sizes, acts, FA_LOSS_MSE, 4);
    int64_t n = tu_param_count(net);
    ck_assert_int_eq(n, 17);
    float p0[NP];
    tu_lcg g = {31};
    tu_fill(&g, p0, n, 1.0f);
    TU_OK(fa_net_set_params(net, p0, n));
    TU_OK(fa_net_set_optimizer(net, kind));
    ref_opt o = {kind, {0}, {0}, 0};
    double p[NP];
    for (int64_t k = 0; k < n; k++)
        p[k] = p0[k];

    /* Three steps, every hyperparameter different at each. */
    const double lr[] = {0.1, 0.03, 0.2}, mu[] = {0.9, 0.5, 0.8}, b1[] = {0.9, 0.8, 0.7},
                 b2[] = {0.999, 0.99, 0.9}, eps[] = {1e-8, 1e-3, 0.1},
                 rho[] = {0.9, 0.7, 0.95}, wd[] = {0.1, 0.02, 0.3};
    for (int s = 0; s < 3; s++) {
        TU_OK(fa_net_set_hparam(net, FA_HP_LR, lr[s]));
        TU_OK(fa_net_set_hparam(net, FA_HP_MOMENTUM, mu[s]));
        TU_OK(fa_net_set_hparam(net, FA_HP_BETA1, b1[s]));
        TU_OK(fa_net_set_hparam(net, FA_HP_BETA2, b2[s]));
        TU_OK(fa_net_set_hparam(net, FA_HP_EPSILON, eps[s]));
        TU_OK(fa_net_set_hparam(net, FA_HP_RMS_DECAY, rho[s]));
        TU_OK(fa_net_set_hparam(net, FA_HP_WEIGHT_DECAY, with_wd ? wd[s] : 0.0));
        float gf[NP];
        double gd[NP];
        tu_fill(&g, gf, n, 0.5f);
        for (int64_t k = 0; k < n; k++)
            gd[k] = gf[k] + (with_wd && is_weight(k) ? wd[s] * p[k] : 0.0);
        TU_OK(fa_net_apply_update(net, gf, n));
        ref_step(&o, p, gd, n, lr[s], mu[s], b1[s], b2[s], eps[s], rho[s]);
        float got[NP];
        TU_OK(fa_net_get_params(net, got, n));
        char what[64];
        snprintf(what, sizeof what, "optimiser %d%s step %d", kind,
                 with_wd ? " with weight decay" : "", s + 1);
        tu_assert_close_f(got, p, n, 1e-5, 1e-6, what);
    }
    fa_net_free(net);
}
END_TEST

/* Weight decay alone (zero update direction): every weight shrinks by
 * exactly lr*wd*w, every bias stays bitwise as it was. */
START_TEST(test_weight_decay_weights_only)
{
    fa_net *net = tu_net(2, sizes, acts, FA_LOSS_MSE, 4);
    int64_t n = tu_param_count(net);
    float p0[NP], p1[NP], zero[NP] = {0};
    tu_lcg g = {77};
    tu_fill(&g, p0, n, 1.0f);
    TU_OK(fa_net_set_params(net, p0, n));
    TU_OK(fa_net_set_hparam(net, FA_HP_LR, 0.5));
    TU_OK(fa_net_set_hparam(net, FA_HP_WEIGHT_DECAY, 0.1));
    TU_OK(fa_net_apply_update(net, zero, n));
    TU_OK(fa_net_get_params(net, p1, n));
    for (int64_t k = 0; k < n; k++) {
        if (is_weight(k))
            ck_assert_msg(fabs(p1[k] - 0.95 * p0[k]) < 1e-6, "weight %lld: %g -> %g",
                          (long long)k, p0[k], p1[k]);
        else
            ck_assert_msg(p1[k] == p0[k], "bias %lld decayed: %g -> %g", (long long)k,
                          p0[k], p1[k]);
    }
    fa_net_free(net);
}
END_TEST

/* set_optimizer and reset_optimizer zero the state: the step after them is
 * the first step of a fresh optimiser. */
START_TEST(test_state_reset)
{
    int kind = _i;
    int via_reset = kind >= FA_N_OPTIMIZERS;
    kind %= FA_N_OPTIMIZERS;
    fa_net *a = tu_net(2, sizes, acts, FA_LOSS_MSE, 4), *b = tu_net(2, sizes, acts, FA_LOSS_MSE, 4);
    int64_t n = tu_param_count(a);
    float p0[NP], g1[NP], g2[NP], pa[NP], pb[NP];
    tu_lcg g = {5};
    tu_fill(&g, p0, n, 1.0f);
    tu_fill(&g, g1, n, 1.0f);
    tu_fill(&g, g2, n, 1.0f);
    TU_OK(fa_net_set_optimizer(a, kind));
    TU_OK(fa_net_set_optimizer(b, kind));
    TU_OK(fa_net_apply_update(a, g1, n)); /* builds up state in a */
    TU_OK(fa_net_apply_update(a, g1, n));
    if (via_reset)
        TU_OK(fa_net_reset_optimizer(a));
    else
        TU_OK(fa_net_set_optimizer(a, kind));
    TU_OK(fa_net_set_params(a, p0, n));
    TU_OK(fa_net_set_params(b, p0, n));
    TU_OK(fa_net_apply_update(a, g2, n));
    TU_OK(fa_net_apply_update(b, g2, n));
    TU_OK(fa_net_get_params(a, pa, n));
    TU_OK(fa_net_get_params(b, pb, n));
    ck_assert_msg(memcmp(pa, pb, (size_t)n * sizeof *pa) == 0,
                  "optimiser %d: state survived %s", kind,
                  via_reset ? "fa_net_reset_optimizer" : "fa_net_set_optimizer");
    /* set_params keeps optimiser state: with momentum, the same direction
     * again moves further than a fresh step would. */
    if (kind == FA_OPT_MOMENTUM) {
        TU_OK(fa_net_set_params(b, p0, n));
        TU_OK(fa_net_apply_update(b, g2, n));
        float pc[NP];
        TU_OK(fa_net_get_params(b, pc, n));
        ck_assert(memcmp(pc, pa, (size_t)n * sizeof *pc) != 0);
    }
    fa_net_free(a);
    fa_net_free(b);
}
END_TEST

START_TEST(test_hparam_defaults_and_ranges)
{
    fa_net *net = tu_net(2, sizes, acts, FA_LOSS_MSE, 4);
    /* the defaults the header documents at fa_hparam */
    static const double defaults[FA_N_HPARAMS] = {0.01, 0.9,  0.9,  0.999, 1e-8, 0.0, 0.9,
                                                  0.01, 1e-3, 0.01, 0.01,  1.0,  64};
    for (int h = 0; h < FA_N_HPARAMS; h++) {
        double v = -1;
        TU_OK(fa_net_get_hparam(net, h, &v));
        ck_assert_msg(fabs(v - defaults[h]) <= 1e-12 * defaults[h], "hparam %d default %g, want %g",
                      h, v, defaults[h]);
    }
    int32_t opt = -1, rule = -1;
    TU_OK(fa_net_get_optimizer(net, &opt));
    TU_OK(fa_net_get_rule(net, &rule));
    ck_assert_int_eq(opt, FA_OPT_SGD);
    ck_assert_int_eq(rule, FA_RULE_BP);

    /* In range: accepted and read back exactly. */
    struct {
        int h;
        double v;
        int ok;
    } t[] = {
        {FA_HP_LR, 1e-6, 1},          {FA_HP_LR, 0.0, 0},          {FA_HP_LR, -0.1, 0},
        {FA_HP_MOMENTUM, 0.0, 1},     {FA_HP_MOMENTUM, 1.0, 0},    {FA_HP_MOMENTUM, -0.1, 0},
        {FA_HP_BETA1, 0.0, 1},        {FA_HP_BETA1, 1.0, 0},       {FA_HP_BETA2, 0.5, 1},
        {FA_HP_BETA2, 1.0, 0},        {FA_HP_EPSILON, 1e-12, 1},   {FA_HP_EPSILON, 0.0, 0},
        {FA_HP_WEIGHT_DECAY, 0.0, 1}, {FA_HP_WEIGHT_DECAY, -1e-9, 0}, {FA_HP_RMS_DECAY, 0.99, 1},
        {FA_HP_RMS_DECAY, 1.0, 0},    {FA_HP_LEAKY_SLOPE, 0.0, 1}, {FA_HP_LEAKY_SLOPE, 1.0, 1},
        {FA_HP_LEAKY_SLOPE, 1.5, 0},  {FA_HP_LEAKY_SLOPE, -0.1, 0}, {FA_HP_LR, NAN, 0},
        {FA_HP_LR, INFINITY, 0},      {FA_HP_WEIGHT_DECAY, INFINITY, 0},
        {FA_HP_KP_DECAY, 0.0, 1},     {FA_HP_KP_DECAY, 0.5, 1},    {FA_HP_KP_DECAY, 1.0, 0},
        {FA_HP_KP_DECAY, -0.1, 0},    {FA_HP_WM_LR, 0.0, 1},       {FA_HP_WM_LR, -1e-3, 0},
        {FA_HP_WM_DECAY, 0.2, 1},     {FA_HP_WM_DECAY, 1.0, 0},    {FA_HP_WM_NOISE, 0.1, 1},
        {FA_HP_WM_NOISE, 0.0, 0},     {FA_HP_WM_BATCH, 1.0, 1},    {FA_HP_WM_BATCH, 65536.0, 1},
        {FA_HP_WM_BATCH, 0.0, 0},     {FA_HP_WM_BATCH, 2.5, 0},    {FA_HP_WM_BATCH, 65537.0, 0},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        double before, after;
        TU_OK(fa_net_get_hparam(net, t[i].h, &before));
        int rc = fa_net_set_hparam(net, t[i].h, t[i].v);
        TU_OK(fa_net_get_hparam(net, t[i].h, &after));
        if (t[i].ok) {
            ck_assert_msg(rc == FA_OK && after == t[i].v, "hparam %d = %g refused (%d)", t[i].h,
                          t[i].v, rc);
        } else {
            ck_assert_msg(rc == FA_ERR_ARG, "hparam %d = %g gave %d, want FA_ERR_ARG", t[i].h,
                          t[i].v, rc);
            ck_assert_msg(after == before, "hparam %d changed by a refused value", t[i].h);
            ck_assert(fa_last_error()[0] != '\0');
        }
    }
    fa_net_free(net);
}
END_TEST

/* The leaky slope hyperparameter reaches the activation. */
START_TEST(test_leaky_slope)
{
    const int32_t s[] = {1, 1};
    const int32_t a[] = {FA_ACT_LEAKY_RELU};
    fa_net *net = tu_net(1, s, a, FA_LOSS_MSE, 1);
    float p[2] = {1.0f, 0.0f}, x = -2.0f, y = 0;
    TU_OK(fa_net_set_params(net, p, 2));
    TU_OK(fa_net_forward(net, &x, 1, 1, &y, 1));
    ck_assert_msg(fabsf(y - (-0.02f)) < 1e-7f, "default slope: %g", y);
    TU_OK(fa_net_set_hparam(net, FA_HP_LEAKY_SLOPE, 0.25));
    TU_OK(fa_net_forward(net, &x, 1, 1, &y, 1));
    ck_assert_msg(y == -0.5f, "slope 0.25: %g", y);
    fa_net_free(net);
}
END_TEST

static Suite *optimizer_suite(void)
{
    Suite *s = suite_create("optimizer");
    TCase *tc = tcase_create("optimizer");
    tcase_add_loop_test(tc, test_formulas, 0, 2 * FA_N_OPTIMIZERS);
    tcase_add_test(tc, test_weight_decay_weights_only);
    tcase_add_loop_test(tc, test_state_reset, 0, 2 * FA_N_OPTIMIZERS);
    tcase_add_test(tc, test_hparam_defaults_and_ranges);
    tcase_add_test(tc, test_leaky_slope);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(optimizer_suite());
}
