/*
 * test_layers.c -- convolution and pooling layers, under every rule.
 *
 * 1. Forward pass, loss and BP update of small nets of conv2d, max-pool,
 *    avg-pool and dense layers, built with the spec builder, against the
 *    naive float64 reference of refnet.h (direct loops over the header's
 *    definitions): odd sizes, strides > 1, padding, several channels,
 *    rectangular kernels, overlapping pooling windows, batch > 1, and the
 *    first layer (conv or pooling) reading the caller's x with ldx > rows,
 *    the rows beyond n_0 holding NaN so that any read of them shows.
 *    Integer-valued inputs and weights make the conv outputs exact, so
 *    max-pool ties are real ties, decided as the header says (first maximum
 *    in row-by-row window order); overlapping windows accumulate.
 * 2. The max-pool's layer op on a hand-made input with ties, expected
 *    values worked out by hand from the header.
 * 3. Every rule's update on a conv net against the reference with that
 *    rule's feedback (read back with fa_net_get_feedback).
 * 4. Equivalences with BP on conv nets: FA, KP, WM with B := W; FRSF and
 *    BRSF with M := W; USF with W := +-s; DFA with G_1 := W_2 (one hidden
 *    conv layer straight into the dense output layer) and, through an
 *    average pool, G_1 := W_3 P (P the pool's matrix).
 * 5. Every rule learns a small image problem (oriented bars).
 *
 * Tolerances.  The library computes in float, the reference in double.
 * Every compared entry is a sum of at most a few hundred products of
 * numbers of order 1, so its float rounding is below ~1e-5 of the largest
 * entry of its block (measured: below 1e-6); comparisons use 1e-4 of the
 * block's largest entry.  An indexing mistake (a wrong channel, pixel or
 * kernel position, a lost padding term, a missing accumulation) changes
 * entries by a whole product, of the order of the block scale.
 */
#include <float.h>

#include "internal.h"
#include "refnet.h"
#include "testutil.h"

#define RTOL 1e-4

/* |got - want| <= rtol * max|want| over a block of n. */
static void close_block(const float *got, const double *want, int64_t n, double rtol,
                        const char *what, const char *name, int32_t layer)
{
    double scale = 0;
    for (int64_t i = 0; i < n; i++)
        scale = fabs(want[i]) > scale ? fabs(want[i]) : scale;
    for (int64_t i = 0; i < n; i++)
        TU_CHECK(isfinite(got[i]) && fabs(got[i] - want[i]) <= rtol * scale + 1e-30,
                 "%s: %s of layer %d, entry %lld: got %.9g, want %.9g (scale %g)", name, what,
                 (int)layer, (long long)i, (double)got[i], want[i], scale);
}

/* Each layer's W and b blocks of a flat update against the reference. */
static void close_update(const rn_net *n, const float *got, const double *want,
                         const char *name)
{
    for (int32_t l = 1; l <= n->L; l++) {
        const rn_layer *ly = &n->ly[l];
        if (!rn_has_params(ly->d.kind))
            continue;
        close_block(got + ly->woff, want + ly->woff, (int64_t)ly->wrows * ly->wcols, RTOL,
                    "dW", name, l);
        close_block(got + ly->boff, want + ly->boff, ly->wrows, RTOL, "db", name, l);
    }
}

/* Parameters of order 1 / sqrt(fan_in); quant: integers in {-1, 0, 1} for
 * layer 1 (weights and bias). */
static float *random_params(const rn_net *n, tu_lcg *g, int quant)
{
    float *p = malloc(sizeof(float) * (size_t)(n->nparams > 0 ? n->nparams : 1));
    ck_assert_ptr_nonnull(p);
    for (int32_t l = 1; l <= n->L; l++) {
        const rn_layer *ly = &n->ly[l];
        const int64_t nw = (int64_t)ly->wrows * ly->wcols;
        const float s = 1.5f / sqrtf((float)(ly->wcols > 0 ? ly->wcols : 1));
        for (int64_t i = 0; i < nw + ly->wrows; i++) {
            float u = tu_uniform(g);
            if (quant && l == 1)
                p[ly->woff + i] = u < -1.0f / 3 ? -1.0f : (u < 1.0f / 3 ? 0.0f : 1.0f);
            else
                p[ly->woff + i] = i < nw ? s * u : 0.5f * u;
        }
    }
    return p;
}

/* x (n0, m) with ld = n0 + pad; rows beyond n0 are NaN.  quant: {0, 1, 2}. */
static float *make_x(int32_t n0, int32_t m, int32_t ld, tu_lcg *g, int quant)
{
    float *x = malloc(sizeof(float) * (size_t)ld * (size_t)m);
    ck_assert_ptr_nonnull(x);
    for (int32_t j = 0; j < m; j++)
        for (int32_t i = 0; i < ld; i++) {
            float u = tu_uniform(g);
            x[i + (size_t)ld * j] =
                i >= n0 ? NAN : (quant ? floorf(1.5f * (u + 1.0f)) : u);
        }
    return x;
}

/* Targets (nl, m) with ld: one-hot for softmax, [0, 1] for BCE, [-1, 1]
 * for MSE; NaN beyond nl. */
static float *make_t(int32_t nl, int32_t m, int32_t ld, int32_t loss, tu_lcg *g)
{
    float *t = malloc(sizeof(float) * (size_t)ld * (size_t)m);
    ck_assert_ptr_nonnull(t);
    for (int32_t j = 0; j < m; j++)
        for (int32_t i = 0; i < ld; i++) {
            float u = tu_uniform(g), v;
            if (loss == FA_LOSS_SOFTMAX_CE)
                v = i == (j * 7 + 1) % nl ? 1.0f : 0.0f;
            else if (loss == FA_LOSS_SIGMOID_BCE)
                v = 0.5f + 0.5f * u;
            else
                v = u;
            t[i + (size_t)ld * j] = i >= nl ? NAN : v;
        }
    return t;
}

/* ---------------------------------------------------- 1. against the reference */

#define DENSE(n, a) {FA_LAYER_DENSE, n, 0, 0, 0, 0, a}
#define CONV(n, kh, kw, s, p, a) {FA_LAYER_CONV2D, n, kh, kw, s, p, a}
#define MAXP(k, s) {FA_LAYER_MAXPOOL, 0, k, k, s, 0, FA_ACT_IDENTITY}
#define AVGP(k, s) {FA_LAYER_AVGPOOL, 0, k, k, s, 0, FA_ACT_IDENTITY}
#define ID FA_ACT_IDENTITY

typedef struct lcase {
    const char *name;
    int32_t c, h, w;
    int32_t L;
    rn_desc d[RN_MAX_LAYERS];
    int32_t loss;
    int quant;
} lcase;

static const lcase cases[] = {
    {"conv, 1 channel, 5x7, 3x3", 1, 5, 7, 1, {CONV(2, 3, 3, 1, 0, ID)}, FA_LOSS_MSE, 0},
    {"conv, 3 channels, 7x9, 3x5 kernel, stride 2, pad 1", 3, 7, 9, 1,
     {CONV(4, 3, 5, 2, 1, ID)}, FA_LOSS_MSE, 0},
    {"conv, 2 channels, 9x8, 2x4 kernel, stride 3, pad 1", 2, 9, 8, 1,
     {CONV(3, 2, 4, 3, 1, ID)}, FA_LOSS_MSE, 0},
    {"conv, 1x1 kernel, stride 2", 4, 5, 5, 1, {CONV(3, 1, 1, 2, 0, ID)}, FA_LOSS_MSE, 0},
    {"conv, kernel as large as the padded input", 2, 3, 3, 1, {CONV(3, 5, 5, 1, 1, ID)},
     FA_LOSS_MSE, 0},
    {"conv -> conv (3x5 kernel, stride 2, pad 2)", 2, 7, 7, 2,
     {CONV(3, 3, 3, 1, 1, ID), CONV(2, 3, 5, 2, 2, ID)}, FA_LOSS_MSE, 0},
    {"conv -> conv (2x3 kernel, stride 2)", 3, 7, 5, 2,
     {CONV(2, 2, 1, 1, 0, ID), CONV(3, 2, 3, 2, 0, ID)}, FA_LOSS_MSE, 0},
    {"conv -> maxpool 2 -> dense", 2, 6, 6, 3,
     {CONV(3, 3, 3, 1, 1, ID), MAXP(2, 0), DENSE(4, ID)}, FA_LOSS_MSE, 0},
    {"conv -> maxpool 3 stride 2 (overlapping) -> dense", 1, 7, 7, 3,
     {CONV(2, 3, 3, 1, 1, ID), MAXP(3, 2), DENSE(3, ID)}, FA_LOSS_MSE, 0},
    {"conv -> avgpool 2 -> conv", 3, 6, 6, 3,
     {CONV(2, 3, 3, 1, 1, ID), AVGP(2, 0), CONV(3, 2, 2, 1, 0, ID)}, FA_LOSS_MSE, 0},
    {"conv -> avgpool 3 stride 1 (overlapping) -> dense", 2, 5, 5, 3,
     {CONV(2, 1, 1, 1, 0, ID), AVGP(3, 1), DENSE(2, ID)}, FA_LOSS_MSE, 0},
    {"maxpool first -> dense", 3, 6, 4, 2, {MAXP(2, 0), DENSE(3, ID)}, FA_LOSS_MSE, 0},
    {"avgpool 3 stride 2 first -> conv", 2, 5, 5, 2, {AVGP(3, 2), CONV(3, 2, 2, 1, 0, ID)},
     FA_LOSS_MSE, 0},
    {"ties: integer conv -> maxpool 3 stride 1 -> dense", 2, 6, 6, 3,
     {CONV(3, 2, 2, 1, 0, ID), MAXP(3, 1), DENSE(2, ID)}, FA_LOSS_MSE, 1},
    {"ties: integer conv -> maxpool 2 -> conv", 1, 7, 7, 3,
     {CONV(2, 2, 2, 1, 1, ID), MAXP(2, 0), CONV(2, 2, 2, 1, 0, ID)}, FA_LOSS_MSE, 1},
    {"conv tanh -> maxpool -> conv relu -> avgpool -> dense, softmax", 2, 8, 8, 5,
     {CONV(3, 3, 3, 1, 1, FA_ACT_TANH), MAXP(2, 0), CONV(4, 3, 2, 1, 1, FA_ACT_RELU),
      AVGP(2, 1), DENSE(3, ID)},
     FA_LOSS_SOFTMAX_CE, 0},
    {"conv -> maxpool 2 stride 3 (gaps) -> dense", 2, 8, 8, 3,
     {CONV(2, 3, 3, 1, 1, ID), MAXP(2, 3), DENSE(3, ID)}, FA_LOSS_MSE, 0},
    {"avgpool 2 stride 3 (gaps) first -> conv", 2, 8, 8, 2,
     {AVGP(2, 3), CONV(2, 2, 2, 1, 0, ID)}, FA_LOSS_MSE, 0},
    {"conv tanh -> conv output, softmax over channels and pixels", 2, 5, 5, 2,
     {CONV(3, 3, 3, 1, 1, FA_ACT_TANH), CONV(2, 3, 3, 2, 0, ID)}, FA_LOSS_SOFTMAX_CE, 0},
    {"conv output, bce", 1, 6, 6, 1, {CONV(2, 3, 3, 1, 0, ID)}, FA_LOSS_SIGMOID_BCE, 0},
    {"conv sigmoid -> dense sigmoid, bce", 1, 5, 5, 2,
     {CONV(2, 3, 3, 2, 1, FA_ACT_SIGMOID), DENSE(2, ID)}, FA_LOSS_SIGMOID_BCE, 0},
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

/* One case at batch m with ldx = n0 + xpad. */
static void run_case(const lcase *c, int32_t m, int32_t xpad, uint64_t seed)
{
    rn_net n;
    rn_build(&n, c->c, c->h, c->w, c->d, c->L, c->loss);
    fa_net *net = rn_make_net(&n, c->c, c->h, c->w, seed);
    tu_lcg g = {seed * 7919 + 3};
    float *p = random_params(&n, &g, c->quant);
    TU_OK(fa_net_set_params(net, p, n.nparams));
    const int32_t n0 = n.ly[1].nin, nl = n.ly[n.L].nout;
    const int32_t ldx = n0 + xpad, ldt = nl + 2, ldy = nl + 1;
    float *x = make_x(n0, m, ldx, &g, c->quant);
    float *t = make_t(nl, m, ldt, c->loss, &g);
    float *y = malloc(sizeof(float) * (size_t)ldy * (size_t)m);
    float *grad = malloc(sizeof(float) * (size_t)n.nparams);
    double *yref = malloc(sizeof(double) * (size_t)nl * (size_t)m);
    double *gref = malloc(sizeof(double) * (size_t)n.nparams);
    ck_assert(y && grad && yref && gref);
    for (int32_t i = 0; i < ldy * m; i++)
        y[i] = -12345.0f; /* the rows beyond nl must stay untouched */

    double *pd = rn_to_double(p, n.nparams);
    rn_state st = {0};
    rn_forward(&n, pd, x, ldx, m, &st);
    rn_output(&n, &st, yref);

    TU_OK(fa_net_forward(net, x, ldx, m, y, ldy));
    for (int32_t j = 0; j < m; j++) {
        close_block(y + (size_t)ldy * j, yref + (size_t)nl * j, nl, RTOL, "output", c->name,
                    n.L);
        for (int32_t i = nl; i < ldy; i++)
            ck_assert_msg(y[i + (size_t)ldy * j] == -12345.0f,
                          "%s: fa_net_forward wrote y beyond row n_L", c->name);
    }

    float loss = 0, loss2 = 0;
    double lref = rn_update(&n, pd, &st, t, ldt, RN_BP, NULL, NULL, gref);
    TU_OK(fa_net_loss(net, x, ldx, t, ldt, m, &loss));
    ck_assert_msg(fabs(loss - lref) <= 1e-5 * fabs(lref) + 1e-7,
                  "%s: loss %.9g, reference %.9g", c->name, (double)loss, lref);
    TU_OK(fa_net_compute_update(net, x, ldx, t, ldt, m, grad, n.nparams, &loss2));
    ck_assert_msg(fabs(loss2 - lref) <= 1e-5 * fabs(lref) + 1e-7,
                  "%s: compute_update's loss %.9g, reference %.9g", c->name, (double)loss2,
                  lref);
    close_update(&n, grad, gref, c->name);
    /* not vacuous: the first layer with parameters gets a nonzero update */
    for (int32_t l = 1; l <= n.L; l++)
        if (rn_has_params(n.ly[l].d.kind)) {
            double s = 0;
            for (int64_t i = 0; i < (int64_t)n.ly[l].wrows * n.ly[l].wcols; i++)
                s += fabs(gref[n.ly[l].woff + i]);
            ck_assert_msg(s > 1e-3, "%s: layer %d's reference update is zero", c->name,
                          (int)l);
            break;
        }

    rn_state_free(&st);
    free(pd);
    free(p);
    free(x);
    free(t);
    free(y);
    free(grad);
    free(yref);
    free(gref);
    fa_net_free(net);
}

START_TEST(test_against_reference)
{
    const lcase *c = &cases[_i];
    run_case(c, 3, 5, 10 + (uint64_t)_i); /* batch 3, ldx = n0 + 5 */
    run_case(c, 1, 0, 40 + (uint64_t)_i); /* one sample, ldx = n0 */
}
END_TEST

/* The ties cases really have ties: at least one max-pool window of the
 * integer conv outputs holds its maximum twice, in every sample. */
START_TEST(test_ties_are_ties)
{
    for (int ci = 0; ci < N_CASES; ci++) {
        const lcase *c = &cases[ci];
        if (!c->quant)
            continue;
        rn_net n;
        rn_build(&n, c->c, c->h, c->w, c->d, c->L, c->loss);
        tu_lcg g = {(10 + (uint64_t)ci) * 7919 + 3}; /* as run_case, batch 3 */
        float *p = random_params(&n, &g, 1);
        const int32_t n0 = n.ly[1].nin;
        float *x = make_x(n0, 3, n0 + 5, &g, 1);
        double *pd = rn_to_double(p, n.nparams);
        rn_state st = {0};
        rn_forward(&n, pd, x, n0 + 5, 3, &st);
        const rn_layer *pl = &n.ly[2];
        ck_assert_int_eq(pl->d.kind, FA_LAYER_MAXPOOL);
        for (int32_t j = 0; j < 3; j++) {
            int ties = 0;
            const double *in = st.z[1] + (size_t)pl->nin * j;
            for (int32_t o = 0; o < pl->nout; o++) {
                int32_t co = o % pl->oc, pix = o / pl->oc, ox = pix % pl->ow, oy = pix / pl->ow;
                int cnt = 0;
                double mx = st.a[2][o + (size_t)pl->nout * j];
                for (int32_t ky = 0; ky < pl->d.kh; ky++)
                    for (int32_t kx = 0; kx < pl->d.kh; kx++)
                        cnt += in[co + pl->ic * (ox * pl->d.stride + kx +
                                                 pl->iw * (oy * pl->d.stride + ky))] == mx;
                ties += cnt > 1;
            }
            ck_assert_msg(ties > 0, "%s: sample %d has no tied window", c->name, (int)j);
        }
        rn_state_free(&st);
        free(pd);
        free(p);
        free(x);
    }
}
END_TEST

/* ------------------------------------------------ 2. max-pool ties by hand */

/* 3 channels of a 3x3 image, 2x2 windows with stride 1 (four overlapping
 * windows), called through the layer table.
 *   channel 0: all 0 -> every window ties everywhere; the first pixel in
 *              row-by-row order is the window's top-left, so each error
 *              goes to the top-left of its own window.
 *   channel 1: 5 at the centre, 0 elsewhere -> every window holds the
 *              centre: all four errors accumulate there.
 *   channel 2: rows (1 2 2 / 2 0 2 / 0 2 1): window (0,0) has 2 at (0,1)
 *              and (1,0): (0,1) is first; window (0,1) = (2 2 / 0 2): (0,1);
 *              window (1,0) = (2 0 / 0 2): (1,0); window (1,1) =
 *              (0 2 / 2 1): (1,2).
 * dz = 1, 2, 3, 4 for the windows (0,0), (0,1), (1,0), (1,1) in every
 * channel (times 10^c to tell channels apart). */
START_TEST(test_maxpool_ties_by_hand)
{
    fa_layer ly;
    fa_layer_spec s = {FA_LAYER_MAXPOOL, 0, 2, 2, 1, 0, FA_ACT_IDENTITY};
    TU_OK(fa_layer_resolve(&ly, &s, 3, 3, 3, "test", "maxpool"));
    ck_assert_int_eq(ly.n_out, 12);
    const float img[3][3][3] = {
        /* [y][x][c] */
        {{0, 0, 1}, {0, 0, 2}, {0, 0, 2}},
        {{0, 0, 2}, {0, 5, 0}, {0, 0, 2}},
        {{0, 0, 0}, {0, 0, 2}, {0, 0, 1}},
    };
    /* two samples, the second the first plus 1, with ldx = 27 + 2 */
    float x[2 * 29];
    for (int j = 0; j < 2; j++) {
        memcpy(x + 29 * j, img, sizeof img);
        for (int i = 0; i < 27; i++)
            x[29 * j + i] += (float)j;
        x[29 * j + 27] = x[29 * j + 28] = NAN;
    }
    float z[24], dz[24], dx[54];
    int32_t idx[24];
    ck_assert_int_eq(ly.ops->idx_count(&ly), 12);
    ly.ops->forward(&ly, NULL, x, 29, 2, z, NULL, idx);
    const float zwant[12] = {0, 5, 2, 0, 5, 2, 0, 5, 2, 0, 5, 2};
    for (int j = 0; j < 2; j++)
        for (int i = 0; i < 12; i++)
            ck_assert_msg(z[12 * j + i] == zwant[i] + (float)j, "sample %d output %d: %g", j, i,
                          (double)z[12 * j + i]);
    for (int j = 0; j < 2; j++)
        for (int w = 0; w < 4; w++)
            for (int c = 0; c < 3; c++)
                dz[12 * j + 3 * w + c] = (float)(w + 1) * powf(10.0f, (float)c);
    ly.ops->backward(&ly, NULL, dz, 2, dx, NULL, idx);
    /* expected dx[y][x][c] */
    float want[3][3][3] = {{{0}}};
    /* channel 0: window (wy,wx) -> its top-left (wy,wx) */
    want[0][0][0] = 1;
    want[0][1][0] = 2;
    want[1][0][0] = 3;
    want[1][1][0] = 4;
    /* channel 1: all to the centre */
    want[1][1][1] = 10 + 20 + 30 + 40;
    /* channel 2: windows 1 and 2 -> (0,1); window 3 -> (1,0); window 4 -> (1,2) */
    want[0][1][2] = 100 + 200;
    want[1][0][2] = 300;
    want[1][2][2] = 400;
    for (int j = 0; j < 2; j++)
        for (int i = 0; i < 27; i++)
            ck_assert_msg(dx[27 * j + i] == (&want[0][0][0])[i],
                          "sample %d: dx at y=%d x=%d c=%d is %g, expected %g", j, i / 9,
                          (i / 3) % 3, i % 3, (double)dx[27 * j + i],
                          (double)(&want[0][0][0])[i]);
}
END_TEST

/* --------------------------------------- 3. every rule against the reference */

/* The net for the rule tests: conv -> maxpool -> conv (rectangular,
 * padded) -> avgpool (overlapping) -> dense, softmax. */
static const rn_desc rule_net[] = {
    CONV(3, 3, 3, 1, 1, FA_ACT_TANH), MAXP(2, 0), CONV(4, 3, 2, 1, 1, FA_ACT_RELU),
    AVGP(2, 1), DENSE(3, ID)};
#define RULE_NET_L 5
#define RC 2
#define RH 8
#define RW 8
#define RB 4

static double sgn(double v)
{
    return v > 0 ? 1.0 : (v < 0 ? -1.0 : 0.0);
}

START_TEST(test_rule_against_reference)
{
    const int32_t rule = _i;
    rn_net n;
    rn_build(&n, RC, RH, RW, rule_net, RULE_NET_L, FA_LOSS_SOFTMAX_CE);
    fa_net *net = rn_make_net(&n, RC, RH, RW, 77);
    tu_lcg g = {123};
    float *p = random_params(&n, &g, 0);
    TU_OK(fa_net_set_params(net, p, n.nparams));
    const int32_t n0 = n.ly[1].nin, nl = n.ly[n.L].nout;
    float *x = make_x(n0, RB, n0 + 1, &g, 0), *t = make_t(nl, RB, nl, FA_LOSS_SOFTMAX_CE, &g);
    float *grad = malloc(sizeof(float) * (size_t)n.nparams);
    double *gref = malloc(sizeof(double) * (size_t)n.nparams);
    double *fb = calloc((size_t)n.nparams, sizeof(double));
    double *G[RN_MAX_LAYERS + 1] = {0};
    ck_assert(grad && gref && fb);
    TU_OK(fa_net_set_rule(net, rule));
    int32_t kind = 0;
    TU_OK(fa_rule_info(rule, &kind, NULL, NULL, NULL));

    /* The rule's matrices as the library holds them. */
    for (int32_t l = 1; l <= n.L; l++) {
        const rn_layer *ly = &n.ly[l];
        if (!rn_has_params(ly->d.kind))
            continue;
        int32_t r = 0, cc = 0;
        if (kind == FA_FEEDBACK_LAYER && l >= 2) {
            const int64_t len = (int64_t)ly->wrows * ly->wcols;
            TU_OK(fa_net_feedback_shape(net, rule, l, &r, &cc));
            ck_assert(r == ly->wrows && cc == ly->wcols);
            float *buf = malloc(sizeof(float) * (size_t)len);
            ck_assert_ptr_nonnull(buf);
            TU_OK(fa_net_get_feedback(net, rule, l, buf, len));
            /* USF: s sign(W), s from the header's conv fans */
            double fin = ly->d.kind == FA_LAYER_CONV2D ? (double)ly->ic * ly->d.kh * ly->d.kw
                                                       : ly->nin;
            double fout = ly->d.kind == FA_LAYER_CONV2D ? (double)ly->oc * ly->d.kh * ly->d.kw
                                                        : ly->nout;
            for (int64_t i = 0; i < len; i++) {
                const double w = p[ly->woff + i];
                if (rule == FA_RULE_USF) {
                    const double want = sqrt(2.0 / (fin + fout)) * sgn(w);
                    ck_assert_msg(fabs(buf[i] - want) <= 1e-6 * fabs(want),
                                  "USF layer %d: %g, expected %g", (int)l, (double)buf[i], want);
                    fb[ly->woff + i] = want;
                } else if (rule == FA_RULE_BRSF || rule == FA_RULE_FRSF) {
                    fb[ly->woff + i] = fabs((double)buf[i]) * sgn(w);
                } else {
                    fb[ly->woff + i] = buf[i];
                }
            }
            free(buf);
        } else if (kind == FA_FEEDBACK_DIRECT && l < n.L) {
            TU_OK(fa_net_feedback_shape(net, rule, l, &r, &cc));
            ck_assert(r == nl && cc == ly->nout);
            float *buf = malloc(sizeof(float) * (size_t)nl * (size_t)ly->nout);
            ck_assert_ptr_nonnull(buf);
            TU_OK(fa_net_get_feedback(net, rule, l, buf, (int64_t)nl * ly->nout));
            G[l] = rn_to_double(buf, (int64_t)nl * ly->nout);
            free(buf);
        }
    }

    double *pd = rn_to_double(p, n.nparams);
    rn_state st = {0};
    rn_forward(&n, pd, x, n0 + 1, RB, &st);
    if (rule == FA_RULE_SDFA || rule == FA_RULE_DRTP) {
        /* the direct signal is sign(e)/m (SDFA) or T/m (DRTP) instead of
         * e: the output layer's update is BP's, the hidden ones are built
         * here as delta_l = (G_l^T s) .* f'(A_l) */
        double *e = malloc(sizeof(double) * (size_t)nl * RB);
        ck_assert_ptr_nonnull(e);
        rn_loss(&n, &st, t, nl, e);
        for (int32_t i = 0; i < nl * RB; i++)
            e[i] = rule == FA_RULE_SDFA ? sgn(e[i]) / RB : (double)t[i] / RB;
        /* output layer: the BP update; hidden layers: delta = (G^T s) .* f' */
        rn_update(&n, pd, &st, t, nl, RN_BP, NULL, NULL, gref);
        for (int32_t l = 1; l < n.L; l++) {
            const rn_layer *ly = &n.ly[l];
            if (!rn_has_params(ly->d.kind))
                continue;
            memset(gref + ly->woff, 0,
                   sizeof(double) * (size_t)((int64_t)ly->wrows * ly->wcols + ly->wrows));
            double *d = malloc(sizeof(double) * (size_t)ly->nout);
            ck_assert_ptr_nonnull(d);
            for (int32_t j = 0; j < RB; j++) {
                for (int32_t k = 0; k < ly->nout; k++) {
                    double s = 0;
                    for (int32_t i = 0; i < nl; i++)
                        s += G[l][i + (int64_t)nl * k] * e[i + nl * j];
                    d[k] = s * rn_dact(ly->d.act, n.slope, st.a[l][k + (size_t)ly->nout * j]);
                }
                rn_layer_wgrad(ly, st.z[l - 1] + (size_t)ly->nin * j, d, gref + ly->woff,
                               gref + ly->boff);
            }
            free(d);
        }
        free(e);
    } else if (rule == FA_RULE_SHALLOW) {
        rn_update(&n, pd, &st, t, nl, RN_BP, NULL, NULL, gref);
        memset(gref, 0, sizeof(double) * (size_t)n.ly[n.L].woff);
    } else {
        int mode = kind == FA_FEEDBACK_LAYER ? RN_LAYER
                   : kind == FA_FEEDBACK_DIRECT ? RN_DIRECT
                                                : RN_BP;
        rn_update(&n, pd, &st, t, nl, mode, fb, (const double *const *)G, gref);
    }
    TU_OK(fa_net_compute_update(net, x, n0 + 1, t, nl, RB, grad, n.nparams, NULL));
    char name[64];
    snprintf(name, sizeof name, "rule %s", fa_enum_name(FA_ENUM_RULE, rule));
    close_update(&n, grad, gref, name);
    if (rule != FA_RULE_SHALLOW) { /* the first layer learns */
        double s = 0;
        for (int32_t i = 0; i < n.ly[1].wrows * n.ly[1].wcols; i++)
            s += fabs(gref[i]);
        ck_assert_msg(s > 1e-4, "%s: the reference update of layer 1 is zero", name);
    }

    rn_state_free(&st);
    for (int32_t l = 0; l <= RN_MAX_LAYERS; l++)
        free(G[l]);
    free(pd);
    free(p);
    free(x);
    free(t);
    free(grad);
    free(gref);
    free(fb);
    fa_net_free(net);
}
END_TEST

/* ------------------------------------------------- 4. equivalences with BP */

/* Update of the net under `rule` for fixed data. */
static void update_of(fa_net *net, int32_t rule, const float *x, int32_t ldx, const float *t,
                      int32_t ldt, int32_t m, float *grad, int64_t np)
{
    TU_OK(fa_net_set_rule(net, rule));
    TU_OK(fa_net_compute_update(net, x, ldx, t, ldt, m, grad, np, NULL));
}

/* Two updates agree to float rounding: |a - b| <= 1e-5 max|b| per layer
 * block (the same operations on the same values, up to where sums are
 * formed; in practice the differences are zero or a few ulps). */
static void agree(const fa_net *net, const float *a, const float *b, const char *what)
{
    int32_t L = 0;
    TU_OK(fa_net_num_layers(net, &L));
    for (int32_t l = 1; l <= L; l++) {
        int64_t wo, bo, end;
        int32_t r, c;
        TU_OK(fa_net_layer_offsets(net, l, &wo, &bo));
        TU_OK(fa_net_weight_shape(net, l, &r, &c));
        end = bo + r;
        double scale = 0, sw = 0;
        for (int64_t i = wo; i < end; i++) {
            scale = fabs(b[i]) > scale ? fabs(b[i]) : scale;
            sw += fabs(b[i]);
        }
        for (int64_t i = wo; i < end; i++)
            TU_CHECK(fabs(a[i] - b[i]) <= 1e-5 * scale, "%s: layer %d, entry %lld: %.9g vs BP %.9g",
                     what, (int)l, (long long)(i - wo), (double)a[i], (double)b[i]);
        ck_assert_msg(r == 0 || sw > 0, "%s: layer %d's BP update is zero", what, (int)l);
    }
}

/* The rule-test network (rule_net) with random parameters p, a batch x, t
 * of RB samples, and BP's update of it in bp; got is room for another. */
typedef struct rule_case {
    rn_net n;
    fa_net *net;
    float *p, *x, *t, *bp, *got;
    int32_t n0, nl;
} rule_case;

static void rule_case_setup(rule_case *c)
{
    rn_build(&c->n, RC, RH, RW, rule_net, RULE_NET_L, FA_LOSS_SOFTMAX_CE);
    c->net = rn_make_net(&c->n, RC, RH, RW, 5);
    tu_lcg g = {99};
    c->p = random_params(&c->n, &g, 0);
    TU_OK(fa_net_set_params(c->net, c->p, c->n.nparams));
    c->n0 = c->n.ly[1].nin;
    c->nl = c->n.ly[c->n.L].nout;
    c->x = make_x(c->n0, RB, c->n0, &g, 0);
    c->t = make_t(c->nl, RB, c->nl, FA_LOSS_SOFTMAX_CE, &g);
    c->bp = malloc(sizeof(float) * (size_t)c->n.nparams);
    c->got = malloc(sizeof(float) * (size_t)c->n.nparams);
    ck_assert(c->bp && c->got);
    update_of(c->net, FA_RULE_BP, c->x, c->n0, c->t, c->nl, RB, c->bp, c->n.nparams);
}

static void rule_case_free(rule_case *c)
{
    free(c->p);
    free(c->x);
    free(c->t);
    free(c->bp);
    free(c->got);
    fa_net_free(c->net);
}

/* Angles (n of them) are ~0 where want is 0 and NaN where want is NaN:
 * updates equal to rounding give acos(1 - ~1e-7), a few hundredths of a
 * degree. */
static void angles_like(const float *got, const float *want, int n, const char *what)
{
    for (int i = 0; i < n; i++) {
        if (isnan(want[i]))
            ck_assert_msg(isnan(got[i]), "%s: angle %d is %g, expected NaN", what, i,
                          (double)got[i]);
        else
            ck_assert_msg(fabs(got[i] - want[i]) < 0.5, "%s: angle %d is %g, expected %g",
                          what, i, (double)got[i], (double)want[i]);
    }
}

START_TEST(test_layer_feedback_equals_bp)
{
    rule_case c;
    rule_case_setup(&c);
    const rn_net n = c.n;
    fa_net *net = c.net;
    float *p = c.p, *x = c.x, *t = c.t, *bp = c.bp, *got = c.got;
    const int32_t n0 = c.n0, nl = c.nl;

    /* FA, KP, WM with B_l := W_l; FRSF and BRSF with M_l := W_l (|M| .*
     * sign(W) = W) */
    const int32_t rules[] = {FA_RULE_FA, FA_RULE_KP, FA_RULE_WM, FA_RULE_FRSF, FA_RULE_BRSF};
    for (size_t k = 0; k < sizeof rules / sizeof rules[0]; k++) {
        for (int32_t l = 2; l <= n.L; l++)
            if (rn_has_params(n.ly[l].d.kind))
                TU_OK(fa_net_set_feedback(net, rules[k], l, p + n.ly[l].woff,
                                          (int64_t)n.ly[l].wrows * n.ly[l].wcols));
        update_of(net, rules[k], x, n0, t, nl, RB, got, n.nparams);
        agree(net, got, bp, fa_enum_name(FA_ENUM_RULE, rules[k]));
        /* the diagnostics agree: hidden updates at 0 degrees from BP's,
         * feedback at 0 degrees from W; pooling layers NaN */
        float ang[RULE_NET_L - 1];
        const float nan = NAN;
        const float want_align[RULE_NET_L - 1] = {0, nan, 0, nan};
        const float want_fb[RULE_NET_L - 1] = {nan, 0, nan, 0}; /* layers 2..5 */
        TU_OK(fa_net_alignment(net, x, n0, t, nl, RB, ang, RULE_NET_L - 1));
        angles_like(ang, want_align, RULE_NET_L - 1, "fa_net_alignment");
        TU_OK(fa_net_feedback_angles(net, rules[k], ang, RULE_NET_L - 1));
        angles_like(ang, want_fb, RULE_NET_L - 1, "fa_net_feedback_angles");
    }

    /* USF: B = s_l sign(W_l); with every W_l (l >= 2) entry +-s_l it is W_l */
    float *q = malloc(sizeof(float) * (size_t)n.nparams);
    ck_assert_ptr_nonnull(q);
    memcpy(q, p, sizeof(float) * (size_t)n.nparams);
    for (int32_t l = 2; l <= n.L; l++) {
        const rn_layer *ly = &n.ly[l];
        if (!rn_has_params(ly->d.kind))
            continue;
        double fin = ly->d.kind == FA_LAYER_CONV2D ? (double)ly->ic * ly->d.kh * ly->d.kw
                                                   : ly->nin;
        double fout = ly->d.kind == FA_LAYER_CONV2D ? (double)ly->oc * ly->d.kh * ly->d.kw
                                                    : ly->nout;
        const float s = (float)sqrt(2.0 / (fin + fout));
        for (int64_t i = 0; i < (int64_t)ly->wrows * ly->wcols; i++)
            q[ly->woff + i] = q[ly->woff + i] >= 0 ? s : -s;
    }
    TU_OK(fa_net_set_params(net, q, n.nparams));
    update_of(net, FA_RULE_BP, x, n0, t, nl, RB, bp, n.nparams);
    update_of(net, FA_RULE_USF, x, n0, t, nl, RB, got, n.nparams);
    agree(net, got, bp, "usf with W = +-s");

    free(q);
    rule_case_free(&c);
}
END_TEST

/* The same rules with their own random feedback differ from BP in the
 * hidden layers: the equivalences above are not vacuous. */
START_TEST(test_random_feedback_differs)
{
    rule_case c;
    rule_case_setup(&c);
    const rn_net n = c.n; /* a copy: plain data */
    fa_net *net = c.net;
    float *x = c.x, *t = c.t, *bp = c.bp, *got = c.got;
    const int32_t n0 = c.n0, nl = c.nl;
    for (int32_t rule = 1; rule < fa_enum_count(FA_ENUM_RULE); rule++) {
        update_of(net, rule, x, n0, t, nl, RB, got, n.nparams);
        double diff = 0, norm = 0;
        for (int64_t i = 0; i < n.ly[1].boff; i++) { /* W_1 */
            diff += fabs(got[i] - bp[i]);
            norm += fabs(bp[i]);
        }
        ck_assert_msg(diff > 1e-2 * norm, "rule %s: W_1's update equals BP's (%g of %g)",
                      fa_enum_name(FA_ENUM_RULE, rule), diff, norm);
        /* every rule but SHALLOW changes only the hidden updates; the
         * output layer's is BP's for all */
        const rn_layer *out = &n.ly[n.L];
        for (int64_t i = out->woff; i < out->boff + out->wrows; i++)
            ck_assert_msg(got[i] == bp[i], "rule %s: the output layer's update differs",
                          fa_enum_name(FA_ENUM_RULE, rule));
    }
    rule_case_free(&c);
}
END_TEST

/* DFA's delta_1 = (G_1^T e) .* f'(A_1).  BP's is (J_{>1}^T e) .* f'(A_1)
 * with J_{>1} the Jacobian of everything above layer 1 at A_L's input; if
 * that is linear and fixed -- a dense output layer, W_2, possibly after an
 * average pool P -- then G_1 := W_2 (or W_3 P), an (n_L, n_1) matrix whose
 * columns are layer 1's outputs in the image layout, gives BP exactly. */
START_TEST(test_dfa_equals_bp)
{
    const rn_desc direct[] = {CONV(3, 3, 2, 2, 1, FA_ACT_TANH), DENSE(4, ID)};
    const rn_desc pooled[] = {CONV(3, 3, 3, 1, 1, FA_ACT_SIGMOID), AVGP(2, 0), DENSE(4, ID)};
    for (int variant = 0; variant < 2; variant++) {
        rn_net n;
        if (variant == 0)
            rn_build(&n, 2, 7, 6, direct, 2, FA_LOSS_MSE);
        else
            rn_build(&n, 2, 6, 6, pooled, 3, FA_LOSS_MSE);
        fa_net *net = rn_make_net(&n, 2, n.ly[1].ih, n.ly[1].iw, 8);
        tu_lcg g = {31 + (uint64_t)variant};
        float *p = random_params(&n, &g, 0);
        TU_OK(fa_net_set_params(net, p, n.nparams));
        const int32_t n0 = n.ly[1].nin, nl = n.ly[n.L].nout, n1 = n.ly[1].nout;
        float *x = make_x(n0, RB, n0, &g, 0), *t = make_t(nl, RB, nl, FA_LOSS_MSE, &g);
        float *bp = malloc(sizeof(float) * (size_t)n.nparams);
        float *got = malloc(sizeof(float) * (size_t)n.nparams);
        float *G = malloc(sizeof(float) * (size_t)nl * (size_t)n1);
        ck_assert(bp && got && G);
        const rn_layer *out = &n.ly[n.L];
        if (variant == 0) {
            memcpy(G, p + out->woff, sizeof(float) * (size_t)nl * (size_t)n1);
        } else {
            /* G = W_3 P, P (n_2, n_1): output o of the pool averages the
             * 2x2 window of its channel */
            const rn_layer *pl = &n.ly[2];
            for (int32_t i = 0; i < nl; i++)
                for (int32_t k = 0; k < n1; k++) {
                    int32_t c = k % pl->ic, pix = k / pl->ic, ix = pix % pl->iw,
                            iy = pix / pl->iw;
                    int32_t o = c + pl->oc * (ix / 2 + pl->ow * (iy / 2));
                    G[i + nl * k] = (float)(p[out->woff + i + (int64_t)nl * o] / 4.0);
                }
        }
        TU_OK(fa_net_set_feedback(net, FA_RULE_DFA, 1, G, (int64_t)nl * n1));
        update_of(net, FA_RULE_BP, x, n0, t, nl, RB, bp, n.nparams);
        update_of(net, FA_RULE_DFA, x, n0, t, nl, RB, got, n.nparams);
        agree(net, got, bp, variant ? "dfa, G_1 = W_3 P" : "dfa, G_1 = W_2");
        /* the alignment with BP is 0 (pooling: NaN); the feedback angle of
         * G_1 against W_2 is 0, and NaN when the path crosses the pool */
        float ang[2];
        TU_OK(fa_net_alignment(net, x, n0, t, nl, RB, ang, n.L - 1));
        const float want_align[2] = {0, NAN};
        angles_like(ang, want_align, n.L - 1, "fa_net_alignment");
        TU_OK(fa_net_feedback_angles(net, FA_RULE_DFA, ang, n.L - 1));
        const float want_fb[2][2] = {{0, 0}, {NAN, NAN}};
        angles_like(ang, want_fb[variant], n.L - 1, "fa_net_feedback_angles");
        /* before the activation (Breloff's variant) it is not BP */
        TU_OK(fa_net_set_dfa_variant(net, FA_DFA_BEFORE_ACTIVATION));
        update_of(net, FA_RULE_DFA, x, n0, t, nl, RB, got, n.nparams);
        double diff = 0;
        for (int64_t i = 0; i < n.ly[1].boff; i++)
            diff += fabs(got[i] - bp[i]);
        ck_assert_msg(diff > 1e-4, "dfa before the activation equals BP");
        free(p);
        free(x);
        free(t);
        free(bp);
        free(got);
        free(G);
        fa_net_free(net);
    }
}
END_TEST

/* Weight mirrors on conv layers.  The header: with X a (fan_in, k) matrix
 * of N(0, sigma^2) noise fed to the layer's linear part (for a convolution
 * through its lowering, fan_in = C_in*kh*kw), B_l <- B_l + eta (1/k) Y X^T
 * - lambda B_l tends to (eta sigma^2 / lambda) W_l, which is W_l at the
 * defaults.  With W fixed (zero updates, no weight decay) 1000 mirror steps
 * leave (1 - lambda)^1000 = 4e-5 of the random start; the average of about
 * 1/lambda = 100 steps of k = 64 noise samples each leaves a few percent of
 * noise per entry and far less in <B,W>/|W|^2 and the cosine (measured on
 * a dense layer: 1.002 and 0.9997).  A conv layer whose noise entered as
 * whole images would mirror H_out*W_out times W (more than 10 here), and
 * less at the padded borders. */
START_TEST(test_weight_mirror_conv)
{
    fa_spec *spec = NULL;
    fa_net *net = NULL;
    TU_OK(fa_spec_create(&spec, 2, 6, 6));
    TU_OK(fa_spec_add_conv2d(spec, 3, 3, 3, 1, 0, FA_ACT_TANH));  /* 3x4x4 */
    TU_OK(fa_spec_add_conv2d(spec, 2, 3, 2, 1, 1, FA_ACT_TANH));  /* 2x4x5, padded */
    TU_OK(fa_spec_add_conv2d(spec, 3, 2, 3, 2, 0, FA_ACT_TANH));  /* 3x2x2, stride 2 */
    TU_OK(fa_spec_add_dense(spec, 4, FA_ACT_IDENTITY));
    TU_OK(fa_net_create_from_spec(&net, spec, FA_LOSS_MSE, 3));
    fa_spec_free(spec);
    TU_OK(fa_net_set_rule(net, FA_RULE_WM));
    const int64_t n = tu_param_count(net);
    float *zero = calloc((size_t)n, sizeof(float));
    ck_assert_ptr_nonnull(zero);
    float *w0 = tu_params(net);
    for (int k = 0; k < 1000; k++)
        TU_OK(fa_net_apply_update(net, zero, n));
    float *w = tu_params(net);
    ck_assert_msg(memcmp(w, w0, (size_t)n * sizeof(float)) == 0, "zero updates changed W");
    for (int32_t l = 2; l <= 4; l++) {
        int64_t wo, bo;
        int32_t r, c;
        TU_OK(fa_net_layer_offsets(net, l, &wo, &bo));
        TU_OK(fa_net_weight_shape(net, l, &r, &c));
        const int64_t len = (int64_t)r * c;
        float *B = malloc(sizeof(float) * (size_t)len);
        ck_assert_ptr_nonnull(B);
        TU_OK(fa_net_get_feedback(net, FA_RULE_WM, l, B, len));
        double bw = 0, ww = 0, bb = 0;
        for (int64_t i = 0; i < len; i++) {
            bw += (double)B[i] * w[wo + i];
            ww += (double)w[wo + i] * w[wo + i];
            bb += (double)B[i] * B[i];
        }
        const double ratio = bw / ww, cosine = bw / sqrt(bb * ww);
        ck_assert_msg(ratio > 0.9 && ratio < 1.1 && cosine > 0.98,
                      "layer %d: weight mirror B = %.3f W (cosine %.4f), expected B ~ W", (int)l,
                      ratio, cosine);
        free(B);
    }
    free(w);
    free(w0);
    free(zero);
    fa_net_free(net);
}
END_TEST

/* ------------------------------------------------- 5. every rule learns */

/* Oriented bars: 1x8x8 images, background noise U[-0.2, 0.2], plus a bar of
 * 5 pixels of intensity U[0.6, 1.0] at a random position: class 0
 * horizontal, 1 vertical, 2 diagonal (down-right), 3 anti-diagonal; classes
 * in turn, so every batch of 16 holds 4 of each.  From the test's own
 * generator (tu_lcg), never the library's RNG. */
#define BS 8
#define BLEN 5
#define NTRAIN 256
#define NTEST 128
#define LBATCH 16
#define LSTEPS 200

static void bars(tu_lcg *g, float *x, float *t, int n)
{
    for (int j = 0; j < n; j++) {
        const int cls = j % 4;
        float *im = x + BS * BS * j;
        for (int i = 0; i < BS * BS; i++)
            im[i] = 0.2f * tu_uniform(g);
        const int a = (int)((tu_uniform(g) + 1) * 0.5f * BS);
        const int b = (int)((tu_uniform(g) + 1) * 0.5f * (BS - BLEN + 1));
        const int c = (int)((tu_uniform(g) + 1) * 0.5f * (BS - BLEN + 1));
        const float v = 0.8f + 0.2f * tu_uniform(g);
        for (int i = 0; i < BLEN; i++) {
            int y, xx;
            if (cls == 0) {
                y = a;
                xx = b + i;
            } else if (cls == 1) {
                y = b + i;
                xx = a;
            } else if (cls == 2) {
                y = b + i;
                xx = c + i;
            } else {
                y = b + i;
                xx = c + BLEN - 1 - i;
            }
            im[xx + BS * y] += v;
        }
        for (int k = 0; k < 4; k++)
            t[k + 4 * j] = k == cls ? 1.0f : 0.0f;
    }
}

/* Per-rule thresholds on the held-out set after LSTEPS Adam steps (lr
 * 0.01, batch 16) of "1x8x8-c6k3p1-m4-4" (relu conv, 4x4 max-pool, softmax)
 * from network seed 1: minimum accuracy and maximum mean loss (chance: 0.25
 * and ln 4 = 1.386).  Calibrated with this generator on 60 runs: network
 * seeds 1..30 on the data of seed 2024 (the data used here), and seeds
 * 100..109 on the data of seeds 7, 99 and 31337.  Worst cases seen
 * (accuracy / loss): BP 0.953/0.107, USF 0.961/0.140, BRSF 0.953/0.167,
 * FRSF 0.953/0.154, KP 0.969/0.121, WM 0.969/0.122, FA 0.914/0.372, DFA
 * 0.750/0.624, DRTP 0.688/0.818, SDFA 0.594/0.941, SHALLOW (fixed random
 * conv features) 0.727/0.818.  Each threshold leaves a margin of 7-11
 * accuracy points and 0.15-0.2 of loss beyond that worst case.  The direct
 * rules are weak on convolutions (their feedback to a conv layer ignores
 * the weight sharing and the pooling), as in the literature, but every one
 * of them still learns far beyond chance.  One network seed per rule keeps
 * the run short under valgrind (200 steps of batch 16: about a fifth of a
 * second natively for all eleven rules). */
static const struct {
    double acc, loss;
} learn_min[FA_N_RULES] = {
    [FA_RULE_BP] = {0.88, 0.30},   [FA_RULE_FA] = {0.84, 0.55},
    [FA_RULE_DFA] = {0.65, 0.80},  [FA_RULE_USF] = {0.88, 0.30},
    [FA_RULE_BRSF] = {0.88, 0.30}, [FA_RULE_FRSF] = {0.88, 0.30},
    [FA_RULE_KP] = {0.88, 0.30},   [FA_RULE_WM] = {0.88, 0.30},
    [FA_RULE_DRTP] = {0.58, 1.00}, [FA_RULE_SDFA] = {0.50, 1.10},
    [FA_RULE_SHALLOW] = {0.62, 1.00},
};

START_TEST(test_rule_learns_bars)
{
    static float xtr[BS * BS * NTRAIN], ttr[4 * NTRAIN], xte[BS * BS * NTEST],
        tte[4 * NTEST], y[4 * NTEST];
    const int32_t rule = _i;
    ck_assert_int_eq(fa_enum_count(FA_ENUM_RULE), FA_N_RULES);
    tu_lcg g = {2024};
    bars(&g, xtr, ttr, NTRAIN);
    bars(&g, xte, tte, NTEST);
    for (uint64_t seed = 1; seed <= 1; seed++) {
        fa_spec *spec = NULL;
        fa_net *net = NULL;
        TU_OK(fa_spec_parse(&spec, "1x8x8-c6k3p1-m4-4", FA_ACT_RELU, FA_ACT_IDENTITY));
        TU_OK(fa_net_create_from_spec(&net, spec, FA_LOSS_SOFTMAX_CE, seed));
        fa_spec_free(spec);
        TU_OK(fa_net_set_rule(net, rule));
        TU_OK(fa_net_set_optimizer(net, FA_OPT_ADAM));
        TU_OK(fa_net_set_hparam(net, FA_HP_LR, 0.01));
        float first = 0, loss = 0;
        TU_OK(fa_net_loss(net, xte, BS * BS, tte, 4, NTEST, &first));
        for (int k = 0; k < LSTEPS; k++) {
            const int b0 = (k % (NTRAIN / LBATCH)) * LBATCH;
            TU_OK(fa_net_train_step(net, xtr + BS * BS * b0, BS * BS, ttr + 4 * b0, 4, LBATCH,
                                    NULL));
        }
        TU_OK(fa_net_loss(net, xte, BS * BS, tte, 4, NTEST, &loss));
        TU_OK(fa_net_forward(net, xte, BS * BS, NTEST, y, 4));
        int right = 0;
        for (int j = 0; j < NTEST; j++) {
            int am = 0;
            for (int k = 1; k < 4; k++)
                am = y[k + 4 * j] > y[am + 4 * j] ? k : am;
            right += tte[am + 4 * j] > 0.5f;
        }
        const double acc = (double)right / NTEST;
        ck_assert_msg(first > 1.2f, "rule %s seed %d: initial loss %g is already low",
                      fa_enum_name(FA_ENUM_RULE, rule), (int)seed, (double)first);
        ck_assert_msg(acc >= learn_min[rule].acc && loss <= learn_min[rule].loss,
                      "rule %s seed %d: held-out accuracy %.3f (want >= %.2f), loss %.3f "
                      "(want <= %.2f, from %.3f)",
                      fa_enum_name(FA_ENUM_RULE, rule), (int)seed, acc, learn_min[rule].acc,
                      (double)loss, learn_min[rule].loss, (double)first);
        fa_net_free(net);
    }
}
END_TEST

static Suite *layers_suite(void)
{
    Suite *s = suite_create("layers");
    TCase *tc = tcase_create("reference");
    tcase_add_loop_test(tc, test_against_reference, 0, N_CASES);
    tcase_add_test(tc, test_ties_are_ties);
    tcase_add_test(tc, test_maxpool_ties_by_hand);
    suite_add_tcase(s, tc);
    tc = tcase_create("rules");
    tcase_add_loop_test(tc, test_rule_against_reference, 0, FA_N_RULES);
    tcase_add_test(tc, test_layer_feedback_equals_bp);
    tcase_add_test(tc, test_random_feedback_differs);
    tcase_add_test(tc, test_dfa_equals_bp);
    tcase_add_test(tc, test_weight_mirror_conv);
    suite_add_tcase(s, tc);
    tc = tcase_create("learning");
    tcase_add_loop_test(tc, test_rule_learns_bars, 0, FA_N_RULES);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(layers_suite());
}
