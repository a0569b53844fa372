/*
 * fuzz_model_load -- the model-image loader (fa_net_load_image; formats 1
 * and 2).
 *
 * Each input is offered to the loader twice: as it is, and (when its last
 * four bytes are not already the right CRC-32) with the CRC-32 of the rest
 * written into them.  Without the second form nearly every mutation would
 * stop at the checksum and the fuzzer would never reach the value checks
 * and the construction of the network behind it.
 *
 * An input that loads is then held to what the library promises:
 *   - the parameter count is the sum of the layers' weight and bias sizes;
 *   - the network's spec formats as text that parses back to the same text;
 *   - inference on a zero batch succeeds or reports a non-finite output;
 *   - its image loads, and that network has the same sizes, parameters and
 *     outputs and writes the same image again (an image written by the
 *     library is a fixed point of load + save); a clone writes the same
 *     image too, and so does fa_net_save to a file;
 *   - one training step on a zero batch succeeds or reports a non-finite
 *     loss or update (this runs the optimiser and the rule's own step on
 *     the state from the file).
 * Any other outcome, a sanitizer report or a leak is a finding.
 */
#define _POSIX_C_SOURCE 200809L

#include "fuzz.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include <feedbackalign.h>

/* The only place where bytes become a network.  (Loading through a file,
 * fa_net_load, is a wrapper that reads the file into memory first.) */
static int load_bytes(fa_net **out, const uint8_t *data, size_t size)
{
    return fa_net_load_image(out, data, (int64_t)size);
}

/* Outputs of inference on an all-zero batch of two samples (*y is
 * allocated, n_L x 2, only when the status is FA_OK). */
static int forward_zeros(fa_net *net, int32_t n_in, int32_t n_out, float **y)
{
    float *x = calloc((size_t)n_in * 2, sizeof *x);
    int status;

    *y = calloc((size_t)n_out * 2, sizeof **y);
    fuzz_check(x != NULL && *y != NULL, "out of memory for a %ld-wide batch",
               (long)n_in);
    status = fa_net_forward(net, x, n_in, 2, *y, n_out);
    fuzz_check(status == FA_OK || status == FA_ERR_NONFINITE ||
                   status == FA_ERR_NOMEM,
               "fa_net_forward on a loaded network: %d (%s)", status,
               fa_last_error());
    free(x);
    if (status != FA_OK) {
        free(*y);
        *y = NULL;
    }
    return status;
}

static void train_zeros(fa_net *net, int32_t n_in, int32_t n_out)
{
    float *x = calloc((size_t)n_in * 2, sizeof *x);
    float *t = calloc((size_t)n_out * 2, sizeof *t);
    float loss = 0;
    int status;

    fuzz_check(x != NULL && t != NULL, "out of memory for a %ld-wide batch",
               (long)n_in);
    status = fa_net_train_step(net, x, n_in, t, n_out, 2, &loss);
    fuzz_check(status == FA_OK || status == FA_ERR_NONFINITE ||
                   status == FA_ERR_NOMEM,
               "fa_net_train_step on a loaded network: %d (%s)", status,
               fa_last_error());
    free(x);
    free(t);
}

/* Sizes n_0..n_L of a network (allocated) and its layer count. */
static int32_t *get_sizes(const fa_net *net, int32_t *n_layers)
{
    int32_t *sizes;

    fuzz_check(fa_net_num_layers(net, n_layers) == FA_OK && *n_layers >= 1,
               "fa_net_num_layers: %s", fa_last_error());
    sizes = malloc(((size_t)*n_layers + 1) * sizeof *sizes);
    fuzz_check(sizes != NULL, "out of memory for %ld sizes", (long)*n_layers);
    fuzz_check(fa_net_get_sizes(net, sizes, (int64_t)*n_layers + 1) == FA_OK,
               "fa_net_get_sizes: %s", fa_last_error());
    return sizes;
}

static float *get_params(const fa_net *net, int64_t *count)
{
    float *p;

    fuzz_check(fa_net_param_count(net, count) == FA_OK && *count > 0,
               "fa_net_param_count: %s", fa_last_error());
    p = malloc((size_t)*count * sizeof *p);
    fuzz_check(p != NULL, "out of memory for %lld parameters",
               (long long)*count);
    fuzz_check(fa_net_get_params(net, p, *count) == FA_OK,
               "fa_net_get_params: %s", fa_last_error());
    return p;
}

/* The network's image (allocated), checking the size query against it. */
static uint8_t *save_image(const fa_net *net, int64_t *len)
{
    int64_t needed = -1, again = -1;
    uint8_t *img;

    fuzz_check(fa_net_save_image(net, NULL, 0, &needed) == FA_OK && needed > 0,
               "fa_net_save_image cannot size a loaded network: %s", fa_last_error());
    img = malloc((size_t)needed);
    fuzz_check(img != NULL, "out of memory for a %lld-byte image", (long long)needed);
    fuzz_check(fa_net_save_image(net, img, needed, &again) == FA_OK && again == needed,
               "fa_net_save_image: %s", fa_last_error());
    *len = needed;
    return img;
}

/* The text form of a spec (allocated), checking the size query. */
static char *format_spec(const fa_spec *spec)
{
    int64_t needed = -1, again = -1;
    char *text;

    fuzz_check(fa_spec_format(spec, NULL, 0, &needed) == FA_OK && needed >= 1,
               "fa_spec_format cannot size: %s", fa_last_error());
    text = malloc((size_t)needed);
    fuzz_check(text != NULL, "out of memory for a %lld-byte spec", (long long)needed);
    fuzz_check(fa_spec_format(spec, text, needed, &again) == FA_OK && again == needed &&
                   strlen(text) + 1 == (size_t)needed,
               "fa_spec_format: %s", fa_last_error());
    return text;
}

/* Layer `layer` of a spec as fa_spec_layer's 7 fields, then the 3 of its
 * output shape. */
static void spec_layer(const fa_spec *spec, int32_t layer, int32_t f[10])
{
    fuzz_check(fa_spec_layer(spec, layer, &f[0], &f[1], &f[2], &f[3], &f[4], &f[5],
                             &f[6]) == FA_OK &&
                   fa_spec_shape(spec, layer, &f[7], &f[8], &f[9]) == FA_OK,
               "fa_spec_layer/fa_spec_shape(%ld): %s", (long)layer, fa_last_error());
    fuzz_check(f[7] >= 1 && f[8] >= 1 && f[9] >= 1,
               "a loaded network has an output size below 1: layer %ld, %ldx%ldx%ld",
               (long)layer, (long)f[7], (long)f[8], (long)f[9]);
}

/* The spec of a loaded network formats as text that parses back to the
 * same layers: the architecture of any loadable image has a text form. */
static void check_spec(const fa_net *net)
{
    fa_spec *spec = NULL, *again = NULL;
    int32_t n = -1, n2 = -1;
    char *text;
    int status;

    fuzz_check(fa_net_get_spec(net, &spec) == FA_OK, "fa_net_get_spec: %s",
               fa_last_error());
    text = format_spec(spec);
    /* Every activation is written out, so the defaults passed do not matter. */
    status = fa_spec_parse(&again, text, FA_ACT_TANH, FA_ACT_TANH);
    fuzz_check(status == FA_OK, "spec text of a loaded network does not parse: "
               "'%s': %s", text, fa_last_error());
    fuzz_check(fa_spec_num_layers(spec, &n) == FA_OK &&
                   fa_spec_num_layers(again, &n2) == FA_OK && n == n2,
               "spec text of a loaded network reads back with another layer count: '%s', "
               "%ld and %ld", text, (long)n, (long)n2);
    for (int32_t l = 0; l <= n; l++) {
        int32_t f[10] = {0}, g[10] = {0};
        if (l > 0) {
            spec_layer(spec, l, f);
            spec_layer(again, l, g);
        } else {
            fuzz_check(fa_spec_shape(spec, 0, &f[7], &f[8], &f[9]) == FA_OK &&
                           fa_spec_shape(again, 0, &g[7], &g[8], &g[9]) == FA_OK,
                       "fa_spec_shape(0): %s", fa_last_error());
        }
        fuzz_check(memcmp(f, g, sizeof f) == 0,
                   "spec text of a loaded network reads back different layers: '%s', "
                   "layer %ld", text, (long)l);
    }
    free(text);
    fa_spec_free(spec);
    fa_spec_free(again);
}

/* Hold a loaded network to the promises listed in the file comment. */
static void exercise(fa_net *a)
{
    char path[FUZZ_PATH_MAX];
    fa_net *b = NULL, *c = NULL;
    int32_t L = 0, Lb = 0;
    int32_t *sizes = get_sizes(a, &L);
    int32_t *sizes_b;
    int32_t n_in = sizes[0], n_out = sizes[L];
    int64_t count = 0, count_b = 0, expect = 0, len1, len2, len3;
    float *pa = get_params(a, &count), *pb;
    float *ya = NULL, *yb = NULL;
    uint8_t *img1, *img2, *img3;
    void *file;
    size_t file_len;
    int sa, sb, status;

    for (int32_t l = 1; l <= L; l++) {
        int32_t rows = -1, cols = -1;
        fuzz_check(fa_net_weight_shape(a, l, &rows, &cols) == FA_OK && rows >= 0 &&
                       cols >= 0, "fa_net_weight_shape(%ld): %s", (long)l, fa_last_error());
        expect += (int64_t)rows * cols + rows;
    }
    fuzz_check(count == expect, "parameter count disagrees with the weight shapes: %lld, %lld",
               (long long)count, (long long)expect);
    check_spec(a);

    sa = forward_zeros(a, n_in, n_out, &ya);

    img1 = save_image(a, &len1);
    status = fa_net_load_image(&b, img1, len1);
    fuzz_check(status == FA_OK, "an image written by the library does not load: %s",
               fa_last_error());
    sizes_b = get_sizes(b, &Lb);
    fuzz_check(Lb == L && memcmp(sizes, sizes_b, ((size_t)L + 1) * sizeof *sizes) == 0,
               "the reloaded network has other layer sizes");
    pb = get_params(b, &count_b);
    fuzz_check(count_b == count && memcmp(pa, pb, (size_t)count * sizeof *pa) == 0,
               "the reloaded network has other parameters");
    sb = forward_zeros(b, n_in, n_out, &yb);
    fuzz_check(sa == sb, "inference status changes through save and load: %d, %d", sa, sb);
    if (sa == FA_OK)
        fuzz_check(memcmp(ya, yb, (size_t)n_out * 2 * sizeof *ya) == 0,
                   "the reloaded network computes other outputs");
    img2 = save_image(b, &len2);
    fuzz_check(len1 == len2 && memcmp(img1, img2, (size_t)len1) == 0,
               "load + save is not a fixed point: %lld and %lld bytes", (long long)len1,
               (long long)len2);

    fuzz_check(fa_net_clone(&c, a) == FA_OK, "fa_net_clone: %s", fa_last_error());
    img3 = save_image(c, &len3);
    fuzz_check(len1 == len3 && memcmp(img1, img3, (size_t)len1) == 0,
               "a clone writes another image than its original");

    fuzz_path(path, sizeof path, "saved.fanet");
    fuzz_check(fa_net_save(a, path) == FA_OK, "a loaded network does not save: %s",
               fa_last_error());
    file = fuzz_read_file(path, &file_len);
    unlink(path);
    fuzz_check(file_len == (size_t)len1 && memcmp(file, img1, file_len) == 0,
               "fa_net_save writes another image than fa_net_save_image");

    train_zeros(b, n_in, n_out);

    free(file);
    free(img1);
    free(img2);
    free(img3);
    free(ya);
    free(yb);
    free(pa);
    free(pb);
    free(sizes);
    free(sizes_b);
    fa_net_free(b);
    fa_net_free(c);
}

static void try_load(const uint8_t *data, size_t size)
{
    fa_net *net = NULL;
    int status = load_bytes(&net, data, size);

    if (status == FA_OK) {
        fuzz_check(net != NULL, "the loader returned FA_OK and no network");
        exercise(net);
        fa_net_free(net);
        return;
    }
    /* Bytes can only be a bad image (or too big for memory): any other
     * status would mean the loader blamed something that is not there. */
    fuzz_check(net == NULL, "the loader failed (%d) and returned a network",
               status);
    fuzz_check(status == FA_ERR_FORMAT || status == FA_ERR_NOMEM,
               "the loader returned an unexpected status: %d: %s", status,
               fa_last_error());
    fuzz_check(fa_last_error()[0] != '\0', "the loader failed without a message");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t stored, crc;
    uint8_t *fixed;

    try_load(data, size);
    if (size < 4)
        return 0;
    /* The format stores the CRC-32 (IEEE, as zlib computes it) of every
     * byte before it in the last four bytes, in the machine's byte order. */
    crc = (uint32_t)crc32_z(0, data, size - 4);
    memcpy(&stored, data + size - 4, sizeof stored);
    if (stored == crc)
        return 0;
    fixed = malloc(size);
    fuzz_check(fixed != NULL, "out of memory for a %zu-byte input", size);
    memcpy(fixed, data, size - 4);
    memcpy(fixed + size - 4, &crc, sizeof crc);
    try_load(fixed, size);
    free(fixed);
    return 0;
}
