/*
 * test_determinism.c -- the handle's RNG is the only source of randomness:
 * two networks created with the same seed and trained the same way (dropout
 * on, every rule, feedback drawn lazily) end bitwise equal; a different seed
 * gives different weights, feedback and dropout masks.  Run with
 * OPENBLAS_NUM_THREADS=1 (meson's test environment sets it).
 */
#include "internal.h"
#include "testutil.h"

#define BATCH 6
#define STEPS 20

static const int32_t sizes[] = {5, 12, 9, 3};
static const int32_t acts[] = {FA_ACT_RELU, FA_ACT_TANH, FA_ACT_IDENTITY};

static fa_net *trained(uint64_t seed, int32_t rule)
{
    fa_net *net = tu_net(3, sizes, acts, FA_LOSS_SOFTMAX_CE, seed);
    TU_OK(fa_net_set_rule(net, rule));
    TU_OK(fa_net_set_dropout(net, 1, 0.3));
    TU_OK(fa_net_set_dropout(net, 2, 0.1));
    TU_OK(fa_net_set_optimizer(net, FA_OPT_ADAM));
    float x[5 * BATCH], t[3 * BATCH];
    tu_lcg g = {1};
    tu_fill(&g, x, 5 * BATCH, 1.0f);
    for (int k = 0; k < 3 * BATCH; k++)
        t[k] = k % 3 == (k / 3) % 3;
    for (int s = 0; s < STEPS; s++)
        TU_OK(fa_net_train_step(net, x, 5, t, 3, BATCH, NULL));
    return net;
}

START_TEST(test_same_seed)
{
    int32_t rule = _i;
    fa_net *a = trained(1234, rule), *b = trained(1234, rule), *c = trained(1235, rule);
    int64_t n = tu_param_count(a);
    float *pa = tu_params(a), *pb = tu_params(b), *pc = tu_params(c);
    ck_assert_msg(memcmp(pa, pb, (size_t)n * sizeof *pa) == 0,
                  "rule %d: same seed, different parameters", rule);
    ck_assert_msg(memcmp(pa, pc, (size_t)n * sizeof *pa) != 0,
                  "rule %d: different seeds, same parameters", rule);
    ck_assert(memcmp(&a->rng, &b->rng, sizeof a->rng) == 0);
    free(pa);
    free(pb);
    free(pc);
    fa_net_free(a);
    fa_net_free(b);
    fa_net_free(c);
}
END_TEST

/* Dropout really is random per step and per seed: the same weights, the
 * same batch, two steps' updates differ; without dropout they are equal. */
START_TEST(test_dropout_masks)
{
    fa_net *net = tu_net(3, sizes, acts, FA_LOSS_SOFTMAX_CE, 8);
    int64_t n = tu_param_count(net);
    float *g1 = malloc((size_t)n * sizeof *g1), *g2 = malloc((size_t)n * sizeof *g2);
    ck_assert(g1 && g2);
    float x[5 * BATCH], t[3 * BATCH];
    tu_lcg g = {2};
    tu_fill(&g, x, 5 * BATCH, 1.0f);
    for (int k = 0; k < 3 * BATCH; k++)
        t[k] = k % 3 == 0;
    TU_OK(fa_net_compute_update(net, x, 5, t, 3, BATCH, g1, n, NULL));
    TU_OK(fa_net_compute_update(net, x, 5, t, 3, BATCH, g2, n, NULL));
    ck_assert(memcmp(g1, g2, (size_t)n * sizeof *g1) == 0);
    TU_OK(fa_net_set_dropout(net, 1, 0.5));
    TU_OK(fa_net_compute_update(net, x, 5, t, 3, BATCH, g1, n, NULL));
    TU_OK(fa_net_compute_update(net, x, 5, t, 3, BATCH, g2, n, NULL));
    ck_assert_msg(memcmp(g1, g2, (size_t)n * sizeof *g1) != 0,
                  "two dropout steps drew the same mask");
    /* Inference ignores dropout: forward is repeatable. */
    float y1[3 * BATCH], y2[3 * BATCH];
    TU_OK(fa_net_forward(net, x, 5, BATCH, y1, 3));
    TU_OK(fa_net_forward(net, x, 5, BATCH, y2, 3));
    ck_assert(memcmp(y1, y2, sizeof y1) == 0);
    double p = -1;
    TU_OK(fa_net_get_dropout(net, 1, &p));
    ck_assert(p == 0.5);
    free(g1);
    free(g2);
    fa_net_free(net);
}
END_TEST

/* Inverted dropout keeps the expected activation: the mean of a layer's
 * gradient over many masks approaches the dropout-free one. */
START_TEST(test_dropout_unbiased)
{
    const int32_t s1[] = {4, 30, 2};
    const int32_t a1[] = {FA_ACT_IDENTITY, FA_ACT_IDENTITY};
    fa_net *net = tu_net(2, s1, a1, FA_LOSS_MSE, 3);
    int64_t n = tu_param_count(net), wo, bo;
    TU_OK(fa_net_layer_offsets(net, 2, &wo, &bo));
    float *gr = malloc((size_t)n * sizeof *gr), *g0 = malloc((size_t)n * sizeof *g0);
    double *mean = calloc((size_t)n, sizeof *mean);
    ck_assert(gr && g0 && mean);
    float x[4 * 2] = {1, 0.5f, -0.5f, 0.25f, -1, 0.75f, 0.5f, 0}, t[2 * 2] = {1, -1, 0.5f, 0};
    TU_OK(fa_net_compute_update(net, x, 4, t, 2, 2, g0, n, NULL));
    TU_OK(fa_net_set_dropout(net, 1, 0.25));
    const int R = 4000;
    for (int r = 0; r < R; r++) {
        TU_OK(fa_net_compute_update(net, x, 4, t, 2, 2, gr, n, NULL));
        for (int64_t k = 0; k < n; k++)
            mean[k] += gr[k] / (double)R;
    }
    /* The output bias gradient is linear in the hidden output: unbiased. */
    for (int32_t k = 0; k < 2; k++)
        ck_assert_msg(fabs(mean[bo + k] - g0[bo + k]) < 0.05 * fabs(g0[bo + k]) + 0.01,
                      "output bias gradient %d: mean over masks %g, no dropout %g", k,
                      mean[bo + k], g0[bo + k]);
    free(gr);
    free(g0);
    free(mean);
    fa_net_free(net);
}
END_TEST

static Suite *determinism_suite(void)
{
    Suite *s = suite_create("determinism");
    TCase *tc = tcase_create("determinism");
    tcase_add_loop_test(tc, test_same_seed, 0, FA_N_RULES);
    tcase_add_test(tc, test_dropout_masks);
    tcase_add_test(tc, test_dropout_unbiased);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(determinism_suite());
}
