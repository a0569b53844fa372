/* net.c -- the handle: building it from a spec, the layout of its flat
 * blocks, workspaces, validation of the public arguments, and the getters
 * and setters.  The step itself is in train.c, feedback in feedback.c. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

float *fa_alloc_floats(int64_t count)
{
    if (count < 0 || (uint64_t)count > SIZE_MAX / sizeof(float) - 64)
        return NULL;
    /* 64-byte aligned (cache lines, AVX-512), size rounded up as
     * aligned_alloc requires; zeroed so that a fresh block is defined */
    size_t bytes = ((size_t)count * sizeof(float) + 63) & ~(size_t)63;
    float *p = aligned_alloc(64, bytes ? bytes : 64);
    if (p)
        memset(p, 0, bytes ? bytes : 64);
    return p;
}

static FA_KERNEL int64_t find_nonfinite_kernel(const float *p, int64_t count)
{
    /* Every step scans its whole update, so the common (clean) case is one
     * branch-free pass over the exponent bits that vectorises; only a dirty
     * buffer pays for the second pass that finds the index. */
    uint32_t bad = 0;
    for (int64_t i = 0; i < count; i++) {
        uint32_t u;
        memcpy(&u, p + i, sizeof u);
        bad |= (u & 0x7f800000u) == 0x7f800000u;
    }
    if (!bad)
        return -1;
    for (int64_t i = 0; i < count; i++)
        if (!isfinite(p[i]))
            return i;
    return -1;
}

int64_t fa_find_nonfinite(const float *p, int64_t count)
{
    return find_nonfinite_kernel(p, count);
}

static FA_KERNEL float absmax_kernel(const float *p, int64_t count)
{
    uint32_t m = 0;
    for (int64_t i = 0; i < count; i++) {
        uint32_t u = fa_mag_bits(p[i]);
        m = u > m ? u : m;
    }
    return fa_bits_mag(m);
}

float fa_absmax(const float *p, int64_t count)
{
    return absmax_kernel(p, count);
}

/* ----------------------------------------------------------- validation */

int fa_check_net(const fa_net *net, const char *fn)
{
    if (!net)
        return fa_fail(FA_ERR_NULL, fn, "net is NULL (expected a handle from fa_net_create)");
    return FA_OK;
}

/* A getter's two checks: the handle, and where to write the answer. */
static int check_out(const fa_net *net, const void *out, const char *name, const char *fn)
{
    int rc = fa_check_net(net, fn);
    if (rc)
        return rc;
    if (!out)
        return fa_fail(FA_ERR_NULL, fn, "%s is NULL (expected somewhere to write it)", name);
    return FA_OK;
}

/* A caller's flat buffer in the parameter layout: n == n_params floats,
 * and, for a buffer the library will take values from, all finite. */
int fa_check_flat(const fa_net *net, const float *buf, const char *name, int64_t n,
                      int need_finite, const char *fn)
{
    int rc = fa_check_net(net, fn);
    if (rc)
        return rc;
    if (!buf)
        return fa_fail(FA_ERR_NULL, fn, "%s is NULL (expected %lld floats)", name,
                       (long long)net->n_params);
    if (n != net->n_params)
        return fa_fail(FA_ERR_SIZE, fn, "n = %lld, expected the parameter count %lld",
                       (long long)n, (long long)net->n_params);
    int64_t bad = need_finite ? fa_find_nonfinite(buf, n) : -1;
    if (bad >= 0)
        return fa_fail(FA_ERR_NONFINITE, fn, "%s[%lld] is not finite; nothing was changed",
                       name, (long long)bad);
    return FA_OK;
}

/* An enum argument: 0 <= value < count, named through fa_enum_name. */
static int check_enum(int32_t value, int32_t type, const char *arg, const char *fn)
{
    int32_t count = fa_enum_count(type);
    if (value < 0 || value >= count) {
        char names[400];
        fa_enum_names(type, names, sizeof names);
        return fa_fail(FA_ERR_ARG, fn, "%s = %d is out of range (expected 0..%d: %s)", arg,
                       (int)value, (int)count - 1, names);
    }
    return FA_OK;
}

static int check_layer(const fa_net *net, int32_t layer, int32_t lo, int32_t hi, const char *fn)
{
    (void)net;
    if (layer < lo || layer > hi)
        return fa_fail(FA_ERR_ARG, fn, "layer = %d, expected %d..%d", (int)layer, (int)lo,
                       (int)hi);
    return FA_OK;
}

/* ----------------------------------------------------------- life cycle */

static void set_defaults(fa_net *net)
{
    net->rule = FA_RULE_BP;
    net->dfa_variant = FA_DFA_AFTER_ACTIVATION;
    net->fb_dist = FA_DIST_UNIFORM;
    net->fb_scale = FA_SCALE_AUTO;
    net->optimizer = FA_OPT_SGD;
    net->nthreads = 1;
    for (int32_t h = 0; h < FA_N_HPARAMS; h++)
        net->hp[h] = fa_hparam_find(h)->def;
    for (int32_t r = 0; r < FA_N_RULES; r++)
        net->fb_absmax[r] = -1.0f;
}

int fa_net_build(fa_net **out, const fa_spec *spec, int32_t loss, const char *fn)
{
    *out = NULL;
    const int32_t L = spec->n;
    int rc = check_enum(loss, FA_ENUM_LOSS, "loss", fn);
    if (rc)
        return rc;
    if (L < 1)
        return fa_fail(FA_ERR_ARG, fn, "the spec has no layers (add at least the output layer)");
    const fa_layer_spec *last = &spec->layers[L - 1];
    if (!fa_layer_table[last->kind]->has_params)
        return fa_fail(FA_ERR_ARG, fn, "the last layer (%d) is a %s layer; the output layer "
                       "must have parameters (dense or conv2d)", (int)L,
                       fa_layer_table[last->kind]->name);
    if (loss != FA_LOSS_MSE && last->act != FA_ACT_IDENTITY)
        return fa_fail(FA_ERR_ARG, fn, "loss %s fuses its own link function: the last layer's "
                       "activation must be identity (0), got %s (%d)",
                       fa_enum_name(FA_ENUM_LOSS, loss), fa_enum_name(FA_ENUM_ACTIVATION,
                                                                      last->act), (int)last->act);

    fa_net *net = calloc(1, sizeof *net);
    if (!net)
        goto nomem;
    net->n_layers = L;
    net->loss = loss;
    net->in_c = spec->in_c;
    net->in_h = spec->in_h;
    net->in_w = spec->in_w;
    set_defaults(net);
    net->layers = calloc((size_t)L + 1, sizeof *net->layers);
    net->sizes = calloc((size_t)L + 1, sizeof *net->sizes);
    if (!net->layers || !net->sizes)
        goto nomem;
    int64_t off = 0, fbo = 0;
    int32_t dir = 0;
    net->first_param = 0;
    net->sizes[0] = spec->in_c * spec->in_h * spec->in_w;
    for (int32_t l = 1; l <= L; l++) {
        fa_layer *ly = &net->layers[l];
        const int32_t *in = spec->shape + 3 * (l - 1);
        /* the spec resolved every layer already: this cannot fail */
        rc = fa_layer_resolve(ly, &spec->layers[l - 1], in[0], in[1], in[2], fn, "layer");
        if (rc)
            goto fail;
        net->sizes[l] = ly->n_out;
        if (ly->w_rows > 0) {
            if (!net->first_param)
                net->first_param = l;
            ly->w_off = off;
            ly->b_off = off + (int64_t)ly->w_rows * ly->w_cols;
            off = ly->b_off + ly->w_rows;
            if (l >= 2) {
                ly->fb_off = fbo;
                fbo += (int64_t)ly->w_rows * ly->w_cols;
            }
            if (l < L) {
                ly->dir_off = dir;
                if ((int64_t)dir + ly->n_out > INT32_MAX) {
                    rc = fa_fail(FA_ERR_SIZE, fn, "the hidden layers have more than 2^31-1 "
                                 "outputs in all");
                    goto fail;
                }
                dir += ly->n_out;
            }
        } else {
            ly->w_off = off;
            ly->b_off = off;
        }
    }
    net->n_params = off;
    net->fb_layer_len = fbo;
    net->n_direct = dir;
    net->fb_direct_len = (int64_t)net->sizes[L] * dir;
    net->params = fa_alloc_floats(off);
    net->grad = fa_alloc_floats(off);
    net->opt_state = fa_alloc_floats(2 * off);
    if (!net->params || !net->grad || !net->opt_state)
        goto nomem;
    *out = net;
    return FA_OK;

nomem:
    rc = fa_fail(FA_ERR_NOMEM, fn, "out of memory for a network of %lld parameters",
                 (long long)spec->n_params);
fail:
    fa_net_free(net);
    return rc;
}

/* Fresh forward weights for every layer with parameters; biases zero. */
static void init_weights(fa_net *net, int32_t scheme)
{
    for (int32_t l = 1; l <= net->n_layers; l++) {
        const fa_layer *ly = &net->layers[l];
        if (ly->w_rows == 0)
            continue;
        double fan_in, fan_out;
        ly->ops->fans(ly, &fan_in, &fan_out);
        fa_init_weights_fill(&net->rng, scheme, ly->act, net->params + ly->w_off,
                             (int64_t)ly->w_rows * ly->w_cols, fan_in, fan_out);
        memset(net->params + ly->b_off, 0, (size_t)ly->w_rows * sizeof(float));
    }
    net->bounds_valid = 0;
}

/* Both streams from one seed: the dropout stream from a second splitmix
 * sequence, so the two never overlap in practice. */
static void seed_streams(fa_net *net, uint64_t seed)
{
    fa_rng_seed(&net->rng, seed);
    fa_rng_seed(&net->rng_drop, seed ^ 0x6A09E667F3BCC909ull);
}

FA_API int fa_net_create_from_spec(fa_net **out, const fa_spec *spec, int32_t loss,
                                   uint64_t seed)
{
    static const char fn[] = "fa_net_create_from_spec";
    if (!out)
        return fa_fail(FA_ERR_NULL, fn, "out is NULL (expected a fa_net * to fill)");
    *out = NULL;
    if (!spec)
        return fa_fail(FA_ERR_NULL, fn, "spec is NULL (expected one from fa_spec_create)");
    fa_net *net = NULL;
    int rc = fa_net_build(&net, spec, loss, fn);
    if (rc)
        return rc;
    seed_streams(net, seed);
    init_weights(net, FA_INIT_DEFAULT);
    *out = net;
    return FA_OK;
}

FA_API int fa_net_create(fa_net **out, int32_t n_layers, const int32_t *sizes,
                         const int32_t *activations, int32_t loss, uint64_t seed)
{
    static const char fn[] = "fa_net_create";
    if (!out)
        return fa_fail(FA_ERR_NULL, fn, "out is NULL (expected a fa_net * to fill)");
    *out = NULL;
    if (!sizes)
        return fa_fail(FA_ERR_NULL, fn, "sizes is NULL (expected n_layers+1 widths)");
    if (!activations)
        return fa_fail(FA_ERR_NULL, fn, "activations is NULL (expected n_layers entries)");
    if (n_layers < 1 || n_layers > 100000)
        return fa_fail(FA_ERR_SIZE, fn, "n_layers = %d, expected 1..100000", (int)n_layers);
    for (int32_t l = 0; l <= n_layers; l++)
        if (sizes[l] < 1)
            return fa_fail(FA_ERR_SIZE, fn, "sizes[%d] = %d, expected >= 1", (int)l,
                           (int)sizes[l]);
    for (int32_t l = 0; l < n_layers; l++)
        if (activations[l] < 0 || activations[l] >= FA_N_ACTIVATIONS)
            return fa_fail(FA_ERR_ARG, fn, "activations[%d] = %d is not a fa_activation "
                           "(expected 0..%d)", (int)l, (int)activations[l],
                           FA_N_ACTIVATIONS - 1);
    fa_spec *spec = NULL;
    int rc = fa_spec_create(&spec, sizes[0], 1, 1);
    for (int32_t l = 1; rc == FA_OK && l <= n_layers; l++)
        rc = fa_spec_add_dense(spec, sizes[l], activations[l - 1]);
    if (rc == FA_OK)
        rc = fa_net_create_from_spec(out, spec, loss, seed);
    fa_spec_free(spec);
    if (rc != FA_OK && rc != FA_ERR_NOMEM) {
        /* report under this function's name */
        const char *m = strchr(fa_last_error(), ':');
        char why[400];
        snprintf(why, sizeof why, "%s", m ? m + 2 : fa_last_error());
        return fa_fail(rc, fn, "%s", why);
    }
    return rc;
}

FA_API void fa_net_free(fa_net *net)
{
    if (!net)
        return;
    free(net->layers);
    free(net->sizes);
    free(net->params);
    free(net->grad);
    free(net->opt_state);
    for (int32_t r = 0; r < FA_N_RULES; r++) {
        free(net->fb[r]);
        free(net->rule_scratch[r]);
    }
    free(net->fb_eff);
    fa_pool_free(net->pool);
    free(net->tdb);
    free(net->ws);
    free(net->grad_aux);
    free(net);
}

FA_API int fa_net_get_spec(const fa_net *net, fa_spec **out)
{
    static const char fn[] = "fa_net_get_spec";
    int rc = check_out(net, out, "out", fn);
    if (rc)
        return rc;
    *out = NULL;
    fa_spec *spec = NULL;
    rc = fa_spec_create(&spec, net->in_c, net->in_h, net->in_w);
    for (int32_t l = 1; rc == FA_OK && l <= net->n_layers; l++) {
        const fa_layer *ly = &net->layers[l];
        fa_layer_spec s = {ly->kind, ly->units, ly->kh, ly->kw, ly->stride, ly->pad, ly->act};
        rc = fa_spec_append(spec, &s, fn);
    }
    if (rc) {
        fa_spec_free(spec);
        return rc;
    }
    *out = spec;
    return FA_OK;
}

/* -------------------------------------------------------------- getters */

FA_API int fa_net_num_layers(const fa_net *net, int32_t *n_layers)
{
    int rc = check_out(net, n_layers, "n_layers", "fa_net_num_layers");
    if (rc)
        return rc;
    *n_layers = net->n_layers;
    return FA_OK;
}

FA_API int fa_net_get_sizes(const fa_net *net, int32_t *sizes, int64_t n)
{
    static const char fn[] = "fa_net_get_sizes";
    int rc = check_out(net, sizes, "sizes", fn);
    if (rc)
        return rc;
    if (n != (int64_t)net->n_layers + 1)
        return fa_fail(FA_ERR_SIZE, fn, "n = %lld, expected %lld (n_layers + 1)", (long long)n,
                       (long long)net->n_layers + 1);
    memcpy(sizes, net->sizes, (size_t)n * sizeof *sizes);
    return FA_OK;
}

/* A per-layer getter's checks: handle, out-pointer, layer in 1..L. */
static int check_layer_out(const fa_net *net, int32_t layer, const void *out, const char *name,
                           const char *fn)
{
    int rc = check_out(net, out, name, fn);
    if (rc)
        return rc;
    return check_layer(net, layer, 1, net->n_layers, fn);
}

FA_API int fa_net_get_activation(const fa_net *net, int32_t layer, int32_t *activation)
{
    static const char fn[] = "fa_net_get_activation";
    int rc = check_layer_out(net, layer, activation, "activation", fn);
    if (rc)
        return rc;
    *activation = net->layers[layer].act;
    return FA_OK;
}

FA_API int fa_net_layer_kind(const fa_net *net, int32_t layer, int32_t *kind)
{
    static const char fn[] = "fa_net_layer_kind";
    int rc = check_layer_out(net, layer, kind, "kind", fn);
    if (rc)
        return rc;
    *kind = net->layers[layer].kind;
    return FA_OK;
}

FA_API int fa_net_weight_shape(const fa_net *net, int32_t layer, int32_t *rows, int32_t *cols)
{
    static const char fn[] = "fa_net_weight_shape";
    int rc = check_layer_out(net, layer, rows, "rows", fn);
    if (rc || (rc = check_out(net, cols, "cols", fn)))
        return rc;
    *rows = net->layers[layer].w_rows;
    *cols = net->layers[layer].w_cols;
    return FA_OK;
}

FA_API int fa_net_get_loss(const fa_net *net, int32_t *loss)
{
    int rc = check_out(net, loss, "loss", "fa_net_get_loss");
    if (rc)
        return rc;
    *loss = net->loss;
    return FA_OK;
}

/* ------------------------------------------------------------ workspace */

/* Floats per column of batch that the workspace needs, and whether a batch
 * of m fits the layers' GEMM dimensions. */
static int64_t ws_floats_per_sample(const fa_net *net, int64_t *scratch)
{
    const int32_t L = net->n_layers;
    int64_t rows = 0, scr = 0;
    for (int32_t l = 1; l <= L; l++) {
        const fa_layer *ly = &net->layers[l];
        rows += ly->n_out;                               /* z */
        if (l < L)
            rows += ly->n_out;                           /* delta */
        if (l < L && ly->dropout > 0)
            rows += 2 * (int64_t)ly->n_out;              /* hbuf, mask */
        rows += ly->ops->col_floats(ly) + ly->ops->idx_count(ly);
        int64_t s = ly->ops->scratch_floats(ly);
        scr = s > scr ? s : scr;
    }
    rows += 2 * (int64_t)net->sizes[L] + net->n_direct; /* e, sig, dstack */
    *scratch = scr;
    return rows + scr;
}

int fa_net_ensure_workspace(fa_net *net, int32_t batch, const char *fn)
{
    if (batch <= net->ws_batch && !net->ws_stale)
        return FA_OK;
    if (batch < net->ws_batch)
        batch = net->ws_batch; /* rebuilt for a new layout: keep the size */
    const int32_t L = net->n_layers;
    for (int32_t l = 1; l <= L; l++) {
        const fa_layer *ly = &net->layers[l];
        if ((int64_t)ly->out_h * ly->out_w * batch > INT32_MAX ||
            (int64_t)ly->in_h * ly->in_w * batch > INT32_MAX)
            return fa_fail(FA_ERR_SIZE, fn, "batch = %d is too large for layer %d (its "
                           "pixels times the batch exceed 2^31-1)", (int)batch, (int)l);
    }
    int64_t scratch = 0;
    int64_t rows = ws_floats_per_sample(net, &scratch);
    if (rows > (FA_MAX_PARAMS << 4) / batch)
        return fa_fail(FA_ERR_SIZE, fn, "batch = %d needs a workspace beyond 2^44 floats",
                       (int)batch);
    float *ws = fa_alloc_floats(rows * batch);
    if (!ws)
        return fa_fail(FA_ERR_NOMEM, fn, "out of memory for a workspace of batch %d",
                       (int)batch);
    free(net->ws);
    net->ws = ws;
    net->ws_batch = batch;
    net->ws_stale = 0;
    float *p = ws;
    const size_t B = (size_t)batch;
    for (int32_t l = 1; l <= L; l++) {
        fa_layer *ly = &net->layers[l];
        const size_t n = (size_t)ly->n_out;
        ly->z = ly->h = p;
        p += n * B;
        ly->delta = NULL;
        ly->hbuf = ly->mask = NULL;
        if (l < L) {
            ly->delta = p;
            p += n * B;
            if (ly->dropout > 0) {
                ly->hbuf = p;
                p += n * B;
                ly->mask = p;
                p += n * B;
            }
        }
        ly->col = p;
        p += (size_t)ly->ops->col_floats(ly) * B;
        /* int32 indices in float-sized slots of the same allocation */
        ly->idx = (int32_t *)(void *)p;
        p += (size_t)ly->ops->idx_count(ly) * B;
    }
    net->e = p;
    p += (size_t)net->sizes[L] * B;
    net->sig = p;
    p += (size_t)net->sizes[L] * B;
    net->dstack = p;
    p += (size_t)net->n_direct * B;
    net->scratch = p;
    return FA_OK;
}

FA_API int fa_net_reserve(fa_net *net, int32_t max_batch)
{
    static const char fn[] = "fa_net_reserve";
    int rc = fa_check_net(net, fn);
    if (rc)
        return rc;
    if (max_batch < 1)
        return fa_fail(FA_ERR_SIZE, fn, "max_batch = %d, expected >= 1", (int)max_batch);
    if ((rc = fa_feedback_ensure(net, net->rule, fn)))
        return rc;
    return fa_net_ensure_workspace(net, max_batch, fn);
}

/* ---------------------------------------------------------------- rules */

FA_API int fa_net_set_rule(fa_net *net, int32_t rule)
{
    static const char fn[] = "fa_net_set_rule";
    int rc = fa_check_net(net, fn);
    if (rc || (rc = check_enum(rule, FA_ENUM_RULE, "rule", fn)) ||
        (rc = fa_feedback_ensure(net, rule, fn)))
        return rc;
    net->rule = rule;
    return FA_OK;
}

FA_API int fa_net_get_rule(const fa_net *net, int32_t *rule)
{
    int rc = check_out(net, rule, "rule", "fa_net_get_rule");
    if (rc)
        return rc;
    *rule = net->rule;
    return FA_OK;
}

FA_API int fa_net_set_dfa_variant(fa_net *net, int32_t variant)
{
    static const char fn[] = "fa_net_set_dfa_variant";
    int rc = fa_check_net(net, fn);
    if (rc || (rc = check_enum(variant, FA_ENUM_DFA_VARIANT, "variant", fn)))
        return rc;
    net->dfa_variant = variant;
    return FA_OK;
}

FA_API int fa_net_get_dfa_variant(const fa_net *net, int32_t *variant)
{
    int rc = check_out(net, variant, "variant", "fa_net_get_dfa_variant");
    if (rc)
        return rc;
    *variant = net->dfa_variant;
    return FA_OK;
}

/* ---------------------------------------------------- weights, dropout */

FA_API int fa_net_init_weights(fa_net *net, int32_t scheme)
{
    static const char fn[] = "fa_net_init_weights";
    int rc = fa_check_net(net, fn);
    if (rc || (rc = check_enum(scheme, FA_ENUM_INIT, "scheme", fn)))
        return rc;
    init_weights(net, scheme);
    fa_optimizer_reset(net);
    return FA_OK;
}

/* The checks of the dropout calls: a hidden layer to put it on. */
static int check_hidden(const fa_net *net, int32_t layer, const char *fn)
{
    if (net->n_layers < 2)
        return fa_fail(FA_ERR_ARG, fn, "a one-layer network has no hidden layer for dropout");
    return check_layer(net, layer, 1, net->n_layers - 1, fn);
}

FA_API int fa_net_set_dropout(fa_net *net, int32_t layer, double p)
{
    static const char fn[] = "fa_net_set_dropout";
    int rc = fa_check_net(net, fn);
    if (rc || (rc = check_hidden(net, layer, fn)))
        return rc;
    if (!(p >= 0.0 && p < 1.0))
        return fa_fail(FA_ERR_ARG, fn, "p = %g, expected 0 <= p < 1", p);
    /* turning dropout on needs the mask buffers: rebuild at the next step */
    if (p > 0 && net->layers[layer].dropout == 0 && net->ws)
        net->ws_stale = 1;
    net->layers[layer].dropout = p;
    return FA_OK;
}

FA_API int fa_net_get_dropout(const fa_net *net, int32_t layer, double *p)
{
    static const char fn[] = "fa_net_get_dropout";
    int rc = check_out(net, p, "p", fn);
    if (rc || (rc = check_hidden(net, layer, fn)))
        return rc;
    *p = net->layers[layer].dropout;
    return FA_OK;
}

FA_API int fa_net_seed_dropout(fa_net *net, uint64_t seed)
{
    int rc = fa_check_net(net, "fa_net_seed_dropout");
    if (rc)
        return rc;
    fa_rng_seed(&net->rng_drop, seed ^ 0x6A09E667F3BCC909ull);
    return FA_OK;
}

/* ------------------------------------------------------------ optimiser */

FA_API int fa_net_set_optimizer(fa_net *net, int32_t optimizer)
{
    static const char fn[] = "fa_net_set_optimizer";
    int rc = fa_check_net(net, fn);
    if (rc || (rc = check_enum(optimizer, FA_ENUM_OPTIMIZER, "optimizer", fn)))
        return rc;
    net->optimizer = optimizer;
    fa_optimizer_reset(net);
    return FA_OK;
}

FA_API int fa_net_get_optimizer(const fa_net *net, int32_t *optimizer)
{
    int rc = check_out(net, optimizer, "optimizer", "fa_net_get_optimizer");
    if (rc)
        return rc;
    *optimizer = net->optimizer;
    return FA_OK;
}

FA_API int fa_net_set_hparam(fa_net *net, int32_t hparam, double value)
{
    static const char fn[] = "fa_net_set_hparam";
    int rc = fa_check_net(net, fn);
    if (rc || (rc = check_enum(hparam, FA_ENUM_HPARAM, "hparam", fn)))
        return rc;
    const char *want = "";
    if (!fa_hparam_valid(hparam, value, &want))
        return fa_fail(FA_ERR_ARG, fn, "%s = %g, expected %s",
                       fa_enum_name(FA_ENUM_HPARAM, hparam), value, want);
    net->hp[hparam] = value;
    return FA_OK;
}

FA_API int fa_net_get_hparam(const fa_net *net, int32_t hparam, double *value)
{
    static const char fn[] = "fa_net_get_hparam";
    int rc = check_out(net, value, "value", fn);
    if (rc || (rc = check_enum(hparam, FA_ENUM_HPARAM, "hparam", fn)))
        return rc;
    *value = net->hp[hparam];
    return FA_OK;
}

FA_API int fa_net_reset_optimizer(fa_net *net)
{
    int rc = fa_check_net(net, "fa_net_reset_optimizer");
    if (rc)
        return rc;
    fa_optimizer_reset(net);
    return FA_OK;
}

/* ----------------------------------------------------------- parameters */

FA_API int fa_net_param_count(const fa_net *net, int64_t *count)
{
    int rc = check_out(net, count, "count", "fa_net_param_count");
    if (rc)
        return rc;
    *count = net->n_params;
    return FA_OK;
}

FA_API int fa_net_get_params(const fa_net *net, float *buf, int64_t n)
{
    int rc = fa_check_flat(net, buf, "buf", n, 0, "fa_net_get_params");
    if (rc)
        return rc;
    memcpy(buf, net->params, (size_t)n * sizeof *buf);
    return FA_OK;
}

FA_API int fa_net_set_params(fa_net *net, const float *buf, int64_t n)
{
    int rc = fa_check_flat(net, buf, "buf", n, 1, "fa_net_set_params");
    if (rc)
        return rc;
    memcpy(net->params, buf, (size_t)n * sizeof *buf);
    net->bounds_valid = 0;
    return FA_OK;
}

FA_API int fa_net_params_data(const fa_net *net, const float **data)
{
    int rc = check_out(net, data, "data", "fa_net_params_data");
    if (rc)
        return rc;
    *data = net->params;
    return FA_OK;
}

FA_API int fa_net_layer_offsets(const fa_net *net, int32_t layer, int64_t *w_offset,
                                int64_t *b_offset)
{
    static const char fn[] = "fa_net_layer_offsets";
    int rc = fa_check_net(net, fn);
    if (rc)
        return rc;
    if (!w_offset || !b_offset)
        return fa_fail(FA_ERR_NULL, fn, "%s is NULL", w_offset ? "b_offset" : "w_offset");
    if ((rc = check_layer(net, layer, 1, net->n_layers, fn)))
        return rc;
    *w_offset = net->layers[layer].w_off;
    *b_offset = net->layers[layer].b_off;
    return FA_OK;
}
