/* train.c -- the forward pass every rule shares, the rule-driven update,
 * the all-or-nothing applied step, and the public calls built on them
 * (forward, loss, train_step, compute_update, apply_update, alignment).
 *
 * Per layer l, for a batch of m (workspace views in fa_layer):
 *   z     (n_l, m)   f(A_l)
 *   h     (n_l, m)   the output the next layer sees (z, or z .* mask)
 *   delta (n_l, m)   the layer's error, hidden layers only
 * and e (n_L, m), the output error dL/dA_L already divided by m (the loss
 * does that).  How the hidden errors arise is the rule's (fa_rule_desc):
 *   CHAIN   delta_l = backward_{l+1}(B_{l+1}, delta_{l+1}) .* f'(A_l), layer by
 *           layer, B the rule's matrix of W's shape (W itself under BP);
 *   DIRECT  every delta_l at once from one GEMM D = G^T s against the
 *           stacked G, s = e, sign(e)/m or T/m: no hidden error waits for
 *           another, and each layer's update below touches only its own
 *           layer;
 *   NONE    hidden layers do not learn.
 * For every rule then dW_l = delta_l lower(H_{l-1})^T and db_l = delta_l 1,
 * the latter summed in the same pass that applies f' and the dropout mask. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Input of layer l: the caller's x for l == 1. */
static const float *layer_input(const fa_net *net, int32_t l, const float *x, int32_t ldx,
                                int32_t *ld)
{
    if (l == 1) {
        *ld = ldx;
        return x;
    }
    *ld = net->sizes[l - 1];
    return net->layers[l - 1].h;
}

void fa_forward_pass(fa_net *net, const float *x, int32_t ldx, int32_t batch, float xmax,
                     int train)
{
    const int32_t L = net->n_layers;
    const float slope = (float)net->hp[FA_HP_LEAKY_SLOPE];
    float inmax = xmax;
    for (int32_t l = 1; l <= L; l++) {
        fa_layer *ly = &net->layers[l];
        int32_t ldin;
        const float *in = layer_input(net, l, x, ldx, &ldin);
        ly->ops->forward(ly, net->params + ly->w_off, in, ldin, batch, ly->z, ly->col, ly->idx);
        if (ly->w_rows > 0)
            /* A = W lower(H) + b, then f, in one pass over (out_c, pixels) */
            ly->hmax = fa_bias_act(ly->act, slope, ly->z, net->params + ly->b_off, ly->out_c,
                                   fa_layer_cols(ly, batch));
        else
            ly->hmax = inmax; /* pooling never grows a magnitude */
        ly->h = ly->z;
        if (l < L && train && ly->dropout > 0.0) {
            /* inverted dropout: keep with prob 1-p, scale by 1/(1-p) */
            const float p = (float)ly->dropout;
            const float keep = 1.0f / (1.0f - p);
            const size_t cnt = (size_t)ly->n_out * (size_t)batch;
            for (size_t i = 0; i < cnt; i++) {
                ly->mask[i] = fa_rng_uniform(&net->rng_drop) < p ? 0.0f : keep;
                ly->hbuf[i] = ly->z[i] * ly->mask[i];
            }
            ly->h = ly->hbuf;
            ly->hmax *= keep;
        }
        inmax = ly->hmax;
    }
}

/* The mask of this pass, if dropout ran on layer l. */
static const float *pass_mask(const fa_layer *ly)
{
    return ly->h != ly->z ? ly->mask : NULL;
}

/* dW_l from the layer's error d (its magnitude dmax) and input; returns a
 * bound on |dW_l| and |db_l|: each entry sums out_h*out_w*m products of an
 * error and an input value (or, for db, errors alone). */
static float weight_grad(fa_net *net, int32_t l, const float *x, int32_t ldx, float xmax,
                         const float *d, float dmax, int32_t m, float *grad)
{
    const fa_layer *ly = &net->layers[l];
    int32_t ldin;
    const float *in = layer_input(net, l, x, ldx, &ldin);
    const float inmax = l == 1 ? xmax : net->layers[l - 1].hmax;
    ly->ops->weight_grad(ly, in, ldin, ly->col, d, m, grad + ly->w_off);
    const double terms = (double)fa_layer_cols(ly, m);
    const double bound = terms * (double)dmax * (inmax > 1.0f ? (double)inmax : 1.0);
    return bound < 3.0e38 ? (float)bound : INFINITY;
}

static float fmaxf2(float a, float b)
{
    return a > b ? a : b;
}

/* CHAIN: from the output down to the lowest layer with parameters. */
static float chain_errors(fa_net *net, int32_t rule, const float *x, int32_t ldx, float xmax,
                          int32_t m, float *grad)
{
    const float slope = (float)net->hp[FA_HP_LEAKY_SLOPE];
    const float *d_up = net->e;
    float gmax = 0.0f;
    for (int32_t l = net->n_layers - 1; l >= net->first_param; l--) {
        fa_layer *ly = &net->layers[l];
        const fa_layer *up = &net->layers[l + 1];
        const float *B = up->w_rows > 0 ? fa_backward_matrix(net, rule, up) : NULL;
        /* delta_l = backward(B_{l+1}, delta_{l+1}) .* f'(A_l) .* mask_l */
        up->ops->backward(up, B, d_up, m, ly->delta, net->scratch, up->idx);
        float *db = ly->w_rows > 0 ? grad + ly->b_off : NULL;
        if (db)
            memset(db, 0, (size_t)ly->w_rows * sizeof *db);
        ly->dmax = fa_delta_finish(ly->act, slope, 1, ly->delta, ly->out_c, ly->z,
                                   pass_mask(ly), ly->delta, ly->out_c, fa_layer_cols(ly, m), db);
        if (ly->w_rows > 0)
            gmax = fmaxf2(gmax, weight_grad(net, l, x, ldx, xmax, ly->delta, ly->dmax, m, grad));
        d_up = ly->delta;
    }
    return gmax;
}

/* DIRECT: one GEMM for every hidden error, then independent layers. */
static float direct_errors(fa_net *net, int32_t rule, const float *x, int32_t ldx, float xmax,
                           const float *t, int32_t ldt, int32_t m, float *grad)
{
    const fa_rule_desc *r = fa_rule_table[rule];
    const int32_t L = net->n_layers, nL = net->sizes[L], nd = net->n_direct;
    const float slope = (float)net->hp[FA_HP_LEAKY_SLOPE];
    const int with_deriv = net->dfa_variant == FA_DFA_AFTER_ACTIVATION;
    const float *s = r->signal(net, net->e, t, ldt, m, net->sig);
    float gmax = 0.0f;
    /* D (n_direct, m) = G^T (n_direct, n_L) s (n_L, m) */
    fa_gemm(1, 0, nd, m, nL, 1.0f, net->fb[rule], nL, s, nL, 0.0f, net->dstack, nd);
    /* Independent per layer: nothing below reads another layer's error. */
    for (int32_t l = 1; l < L; l++) {
        fa_layer *ly = &net->layers[l];
        if (ly->dir_off < 0)
            continue;
        const float *src = net->dstack + ly->dir_off;
        const int64_t pix = (int64_t)ly->out_h * ly->out_w;
        float *db = grad + ly->b_off;
        memset(db, 0, (size_t)ly->w_rows * sizeof *db);
        if (pix == 1) {
            ly->dmax = fa_delta_finish(ly->act, slope, with_deriv, src, nd, ly->z,
                                       pass_mask(ly), ly->delta, ly->out_c, m, db);
        } else {
            /* an image layer's rows of D are its (out_c, pixels) blocks,
             * one per sample, nd apart */
            const float *mk = pass_mask(ly);
            ly->dmax = 0.0f;
            for (int32_t j = 0; j < m; j++) {
                const size_t o = (size_t)j * (size_t)ly->n_out;
                ly->dmax = fmaxf2(ly->dmax,
                                  fa_delta_finish(ly->act, slope, with_deriv,
                                                  src + (size_t)j * (size_t)nd, ly->out_c,
                                                  ly->z + o, mk ? mk + o : NULL, ly->delta + o,
                                                  ly->out_c, pix, db));
            }
        }
        gmax = fmaxf2(gmax, weight_grad(net, l, x, ldx, xmax, ly->delta, ly->dmax, m, grad));
    }
    return gmax;
}

float fa_compute_grad(fa_net *net, int32_t rule, const float *x, int32_t ldx, float xmax,
                      const float *t, int32_t ldt, int32_t batch, int train, float *grad,
                      double *loss)
{
    const fa_rule_desc *r = fa_rule_table[rule];
    const int32_t L = net->n_layers, nL = net->sizes[L];
    fa_layer *out = &net->layers[L];

    if (r->back == FA_BACK_DERIVED)
        for (int32_t l = 2; l <= L; l++)
            if (net->layers[l].fb_off >= 0)
                r->derive(net, &net->layers[l], net->fb_eff + net->layers[l].fb_off);

    fa_forward_pass(net, x, ldx, batch, xmax, train);

    /* e = dL/dA_L = dL/dY .* f_L'(A_L); the loss divides by the batch */
    *loss = fa_loss_compute(net->loss, out->z, nL, t, ldt, nL, batch, net->e, nL);
    memset(grad + out->b_off, 0, (size_t)out->w_rows * sizeof *grad);
    out->dmax = fa_delta_finish(out->act, (float)net->hp[FA_HP_LEAKY_SLOPE], 1, net->e,
                                out->out_c, out->z, NULL, net->e, out->out_c,
                                fa_layer_cols(out, batch), grad + out->b_off);
    float gmax = weight_grad(net, L, x, ldx, xmax, net->e, out->dmax, batch, grad);
    if (L == 1)
        return gmax;
    switch (r->hidden) {
    case FA_HIDDEN_DIRECT:
        return fmaxf2(gmax, direct_errors(net, rule, x, ldx, xmax, t, ldt, batch, grad));
    case FA_HIDDEN_NONE:
        /* the hidden layers' parameters all come before the last layer's */
        memset(grad, 0, (size_t)out->w_off * sizeof *grad);
        return gmax;
    default:
        return fmaxf2(gmax, chain_errors(net, rule, x, ldx, xmax, batch, grad));
    }
}

int fa_apply_step(fa_net *net, const float *grad, float gmax, const char *fn)
{
    const fa_rule_desc *r = fa_rule_table[net->rule];
    fa_step_bounds b;
    if (!fa_optimizer_bounds(net, gmax, &b))
        return fa_fail(FA_ERR_NONFINITE, fn, "the optimiser step could leave the float range "
                       "(max |update| %g, max |parameter| %g, learning rate %g); nothing was "
                       "changed", (double)gmax, b.p_old, net->hp[FA_HP_LR]);
    int rc = r->check_commit ? r->check_commit(net, &b, fn) : FA_OK;
    if (rc)
        return rc;
    /* from here on nothing can fail */
    if (r->before_commit)
        r->before_commit(net);
    fa_optimizer_commit(net, grad);
    if (r->after_commit)
        r->after_commit(net);
    return FA_OK;
}

/* --------------------------------------------------------- validation */

/* A (rows, batch) buffer with leading dimension ld. */
static int check_matrix(const float *p, const char *name, int32_t rows, int32_t ld,
                        const char *ldname, const char *fn)
{
    if (!p)
        return fa_fail(FA_ERR_NULL, fn, "%s is NULL (expected a (%d, batch) buffer)", name,
                       (int)rows);
    if (ld < rows)
        return fa_fail(FA_ERR_SIZE, fn, "%s = %d, expected >= %d (rows of %s)", ldname,
                       (int)ld, (int)rows, name);
    return FA_OK;
}

/* Every entry of p (rows, batch) with ld finite?  A NaN in the input would
 * otherwise surface as NaN output, or vanish silently behind a ReLU.  *max
 * (may be NULL) receives max |p|. */
static int check_finite(const float *p, const char *name, int32_t rows, int32_t ld,
                        int32_t batch, float *max, const char *fn)
{
    float mx = 0.0f;
    for (int32_t j = 0; j < batch; j++) {
        const float c = fa_absmax(p + (size_t)j * (size_t)ld, rows);
        mx = c > mx ? c : mx;
    }
    if (!(mx < INFINITY)) {
        for (int32_t j = 0; j < batch; j++) {
            int64_t i = fa_find_nonfinite(p + (size_t)j * (size_t)ld, rows);
            if (i >= 0)
                return fa_fail(FA_ERR_NONFINITE, fn, "%s has a NaN or infinity at row %lld, "
                               "column %d (0-based)", name, (long long)i, (int)j);
        }
    }
    if (max)
        *max = mx;
    return FA_OK;
}

/* x (n_0, batch) with ldx and t (n_L, batch) with ldt (t optional);
 * *xmax receives max |x|. */
static int check_batch_io(const fa_net *net, const float *x, int32_t ldx, const float *t,
                          int32_t ldt, int need_t, int32_t batch, float *xmax,
                          const char *fn)
{
    int rc = fa_check_net(net, fn);
    if (rc)
        return rc;
    const int32_t n0 = net->sizes[0], nL = net->sizes[net->n_layers];
    if ((rc = check_matrix(x, "x", n0, ldx, "ldx", fn)))
        return rc;
    if (need_t && (rc = check_matrix(t, "t", nL, ldt, "ldt", fn)))
        return rc;
    if (batch < 1)
        return fa_fail(FA_ERR_SIZE, fn, "batch = %d, expected >= 1", (int)batch);
    if ((rc = check_finite(x, "x", n0, ldx, batch, xmax, fn)))
        return rc;
    if (need_t)
        return check_finite(t, "t", nL, ldt, batch, NULL, fn);
    return FA_OK;
}

/* A loss the caller can be given: finite as a float. */
static int check_loss(double loss, const char *fn)
{
    if (!isfinite((float)loss))
        return fa_fail(FA_ERR_NONFINITE, fn, "the loss is %g, %s; nothing was updated", loss,
                       isfinite(loss) ? "beyond the float range" : "not finite (diverged "
                                                                   "parameters?)");
    return FA_OK;
}

/* --------------------------------------------------------- public calls */

/* Inference into the output layer's workspace; checks the output. */
static int infer(fa_net *net, const float *x, int32_t ldx, float xmax, int32_t batch,
                 const char *fn)
{
    int rc = fa_net_ensure_workspace(net, batch, fn);
    if (rc)
        return rc;
    const int32_t L = net->n_layers, nL = net->sizes[L];
    fa_forward_pass(net, x, ldx, batch, xmax, 0);
    return check_finite(net->layers[L].z, "the network output (huge parameters?)", nL, nL,
                        batch, NULL, fn);
}

FA_API int fa_net_forward(fa_net *net, const float *x, int32_t ldx, int32_t batch, float *y,
                          int32_t ldy)
{
    static const char fn[] = "fa_net_forward";
    float xmax = 0;
    int rc = check_batch_io(net, x, ldx, NULL, 0, 0, batch, &xmax, fn);
    if (rc)
        return rc;
    const int32_t nL = net->sizes[net->n_layers];
    if ((rc = check_matrix(y, "y", nL, ldy, "ldy", fn)) ||
        (rc = infer(net, x, ldx, xmax, batch, fn)))
        return rc;
    const float *z = net->layers[net->n_layers].z;
    for (int32_t j = 0; j < batch; j++)
        memcpy(y + (size_t)j * (size_t)ldy, z + (size_t)j * (size_t)nL, (size_t)nL * sizeof *y);
    fa_loss_link(net->loss, y, nL, batch, ldy);
    return FA_OK;
}

FA_API int fa_net_loss(fa_net *net, const float *x, int32_t ldx, const float *t, int32_t ldt,
                       int32_t batch, float *loss)
{
    static const char fn[] = "fa_net_loss";
    float xmax = 0;
    int rc = check_batch_io(net, x, ldx, t, ldt, 1, batch, &xmax, fn);
    if (rc)
        return rc;
    if (!loss)
        return fa_fail(FA_ERR_NULL, fn, "loss is NULL");
    if ((rc = infer(net, x, ldx, xmax, batch, fn)))
        return rc;
    const int32_t nL = net->sizes[net->n_layers];
    double v = fa_loss_compute(net->loss, net->layers[net->n_layers].z, nL, t, ldt, nL, batch,
                               NULL, 0);
    if ((rc = check_loss(v, fn)))
        return rc;
    *loss = (float)v;
    return FA_OK;
}

/* Forward + rule into grad, with the checks every training entry point
 * shares; *gmax receives max |grad| or a bound on it.  Nothing but the
 * workspace, grad and the dropout stream is written, and a failure puts
 * the stream back. */
static int update_into(fa_net *net, const float *x, int32_t ldx, float xmax, const float *t,
                       int32_t ldt, int32_t batch, float *grad, double *loss, float *gmax,
                       const char *fn)
{
    int rc = fa_net_ensure_workspace(net, batch, fn);
    if (rc || (rc = fa_feedback_ensure(net, net->rule, fn)))
        return rc;
    const fa_rng saved = net->rng_drop;
    *gmax = fa_compute_grad(net, net->rule, x, ldx, xmax, t, ldt, batch, 1, grad, loss);
    if ((rc = check_loss(*loss, fn))) {
        net->rng_drop = saved;
        return rc;
    }
    if (!((double)*gmax < FA_VALUE_LIMIT)) {
        /* the cheap bound says nothing: look at the update itself */
        *gmax = fa_absmax(grad, net->n_params);
        if (!isfinite(*gmax)) {
            net->rng_drop = saved;
            return fa_fail(FA_ERR_NONFINITE, fn, "update entry %lld is not finite; nothing "
                           "was updated", (long long)fa_find_nonfinite(grad, net->n_params));
        }
    }
    return FA_OK;
}

FA_API int fa_net_train_step(fa_net *net, const float *x, int32_t ldx, const float *t,
                             int32_t ldt, int32_t batch, float *loss)
{
    static const char fn[] = "fa_net_train_step";
    double l = 0;
    float gmax = 0, xmax = 0;
    int rc = check_batch_io(net, x, ldx, t, ldt, 1, batch, &xmax, fn);
    if (rc)
        return rc;
    const fa_rng saved = net->rng_drop;
    if ((rc = update_into(net, x, ldx, xmax, t, ldt, batch, net->grad, &l, &gmax, fn)))
        return rc;
    if ((rc = fa_apply_step(net, net->grad, gmax, fn))) {
        net->rng_drop = saved;
        return rc;
    }
    if (loss)
        *loss = (float)l;
    return FA_OK;
}

FA_API int fa_net_compute_update(fa_net *net, const float *x, int32_t ldx, const float *t,
                                 int32_t ldt, int32_t batch, float *grad, int64_t n, float *loss)
{
    static const char fn[] = "fa_net_compute_update";
    double l = 0;
    float gmax = 0, xmax = 0;
    int rc = check_batch_io(net, x, ldx, t, ldt, 1, batch, &xmax, fn);
    if (rc || (rc = fa_check_flat(net, grad, "grad", n, 0, fn)) ||
        (rc = update_into(net, x, ldx, xmax, t, ldt, batch, grad, &l, &gmax, fn)))
        return rc;
    if (loss)
        *loss = (float)l;
    return FA_OK;
}

FA_API int fa_net_apply_update(fa_net *net, const float *grad, int64_t n)
{
    static const char fn[] = "fa_net_apply_update";
    int rc = fa_check_flat(net, grad, "grad", n, 0, fn);
    if (rc)
        return rc;
    const float gmax = fa_absmax(grad, n);
    if (!isfinite(gmax))
        return fa_fail(FA_ERR_NONFINITE, fn, "grad[%lld] is not finite; nothing was changed",
                       (long long)fa_find_nonfinite(grad, n));
    if ((rc = fa_feedback_ensure(net, net->rule, fn)))
        return rc;
    return fa_apply_step(net, grad, gmax, fn);
}

FA_API int fa_net_alignment(fa_net *net, const float *x, int32_t ldx, const float *t,
                            int32_t ldt, int32_t batch, float *angles, int64_t n)
{
    static const char fn[] = "fa_net_alignment";
    float xmax = 0;
    int rc = check_batch_io(net, x, ldx, t, ldt, 1, batch, &xmax, fn);
    if (rc)
        return rc;
    const int32_t L = net->n_layers;
    if (n != (int64_t)L - 1)
        return fa_fail(FA_ERR_SIZE, fn, "n = %lld, expected %lld (one angle per hidden layer)",
                       (long long)n, (long long)L - 1);
    if (n > 0 && !angles)
        return fa_fail(FA_ERR_NULL, fn, "angles is NULL (expected %lld floats)", (long long)n);
    if (net->rule == FA_RULE_BP) {
        /* the rule is the reference: exactly 0, not rounding noise */
        for (int32_t l = 1; l < L; l++)
            angles[l - 1] = net->layers[l].w_rows > 0 ? 0.0f : NAN;
        return FA_OK;
    }
    if ((rc = fa_net_ensure_workspace(net, batch, fn)) ||
        (rc = fa_feedback_ensure(net, net->rule, fn)))
        return rc;
    if (!net->grad_aux && !(net->grad_aux = fa_alloc_floats(net->n_params)))
        return fa_fail(FA_ERR_NOMEM, fn, "out of memory for a second gradient");
    double loss = 0;
    /* dropout off (train = 0): both passes see the same network and no RNG
     * is touched */
    fa_compute_grad(net, FA_RULE_BP, x, ldx, xmax, t, ldt, batch, 0, net->grad_aux, &loss);
    if (!isfinite(loss) || fa_find_nonfinite(net->grad_aux, net->n_params) >= 0)
        return fa_fail(FA_ERR_NONFINITE, fn, "the loss (%g) or the BP gradient is not finite "
                       "on this batch", loss);
    fa_compute_grad(net, net->rule, x, ldx, xmax, t, ldt, batch, 0, net->grad, &loss);
    if (fa_find_nonfinite(net->grad, net->n_params) >= 0)
        return fa_fail(FA_ERR_NONFINITE, fn, "the rule's update is not finite on this batch");
    for (int32_t l = 1; l < L; l++) {
        const fa_layer *ly = &net->layers[l];
        angles[l - 1] = ly->w_rows > 0
                            ? fa_angle_deg((int64_t)ly->w_rows * ly->w_cols,
                                           net->grad + ly->w_off, net->grad_aux + ly->w_off)
                            : NAN;
    }
    return FA_OK;
}
