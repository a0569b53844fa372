/*
 * fuzz_idx -- the IDX reader of fa-train (tools/idx.c).
 *
 * The reader takes a path and lets zlib decide between gzip and plain data,
 * so each input is read four ways: as an image file and as a label file,
 * each from the bytes as they are (plain, or damaged gzip if they start
 * with the gzip magic) and from a valid gzip file whose content is the
 * bytes (the decompressing path with data the fuzzer controls).
 *
 * Besides the sanitizers, the result is checked against a small
 * independent reading of the format: whenever the content is the input
 * itself, the reader must accept exactly the well-formed files and return
 * their bytes, scaled to [0, 1] for images.
 */
#define _POSIX_C_SOURCE 200809L

#include "fuzz.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "idx.h"

static uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
           ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

/* The independent reading: is data a well-formed unsigned-byte IDX file
 * with ndims dimensions (1 for labels, 3 for images), each in
 * [1, INT32_MAX], rows * cols within int32, and exactly as many data bytes
 * as the dimensions declare? */
static int well_formed(const uint8_t *data, size_t size, int ndims)
{
    size_t head = 4 + 4 * (size_t)ndims;
    uint64_t count = 1;

    if (size < head || data[0] != 0 || data[1] != 0 || data[2] != 0x08 ||
        data[3] != ndims)
        return 0;
    for (int i = 0; i < ndims; i++) {
        uint32_t d = be32(data + 4 + 4 * i);
        if (d == 0 || d > INT32_MAX)
            return 0;
        /* count <= size before each product, so it cannot overflow. */
        count *= d;
        if (count > size)
            return 0;
    }
    if (ndims == 3 && (uint64_t)be32(data + 8) * be32(data + 12) > INT32_MAX)
        return 0;
    return count == size - head;
}

/* content is what the reader decompresses from path, or NULL when that is
 * not known (raw bytes that zlib takes for gzip). */
static void read_images(const char *path, const uint8_t *content, size_t size)
{
    idx_images im;
    char err[256] = "";
    int status = idx_read_images(path, &im, err, sizeof err);

    if (status != IDX_OK) {
        fuzz_check(status == IDX_ERR_FORMAT || status == IDX_ERR_NOMEM,
                   "idx_read_images returned an unexpected status: %d: %s", status, err);
        fuzz_check(err[0] != '\0', "idx_read_images failed without a message");
        fuzz_check(im.x == NULL && im.n == 0, "idx_read_images failed but filled its output");
        fuzz_check(content == NULL || status == IDX_ERR_NOMEM ||
                       !well_formed(content, size, 3),
                   "idx_read_images refused a well-formed file: %s", err);
        return;
    }
    fuzz_check(im.x != NULL && im.n >= 1 && im.rows >= 1 && im.cols >= 1 &&
                   (int64_t)im.features == (int64_t)im.rows * im.cols,
               "idx_read_images returned an inconsistent shape: %ld x %ld x %ld, %ld features",
               (long)im.n, (long)im.rows, (long)im.cols, (long)im.features);
    size_t total = (size_t)im.n * (size_t)im.features;
    if (content != NULL) {
        fuzz_check(well_formed(content, size, 3) && total == size - 16 &&
                       (uint32_t)im.n == be32(content + 4) &&
                       (uint32_t)im.rows == be32(content + 8) &&
                       (uint32_t)im.cols == be32(content + 12),
                   "idx_read_images accepted a malformed file");
        for (size_t i = 0; i < total; i++)
            fuzz_check(im.x[i] == (float)content[16 + i] / 255.0f,
                       "idx_read_images returned a wrong pixel: %zu is %g, the file has %u", i,
                       (double)im.x[i], (unsigned)content[16 + i]);
    } else {
        /* Touching every pixel lets ASan check the buffer's size. */
        for (size_t i = 0; i < total; i++)
            fuzz_check(im.x[i] >= 0.0f && im.x[i] <= 1.0f,
                       "idx_read_images returned a pixel outside [0, 1]: %zu is %g", i,
                       (double)im.x[i]);
    }
    idx_images_free(&im);
    fuzz_check(im.x == NULL, "idx_images_free left a pointer");
}

/* Where read_labels reads every label to: volatile, so the reads stay. */
static volatile uint8_t label_sink;

static void read_labels(const char *path, const uint8_t *content, size_t size)
{
    idx_labels lb;
    char err[256] = "";
    int status = idx_read_labels(path, &lb, err, sizeof err);

    if (status != IDX_OK) {
        fuzz_check(status == IDX_ERR_FORMAT || status == IDX_ERR_NOMEM,
                   "idx_read_labels returned an unexpected status: %d: %s", status, err);
        fuzz_check(err[0] != '\0', "idx_read_labels failed without a message");
        fuzz_check(lb.y == NULL && lb.n == 0, "idx_read_labels failed but filled its output");
        fuzz_check(content == NULL || status == IDX_ERR_NOMEM ||
                       !well_formed(content, size, 1),
                   "idx_read_labels refused a well-formed file: %s", err);
        return;
    }
    fuzz_check(lb.y != NULL && lb.n >= 1, "idx_read_labels returned an inconsistent count: %ld",
               (long)lb.n);
    if (content != NULL) {
        fuzz_check(well_formed(content, size, 1) && (size_t)lb.n == size - 8,
                   "idx_read_labels accepted a malformed file");
        fuzz_check(memcmp(lb.y, content + 8, (size_t)lb.n) == 0,
                   "idx_read_labels returned other labels than the file's");
    } else {
        /* Reads every label, so that ASan checks the buffer's size. */
        for (int32_t i = 0; i < lb.n; i++)
            label_sink = lb.y[i];
    }
    idx_labels_free(&lb);
    fuzz_check(lb.y == NULL, "idx_labels_free left a pointer");
}

/* Write data gzip-compressed to path.  Level 1: the point is a valid gzip
 * stream, not a small one, and compressing is most of this harness's own
 * cost. */
static void write_gzip(const char *path, const uint8_t *data, size_t size)
{
    gzFile gz = gzopen(path, "wb1");
    size_t done = 0;

    fuzz_check(gz != NULL, "cannot create %s", path);
    while (done < size) {
        unsigned chunk = size - done > (1u << 30) ? 1u << 30 : (unsigned)(size - done);
        fuzz_check(gzwrite(gz, data + done, chunk) == (int)chunk, "cannot write %s", path);
        done += chunk;
    }
    fuzz_check(gzclose(gz) == Z_OK, "cannot write %s", path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char plain[FUZZ_PATH_MAX], gz[FUZZ_PATH_MAX];
    /* zlib reads a file that starts with the gzip magic as gzip; anything
     * else is copied through as it is. */
    const uint8_t *content = size >= 1 && data[0] == 0x1f ? NULL : data;

    fuzz_path(plain, sizeof plain, "input.idx");
    fuzz_path(gz, sizeof gz, "input.idx.gz");
    fuzz_write_file(plain, data, size);
    read_images(plain, content, size);
    read_labels(plain, content, size);
    unlink(plain);

    write_gzip(gz, data, size);
    read_images(gz, data, size);
    read_labels(gz, data, size);
    unlink(gz);
    return 0;
}
