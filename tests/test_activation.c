/*
 * test_activation.c -- activation functions and their derivatives.
 * f is checked against closed forms in double; f'(a), which the library
 * computes from the stored output z = f(a), is checked against central
 * differences of the closed form, away from the kinks of ReLU / leaky ReLU
 * (where f' from f(a) is a convention, checked separately).
 */
#include "internal.h"
#include "testutil.h"

#define N 5
#define BATCH 4
#define LD 7 /* > N: the padding rows must stay untouched */
#define SENTINEL -777.0f

static const float slope = 0.2f;

static double f_ref(int act, double a)
{
    switch (act) {
    case FA_ACT_IDENTITY: return a;
    case FA_ACT_TANH: return tanh(a);
    case FA_ACT_SIGMOID: return 1.0 / (1.0 + exp(-a));
    case FA_ACT_RELU: return a > 0 ? a : 0.0;
    default: return a > 0 ? a : slope * a;
    }
}

/* Inputs: a grid from -3 to 3 avoiding 0, plus large magnitudes where a
 * naive sigmoid/tanh overflows. */
static void fill_inputs(float *z)
{
    for (int j = 0; j < BATCH; j++)
        for (int i = 0; i < LD; i++)
            z[i + j * LD] = i < N ? -3.0f + 0.3f * (float)(i + N * j) + 0.05f
                                  : SENTINEL;
    z[0] = -80.0f;
    z[1] = 80.0f;
}

START_TEST(test_forward)
{
    int act = _i;
    float z[LD * BATCH], a[LD * BATCH];
    fill_inputs(a);
    memcpy(z, a, sizeof z);
    fa_act_forward(act, slope, z, N, BATCH, LD);
    for (int j = 0; j < BATCH; j++) {
        for (int i = 0; i < N; i++) {
            double want = f_ref(act, a[i + j * LD]);
            double got = z[i + j * LD];
            ck_assert_msg(isfinite(got) && fabs(got - want) <= 1e-6 * (1 + fabs(want)),
                          "act %d f(%g) = %.9g, want %.9g", act, a[i + j * LD], got,
                          want);
        }
        for (int i = N; i < LD; i++)
            ck_assert_msg(z[i + j * LD] == SENTINEL, "act %d wrote padding", act);
    }
}
END_TEST

START_TEST(test_derivative)
{
    int act = _i;
    float a[LD * BATCH], z[LD * BATCH], d[LD * BATCH];
    fill_inputs(a);
    memcpy(z, a, sizeof z);
    fa_act_forward(act, slope, z, N, BATCH, LD);
    /* delta starts at 2 so the multiply (not an assignment) is visible. */
    for (int k = 0; k < LD * BATCH; k++)
        d[k] = (k % LD) < N ? 2.0f : SENTINEL;
    fa_act_deriv_mul(act, slope, z, LD, d, LD, N, BATCH);
    const double h = 1e-4;
    for (int j = 0; j < BATCH; j++) {
        for (int i = 0; i < N; i++) {
            double x = a[i + j * LD];
            double want = 2.0 * (f_ref(act, x + h) - f_ref(act, x - h)) / (2 * h);
            double got = d[i + j * LD];
            /* Tolerance: f' from the float z = f(a) carries float rounding
             * of z (1 - z^2 near saturation loses digits). */
            ck_assert_msg(isfinite(got) && fabs(got - want) <= 1e-5 + 1e-4 * fabs(want),
                          "act %d: 2 f'(%g) = %.9g, want %.9g", act, x, got, want);
        }
        for (int i = N; i < LD; i++)
            ck_assert_msg(d[i + j * LD] == SENTINEL, "act %d wrote padding", act);
    }
}
END_TEST

/* The documented conventions at and around the kinks: ReLU [z > 0], leaky
 * z > 0 ? 1 : slope, evaluated from the output. */
START_TEST(test_kinks)
{
    float z[4] = {0.0f, 1e-30f, -1e-30f, 5.0f};
    float zl[4], d[4];
    memcpy(zl, z, sizeof z);
    fa_act_forward(FA_ACT_RELU, slope, z, 4, 1, 4);
    ck_assert(z[0] == 0.0f && z[1] == 1e-30f && z[2] == 0.0f && z[3] == 5.0f);
    for (int i = 0; i < 4; i++)
        d[i] = 1.0f;
    fa_act_deriv_mul(FA_ACT_RELU, slope, z, 4, d, 4, 4, 1);
    ck_assert(d[0] == 0.0f && d[1] == 1.0f && d[2] == 0.0f && d[3] == 1.0f);

    fa_act_forward(FA_ACT_LEAKY_RELU, slope, zl, 4, 1, 4);
    ck_assert_float_eq(zl[2], -1e-30f * slope);
    for (int i = 0; i < 4; i++)
        d[i] = 1.0f;
    fa_act_deriv_mul(FA_ACT_LEAKY_RELU, slope, zl, 4, d, 4, 4, 1);
    ck_assert(d[0] == slope && d[1] == 1.0f && d[2] == slope && d[3] == 1.0f);

    /* Slope 0 makes leaky ReLU a ReLU; slope 1 the identity. */
    float y[2] = {-2.0f, 3.0f};
    fa_act_forward(FA_ACT_LEAKY_RELU, 0.0f, y, 2, 1, 2);
    ck_assert(y[0] == 0.0f && y[1] == 3.0f);
    float w[2] = {-2.0f, 3.0f};
    fa_act_forward(FA_ACT_LEAKY_RELU, 1.0f, w, 2, 1, 2);
    ck_assert(w[0] == -2.0f && w[1] == 3.0f);
}
END_TEST

/* Saturation: outputs stay in range and finite for huge inputs. */
START_TEST(test_saturation)
{
    float s[4] = {-1e4f, 1e4f, -100.0f, 100.0f}, t[4];
    memcpy(t, s, sizeof s);
    fa_act_forward(FA_ACT_SIGMOID, slope, s, 4, 1, 4);
    fa_act_forward(FA_ACT_TANH, slope, t, 4, 1, 4);
    for (int i = 0; i < 4; i++) {
        ck_assert_msg(s[i] >= 0.0f && s[i] <= 1.0f, "sigmoid %g", s[i]);
        ck_assert_msg(t[i] >= -1.0f && t[i] <= 1.0f, "tanh %g", t[i]);
    }
    ck_assert(s[0] < 1e-30f && s[1] == 1.0f && t[0] == -1.0f && t[1] == 1.0f);
}
END_TEST

static Suite *activation_suite(void)
{
    Suite *s = suite_create("activation");
    TCase *tc = tcase_create("activation");
    tcase_add_loop_test(tc, test_forward, 0, FA_N_ACTIVATIONS);
    tcase_add_loop_test(tc, test_derivative, 0, FA_N_ACTIVATIONS);
    tcase_add_test(tc, test_kinks);
    tcase_add_test(tc, test_saturation);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(activation_suite());
}
