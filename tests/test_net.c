/*
 * test_net.c -- tiny networks with hand-set weights and hand-set feedback
 * against the known answers of tests/gen_known_answers.py (float64 NumPy
 * written from the header's formulas): forward output, loss, the flat update
 * of every rule (BP, FA, DFA after and before the activation), parameters
 * after one SGD step under each rule and with weight decay, two steps of
 * every optimiser with the learning rate changed in between, and the
 * alignment diagnostics.
 *
 * The references are exact float64 results for float-exact inputs; the
 * tolerances allow for float32 arithmetic in the library only.
 */
#include "internal.h"
#include "known_answers.h"
#include "testutil.h"

#define RTOL 2e-5
#define ATOL 2e-6

/* x and t copied into buffers with leading dimensions larger than their
 * row counts, to exercise ld handling in every call. */
typedef struct padded {
    float *x, *t;
    int32_t ldx, ldt;
} padded;

static padded pad_data(const ka_net_case *c)
{
    padded p;
    int32_t n0 = c->sizes[0], nl = c->sizes[c->n_layers], b = c->batch;
    p.ldx = n0 + 3;
    p.ldt = nl + 2;
    p.x = malloc((size_t)p.ldx * b * sizeof(float));
    p.t = malloc((size_t)p.ldt * b * sizeof(float));
    ck_assert(p.x && p.t);
    for (int32_t j = 0; j < b; j++) {
        for (int32_t i = 0; i < p.ldx; i++)
            p.x[i + j * p.ldx] = i < n0 ? c->x[i + j * n0] : NAN;
        for (int32_t i = 0; i < p.ldt; i++)
            p.t[i + j * p.ldt] = i < nl ? c->t[i + j * nl] : NAN;
    }
    return p;
}

static void pad_free(padded *p)
{
    free(p->x);
    free(p->t);
}

START_TEST(test_forward_and_loss)
{
    const ka_net_case *c = &ka_net_cases[_i];
    fa_net *net = tu_case_net(c);
    padded d = pad_data(c);
    int32_t nl = c->sizes[c->n_layers], b = c->batch, ldy = nl + 1;
    float *y = malloc((size_t)ldy * b * sizeof *y);
    ck_assert_ptr_nonnull(y);
    for (int32_t k = 0; k < ldy * b; k++)
        y[k] = -99.0f;
    TU_OK(fa_net_forward(net, d.x, d.ldx, b, y, ldy));
    for (int32_t j = 0; j < b; j++) {
        tu_assert_close_f(y + j * ldy, c->y + j * nl, nl, RTOL, ATOL, c->name);
        ck_assert_msg(y[nl + j * ldy] == -99.0f, "%s: y padding written", c->name);
    }
    float loss = NAN;
    TU_OK(fa_net_loss(net, d.x, d.ldx, d.t, d.ldt, b, &loss));
    ck_assert_msg(fabs(loss - c->loss_value) <= RTOL * fabs(c->loss_value) + ATOL,
                  "%s: loss %.9g, want %.9g", c->name, loss, c->loss_value);
    free(y);
    pad_free(&d);
    fa_net_free(net);
}
END_TEST

/* The flat update of each rule.  _i runs over cases x 4 rule variants. */
START_TEST(test_update)
{
    const ka_net_case *c = &ka_net_cases[_i / 4];
    int variant = _i % 4;
    static const char *names[] = {"BP", "FA", "DFA", "DFA-before"};
    const double *want[] = {c->grad_bp, c->grad_fa, c->grad_dfa, c->grad_dfa_before};
    static const int32_t rules[] = {FA_RULE_BP, FA_RULE_FA, FA_RULE_DFA, FA_RULE_DFA};
    fa_net *net = tu_case_net(c);
    TU_OK(fa_net_set_rule(net, rules[variant]));
    TU_OK(fa_net_set_dfa_variant(net, variant == 3 ? FA_DFA_BEFORE_ACTIVATION
                                                   : FA_DFA_AFTER_ACTIVATION));
    padded d = pad_data(c);
    float *g = malloc((size_t)c->n_params * sizeof *g);
    ck_assert_ptr_nonnull(g);
    float loss = NAN;
    TU_OK(fa_net_compute_update(net, d.x, d.ldx, d.t, d.ldt, c->batch, g,
                                c->n_params, &loss));
    char what[96];
    snprintf(what, sizeof what, "%s %s update", c->name, names[variant]);
    tu_assert_close_f(g, want[variant], c->n_params, RTOL, ATOL, what);
    ck_assert_msg(fabs(loss - c->loss_value) <= RTOL * fabs(c->loss_value) + ATOL,
                  "%s: loss %.9g, want %.9g", what, loss, c->loss_value);
    /* compute_update leaves the parameters alone. */
    float *p = tu_params(net);
    ck_assert(memcmp(p, c->params, (size_t)c->n_params * sizeof *p) == 0);
    free(p);
    free(g);
    pad_free(&d);
    fa_net_free(net);
}
END_TEST

/* One SGD train step under each rule, and one with weight decay (which must
 * touch weights but not biases). */
START_TEST(test_sgd_step)
{
    const ka_net_case *c = &ka_net_cases[_i / 4];
    int variant = _i % 4;
    static const int32_t rules[] = {FA_RULE_BP, FA_RULE_FA, FA_RULE_DFA, FA_RULE_BP};
    const double *want[] = {c->sgd_bp, c->sgd_fa, c->sgd_dfa, c->sgd_wd};
    static const char *names[] = {"BP", "FA", "DFA", "BP+weight decay"};
    fa_net *net = tu_case_net(c);
    TU_OK(fa_net_set_rule(net, rules[variant]));
    TU_OK(fa_net_set_hparam(net, FA_HP_LR, KA_LR1));
    if (variant == 3)
        TU_OK(fa_net_set_hparam(net, FA_HP_WEIGHT_DECAY, KA_WD));
    padded d = pad_data(c);
    float loss = NAN;
    TU_OK(fa_net_train_step(net, d.x, d.ldx, d.t, d.ldt, c->batch, &loss));
    ck_assert_msg(fabs(loss - c->loss_value) <= RTOL * fabs(c->loss_value) + ATOL,
                  "%s: train_step loss %.9g, want %.9g (the loss before the update)",
                  c->name, loss, c->loss_value);
    float *p = tu_params(net);
    char what[96];
    snprintf(what, sizeof what, "%s params after SGD (%s)", c->name, names[variant]);
    tu_assert_close_f(p, want[variant], c->n_params, RTOL, ATOL, what);
    free(p);
    pad_free(&d);
    fa_net_free(net);
}
END_TEST

/* Two BP train steps per optimiser, lr changed between them: the formulas
 * of the header (bias-corrected Adam, Nesterov's look-ahead form). */
START_TEST(test_optimizer_trajectory)
{
    const ka_net_case *c = &ka_net_cases[_i / 5];
    int opt = _i % 5;
    fa_net *net = tu_case_net(c);
    TU_OK(fa_net_set_optimizer(net, opt));
    TU_OK(fa_net_set_hparam(net, FA_HP_LR, KA_LR1));
    TU_OK(fa_net_set_hparam(net, FA_HP_MOMENTUM, KA_MU));
    TU_OK(fa_net_set_hparam(net, FA_HP_BETA1, KA_BETA1));
    TU_OK(fa_net_set_hparam(net, FA_HP_BETA2, KA_BETA2));
    TU_OK(fa_net_set_hparam(net, FA_HP_EPSILON, KA_EPS));
    TU_OK(fa_net_set_hparam(net, FA_HP_RMS_DECAY, KA_RHO));
    padded d = pad_data(c);
    char what[96];
    TU_OK(fa_net_train_step(net, d.x, d.ldx, d.t, d.ldt, c->batch, NULL));
    float *p = tu_params(net);
    snprintf(what, sizeof what, "%s optimiser %d step 1", c->name, opt);
    tu_assert_close_f(p, c->traj[opt][0], c->n_params, 1e-4, 1e-5, what);
    free(p);
    TU_OK(fa_net_set_hparam(net, FA_HP_LR, KA_LR2));
    TU_OK(fa_net_train_step(net, d.x, d.ldx, d.t, d.ldt, c->batch, NULL));
    p = tu_params(net);
    snprintf(what, sizeof what, "%s optimiser %d step 2", c->name, opt);
    tu_assert_close_f(p, c->traj[opt][1], c->n_params, 1e-4, 1e-5, what);
    free(p);
    pad_free(&d);
    fa_net_free(net);
}
END_TEST

/* compute_update + apply_update is the same step as train_step: bitwise
 * under the optimisers that commit from the update block, and to float
 * rounding under plain SGD, whose train_step applies the update inside the
 * weight GEMMs (alpha = -lr, beta = 1): the GEMM kernel may round
 * W - lr*sum with a fused multiply-add where the optimiser rounds lr*g and
 * the subtraction apart, one rounding of W's size (2^-24 relative), so the
 * tolerance is 4 roundings of the largest parameter. */
START_TEST(test_split_step)
{
    const ka_net_case *c = &ka_net_cases[_i];
    static const int32_t opts[] = {FA_OPT_SGD, FA_OPT_MOMENTUM, FA_OPT_ADAM};
    padded d = pad_data(c);
    float *g = malloc((size_t)c->n_params * sizeof *g);
    ck_assert_ptr_nonnull(g);
    for (int k = 0; k < 3; k++) {
        fa_net *a = tu_case_net(c), *b = tu_case_net(c);
        TU_OK(fa_net_set_optimizer(a, opts[k]));
        TU_OK(fa_net_set_optimizer(b, opts[k]));
        for (int32_t rule = 0; rule < FA_N_RULES; rule++) {
            TU_OK(fa_net_set_rule(a, rule));
            TU_OK(fa_net_set_rule(b, rule));
            TU_OK(fa_net_train_step(a, d.x, d.ldx, d.t, d.ldt, c->batch, NULL));
            TU_OK(fa_net_compute_update(b, d.x, d.ldx, d.t, d.ldt, c->batch, g,
                                        c->n_params, NULL));
            TU_OK(fa_net_apply_update(b, g, c->n_params));
            float *pa = tu_params(a), *pb = tu_params(b);
            if (opts[k] == FA_OPT_SGD) {
                float big = 0;
                for (int64_t q = 0; q < c->n_params; q++)
                    big = fabsf(pb[q]) > big ? fabsf(pb[q]) : big;
                for (int64_t q = 0; q < c->n_params; q++)
                    TU_CHECK(fabsf(pa[q] - pb[q]) <= 4.0f * big * 0x1p-24f,
                             "%s rule %d SGD: train_step and compute_update + apply_update "
                             "differ at %lld: %.9g vs %.9g", c->name, (int)rule,
                             (long long)q, pa[q], pb[q]);
                /* from here on both continue from the same parameters */
                TU_OK(fa_net_set_params(a, pb, c->n_params));
            } else {
                ck_assert_msg(memcmp(pa, pb, (size_t)c->n_params * sizeof *pa) == 0,
                              "%s rule %d optimiser %d: train_step != compute_update + "
                              "apply_update", c->name, (int)rule, (int)opts[k]);
            }
            free(pa);
            free(pb);
        }
        fa_net_free(a);
        fa_net_free(b);
    }
    free(g);
    pad_free(&d);
}
END_TEST

START_TEST(test_alignment)
{
    const ka_net_case *c = &ka_net_cases[_i];
    int32_t L = c->n_layers;
    fa_net *net = tu_case_net(c);
    padded d = pad_data(c);
    float ang[4];
    float *before = tu_params(net);

    TU_OK(fa_net_set_rule(net, FA_RULE_BP));
    TU_OK(fa_net_alignment(net, d.x, d.ldx, d.t, d.ldt, c->batch, ang, L - 1));
    for (int32_t l = 0; l < L - 1; l++)
        ck_assert_msg(fabsf(ang[l]) < 1e-2f, "%s: BP angle %g", c->name, ang[l]);

    char what[96];
    TU_OK(fa_net_set_rule(net, FA_RULE_FA));
    TU_OK(fa_net_alignment(net, d.x, d.ldx, d.t, d.ldt, c->batch, ang, L - 1));
    snprintf(what, sizeof what, "%s FA alignment", c->name);
    tu_assert_close_f(ang, c->align_fa, L - 1, 1e-4, 5e-3, what);
    TU_OK(fa_net_set_rule(net, FA_RULE_DFA));
    TU_OK(fa_net_alignment(net, d.x, d.ldx, d.t, d.ldt, c->batch, ang, L - 1));
    snprintf(what, sizeof what, "%s DFA alignment", c->name);
    tu_assert_close_f(ang, c->align_dfa, L - 1, 1e-4, 5e-3, what);

    TU_OK(fa_net_feedback_angles(net, FA_RULE_FA, ang, L - 1));
    snprintf(what, sizeof what, "%s FA feedback angles", c->name);
    tu_assert_close_f(ang, c->fbangle_fa, L - 1, 1e-4, 5e-3, what);
    TU_OK(fa_net_feedback_angles(net, FA_RULE_DFA, ang, L - 1));
    snprintf(what, sizeof what, "%s DFA feedback angles", c->name);
    tu_assert_close_f(ang, c->fbangle_dfa, L - 1, 1e-4, 5e-3, what);

    /* Diagnostics leave the parameters alone. */
    float *after = tu_params(net);
    ck_assert(memcmp(before, after, (size_t)c->n_params * sizeof *after) == 0);
    free(before);
    free(after);
    pad_free(&d);
    fa_net_free(net);
}
END_TEST

/* Parameter access: layer offsets follow [W_1|b_1|W_2|b_2|...], the borrowed
 * pointer sees the same bytes as the copy, and does not move in training. */
START_TEST(test_param_layout)
{
    const ka_net_case *c = &ka_net_cases[_i];
    fa_net *net = tu_case_net(c);
    int64_t off = 0;
    for (int32_t l = 1; l <= c->n_layers; l++) {
        int64_t wo = -1, bo = -1;
        TU_OK(fa_net_layer_offsets(net, l, &wo, &bo));
        ck_assert_int_eq(wo, off);
        off += (int64_t)c->sizes[l] * c->sizes[l - 1];
        ck_assert_int_eq(bo, off);
        off += c->sizes[l];
    }
    ck_assert_int_eq(off, c->n_params);
    ck_assert_int_eq(tu_param_count(net), c->n_params);
    const float *data = NULL;
    TU_OK(fa_net_params_data(net, &data));
    ck_assert(memcmp(data, c->params, (size_t)c->n_params * sizeof *data) == 0);
    padded d = pad_data(c);
    TU_OK(fa_net_train_step(net, d.x, d.ldx, d.t, d.ldt, c->batch, NULL));
    const float *data2 = NULL;
    TU_OK(fa_net_params_data(net, &data2));
    ck_assert_ptr_eq(data, data2);
    float *p = tu_params(net);
    ck_assert(memcmp(p, data, (size_t)c->n_params * sizeof *p) == 0);
    ck_assert(memcmp(p, c->params, (size_t)c->n_params * sizeof *p) != 0);
    /* Feedback round trip: what was set is read back bitwise. */
    int32_t L = c->n_layers;
    int64_t fo = 0;
    for (int32_t l = 2; l <= L; l++) {
        int64_t len = (int64_t)c->sizes[l] * c->sizes[l - 1];
        float buf[64];
        ck_assert(len <= 64);
        TU_OK(fa_net_get_feedback(net, FA_RULE_FA, l, buf, len));
        ck_assert(memcmp(buf, c->fb_fa + fo, (size_t)len * sizeof *buf) == 0);
        fo += len;
    }
    free(p);
    pad_free(&d);
    fa_net_free(net);
}
END_TEST

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>

/* Does this CPU (or emulator: valgrind ignores MXCSR's FTZ and DAZ) flush a
 * denormal product to zero under FTZ | DAZ? */
static int ftz_honoured(void)
{
    const unsigned old = _mm_getcsr();
    _mm_setcsr(old | 0x8040u);
    /* all volatile: the product is computed between the two mode writes */
    volatile float tiny = 1e-39f, half = 0.5f;
    volatile float r = tiny * half;
    _mm_setcsr(old);
    return r == 0.0f;
}

/* The optimiser flushes denormals to zero in its update (the header's
 * fa_optimizer block) and restores the caller's floating-point mode: Adam
 * state and a gradient of denormals (1e-39 < FLT_MIN) give all-zero moments
 * and unchanged parameters, where IEEE arithmetic would keep b1 * 1e-39 and
 * (1-b1) * 1e-39, both nonzero.  _i = 0 on one thread, _i = 1 on two with a
 * network large enough that the update is shared between the threads. */
START_TEST(test_denormals_flushed)
{
    const int32_t threads = _i ? 2 : 1, threads0 = fa_get_threads();
    const int32_t sizes[3] = {784, _i ? 200 : 20, 10};
    const int32_t acts[2] = {FA_ACT_TANH, FA_ACT_IDENTITY};
    TU_OK(fa_set_threads(threads));
    fa_net *net;
    TU_OK(fa_net_create(&net, 2, sizes, acts, FA_LOSS_SOFTMAX_CE, 7));
    TU_OK(fa_net_set_optimizer(net, FA_OPT_ADAM));
    int64_t n;
    TU_OK(fa_net_param_count(net, &n));
    float *g = malloc((size_t)n * sizeof *g);
    ck_assert(g);
    for (int64_t i = 0; i < n; i++) {
        g[i] = i % 2 ? 1e-39f : 0.0f;
        net->opt_state[i] = i % 3 ? 1e-39f : 0.0f;     /* m */
        net->opt_state[n + i] = i % 5 ? 1e-39f : 0.0f; /* v */
    }
    float *p0 = tu_params(net);
    /* the caller's mode (MXCSR's control bits; bits 0-5 are sticky
     * exception flags) comes back whether or not it had FTZ and DAZ set */
    const unsigned mode0 = _mm_getcsr() & ~0x3fu;
    TU_OK(fa_net_apply_update(net, g, n));
    ck_assert_uint_eq(_mm_getcsr() & ~0x3fu, mode0);
    if (ftz_honoured()) {
        for (int64_t i = 0; i < 2 * n; i++)
            TU_CHECK(net->opt_state[i] == 0.0f, "moment %lld is %g after the update, expected "
                     "0 (denormals flushed)", (long long)i, (double)net->opt_state[i]);
        float *p1 = tu_params(net);
        ck_assert(memcmp(p0, p1, (size_t)n * sizeof *p1) == 0);
        free(p1);
    }
    const unsigned saved = _mm_getcsr();
    _mm_setcsr(saved | 0x8040u);
    const unsigned mode1 = _mm_getcsr() & ~0x3fu;
    TU_OK(fa_net_apply_update(net, g, n));
    ck_assert_uint_eq(_mm_getcsr() & ~0x3fu, mode1);
    _mm_setcsr(saved);
    free(p0);
    free(g);
    fa_net_free(net);
    TU_OK(fa_set_threads(threads0));
}
END_TEST
#endif

static Suite *net_suite(void)
{
    Suite *s = suite_create("net");
    TCase *tc = tcase_create("known answers");
    tcase_add_loop_test(tc, test_forward_and_loss, 0, KA_N_NET_CASES);
    tcase_add_loop_test(tc, test_update, 0, 4 * KA_N_NET_CASES);
    tcase_add_loop_test(tc, test_sgd_step, 0, 4 * KA_N_NET_CASES);
    tcase_add_loop_test(tc, test_optimizer_trajectory, 0, 5 * KA_N_NET_CASES);
    tcase_add_loop_test(tc, test_split_step, 0, KA_N_NET_CASES);
    tcase_add_loop_test(tc, test_alignment, 0, KA_N_NET_CASES);
    tcase_add_loop_test(tc, test_param_layout, 0, KA_N_NET_CASES);
    suite_add_tcase(s, tc);
#if defined(__x86_64__) || defined(__i386__)
    TCase *fp = tcase_create("denormals");
    tcase_add_loop_test(fp, test_denormals_flushed, 0, 2);
    suite_add_tcase(s, fp);
#endif
    return s;
}

int main(void)
{
    return tu_run(net_suite());
}
