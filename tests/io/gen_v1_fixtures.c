/*
 * gen_v1_fixtures.c -- writes the format-version-1 model files of
 * tests/io/data/ with the library that wrote that format (libfeedbackalign
 * 0.1.0), and next to each the outputs that library computed, so that
 * test_io can check that today's library loads version 1 files and
 * computes with them what 0.1.0 did.  Not built by meson: the fixtures are
 * committed.  To regenerate, build 0.1.0 (git tag or commit 8ce408c) and:
 *   cc -std=c11 -I<0.1.0>/include tests/io/gen_v1_fixtures.c \
 *      -L<0.1.0>/build -lfeedbackalign -o gen && LD_LIBRARY_PATH=<0.1.0>/build ./gen tests/io/data
 * Each v1-NAME.out holds float32 values: the forward output (n_L, 4) on the
 * batch below right after saving, then (for configurations without
 * dropout) the output after 5 more training steps on the same batch.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feedbackalign.h"

#define B 4

static void batch(int n0, int nl, float *x, float *t)
{
    for (int j = 0; j < B; j++) {
        for (int i = 0; i < n0; i++)
            x[i + j * n0] = (float)((i * 7 + j * 3) % 5) * 0.25f - 0.5f;
        for (int i = 0; i < nl; i++)
            t[i + j * nl] = i == j % nl ? 1.0f : 0.0f;
    }
}

static int check(int rc, const char *what)
{
    if (rc != FA_OK) {
        fprintf(stderr, "%s: %s\n", what, fa_last_error());
        exit(1);
    }
    return rc;
}

static void make(const char *dir, const char *name, int first_rule, int rule, int opt,
                 double dropout, int loss, const int32_t *acts)
{
    const int32_t sizes[] = {3, 5, 4, 2};
    fa_net *net = NULL;
    float x[3 * B], t[2 * B], y[2 * B];
    char path[512];
    check(fa_net_create(&net, 3, sizes, acts, loss, 4242), "create");
    check(fa_net_set_feedback_init(net, FA_DIST_GAUSSIAN, 0.3), "feedback init");
    if (first_rule >= 0)
        check(fa_net_set_rule(net, first_rule), "first rule");
    check(fa_net_set_rule(net, rule), "rule");
    check(fa_net_set_optimizer(net, opt), "optimizer");
    check(fa_net_set_hparam(net, FA_HP_LR, 0.05), "lr");
    check(fa_net_set_hparam(net, FA_HP_WEIGHT_DECAY, 1e-3), "wd");
    for (int l = 1; l <= 2; l++)
        check(fa_net_set_dropout(net, l, dropout), "dropout");
    batch(3, 2, x, t);
    for (int s = 0; s < 3; s++)
        check(fa_net_train_step(net, x, 3, t, 2, B, NULL), "train");
    snprintf(path, sizeof path, "%s/v1-%s.fanet", dir, name);
    check(fa_net_save(net, path), "save");
    snprintf(path, sizeof path, "%s/v1-%s.out", dir, name);
    FILE *f = fopen(path, "wb");
    check(fa_net_forward(net, x, 3, B, y, 2), "forward");
    fwrite(y, sizeof *y, 2 * B, f);
    if (dropout == 0.0) {
        for (int s = 0; s < 5; s++)
            check(fa_net_train_step(net, x, 3, t, 2, B, NULL), "train");
        check(fa_net_forward(net, x, 3, B, y, 2), "forward");
        fwrite(y, sizeof *y, 2 * B, f);
    }
    fclose(f);
    fa_net_free(net);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : ".";
    const int32_t tanh3[] = {FA_ACT_TANH, FA_ACT_TANH, FA_ACT_IDENTITY};
    const int32_t mixed[] = {FA_ACT_SIGMOID, FA_ACT_RELU, FA_ACT_IDENTITY};
    make(dir, "dfa-fa-adam-dropout", FA_RULE_FA, FA_RULE_DFA, FA_OPT_ADAM, 0.25,
         FA_LOSS_SOFTMAX_CE, tanh3);
    make(dir, "fa-momentum", -1, FA_RULE_FA, FA_OPT_MOMENTUM, 0.0, FA_LOSS_MSE, mixed);
    make(dir, "dfa-rmsprop", -1, FA_RULE_DFA, FA_OPT_RMSPROP, 0.0, FA_LOSS_SOFTMAX_CE, tanh3);
    return 0;
}
