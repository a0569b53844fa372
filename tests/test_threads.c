/*
 * test_threads.c -- the library's own threads (threads.c) and the
 * threaded paths of a step (train.c, optimizer.c):
 * - with 2 threads a step computes what it computes with 1, to float
 *   rounding (the bias gradients are summed per thread, the optimiser's
 *   commit and the element-wise passes are split), for every rule and
 *   optimiser, dense and convolutional, with layers big enough that every
 *   pass is actually split;
 * - with 2 threads two runs are bitwise identical (results depend on the
 *   thread count, not on timing);
 * - layer-parallel weight GEMMs (forced on and off through the internal
 *   switch) give the same weights to rounding;
 * - changing the thread count between steps restarts the pool and keeps
 *   training; the pool dies with the handle (valgrind sees no leak).
 * The test sets the count itself (fa_set_threads): the suite otherwise runs
 * with OPENBLAS_NUM_THREADS=1.
 */
#include "internal.h"
#include "testutil.h"

/* Wide enough that train.c splits the passes of the 600-wide layer and of
 * the convolutions (600 x 128 and 16 x 144 x 128 values, above the 65536
 * it takes at 2 threads), the image layers' forward and backward by
 * samples (both convolutions, the max and the average pooling: input plus
 * output at least 92 Ki values) and the optimiser's commit (300 Ki
 * parameters); the 300-wide layer stays on one thread, so both paths run. */
#define BATCH 128

typedef struct arch {
    const char *text;
    int32_t loss;
} arch;

static const arch archs[] = {
    {"200-600-300-10", FA_LOSS_SOFTMAX_CE},
    {"1x12x12-c16k3p1-m2-c16k3p1-a2-300-10", FA_LOSS_MSE},
};
#define N_ARCHS ((int)(sizeof archs / sizeof archs[0]))

static const int32_t optimizers[] = {FA_OPT_SGD, FA_OPT_ADAM, FA_OPT_MOMENTUM};
#define N_OPT 3

static fa_net *make(const arch *a, int32_t rule, int32_t opt)
{
    fa_spec *spec = NULL;
    fa_net *net = NULL;
    TU_OK(fa_spec_parse(&spec, a->text, FA_ACT_TANH, FA_ACT_IDENTITY));
    TU_OK(fa_net_create_from_spec(&net, spec, a->loss, 11));
    fa_spec_free(spec);
    TU_OK(fa_net_set_rule(net, rule));
    TU_OK(fa_net_set_optimizer(net, opt));
    TU_OK(fa_net_set_hparam(net, FA_HP_LR, opt == FA_OPT_ADAM ? 1e-3 : 0.02));
    TU_OK(fa_net_set_hparam(net, FA_HP_WEIGHT_DECAY, 1e-3));
    return net;
}

static void data(const fa_net *net, float **x, float **t)
{
    int32_t L = 0, sizes[16];
    TU_OK(fa_net_num_layers(net, &L));
    TU_OK(fa_net_get_sizes(net, sizes, L + 1));
    *x = malloc(sizeof(float) * (size_t)sizes[0] * BATCH);
    *t = calloc((size_t)sizes[L] * BATCH, sizeof(float));
    ck_assert(*x && *t);
    tu_lcg g = {77};
    tu_fill(&g, *x, (int64_t)sizes[0] * BATCH, 1.0f);
    for (int j = 0; j < BATCH; j++)
        (*t)[j * sizes[L] + j % sizes[L]] = 1.0f;
}

/* Train `steps` steps with `threads` threads; the parameters, malloc'd. */
static float *train(const arch *a, int32_t rule, int32_t opt, int32_t threads, int steps,
                    int32_t layer_parallel)
{
    TU_OK(fa_set_threads(threads));
    fa_net *net = make(a, rule, opt);
    net->layer_parallel = layer_parallel;
    float *x, *t;
    data(net, &x, &t);
    int32_t L = 0, sizes[16];
    TU_OK(fa_net_num_layers(net, &L));
    TU_OK(fa_net_get_sizes(net, sizes, L + 1));
    for (int s = 0; s < steps; s++)
        TU_OK(fa_net_train_step(net, x, sizes[0], t, sizes[L], BATCH, NULL));
    if (threads > 1)
        ck_assert_msg(net->pool != NULL && net->nthreads == threads,
                      "%s: the step did not run on %d threads", a->text, (int)threads);
    /* sections that set OpenBLAS to one thread put its count back */
    ck_assert_msg(fa_get_threads() == threads && !net->blas_solo,
                  "%s: OpenBLAS has %d threads after the steps, expected %d", a->text,
                  (int)fa_get_threads(), (int)threads);
    float *p = tu_params(net);
    fa_net_free(net);
    free(x);
    free(t);
    TU_OK(fa_set_threads(1));
    return p;
}

static double rel_diff(const float *a, const float *b, int64_t n)
{
    double d = 0, s = 0;
    for (int64_t k = 0; k < n; k++) {
        d += ((double)a[k] - b[k]) * ((double)a[k] - b[k]);
        s += (double)b[k] * b[k];
    }
    return sqrt(d / (s > 0 ? s : 1));
}

static int64_t count_of(const arch *a)
{
    fa_net *net = make(a, FA_RULE_BP, FA_OPT_SGD);
    int64_t n = tu_param_count(net);
    fa_net_free(net);
    return n;
}

/* 1 and 2 threads agree to rounding after a few steps: the sums of the
 * bias gradients are split in two and added in another order, and
 * OpenBLAS's 2-thread GEMMs may block differently, each a relative
 * rounding of order 1e-7 per step; 4 steps of growth stay far below 1e-4,
 * while a split pass that dropped or doubled a part would be off by O(1). */
START_TEST(test_two_threads_match_one)
{
    const arch *a = &archs[_i / (FA_N_RULES * N_OPT)];
    const int32_t rule = (_i / N_OPT) % FA_N_RULES, opt = optimizers[_i % N_OPT];
    const int64_t n = count_of(a);
    float *one = train(a, rule, opt, 1, 4, FA_LAYER_PARALLEL_AUTO);
    float *two = train(a, rule, opt, 2, 4, FA_LAYER_PARALLEL_AUTO);
    double r = rel_diff(two, one, n);
    ck_assert_msg(r < 1e-4, "%s, rule %s, optimiser %d: 2 threads differ from 1 by %g", a->text,
                  fa_enum_name(FA_ENUM_RULE, rule), (int)opt, r);
    free(one);
    free(two);
}
END_TEST

/* The same thread count, the same bits: nothing depends on timing. */
START_TEST(test_two_threads_deterministic)
{
    const arch *a = &archs[_i];
    const int64_t n = count_of(a);
    for (int32_t rule = 0; rule < FA_N_RULES; rule++) {
        float *p = train(a, rule, FA_OPT_ADAM, 2, 3, FA_LAYER_PARALLEL_AUTO);
        float *q = train(a, rule, FA_OPT_ADAM, 2, 3, FA_LAYER_PARALLEL_AUTO);
        ck_assert_msg(memcmp(p, q, (size_t)n * sizeof *p) == 0,
                      "%s, rule %s: two runs on 2 threads differ", a->text,
                      fa_enum_name(FA_ENUM_RULE, rule));
        free(p);
        free(q);
    }
}
END_TEST

/* Layer-parallel weight GEMMs (each on one core) against OpenBLAS's
 * threads per GEMM: the same weights to rounding, under a chain rule and a
 * direct one. */
START_TEST(test_layer_parallel_same_weights)
{
    const arch *a = &archs[_i % N_ARCHS];
    const int32_t rule = _i / N_ARCHS ? FA_RULE_DFA : FA_RULE_BP;
    const int64_t n = count_of(a);
    float *never = train(a, rule, FA_OPT_SGD, 2, 3, FA_LAYER_PARALLEL_NEVER);
    float *always = train(a, rule, FA_OPT_SGD, 2, 3, FA_LAYER_PARALLEL_ALWAYS);
    double r = rel_diff(always, never, n);
    ck_assert_msg(r < 1e-5, "%s: layer-parallel weights differ by %g", a->text, r);
    free(never);
    free(always);
}
END_TEST

/* The count may change between steps: the pool follows, training goes on,
 * and the handle frees its threads. */
START_TEST(test_thread_count_changes)
{
    const arch *a = &archs[0];
    fa_net *net = make(a, FA_RULE_KP, FA_OPT_RMSPROP);
    float *x, *t;
    data(net, &x, &t);
    static const int32_t counts[] = {2, 1, 3, 2};
    for (int k = 0; k < 4; k++) {
        TU_OK(fa_set_threads(counts[k]));
        ck_assert_int_eq(fa_get_threads(), counts[k]);
        TU_OK(fa_net_train_step(net, x, 200, t, 10, BATCH, NULL));
        ck_assert(net->nthreads == 1 || net->pool != NULL);
        ck_assert_int_eq(net->nthreads, counts[k]);
    }
    TU_OK(fa_set_threads(1));
    fa_net_free(net);
    free(x);
    free(t);
}
END_TEST

/* Two cases: "pool" is light enough for valgrind (meson runs it alone as
 * the test 'threads', CK_RUN_CASE=pool); "agreement" runs every rule and
 * optimiser (the test 'threads-all', in the slow suite). */
static Suite *threads_suite(void)
{
    Suite *s = suite_create("threads");
    TCase *pool = tcase_create("pool");
    tcase_set_timeout(pool, 120);
    tcase_add_loop_test(pool, test_layer_parallel_same_weights, 0, 2 * N_ARCHS);
    tcase_add_test(pool, test_thread_count_changes);
    suite_add_tcase(s, pool);
    TCase *all = tcase_create("agreement");
    tcase_set_timeout(all, 300);
    tcase_add_loop_test(all, test_two_threads_match_one, 0, N_ARCHS * FA_N_RULES * N_OPT);
    tcase_add_loop_test(all, test_two_threads_deterministic, 0, N_ARCHS);
    suite_add_tcase(s, all);
    return s;
}

int main(void)
{
    return tu_run(threads_suite());
}
