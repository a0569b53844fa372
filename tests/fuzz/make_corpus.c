/*
 * make_corpus -- writes the seed corpora of the harnesses with the library
 * itself, so that the seeds are exactly what fa_net_save produces, what
 * fa_spec_parse reads and what fa-train reads, rather than hand-made
 * approximations:
 *
 *   make_corpus CORPUS_DIR      e.g. build/tests/fuzz/make_corpus tests/fuzz/corpus
 *
 * writes the model images CORPUS_DIR/model_load/v2-NAME.fanet, the spec
 * texts CORPUS_DIR/spec_parse/NAME.txt and the IDX files CORPUS_DIR/idx/NAME
 * (plain and gzip).  Deterministic: fixed seeds and data, so running it
 * again on the same platform rewrites the same bytes.  The networks are
 * tiny on purpose: the fuzzer mutates every byte of a seed, and a small
 * seed keeps each execution cheap while still covering every block of the
 * format (one and several layers, dense, convolution and both poolings,
 * each rule's feedback blocks, each optimiser's state, dropout, every loss
 * and activation).
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

#define MAX_WIDTH 64 /* of the input and output layers, for the data below */
#define BATCH 4

typedef struct model_spec {
    const char *name;
    const char *arch;   /* fa_spec_parse text, every activation given */
    int32_t loss;
    /* Rules set in this order before training: the last one trains; every
     * rule with stored feedback among them leaves its block in the image. */
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
    {"bp-sgd-1layer", "3-2:identity", FA_LOSS_MSE, {FA_RULE_BP}, 1, FA_OPT_SGD,
     FA_DFA_AFTER_ACTIVATION, FA_DIST_UNIFORM, FA_SCALE_AUTO, 0.0, 0.0, 0},
    {"fa-adam-2layer", "4-5:tanh-3:identity", FA_LOSS_SOFTMAX_CE, {FA_RULE_FA}, 1,
     FA_OPT_ADAM, FA_DFA_AFTER_ACTIVATION, FA_DIST_UNIFORM, FA_SCALE_AUTO, 0.25, 0.0, 2},
    {"dfa-rmsprop-3layer", "3-4:relu-4:sigmoid-2:identity", FA_LOSS_SIGMOID_BCE,
     {FA_RULE_DFA}, 1, FA_OPT_RMSPROP, FA_DFA_BEFORE_ACTIVATION, FA_DIST_GAUSSIAN, 0.5,
     0.0, 1e-3, 2},
    /* Two feedback blocks present while the rule is BP. */
    {"bp-nesterov-fa-dfa-blocks", "2-3:leaky_relu-2:tanh", FA_LOSS_MSE,
     {FA_RULE_FA, FA_RULE_DFA, FA_RULE_BP}, 3, FA_OPT_NESTEROV, FA_DFA_AFTER_ACTIVATION,
     FA_DIST_SIGN, 0.3, 0.1, 0.0, 1},
    {"dfa-adam-4layer", "5-6:tanh-6:tanh-6:relu-3:identity", FA_LOSS_SOFTMAX_CE,
     {FA_RULE_DFA}, 1, FA_OPT_ADAM, FA_DFA_AFTER_ACTIVATION, FA_DIST_SIGN, FA_SCALE_AUTO,
     0.0, 0.0, 3},
    {"fa-momentum-3layer", "2-3:sigmoid-3:leaky_relu-1:identity", FA_LOSS_SIGMOID_BCE,
     {FA_RULE_FA}, 1, FA_OPT_MOMENTUM, FA_DFA_AFTER_ACTIVATION, FA_DIST_GAUSSIAN,
     FA_SCALE_AUTO, 0.0, 0.0, 1},
    /* The sign-concordant family: USF stores nothing, BRSF and FRSF their
     * magnitudes. */
    {"usf-brsf-frsf-sgd", "3-4:tanh-4:relu-2:identity", FA_LOSS_MSE,
     {FA_RULE_USF, FA_RULE_BRSF, FA_RULE_FRSF}, 3, FA_OPT_SGD, FA_DFA_AFTER_ACTIVATION,
     FA_DIST_UNIFORM, FA_SCALE_AUTO, 0.0, 1e-4, 2},
    {"drtp-sdfa-shallow-nesterov", "4-5:sigmoid-3:identity", FA_LOSS_SIGMOID_BCE,
     {FA_RULE_DRTP, FA_RULE_SDFA, FA_RULE_SHALLOW}, 3, FA_OPT_NESTEROV,
     FA_DFA_AFTER_ACTIVATION, FA_DIST_UNIFORM, 0.2, 0.0, 0.0, 2},
    /* Convolution and pooling layers, and the learning feedback rules. */
    {"conv-maxpool-kp-adam", "1x6x6-c2k3:relu-m2-3:identity", FA_LOSS_SOFTMAX_CE,
     {FA_RULE_KP}, 1, FA_OPT_ADAM, FA_DFA_AFTER_ACTIVATION, FA_DIST_UNIFORM,
     FA_SCALE_AUTO, 0.0, 0.0, 2},
    {"conv-avgpool-wm-rmsprop", "1x4x4-c2k3,2p1:tanh-a2s1-3:identity", FA_LOSS_MSE,
     {FA_RULE_WM}, 1, FA_OPT_RMSPROP, FA_DFA_AFTER_ACTIVATION, FA_DIST_GAUSSIAN,
     FA_SCALE_AUTO, 0.0, 0.0, 2},
    {"conv-dfa-momentum", "1x5x5-c2k2:relu-m2-c1k1:tanh-2:identity", FA_LOSS_MSE,
     {FA_RULE_DFA}, 1, FA_OPT_MOMENTUM, FA_DFA_AFTER_ACTIVATION, FA_DIST_SIGN,
     FA_SCALE_AUTO, 0.2, 0.0, 1},
};

/* Spec texts beyond those of the models: the parser's other forms
 * (default activations, repeats, strides, non-square kernels). */
static const char *const spec_texts[][2] = {
    {"lenet", "1x28x28-c6k5p2-m2-c16k5-m2-c120k5-84-10"},
    {"repeat", "784-240x7-10"},
    {"strides", "3x9x9-c4k3s2p1:leaky_relu-a3s2-10:sigmoid"},
    {"kernel-hw", "2x6x10-c3k2,4s2-m1-5x2:tanh-1"},
    {"minimal", "10-1"},
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

/* Write text to dir/name; 1 on failure. */
static int write_text(const char *dir, const char *name, const char *text)
{
    char path[1024];
    FILE *f;
    size_t len = strlen(text);

    if (join(path, sizeof path, dir, name, ".txt"))
        return 1;
    f = fopen(path, "wb");
    if (f == NULL || fwrite(text, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "make_corpus: cannot write %s\n", path);
        return 1;
    }
    return 0;
}

/* The text form of a spec that the library writes, into buf. */
static int format_spec(const fa_spec *spec, char *buf, size_t len, const char *name)
{
    if (fa_spec_format(spec, buf, (int64_t)len, NULL) != FA_OK)
        return fail("fa_spec_format", name);
    return 0;
}

static int write_model(const model_spec *m, const char *model_dir, const char *spec_dir)
{
    fa_spec *spec = NULL;
    fa_net *net = NULL;
    int32_t L = 0, sizes[16];
    float x[BATCH * MAX_WIDTH], t[BATCH * MAX_WIDTH];
    char path[1024], text[256], name[128];
    int rc = 1;

    if (fa_spec_parse(&spec, m->arch, FA_ACT_TANH, FA_ACT_IDENTITY) != FA_OK)
        return fail("fa_spec_parse", m->name);
    if (fa_net_create_from_spec(&net, spec, m->loss, 20240601) != FA_OK) {
        rc = fail("fa_net_create_from_spec", m->name);
        goto done;
    }
    if (fa_net_num_layers(net, &L) != FA_OK || L + 1 > 16 ||
        fa_net_get_sizes(net, sizes, L + 1) != FA_OK || sizes[0] > MAX_WIDTH ||
        sizes[L] > MAX_WIDTH) {
        fprintf(stderr, "make_corpus: %s: too large for the data (MAX_WIDTH)\n", m->name);
        goto done;
    }
    /* Fixed data: a ramp for inputs, one-hot targets (valid for every loss). */
    for (int i = 0; i < sizes[0] * BATCH; i++)
        x[i] = (float)((i * 7) % 11) / 11.0f - 0.5f;
    for (int j = 0; j < BATCH; j++)
        for (int i = 0; i < sizes[L]; i++)
            t[i + j * sizes[L]] = i == j % sizes[L] ? 1.0f : 0.0f;

    if (fa_net_set_feedback_init(net, m->fb_dist, m->fb_scale) != FA_OK ||
        fa_net_set_dfa_variant(net, m->dfa_variant) != FA_OK ||
        fa_net_set_optimizer(net, m->optimizer) != FA_OK ||
        fa_net_set_hparam(net, FA_HP_WEIGHT_DECAY, m->weight_decay) != FA_OK ||
        fa_net_seed_dropout(net, 7) != FA_OK) {
        rc = fail("setting up", m->name);
        goto done;
    }
    for (int i = 0; i < m->n_rules; i++)
        if (fa_net_set_rule(net, m->rules[i]) != FA_OK) {
            rc = fail("fa_net_set_rule", m->name);
            goto done;
        }
    for (int32_t l = 1; l < L; l++)
        if (fa_net_set_dropout(net, l, m->dropout) != FA_OK) {
            rc = fail("fa_net_set_dropout", m->name);
            goto done;
        }
    for (int s = 0; s < m->steps; s++)
        if (fa_net_train_step(net, x, sizes[0], t, sizes[L], BATCH, NULL) != FA_OK) {
            rc = fail("fa_net_train_step", m->name);
            goto done;
        }
    snprintf(name, sizeof name, "v2-%s", m->name);
    if (join(path, sizeof path, model_dir, name, ".fanet"))
        goto done;
    if (fa_net_save(net, path) != FA_OK) {
        rc = fail("fa_net_save", m->name);
        goto done;
    }
    /* The architecture as the library writes it, as a spec seed. */
    if (format_spec(spec, text, sizeof text, m->name) ||
        write_text(spec_dir, m->name, text))
        goto done;
    rc = 0;
done:
    fa_net_free(net);
    fa_spec_free(spec);
    return rc;
}

/* A spec text the parser accepts, as given and, when it differs, in the
 * form the library writes. */
static int write_spec_text(const char *name, const char *text, const char *dir)
{
    fa_spec *spec = NULL;
    char formatted[256], name2[128];
    int rc;

    if (fa_spec_parse(&spec, text, FA_ACT_RELU, FA_ACT_IDENTITY) != FA_OK)
        return fail("fa_spec_parse", name);
    rc = write_text(dir, name, text);
    if (rc == 0)
        rc = format_spec(spec, formatted, sizeof formatted, name);
    if (rc == 0 && strcmp(formatted, text) != 0) {
        snprintf(name2, sizeof name2, "%s-formatted", name);
        rc = write_text(dir, name2, formatted);
    }
    fa_spec_free(spec);
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
    char model_dir[1024], idx_dir[1024], spec_dir[1024];
    int bad = 0;

    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    if (join(model_dir, sizeof model_dir, argv[1], "model_load", "") ||
        join(idx_dir, sizeof idx_dir, argv[1], "idx", "") ||
        join(spec_dir, sizeof spec_dir, argv[1], "spec_parse", "") ||
        make_dir(argv[1]) || make_dir(model_dir) || make_dir(idx_dir) ||
        make_dir(spec_dir))
        return 1;
    /* One thread: the same bytes whatever the machine's core count. */
    if (fa_set_threads(1) != FA_OK)
        return fail("fa_set_threads", "main");

    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++)
        bad |= write_model(&models[i], model_dir, spec_dir);
    for (size_t i = 0; i < sizeof spec_texts / sizeof spec_texts[0]; i++)
        bad |= write_spec_text(spec_texts[i][0], spec_texts[i][1], spec_dir);

    bad |= write_idx(idx_dir, "labels-5.idx1", 0, 1, labels5);
    bad |= write_idx(idx_dir, "labels-1.idx1", 0, 1, labels1);
    bad |= write_idx(idx_dir, "images-3x4x4.idx3", 0, 3, images3x4x4);
    bad |= write_idx(idx_dir, "images-1x1x1.idx3", 0, 3, images1x1x1);
    bad |= write_idx(idx_dir, "labels-5.idx1.gz", 1, 1, labels5);
    bad |= write_idx(idx_dir, "images-2x3x5.idx3.gz", 1, 3, images2x3x5);
    return bad;
}
