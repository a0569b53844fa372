/*
 * idx.c -- IDX reader (see idx.h).
 *
 * zlib's gzopen/gzread read both gzip and plain files (it looks at the
 * magic bytes 1f 8b), so one code path serves both.  The data are read in
 * chunks into a buffer that grows only as bytes actually arrive: a header
 * that claims billions of images in a small file fails with "truncated"
 * instead of first allocating gigabytes.
 */
#define _POSIX_C_SOURCE 200809L

#include "idx.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#define IDX_TYPE_UBYTE 0x08
#define IDX_CHUNK (1u << 20)

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int
set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return 0;
}

static const char *
type_name(int type)
{
    switch (type) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "16-bit integer";
    case 0x0C: return "32-bit integer";
    case 0x0D: return "32-bit float";
    case 0x0E: return "64-bit float";
    default: return "unknown type";
    }
}

/* The reason a gzread came up short: a zlib error (truncated or corrupt
 * gzip stream, I/O error) or NULL for a clean end of file. */
static const char *
gz_failure(gzFile gz, const char *path)
{
    int code = Z_OK;
    const char *msg = gzerror(gz, &code);
    if (code == Z_OK || code == Z_STREAM_END)
        return NULL;
    if (code == Z_ERRNO)
        return strerror(errno);
    /* zlib prefixes its message with the path; ours already names it. */
    size_t n = strlen(path);
    if (strncmp(msg, path, n) == 0 && strncmp(msg + n, ": ", 2) == 0)
        msg += n + 2;
    return msg;
}

/* Read up to n bytes; *got receives how many arrived. */
static int
gz_read_all(gzFile gz, unsigned char *buf, size_t n, size_t *got)
{
    size_t done = 0;
    while (done < n) {
        size_t want = n - done;
        if (want > IDX_CHUNK)
            want = IDX_CHUNK;
        int r = gzread(gz, buf + done, (unsigned)want);
        if (r < 0) {
            *got = done;
            return -1;
        }
        if (r == 0)
            break;
        done += (size_t)r;
    }
    *got = done;
    return 0;
}

/* Open path and parse the header.  expect_ndims is 1 (labels) or 3
 * (images).  On success dims[0..expect_ndims-1] hold the dimensions and
 * total the number of data bytes they declare. */
static int
open_header(const char *path, int expect_ndims, gzFile *out, uint32_t *dims,
            size_t *total, char *err, size_t errlen)
{
    *out = NULL;
    errno = 0;
    gzFile gz = gzopen(path, "rb");
    if (gz == NULL) {
        set_err(err, errlen, "%s: cannot open: %s", path,
                errno ? strerror(errno) : "out of memory");
        return errno ? IDX_ERR_IO : IDX_ERR_NOMEM;
    }
    unsigned char head[4 + 4 * 3];
    size_t got = 0;
    int rc = gz_read_all(gz, head, 4, &got);
    const char *why = gz_failure(gz, path);
    if (rc != 0 || why != NULL) {
        /* zlib decodes ahead into its own buffer, so damage anywhere in
         * the first block already shows here: do not blame the header. */
        set_err(err, errlen, "%s: corrupt or truncated gzip data: %s", path,
                why ? why : "read error");
        gzclose(gz);
        return IDX_ERR_FORMAT;
    }
    if (got < 4) {
        set_err(err, errlen,
                "%s: file is %zu bytes long; an IDX file starts with a "
                "4-byte magic number", path, got);
        gzclose(gz);
        return IDX_ERR_FORMAT;
    }
    if (head[0] != 0 || head[1] != 0) {
        set_err(err, errlen,
                "%s: not an IDX file: magic starts with 0x%02x 0x%02x, "
                "expected 0x00 0x00", path, head[0], head[1]);
        gzclose(gz);
        return IDX_ERR_FORMAT;
    }
    if (head[2] != IDX_TYPE_UBYTE) {
        set_err(err, errlen,
                "%s: data type 0x%02x (%s) is not supported, expected 0x08 "
                "(unsigned byte)", path, head[2], type_name(head[2]));
        gzclose(gz);
        return IDX_ERR_FORMAT;
    }
    if (head[3] != expect_ndims) {
        set_err(err, errlen,
                "%s: has %d dimension%s, expected %d (%s)", path, head[3],
                head[3] == 1 ? "" : "s", expect_ndims,
                expect_ndims == 1 ? "a label file: count"
                                  : "an image file: count, rows, columns");
        gzclose(gz);
        return IDX_ERR_FORMAT;
    }
    size_t dbytes = 4 * (size_t)expect_ndims;
    rc = gz_read_all(gz, head + 4, dbytes, &got);
    why = gz_failure(gz, path);
    if (rc != 0 || why != NULL || got < dbytes) {
        set_err(err, errlen,
                "%s: truncated header: %zu of the %zu dimension bytes "
                "present%s%s", path, got, dbytes, why ? ": " : "",
                why ? why : "");
        gzclose(gz);
        return IDX_ERR_FORMAT;
    }
    /* Dimensions are big-endian; each must fit int32 and the product must
     * fit size_t, so that every index the program forms is representable. */
    size_t prod = 1;
    for (int i = 0; i < expect_ndims; i++) {
        const unsigned char *p = head + 4 + 4 * i;
        uint32_t d = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
                     ((uint32_t)p[2] << 8) | (uint32_t)p[3];
        if (d == 0 || d > INT32_MAX) {
            set_err(err, errlen,
                    "%s: dimension %d is %lu, expected 1..%ld", path, i + 1,
                    (unsigned long)d, (long)INT32_MAX);
            gzclose(gz);
            return IDX_ERR_FORMAT;
        }
        if (prod > SIZE_MAX / 4 / d) {
            set_err(err, errlen, "%s: dimensions overflow the address space",
                    path);
            gzclose(gz);
            return IDX_ERR_FORMAT;
        }
        prod *= d;
        dims[i] = d;
    }
    if (expect_ndims == 3 && (size_t)dims[1] * dims[2] > INT32_MAX) {
        set_err(err, errlen, "%s: images of %lu x %lu pixels are too large",
                path, (unsigned long)dims[1], (unsigned long)dims[2]);
        gzclose(gz);
        return IDX_ERR_FORMAT;
    }
    *total = prod;
    *out = gz;
    return IDX_OK;
}

static void
describe_dims(char *buf, size_t len, const uint32_t *dims, int ndims)
{
    if (ndims == 1)
        snprintf(buf, len, "%lu", (unsigned long)dims[0]);
    else
        snprintf(buf, len, "%lux%lux%lu", (unsigned long)dims[0],
                 (unsigned long)dims[1], (unsigned long)dims[2]);
}

/* Read exactly `total` data bytes and check nothing follows them.  The
 * buffer grows with the data that actually arrive (see the file comment). */
static int
read_body(gzFile gz, const char *path, const uint32_t *dims, int ndims,
          size_t total, unsigned char **out, char *err, size_t errlen)
{
    *out = NULL;
    char shape[64];
    describe_dims(shape, sizeof shape, dims, ndims);
    size_t cap = total < IDX_CHUNK ? total : IDX_CHUNK;
    unsigned char *buf = malloc(cap);
    if (buf == NULL) {
        set_err(err, errlen, "%s: out of memory", path);
        return IDX_ERR_NOMEM;
    }
    size_t done = 0;
    for (;;) {
        if (done == cap) {
            if (cap == total)
                break;
            size_t ncap = cap > total / 2 ? total : cap * 2;
            unsigned char *nb = realloc(buf, ncap);
            if (nb == NULL) {
                free(buf);
                set_err(err, errlen, "%s: out of memory for %zu bytes", path,
                        ncap);
                return IDX_ERR_NOMEM;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = 0;
        int rc = gz_read_all(gz, buf + done, cap - done, &got);
        done += got;
        const char *why = gz_failure(gz, path);
        if (rc != 0 || why != NULL) {
            /* zlib decodes ahead, so `done` understates where the damage
             * is: report the failure, not a position. */
            set_err(err, errlen,
                    "%s: %s while reading the %zu bytes that dimensions %s "
                    "declare: %s", path,
                    gzdirect(gz) ? "read error" : "corrupt or truncated gzip data",
                    total, shape, why ? why : "read error");
            free(buf);
            return IDX_ERR_FORMAT;
        }
        if (done < cap) {
            set_err(err, errlen,
                    "%s: dimensions %s need %zu data bytes but the file "
                    "ends after %zu (truncated, or wrong dimensions)", path,
                    shape, total, done);
            free(buf);
            return IDX_ERR_FORMAT;
        }
    }
    /* Anything after the declared data means the header lies about the
     * dimensions; reading past the end also makes zlib verify the gzip
     * trailer (CRC and length), which catches a damaged final block. */
    unsigned char extra;
    int r = gzread(gz, &extra, 1);
    const char *why = gz_failure(gz, path);
    if (r < 0 || why != NULL) {
        set_err(err, errlen, "%s: corrupt or truncated gzip data: %s", path,
                why ? why : "read error");
        free(buf);
        return IDX_ERR_FORMAT;
    }
    if (r > 0) {
        set_err(err, errlen,
                "%s: file has more data than dimensions %s declare (%zu "
                "bytes)", path, shape, total);
        free(buf);
        return IDX_ERR_FORMAT;
    }
    *out = buf;
    return IDX_OK;
}

int
idx_read_images(const char *path, idx_images *out, char *err, size_t errlen)
{
    if (out == NULL || path == NULL) {
        set_err(err, errlen, "idx_read_images: NULL argument");
        return IDX_ERR_ARG;
    }
    memset(out, 0, sizeof *out);
    uint32_t dims[3];
    size_t total = 0;
    gzFile gz = NULL;
    int rc = open_header(path, 3, &gz, dims, &total, err, errlen);
    if (rc != IDX_OK)
        return rc;
    unsigned char *bytes = NULL;
    rc = read_body(gz, path, dims, 3, total, &bytes, err, errlen);
    gzclose(gz);
    if (rc != IDX_OK)
        return rc;
    float *x = malloc(total * sizeof *x);
    if (x == NULL) {
        free(bytes);
        set_err(err, errlen, "%s: out of memory for %zu pixels", path, total);
        return IDX_ERR_NOMEM;
    }
    /* Row-major image after image is already "one image per column" of a
     * column-major (features, n) matrix: only the scaling is needed. */
    for (size_t i = 0; i < total; i++)
        x[i] = (float)bytes[i] / 255.0f;
    free(bytes);
    out->x = x;
    out->n = (int32_t)dims[0];
    out->rows = (int32_t)dims[1];
    out->cols = (int32_t)dims[2];
    out->features = (int32_t)(dims[1] * dims[2]);
    return IDX_OK;
}

int
idx_read_labels(const char *path, idx_labels *out, char *err, size_t errlen)
{
    if (out == NULL || path == NULL) {
        set_err(err, errlen, "idx_read_labels: NULL argument");
        return IDX_ERR_ARG;
    }
    memset(out, 0, sizeof *out);
    uint32_t dims[1];
    size_t total = 0;
    gzFile gz = NULL;
    int rc = open_header(path, 1, &gz, dims, &total, err, errlen);
    if (rc != IDX_OK)
        return rc;
    unsigned char *bytes = NULL;
    rc = read_body(gz, path, dims, 1, total, &bytes, err, errlen);
    gzclose(gz);
    if (rc != IDX_OK)
        return rc;
    out->y = bytes;
    out->n = (int32_t)dims[0];
    return IDX_OK;
}

int
idx_read_pair(const char *images_path, const char *labels_path,
              idx_images *images, idx_labels *labels, char *err,
              size_t errlen)
{
    if (images == NULL || labels == NULL || images_path == NULL ||
        labels_path == NULL) {
        set_err(err, errlen, "idx_read_pair: NULL argument");
        return IDX_ERR_ARG;
    }
    memset(images, 0, sizeof *images);
    memset(labels, 0, sizeof *labels);
    int rc = idx_read_images(images_path, images, err, errlen);
    if (rc != IDX_OK)
        return rc;
    rc = idx_read_labels(labels_path, labels, err, errlen);
    if (rc != IDX_OK) {
        idx_images_free(images);
        return rc;
    }
    if (images->n != labels->n) {
        set_err(err, errlen,
                "%s has %ld labels but %s has %ld images: expected the same "
                "count", labels_path, (long)labels->n, images_path,
                (long)images->n);
        idx_images_free(images);
        idx_labels_free(labels);
        return IDX_ERR_FORMAT;
    }
    return IDX_OK;
}

int
idx_find_file(const char *dir, const char *base, char *path, size_t pathlen,
              char *err, size_t errlen)
{
    if (dir == NULL || base == NULL || path == NULL || pathlen == 0) {
        set_err(err, errlen, "idx_find_file: NULL argument");
        return IDX_ERR_ARG;
    }
    int n = snprintf(path, pathlen, "%s/%s.gz", dir, base);
    if (n > 0 && (size_t)n < pathlen && access(path, R_OK) == 0)
        return IDX_OK;
    n = snprintf(path, pathlen, "%s/%s", dir, base);
    if (n > 0 && (size_t)n < pathlen && access(path, R_OK) == 0)
        return IDX_OK;
    if (n < 0 || (size_t)n >= pathlen) {
        set_err(err, errlen, "%s: path too long", dir);
        return IDX_ERR_ARG;
    }
    set_err(err, errlen, "%s/%s.gz: cannot read it (nor %s/%s): %s", dir,
            base, dir, base, strerror(errno));
    return IDX_ERR_IO;
}

void
idx_images_free(idx_images *images)
{
    if (images != NULL) {
        free(images->x);
        memset(images, 0, sizeof *images);
    }
}

void
idx_labels_free(idx_labels *labels)
{
    if (labels != NULL) {
        free(labels->y);
        memset(labels, 0, sizeof *labels);
    }
}
