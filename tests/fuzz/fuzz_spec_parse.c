/*
 * fuzz_spec_parse -- the text parser of network specs (fa_spec_parse),
 * which fa-train's --arch and any caller's configuration go through.
 *
 * The input is the text (up to its first NUL byte).  A text that parses is
 * held to the promises of the spec API:
 *   - its text form (fa_spec_format, every activation written out) parses
 *     to the same layers and shapes and formats to the same text again;
 *   - the size query and a buffer one byte short behave as documented;
 *   - if the network is small enough to build cheaply, it is created from
 *     the spec and run: inference and one training step on a zero batch,
 *     under a rule chosen from the text, succeed or report a non-finite
 *     value.  This is where odd shapes (kernels as large as the padded
 *     input, strides, pooling windows) meet the layers' index arithmetic.
 * A failure must be FA_ERR_ARG, FA_ERR_SIZE or FA_ERR_NOMEM with a message
 * and no spec.
 */
#define _POSIX_C_SOURCE 200809L

#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

#include <feedbackalign.h>

/* Networks above these are not built: a spec may describe billions of
 * parameters, and building one would test the allocator, not the library. */
#define MAX_BUILD_LAYERS 64
#define MAX_BUILD_COUNT (1 << 18) /* parameters, features, lowered inputs */

static char *format(const fa_spec *spec)
{
    int64_t needed = -1, again = -1;
    char *text;

    fuzz_check(fa_spec_format(spec, NULL, 0, &needed) == FA_OK && needed >= 2,
               "fa_spec_format cannot size a parsed spec: %s", fa_last_error());
    text = malloc((size_t)needed);
    fuzz_check(text != NULL, "out of memory for %lld bytes", (long long)needed);
    /* One byte short: refused, with "" in the buffer. */
    text[0] = 'x';
    fuzz_check(fa_spec_format(spec, text, needed - 1, &again) == FA_ERR_SIZE &&
                   text[0] == '\0',
               "fa_spec_format into a buffer one byte short");
    fuzz_check(fa_spec_format(spec, text, needed, &again) == FA_OK && again == needed &&
                   strlen(text) + 1 == (size_t)needed,
               "fa_spec_format: %s", fa_last_error());
    return text;
}

static void layer(const fa_spec *spec, int32_t l, int32_t f[10])
{
    if (l > 0)
        fuzz_check(fa_spec_layer(spec, l, &f[0], &f[1], &f[2], &f[3], &f[4], &f[5],
                                 &f[6]) == FA_OK,
                   "fa_spec_layer(%ld): %s", (long)l, fa_last_error());
    fuzz_check(fa_spec_shape(spec, l, &f[7], &f[8], &f[9]) == FA_OK,
               "fa_spec_shape(%ld): %s", (long)l, fa_last_error());
    fuzz_check(f[7] >= 1 && f[8] >= 1 && f[9] >= 1,
               "a parsed spec has an output size below 1: layer %ld, %ldx%ldx%ld", (long)l,
               (long)f[7], (long)f[8], (long)f[9]);
}

/* Would building this network and running any rule on it stay cheap?
 * Bounds, for a batch of one: parameters (and so the LAYER feedback of
 * their shape), features, the lowered (im2col) input of each convolution,
 * the DIRECT feedback (n_L, sum of the hidden widths), and the noise of
 * weight mirrors (fan_in, FA_HP_WM_BATCH = 64). */
static int small_enough(const fa_spec *spec, int32_t n)
{
    int64_t params = 0, hidden = 0, out_feat = 0;

    if (n > MAX_BUILD_LAYERS)
        return 0;
    for (int32_t l = 1; l <= n; l++) {
        int32_t in[10] = {0}, f[10] = {0};
        int64_t fan_in = 0;
        layer(spec, l - 1, in);
        layer(spec, l, f);
        int64_t in_feat = (int64_t)in[7] * in[8] * in[9];
        out_feat = (int64_t)f[7] * f[8] * f[9];
        if (in_feat > MAX_BUILD_COUNT || out_feat > MAX_BUILD_COUNT)
            return 0;
        if (f[0] == FA_LAYER_DENSE) {
            fan_in = in_feat;
            params += (int64_t)f[1] * in_feat + f[1];
        } else if (f[0] == FA_LAYER_CONV2D) {
            fan_in = (int64_t)in[7] * f[2] * f[3];
            if (fan_in > MAX_BUILD_COUNT || fan_in * f[8] * f[9] > MAX_BUILD_COUNT)
                return 0;
            params += (int64_t)f[1] * fan_in + f[1];
        }
        if (params > MAX_BUILD_COUNT || fan_in * 64 > 4 * MAX_BUILD_COUNT)
            return 0;
        if (l < n)
            hidden += out_feat;
    }
    return hidden * out_feat <= 4 * MAX_BUILD_COUNT;
}

static void build_and_run(const fa_spec *spec, const uint8_t *data, size_t size)
{
    fa_net *net = NULL;
    int32_t L = 0, *sizes;
    float *x, *t, *y, loss;
    uint32_t h = 2166136261u;
    int status = fa_net_create_from_spec(&net, spec, FA_LOSS_MSE, 1);

    if (status != FA_OK) {
        /* A spec may end in a pooling layer, which a network may not. */
        fuzz_check(net == NULL && (status == FA_ERR_ARG || status == FA_ERR_NOMEM),
                   "fa_net_create_from_spec: %d (%s)", status, fa_last_error());
        return;
    }
    /* The rule from a hash of the text: deterministic, and every rule
     * meets every shape over a run. */
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 16777619u;
    status = fa_net_set_rule(net, (int32_t)(h % (uint32_t)fa_enum_count(FA_ENUM_RULE)));
    fuzz_check(status == FA_OK || status == FA_ERR_NOMEM, "fa_net_set_rule: %s",
               fa_last_error());

    fuzz_check(fa_net_num_layers(net, &L) == FA_OK, "fa_net_num_layers");
    sizes = malloc(((size_t)L + 1) * sizeof *sizes);
    fuzz_check(sizes != NULL && fa_net_get_sizes(net, sizes, (int64_t)L + 1) == FA_OK,
               "fa_net_get_sizes: %s", fa_last_error());
    x = calloc((size_t)sizes[0], sizeof *x);
    t = calloc((size_t)sizes[L], sizeof *t);
    y = calloc((size_t)sizes[L], sizeof *y);
    fuzz_check(x != NULL && t != NULL && y != NULL, "out of memory");
    status = fa_net_forward(net, x, sizes[0], 1, y, sizes[L]);
    fuzz_check(status == FA_OK || status == FA_ERR_NONFINITE || status == FA_ERR_NOMEM,
               "fa_net_forward: %d (%s)", status, fa_last_error());
    status = fa_net_train_step(net, x, sizes[0], t, sizes[L], 1, &loss);
    fuzz_check(status == FA_OK || status == FA_ERR_NONFINITE || status == FA_ERR_NOMEM,
               "fa_net_train_step: %d (%s)", status, fa_last_error());
    free(x);
    free(t);
    free(y);
    free(sizes);
    fa_net_free(net);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    char *text2, *text3;
    /* Not NULL before the call, to check that a failure resets it. */
    static char sentinel;
    fa_spec *spec = (fa_spec *)(void *)&sentinel, *again = NULL;
    int32_t n = -1, n2 = -1;
    int status;

    fuzz_check(text != NULL, "out of memory for a %zu-byte input", size);
    memcpy(text, data, size);
    text[size] = '\0';
    status = fa_spec_parse(&spec, text, FA_ACT_RELU, FA_ACT_IDENTITY);
    if (status != FA_OK) {
        fuzz_check(spec == NULL, "fa_spec_parse failed (%d) and left *out set", status);
        fuzz_check(status == FA_ERR_ARG || status == FA_ERR_SIZE || status == FA_ERR_NOMEM,
                   "fa_spec_parse returned an unexpected status: %d: %s", status,
                   fa_last_error());
        fuzz_check(fa_last_error()[0] != '\0', "fa_spec_parse failed without a message");
        free(text);
        return 0;
    }

    text2 = format(spec);
    status = fa_spec_parse(&again, text2, FA_ACT_TANH, FA_ACT_TANH);
    fuzz_check(status == FA_OK, "text form does not parse: '%s' of '%s': %s", text2, text,
               fa_last_error());
    fuzz_check(fa_spec_num_layers(spec, &n) == FA_OK && n >= 1 &&
                   fa_spec_num_layers(again, &n2) == FA_OK && n == n2,
               "text form has another layer count: '%s' %ld, '%s' %ld", text, (long)n,
               text2, (long)n2);
    for (int32_t l = 0; l <= n; l++) {
        int32_t f[10] = {0}, g[10] = {0};
        layer(spec, l, f);
        layer(again, l, g);
        fuzz_check(memcmp(f, g, sizeof f) == 0,
                   "text form describes other layers: '%s' layer %ld, text form '%s'", text,
                   (long)l, text2);
    }
    text3 = format(again);
    fuzz_check(strcmp(text2, text3) == 0, "text form is not a fixed point: '%s' formats as '%s'", text2,
               text3);

    if (small_enough(spec, n))
        build_and_run(spec, data, size);

    free(text);
    free(text2);
    free(text3);
    fa_spec_free(spec);
    fa_spec_free(again);
    return 0;
}
