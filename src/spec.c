/* spec.c -- the network spec: the builder (fa_spec_add_*), its text form
 * (fa_spec_parse, fa_spec_format) and the resolution of one layer against
 * the shape before it, which the builder, the parser, fa_net_create and
 * the model-file loader all go through.  A spec holds each layer's
 * arguments and its resolved output shape, so every layer is checked when
 * it is added and the message can name it. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ------------------------------------------------------------ resolution */

int fa_layer_resolve(fa_layer *ly, const fa_layer_spec *s, int32_t c, int32_t h,
                     int32_t w, const char *fn, const char *what)
{
    memset(ly, 0, sizeof *ly);
    if (s->kind < 0 || s->kind >= FA_N_LAYER_KINDS)
        return fa_fail(FA_ERR_ARG, fn, "%s: kind %d is not a fa_layer_kind (expected 0..%d)",
                       what, (int)s->kind, FA_N_LAYER_KINDS - 1);
    ly->ops = fa_layer_table[s->kind];
    ly->kind = s->kind;
    if (s->act < 0 || s->act >= FA_N_ACTIVATIONS)
        return fa_fail(FA_ERR_ARG, fn, "%s: activation %d is not a fa_activation "
                       "(expected 0..%d)", what, (int)s->act, FA_N_ACTIVATIONS - 1);
    if (!ly->ops->has_params && s->act != FA_ACT_IDENTITY)
        return fa_fail(FA_ERR_ARG, fn, "%s: a %s layer has no activation (got %s)", what,
                       ly->ops->name, fa_enum_name(FA_ENUM_ACTIVATION, s->act));
    ly->act = s->act;
    ly->units = s->units;
    ly->kh = s->kh;
    ly->kw = s->kw;
    ly->stride = s->stride;
    ly->pad = s->pad;
    ly->in_c = c;
    ly->in_h = h;
    ly->in_w = w;
    ly->n_in = (int32_t)((int64_t)c * h * w); /* the previous layer checked it fits */
    int rc = ly->ops->setup(ly, fn, what);
    if (rc)
        return rc;
    int64_t n_out = (int64_t)ly->out_c * ly->out_h * ly->out_w;
    if (n_out > INT32_MAX)
        return fa_fail(FA_ERR_SIZE, fn, "%s: %lld output features exceed 2^31-1", what,
                       (long long)n_out);
    ly->n_out = (int32_t)n_out;
    ly->fb_off = -1;
    ly->dir_off = -1;
    return FA_OK;
}

static int64_t layer_params(const fa_layer *ly)
{
    return (int64_t)ly->w_rows * ly->w_cols + ly->w_rows;
}

int fa_spec_append(fa_spec *spec, const fa_layer_spec *s, const char *fn)
{
    char what[32];
    fa_layer ly;
    const int32_t *in = spec->shape + 3 * spec->n;
    snprintf(what, sizeof what, "layer %d", (int)spec->n + 1);
    if (spec->n >= 100000)
        return fa_fail(FA_ERR_SIZE, fn, "%s: a network has at most 100000 layers", what);
    int rc = fa_layer_resolve(&ly, s, in[0], in[1], in[2], fn, what);
    if (rc)
        return rc;
    int64_t np = spec->n_params + layer_params(&ly);
    if (np > FA_MAX_PARAMS)
        return fa_fail(FA_ERR_SIZE, fn, "%s: the parameter count exceeds 2^40", what);
    if (spec->n == spec->cap) {
        int32_t cap = spec->cap ? 2 * spec->cap : 8;
        fa_layer_spec *l = realloc(spec->layers, (size_t)cap * sizeof *l);
        if (!l)
            return fa_fail(FA_ERR_NOMEM, fn, "out of memory for a spec of %d layers", (int)cap);
        spec->layers = l;
        int32_t *sh = realloc(spec->shape, 3 * ((size_t)cap + 1) * sizeof *sh);
        if (!sh)
            return fa_fail(FA_ERR_NOMEM, fn, "out of memory for a spec of %d layers", (int)cap);
        spec->shape = sh;
        spec->cap = cap;
    }
    fa_layer_spec *d = &spec->layers[spec->n];
    *d = *s;
    /* store what resolution made of it (pool: kw = kh, no activation) */
    d->kw = ly.kw;
    d->stride = ly.stride;
    d->pad = ly.pad;
    d->units = ly.units;
    d->act = ly.act;
    spec->n++;
    spec->shape[3 * spec->n] = ly.out_c;
    spec->shape[3 * spec->n + 1] = ly.out_h;
    spec->shape[3 * spec->n + 2] = ly.out_w;
    spec->n_params = np;
    return FA_OK;
}

/* ---------------------------------------------------------------- builder */

static int spec_new(fa_spec **out, int32_t c, int32_t h, int32_t w, const char *fn)
{
    if (!out)
        return fa_fail(FA_ERR_NULL, fn, "out is NULL (expected a fa_spec * to fill)");
    *out = NULL;
    if (c < 1 || h < 1 || w < 1)
        return fa_fail(FA_ERR_SIZE, fn, "input shape %dx%dx%d, expected every size >= 1",
                       (int)c, (int)h, (int)w);
    /* in two steps: c * h * w alone can overflow 64 bits */
    if ((int64_t)c * h > INT32_MAX || (int64_t)c * h * w > INT32_MAX)
        return fa_fail(FA_ERR_SIZE, fn, "input shape %dx%dx%d has more than 2^31-1 features",
                       (int)c, (int)h, (int)w);
    fa_spec *s = calloc(1, sizeof *s);
    if (s)
        s->shape = malloc(3 * sizeof *s->shape);
    if (!s || !s->shape) {
        free(s);
        return fa_fail(FA_ERR_NOMEM, fn, "out of memory for a spec");
    }
    s->in_c = s->shape[0] = c;
    s->in_h = s->shape[1] = h;
    s->in_w = s->shape[2] = w;
    *out = s;
    return FA_OK;
}

FA_API int fa_spec_create(fa_spec **out, int32_t channels, int32_t height, int32_t width)
{
    return spec_new(out, channels, height, width, "fa_spec_create");
}

FA_API void fa_spec_free(fa_spec *spec)
{
    if (!spec)
        return;
    free(spec->layers);
    free(spec->shape);
    free(spec);
}

static int check_spec(const fa_spec *spec, const char *fn)
{
    if (!spec)
        return fa_fail(FA_ERR_NULL, fn, "spec is NULL (expected one from fa_spec_create)");
    return FA_OK;
}

FA_API int fa_spec_add_dense(fa_spec *spec, int32_t units, int32_t activation)
{
    static const char fn[] = "fa_spec_add_dense";
    int rc = check_spec(spec, fn);
    if (rc)
        return rc;
    fa_layer_spec s = {FA_LAYER_DENSE, units, 0, 0, 0, 0, activation};
    return fa_spec_append(spec, &s, fn);
}

FA_API int fa_spec_add_conv2d(fa_spec *spec, int32_t channels, int32_t kernel_h,
                              int32_t kernel_w, int32_t stride, int32_t pad, int32_t activation)
{
    static const char fn[] = "fa_spec_add_conv2d";
    int rc = check_spec(spec, fn);
    if (rc)
        return rc;
    fa_layer_spec s = {FA_LAYER_CONV2D, channels, kernel_h, kernel_w, stride, pad, activation};
    return fa_spec_append(spec, &s, fn);
}

FA_API int fa_spec_add_pool(fa_spec *spec, int32_t kind, int32_t size, int32_t stride)
{
    static const char fn[] = "fa_spec_add_pool";
    int rc = check_spec(spec, fn);
    if (rc)
        return rc;
    if (kind != FA_LAYER_MAXPOOL && kind != FA_LAYER_AVGPOOL)
        return fa_fail(FA_ERR_ARG, fn, "kind = %d, expected FA_LAYER_MAXPOOL (%d) or "
                       "FA_LAYER_AVGPOOL (%d)", (int)kind, FA_LAYER_MAXPOOL, FA_LAYER_AVGPOOL);
    if (stride < 0)
        return fa_fail(FA_ERR_SIZE, fn, "stride = %d, expected >= 1 (or 0 for the window size)",
                       (int)stride);
    fa_layer_spec s = {kind, 0, size, size, stride == 0 ? size : stride, 0, FA_ACT_IDENTITY};
    return fa_spec_append(spec, &s, fn);
}

FA_API int fa_spec_num_layers(const fa_spec *spec, int32_t *n_layers)
{
    static const char fn[] = "fa_spec_num_layers";
    int rc = check_spec(spec, fn);
    if (rc)
        return rc;
    if (!n_layers)
        return fa_fail(FA_ERR_NULL, fn, "n_layers is NULL");
    *n_layers = spec->n;
    return FA_OK;
}

FA_API int fa_spec_layer(const fa_spec *spec, int32_t layer, int32_t *kind, int32_t *units,
                         int32_t *kernel_h, int32_t *kernel_w, int32_t *stride, int32_t *pad,
                         int32_t *activation)
{
    static const char fn[] = "fa_spec_layer";
    int rc = check_spec(spec, fn);
    if (rc)
        return rc;
    if (layer < 1 || layer > spec->n)
        return fa_fail(FA_ERR_ARG, fn, "layer = %d, expected 1..%d", (int)layer, (int)spec->n);
    const fa_layer_spec *s = &spec->layers[layer - 1];
    if (kind)
        *kind = s->kind;
    if (units)
        *units = s->units;
    if (kernel_h)
        *kernel_h = s->kh;
    if (kernel_w)
        *kernel_w = s->kw;
    if (stride)
        *stride = s->stride;
    if (pad)
        *pad = s->pad;
    if (activation)
        *activation = s->act;
    return FA_OK;
}

FA_API int fa_spec_shape(const fa_spec *spec, int32_t layer, int32_t *channels,
                         int32_t *height, int32_t *width)
{
    static const char fn[] = "fa_spec_shape";
    int rc = check_spec(spec, fn);
    if (rc)
        return rc;
    if (layer < 0 || layer > spec->n)
        return fa_fail(FA_ERR_ARG, fn, "layer = %d, expected 0..%d", (int)layer, (int)spec->n);
    if (channels)
        *channels = spec->shape[3 * layer];
    if (height)
        *height = spec->shape[3 * layer + 1];
    if (width)
        *width = spec->shape[3 * layer + 2];
    return FA_OK;
}

/* ----------------------------------------------------------------- parser */

/* A cursor over the text, with the position of the current token for the
 * messages. */
typedef struct cursor {
    const char *text;
    const char *p;
    const char *tok; /* start of the current token */
    int32_t tokno;
} cursor;

static int syntax(const cursor *c, const char *fn, const char *expected)
{
    size_t len = strcspn(c->tok, "-");
    return fa_fail(FA_ERR_ARG, fn, "token %d ('%.*s', at offset %d): expected %s", (int)c->tokno,
                   (int)(len > 40 ? 40 : len), c->tok, (int)(c->tok - c->text), expected);
}

/* A decimal number without sign; *v in [0, INT32_MAX]. */
static int number(cursor *c, int32_t *v, const char *fn, const char *what)
{
    if (!isdigit((unsigned char)*c->p))
        return syntax(c, fn, what);
    int64_t n = 0;
    while (isdigit((unsigned char)*c->p)) {
        n = n * 10 + (*c->p - '0');
        if (n > INT32_MAX) {
            size_t len = strcspn(c->tok, "-");
            return fa_fail(FA_ERR_SIZE, fn, "token %d ('%.*s'): number out of range "
                           "(at most 2147483647)", (int)c->tokno, (int)(len > 40 ? 40 : len),
                           c->tok);
        }
        c->p++;
    }
    *v = (int32_t)n;
    return FA_OK;
}

/* An optional "<letter><number>" field. */
static int option(cursor *c, char letter, int32_t *v, const char *fn, const char *what)
{
    if (*c->p != letter)
        return FA_OK;
    c->p++;
    return number(c, v, fn, what);
}

/* One layer token up to its repeat and activation. */
static int layer_body(cursor *c, fa_layer_spec *s, const char *fn)
{
    int rc;
    memset(s, 0, sizeof *s);
    s->act = -1; /* not given */
    if (isdigit((unsigned char)*c->p)) {
        s->kind = FA_LAYER_DENSE;
        return number(c, &s->units, fn, "a layer width");
    }
    if (*c->p == 'c') {
        c->p++;
        s->kind = FA_LAYER_CONV2D;
        s->stride = 1;
        if ((rc = number(c, &s->units, fn, "the channel count after 'c'")))
            return rc;
        if (*c->p != 'k')
            return syntax(c, fn, "'k' and the kernel size after the channel count");
        c->p++;
        if ((rc = number(c, &s->kh, fn, "the kernel size after 'k'")))
            return rc;
        s->kw = s->kh;
        if (*c->p == ',') {
            c->p++;
            if ((rc = number(c, &s->kw, fn, "the kernel width after ','")))
                return rc;
        }
        if ((rc = option(c, 's', &s->stride, fn, "the stride after 's'")))
            return rc;
        return option(c, 'p', &s->pad, fn, "the padding after 'p'");
    }
    if (*c->p == 'm' || *c->p == 'a') {
        s->kind = *c->p == 'm' ? FA_LAYER_MAXPOOL : FA_LAYER_AVGPOOL;
        c->p++;
        if ((rc = number(c, &s->kh, fn, "the window size after 'm' or 'a'")))
            return rc;
        s->kw = s->kh;
        s->stride = s->kh;
        return option(c, 's', &s->stride, fn, "the stride after 's'");
    }
    return syntax(c, fn, "a layer: a width (\"120\"), a convolution (\"c6k5p2\") or a "
                         "pooling (\"m2\", \"a2\")");
}

/* Expanded layers before their activations are settled. */
typedef struct parsed {
    fa_layer_spec *v;
    int32_t n, cap;
} parsed;

static int push(parsed *ps, const fa_layer_spec *s, int32_t count, const char *fn)
{
    if ((int64_t)ps->n + count > 100000)
        return fa_fail(FA_ERR_SIZE, fn, "more than 100000 layers");
    if (ps->n + count > ps->cap) {
        int32_t cap = ps->cap ? ps->cap : 16;
        while (cap < ps->n + count)
            cap *= 2;
        fa_layer_spec *v = realloc(ps->v, (size_t)cap * sizeof *v);
        if (!v)
            return fa_fail(FA_ERR_NOMEM, fn, "out of memory for %d layers", (int)cap);
        ps->v = v;
        ps->cap = cap;
    }
    for (int32_t i = 0; i < count; i++)
        ps->v[ps->n++] = *s;
    return FA_OK;
}

static int parse_layers(cursor *c, parsed *ps, const char *fn)
{
    while (*c->p == '-') {
        c->p++;
        c->tok = c->p;
        c->tokno++;
        fa_layer_spec s;
        int32_t repeat = 1;
        int rc = layer_body(c, &s, fn);
        if (rc)
            return rc;
        if (*c->p == 'x') {
            c->p++;
            if ((rc = number(c, &repeat, fn, "the repeat count after 'x'")))
                return rc;
            if (repeat < 1)
                return syntax(c, fn, "a repeat count >= 1");
        }
        if (*c->p == ':') {
            c->p++;
            const char *name = c->p;
            while (isalnum((unsigned char)*c->p) || *c->p == '_')
                c->p++;
            char buf[32];
            size_t len = (size_t)(c->p - name);
            if (len == 0 || len >= sizeof buf)
                return syntax(c, fn, "an activation name after ':'");
            memcpy(buf, name, len);
            buf[len] = '\0';
            if (s.kind == FA_LAYER_MAXPOOL || s.kind == FA_LAYER_AVGPOOL)
                return syntax(c, fn, "no activation on a pooling layer");
            if (fa_enum_lookup(FA_ENUM_ACTIVATION, buf, &s.act) != FA_OK)
                return syntax(c, fn, "a known activation name (identity, tanh, sigmoid, relu, "
                                     "leaky_relu)");
        }
        if (*c->p != '-' && *c->p != '\0')
            return syntax(c, fn, "'-' or the end of the text after the layer");
        if ((rc = push(ps, &s, repeat, fn)))
            return rc;
    }
    if (*c->p != '\0')
        return syntax(c, fn, "'-' before the next layer");
    if (ps->n == 0)
        return syntax(c, fn, "at least one layer after the input");
    return FA_OK;
}

FA_API int fa_spec_parse(fa_spec **out, const char *text, int32_t hidden_activation,
                         int32_t output_activation)
{
    static const char fn[] = "fa_spec_parse";
    if (!out)
        return fa_fail(FA_ERR_NULL, fn, "out is NULL (expected a fa_spec * to fill)");
    *out = NULL;
    if (!text)
        return fa_fail(FA_ERR_NULL, fn, "text is NULL (expected e.g. \"784-1000-10\")");
    if (hidden_activation < 0 || hidden_activation >= FA_N_ACTIVATIONS ||
        output_activation < 0 || output_activation >= FA_N_ACTIVATIONS)
        return fa_fail(FA_ERR_ARG, fn, "hidden_activation = %d, output_activation = %d: "
                       "expected fa_activation values 0..%d", (int)hidden_activation,
                       (int)output_activation, FA_N_ACTIVATIONS - 1);
    cursor c = {text, text, text, 1};
    int32_t dims[3] = {0, 1, 1};
    int rc = number(&c, &dims[0], fn, "the input size, \"N\" or \"CxHxW\"");
    if (rc)
        return rc;
    if (*c.p == 'x') {
        c.p++;
        if ((rc = number(&c, &dims[1], fn, "the input height after 'x'")))
            return rc;
        if (*c.p != 'x')
            return syntax(&c, fn, "an input shape CxHxW (three numbers)");
        c.p++;
        if ((rc = number(&c, &dims[2], fn, "the input width after 'x'")))
            return rc;
    }
    if (*c.p != '-' && *c.p != '\0')
        return syntax(&c, fn, "'-' after the input shape");
    parsed ps = {NULL, 0, 0};
    fa_spec *spec = NULL;
    if ((rc = parse_layers(&c, &ps, fn)) ||
        (rc = spec_new(&spec, dims[0], dims[1], dims[2], fn)))
        goto done;
    for (int32_t i = 0; i < ps.n; i++) {
        fa_layer_spec *s = &ps.v[i];
        if (s->act < 0 && !fa_layer_table[s->kind]->has_params)
            s->act = FA_ACT_IDENTITY;
        else if (s->act < 0)
            s->act = i == ps.n - 1 ? output_activation : hidden_activation;
        if ((rc = fa_spec_append(spec, s, fn)))
            goto done;
    }
    *out = spec;
    spec = NULL;
done:
    fa_spec_free(spec);
    free(ps.v);
    return rc;
}

/* ------------------------------------------------------------- formatting */

/* A growing string; on allocation failure `bad` is set and text dropped. */
typedef struct sbuf {
    char *s;
    size_t len, cap;
    int bad;
} sbuf;

static void put_raw(sbuf *b, const char *s, size_t n)
{
    if (b->bad)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) {
            b->bad = 1;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void put_str(sbuf *b, const char *s)
{
    put_raw(b, s, strlen(s));
}

/* prefix followed by a decimal number */
static void put_num(sbuf *b, const char *prefix, long v)
{
    char tmp[48];
    int n = snprintf(tmp, sizeof tmp, "%s%ld", prefix, v);
    if (n > 0)
        put_raw(b, tmp, (size_t)n);
}

static int same_layer(const fa_layer_spec *a, const fa_layer_spec *b)
{
    return a->kind == b->kind && a->units == b->units && a->kh == b->kh && a->kw == b->kw &&
           a->stride == b->stride && a->pad == b->pad && a->act == b->act;
}

FA_API int fa_spec_format(const fa_spec *spec, char *buf, int64_t len, int64_t *needed)
{
    static const char fn[] = "fa_spec_format";
    int rc = check_spec(spec, fn);
    if (rc)
        return rc;
    if (!buf && len > 0)
        return fa_fail(FA_ERR_NULL, fn, "buf is NULL with len = %lld", (long long)len);
    sbuf b = {NULL, 0, 0, 0};
    put_num(&b, "", spec->in_c);
    if (spec->in_h != 1 || spec->in_w != 1) {
        put_num(&b, "x", spec->in_h);
        put_num(&b, "x", spec->in_w);
    }
    for (int32_t i = 0; i < spec->n;) {
        const fa_layer_spec *s = &spec->layers[i];
        int32_t r = 1;
        while (i + r < spec->n && same_layer(s, &spec->layers[i + r]))
            r++;
        switch (s->kind) {
        case FA_LAYER_DENSE:
            put_num(&b, "-", s->units);
            break;
        case FA_LAYER_CONV2D:
            put_num(&b, "-c", s->units);
            put_num(&b, "k", s->kh);
            if (s->kw != s->kh)
                put_num(&b, ",", s->kw);
            if (s->stride != 1)
                put_num(&b, "s", s->stride);
            if (s->pad != 0)
                put_num(&b, "p", s->pad);
            break;
        default:
            put_num(&b, s->kind == FA_LAYER_MAXPOOL ? "-m" : "-a", s->kh);
            if (s->stride != s->kh)
                put_num(&b, "s", s->stride);
            break;
        }
        if (r > 1)
            put_num(&b, "x", r);
        if (fa_layer_table[s->kind]->has_params) {
            put_str(&b, ":");
            put_str(&b, fa_enum_name(FA_ENUM_ACTIVATION, s->act));
        }
        i += r;
    }
    if (b.bad) {
        free(b.s);
        return fa_fail(FA_ERR_NOMEM, fn, "out of memory for the text of a spec");
    }
    int64_t need = (int64_t)b.len + 1;
    if (needed)
        *needed = need;
    if (len < need) {
        if (buf && len >= 1)
            buf[0] = '\0';
        free(b.s);
        if (!buf && len == 0)
            return FA_OK;
        return fa_fail(FA_ERR_SIZE, fn, "len = %lld, the text needs %lld bytes", (long long)len,
                       (long long)need);
    }
    memcpy(buf, b.s, (size_t)need);
    free(b.s);
    return FA_OK;
}
