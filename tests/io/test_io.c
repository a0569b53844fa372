/*
 * test_io.c -- CRC-32, model images (src/image.c) and model files
 * (src/io.c): round trips of every rule x every optimiser and of a
 * convolutional network, corrupt images of format version 2, in-memory
 * images and fa_net_clone, the version-1 fixtures written by library 0.1.0
 * (tests/io/data), and the hardening of fa_net_save (stale temporaries,
 * long names, symbolic links, failed saves).
 *
 * Links the internal static library: the tests compare handles field by
 * field (struct fa_net) and rebuild corrupt images with fa_crc32.  Offsets
 * into images follow the field list at the top of src/image.c; if the
 * format changes, these tests must change with it (test_small_layout
 * fails first and says where).
 */
#define _POSIX_C_SOURCE 200809L

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

#ifndef FA_TEST_DATA
#error "FA_TEST_DATA (the directory of the version-1 fixtures) must be defined"
#endif

/* An assertion for loops over thousands of cases: costs nothing until it
 * fails (Check records every passing ck_assert). */
#define CHECK(cond, ...)                 \
    do {                                 \
        if (!(cond))                     \
            ck_abort_msg(__VA_ARGS__);   \
    } while (0)

#define OK(call)                                                                   \
    do {                                                                           \
        int ok_rc_ = (call);                                                       \
        CHECK(ok_rc_ == FA_OK, "%s returned %d: %s", #call, ok_rc_, fa_last_error()); \
    } while (0)

/* ---------------------------------------------------------------- helpers */

/* A fresh directory per test, removed (with its files) at the end. */
static void make_dir(char *dir, size_t len)
{
    const char *base = getenv("TMPDIR");
    snprintf(dir, len, "%s/fa-io-XXXXXX", base != NULL && base[0] != '\0' ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d;
        struct dirent *e;
        char sub[PATH_MAX];
        (void)chmod(path, 0755); /* a test may have left it read-only */
        d = opendir(path);
        ck_assert_ptr_nonnull(d);
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            remove_tree(sub);
        }
        closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* Number of entries in dir (not counting . and ..); *n_tmp receives how
 * many are named like the library's temporaries (".fa-tmp-" in the name),
 * so a leaked temporary is caught. */
static int count_entries(const char *dir, int *n_tmp)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    ck_assert_ptr_nonnull(d);
    *n_tmp = 0;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        n++;
        if (strstr(e->d_name, ".fa-tmp-") != NULL)
            (*n_tmp)++;
    }
    closedir(d);
    return n;
}

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf;
    long n;
    ck_assert_msg(f != NULL, "cannot open %s: %s", path, strerror(errno));
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    ck_assert_int_ge(n, 0);
    rewind(f);
    buf = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void write_file(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create %s: %s", path, strerror(errno));
    if (len > 0)
        ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

/* The image of a network, malloc'd (the size query, then the write). */
static unsigned char *image_of(const fa_net *net, size_t *len)
{
    int64_t need = -1;
    unsigned char *buf;
    OK(fa_net_save_image(net, NULL, 0, &need));
    ck_assert_int_gt(need, 0);
    buf = malloc((size_t)need + 1); /* + 1: room for an appended byte */
    ck_assert_ptr_nonnull(buf);
    OK(fa_net_save_image(net, buf, need, NULL));
    *len = (size_t)need;
    return buf;
}

/* Recompute the trailing CRC-32 after editing an image, so the edit is
 * what the loader sees rather than a checksum mismatch. */
static void fix_crc(unsigned char *buf, size_t len)
{
    uint32_t crc = fa_crc32(0, buf, len - 4);
    memcpy(buf + len - 4, &crc, 4);
}

/* The loader must refuse buf (len bytes) with FA_ERR_FORMAT, leave *out
 * NULL and say `expect` (NULL: any message) -- both as an image (from a
 * heap copy of exactly len bytes, so that ASan and valgrind catch a read
 * past the end) and, if path is not NULL, as a file written there. */
static void assert_refused(const unsigned char *buf, size_t len, const char *path,
                           const char *expect, const char *what)
{
    unsigned char *copy = malloc(len > 0 ? len : 1);
    fa_net *out = (fa_net *)&out; /* anything but NULL: load must clear it */
    int rc;
    ck_assert_ptr_nonnull(copy);
    if (len > 0)
        memcpy(copy, buf, len);
    rc = fa_net_load_image(&out, copy, (int64_t)len);
    free(copy);
    if (rc == FA_OK)
        fa_net_free(out);
    CHECK(rc == FA_ERR_FORMAT, "%s: fa_net_load_image returned %d (%s), expected "
          "FA_ERR_FORMAT", what, rc, fa_last_error());
    CHECK(out == NULL, "%s: fa_net_load_image failed but left *out set", what);
    CHECK(expect == NULL || strstr(fa_last_error(), expect) != NULL,
          "%s: message \"%s\" does not contain \"%s\"", what, fa_last_error(), expect);
    CHECK(strstr(fa_last_error(), "fa_net_load_image") != NULL,
          "%s: message \"%s\" does not name fa_net_load_image", what, fa_last_error());
    if (path == NULL)
        return;
    write_file(path, buf, len);
    out = (fa_net *)&out;
    rc = fa_net_load(&out, path);
    if (rc == FA_OK)
        fa_net_free(out);
    CHECK(rc == FA_ERR_FORMAT, "%s: fa_net_load returned %d (%s), expected FA_ERR_FORMAT",
          what, rc, fa_last_error());
    CHECK(out == NULL, "%s: fa_net_load failed but left *out set", what);
    CHECK(expect == NULL || strstr(fa_last_error(), expect) != NULL,
          "%s: message \"%s\" does not contain \"%s\"", what, fa_last_error(), expect);
}

/* ------------------------------------------------------- the test networks */

typedef struct config {
    const char *name;
    const char *spec;   /* fa_spec_parse text; hidden tanh, output identity */
    int32_t loss;
    int32_t rule;       /* final rule */
    int32_t also_rule;  /* a rule set before `rule`, so its block exists too; -1 none */
    int32_t optimizer;
    int32_t variant;
    int32_t dist;
    double scale;
    double dropout;     /* on every hidden layer */
} config;

#define DENSE_SPEC "3-5:tanh-4:leaky_relu-2:identity"
/* conv2d, maxpool, conv2d, avgpool, dense:
 * 1x6x6 -> c2k3p1 2x6x6 -> m2 2x3x3 -> c3k2 3x2x2 -> a2 3x1x1 -> 2 */
#define CONV_SPEC "1x6x6-c2k3p1:tanh-m2-c3k2:relu-a2-2:identity"

static const config fixed_configs[] = {
    {"BP SGD two layers", "3-5:tanh-2:identity", FA_LOSS_MSE, FA_RULE_BP, -1, FA_OPT_SGD,
     FA_DFA_AFTER_ACTIVATION, FA_DIST_UNIFORM, 0.0, 0.0},
    {"DFA sigmoid BCE RMSprop", "3-5:tanh-4:tanh-2:identity", FA_LOSS_SIGMOID_BCE,
     FA_RULE_DFA, -1, FA_OPT_RMSPROP, FA_DFA_BEFORE_ACTIVATION, FA_DIST_SIGN, 0.5, 0.2},
    {"one layer FA (no feedback)", "3-2:identity", FA_LOSS_SOFTMAX_CE, FA_RULE_FA, -1,
     FA_OPT_ADAM, FA_DFA_AFTER_ACTIVATION, FA_DIST_UNIFORM, 0.0, 0.0},
};
#define N_FIXED ((int)(sizeof fixed_configs / sizeof fixed_configs[0]))
#define N_RULE_OPT (FA_N_RULES * FA_N_OPTIMIZERS)

/* Loop index -> configuration: first every rule x every optimiser on a
 * dense net, then every rule on the conv net (the optimiser cycling, so
 * that every optimiser meets a convolution too), then fixed_configs.
 * Dropout is on wherever there is a hidden layer, so both RNG streams
 * matter; the feedback distribution and DFA variant vary with the rule. */
static config case_config(int i, char *name, size_t len)
{
    config c;
    if (i >= N_RULE_OPT + FA_N_RULES)
        return fixed_configs[i - N_RULE_OPT - FA_N_RULES];
    memset(&c, 0, sizeof c);
    if (i < N_RULE_OPT) {
        c.rule = i / FA_N_OPTIMIZERS;
        c.optimizer = i % FA_N_OPTIMIZERS;
        c.spec = DENSE_SPEC;
    } else {
        c.rule = i - N_RULE_OPT;
        c.optimizer = c.rule % FA_N_OPTIMIZERS;
        c.spec = CONV_SPEC;
    }
    c.loss = FA_LOSS_SOFTMAX_CE;
    /* a second stored block: FA's, or DFA's when the rule is FA */
    c.also_rule = c.rule == FA_RULE_FA ? FA_RULE_DFA : FA_RULE_FA;
    c.variant = c.rule % 2 ? FA_DFA_BEFORE_ACTIVATION : FA_DFA_AFTER_ACTIVATION;
    c.dist = c.rule % FA_N_DISTRIBUTIONS;
    c.scale = c.rule % 4 == 1 ? 0.3 : 0.0;
    c.dropout = 0.25;
    snprintf(name, len, "%s %s %s", i < N_RULE_OPT ? "dense" : "conv",
             fa_enum_name(FA_ENUM_RULE, c.rule), fa_enum_name(FA_ENUM_OPTIMIZER, c.optimizer));
    c.name = name;
    return c;
}
#define N_CASES (N_RULE_OPT + FA_N_RULES + N_FIXED)

#define BATCH 4

static fa_net *make_net(const config *c)
{
    fa_net *net = NULL;
    fa_spec *spec = NULL;
    OK(fa_spec_parse(&spec, c->spec, FA_ACT_TANH, FA_ACT_IDENTITY));
    OK(fa_net_create_from_spec(&net, spec, c->loss, 1234u));
    fa_spec_free(spec);
    /* Non-default values everywhere, so a field the image forgets shows. */
    OK(fa_net_set_feedback_init(net, c->dist, c->scale));
    OK(fa_net_set_dfa_variant(net, c->variant));
    if (c->also_rule >= 0)
        OK(fa_net_set_rule(net, c->also_rule));
    OK(fa_net_set_rule(net, c->rule));
    OK(fa_net_set_optimizer(net, c->optimizer));
    OK(fa_net_set_hparam(net, FA_HP_LR, 0.05));
    OK(fa_net_set_hparam(net, FA_HP_MOMENTUM, 0.8));
    OK(fa_net_set_hparam(net, FA_HP_BETA2, 0.99));
    OK(fa_net_set_hparam(net, FA_HP_WEIGHT_DECAY, 1e-3));
    OK(fa_net_set_hparam(net, FA_HP_LEAKY_SLOPE, 0.05));
    OK(fa_net_set_hparam(net, FA_HP_KP_DECAY, 0.01));
    OK(fa_net_set_hparam(net, FA_HP_WM_LR, 0.02));
    OK(fa_net_set_hparam(net, FA_HP_WM_DECAY, 0.02));
    OK(fa_net_set_hparam(net, FA_HP_WM_NOISE, 0.5));
    OK(fa_net_set_hparam(net, FA_HP_WM_BATCH, 8));
    for (int32_t l = 1; l < net->n_layers; l++)
        OK(fa_net_set_dropout(net, l, c->dropout));
    return net;
}

/* Deterministic batch: x (n_0, BATCH), t one-hot (n_L, BATCH).  The formula
 * of tests/io/gen_v1_fixtures.c, so the fixtures use it too. */
static void make_batch(int32_t n0, int32_t nl, float *x, float *t)
{
    for (int32_t j = 0; j < BATCH; j++) {
        for (int32_t i = 0; i < n0; i++)
            x[i + j * n0] = (float)((i * 7 + j * 3) % 5) * 0.25f - 0.5f;
        for (int32_t i = 0; i < nl; i++)
            t[i + j * nl] = i == j % nl ? 1.0f : 0.0f;
    }
}

#define MAX_IN 64
#define MAX_OUT 8

static void train(fa_net *net, int steps)
{
    const int32_t n0 = net->sizes[0], nl = net->sizes[net->n_layers];
    float x[MAX_IN * BATCH], t[MAX_OUT * BATCH], loss;
    ck_assert(n0 <= MAX_IN && nl <= MAX_OUT);
    make_batch(n0, nl, x, t);
    for (int s = 0; s < steps; s++)
        CHECK(fa_net_train_step(net, x, n0, t, nl, BATCH, &loss) == FA_OK, "step %d: %s", s,
              fa_last_error());
}

static void forward(fa_net *net, float *y)
{
    const int32_t n0 = net->sizes[0], nl = net->sizes[net->n_layers];
    float x[MAX_IN * BATCH], t[MAX_OUT * BATCH];
    make_batch(n0, nl, x, t);
    OK(fa_net_forward(net, x, n0, BATCH, y, nl));
}

static void assert_bits_equal(const void *a, const void *b, size_t bytes, const char *what,
                              const char *name)
{
    CHECK(memcmp(a, b, bytes) == 0, "%s: %s differ", name, what);
}

/* Every field an image carries, bitwise, plus the spec's text form and the
 * forward output. */
static void assert_same_net(fa_net *a, fa_net *b, const char *name)
{
    const int32_t L = a->n_layers;
    fa_spec *sa = NULL, *sb = NULL;
    char ta[256], tb[256];
    float ya[MAX_OUT * BATCH], yb[MAX_OUT * BATCH];

    CHECK(b->n_layers == L, "%s: %d layers, expected %d", name, b->n_layers, L);
    CHECK(a->in_c == b->in_c && a->in_h == b->in_h && a->in_w == b->in_w,
          "%s: input shapes differ", name);
    for (int32_t l = 1; l <= L; l++) {
        const fa_layer *x = &a->layers[l], *y = &b->layers[l];
        CHECK(x->kind == y->kind && x->units == y->units && x->kh == y->kh && x->kw == y->kw &&
                  x->stride == y->stride && x->pad == y->pad && x->act == y->act,
              "%s: layer %d records differ", name, (int)l);
        CHECK(x->w_off == y->w_off && x->b_off == y->b_off && x->n_out == y->n_out,
              "%s: layer %d layout differs", name, (int)l);
        assert_bits_equal(&x->dropout, &y->dropout, sizeof x->dropout, "dropout rates", name);
    }
    OK(fa_net_get_spec(a, &sa));
    OK(fa_net_get_spec(b, &sb));
    OK(fa_spec_format(sa, ta, sizeof ta, NULL));
    OK(fa_spec_format(sb, tb, sizeof tb, NULL));
    CHECK(strcmp(ta, tb) == 0, "%s: specs \"%s\" and \"%s\" differ", name, ta, tb);
    fa_spec_free(sa);
    fa_spec_free(sb);
    CHECK(a->loss == b->loss, "%s: loss differs", name);
    CHECK(a->rule == b->rule, "%s: rule differs", name);
    CHECK(a->dfa_variant == b->dfa_variant, "%s: DFA variant differs", name);
    CHECK(a->fb_dist == b->fb_dist, "%s: feedback distribution differs", name);
    assert_bits_equal(&a->fb_scale, &b->fb_scale, sizeof a->fb_scale, "feedback scales", name);
    CHECK(a->optimizer == b->optimizer, "%s: optimiser differs", name);
    for (int h = 0; h < FA_N_HPARAMS; h++)
        CHECK(memcmp(&a->hp[h], &b->hp[h], sizeof a->hp[h]) == 0,
              "%s: hyperparameter %s differs (%.17g, %.17g)", name,
              fa_enum_name(FA_ENUM_HPARAM, h), a->hp[h], b->hp[h]);
    CHECK(a->n_params == b->n_params, "%s: parameter counts differ", name);
    assert_bits_equal(a->params, b->params, (size_t)a->n_params * sizeof(float), "parameters",
                      name);
    for (int32_t r = 0; r < FA_N_RULES; r++) {
        CHECK((a->fb[r] != NULL) == (b->fb[r] != NULL),
              "%s: feedback block of rule %s present in one network only", name,
              fa_enum_name(FA_ENUM_RULE, r));
        if (a->fb[r] != NULL)
            assert_bits_equal(a->fb[r], b->fb[r], (size_t)fa_feedback_len(a, r) * sizeof(float),
                              fa_enum_name(FA_ENUM_RULE, r), name);
    }
    /* the whole state, also what the optimiser does not use (zero in both) */
    assert_bits_equal(a->opt_state, b->opt_state, 2 * (size_t)a->n_params * sizeof(float),
                      "optimiser states", name);
    CHECK(a->opt_step == b->opt_step, "%s: step counts %lld and %lld differ", name,
          (long long)a->opt_step, (long long)b->opt_step);
    assert_bits_equal(a->rng.s, b->rng.s, sizeof a->rng.s, "model RNG streams", name);
    assert_bits_equal(a->rng_drop.s, b->rng_drop.s, sizeof a->rng_drop.s,
                      "dropout RNG streams", name);
    forward(a, ya);
    forward(b, yb);
    assert_bits_equal(ya, yb, (size_t)a->sizes[L] * BATCH * sizeof(float), "forward outputs",
                      name);
}

/* ------------------------------------------------------------------ CRC-32 */

START_TEST(test_crc32_known_answers)
{
    static const char check[] = "123456789";
    static const char fox[] = "The quick brown fox jumps over the lazy dog";

    ck_assert_uint_eq(fa_crc32(0, check, 9), 0xCBF43926u);
    ck_assert_uint_eq(fa_crc32(0, fox, strlen(fox)), 0x414FA339u);
    ck_assert_uint_eq(fa_crc32(0, "", 0), 0u);
    ck_assert_uint_eq(fa_crc32(0, NULL, 0), 0u);
    /* Continuing with nothing changes nothing. */
    ck_assert_uint_eq(fa_crc32(0xCBF43926u, "", 0), 0xCBF43926u);
    /* crc(a || b) == crc32(crc32(0, a), b) at every split point. */
    for (size_t k = 0; k <= 9; k++)
        ck_assert_uint_eq(fa_crc32(fa_crc32(0, check, k), check + k, 9 - k), 0xCBF43926u);
}
END_TEST

/* ------------------------------------------------------------- round trip */

/* Trained, saved, loaded: bitwise the same network. */
START_TEST(test_round_trip)
{
    char name[96], dir[512], path[600];
    const config c = case_config(_i, name, sizeof name);
    fa_net *a = make_net(&c), *b = NULL;
    int n_tmp;

    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/model.fanet", dir);
    train(a, 3); /* non-zero optimiser state, step count, advanced RNGs */
    CHECK(fa_net_save(a, path) == FA_OK, "%s: %s", c.name, fa_last_error());
    ck_assert_int_eq(count_entries(dir, &n_tmp), 1);
    ck_assert_int_eq(n_tmp, 0);
    CHECK(fa_net_load(&b, path) == FA_OK, "%s: %s", c.name, fa_last_error());
    ck_assert_ptr_nonnull(b);
    assert_same_net(a, b, c.name);
    /* Both blocks were written: the current rule's and the one before. */
    if (c.also_rule >= 0 && fa_feedback_len(a, c.also_rule) > 0)
        CHECK(b->fb[c.also_rule] != NULL, "%s: the %s block was lost", c.name,
              fa_enum_name(FA_ENUM_RULE, c.also_rule));
    fa_net_free(a);
    fa_net_free(b);
    remove_tree(dir);
}
END_TEST

/* Train 3, save, train 4 more; load, train 4: bitwise the same.  Dropout
 * makes the dropout stream matter, BRSF's redraws and WM's noise the model
 * stream, Adam and the momenta the optimiser state, BRSF, KP and WM the
 * stored feedback. */
START_TEST(test_continue_training)
{
    char name[96], dir[512], path[600];
    const config c = case_config(_i, name, sizeof name);
    fa_net *a = make_net(&c), *b = NULL;
    fa_rng rng, rng_drop;
    float *fb = NULL;
    int32_t learns = 0;

    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/model.fanet", dir);
    train(a, 3);
    OK(fa_net_save(a, path));
    rng = a->rng;
    rng_drop = a->rng_drop;
    OK(fa_rule_info(c.rule, NULL, NULL, &learns, NULL));
    if (a->fb[c.rule] != NULL) {
        size_t bytes = (size_t)fa_feedback_len(a, c.rule) * sizeof(float);
        fb = malloc(bytes);
        ck_assert_ptr_nonnull(fb);
        memcpy(fb, a->fb[c.rule], bytes);
    }
    train(a, 4);
    OK(fa_net_load(&b, path));
    train(b, 4);
    assert_same_net(a, b, c.name);
    /* What the image had to carry was in play (else this proves nothing). */
    if (c.dropout > 0.0 && a->n_layers > 1)
        CHECK(memcmp(&rng_drop, &a->rng_drop, sizeof rng_drop) != 0,
              "%s: dropout stream unused", c.name);
    if (c.rule == FA_RULE_BRSF || c.rule == FA_RULE_WM)
        CHECK(memcmp(&rng, &a->rng, sizeof rng) != 0, "%s: model stream unused", c.name);
    if (learns && fb != NULL)
        CHECK(memcmp(fb, a->fb[c.rule], (size_t)fa_feedback_len(a, c.rule) * sizeof(float)) != 0,
              "%s: the feedback did not change while training", c.name);
    free(fb);
    fa_net_free(a);
    fa_net_free(b);
    remove_tree(dir);
}
END_TEST

/* Saving over an existing file replaces it, keeps its permissions and
 * leaves no temporary file. */
START_TEST(test_save_replaces)
{
    char dir[512], path[600], n1[96], n2[96];
    const config c1 = case_config(0, n1, sizeof n1), c2 = case_config(N_RULE_OPT + 3, n2,
                                                                       sizeof n2);
    fa_net *a = make_net(&c1), *b = make_net(&c2), *c = NULL;
    struct stat st;
    int n_tmp;

    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/model.fanet", dir);
    OK(fa_net_save(a, path));
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0644); /* new files: rw-r--r-- */
    ck_assert_int_eq(chmod(path, 0600), 0);
    OK(fa_net_save(b, path));
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0600); /* replaced files keep theirs */
    ck_assert_int_eq(count_entries(dir, &n_tmp), 1);
    ck_assert_int_eq(n_tmp, 0);
    OK(fa_net_load(&c, path));
    assert_same_net(b, c, c2.name);
    fa_net_free(a);
    fa_net_free(b);
    fa_net_free(c);
    remove_tree(dir);
}
END_TEST

/* ---------------------------------------------------- corrupt model images */

/* The small model of the corruption tests: 2-3-2 (tanh, identity), softmax
 * cross-entropy, FA set first and then DFA (so two feedback blocks, both of
 * 6 floats), Adam, dropout 0.5, trained 2 steps.  17 parameters:
 * W_1 (3, 2), b_1 (3), W_2 (2, 3), b_2 (2).  The offsets, from the field
 * list at the top of src/image.c with L = 2:
 *     0  magic            8 bytes
 *     8  version          u32 (2)
 *    12  byte-order mark  u32
 *    16  n_layers         u32 (2)
 *    20  input            u32 x 3 (channels 20, height 24, width 28)
 *    32  layer 1 record   u32 x 7: kind 32, units 36, kernel_h 40, kernel_w 44,
 *                         stride 48, pad 52, activation 56
 *    60  layer 2 record   kind 60, units 64, ..., activation 84
 *    88  loss, 92 rule, 96 dfa_variant, 100 fb_dist, 104 optimizer (u32 each)
 *   108  fb_scale         f64
 *   116  n_hparams        u32 (13)
 *   120  hparams          f64 x 13: hp[i] at 120 + 8 i (lr 120, momentum 128,
 *                         beta1 136, beta2 144, epsilon 152, weight_decay 160,
 *                         rms_decay 168, leaky_slope 176, kp_decay 184,
 *                         wm_lr 192, wm_decay 200, wm_noise 208, wm_batch 216)
 *   224  dropout          f64 x 1 (layer 1)
 *   232  opt_step         i64
 *   240  rng              u64 x 4
 *   272  rng_dropout      u64 x 4
 *   304  n_feedback       u32 (2)
 *   308  n_opt_state      u64 (34)
 *   316  params           f32 x 17                       (to 384)
 *   384  FA block         rule u32 384, count u64 388, f32 x 6 at 396 (to 420)
 *   420  DFA block        rule u32 420, count u64 424, f32 x 6 at 432 (to 456)
 *   456  opt state        f32 x 34: first moments 456, second moments 524
 *   592  crc              u32
 *   596  bytes in all.
 * test_small_layout checks this table against the network itself. */
#define OFF_VERSION 8
#define OFF_BOM 12
#define OFF_NLAYERS 16
#define OFF_INPUT 20
#define OFF_LAYER1 32
#define OFF_LAYER2 60
#define OFF_LOSS 88
#define OFF_RULE 92
#define OFF_VARIANT 96
#define OFF_DIST 100
#define OFF_OPT 104
#define OFF_SCALE 108
#define OFF_NHP 116
#define OFF_HP(i) (120 + 8 * (i))
#define OFF_DROPOUT 224
#define OFF_STEP 232
#define OFF_RNG 240
#define OFF_RNG_DROP 272
#define OFF_NFB 304
#define OFF_NOPT 308
#define OFF_PARAMS 316
#define OFF_FB1 384
#define OFF_FB2 420
#define OFF_M 456
#define OFF_V 524
#define OFF_CRC 592
#define SMALL_SIZE 596u

static const config small = {
    "small", "2-3:tanh-2:identity", FA_LOSS_SOFTMAX_CE, FA_RULE_DFA, FA_RULE_FA, FA_OPT_ADAM,
    FA_DFA_AFTER_ACTIVATION, FA_DIST_UNIFORM, 0.0, 0.5};

static fa_net *small_net(void)
{
    fa_net *net = make_net(&small);
    train(net, 2);
    return net;
}

/* A fresh copy of the small model's image, with a spare byte at the end. */
static unsigned char *small_image(size_t *len)
{
    fa_net *net = small_net();
    unsigned char *buf = image_of(net, len);
    fa_net_free(net);
    ck_assert_uint_eq(*len, SMALL_SIZE);
    return buf;
}

static uint32_t rd_u32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static uint64_t rd_u64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static double rd_f64(const unsigned char *p)
{
    double v;
    memcpy(&v, p, 8);
    return v;
}

/* The offsets table above, field by field against the network it came
 * from: if this fails, the edits below hit the wrong fields. */
START_TEST(test_small_layout)
{
    static const unsigned char magic[8] = {'F', 'A', 'N', 'E', 'T', '\r', '\n', 0x1A};
    fa_net *net = small_net();
    size_t len;
    unsigned char *img = image_of(net, &len);
    const uint32_t rec1[7] = {FA_LAYER_DENSE, 3, 0, 0, 0, 0, FA_ACT_TANH};
    const uint32_t rec2[7] = {FA_LAYER_DENSE, 2, 0, 0, 0, 0, FA_ACT_IDENTITY};

    ck_assert_uint_eq(len, SMALL_SIZE);
    ck_assert(memcmp(img, magic, 8) == 0);
    ck_assert_uint_eq(rd_u32(img + OFF_VERSION), 2);
    ck_assert_uint_eq(rd_u32(img + OFF_BOM), 0x01020304u);
    ck_assert_uint_eq(rd_u32(img + OFF_NLAYERS), 2);
    ck_assert_uint_eq(rd_u32(img + OFF_INPUT), 2);
    ck_assert_uint_eq(rd_u32(img + OFF_INPUT + 4), 1);
    ck_assert_uint_eq(rd_u32(img + OFF_INPUT + 8), 1);
    for (int i = 0; i < 7; i++) {
        ck_assert_uint_eq(rd_u32(img + OFF_LAYER1 + 4 * i), rec1[i]);
        ck_assert_uint_eq(rd_u32(img + OFF_LAYER2 + 4 * i), rec2[i]);
    }
    ck_assert_uint_eq(rd_u32(img + OFF_LOSS), FA_LOSS_SOFTMAX_CE);
    ck_assert_uint_eq(rd_u32(img + OFF_RULE), FA_RULE_DFA);
    ck_assert_uint_eq(rd_u32(img + OFF_VARIANT), FA_DFA_AFTER_ACTIVATION);
    ck_assert_uint_eq(rd_u32(img + OFF_DIST), FA_DIST_UNIFORM);
    ck_assert_uint_eq(rd_u32(img + OFF_OPT), FA_OPT_ADAM);
    ck_assert(rd_f64(img + OFF_SCALE) == 0.0);
    ck_assert_uint_eq(rd_u32(img + OFF_NHP), 13);
    for (int h = 0; h < FA_N_HPARAMS; h++)
        ck_assert_msg(rd_f64(img + OFF_HP(h)) == net->hp[h], "hparam %d not at %d", h,
                      OFF_HP(h));
    ck_assert(rd_f64(img + OFF_HP(FA_HP_LR)) == 0.05);
    ck_assert(rd_f64(img + OFF_HP(FA_HP_WM_BATCH)) == 8.0);
    ck_assert(rd_f64(img + OFF_DROPOUT) == 0.5);
    ck_assert_uint_eq(rd_u64(img + OFF_STEP), 2);
    ck_assert(memcmp(img + OFF_RNG, net->rng.s, 32) == 0);
    ck_assert(memcmp(img + OFF_RNG_DROP, net->rng_drop.s, 32) == 0);
    ck_assert(memcmp(net->rng.s, net->rng_drop.s, 32) != 0);
    ck_assert_uint_eq(rd_u32(img + OFF_NFB), 2);
    ck_assert_uint_eq(rd_u64(img + OFF_NOPT), 34);
    ck_assert_int_eq(net->n_params, 17);
    ck_assert(memcmp(img + OFF_PARAMS, net->params, 17 * 4) == 0);
    ck_assert_uint_eq(rd_u32(img + OFF_FB1), FA_RULE_FA);
    ck_assert_uint_eq(rd_u64(img + OFF_FB1 + 4), 6);
    ck_assert(memcmp(img + OFF_FB1 + 12, net->fb[FA_RULE_FA], 6 * 4) == 0);
    ck_assert_uint_eq(rd_u32(img + OFF_FB2), FA_RULE_DFA);
    ck_assert_uint_eq(rd_u64(img + OFF_FB2 + 4), 6);
    ck_assert(memcmp(img + OFF_FB2 + 12, net->fb[FA_RULE_DFA], 6 * 4) == 0);
    ck_assert(memcmp(img + OFF_M, net->opt_state, 34 * 4) == 0);
    ck_assert_int_eq(OFF_V, OFF_M + 17 * 4);
    ck_assert_uint_eq(rd_u32(img + OFF_CRC), fa_crc32(0, img, OFF_CRC));
    ck_assert_uint_eq(OFF_CRC + 4, SMALL_SIZE);
    free(img);
    fa_net_free(net);
}
END_TEST

/* Every proper prefix of the image is refused as truncated, as an image and
 * as a file. */
START_TEST(test_truncated_every_length)
{
    char dir[512], path[600], what[64];
    size_t len;
    unsigned char *buf = small_image(&len);
    fa_net *net = NULL;

    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/cut.fanet", dir);
    for (size_t n = 0; n < len; n++) {
        snprintf(what, sizeof what, "first %zu bytes", n);
        assert_refused(buf, n, path, "truncated", what);
    }
    /* The untouched image still loads: the loop above tested the cuts. */
    write_file(path, buf, len);
    OK(fa_net_load(&net, path));
    fa_net_free(net);
    free(buf);
    remove_tree(dir);
}
END_TEST

/* Every byte flipped (three masks) is refused without a crash, as an image
 * and as a file: the checksum, or an earlier structural check, catches it. */
START_TEST(test_flipped_every_byte)
{
    static const unsigned char masks[] = {0x01, 0x80, 0xFF};
    char dir[512], path[600], what[64];
    size_t len;
    unsigned char *buf = small_image(&len);

    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/flip.fanet", dir);
    for (size_t i = 0; i < len; i++) {
        for (size_t m = 0; m < sizeof masks; m++) {
            buf[i] ^= masks[m];
            snprintf(what, sizeof what, "byte %zu ^ 0x%02x", i, masks[m]);
            assert_refused(buf, len, path, NULL, what);
            buf[i] ^= masks[m];
        }
    }
    free(buf);
    remove_tree(dir);
}
END_TEST

/* One or two edits of the small image, the checksum recomputed (unless
 * keep_crc), and the message the loader must give. */
typedef enum {
    E_NONE, E_U32, E_U64, E_F64, E_F32, E_BYTE, E_XOR, E_ZERO, E_DELETE, E_APPEND
} edit_kind;
typedef struct edit_op {
    size_t off;
    edit_kind kind;
    uint64_t u;
    double d;
} edit_op;
typedef struct edit {
    edit_op a, b;
    int keep_crc;
    const char *expect;
} edit;

#define U32(off, v) {off, E_U32, v, 0}
#define U64(off, v) {off, E_U64, v, 0}
#define F64(off, v) {off, E_F64, 0, v}
#define F32(off, v) {off, E_F32, 0, v}
#define NO_OP {0, E_NONE, 0, 0}
#define SIGN_BIT ((uint64_t)1 << 63)

static const edit edits[] = {
    /* magic, version, byte order */
    {{0, E_BYTE, 'X', 0}, NO_OP, 0, "not a feedbackalign model file (bad magic)"},
    {{5, E_BYTE, '\n', 0}, NO_OP, 0, "bad magic"}, /* "\r\n" mangled to "\n\n" */
    {{7, E_BYTE, 0, 0}, NO_OP, 0, "bad magic"},
    {U32(OFF_VERSION, 3), NO_OP, 0, "format version 3 is newer than this library supports (2)"},
    {U32(OFF_VERSION, 0xFFFFFFFFu), NO_OP, 0, "is newer than this library supports"},
    {U32(OFF_VERSION, 0), NO_OP, 0, "format version 0 is invalid"},
    {U32(OFF_VERSION, 1), NO_OP, 0, NULL}, /* read with the v1 layout: some error */
    {U32(OFF_BOM, 0x04030201u), NO_OP, 0, "written on a machine of the other byte order"},
    {U32(OFF_BOM, 0xDEADBEEFu), NO_OP, 0, "bad byte-order mark"},
    /* n_layers */
    {U32(OFF_NLAYERS, 0), NO_OP, 0, "n_layers out of range (0)"},
    {U32(OFF_NLAYERS, 100001), NO_OP, 0, "n_layers out of range (100001)"},
    {U32(OFF_NLAYERS, 0xFFFFFFFFu), NO_OP, 0, "n_layers out of range"},
    {U32(OFF_NLAYERS, 100000), NO_OP, 0, "truncated"}, /* checked against the size */
    {U32(OFF_NLAYERS, 3), NO_OP, 0, NULL},             /* the rest misread */
    {U32(OFF_NLAYERS, 1), NO_OP, 0, NULL},
    /* the input shape and the layer records */
    {U32(OFF_INPUT, 0), NO_OP, 0, "architecture rejected: input shape 0x1x1"},
    {U32(OFF_INPUT + 4, 0x80000000u), NO_OP, 0, "architecture rejected"},
    {U32(OFF_INPUT, 0x7FFFFFFFu), NO_OP, 0, "truncated"}, /* huge: no giant allocation */
    {U32(OFF_INPUT + 4, 2), NO_OP, 0, "truncated"},       /* 23 parameters, not 17 */
    {U32(OFF_LAYER1, 4), NO_OP, 0, "architecture rejected: layer 1: kind 4 is not a "
                                    "fa_layer_kind"},
    {U32(OFF_LAYER1, 0xFFFFFFFFu), NO_OP, 0, "architecture rejected: layer 1: kind -1"},
    {U32(OFF_LAYER1, FA_LAYER_CONV2D), NO_OP, 0, "architecture rejected: layer 1: kernel 0x0"},
    {U32(OFF_LAYER1 + 4, 0), NO_OP, 0, "architecture rejected: layer 1: a dense layer needs "
                                        "units >= 1, got 0"},
    {U32(OFF_LAYER1 + 4, 0x80000000u), NO_OP, 0, "architecture rejected: layer 1"},
    {U32(OFF_LAYER1 + 4, 0x7FFFFFFFu), NO_OP, 0, "truncated"}, /* huge, no allocation */
    {U32(OFF_LAYER1 + 24, 5), NO_OP, 0, "architecture rejected: layer 1: activation 5 is not "
                                         "a fa_activation"},
    {U32(OFF_LAYER2, FA_LAYER_MAXPOOL), NO_OP, 0, "architecture rejected: layer 2: a pooling "
                                                   "layer has square windows, no units"},
    {U32(OFF_LAYER2 + 4, 3), NO_OP, 0, "truncated"}, /* 21 parameters */
    {U32(OFF_LAYER2 + 24, FA_ACT_TANH), NO_OP, 0, "architecture rejected: loss softmax_ce"},
    /* enums */
    {U32(OFF_LOSS, 3), NO_OP, 0, "loss out of range (3)"},
    {U32(OFF_RULE, 11), NO_OP, 0, "rule out of range (11)"},
    {U32(OFF_RULE, FA_RULE_KP), NO_OP, 0, "rule is kp but the image has no kp feedback block"},
    {U32(OFF_VARIANT, 2), NO_OP, 0, "DFA variant out of range (2)"},
    {U32(OFF_DIST, 3), NO_OP, 0, "feedback distribution out of range (3)"},
    {U32(OFF_OPT, 5), NO_OP, 0, "optimizer out of range (5)"},
    {U32(OFF_OPT, FA_OPT_MOMENTUM), NO_OP, 0, "optimiser state has 34 floats, optimizer "
                                               "momentum needs 17"},
    {U32(OFF_OPT, FA_OPT_SGD), NO_OP, 0, "optimiser state has 34 floats, optimizer sgd needs 0"},
    /* feedback scale: >= 0, a float, and for Gaussian draws at most 3.9e37 */
    {F64(OFF_SCALE, -1.0), NO_OP, 0, "feedback scale out of range"},
    {F64(OFF_SCALE, (double)NAN), NO_OP, 0, "feedback scale out of range"},
    {F64(OFF_SCALE, (double)INFINITY), NO_OP, 0, "feedback scale out of range"},
    {F64(OFF_SCALE, 1e39), NO_OP, 0, "feedback scale out of range"},
    {F64(OFF_SCALE, 1e-50), NO_OP, 0, "feedback scale out of range"},
    {U32(OFF_DIST, FA_DIST_GAUSSIAN), F64(OFF_SCALE, 1e38), 0, "feedback scale out of range"},
    /* hyperparameters */
    {U32(OFF_NHP, 14), NO_OP, 0, "the image has 14 hyperparameters, this library knows 13"},
    {U32(OFF_NHP, 0xFFFFFFFFu), NO_OP, 0, "hyperparameters, this library knows 13"},
    {F64(OFF_HP(FA_HP_LR), 0.0), NO_OP, 0, "hyperparameter 0, lr, out of range"},
    {F64(OFF_HP(FA_HP_LR), (double)INFINITY), NO_OP, 0, "hyperparameter 0, lr, out of range"},
    {F64(OFF_HP(FA_HP_LR), 1e39), NO_OP, 0, "hyperparameter 0, lr, out of range"},
    {F64(OFF_HP(FA_HP_LR), 1e-50), NO_OP, 0, "hyperparameter 0, lr, out of range"},
    {F64(OFF_HP(FA_HP_MOMENTUM), 1.0), NO_OP, 0, "hyperparameter 1, momentum, out of range"},
    {F64(OFF_HP(FA_HP_BETA1), -0.5), NO_OP, 0, "hyperparameter 2, beta1, out of range"},
    {F64(OFF_HP(FA_HP_BETA2), 0.9999999999), NO_OP, 0, "hyperparameter 3, beta2, out of "
                                                        "range"},
    {F64(OFF_HP(FA_HP_EPSILON), 0.0), NO_OP, 0, "hyperparameter 4, epsilon, out of range"},
    {F64(OFF_HP(FA_HP_WEIGHT_DECAY), -1e-3), NO_OP, 0, "hyperparameter 5, weight_decay"},
    {F64(OFF_HP(FA_HP_RMS_DECAY), (double)NAN), NO_OP, 0, "hyperparameter 6, rms_decay"},
    {F64(OFF_HP(FA_HP_LEAKY_SLOPE), 1.5), NO_OP, 0, "hyperparameter 7, leaky_slope"},
    {F64(OFF_HP(FA_HP_KP_DECAY), 1.0), NO_OP, 0, "hyperparameter 8, kp_decay"},
    {F64(OFF_HP(FA_HP_WM_LR), -1.0), NO_OP, 0, "hyperparameter 9, wm_lr"},
    {F64(OFF_HP(FA_HP_WM_DECAY), 1.0), NO_OP, 0, "hyperparameter 10, wm_decay"},
    {F64(OFF_HP(FA_HP_WM_NOISE), 0.0), NO_OP, 0, "hyperparameter 11, wm_noise"},
    {F64(OFF_HP(FA_HP_WM_BATCH), 0.5), NO_OP, 0, "hyperparameter 12, wm_batch"},
    {F64(OFF_HP(FA_HP_WM_BATCH), 65537.0), NO_OP, 0, "hyperparameter 12, wm_batch"},
    /* dropout, step count, RNG states */
    {F64(OFF_DROPOUT, 1.0), NO_OP, 0, "dropout of layer 1 out of range"},
    {F64(OFF_DROPOUT, -0.1), NO_OP, 0, "dropout of layer 1 out of range"},
    {F64(OFF_DROPOUT, (double)NAN), NO_OP, 0, "dropout of layer 1 out of range"},
    {U64(OFF_STEP, UINT64_MAX), NO_OP, 0, "optimiser step count is negative"},
    {U64(OFF_STEP, SIGN_BIT), NO_OP, 0, "optimiser step count is negative"},
    {{OFF_RNG, E_ZERO, 32, 0}, NO_OP, 0, "RNG state is all zero"},
    {{OFF_RNG_DROP, E_ZERO, 32, 0}, NO_OP, 0, "RNG state is all zero"},
    /* the block count */
    {U32(OFF_NFB, 12), NO_OP, 0, "12 feedback blocks, at most 11 rules have any"},
    {U32(OFF_NFB, 1), NO_OP, 0, "trailing bytes"},
    {U32(OFF_NFB, 0), NO_OP, 0, "trailing bytes"},
    {U32(OFF_NFB, 3), NO_OP, 0, NULL}, /* a third block read from the optimiser state */
    /* the blocks */
    {U32(OFF_FB1, FA_RULE_BP), NO_OP, 0, "feedback block 0 belongs to rule 0, which stores no "
                                          "feedback"},
    {U32(OFF_FB1, FA_RULE_USF), NO_OP, 0, "feedback block 0 belongs to rule 3, which stores no "
                                           "feedback"},
    {U32(OFF_FB1, FA_RULE_SHALLOW), NO_OP, 0, "belongs to rule 10, which stores no feedback"},
    {U32(OFF_FB1, 11), NO_OP, 0, "feedback block 0 belongs to rule 11"},
    {U32(OFF_FB2, 0xFFFFFFFFu), NO_OP, 0, "feedback block 1 belongs to rule 4294967295"},
    {U32(OFF_FB1, FA_RULE_DFA), NO_OP, 0, "two feedback blocks for rule dfa"},
    {U32(OFF_FB2, FA_RULE_FA), NO_OP, 0, "two feedback blocks for rule fa"},
    {U32(OFF_FB2, FA_RULE_KP), NO_OP, 0, "rule is dfa but the image has no dfa feedback block"},
    {U64(OFF_FB1 + 4, UINT64_MAX), NO_OP, 0, "truncated"},
    {U64(OFF_FB2 + 4, (uint64_t)1 << 60), NO_OP, 0, "truncated"},
    {U64(OFF_FB2 + 4, 7), NO_OP, 0, "truncated"},
    {U64(OFF_FB2 + 4, 5), NO_OP, 0, "trailing bytes"},
    /* a block one float short, consistently: the count the network needs */
    {U64(OFF_FB1 + 4, 5), {OFF_FB1 + 12 + 20, E_DELETE, 4, 0}, 0,
     "fa feedback block has 5 floats, the network needs 6"},
    {U64(OFF_FB2 + 4, 7), {OFF_FB2 + 12, E_APPEND, 4, 0}, 0,
     "dfa feedback block has 7 floats, the network needs 6"},
    /* the optimiser state length */
    {U64(OFF_NOPT, UINT64_MAX), NO_OP, 0, "optimiser state length"},
    {U64(OFF_NOPT, 35), NO_OP, 0, "optimiser state length 35 out of range (at most 34)"},
    {U64(OFF_NOPT, 17), NO_OP, 0, "trailing bytes"},
    {U64(OFF_NOPT, 17), {OFF_V, E_DELETE, 68, 0}, 0, "optimiser state has 17 floats, "
                                                      "optimizer adam needs 34"},
    /* non-finite values; a negative second moment */
    {F32(OFF_PARAMS, (double)NAN), NO_OP, 0, "parameter 0 is not finite"},
    {F32(OFF_PARAMS + 4, (double)INFINITY), NO_OP, 0, "parameter 1 is not finite"},
    {F32(OFF_PARAMS + 64, -(double)INFINITY), NO_OP, 0, "parameter 16 is not finite"},
    {F32(OFF_FB1 + 12, (double)NAN), NO_OP, 0, "fa feedback entry 0 is not finite"},
    {F32(OFF_FB2 + 12 + 20, -(double)INFINITY), NO_OP, 0, "dfa feedback entry 5 is not "
                                                           "finite"},
    {F32(OFF_M, (double)NAN), NO_OP, 0, "optimiser state entry 0 is not finite"},
    {F32(OFF_V + 64, (double)INFINITY), NO_OP, 0, "optimiser state entry 33 is not finite"},
    {F32(OFF_V, -1.0), NO_OP, 0, "optimiser second moment 0 is negative"},
    {F32(OFF_V + 64, -1e-30), NO_OP, 0, "optimiser second moment 16 is negative"},
    /* trailing bytes and the checksum; with the checksum wrong, a bad value
     * is reported as the checksum (the documented order of the checks) */
    {{SMALL_SIZE, E_APPEND, 1, 0}, NO_OP, 1, "trailing bytes"},
    {{SMALL_SIZE, E_APPEND, 1, 0}, NO_OP, 0, "trailing bytes"},
    {{200, E_XOR, 0x5A, 0}, NO_OP, 1, "checksum mismatch"},
    {{OFF_PARAMS, E_XOR, 0x01, 0}, NO_OP, 1, "checksum mismatch"},
    {{OFF_CRC - 1, E_XOR, 0x01, 0}, NO_OP, 1, "checksum mismatch"},
    {{OFF_CRC, E_XOR, 0x80, 0}, NO_OP, 1, "checksum mismatch"},
    {{OFF_CRC + 3, E_XOR, 0x01, 0}, NO_OP, 1, "checksum mismatch"},
    {U32(OFF_LOSS, 3), NO_OP, 1, "checksum mismatch"},
    {U32(OFF_LAYER1 + 4, 0), NO_OP, 1, "checksum mismatch"},
    {F32(OFF_PARAMS, (double)NAN), NO_OP, 1, "checksum mismatch"},
};
#define N_EDITS ((int)(sizeof edits / sizeof edits[0]))

/* Apply one operation to buf (*len bytes, room for 64 more). */
static void apply_op(unsigned char *buf, size_t *len, const edit_op *op)
{
    uint32_t u32 = (uint32_t)op->u;
    float f32 = (float)op->d;
    if (op->kind != E_NONE && op->kind != E_APPEND)
        ck_assert_uint_lt(op->off, *len);
    switch (op->kind) {
    case E_NONE: break;
    case E_U32: memcpy(buf + op->off, &u32, 4); break;
    case E_U64: memcpy(buf + op->off, &op->u, 8); break;
    case E_F64: memcpy(buf + op->off, &op->d, 8); break;
    case E_F32: memcpy(buf + op->off, &f32, 4); break;
    case E_BYTE:
        /* An edit must change the byte, else the case tests nothing. */
        ck_assert_uint_ne(buf[op->off], (unsigned char)op->u);
        buf[op->off] = (unsigned char)op->u;
        break;
    case E_XOR: buf[op->off] ^= (unsigned char)op->u; break;
    case E_ZERO: memset(buf + op->off, 0, (size_t)op->u); break;
    case E_DELETE:
        memmove(buf + op->off, buf + op->off + op->u, *len - op->off - (size_t)op->u);
        *len -= (size_t)op->u;
        break;
    case E_APPEND: /* insert u small finite floats' worth of bytes at off */
        ck_assert_uint_le(op->u, 64);
        memmove(buf + op->off + op->u, buf + op->off, *len - op->off);
        memset(buf + op->off, 0, (size_t)op->u);
        *len += (size_t)op->u;
        break;
    }
}

START_TEST(test_edited_fields)
{
    const edit *e = &edits[_i];
    char dir[512], path[600], what[48];
    size_t len;
    unsigned char *img = small_image(&len);
    unsigned char *buf = malloc(len + 64);

    ck_assert_ptr_nonnull(buf);
    memcpy(buf, img, len);
    free(img);
    apply_op(buf, &len, &e->a);
    apply_op(buf, &len, &e->b);
    if (!e->keep_crc)
        fix_crc(buf, len);
    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/edited.fanet", dir);
    snprintf(what, sizeof what, "edit %d", _i);
    assert_refused(buf, len, path, e->expect, what);
    free(buf);
    remove_tree(dir);
}
END_TEST

/* An older writer with fewer hyperparameters: the rest take their
 * defaults.  The image with n_hparams 12 and wm_batch left out loads, with
 * wm_batch back at its default of 64 (the small model has 8). */
START_TEST(test_fewer_hparams)
{
    size_t len;
    unsigned char *buf = small_image(&len);
    const edit_op a = U32(OFF_NHP, 12), b = {OFF_HP(FA_HP_WM_BATCH), E_DELETE, 8, 0};
    fa_net *net = NULL, *ref = small_net();
    double v;

    apply_op(buf, &len, &a);
    apply_op(buf, &len, &b);
    fix_crc(buf, len);
    OK(fa_net_load_image(&net, buf, (int64_t)len));
    OK(fa_net_get_hparam(net, FA_HP_WM_BATCH, &v));
    ck_assert(v == 64.0);
    OK(fa_net_get_hparam(net, FA_HP_WM_NOISE, &v));
    ck_assert(v == 0.5);
    /* everything else is the small model's */
    OK(fa_net_set_hparam(net, FA_HP_WM_BATCH, 8));
    assert_same_net(ref, net, "fewer hyperparameters");
    free(buf);
    fa_net_free(net);
    fa_net_free(ref);
}
END_TEST

/* The second moment of RMSprop is the whole of its state (Adam's is the
 * second half): a negative one is refused there too.  The state is the last
 * n_opt floats before the checksum. */
START_TEST(test_negative_rmsprop_moment)
{
    config c = small;
    fa_net *net;
    size_t len;
    unsigned char *buf;
    const float neg = -0.5f;

    c.optimizer = FA_OPT_RMSPROP;
    net = make_net(&c);
    train(net, 2);
    buf = image_of(net, &len);
    ck_assert_uint_eq(rd_u64(buf + OFF_NOPT), 17);
    memcpy(buf + len - 4 - 17 * 4 + 3 * 4, &neg, 4); /* entry 3 */
    fix_crc(buf, len);
    assert_refused(buf, len, NULL, "optimiser second moment 3 is negative", "rmsprop");
    free(buf);
    fa_net_free(net);
}
END_TEST

/* ------------------------------------------------------------------ images */

/* The size query, a buffer too small (nothing written, not even beyond
 * len), a buffer larger than needed (only the image written), and the image
 * byte for byte what fa_net_save writes to a file. */
START_TEST(test_save_image_sizes)
{
    char name[96], dir[512], path[600];
    const config c = case_config(N_RULE_OPT + FA_RULE_KP, name, sizeof name); /* conv */
    fa_net *net = make_net(&c);
    int64_t need = -1, need2 = -1;
    size_t flen;
    unsigned char *file, *buf;

    train(net, 2);
    OK(fa_net_save_image(net, NULL, 0, &need));
    ck_assert_int_gt(need, 0);
    OK(fa_net_save_image(net, NULL, 0, NULL)); /* needed may be NULL */
    ck_assert_int_eq(fa_net_save_image(NULL, NULL, 0, &need2), FA_ERR_NULL);
    ck_assert_ptr_nonnull(strstr(fa_last_error(), "fa_net_save_image"));
    ck_assert_int_eq(fa_net_save_image(net, NULL, 16, &need2), FA_ERR_NULL);
    ck_assert_ptr_nonnull(strstr(fa_last_error(), "buf"));

    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/model.fanet", dir);
    OK(fa_net_save(net, path));
    file = read_file(path, &flen);
    ck_assert_int_eq((int64_t)flen, need);

    buf = malloc((size_t)need + 64);
    ck_assert_ptr_nonnull(buf);
    /* too small by one, and much too small: FA_ERR_SIZE, no byte written */
    static const int64_t short_by[] = {1, 2, 100};
    for (size_t k = 0; k < sizeof short_by / sizeof short_by[0]; k++) {
        memset(buf, 0xAB, (size_t)need + 64);
        need2 = -1;
        ck_assert_int_eq(fa_net_save_image(net, buf, need - short_by[k], &need2),
                         FA_ERR_SIZE);
        ck_assert_ptr_nonnull(strstr(fa_last_error(), "fa_net_save_image"));
        for (int64_t i = 0; i < need + 64; i++)
            CHECK(buf[i] == 0xAB, "a refused fa_net_save_image wrote byte %lld", (long long)i);
        /* the size comes back with the refusal, for a caller's retry */
        ck_assert_int_eq(need2, need);
    }
    memset(buf, 0xAB, (size_t)need + 64);
    ck_assert_int_eq(fa_net_save_image(net, buf, 0, NULL), FA_ERR_SIZE);
    ck_assert_uint_eq(buf[0], 0xAB);
    ck_assert_int_eq(fa_net_save_image(net, buf, -1, NULL), FA_ERR_SIZE);
    ck_assert_uint_eq(buf[0], 0xAB);
    /* exact size, then 64 bytes to spare: the image, nothing after it */
    OK(fa_net_save_image(net, buf, need, &need2));
    ck_assert_int_eq(need2, need);
    ck_assert(memcmp(buf, file, flen) == 0);
    memset(buf, 0xAB, (size_t)need + 64);
    OK(fa_net_save_image(net, buf, need + 64, NULL));
    ck_assert(memcmp(buf, file, flen) == 0);
    for (int64_t i = need; i < need + 64; i++)
        CHECK(buf[i] == 0xAB, "fa_net_save_image wrote byte %lld past the image", (long long)i);
    free(buf);
    free(file);
    fa_net_free(net);
    remove_tree(dir);
}
END_TEST

/* fa_net_load_image of every proper prefix and every flipped byte of the
 * conv net's image (different layer records, feedback blocks and state from
 * the small model): refused, without a crash or a read past len. */
START_TEST(test_load_image_damaged)
{
    char name[96], what[64];
    const config c = case_config(N_RULE_OPT + FA_RULE_WM, name, sizeof name);
    fa_net *net = make_net(&c), *back = NULL;
    size_t len;
    unsigned char *img;

    train(net, 2);
    img = image_of(net, &len);
    for (size_t n = 0; n < len; n++) {
        snprintf(what, sizeof what, "conv image, first %zu bytes", n);
        assert_refused(img, n, NULL, "truncated", what);
    }
    for (size_t i = 0; i < len; i++) {
        img[i] ^= 0x10;
        snprintf(what, sizeof what, "conv image, byte %zu ^ 0x10", i);
        assert_refused(img, len, NULL, NULL, what);
        img[i] ^= 0x10;
    }
    OK(fa_net_load_image(&back, img, (int64_t)len));
    assert_same_net(net, back, c.name);
    free(img);
    fa_net_free(net);
    fa_net_free(back);
}
END_TEST

START_TEST(test_load_image_arguments)
{
    size_t len;
    unsigned char *img = small_image(&len);
    fa_net *out = (fa_net *)&out;

    ck_assert_int_eq(fa_net_load_image(NULL, img, (int64_t)len), FA_ERR_NULL);
    ck_assert_ptr_nonnull(strstr(fa_last_error(), "fa_net_load_image"));
    ck_assert_int_eq(fa_net_load_image(&out, NULL, (int64_t)len), FA_ERR_NULL);
    ck_assert_ptr_null(out);
    out = (fa_net *)&out;
    ck_assert_int_eq(fa_net_load_image(&out, img, -1), FA_ERR_SIZE);
    ck_assert_ptr_null(out);
    out = (fa_net *)&out;
    ck_assert_int_eq(fa_net_load_image(&out, img, INT64_MIN), FA_ERR_SIZE);
    ck_assert_ptr_null(out);
    /* not an image at all */
    out = (fa_net *)&out;
    ck_assert_int_eq(fa_net_load_image(&out, "hello, world\n", 13), FA_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(fa_last_error(), "bad magic"));
    ck_assert_ptr_null(out);
    free(img);
}
END_TEST

/* ------------------------------------------------------------------- clone */

/* A clone is the network (every field), independent of it (training or
 * freeing one leaves the other as it was), and continues bit-for-bit. */
START_TEST(test_clone)
{
    char name[96];
    const config c = case_config(_i, name, sizeof name);
    fa_net *a = make_net(&c), *b = NULL, *b_ref = NULL;
    size_t la, lb;
    unsigned char *ia, *ib, *ib2;

    train(a, 2);
    OK(fa_net_clone(&b, a));
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_ne(a, b);
    ck_assert_ptr_ne(a->params, b->params);
    assert_same_net(a, b, c.name);
    ia = image_of(a, &la);
    ib = image_of(b, &lb);
    ck_assert_uint_eq(la, lb);
    ck_assert(memcmp(ia, ib, la) == 0);
    /* b_ref: what b must stay while a trains */
    OK(fa_net_load_image(&b_ref, ib, (int64_t)lb));
    train(a, 3);
    assert_same_net(b, b_ref, c.name);
    ib2 = image_of(b, &lb);
    ck_assert(memcmp(ib, ib2, lb) == 0);
    free(ib2);
    /* b catches up: the same 3 steps give the same network */
    train(b, 3);
    assert_same_net(a, b, c.name);
    /* freeing the original leaves the clone working */
    fa_net_free(a);
    train(b, 1);
    train(b_ref, 4);
    assert_same_net(b, b_ref, c.name);
    free(ia);
    free(ib);
    fa_net_free(b);
    fa_net_free(b_ref);
}
END_TEST

START_TEST(test_clone_arguments)
{
    fa_net *net = small_net();
    fa_net *out = (fa_net *)&out;
    ck_assert_int_eq(fa_net_clone(NULL, net), FA_ERR_NULL);
    ck_assert_ptr_nonnull(strstr(fa_last_error(), "fa_net_clone"));
    ck_assert_int_eq(fa_net_clone(&out, NULL), FA_ERR_NULL);
    ck_assert_ptr_nonnull(strstr(fa_last_error(), "fa_net_clone"));
    ck_assert_ptr_null(out);
    fa_net_free(net);
}
END_TEST

/* ------------------------------------------------ version-1 fixtures (0.1) */

/* The fixtures of tests/io/data, written by libfeedbackalign 0.1.0 with
 * tests/io/gen_v1_fixtures.c: a 3-5-4-2 network, seed 4242, Gaussian
 * feedback of scale 0.3, lr 0.05, weight decay 1e-3, 3 steps on the batch
 * of make_batch, then saved.  Each .out holds the forward output (2, 4)
 * right after the save and, without dropout, the output after 5 more
 * steps. */
typedef struct fixture {
    const char *name;
    int32_t acts[3];
    int32_t loss, rule, optimizer;
    int fa_block, dfa_block;
    double dropout;
    int blocks; /* of 8 floats in the .out */
} fixture;

static const fixture fixtures[] = {
    {"dfa-fa-adam-dropout", {FA_ACT_TANH, FA_ACT_TANH, FA_ACT_IDENTITY}, FA_LOSS_SOFTMAX_CE,
     FA_RULE_DFA, FA_OPT_ADAM, 1, 1, 0.25, 1},
    {"fa-momentum", {FA_ACT_SIGMOID, FA_ACT_RELU, FA_ACT_IDENTITY}, FA_LOSS_MSE, FA_RULE_FA,
     FA_OPT_MOMENTUM, 1, 0, 0.0, 2},
    {"dfa-rmsprop", {FA_ACT_TANH, FA_ACT_TANH, FA_ACT_IDENTITY}, FA_LOSS_SOFTMAX_CE,
     FA_RULE_DFA, FA_OPT_RMSPROP, 0, 1, 0.0, 2},
};
#define N_FIXTURES ((int)(sizeof fixtures / sizeof fixtures[0]))

/* Distance in units in the last place between two finite floats. */
static int64_t ulps(float a, float b)
{
    int32_t ia, ib;
    memcpy(&ia, &a, 4);
    memcpy(&ib, &b, 4);
    /* map the sign-magnitude bits onto a monotone integer line */
    int64_t la = ia < 0 ? (int64_t)INT32_MIN - ia : ia;
    int64_t lb = ib < 0 ? (int64_t)INT32_MIN - ib : ib;
    return la > lb ? la - lb : lb - la;
}

/* Forward outputs: at most 1 ulp from 0.1.0's.  The forward arithmetic is
 * the same (one SGEMM per layer; the bias and activation now run in one
 * fused pass, which computes the same float expressions), so bitwise
 * equality is expected and 1 ulp allows only for a libm that rounds an
 * activation differently from the one that wrote the fixtures. */
#define FORWARD_ULPS 1
/* After 5 more training steps: relative 2e-6 of each output (plus 1e-7
 * absolute, for outputs near 0).  Training differs in its rounding, not its
 * arithmetic: 0.1.0 summed the bias gradient with a separate GEMV against a
 * vector of ones, the library now sums it in the element-wise pass that
 * applies f' (the same float additions in another order), and a change in
 * the last bit of a gradient is carried through 5 optimiser steps and a
 * forward pass.  Measured on x86-64 with OpenBLAS: fa-momentum bitwise,
 * dfa-rmsprop up to 3 ulps (2.8e-7 relative); 2e-6 is 15-30 ulps at these
 * magnitudes, while a wrong rule, optimiser, hyperparameter or lost state
 * moves the outputs by far more (test_v1_fixture_detects_change). */
#define TRAIN_RTOL 2e-6
#define TRAIN_ATOL 1e-7

static fa_net *load_fixture(const fixture *fx, float *out, size_t *n_out)
{
    char path[PATH_MAX];
    fa_net *net = NULL;
    unsigned char *buf;
    size_t len;
    snprintf(path, sizeof path, "%s/v1-%s.fanet", FA_TEST_DATA, fx->name);
    CHECK(fa_net_load(&net, path) == FA_OK, "%s: %s", path, fa_last_error());
    snprintf(path, sizeof path, "%s/v1-%s.out", FA_TEST_DATA, fx->name);
    buf = read_file(path, &len);
    ck_assert_uint_eq(len, (size_t)fx->blocks * 8 * sizeof(float));
    memcpy(out, buf, len);
    *n_out = len / sizeof(float);
    free(buf);
    return net;
}

START_TEST(test_v1_fixture)
{
    const fixture *fx = &fixtures[_i];
    float want[16], y[8];
    size_t n_want;
    fa_net *net = load_fixture(fx, want, &n_want), *v2 = NULL;
    const int32_t sizes[4] = {3, 5, 4, 2};
    char dir[512], path[600];
    unsigned char *file;
    size_t flen;
    int64_t worst = 0;

    /* What the generator set, read back through the public getters. */
    ck_assert_int_eq(net->n_layers, 3);
    for (int l = 0; l <= 3; l++)
        ck_assert_int_eq(net->sizes[l], sizes[l]);
    for (int l = 1; l <= 3; l++) {
        int32_t act, kind;
        OK(fa_net_get_activation(net, l, &act));
        OK(fa_net_layer_kind(net, l, &kind));
        ck_assert_int_eq(act, fx->acts[l - 1]);
        ck_assert_int_eq(kind, FA_LAYER_DENSE);
    }
    ck_assert_int_eq(net->loss, fx->loss);
    ck_assert_int_eq(net->rule, fx->rule);
    ck_assert_int_eq(net->optimizer, fx->optimizer);
    ck_assert_int_eq(net->fb_dist, FA_DIST_GAUSSIAN);
    ck_assert(net->fb_scale == 0.3);
    ck_assert(net->hp[FA_HP_LR] == 0.05);
    ck_assert(net->hp[FA_HP_WEIGHT_DECAY] == 1e-3);
    ck_assert(net->hp[FA_HP_KP_DECAY] == 0.001); /* not in v1: the default */
    ck_assert(net->hp[FA_HP_WM_BATCH] == 64.0);
    ck_assert_int_eq(net->opt_step, 3);
    for (int l = 1; l <= 2; l++)
        ck_assert(net->layers[l].dropout == fx->dropout);
    ck_assert_int_eq(net->fb[FA_RULE_FA] != NULL, fx->fa_block);
    ck_assert_int_eq(net->fb[FA_RULE_DFA] != NULL, fx->dfa_block);
    for (int r = 0; r < FA_N_RULES; r++)
        if (r != FA_RULE_FA && r != FA_RULE_DFA)
            ck_assert_ptr_null(net->fb[r]);
    ck_assert(memcmp(net->rng.s, net->rng_drop.s, sizeof net->rng.s) != 0);

    /* The forward output 0.1.0 computed right after saving. */
    forward(net, y);
    for (int k = 0; k < 8; k++) {
        int64_t u = ulps(y[k], want[k]);
        CHECK(u <= FORWARD_ULPS, "%s: forward output %d is %.9g, 0.1.0 gave %.9g (%lld ulps)",
              fx->name, k, (double)y[k], (double)want[k], (long long)u);
        worst = u > worst ? u : worst;
    }

    /* Saved again, it is a version-2 file that loads to the same network. */
    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/v2.fanet", dir);
    OK(fa_net_save(net, path));
    file = read_file(path, &flen);
    ck_assert_uint_eq(rd_u32(file + OFF_VERSION), 2);
    free(file);
    OK(fa_net_load(&v2, path));
    assert_same_net(net, v2, fx->name);

    /* 5 more steps: what 0.1.0 computed, and the v2 copy bitwise alike. */
    if (fx->blocks == 2) {
        train(net, 5);
        train(v2, 5);
        assert_same_net(net, v2, fx->name);
        forward(net, y);
        for (int k = 0; k < 8; k++) {
            double g = y[k], w = want[8 + k];
            CHECK(fabs(g - w) <= TRAIN_ATOL + TRAIN_RTOL * fabs(w),
                  "%s: after 5 steps output %d is %.9g, 0.1.0 gave %.9g (%lld ulps)", fx->name,
                  k, g, w, (long long)ulps(y[k], want[8 + k]));
        }
    }
    fa_net_free(net);
    fa_net_free(v2);
    remove_tree(dir);
}
END_TEST

/* A damaged version-1 file: every cut refused as truncated, every flipped
 * byte refused, and edited layer sizes or activations (CRC fixed) reported
 * as a rejected architecture.  Version 1 layout for L = 3: magic 0,
 * version 8, byte order 12, n_layers 16, sizes n_0..n_3 at 20..36,
 * activations of layers 1..3 at 36..48. */
START_TEST(test_v1_damaged)
{
    char path[PATH_MAX], what[64];
    size_t len;
    unsigned char *buf;
    static const struct {
        size_t off;
        uint32_t v;
        const char *expect;
    } v1_edits[] = {
        {24, 0, "architecture rejected: layer 1: a dense layer needs units >= 1"},
        {28, 0x80000000u, "architecture rejected: layer 2"},
        {36, 5, "architecture rejected: layer 1: activation -1 is not a fa_activation"},
        {44, FA_ACT_TANH, "architecture rejected: loss softmax_ce"},
        {20, 0, "architecture rejected: input shape 0x1x1"},
    };

    snprintf(path, sizeof path, "%s/v1-%s.fanet", FA_TEST_DATA, fixtures[0].name);
    buf = read_file(path, &len);
    ck_assert_uint_eq(rd_u32(buf + OFF_VERSION), 1);
    ck_assert_uint_eq(rd_u32(buf + 16), 3);
    ck_assert_uint_eq(rd_u32(buf + 20), 3);
    ck_assert_uint_eq(rd_u32(buf + 32), 2);
    ck_assert_uint_eq(rd_u32(buf + 36), FA_ACT_TANH);
    ck_assert_uint_eq(rd_u32(buf + 44), FA_ACT_IDENTITY);
    for (size_t n = 0; n < len; n++) {
        snprintf(what, sizeof what, "v1, first %zu bytes", n);
        assert_refused(buf, n, NULL, "truncated", what);
    }
    for (size_t i = 0; i < len; i++) {
        buf[i] ^= 0x04;
        snprintf(what, sizeof what, "v1, byte %zu ^ 0x04", i);
        assert_refused(buf, len, NULL, NULL, what);
        buf[i] ^= 0x04;
    }
    for (size_t k = 0; k < sizeof v1_edits / sizeof v1_edits[0]; k++) {
        uint32_t saved;
        memcpy(&saved, buf + v1_edits[k].off, 4);
        memcpy(buf + v1_edits[k].off, &v1_edits[k].v, 4);
        fix_crc(buf, len);
        snprintf(what, sizeof what, "v1 edit %zu", k);
        assert_refused(buf, len, NULL, v1_edits[k].expect, what);
        memcpy(buf + v1_edits[k].off, &saved, 4);
        fix_crc(buf, len);
    }
    free(buf);
}
END_TEST

/* The tolerance above can fail: a step with another learning rate, or
 * without the loaded optimiser state, misses 0.1.0's outputs by far more. */
START_TEST(test_v1_fixture_detects_change)
{
    const fixture *fx = &fixtures[1]; /* fa-momentum */
    float want[16], y[8];
    size_t n_want;
    for (int variant = 0; variant < 2; variant++) {
        fa_net *net = load_fixture(fx, want, &n_want);
        double worst = 0.0;
        if (variant == 0)
            OK(fa_net_set_hparam(net, FA_HP_LR, 0.049));
        else
            OK(fa_net_reset_optimizer(net));
        train(net, 5);
        forward(net, y);
        for (int k = 0; k < 8; k++) {
            double d = fabs((double)y[k] - want[8 + k]) / (TRAIN_ATOL + TRAIN_RTOL *
                                                             fabs((double)want[8 + k]));
            worst = d > worst ? d : worst;
        }
        ck_assert_msg(worst > 10.0, "variant %d stays within %.1f tolerances of 0.1.0", variant,
                      worst);
        fa_net_free(net);
    }
}
END_TEST

/* ------------------------------------------------------ save hardening */

/* The pid of a process that has exited (and been reaped). */
static pid_t dead_pid(void)
{
    int status = 0;
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(0);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(kill(pid, 0), -1); /* gone (a reused pid would be a fluke) */
    ck_assert_int_eq(errno, ESRCH);
    return pid;
}

/* 64-bit FNV-1a (offset basis 0xcbf29ce484222325, prime 0x100000001b3),
 * written here from its definition: the hash of a long name that the
 * short temporary names carry (src/io.c). */
static uint64_t fnv1a64(const char *s)
{
    uint64_t h = 14695981039346656037ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

static void touch(const char *dir, const char *name)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    write_file(path, "partial", 7);
}

static int exists_in(const char *dir, const char *name)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return exists(path);
}

/* A temporary left by a save that was killed (its process is gone) is
 * removed by the next save of the same target; temporaries of live
 * processes, of other targets and names that only look alike stay. */
START_TEST(test_stale_temporaries)
{
    char dir[512], path[600], stale[300], stale2[300], mine[300], parent[300], other[300],
        odd[300], odd2[300];
    fa_net *net = small_net(), *back = NULL;
    const long dead = (long)dead_pid(), dead2 = (long)dead_pid();
    int n_tmp;

    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/model.fanet", dir);
    snprintf(stale, sizeof stale, "model.fanet.fa-tmp-%ld-a1B2c3", dead);
    snprintf(stale2, sizeof stale2, "model.fanet.fa-tmp-%ld-XXXXXX", dead2);
    snprintf(mine, sizeof mine, "model.fanet.fa-tmp-%ld-zzzzzz", (long)getpid());
    snprintf(parent, sizeof parent, "model.fanet.fa-tmp-%ld-pppppp", (long)getppid());
    snprintf(other, sizeof other, "other.fanet.fa-tmp-%ld-a1B2c3", dead);
    snprintf(odd, sizeof odd, "model.fanet.fa-tmp-%ld-abc", dead);      /* not 6 chars */
    snprintf(odd2, sizeof odd2, "model.fanet.fa-tmp-%ldx-abcdef", dead); /* not a pid */
    touch(dir, stale);
    touch(dir, stale2);
    touch(dir, mine);
    touch(dir, parent);
    touch(dir, other);
    touch(dir, odd);
    touch(dir, odd2);
    ck_assert_int_eq(count_entries(dir, &n_tmp), 7);

    OK(fa_net_save(net, path));
    ck_assert_msg(!exists_in(dir, stale), "%s (dead process) was not removed", stale);
    ck_assert_msg(!exists_in(dir, stale2), "%s (dead process) was not removed", stale2);
    ck_assert_msg(exists_in(dir, mine), "%s (this process) was removed", mine);
    ck_assert_msg(exists_in(dir, parent), "%s (the parent, alive) was removed", parent);
    ck_assert_msg(exists_in(dir, other), "%s (another target) was removed", other);
    ck_assert_msg(exists_in(dir, odd), "%s (not a temporary name) was removed", odd);
    ck_assert_msg(exists_in(dir, odd2), "%s (not a temporary name) was removed", odd2);
    /* the model and the five that stay, and no temporary of this save */
    ck_assert_int_eq(count_entries(dir, &n_tmp), 6);
    ck_assert_int_eq(n_tmp, 5);
    OK(fa_net_load(&back, path));
    assert_same_net(net, back, "after removing stale temporaries");
    fa_net_free(back);
    fa_net_free(net);
    remove_tree(dir);
}
END_TEST

/* A target name of 250 bytes (the temporary "<name>.fa-tmp-<pid>-XXXXXX"
 * would pass the 255-byte name limit) saves and loads, through the short
 * name ".fa-tmp-<FNV-1a of name>-<pid>-XXXXXX", whose stale copies are
 * removed like the others. */
START_TEST(test_long_name)
{
    char dir[512], path[1024], base[251], stale[128], mine[128], other[128];
    fa_net *net = small_net(), *back = NULL;
    const long dead = (long)dead_pid();
    int n_tmp;

    make_dir(dir, sizeof dir);
    ck_assert_int_ge(pathconf(dir, _PC_NAME_MAX), 250);
    memset(base, 'm', 250);
    memcpy(base + 250 - 6, ".fanet", 6);
    base[250] = '\0';
    ck_assert_uint_eq(strlen(base), 250);
    snprintf(path, sizeof path, "%s/%s", dir, base);
    snprintf(stale, sizeof stale, ".fa-tmp-%016llx-%ld-q9Q9q9",
             (unsigned long long)fnv1a64(base), dead);
    snprintf(mine, sizeof mine, ".fa-tmp-%016llx-%ld-q9Q9q9",
             (unsigned long long)fnv1a64(base), (long)getpid());
    snprintf(other, sizeof other, ".fa-tmp-%016llx-%ld-q9Q9q9",
             (unsigned long long)fnv1a64("another name"), dead);
    touch(dir, stale);
    touch(dir, mine);
    touch(dir, other);

    CHECK(fa_net_save(net, path) == FA_OK, "250-byte name: %s", fa_last_error());
    ck_assert_msg(!exists_in(dir, stale), "stale short-named temporary not removed");
    ck_assert_msg(exists_in(dir, mine), "this process's temporary was removed");
    ck_assert_msg(exists_in(dir, other), "another target's temporary was removed");
    ck_assert_int_eq(count_entries(dir, &n_tmp), 3);
    ck_assert_int_eq(n_tmp, 2);
    OK(fa_net_load(&back, path));
    assert_same_net(net, back, "250-byte name");
    /* and over the existing file */
    train(net, 1);
    OK(fa_net_save(net, path));
    fa_net_free(back);
    OK(fa_net_load(&back, path));
    assert_same_net(net, back, "250-byte name, replaced");
    ck_assert_int_eq(count_entries(dir, &n_tmp), 3);
    fa_net_free(back);
    fa_net_free(net);
    remove_tree(dir);
}
END_TEST

/* Saving through a symbolic link replaces the file it points to and keeps
 * the link: relative and absolute links, a chain of links, a dangling link
 * (its target is created) and a relative link in another directory
 * (resolved against the link's directory, not the working directory). */
START_TEST(test_save_through_links)
{
    char dir[512], p[8][600], buf[700];
    fa_net *old = small_net(), *net = make_net(&small), *back = NULL;
    struct stat st;
    ssize_t n;
    int n_tmp;

    train(net, 5); /* differs from old */
    make_dir(dir, sizeof dir);
    snprintf(p[0], sizeof p[0], "%s/real.fanet", dir);
    snprintf(p[1], sizeof p[1], "%s/latest.fanet", dir);  /* -> real.fanet */
    snprintf(p[2], sizeof p[2], "%s/chain.fanet", dir);   /* -> latest.fanet */
    snprintf(p[3], sizeof p[3], "%s/dangling.fanet", dir); /* -> future.fanet */
    snprintf(p[4], sizeof p[4], "%s/future.fanet", dir);
    snprintf(p[5], sizeof p[5], "%s/a", dir);
    snprintf(p[6], sizeof p[6], "%s/b", dir);
    ck_assert_int_eq(mkdir(p[5], 0755), 0);
    ck_assert_int_eq(mkdir(p[6], 0755), 0);

    /* relative link to an existing file, which keeps its mode */
    OK(fa_net_save(old, p[0]));
    ck_assert_int_eq(chmod(p[0], 0640), 0);
    ck_assert_int_eq(symlink("real.fanet", p[1]), 0);
    OK(fa_net_save(net, p[1]));
    ck_assert_int_eq(lstat(p[1], &st), 0);
    ck_assert_msg(S_ISLNK(st.st_mode), "the link was replaced by a file");
    n = readlink(p[1], buf, sizeof buf - 1);
    ck_assert_int_eq(n, 10);
    buf[n] = '\0';
    ck_assert_str_eq(buf, "real.fanet");
    ck_assert_int_eq(lstat(p[0], &st), 0);
    ck_assert(S_ISREG(st.st_mode));
    ck_assert_uint_eq(st.st_mode & 0777, 0640);
    OK(fa_net_load(&back, p[0]));
    assert_same_net(net, back, "through a relative link");
    fa_net_free(back);

    /* a chain of two links */
    ck_assert_int_eq(symlink("latest.fanet", p[2]), 0);
    OK(fa_net_save(old, p[2]));
    ck_assert_int_eq(lstat(p[2], &st), 0);
    ck_assert(S_ISLNK(st.st_mode));
    ck_assert_int_eq(lstat(p[1], &st), 0);
    ck_assert(S_ISLNK(st.st_mode));
    OK(fa_net_load(&back, p[0]));
    assert_same_net(old, back, "through a chain of links");
    fa_net_free(back);

    /* a dangling link: its target is created */
    ck_assert_int_eq(symlink("future.fanet", p[3]), 0);
    OK(fa_net_save(net, p[3]));
    ck_assert_int_eq(lstat(p[3], &st), 0);
    ck_assert(S_ISLNK(st.st_mode));
    ck_assert_int_eq(lstat(p[4], &st), 0);
    ck_assert(S_ISREG(st.st_mode));
    ck_assert_uint_eq(st.st_mode & 0777, 0644);
    OK(fa_net_load(&back, p[3]));
    assert_same_net(net, back, "through a dangling link");
    fa_net_free(back);
    ck_assert_int_eq(count_entries(dir, &n_tmp), 7);
    ck_assert_int_eq(n_tmp, 0);

    /* a relative link in another directory: a/link -> ../b/model.fanet */
    snprintf(buf, sizeof buf, "%s/link.fanet", p[5]);
    ck_assert_int_eq(symlink("../b/model.fanet", buf), 0);
    OK(fa_net_save(net, buf));
    ck_assert_int_eq(lstat(buf, &st), 0);
    ck_assert(S_ISLNK(st.st_mode));
    snprintf(p[7], sizeof p[7], "%s/b/model.fanet", dir);
    ck_assert_int_eq(lstat(p[7], &st), 0);
    ck_assert(S_ISREG(st.st_mode));
    ck_assert_int_eq(count_entries(p[5], &n_tmp), 1);
    ck_assert_int_eq(count_entries(p[6], &n_tmp), 1);
    ck_assert_int_eq(n_tmp, 0);
    OK(fa_net_load(&back, p[7]));
    assert_same_net(net, back, "through a relative link in another directory");
    fa_net_free(back);

    /* an absolute link into another directory */
    snprintf(buf, sizeof buf, "%s/abs.fanet", dir);
    ck_assert_int_eq(symlink(p[7], buf), 0);
    OK(fa_net_save(old, buf));
    ck_assert_int_eq(lstat(buf, &st), 0);
    ck_assert(S_ISLNK(st.st_mode));
    OK(fa_net_load(&back, p[7]));
    assert_same_net(old, back, "through an absolute link");
    fa_net_free(back);
    ck_assert_int_eq(count_entries(p[6], &n_tmp), 1);
    ck_assert_int_eq(n_tmp, 0);

    fa_net_free(old);
    fa_net_free(net);
    remove_tree(dir);
}
END_TEST

/* A loop of links has no file to replace: the save fails with FA_ERR_IO and
 * leaves the links as they were (no file written in their place).  Before
 * the fix the save returned FA_OK, having renamed its file over a link. */
START_TEST(test_save_link_loop)
{
    char dir[512], a[600], b[600];
    fa_net *net = small_net();
    struct stat st;
    int n_tmp;

    make_dir(dir, sizeof dir);
    snprintf(a, sizeof a, "%s/a.fanet", dir);
    snprintf(b, sizeof b, "%s/b.fanet", dir);
    ck_assert_int_eq(symlink("b.fanet", a), 0);
    ck_assert_int_eq(symlink("a.fanet", b), 0);
    ck_assert_int_eq(fa_net_save(net, a), FA_ERR_IO);
    ck_assert_ptr_nonnull(strstr(fa_last_error(), a));
    ck_assert_int_eq(lstat(a, &st), 0);
    ck_assert_msg(S_ISLNK(st.st_mode), "a link of the loop was replaced by a file");
    ck_assert_int_eq(lstat(b, &st), 0);
    ck_assert_msg(S_ISLNK(st.st_mode), "a link of the loop was replaced by a file");
    ck_assert_int_eq(count_entries(dir, &n_tmp), 2);
    ck_assert_int_eq(n_tmp, 0);

    /* A chain of 40 links is followed (the kernel's limit), 41 are not. */
    char link[640], next[64];
    for (int k = 1; k <= 41; k++) {
        snprintf(next, sizeof next, k == 1 ? "end.fanet" : "l%d", k - 1);
        snprintf(link, sizeof link, "%s/l%d", dir, k);
        ck_assert_int_eq(symlink(next, link), 0);
    }
    snprintf(link, sizeof link, "%s/l40", dir);
    OK(fa_net_save(net, link));
    snprintf(link, sizeof link, "%s/end.fanet", dir);
    ck_assert_int_eq(lstat(link, &st), 0);
    ck_assert(S_ISREG(st.st_mode));
    snprintf(link, sizeof link, "%s/l41", dir);
    ck_assert_int_eq(fa_net_save(net, link), FA_ERR_IO);
    ck_assert_ptr_nonnull(strstr(fa_last_error(), strerror(ELOOP)));
    ck_assert_int_eq(lstat(link, &st), 0);
    ck_assert(S_ISLNK(st.st_mode));
    ck_assert_int_eq(count_entries(dir, &n_tmp), 2 + 41 + 1);
    ck_assert_int_eq(n_tmp, 0);
    fa_net_free(net);
    remove_tree(dir);
}
END_TEST

/* A save that fails leaves the old file byte for byte and no temporary:
 * a read-only directory (skipped as root, who ignores permissions), a link
 * into a directory that does not exist, and a path whose directory does
 * not exist. */
START_TEST(test_failed_save_leaves_no_trace)
{
    char dir[512], ro[600], path[700], link[700];
    fa_net *old = small_net(), *net = make_net(&small), *back = NULL;
    unsigned char *before, *after;
    size_t n_before, n_after;
    struct stat st;
    int n_tmp;

    make_dir(dir, sizeof dir);
    snprintf(ro, sizeof ro, "%s/ro", dir);
    ck_assert_int_eq(mkdir(ro, 0755), 0);
    snprintf(path, sizeof path, "%s/model.fanet", ro);
    OK(fa_net_save(old, path));
    before = read_file(path, &n_before);
    if (geteuid() != 0) {
        ck_assert_int_eq(chmod(ro, 0555), 0);
        ck_assert_int_eq(fa_net_save(net, path), FA_ERR_IO);
        ck_assert_ptr_nonnull(strstr(fa_last_error(), path));
        ck_assert_ptr_nonnull(strstr(fa_last_error(), strerror(EACCES)));
        ck_assert_int_eq(chmod(ro, 0755), 0);
        after = read_file(path, &n_after);
        ck_assert_uint_eq(n_before, n_after);
        ck_assert(memcmp(before, after, n_before) == 0);
        free(after);
        ck_assert_int_eq(count_entries(ro, &n_tmp), 1);
        ck_assert_int_eq(n_tmp, 0);
    }

    /* a link into a directory that does not exist: the link stays */
    snprintf(link, sizeof link, "%s/link.fanet", ro);
    ck_assert_int_eq(symlink("../nowhere/model.fanet", link), 0);
    ck_assert_int_eq(fa_net_save(net, link), FA_ERR_IO);
    ck_assert_ptr_nonnull(strstr(fa_last_error(), link));
    ck_assert_int_eq(lstat(link, &st), 0);
    ck_assert(S_ISLNK(st.st_mode));
    ck_assert_int_eq(count_entries(ro, &n_tmp), 2);
    ck_assert_int_eq(n_tmp, 0);
    ck_assert_int_eq(count_entries(dir, &n_tmp), 1);

    /* a directory that does not exist */
    snprintf(link, sizeof link, "%s/missing/model.fanet", ro);
    ck_assert_int_eq(fa_net_save(net, link), FA_ERR_IO);
    ck_assert_ptr_nonnull(strstr(fa_last_error(), strerror(ENOENT)));
    ck_assert_int_eq(count_entries(ro, &n_tmp), 2);
    ck_assert_int_eq(n_tmp, 0);

    after = read_file(path, &n_after);
    ck_assert_uint_eq(n_before, n_after);
    ck_assert(memcmp(before, after, n_before) == 0);
    OK(fa_net_load(&back, path));
    assert_same_net(old, back, "after failed saves");
    free(before);
    free(after);
    fa_net_free(back);
    fa_net_free(old);
    fa_net_free(net);
    remove_tree(dir);
}
END_TEST

/* ------------------------------------------------------------- I/O errors */

START_TEST(test_null_arguments)
{
    fa_net *net = small_net();
    fa_net *out = net;
    ck_assert_int_eq(fa_net_save(NULL, "/tmp/x"), FA_ERR_NULL);
    ck_assert_str_ne(fa_last_error(), "");
    ck_assert_int_eq(fa_net_save(net, NULL), FA_ERR_NULL);
    ck_assert_int_eq(fa_net_load(NULL, "/tmp/x"), FA_ERR_NULL);
    ck_assert_int_eq(fa_net_load(&out, NULL), FA_ERR_NULL);
    ck_assert_ptr_null(out);
    ck_assert_int_eq(fa_net_save(net, ""), FA_ERR_IO);
    fa_net_free(net);
}
END_TEST

START_TEST(test_load_missing_or_not_a_file)
{
    char dir[512], path[600];
    fa_net *out = (fa_net *)&out;

    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/missing.fanet", dir);
    ck_assert_int_eq(fa_net_load(&out, path), FA_ERR_IO);
    ck_assert_ptr_null(out);
    ck_assert_ptr_nonnull(strstr(fa_last_error(), path));
    ck_assert_ptr_nonnull(strstr(fa_last_error(), strerror(ENOENT)));

    out = (fa_net *)&out;
    ck_assert_int_eq(fa_net_load(&out, dir), FA_ERR_IO); /* a directory */
    ck_assert_ptr_null(out);
    ck_assert_ptr_nonnull(strstr(fa_last_error(), "not a regular file"));

    /* A FIFO without a writer is refused, not waited on. */
    snprintf(path, sizeof path, "%s/fifo", dir);
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    out = (fa_net *)&out;
    ck_assert_int_eq(fa_net_load(&out, path), FA_ERR_IO);
    ck_assert_ptr_null(out);
    ck_assert_ptr_nonnull(strstr(fa_last_error(), "not a regular file"));

    /* A foreign file is refused at its first bytes. */
    snprintf(path, sizeof path, "%s/text.txt", dir);
    write_file(path, "hello, world\n", 13);
    out = (fa_net *)&out;
    ck_assert_int_eq(fa_net_load(&out, path), FA_ERR_FORMAT);
    ck_assert_ptr_null(out);
    ck_assert_ptr_nonnull(strstr(fa_last_error(), "bad magic"));
    remove_tree(dir);
}
END_TEST

START_TEST(test_save_unwritable_path)
{
    char dir[512], path[700];
    fa_net *net = small_net();
    int n_tmp;

    make_dir(dir, sizeof dir);
    /* Parent directory does not exist. */
    snprintf(path, sizeof path, "%s/no/such/dir/model.fanet", dir);
    ck_assert_int_eq(fa_net_save(net, path), FA_ERR_IO);
    ck_assert_ptr_nonnull(strstr(fa_last_error(), path));
    ck_assert_ptr_nonnull(strstr(fa_last_error(), strerror(ENOENT)));
    ck_assert_int_eq(count_entries(dir, &n_tmp), 0);

    /* Parent is a regular file (stops root too, unlike permissions). */
    snprintf(path, sizeof path, "%s/plain", dir);
    write_file(path, "x", 1);
    snprintf(path, sizeof path, "%s/plain/model.fanet", dir);
    ck_assert_int_eq(fa_net_save(net, path), FA_ERR_IO);
    ck_assert_ptr_nonnull(strstr(fa_last_error(), strerror(ENOTDIR)));
    ck_assert_int_eq(count_entries(dir, &n_tmp), 1);
    ck_assert_int_eq(n_tmp, 0);

    /* A path naming a directory ("dir/"): nothing to name the file. */
    snprintf(path, sizeof path, "%s/", dir);
    ck_assert_int_eq(fa_net_save(net, path), FA_ERR_IO);
    ck_assert_int_eq(count_entries(dir, &n_tmp), 1);
    ck_assert_int_eq(n_tmp, 0);
    fa_net_free(net);
    remove_tree(dir);
}
END_TEST

/* The temporary file is written but cannot replace the target (a non-empty
 * directory): the target stays and the temporary file goes. */
START_TEST(test_save_rename_fails)
{
    char dir[512], path[600], inner[700];
    fa_net *net = small_net();
    struct stat st;
    int n_tmp;

    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/target", dir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    snprintf(inner, sizeof inner, "%s/keep", path);
    write_file(inner, "old", 3);
    ck_assert_int_eq(fa_net_save(net, path), FA_ERR_IO);
    ck_assert_ptr_nonnull(strstr(fa_last_error(), path));
    ck_assert_int_eq(count_entries(dir, &n_tmp), 1);
    ck_assert_int_eq(n_tmp, 0);
    ck_assert_int_eq(stat(inner, &st), 0);
    ck_assert_int_eq(st.st_size, 3);
    fa_net_free(net);
    remove_tree(dir);
}
END_TEST

/* A write that fails half-way (file size limit; root is not exempt) leaves
 * the existing model file byte for byte as it was. */
START_TEST(test_failed_save_keeps_old_file)
{
    char dir[512], path[600];
    static const config big = {
        "big", "30-40:tanh-10:identity", FA_LOSS_MSE, FA_RULE_FA, -1, FA_OPT_ADAM,
        FA_DFA_AFTER_ACTIVATION, FA_DIST_UNIFORM, 0.0, 0.0};
    fa_net *old_net = small_net(), *big_net = make_net(&big), *back = NULL;
    unsigned char *before, *after;
    size_t n_before, n_after;
    struct rlimit saved, lim;
    void (*old_handler)(int);
    int rc, n_tmp;

    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/model.fanet", dir);
    OK(fa_net_save(old_net, path));
    before = read_file(path, &n_before);

    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &saved), 0);
    lim = saved;
    lim.rlim_cur = 4096; /* the big model needs ~24 KiB */
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    old_handler = signal(SIGXFSZ, SIG_IGN); /* get EFBIG instead of a signal */
    rc = fa_net_save(big_net, path);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &saved), 0);
    signal(SIGXFSZ, old_handler);

    ck_assert_int_eq(rc, FA_ERR_IO);
    ck_assert_ptr_nonnull(strstr(fa_last_error(), path));
    ck_assert_ptr_nonnull(strstr(fa_last_error(), strerror(EFBIG)));
    after = read_file(path, &n_after);
    ck_assert_uint_eq(n_before, n_after);
    ck_assert(memcmp(before, after, n_before) == 0);
    ck_assert_int_eq(count_entries(dir, &n_tmp), 1);
    ck_assert_int_eq(n_tmp, 0);
    OK(fa_net_load(&back, path));
    assert_same_net(old_net, back, "after a failed save");

    free(before);
    free(after);
    fa_net_free(old_net);
    fa_net_free(big_net);
    fa_net_free(back);
    remove_tree(dir);
}
END_TEST

/* ------------------------------------------------------------------- main */

static Suite *io_suite(void)
{
    Suite *s = suite_create("io");
    TCase *tc;

    tc = tcase_create("crc32");
    tcase_add_test(tc, test_crc32_known_answers);
    suite_add_tcase(s, tc);

    tc = tcase_create("round_trip");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_round_trip, 0, N_CASES);
    tcase_add_loop_test(tc, test_continue_training, 0, N_CASES);
    tcase_add_test(tc, test_save_replaces);
    suite_add_tcase(s, tc);

    tc = tcase_create("corrupt");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_small_layout);
    tcase_add_test(tc, test_truncated_every_length);
    tcase_add_test(tc, test_flipped_every_byte);
    tcase_add_loop_test(tc, test_edited_fields, 0, N_EDITS);
    tcase_add_test(tc, test_fewer_hparams);
    tcase_add_test(tc, test_negative_rmsprop_moment);
    suite_add_tcase(s, tc);

    tc = tcase_create("images");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_save_image_sizes);
    tcase_add_test(tc, test_load_image_damaged);
    tcase_add_test(tc, test_load_image_arguments);
    tcase_add_loop_test(tc, test_clone, 0, N_CASES);
    tcase_add_test(tc, test_clone_arguments);
    suite_add_tcase(s, tc);

    tc = tcase_create("version1");
    tcase_add_loop_test(tc, test_v1_fixture, 0, N_FIXTURES);
    tcase_add_test(tc, test_v1_fixture_detects_change);
    tcase_add_test(tc, test_v1_damaged);
    suite_add_tcase(s, tc);

    tc = tcase_create("save");
    tcase_add_test(tc, test_stale_temporaries);
    tcase_add_test(tc, test_long_name);
    tcase_add_test(tc, test_save_through_links);
    tcase_add_test(tc, test_save_link_loop);
    tcase_add_test(tc, test_failed_save_leaves_no_trace);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_test(tc, test_null_arguments);
    tcase_add_test(tc, test_load_missing_or_not_a_file);
    tcase_add_test(tc, test_save_unwritable_path);
    tcase_add_test(tc, test_save_rename_fails);
    tcase_add_test(tc, test_failed_save_keeps_old_file);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(io_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
