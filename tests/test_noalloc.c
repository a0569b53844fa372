/*
 * test_noalloc.c -- a steady training loop allocates nothing.
 *
 * Linked with -Wl,--wrap=malloc,calloc,realloc,free (see meson.build): every
 * call to those from the objects of this executable -- the test and the
 * statically linked library -- goes through the counters below.  Counting
 * is switched on only around the library calls under test, so Check's own
 * allocations do not count.  OpenBLAS is a shared library and is not
 * wrapped: its internal buffers are its business, not ours.
 */
#include <stddef.h>

#include "internal.h"
#include "testutil.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t s);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t s);
void *__wrap_realloc(void *p, size_t n);
void __wrap_free(void *p);

static int counting;
static long n_alloc, n_free;

void *__wrap_malloc(size_t n)
{
    n_alloc += counting;
    return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t s)
{
    n_alloc += counting;
    return __real_calloc(n, s);
}

void *__wrap_realloc(void *p, size_t n)
{
    n_alloc += counting;
    return __real_realloc(p, n);
}

void __wrap_free(void *p)
{
    n_free += counting && p != NULL;
    __real_free(p);
}

static void count_on(void)
{
    n_alloc = n_free = 0;
    counting = 1;
}

static void count_off(void)
{
    counting = 0;
}

#define BATCH 16
static const int32_t sizes[] = {8, 16, 12, 4};
static const int32_t acts[] = {FA_ACT_RELU, FA_ACT_TANH, FA_ACT_IDENTITY};

/* The wrapper must actually see the library's allocations, or a zero count
 * below would prove nothing. */
START_TEST(test_wrap_sees_library)
{
    count_on();
    fa_net *net = NULL;
    int rc = fa_net_create(&net, 3, sizes, acts, FA_LOSS_SOFTMAX_CE, 1);
    fa_net_free(net);
    count_off();
    ck_assert_int_eq(rc, FA_OK);
    ck_assert_msg(n_alloc > 0 && n_free > 0,
                  "malloc wrapping does not reach the library (%ld allocations)", n_alloc);
}
END_TEST

/* Every rule with every optimiser (_i = rule + FA_N_RULES * optimizer). */
START_TEST(test_steady_loop)
{
    int32_t rule = _i % FA_N_RULES, opt = _i / FA_N_RULES;
    fa_net *net = tu_net(3, sizes, acts, FA_LOSS_SOFTMAX_CE, 2);
    TU_OK(fa_net_set_rule(net, rule));
    TU_OK(fa_net_set_optimizer(net, opt));
    TU_OK(fa_net_set_dropout(net, 1, 0.2));
    int64_t n = tu_param_count(net);
    float *grad = malloc((size_t)n * sizeof *grad);
    float x[8 * BATCH], t[4 * BATCH], y[4 * BATCH], ang[2], loss;
    ck_assert_ptr_nonnull(grad);
    tu_lcg g = {4};
    tu_fill(&g, x, 8 * BATCH, 1.0f);
    for (int k = 0; k < 4 * BATCH; k++)
        t[k] = k % 4 == (k / 4) % 4;
    /* First calls may size the workspaces and the alignment buffer. */
    TU_OK(fa_net_train_step(net, x, 8, t, 4, BATCH, &loss));
    TU_OK(fa_net_alignment(net, x, 8, t, 4, BATCH, ang, 2));

    int rc = FA_OK;
    count_on();
    for (int s = 0; s < 100 && rc == FA_OK; s++)
        rc = fa_net_train_step(net, x, 8, t, 4, BATCH, &loss);
    count_off();
    ck_assert_int_eq(rc, FA_OK);
    ck_assert_msg(n_alloc == 0 && n_free == 0,
                  "rule %d, optimizer %d: 100 train steps made %ld allocations, %ld frees",
                  rule, opt, n_alloc, n_free);

    count_on();
    for (int s = 0; s < 20 && rc == FA_OK; s++) {
        rc = fa_net_compute_update(net, x, 8, t, 4, BATCH, grad, n, &loss);
        if (rc == FA_OK)
            rc = fa_net_apply_update(net, grad, n);
        if (rc == FA_OK) /* a smaller batch fits the workspaces too */
            rc = fa_net_train_step(net, x, 8, t, 4, BATCH / 2, &loss);
        if (rc == FA_OK)
            rc = fa_net_forward(net, x, 8, BATCH, y, 4);
        if (rc == FA_OK)
            rc = fa_net_loss(net, x, 8, t, 4, BATCH, &loss);
        if (rc == FA_OK)
            rc = fa_net_alignment(net, x, 8, t, 4, BATCH, ang, 2);
    }
    count_off();
    ck_assert_int_eq(rc, FA_OK);
    ck_assert_msg(n_alloc == 0 && n_free == 0,
                  "rule %d, optimizer %d: split steps / forward / loss / alignment made "
                  "%ld allocations", rule, opt, n_alloc);
    free(grad);
    fa_net_free(net);
}
END_TEST

/* fa_net_reserve pre-sizes: a first step of that size allocates nothing. */
START_TEST(test_reserve)
{
    fa_net *net = tu_net(3, sizes, acts, FA_LOSS_SOFTMAX_CE, 3);
    TU_OK(fa_net_reserve(net, BATCH));
    float x[8 * BATCH] = {0}, t[4 * BATCH] = {0};
    for (int j = 0; j < BATCH; j++)
        t[4 * j] = 1.0f;
    count_on();
    int rc = fa_net_train_step(net, x, 8, t, 4, BATCH, NULL);
    count_off();
    ck_assert_int_eq(rc, FA_OK);
    ck_assert_msg(n_alloc == 0, "first step after fa_net_reserve allocated %ld times", n_alloc);
    fa_net_free(net);
}
END_TEST

/* The same for a conv + pool net: conv -> maxpool -> conv -> avgpool ->
 * dense on 1x8x8 images, with dropout on a conv layer and on a pooling
 * layer, every rule with every optimiser. */
#define CBATCH 8
#define CIN 64

static fa_net *conv_net(uint64_t seed)
{
    fa_spec *spec = NULL;
    fa_net *net = NULL;
    TU_OK(fa_spec_parse(&spec, "1x8x8-c3k3p1:relu-m2-c4k3,2s1p1:tanh-a2s1-4", FA_ACT_RELU,
                        FA_ACT_IDENTITY));
    TU_OK(fa_net_create_from_spec(&net, spec, FA_LOSS_SOFTMAX_CE, seed));
    fa_spec_free(spec);
    return net;
}

START_TEST(test_steady_loop_conv)
{
    int32_t rule = _i % FA_N_RULES, opt = _i / FA_N_RULES;
    fa_net *net = conv_net(5);
    TU_OK(fa_net_set_rule(net, rule));
    TU_OK(fa_net_set_optimizer(net, opt));
    TU_OK(fa_net_set_dropout(net, 1, 0.2));
    TU_OK(fa_net_set_dropout(net, 4, 0.1));
    int64_t n = tu_param_count(net);
    float *grad = malloc((size_t)n * sizeof *grad);
    float x[CIN * CBATCH], t[4 * CBATCH], y[4 * CBATCH], ang[4], loss;
    ck_assert_ptr_nonnull(grad);
    tu_lcg g = {6};
    tu_fill(&g, x, CIN * CBATCH, 1.0f);
    for (int k = 0; k < 4 * CBATCH; k++)
        t[k] = k % 4 == (k / 4) % 4;
    TU_OK(fa_net_train_step(net, x, CIN, t, 4, CBATCH, &loss));
    TU_OK(fa_net_alignment(net, x, CIN, t, 4, CBATCH, ang, 4));

    int rc = FA_OK;
    count_on();
    for (int s = 0; s < 10 && rc == FA_OK; s++)
        rc = fa_net_train_step(net, x, CIN, t, 4, CBATCH, &loss);
    count_off();
    ck_assert_msg(rc == FA_OK, "rule %d, optimizer %d: %s", rule, opt, fa_last_error());
    ck_assert_msg(n_alloc == 0 && n_free == 0,
                  "conv net, rule %d, optimizer %d: 10 train steps made %ld allocations, "
                  "%ld frees", rule, opt, n_alloc, n_free);

    count_on();
    for (int s = 0; s < 3 && rc == FA_OK; s++) {
        rc = fa_net_compute_update(net, x, CIN, t, 4, CBATCH, grad, n, &loss);
        if (rc == FA_OK)
            rc = fa_net_apply_update(net, grad, n);
        if (rc == FA_OK)
            rc = fa_net_train_step(net, x, CIN, t, 4, CBATCH / 2, &loss);
        if (rc == FA_OK)
            rc = fa_net_forward(net, x, CIN, CBATCH, y, 4);
        if (rc == FA_OK)
            rc = fa_net_loss(net, x, CIN, t, 4, CBATCH, &loss);
        if (rc == FA_OK)
            rc = fa_net_alignment(net, x, CIN, t, 4, CBATCH, ang, 4);
    }
    count_off();
    ck_assert_msg(rc == FA_OK, "rule %d, optimizer %d: %s", rule, opt, fa_last_error());
    ck_assert_msg(n_alloc == 0 && n_free == 0,
                  "conv net, rule %d, optimizer %d: split steps / forward / loss / alignment "
                  "made %ld allocations", rule, opt, n_alloc);
    free(grad);
    fa_net_free(net);
}
END_TEST

/* fa_net_reserve on a conv net sizes everything the current rule needs. */
START_TEST(test_reserve_conv)
{
    const int32_t rule = _i;
    fa_net *net = conv_net(7);
    TU_OK(fa_net_set_rule(net, rule));
    TU_OK(fa_net_reserve(net, CBATCH));
    float x[CIN * CBATCH], t[4 * CBATCH] = {0};
    tu_lcg g = {8};
    tu_fill(&g, x, CIN * CBATCH, 1.0f);
    for (int j = 0; j < CBATCH; j++)
        t[4 * j + j % 4] = 1.0f;
    count_on();
    int rc = fa_net_train_step(net, x, CIN, t, 4, CBATCH, NULL);
    count_off();
    ck_assert_msg(rc == FA_OK, "rule %d: %s", rule, fa_last_error());
    ck_assert_msg(n_alloc == 0, "rule %d: first conv step after fa_net_reserve allocated %ld "
                  "times", rule, n_alloc);
    fa_net_free(net);
}
END_TEST

static Suite *noalloc_suite(void)
{
    Suite *s = suite_create("noalloc");
    TCase *tc = tcase_create("noalloc");
    tcase_add_test(tc, test_wrap_sees_library);
    tcase_add_loop_test(tc, test_steady_loop, 0, FA_N_RULES * FA_N_OPTIMIZERS);
    tcase_add_test(tc, test_reserve);
    tcase_add_loop_test(tc, test_steady_loop_conv, 0, FA_N_RULES * FA_N_OPTIMIZERS);
    tcase_add_loop_test(tc, test_reserve_conv, 0, FA_N_RULES);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(noalloc_suite());
}
