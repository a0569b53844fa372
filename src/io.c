/*
 * io.c -- model files: CRC-32, fa_net_save, fa_net_load.
 *
 * Format version 1.  Every multi-byte field is written in the byte order of
 * the machine that saved the file; the byte-order mark lets a loader on a
 * machine of the other order say so instead of reading garbage.  Fields in
 * order (L = n_layers; u32/i64/u64 integers, f64 IEEE double, f32 IEEE
 * float):
 *
 *   magic        8 bytes  'F' 'A' 'N' 'E' 'T' '\r' '\n' 0x1A
 *   version      u32      1
 *   byte order   u32      0x01020304
 *   n_layers     u32      L >= 1
 *   sizes        u32 x (L+1)   n_0..n_L, each in [1, INT32_MAX]
 *   activations  u32 x L       layers 1..L (fa_activation)
 *   loss, rule, dfa_variant, fb_dist, optimizer    u32 each
 *   fb_scale     f64      (0 = FA_SCALE_AUTO)
 *   hparams      f64 x FA_N_HPARAMS  (indexed by fa_hparam)
 *   dropout      f64 x (L-1)   hidden layers 1..L-1
 *   opt_step     i64      Adam's step count
 *   rng          u64 x 4  xoshiro256** state
 *   flags        u32      bit 0: FA feedback block present,
 *                         bit 1: DFA feedback block present
 *   n_opt_state  u64      floats of optimiser state that follow
 *                         (fa_optimizer_state_len: 0, n_params or 2 n_params)
 *   params       f32 x n_params        [W_1|b_1|...|W_L|b_L]
 *   FA feedback  f32 x fb_fa_len       if flag bit 0: F_2..F_L
 *   DFA feedback f32 x fb_dfa_len      if flag bit 1: stacked G (n_L, n_hidden)
 *   opt state    f32 x n_opt_state
 *   crc          u32      CRC-32 of every byte before it
 *
 * The header up to n_opt_state is 16 L + 160 bytes, so the float blocks
 * start 4-byte aligned.  Only the part of the optimiser state the current
 * optimiser uses is stored: the rest is zero by definition (switching
 * optimisers resets the state), and SGD files carry none.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "internal.h"

/* PNG-style: a text-mode transfer mangles "\r\n", and 0x1A stops a DOS
 * `type`, so a damaged or mis-transferred file fails at the magic. */
static const unsigned char fa_magic[8] = {'F', 'A', 'N', 'E', 'T', '\r', '\n', 0x1A};

#define FA_FORMAT_VERSION 1u
#define FA_BYTE_ORDER_MARK 0x01020304u
#define FA_BYTE_ORDER_SWAPPED 0x04030201u
#define FA_FLAG_FA_FEEDBACK 1u
#define FA_FLAG_DFA_FEEDBACK 2u

/* Bytes from the start of the file to the end of n_opt_state for L layers;
 * mirrors the field list above.  L < 2^31, so no overflow in uint64_t. */
static uint64_t header_bytes(uint64_t n_layers)
{
    return 8 + 4 + 4 + 4              /* magic, version, mark, n_layers */
           + 4 * (n_layers + 1)       /* sizes */
           + 4 * n_layers             /* activations */
           + 4 * 5                    /* loss, rule, variant, dist, optimizer */
           + 8 + 8 * FA_N_HPARAMS     /* fb_scale, hparams */
           + 8 * (n_layers - 1)       /* dropout */
           + 8 + 8 * 4                /* opt_step, rng */
           + 4 + 8;                   /* flags, n_opt_state */
}

/* ------------------------------------------------------------------ CRC-32 */

/* Table for the reflected IEEE 802.3 polynomial 0xEDB88320, spelled out as a
 * constant so that no lazily built table becomes shared mutable state. */
static const uint32_t crc_table[256] = {
    0x00000000u, 0x77073096u, 0xee0e612cu, 0x990951bau, 0x076dc419u, 0x706af48fu,
    0xe963a535u, 0x9e6495a3u, 0x0edb8832u, 0x79dcb8a4u, 0xe0d5e91eu, 0x97d2d988u,
    0x09b64c2bu, 0x7eb17cbdu, 0xe7b82d07u, 0x90bf1d91u, 0x1db71064u, 0x6ab020f2u,
    0xf3b97148u, 0x84be41deu, 0x1adad47du, 0x6ddde4ebu, 0xf4d4b551u, 0x83d385c7u,
    0x136c9856u, 0x646ba8c0u, 0xfd62f97au, 0x8a65c9ecu, 0x14015c4fu, 0x63066cd9u,
    0xfa0f3d63u, 0x8d080df5u, 0x3b6e20c8u, 0x4c69105eu, 0xd56041e4u, 0xa2677172u,
    0x3c03e4d1u, 0x4b04d447u, 0xd20d85fdu, 0xa50ab56bu, 0x35b5a8fau, 0x42b2986cu,
    0xdbbbc9d6u, 0xacbcf940u, 0x32d86ce3u, 0x45df5c75u, 0xdcd60dcfu, 0xabd13d59u,
    0x26d930acu, 0x51de003au, 0xc8d75180u, 0xbfd06116u, 0x21b4f4b5u, 0x56b3c423u,
    0xcfba9599u, 0xb8bda50fu, 0x2802b89eu, 0x5f058808u, 0xc60cd9b2u, 0xb10be924u,
    0x2f6f7c87u, 0x58684c11u, 0xc1611dabu, 0xb6662d3du, 0x76dc4190u, 0x01db7106u,
    0x98d220bcu, 0xefd5102au, 0x71b18589u, 0x06b6b51fu, 0x9fbfe4a5u, 0xe8b8d433u,
    0x7807c9a2u, 0x0f00f934u, 0x9609a88eu, 0xe10e9818u, 0x7f6a0dbbu, 0x086d3d2du,
    0x91646c97u, 0xe6635c01u, 0x6b6b51f4u, 0x1c6c6162u, 0x856530d8u, 0xf262004eu,
    0x6c0695edu, 0x1b01a57bu, 0x8208f4c1u, 0xf50fc457u, 0x65b0d9c6u, 0x12b7e950u,
    0x8bbeb8eau, 0xfcb9887cu, 0x62dd1ddfu, 0x15da2d49u, 0x8cd37cf3u, 0xfbd44c65u,
    0x4db26158u, 0x3ab551ceu, 0xa3bc0074u, 0xd4bb30e2u, 0x4adfa541u, 0x3dd895d7u,
    0xa4d1c46du, 0xd3d6f4fbu, 0x4369e96au, 0x346ed9fcu, 0xad678846u, 0xda60b8d0u,
    0x44042d73u, 0x33031de5u, 0xaa0a4c5fu, 0xdd0d7cc9u, 0x5005713cu, 0x270241aau,
    0xbe0b1010u, 0xc90c2086u, 0x5768b525u, 0x206f85b3u, 0xb966d409u, 0xce61e49fu,
    0x5edef90eu, 0x29d9c998u, 0xb0d09822u, 0xc7d7a8b4u, 0x59b33d17u, 0x2eb40d81u,
    0xb7bd5c3bu, 0xc0ba6cadu, 0xedb88320u, 0x9abfb3b6u, 0x03b6e20cu, 0x74b1d29au,
    0xead54739u, 0x9dd277afu, 0x04db2615u, 0x73dc1683u, 0xe3630b12u, 0x94643b84u,
    0x0d6d6a3eu, 0x7a6a5aa8u, 0xe40ecf0bu, 0x9309ff9du, 0x0a00ae27u, 0x7d079eb1u,
    0xf00f9344u, 0x8708a3d2u, 0x1e01f268u, 0x6906c2feu, 0xf762575du, 0x806567cbu,
    0x196c3671u, 0x6e6b06e7u, 0xfed41b76u, 0x89d32be0u, 0x10da7a5au, 0x67dd4accu,
    0xf9b9df6fu, 0x8ebeeff9u, 0x17b7be43u, 0x60b08ed5u, 0xd6d6a3e8u, 0xa1d1937eu,
    0x38d8c2c4u, 0x4fdff252u, 0xd1bb67f1u, 0xa6bc5767u, 0x3fb506ddu, 0x48b2364bu,
    0xd80d2bdau, 0xaf0a1b4cu, 0x36034af6u, 0x41047a60u, 0xdf60efc3u, 0xa867df55u,
    0x316e8eefu, 0x4669be79u, 0xcb61b38cu, 0xbc66831au, 0x256fd2a0u, 0x5268e236u,
    0xcc0c7795u, 0xbb0b4703u, 0x220216b9u, 0x5505262fu, 0xc5ba3bbeu, 0xb2bd0b28u,
    0x2bb45a92u, 0x5cb36a04u, 0xc2d7ffa7u, 0xb5d0cf31u, 0x2cd99e8bu, 0x5bdeae1du,
    0x9b64c2b0u, 0xec63f226u, 0x756aa39cu, 0x026d930au, 0x9c0906a9u, 0xeb0e363fu,
    0x72076785u, 0x05005713u, 0x95bf4a82u, 0xe2b87a14u, 0x7bb12baeu, 0x0cb61b38u,
    0x92d28e9bu, 0xe5d5be0du, 0x7cdcefb7u, 0x0bdbdf21u, 0x86d3d2d4u, 0xf1d4e242u,
    0x68ddb3f8u, 0x1fda836eu, 0x81be16cdu, 0xf6b9265bu, 0x6fb077e1u, 0x18b74777u,
    0x88085ae6u, 0xff0f6a70u, 0x66063bcau, 0x11010b5cu, 0x8f659effu, 0xf862ae69u,
    0x616bffd3u, 0x166ccf45u, 0xa00ae278u, 0xd70dd2eeu, 0x4e048354u, 0x3903b3c2u,
    0xa7672661u, 0xd06016f7u, 0x4969474du, 0x3e6e77dbu, 0xaed16a4au, 0xd9d65adcu,
    0x40df0b66u, 0x37d83bf0u, 0xa9bcae53u, 0xdebb9ec5u, 0x47b2cf7fu, 0x30b5ffe9u,
    0xbdbdf21cu, 0xcabac28au, 0x53b39330u, 0x24b4a3a6u, 0xbad03605u, 0xcdd70693u,
    0x54de5729u, 0x23d967bfu, 0xb3667a2eu, 0xc4614ab8u, 0x5d681b02u, 0x2a6f2b94u,
    0xb40bbe37u, 0xc30c8ea1u, 0x5a05df1bu, 0x2d02ef8du,
};

uint32_t fa_crc32(uint32_t crc, const void *data, size_t len)
{
    const unsigned char *p = data;
    /* Pre- and post-inversion make the function continuable: the value
     * returned for a prefix is the right starting value for the rest. */
    uint32_t c = crc ^ 0xFFFFFFFFu;
    for (size_t i = 0; i < len; i++)
        c = crc_table[(c ^ p[i]) & 0xFFu] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

/* Thread-safe strerror: the XSI strerror_r (what _POSIX_C_SOURCE selects). */
static void describe_errno(int err, char *buf, size_t len)
{
    if (strerror_r(err, buf, len) != 0)
        snprintf(buf, len, "error %d", err);
}

/* -------------------------------------------------------------------- save */

/* Writes through stdio and folds every byte into the CRC.  The first failure
 * is kept (with its errno) and later writes are skipped, so the caller checks
 * once at the end instead of after every field. */
typedef struct writer {
    FILE *f;
    uint32_t crc;
    int err;
} writer;

static void put(writer *w, const void *p, size_t n)
{
    if (w->err != 0 || n == 0)
        return;
    w->crc = fa_crc32(w->crc, p, n);
    errno = 0;
    if (fwrite(p, 1, n, w->f) != n)
        w->err = errno != 0 ? errno : EIO;
}

static void put_u32(writer *w, uint32_t v) { put(w, &v, sizeof v); }
static void put_u64(writer *w, uint64_t v) { put(w, &v, sizeof v); }
static void put_f64(writer *w, double v) { put(w, &v, sizeof v); }

static void put_floats(writer *w, const float *p, int64_t count)
{
    if (count > 0)
        put(w, p, (size_t)count * sizeof *p);
}

static void write_model(writer *w, const fa_net *net, int64_t n_opt)
{
    int32_t L = net->n_layers;
    uint32_t flags = 0;

    put(w, fa_magic, sizeof fa_magic);
    put_u32(w, FA_FORMAT_VERSION);
    put_u32(w, FA_BYTE_ORDER_MARK);
    put_u32(w, (uint32_t)L);
    for (int32_t l = 0; l <= L; l++)
        put_u32(w, (uint32_t)net->sizes[l]);
    for (int32_t l = 1; l <= L; l++)
        put_u32(w, (uint32_t)net->act[l]);
    put_u32(w, (uint32_t)net->loss);
    put_u32(w, (uint32_t)net->rule);
    put_u32(w, (uint32_t)net->dfa_variant);
    put_u32(w, (uint32_t)net->fb_dist);
    put_u32(w, (uint32_t)net->optimizer);
    put_f64(w, net->fb_scale);
    for (int i = 0; i < FA_N_HPARAMS; i++)
        put_f64(w, net->hp[i]);
    for (int32_t l = 1; l < L; l++)
        put_f64(w, net->dropout[l]);
    put_u64(w, (uint64_t)net->opt_step);
    for (int i = 0; i < 4; i++)
        put_u64(w, net->rng.s[i]);
    if (net->fb_fa != NULL)
        flags |= FA_FLAG_FA_FEEDBACK;
    if (net->fb_dfa != NULL)
        flags |= FA_FLAG_DFA_FEEDBACK;
    put_u32(w, flags);
    put_u64(w, (uint64_t)n_opt);
    put_floats(w, net->params, net->n_params);
    if (net->fb_fa != NULL)
        put_floats(w, net->fb_fa, net->fb_fa_len);
    if (net->fb_dfa != NULL)
        put_floats(w, net->fb_dfa, net->fb_dfa_len);
    put_floats(w, net->opt_state, n_opt);

    /* The checksum itself is not part of what it covers. */
    if (w->err == 0) {
        uint32_t crc = w->crc;
        errno = 0;
        if (fwrite(&crc, 1, sizeof crc, w->f) != sizeof crc)
            w->err = errno != 0 ? errno : EIO;
    }
}

/* Make the rename itself durable by syncing the directory that holds path
 * (the first plen bytes of buf, which is overwritten).  Best effort: the new
 * file is already complete and in place, and after a crash before this
 * reaches the disk the old file is what remains, also complete. */
static void sync_parent_dir(char *buf, size_t plen)
{
    const char *dir = ".";
    int fd;
    size_t cut = plen;

    while (cut > 0 && buf[cut - 1] != '/')
        cut--;
    if (cut > 0) {
        buf[cut == 1 ? 1 : cut - 1] = '\0'; /* keep "/" for the root */
        dir = buf;
    }
    fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

FA_API int fa_net_save(const fa_net *net, const char *path)
{
    static const char func[] = "fa_net_save";
    static const char suffix[] = ".tmp.XXXXXX";
    const char *what = NULL;
    char *tmp = NULL;
    FILE *f = NULL;
    int fd = -1;
    int created = 0;
    int err = 0;
    size_t plen;
    struct stat st;
    mode_t mode;
    writer w;
    char msg[128];

    if (net == NULL)
        return fa_fail(FA_ERR_NULL, func, "net is NULL");
    if (path == NULL)
        return fa_fail(FA_ERR_NULL, func, "path is NULL");
    if (path[0] == '\0')
        return fa_fail(FA_ERR_IO, func, "cannot save to an empty path");

    plen = strlen(path);
    tmp = malloc(plen + sizeof suffix);
    if (tmp == NULL)
        return fa_fail(FA_ERR_NOMEM, func, "no memory for the temporary file name");
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, suffix, sizeof suffix);

    /* The temporary file sits next to path so that rename() stays within
     * one file system and is atomic: readers see the old file or the new
     * one, never a half-written one. */
    fd = mkstemp(tmp);
    if (fd < 0) {
        err = errno;
        what = "cannot create a temporary file to save";
        goto fail;
    }
    created = 1;

    /* mkstemp creates 0600; a model file is ordinary data, so give it the
     * mode of the file it replaces, or rw-r--r-- if it is new.  Best effort:
     * a file system without permissions does not make the save fail. */
    mode = (stat(path, &st) == 0 && S_ISREG(st.st_mode))
               ? (mode_t)(st.st_mode & 0777)
               : (mode_t)0644;
    (void)fchmod(fd, mode);

    f = fdopen(fd, "wb");
    if (f == NULL) {
        err = errno;
        what = "cannot write";
        goto fail;
    }
    fd = -1; /* now owned by f */

    w.f = f;
    w.crc = 0;
    w.err = 0;
    write_model(&w, net, fa_optimizer_state_len(net));
    if (w.err != 0) {
        err = w.err;
        what = "cannot write";
        goto fail;
    }
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        err = errno;
        what = "cannot write";
        goto fail;
    }
    if (fclose(f) != 0) {
        f = NULL; /* fclose releases the stream even when it fails */
        err = errno;
        what = "cannot write";
        goto fail;
    }
    f = NULL;
    if (rename(tmp, path) != 0) {
        err = errno;
        what = "cannot replace";
        goto fail;
    }
    sync_parent_dir(tmp, plen);
    free(tmp);
    return FA_OK;

fail:
    if (f != NULL)
        fclose(f);
    if (fd >= 0)
        close(fd);
    if (created)
        unlink(tmp);
    free(tmp);
    describe_errno(err != 0 ? err : EIO, msg, sizeof msg);
    return fa_fail(FA_ERR_IO, func, "%s '%s': %s", what, path, msg);
}

/* -------------------------------------------------------------------- load */

/* Bounds-checked cursor over the file image.  A read past the end sets `bad`
 * and yields zeros, so parsing goes on to a checkpoint that reports it; the
 * sizes are checked before the bulk reads, so `bad` marks a bug, not a
 * corrupt file. */
typedef struct reader {
    const unsigned char *p;
    size_t len;
    size_t pos;
    int bad;
} reader;

static void get(reader *r, void *dst, size_t n)
{
    if (r->bad || n > r->len - r->pos) {
        r->bad = 1;
        memset(dst, 0, n);
        return;
    }
    memcpy(dst, r->p + r->pos, n);
    r->pos += n;
}

static uint32_t get_u32(reader *r)
{
    uint32_t v;
    get(r, &v, sizeof v);
    return v;
}

static uint64_t get_u64(reader *r)
{
    uint64_t v;
    get(r, &v, sizeof v);
    return v;
}

static double get_f64(reader *r)
{
    double v;
    get(r, &v, sizeof v);
    return v;
}

static void get_floats(reader *r, float *dst, uint64_t count)
{
    if (count > 0)
        get(r, dst, (size_t)count * sizeof *dst);
}

/* The file's view of the network, read before anything is allocated from
 * it. */
typedef struct header {
    uint32_t n_layers;
    int32_t *sizes;   /* L+1 */
    int32_t *act;     /* L, layers 1..L */
    uint32_t bad_act_layer; /* first layer with an unknown activation, or 0 */
    uint32_t bad_act_value;
    uint32_t loss, rule, dfa_variant, fb_dist, optimizer;
    double fb_scale;
    double hp[FA_N_HPARAMS];
    double *dropout;  /* L+1, [1..L-1] used, as in struct fa_net */
    int64_t opt_step;
    uint64_t rng[4];
    uint32_t flags;
    uint64_t n_opt;
    /* Derived from sizes. */
    uint64_t n_params, fa_len, dfa_len;
} header;

/* Element counts are kept below this, so byte counts (x4) and their sums
 * stay far from overflow and every count fits int64_t. */
#define FA_COUNT_LIMIT ((uint64_t)1 << 58)

static int mul_count(uint64_t a, uint64_t b, uint64_t *r)
{
    if (a != 0 && b > FA_COUNT_LIMIT / a)
        return 0;
    *r = a * b;
    return 1;
}

static int add_count(uint64_t a, uint64_t b, uint64_t *r)
{
    if (b > FA_COUNT_LIMIT - a)
        return 0;
    *r = a + b;
    return 1;
}

/* The magic, checked on as many bytes as the file has: a file shorter than
 * the magic but equal to its start is a truncated model file, anything
 * else is not a model file at all. */
static int check_magic(const unsigned char *p, size_t size, const char *func)
{
    size_t n = size < sizeof fa_magic ? size : sizeof fa_magic;
    if (memcmp(p, fa_magic, n) != 0)
        return fa_fail(FA_ERR_FORMAT, func,
                       "not a feedbackalign model file (bad magic)");
    if (size < sizeof fa_magic)
        return fa_fail(FA_ERR_FORMAT, func,
                       "truncated: expected at least %llu bytes, file has %zu",
                       (unsigned long long)(header_bytes(1) + 4), size);
    return FA_OK;
}

/* Structure of the file: magic, byte order, version, the sizes, and that
 * the file is exactly as long as they say.  Fills h (allocating its arrays,
 * bounded by the file size). */
static int parse_structure(const unsigned char *buf, size_t size, header *h,
                           const char *func)
{
    reader r = {buf, size, 0, 0};
    unsigned char magic[8];
    uint32_t version, mark;
    uint64_t hb, total, fa_len = 0, dfa_len = 0, n_hidden = 0, sum;
    int32_t L;
    int status = check_magic(buf, size, func);

    if (status != FA_OK)
        return status;
    if (size < 20)
        return fa_fail(FA_ERR_FORMAT, func,
                       "truncated: expected at least %llu bytes, file has %zu",
                       (unsigned long long)(header_bytes(1) + 4), size);
    get(&r, magic, sizeof magic);
    version = get_u32(&r);
    mark = get_u32(&r);
    /* The mark first: in a foreign byte order the version reads as a huge
     * number, and "newer version" would be the wrong diagnosis. */
    if (mark == FA_BYTE_ORDER_SWAPPED)
        return fa_fail(FA_ERR_FORMAT, func,
                       "written on a machine of the other byte order");
    if (mark != FA_BYTE_ORDER_MARK)
        return fa_fail(FA_ERR_FORMAT, func, "bad byte-order mark 0x%08lx",
                       (unsigned long)mark);
    if (version == 0)
        return fa_fail(FA_ERR_FORMAT, func, "format version 0 is invalid");
    if (version > FA_FORMAT_VERSION)
        return fa_fail(FA_ERR_FORMAT, func,
                       "format version %lu is newer than this library supports (%u)",
                       (unsigned long)version, FA_FORMAT_VERSION);

    h->n_layers = get_u32(&r);
    if (h->n_layers < 1 || h->n_layers > (uint32_t)INT32_MAX - 1)
        return fa_fail(FA_ERR_FORMAT, func, "n_layers out of range (%lu)",
                       (unsigned long)h->n_layers);
    /* Before any allocation sized by n_layers: the header alone must fit. */
    hb = header_bytes(h->n_layers);
    if (hb + 4 > size)
        return fa_fail(FA_ERR_FORMAT, func,
                       "truncated: expected at least %llu bytes, file has %zu",
                       (unsigned long long)(hb + 4), size);
    L = (int32_t)h->n_layers;

    h->sizes = malloc(((size_t)L + 1) * sizeof *h->sizes);
    h->act = malloc((size_t)L * sizeof *h->act);
    h->dropout = calloc((size_t)L + 1, sizeof *h->dropout);
    if (h->sizes == NULL || h->act == NULL || h->dropout == NULL)
        return fa_fail(FA_ERR_NOMEM, func, "no memory for the header");

    for (int32_t l = 0; l <= L; l++) {
        uint32_t n = get_u32(&r);
        if (n < 1 || n > (uint32_t)INT32_MAX)
            return fa_fail(FA_ERR_FORMAT, func,
                           "layer size n_%ld out of range (%lu)", (long)l,
                           (unsigned long)n);
        h->sizes[l] = (int32_t)n;
    }
    for (int32_t l = 0; l < L; l++) {
        uint32_t a = get_u32(&r);
        /* Kept for check_values, which runs after the checksum. */
        if (a >= FA_N_ACTIVATIONS && h->bad_act_layer == 0) {
            h->bad_act_layer = (uint32_t)l + 1;
            h->bad_act_value = a;
        }
        h->act[l] = a < FA_N_ACTIVATIONS ? (int32_t)a : -1;
    }
    h->loss = get_u32(&r);
    h->rule = get_u32(&r);
    h->dfa_variant = get_u32(&r);
    h->fb_dist = get_u32(&r);
    h->optimizer = get_u32(&r);
    h->fb_scale = get_f64(&r);
    for (int i = 0; i < FA_N_HPARAMS; i++)
        h->hp[i] = get_f64(&r);
    for (int32_t l = 1; l < L; l++)
        h->dropout[l] = get_f64(&r);
    h->opt_step = (int64_t)get_u64(&r);
    for (int i = 0; i < 4; i++)
        h->rng[i] = get_u64(&r);
    h->flags = get_u32(&r);
    h->n_opt = get_u64(&r);
    if (r.bad || r.pos != hb)
        return fa_fail(FA_ERR_FORMAT, func, "header layout inconsistent");

    /* Counts the sizes imply, overflow-checked: a corrupt size must produce
     * an error here, not a wrapped count or a giant allocation later. */
    h->n_params = 0;
    for (int32_t l = 1; l <= L; l++) {
        uint64_t nw;
        if (!mul_count((uint64_t)h->sizes[l], (uint64_t)h->sizes[l - 1], &nw) ||
            !add_count(h->n_params, nw, &sum) ||
            !add_count(sum, (uint64_t)h->sizes[l], &h->n_params))
            return fa_fail(FA_ERR_FORMAT, func,
                           "layer sizes too large (parameter count overflows)");
        if (l >= 2 && !add_count(fa_len, nw, &fa_len))
            return fa_fail(FA_ERR_FORMAT, func,
                           "layer sizes too large (feedback size overflows)");
        if (l < L && !add_count(n_hidden, (uint64_t)h->sizes[l], &n_hidden))
            return fa_fail(FA_ERR_FORMAT, func,
                           "layer sizes too large (hidden width overflows)");
    }
    if (!mul_count((uint64_t)h->sizes[L], n_hidden, &dfa_len))
        return fa_fail(FA_ERR_FORMAT, func,
                       "layer sizes too large (DFA feedback size overflows)");
    h->fa_len = fa_len;
    h->dfa_len = dfa_len;

    if ((h->flags & ~(FA_FLAG_FA_FEEDBACK | FA_FLAG_DFA_FEEDBACK)) != 0)
        return fa_fail(FA_ERR_FORMAT, func, "unknown flags 0x%08lx",
                       (unsigned long)h->flags);
    if (h->n_opt > 2 * h->n_params)
        return fa_fail(FA_ERR_FORMAT, func,
                       "optimiser state length %llu out of range (at most %llu)",
                       (unsigned long long)h->n_opt,
                       (unsigned long long)(2 * h->n_params));

    total = h->n_params;
    if ((h->flags & FA_FLAG_FA_FEEDBACK) != 0)
        total += fa_len;
    if ((h->flags & FA_FLAG_DFA_FEEDBACK) != 0)
        total += dfa_len;
    total += h->n_opt; /* each term < 2^59: no overflow */
    total = hb + 4 * total + 4;
    if (total > size)
        return fa_fail(FA_ERR_FORMAT, func,
                       "truncated: expected %llu bytes, file has %zu",
                       (unsigned long long)total, size);
    if (total < size)
        return fa_fail(FA_ERR_FORMAT, func,
                       "trailing bytes: expected %llu bytes, file has %zu",
                       (unsigned long long)total, size);
    return FA_OK;
}

/* Values that the structure does not constrain: enums, hyperparameters,
 * dropout rates, step count, RNG state. */
static int check_values(const header *h, const char *func)
{
    int32_t L = (int32_t)h->n_layers;

    if (h->bad_act_layer != 0)
        return fa_fail(FA_ERR_FORMAT, func,
                       "activation of layer %lu out of range (%lu)",
                       (unsigned long)h->bad_act_layer,
                       (unsigned long)h->bad_act_value);
    if (h->loss >= FA_N_LOSSES)
        return fa_fail(FA_ERR_FORMAT, func, "loss out of range (%lu)",
                       (unsigned long)h->loss);
    if (h->rule >= FA_N_RULES)
        return fa_fail(FA_ERR_FORMAT, func, "rule out of range (%lu)",
                       (unsigned long)h->rule);
    if (h->dfa_variant > FA_DFA_BEFORE_ACTIVATION)
        return fa_fail(FA_ERR_FORMAT, func, "DFA variant out of range (%lu)",
                       (unsigned long)h->dfa_variant);
    if (h->fb_dist >= FA_N_DISTRIBUTIONS)
        return fa_fail(FA_ERR_FORMAT, func,
                       "feedback distribution out of range (%lu)",
                       (unsigned long)h->fb_dist);
    if (h->optimizer >= FA_N_OPTIMIZERS)
        return fa_fail(FA_ERR_FORMAT, func, "optimizer out of range (%lu)",
                       (unsigned long)h->optimizer);
    if (!fa_scale_valid(h->fb_scale))
        return fa_fail(FA_ERR_FORMAT, func, "feedback scale out of range (%g)",
                       h->fb_scale);
    for (int i = 0; i < FA_N_HPARAMS; i++) {
        const char *want = "";
        if (!fa_hparam_valid(i, h->hp[i], &want))
            return fa_fail(FA_ERR_FORMAT, func,
                           "hyperparameter %d, %s, out of range (%g): expected %s", i,
                           fa_hparam_name(i), h->hp[i], want);
    }
    for (int32_t l = 1; l < L; l++) {
        double p = h->dropout[l];
        if (!(p >= 0.0 && p < 1.0))
            return fa_fail(FA_ERR_FORMAT, func,
                           "dropout of layer %ld out of range (%g)", (long)l, p);
    }
    if (h->opt_step < 0)
        return fa_fail(FA_ERR_FORMAT, func, "optimiser step count is negative");
    /* xoshiro256** never reaches the all-zero state and never leaves it. */
    if ((h->rng[0] | h->rng[1] | h->rng[2] | h->rng[3]) == 0)
        return fa_fail(FA_ERR_FORMAT, func, "RNG state is all zero");
    /* A saved network under FA/DFA always has that rule's feedback drawn,
     * unless it has none (one layer: no hidden error to feed back). */
    if (h->rule == FA_RULE_FA && h->fa_len > 0 &&
        (h->flags & FA_FLAG_FA_FEEDBACK) == 0)
        return fa_fail(FA_ERR_FORMAT, func,
                       "rule is FA but the file has no FA feedback block");
    if (h->rule == FA_RULE_DFA && h->dfa_len > 0 &&
        (h->flags & FA_FLAG_DFA_FEEDBACK) == 0)
        return fa_fail(FA_ERR_FORMAT, func,
                       "rule is DFA but the file has no DFA feedback block");
    return FA_OK;
}

/* Allocate one feedback block through net.c and fill it from the file. */
static int load_feedback(fa_net *net, reader *r, int32_t rule,
                         uint64_t expect, const char *func)
{
    const char *name = rule == FA_RULE_FA ? "FA" : "DFA";
    float *block;
    int64_t len, bad;
    int status = fa_net_alloc_feedback(net, rule, func);

    if (status != FA_OK)
        return status;
    block = rule == FA_RULE_FA ? net->fb_fa : net->fb_dfa;
    len = rule == FA_RULE_FA ? net->fb_fa_len : net->fb_dfa_len;
    if ((uint64_t)len != expect || (len > 0 && block == NULL))
        return fa_fail(FA_ERR_FORMAT, func,
                       "%s feedback block has %llu floats, the network needs %lld",
                       name, (unsigned long long)expect, (long long)len);
    get_floats(r, block, expect);
    bad = fa_find_nonfinite(block, len);
    if (bad >= 0)
        return fa_fail(FA_ERR_FORMAT, func,
                       "%s feedback entry %lld is not finite", name,
                       (long long)bad);
    return FA_OK;
}

/* Build the network from a file image whose structure has been checked. */
static int build_net(const unsigned char *buf, size_t size, const header *h,
                     fa_net **out, const char *func)
{
    reader r = {buf, size, 0, 0};
    fa_net *net = NULL;
    int32_t L = (int32_t)h->n_layers;
    int64_t bad, state_len;
    int status;

    status = fa_net_alloc(&net, L, h->sizes, h->act, (int32_t)h->loss, func);
    if (status != FA_OK) {
        /* net.c rejects what fa_net_create would (e.g. a fused loss without
         * an identity output layer); in a file that is a format error.
         * Copy the message first: fa_fail writes the same buffer. */
        char why[384];
        const char *m = fa_last_error();
        size_t skip = strlen(func);
        net = NULL;
        if (status == FA_ERR_NOMEM)
            return status;
        if (strncmp(m, func, skip) == 0 && m[skip] == ':' && m[skip + 1] == ' ')
            m += skip + 2;
        snprintf(why, sizeof why, "%s", m);
        return fa_fail(FA_ERR_FORMAT, func, "architecture rejected: %s", why);
    }
    if ((uint64_t)net->n_params != h->n_params) {
        status = fa_fail(FA_ERR_FORMAT, func,
                         "parameter count %llu does not match the network's %lld",
                         (unsigned long long)h->n_params,
                         (long long)net->n_params);
        goto fail;
    }

    net->rule = (int32_t)h->rule;
    net->dfa_variant = (int32_t)h->dfa_variant;
    net->fb_dist = (int32_t)h->fb_dist;
    net->fb_scale = h->fb_scale;
    net->optimizer = (int32_t)h->optimizer;
    for (int i = 0; i < FA_N_HPARAMS; i++)
        net->hp[i] = h->hp[i];
    for (int32_t l = 1; l < L; l++)
        net->dropout[l] = h->dropout[l];
    net->opt_step = h->opt_step;
    for (int i = 0; i < 4; i++)
        net->rng.s[i] = h->rng[i];

    state_len = fa_optimizer_state_len(net);
    if ((uint64_t)state_len != h->n_opt) {
        status = fa_fail(FA_ERR_FORMAT, func,
                         "optimiser state has %llu floats, optimizer %ld needs %lld",
                         (unsigned long long)h->n_opt, (long)h->optimizer,
                         (long long)state_len);
        goto fail;
    }

    /* The float blocks start right after the header. */
    r.pos = (size_t)header_bytes(h->n_layers);
    get_floats(&r, net->params, h->n_params);
    bad = fa_find_nonfinite(net->params, net->n_params);
    if (bad >= 0) {
        status = fa_fail(FA_ERR_FORMAT, func, "parameter %lld is not finite",
                         (long long)bad);
        goto fail;
    }
    if ((h->flags & FA_FLAG_FA_FEEDBACK) != 0) {
        status = load_feedback(net, &r, FA_RULE_FA, h->fa_len, func);
        if (status != FA_OK)
            goto fail;
    }
    if ((h->flags & FA_FLAG_DFA_FEEDBACK) != 0) {
        status = load_feedback(net, &r, FA_RULE_DFA, h->dfa_len, func);
        if (status != FA_OK)
            goto fail;
    }
    get_floats(&r, net->opt_state, h->n_opt);
    bad = fa_find_nonfinite(net->opt_state, state_len);
    if (bad >= 0) {
        status = fa_fail(FA_ERR_FORMAT, func,
                         "optimiser state entry %lld is not finite", (long long)bad);
        goto fail;
    }
    /* Second moments are sums of squares: a negative one would make the
     * next step take the square root of a negative number. */
    if (net->optimizer == FA_OPT_ADAM || net->optimizer == FA_OPT_RMSPROP) {
        int64_t from = net->optimizer == FA_OPT_ADAM ? net->n_params : 0;
        for (int64_t i = from; i < state_len; i++) {
            if (net->opt_state[i] < 0.0f) {
                status = fa_fail(FA_ERR_FORMAT, func,
                                 "optimiser second moment %lld is negative",
                                 (long long)(i - from));
                goto fail;
            }
        }
    }
    if (r.bad || r.pos != size - 4) {
        status = fa_fail(FA_ERR_FORMAT, func, "body layout inconsistent");
        goto fail;
    }
    *out = net;
    return FA_OK;

fail:
    fa_net_free(net);
    return status;
}

static int parse_file(const unsigned char *buf, size_t size, fa_net **out,
                      const char *func)
{
    header h;
    uint32_t stored, computed;
    int status;

    memset(&h, 0, sizeof h);
    status = parse_structure(buf, size, &h, func);
    if (status != FA_OK)
        goto done;
    /* The structure holds, so size >= header + 4 and the CRC sits in the
     * last 4 bytes. */
    memcpy(&stored, buf + size - 4, sizeof stored);
    computed = fa_crc32(0, buf, size - 4);
    if (stored != computed) {
        status = fa_fail(FA_ERR_FORMAT, func,
                         "checksum mismatch (stored 0x%08lx, computed 0x%08lx)",
                         (unsigned long)stored, (unsigned long)computed);
        goto done;
    }
    status = check_values(&h, func);
    if (status != FA_OK)
        goto done;
    status = build_net(buf, size, &h, out, func);

done:
    free(h.sizes);
    free(h.act);
    free(h.dropout);
    return status;
}

FA_API int fa_net_load(fa_net **out, const char *path)
{
    static const char func[] = "fa_net_load";
    unsigned char *buf = NULL;
    FILE *f = NULL;
    struct stat st;
    unsigned char magic[sizeof fa_magic];
    int fd;
    size_t size, have, prefix;
    int status;
    char msg[128];

    if (out == NULL)
        return fa_fail(FA_ERR_NULL, func, "out is NULL");
    *out = NULL;
    if (path == NULL)
        return fa_fail(FA_ERR_NULL, func, "path is NULL");

    /* O_NONBLOCK so that a FIFO without a writer is refused below instead
     * of blocking the caller forever; it has no effect on regular files. */
    fd = open(path, O_RDONLY | O_NONBLOCK);
    if (fd < 0) {
        describe_errno(errno, msg, sizeof msg);
        return fa_fail(FA_ERR_IO, func, "cannot open '%s': %s", path, msg);
    }
    if (fstat(fd, &st) != 0) {
        describe_errno(errno, msg, sizeof msg);
        close(fd);
        return fa_fail(FA_ERR_IO, func, "cannot stat '%s': %s", path, msg);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return fa_fail(FA_ERR_IO, func, "'%s' is not a regular file", path);
    }
    f = fdopen(fd, "rb");
    if (f == NULL) {
        describe_errno(errno, msg, sizeof msg);
        close(fd);
        return fa_fail(FA_ERR_IO, func, "cannot open '%s': %s", path, msg);
    }
    if (st.st_size < 0 || (uintmax_t)st.st_size > (uintmax_t)(SIZE_MAX / 2)) {
        status = fa_fail(FA_ERR_FORMAT, func,
                         "'%s' is too large to be a model file", path);
        goto done;
    }
    size = (size_t)st.st_size;

    /* Allocate a buffer the size of the file only once its first bytes look
     * like a model file: loading the wrong (large) file fails cheaply. */
    prefix = size < sizeof magic ? size : sizeof magic;
    have = fread(magic, 1, prefix, f);
    if (have != prefix) {
        describe_errno(ferror(f) ? errno : EIO, msg, sizeof msg);
        status = fa_fail(FA_ERR_IO, func, "cannot read '%s': %s", path, msg);
        goto done;
    }
    status = check_magic(magic, size, func);
    if (status != FA_OK)
        goto done;
    buf = malloc(size);
    if (buf == NULL) {
        status = fa_fail(FA_ERR_NOMEM, func, "no memory for a %zu-byte file", size);
        goto done;
    }
    memcpy(buf, magic, prefix);
    have += fread(buf + prefix, 1, size - prefix, f);
    if (have != size) {
        if (ferror(f)) {
            describe_errno(errno, msg, sizeof msg);
            status = fa_fail(FA_ERR_IO, func, "cannot read '%s': %s", path, msg);
        } else {
            status = fa_fail(FA_ERR_IO, func,
                             "'%s' shrank while being read (%zu of %zu bytes)",
                             path, have, size);
        }
        goto done;
    }
    status = parse_file(buf, size, out, func);

done:
    free(buf);
    fclose(f);
    return status;
}
