/*
 * image.c -- the model image: a network as bytes, written by
 * fa_net_save_image (and fa_net_save, fa_net_clone) and read back by
 * fa_net_load_image (and fa_net_load).
 *
 * Format version 2.  Every multi-byte field is in the byte order of the
 * machine that wrote it; the byte-order mark lets a reader of the other
 * order say so.  Fields in order (L = n_layers; u32/i64/u64 integers, f64
 * IEEE double, f32 IEEE float):
 *
 *   magic         8 bytes  'F' 'A' 'N' 'E' 'T' '\r' '\n' 0x1A
 *   version       u32      2
 *   byte order    u32      0x01020304
 *   n_layers      u32      L >= 1
 *   input         u32 x 3  channels, height, width
 *   layers        u32 x 7 per layer: kind, units, kernel_h, kernel_w, stride,
 *                          pad, activation (fa_spec_layer's fields)
 *   loss, rule, dfa_variant, fb_dist, optimizer    u32 each
 *   fb_scale      f64      (0 = FA_SCALE_AUTO)
 *   n_hparams     u32      hyperparameters that follow (13 here; fewer from
 *                          an older writer: the rest take their defaults)
 *   hparams       f64 x n_hparams, indexed by fa_hparam
 *   dropout       f64 x (L-1)   hidden layers 1..L-1
 *   opt_step      i64      the optimiser's step count
 *   rng           u64 x 4  model stream (xoshiro256** state)
 *   rng_dropout   u64 x 4  dropout stream
 *   n_feedback    u32      feedback blocks that follow the parameters
 *   n_opt_state   u64      floats of optimiser state (0, n_params or
 *                          2 n_params, as the optimiser uses)
 *   params        f32 x n_params      [W_1|b_1|...|W_L|b_L]
 *   feedback      n_feedback x { rule u32, count u64, f32 x count }: the
 *                          stored matrices of each rule drawn so far, in
 *                          the rule's layout (src/feedback.c)
 *   opt state     f32 x n_opt_state
 *   crc           u32      CRC-32 of every byte before it
 *
 * Version 1 (library 0.1: dense layers, rules BP/FA/DFA, one RNG stream)
 * is still read: its header holds sizes and activations in place of the
 * layer records, 8 hyperparameters, one RNG state, and a flags word (bit 0
 * FA feedback, bit 1 DFA feedback) in place of the feedback blocks.
 *
 * Reading checks, in this order, so that the message names the real
 * fault: the structure (magic, version, byte order, that the file is
 * exactly as long as its counts say, before any count is trusted for an
 * allocation), then the checksum, then every value (enum ranges,
 * hyperparameter ranges, finiteness, which blocks the rule needs).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* PNG-style: a text-mode transfer mangles "\r\n", and 0x1A stops a DOS
 * `type`, so a damaged or mis-transferred file fails at the magic. */
static const unsigned char fa_magic[8] = {'F', 'A', 'N', 'E', 'T', '\r', '\n', 0x1A};

#define FA_FORMAT_VERSION 2u
#define FA_BYTE_ORDER_MARK 0x01020304u
#define FA_BYTE_ORDER_SWAPPED 0x04030201u
#define V1_FLAG_FA 1u
#define V1_FLAG_DFA 2u
#define V1_HPARAMS 8

/* ------------------------------------------------------------- writing */

/* One writer, three sinks: a memory buffer, a FILE, or neither (counting
 * the size).  The first error (with its errno) is kept and later writes
 * skipped, so the caller checks once at the end. */
struct fa_image_writer {
    unsigned char *buf;
    FILE *f;
    size_t pos;
    uint32_t crc;
    int err;
};

static void put(fa_image_writer *w, const void *p, size_t n)
{
    if (n == 0 || w->err)
        return;
    if (w->buf || w->f)
        w->crc = fa_crc32(w->crc, p, n);
    if (w->buf) {
        memcpy(w->buf + w->pos, p, n);
    } else if (w->f) {
        errno = 0;
        if (fwrite(p, 1, n, w->f) != n)
            w->err = errno != 0 ? errno : EIO;
    }
    w->pos += n;
}

static void put_u32(fa_image_writer *w, uint32_t v) { put(w, &v, sizeof v); }
static void put_u64(fa_image_writer *w, uint64_t v) { put(w, &v, sizeof v); }
static void put_f64(fa_image_writer *w, double v) { put(w, &v, sizeof v); }

static void put_floats(fa_image_writer *w, const float *p, int64_t count)
{
    if (count > 0)
        put(w, p, (size_t)count * sizeof *p);
}

static void write_image(fa_image_writer *w, const fa_net *net)
{
    const int32_t L = net->n_layers;
    const int64_t n_opt = fa_optimizer_state_len(net);
    uint32_t n_fb = 0;
    for (int32_t r = 0; r < FA_N_RULES; r++)
        n_fb += net->fb[r] != NULL;

    put(w, fa_magic, sizeof fa_magic);
    put_u32(w, FA_FORMAT_VERSION);
    put_u32(w, FA_BYTE_ORDER_MARK);
    put_u32(w, (uint32_t)L);
    put_u32(w, (uint32_t)net->in_c);
    put_u32(w, (uint32_t)net->in_h);
    put_u32(w, (uint32_t)net->in_w);
    for (int32_t l = 1; l <= L; l++) {
        const fa_layer *ly = &net->layers[l];
        const int32_t rec[7] = {ly->kind, ly->units, ly->kh, ly->kw, ly->stride, ly->pad,
                                ly->act};
        for (int i = 0; i < 7; i++)
            put_u32(w, (uint32_t)rec[i]);
    }
    put_u32(w, (uint32_t)net->loss);
    put_u32(w, (uint32_t)net->rule);
    put_u32(w, (uint32_t)net->dfa_variant);
    put_u32(w, (uint32_t)net->fb_dist);
    put_u32(w, (uint32_t)net->optimizer);
    put_f64(w, net->fb_scale);
    put_u32(w, FA_N_HPARAMS);
    for (int i = 0; i < FA_N_HPARAMS; i++)
        put_f64(w, net->hp[i]);
    for (int32_t l = 1; l < L; l++)
        put_f64(w, net->layers[l].dropout);
    put_u64(w, (uint64_t)net->opt_step);
    for (int i = 0; i < 4; i++)
        put_u64(w, net->rng.s[i]);
    for (int i = 0; i < 4; i++)
        put_u64(w, net->rng_drop.s[i]);
    put_u32(w, n_fb);
    put_u64(w, (uint64_t)n_opt);
    put_floats(w, net->params, net->n_params);
    for (int32_t r = 0; r < FA_N_RULES; r++) {
        if (!net->fb[r])
            continue;
        put_u32(w, (uint32_t)r);
        put_u64(w, (uint64_t)fa_feedback_len(net, r));
        put_floats(w, net->fb[r], fa_feedback_len(net, r));
    }
    put_floats(w, net->opt_state, n_opt);
    /* The checksum itself is not part of what it covers. */
    uint32_t crc = w->crc;
    put(w, &crc, sizeof crc);
}

int64_t fa_image_size(const fa_net *net)
{
    fa_image_writer w = {NULL, NULL, 0, 0, 0};
    write_image(&w, net);
    return (int64_t)w.pos;
}

int fa_image_write_file(const fa_net *net, FILE *f)
{
    fa_image_writer w = {NULL, f, 0, 0, 0};
    write_image(&w, net);
    return w.err;
}

FA_API int fa_net_save_image(const fa_net *net, void *buf, int64_t len, int64_t *needed)
{
    static const char fn[] = "fa_net_save_image";
    int rc = fa_check_net(net, fn);
    if (rc)
        return rc;
    if (!buf && len != 0)
        return fa_fail(FA_ERR_NULL, fn, "buf is NULL with len = %lld (pass len 0 to query "
                       "the size)", (long long)len);
    const int64_t size = fa_image_size(net);
    if (needed)
        *needed = size;
    if (!buf)
        return FA_OK;
    if (len < size)
        return fa_fail(FA_ERR_SIZE, fn, "len = %lld, the image needs %lld bytes",
                       (long long)len, (long long)size);
    fa_image_writer w = {buf, NULL, 0, 0, 0};
    write_image(&w, net);
    return FA_OK;
}

/* ------------------------------------------------------------- reading */

/* Bounds-checked cursor over the image.  A read past the end sets `bad` and
 * yields zeros, so parsing goes on to a checkpoint that reports it. */
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

/* One feedback block as the structural pass found it. */
typedef struct fb_block {
    uint32_t rule;
    uint64_t count;
    size_t pos; /* of its floats */
} fb_block;

/* The image's view of the network, read before anything is built. */
typedef struct header {
    uint32_t version;
    fa_spec *spec;
    int spec_status;        /* why the layers did not resolve, or FA_OK */
    char spec_error[400];
    uint32_t loss, rule, dfa_variant, fb_dist, optimizer;
    double fb_scale;
    uint32_t n_hp;
    double hp[FA_N_HPARAMS];
    double *dropout;        /* L+1, [1..L-1] used */
    int64_t opt_step;
    uint64_t rng[4], rng_drop[4];
    int has_drop_stream;
    uint32_t v1_flags;
    uint32_t n_fb;
    fb_block *fb;
    uint64_t n_opt;
    size_t params_pos, opt_pos;
} header;

/* Element counts are kept below this, so byte counts (x4) and their sums
 * stay far from overflow and every count fits int64_t. */
#define FA_COUNT_LIMIT ((uint64_t)1 << 58)

static int truncated(size_t want, size_t size, const char *fn)
{
    return fa_fail(FA_ERR_FORMAT, fn, "truncated: expected %s%zu bytes, the image has %zu",
                   want > size ? "" : "at least ", want, size);
}

/* The magic, checked on as many bytes as there are: an image shorter than
 * the magic but equal to its start is a truncated model image, anything
 * else is not a model image at all. */
int fa_image_check_magic(const unsigned char *p, size_t size, const char *fn)
{
    size_t n = size < sizeof fa_magic ? size : sizeof fa_magic;
    if (memcmp(p, fa_magic, n) != 0)
        return fa_fail(FA_ERR_FORMAT, fn, "not a feedbackalign model file (bad magic)");
    if (size < 20)
        return truncated(20, size, fn);
    return FA_OK;
}

/* Build the spec from the layer records (v2) or sizes/activations (v1).
 * A failure is kept in h->spec_status: on a corrupt image the checksum is
 * the better diagnosis, so it is reported only if the checksum holds. */
static void read_spec(reader *r, header *h, uint32_t L, const char *fn)
{
    fa_spec *spec = NULL;
    int rc;
    if (h->version == 1) {
        uint32_t *sz = malloc(((size_t)L + 1) * sizeof *sz);
        if (!sz) {
            h->spec_status = fa_fail(FA_ERR_NOMEM, fn, "no memory for the header");
            return;
        }
        for (uint32_t l = 0; l <= L; l++)
            sz[l] = get_u32(r);
        rc = fa_spec_create(&spec, sz[0] > INT32_MAX ? -1 : (int32_t)sz[0], 1, 1);
        /* every record is read, also after a failure: the fields after
         * them must be read from where they are */
        for (uint32_t l = 1; l <= L; l++) {
            uint32_t act = get_u32(r);
            fa_layer_spec s = {FA_LAYER_DENSE, sz[l] > INT32_MAX ? -1 : (int32_t)sz[l], 0, 0,
                               0, 0, act >= FA_N_ACTIVATIONS ? -1 : (int32_t)act};
            if (rc == FA_OK)
                rc = fa_spec_append(spec, &s, fn);
        }
        free(sz);
    } else {
        int32_t in[3];
        for (int i = 0; i < 3; i++) {
            uint32_t v = get_u32(r);
            in[i] = v > INT32_MAX ? -1 : (int32_t)v;
        }
        rc = fa_spec_create(&spec, in[0], in[1], in[2]);
        for (uint32_t l = 1; l <= L; l++) {
            int32_t rec[7];
            for (int i = 0; i < 7; i++) {
                uint32_t v = get_u32(r);
                rec[i] = v > INT32_MAX ? -1 : (int32_t)v;
            }
            fa_layer_spec s = {rec[0], rec[1], rec[2], rec[3], rec[4], rec[5], rec[6]};
            if (rc == FA_OK)
                rc = fa_spec_append(spec, &s, fn);
        }
    }
    h->spec_status = rc;
    if (rc != FA_OK) {
        /* keep the builder's message without its "function: " prefix */
        const char *m = fa_last_error();
        const char *colon = strstr(m, ": ");
        snprintf(h->spec_error, sizeof h->spec_error, "%s", colon ? colon + 2 : m);
        fa_spec_free(spec);
        return;
    }
    h->spec = spec;
}

/* Bytes from the start to the parameters, for L layers and n_hp
 * hyperparameters (v2) -- so that the header alone is known to fit before
 * anything sized by L is allocated. */
static uint64_t header_bytes(uint32_t version, uint64_t L, uint64_t n_hp)
{
    if (version == 1)
        return 20 + 4 * (L + 1) + 4 * L + 20 + 8 + 8 * V1_HPARAMS + 8 * (L - 1) + 8 + 32 + 4 + 8;
    return 20 + 12 + 28 * L + 20 + 8 + 4 + 8 * n_hp + 8 * (L - 1) + 8 + 64 + 4 + 8;
}

/* The structure: version, byte order, the spec, and that the image is
 * exactly as long as its counts say. */
static int parse_structure(const unsigned char *buf, size_t size, header *h, const char *fn)
{
    reader r = {buf, size, 8, 0};
    int rc = fa_image_check_magic(buf, size, fn);
    if (rc)
        return rc;
    h->version = get_u32(&r);
    uint32_t mark = get_u32(&r);
    /* The mark first: in a foreign byte order the version reads as a huge
     * number, and "newer version" would be the wrong diagnosis. */
    if (mark == FA_BYTE_ORDER_SWAPPED)
        return fa_fail(FA_ERR_FORMAT, fn, "written on a machine of the other byte order");
    if (mark != FA_BYTE_ORDER_MARK)
        return fa_fail(FA_ERR_FORMAT, fn, "bad byte-order mark 0x%08lx", (unsigned long)mark);
    if (h->version == 0)
        return fa_fail(FA_ERR_FORMAT, fn, "format version 0 is invalid");
    if (h->version > FA_FORMAT_VERSION)
        return fa_fail(FA_ERR_FORMAT, fn, "format version %lu is newer than this library "
                       "supports (%u)", (unsigned long)h->version, FA_FORMAT_VERSION);
    const uint32_t L = get_u32(&r);
    if (L < 1 || L > 100000)
        return fa_fail(FA_ERR_FORMAT, fn, "n_layers out of range (%lu)", (unsigned long)L);
    /* Before anything sized by L: the header alone must fit. */
    uint64_t hb = header_bytes(h->version, L, 0);
    if (hb + 4 > size)
        return truncated((size_t)(hb + 4), size, fn);
    read_spec(&r, h, L, fn);
    if (h->spec_status == FA_ERR_NOMEM)
        return FA_ERR_NOMEM;
    h->dropout = calloc((size_t)L + 1, sizeof *h->dropout);
    if (!h->dropout)
        return fa_fail(FA_ERR_NOMEM, fn, "no memory for the header");
    h->loss = get_u32(&r);
    h->rule = get_u32(&r);
    h->dfa_variant = get_u32(&r);
    h->fb_dist = get_u32(&r);
    h->optimizer = get_u32(&r);
    h->fb_scale = get_f64(&r);
    h->n_hp = h->version == 1 ? V1_HPARAMS : get_u32(&r);
    if (h->n_hp > FA_N_HPARAMS)
        return fa_fail(FA_ERR_FORMAT, fn, "the image has %lu hyperparameters, this library "
                       "knows %d (written by a newer library?)", (unsigned long)h->n_hp,
                       FA_N_HPARAMS);
    hb = header_bytes(h->version, L, h->n_hp);
    if (hb + 4 > size)
        return truncated((size_t)(hb + 4), size, fn);
    for (uint32_t i = 0; i < h->n_hp; i++)
        h->hp[i] = get_f64(&r);
    for (uint32_t l = 1; l < L; l++)
        h->dropout[l] = get_f64(&r);
    h->opt_step = (int64_t)get_u64(&r);
    for (int i = 0; i < 4; i++)
        h->rng[i] = get_u64(&r);
    if (h->version >= 2) {
        for (int i = 0; i < 4; i++)
            h->rng_drop[i] = get_u64(&r);
        h->has_drop_stream = 1;
        h->n_fb = get_u32(&r);
    } else {
        h->v1_flags = get_u32(&r);
    }
    h->n_opt = get_u64(&r);
    if (r.bad || r.pos != hb)
        return fa_fail(FA_ERR_FORMAT, fn, "header layout inconsistent");
    if (h->spec_status != FA_OK)
        return FA_OK; /* sizes unknown: the checksum decides what to report */

    const uint64_t n_params = (uint64_t)h->spec->n_params;
    if (h->n_opt > 2 * n_params)
        return fa_fail(FA_ERR_FORMAT, fn, "optimiser state length %llu out of range (at most "
                       "%llu)", (unsigned long long)h->n_opt,
                       (unsigned long long)(2 * n_params));
    h->params_pos = (size_t)hb;
    if (h->version == 1) {
        if ((h->v1_flags & ~(V1_FLAG_FA | V1_FLAG_DFA)) != 0)
            return fa_fail(FA_ERR_FORMAT, fn, "unknown flags 0x%08lx",
                           (unsigned long)h->v1_flags);
        h->n_fb = ((h->v1_flags & V1_FLAG_FA) != 0) + ((h->v1_flags & V1_FLAG_DFA) != 0);
    }
    /* Walk the feedback blocks: each count is checked against what is left
     * before it is used, so no count is trusted unchecked. */
    if (h->n_fb > FA_N_RULES)
        return fa_fail(FA_ERR_FORMAT, fn, "%lu feedback blocks, at most %d rules have any",
                       (unsigned long)h->n_fb, FA_N_RULES);
    h->fb = calloc(h->n_fb ? h->n_fb : 1, sizeof *h->fb);
    if (!h->fb)
        return fa_fail(FA_ERR_NOMEM, fn, "no memory for the header");
    uint64_t pos = hb + 4 * n_params;
    if (pos + 4 > size)
        return truncated((size_t)(pos + 4 * h->n_opt + 4), size, fn);
    for (uint32_t i = 0; i < h->n_fb; i++) {
        fb_block *b = &h->fb[i];
        if (h->version == 1) {
            /* v1: the FA block (F_2..F_L) then the DFA block, implied */
            b->rule = (i == 0 && (h->v1_flags & V1_FLAG_FA)) ? FA_RULE_FA : FA_RULE_DFA;
            b->count = 0;
            for (uint32_t l = 1; l <= L; l++) {
                const fa_layer_spec *s = &h->spec->layers[l - 1];
                const int32_t *in = h->spec->shape + 3 * (l - 1);
                if (b->rule == FA_RULE_FA && l >= 2)
                    b->count += (uint64_t)s->units * (uint64_t)in[0];
                if (b->rule == FA_RULE_DFA && l < L)
                    b->count += (uint64_t)s->units * (uint64_t)h->spec->layers[L - 1].units;
            }
        } else {
            if (pos + 12 > size)
                return truncated((size_t)(pos + 12), size, fn);
            r.pos = (size_t)pos;
            b->rule = get_u32(&r);
            b->count = get_u64(&r);
            pos += 12;
        }
        if (b->count > FA_COUNT_LIMIT || pos + 4 * b->count + 4 > size)
            return truncated(b->count > FA_COUNT_LIMIT ? SIZE_MAX : (size_t)(pos + 4 * b->count
                                                                               + 4),
                             size, fn);
        b->pos = (size_t)pos;
        pos += 4 * b->count;
    }
    h->opt_pos = (size_t)pos;
    const uint64_t total = pos + 4 * h->n_opt + 4;
    if (total > size)
        return truncated((size_t)total, size, fn);
    if (total < size)
        return fa_fail(FA_ERR_FORMAT, fn, "trailing bytes: expected %llu bytes, the image has "
                       "%zu", (unsigned long long)total, size);
    return FA_OK;
}

/* Values the structure does not constrain. */
static int check_values(const header *h, const char *fn)
{
    if (h->spec_status != FA_OK)
        return fa_fail(FA_ERR_FORMAT, fn, "architecture rejected: %s", h->spec_error);
    const int32_t L = h->spec->n;
    if (h->loss >= FA_N_LOSSES)
        return fa_fail(FA_ERR_FORMAT, fn, "loss out of range (%lu)", (unsigned long)h->loss);
    if (h->rule >= FA_N_RULES)
        return fa_fail(FA_ERR_FORMAT, fn, "rule out of range (%lu)", (unsigned long)h->rule);
    if (h->dfa_variant >= FA_N_DFA_VARIANTS)
        return fa_fail(FA_ERR_FORMAT, fn, "DFA variant out of range (%lu)",
                       (unsigned long)h->dfa_variant);
    if (h->fb_dist >= FA_N_DISTRIBUTIONS)
        return fa_fail(FA_ERR_FORMAT, fn, "feedback distribution out of range (%lu)",
                       (unsigned long)h->fb_dist);
    if (h->optimizer >= FA_N_OPTIMIZERS)
        return fa_fail(FA_ERR_FORMAT, fn, "optimizer out of range (%lu)",
                       (unsigned long)h->optimizer);
    if (!fa_scale_valid((int32_t)h->fb_dist, h->fb_scale))
        return fa_fail(FA_ERR_FORMAT, fn, "feedback scale out of range (%g)", h->fb_scale);
    for (uint32_t i = 0; i < h->n_hp; i++) {
        const char *want = "";
        if (!fa_hparam_valid((int32_t)i, h->hp[i], &want))
            return fa_fail(FA_ERR_FORMAT, fn, "hyperparameter %u, %s, out of range (%g): "
                           "expected %s", (unsigned)i, fa_enum_name(FA_ENUM_HPARAM, (int32_t)i),
                           h->hp[i], want);
    }
    for (int32_t l = 1; l < L; l++) {
        double p = h->dropout[l];
        if (!(p >= 0.0 && p < 1.0))
            return fa_fail(FA_ERR_FORMAT, fn, "dropout of layer %ld out of range (%g)", (long)l,
                           p);
    }
    if (h->opt_step < 0)
        return fa_fail(FA_ERR_FORMAT, fn, "optimiser step count is negative");
    /* xoshiro256** never reaches the all-zero state and never leaves it. */
    if ((h->rng[0] | h->rng[1] | h->rng[2] | h->rng[3]) == 0 ||
        (h->has_drop_stream &&
         (h->rng_drop[0] | h->rng_drop[1] | h->rng_drop[2] | h->rng_drop[3]) == 0))
        return fa_fail(FA_ERR_FORMAT, fn, "RNG state is all zero");
    for (uint32_t i = 0; i < h->n_fb; i++) {
        const uint32_t r = h->fb[i].rule;
        if (r >= FA_N_RULES || !fa_rule_table[r]->stored)
            return fa_fail(FA_ERR_FORMAT, fn, "feedback block %u belongs to rule %lu, which "
                           "stores no feedback", (unsigned)i, (unsigned long)r);
        for (uint32_t j = 0; j < i; j++)
            if (h->fb[j].rule == r)
                return fa_fail(FA_ERR_FORMAT, fn, "two feedback blocks for rule %s",
                               fa_rule_table[r]->name);
    }
    return FA_OK;
}

/* Copy count floats at pos into dst; the index of a non-finite one or -1. */
static int64_t read_floats(const unsigned char *buf, size_t pos, float *dst, uint64_t count)
{
    if (count > 0)
        memcpy(dst, buf + pos, (size_t)count * sizeof *dst);
    return fa_find_nonfinite(dst, (int64_t)count);
}

/* Build the network from an image whose structure and values hold. */
static int build_net(const unsigned char *buf, const header *h, fa_net **out, const char *fn)
{
    fa_net *net = NULL;
    int rc = fa_net_build(&net, h->spec, (int32_t)h->loss, fn);
    if (rc != FA_OK) {
        /* what fa_net_create would refuse (a fused loss without an identity
         * output layer) is, in an image, a format error */
        char why[400];
        const char *m = fa_last_error();
        const char *colon = strstr(m, ": ");
        if (rc == FA_ERR_NOMEM)
            return rc;
        snprintf(why, sizeof why, "%s", colon ? colon + 2 : m);
        return fa_fail(FA_ERR_FORMAT, fn, "architecture rejected: %s", why);
    }
    net->rule = (int32_t)h->rule;
    net->dfa_variant = (int32_t)h->dfa_variant;
    net->fb_dist = (int32_t)h->fb_dist;
    net->fb_scale = h->fb_scale;
    net->optimizer = (int32_t)h->optimizer;
    for (uint32_t i = 0; i < h->n_hp; i++)
        net->hp[i] = h->hp[i];
    for (int32_t l = 1; l < net->n_layers; l++)
        net->layers[l].dropout = h->dropout[l];
    net->opt_step = h->opt_step;
    for (int i = 0; i < 4; i++)
        net->rng.s[i] = h->rng[i];
    if (h->has_drop_stream) {
        for (int i = 0; i < 4; i++)
            net->rng_drop.s[i] = h->rng_drop[i];
    } else {
        /* v1 had one stream: derive the dropout stream from it */
        fa_rng_seed(&net->rng_drop, h->rng[0] ^ h->rng[1] ^ h->rng[2] ^ h->rng[3]);
    }

    const int64_t state_len = fa_optimizer_state_len(net);
    int64_t bad;
    if ((uint64_t)state_len != h->n_opt) {
        rc = fa_fail(FA_ERR_FORMAT, fn, "optimiser state has %llu floats, optimizer %s needs "
                     "%lld", (unsigned long long)h->n_opt,
                     fa_enum_name(FA_ENUM_OPTIMIZER, net->optimizer), (long long)state_len);
        goto fail;
    }
    if ((bad = read_floats(buf, h->params_pos, net->params, (uint64_t)net->n_params)) >= 0) {
        rc = fa_fail(FA_ERR_FORMAT, fn, "parameter %lld is not finite", (long long)bad);
        goto fail;
    }
    for (uint32_t i = 0; i < h->n_fb; i++) {
        const fb_block *b = &h->fb[i];
        const char *name = fa_rule_table[b->rule]->name;
        const int64_t len = fa_feedback_len(net, (int32_t)b->rule);
        if ((uint64_t)len != b->count) {
            rc = fa_fail(FA_ERR_FORMAT, fn, "%s feedback block has %llu floats, the network "
                         "needs %lld", name, (unsigned long long)b->count, (long long)len);
            goto fail;
        }
        if (len == 0)
            continue;
        if (!(net->fb[b->rule] = fa_alloc_floats(len))) {
            rc = fa_fail(FA_ERR_NOMEM, fn, "out of memory for the %s feedback", name);
            goto fail;
        }
        if ((bad = read_floats(buf, b->pos, net->fb[b->rule], b->count)) >= 0) {
            rc = fa_fail(FA_ERR_FORMAT, fn, "%s feedback entry %lld is not finite", name,
                         (long long)bad);
            goto fail;
        }
    }
    /* A saved network under a rule with stored feedback always has it drawn,
     * unless the network has none (one layer: no hidden error). */
    if (fa_rule_table[net->rule]->stored && fa_feedback_len(net, net->rule) > 0 &&
        !net->fb[net->rule]) {
        rc = fa_fail(FA_ERR_FORMAT, fn, "rule is %s but the image has no %s feedback block",
                     fa_rule_table[net->rule]->name, fa_rule_table[net->rule]->name);
        goto fail;
    }
    if ((bad = read_floats(buf, h->opt_pos, net->opt_state, h->n_opt)) >= 0) {
        rc = fa_fail(FA_ERR_FORMAT, fn, "optimiser state entry %lld is not finite",
                     (long long)bad);
        goto fail;
    }
    /* Second moments are sums of squares: a negative one would make the
     * next step take the square root of a negative number. */
    if (net->optimizer == FA_OPT_ADAM || net->optimizer == FA_OPT_RMSPROP) {
        const int64_t from = net->optimizer == FA_OPT_ADAM ? net->n_params : 0;
        for (int64_t i = from; i < state_len; i++) {
            if (net->opt_state[i] < 0.0f) {
                rc = fa_fail(FA_ERR_FORMAT, fn, "optimiser second moment %lld is negative",
                             (long long)(i - from));
                goto fail;
            }
        }
    }
    *out = net;
    return FA_OK;
fail:
    fa_net_free(net);
    return rc;
}

int fa_image_parse(const unsigned char *buf, size_t size, fa_net **out, const char *fn)
{
    header h;
    memset(&h, 0, sizeof h);
    int rc = parse_structure(buf, size, &h, fn);
    if (rc != FA_OK)
        goto done;
    /* The structure holds, so size > 4 and the CRC is in the last 4 bytes. */
    uint32_t stored, computed = fa_crc32(0, buf, size - 4);
    memcpy(&stored, buf + size - 4, sizeof stored);
    if (stored != computed) {
        rc = fa_fail(FA_ERR_FORMAT, fn, "checksum mismatch (stored 0x%08lx, computed 0x%08lx)",
                     (unsigned long)stored, (unsigned long)computed);
        goto done;
    }
    if ((rc = check_values(&h, fn)) == FA_OK)
        rc = build_net(buf, &h, out, fn);
done:
    fa_spec_free(h.spec);
    free(h.dropout);
    free(h.fb);
    return rc;
}

FA_API int fa_net_load_image(fa_net **out, const void *buf, int64_t len)
{
    static const char fn[] = "fa_net_load_image";
    if (!out)
        return fa_fail(FA_ERR_NULL, fn, "out is NULL (expected a fa_net * to fill)");
    *out = NULL;
    if (!buf)
        return fa_fail(FA_ERR_NULL, fn, "buf is NULL (expected a model image)");
    if (len < 0)
        return fa_fail(FA_ERR_SIZE, fn, "len = %lld, expected >= 0", (long long)len);
    if ((uint64_t)len > SIZE_MAX / 2)
        return fa_fail(FA_ERR_FORMAT, fn, "%lld bytes is too large to be a model image",
                       (long long)len);
    return fa_image_parse(buf, (size_t)len, out, fn);
}

FA_API int fa_net_clone(fa_net **out, const fa_net *net)
{
    static const char fn[] = "fa_net_clone";
    if (!out)
        return fa_fail(FA_ERR_NULL, fn, "out is NULL (expected a fa_net * to fill)");
    *out = NULL;
    int rc = fa_check_net(net, fn);
    if (rc)
        return rc;
    /* Through the image: a clone is then by construction everything a
     * model file holds, no more and no less. */
    const int64_t size = fa_image_size(net);
    unsigned char *buf = malloc((size_t)size);
    if (!buf)
        return fa_fail(FA_ERR_NOMEM, fn, "out of memory for a %lld-byte image",
                       (long long)size);
    fa_image_writer w = {buf, NULL, 0, 0, 0};
    write_image(&w, net);
    rc = fa_image_parse(buf, (size_t)size, out, fn);
    free(buf);
    return rc;
}
