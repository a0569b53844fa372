/*
 * bench_alloc.c -- a steady training loop allocates nothing.
 *
 * Linked against the internal static library with
 *   -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=aligned_alloc,
 *   --wrap=posix_memalign
 * so that every allocation the library's own code makes goes through the
 * counters below.  (OpenBLAS is a separate shared object: its buffers, set
 * up when it initialises, are not counted -- they are not the library's.)
 *
 * For each rule and optimiser: after the first step at a batch size (which
 * may grow the workspaces), 100 more training steps, smaller batches,
 * fa_net_forward, fa_net_loss, fa_net_compute_update + fa_net_apply_update
 * and fa_net_alignment must allocate nothing.  fa_net_reserve must make even
 * the first step allocation-free.  The counter itself is tested: creating a
 * network must be seen allocating, or the interposition is not active and
 * the test fails rather than pass vacuously.
 *
 * Exit status 0 if every check holds, 1 otherwise.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feedbackalign.h"

/* ------------------------------------------------------- the interposition */

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
void *__real_aligned_alloc(size_t align, size_t size);
int __real_posix_memalign(void **p, size_t align, size_t size);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);
void *__wrap_aligned_alloc(size_t align, size_t size);
int __wrap_posix_memalign(void **p, size_t align, size_t size);

/* Only the test's thread calls the library; OpenBLAS's threads never reach
 * these wrappers (they are not linked through --wrap), so a plain counter
 * is enough. */
static long n_allocs;

void *__wrap_malloc(size_t size)
{
    n_allocs++;
    return __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size)
{
    n_allocs++;
    return __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t size)
{
    n_allocs++;
    return __real_realloc(p, size);
}

void *__wrap_aligned_alloc(size_t align, size_t size)
{
    n_allocs++;
    return __real_aligned_alloc(align, size);
}

int __wrap_posix_memalign(void **p, size_t align, size_t size)
{
    n_allocs++;
    return __real_posix_memalign(p, align, size);
}

/* ---------------------------------------------------------------- the test */

enum { L = 3, N0 = 50, C = 10, MAX_BATCH = 64 };
static const int32_t sizes[L + 1] = {N0, 40, 30, C};
static const int32_t acts[L] = {FA_ACT_TANH, FA_ACT_TANH, FA_ACT_IDENTITY};
static const char *const rule_names[3] = {"BP", "FA", "DFA"};
static const char *const opt_names[5] = {"SGD", "MOMENTUM", "NESTEROV",
                                         "ADAM", "RMSPROP"};

static float x[N0 * MAX_BATCH], t[C * MAX_BATCH], y[C * MAX_BATCH];
static int failures;

/* A library call that fails is itself a test failure, reported with the
 * library's own message. */
static int ok_call(int rc, const char *what)
{
    if (rc != FA_OK) {
        printf("not ok - %s: %s (%s)\n", what, fa_status_string(rc),
               fa_last_error());
        failures++;
        return 0;
    }
    return 1;
}

static void expect_zero(long count, const char *what)
{
    if (count != 0) {
        printf("not ok - %s: %ld allocation(s) in a steady loop\n", what, count);
        failures++;
    } else {
        printf("ok - %s: 0 allocations\n", what);
    }
}

static void fill_data(void)
{
    uint32_t s = 12345u;
    for (int i = 0; i < N0 * MAX_BATCH; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)(s >> 8) / 16777216.0f;
    }
    for (int j = 0; j < MAX_BATCH; j++)
        t[(j * 7) % C + j * C] = 1.0f;
}

/* One network under one rule and optimiser through a steady loop. */
static void steady_loop(int32_t rule, int32_t opt)
{
    char what[128];
    fa_net *net = NULL;
    int64_t np_ = 0;
    if (!ok_call(fa_net_create(&net, L, sizes, acts, FA_LOSS_SOFTMAX_CE, 7u),
                 "fa_net_create"))
        return;
    float *grad = NULL;
    if (!ok_call(fa_net_set_rule(net, rule), "fa_net_set_rule") ||
        !ok_call(fa_net_set_optimizer(net, opt), "fa_net_set_optimizer") ||
        !ok_call(fa_net_set_dropout(net, 1, 0.2), "fa_net_set_dropout") ||
        !ok_call(fa_net_param_count(net, &np_), "fa_net_param_count"))
        goto done;
    grad = malloc(sizeof(float) * (size_t)np_);
    float angles[L - 1];

    /* First use at batch 32 of each entry point may grow workspaces. */
    ok_call(fa_net_train_step(net, x, N0, t, C, 32, NULL), "fa_net_train_step");
    ok_call(fa_net_compute_update(net, x, N0, t, C, 32, grad, np_, NULL),
            "fa_net_compute_update");
    ok_call(fa_net_alignment(net, x, N0, t, C, 32, angles, L - 1),
            "fa_net_alignment");

    long before = n_allocs;
    float loss = 0.0f;
    for (int i = 0; i < 100; i++) {
        int32_t b = i % 3 == 2 ? 16 : 32; /* smaller batches reuse the space */
        ok_call(fa_net_train_step(net, x, N0, t, C, b, &loss), "fa_net_train_step");
    }
    snprintf(what, sizeof what, "%s/%s: 100 train steps (batch 32 and 16)",
             rule_names[rule], opt_names[opt]);
    expect_zero(n_allocs - before, what);

    before = n_allocs;
    for (int i = 0; i < 10; i++) {
        ok_call(fa_net_forward(net, x, N0, 32, y, C), "fa_net_forward");
        ok_call(fa_net_loss(net, x, N0, t, C, 32, &loss), "fa_net_loss");
        ok_call(fa_net_compute_update(net, x, N0, t, C, 32, grad, np_, NULL),
                "fa_net_compute_update");
        ok_call(fa_net_apply_update(net, grad, np_), "fa_net_apply_update");
        ok_call(fa_net_alignment(net, x, N0, t, C, 32, angles, L - 1),
                "fa_net_alignment");
    }
    snprintf(what, sizeof what,
             "%s/%s: forward, loss, compute+apply update, alignment x10",
             rule_names[rule], opt_names[opt]);
    expect_zero(n_allocs - before, what);

    /* Informative only: a larger batch than ever before is allowed to grow
     * the workspaces (the header promises growth, not its absence). */
    before = n_allocs;
    ok_call(fa_net_train_step(net, x, N0, t, C, MAX_BATCH, NULL), "fa_net_train_step");
    printf("# %s/%s: first step at batch %d made %ld allocation(s)\n",
           rule_names[rule], opt_names[opt], MAX_BATCH, n_allocs - before);
    before = n_allocs;
    for (int i = 0; i < 20; i++)
        ok_call(fa_net_train_step(net, x, N0, t, C, MAX_BATCH, NULL), "fa_net_train_step");
    snprintf(what, sizeof what, "%s/%s: 20 train steps after growing to batch %d",
             rule_names[rule], opt_names[opt], MAX_BATCH);
    expect_zero(n_allocs - before, what);

done:
    free(grad);
    fa_net_free(net);
}

/* fa_net_reserve makes even the first step at that batch allocation-free. */
static void reserved_first_step(int32_t rule)
{
    char what[128];
    fa_net *net = NULL;
    if (!ok_call(fa_net_create(&net, L, sizes, acts, FA_LOSS_SOFTMAX_CE, 9u),
                 "fa_net_create"))
        return;
    if (ok_call(fa_net_set_rule(net, rule), "fa_net_set_rule") &&
        ok_call(fa_net_reserve(net, MAX_BATCH), "fa_net_reserve")) {
        long before = n_allocs;
        ok_call(fa_net_train_step(net, x, N0, t, C, MAX_BATCH, NULL),
                "fa_net_train_step");
        ok_call(fa_net_train_step(net, x, N0, t, C, 5, NULL), "fa_net_train_step");
        snprintf(what, sizeof what,
                 "%s: first steps after fa_net_reserve(%d)", rule_names[rule],
                 MAX_BATCH);
        expect_zero(n_allocs - before, what);
    }
    fa_net_free(net);
}

int main(void)
{
    fill_data();

    /* The counter must see the library allocate, or every zero below would
     * be meaningless. */
    long before = n_allocs;
    fa_net *probe = NULL;
    ok_call(fa_net_create(&probe, L, sizes, acts, FA_LOSS_SOFTMAX_CE, 1u),
            "fa_net_create");
    long seen = n_allocs - before;
    fa_net_free(probe);
    if (seen <= 0) {
        printf("not ok - allocation counter saw nothing during fa_net_create: "
               "the --wrap interposition is not active\n");
        return 1;
    }
    printf("ok - interposition active: fa_net_create made %ld allocation(s)\n",
           seen);

    for (int32_t rule = 0; rule < 3; rule++) {
        for (int32_t opt = 0; opt < 5; opt++)
            steady_loop(rule, opt);
        reserved_first_step(rule);
    }
    printf(failures ? "FAIL: %d check(s) failed\n" : "PASS\n", failures);
    return failures ? 1 : 0;
}
