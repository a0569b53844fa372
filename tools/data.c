/*
 * data.c -- fa-train's data: the four IDX files of --data, the training /
 * validation / test splits, input normalisation, and the mini-batches.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <string.h>

#include "fa-train.h"

static bool
load_pair(const char *dir, const char *img_base, const char *lab_base,
          idx_images *img, idx_labels *lab, char *img_path, size_t pathlen)
{
    char err[1024], lab_path[4096];
    if (idx_find_file(dir, img_base, img_path, pathlen, err, sizeof err) != 0 ||
        idx_find_file(dir, lab_base, lab_path, sizeof lab_path, err,
                      sizeof err) != 0 ||
        idx_read_pair(img_path, lab_path, img, lab, err, sizeof err) != 0) {
        report_error("%s", err);
        return false;
    }
    return true;
}

static void
normalize(float *x, size_t count, int mode, double mean, double sd)
{
    float m = (float)mean;
    float inv = mode == NORM_STANDARDIZE ? (float)(1.0 / sd) : 1.0f;
    for (size_t i = 0; i < count; i++)
        x[i] = (x[i] - m) * inv;
}

bool
load_data(const config *c, data *d)
{
    memset(d, 0, sizeof *d);
    if (!load_pair(c->data_dir, "train-images-idx3-ubyte",
                   "train-labels-idx1-ubyte", &d->train_img, &d->train_lab,
                   d->train_path, sizeof d->train_path) ||
        !load_pair(c->data_dir, "t10k-images-idx3-ubyte",
                   "t10k-labels-idx1-ubyte", &d->test_img, &d->test_lab,
                   d->test_path, sizeof d->test_path))
        return false;
    /* The shape, not only the pixel count: 4x16 test images against 8x8
     * training ones are another data set. */
    char err[1024];
    if (idx_check_same_shape(d->test_path, &d->test_img, d->train_path,
                             &d->train_img, err, sizeof err) != IDX_OK) {
        report_error("%s", err);
        return false;
    }
    d->features = d->train_img.features;
    int32_t ntrain = d->train_img.n;
    if (c->limit_train > 0 && c->limit_train < ntrain)
        ntrain = c->limit_train;
    if (c->val >= ntrain) {
        report_error("--val %d: leaves no training samples (the training set "
                     "has %d)", c->val, ntrain);
        return false;
    }
    int32_t ntest = d->test_img.n;
    if (c->limit_test > 0 && c->limit_test < ntest)
        ntest = c->limit_test;
    size_t f = (size_t)d->features;
    d->train = (split){d->train_img.x, d->train_lab.y, ntrain - c->val};
    d->val = (split){d->train_img.x + f * (size_t)(ntrain - c->val),
                     d->train_lab.y + (ntrain - c->val), c->val};
    d->test = (split){d->test_img.x, d->test_lab.y, ntest};
    d->max_label = 0;
    for (int32_t i = 0; i < ntrain; i++)
        if (d->train_lab.y[i] > d->max_label)
            d->max_label = d->train_lab.y[i];
    for (int32_t i = 0; i < ntest; i++)
        if (d->test_lab.y[i] > d->max_label)
            d->max_label = d->test_lab.y[i];
    if (c->input_norm != NORM_NONE) {
        /* Statistics of the training split only: the validation and test
         * samples must not leak into the preprocessing. */
        double sum = 0.0, sq = 0.0;
        size_t cnt = f * (size_t)d->train.n;
        for (size_t i = 0; i < cnt; i++) {
            sum += (double)d->train.x[i];
            sq += (double)d->train.x[i] * (double)d->train.x[i];
        }
        double mean = sum / (double)cnt;
        double var = sq / (double)cnt - mean * mean;
        double sd = var > 1e-12 ? sqrt(var) : 1.0;
        normalize(d->train_img.x, f * (size_t)ntrain, c->input_norm, mean, sd);
        normalize(d->test_img.x, f * (size_t)ntest, c->input_norm, mean, sd);
    }
    return true;
}

void
free_data(data *d)
{
    idx_images_free(&d->train_img);
    idx_images_free(&d->test_img);
    idx_labels_free(&d->train_lab);
    idx_labels_free(&d->test_lab);
}

/* ------------------------------------------------------------- batches */

static uint64_t
mix_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void
shuffle(int32_t *perm, int32_t n, uint64_t *state)
{
    /* Fisher-Yates; the modulo bias of a 64-bit draw over n <= 2^31 is
     * below 2^-32 and irrelevant here. */
    for (int32_t i = n - 1; i > 0; i--) {
        int32_t j = (int32_t)(mix_next(state) % (uint64_t)(i + 1));
        int32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

void
one_hot(float *t, int32_t n_out, const uint8_t *y, const int32_t *idx,
        int32_t batch)
{
    memset(t, 0, sizeof *t * (size_t)n_out * (size_t)batch);
    for (int32_t j = 0; j < batch; j++) {
        uint8_t label = idx ? y[idx[j]] : y[j];
        t[(size_t)j * (size_t)n_out + label] = 1.0f;
    }
}

void
gather_batch(const split *s, int32_t features, const int32_t *idx, int32_t m,
             int32_t n_out, float *x, float *t)
{
    size_t f = (size_t)features;
    for (int32_t j = 0; j < m; j++)
        memcpy(x + (size_t)j * f, s->x + (size_t)(idx ? idx[j] : j) * f,
               sizeof *x * f);
    one_hot(t, n_out, s->y, idx, m);
}
