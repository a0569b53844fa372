/*
 * test_io.c -- CRC-32 and model files (src/io.c).
 *
 * Links the internal static library: the tests compare handles field by
 * field (struct fa_net) and rebuild corrupt files with fa_crc32.  Offsets
 * into files follow the format described at the top of src/io.c and in
 * docs/ARCHITECTURE.md; if the format changes, these tests must change
 * with it.
 */
#define _POSIX_C_SOURCE 200809L

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

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
        DIR *d = opendir(path);
        struct dirent *e;
        char sub[1024];
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

/* Number of entries in dir (not counting . and ..); names with ".tmp."
 * counted separately, so a leaked temporary file is caught. */
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
        if (strstr(e->d_name, ".tmp.") != NULL)
            (*n_tmp)++;
    }
    closedir(d);
    return n;
}

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf;
    long n;
    ck_assert_ptr_nonnull(f);
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
    ck_assert_ptr_nonnull(f);
    if (len > 0)
        ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

/* Recompute the trailing CRC-32 after editing a file image, so the edit is
 * what the loader sees rather than a checksum mismatch. */
static void fix_crc(unsigned char *buf, size_t len)
{
    uint32_t crc = fa_crc32(0, buf, len - 4);
    memcpy(buf + len - 4, &crc, 4);
}

/* Load must fail with FA_ERR_FORMAT, leave *out NULL and say `expect`. */
static void assert_format_error(const char *path, const char *expect)
{
    fa_net *out = (fa_net *)&out; /* anything but NULL: load must clear it */
    int rc = fa_net_load(&out, path);
    ck_assert_msg(rc == FA_ERR_FORMAT, "load returned %d (%s), expected FA_ERR_FORMAT",
                  rc, fa_last_error());
    ck_assert_ptr_null(out);
    if (expect != NULL)
        ck_assert_msg(strstr(fa_last_error(), expect) != NULL,
                      "message \"%s\" does not contain \"%s\"", fa_last_error(), expect);
}

/* ------------------------------------------------------- the test networks */

typedef struct config {
    const char *name;
    int32_t n_layers;
    int32_t sizes[4];
    int32_t act[3];
    int32_t loss;
    int32_t rule;     /* final rule */
    int32_t also_rule; /* a rule set before `rule`, so both blocks exist; -1 none */
    int32_t optimizer;
    int32_t variant;
    int32_t dist;
    double scale;
    double dropout;   /* on every hidden layer */
} config;

static const config configs[] = {
    {"BP SGD", 2, {3, 5, 2}, {FA_ACT_TANH, FA_ACT_IDENTITY}, FA_LOSS_MSE,
     FA_RULE_BP, -1, FA_OPT_SGD, FA_DFA_AFTER_ACTIVATION, FA_DIST_UNIFORM, 0.0, 0.0},
    {"BP momentum dropout", 3, {3, 5, 4, 2},
     {FA_ACT_SIGMOID, FA_ACT_RELU, FA_ACT_IDENTITY}, FA_LOSS_SOFTMAX_CE,
     FA_RULE_BP, -1, FA_OPT_MOMENTUM, FA_DFA_AFTER_ACTIVATION, FA_DIST_UNIFORM, 0.0, 0.25},
    {"FA Adam dropout", 3, {3, 5, 4, 2},
     {FA_ACT_TANH, FA_ACT_LEAKY_RELU, FA_ACT_IDENTITY}, FA_LOSS_SOFTMAX_CE,
     FA_RULE_FA, -1, FA_OPT_ADAM, FA_DFA_AFTER_ACTIVATION, FA_DIST_GAUSSIAN, 0.3, 0.25},
    {"FA Nesterov", 2, {4, 6, 3}, {FA_ACT_RELU, FA_ACT_SIGMOID}, FA_LOSS_MSE,
     FA_RULE_FA, -1, FA_OPT_NESTEROV, FA_DFA_AFTER_ACTIVATION, FA_DIST_SIGN, 0.0, 0.0},
    {"DFA Adam dropout", 3, {3, 5, 4, 2},
     {FA_ACT_TANH, FA_ACT_TANH, FA_ACT_IDENTITY}, FA_LOSS_SIGMOID_BCE,
     FA_RULE_DFA, -1, FA_OPT_ADAM, FA_DFA_AFTER_ACTIVATION, FA_DIST_UNIFORM, 0.0, 0.2},
    {"DFA before-activation RMSprop", 3, {3, 5, 4, 2},
     {FA_ACT_TANH, FA_ACT_RELU, FA_ACT_IDENTITY}, FA_LOSS_MSE,
     FA_RULE_DFA, -1, FA_OPT_RMSPROP, FA_DFA_BEFORE_ACTIVATION, FA_DIST_SIGN, 0.5, 0.1},
    {"DFA after FA (both blocks) Adam dropout", 3, {3, 5, 4, 2},
     {FA_ACT_TANH, FA_ACT_TANH, FA_ACT_IDENTITY}, FA_LOSS_SOFTMAX_CE,
     FA_RULE_DFA, FA_RULE_FA, FA_OPT_ADAM, FA_DFA_AFTER_ACTIVATION, FA_DIST_GAUSSIAN, 0.0, 0.3},
    {"one layer FA (no feedback)", 1, {3, 2}, {FA_ACT_IDENTITY}, FA_LOSS_SOFTMAX_CE,
     FA_RULE_FA, -1, FA_OPT_ADAM, FA_DFA_AFTER_ACTIVATION, FA_DIST_UNIFORM, 0.0, 0.0},
};
#define N_CONFIGS ((int)(sizeof configs / sizeof configs[0]))

#define BATCH 4

static fa_net *make_net(const config *c)
{
    fa_net *net = NULL;
    ck_assert_int_eq(fa_net_create(&net, c->n_layers, c->sizes, c->act, c->loss, 1234u), FA_OK);
    /* Non-default values everywhere, so a field the file forgets shows. */
    ck_assert_int_eq(fa_net_set_feedback_init(net, c->dist, c->scale), FA_OK);
    ck_assert_int_eq(fa_net_set_dfa_variant(net, c->variant), FA_OK);
    if (c->also_rule >= 0)
        ck_assert_int_eq(fa_net_set_rule(net, c->also_rule), FA_OK);
    ck_assert_int_eq(fa_net_set_rule(net, c->rule), FA_OK);
    ck_assert_int_eq(fa_net_set_optimizer(net, c->optimizer), FA_OK);
    ck_assert_int_eq(fa_net_set_hparam(net, FA_HP_LR, 0.05), FA_OK);
    ck_assert_int_eq(fa_net_set_hparam(net, FA_HP_MOMENTUM, 0.8), FA_OK);
    ck_assert_int_eq(fa_net_set_hparam(net, FA_HP_BETA2, 0.99), FA_OK);
    ck_assert_int_eq(fa_net_set_hparam(net, FA_HP_WEIGHT_DECAY, 1e-3), FA_OK);
    ck_assert_int_eq(fa_net_set_hparam(net, FA_HP_LEAKY_SLOPE, 0.05), FA_OK);
    for (int32_t l = 1; l < c->n_layers; l++)
        ck_assert_int_eq(fa_net_set_dropout(net, l, c->dropout), FA_OK);
    return net;
}

/* Deterministic batch: x (n_0, BATCH), t one-hot (n_L, BATCH). */
static void make_batch(const config *c, float *x, float *t)
{
    int32_t n0 = c->sizes[0], nl = c->sizes[c->n_layers];
    for (int32_t j = 0; j < BATCH; j++) {
        for (int32_t i = 0; i < n0; i++)
            x[i + j * n0] = (float)((i * 7 + j * 3) % 5) * 0.25f - 0.5f;
        for (int32_t i = 0; i < nl; i++)
            t[i + j * nl] = i == j % nl ? 1.0f : 0.0f;
    }
}

static void train(fa_net *net, const config *c, int steps)
{
    float x[6 * BATCH], t[6 * BATCH], loss;
    make_batch(c, x, t);
    for (int s = 0; s < steps; s++)
        ck_assert_msg(fa_net_train_step(net, x, c->sizes[0], t, c->sizes[c->n_layers],
                                        BATCH, &loss) == FA_OK,
                      "%s: %s", c->name, fa_last_error());
}

static void assert_floats_equal(const float *a, const float *b, int64_t n, const char *what)
{
    ck_assert_msg(memcmp(a, b, (size_t)n * sizeof *a) == 0, "%s differ", what);
}

/* Every field a file carries, bitwise, plus the public getters and the
 * forward output. */
static void assert_same_net(fa_net *a, fa_net *b, const config *c)
{
    int32_t L = a->n_layers, ia, ib;
    int64_t na, nb;
    double da, db;
    float x[6 * BATCH], t[6 * BATCH], ya[6 * BATCH], yb[6 * BATCH];

    ck_assert_int_eq(fa_net_num_layers(b, &ib), FA_OK);
    ck_assert_int_eq(ib, L);
    for (int32_t l = 0; l <= L; l++)
        ck_assert_int_eq(a->sizes[l], b->sizes[l]);
    for (int32_t l = 1; l <= L; l++) {
        ck_assert_int_eq(fa_net_get_activation(a, l, &ia), FA_OK);
        ck_assert_int_eq(fa_net_get_activation(b, l, &ib), FA_OK);
        ck_assert_int_eq(ia, ib);
    }
    ck_assert_int_eq(fa_net_get_loss(a, &ia), FA_OK);
    ck_assert_int_eq(fa_net_get_loss(b, &ib), FA_OK);
    ck_assert_int_eq(ia, ib);
    ck_assert_int_eq(fa_net_get_rule(a, &ia), FA_OK);
    ck_assert_int_eq(fa_net_get_rule(b, &ib), FA_OK);
    ck_assert_int_eq(ia, ib);
    ck_assert_int_eq(fa_net_get_dfa_variant(a, &ia), FA_OK);
    ck_assert_int_eq(fa_net_get_dfa_variant(b, &ib), FA_OK);
    ck_assert_int_eq(ia, ib);
    ck_assert_int_eq(fa_net_get_optimizer(a, &ia), FA_OK);
    ck_assert_int_eq(fa_net_get_optimizer(b, &ib), FA_OK);
    ck_assert_int_eq(ia, ib);
    for (int32_t h = 0; h < FA_N_HPARAMS; h++) {
        ck_assert_int_eq(fa_net_get_hparam(a, h, &da), FA_OK);
        ck_assert_int_eq(fa_net_get_hparam(b, h, &db), FA_OK);
        ck_assert_msg(memcmp(&da, &db, sizeof da) == 0, "hparam %d differs", (int)h);
    }
    for (int32_t l = 1; l < L; l++) {
        ck_assert_int_eq(fa_net_get_dropout(a, l, &da), FA_OK);
        ck_assert_int_eq(fa_net_get_dropout(b, l, &db), FA_OK);
        ck_assert_msg(memcmp(&da, &db, sizeof da) == 0, "dropout %d differs", (int)l);
    }
    ck_assert_int_eq(a->fb_dist, b->fb_dist);
    ck_assert_msg(memcmp(&a->fb_scale, &b->fb_scale, sizeof a->fb_scale) == 0,
                  "feedback scale differs");

    ck_assert_int_eq(fa_net_param_count(a, &na), FA_OK);
    ck_assert_int_eq(fa_net_param_count(b, &nb), FA_OK);
    ck_assert_int_eq(na, nb);
    assert_floats_equal(a->params, b->params, na, "parameters");

    for (int32_t r = 0; r < FA_N_RULES; r++) {
        ck_assert_msg((a->fb[r] != NULL) == (b->fb[r] != NULL), "feedback block of rule %d "
                      "present in one network only", (int)r);
        if (a->fb[r] != NULL)
            assert_floats_equal(a->fb[r], b->fb[r], fa_feedback_len(a, r), "feedback");
    }
    ck_assert_int_eq(fa_optimizer_state_len(a), fa_optimizer_state_len(b));
    assert_floats_equal(a->opt_state, b->opt_state, fa_optimizer_state_len(a),
                        "optimiser state");
    ck_assert_int_eq(a->opt_step, b->opt_step);
    ck_assert_msg(memcmp(a->rng.s, b->rng.s, sizeof a->rng.s) == 0, "RNG state differs");
    ck_assert_msg(memcmp(a->rng_drop.s, b->rng_drop.s, sizeof a->rng_drop.s) == 0,
                  "dropout RNG state differs");

    make_batch(c, x, t);
    ck_assert_int_eq(fa_net_forward(a, x, c->sizes[0], BATCH, ya, c->sizes[L]), FA_OK);
    ck_assert_int_eq(fa_net_forward(b, x, c->sizes[0], BATCH, yb, c->sizes[L]), FA_OK);
    assert_floats_equal(ya, yb, (int64_t)c->sizes[L] * BATCH, "forward outputs");
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

START_TEST(test_round_trip)
{
    const config *c = &configs[_i];
    char dir[512], path[600];
    fa_net *a = make_net(c), *b = NULL;
    int n_tmp;

    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/model.fanet", dir);
    train(a, c, 3); /* non-zero optimiser state, step count, advanced RNG */
    ck_assert_msg(fa_net_save(a, path) == FA_OK, "%s: %s", c->name, fa_last_error());
    ck_assert_int_eq(count_entries(dir, &n_tmp), 1);
    ck_assert_int_eq(n_tmp, 0);
    ck_assert_msg(fa_net_load(&b, path) == FA_OK, "%s: %s", c->name, fa_last_error());
    ck_assert_ptr_nonnull(b);
    assert_same_net(a, b, c);
    /* Workspaces are the first step's business, not the file's. */
    fa_net_free(a);
    fa_net_free(b);
    remove_tree(dir);
}
END_TEST

/* Train N, save, train K more; load, train K: bitwise the same.  Dropout
 * makes the RNG state matter, Adam/momentum the optimiser state. */
START_TEST(test_continue_training)
{
    const config *c = &configs[_i];
    char dir[512], path[600];
    fa_net *a = make_net(c), *b = NULL;
    fa_rng saved;

    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/model.fanet", dir);
    train(a, c, 4);
    ck_assert_int_eq(fa_net_save(a, path), FA_OK);
    saved = a->rng;
    train(a, c, 5);
    ck_assert_int_eq(fa_net_load(&b, path), FA_OK);
    train(b, c, 5);
    if (c->dropout > 0.0) /* the RNG was in play, so saving it was tested */
        ck_assert(memcmp(saved.s, a->rng.s, sizeof saved.s) != 0);
    assert_same_net(a, b, c);
    fa_net_free(a);
    fa_net_free(b);
    remove_tree(dir);
}
END_TEST

/* Saving over an existing file replaces it, keeps its permissions and
 * leaves no temporary file. */
START_TEST(test_save_replaces)
{
    char dir[512], path[600];
    fa_net *a = make_net(&configs[0]), *b = make_net(&configs[2]), *c = NULL;
    struct stat st;
    int n_tmp;

    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/model.fanet", dir);
    ck_assert_int_eq(fa_net_save(a, path), FA_OK);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0644); /* new files: rw-r--r-- */
    ck_assert_int_eq(chmod(path, 0600), 0);
    ck_assert_int_eq(fa_net_save(b, path), FA_OK);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0600); /* replaced files keep theirs */
    ck_assert_int_eq(count_entries(dir, &n_tmp), 1);
    ck_assert_int_eq(n_tmp, 0);
    ck_assert_int_eq(fa_net_load(&c, path), FA_OK);
    assert_same_net(b, c, &configs[2]);
    fa_net_free(a);
    fa_net_free(b);
    fa_net_free(c);
    remove_tree(dir);
}
END_TEST

/* ---------------------------------------------------- corrupt model files */

/* The small model of the corruption tests: 2-3-2, DFA with its feedback,
 * Adam, dropout.  Offsets (format version 1, L = 2):
 *   0 magic, 8 version, 12 byte-order mark, 16 n_layers, 20 sizes[3],
 *   32 act[2], 40 loss, 44 rule, 48 dfa_variant, 52 fb_dist, 56 optimizer,
 *   60 fb_scale, 68 hp[8], 132 dropout[1], 140 opt_step, 148 rng[4],
 *   180 flags, 184 n_opt_state, 192 params[17], 260 DFA feedback[6],
 *   284 opt state[34] (m at 284, v at 352), 420 crc; 424 bytes. */
static const config small = {
    "small", 2, {2, 3, 2}, {FA_ACT_TANH, FA_ACT_IDENTITY}, FA_LOSS_SOFTMAX_CE,
    FA_RULE_DFA, -1, FA_OPT_ADAM, FA_DFA_AFTER_ACTIVATION, FA_DIST_UNIFORM, 0.0, 0.5};
#define SMALL_SIZE 424u

/* The image is made once per process (each save flushes to disk, which
 * dominates the run time) and handed out as a fresh copy. */
static unsigned char *small_image;
static size_t small_image_len;

static unsigned char *small_model(const char *dir, size_t *len)
{
    unsigned char *copy;
    if (small_image == NULL) {
        char path[600];
        fa_net *net = make_net(&small);
        train(net, &small, 2);
        snprintf(path, sizeof path, "%s/small.fanet", dir);
        ck_assert_int_eq(fa_net_save(net, path), FA_OK);
        fa_net_free(net);
        small_image = read_file(path, &small_image_len);
        ck_assert_uint_eq(small_image_len, SMALL_SIZE);
    }
    copy = malloc(small_image_len + 1); /* + 1: room for an appended byte */
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, small_image, small_image_len);
    *len = small_image_len;
    return copy;
}

START_TEST(test_truncated_every_length)
{
    char dir[512], path[600];
    size_t len;
    unsigned char *buf;

    make_dir(dir, sizeof dir);
    buf = small_model(dir, &len);
    snprintf(path, sizeof path, "%s/cut.fanet", dir);
    for (size_t n = 0; n < len; n++) {
        write_file(path, buf, n);
        assert_format_error(path, "truncated");
    }
    /* The untouched image still loads: the loop above tested the cuts. */
    write_file(path, buf, len);
    {
        fa_net *net = NULL;
        ck_assert_int_eq(fa_net_load(&net, path), FA_OK);
        fa_net_free(net);
    }
    free(buf);
    remove_tree(dir);
}
END_TEST

START_TEST(test_flipped_every_byte)
{
    static const unsigned char masks[] = {0x01, 0x80, 0xFF};
    char dir[512], path[600];
    size_t len;
    unsigned char *buf;

    make_dir(dir, sizeof dir);
    buf = small_model(dir, &len);
    snprintf(path, sizeof path, "%s/flip.fanet", dir);
    for (size_t i = 0; i < len; i++) {
        for (size_t m = 0; m < sizeof masks; m++) {
            buf[i] ^= masks[m];
            write_file(path, buf, len);
            assert_format_error(path, NULL);
            buf[i] ^= masks[m];
        }
    }
    free(buf);
    remove_tree(dir);
}
END_TEST

/* One edit of a small model file, the checksum recomputed (unless
 * keep_crc), and the message the loader must give. */
typedef enum { E_U32, E_U64, E_F64, E_F32, E_BYTE, E_XOR, E_ZERO, E_APPEND } edit_kind;
typedef struct edit {
    size_t off;
    edit_kind kind;
    uint64_t u;
    double d;
    int keep_crc;
    const char *expect;
} edit;

static const edit edits[] = {
    {0, E_BYTE, 'X', 0, 0, "not a feedbackalign model file (bad magic)"},
    {5, E_BYTE, '\n', 0, 0, "bad magic"}, /* "\r\n" mangled to "\n\n" */
    {8, E_U32, 2, 0, 0, "format version 2 is newer than this library supports (1)"},
    {8, E_U32, 0, 0, 0, "format version 0"},
    {12, E_U32, 0x04030201u, 0, 0, "written on a machine of the other byte order"},
    {12, E_U32, 0xDEADBEEFu, 0, 0, "byte-order mark"},
    {16, E_U32, 0, 0, 0, "n_layers out of range"},
    {16, E_U32, 0xFFFFFFFFu, 0, 0, "n_layers out of range"},
    {16, E_U32, 0x7FFFFFFEu, 0, 0, "truncated"},  /* huge, checked against the size */
    {16, E_U32, 3, 0, 0, NULL},  /* the rest misread: some format error */
    {16, E_U32, 1, 0, 0, NULL},
    {20, E_U32, 0, 0, 0, "layer size n_0 out of range"},
    {24, E_U32, 0x80000000u, 0, 0, "layer size n_1 out of range"},
    {24, E_U32, 0x7FFFFFFFu, 0, 0, "truncated"}, /* huge, no giant allocation */
    {32, E_U32, 5, 0, 0, "activation of layer 1 out of range"},
    {36, E_U32, FA_ACT_TANH, 0, 0, "architecture rejected"}, /* softmax needs identity */
    {40, E_U32, 3, 0, 0, "loss out of range"},
    {44, E_U32, 3, 0, 0, "rule out of range"},
    {44, E_U32, FA_RULE_FA, 0, 0, "no FA feedback block"},
    {48, E_U32, 2, 0, 0, "DFA variant out of range"},
    {52, E_U32, 3, 0, 0, "feedback distribution out of range"},
    {56, E_U32, 5, 0, 0, "optimizer out of range"},
    {56, E_U32, FA_OPT_SGD, 0, 0, "optimiser state has 34 floats"},
    {60, E_F64, 0, -1.0, 0, "feedback scale out of range"},
    {60, E_F64, 0, (double)NAN, 0, "feedback scale out of range"},
    {68, E_F64, 0, 0.0, 0, "learning rate"},
    {68, E_F64, 0, (double)INFINITY, 0, "learning rate"},
    {92, E_F64, 0, 1.0, 0, "beta2"},
    {100, E_F64, 0, 0.0, 0, "epsilon"},
    {108, E_F64, 0, -1e-3, 0, "weight decay"},
    {124, E_F64, 0, 1.5, 0, "leaky ReLU slope"},
    {132, E_F64, 0, 1.0, 0, "dropout of layer 1 out of range"},
    {132, E_F64, 0, (double)NAN, 0, "dropout of layer 1 out of range"},
    {140, E_U64, UINT64_MAX, 0, 0, "step count is negative"},
    {148, E_ZERO, 32, 0, 0, "RNG state is all zero"},
    {180, E_U32, 4, 0, 0, "unknown flags"},
    {180, E_U32, 0, 0, 0, "trailing bytes"},
    {180, E_U32, 3, 0, 0, "truncated"},
    {184, E_U64, UINT64_MAX, 0, 0, "optimiser state length"},
    {184, E_U64, 17, 0, 0, "trailing bytes"},
    {192, E_F32, 0, (double)NAN, 0, "parameter 0 is not finite"},
    {196, E_F32, 0, (double)INFINITY, 0, "parameter 1 is not finite"},
    {260, E_F32, 0, -(double)INFINITY, 0, "DFA feedback entry 0 is not finite"},
    {284, E_F32, 0, (double)NAN, 0, "optimiser state entry 0 is not finite"},
    {352, E_F32, 0, -1.0, 0, "optimiser second moment 0 is negative"},
    {200, E_XOR, 0x5A, 0, 1, "checksum mismatch"},
    {419, E_XOR, 0x01, 0, 1, "checksum mismatch"},
    {420, E_XOR, 0x80, 0, 1, "checksum mismatch"},
    {423, E_XOR, 0x01, 0, 1, "checksum mismatch"},
    {SMALL_SIZE, E_APPEND, 0, 0, 0, "trailing bytes"},
};
#define N_EDITS ((int)(sizeof edits / sizeof edits[0]))

START_TEST(test_edited_fields)
{
    const edit *e = &edits[_i];
    char dir[512], path[600];
    size_t len;
    unsigned char *buf;
    uint32_t u32 = (uint32_t)e->u;
    float f32 = (float)e->d;

    make_dir(dir, sizeof dir);
    buf = small_model(dir, &len);
    switch (e->kind) {
    case E_U32: memcpy(buf + e->off, &u32, 4); break;
    case E_U64: memcpy(buf + e->off, &e->u, 8); break;
    case E_F64: memcpy(buf + e->off, &e->d, 8); break;
    case E_F32: memcpy(buf + e->off, &f32, 4); break;
    case E_BYTE:
        /* An edit must change the byte, else the case tests nothing. */
        ck_assert_uint_ne(buf[e->off], (unsigned char)e->u);
        buf[e->off] = (unsigned char)e->u;
        break;
    case E_XOR: buf[e->off] ^= (unsigned char)e->u; break;
    case E_ZERO: memset(buf + e->off, 0, (size_t)e->u); break;
    case E_APPEND: len++; buf[len - 1] = 0; break; /* small_model left room */
    }
    if (!e->keep_crc && e->kind != E_APPEND)
        fix_crc(buf, len);
    snprintf(path, sizeof path, "%s/edited.fanet", dir);
    write_file(path, buf, len);
    assert_format_error(path, e->expect);
    free(buf);
    remove_tree(dir);
}
END_TEST

/* ------------------------------------------------------------- I/O errors */

START_TEST(test_null_arguments)
{
    fa_net *net = make_net(&configs[0]);
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
    assert_format_error(path, "bad magic");
    remove_tree(dir);
}
END_TEST

START_TEST(test_save_unwritable_path)
{
    char dir[512], path[700];
    fa_net *net = make_net(&configs[2]);
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
    fa_net_free(net);
    remove_tree(dir);
}
END_TEST

/* The temporary file is written but cannot replace the target (a non-empty
 * directory): the target stays and the temporary file goes. */
START_TEST(test_save_rename_fails)
{
    char dir[512], path[600], inner[700];
    fa_net *net = make_net(&configs[2]);
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
        "big", 2, {30, 40, 10}, {FA_ACT_TANH, FA_ACT_IDENTITY}, FA_LOSS_MSE,
        FA_RULE_FA, -1, FA_OPT_ADAM, FA_DFA_AFTER_ACTIVATION, FA_DIST_UNIFORM, 0.0, 0.0};
    fa_net *old_net = make_net(&configs[0]), *big_net = make_net(&big), *back = NULL;
    unsigned char *before, *after;
    size_t n_before, n_after;
    struct rlimit saved, lim;
    void (*old_handler)(int);
    int rc, n_tmp;

    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/model.fanet", dir);
    ck_assert_int_eq(fa_net_save(old_net, path), FA_OK);
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
    ck_assert_int_eq(fa_net_load(&back, path), FA_OK);
    assert_same_net(old_net, back, &configs[0]);

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
    tcase_add_loop_test(tc, test_round_trip, 0, N_CONFIGS);
    tcase_add_loop_test(tc, test_continue_training, 0, N_CONFIGS);
    tcase_add_test(tc, test_save_replaces);
    suite_add_tcase(s, tc);

    tc = tcase_create("corrupt");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_truncated_every_length);
    tcase_add_test(tc, test_flipped_every_byte);
    tcase_add_loop_test(tc, test_edited_fields, 0, N_EDITS);
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
    free(small_image);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
