/*
 * fa-model-roundtrip -- the C side of the Julia <-> C model-file tests.
 *
 * The Julia tests (julia/FeedbackAlign/test/runtests.jl) save networks that
 * this program loads, and load networks this program saves, so that a model
 * file is shown to mean the same thing through both callers of the ABI.
 * Only the public header is used, as any outside C program would.
 *
 *   fa-model-roundtrip create OUT      build the fixed network below, train
 *                                      it 3 steps, save it to OUT, print its
 *                                      forward output
 *   fa-model-roundtrip forward IN      load IN, print its forward output
 *   fa-model-roundtrip step IN OUT     load IN, one training step on the
 *                                      fixed batch, save to OUT
 *   fa-model-roundtrip selftest DIR    create + save + load + forward in one
 *                                      process; exit 1 if the loaded network
 *                                      computes anything different
 *
 * Output of create/forward: a line "n0 nL batch", then the nL*batch outputs
 * column-major, one per line, with %.9g (enough digits to round-trip a
 * float exactly).  Exit status 0 on success, 1 on any library error (the
 * library's message goes to stderr), 2 on bad usage.
 *
 * The fixed batch is a formula, so the Julia side can build it without
 * reading anything: with 0-based i (feature) and j (observation),
 *   x[i, j] = ((7 i + 3 j) mod 11) / 10 - 0.5
 *   t[i, j] = ((5 i + 2 j) mod 7) / 6
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feedbackalign.h"

enum { BATCH = 4 };

static int fail(const char *what, int rc)
{
    fprintf(stderr, "fa-model-roundtrip: %s failed: %s: %s\n", what,
            fa_status_string(rc), fa_last_error());
    return 1;
}

static void fill_x(float *x, int32_t n0)
{
    for (int32_t j = 0; j < BATCH; j++)
        for (int32_t i = 0; i < n0; i++)
            x[i + j * n0] = (float)((7 * i + 3 * j) % 11) / 10.0f - 0.5f;
}

static void fill_t(float *t, int32_t nl)
{
    for (int32_t j = 0; j < BATCH; j++)
        for (int32_t i = 0; i < nl; i++)
            t[i + j * nl] = (float)((5 * i + 2 * j) % 7) / 6.0f;
}

/* Input and output widths of a network, for sizing the fixed batch. */
static int widths(fa_net *net, int32_t *n0, int32_t *nl)
{
    int32_t layers = 0;
    int rc = fa_net_num_layers(net, &layers);
    if (rc != FA_OK)
        return fail("fa_net_num_layers", rc);
    int32_t *sizes = malloc(sizeof *sizes * (size_t)(layers + 1));
    if (sizes == NULL) {
        fprintf(stderr, "fa-model-roundtrip: out of memory\n");
        return 1;
    }
    rc = fa_net_get_sizes(net, sizes, layers + 1);
    if (rc != FA_OK) {
        free(sizes);
        return fail("fa_net_get_sizes", rc);
    }
    *n0 = sizes[0];
    *nl = sizes[layers];
    free(sizes);
    return 0;
}

/* Forward output of the fixed input into a new buffer (*y, nl*BATCH). */
static int forward(fa_net *net, float **y, int32_t *n0_out, int32_t *nl_out)
{
    int32_t n0 = 0, nl = 0;
    if (widths(net, &n0, &nl) != 0)
        return 1;
    float *x = malloc(sizeof *x * (size_t)n0 * BATCH);
    float *out = malloc(sizeof *out * (size_t)nl * BATCH);
    if (x == NULL || out == NULL) {
        free(x);
        free(out);
        fprintf(stderr, "fa-model-roundtrip: out of memory\n");
        return 1;
    }
    fill_x(x, n0);
    int rc = fa_net_forward(net, x, n0, BATCH, out, nl);
    free(x);
    if (rc != FA_OK) {
        free(out);
        return fail("fa_net_forward", rc);
    }
    *y = out;
    *n0_out = n0;
    *nl_out = nl;
    return 0;
}

static int print_forward(fa_net *net)
{
    float *y = NULL;
    int32_t n0 = 0, nl = 0;
    if (forward(net, &y, &n0, &nl) != 0)
        return 1;
    printf("%d %d %d\n", (int)n0, (int)nl, BATCH);
    for (int32_t k = 0; k < nl * BATCH; k++)
        printf("%.9g\n", (double)y[k]);
    free(y);
    return 0;
}

/* One training step on the fixed batch. */
static int step(fa_net *net)
{
    int32_t n0 = 0, nl = 0;
    if (widths(net, &n0, &nl) != 0)
        return 1;
    float *x = malloc(sizeof *x * (size_t)n0 * BATCH);
    float *t = malloc(sizeof *t * (size_t)nl * BATCH);
    if (x == NULL || t == NULL) {
        free(x);
        free(t);
        fprintf(stderr, "fa-model-roundtrip: out of memory\n");
        return 1;
    }
    fill_x(x, n0);
    fill_t(t, nl);
    float loss = 0.0f;
    int rc = fa_net_train_step(net, x, n0, t, nl, BATCH, &loss);
    free(x);
    free(t);
    return rc == FA_OK ? 0 : fail("fa_net_train_step", rc);
}

/* The fixed network: 3-5-2, tanh then identity, MSE, seed 42, FA with Adam,
 * trained 3 steps so that optimiser state and feedback matrices are not at
 * their initial values when saved. */
static int create(fa_net **out)
{
    const int32_t sizes[] = {3, 5, 2};
    const int32_t acts[] = {FA_ACT_TANH, FA_ACT_IDENTITY};
    fa_net *net = NULL;
    int rc = fa_net_create(&net, 2, sizes, acts, FA_LOSS_MSE, 42);
    if (rc != FA_OK)
        return fail("fa_net_create", rc);
    if ((rc = fa_net_set_rule(net, FA_RULE_FA)) != FA_OK ||
        (rc = fa_net_set_optimizer(net, FA_OPT_ADAM)) != FA_OK ||
        (rc = fa_net_set_hparam(net, FA_HP_LR, 0.01)) != FA_OK) {
        fa_net_free(net);
        return fail("configuring the network", rc);
    }
    for (int k = 0; k < 3; k++) {
        if (step(net) != 0) {
            fa_net_free(net);
            return 1;
        }
    }
    *out = net;
    return 0;
}

static int cmd_create(const char *path)
{
    fa_net *net = NULL;
    if (create(&net) != 0)
        return 1;
    int rc = fa_net_save(net, path);
    if (rc != FA_OK) {
        fa_net_free(net);
        return fail("fa_net_save", rc);
    }
    int r = print_forward(net);
    fa_net_free(net);
    return r;
}

static int cmd_forward(const char *path)
{
    fa_net *net = NULL;
    int rc = fa_net_load(&net, path);
    if (rc != FA_OK)
        return fail("fa_net_load", rc);
    int r = print_forward(net);
    fa_net_free(net);
    return r;
}

static int cmd_step(const char *in, const char *outpath)
{
    fa_net *net = NULL;
    int rc = fa_net_load(&net, in);
    if (rc != FA_OK)
        return fail("fa_net_load", rc);
    if (step(net) != 0) {
        fa_net_free(net);
        return 1;
    }
    rc = fa_net_save(net, outpath);
    fa_net_free(net);
    return rc == FA_OK ? 0 : fail("fa_net_save", rc);
}

/* Save, load and compare in one process: the file must reproduce the
 * forward output exactly and continue training to the same parameters. */
static int cmd_selftest(const char *dir)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/interop-selftest.fam", dir) >= (int)sizeof path) {
        fprintf(stderr, "fa-model-roundtrip: directory name too long\n");
        return 2;
    }
    fa_net *a = NULL, *b = NULL;
    float *ya = NULL, *yb = NULL, *pa = NULL, *pb = NULL;
    int32_t n0 = 0, nl = 0;
    int64_t na = 0, nb = 0;
    int result = 1;
    int rc;
    if (create(&a) != 0)
        goto done;
    if ((rc = fa_net_save(a, path)) != FA_OK) {
        fail("fa_net_save", rc);
        goto done;
    }
    if ((rc = fa_net_load(&b, path)) != FA_OK) {
        fail("fa_net_load", rc);
        goto done;
    }
    if (forward(a, &ya, &n0, &nl) != 0 || forward(b, &yb, &n0, &nl) != 0)
        goto done;
    if (memcmp(ya, yb, sizeof *ya * (size_t)nl * BATCH) != 0) {
        fprintf(stderr, "fa-model-roundtrip: loaded network computes a different output\n");
        goto done;
    }
    /* One more step on each: optimiser and RNG state must have survived. */
    if (step(a) != 0 || step(b) != 0)
        goto done;
    if ((rc = fa_net_param_count(a, &na)) != FA_OK || (rc = fa_net_param_count(b, &nb)) != FA_OK) {
        fail("fa_net_param_count", rc);
        goto done;
    }
    if (na != nb) {
        fprintf(stderr, "fa-model-roundtrip: parameter counts differ (%lld, %lld)\n",
                (long long)na, (long long)nb);
        goto done;
    }
    pa = malloc(sizeof *pa * (size_t)na);
    pb = malloc(sizeof *pb * (size_t)nb);
    if (pa == NULL || pb == NULL) {
        fprintf(stderr, "fa-model-roundtrip: out of memory\n");
        goto done;
    }
    if ((rc = fa_net_get_params(a, pa, na)) != FA_OK || (rc = fa_net_get_params(b, pb, nb)) != FA_OK) {
        fail("fa_net_get_params", rc);
        goto done;
    }
    if (memcmp(pa, pb, sizeof *pa * (size_t)na) != 0) {
        fprintf(stderr, "fa-model-roundtrip: loaded network trains to different parameters\n");
        goto done;
    }
    printf("selftest ok: %lld parameters, output and next step identical after save/load\n",
           (long long)na);
    result = 0;
done:
    remove(path);
    free(ya);
    free(yb);
    free(pa);
    free(pb);
    fa_net_free(a);
    fa_net_free(b);
    return result;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: fa-model-roundtrip create OUT\n"
            "       fa-model-roundtrip forward IN\n"
            "       fa-model-roundtrip step IN OUT\n"
            "       fa-model-roundtrip selftest DIR\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "create") == 0)
        return cmd_create(argv[2]);
    if (argc == 3 && strcmp(argv[1], "forward") == 0)
        return cmd_forward(argv[2]);
    if (argc == 4 && strcmp(argv[1], "step") == 0)
        return cmd_step(argv[2], argv[3]);
    if (argc == 3 && strcmp(argv[1], "selftest") == 0)
        return cmd_selftest(argv[2]);
    return usage();
}
