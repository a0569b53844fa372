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
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(api_suite());
}
