/* net.c -- the handle: creation, layout of the flat blocks, validation of
 * every public argument, workspaces, and the step driver that joins the
 * rules (rules.c) to the optimiser (optimizer.c). */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Largest parameter count accepted: 2^40 floats (4 TiB) keeps every byte
 * count far from int64/size_t overflow. */
#define FA_MAX_PARAMS ((int64_t)1 << 40)

static const double fa_hp_default[FA_N_HPARAMS] = {
    [FA_HP_LR] = 0.01,         [FA_HP_MOMENTUM] = 0.9,
    [FA_HP_BETA1] = 0.9,       [FA_HP_BETA2] = 0.999,
    [FA_HP_EPSILON] = 1e-8,    [FA_HP_WEIGHT_DECAY] = 0.0,
    [FA_HP_RMS_DECAY] = 0.9,   [FA_HP_LEAKY_SLOPE] = 0.01,
};

static const char *const fa_hp_name[FA_N_HPARAMS] = {
    [FA_HP_LR] = "FA_HP_LR (learning rate)",
    [FA_HP_MOMENTUM] = "FA_HP_MOMENTUM (momentum)",
    [FA_HP_BETA1] = "FA_HP_BETA1 (beta1)",
    [FA_HP_BETA2] = "FA_HP_BETA2 (beta2)",
    [FA_HP_EPSILON] = "FA_HP_EPSILON (epsilon)",
    [FA_HP_WEIGHT_DECAY] = "FA_HP_WEIGHT_DECAY (weight decay)",
    [FA_HP_RMS_DECAY] = "FA_HP_RMS_DECAY (RMSprop decay)",
    [FA_HP_LEAKY_SLOPE] = "FA_HP_LEAKY_SLOPE (leaky ReLU slope)",
};

const char *fa_hparam_name(int32_t hparam)
{
    return hparam >= 0 && hparam < FA_N_HPARAMS ? fa_hp_name[hparam] : "unknown";
}

/* The one definition of the valid hyperparameter values, for
 * fa_net_set_hparam and for model files.  Values are judged after the
 * conversion to float that the optimiser computes in: 1e-50 is not a usable
 * learning rate (it becomes 0), nor 1e39 (inf), nor 0.9999999999 a usable
 * beta2 (it rounds to 1, and 1 - beta2 to 0). */
int fa_hparam_valid(int32_t hparam, double value, const char **want)
{
    const float f = (float)value;
    const int fin = isfinite(value) && isfinite(f);
    switch (hparam) {
    case FA_HP_LR:
    case FA_HP_EPSILON:
        *want = "a float >= 1.2e-38 (FLT_MIN) and <= 3.4e38 (FLT_MAX)";
        return fin && f >= FLT_MIN;
    case FA_HP_WEIGHT_DECAY:
        *want = "a float >= 0 and <= 3.4e38 (FLT_MAX)";
        return fin && value >= 0;
    case FA_HP_LEAKY_SLOPE:
        *want = "a value in [0, 1]";
        return value >= 0 && value <= 1;
    default: /* momentum, betas, RMSprop decay */
        *want = "a value in [0, 1) that stays below 1 as a float";
        return value >= 0 && f < 1.0f;
    }
}

int fa_scale_valid(double scale)
{
    const float f = (float)scale;
    return scale == 0.0 || (isfinite(scale) && isfinite(f) && f >= FLT_MIN);
}

int64_t fa_find_nonfinite(const float *p, int64_t count)
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

/* ----------------------------------------------------------- validation */

static int check_net(const fa_net *net, const char *fn)
{
    if (!net)
        return fa_fail(FA_ERR_NULL, fn, "net is NULL (expected a handle from fa_net_create)");
    return FA_OK;
}

/* A getter's two checks: the handle, and where to write the answer. */
static int check_out(const fa_net *net, const void *out, const char *name, const char *fn)
{
    int rc = check_net(net, fn);
    if (rc)
        return rc;
    if (!out)
        return fa_fail(FA_ERR_NULL, fn, "%s is NULL (expected somewhere to write it)", name);
    return FA_OK;
}

/* A caller's flat buffer in the parameter layout: n == n_params floats,
 * and, for a buffer the library will take values from, all finite. */
static int check_flat(const fa_net *net, const float *buf, const char *name, int64_t n,
                      int need_finite, const char *fn)
{
    int rc = check_net(net, fn);
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

/* An enum argument: 0 <= value < count. */
static int check_enum(int32_t value, int32_t count, const char *arg, const char *type,
                      const char *fn)
{
    if (value < 0 || value >= count)
        return fa_fail(FA_ERR_ARG, fn, "%s = %d is not a %s (expected 0..%d)", arg,
                       (int)value, type, (int)count - 1);
    return FA_OK;
}

/* A (rows, batch) buffer with leading dimension ld. */
static int check_matrix(const float *p, const char *name, int32_t rows,
                        int32_t ld, const char *ldname, const char *fn)
{
    if (!p)
        return fa_fail(FA_ERR_NULL, fn, "%s is NULL (expected a (%d, batch) buffer)",
                       name, (int)rows);
    if (ld < rows)
        return fa_fail(FA_ERR_SIZE, fn, "%s = %d, expected >= %d (rows of %s)",
                       ldname, (int)ld, (int)rows, name);
    return FA_OK;
}

static int check_batch(int32_t batch, const char *fn)
{
    if (batch < 1)
        return fa_fail(FA_ERR_SIZE, fn, "batch = %d, expected >= 1", (int)batch);
    return FA_OK;
}

static int check_layer(const fa_net *net, int32_t layer, int32_t lo, int32_t hi,
                       const char *fn)
{
    if (layer < lo || layer > hi)
        return fa_fail(FA_ERR_ARG, fn, "layer = %d, expected %d..%d", (int)layer,
                       (int)lo, (int)hi);
    (void)net;
    return FA_OK;
}

static int check_len(int64_t n, int64_t want, const char *name, const char *fn)
{
    if (n != want)
        return fa_fail(FA_ERR_SIZE, fn, "%s = %lld, expected %lld", name,
                       (long long)n, (long long)want);
    return FA_OK;
}

/* ----------------------------------------------------------- life cycle */

int fa_net_alloc(fa_net **out, int32_t n_layers, const int32_t *sizes,
                 const int32_t *activations, int32_t loss, const char *fn)
{
    if (!out)
        return fa_fail(FA_ERR_NULL, fn, "out is NULL (expected a fa_net * to fill)");
    *out = NULL;
    if (!sizes)
        return fa_fail(FA_ERR_NULL, fn, "sizes is NULL (expected n_layers+1 widths)");
    if (!activations)
        return fa_fail(FA_ERR_NULL, fn, "activations is NULL (expected n_layers entries)");
    if (n_layers < 1 || n_layers > 100000)
        return fa_fail(FA_ERR_SIZE, fn, "n_layers = %d, expected 1..100000", (int)n_layers);
    int rc = check_enum(loss, FA_N_LOSSES, "loss", "fa_loss", fn);
    if (rc)
        return rc;
    int64_t n_params = 0, n_hidden = 0, fa_len = 0;
    for (int32_t l = 0; l <= n_layers; l++) {
        if (sizes[l] < 1)
            return fa_fail(FA_ERR_SIZE, fn, "sizes[%d] = %d, expected >= 1", (int)l,
                           (int)sizes[l]);
        if (l == 0)
            continue;
        int64_t nw = (int64_t)sizes[l] * sizes[l - 1];
        n_params += nw + sizes[l];
        if (l >= 2)
            fa_len += nw;
        if (l < n_layers)
            n_hidden += sizes[l];
        if (n_params > FA_MAX_PARAMS)
            return fa_fail(FA_ERR_SIZE, fn, "parameter count exceeds 2^40");
    }
    if (n_hidden > INT32_MAX)
        return fa_fail(FA_ERR_SIZE, fn, "total hidden width %lld exceeds INT32_MAX",
                       (long long)n_hidden);
    for (int32_t l = 0; l < n_layers; l++)
        if (activations[l] < 0 || activations[l] >= FA_N_ACTIVATIONS)
            return fa_fail(FA_ERR_ARG, fn,
                           "activations[%d] = %d is not a fa_activation (expected 0..%d)",
                           (int)l, (int)activations[l], FA_N_ACTIVATIONS - 1);
    if (loss != FA_LOSS_MSE && activations[n_layers - 1] != FA_ACT_IDENTITY)
        return fa_fail(FA_ERR_ARG, fn,
                       "loss %d fuses its own link function: the last layer's activation "
                       "must be FA_ACT_IDENTITY (0), got %d",
                       (int)loss, (int)activations[n_layers - 1]);

    fa_net *net = calloc(1, sizeof *net);
    if (!net)
        goto nomem;
    const size_t L1 = (size_t)n_layers + 1;
    net->n_layers = n_layers;
    net->loss = loss;
    net->n_params = n_params;
    net->n_hidden = (int32_t)n_hidden;
    net->fb_fa_len = fa_len;
    net->fb_dfa_len = (int64_t)sizes[n_layers] * n_hidden;
    net->rule = FA_RULE_BP;
    net->dfa_variant = FA_DFA_AFTER_ACTIVATION;
    net->fb_dist = FA_DIST_UNIFORM;
    net->fb_scale = FA_SCALE_AUTO;
    net->optimizer = FA_OPT_SGD;
    memcpy(net->hp, fa_hp_default, sizeof net->hp);

    net->sizes = calloc(L1, sizeof *net->sizes);
    net->act = calloc(L1, sizeof *net->act);
    net->dropout = calloc(L1, sizeof *net->dropout);
    net->w_off = calloc(L1, sizeof *net->w_off);
    net->b_off = calloc(L1, sizeof *net->b_off);
    net->fa_off = calloc(L1, sizeof *net->fa_off);
    net->hid_off = calloc(L1, sizeof *net->hid_off);
    net->z = calloc(L1, sizeof *net->z);
    net->h = calloc(L1, sizeof *net->h);
    net->hbuf = calloc(L1, sizeof *net->hbuf);
    net->mask = calloc(L1, sizeof *net->mask);
    net->params = calloc((size_t)n_params, sizeof *net->params);
    net->grad = calloc((size_t)n_params, sizeof *net->grad);
    net->opt_state = calloc(2 * (size_t)n_params, sizeof *net->opt_state);
    if (!net->sizes || !net->act || !net->dropout || !net->w_off || !net->b_off ||
        !net->fa_off || !net->hid_off || !net->z || !net->h || !net->hbuf ||
        !net->mask || !net->params || !net->grad || !net->opt_state)
        goto nomem;

    memcpy(net->sizes, sizes, L1 * sizeof *sizes);
    int64_t off = 0, fo = 0;
    int32_t ho = 0;
    for (int32_t l = 1; l <= n_layers; l++) {
        int64_t nw = (int64_t)sizes[l] * sizes[l - 1];
        net->act[l] = activations[l - 1];
        net->w_off[l] = off;
        net->b_off[l] = off + nw;
        off += nw + sizes[l];
        if (l >= 2) {
            net->fa_off[l] = fo;
            fo += nw;
        }
        if (l < n_layers) {
            net->hid_off[l] = ho;
            ho += sizes[l];
        }
    }
    *out = net;
    return FA_OK;

nomem:
    fa_net_free(net);
    return fa_fail(FA_ERR_NOMEM, fn, "out of memory for a network of %lld parameters",
                   (long long)n_params);
}

FA_API int fa_net_create(fa_net **out, int32_t n_layers, const int32_t *sizes,
                         const int32_t *activations, int32_t loss, uint64_t seed)
{
    if (!out)
        return fa_fail(FA_ERR_NULL, "fa_net_create", "out is NULL (expected a fa_net * to fill)");
    *out = NULL;
    fa_net *net = NULL;
    int rc = fa_net_alloc(&net, n_layers, sizes, activations, loss, "fa_net_create");
    if (rc != FA_OK)
        return rc;
    fa_rng_seed(&net->rng, seed);
    for (int32_t l = 1; l <= n_layers; l++)
        fa_init_weights_layer(&net->rng, FA_INIT_DEFAULT, net->act[l],
                              net->params + net->w_off[l], sizes[l], sizes[l - 1]);
    *out = net;
    return FA_OK;
}

FA_API void fa_net_free(fa_net *net)
{
    if (!net)
        return;
    free(net->sizes);
    free(net->act);
    free(net->dropout);
    free(net->w_off);
    free(net->b_off);
    free(net->fa_off);
    free(net->hid_off);
    free(net->z);
    free(net->h);
    free(net->hbuf);
    free(net->mask);
    free(net->params);
    free(net->grad);
    free(net->opt_state);
    free(net->fb_fa);
    free(net->fb_dfa);
    free(net->ws);
    free(net->grad_aux);
    free(net);
}

/* -------------------------------------------------------------- getters */

FA_API int fa_net_num_layers(const fa_net *net, int32_t *n_layers)
{
    static const char fn[] = "fa_net_num_layers";
    int rc = check_out(net, n_layers, "n_layers", fn);
    if (rc)
        return rc;
    *n_layers = net->n_layers;
    return FA_OK;
}

FA_API int fa_net_get_sizes(const fa_net *net, int32_t *sizes, int64_t n)
{
    static const char fn[] = "fa_net_get_sizes";
    int rc = check_net(net, fn);
    if (rc)
        return rc;
    if (!sizes)
        return fa_fail(FA_ERR_NULL, fn, "sizes is NULL (expected n_layers+1 entries)");
    if ((rc = check_len(n, (int64_t)net->n_layers + 1, "n", fn)))
        return rc;
    memcpy(sizes, net->sizes, (size_t)n * sizeof *sizes);
    return FA_OK;
}

FA_API int fa_net_get_activation(const fa_net *net, int32_t layer, int32_t *activation)
{
    static const char fn[] = "fa_net_get_activation";
    int rc = check_out(net, activation, "activation", fn);
    if (rc)
        return rc;
    if ((rc = check_layer(net, layer, 1, net->n_layers, fn)))
        return rc;
    *activation = net->act[layer];
    return FA_OK;
}

FA_API int fa_net_get_loss(const fa_net *net, int32_t *loss)
{
    static const char fn[] = "fa_net_get_loss";
    int rc = check_out(net, loss, "loss", fn);
    if (rc)
        return rc;
    *loss = net->loss;
    return FA_OK;
}

/* ------------------------------------------------------------ workspace */

int fa_net_ensure_workspace(fa_net *net, int32_t batch, const char *fn)
{
    if (batch <= net->ws_batch)
        return FA_OK;
    const int32_t L = net->n_layers;
    int64_t rows = 0; /* floats per column of the whole workspace */
    for (int32_t l = 1; l <= L; l++)
        rows += l < L ? 3 * (int64_t)net->sizes[l] : net->sizes[l];
    rows += net->sizes[L] + net->n_hidden + 1; /* e, delta, ones */
    if (rows > (FA_MAX_PARAMS << 4) / batch)
        return fa_fail(FA_ERR_SIZE, fn, "batch = %d needs a workspace beyond 2^44 floats",
                       (int)batch);
    float *ws = malloc((size_t)rows * (size_t)batch * sizeof *ws);
    if (!ws)
        return fa_fail(FA_ERR_NOMEM, fn, "out of memory for a workspace of batch %d",
                       (int)batch);
    free(net->ws);
    net->ws = ws;
    net->ws_batch = batch;
    float *p = ws;
    const size_t B = (size_t)batch;
    for (int32_t l = 1; l <= L; l++) {
        const size_t n = (size_t)net->sizes[l];
        net->z[l] = p;
        net->h[l] = p;
        p += n * B;
        if (l < L) {
            net->hbuf[l] = p;
            p += n * B;
            net->mask[l] = p;
            p += n * B;
        }
    }
    net->e = p;
    p += (size_t)net->sizes[L] * B;
    net->delta = p;
    p += (size_t)net->n_hidden * B;
    net->ones = p;
    for (size_t j = 0; j < B; j++)
        net->ones[j] = 1.0f;
    return FA_OK;
}

FA_API int fa_net_reserve(fa_net *net, int32_t max_batch)
{
    static const char fn[] = "fa_net_reserve";
    int rc = check_net(net, fn);
    if (rc)
        return rc;
    if (max_batch < 1)
        return fa_fail(FA_ERR_SIZE, fn, "max_batch = %d, expected >= 1", (int)max_batch);
    return fa_net_ensure_workspace(net, max_batch, fn);
}

/* ------------------------------------------------------------- feedback */

int fa_net_alloc_feedback(fa_net *net, int32_t rule, const char *fn)
{
    float **block = rule == FA_RULE_FA ? &net->fb_fa
                  : rule == FA_RULE_DFA ? &net->fb_dfa : NULL;
    int64_t len = rule == FA_RULE_FA ? net->fb_fa_len : net->fb_dfa_len;
    if (!block || *block || len == 0)
        return FA_OK; /* BP, already there, or a one-layer net (no feedback) */
    *block = calloc((size_t)len, sizeof **block);
    if (!*block)
        return fa_fail(FA_ERR_NOMEM, fn, "out of memory for %lld feedback weights",
                       (long long)len);
    return FA_OK;
}

void fa_net_draw_feedback(fa_net *net, int32_t rule)
{
    const int32_t L = net->n_layers;
    if (rule == FA_RULE_FA && net->fb_fa) {
        for (int32_t l = 2; l <= L; l++) {
            /* F_l (n_l, n_{l-1}) produces the error of layer l-1 */
            double s = net->fb_scale > 0 ? net->fb_scale : 1.0 / sqrt((double)net->sizes[l - 1]);
            fa_fill_random(&net->rng, net->fb_dist, s, net->fb_fa + net->fa_off[l],
                           (int64_t)net->sizes[l] * net->sizes[l - 1]);
        }
    } else if (rule == FA_RULE_DFA && net->fb_dfa) {
        for (int32_t l = 1; l < L; l++) {
            /* G_l (n_L, n_l), columns hid_off[l].. of the stacked matrix */
            double s = net->fb_scale > 0 ? net->fb_scale : 1.0 / sqrt((double)net->sizes[l]);
            fa_fill_random(&net->rng, net->fb_dist, s,
                           net->fb_dfa + (size_t)net->hid_off[l] * (size_t)net->sizes[L],
                           (int64_t)net->sizes[L] * net->sizes[l]);
        }
    }
}

int fa_net_ensure_feedback(fa_net *net, int32_t rule, const char *fn)
{
    int fresh = (rule == FA_RULE_FA && !net->fb_fa) || (rule == FA_RULE_DFA && !net->fb_dfa);
    int rc = fa_net_alloc_feedback(net, rule, fn);
    if (rc)
        return rc;
    if (fresh)
        fa_net_draw_feedback(net, rule);
    return FA_OK;
}

FA_API int fa_net_set_rule(fa_net *net, int32_t rule)
{
    static const char fn[] = "fa_net_set_rule";
    int rc = check_net(net, fn);
    if (rc || (rc = check_enum(rule, FA_N_RULES, "rule", "fa_rule", fn)) ||
        (rc = fa_net_ensure_feedback(net, rule, fn)))
        return rc;
    net->rule = rule;
    return FA_OK;
}

FA_API int fa_net_get_rule(const fa_net *net, int32_t *rule)
{
    static const char fn[] = "fa_net_get_rule";
    int rc = check_out(net, rule, "rule", fn);
    if (rc)
        return rc;
    *rule = net->rule;
    return FA_OK;
}

FA_API int fa_net_set_feedback_init(fa_net *net, int32_t distribution, double scale)
{
    static const char fn[] = "fa_net_set_feedback_init";
    int rc = check_net(net, fn);
    if (rc || (rc = check_enum(distribution, FA_N_DISTRIBUTIONS, "distribution",
                               "fa_distribution", fn)))
        return rc;
    if (!fa_scale_valid(scale))
        return fa_fail(FA_ERR_ARG, fn, "scale = %g, expected a float in [1.2e-38, 3.4e38], "
                       "or 0 (FA_SCALE_AUTO)", scale);
    net->fb_dist = distribution;
    net->fb_scale = scale;
    fa_net_draw_feedback(net, FA_RULE_FA);
    fa_net_draw_feedback(net, FA_RULE_DFA);
    return FA_OK;
}

FA_API int fa_net_set_dfa_variant(fa_net *net, int32_t variant)
{
    static const char fn[] = "fa_net_set_dfa_variant";
    int rc = check_net(net, fn);
    if (rc)
        return rc;
    if (variant != FA_DFA_AFTER_ACTIVATION && variant != FA_DFA_BEFORE_ACTIVATION)
        return fa_fail(FA_ERR_ARG, fn, "variant = %d, expected 0 (after activation) "
                       "or 1 (before activation)", (int)variant);
    net->dfa_variant = variant;
    return FA_OK;
}

FA_API int fa_net_get_dfa_variant(const fa_net *net, int32_t *variant)
{
    static const char fn[] = "fa_net_get_dfa_variant";
    int rc = check_out(net, variant, "variant", fn);
    if (rc)
        return rc;
    *variant = net->dfa_variant;
    return FA_OK;
}

/* Shape of a feedback matrix; validates rule and layer. */
static int feedback_shape(const fa_net *net, int32_t rule, int32_t layer,
                          int32_t *rows, int32_t *cols, const char *fn)
{
    const int32_t L = net->n_layers;
    if (rule == FA_RULE_FA) {
        if (L < 2)
            return fa_fail(FA_ERR_ARG, fn, "a one-layer network has no FA feedback");
        int rc = check_layer(net, layer, 2, L, fn);
        if (rc)
            return rc;
        *rows = net->sizes[layer];
        *cols = net->sizes[layer - 1];
        return FA_OK;
    }
    if (rule == FA_RULE_DFA) {
        if (L < 2)
            return fa_fail(FA_ERR_ARG, fn, "a one-layer network has no DFA feedback");
        int rc = check_layer(net, layer, 1, L - 1, fn);
        if (rc)
            return rc;
        *rows = net->sizes[L];
        *cols = net->sizes[layer];
        return FA_OK;
    }
    return fa_fail(FA_ERR_ARG, fn, "rule = %d has no feedback matrices "
                   "(expected 1 FA or 2 DFA)", (int)rule);
}

static float *feedback_ptr(fa_net *net, int32_t rule, int32_t layer)
{
    if (rule == FA_RULE_FA)
        return net->fb_fa + net->fa_off[layer];
    return net->fb_dfa + (size_t)net->hid_off[layer] * (size_t)net->sizes[net->n_layers];
}

FA_API int fa_net_feedback_shape(const fa_net *net, int32_t rule, int32_t layer,
                                 int32_t *rows, int32_t *cols)
{
    static const char fn[] = "fa_net_feedback_shape";
    int rc = check_net(net, fn);
    if (rc)
        return rc;
    if (!rows || !cols)
        return fa_fail(FA_ERR_NULL, fn, "%s is NULL", rows ? "cols" : "rows");
    return feedback_shape(net, rule, layer, rows, cols, fn);
}

FA_API int fa_net_get_feedback(fa_net *net, int32_t rule, int32_t layer, float *buf,
                               int64_t n)
{
    static const char fn[] = "fa_net_get_feedback";
    int32_t r = 0, c = 0;
    int rc = check_net(net, fn);
    if (rc || (rc = feedback_shape(net, rule, layer, &r, &c, fn)))
        return rc;
    if (!buf)
        return fa_fail(FA_ERR_NULL, fn, "buf is NULL (expected (%d, %d) floats)", (int)r, (int)c);
    if ((rc = check_len(n, (int64_t)r * c, "n", fn)) || (rc = fa_net_ensure_feedback(net, rule, fn)))
        return rc;
    memcpy(buf, feedback_ptr(net, rule, layer), (size_t)n * sizeof *buf);
    return FA_OK;
}

FA_API int fa_net_set_feedback(fa_net *net, int32_t rule, int32_t layer,
                               const float *buf, int64_t n)
{
    static const char fn[] = "fa_net_set_feedback";
    int32_t r = 0, c = 0;
    int rc = check_net(net, fn);
    if (rc || (rc = feedback_shape(net, rule, layer, &r, &c, fn)))
        return rc;
    if (!buf)
        return fa_fail(FA_ERR_NULL, fn, "buf is NULL (expected (%d, %d) floats)", (int)r, (int)c);
    if ((rc = check_len(n, (int64_t)r * c, "n", fn)))
        return rc;
    int64_t bad = fa_find_nonfinite(buf, n);
    if (bad >= 0)
        return fa_fail(FA_ERR_NONFINITE, fn, "buf[%lld] is not finite", (long long)bad);
    if ((rc = fa_net_ensure_feedback(net, rule, fn)))
        return rc;
    memcpy(feedback_ptr(net, rule, layer), buf, (size_t)n * sizeof *buf);
    return FA_OK;
}

/* ---------------------------------------------------- weights, dropout */

static void reset_optimizer_state(fa_net *net)
{
    memset(net->opt_state, 0, 2 * (size_t)net->n_params * sizeof *net->opt_state);
    net->opt_step = 0;
}

FA_API int fa_net_init_weights(fa_net *net, int32_t scheme)
{
    static const char fn[] = "fa_net_init_weights";
    int rc = check_net(net, fn);
    if (rc || (rc = check_enum(scheme, FA_N_INITS, "scheme", "fa_init", fn)))
        return rc;
    for (int32_t l = 1; l <= net->n_layers; l++) {
        fa_init_weights_layer(&net->rng, scheme, net->act[l], net->params + net->w_off[l],
                              net->sizes[l], net->sizes[l - 1]);
        memset(net->params + net->b_off[l], 0, (size_t)net->sizes[l] * sizeof(float));
    }
    reset_optimizer_state(net);
    return FA_OK;
}

FA_API int fa_net_set_dropout(fa_net *net, int32_t layer, double p)
{
    static const char fn[] = "fa_net_set_dropout";
    int rc = check_net(net, fn);
    if (rc)
        return rc;
    if (net->n_layers < 2)
        return fa_fail(FA_ERR_ARG, fn, "a one-layer network has no hidden layer for dropout");
    if ((rc = check_layer(net, layer, 1, net->n_layers - 1, fn)))
        return rc;
    if (!(p >= 0.0 && p < 1.0))
        return fa_fail(FA_ERR_ARG, fn, "p = %g, expected 0 <= p < 1", p);
    net->dropout[layer] = p;
    return FA_OK;
}

FA_API int fa_net_get_dropout(const fa_net *net, int32_t layer, double *p)
{
    static const char fn[] = "fa_net_get_dropout";
    int rc = check_out(net, p, "p", fn);
    if (rc)
        return rc;
    if (net->n_layers < 2)
        return fa_fail(FA_ERR_ARG, fn, "a one-layer network has no hidden layer");
    if ((rc = check_layer(net, layer, 1, net->n_layers - 1, fn)))
        return rc;
    *p = net->dropout[layer];
    return FA_OK;
}

/* ------------------------------------------------------------ optimiser */

FA_API int fa_net_set_optimizer(fa_net *net, int32_t optimizer)
{
    static const char fn[] = "fa_net_set_optimizer";
    int rc = check_net(net, fn);
    if (rc || (rc = check_enum(optimizer, FA_N_OPTIMIZERS, "optimizer", "fa_optimizer", fn)))
        return rc;
    net->optimizer = optimizer;
    reset_optimizer_state(net);
    return FA_OK;
}

FA_API int fa_net_get_optimizer(const fa_net *net, int32_t *optimizer)
{
    static const char fn[] = "fa_net_get_optimizer";
    int rc = check_out(net, optimizer, "optimizer", fn);
    if (rc)
        return rc;
    *optimizer = net->optimizer;
    return FA_OK;
}

FA_API int fa_net_set_hparam(fa_net *net, int32_t hparam, double value)
{
    static const char fn[] = "fa_net_set_hparam";
    int rc = check_net(net, fn);
    if (rc || (rc = check_enum(hparam, FA_N_HPARAMS, "hparam", "fa_hparam", fn)))
        return rc;
    const char *want = "";
    if (!fa_hparam_valid(hparam, value, &want))
        return fa_fail(FA_ERR_ARG, fn, "%s = %g, expected %s", fa_hp_name[hparam], value, want);
    net->hp[hparam] = value;
    return FA_OK;
}

FA_API int fa_net_get_hparam(const fa_net *net, int32_t hparam, double *value)
{
    static const char fn[] = "fa_net_get_hparam";
    int rc = check_out(net, value, "value", fn);
    if (rc || (rc = check_enum(hparam, FA_N_HPARAMS, "hparam", "fa_hparam", fn)))
        return rc;
    *value = net->hp[hparam];
    return FA_OK;
}

FA_API int fa_net_reset_optimizer(fa_net *net)
{
    int rc = check_net(net, "fa_net_reset_optimizer");
    if (rc)
        return rc;
    reset_optimizer_state(net);
    return FA_OK;
}

/* ---------------------------------------------------- forward and train */

/* Every entry of p (rows, batch) with ld finite?  A NaN in the input would
 * otherwise surface as NaN output, or vanish silently behind a ReLU. */
static int check_finite(const float *p, const char *name, int32_t rows, int32_t ld,
                        int32_t batch, const char *fn)
{
    for (int32_t j = 0; j < batch; j++) {
        int64_t i = fa_find_nonfinite(p + (size_t)j * (size_t)ld, rows);
        if (i >= 0)
            return fa_fail(FA_ERR_NONFINITE, fn, "%s has a NaN or infinity at row %lld, "
                           "column %d (0-based)", name, (long long)i, (int)j);
    }
    return FA_OK;
}

/* x (n_0, batch) with ldx and t (n_L, batch) with ldt (t optional). */
static int check_batch_io(const fa_net *net, const float *x, int32_t ldx,
                          const float *t, int32_t ldt, int need_t, int32_t batch,
                          const char *fn)
{
    const int32_t n0 = net ? net->sizes[0] : 0, nL = net ? net->sizes[net->n_layers] : 0;
    int rc = check_net(net, fn);
    if (rc || (rc = check_matrix(x, "x", n0, ldx, "ldx", fn)))
        return rc;
    if (need_t && (rc = check_matrix(t, "t", nL, ldt, "ldt", fn)))
        return rc;
    if ((rc = check_batch(batch, fn)) || (rc = check_finite(x, "x", n0, ldx, batch, fn)))
        return rc;
    if (need_t)
        return check_finite(t, "t", nL, ldt, batch, fn);
    return FA_OK;
}

FA_API int fa_net_forward(fa_net *net, const float *x, int32_t ldx, int32_t batch,
                          float *y, int32_t ldy)
{
    static const char fn[] = "fa_net_forward";
    int rc = check_batch_io(net, x, ldx, NULL, 0, 0, batch, fn);
    if (rc)
        return rc;
    const int32_t L = net->n_layers, nL = net->sizes[L];
    if ((rc = check_matrix(y, "y", nL, ldy, "ldy", fn)) ||
        (rc = fa_net_ensure_workspace(net, batch, fn)))
        return rc;
    fa_forward_pass(net, x, ldx, batch, 0);
    rc = check_finite(net->z[L], "the network output (diverged parameters?)", nL, nL,
                      batch, fn);
    if (rc)
        return rc;
    for (int32_t j = 0; j < batch; j++)
        memcpy(y + (size_t)j * (size_t)ldy, net->z[L] + (size_t)j * (size_t)nL,
               (size_t)nL * sizeof *y);
    fa_loss_link(net->loss, y, nL, batch, ldy);
    return FA_OK;
}

FA_API int fa_net_loss(fa_net *net, const float *x, int32_t ldx, const float *t,
                       int32_t ldt, int32_t batch, float *loss)
{
    static const char fn[] = "fa_net_loss";
    int rc = check_batch_io(net, x, ldx, t, ldt, 1, batch, fn);
    if (rc)
        return rc;
    if (!loss)
        return fa_fail(FA_ERR_NULL, fn, "loss is NULL");
    if ((rc = fa_net_ensure_workspace(net, batch, fn)))
        return rc;
    const int32_t L = net->n_layers, nL = net->sizes[L];
    fa_forward_pass(net, x, ldx, batch, 0);
    rc = check_finite(net->z[L], "the network output (diverged parameters?)", nL, nL,
                      batch, fn);
    if (rc)
        return rc;
    *loss = (float)fa_loss_compute(net->loss, net->z[L], nL, t, ldt, nL, batch, NULL, 0);
    return FA_OK;
}

/* Forward + rule into grad, with the finiteness checks every training entry
 * point shares.  Nothing but the workspace and grad is written. */
static int update_into(fa_net *net, const float *x, int32_t ldx, const float *t,
                       int32_t ldt, int32_t batch, float *grad, double *loss,
                       const char *fn)
{
    int rc = fa_net_ensure_workspace(net, batch, fn);
    if (rc || (rc = fa_net_ensure_feedback(net, net->rule, fn)))
        return rc;
    /* Dropout draws from the RNG: a failed step puts the state back, so it
     * leaves no trace at all and runs stay reproducible. */
    const fa_rng saved = net->rng;
    fa_compute_grad(net, net->rule, x, ldx, t, ldt, batch, 1, grad, loss);
    if (!isfinite(*loss)) {
        net->rng = saved;
        return fa_fail(FA_ERR_NONFINITE, fn, "the loss is %g (diverged parameters?); "
                       "nothing was updated", *loss);
    }
    int64_t bad = fa_find_nonfinite(grad, net->n_params);
    if (bad >= 0) {
        net->rng = saved;
        return fa_fail(FA_ERR_NONFINITE, fn, "update entry %lld is not finite; nothing "
                       "was updated", (long long)bad);
    }
    return FA_OK;
}

/* The optimiser step, and its one failure that cannot be seen in advance. */
static int optimizer_step(fa_net *net, const float *grad, const char *fn)
{
    if (fa_optimizer_step(net, grad))
        return fa_fail(FA_ERR_NONFINITE, fn, "the optimiser step overflowed the float range: "
                       "some parameters are no longer finite (learning rate %g too large?); "
                       "restore them with fa_net_set_params or fa_net_load",
                       net->hp[FA_HP_LR]);
    return FA_OK;
}

FA_API int fa_net_train_step(fa_net *net, const float *x, int32_t ldx, const float *t,
                             int32_t ldt, int32_t batch, float *loss)
{
    static const char fn[] = "fa_net_train_step";
    double l = 0;
    int rc = check_batch_io(net, x, ldx, t, ldt, 1, batch, fn);
    if (rc || (rc = update_into(net, x, ldx, t, ldt, batch, net->grad, &l, fn)))
        return rc;
    if (loss)
        *loss = (float)l;
    return optimizer_step(net, net->grad, fn);
}

FA_API int fa_net_compute_update(fa_net *net, const float *x, int32_t ldx,
                                 const float *t, int32_t ldt, int32_t batch,
                                 float *grad, int64_t n, float *loss)
{
    static const char fn[] = "fa_net_compute_update";
    double l = 0;
    int rc = check_batch_io(net, x, ldx, t, ldt, 1, batch, fn);
    if (rc || (rc = check_flat(net, grad, "grad", n, 0, fn)) ||
        (rc = update_into(net, x, ldx, t, ldt, batch, grad, &l, fn)))
        return rc;
    if (loss)
        *loss = (float)l;
    return FA_OK;
}

FA_API int fa_net_apply_update(fa_net *net, const float *grad, int64_t n)
{
    static const char fn[] = "fa_net_apply_update";
    int rc = check_flat(net, grad, "grad", n, 1, fn);
    if (rc)
        return rc;
    return optimizer_step(net, grad, fn);
}

/* ----------------------------------------------------------- parameters */

FA_API int fa_net_param_count(const fa_net *net, int64_t *count)
{
    static const char fn[] = "fa_net_param_count";
    int rc = check_out(net, count, "count", fn);
    if (rc)
        return rc;
    *count = net->n_params;
    return FA_OK;
}

FA_API int fa_net_get_params(const fa_net *net, float *buf, int64_t n)
{
    static const char fn[] = "fa_net_get_params";
    int rc = check_flat(net, buf, "buf", n, 0, fn);
    if (rc)
        return rc;
    memcpy(buf, net->params, (size_t)n * sizeof *buf);
    return FA_OK;
}

FA_API int fa_net_set_params(fa_net *net, const float *buf, int64_t n)
{
    static const char fn[] = "fa_net_set_params";
    int rc = check_flat(net, buf, "buf", n, 1, fn);
    if (rc)
        return rc;
    memcpy(net->params, buf, (size_t)n * sizeof *buf);
    return FA_OK;
}

FA_API int fa_net_params_data(const fa_net *net, const float **data)
{
    static const char fn[] = "fa_net_params_data";
    int rc = check_out(net, data, "data", fn);
    if (rc)
        return rc;
    *data = net->params;
    return FA_OK;
}

FA_API int fa_net_layer_offsets(const fa_net *net, int32_t layer, int64_t *w_offset,
                                int64_t *b_offset)
{
    static const char fn[] = "fa_net_layer_offsets";
    int rc = check_net(net, fn);
    if (rc)
        return rc;
    if (!w_offset || !b_offset)
        return fa_fail(FA_ERR_NULL, fn, "%s is NULL", w_offset ? "b_offset" : "w_offset");
    if ((rc = check_layer(net, layer, 1, net->n_layers, fn)))
        return rc;
    *w_offset = net->w_off[layer];
    *b_offset = net->b_off[layer];
    return FA_OK;
}

/* ---------------------------------------------------------- diagnostics */

/* Angle in degrees between two vectors; 90 when either is zero. */
static float angle_deg(int64_t n, const float *a, const float *b)
{
    double na = fa_nrm2(n, a), nb = fa_nrm2(n, b);
    if (na == 0.0 || nb == 0.0)
        return 90.0f;
    double c = fa_dot(n, a, b) / (na * nb);
    c = c > 1.0 ? 1.0 : c < -1.0 ? -1.0 : c;
    return (float)(acos(c) * (180.0 / 3.14159265358979323846));
}

FA_API int fa_net_alignment(fa_net *net, const float *x, int32_t ldx, const float *t,
                            int32_t ldt, int32_t batch, float *angles, int64_t n)
{
    static const char fn[] = "fa_net_alignment";
    int rc = check_batch_io(net, x, ldx, t, ldt, 1, batch, fn);
    if (rc || (rc = check_len(n, (int64_t)net->n_layers - 1, "n", fn)))
        return rc;
    if (n > 0 && !angles)
        return fa_fail(FA_ERR_NULL, fn, "angles is NULL (expected %lld floats)", (long long)n);
    if (net->rule == FA_RULE_BP) {
        /* the rule is the reference: exactly 0, not rounding noise */
        for (int64_t i = 0; i < n; i++)
            angles[i] = 0.0f;
        return FA_OK;
    }
    if ((rc = fa_net_ensure_workspace(net, batch, fn)) ||
        (rc = fa_net_ensure_feedback(net, net->rule, fn)))
        return rc;
    if (!net->grad_aux) {
        net->grad_aux = malloc((size_t)net->n_params * sizeof *net->grad_aux);
        if (!net->grad_aux)
            return fa_fail(FA_ERR_NOMEM, fn, "out of memory for a second gradient");
    }
    double loss = 0;
    /* dropout off (train = 0): both passes see the same network and the RNG
     * is not touched */
    fa_compute_grad(net, FA_RULE_BP, x, ldx, t, ldt, batch, 0, net->grad_aux, &loss);
    if (!isfinite(loss) || fa_find_nonfinite(net->grad_aux, net->n_params) >= 0)
        return fa_fail(FA_ERR_NONFINITE, fn, "the loss (%g) or the BP gradient is not "
                       "finite on this batch", loss);
    fa_compute_grad(net, net->rule, x, ldx, t, ldt, batch, 0, net->grad, &loss);
    if (fa_find_nonfinite(net->grad, net->n_params) >= 0)
        return fa_fail(FA_ERR_NONFINITE, fn, "the rule's update is not finite on this batch");
    for (int32_t l = 1; l < net->n_layers; l++) {
        int64_t nw = (int64_t)net->sizes[l] * net->sizes[l - 1];
        angles[l - 1] = angle_deg(nw, net->grad + net->w_off[l], net->grad_aux + net->w_off[l]);
    }
    return FA_OK;
}

FA_API int fa_net_feedback_angles(fa_net *net, int32_t rule, float *angles, int64_t n)
{
    static const char fn[] = "fa_net_feedback_angles";
    int rc = check_net(net, fn);
    if (rc)
        return rc;
    const int32_t L = net->n_layers;
    if (rule != FA_RULE_FA && rule != FA_RULE_DFA)
        return fa_fail(FA_ERR_ARG, fn, "rule = %d has no feedback matrices "
                       "(expected 1 FA or 2 DFA)", (int)rule);
    if ((rc = check_len(n, (int64_t)L - 1, "n", fn)))
        return rc;
    if (n > 0 && !angles)
        return fa_fail(FA_ERR_NULL, fn, "angles is NULL (expected %lld floats)", (long long)n);
    if (n == 0)
        return FA_OK;
    if (rule == FA_RULE_FA) {
        if ((rc = fa_net_ensure_feedback(net, rule, fn)))
            return rc;
        for (int32_t l = 2; l <= L; l++)
            angles[l - 2] = angle_deg((int64_t)net->sizes[l] * net->sizes[l - 1],
                                      net->params + net->w_off[l],
                                      net->fb_fa + net->fa_off[l]);
        return FA_OK;
    }
    /* DFA: P_l = W_L ... W_{l+1} (n_L, n_l), built downward by P_l = P_{l+1} W_{l+1} */
    const int32_t nL = net->sizes[L];
    int32_t wmax = 0;
    for (int32_t l = 1; l < L; l++)
        wmax = net->sizes[l] > wmax ? net->sizes[l] : wmax;
    /* allocate before drawing feedback: a failure then changes nothing */
    float *p = malloc(2 * (size_t)nL * (size_t)wmax * sizeof *p);
    if (!p)
        return fa_fail(FA_ERR_NOMEM, fn, "out of memory for the forward-path products");
    if ((rc = fa_net_ensure_feedback(net, rule, fn))) {
        free(p);
        return rc;
    }
    float *cur = p, *next = p + (size_t)nL * (size_t)wmax;
    memcpy(cur, net->params + net->w_off[L], (size_t)nL * (size_t)net->sizes[L - 1] * sizeof *p);
    for (int32_t l = L - 1; l >= 1; l--) {
        /* cur = P_l (n_L, n_l) */
        angles[l - 1] = angle_deg((int64_t)nL * net->sizes[l], cur, feedback_ptr(net, FA_RULE_DFA, l));
        if (l > 1) {
            /* P_{l-1} (n_L, n_{l-1}) = P_l (n_L, n_l) W_l (n_l, n_{l-1}) */
            fa_gemm(0, 0, nL, net->sizes[l - 1], net->sizes[l], 1.0f, cur, nL,
                    net->params + net->w_off[l], net->sizes[l], 0.0f, next, nL);
            float *tmp = cur;
            cur = next;
            next = tmp;
        }
    }
    free(p);
    return FA_OK;
}
