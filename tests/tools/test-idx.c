/*
 * test-idx.c -- the IDX reader on small files the test writes itself:
 * valid images and labels (gzip and plain) with known values, and each kind
 * of malformed file, which must give the right status and a message naming
 * the file.
 */
#define _POSIX_C_SOURCE 200809L

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "idx.h"

static char tmpdir[512];

static void
make_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/test-idx-XXXXXX",
             base && *base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void
remove_tmpdir(void)
{
    /* The directory holds only files this test wrote, flat. */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "test-idx: could not remove %s\n", tmpdir);
}

static void
tmp_path(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", tmpdir, name);
}

/* Write bytes to path, gzip-compressed when gz. */
static void
write_file(const char *path, const unsigned char *bytes, size_t n, int gz)
{
    if (gz) {
        gzFile f = gzopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        if (n > 0)
            ck_assert_int_eq(gzwrite(f, bytes, (unsigned)n), (int)n);
        ck_assert_int_eq(gzclose(f), Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        if (n > 0)
            ck_assert_uint_eq(fwrite(bytes, 1, n, f), n);
        ck_assert_int_eq(fclose(f), 0);
    }
}

static size_t
put_header(unsigned char *p, int type, int ndims, const uint32_t *dims)
{
    p[0] = 0;
    p[1] = 0;
    p[2] = (unsigned char)type;
    p[3] = (unsigned char)ndims;
    for (int i = 0; i < ndims; i++) {
        p[4 + 4 * i] = (unsigned char)(dims[i] >> 24);
        p[5 + 4 * i] = (unsigned char)(dims[i] >> 16);
        p[6 + 4 * i] = (unsigned char)(dims[i] >> 8);
        p[7 + 4 * i] = (unsigned char)dims[i];
    }
    return 4 + 4 * (size_t)ndims;
}

/* An image file of n images of r x c pixels, pixel k of image i = (7i+k)%256,
 * with `extra` more data bytes than declared (negative: fewer). */
static size_t
image_bytes(unsigned char *buf, uint32_t n, uint32_t r, uint32_t c,
            long extra)
{
    uint32_t dims[3] = {n, r, c};
    size_t h = put_header(buf, 0x08, 3, dims);
    long data = (long)(n * r * c) + extra;
    for (long k = 0; k < data; k++)
        buf[h + (size_t)k] = (unsigned char)((7 * (k / (long)(r * c)) +
                                              k % (long)(r * c)) % 256);
    return h + (size_t)data;
}

static size_t
label_bytes(unsigned char *buf, uint32_t n)
{
    size_t h = put_header(buf, 0x08, 1, &n);
    for (uint32_t i = 0; i < n; i++)
        buf[h + i] = (unsigned char)(i % 10);
    return h + n;
}

/* ------------------------------------------------------------ valid files */

static void
check_valid_images(int gz)
{
    unsigned char buf[256];
    char path[600];
    tmp_path(path, sizeof path, gz ? "img.gz" : "img");
    write_file(path, buf, image_bytes(buf, 3, 2, 4, 0), gz);
    idx_images im;
    char err[512] = "";
    ck_assert_int_eq(idx_read_images(path, &im, err, sizeof err), IDX_OK);
    ck_assert_int_eq(im.n, 3);
    ck_assert_int_eq(im.rows, 2);
    ck_assert_int_eq(im.cols, 4);
    ck_assert_int_eq(im.features, 8);
    /* (features, n) column-major: image i is column i. */
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 8; k++)
            ck_assert_msg(im.x[i * 8 + k] == (float)((7 * i + k) % 256) / 255.0f,
                          "pixel %d of image %d", k, i);
    idx_images_free(&im);
    ck_assert_ptr_null(im.x);
}

START_TEST(valid_images_plain) { check_valid_images(0); }
END_TEST

START_TEST(valid_images_gzip) { check_valid_images(1); }
END_TEST

START_TEST(valid_labels_and_pair)
{
    for (int gz = 0; gz < 2; gz++) {
        unsigned char buf[256];
        char ip[600], lp[600], err[512] = "";
        tmp_path(ip, sizeof ip, gz ? "pi.gz" : "pi");
        tmp_path(lp, sizeof lp, gz ? "pl.gz" : "pl");
        write_file(ip, buf, image_bytes(buf, 12, 2, 2, 0), gz);
        write_file(lp, buf, label_bytes(buf, 12), gz);
        idx_images im;
        idx_labels lb;
        ck_assert_int_eq(idx_read_pair(ip, lp, &im, &lb, err, sizeof err),
                         IDX_OK);
        ck_assert_int_eq(lb.n, 12);
        ck_assert_int_eq(im.n, 12);
        for (int i = 0; i < 12; i++)
            ck_assert_uint_eq(lb.y[i], (unsigned)(i % 10));
        idx_images_free(&im);
        idx_labels_free(&lb);
    }
}
END_TEST

START_TEST(find_file_prefers_gzip_then_plain)
{
    unsigned char buf[64];
    char path[600], err[512] = "";
    size_t n = label_bytes(buf, 2);
    char p1[600];
    tmp_path(p1, sizeof p1, "only-plain");
    write_file(p1, buf, n, 0);
    ck_assert_int_eq(idx_find_file(tmpdir, "only-plain", path, sizeof path,
                                   err, sizeof err), IDX_OK);
    ck_assert_str_eq(path, p1);
    tmp_path(p1, sizeof p1, "both.gz");
    write_file(p1, buf, n, 1);
    tmp_path(path, sizeof path, "both");
    write_file(path, buf, n, 0);
    ck_assert_int_eq(idx_find_file(tmpdir, "both", path, sizeof path, err,
                                   sizeof err), IDX_OK);
    ck_assert_str_eq(path, p1);
    ck_assert_int_eq(idx_find_file(tmpdir, "absent", path, sizeof path, err,
                                   sizeof err), IDX_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err, "absent"));
}
END_TEST

/* --------------------------------------------------------- malformed files */

enum { IMAGES, LABELS };

typedef struct bad_case {
    const char *name;
    int kind;            /* IMAGES or LABELS: which reader */
    int gz;
    int status;          /* expected */
    const char *needle;  /* expected in the message, besides the path */
    /* how to build the file */
    int type, ndims;
    uint32_t dims[3];
    long extra;          /* data bytes beyond the declared ones */
    long cut;            /* bytes cut off the end of the file as written */
    long flip;           /* >= 0: invert this byte of the file as written */
} bad_case;

static const bad_case bad_cases[] = {
    {"wrong-magic", IMAGES, 0, IDX_ERR_FORMAT, "magic", 0x08, 3, {2, 2, 2}, 0, 0, -1},
    {"wrong-type", IMAGES, 1, IDX_ERR_FORMAT, "0x0d", 0x0D, 3, {2, 2, 2}, 0, 0, -1},
    {"images-as-labels", LABELS, 0, IDX_ERR_FORMAT, "3 dimensions", 0x08, 3, {2, 2, 2}, 0, 0, -1},
    {"labels-as-images", IMAGES, 0, IDX_ERR_FORMAT, "1 dimension", 0x08, 1, {5, 0, 0}, 0, 0, -1},
    {"zero-dimension", IMAGES, 0, IDX_ERR_FORMAT, "dimension 2 is 0", 0x08, 3, {2, 0, 2}, 0, 0, -1},
    {"short-plain", IMAGES, 0, IDX_ERR_FORMAT, "ends after", 0x08, 3, {5, 2, 2}, -3, 0, -1},
    {"short-gzip", IMAGES, 1, IDX_ERR_FORMAT, "ends after", 0x08, 3, {5, 2, 2}, -3, 0, -1},
    {"long-plain", IMAGES, 0, IDX_ERR_FORMAT, "more data", 0x08, 3, {5, 2, 2}, 4, 0, -1},
    {"long-labels-gzip", LABELS, 1, IDX_ERR_FORMAT, "more data", 0x08, 1, {5, 0, 0}, 1, 0, -1},
    {"short-labels", LABELS, 0, IDX_ERR_FORMAT, "ends after", 0x08, 1, {9, 0, 0}, -1, 0, -1},
    /* A header claiming 2^31-1 images of 28x28 in a tiny file must fail as
     * truncated, not try to allocate 1.6 TB first. */
    {"huge-claim", IMAGES, 1, IDX_ERR_FORMAT, "ends after", 0x08, 3, {0x7fffffff, 28, 28}, -1, 0, -1},
    {"dimension-over-int32", IMAGES, 0, IDX_ERR_FORMAT, "dimension 1", 0x08, 3, {0x80000000u, 1, 1}, -1, 0, -1},
    {"truncated-header", IMAGES, 0, IDX_ERR_FORMAT, "truncated header", 0x08, 3, {2, 2, 2}, 0, 15, -1},
    {"truncated-gzip", IMAGES, 1, IDX_ERR_FORMAT, "truncated", 0x08, 3, {40, 8, 8}, 0, 12, -1},
    {"corrupt-gzip", IMAGES, 1, IDX_ERR_FORMAT, "", 0x08, 3, {40, 8, 8}, 0, 0, 30},
    {"empty-file", LABELS, 0, IDX_ERR_FORMAT, "0 bytes", 0x08, 1, {1, 0, 0}, 0, 1000, -1},
};

START_TEST(malformed)
{
    const bad_case *bc = &bad_cases[_i];
    unsigned char raw[4096];
    size_t n;
    /* Data bytes written: what the dimensions declare plus `extra`, except
     * that a header claiming more than fits the buffer gets two images'
     * worth (the claim is the lie under test). */
    long long declared = 1;
    for (int i = 0; i < bc->ndims; i++)
        declared *= bc->dims[i];
    if (declared > 3000)
        declared = bc->ndims == 3 ? 2LL * bc->dims[1] * bc->dims[2] : 2;
    n = put_header(raw, bc->type, bc->ndims, bc->dims);
    long data = (long)declared + bc->extra;
    for (long k = 0; k < data; k++)
        raw[n + (size_t)k] = (unsigned char)(k * 37 % 251);
    n += (size_t)data;
    if (strcmp(bc->name, "wrong-magic") == 0) {
        raw[0] = 0x12;
        raw[1] = 0x34;
    }
    char path[600];
    tmp_path(path, sizeof path, bc->name);
    if (bc->cut > 0 || bc->flip >= 0) {
        /* Damage the file as stored (for gzip: the compressed bytes). */
        write_file(path, raw, n, bc->gz);
        FILE *f = fopen(path, "rb");
        ck_assert_ptr_nonnull(f);
        unsigned char stored[8192];
        size_t sn = fread(stored, 1, sizeof stored, f);
        fclose(f);
        if (bc->cut > 0)
            sn = (size_t)bc->cut >= sn ? 0 : sn - (size_t)bc->cut;
        if (bc->flip >= 0) {
            ck_assert_uint_gt(sn, (size_t)bc->flip);
            stored[bc->flip] ^= 0xff;
        }
        write_file(path, stored, sn, 0);
    } else {
        write_file(path, raw, n, bc->gz);
    }
    char err[1024] = "";
    int rc;
    if (bc->kind == IMAGES) {
        idx_images im;
        rc = idx_read_images(path, &im, err, sizeof err);
        ck_assert_ptr_null(im.x);
    } else {
        idx_labels lb;
        rc = idx_read_labels(path, &lb, err, sizeof err);
        ck_assert_ptr_null(lb.y);
    }
    ck_assert_msg(rc == bc->status, "%s: status %d, expected %d (%s)",
                  bc->name, rc, bc->status, err);
    ck_assert_msg(strstr(err, path) != NULL, "%s: message does not name "
                  "the file: %s", bc->name, err);
    ck_assert_msg(strstr(err, bc->needle) != NULL, "%s: message lacks '%s': "
                  "%s", bc->name, bc->needle, err);
}
END_TEST

/* ---------------------------------------------- data after the gzip stream */

/* An empty gzip member, as `gzip -c </dev/null` writes it: header (no
 * name, mtime 0, OS Unix), an empty final stored block, CRC-32 0, size 0. */
static const unsigned char empty_member[] = {
    0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03,
    0x03, 0x00, 0, 0, 0, 0, 0, 0, 0, 0};

static void
append_raw(const char *path, const unsigned char *bytes, size_t n)
{
    FILE *f = fopen(path, "ab");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(bytes, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

/* A valid gzip label file followed by `tail`: refused as data after the
 * end of the gzip stream, naming the file.  zlib's gzread skips trailing
 * garbage and reads a further member as more data, so a trailer like
 * this used to pass unnoticed. */
static void
check_trailing(const char *name, const unsigned char *tail, size_t n,
               int kind)
{
    unsigned char buf[256];
    char path[600], err[1024] = "";
    tmp_path(path, sizeof path, name);
    if (kind == IMAGES)
        write_file(path, buf, image_bytes(buf, 3, 2, 4, 0), 1);
    else
        write_file(path, buf, label_bytes(buf, 7), 1);
    append_raw(path, tail, n);
    int rc;
    if (kind == IMAGES) {
        idx_images im;
        rc = idx_read_images(path, &im, err, sizeof err);
        ck_assert_ptr_null(im.x);
    } else {
        idx_labels lb;
        rc = idx_read_labels(path, &lb, err, sizeof err);
        ck_assert_ptr_null(lb.y);
    }
    ck_assert_msg(rc == IDX_ERR_FORMAT, "%s: status %d, expected %d (%s)",
                  name, rc, IDX_ERR_FORMAT, err);
    ck_assert_msg(strstr(err, path) != NULL, "%s: message does not name the "
                  "file: %s", name, err);
    ck_assert_msg(strstr(err, "after the end of the gzip stream") != NULL,
                  "%s: message does not say what follows the stream: %s",
                  name, err);
}

START_TEST(gzip_trailing_garbage)
{
    static const unsigned char junk[] = "junk after the stream";
    check_trailing("garbage.gz", junk, sizeof junk - 1, LABELS);
}
END_TEST

START_TEST(gzip_trailing_zeros)
{
    static const unsigned char zeros[512] = {0};
    check_trailing("zeros.gz", zeros, sizeof zeros, IMAGES);
}
END_TEST

START_TEST(gzip_empty_second_member)
{
    check_trailing("empty-member.gz", empty_member, sizeof empty_member,
                   LABELS);
}
END_TEST

START_TEST(gzip_second_member_with_data)
{
    /* A second member holding one more label: gzread would have read it as
     * a 8th label ("more data than declared"); it is the second member
     * that is wrong. */
    char path[600];
    tmp_path(path, sizeof path, "member2.gz");
    write_file(path, (const unsigned char *)"\x05", 1, 1);
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    unsigned char member[256];
    size_t n = fread(member, 1, sizeof member, f);
    fclose(f);
    ck_assert_uint_gt(n, 18);
    check_trailing("data-member.gz", member, n, LABELS);
}
END_TEST

START_TEST(gzip_single_member_still_valid)
{
    /* The strict end check must not refuse a clean single-member file of
     * any length, including one longer than zlib's input buffers. */
    static unsigned char raw[16 + 300 * 28 * 28];
    char path[600], err[1024] = "";
    tmp_path(path, sizeof path, "big.gz");
    uint32_t dims[3] = {300, 28, 28};
    size_t h = put_header(raw, 0x08, 3, dims);
    for (size_t k = 0; k < 300 * 28 * 28; k++)
        raw[h + k] = (unsigned char)((k * 2654435761u) >> 24);
    write_file(path, raw, h + 300 * 28 * 28, 1);
    idx_images im;
    ck_assert_msg(idx_read_images(path, &im, err, sizeof err) == IDX_OK, "%s",
                  err);
    ck_assert_int_eq(im.n, 300);
    ck_assert(im.x[299 * 784 + 783] == (float)raw[h + 300 * 784 - 1] / 255.0f);
    idx_images_free(&im);
}
END_TEST

/* ------------------------------------------------------------ image shape */

START_TEST(same_shape)
{
    unsigned char buf[512];
    char a[600], b[600], c[600], err[1024] = "";
    tmp_path(a, sizeof a, "train-8x8");
    tmp_path(b, sizeof b, "test-4x16");
    tmp_path(c, sizeof c, "test-8x8");
    write_file(a, buf, image_bytes(buf, 2, 8, 8, 0), 0);
    write_file(b, buf, image_bytes(buf, 3, 4, 16, 0), 1);
    write_file(c, buf, image_bytes(buf, 1, 8, 8, 0), 0);
    idx_images ia, ib, ic;
    ck_assert_int_eq(idx_read_images(a, &ia, err, sizeof err), IDX_OK);
    ck_assert_int_eq(idx_read_images(b, &ib, err, sizeof err), IDX_OK);
    ck_assert_int_eq(idx_read_images(c, &ic, err, sizeof err), IDX_OK);
    /* The same 64 pixels, but not the same images. */
    ck_assert_int_eq(ia.features, ib.features);
    ck_assert_int_eq(idx_check_same_shape(b, &ib, a, &ia, err, sizeof err),
                     IDX_ERR_FORMAT);
    ck_assert_msg(strstr(err, b) != NULL && strstr(err, a) != NULL,
                  "message does not name both files: %s", err);
    ck_assert_msg(strstr(err, "4x16") != NULL && strstr(err, "8x8") != NULL,
                  "message does not give both shapes: %s", err);
    err[0] = '\0';
    ck_assert_int_eq(idx_check_same_shape(c, &ic, a, &ia, err, sizeof err),
                     IDX_OK);
    ck_assert_int_eq(idx_check_same_shape(c, NULL, a, &ia, err, sizeof err),
                     IDX_ERR_ARG);
    idx_images_free(&ia);
    idx_images_free(&ib);
    idx_images_free(&ic);
}
END_TEST

START_TEST(missing_file)
{
    char path[600], err[1024] = "";
    tmp_path(path, sizeof path, "does-not-exist");
    idx_images im;
    ck_assert_int_eq(idx_read_images(path, &im, err, sizeof err), IDX_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err, path));
    ck_assert_ptr_nonnull(strstr(err, "cannot open"));
}
END_TEST

START_TEST(directory_instead_of_file)
{
    char err[1024] = "";
    idx_labels lb;
    ck_assert_int_ne(idx_read_labels(tmpdir, &lb, err, sizeof err), IDX_OK);
    ck_assert_ptr_nonnull(strstr(err, tmpdir));
}
END_TEST

START_TEST(count_mismatch)
{
    unsigned char buf[256];
    char ip[600], lp[600], err[1024] = "";
    tmp_path(ip, sizeof ip, "mi.gz");
    tmp_path(lp, sizeof lp, "ml");
    write_file(ip, buf, image_bytes(buf, 6, 2, 2, 0), 1);
    write_file(lp, buf, label_bytes(buf, 5), 0);
    idx_images im;
    idx_labels lb;
    ck_assert_int_eq(idx_read_pair(ip, lp, &im, &lb, err, sizeof err),
                     IDX_ERR_FORMAT);
    ck_assert_ptr_null(im.x);
    ck_assert_ptr_null(lb.y);
    ck_assert_ptr_nonnull(strstr(err, ip));
    ck_assert_ptr_nonnull(strstr(err, lp));
    ck_assert_ptr_nonnull(strstr(err, "same count"));
}
END_TEST

START_TEST(null_arguments)
{
    char err[256] = "";
    idx_images im;
    ck_assert_int_eq(idx_read_images(NULL, &im, err, sizeof err), IDX_ERR_ARG);
    ck_assert_int_eq(idx_read_labels("x", NULL, NULL, 0), IDX_ERR_ARG);
    idx_images_free(NULL);
    idx_labels_free(NULL);
}
END_TEST

static Suite *
idx_suite(void)
{
    Suite *s = suite_create("idx");
    TCase *tc = tcase_create("reader");
    tcase_add_checked_fixture(tc, make_tmpdir, remove_tmpdir);
    tcase_add_test(tc, valid_images_plain);
    tcase_add_test(tc, valid_images_gzip);
    tcase_add_test(tc, valid_labels_and_pair);
    tcase_add_test(tc, find_file_prefers_gzip_then_plain);
    tcase_add_loop_test(tc, malformed, 0,
                        (int)(sizeof bad_cases / sizeof bad_cases[0]));
    tcase_add_test(tc, gzip_trailing_garbage);
    tcase_add_test(tc, gzip_trailing_zeros);
    tcase_add_test(tc, gzip_empty_second_member);
    tcase_add_test(tc, gzip_second_member_with_data);
    tcase_add_test(tc, gzip_single_member_still_valid);
    tcase_add_test(tc, same_shape);
    tcase_add_test(tc, missing_file);
    tcase_add_test(tc, directory_instead_of_file);
    tcase_add_test(tc, count_mismatch);
    tcase_add_test(tc, null_arguments);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(idx_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
