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
 *
 * Conv nets (conv -> max-pool -> conv -> avg-pool -> dense, tanh, relu,
 * leaky relu and sigmoid, every loss) are checked more tightly: the
 * central differences are taken in float64, of the naive reference loss of
 * refnet.h at the same (float-valued) parameters, which is first checked to
 * equal fa_net_loss to 1e-5, so it is the library's function.  With
 * h = 1e-6 the truncation error (~h^2) and the rounding of the difference
 * (~1e-16 / h) are below 1e-9; what is left is the library's own float
 * rounding of the gradient: sums of at most 243 float products through
 * five layers (about 243 * 6e-8 = 1.5e-5 in the worst case, far less in
 * practice) and the rational tanh (4e-7).  Measured: at most 4.5e-7 of the
 * largest entry of the layer's W or b block.  The tolerance is 1e-4 of that
 * block scale; a wrong index, derivative or pooling route errs by 1e-2 or
 * more.  A max-pool kink within h of the parameters would break the
 * difference quotient; with continuous random data there is none, and the
 * data are fixed.
 */
#include "internal.h"
#include "refnet.h"
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
#define CONV_RTOL 1e-4

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

/* ------------------------------------------------------------ conv nets */

/* conv -> maxpool -> conv -> avgpool -> dense on 2x9x9 images:
 *   c3k3p1 (a1)       2x9x9 -> 3x9x9
 *   m3s2 (overlapping windows) -> 3x4x4
 *   c4k3,2p1 (a2)     3x4x4 -> 4x4x5 (rectangular kernel, padding)
 *   a2s1 (overlapping) -> 4x3x4
 *   dense 3 (out)
 * 57 + 76 + 147 = 280 parameters. */
typedef struct gc_conv_case {
    const char *name;
    int32_t a1, a2, out, loss;
} gc_conv_case;

static const gc_conv_case conv_cases[] = {
    {"conv mse: tanh, relu, sigmoid out", FA_ACT_TANH, FA_ACT_RELU, FA_ACT_SIGMOID, FA_LOSS_MSE},
    {"conv mse: leaky relu, tanh, identity out", FA_ACT_LEAKY_RELU, FA_ACT_TANH,
     FA_ACT_IDENTITY, FA_LOSS_MSE},
    {"conv softmax: sigmoid, tanh", FA_ACT_SIGMOID, FA_ACT_TANH, FA_ACT_IDENTITY,
     FA_LOSS_SOFTMAX_CE},
    {"conv bce: relu, sigmoid", FA_ACT_RELU, FA_ACT_SIGMOID, FA_ACT_IDENTITY,
     FA_LOSS_SIGMOID_BCE},
};

#define CB 3

START_TEST(test_conv_gradient)
{
    const gc_conv_case *c = &conv_cases[_i];
    const rn_desc d[] = {
        {FA_LAYER_CONV2D, 3, 3, 3, 1, 1, c->a1}, {FA_LAYER_MAXPOOL, 0, 3, 3, 2, 0, 0},
        {FA_LAYER_CONV2D, 4, 3, 2, 1, 1, c->a2}, {FA_LAYER_AVGPOOL, 0, 2, 2, 1, 0, 0},
        {FA_LAYER_DENSE, 3, 0, 0, 0, 0, c->out}};
    rn_net rn;
    rn_build(&rn, 2, 9, 9, d, 5, c->loss);
    ck_assert_int_eq(rn.nparams, 280);
    fa_net *net = rn_make_net(&rn, 2, 9, 9, 200 + (uint64_t)_i);
    const int64_t n = rn.nparams;
    const int32_t n0 = 2 * 9 * 9, nl = 3;
    float x[2 * 9 * 9 * CB], t[3 * CB];
    tu_lcg g = {(uint64_t)_i + 71};
    tu_fill(&g, x, n0 * CB, 1.0f);
    for (int32_t j = 0; j < CB; j++)
        for (int32_t i = 0; i < nl; i++) {
            float u = tu_uniform(&g);
            t[i + j * nl] = c->loss == FA_LOSS_MSE           ? 0.5f * u
                            : c->loss == FA_LOSS_SIGMOID_BCE ? 0.5f + 0.5f * u
                                                             : (i == j % nl ? 1.0f : 0.0f);
        }
    /* the library's initial weights; biases of order 0.3 so they matter */
    float *p = tu_params(net), *grad = malloc((size_t)n * sizeof *grad);
    ck_assert_ptr_nonnull(grad);
    for (int32_t l = 1; l <= rn.L; l++)
        tu_fill(&g, p + rn.ly[l].boff, rn.ly[l].wrows, 0.3f);
    TU_OK(fa_net_set_params(net, p, n));
    float lib_loss = 0;
    TU_OK(fa_net_compute_update(net, x, n0, t, nl, CB, grad, n, &lib_loss));

    /* central differences of the float64 loss at the same parameters */
    double *pd = rn_to_double(p, n), *num = malloc((size_t)n * sizeof *num);
    ck_assert_ptr_nonnull(num);
    rn_state st = {0};
    rn_forward(&rn, pd, x, n0, CB, &st);
    const double l0 = rn_loss(&rn, &st, t, nl, NULL);
    ck_assert_msg(fabs(l0 - lib_loss) <= 1e-5 * fabs(l0),
                  "%s: library loss %.9g, float64 loss %.9g", c->name, (double)lib_loss, l0);
    const double h = 1e-6;
    for (int64_t k = 0; k < n; k++) {
        const double keep = pd[k];
        pd[k] = keep + h;
        rn_forward(&rn, pd, x, n0, CB, &st);
        const double lp = rn_loss(&rn, &st, t, nl, NULL);
        pd[k] = keep - h;
        rn_forward(&rn, pd, x, n0, CB, &st);
        const double lm = rn_loss(&rn, &st, t, nl, NULL);
        pd[k] = keep;
        num[k] = (lp - lm) / (2 * h);
    }
    double worst = 0;
    for (int32_t l = 1; l <= rn.L; l++) {
        const rn_layer *ly = &rn.ly[l];
        const int64_t blocks[2][2] = {{ly->woff, ly->boff}, {ly->boff, ly->boff + ly->wrows}};
        for (int b = 0; b < 2; b++) {
            double scale = 0;
            for (int64_t k = blocks[b][0]; k < blocks[b][1]; k++)
                scale = fabs(num[k]) > scale ? fabs(num[k]) : scale;
            for (int64_t k = blocks[b][0]; k < blocks[b][1]; k++) {
                const double err = fabs(grad[k] - num[k]);
                worst = err / scale > worst ? err / scale : worst;
                ck_assert_msg(err <= CONV_RTOL * scale,
                              "%s: layer %d %s[%lld]: BP %.9g, central difference %.9g "
                              "(block scale %g)", c->name, (int)l, b ? "b" : "W",
                              (long long)(k - blocks[b][0]), (double)grad[k], num[k], scale);
            }
            if (blocks[b][1] > blocks[b][0])
                ck_assert_msg(scale > 1e-4, "%s: layer %d's %s gradient is ~0 (%g)", c->name,
                              (int)l, b ? "b" : "W", scale);
        }
    }
    if (getenv("FA_GRADCHECK_VERBOSE"))
        printf("%s: worst |BP - numerical| / block scale = %.3g\n", c->name, worst);
    rn_state_free(&st);
    free(pd);
    free(num);
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
    tcase_add_loop_test(tc, test_conv_gradient, 0,
                        (int)(sizeof conv_cases / sizeof conv_cases[0]));
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(gradcheck_suite());
}
