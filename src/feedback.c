/* feedback.c -- the feedback matrices of every rule: storage, drawing, the
 * public get/set/shape/init calls and the feedback angles.  Everything here
 * reads the rule table (fa_rule_desc.feedback, .stored, .back): it knows two
 * layouts, not eleven rules.
 *   LAYER  B_l of W_l's shape for each layer l >= 2 with parameters, back to
 *          back from layer->fb_off; fb_layer_len floats per rule.
 *   DIRECT G_l (n_L, n_l) for each hidden layer with parameters, side by
 *          side as one (n_L, n_direct) matrix, G_l from column
 *          layer->dir_off, so that one GEMM gives every hidden error.
 * Feedback is stored in the orientation of the forward matrix it stands in
 * for and always applied transposed: one backward helper per layer kind
 * then serves every rule, and FA with B := W is BP exactly. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int64_t fa_feedback_len(const fa_net *net, int32_t rule)
{
    switch (fa_rule_table[rule]->feedback) {
    case FA_FEEDBACK_LAYER:
        return net->fb_layer_len;
    case FA_FEEDBACK_DIRECT:
        return net->fb_direct_len;
    default:
        return 0;
    }
}

double fa_feedback_scale(const fa_net *net, int32_t cols)
{
    return net->fb_scale > 0 ? net->fb_scale : 1.0 / sqrt((double)cols);
}

void fa_feedback_draw(fa_net *net, int32_t rule)
{
    float *fb = net->fb[rule];
    if (!fb)
        return;
    const int32_t L = net->n_layers, nL = net->sizes[L];
    for (int32_t l = 1; l <= L; l++) {
        const fa_layer *ly = &net->layers[l];
        if (fa_rule_table[rule]->feedback == FA_FEEDBACK_LAYER && ly->fb_off >= 0)
            fa_fill_random(&net->rng, net->fb_dist, fa_feedback_scale(net, ly->w_cols),
                           fb + ly->fb_off, (int64_t)ly->w_rows * ly->w_cols);
        else if (fa_rule_table[rule]->feedback == FA_FEEDBACK_DIRECT && ly->dir_off >= 0)
            fa_fill_random(&net->rng, net->fb_dist, fa_feedback_scale(net, ly->n_out),
                           fb + (size_t)ly->dir_off * (size_t)nL, (int64_t)nL * ly->n_out);
    }
    net->fb_absmax[rule] = -1.0f;
}

float fa_feedback_absmax(fa_net *net, int32_t rule)
{
    if (net->fb_absmax[rule] < 0.0f)
        net->fb_absmax[rule] =
            net->fb[rule] ? fa_absmax(net->fb[rule], fa_feedback_len(net, rule)) : 0.0f;
    return net->fb_absmax[rule];
}

/* Allocate what rule needs, then draw a new stored block: allocating first
 * means a failure leaves the RNG (and everything else) untouched. */
int fa_feedback_ensure(fa_net *net, int32_t rule, const char *fn)
{
    const fa_rule_desc *d = fa_rule_table[rule];
    const int64_t len = fa_feedback_len(net, rule);
    float *fresh = NULL, *eff = NULL, *scratch = NULL;
    int64_t need = 0;
    if (d->stored && !net->fb[rule] && len > 0 && !(fresh = fa_alloc_floats(len)))
        goto nomem;
    if (d->back == FA_BACK_DERIVED && !net->fb_eff && net->fb_layer_len > 0 &&
        !(eff = fa_alloc_floats(net->fb_layer_len)))
        goto nomem;
    if (d->scratch_floats) {
        need = d->scratch_floats(net);
        if (need < 0 || need > (FA_MAX_PARAMS << 2)) {
            free(fresh);
            free(eff);
            return fa_fail(FA_ERR_SIZE, fn, "rule %s: its workspace for this network and its "
                           "hyperparameters would be too large", d->name);
        }
        if (need > net->rule_scratch_len[rule] && !(scratch = fa_alloc_floats(need)))
            goto nomem;
    }
    if (eff)
        net->fb_eff = eff;
    if (scratch) {
        free(net->rule_scratch[rule]);
        net->rule_scratch[rule] = scratch;
        net->rule_scratch_len[rule] = need;
    }
    if (fresh) {
        net->fb[rule] = fresh;
        fa_feedback_draw(net, rule);
    }
    return FA_OK;
nomem:
    free(fresh);
    free(eff);
    return fa_fail(FA_ERR_NOMEM, fn, "out of memory for the feedback of rule %s", d->name);
}

const float *fa_backward_matrix(const fa_net *net, int32_t rule, const fa_layer *ly)
{
    switch (fa_rule_table[rule]->back) {
    case FA_BACK_STORED:
        return net->fb[rule] + ly->fb_off;
    case FA_BACK_DERIVED:
        return net->fb_eff + ly->fb_off;
    default:
        return net->params + ly->w_off;
    }
}

/* --------------------------------------------------------- public calls */

static int check_rule(int32_t rule, const char *fn)
{
    if (rule < 0 || rule >= FA_N_RULES)
        return fa_fail(FA_ERR_ARG, fn, "rule = %d is not a fa_rule (expected 0..%d)", (int)rule,
                       FA_N_RULES - 1);
    return FA_OK;
}

/* Shape of the feedback of (rule, layer); validates both. */
static int feedback_shape(const fa_net *net, int32_t rule, int32_t layer, int32_t *rows,
                          int32_t *cols, const char *fn)
{
    int rc = check_rule(rule, fn);
    if (rc)
        return rc;
    const fa_rule_desc *d = fa_rule_table[rule];
    const int32_t L = net->n_layers;
    if (d->feedback == FA_FEEDBACK_NONE)
        return fa_fail(FA_ERR_ARG, fn, "rule %s has no feedback matrices", d->name);
    if (d->feedback == FA_FEEDBACK_LAYER) {
        if (layer < 2 || layer > L || net->layers[layer].fb_off < 0)
            return fa_fail(FA_ERR_ARG, fn, "layer = %d: rule %s keeps a matrix for each layer "
                           "2..%d that has parameters", (int)layer, d->name, (int)L);
        *rows = net->layers[layer].w_rows;
        *cols = net->layers[layer].w_cols;
        return FA_OK;
    }
    if (layer < 1 || layer > L - 1 || net->layers[layer].dir_off < 0)
        return fa_fail(FA_ERR_ARG, fn, "layer = %d: rule %s keeps a matrix for each hidden "
                       "layer 1..%d that has parameters", (int)layer, d->name, (int)L - 1);
    *rows = net->sizes[L];
    *cols = net->layers[layer].n_out;
    return FA_OK;
}

/* Where (rule, layer)'s stored matrix starts. */
static float *stored_ptr(fa_net *net, int32_t rule, int32_t layer)
{
    const fa_layer *ly = &net->layers[layer];
    if (fa_rule_table[rule]->feedback == FA_FEEDBACK_LAYER)
        return net->fb[rule] + ly->fb_off;
    return net->fb[rule] + (size_t)ly->dir_off * (size_t)net->sizes[net->n_layers];
}

FA_API int fa_net_feedback_shape(const fa_net *net, int32_t rule, int32_t layer, int32_t *rows,
                                 int32_t *cols)
{
    static const char fn[] = "fa_net_feedback_shape";
    int rc = fa_check_net(net, fn);
    if (rc)
        return rc;
    if (!rows || !cols)
        return fa_fail(FA_ERR_NULL, fn, "%s is NULL", rows ? "cols" : "rows");
    return feedback_shape(net, rule, layer, rows, cols, fn);
}

/* The checks get and set share: handle, rule, layer, buffer and length. */
static int check_buf(const fa_net *net, int32_t rule, int32_t layer, const void *buf, int64_t n,
                     const char *fn)
{
    int32_t r = 0, c = 0;
    int rc = fa_check_net(net, fn);
    if (rc || (rc = feedback_shape(net, rule, layer, &r, &c, fn)))
        return rc;
    if (!buf)
        return fa_fail(FA_ERR_NULL, fn, "buf is NULL (expected (%d, %d) floats)", (int)r,
                       (int)c);
    if (n != (int64_t)r * c)
        return fa_fail(FA_ERR_SIZE, fn, "n = %lld, expected %lld (a (%d, %d) matrix)",
                       (long long)n, (long long)r * c, (int)r, (int)c);
    return FA_OK;
}

FA_API int fa_net_get_feedback(fa_net *net, int32_t rule, int32_t layer, float *buf, int64_t n)
{
    static const char fn[] = "fa_net_get_feedback";
    int rc = check_buf(net, rule, layer, buf, n, fn);
    if (rc || (rc = fa_feedback_ensure(net, rule, fn)))
        return rc;
    const fa_rule_desc *d = fa_rule_table[rule];
    if (!d->stored) {
        d->derive(net, &net->layers[layer], buf); /* USF: computed from W */
        return FA_OK;
    }
    memcpy(buf, stored_ptr(net, rule, layer), (size_t)n * sizeof *buf);
    return FA_OK;
}

FA_API int fa_net_set_feedback(fa_net *net, int32_t rule, int32_t layer, const float *buf,
                               int64_t n)
{
    static const char fn[] = "fa_net_set_feedback";
    int rc = check_buf(net, rule, layer, buf, n, fn);
    if (rc)
        return rc;
    const fa_rule_desc *d = fa_rule_table[rule];
    if (!d->stored)
        return fa_fail(FA_ERR_ARG, fn, "rule %s stores no feedback (its matrices are derived "
                       "from W at every step)", d->name);
    int64_t bad = fa_find_nonfinite(buf, n);
    if (bad >= 0)
        return fa_fail(FA_ERR_NONFINITE, fn, "buf[%lld] is not finite; nothing was changed",
                       (long long)bad);
    if ((rc = fa_feedback_ensure(net, rule, fn)))
        return rc;
    memcpy(stored_ptr(net, rule, layer), buf, (size_t)n * sizeof *buf);
    net->fb_absmax[rule] = -1.0f;
    return FA_OK;
}

FA_API int fa_net_set_feedback_init(fa_net *net, int32_t distribution, double scale)
{
    static const char fn[] = "fa_net_set_feedback_init";
    int rc = fa_check_net(net, fn);
    if (rc)
        return rc;
    if (distribution < 0 || distribution >= FA_N_DISTRIBUTIONS)
        return fa_fail(FA_ERR_ARG, fn, "distribution = %d is not a fa_distribution "
                       "(expected 0..%d)", (int)distribution, FA_N_DISTRIBUTIONS - 1);
    if (!fa_scale_valid(distribution, scale))
        return fa_fail(FA_ERR_ARG, fn, "scale = %g, expected 0 (FA_SCALE_AUTO) or a float in "
                       "[1.2e-38, %s] for the %s distribution", scale,
                       distribution == FA_DIST_GAUSSIAN ? "3.9e37 (its draws reach 8.6 s)"
                                                        : "3.4e38",
                       fa_enum_name(FA_ENUM_DISTRIBUTION, distribution));
    net->fb_dist = distribution;
    net->fb_scale = scale;
    for (int32_t r = 0; r < FA_N_RULES; r++)
        fa_feedback_draw(net, r);
    return FA_OK;
}

/* Angle in degrees between two vectors; 90 when either is zero. */
float fa_angle_deg(int64_t n, const float *a, const float *b)
{
    double na = fa_nrm2(n, a), nb = fa_nrm2(n, b);
    if (na == 0.0 || nb == 0.0)
        return 90.0f;
    double c = fa_dot(n, a, b) / (na * nb);
    c = c > 1.0 ? 1.0 : c < -1.0 ? -1.0 : c;
    return (float)(acos(c) * (180.0 / 3.14159265358979323846));
}

/* DIRECT angles: G_l against P_l = W_L ... W_{l+1}, built downward by
 * P_l = P_{l+1} W_{l+1} while every layer above l is dense. */
static int direct_angles(fa_net *net, int32_t rule, float *angles, const char *fn)
{
    const int32_t L = net->n_layers, nL = net->sizes[L];
    int32_t wmax = 0;
    for (int32_t l = 1; l < L; l++)
        wmax = net->sizes[l] > wmax ? net->sizes[l] : wmax;
    /* allocate before drawing feedback: a failure then changes nothing */
    float *p = malloc(2 * (size_t)nL * (size_t)wmax * sizeof *p);
    if (!p)
        return fa_fail(FA_ERR_NOMEM, fn, "out of memory for the forward-path products");
    int rc = fa_feedback_ensure(net, rule, fn);
    if (rc) {
        free(p);
        return rc;
    }
    float *cur = p, *next = p + (size_t)nL * (size_t)wmax;
    int path = net->layers[L].kind == FA_LAYER_DENSE; /* cur holds P_l */
    if (path)
        memcpy(cur, fa_w(net, &net->layers[L]),
               (size_t)nL * (size_t)net->sizes[L - 1] * sizeof *p);
    for (int32_t l = L - 1; l >= 1; l--) {
        const fa_layer *ly = &net->layers[l];
        angles[l - 1] = path && ly->dir_off >= 0
                            ? fa_angle_deg((int64_t)nL * ly->n_out, cur,
                                           stored_ptr(net, rule, l))
                            : NAN;
        path = path && ly->kind == FA_LAYER_DENSE;
        if (path && l > 1) {
            /* P_{l-1} (n_L, n_{l-1}) = P_l (n_L, n_l) W_l (n_l, n_{l-1}) */
            fa_gemm(0, 0, nL, net->sizes[l - 1], net->sizes[l], 1.0f, cur, nL, fa_w(net, ly),
                    net->sizes[l], 0.0f, next, nL);
            float *tmp = cur;
            cur = next;
            next = tmp;
        }
    }
    free(p);
    return FA_OK;
}

FA_API int fa_net_feedback_angles(fa_net *net, int32_t rule, float *angles, int64_t n)
{
    static const char fn[] = "fa_net_feedback_angles";
    int rc = fa_check_net(net, fn);
    if (rc || (rc = check_rule(rule, fn)))
        return rc;
    const fa_rule_desc *d = fa_rule_table[rule];
    const int32_t L = net->n_layers;
    if (d->feedback == FA_FEEDBACK_NONE)
        return fa_fail(FA_ERR_ARG, fn, "rule %s has no feedback matrices", d->name);
    if (n != (int64_t)L - 1)
        return fa_fail(FA_ERR_SIZE, fn, "n = %lld, expected %lld (one angle per hidden layer)",
                       (long long)n, (long long)L - 1);
    if (n > 0 && !angles)
        return fa_fail(FA_ERR_NULL, fn, "angles is NULL (expected %lld floats)", (long long)n);
    if (n == 0)
        return FA_OK;
    if (d->feedback == FA_FEEDBACK_DIRECT)
        return direct_angles(net, rule, angles, fn);
    if ((rc = fa_feedback_ensure(net, rule, fn)))
        return rc;
    for (int32_t l = 2; l <= L; l++) {
        const fa_layer *ly = &net->layers[l];
        if (ly->fb_off < 0) {
            angles[l - 2] = NAN;
            continue;
        }
        if (d->back == FA_BACK_DERIVED)
            d->derive(net, ly, net->fb_eff + ly->fb_off);
        angles[l - 2] = fa_angle_deg((int64_t)ly->w_rows * ly->w_cols, fa_w(net, ly),
                                     fa_backward_matrix(net, rule, ly));
    }
    return FA_OK;
}
