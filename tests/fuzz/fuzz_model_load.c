/*
 * fuzz_model_load -- the model-file loader.
 *
 * Each input is offered to the loader twice: as it is, and (when its last
 * four bytes are not already the right CRC-32) with the CRC-32 of the rest
 * written into them.  Without the second form nearly every mutation would
 * stop at the checksum and the fuzzer would never reach the value checks
 * and the construction of the network behind it.
 *
 * An input that loads is then held to what the library promises:
 *   - the parameter count agrees with the layer sizes;
 *   - inference on a zero batch succeeds or reports a non-finite output;
 *   - the network saves, the saved file loads, and that network has the
 *     same parameters and the same outputs; saving it again gives the same
 *     bytes (a saved file is a fixed point of load + save);
 *   - one training step on a zero batch succeeds or reports a non-finite
 *     loss or update (this runs the optimiser on the state from the file).
 * Any other outcome, a sanitizer report or a leak is a finding.
 */
#define _POSIX_C_SOURCE 200809L

#include "fuzz.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include <feedbackalign.h>

/* The only place where bytes become a network.  Loading from memory
 * (fa_net_load_image) is this function's body in one line; everything
 * else in this file is independent of how the bytes arrive. */
static int load_bytes(fa_net **out, const uint8_t *data, size_t size)
{
    char path[FUZZ_PATH_MAX];
    int status;

    fuzz_path(path, sizeof path, "input.fanet");
    fuzz_write_file(path, data, size);
    status = fa_net_load(out, path);
    unlink(path);
    return status;
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

static void save(const fa_net *net, const char *path)
{
    fuzz_check(fa_net_save(net, path) == FA_OK,
               "a loaded network does not save: %s", fa_last_error());
}

/* Hold a loaded network to the promises listed in the file comment. */
static void exercise(fa_net *a)
{
    char path1[FUZZ_PATH_MAX], path2[FUZZ_PATH_MAX];
    fa_net *b = NULL;
    int32_t L = 0, Lb = 0;
    int32_t *sizes = get_sizes(a, &L);
    int32_t *sizes_b;
    int32_t n_in = sizes[0], n_out = sizes[L];
    int64_t count = 0, count_b = 0, expect = 0;
    float *pa = get_params(a, &count), *pb;
    float *ya = NULL, *yb = NULL;
    int sa, sb, status;
    void *file1, *file2;
    size_t len1, len2;

    for (int32_t l = 1; l <= L; l++)
        expect += (int64_t)sizes[l] * sizes[l - 1] + sizes[l];
    fuzz_check(count == expect, "parameter count %lld, the sizes give %lld",
               (long long)count, (long long)expect);

    sa = forward_zeros(a, n_in, n_out, &ya);

    fuzz_path(path1, sizeof path1, "saved1.fanet");
    fuzz_path(path2, sizeof path2, "saved2.fanet");
    save(a, path1);
    status = fa_net_load(&b, path1);
    fuzz_check(status == FA_OK, "a saved network does not load: %s",
               fa_last_error());

    sizes_b = get_sizes(b, &Lb);
    fuzz_check(Lb == L && memcmp(sizes, sizes_b, ((size_t)L + 1) * sizeof *sizes) == 0,
               "the reloaded network has other layer sizes");
    pb = get_params(b, &count_b);
    fuzz_check(count_b == count && memcmp(pa, pb, (size_t)count * sizeof *pa) == 0,
               "the reloaded network has other parameters");
    sb = forward_zeros(b, n_in, n_out, &yb);
    fuzz_check(sa == sb, "inference status %d before saving, %d after", sa, sb);
    if (sa == FA_OK)
        fuzz_check(memcmp(ya, yb, (size_t)n_out * 2 * sizeof *ya) == 0,
                   "the reloaded network computes other outputs");

    save(b, path2);
    file1 = fuzz_read_file(path1, &len1);
    file2 = fuzz_read_file(path2, &len2);
    fuzz_check(len1 == len2 && memcmp(file1, file2, len1) == 0,
               "load + save is not a fixed point (%zu and %zu bytes)", len1,
               len2);
    unlink(path1);
    unlink(path2);

    train_zeros(b, n_in, n_out);

    free(file1);
    free(file2);
    free(ya);
    free(yb);
    free(pa);
    free(pb);
    free(sizes);
    free(sizes_b);
    fa_net_free(b);
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
    /* Bytes can only be a bad model file (or too big for memory): any other
     * status would mean the loader blamed something that is not there. */
    fuzz_check(net == NULL, "the loader failed (%d) and returned a network",
               status);
    fuzz_check(status == FA_ERR_FORMAT || status == FA_ERR_NOMEM,
               "the loader returned %d for a readable file: %s", status,
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
