/*
 * idx.c -- IDX reader (see idx.h).
 *
 * A file starting with the gzip magic 1f 8b is decoded with zlib's inflate
 * and must be exactly one gzip member; any other file is read as is.  The
 * data are read in chunks into a buffer that grows only as bytes actually
 * arrive: a header that claims billions of images in a small file fails
 * with "truncated" instead of first allocating gigabytes.
 */
#define _POSIX_C_SOURCE 200809L

#include "idx.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#define IDX_TYPE_UBYTE 0x08
#define IDX_CHUNK (1u << 20)   /* output per read: bounds the growth steps */
#define IDX_IN_CHUNK (1u << 16) /* compressed input per fread */

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

/* ------------------------------------------------------------ the source */

/* The bytes of an IDX file: a plain file read as is, or a gzip file of
 * exactly one member, decoded with inflate.  (zlib's gzread would serve
 * both, but it reads a second gzip member as more data and skips anything
 * else after the first one, so it cannot refuse trailing bytes.) */
typedef struct src {
    FILE *f;
    bool gz;
    bool z_ready; /* z initialised (inflateEnd owed) */
    bool z_end;   /* the member ended and its CRC and length were checked */
    z_stream z;
    size_t pending; /* plain file: bytes of `in` not yet delivered */
    unsigned char in[IDX_IN_CHUNK];
} src;

static void
src_close(src *s)
{
    if (s->z_ready)
        inflateEnd(&s->z);
    if (s->f != NULL)
        fclose(s->f);
    s->f = NULL;
    s->z_ready = false;
}

/* Open path and look at its first two bytes: the gzip magic 1f 8b selects
 * inflate (an IDX file starts with 00 00, so a plain one never has it). */
static int
src_open(src *s, const char *path, char *err, size_t errlen)
{
    memset(s, 0, offsetof(src, in));
    errno = 0;
    s->f = fopen(path, "rb");
    if (s->f == NULL) {
        set_err(err, errlen, "%s: cannot open: %s", path,
                errno ? strerror(errno) : "out of memory");
        return errno ? IDX_ERR_IO : IDX_ERR_NOMEM;
    }
    size_t got = fread(s->in, 1, 2, s->f);
    if (got < 2 && ferror(s->f)) {
        /* e.g. a directory: fopen succeeds, reading fails (EISDIR) */
        set_err(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        src_close(s);
        return IDX_ERR_IO;
    }
    s->gz = got == 2 && s->in[0] == 0x1f && s->in[1] == 0x8b;
    if (s->gz) {
        /* 16 + 15: a gzip wrapper only (not zlib, not raw), 32 KiB window */
        if (inflateInit2(&s->z, 16 + 15) != Z_OK) {
            set_err(err, errlen, "%s: out of memory for the gzip decoder",
                    path);
            src_close(s);
            return IDX_ERR_NOMEM;
        }
        s->z_ready = true;
        s->z.next_in = s->in;
        s->z.avail_in = (uInt)got;
    } else {
        s->pending = got;
    }
    return IDX_OK;
}

/* Read up to n bytes into buf; *got receives how many arrived (fewer only
 * at the end of the data).  On failure returns -1 with *why saying what
 * went wrong (a zlib message, an I/O error, or a gzip stream that ends
 * early). */
static int
src_read(src *s, unsigned char *buf, size_t n, size_t *got, const char **why)
{
    size_t done = 0;
    *why = NULL;
    if (!s->gz) {
        size_t k = s->pending < n ? s->pending : n;
        memcpy(buf, s->in, k);
        memmove(s->in, s->in + k, s->pending - k);
        s->pending -= k;
        done = k;
        if (done < n)
            done += fread(buf + done, 1, n - done, s->f);
        *got = done;
        if (done < n && ferror(s->f)) {
            *why = strerror(errno);
            return -1;
        }
        return 0;
    }
    while (done < n && !s->z_end) {
        if (s->z.avail_in == 0) {
            size_t r = fread(s->in, 1, sizeof s->in, s->f);
            if (r == 0) {
                *got = done;
                *why = ferror(s->f) ? strerror(errno) : "unexpected end of file";
                return -1;
            }
            s->z.next_in = s->in;
            s->z.avail_in = (uInt)r;
        }
        size_t want = n - done < IDX_CHUNK ? n - done : IDX_CHUNK;
        s->z.next_out = buf + done;
        s->z.avail_out = (uInt)want;
        int zr = inflate(&s->z, Z_NO_FLUSH);
        done += want - s->z.avail_out;
        if (zr == Z_STREAM_END) {
            s->z_end = true;
        } else if (zr != Z_OK && zr != Z_BUF_ERROR) {
            /* Z_BUF_ERROR only means "no progress without more input",
             * which the next round supplies; anything else is fatal. */
            *got = done;
            *why = zr == Z_MEM_ERROR ? "out of memory"
                   : s->z.msg        ? s->z.msg
                                     : "invalid gzip data";
            return -1;
        }
    }
    *got = done;
    return 0;
}

/* After the gzip member's end: is anything left in the file?  A second
 * member or any trailing bytes (even zeros) means the file is not the one
 * gzip stream it should be.  -1 with *why on a read error. */
static int
src_after_end(src *s, bool *more, const char **why)
{
    unsigned char b;
    *why = NULL;
    *more = s->z.avail_in > 0 || fread(&b, 1, 1, s->f) == 1;
    if (!*more && ferror(s->f)) {
        *why = strerror(errno);
        return -1;
    }
    return 0;
}

/* Open path into *s and parse the header.  expect_ndims is 1 (labels) or
 * 3 (images).  On success dims[0..expect_ndims-1] hold the dimensions and
 * total the number of data bytes they declare; on failure *s is closed. */
static int
open_header(src *s, const char *path, int expect_ndims, uint32_t *dims,
            size_t *total, char *err, size_t errlen)
{
    int rc = src_open(s, path, err, errlen);
    if (rc != IDX_OK)
        return rc;
    unsigned char head[4 + 4 * 3];
    size_t got = 0;
    const char *why = NULL;
    if (src_read(s, head, 4, &got, &why) != 0) {
        /* inflate may already meet damage beyond the header here: do not
         * blame the header. */
        set_err(err, errlen, "%s: %s: %s", path,
                s->gz ? "corrupt or truncated gzip data" : "read error", why);
        src_close(s);
        return IDX_ERR_FORMAT;
    }
    if (got < 4) {
        set_err(err, errlen,
                "%s: file is %zu bytes long; an IDX file starts with a "
                "4-byte magic number", path, got);
        src_close(s);
        return IDX_ERR_FORMAT;
    }
    if (head[0] != 0 || head[1] != 0) {
        set_err(err, errlen,
                "%s: not an IDX file: magic starts with 0x%02x 0x%02x, "
                "expected 0x00 0x00", path, head[0], head[1]);
        src_close(s);
        return IDX_ERR_FORMAT;
    }
    if (head[2] != IDX_TYPE_UBYTE) {
        set_err(err, errlen,
                "%s: data type 0x%02x (%s) is not supported, expected 0x08 "
                "(unsigned byte)", path, head[2], type_name(head[2]));
        src_close(s);
        return IDX_ERR_FORMAT;
    }
    if (head[3] != expect_ndims) {
        set_err(err, errlen,
                "%s: has %d dimension%s, expected %d (%s)", path, head[3],
                head[3] == 1 ? "" : "s", expect_ndims,
                expect_ndims == 1 ? "a label file: count"
                                  : "an image file: count, rows, columns");
        src_close(s);
        return IDX_ERR_FORMAT;
    }
    size_t dbytes = 4 * (size_t)expect_ndims;
    rc = src_read(s, head + 4, dbytes, &got, &why);
    if (rc != 0 || got < dbytes) {
        set_err(err, errlen,
                "%s: truncated header: %zu of the %zu dimension bytes "
                "present%s%s", path, got, dbytes, why ? ": " : "",
                why ? why : "");
        src_close(s);
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
            src_close(s);
            return IDX_ERR_FORMAT;
        }
        if (prod > SIZE_MAX / 4 / d) {
            set_err(err, errlen, "%s: dimensions overflow the address space",
                    path);
            src_close(s);
            return IDX_ERR_FORMAT;
        }
        prod *= d;
        dims[i] = d;
    }
    if (expect_ndims == 3 && (size_t)dims[1] * dims[2] > INT32_MAX) {
        set_err(err, errlen, "%s: images of %lu x %lu pixels are too large",
                path, (unsigned long)dims[1], (unsigned long)dims[2]);
        src_close(s);
        return IDX_ERR_FORMAT;
    }
    *total = prod;
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

/* Read exactly `total` data bytes and check nothing follows them: no more
 * data, and for gzip the end of the one member (its CRC and length
 * checked by inflate) followed by the end of the file.  The buffer grows
 * with the data that actually arrive (see the file comment). */
static int
read_body(src *s, const char *path, const uint32_t *dims, int ndims,
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
    const char *why = NULL;
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
        int rc = src_read(s, buf + done, cap - done, &got, &why);
        done += got;
        if (rc != 0) {
            /* inflate consumes its input in blocks, so `done` need not be
             * where the damage is: report the failure, not a position. */
            set_err(err, errlen,
                    "%s: %s while reading the %zu bytes that dimensions %s "
                    "declare: %s", path,
                    s->gz ? "corrupt or truncated gzip data" : "read error",
                    total, shape, why);
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
     * dimensions; reading past the end also makes inflate reach the gzip
     * trailer and verify its CRC and length. */
    unsigned char extra;
    size_t got = 0;
    bool more = false;
    if (src_read(s, &extra, 1, &got, &why) != 0 ||
        (s->gz && got == 0 && src_after_end(s, &more, &why) != 0)) {
        set_err(err, errlen, "%s: %s: %s", path,
                s->gz ? "corrupt or truncated gzip data" : "read error", why);
        free(buf);
        return IDX_ERR_FORMAT;
    }
    if (got > 0) {
        set_err(err, errlen,
                "%s: file has more data than dimensions %s declare (%zu "
                "bytes)", path, shape, total);
        free(buf);
        return IDX_ERR_FORMAT;
    }
    if (more) {
        set_err(err, errlen,
                "%s: data after the end of the gzip stream (a second gzip "
                "member or trailing bytes): expected one gzip stream holding "
                "the %zu bytes of dimensions %s", path, total, shape);
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
    src *s = malloc(sizeof *s);
    if (s == NULL) {
        set_err(err, errlen, "%s: out of memory", path);
        return IDX_ERR_NOMEM;
    }
    int rc = open_header(s, path, 3, dims, &total, err, errlen);
    unsigned char *bytes = NULL;
    if (rc == IDX_OK) {
        rc = read_body(s, path, dims, 3, total, &bytes, err, errlen);
        src_close(s);
    }
    free(s);
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
    src *s = malloc(sizeof *s);
    if (s == NULL) {
        set_err(err, errlen, "%s: out of memory", path);
        return IDX_ERR_NOMEM;
    }
    int rc = open_header(s, path, 1, dims, &total, err, errlen);
    unsigned char *bytes = NULL;
    if (rc == IDX_OK) {
        rc = read_body(s, path, dims, 1, total, &bytes, err, errlen);
        src_close(s);
    }
    free(s);
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
idx_check_same_shape(const char *path, const idx_images *images,
                     const char *ref_path, const idx_images *ref, char *err,
                     size_t errlen)
{
    if (path == NULL || images == NULL || ref_path == NULL || ref == NULL) {
        set_err(err, errlen, "idx_check_same_shape: NULL argument");
        return IDX_ERR_ARG;
    }
    if (images->rows != ref->rows || images->cols != ref->cols) {
        set_err(err, errlen,
                "%s: images of %ldx%ld pixels (rows x columns), but those of "
                "%s are %ldx%ld: expected the same shape", path,
                (long)images->rows, (long)images->cols, ref_path,
                (long)ref->rows, (long)ref->cols);
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
