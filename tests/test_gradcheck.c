/*
 * test_gradcheck.c -- the BP update of fa_net_compute_update against central
 * differences of fa_net_loss, parameter by parameter, on small tanh and
 * sigmoid networks for every loss (and a non-identity output layer for MSE).
 *
 * float32 limits what a finite difference can show: with h = 1e-2 the
 * truncation error is O(h^2) relative and the rounding error of a loss near
 * 1 is about 6e-8 / h, so a relative tolerance of 1e-2 plus a small absolute
 * floor separates a correct gradient from a wrong one (a wrong f', a missing
 * 1/batch or a transposed matrix all give errors of order 1).
 */
#include "internal.h"
#include "testutil.h"

typedef struct gc_case {
    const char *name;
    int32_t n_layers;
    int32_t sizes[4];
    int32_t acts[3];
    int32_t loss;
} gc_case;

static const gc_case cases[] = {
    {"tanh mse", 2, {3, 5, 2}, {FA_ACT_TANH, FA_ACT_IDENTITY}, FA_LOSS_MSE},
    {"sigmoid mse", 2, {3, 5, 2}, {FA_ACT_SIGMOID, FA_ACT_IDENTITY}, FA_LOSS_MSE},
    {"tanh-tanh mse, tanh out", 3, {3, 4, 4, 2},
     {FA_ACT_TANH, FA_ACT_TANH, FA_ACT_TANH}, FA_LOSS_MSE},
    {"sigmoid-out mse", 2, {2, 4, 3}, {FA_ACT_TANH, FA_ACT_SIGMOID}, FA_LOSS_MSE},
    {"tanh softmax", 2, {3, 5, 4}, {FA_ACT_TANH, FA_ACT_IDENTITY}, FA_LOSS_SOFTMAX_CE},
    {"sigmoid-tanh softmax", 3, {3, 4, 4, 3},
     {FA_ACT_SIGMOID, FA_ACT_TANH, FA_ACT_IDENTITY}, FA_LOSS_SOFTMAX_CE},
    {"tanh bce", 2, {3, 5, 2}, {FA_ACT_TANH, FA_ACT_IDENTITY}, FA_LOSS_SIGMOID_BCE},
    {"sigmoid bce", 3, {3, 4, 3, 2},
     {FA_ACT_SIGMOID, FA_ACT_SIGMOID, FA_ACT_IDENTITY}, FA_LOSS_SIGMOID_BCE},
};

#define BATCH 4

START_TEST(test_gradient)
{
    const gc_case *c = &cases[_i];
    fa_net *net = tu_net(c->n_layers, c->sizes, c->acts, c->loss, 100 + (uint64_t)_i);
    int32_t n0 = c->sizes[0], nl = c->sizes[c->n_layers];
    float x[8 * BATCH], t[8 * BATCH];
    tu_lcg g = {(uint64_t)_i + 17};
    tu_fill(&g, x, n0 * BATCH, 1.0f);
    for (int32_t j = 0; j < BATCH; j++) {
        for (int32_t i = 0; i < nl; i++) {
            float u = tu_uniform(&g);
            if (c->loss == FA_LOSS_MSE)
                t[i + j * nl] = u;
            else if (c->loss == FA_LOSS_SIGMOID_BCE)
                t[i + j * nl] = 0.5f + 0.5f * u; /* soft targets in [0, 1] */
            else
                t[i + j * nl] = i == j % nl ? 1.0f : 0.0f;
        }
    }
    /* Biases start at zero; give them values so their gradients matter. */
    int64_t n = tu_param_count(net);
    float *p = tu_params(net), *grad = malloc((size_t)n * sizeof *grad);
    ck_assert_ptr_nonnull(grad);
    for (int32_t l = 1; l <= c->n_layers; l++) {
        int64_t wo, bo;
        TU_OK(fa_net_layer_offsets(net, l, &wo, &bo));
        tu_fill(&g, p + bo, c->sizes[l], 0.5f);
    }
    TU_OK(fa_net_set_params(net, p, n));
    TU_OK(fa_net_compute_update(net, x, n0, t, nl, BATCH, grad, n, NULL));

    const float h = 1e-2f;
    for (int64_t k = 0; k < n; k++) {
        float keep = p[k], lp, lm;
        p[k] = keep + h;
        TU_OK(fa_net_set_params(net, p, n));
        TU_OK(fa_net_loss(net, x, n0, t, nl, BATCH, &lp));
        p[k] = keep - h;
        TU_OK(fa_net_set_params(net, p, n));
        TU_OK(fa_net_loss(net, x, n0, t, nl, BATCH, &lm));
        p[k] = keep;
        double num = ((double)lp - lm) / (2.0 * h);
        double err = fabs(num - grad[k]);
        ck_assert_msg(err <= 1e-2 * fabs(num) + 2e-4,
                      "%s: parameter %lld: BP %.7g, central difference %.7g",
                      c->name, (long long)k, grad[k], num);
    }
    /* The check is not vacuous: the gradient is not all (near) zero. */
    ck_assert_msg(fa_nrm2(n, grad) > 1e-2, "%s: gradient norm %g", c->name,
                  fa_nrm2(n, grad));
    free(p);
    free(grad);
    fa_net_free(net);
}
END_TEST

static Suite *gradcheck_suite(void)
{
    Suite *s = suite_create("gradcheck");
    TCase *tc = tcase_create("central differences");
    tcase_add_loop_test(tc, test_gradient, 0, (int)(sizeof cases / sizeof cases[0]));
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(gradcheck_suite());
}
