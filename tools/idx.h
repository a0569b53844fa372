/*
 * idx.h -- reader for the IDX files of MNIST and Fashion-MNIST
 * (http://yann.lecun.com/exdb/mnist/), gzip-compressed or plain.
 *
 * An IDX file is a 4-byte magic {0, 0, type, ndims}, ndims big-endian
 * uint32 dimensions, then the data in row-major order.  Only type 0x08
 * (unsigned byte) is used by the image/label sets and only it is accepted.
 *
 * Every function here validates the whole file (magic, type, number of
 * dimensions, data length against the declared dimensions, gzip integrity:
 * exactly one gzip member, CRC and length checked, nothing after it) and
 * on failure writes one line into err naming the file and saying what was
 * expected.  Nothing prints, nothing exits.
 */
#ifndef FA_TOOLS_IDX_H
#define FA_TOOLS_IDX_H

#include <stddef.h>
#include <stdint.h>

/* Status codes of this reader (0 on success). */
enum {
    IDX_OK = 0,
    IDX_ERR_IO = -1,     /* cannot open or read the file */
    IDX_ERR_FORMAT = -2, /* bad magic, type, dimensions, length, gzip data */
    IDX_ERR_NOMEM = -3,
    IDX_ERR_ARG = -4     /* NULL pointer or bad argument from the caller */
};

/* Images of an idx3 (or any idx with >= 2 dimensions) file.
 * x is (features, n) column-major: image i occupies x[i*features ..
 * (i+1)*features - 1] in the file's row-major pixel order, scaled to
 * [0, 1] as pixel/255.  features = rows*cols (product of dims 2..ndims).
 * Owned by the struct; release with idx_images_free. */
typedef struct idx_images {
    float *x;
    int32_t n;
    int32_t rows;
    int32_t cols;
    int32_t features;
} idx_images;

/* Labels of an idx1 file, one uint8 per sample. */
typedef struct idx_labels {
    uint8_t *y;
    int32_t n;
} idx_labels;

/* Read an image file.  On failure *out is zeroed and err holds the reason.
 * err may be NULL; errlen is its size. */
int idx_read_images(const char *path, idx_images *out, char *err,
                    size_t errlen);

/* Read a label file (ndims must be 1). */
int idx_read_labels(const char *path, idx_labels *out, char *err,
                    size_t errlen);

/* Read an image file and its label file and check they describe the same
 * number of samples. */
int idx_read_pair(const char *images_path, const char *labels_path,
                  idx_images *images, idx_labels *labels, char *err,
                  size_t errlen);

/* Check that images (read from path) have the shape, rows and columns, of
 * ref (read from ref_path): the same pixel count is not enough, 4x16
 * images are not 8x8 ones.  IDX_ERR_FORMAT with a message giving both
 * files and shapes when they differ; IDX_ERR_ARG for a NULL argument. */
int idx_check_same_shape(const char *path, const idx_images *images,
                         const char *ref_path, const idx_images *ref,
                         char *err, size_t errlen);

/* Find "dir/base.gz" or else "dir/base"; writes the chosen path into path
 * (size pathlen).  Returns IDX_ERR_IO with a message naming both candidates
 * when neither is readable. */
int idx_find_file(const char *dir, const char *base, char *path,
                  size_t pathlen, char *err, size_t errlen);

void idx_images_free(idx_images *images);
void idx_labels_free(idx_labels *labels);

#endif /* FA_TOOLS_IDX_H */
