/*
 * make_corpus -- writes the seed corpora of the harnesses with the library
 * itself, so that the seeds are exactly what fa_net_save produces (and
 * what fa-train reads) rather than hand-made approximations:
 *
 *   make_corpus CORPUS_DIR      e.g. build/tests/fuzz/make_corpus tests/fuzz/corpus
 *
 * writes the model files CORPUS_DIR/model_load/NAME.fanet and the IDX files
 * CORPUS_DIR/idx/NAME (plain and gzip).  Deterministic:
 * fixed seeds and data, so running it again on the same platform rewrites
 * the same bytes.  The networks are tiny on purpose: the fuzzer mutates
 * every byte of a seed, and a small seed keeps each execution cheap while
 * still covering every block of the format (one and several layers, each
 * rule, feedback blocks present and absent, each optimiser's state,
 * dropout, every loss).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <zlib.h>

#include <feedbackalign.h>

#define MAX_LAYERS 4
#define MAX_WIDTH 8 /* of the input and output layers, for the data below */
#define BATCH 4

typedef struct model_spec {
    const char *name;
    int32_t n_layers;
    int32_t sizes[MAX_LAYERS + 1];
    int32_t acts[MAX_LAYERS];
    int32_t loss;
    /* Rules set in this order before training: the last one trains; every
     * FA/DFA among them leaves its feedback block in the file. */
    int32_t rules[3];
    int32_t n_rules;
    int32_t optimizer;
    int32_t dfa_variant;
    int32_t fb_dist;
    double fb_scale;
    double dropout;     /* on every hidden layer */
    double weight_decay;
    int32_t steps;      /* training steps, so optimiser state is not zero */
} model_spec;

static const model_spec models[] = {
    /* One layer: no hidden layer, so no feedback and no dropout fields. */
    {"bp-sgd-1layer", 1, {3, 2}, {FA_ACT_IDENTITY}, FA_LOSS_MSE,
     {FA_RULE_BP}, 1, FA_OPT_SGD, FA_DFA_AFTER_ACTIVATION, FA_DIST_UNIFORM,
     FA_SCALE_AUTO, 0.0, 0.0, 0},
    {"fa-adam-2layer", 2, {4, 5, 3}, {FA_ACT_TANH, FA_ACT_IDENTITY},
     FA_LOSS_SOFTMAX_CE, {FA_RULE_FA}, 1, FA_OPT_ADAM,
     FA_DFA_AFTER_ACTIVATION, FA_DIST_UNIFORM, FA_SCALE_AUTO, 0.25, 0.0, 2},
    {"dfa-rmsprop-3layer", 3, {3, 4, 4, 2},
     {FA_ACT_RELU, FA_ACT_SIGMOID, FA_ACT_IDENTITY}, FA_LOSS_SIGMOID_BCE,
     {FA_RULE_DFA}, 1, FA_OPT_RMSPROP, FA_DFA_BEFORE_ACTIVATION,
     FA_DIST_GAUSSIAN, 0.5, 0.0, 1e-3, 2},
    /* Both feedback blocks present while the rule is BP. */
    {"bp-nesterov-both-feedback", 2, {2, 3, 2},
     {FA_ACT_LEAKY_RELU, FA_ACT_TANH}, FA_LOSS_MSE,
     {FA_RULE_FA, FA_RULE_DFA, FA_RULE_BP}, 3, FA_OPT_NESTEROV,
     FA_DFA_AFTER_ACTIVATION, FA_DIST_SIGN, 0.3, 0.1, 0.0, 1},
    {"dfa-adam-4layer", 4, {5, 6, 6, 6, 3},
     {FA_ACT_TANH, FA_ACT_TANH, FA_ACT_RELU, FA_ACT_IDENTITY},
     FA_LOSS_SOFTMAX_CE, {FA_RULE_DFA}, 1, FA_OPT_ADAM,
     FA_DFA_AFTER_ACTIVATION, FA_DIST_SIGN, FA_SCALE_AUTO, 0.0, 0.0, 3},
    {"fa-momentum-3layer", 3, {2, 3, 3, 1},
     {FA_ACT_SIGMOID, FA_ACT_LEAKY_RELU, FA_ACT_IDENTITY}, FA_LOSS_SIGMOID_BCE,
     {FA_RULE_FA}, 1, FA_OPT_MOMENTUM, FA_DFA_AFTER_ACTIVATION,
     FA_DIST_GAUSSIAN, FA_SCALE_AUTO, 0.0, 0.0, 1},
};

static int fail(const char *what, const char *name)
{
    fprintf(stderr, "make_corpus: %s: %s: %s\n", name, what, fa_last_error());
    return 1;
}

/* dir/name into buf (size len); complains and returns 1 if it does not fit. */
static int join(char *buf, size_t len, const char *dir, const char *name,
                const char *ext)
{
    int n = snprintf(buf, len, "%s/%s%s", dir, name, ext);
    if (n < 0 || (size_t)n >= len) {
        fprintf(stderr, "make_corpus: path too long: %s/%s%s\n", dir, name, ext);
        return 1;
    }
    return 0;
}

static int make_dir(const char *path)
{
    if (mkdir(path, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "make_corpus: cannot create %s: %s\n", path,
                strerror(errno));
        return 1;
    }
    return 0;
}

static int write_model(const model_spec *m, const char *dir)
{
    fa_net *net = NULL;
    int32_t n_in = m->sizes[0], n_out = m->sizes[m->n_layers];
    float x[BATCH * MAX_WIDTH], t[BATCH * MAX_WIDTH];
    char path[1024];
    int rc = 1;

    if (n_in > MAX_WIDTH || n_out > MAX_WIDTH) {
        fprintf(stderr, "make_corpus: %s: raise MAX_WIDTH\n", m->name);
        return 1;
    }

    /* Fixed data: a ramp for inputs, one-hot targets (valid for every loss). */
    for (int i = 0; i < n_in * BATCH; i++)
        x[i] = (float)((i * 7) % 11) / 11.0f - 0.5f;
    for (int j = 0; j < BATCH; j++)
        for (int i = 0; i < n_out; i++)
            t[i + j * n_out] = i == j % n_out ? 1.0f : 0.0f;

    if (fa_net_create(&net, m->n_layers, m->sizes, m->acts, m->loss, 20240601) != FA_OK)
        return fail("fa_net_create", m->name);
    if (fa_net_set_feedback_init(net, m->fb_dist, m->fb_scale) != FA_OK ||
        fa_net_set_dfa_variant(net, m->dfa_variant) != FA_OK ||
        fa_net_set_optimizer(net, m->optimizer) != FA_OK ||
        fa_net_set_hparam(net, FA_HP_WEIGHT_DECAY, m->weight_decay) != FA_OK) {
        rc = fail("setting up", m->name);
        goto done;
    }
    for (int i = 0; i < m->n_rules; i++)
        if (fa_net_set_rule(net, m->rules[i]) != FA_OK) {
            rc = fail("fa_net_set_rule", m->name);
            goto done;
        }
    for (int32_t l = 1; l < m->n_layers; l++)
        if (fa_net_set_dropout(net, l, m->dropout) != FA_OK) {
            rc = fail("fa_net_set_dropout", m->name);
            goto done;
        }
    for (int s = 0; s < m->steps; s++)
        if (fa_net_train_step(net, x, n_in, t, n_out, BATCH, NULL) != FA_OK) {
            rc = fail("fa_net_train_step", m->name);
            goto done;
        }
    if (join(path, sizeof path, dir, m->name, ".fanet"))
        goto done;
    if (fa_net_save(net, path) != FA_OK) {
        rc = fail("fa_net_save", m->name);
        goto done;
    }
    rc = 0;
done:
    fa_net_free(net);
    return rc;
}

/* An IDX file of unsigned bytes: magic {0, 0, 0x08, ndims}, big-endian
 * dimensions, data; gzip-compressed when gz is set. */
static int write_idx(const char *dir, const char *name, int gz, int ndims,
                     const uint32_t *dims)
{
    unsigned char buf[16 + 256];
    size_t count = 1, len;
    char path[1024];

    buf[0] = 0;
    buf[1] = 0;
    buf[2] = 0x08;
    buf[3] = (unsigned char)ndims;
    for (int i = 0; i < ndims; i++) {
        for (int k = 0; k < 4; k++)
            buf[4 + 4 * i + k] = (unsigned char)(dims[i] >> (24 - 8 * k));
        count *= dims[i];
    }
    len = 4 + 4 * (size_t)ndims;
    if (len + count > sizeof buf) {
        fprintf(stderr, "make_corpus: %s too large\n", name);
        return 1;
    }
    /* Labels 0..9 for label files, a gradient over the full byte range for
     * images. */
    for (size_t i = 0; i < count; i++)
        buf[len + i] = ndims == 1 ? (unsigned char)(i % 10)
                                  : (unsigned char)((i * 255) / (count > 1 ? count - 1 : 1));
    len += count;
    if (join(path, sizeof path, dir, name, ""))
        return 1;
    if (gz) {
        gzFile f = gzopen(path, "wb9");
        if (f == NULL || gzwrite(f, buf, (unsigned)len) != (int)len || gzclose(f) != Z_OK) {
            fprintf(stderr, "make_corpus: cannot write %s\n", path);
            return 1;
        }
        return 0;
    }
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "make_corpus: cannot write %s\n", path);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const uint32_t labels5[] = {5};
    static const uint32_t labels1[] = {1};
    static const uint32_t images3x4x4[] = {3, 4, 4};
    static const uint32_t images2x3x5[] = {2, 3, 5};
    static const uint32_t images1x1x1[] = {1, 1, 1};
    char model_dir[1024], idx_dir[1024];
    int bad = 0;

    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    if (join(model_dir, sizeof model_dir, argv[1], "model_load", "") ||
        join(idx_dir, sizeof idx_dir, argv[1], "idx", "") ||
        make_dir(argv[1]) || make_dir(model_dir) || make_dir(idx_dir))
        return 1;

    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++)
        bad |= write_model(&models[i], model_dir);

    bad |= write_idx(idx_dir, "labels-5.idx1", 0, 1, labels5);
    bad |= write_idx(idx_dir, "labels-1.idx1", 0, 1, labels1);
    bad |= write_idx(idx_dir, "images-3x4x4.idx3", 0, 3, images3x4x4);
    bad |= write_idx(idx_dir, "images-1x1x1.idx3", 0, 3, images1x1x1);
    bad |= write_idx(idx_dir, "labels-5.idx1.gz", 1, 1, labels5);
    bad |= write_idx(idx_dir, "images-2x3x5.idx3.gz", 1, 3, images2x3x5);
    return bad;
}
