/*
 * test_loss.c -- fa_loss_eval and the loss links against the float64
 * values of tests/gen_known_answers.py: value and dL/dy for each loss,
 * leading dimensions larger than n, NULL outputs, and logits of +-1000
 * where a naive exp() overflows.
 */
#include "internal.h"
#include "known_answers.h"
#include "testutil.h"

#define SENTINEL 4242.0f
#define MAXN 64

START_TEST(test_known)
{
    const ka_loss_case *c = &ka_loss_cases[_i];
    int32_t n = c->n, b = c->batch;
    int32_t ldy = n + 2, ldt = n + 1, lddy = n + 3;
    float y[MAXN], t[MAXN], dy[MAXN];
    for (int k = 0; k < MAXN; k++)
        y[k] = t[k] = dy[k] = SENTINEL;
    for (int32_t j = 0; j < b; j++)
        for (int32_t i = 0; i < n; i++) {
            y[i + j * ldy] = c->y[i + j * n];
            t[i + j * ldt] = c->t[i + j * n];
        }
    float value = NAN;
    TU_OK(fa_loss_eval(c->loss, y, ldy, t, ldt, n, b, &value, dy, lddy));
    ck_assert_msg(isfinite(value) && fabs(value - c->value) <= 1e-5 * (1 + fabs(c->value)),
                  "%s: loss %.9g, want %.9g", c->name, value, c->value);
    for (int32_t j = 0; j < b; j++) {
        for (int32_t i = 0; i < n; i++) {
            double got = dy[i + j * lddy], want = c->dy[i + j * n];
            ck_assert_msg(isfinite(got) && fabs(got - want) <= 1e-6 + 1e-5 * fabs(want),
                          "%s: dy(%d,%d) %.9g, want %.9g", c->name, i, j, got, want);
        }
        for (int32_t i = n; i < lddy; i++)
            ck_assert_msg(dy[i + j * lddy] == SENTINEL, "%s: dy padding written",
                          c->name);
    }

    /* NULL dy: the value alone, identical to the one computed with dy. */
    float v2 = NAN;
    TU_OK(fa_loss_eval(c->loss, y, ldy, t, ldt, n, b, &v2, NULL, 0));
    ck_assert_msg(v2 == value, "%s: value without dy %.9g != %.9g", c->name, v2,
                  value);
    /* NULL value: dy alone. */
    float dy2[MAXN];
    memcpy(dy2, dy, sizeof dy2);
    for (int32_t j = 0; j < b; j++)
        for (int32_t i = 0; i < n; i++)
            dy[i + j * lddy] = SENTINEL;
    TU_OK(fa_loss_eval(c->loss, y, ldy, t, ldt, n, b, NULL, dy, lddy));
    ck_assert_msg(memcmp(dy, dy2, sizeof dy) == 0, "%s: dy without value differs",
                  c->name);

    /* The internal routine gives the same (it is what the network uses). */
    double vi = fa_loss_compute(c->loss, y, ldy, t, ldt, n, b, NULL, 0);
    ck_assert_msg(fabs(vi - c->value) <= 1e-5 * (1 + fabs(c->value)),
                  "%s: fa_loss_compute %.9g, want %.9g", c->name, vi, c->value);
}
END_TEST

/* dL/dy against central differences of the value, in float on small values:
 * ties the two outputs of one call together for every loss. */
START_TEST(test_dy_matches_value)
{
    int32_t loss = _i, n = 3, b = 2;
    float y[6] = {0.3f, -0.7f, 1.1f, -0.2f, 0.5f, 0.9f};
    float t[6] = {0.0f, 1.0f, 0.0f, 0.2f, 0.3f, 0.5f};
    float dy[6];
    TU_OK(fa_loss_eval(loss, y, n, t, n, n, b, NULL, dy, n));
    for (int k = 0; k < 6; k++) {
        const float h = 1e-2f;
        float yp[6], ym[6], vp, vm;
        memcpy(yp, y, sizeof y);
        memcpy(ym, y, sizeof y);
        yp[k] += h;
        ym[k] -= h;
        TU_OK(fa_loss_eval(loss, yp, n, t, n, n, b, &vp, NULL, 0));
        TU_OK(fa_loss_eval(loss, ym, n, t, n, n, b, &vm, NULL, 0));
        double num = ((double)vp - vm) / (2.0 * h);
        ck_assert_msg(fabs(num - dy[k]) <= 1e-3 + 1e-2 * fabs(num),
                      "loss %d: dy[%d] %.6g vs central difference %.6g", loss, k,
                      dy[k], num);
    }
}
END_TEST

/* The links: softmax columns sum to 1 even for +-1000 logits; sigmoid in
 * [0, 1]; MSE leaves y alone; padding untouched. */
START_TEST(test_links)
{
    float y[2 * 4] = {1000.0f, -1000.0f, 0.0f, SENTINEL,
                      -1000.0f, 1000.0f, 999.0f, SENTINEL};
    float s[8], m[8];
    memcpy(s, y, sizeof y);
    memcpy(m, y, sizeof y);
    fa_loss_link(FA_LOSS_SOFTMAX_CE, y, 3, 2, 4);
    for (int j = 0; j < 2; j++) {
        double sum = 0;
        for (int i = 0; i < 3; i++) {
            ck_assert(isfinite(y[i + 4 * j]) && y[i + 4 * j] >= 0.0f);
            sum += y[i + 4 * j];
        }
        ck_assert_msg(fabs(sum - 1.0) < 1e-6, "softmax column %d sums to %g", j, sum);
        ck_assert(y[3 + 4 * j] == SENTINEL);
    }
    ck_assert(y[0] == 1.0f && y[1] == 0.0f);
    /* exp(-1)/(1+exp(-1)) for the 999 vs 1000 column. */
    ck_assert(fabs(y[6] - 0.2689414213699951) < 1e-6);

    fa_loss_link(FA_LOSS_SIGMOID_BCE, s, 3, 2, 4);
    ck_assert(s[0] == 1.0f && s[1] == 0.0f && fabs(s[2] - 0.5f) < 1e-7);
    ck_assert(s[3] == SENTINEL && s[7] == SENTINEL);
    fa_loss_link(FA_LOSS_MSE, m, 3, 2, 4);
    ck_assert(memcmp(m, (float[8]){1000.0f, -1000.0f, 0.0f, SENTINEL, -1000.0f,
                                   1000.0f, 999.0f, SENTINEL},
                     sizeof m) == 0);
}
END_TEST

/* A perfect prediction gives zero loss and zero gradient (MSE) and, for
 * the fused losses, a loss near zero with confident logits. */
START_TEST(test_zero_loss)
{
    float y[2] = {0.25f, -3.0f}, dy[2];
    float v;
    TU_OK(fa_loss_eval(FA_LOSS_MSE, y, 2, y, 2, 2, 1, &v, dy, 2));
    ck_assert(v == 0.0f && dy[0] == 0.0f && dy[1] == 0.0f);
    float logits[2] = {50.0f, -50.0f}, onehot[2] = {1.0f, 0.0f};
    TU_OK(fa_loss_eval(FA_LOSS_SOFTMAX_CE, logits, 2, onehot, 2, 2, 1, &v, dy, 2));
    ck_assert(v >= 0.0f && v < 1e-30f);
    TU_OK(fa_loss_eval(FA_LOSS_SIGMOID_BCE, logits, 2, onehot, 2, 2, 1, &v, dy, 2));
    ck_assert(v >= 0.0f && v < 1e-20f);
}
END_TEST

static Suite *loss_suite(void)
{
    Suite *s = suite_create("loss");
    TCase *tc = tcase_create("loss");
    tcase_add_loop_test(tc, test_known, 0, KA_N_LOSS_CASES);
    tcase_add_loop_test(tc, test_dy_matches_value, 0, FA_N_LOSSES);
    tcase_add_test(tc, test_links);
    tcase_add_test(tc, test_zero_loss);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(loss_suite());
}
