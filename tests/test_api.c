/*
 * test_api.c -- the public contract as a caller of libfeedbackalign.so sees
 * it (this program links the shared library and includes only the public
 * header).  For every public function: NULL pointers, zero/negative sizes,
 * wrong buffer lengths, too-small leading dimensions, unknown enum values,
 * out-of-range layers and non-finite values return the documented status
 * with a detail message that names the function; a failed call changes
 * nothing.  Also the status strings, the version twins, the thread-local
 * error message and fa_net_free(NULL).
 */
#include <pthread.h>
#include <stdint.h>

#include "testutil.h"

/* Expect `call` to fail with `status` and to leave a fresh message naming
 * its function.  The message is first set by a different failing call, so
 * a stale message cannot pass for a new one. */
static void expect_impl(int got, int status, const char *call, const char *before)
{
    char fn[64];
    size_t k = 0;
    while (call[k] != '\0' && call[k] != '(' && k + 1 < sizeof fn) {
        fn[k] = call[k];
        k++;
    }
    fn[k] = '\0';
    const char *msg = fa_last_error();
    ck_assert_msg(got == status, "%s returned %d (%s), want %d (%s); message: %s", call, got,
                  fa_status_string(got), status, fa_status_string(status), msg);
    ck_assert_msg(msg != NULL && msg[0] != '\0', "%s: empty fa_last_error()", call);
    ck_assert_msg(strcmp(msg, before) != 0, "%s: fa_last_error() not updated (\"%s\")", call,
                  msg);
    ck_assert_msg(strstr(msg, fn) != NULL, "%s: message \"%s\" does not name %s", call, msg, fn);
}

static char primer_msg[512];

/* Leave a known message from a call that is not the one under test. */
static void prime(const char *call)
{
    int rc = strncmp(call, "fa_net_get_loss(", 16) == 0 ? fa_net_num_layers(NULL, NULL)
                                                        : fa_net_get_loss(NULL, NULL);
    ck_assert_int_eq(rc, FA_ERR_NULL);
    snprintf(primer_msg, sizeof primer_msg, "%s", fa_last_error());
}

#define EXPECT(status, call)                                                                  \
    do {                                                                                      \
        prime(#call);                                                                         \
        int ex_rc_ = (call);                                                                  \
        expect_impl(ex_rc_, (status), #call, primer_msg);                                     \
    } while (0)

static const int32_t sizes[] = {4, 5, 3, 2};
static const int32_t acts[] = {FA_ACT_TANH, FA_ACT_RELU, FA_ACT_IDENTITY};
#define L 3
#define B 3

static fa_net *make(void)
{
    return tu_net(L, sizes, acts, FA_LOSS_MSE, 1);
}

/* A fingerprint of everything a failed call could have changed. */
typedef struct state {
    float params[64];
    int32_t rule, opt, variant;
    double hp[8], drop[2];
} state;

static state snap(fa_net *net)
{
    state s;
    memset(&s, 0, sizeof s);
    ck_assert(tu_param_count(net) <= 64);
    TU_OK(fa_net_get_params(net, s.params, tu_param_count(net)));
    TU_OK(fa_net_get_rule(net, &s.rule));
    TU_OK(fa_net_get_optimizer(net, &s.opt));
    TU_OK(fa_net_get_dfa_variant(net, &s.variant));
    for (int h = 0; h < 8; h++)
        TU_OK(fa_net_get_hparam(net, h, &s.hp[h]));
    for (int l = 1; l < L; l++)
        TU_OK(fa_net_get_dropout(net, l, &s.drop[l - 1]));
    return s;
}

static void assert_unchanged(fa_net *net, const state *before)
{
    state now = snap(net);
    ck_assert_msg(memcmp(&now, before, sizeof now) == 0, "a failed call changed the network");
}

START_TEST(test_create)
{
    fa_net *net = NULL;
    const int32_t zero[] = {4, 0, 2}, neg[] = {4, -3, 2}, ok2[] = {4, 3, 2};
    const int32_t tanh2[] = {FA_ACT_TANH, FA_ACT_TANH}, id2[] = {FA_ACT_TANH, FA_ACT_IDENTITY};
    const int32_t bad_act[] = {FA_ACT_TANH, 5}, neg_act[] = {-1, FA_ACT_IDENTITY};
    const int32_t huge[] = {INT32_MAX, INT32_MAX, INT32_MAX, INT32_MAX};
    const int32_t huge_act[] = {0, 0, 0};

    EXPECT(FA_ERR_NULL, fa_net_create(&net, 2, NULL, id2, FA_LOSS_MSE, 1));
    EXPECT(FA_ERR_NULL, fa_net_create(&net, 2, ok2, NULL, FA_LOSS_MSE, 1));
    EXPECT(FA_ERR_SIZE, fa_net_create(&net, 0, ok2, id2, FA_LOSS_MSE, 1));
    EXPECT(FA_ERR_SIZE, fa_net_create(&net, -1, ok2, id2, FA_LOSS_MSE, 1));
    EXPECT(FA_ERR_SIZE, fa_net_create(&net, 2, zero, id2, FA_LOSS_MSE, 1));
    EXPECT(FA_ERR_SIZE, fa_net_create(&net, 2, neg, id2, FA_LOSS_MSE, 1));
    EXPECT(FA_ERR_SIZE, fa_net_create(&net, 3, huge, huge_act, FA_LOSS_MSE, 1));
    EXPECT(FA_ERR_ARG, fa_net_create(&net, 2, ok2, bad_act, FA_LOSS_MSE, 1));
    EXPECT(FA_ERR_ARG, fa_net_create(&net, 2, ok2, neg_act, FA_LOSS_MSE, 1));
    EXPECT(FA_ERR_ARG, fa_net_create(&net, 2, ok2, id2, 3, 1));
    EXPECT(FA_ERR_ARG, fa_net_create(&net, 2, ok2, id2, -1, 1));
    /* Fused losses need an identity output layer. */
    EXPECT(FA_ERR_ARG, fa_net_create(&net, 2, ok2, tanh2, FA_LOSS_SOFTMAX_CE, 1));
    EXPECT(FA_ERR_ARG, fa_net_create(&net, 2, ok2, tanh2, FA_LOSS_SIGMOID_BCE, 1));
    ck_assert_ptr_null(net);
    /* ... while MSE takes any output activation. */
    TU_OK(fa_net_create(&net, 2, ok2, tanh2, FA_LOSS_MSE, 1));
    fa_net_free(net);
    fa_net_free(NULL); /* a no-op */
}
END_TEST

/* "out receives the new handle (set to NULL on failure)": a caller that
 * checks the handle rather than the status must not see a stale pointer. */
START_TEST(test_create_resets_out)
{
    const int32_t ok2[] = {4, 3, 2}, id2[] = {FA_ACT_TANH, FA_ACT_IDENTITY};
    fa_net *net = (fa_net *)&net; /* any non-NULL value */
    EXPECT(FA_ERR_NULL, fa_net_create(&net, 2, NULL, id2, FA_LOSS_MSE, 1));
    ck_assert_msg(net == NULL, "fa_net_create failed but left *out = %p", (void *)net);
    net = (fa_net *)&net;
    EXPECT(FA_ERR_SIZE, fa_net_create(&net, 0, ok2, id2, FA_LOSS_MSE, 1));
    ck_assert_msg(net == NULL, "fa_net_create failed but left *out = %p", (void *)net);
}
END_TEST

/* No place to put the handle: FA_ERR_NULL, not a crash. */
START_TEST(test_create_null_out)
{
    const int32_t ok2[] = {4, 3, 2}, id2[] = {FA_ACT_TANH, FA_ACT_IDENTITY};
    EXPECT(FA_ERR_NULL, fa_net_create(NULL, 2, ok2, id2, FA_LOSS_MSE, 1));
}
END_TEST

START_TEST(test_queries)
{
    fa_net *net = make();
    state s = snap(net);
    int32_t v = -7, buf[8];
    int64_t c = -7, w, b;
    double d;
    const float *data;
    EXPECT(FA_ERR_NULL, fa_net_num_layers(NULL, &v));
    EXPECT(FA_ERR_NULL, fa_net_num_layers(net, NULL));
    TU_OK(fa_net_num_layers(net, &v));
    ck_assert_int_eq(v, L);

    for (int k = 0; k < 8; k++)
        buf[k] = -5;
    EXPECT(FA_ERR_NULL, fa_net_get_sizes(NULL, buf, L + 1));
    EXPECT(FA_ERR_NULL, fa_net_get_sizes(net, NULL, L + 1));
    EXPECT(FA_ERR_SIZE, fa_net_get_sizes(net, buf, L));
    EXPECT(FA_ERR_SIZE, fa_net_get_sizes(net, buf, L + 2));
    EXPECT(FA_ERR_SIZE, fa_net_get_sizes(net, buf, 0));
    EXPECT(FA_ERR_SIZE, fa_net_get_sizes(net, buf, -1));
    ck_assert_msg(buf[0] == -5, "a failed fa_net_get_sizes wrote its buffer");
    TU_OK(fa_net_get_sizes(net, buf, L + 1));
    ck_assert(memcmp(buf, sizes, sizeof sizes) == 0);

    EXPECT(FA_ERR_NULL, fa_net_get_activation(NULL, 1, &v));
    EXPECT(FA_ERR_NULL, fa_net_get_activation(net, 1, NULL));
    EXPECT(FA_ERR_ARG, fa_net_get_activation(net, 0, &v));
    EXPECT(FA_ERR_ARG, fa_net_get_activation(net, L + 1, &v));
    EXPECT(FA_ERR_ARG, fa_net_get_activation(net, -1, &v));
    for (int32_t l = 1; l <= L; l++) {
        TU_OK(fa_net_get_activation(net, l, &v));
        ck_assert_int_eq(v, acts[l - 1]);
    }
    EXPECT(FA_ERR_NULL, fa_net_get_loss(NULL, &v));
    EXPECT(FA_ERR_NULL, fa_net_get_loss(net, NULL));
    TU_OK(fa_net_get_loss(net, &v));
    ck_assert_int_eq(v, FA_LOSS_MSE);

    EXPECT(FA_ERR_NULL, fa_net_reserve(NULL, 4));
    EXPECT(FA_ERR_SIZE, fa_net_reserve(net, 0));
    EXPECT(FA_ERR_SIZE, fa_net_reserve(net, -2));
    TU_OK(fa_net_reserve(net, 8));

    EXPECT(FA_ERR_NULL, fa_net_param_count(NULL, &c));
    EXPECT(FA_ERR_NULL, fa_net_param_count(net, NULL));
    TU_OK(fa_net_param_count(net, &c));
    ck_assert_int_eq(c, 4 * 5 + 5 + 5 * 3 + 3 + 3 * 2 + 2);
    EXPECT(FA_ERR_NULL, fa_net_params_data(NULL, &data));
    EXPECT(FA_ERR_NULL, fa_net_params_data(net, NULL));
    EXPECT(FA_ERR_NULL, fa_net_layer_offsets(NULL, 1, &w, &b));
    EXPECT(FA_ERR_NULL, fa_net_layer_offsets(net, 1, NULL, &b));
    EXPECT(FA_ERR_NULL, fa_net_layer_offsets(net, 1, &w, NULL));
    EXPECT(FA_ERR_ARG, fa_net_layer_offsets(net, 0, &w, &b));
    EXPECT(FA_ERR_ARG, fa_net_layer_offsets(net, L + 1, &w, &b));

    EXPECT(FA_ERR_NULL, fa_net_get_rule(NULL, &v));
    EXPECT(FA_ERR_NULL, fa_net_get_rule(net, NULL));
    EXPECT(FA_ERR_NULL, fa_net_get_dfa_variant(NULL, &v));
    EXPECT(FA_ERR_NULL, fa_net_get_dfa_variant(net, NULL));
    EXPECT(FA_ERR_NULL, fa_net_get_optimizer(NULL, &v));
    EXPECT(FA_ERR_NULL, fa_net_get_optimizer(net, NULL));
    EXPECT(FA_ERR_NULL, fa_net_get_hparam(NULL, FA_HP_LR, &d));
    EXPECT(FA_ERR_NULL, fa_net_get_hparam(net, FA_HP_LR, NULL));
    EXPECT(FA_ERR_ARG, fa_net_get_hparam(net, fa_enum_count(FA_ENUM_HPARAM), &d));
    EXPECT(FA_ERR_ARG, fa_net_get_hparam(net, -1, &d));
    EXPECT(FA_ERR_NULL, fa_net_get_dropout(NULL, 1, &d));
    EXPECT(FA_ERR_NULL, fa_net_get_dropout(net, 1, NULL));
    EXPECT(FA_ERR_ARG, fa_net_get_dropout(net, 0, &d));
    EXPECT(FA_ERR_ARG, fa_net_get_dropout(net, L, &d));
    assert_unchanged(net, &s);
    fa_net_free(net);
}
END_TEST

START_TEST(test_setters)
{
    fa_net *net = make();
    state s = snap(net);
    EXPECT(FA_ERR_NULL, fa_net_set_rule(NULL, FA_RULE_FA));
    EXPECT(FA_ERR_ARG, fa_net_set_rule(net, fa_enum_count(FA_ENUM_RULE)));
    EXPECT(FA_ERR_ARG, fa_net_set_rule(net, -1));
    EXPECT(FA_ERR_NULL, fa_net_set_dfa_variant(NULL, 0));
    EXPECT(FA_ERR_ARG, fa_net_set_dfa_variant(net, 2));
    EXPECT(FA_ERR_ARG, fa_net_set_dfa_variant(net, -1));
    EXPECT(FA_ERR_NULL, fa_net_set_feedback_init(NULL, FA_DIST_UNIFORM, 1.0));
    EXPECT(FA_ERR_ARG, fa_net_set_feedback_init(net, 3, 1.0));
    EXPECT(FA_ERR_ARG, fa_net_set_feedback_init(net, -1, 1.0));
    EXPECT(FA_ERR_ARG, fa_net_set_feedback_init(net, FA_DIST_UNIFORM, -1.0));
    EXPECT(FA_ERR_ARG, fa_net_set_feedback_init(net, FA_DIST_UNIFORM, NAN));
    EXPECT(FA_ERR_ARG, fa_net_set_feedback_init(net, FA_DIST_UNIFORM, INFINITY));
    EXPECT(FA_ERR_NULL, fa_net_init_weights(NULL, FA_INIT_DEFAULT));
    EXPECT(FA_ERR_ARG, fa_net_init_weights(net, 6));
    EXPECT(FA_ERR_ARG, fa_net_init_weights(net, -1));
    EXPECT(FA_ERR_NULL, fa_net_set_dropout(NULL, 1, 0.5));
    EXPECT(FA_ERR_ARG, fa_net_set_dropout(net, 0, 0.5));
    EXPECT(FA_ERR_ARG, fa_net_set_dropout(net, L, 0.5));
    EXPECT(FA_ERR_ARG, fa_net_set_dropout(net, 1, 1.0));
    EXPECT(FA_ERR_ARG, fa_net_set_dropout(net, 1, -0.1));
    EXPECT(FA_ERR_ARG, fa_net_set_dropout(net, 1, NAN));
    EXPECT(FA_ERR_NULL, fa_net_set_optimizer(NULL, FA_OPT_ADAM));
    EXPECT(FA_ERR_ARG, fa_net_set_optimizer(net, 5));
    EXPECT(FA_ERR_ARG, fa_net_set_optimizer(net, -1));
    EXPECT(FA_ERR_NULL, fa_net_set_hparam(NULL, FA_HP_LR, 0.1));
    EXPECT(FA_ERR_ARG, fa_net_set_hparam(net, fa_enum_count(FA_ENUM_HPARAM), 0.1));
    EXPECT(FA_ERR_ARG, fa_net_set_hparam(net, -1, 0.1));
    EXPECT(FA_ERR_ARG, fa_net_set_hparam(net, FA_HP_LR, NAN));
    EXPECT(FA_ERR_ARG, fa_net_set_hparam(net, FA_HP_MOMENTUM, NAN));
    EXPECT(FA_ERR_ARG, fa_net_set_hparam(net, FA_HP_LR, -INFINITY));
    EXPECT(FA_ERR_NULL, fa_net_reset_optimizer(NULL));
    assert_unchanged(net, &s);
    fa_net_free(net);
}
END_TEST

START_TEST(test_feedback)
{
    fa_net *net = make();
    state s = snap(net);
    int32_t r, c;
    float buf[64], nanbuf[64];
    for (int k = 0; k < 64; k++) {
        buf[k] = 0.5f;
        nanbuf[k] = k == 5 ? NAN : 0.5f;
    }
    EXPECT(FA_ERR_NULL, fa_net_feedback_shape(NULL, FA_RULE_FA, 2, &r, &c));
    EXPECT(FA_ERR_NULL, fa_net_feedback_shape(net, FA_RULE_FA, 2, NULL, &c));
    EXPECT(FA_ERR_NULL, fa_net_feedback_shape(net, FA_RULE_FA, 2, &r, NULL));
    EXPECT(FA_ERR_ARG, fa_net_feedback_shape(net, FA_RULE_BP, 2, &r, &c));
    EXPECT(FA_ERR_ARG, fa_net_feedback_shape(net, fa_enum_count(FA_ENUM_RULE), 2, &r, &c));
    EXPECT(FA_ERR_ARG, fa_net_feedback_shape(net, FA_RULE_SHALLOW, 2, &r, &c));
    EXPECT(FA_ERR_ARG, fa_net_feedback_shape(net, FA_RULE_FA, 1, &r, &c));
    EXPECT(FA_ERR_ARG, fa_net_feedback_shape(net, FA_RULE_FA, L + 1, &r, &c));
    EXPECT(FA_ERR_ARG, fa_net_feedback_shape(net, FA_RULE_DFA, 0, &r, &c));
    EXPECT(FA_ERR_ARG, fa_net_feedback_shape(net, FA_RULE_DFA, L, &r, &c));
    TU_OK(fa_net_feedback_shape(net, FA_RULE_FA, 2, &r, &c));
    ck_assert(r == 3 && c == 5);
    TU_OK(fa_net_feedback_shape(net, FA_RULE_FA, 3, &r, &c));
    ck_assert(r == 2 && c == 3);
    TU_OK(fa_net_feedback_shape(net, FA_RULE_DFA, 1, &r, &c));
    ck_assert(r == 2 && c == 5);
    TU_OK(fa_net_feedback_shape(net, FA_RULE_DFA, 2, &r, &c));
    ck_assert(r == 2 && c == 3);

    EXPECT(FA_ERR_NULL, fa_net_get_feedback(NULL, FA_RULE_FA, 2, buf, 15));
    EXPECT(FA_ERR_NULL, fa_net_get_feedback(net, FA_RULE_FA, 2, NULL, 15));
    EXPECT(FA_ERR_ARG, fa_net_get_feedback(net, FA_RULE_BP, 2, buf, 15));
    EXPECT(FA_ERR_ARG, fa_net_get_feedback(net, FA_RULE_FA, 1, buf, 15));
    EXPECT(FA_ERR_ARG, fa_net_get_feedback(net, FA_RULE_DFA, 3, buf, 15));
    EXPECT(FA_ERR_SIZE, fa_net_get_feedback(net, FA_RULE_FA, 2, buf, 14));
    EXPECT(FA_ERR_SIZE, fa_net_get_feedback(net, FA_RULE_FA, 2, buf, 16));
    EXPECT(FA_ERR_SIZE, fa_net_get_feedback(net, FA_RULE_DFA, 2, buf, -6));

    EXPECT(FA_ERR_NULL, fa_net_set_feedback(NULL, FA_RULE_FA, 2, buf, 15));
    EXPECT(FA_ERR_NULL, fa_net_set_feedback(net, FA_RULE_FA, 2, NULL, 15));
    EXPECT(FA_ERR_ARG, fa_net_set_feedback(net, FA_RULE_BP, 2, buf, 15));
    EXPECT(FA_ERR_ARG, fa_net_set_feedback(net, fa_enum_count(FA_ENUM_RULE), 2, buf, 15));
    EXPECT(FA_ERR_ARG, fa_net_set_feedback(net, FA_RULE_USF, 2, buf, 15));
    EXPECT(FA_ERR_ARG, fa_net_set_feedback(net, FA_RULE_FA, 4, buf, 15));
    EXPECT(FA_ERR_ARG, fa_net_set_feedback(net, FA_RULE_DFA, 0, buf, 10));
    EXPECT(FA_ERR_SIZE, fa_net_set_feedback(net, FA_RULE_FA, 2, buf, 0));
    EXPECT(FA_ERR_SIZE, fa_net_set_feedback(net, FA_RULE_DFA, 1, buf, 15));
    EXPECT(FA_ERR_NONFINITE, fa_net_set_feedback(net, FA_RULE_FA, 2, nanbuf, 15));

    float angles[4];
    EXPECT(FA_ERR_NULL, fa_net_feedback_angles(NULL, FA_RULE_FA, angles, L - 1));
    EXPECT(FA_ERR_NULL, fa_net_feedback_angles(net, FA_RULE_FA, NULL, L - 1));
    EXPECT(FA_ERR_ARG, fa_net_feedback_angles(net, FA_RULE_BP, angles, L - 1));
    EXPECT(FA_ERR_ARG, fa_net_feedback_angles(net, fa_enum_count(FA_ENUM_RULE), angles, L - 1));
    EXPECT(FA_ERR_SIZE, fa_net_feedback_angles(net, FA_RULE_FA, angles, L));
    EXPECT(FA_ERR_SIZE, fa_net_feedback_angles(net, FA_RULE_DFA, angles, 0));
    assert_unchanged(net, &s);
    fa_net_free(net);
}
END_TEST

START_TEST(test_data_calls)
{
    fa_net *net = make();
    TU_OK(fa_net_set_hparam(net, FA_HP_LR, 0.1)); /* differs from the default */
    state s = snap(net);
    float x[6 * B], t[3 * B], y[3 * B], loss, grad[64], angles[4];
    int64_t n = tu_param_count(net);
    for (int k = 0; k < 6 * B; k++)
        x[k] = 0.1f * (float)k;
    for (int k = 0; k < 3 * B; k++)
        t[k] = 0.5f;
    for (int k = 0; k < 64; k++)
        grad[k] = 0.01f;

    EXPECT(FA_ERR_NULL, fa_net_forward(NULL, x, 4, B, y, 2));
    EXPECT(FA_ERR_NULL, fa_net_forward(net, NULL, 4, B, y, 2));
    EXPECT(FA_ERR_NULL, fa_net_forward(net, x, 4, B, NULL, 2));
    EXPECT(FA_ERR_SIZE, fa_net_forward(net, x, 4, 0, y, 2));
    EXPECT(FA_ERR_SIZE, fa_net_forward(net, x, 4, -1, y, 2));
    EXPECT(FA_ERR_SIZE, fa_net_forward(net, x, 3, B, y, 2));
    EXPECT(FA_ERR_SIZE, fa_net_forward(net, x, 0, B, y, 2));
    EXPECT(FA_ERR_SIZE, fa_net_forward(net, x, 4, B, y, 1));
    EXPECT(FA_ERR_SIZE, fa_net_forward(net, x, 4, B, y, -2));

    EXPECT(FA_ERR_NULL, fa_net_loss(NULL, x, 4, t, 2, B, &loss));
    EXPECT(FA_ERR_NULL, fa_net_loss(net, NULL, 4, t, 2, B, &loss));
    EXPECT(FA_ERR_NULL, fa_net_loss(net, x, 4, NULL, 2, B, &loss));
    EXPECT(FA_ERR_NULL, fa_net_loss(net, x, 4, t, 2, B, NULL));
    EXPECT(FA_ERR_SIZE, fa_net_loss(net, x, 4, t, 2, 0, &loss));
    EXPECT(FA_ERR_SIZE, fa_net_loss(net, x, 2, t, 2, B, &loss));
    EXPECT(FA_ERR_SIZE, fa_net_loss(net, x, 4, t, 1, B, &loss));

    EXPECT(FA_ERR_NULL, fa_net_train_step(NULL, x, 4, t, 2, B, &loss));
    EXPECT(FA_ERR_NULL, fa_net_train_step(net, NULL, 4, t, 2, B, &loss));
    EXPECT(FA_ERR_NULL, fa_net_train_step(net, x, 4, NULL, 2, B, &loss));
    EXPECT(FA_ERR_SIZE, fa_net_train_step(net, x, 4, t, 2, 0, &loss));
    EXPECT(FA_ERR_SIZE, fa_net_train_step(net, x, 4, t, 2, INT32_MIN, &loss));
    EXPECT(FA_ERR_SIZE, fa_net_train_step(net, x, 3, t, 2, B, &loss));
    EXPECT(FA_ERR_SIZE, fa_net_train_step(net, x, 4, t, 1, B, &loss));

    EXPECT(FA_ERR_NULL, fa_net_compute_update(NULL, x, 4, t, 2, B, grad, n, &loss));
    EXPECT(FA_ERR_NULL, fa_net_compute_update(net, NULL, 4, t, 2, B, grad, n, &loss));
    EXPECT(FA_ERR_NULL, fa_net_compute_update(net, x, 4, NULL, 2, B, grad, n, &loss));
    EXPECT(FA_ERR_NULL, fa_net_compute_update(net, x, 4, t, 2, B, NULL, n, &loss));
    EXPECT(FA_ERR_SIZE, fa_net_compute_update(net, x, 4, t, 2, B, grad, n - 1, &loss));
    EXPECT(FA_ERR_SIZE, fa_net_compute_update(net, x, 4, t, 2, B, grad, n + 1, &loss));
    EXPECT(FA_ERR_SIZE, fa_net_compute_update(net, x, 4, t, 2, 0, grad, n, &loss));
    EXPECT(FA_ERR_SIZE, fa_net_compute_update(net, x, 1, t, 2, B, grad, n, &loss));
    EXPECT(FA_ERR_SIZE, fa_net_compute_update(net, x, 4, t, 0, B, grad, n, &loss));

    EXPECT(FA_ERR_NULL, fa_net_apply_update(NULL, grad, n));
    EXPECT(FA_ERR_NULL, fa_net_apply_update(net, NULL, n));
    EXPECT(FA_ERR_SIZE, fa_net_apply_update(net, grad, n - 1));
    EXPECT(FA_ERR_SIZE, fa_net_apply_update(net, grad, 0));
    EXPECT(FA_ERR_SIZE, fa_net_apply_update(net, grad, -n));

    EXPECT(FA_ERR_NULL, fa_net_get_params(NULL, grad, n));
    EXPECT(FA_ERR_NULL, fa_net_get_params(net, NULL, n));
    EXPECT(FA_ERR_SIZE, fa_net_get_params(net, grad, n + 1));
    EXPECT(FA_ERR_NULL, fa_net_set_params(NULL, grad, n));
    EXPECT(FA_ERR_NULL, fa_net_set_params(net, NULL, n));
    EXPECT(FA_ERR_SIZE, fa_net_set_params(net, grad, n - 1));
    EXPECT(FA_ERR_SIZE, fa_net_set_params(net, grad, INT64_MAX));
    ck_assert_msg(grad[0] == 0.01f, "a failed fa_net_get_params wrote its buffer");

    EXPECT(FA_ERR_NULL, fa_net_alignment(NULL, x, 4, t, 2, B, angles, L - 1));
    EXPECT(FA_ERR_NULL, fa_net_alignment(net, NULL, 4, t, 2, B, angles, L - 1));
    EXPECT(FA_ERR_NULL, fa_net_alignment(net, x, 4, NULL, 2, B, angles, L - 1));
    EXPECT(FA_ERR_NULL, fa_net_alignment(net, x, 4, t, 2, B, NULL, L - 1));
    EXPECT(FA_ERR_SIZE, fa_net_alignment(net, x, 4, t, 2, B, angles, L));
    EXPECT(FA_ERR_SIZE, fa_net_alignment(net, x, 4, t, 2, 0, angles, L - 1));
    EXPECT(FA_ERR_SIZE, fa_net_alignment(net, x, 3, t, 2, B, angles, L - 1));
    /* NaN in the target reaches the loss; NaN in x does too, except where a
     * ReLU layer maps it to 0 -- as in this net (tanh, ReLU, identity), whose
     * loss stays finite while the layer-1 and layer-2 updates are NaN.
     * Either way the result is not finite and must not be reported as an
     * angle. */
    t[1] = NAN;
    EXPECT(FA_ERR_NONFINITE, fa_net_alignment(net, x, 4, t, 2, B, angles, L - 1));
    t[1] = 0.5f;
    assert_unchanged(net, &s);

    /* Valid edge cases: NULL loss is allowed; a one-layer net has no
     * hidden layer, so alignment takes n == 0 and angles NULL. */
    x[2] = 0.0f;
    TU_OK(fa_net_train_step(net, x, 4, t, 2, B, NULL));
    TU_OK(fa_net_compute_update(net, x, 6, t, 3, B, grad, n, NULL));
    const int32_t s1[] = {4, 2};
    const int32_t a1[] = {FA_ACT_IDENTITY};
    fa_net *one = tu_net(1, s1, a1, FA_LOSS_MSE, 1);
    TU_OK(fa_net_alignment(one, x, 4, t, 2, B, NULL, 0));
    EXPECT(FA_ERR_SIZE, fa_net_alignment(one, x, 4, t, 2, B, angles, 1));
    fa_net_free(one);

    /* Last, as it may fail: NaN in x behind the ReLU layer (see above). */
    TU_OK(fa_net_set_rule(net, FA_RULE_FA));
    x[2] = NAN;
    angles[0] = angles[1] = 0.0f;
    prime("fa_net_alignment(");
    int arc = fa_net_alignment(net, x, 4, t, 2, B, angles, L - 1);
    ck_assert_msg(arc == FA_ERR_NONFINITE,
                  "fa_net_alignment with NaN in x returned %d and angles %g, %g", arc,
                  angles[0], angles[1]);
    fa_net_free(net);
}
END_TEST

START_TEST(test_files)
{
    fa_net *net = make();
    fa_net *out = (fa_net *)&out;
    EXPECT(FA_ERR_NULL, fa_net_save(NULL, "never-written.fa"));
    EXPECT(FA_ERR_NULL, fa_net_save(net, NULL));
    EXPECT(FA_ERR_IO, fa_net_save(net, "/nonexistent-directory-of-the-tests/x.fa"));
    EXPECT(FA_ERR_NULL, fa_net_load(NULL, "x.fa"));
    EXPECT(FA_ERR_NULL, fa_net_load(&out, NULL));
    ck_assert_ptr_null(out);
    out = (fa_net *)&out;
    EXPECT(FA_ERR_IO, fa_net_load(&out, "/nonexistent-directory-of-the-tests/x.fa"));
    ck_assert_ptr_null(out);
    fa_net_free(net);
}
END_TEST

START_TEST(test_loss_eval)
{
    float y[12] = {0.5f, -0.25f, 1.0f, 0.0f, 0.75f, -1.0f}, t[12] = {1, 0, 0, 0, 1, 0};
    float v, dy[12];
    EXPECT(FA_ERR_ARG, fa_loss_eval(3, y, 3, t, 3, 3, 2, &v, dy, 3));
    EXPECT(FA_ERR_ARG, fa_loss_eval(-1, y, 3, t, 3, 3, 2, &v, dy, 3));
    EXPECT(FA_ERR_NULL, fa_loss_eval(FA_LOSS_MSE, NULL, 3, t, 3, 3, 2, &v, dy, 3));
    EXPECT(FA_ERR_NULL, fa_loss_eval(FA_LOSS_MSE, y, 3, NULL, 3, 3, 2, &v, dy, 3));
    EXPECT(FA_ERR_SIZE, fa_loss_eval(FA_LOSS_MSE, y, 3, t, 3, 0, 2, &v, dy, 3));
    EXPECT(FA_ERR_SIZE, fa_loss_eval(FA_LOSS_MSE, y, 3, t, 3, 3, 0, &v, dy, 3));
    EXPECT(FA_ERR_SIZE, fa_loss_eval(FA_LOSS_MSE, y, 3, t, 3, -3, 2, &v, dy, 3));
    EXPECT(FA_ERR_SIZE, fa_loss_eval(FA_LOSS_SOFTMAX_CE, y, 2, t, 3, 3, 2, &v, dy, 3));
    EXPECT(FA_ERR_SIZE, fa_loss_eval(FA_LOSS_SOFTMAX_CE, y, 3, t, 2, 3, 2, &v, dy, 3));
    EXPECT(FA_ERR_SIZE, fa_loss_eval(FA_LOSS_SIGMOID_BCE, y, 3, t, 3, 3, 2, &v, dy, 2));
    /* With dy NULL, lddy is ignored; with value NULL only dy is written. */
    TU_OK(fa_loss_eval(FA_LOSS_SIGMOID_BCE, y, 3, t, 3, 3, 2, &v, NULL, 0));
    TU_OK(fa_loss_eval(FA_LOSS_SIGMOID_BCE, y, 3, t, 3, 3, 2, NULL, dy, 3));
}
END_TEST

START_TEST(test_status_strings)
{
    static const struct {
        int32_t code;
        const char *name;
    } codes[] = {
        {FA_OK, "FA_OK"},           {FA_ERR_NULL, "FA_ERR_NULL"},
        {FA_ERR_ARG, "FA_ERR_ARG"}, {FA_ERR_SIZE, "FA_ERR_SIZE"},
        {FA_ERR_NOMEM, "FA_ERR_NOMEM"}, {FA_ERR_NONFINITE, "FA_ERR_NONFINITE"},
        {FA_ERR_IO, "FA_ERR_IO"},   {FA_ERR_FORMAT, "FA_ERR_FORMAT"},
        {FA_ERR_STATE, "FA_ERR_STATE"},
    };
    const size_t nc = sizeof codes / sizeof codes[0];
    /* The values are ABI: fixed numbers. */
    ck_assert(FA_OK == 0 && FA_ERR_NULL == -1 && FA_ERR_ARG == -2 && FA_ERR_SIZE == -3 &&
              FA_ERR_NOMEM == -4 && FA_ERR_NONFINITE == -5 && FA_ERR_IO == -6 &&
              FA_ERR_FORMAT == -7 && FA_ERR_STATE == -8);
    for (size_t i = 0; i < nc; i++) {
        const char *s = fa_status_string(codes[i].code);
        ck_assert_ptr_nonnull(s);
        ck_assert_msg(strstr(s, codes[i].name) != NULL, "status %d: \"%s\" does not name %s",
                      codes[i].code, s, codes[i].name);
        ck_assert_msg(strcmp(s, "unknown status") != 0, "status %d is unknown", codes[i].code);
        for (size_t j = 0; j < i; j++)
            ck_assert(strcmp(s, fa_status_string(codes[j].code)) != 0);
    }
    static const int32_t unknown[] = {1, -9, 100, INT32_MIN, INT32_MAX};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
        ck_assert_str_eq(fa_status_string(unknown[i]), "unknown status");
}
END_TEST

START_TEST(test_version)
{
    ck_assert_int_eq(fa_version_number(), FA_VERSION_NUMBER);
    ck_assert_int_eq(FA_VERSION_NUMBER,
                     FA_VERSION_MAJOR * 10000 + FA_VERSION_MINOR * 100 + FA_VERSION_PATCH);
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", FA_VERSION_MAJOR, FA_VERSION_MINOR,
             FA_VERSION_PATCH);
    ck_assert_str_eq(fa_version_string(), want);
}
END_TEST

/* The detail message is per thread: a new thread starts with "", and a
 * failure there does not touch the message of another thread. */
static void *thread_body(void *arg)
{
    char *ok = arg;
    ok[0] = fa_last_error() != NULL && fa_last_error()[0] == '\0';
    ok[1] = fa_net_reserve(NULL, 1) == FA_ERR_NULL &&
            strstr(fa_last_error(), "fa_net_reserve") != NULL;
    return NULL;
}

START_TEST(test_thread_local_error)
{
    ck_assert_int_eq(fa_net_get_loss(NULL, NULL), FA_ERR_NULL);
    char mine[512];
    snprintf(mine, sizeof mine, "%s", fa_last_error());
    ck_assert(strstr(mine, "fa_net_get_loss") != NULL);
    char ok[2] = {0, 0};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, thread_body, ok), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_msg(ok[0], "a new thread's fa_last_error() is not empty");
    ck_assert_msg(ok[1], "failure in a thread did not set its message");
    ck_assert_str_eq(fa_last_error(), mine);
    /* Successful calls do not clear it. */
    ck_assert_int_eq(fa_version_number(), FA_VERSION_NUMBER);
    fa_net *net = make();
    fa_net_free(net);
    ck_assert_str_eq(fa_last_error(), mine);
}
END_TEST

/* The enum values Julia uses as plain numbers. */
START_TEST(test_enum_values)
{
    ck_assert(FA_ACT_IDENTITY == 0 && FA_ACT_TANH == 1 && FA_ACT_SIGMOID == 2 &&
              FA_ACT_RELU == 3 && FA_ACT_LEAKY_RELU == 4);
    ck_assert(FA_LOSS_MSE == 0 && FA_LOSS_SOFTMAX_CE == 1 && FA_LOSS_SIGMOID_BCE == 2);
    ck_assert(FA_RULE_BP == 0 && FA_RULE_FA == 1 && FA_RULE_DFA == 2);
    ck_assert(FA_DFA_AFTER_ACTIVATION == 0 && FA_DFA_BEFORE_ACTIVATION == 1);
    ck_assert(FA_DIST_UNIFORM == 0 && FA_DIST_GAUSSIAN == 1 && FA_DIST_SIGN == 2);
    ck_assert(FA_INIT_DEFAULT == 0 && FA_INIT_ZERO == 5);
    ck_assert(FA_OPT_SGD == 0 && FA_OPT_RMSPROP == 4);
    ck_assert(FA_HP_LR == 0 && FA_HP_LEAKY_SLOPE == 7);
    ck_assert(FA_SCALE_AUTO == 0.0);
}
END_TEST

/* ------------------------------------------------------- images and clone */

START_TEST(test_images)
{
    fa_net *net = make();
    fa_net *out = (fa_net *)&out;
    int64_t need = -1, need2 = -1;
    unsigned char small[16];
    TU_OK(fa_net_set_rule(net, FA_RULE_KP));
    TU_OK(fa_net_set_optimizer(net, FA_OPT_ADAM));
    state s = snap(net);

    EXPECT(FA_ERR_NULL, fa_net_save_image(NULL, NULL, 0, &need));
    EXPECT(FA_ERR_NULL, fa_net_save_image(net, NULL, 16, &need));
    EXPECT(FA_ERR_SIZE, fa_net_save_image(net, small, (int64_t)sizeof small, &need2));
    EXPECT(FA_ERR_SIZE, fa_net_save_image(net, small, -1, NULL));
    TU_OK(fa_net_save_image(net, NULL, 0, NULL));
    TU_OK(fa_net_save_image(net, NULL, 0, &need));
    ck_assert_int_gt(need, (int64_t)sizeof small);
    unsigned char *img = malloc((size_t)need), *img2 = malloc((size_t)need);
    ck_assert(img && img2);
    TU_OK(fa_net_save_image(net, img, need, &need2));
    ck_assert_int_eq(need2, need);
    /* an image is deterministic: the same network, the same bytes */
    TU_OK(fa_net_save_image(net, img2, need, NULL));
    ck_assert(memcmp(img, img2, (size_t)need) == 0);

    EXPECT(FA_ERR_NULL, fa_net_load_image(NULL, img, need));
    EXPECT(FA_ERR_NULL, fa_net_load_image(&out, NULL, need));
    ck_assert_ptr_null(out);
    out = (fa_net *)&out;
    EXPECT(FA_ERR_SIZE, fa_net_load_image(&out, img, -1));
    ck_assert_ptr_null(out);
    out = (fa_net *)&out;
    EXPECT(FA_ERR_FORMAT, fa_net_load_image(&out, img, 0));
    ck_assert_ptr_null(out);
    EXPECT(FA_ERR_FORMAT, fa_net_load_image(&out, img, need - 1));
    EXPECT(FA_ERR_FORMAT, fa_net_load_image(&out, "not a model image", 17));
    img2[need / 2] ^= 0x40;
    EXPECT(FA_ERR_FORMAT, fa_net_load_image(&out, img2, need));
    ck_assert_ptr_null(out);

    TU_OK(fa_net_load_image(&out, img, need));
    ck_assert_ptr_nonnull(out);
    assert_unchanged(out, &s);
    TU_OK(fa_net_save_image(out, img2, need, NULL));
    ck_assert(memcmp(img, img2, (size_t)need) == 0);
    assert_unchanged(net, &s);
    fa_net_free(out);
    free(img);
    free(img2);
    fa_net_free(net);
}
END_TEST

START_TEST(test_clone)
{
    fa_net *net = make(), *copy = (fa_net *)&copy;
    float x[4 * B], t[2 * B];
    for (int k = 0; k < 4 * B; k++)
        x[k] = 0.1f * (float)(k % 5);
    for (int k = 0; k < 2 * B; k++)
        t[k] = (float)(k % 2);
    EXPECT(FA_ERR_NULL, fa_net_clone(NULL, net));
    EXPECT(FA_ERR_NULL, fa_net_clone(&copy, NULL));
    ck_assert_ptr_null(copy);

    TU_OK(fa_net_set_dropout(net, 1, 0.3));
    TU_OK(fa_net_train_step(net, x, 4, t, 2, B, NULL));
    state s = snap(net);
    TU_OK(fa_net_clone(&copy, net));
    ck_assert_ptr_nonnull(copy);
    assert_unchanged(copy, &s);
    /* independent: training the copy leaves the original as it was */
    TU_OK(fa_net_train_step(copy, x, 4, t, 2, B, NULL));
    assert_unchanged(net, &s);
    /* and alike: the same step on the original gives the same network */
    TU_OK(fa_net_train_step(net, x, 4, t, 2, B, NULL));
    state a = snap(net), b = snap(copy);
    ck_assert(memcmp(&a, &b, sizeof a) == 0);
    fa_net_free(net);
    TU_OK(fa_net_train_step(copy, x, 4, t, 2, B, NULL));
    fa_net_free(copy);
}
END_TEST

/* ------------------------------------------------------------------ specs */

static int32_t spec_layers(const fa_spec *spec)
{
    int32_t n = -1;
    TU_OK(fa_spec_num_layers(spec, &n));
    return n;
}

START_TEST(test_spec_builder)
{
    fa_spec *spec = (fa_spec *)&spec;
    int32_t n, v[7];
    EXPECT(FA_ERR_NULL, fa_spec_create(NULL, 1, 5, 5));
    EXPECT(FA_ERR_SIZE, fa_spec_create(&spec, 0, 5, 5));
    ck_assert_ptr_null(spec);
    spec = (fa_spec *)&spec;
    EXPECT(FA_ERR_SIZE, fa_spec_create(&spec, 1, -1, 5));
    ck_assert_ptr_null(spec);
    EXPECT(FA_ERR_SIZE, fa_spec_create(&spec, 1, 5, 0));
    EXPECT(FA_ERR_SIZE, fa_spec_create(&spec, INT32_MAX, 2, 1)); /* > 2^31-1 features */
    fa_spec_free(NULL); /* a no-op */

    TU_OK(fa_spec_create(&spec, 1, 5, 5));
    EXPECT(FA_ERR_NULL, fa_spec_add_dense(NULL, 3, FA_ACT_TANH));
    EXPECT(FA_ERR_SIZE, fa_spec_add_dense(spec, 0, FA_ACT_TANH));
    EXPECT(FA_ERR_SIZE, fa_spec_add_dense(spec, -3, FA_ACT_TANH));
    EXPECT(FA_ERR_ARG, fa_spec_add_dense(spec, 3, 5));
    EXPECT(FA_ERR_ARG, fa_spec_add_dense(spec, 3, -1));
    EXPECT(FA_ERR_NULL, fa_spec_add_conv2d(NULL, 2, 3, 3, 1, 0, FA_ACT_RELU));
    EXPECT(FA_ERR_SIZE, fa_spec_add_conv2d(spec, 0, 3, 3, 1, 0, FA_ACT_RELU));
    EXPECT(FA_ERR_SIZE, fa_spec_add_conv2d(spec, 2, 0, 3, 1, 0, FA_ACT_RELU));
    EXPECT(FA_ERR_SIZE, fa_spec_add_conv2d(spec, 2, 3, 3, 0, 0, FA_ACT_RELU));
    EXPECT(FA_ERR_SIZE, fa_spec_add_conv2d(spec, 2, 3, 3, 1, -1, FA_ACT_RELU));
    EXPECT(FA_ERR_SIZE, fa_spec_add_conv2d(spec, 2, 3, 3, 1, 3, FA_ACT_RELU)); /* pad >= k */
    EXPECT(FA_ERR_SIZE, fa_spec_add_conv2d(spec, 2, 6, 6, 1, 0, FA_ACT_RELU)); /* > 5x5 */
    EXPECT(FA_ERR_SIZE, fa_spec_add_conv2d(spec, 2, 2, 2, 2, 0, FA_ACT_RELU)); /* 3/2 */
    EXPECT(FA_ERR_ARG, fa_spec_add_conv2d(spec, 2, 3, 3, 1, 0, 9));
    EXPECT(FA_ERR_NULL, fa_spec_add_pool(NULL, FA_LAYER_MAXPOOL, 2, 0));
    EXPECT(FA_ERR_ARG, fa_spec_add_pool(spec, FA_LAYER_DENSE, 2, 0));
    EXPECT(FA_ERR_ARG, fa_spec_add_pool(spec, FA_LAYER_CONV2D, 2, 0));
    EXPECT(FA_ERR_ARG, fa_spec_add_pool(spec, 4, 2, 0));
    EXPECT(FA_ERR_SIZE, fa_spec_add_pool(spec, FA_LAYER_MAXPOOL, 0, 0));
    EXPECT(FA_ERR_SIZE, fa_spec_add_pool(spec, FA_LAYER_AVGPOOL, 2, -1));
    EXPECT(FA_ERR_SIZE, fa_spec_add_pool(spec, FA_LAYER_AVGPOOL, 6, 0));
    EXPECT(FA_ERR_SIZE, fa_spec_add_pool(spec, FA_LAYER_MAXPOOL, 2, 0)); /* 5 = 2+2+1 */
    ck_assert_int_eq(spec_layers(spec), 0); /* nothing was added */

    TU_OK(fa_spec_add_conv2d(spec, 2, 3, 3, 1, 1, FA_ACT_RELU)); /* 2x5x5 */
    TU_OK(fa_spec_add_pool(spec, FA_LAYER_MAXPOOL, 3, 2));       /* 2x2x2 */
    TU_OK(fa_spec_add_dense(spec, 3, FA_ACT_IDENTITY));
    ck_assert_int_eq(spec_layers(spec), 3);

    EXPECT(FA_ERR_NULL, fa_spec_num_layers(NULL, &n));
    EXPECT(FA_ERR_NULL, fa_spec_num_layers(spec, NULL));
    EXPECT(FA_ERR_NULL, fa_spec_layer(NULL, 1, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6]));
    EXPECT(FA_ERR_ARG, fa_spec_layer(spec, 0, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6]));
    EXPECT(FA_ERR_ARG, fa_spec_layer(spec, 4, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6]));
    TU_OK(fa_spec_layer(spec, 1, NULL, NULL, NULL, NULL, NULL, NULL, NULL));
    TU_OK(fa_spec_layer(spec, 2, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6]));
    const int32_t pool2[7] = {FA_LAYER_MAXPOOL, 0, 3, 3, 2, 0, FA_ACT_IDENTITY};
    ck_assert(memcmp(v, pool2, sizeof pool2) == 0);
    EXPECT(FA_ERR_NULL, fa_spec_shape(NULL, 0, &v[0], &v[1], &v[2]));
    EXPECT(FA_ERR_ARG, fa_spec_shape(spec, -1, &v[0], &v[1], &v[2]));
    EXPECT(FA_ERR_ARG, fa_spec_shape(spec, 4, &v[0], &v[1], &v[2]));
    TU_OK(fa_spec_shape(spec, 0, NULL, NULL, NULL));
    TU_OK(fa_spec_shape(spec, 2, &v[0], &v[1], &v[2]));
    ck_assert(v[0] == 2 && v[1] == 2 && v[2] == 2);
    fa_spec_free(spec);

    /* a parameter count beyond 2^40 is refused before anything is sized */
    TU_OK(fa_spec_create(&spec, 1 << 20, 1, 1));
    EXPECT(FA_ERR_SIZE, fa_spec_add_dense(spec, 1 << 21, FA_ACT_TANH));
    fa_spec_free(spec);
}
END_TEST

START_TEST(test_spec_text)
{
    fa_spec *spec = (fa_spec *)&spec, *again = NULL;
    char buf[256], buf2[256];
    int64_t need = -1;
    EXPECT(FA_ERR_NULL, fa_spec_parse(NULL, "3-2", FA_ACT_TANH, FA_ACT_IDENTITY));
    EXPECT(FA_ERR_NULL, fa_spec_parse(&spec, NULL, FA_ACT_TANH, FA_ACT_IDENTITY));
    ck_assert_ptr_null(spec);
    static const struct {
        const char *text;
        int status;
    } bad[] = {
        {"", FA_ERR_ARG},         {"3", FA_ERR_ARG}, {"3-", FA_ERR_ARG},
        {"3--2", FA_ERR_ARG},     {"3-2-", FA_ERR_ARG},          {"-3-2", FA_ERR_ARG},
        {"3-2:bogus", FA_ERR_ARG}, {"3-2x0", FA_ERR_ARG},        {"3-q2", FA_ERR_ARG},
        {"1x5-2", FA_ERR_ARG},    {"3-2 ", FA_ERR_ARG},          {"3-m2:relu", FA_ERR_ARG},
        {"3-0", FA_ERR_SIZE},     {"99999999999-2", FA_ERR_SIZE}, {"3-m2", FA_ERR_SIZE},
        {"1x5x5-c2k7", FA_ERR_SIZE},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        prime("fa_spec_parse(");
        spec = (fa_spec *)&spec;
        int rc = fa_spec_parse(&spec, bad[k].text, FA_ACT_TANH, FA_ACT_IDENTITY);
        char call[64];
        snprintf(call, sizeof call, "fa_spec_parse(\"%s\")", bad[k].text);
        expect_impl(rc, bad[k].status, call, primer_msg);
        ck_assert_msg(spec == NULL, "%s left *out set", call);
    }
    EXPECT(FA_ERR_ARG, fa_spec_parse(&spec, "3-2", 5, FA_ACT_IDENTITY));
    EXPECT(FA_ERR_ARG, fa_spec_parse(&spec, "3-2", FA_ACT_TANH, -1));

    /* LeNet from the header; the text form writes every activation and
     * parses back to itself */
    TU_OK(fa_spec_parse(&spec, "1x28x28-c6k5p2-m2-c16k5-m2-c120k5-84-10", FA_ACT_TANH,
                        FA_ACT_IDENTITY));
    EXPECT(FA_ERR_NULL, fa_spec_format(NULL, buf, sizeof buf, &need));
    EXPECT(FA_ERR_NULL, fa_spec_format(spec, NULL, 8, &need));
    TU_OK(fa_spec_format(spec, NULL, 0, &need));
    ck_assert_int_gt(need, 1);
    memset(buf, 'Z', sizeof buf);
    EXPECT(FA_ERR_SIZE, fa_spec_format(spec, buf, need - 1, NULL));
    ck_assert_msg(buf[0] == '\0', "a refused fa_spec_format left \"%c...\"", buf[0]);
    ck_assert(buf[1] == 'Z');
    TU_OK(fa_spec_format(spec, buf, need, NULL));
    ck_assert_int_eq((int64_t)strlen(buf) + 1, need);
    ck_assert_str_eq(buf, "1x28x28-c6k5p2:tanh-m2-c16k5:tanh-m2-c120k5:tanh-84:tanh-10:identity");
    TU_OK(fa_spec_parse(&again, buf, FA_ACT_RELU, FA_ACT_SIGMOID));
    TU_OK(fa_spec_format(again, buf2, sizeof buf2, NULL));
    ck_assert_str_eq(buf, buf2);
    fa_spec_free(spec);
    fa_spec_free(again);
}
END_TEST

START_TEST(test_spec_nets)
{
    fa_spec *spec = NULL, *empty = NULL, *pooled = NULL, *got = (fa_spec *)&got;
    fa_net *net = (fa_net *)&net;
    int32_t k, r, c;
    TU_OK(fa_spec_parse(&spec, "1x4x4-c2k3:relu-m2-3:tanh", FA_ACT_TANH, FA_ACT_IDENTITY));
    TU_OK(fa_spec_create(&empty, 4, 1, 1));
    TU_OK(fa_spec_parse(&pooled, "1x4x4-c2k3-m2", FA_ACT_TANH, FA_ACT_IDENTITY));

    EXPECT(FA_ERR_NULL, fa_net_create_from_spec(NULL, spec, FA_LOSS_MSE, 1));
    EXPECT(FA_ERR_NULL, fa_net_create_from_spec(&net, NULL, FA_LOSS_MSE, 1));
    ck_assert_ptr_null(net);
    net = (fa_net *)&net;
    EXPECT(FA_ERR_ARG, fa_net_create_from_spec(&net, empty, FA_LOSS_MSE, 1));
    ck_assert_ptr_null(net);
    EXPECT(FA_ERR_ARG, fa_net_create_from_spec(&net, pooled, FA_LOSS_MSE, 1));
    EXPECT(FA_ERR_ARG, fa_net_create_from_spec(&net, spec, FA_LOSS_SOFTMAX_CE, 1)); /* tanh */
    EXPECT(FA_ERR_ARG, fa_net_create_from_spec(&net, spec, 3, 1));
    ck_assert_ptr_null(net);

    TU_OK(fa_net_create_from_spec(&net, spec, FA_LOSS_MSE, 1));
    fa_spec_free(spec); /* the network does not keep it */
    EXPECT(FA_ERR_NULL, fa_net_get_spec(NULL, &got));
    EXPECT(FA_ERR_NULL, fa_net_get_spec(net, NULL));
    TU_OK(fa_net_get_spec(net, &got));
    char buf[128];
    TU_OK(fa_spec_format(got, buf, sizeof buf, NULL));
    ck_assert_str_eq(buf, "1x4x4-c2k3:relu-m2-3:tanh");
    fa_spec_free(got);

    EXPECT(FA_ERR_NULL, fa_net_layer_kind(NULL, 1, &k));
    EXPECT(FA_ERR_NULL, fa_net_layer_kind(net, 1, NULL));
    EXPECT(FA_ERR_ARG, fa_net_layer_kind(net, 0, &k));
    EXPECT(FA_ERR_ARG, fa_net_layer_kind(net, 4, &k));
    TU_OK(fa_net_layer_kind(net, 2, &k));
    ck_assert_int_eq(k, FA_LAYER_MAXPOOL);
    EXPECT(FA_ERR_NULL, fa_net_weight_shape(NULL, 1, &r, &c));
    EXPECT(FA_ERR_NULL, fa_net_weight_shape(net, 1, NULL, &c));
    EXPECT(FA_ERR_NULL, fa_net_weight_shape(net, 1, &r, NULL));
    EXPECT(FA_ERR_ARG, fa_net_weight_shape(net, 4, &r, &c));
    TU_OK(fa_net_weight_shape(net, 2, &r, &c));
    ck_assert(r == 0 && c == 0);
    TU_OK(fa_net_weight_shape(net, 1, &r, &c));
    ck_assert(r == 2 && c == 9);
    /* feedback of a pooling layer does not exist */
    EXPECT(FA_ERR_ARG, fa_net_feedback_shape(net, FA_RULE_FA, 2, &r, &c));
    EXPECT(FA_ERR_ARG, fa_net_feedback_shape(net, FA_RULE_DFA, 2, &r, &c));
    EXPECT(FA_ERR_NULL, fa_net_seed_dropout(NULL, 7));
    TU_OK(fa_net_seed_dropout(net, 7));
    fa_net_free(net);
    fa_spec_free(empty);
    fa_spec_free(pooled);
}
END_TEST

/* --------------------------------------------------------- BLAS, threads */

START_TEST(test_blas_threads)
{
    char buf[512];
    int32_t generic = -1;
    EXPECT(FA_ERR_NULL, fa_blas_info(NULL, 16, &generic));
    EXPECT(FA_ERR_SIZE, fa_blas_info(buf, 0, &generic));
    EXPECT(FA_ERR_SIZE, fa_blas_info(buf, -1, NULL));
    ck_assert_int_eq(generic, -1);
    TU_OK(fa_blas_info(buf, sizeof buf, &generic));
    ck_assert_msg(generic == 0 || generic == 1, "generic = %d", generic);
    ck_assert_msg(strstr(buf, "OpenBLAS") != NULL, "\"%s\"", buf);
    ck_assert_msg(strstr(buf, "thread") != NULL, "\"%s\"", buf);
    const size_t full = strlen(buf);
    ck_assert_uint_gt(full, 8);
    TU_OK(fa_blas_info(buf, sizeof buf, NULL));
    /* short buffers: always NUL-terminated, nothing written past len */
    memset(buf, 'Z', sizeof buf);
    TU_OK(fa_blas_info(buf, 1, NULL));
    ck_assert(buf[0] == '\0' && buf[1] == 'Z');
    memset(buf, 'Z', sizeof buf);
    TU_OK(fa_blas_info(buf, 9, NULL));
    ck_assert_uint_eq(strlen(buf), 8);
    ck_assert(buf[9] == 'Z');
    ck_assert(strncmp(buf, "OpenBLAS", 8) == 0);

    const int32_t before = fa_get_threads();
    ck_assert_int_ge(before, 1);
    static const int32_t bad[] = {0, -1, 1025, INT32_MIN, INT32_MAX};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        char call[48];
        snprintf(call, sizeof call, "fa_set_threads(%d)", (int)bad[k]);
        prime(call);
        expect_impl(fa_set_threads(bad[k]), FA_ERR_ARG, call, primer_msg);
        ck_assert_int_eq(fa_get_threads(), before);
    }
    TU_OK(fa_set_threads(1));
    ck_assert_int_eq(fa_get_threads(), 1);
    TU_OK(fa_set_threads(before));
    ck_assert_int_eq(fa_get_threads(), before);
}
END_TEST

/* ------------------------------------------------------------------ enums */

START_TEST(test_enums)
{
    static const int32_t counts[] = {5, 3, 11, 2, 3, 6, 5, 13, 4, 3, 3};
    int32_t v;
    /* fa_enum_count never sets the message */
    prime("fa_enum_count(");
    for (int32_t type = 0; type < 11; type++)
        ck_assert_int_eq(fa_enum_count(type), counts[type]);
    ck_assert_int_eq(fa_enum_count(-1), FA_ERR_ARG);
    ck_assert_int_eq(fa_enum_count(11), FA_ERR_ARG);
    ck_assert_int_eq(fa_enum_count(INT32_MIN), FA_ERR_ARG);
    ck_assert_int_eq(fa_enum_count(INT32_MAX), FA_ERR_ARG);
    ck_assert_str_eq(fa_last_error(), primer_msg);

    for (int32_t type = 0; type < 11; type++) {
        const int32_t n = fa_enum_count(type);
        for (int32_t i = 0; i < n; i++) {
            const char *name = fa_enum_name(type, i), *desc = fa_enum_description(type, i);
            ck_assert_msg(name != NULL && name[0] != '\0', "type %d value %d: no name", type, i);
            ck_assert_msg(desc != NULL && desc[0] != '\0', "type %d value %d: no description",
                          type, i);
            for (const char *c = name; *c; c++)
                ck_assert_msg((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_',
                              "name \"%s\" is not lower case with '_'", name);
            for (int32_t j = 0; j < i; j++)
                ck_assert_msg(strcmp(name, fa_enum_name(type, j)) != 0, "\"%s\" twice", name);
            /* the name finds the value, in any case and with '-' for '_' */
            char upper[64];
            size_t k = 0;
            for (; name[k] && k + 1 < sizeof upper; k++)
                upper[k] = name[k] == '_' ? '-' : (char)(name[k] >= 'a' && name[k] <= 'z'
                                                             ? name[k] - 'a' + 'A' : name[k]);
            upper[k] = '\0';
            v = -1;
            TU_OK(fa_enum_lookup(type, name, &v));
            ck_assert_int_eq(v, i);
            v = -1;
            TU_OK(fa_enum_lookup(type, upper, &v));
            ck_assert_msg(v == i, "lookup of \"%s\" gave %d, want %d", upper, v, i);
        }
        ck_assert_ptr_null(fa_enum_name(type, -1));
        ck_assert_ptr_null(fa_enum_name(type, n));
        ck_assert_ptr_null(fa_enum_description(type, -1));
        ck_assert_ptr_null(fa_enum_description(type, n));
    }
    ck_assert_ptr_null(fa_enum_name(11, 0));
    ck_assert_ptr_null(fa_enum_name(-1, 0));
    ck_assert_ptr_null(fa_enum_description(11, 0));
    /* the header's examples */
    ck_assert_str_eq(fa_enum_name(FA_ENUM_RULE, FA_RULE_DFA), "dfa");
    ck_assert_str_eq(fa_enum_name(FA_ENUM_ACTIVATION, FA_ACT_LEAKY_RELU), "leaky_relu");
    ck_assert_str_eq(fa_enum_name(FA_ENUM_LOSS, FA_LOSS_SOFTMAX_CE), "softmax_ce");
    ck_assert_str_eq(fa_enum_name(FA_ENUM_INIT, FA_INIT_XAVIER_UNIFORM), "xavier_uniform");
    ck_assert_str_eq(fa_enum_name(FA_ENUM_HPARAM, FA_HP_LR), "lr");
    ck_assert_str_eq(fa_enum_name(FA_ENUM_LAYER, FA_LAYER_CONV2D), "conv2d");
    TU_OK(fa_enum_lookup(FA_ENUM_ACTIVATION, "leaky-relu", &v));
    ck_assert_int_eq(v, FA_ACT_LEAKY_RELU);

    v = 77;
    EXPECT(FA_ERR_ARG, fa_enum_lookup(FA_ENUM_RULE, "backprop", &v));
    ck_assert_msg(strstr(fa_last_error(), "dfa") != NULL, "the message does not list the "
                  "names: %s", fa_last_error());
    EXPECT(FA_ERR_ARG, fa_enum_lookup(FA_ENUM_RULE, "", &v));
    EXPECT(FA_ERR_ARG, fa_enum_lookup(FA_ENUM_RULE, "dfa ", &v));
    EXPECT(FA_ERR_ARG, fa_enum_lookup(FA_ENUM_RULE, "df", &v));
    EXPECT(FA_ERR_ARG, fa_enum_lookup(10, "dfa", &v));
    EXPECT(FA_ERR_ARG, fa_enum_lookup(-1, "dfa", &v));
    EXPECT(FA_ERR_NULL, fa_enum_lookup(FA_ENUM_RULE, NULL, &v));
    EXPECT(FA_ERR_NULL, fa_enum_lookup(FA_ENUM_RULE, "dfa", NULL));
    ck_assert_int_eq(v, 77);

    /* fa_rule_info: the table of the header's rule descriptions */
    static const int32_t info[11][4] = {
        [FA_RULE_BP] = {FA_FEEDBACK_NONE, 0, 0, 0},
        [FA_RULE_FA] = {FA_FEEDBACK_LAYER, 1, 0, 0},
        [FA_RULE_DFA] = {FA_FEEDBACK_DIRECT, 1, 0, 1},
        [FA_RULE_USF] = {FA_FEEDBACK_LAYER, 0, 0, 0},
        [FA_RULE_BRSF] = {FA_FEEDBACK_LAYER, 1, 1, 0},
        [FA_RULE_FRSF] = {FA_FEEDBACK_LAYER, 1, 0, 0},
        [FA_RULE_KP] = {FA_FEEDBACK_LAYER, 1, 1, 0},
        [FA_RULE_WM] = {FA_FEEDBACK_LAYER, 1, 1, 0},
        [FA_RULE_DRTP] = {FA_FEEDBACK_DIRECT, 1, 0, 1},
        [FA_RULE_SDFA] = {FA_FEEDBACK_DIRECT, 1, 0, 1},
        [FA_RULE_SHALLOW] = {FA_FEEDBACK_NONE, 0, 0, 0},
    };
    for (int32_t r = 0; r < 11; r++) {
        int32_t got[4] = {-1, -1, -1, -1};
        TU_OK(fa_rule_info(r, &got[0], &got[1], &got[2], &got[3]));
        ck_assert_msg(memcmp(got, info[r], sizeof got) == 0, "fa_rule_info(%s) = %d %d %d %d",
                      fa_enum_name(FA_ENUM_RULE, r), got[0], got[1], got[2], got[3]);
        TU_OK(fa_rule_info(r, NULL, NULL, NULL, NULL));
    }
    int32_t kind = 9;
    EXPECT(FA_ERR_ARG, fa_rule_info(11, &kind, NULL, NULL, NULL));
    EXPECT(FA_ERR_ARG, fa_rule_info(-1, &kind, NULL, NULL, NULL));
    ck_assert_int_eq(kind, 9);
}
END_TEST

static Suite *api_suite(void)
{
    Suite *s = suite_create("api");
    TCase *tc = tcase_create("contract");
    tcase_add_test(tc, test_create);
    tcase_add_test(tc, test_create_resets_out);
    tcase_add_test(tc, test_create_null_out);
    tcase_add_test(tc, test_queries);
    tcase_add_test(tc, test_setters);
    tcase_add_test(tc, test_feedback);
    tcase_add_test(tc, test_data_calls);
    tcase_add_test(tc, test_files);
    tcase_add_test(tc, test_loss_eval);
    tcase_add_test(tc, test_status_strings);
    tcase_add_test(tc, test_version);
    tcase_add_test(tc, test_thread_local_error);
    tcase_add_test(tc, test_enum_values);
    tcase_add_test(tc, test_images);
    tcase_add_test(tc, test_clone);
    tcase_add_test(tc, test_spec_builder);
    tcase_add_test(tc, test_spec_text);
    tcase_add_test(tc, test_spec_nets);
    tcase_add_test(tc, test_blas_threads);
    tcase_add_test(tc, test_enums);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(api_suite());
}
