/*
 * test_rng.c -- the handle's random number generator and everything drawn
 * from it: the raw xoshiro256** stream against an independent reference
 * (tests/gen_known_answers.py), uniform and normal draws (loose moments),
 * forward-weight initialisations and feedback distributions, including the
 * automatic 1/sqrt(n) scale.
 */
#include "internal.h"
#include "known_answers.h"
#include "testutil.h"

#define NDRAW 100000

START_TEST(test_stream_reference)
{
    for (int c = 0; c < KA_N_RNG_CASES; c++) {
        fa_rng r;
        fa_rng_seed(&r, ka_rng_cases[c].seed);
        for (int k = 0; k < KA_RNG_COUNT; k++) {
            uint64_t v = fa_rng_next(&r);
            ck_assert_msg(v == ka_rng_cases[c].next[k],
                          "seed %llu draw %d: %016llx, want %016llx",
                          (unsigned long long)ka_rng_cases[c].seed, k,
                          (unsigned long long)v,
                          (unsigned long long)ka_rng_cases[c].next[k]);
        }
    }
}
END_TEST

START_TEST(test_determinism)
{
    fa_rng a, b, c;
    fa_rng_seed(&a, 99);
    fa_rng_seed(&b, 99);
    fa_rng_seed(&c, 100);
    int same_c = 0;
    for (int k = 0; k < 1000; k++) {
        uint64_t x = fa_rng_next(&a), y = fa_rng_next(&b), z = fa_rng_next(&c);
        TU_CHECK(x == y, "x == y");
        same_c += x == z;
    }
    ck_assert_int_eq(same_c, 0);
    /* The state alone determines the stream (no hidden spare normal). */
    fa_rng_seed(&a, 5);
    (void)fa_rng_normal(&a);
    fa_rng copy = a;
    for (int k = 0; k < 10; k++) {
        float x = fa_rng_normal(&a), y = fa_rng_normal(&copy);
        TU_CHECK(memcmp(&x, &y, sizeof x) == 0, "memcmp(&x, &y, sizeof x) == 0");
    }
}
END_TEST

START_TEST(test_uniform)
{
    fa_rng r;
    fa_rng_seed(&r, 1234);
    double s = 0, s2 = 0;
    float lo = 1, hi = 0;
    for (int k = 0; k < NDRAW; k++) {
        float u = fa_rng_uniform(&r);
        TU_CHECK(u >= 0.0f && u < 1.0f, "uniform draw %.9g outside [0,1)", u);
        /* 24 random bits: every draw is a multiple of 2^-24. */
        double scaled = (double)u * 16777216.0;
        TU_CHECK(scaled == floor(scaled), "draw %.9g is not k/2^24", u);
        s += u;
        s2 += (double)u * u;
        lo = u < lo ? u : lo;
        hi = u > hi ? u : hi;
    }
    double mean = s / NDRAW, var = s2 / NDRAW - mean * mean;
    /* Standard error of the mean is 0.29/sqrt(1e5) = 9e-4; about 4 sigma. */
    ck_assert_msg(fabs(mean - 0.5) < 3.5e-3, "uniform mean %g", mean);
    ck_assert_msg(fabs(var - 1.0 / 12.0) < 2e-3, "uniform variance %g", var);
    ck_assert(lo < 1e-4f && hi > 1.0f - 1e-4f);
}
END_TEST

START_TEST(test_normal)
{
    fa_rng r;
    fa_rng_seed(&r, 777);
    double s = 0, s2 = 0, s4 = 0;
    int beyond3 = 0;
    for (int k = 0; k < NDRAW; k++) {
        float z = fa_rng_normal(&r);
        TU_CHECK(isfinite(z), "isfinite(z)");
        s += z;
        s2 += (double)z * z;
        s4 += (double)z * z * z * z;
        beyond3 += fabsf(z) > 3.0f;
    }
    double mean = s / NDRAW, var = s2 / NDRAW - mean * mean;
    ck_assert_msg(fabs(mean) < 0.012, "normal mean %g", mean);
    ck_assert_msg(fabs(var - 1.0) < 0.02, "normal variance %g", var);
    /* Kurtosis 3 and P(|z| > 3) = 0.27% tell a normal from, say, a
     * uniform with the right variance. */
    ck_assert_msg(fabs(s4 / NDRAW - 3.0) < 0.15, "normal 4th moment %g", s4 / NDRAW);
    ck_assert_msg(beyond3 > 180 && beyond3 < 370, "%d draws beyond 3 sigma", beyond3);
}
END_TEST

/* fa_fill_random for each distribution: support and scale. */
START_TEST(test_fill_random)
{
    enum { COUNT = 50000 };
    static float p[COUNT];
    const double scale = 0.37;
    fa_rng r;
    fa_rng_seed(&r, 42);
    const float s = (float)scale;

    fa_fill_random(&r, FA_DIST_UNIFORM, scale, p, COUNT);
    double sum = 0, sum2 = 0;
    float amax = 0;
    for (int k = 0; k < COUNT; k++) {
        TU_CHECK(fabsf(p[k]) <= s * (1 + 1e-6f), "uniform %.9g beyond %g", p[k], scale);
        amax = fabsf(p[k]) > amax ? fabsf(p[k]) : amax;
        sum += p[k];
        sum2 += (double)p[k] * p[k];
    }
    ck_assert(amax > 0.99f * s);
    ck_assert_msg(fabs(sum / COUNT) < 0.01, "uniform mean %g", sum / COUNT);
    ck_assert_msg(fabs(sum2 / COUNT - scale * scale / 3) < 0.05 * scale * scale / 3,
                  "uniform variance %g", sum2 / COUNT);

    fa_fill_random(&r, FA_DIST_GAUSSIAN, scale, p, COUNT);
    sum = sum2 = 0;
    for (int k = 0; k < COUNT; k++) {
        sum += p[k];
        sum2 += (double)p[k] * p[k];
    }
    ck_assert_msg(fabs(sum / COUNT) < 0.01, "gaussian mean %g", sum / COUNT);
    ck_assert_msg(fabs(sum2 / COUNT - scale * scale) < 0.05 * scale * scale,
                  "gaussian variance %g", sum2 / COUNT);

    fa_fill_random(&r, FA_DIST_SIGN, scale, p, COUNT);
    int plus = 0;
    for (int k = 0; k < COUNT; k++) {
        TU_CHECK(p[k] == s || p[k] == -s, "sign draw %.9g is not +-%.9g", p[k], s);
        plus += p[k] > 0;
    }
    ck_assert_msg(abs(plus - COUNT / 2) < 600, "%d of %d positive", plus, COUNT);
}
END_TEST

/* Forward initialisations: ranges and variances from the header. */
START_TEST(test_init_schemes)
{
    enum { R = 60, C = 140 };
    static float w[R * C];
    fa_rng r;
    fa_rng_seed(&r, 3);
    const double xr = sqrt(6.0 / (C + R)), hr = sqrt(6.0 / C);
    struct {
        int scheme;
        double bound;    /* 0: unbounded */
        double variance; /* expected E[w^2] */
    } t[] = {
        {FA_INIT_XAVIER_UNIFORM, xr, xr * xr / 3},
        {FA_INIT_XAVIER_NORMAL, 0, 2.0 / (C + R)},
        {FA_INIT_HE_UNIFORM, hr, hr * hr / 3},
        {FA_INIT_HE_NORMAL, 0, 2.0 / C},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        fa_init_weights_fill(&r, t[i].scheme, FA_ACT_TANH, w, (int64_t)R * C, C, R);
        double s2 = 0;
        for (int k = 0; k < R * C; k++) {
            if (t[i].bound > 0)
                TU_CHECK(fabs(w[k]) <= t[i].bound * (1 + 1e-6),
                              "scheme %d: %g beyond %g", t[i].scheme, w[k], t[i].bound);
            s2 += (double)w[k] * w[k];
        }
        ck_assert_msg(fabs(s2 / (R * C) / t[i].variance - 1) < 0.06,
                      "scheme %d: E[w^2] %g, want %g", t[i].scheme, s2 / (R * C),
                      t[i].variance);
    }
    for (int k = 0; k < R * C; k++)
        w[k] = 1.0f;
    fa_init_weights_fill(&r, FA_INIT_ZERO, FA_ACT_TANH, w, (int64_t)R * C, C, R);
    for (int k = 0; k < R * C; k++)
        TU_CHECK(w[k] == 0.0f, "w[k] == 0.0f");
}
END_TEST

/* fa_net_create uses FA_INIT_DEFAULT: He uniform for ReLU layers, Xavier
 * uniform otherwise, biases zero. */
START_TEST(test_default_init)
{
    const int32_t sizes[] = {50, 80, 40, 3};
    const int32_t acts[] = {FA_ACT_RELU, FA_ACT_TANH, FA_ACT_IDENTITY};
    fa_net *net = tu_net(3, sizes, acts, FA_LOSS_MSE, 11);
    const float *p;
    TU_OK(fa_net_params_data(net, &p));
    for (int32_t l = 1; l <= 3; l++) {
        int64_t wo, bo;
        TU_OK(fa_net_layer_offsets(net, l, &wo, &bo));
        int32_t r = sizes[l], c = sizes[l - 1];
        double bound = acts[l - 1] == FA_ACT_RELU ? sqrt(6.0 / c) : sqrt(6.0 / (c + r));
        float amax = 0;
        for (int64_t k = 0; k < (int64_t)r * c; k++) {
            TU_CHECK(fabsf(p[wo + k]) <= bound * (1 + 1e-6), "layer %d: %g beyond %g",
                          l, p[wo + k], bound);
            amax = fabsf(p[wo + k]) > amax ? fabsf(p[wo + k]) : amax;
        }
        /* The bound is attained nearly: the scale is not smaller either. */
        ck_assert_msg(amax > 0.9 * bound, "layer %d: max |w| %g, bound %g", l, amax, bound);
        for (int32_t k = 0; k < r; k++)
            TU_CHECK(p[bo + k] == 0.0f, "p[bo + k] == 0.0f");
    }
    /* fa_net_init_weights(ZERO): every parameter zero. */
    TU_OK(fa_net_init_weights(net, FA_INIT_ZERO));
    int64_t n = tu_param_count(net);
    for (int64_t k = 0; k < n; k++)
        TU_CHECK(p[k] == 0.0f, "p[k] == 0.0f");
    fa_net_free(net);
}
END_TEST

/* Feedback matrices: distribution and the automatic scale 1/sqrt(n) of the
 * receiving layer (n_{l-1} for F_l, n_l for G_l).  The sign distribution
 * makes the scale exact. */
START_TEST(test_feedback_scale)
{
    const int32_t sizes[] = {5, 40, 30, 7};
    const int32_t acts[] = {FA_ACT_TANH, FA_ACT_TANH, FA_ACT_IDENTITY};
    fa_net *net = tu_net(3, sizes, acts, FA_LOSS_MSE, 5);
    static float buf[40 * 30];
    TU_OK(fa_net_set_feedback_init(net, FA_DIST_SIGN, FA_SCALE_AUTO));
    struct {
        int32_t rule, layer, recv;
    } m[] = {{FA_RULE_FA, 2, 40}, {FA_RULE_FA, 3, 30}, {FA_RULE_DFA, 1, 40},
             {FA_RULE_DFA, 2, 30}};
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
        int32_t r, c;
        TU_OK(fa_net_feedback_shape(net, m[i].rule, m[i].layer, &r, &c));
        TU_OK(fa_net_get_feedback(net, m[i].rule, m[i].layer, buf, (int64_t)r * c));
        double s = 1.0 / sqrt((double)m[i].recv);
        int plus = 0;
        for (int64_t k = 0; k < (int64_t)r * c; k++) {
            TU_CHECK(fabs(fabs(buf[k]) - s) <= 1e-6 * s,
                          "rule %d layer %d: %.9g is not +-1/sqrt(%d)", m[i].rule,
                          m[i].layer, buf[k], m[i].recv);
            plus += buf[k] > 0;
        }
        ck_assert(plus > 0 && plus < r * c);
    }
    /* A fixed scale with the uniform distribution: inside [-s, s]. */
    TU_OK(fa_net_set_feedback_init(net, FA_DIST_UNIFORM, 2.5));
    TU_OK(fa_net_get_feedback(net, FA_RULE_FA, 2, buf, 30 * 40));
    float amax = 0;
    for (int k = 0; k < 30 * 40; k++) {
        TU_CHECK(fabsf(buf[k]) <= 2.5f, "fabsf(buf[k]) <= 2.5f");
        amax = fabsf(buf[k]) > amax ? fabsf(buf[k]) : amax;
    }
    ck_assert_msg(amax > 2.3f, "uniform feedback max %g for scale 2.5", amax);
    /* Gaussian with a fixed scale: standard deviation about s. */
    TU_OK(fa_net_set_feedback_init(net, FA_DIST_GAUSSIAN, 0.5));
    TU_OK(fa_net_get_feedback(net, FA_RULE_FA, 2, buf, 30 * 40));
    double s2 = 0;
    for (int k = 0; k < 30 * 40; k++)
        s2 += (double)buf[k] * buf[k];
    ck_assert_msg(fabs(sqrt(s2 / 1200) - 0.5) < 0.05, "gaussian feedback sd %g",
                  sqrt(s2 / 1200));
    fa_net_free(net);
}
END_TEST

static Suite *rng_suite(void)
{
    Suite *s = suite_create("rng");
    TCase *tc = tcase_create("rng");
    tcase_add_test(tc, test_stream_reference);
    tcase_add_test(tc, test_determinism);
    tcase_add_test(tc, test_uniform);
    tcase_add_test(tc, test_normal);
    tcase_add_test(tc, test_fill_random);
    suite_add_tcase(s, tc);
    TCase *ti = tcase_create("init");
    tcase_add_test(ti, test_init_schemes);
    tcase_add_test(ti, test_default_init);
    tcase_add_test(ti, test_feedback_scale);
    suite_add_tcase(s, ti);
    return s;
}

int main(void)
{
    return tu_run(rng_suite());
}
