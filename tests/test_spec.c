/*
 * test_spec.c -- the network spec: the builder (fa_spec_add_*), the text
 * form (fa_spec_parse / fa_spec_format), and fa_net_create_from_spec /
 * fa_net_get_spec.
 *
 * Every malformed spec must fail with the status the header gives it
 * (FA_ERR_ARG for syntax, names and activations, FA_ERR_SIZE for sizes and
 * overflow, FA_ERR_NULL for pointers) and a message that names the fault:
 * each case lists fragments that fa_last_error() must contain (the layer or
 * token, and what was wrong).  A failed call leaves *out NULL and a spec
 * it was adding to unchanged.  Good specs survive format -> parse
 * unchanged, layer by layer and shape by shape.  Expected shapes and
 * parameter counts are worked out by hand from the header's formulas.
 */
#include "internal.h"
#include "testutil.h"

/* The last error contains every fragment (NULL-terminated list). */
static void msg_has(const char *what, const char *const *frags)
{
    const char *m = fa_last_error();
    for (int i = 0; frags[i]; i++)
        ck_assert_msg(strstr(m, frags[i]) != NULL, "%s: message \"%s\" lacks \"%s\"", what, m,
                      frags[i]);
}

#define HAS(what, ...)                                    \
    do {                                                  \
        const char *const fr_[] = {__VA_ARGS__, NULL};    \
        msg_has(what, fr_);                               \
    } while (0)

/* Two specs are equal: same input, layers and shapes. */
static void same_spec(const fa_spec *a, const fa_spec *b, const char *what)
{
    int32_t na = -1, nb = -2;
    TU_OK(fa_spec_num_layers(a, &na));
    TU_OK(fa_spec_num_layers(b, &nb));
    ck_assert_msg(na == nb, "%s: %d layers vs %d", what, (int)na, (int)nb);
    for (int32_t l = 0; l <= na; l++) {
        int32_t sa[3], sb[3];
        TU_OK(fa_spec_shape(a, l, &sa[0], &sa[1], &sa[2]));
        TU_OK(fa_spec_shape(b, l, &sb[0], &sb[1], &sb[2]));
        ck_assert_msg(sa[0] == sb[0] && sa[1] == sb[1] && sa[2] == sb[2],
                      "%s: shape %d: %dx%dx%d vs %dx%dx%d", what, (int)l, (int)sa[0],
                      (int)sa[1], (int)sa[2], (int)sb[0], (int)sb[1], (int)sb[2]);
        if (l == 0)
            continue;
        int32_t la[7], lb[7];
        TU_OK(fa_spec_layer(a, l, &la[0], &la[1], &la[2], &la[3], &la[4], &la[5], &la[6]));
        TU_OK(fa_spec_layer(b, l, &lb[0], &lb[1], &lb[2], &lb[3], &lb[4], &lb[5], &lb[6]));
        for (int k = 0; k < 7; k++)
            ck_assert_msg(la[k] == lb[k],
                          "%s: layer %d field %d (kind, units, kh, kw, stride, pad, act): "
                          "%d vs %d", what, (int)l, k, (int)la[k], (int)lb[k]);
    }
}

/* The text of a spec, malloc'd. */
static char *format(const fa_spec *s)
{
    int64_t need = 0;
    TU_OK(fa_spec_format(s, NULL, 0, &need));
    ck_assert_int_gt(need, 1);
    char *buf = malloc((size_t)need);
    ck_assert_ptr_nonnull(buf);
    int64_t need2 = 0;
    TU_OK(fa_spec_format(s, buf, need, &need2));
    ck_assert_int_eq(need2, need);
    ck_assert_int_eq((int64_t)strlen(buf) + 1, need);
    return buf;
}

static fa_spec *parse(const char *text, int32_t hid, int32_t out)
{
    fa_spec *s = NULL;
    int rc = fa_spec_parse(&s, text, hid, out);
    ck_assert_msg(rc == FA_OK, "fa_spec_parse(\"%s\") = %d: %s", text, rc, fa_last_error());
    ck_assert_ptr_nonnull(s);
    return s;
}

static void check_shape(const fa_spec *s, int32_t l, int32_t c, int32_t h, int32_t w)
{
    int32_t sc, sh, sw;
    TU_OK(fa_spec_shape(s, l, &sc, &sh, &sw));
    ck_assert_msg(sc == c && sh == h && sw == w, "shape %d: %dx%dx%d, expected %dx%dx%d",
                  (int)l, (int)sc, (int)sh, (int)sw, (int)c, (int)h, (int)w);
}

/* ------------------------------------------------------------- the parser */

typedef struct bad_text {
    const char *text;
    int status;
    const char *frag[3]; /* fragments the message must contain */
} bad_text;

static const bad_text bad_texts[] = {
    /* missing or malformed input */
    {"", FA_ERR_ARG, {"token 1", "input size"}},
    {"-784", FA_ERR_ARG, {"token 1", "input size"}},
    {"-784-10", FA_ERR_ARG, {"token 1", "input size"}},
    {"c6k5-10", FA_ERR_ARG, {"token 1", "input size"}},
    {" 784-10", FA_ERR_ARG, {"token 1", "input size"}},
    {"+784-10", FA_ERR_ARG, {"token 1", "input size"}},
    {"784", FA_ERR_ARG, {"at least one layer"}},
    {"784 -10", FA_ERR_ARG, {"token 1", "after the input shape"}},
    {"784x2-10", FA_ERR_ARG, {"token 1", "CxHxW"}},
    {"1x28x28x3-10", FA_ERR_ARG, {"token 1", "after the input shape"}},
    {"1x28x-10", FA_ERR_ARG, {"token 1", "input width"}},
    /* empty tokens, signs and spaces */
    {"784-", FA_ERR_ARG, {"token 2", "a layer"}},
    {"784--10", FA_ERR_ARG, {"token 2", "a layer"}},
    {"784-10-", FA_ERR_ARG, {"token 3", "a layer"}},
    {"784- 10", FA_ERR_ARG, {"token 2", "a layer"}},
    {"784-+10", FA_ERR_ARG, {"token 2", "a layer"}},
    {"784--10-10", FA_ERR_ARG, {"token 2", "offset 4"}},
    {"784-10-q", FA_ERR_ARG, {"token 3", "'q'", "offset 7"}},
    {"784x-10", FA_ERR_ARG, {"token 1", "input height"}},
    {"784-10 -10", FA_ERR_ARG, {"token 2", "'-' or the end"}},
    {"784-10 ", FA_ERR_ARG, {"token 2", "'-' or the end"}},
    /* unknown layer letters and trailing garbage */
    {"784-q10-10", FA_ERR_ARG, {"token 2", "'q10'", "a layer"}},
    {"1x8x8-C4k3-10", FA_ERR_ARG, {"token 2", "a layer"}},
    {"784-10abc", FA_ERR_ARG, {"token 2", "'-' or the end"}},
    {"784-10-10;", FA_ERR_ARG, {"token 3", "'-' or the end"}},
    {"784-1e3", FA_ERR_ARG, {"token 2", "'-' or the end"}},
    {"784-10-10\n", FA_ERR_ARG, {"token 3", "'-' or the end"}},
    {"1x28x28-c6k5p2s1-10", FA_ERR_ARG, {"token 2", "'-' or the end"}},
    {"1x8x8-c4-10", FA_ERR_ARG, {"token 2", "'k'"}},
    {"1x8x8-c4k-10", FA_ERR_ARG, {"token 2", "kernel size"}},
    {"1x8x8-c4k3,-10", FA_ERR_ARG, {"token 2", "kernel width"}},
    {"1x8x8-c4k3s-10", FA_ERR_ARG, {"token 2", "stride"}},
    {"1x8x8-c4k3p-10", FA_ERR_ARG, {"token 2", "padding"}},
    {"1x8x8-m-10", FA_ERR_ARG, {"token 2", "window size"}},
    /* repeats */
    {"784-10x0-10", FA_ERR_ARG, {"token 2", "repeat count >= 1"}},
    {"784-10x-10", FA_ERR_ARG, {"token 2", "repeat count"}},
    {"784-10x2x2-10", FA_ERR_ARG, {"token 2", "'-' or the end"}},
    /* activations */
    {"784-10:", FA_ERR_ARG, {"token 2", "activation name"}},
    {"784-10:foo-10", FA_ERR_ARG, {"token 2", "known activation"}},
    {"784-10:relu:tanh-10", FA_ERR_ARG, {"token 2", "'-' or the end"}},
    {"784-10:leaky-relu-10", FA_ERR_ARG, {"token 2", "known activation"}},
    {"784-10:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", FA_ERR_ARG, {"token 2", "activation"}},
    {"784:relu-10", FA_ERR_ARG, {"token 1", "after the input shape"}},
    {"1x8x8-m2:relu-10", FA_ERR_ARG, {"token 2", "pooling"}},
    {"1x8x8-a2:identity-10", FA_ERR_ARG, {"token 2", "pooling"}},
    /* sizes: zero, and geometry that does not fit */
    {"0-10", FA_ERR_SIZE, {"input shape 0x1x1"}},
    {"1x0x8-10", FA_ERR_SIZE, {"input shape 1x0x8"}},
    {"784-0", FA_ERR_SIZE, {"layer 1", "units >= 1"}},
    {"784-10-0x3", FA_ERR_SIZE, {"layer 2", "units >= 1"}},
    {"1x8x8-c0k3-10", FA_ERR_SIZE, {"layer 1", "channels >= 1"}},
    {"1x8x8-c4k0-10", FA_ERR_SIZE, {"layer 1", "kernel 0x0"}},
    {"1x8x8-c4k3,0-10", FA_ERR_SIZE, {"layer 1", "kernel 3x0"}},
    {"1x8x8-c4k3s0-10", FA_ERR_SIZE, {"layer 1", "stride 0"}},
    {"1x8x8-c4k3p3-10", FA_ERR_SIZE, {"layer 1", "padding 3"}},
    {"1x8x8-c4k5,2p2-10", FA_ERR_SIZE, {"layer 1", "padding 2"}},
    {"1x4x4-c4k7p1-10", FA_ERR_SIZE, {"layer 1", "kernel height 7", "padded input (6)"}},
    {"1x8x4-c4k3,7p1-10", FA_ERR_SIZE, {"layer 1", "kernel width 7", "padded input (6)"}},
    {"1x8x8-c4k3-c2k7-10", FA_ERR_SIZE, {"layer 2", "larger than the padded input"}},
    {"1x8x8-c2k3x4-10", FA_ERR_SIZE, {"layer 4", "kernel height 3", "padded input (2)"}},
    {"784-10-c2k3", FA_ERR_SIZE, {"layer 2", "larger than the padded input"}},
    {"1x8x8-c4k3s2-10", FA_ERR_SIZE, {"layer 1", "output height", "not an integer"}},
    {"1x9x8-c4k3s2-10", FA_ERR_SIZE, {"layer 1", "output width", "not an integer"}},
    {"1x5x5-m2-10", FA_ERR_SIZE, {"layer 1", "not be an integer"}},
    {"1x6x6-m3s2-10", FA_ERR_SIZE, {"layer 1", "not be an integer"}},
    {"1x8x8-c2k3-a4-10", FA_ERR_SIZE, {"layer 2", "not be an integer"}},
    {"1x3x3-m4-10", FA_ERR_SIZE, {"layer 1", "window 4", "larger than the input 3x3"}},
    {"1x8x8-m0-10", FA_ERR_SIZE, {"layer 1", "window 0"}},
    {"1x8x8-m2s0-10", FA_ERR_SIZE, {"layer 1", "stride 0"}},
    {"784-10-m2", FA_ERR_SIZE, {"layer 2", "larger than the input 1x1"}},
    /* numbers beyond int32 and counts that overflow */
    {"2147483648-10", FA_ERR_SIZE, {"token 1", "out of range"}},
    {"784-2147483648", FA_ERR_SIZE, {"token 2", "out of range"}},
    {"784-99999999999999999999999-10", FA_ERR_SIZE, {"token 2", "out of range"}},
    {"1x8x8-c4k99999999999", FA_ERR_SIZE, {"token 2", "out of range"}},
    {"784-10x4294967297", FA_ERR_SIZE, {"token 2", "out of range"}},
    {"65536x65536x1-10", FA_ERR_SIZE, {"input shape", "2^31-1"}},
    {"1x40000x40000-c2k1-10", FA_ERR_SIZE, {"layer 1", "output features", "2^31-1"}},
    {"65536x181x181-c1k183p1-10", FA_ERR_SIZE, {"layer 1", "kernel volume", "2^31-1"}},
    {"2147483647-1000", FA_ERR_SIZE, {"layer 1", "2^40"}},
    {"1048576-524288-1048576-1", FA_ERR_SIZE, {"layer 2", "2^40"}},
    {"784-10x100001", FA_ERR_SIZE, {"100000"}},
    {"784-10x2147483647", FA_ERR_SIZE, {"100000"}},
};
#define N_BAD ((int)(sizeof bad_texts / sizeof bad_texts[0]))

START_TEST(test_parse_errors)
{
    const bad_text *b = &bad_texts[_i];
    fa_spec *s = (fa_spec *)(uintptr_t)1; /* must be set to NULL */
    int rc = fa_spec_parse(&s, b->text, FA_ACT_TANH, FA_ACT_IDENTITY);
    ck_assert_msg(rc == b->status, "\"%s\": status %d (%s), expected %d; message: %s", b->text,
                  rc, fa_status_string(rc), b->status, fa_last_error());
    ck_assert_msg(s == NULL, "\"%s\": *out not NULL after a failure", b->text);
    const char *m = fa_last_error();
    ck_assert_msg(strncmp(m, "fa_spec_parse: ", 15) == 0, "\"%s\": message \"%s\"", b->text, m);
    for (int k = 0; k < 3 && b->frag[k]; k++)
        ck_assert_msg(strstr(m, b->frag[k]) != NULL, "\"%s\": message \"%s\" lacks \"%s\"",
                      b->text, m, b->frag[k]);
}
END_TEST

START_TEST(test_parse_arguments)
{
    fa_spec *s = (fa_spec *)(uintptr_t)1;
    ck_assert_int_eq(fa_spec_parse(NULL, "784-10", 0, 0), FA_ERR_NULL);
    HAS("NULL out", "fa_spec_parse", "out");
    ck_assert_int_eq(fa_spec_parse(&s, NULL, 0, 0), FA_ERR_NULL);
    ck_assert_ptr_null(s);
    HAS("NULL text", "text");
    s = (fa_spec *)(uintptr_t)1;
    ck_assert_int_eq(fa_spec_parse(&s, "784-10", FA_N_ACTIVATIONS, 0), FA_ERR_ARG);
    ck_assert_ptr_null(s);
    HAS("hidden activation", "hidden_activation = 5");
    ck_assert_int_eq(fa_spec_parse(&s, "784-10", 0, -1), FA_ERR_ARG);
    HAS("output activation", "output_activation = -1");
}
END_TEST

/* Activations: hidden default, output default, explicit names (any case,
 * '_' as written by fa_enum_name). */
START_TEST(test_parse_activations)
{
    fa_spec *s = parse("1x8x8-c2k3-m2-c2k2:Sigmoid-7:LEAKY_RELU-5-3", FA_ACT_RELU, FA_ACT_TANH);
    const int32_t want_kind[] = {FA_LAYER_CONV2D, FA_LAYER_MAXPOOL, FA_LAYER_CONV2D,
                                 FA_LAYER_DENSE, FA_LAYER_DENSE, FA_LAYER_DENSE};
    const int32_t want_act[] = {FA_ACT_RELU, FA_ACT_IDENTITY, FA_ACT_SIGMOID,
                                FA_ACT_LEAKY_RELU, FA_ACT_RELU, FA_ACT_TANH};
    int32_t n = 0;
    TU_OK(fa_spec_num_layers(s, &n));
    ck_assert_int_eq(n, 6);
    for (int32_t l = 1; l <= n; l++) {
        int32_t kind, act;
        TU_OK(fa_spec_layer(s, l, &kind, NULL, NULL, NULL, NULL, NULL, &act));
        ck_assert_int_eq(kind, want_kind[l - 1]);
        ck_assert_int_eq(act, want_act[l - 1]);
    }
    fa_spec_free(s);
    /* a repeated group's last copy is the output layer */
    s = parse("10-10x3", FA_ACT_RELU, FA_ACT_IDENTITY);
    TU_OK(fa_spec_num_layers(s, &n));
    ck_assert_int_eq(n, 3);
    for (int32_t l = 1; l <= 3; l++) {
        int32_t act;
        TU_OK(fa_spec_layer(s, l, NULL, NULL, NULL, NULL, NULL, NULL, &act));
        ck_assert_int_eq(act, l == 3 ? FA_ACT_IDENTITY : FA_ACT_RELU);
    }
    char *f = format(s);
    fa_spec *back = parse(f, FA_ACT_SIGMOID, FA_ACT_SIGMOID); /* defaults unused */
    same_spec(s, back, f);
    fa_spec_free(back);
    free(f);
    fa_spec_free(s);
}
END_TEST

/* ---------------------------------------------------------- round trips */

typedef struct good_text {
    const char *text;
    int32_t hid, out;
    int32_t n_layers;
    const char *in_format; /* a piece the formatted text must contain, or NULL */
} good_text;

static const good_text good_texts[] = {
    /* 100 hidden layers of 240 and the output layer: 101 layers, 102 widths */
    {"784-240x100-10", FA_ACT_TANH, FA_ACT_IDENTITY, 101, "240x100:tanh"},
    {"784-1000-10", FA_ACT_RELU, FA_ACT_IDENTITY, 2, NULL},
    {"1x28x28-c6k5p2-m2-c16k5-m2-c120k5-84-10", FA_ACT_TANH, FA_ACT_IDENTITY, 7, "c6k5p2"},
    {"3x33x33-c16k3s2p1:relu-c8k5,3p2:leaky_relu-a3s2-m2s1-10:sigmoid", FA_ACT_TANH,
     FA_ACT_IDENTITY, 5, "k5,3"},
    {"1x9x9-m3s1x2-c2k3,1x2-5", FA_ACT_TANH, FA_ACT_SIGMOID, 5, "m3s1x2"},
    {"2x7x5-c3k2,4s1p1-a2s1-c2k3s2-4", FA_ACT_SIGMOID, FA_ACT_RELU, 4, "k2,4"},
    {"1x1x5-3", FA_ACT_TANH, FA_ACT_TANH, 1, "1x1x5"},
    {"5x1x1-3-3-3", FA_ACT_TANH, FA_ACT_TANH, 3, NULL},
    {"10-10x3", FA_ACT_RELU, FA_ACT_IDENTITY, 3, "10x2:relu"},
    {"10-10-10-10:relu", FA_ACT_RELU, FA_ACT_IDENTITY, 3, "10x3:relu"},
    {"1x4x4-m1x3-a2-2", FA_ACT_RELU, FA_ACT_IDENTITY, 5, "m1x3"},
    {"0012-007", FA_ACT_RELU, FA_ACT_IDENTITY, 1, NULL},
};
#define N_GOOD ((int)(sizeof good_texts / sizeof good_texts[0]))

START_TEST(test_round_trip)
{
    const good_text *g = &good_texts[_i];
    fa_spec *s = parse(g->text, g->hid, g->out);
    int32_t n = 0;
    TU_OK(fa_spec_num_layers(s, &n));
    ck_assert_msg(n == g->n_layers, "\"%s\": %d layers, expected %d", g->text, (int)n,
                  (int)g->n_layers);
    char *f = format(s);
    if (g->in_format)
        ck_assert_msg(strstr(f, g->in_format) != NULL, "\"%s\" formats as \"%s\", without \"%s\"",
                      g->text, f, g->in_format);
    /* every activation written out: the defaults of the second parse must
     * not matter */
    fa_spec *back = parse(f, (g->hid + 1) % FA_N_ACTIVATIONS, (g->out + 2) % FA_N_ACTIVATIONS);
    same_spec(s, back, g->text);
    char *f2 = format(back);
    ck_assert_str_eq(f, f2);
    /* the formatted text is no longer than the layers written one by one
     * would need: repeats collapse */
    if (g->n_layers >= 100)
        ck_assert_msg(strlen(f) < 64, "\"%s\" formats as %zu bytes", g->text, strlen(f));
    /* the network of the spec gives back an equal spec */
    fa_net *net = NULL;
    TU_OK(fa_net_create_from_spec(&net, s, FA_LOSS_MSE, 1));
    fa_spec *from_net = NULL;
    TU_OK(fa_net_get_spec(net, &from_net));
    same_spec(s, from_net, "fa_net_get_spec");
    char *f3 = format(from_net);
    ck_assert_str_eq(f, f3);
    /* sizes of the net are the spec's shapes */
    int32_t *sizes = malloc(sizeof(int32_t) * (size_t)(n + 1));
    ck_assert_ptr_nonnull(sizes);
    TU_OK(fa_net_get_sizes(net, sizes, n + 1));
    for (int32_t l = 0; l <= n; l++) {
        int32_t c, h, w;
        TU_OK(fa_spec_shape(s, l, &c, &h, &w));
        ck_assert_int_eq(sizes[l], c * h * w);
        if (l == 0)
            continue;
        int32_t kind, act, nkind, nact;
        TU_OK(fa_spec_layer(s, l, &kind, NULL, NULL, NULL, NULL, NULL, &act));
        TU_OK(fa_net_layer_kind(net, l, &nkind));
        TU_OK(fa_net_get_activation(net, l, &nact));
        ck_assert_int_eq(kind, nkind);
        ck_assert_int_eq(act, nact);
    }
    free(sizes);
    free(f3);
    fa_spec_free(from_net);
    fa_net_free(net);
    free(f2);
    fa_spec_free(back);
    free(f);
    fa_spec_free(s);
}
END_TEST

/* Shapes of a few parsed specs, by hand from the header's formulas. */
START_TEST(test_parsed_shapes)
{
    /* 3x33x33 -c16k3s2p1-> (33+2-3)/2+1 = 17: 16x17x17
     * -c8k5,3p2-> (17+4-5)+1 = 17 by (17+4-3)+1 = 19: 8x17x19
     * -a3s2-> (17-3)/2+1 = 8 by (19-3)/2+1 = 9: 8x8x9
     * -m2s1-> 7 by 8: 8x7x8 -10-> 10x1x1 */
    fa_spec *s = parse("3x33x33-c16k3s2p1:relu-c8k5,3p2:leaky_relu-a3s2-m2s1-10:sigmoid",
                       FA_ACT_TANH, FA_ACT_IDENTITY);
    check_shape(s, 0, 3, 33, 33);
    check_shape(s, 1, 16, 17, 17);
    check_shape(s, 2, 8, 17, 19);
    check_shape(s, 3, 8, 8, 9);
    check_shape(s, 4, 8, 7, 8);
    check_shape(s, 5, 10, 1, 1);
    int32_t f[7];
    TU_OK(fa_spec_layer(s, 2, &f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6]));
    ck_assert(f[0] == FA_LAYER_CONV2D && f[1] == 8 && f[2] == 5 && f[3] == 3 && f[4] == 1 &&
              f[5] == 2 && f[6] == FA_ACT_LEAKY_RELU);
    TU_OK(fa_spec_layer(s, 3, &f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6]));
    ck_assert(f[0] == FA_LAYER_AVGPOOL && f[1] == 0 && f[2] == 3 && f[3] == 3 && f[4] == 2 &&
              f[5] == 0 && f[6] == FA_ACT_IDENTITY);
    TU_OK(fa_spec_layer(s, 4, &f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6]));
    ck_assert(f[0] == FA_LAYER_MAXPOOL && f[2] == 2 && f[3] == 2 && f[4] == 1);
    TU_OK(fa_spec_layer(s, 5, &f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6]));
    ck_assert(f[0] == FA_LAYER_DENSE && f[1] == 10 && f[2] == 0 && f[3] == 0 && f[4] == 0 &&
              f[5] == 0 && f[6] == FA_ACT_SIGMOID);
    fa_spec_free(s);
    /* a pool's default stride is its window: "m2" on 8x8 gives 4x4 */
    s = parse("2x8x8-m2-a4-3", FA_ACT_TANH, FA_ACT_IDENTITY);
    check_shape(s, 1, 2, 4, 4);
    check_shape(s, 2, 2, 1, 1);
    TU_OK(fa_spec_layer(s, 1, NULL, NULL, NULL, NULL, &f[4], NULL, NULL));
    ck_assert_int_eq(f[4], 2);
    fa_spec_free(s);
}
END_TEST

/* LeNet-5 on 28x28 (padded to keep C1 at 28x28, as the 32x32 original):
 *   C1 c6k5p2:  1x28x28 -> 6x28x28,  W (6, 1*25):    6*25 + 6     =   156
 *   S2 m2:      -> 6x14x14
 *   C3 c16k5:   -> 16x10x10,         W (16, 6*25):   16*150 + 16  =  2416
 *   S4 m2:      -> 16x5x5
 *   C5 c120k5:  -> 120x1x1,          W (120, 16*25): 120*400 + 120 = 48120
 *   F6 84:      W (84, 120):                         84*120 + 84  = 10164
 *   out 10:     W (10, 84):                          10*84 + 10   =   850
 *   total 156 + 2416 + 48120 + 10164 + 850 = 61706 (the usual count for
 *   LeNet-5 with a fully connected C3 and a dense output layer). */
START_TEST(test_lenet)
{
    fa_spec *s = parse("1x28x28-c6k5p2-m2-c16k5-m2-c120k5-84-10", FA_ACT_TANH, FA_ACT_IDENTITY);
    const int32_t shapes[8][3] = {{1, 28, 28}, {6, 28, 28}, {6, 14, 14}, {16, 10, 10},
                                  {16, 5, 5},  {120, 1, 1}, {84, 1, 1},  {10, 1, 1}};
    for (int32_t l = 0; l <= 7; l++)
        check_shape(s, l, shapes[l][0], shapes[l][1], shapes[l][2]);
    fa_net *net = NULL;
    TU_OK(fa_net_create_from_spec(&net, s, FA_LOSS_SOFTMAX_CE, 1));
    int64_t count = 0;
    TU_OK(fa_net_param_count(net, &count));
    ck_assert_int_eq(count, 61706);
    const int32_t wshape[7][2] = {{6, 25}, {0, 0}, {16, 150}, {0, 0}, {120, 400}, {84, 120},
                                  {10, 84}};
    for (int32_t l = 1; l <= 7; l++) {
        int32_t r, c;
        TU_OK(fa_net_weight_shape(net, l, &r, &c));
        ck_assert_msg(r == wshape[l - 1][0] && c == wshape[l - 1][1],
                      "layer %d: W (%d, %d), expected (%d, %d)", (int)l, (int)r, (int)c,
                      (int)wshape[l - 1][0], (int)wshape[l - 1][1]);
    }
    /* the same with the builder */
    fa_spec *b = NULL;
    TU_OK(fa_spec_create(&b, 1, 28, 28));
    TU_OK(fa_spec_add_conv2d(b, 6, 5, 5, 1, 2, FA_ACT_TANH));
    TU_OK(fa_spec_add_pool(b, FA_LAYER_MAXPOOL, 2, 0));
    TU_OK(fa_spec_add_conv2d(b, 16, 5, 5, 1, 0, FA_ACT_TANH));
    TU_OK(fa_spec_add_pool(b, FA_LAYER_MAXPOOL, 2, 2));
    TU_OK(fa_spec_add_conv2d(b, 120, 5, 5, 1, 0, FA_ACT_TANH));
    TU_OK(fa_spec_add_dense(b, 84, FA_ACT_TANH));
    TU_OK(fa_spec_add_dense(b, 10, FA_ACT_IDENTITY));
    same_spec(s, b, "LeNet: builder vs parser");
    fa_spec_free(b);
    fa_net_free(net);
    fa_spec_free(s);
}
END_TEST

/* ------------------------------------------------------------- the builder */

/* A failing add leaves the spec as it was, and it still takes layers. */
static void unchanged(fa_spec *s, int32_t n, const char *what)
{
    int32_t m = -1;
    TU_OK(fa_spec_num_layers(s, &m));
    ck_assert_msg(m == n, "%s: the failed add changed the layer count to %d", what, (int)m);
}

START_TEST(test_builder_errors)
{
    fa_spec *s = (fa_spec *)(uintptr_t)1;
    ck_assert_int_eq(fa_spec_create(NULL, 1, 1, 1), FA_ERR_NULL);
    HAS("create NULL", "fa_spec_create", "out");
    ck_assert_int_eq(fa_spec_create(&s, 0, 28, 28), FA_ERR_SIZE);
    ck_assert_ptr_null(s);
    HAS("create 0", "fa_spec_create", "0x28x28", ">= 1");
    ck_assert_int_eq(fa_spec_create(&s, 1, -28, 28), FA_ERR_SIZE);
    HAS("create -28", "1x-28x28");
    ck_assert_int_eq(fa_spec_create(&s, 1, 28, 0), FA_ERR_SIZE);
    ck_assert_int_eq(fa_spec_create(&s, 65536, 65536, 1), FA_ERR_SIZE);
    HAS("create huge", "2^31-1");
    ck_assert_ptr_null(s);

    ck_assert_int_eq(fa_spec_add_dense(NULL, 3, 0), FA_ERR_NULL);
    HAS("dense NULL", "fa_spec_add_dense", "spec");
    ck_assert_int_eq(fa_spec_add_conv2d(NULL, 3, 3, 3, 1, 0, 0), FA_ERR_NULL);
    HAS("conv NULL", "fa_spec_add_conv2d", "spec");
    ck_assert_int_eq(fa_spec_add_pool(NULL, FA_LAYER_MAXPOOL, 2, 0), FA_ERR_NULL);
    HAS("pool NULL", "fa_spec_add_pool", "spec");

    TU_OK(fa_spec_create(&s, 2, 8, 8));
    TU_OK(fa_spec_add_conv2d(s, 4, 3, 3, 1, 1, FA_ACT_RELU)); /* 4x8x8 */
    /* dense */
    ck_assert_int_eq(fa_spec_add_dense(s, 0, FA_ACT_TANH), FA_ERR_SIZE);
    HAS("dense 0", "fa_spec_add_dense", "layer 2", "units >= 1, got 0");
    ck_assert_int_eq(fa_spec_add_dense(s, -5, FA_ACT_TANH), FA_ERR_SIZE);
    HAS("dense -5", "got -5");
    ck_assert_int_eq(fa_spec_add_dense(s, 5, FA_N_ACTIVATIONS), FA_ERR_ARG);
    HAS("dense act", "layer 2", "activation 5");
    ck_assert_int_eq(fa_spec_add_dense(s, 5, -1), FA_ERR_ARG);
    HAS("dense act -1", "activation -1");
    unchanged(s, 1, "dense");
    /* conv2d */
    ck_assert_int_eq(fa_spec_add_conv2d(s, 0, 3, 3, 1, 0, 0), FA_ERR_SIZE);
    HAS("conv channels 0", "fa_spec_add_conv2d", "layer 2", "channels >= 1, got 0");
    ck_assert_int_eq(fa_spec_add_conv2d(s, -2, 3, 3, 1, 0, 0), FA_ERR_SIZE);
    HAS("conv channels -2", "got -2");
    ck_assert_int_eq(fa_spec_add_conv2d(s, 2, 0, 3, 1, 0, 0), FA_ERR_SIZE);
    HAS("conv kernel 0x3", "kernel 0x3");
    ck_assert_int_eq(fa_spec_add_conv2d(s, 2, 3, -1, 1, 0, 0), FA_ERR_SIZE);
    HAS("conv kernel 3x-1", "kernel 3x-1");
    ck_assert_int_eq(fa_spec_add_conv2d(s, 2, 3, 3, 0, 0, 0), FA_ERR_SIZE);
    HAS("conv stride 0", "stride 0");
    ck_assert_int_eq(fa_spec_add_conv2d(s, 2, 3, 3, -1, 0, 0), FA_ERR_SIZE);
    HAS("conv stride -1", "stride -1");
    ck_assert_int_eq(fa_spec_add_conv2d(s, 2, 3, 3, 1, -1, 0), FA_ERR_SIZE);
    HAS("conv pad -1", "padding -1");
    ck_assert_int_eq(fa_spec_add_conv2d(s, 2, 3, 3, 1, 3, 0), FA_ERR_SIZE);
    HAS("conv pad = kernel", "padding 3", "pad < the kernel");
    ck_assert_int_eq(fa_spec_add_conv2d(s, 2, 5, 2, 1, 2, 0), FA_ERR_SIZE);
    HAS("conv pad = kernel width", "padding 2");
    ck_assert_int_eq(fa_spec_add_conv2d(s, 2, 11, 3, 1, 1, 0), FA_ERR_SIZE);
    HAS("conv kernel > padded", "kernel height 11", "padded input (10)");
    ck_assert_int_eq(fa_spec_add_conv2d(s, 2, 3, 9, 1, 0, 0), FA_ERR_SIZE);
    HAS("conv kernel width > input", "kernel width 9", "padded input (8)");
    ck_assert_int_eq(fa_spec_add_conv2d(s, 2, 3, 3, 2, 0, 0), FA_ERR_SIZE);
    HAS("conv stride 2", "output height", "not an integer");
    ck_assert_int_eq(fa_spec_add_conv2d(s, 2, 4, 3, 2, 0, 0), FA_ERR_SIZE);
    HAS("conv stride 2 width", "output width", "not an integer");
    ck_assert_int_eq(fa_spec_add_conv2d(s, 2, 3, 3, 1, 0, 9), FA_ERR_ARG);
    HAS("conv act", "activation 9");
    unchanged(s, 1, "conv2d");
    /* pooling */
    ck_assert_int_eq(fa_spec_add_pool(s, FA_LAYER_DENSE, 2, 0), FA_ERR_ARG);
    HAS("pool kind", "fa_spec_add_pool", "kind = 0");
    ck_assert_int_eq(fa_spec_add_pool(s, FA_LAYER_CONV2D, 2, 0), FA_ERR_ARG);
    ck_assert_int_eq(fa_spec_add_pool(s, 17, 2, 0), FA_ERR_ARG);
    HAS("pool kind 17", "kind = 17");
    ck_assert_int_eq(fa_spec_add_pool(s, FA_LAYER_MAXPOOL, 0, 0), FA_ERR_SIZE);
    HAS("pool 0", "layer 2", "window 0");
    ck_assert_int_eq(fa_spec_add_pool(s, FA_LAYER_AVGPOOL, -2, 1), FA_ERR_SIZE);
    HAS("pool -2", "window -2");
    ck_assert_int_eq(fa_spec_add_pool(s, FA_LAYER_MAXPOOL, 2, -1), FA_ERR_SIZE);
    HAS("pool stride -1", "stride = -1");
    ck_assert_int_eq(fa_spec_add_pool(s, FA_LAYER_MAXPOOL, 9, 0), FA_ERR_SIZE);
    HAS("pool 9", "window 9", "larger than the input 8x8");
    ck_assert_int_eq(fa_spec_add_pool(s, FA_LAYER_AVGPOOL, 3, 0), FA_ERR_SIZE);
    HAS("pool 3", "not be an integer");
    ck_assert_int_eq(fa_spec_add_pool(s, FA_LAYER_MAXPOOL, 3, 2), FA_ERR_SIZE);
    HAS("pool 3 stride 2", "windows of 3 with stride 2");
    unchanged(s, 1, "pool");
    /* and the spec still takes good layers: stride 0 means the window */
    TU_OK(fa_spec_add_pool(s, FA_LAYER_AVGPOOL, 4, 0));
    int32_t st = 0, kw = 0;
    TU_OK(fa_spec_layer(s, 2, NULL, NULL, NULL, &kw, &st, NULL, NULL));
    ck_assert_int_eq(st, 4);
    ck_assert_int_eq(kw, 4);
    check_shape(s, 2, 4, 2, 2);
    TU_OK(fa_spec_add_pool(s, FA_LAYER_MAXPOOL, 1, 1));
    TU_OK(fa_spec_add_dense(s, 3, FA_ACT_IDENTITY));
    unchanged(s, 4, "good layers");
    fa_spec_free(s);
    fa_spec_free(NULL);

    /* getters */
    TU_OK(fa_spec_create(&s, 3, 1, 1));
    ck_assert_int_eq(fa_spec_num_layers(NULL, &st), FA_ERR_NULL);
    ck_assert_int_eq(fa_spec_num_layers(s, NULL), FA_ERR_NULL);
    ck_assert_int_eq(fa_spec_layer(s, 1, NULL, NULL, NULL, NULL, NULL, NULL, NULL), FA_ERR_ARG);
    HAS("layer 1 of 0", "fa_spec_layer", "layer = 1");
    ck_assert_int_eq(fa_spec_layer(NULL, 1, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
                     FA_ERR_NULL);
    check_shape(s, 0, 3, 1, 1);
    ck_assert_int_eq(fa_spec_shape(s, 1, NULL, NULL, NULL), FA_ERR_ARG);
    ck_assert_int_eq(fa_spec_shape(s, -1, NULL, NULL, NULL), FA_ERR_ARG);
    HAS("shape -1", "fa_spec_shape", "layer = -1");
    ck_assert_int_eq(fa_spec_shape(NULL, 0, NULL, NULL, NULL), FA_ERR_NULL);
    fa_spec_free(s);
}
END_TEST

/* Counts that overflow through the builder. */
START_TEST(test_builder_overflow)
{
    fa_spec *s = NULL;
    /* features: 2 channels of 40000x40000 = 3.2e9 > 2^31-1 */
    TU_OK(fa_spec_create(&s, 1, 40000, 40000));
    ck_assert_int_eq(fa_spec_add_conv2d(s, 2, 1, 1, 1, 0, 0), FA_ERR_SIZE);
    HAS("conv features", "layer 1", "output features");
    TU_OK(fa_spec_add_conv2d(s, 1, 1, 1, 1, 0, 0)); /* 1.6e9 fits */
    fa_spec_free(s);
    /* the conv kernel's volume: 65536 * 183 * 183 = 2.19e9 > 2^31-1 */
    TU_OK(fa_spec_create(&s, 65536, 181, 181));
    ck_assert_int_eq(fa_spec_add_conv2d(s, 1, 183, 183, 1, 1, 0), FA_ERR_SIZE);
    HAS("kernel volume", "kernel volume");
    fa_spec_free(s);
    /* parameters: (2^31-1) * 1000 > 2^40 in one layer */
    TU_OK(fa_spec_create(&s, INT32_MAX, 1, 1));
    ck_assert_int_eq(fa_spec_add_dense(s, 1000, 0), FA_ERR_SIZE);
    HAS("params", "layer 1", "2^40");
    fa_spec_free(s);
    /* and summed over layers: 2^20 -> 2^19 -> 2^20 is 2^40 + 2^19 + 2^20
     * parameters; 2^20 -> 2^19 -> 2^19 + 1 stays below */
    TU_OK(fa_spec_create(&s, 1 << 20, 1, 1));
    TU_OK(fa_spec_add_dense(s, 1 << 19, 0));
    ck_assert_int_eq(fa_spec_add_dense(s, 1 << 20, 0), FA_ERR_SIZE);
    HAS("params sum", "layer 2", "2^40");
    TU_OK(fa_spec_add_dense(s, (1 << 19) + 1, 0));
    fa_spec_free(s);
    /* at most 100000 layers */
    TU_OK(fa_spec_create(&s, 1, 1, 1));
    for (int32_t l = 0; l < 100000; l++)
        TU_OK(fa_spec_add_dense(s, 1, 0));
    ck_assert_int_eq(fa_spec_add_dense(s, 1, 0), FA_ERR_SIZE);
    HAS("layers", "layer 100001", "100000");
    unchanged(s, 100000, "100001st layer");
    fa_spec_free(s);
}
END_TEST

/* ------------------------------------------------------------ formatting */

START_TEST(test_format_buffers)
{
    fa_spec *s = parse("1x28x28-c6k5p2-m2-c16k5-m2-c120k5-84-10", FA_ACT_TANH,
                       FA_ACT_IDENTITY);
    int64_t need = -1;
    TU_OK(fa_spec_format(s, NULL, 0, &need)); /* size query */
    TU_OK(fa_spec_format(s, NULL, 0, NULL));
    ck_assert_int_gt(need, 10);
    char buf[256];
    ck_assert_int_lt(need, (int64_t)sizeof buf);
    /* exactly large enough */
    memset(buf, '#', sizeof buf);
    int64_t need2 = -1;
    TU_OK(fa_spec_format(s, buf, need, &need2));
    ck_assert_int_eq(need2, need);
    ck_assert_int_eq((int64_t)strlen(buf), need - 1);
    ck_assert(buf[need] == '#');
    /* one byte short, and one byte: "" and nothing written beyond len */
    const int64_t lens[] = {need - 1, 1, 5};
    for (int k = 0; k < 3; k++) {
        memset(buf, '#', sizeof buf);
        need2 = -1;
        ck_assert_int_eq(fa_spec_format(s, buf, lens[k], &need2), FA_ERR_SIZE);
        HAS("short buffer", "fa_spec_format", "len");
        ck_assert_int_eq(need2, need);
        ck_assert(buf[0] == '\0');
        for (int64_t i = lens[k]; i < (int64_t)sizeof buf; i++)
            ck_assert_msg(buf[i] == '#', "len %lld: byte %lld written", (long long)lens[k],
                          (long long)i);
    }
    /* a buffer with len 0 is too small, and is not written */
    memset(buf, '#', sizeof buf);
    ck_assert_int_eq(fa_spec_format(s, buf, 0, &need2), FA_ERR_SIZE);
    ck_assert(buf[0] == '#');
    /* NULL with a length, NULL spec */
    ck_assert_int_eq(fa_spec_format(s, NULL, 10, &need2), FA_ERR_NULL);
    HAS("NULL buf", "buf is NULL");
    ck_assert_int_eq(fa_spec_format(NULL, buf, sizeof buf, &need2), FA_ERR_NULL);
    HAS("NULL spec", "spec");
    /* a spec without layers formats as its input alone */
    fa_spec *e = NULL;
    TU_OK(fa_spec_create(&e, 3, 5, 7));
    TU_OK(fa_spec_format(e, buf, sizeof buf, NULL));
    ck_assert_str_eq(buf, "3x5x7");
    fa_spec_free(e);
    fa_spec_free(s);
}
END_TEST

/* --------------------------------------------------- networks from specs */

START_TEST(test_create_from_spec_refusals)
{
    fa_net *net = (fa_net *)(uintptr_t)1;
    fa_spec *s = NULL;
    /* no layers */
    TU_OK(fa_spec_create(&s, 4, 1, 1));
    ck_assert_int_eq(fa_net_create_from_spec(&net, s, FA_LOSS_MSE, 1), FA_ERR_ARG);
    ck_assert_ptr_null(net);
    HAS("empty", "fa_net_create_from_spec", "no layers");
    fa_spec_free(s);
    /* last layer a pooling layer */
    s = parse("1x4x4-c2k3p1-m2", FA_ACT_TANH, FA_ACT_IDENTITY);
    net = (fa_net *)(uintptr_t)1;
    ck_assert_int_eq(fa_net_create_from_spec(&net, s, FA_LOSS_MSE, 1), FA_ERR_ARG);
    ck_assert_ptr_null(net);
    HAS("pool last", "last layer (2)", "maxpool", "must have parameters");
    fa_spec_free(s);
    s = parse("1x4x4-a2", FA_ACT_TANH, FA_ACT_IDENTITY);
    ck_assert_int_eq(fa_net_create_from_spec(&net, s, FA_LOSS_MSE, 1), FA_ERR_ARG);
    HAS("avgpool last", "avgpool");
    fa_spec_free(s);
    /* fused loss with a non-identity last activation; MSE takes it */
    s = parse("1x4x4-c2k3-3", FA_ACT_TANH, FA_ACT_SIGMOID);
    ck_assert_int_eq(fa_net_create_from_spec(&net, s, FA_LOSS_SOFTMAX_CE, 1), FA_ERR_ARG);
    HAS("softmax sigmoid", "softmax_ce", "identity", "sigmoid");
    ck_assert_int_eq(fa_net_create_from_spec(&net, s, FA_LOSS_SIGMOID_BCE, 1), FA_ERR_ARG);
    HAS("bce sigmoid", "sigmoid_bce", "identity");
    ck_assert_int_eq(fa_net_create_from_spec(&net, s, FA_N_LOSSES, 1), FA_ERR_ARG);
    HAS("loss 3", "loss = 3");
    TU_OK(fa_net_create_from_spec(&net, s, FA_LOSS_MSE, 1));
    fa_net_free(net);
    fa_spec_free(s);
    /* a conv output layer is allowed; with a fused loss it needs identity */
    s = parse("1x4x4-c2k3:tanh", FA_ACT_TANH, FA_ACT_IDENTITY);
    ck_assert_int_eq(fa_net_create_from_spec(&net, s, FA_LOSS_SIGMOID_BCE, 1), FA_ERR_ARG);
    TU_OK(fa_net_create_from_spec(&net, s, FA_LOSS_MSE, 1));
    fa_net_free(net);
    /* NULLs */
    ck_assert_int_eq(fa_net_create_from_spec(NULL, s, FA_LOSS_MSE, 1), FA_ERR_NULL);
    fa_spec_free(s);
    net = (fa_net *)(uintptr_t)1;
    ck_assert_int_eq(fa_net_create_from_spec(&net, NULL, FA_LOSS_MSE, 1), FA_ERR_NULL);
    ck_assert_ptr_null(net);
    HAS("NULL spec", "spec is NULL");
    fa_spec *out = (fa_spec *)(uintptr_t)1;
    ck_assert_int_eq(fa_net_get_spec(NULL, &out), FA_ERR_NULL);
}
END_TEST

/* A dense network from fa_net_create has the spec of its text form. */
START_TEST(test_dense_net_spec)
{
    const int32_t sizes[] = {7, 5, 5, 3};
    const int32_t acts[] = {FA_ACT_RELU, FA_ACT_SIGMOID, FA_ACT_IDENTITY};
    fa_net *net = tu_net(3, sizes, acts, FA_LOSS_SOFTMAX_CE, 1);
    fa_spec *got = NULL;
    TU_OK(fa_net_get_spec(net, &got));
    fa_spec *want = parse("7-5:relu-5:sigmoid-3:identity", FA_ACT_TANH, FA_ACT_TANH);
    same_spec(got, want, "fa_net_create");
    fa_spec_free(got);
    fa_spec_free(want);
    fa_net_free(net);
}
END_TEST

static Suite *spec_suite(void)
{
    Suite *s = suite_create("spec");
    TCase *tc = tcase_create("parse");
    tcase_add_loop_test(tc, test_parse_errors, 0, N_BAD);
    tcase_add_test(tc, test_parse_arguments);
    tcase_add_test(tc, test_parse_activations);
    tcase_add_loop_test(tc, test_round_trip, 0, N_GOOD);
    tcase_add_test(tc, test_parsed_shapes);
    tcase_add_test(tc, test_lenet);
    suite_add_tcase(s, tc);
    tc = tcase_create("builder");
    tcase_add_test(tc, test_builder_errors);
    tcase_add_test(tc, test_builder_overflow);
    tcase_add_test(tc, test_format_buffers);
    suite_add_tcase(s, tc);
    tc = tcase_create("nets");
    tcase_add_test(tc, test_create_from_spec_refusals);
    tcase_add_test(tc, test_dense_net_spec);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(spec_suite());
}
