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

/* ------------------------------------------------------ threaded passes */

/* Elements below which a pass runs on one thread: handing work to a
 * sleeping thread costs about as much as this much element-wise work. */
#define PAR_MIN 65536

static int32_t parts_for(const fa_net *net, int64_t elements)
{
    return net->nthreads > 1 && elements >= (int64_t)net->nthreads * PAR_MIN / 2
               ? net->nthreads : 1;
}

typedef struct bias_act_job {
    int32_t act;
    float slope;
    float *z;
    const float *b;
    int32_t rows;
    int64_t cols;
    float max[FA_MAX_THREADS];
} bias_act_job;

static void bias_act_part(void *ctx, int32_t part, int32_t nparts)
{
    bias_act_job *j = ctx;
    const int64_t lo = j->cols * part / nparts, hi = j->cols * (part + 1) / nparts;
    j->max[part] = fa_bias_act(j->act, j->slope, j->z + lo * j->rows, j->b, j->rows, hi - lo);
}

/* fa_bias_act, its columns shared among the step's threads. */
static float par_bias_act(fa_net *net, int32_t act, float slope, float *z, const float *b,
                          int32_t rows, int64_t cols)
{
    const int32_t parts = parts_for(net, rows * cols);
    if (parts == 1)
        return fa_bias_act(act, slope, z, b, rows, cols);
    bias_act_job j = {act, slope, z, b, rows, cols, {0}};
    fa_pool_run(net, parts, bias_act_part, &j);
    float mx = 0.0f;
    for (int32_t k = 0; k < parts; k++)
        mx = j.max[k] > mx ? j.max[k] : mx;
    return mx;
}

typedef struct finish_job {
    int32_t act;
    float slope;
    int with_deriv;
    const float *src;
    int64_t ldsrc;
    const float *z, *mask;
    float *d;
    int32_t rows;
    int64_t cols;
    float *db, *tdb; /* the caller's bias gradient; one partial per part */
    float max[FA_MAX_THREADS];
} finish_job;

static void finish_part(void *ctx, int32_t part, int32_t nparts)
{
    finish_job *j = ctx;
    const int64_t lo = j->cols * part / nparts, hi = j->cols * (part + 1) / nparts;
    float *db = NULL;
    if (j->db) {
        db = j->tdb + (size_t)part * (size_t)j->rows;
        memset(db, 0, (size_t)j->rows * sizeof *db);
    }
    j->max[part] = fa_delta_finish(j->act, j->slope, j->with_deriv, j->src + lo * j->ldsrc,
                                   j->ldsrc, j->z + lo * j->rows,
                                   j->mask ? j->mask + lo * j->rows : NULL, j->d + lo * j->rows,
                                   j->rows, hi - lo, db);
}

/* fa_delta_finish, its columns shared among the step's threads; the bias
 * gradient is summed per part and the parts added in order, so the result
 * depends on the thread count but not on timing. */
static float par_finish(fa_net *net, int32_t act, float slope, int with_deriv, const float *src,
                        int64_t ldsrc, const float *z, const float *mask, float *d,
                        int32_t rows, int64_t cols, float *db)
{
    const int32_t parts = net->tdb ? parts_for(net, rows * cols) : 1;
    if (parts == 1)
        return fa_delta_finish(act, slope, with_deriv, src, ldsrc, z, mask, d, rows, cols, db);
    finish_job j = {act, slope, with_deriv, src, ldsrc, z, mask, d, rows, cols, db, net->tdb,
                    {0}};
    fa_pool_run(net, parts, finish_part, &j);
    float mx = 0.0f;
    for (int32_t k = 0; k < parts; k++) {
        mx = j.max[k] > mx ? j.max[k] : mx;
        if (db) {
            const float *part = net->tdb + (size_t)k * (size_t)rows;
            for (int32_t i = 0; i < rows; i++)
                db[i] += part[i];
        }
    }
    return mx;
}

/* The threads of this step, and their bias-gradient partials (rows of the
 * widest layer each); without memory for those the passes run on one. */
static void start_threads(fa_net *net)
{
    net->blas_threads = fa_blas_threads();
    net->nthreads = fa_net_threads(net);
    if (net->nthreads > 1 && net->tdb_threads < net->nthreads) {
        int32_t rows = 1;
        for (int32_t l = 1; l <= net->n_layers; l++)
            rows = net->layers[l].out_c > rows ? net->layers[l].out_c : rows;
        free(net->tdb);
        net->tdb = fa_alloc_floats((int64_t)net->nthreads * rows);
        net->tdb_threads = net->tdb ? net->nthreads : 0;
    }
}

/* Image layers (convolution, pooling) run forward and backward in blocks of
 * samples, one block per thread, OpenBLAS on one thread for the duration.
 * Their products have few output rows (a convolution's channels), which
 * OpenBLAS's threads split poorly, and the lowering and pooling around
 * them are loops over samples.  Every layer op is column-separable (a
 * sample's output depends on its own input alone, and the op's buffers
 * hold each sample's share contiguously: col_floats, idx_count and
 * scratch_floats per sample), so a block is the same call on offset
 * pointers and writes exactly what the whole call would. */
typedef struct image_job {
    const fa_layer *ly;
    const float *w, *x; /* forward: weights, input (ldx); backward: B, dz */
    int32_t ldx, m, backward;
    float *out, *col, *scratch; /* z or dx; the layer's col; net->scratch */
    int32_t *idx;
} image_job;

static void image_part(void *ctx, int32_t part, int32_t nparts)
{
    const image_job *j = ctx;
    const fa_layer *ly = j->ly;
    const int32_t j0 = (int32_t)((int64_t)j->m * part / nparts);
    const int32_t j1 = (int32_t)((int64_t)j->m * (part + 1) / nparts);
    if (j1 <= j0)
        return;
    const int64_t cf = ly->ops->col_floats(ly), ni = ly->ops->idx_count(ly);
    int32_t *idx = ni > 0 ? j->idx + (size_t)j0 * (size_t)ni : j->idx;
    if (!j->backward) {
        float *col = cf > 0 ? j->col + (size_t)j0 * (size_t)cf : j->col;
        ly->ops->forward(ly, j->w, j->x + (size_t)j0 * (size_t)j->ldx, j->ldx, j1 - j0,
                         j->out + (size_t)j0 * (size_t)ly->n_out, col, idx);
    } else {
        const int64_t sf = ly->ops->scratch_floats(ly);
        float *scr = sf > 0 ? j->scratch + (size_t)j0 * (size_t)sf : j->scratch;
        ly->ops->backward(ly, j->w, j->x + (size_t)j0 * (size_t)ly->n_out, j1 - j0,
                          j->out + (size_t)j0 * (size_t)ly->n_in, scr, idx);
    }
}

/* Threads for an image layer's pass over m samples (1: the plain call). */
static int32_t image_parts(const fa_net *net, const fa_layer *ly, int32_t m)
{
    if (ly->in_h * (int64_t)ly->in_w == 1 || m < 2)
        return 1;
    const int32_t p = parts_for(net, ((int64_t)ly->n_in + ly->n_out) * m);
    return p < m ? p : m;
}

/* OpenBLAS on one thread while the handle's threads run GEMMs side by side
 * (its thread count is process-wide).  Sections nest: only the outermost
 * switches, and solo_leave restores the count the step began with. */
static int solo_enter(fa_net *net)
{
    if (net->blas_solo)
        return 0;
    fa_blas_set_threads(1);
    net->blas_solo = 1;
    return 1;
}

static void solo_leave(fa_net *net, int entered)
{
    if (!entered)
        return;
    net->blas_solo = 0;
    fa_blas_set_threads(net->blas_threads);
}

static void run_image_job(fa_net *net, image_job *j, int32_t parts)
{
    const int solo = j->ly->w_rows > 0 ? solo_enter(net) : 0;
    fa_pool_run(net, parts, image_part, j);
    solo_leave(net, solo);
}

/* When image layers split by samples carry most of a network's products
 * (a convolutional network), a whole phase of the step runs with OpenBLAS
 * on one thread: its threads, woken for a small dense product, would spin
 * (sched_yield) for a while after it, on the cores the handle's threads
 * are using for the next image layer.  Returns whether it entered. */
static int solo_begin(fa_net *net, int32_t m)
{
    if (net->nthreads < 2 || net->blas_solo)
        return 0;
    double image = 0, all = 0;
    for (int32_t l = 1; l <= net->n_layers; l++) {
        const fa_layer *ly = &net->layers[l];
        const double work = (double)ly->w_rows * ly->w_cols * (double)fa_layer_cols(ly, m);
        all += work;
        if (image_parts(net, ly, m) > 1)
            image += work;
    }
    return image > 0.5 * all ? solo_enter(net) : 0;
}

/* ly->ops->forward into ly->z, image layers shared among the threads. */
static void layer_forward(fa_net *net, fa_layer *ly, const float *in, int32_t ldin, int32_t m)
{
    const float *w = net->params + ly->w_off;
    const int32_t parts = image_parts(net, ly, m);
    if (parts == 1) {
        ly->ops->forward(ly, w, in, ldin, m, ly->z, ly->col, ly->idx);
        return;
    }
    image_job j = {ly, w, in, ldin, m, 0, ly->z, ly->col, NULL, ly->idx};
    run_image_job(net, &j, parts);
}

/* up->ops->backward: dx (n_in, m) from dz through B, the same sharing. */
static void layer_backward(fa_net *net, const fa_layer *up, const float *B, const float *dz,
                           int32_t m, float *dx)
{
    const int32_t parts = image_parts(net, up, m);
    if (parts == 1) {
        up->ops->backward(up, B, dz, m, dx, net->scratch, up->idx);
        return;
    }
    image_job j = {up, B, dz, up->n_out, m, 1, dx, NULL, net->scratch, up->idx};
    run_image_job(net, &j, parts);
}

void fa_forward_pass(fa_net *net, const float *x, int32_t ldx, int32_t batch, float xmax,
                     int train)
{
    const int32_t L = net->n_layers;
    const float slope = (float)net->hp[FA_HP_LEAKY_SLOPE];
    float inmax = xmax;
    const int solo = solo_begin(net, batch);
    for (int32_t l = 1; l <= L; l++) {
        fa_layer *ly = &net->layers[l];
        int32_t ldin;
        const float *in = layer_input(net, l, x, ldx, &ldin);
        layer_forward(net, ly, in, ldin, batch);
        if (ly->w_rows > 0)
            /* A = W lower(H) + b, then f, in one pass over (out_c, pixels) */
            ly->hmax = par_bias_act(net, ly->act, slope, ly->z, net->params + ly->b_off,
                                    ly->out_c, fa_layer_cols(ly, batch));
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
    solo_leave(net, solo);
}

/* The mask of this pass, if dropout ran on layer l. */
static const float *pass_mask(const fa_layer *ly)
{
    return ly->h != ly->z ? ly->mask : NULL;
}

/* The error of layer l: the output error for the last layer. */
static const float *layer_error(const fa_net *net, int32_t l)
{
    return l == net->n_layers ? net->e : net->layers[l].delta;
}

/* Input of layer l and its magnitude bound. */
static float input_max(const fa_net *net, int32_t l, float xmax)
{
    return l == 1 ? xmax : net->layers[l - 1].hmax;
}

/* Bound on |dW_l| and |db_l| from the magnitudes the passes saw: each entry
 * sums out_h*out_w*m products of an error and an input value (or, for db,
 * errors alone). */
static float grad_bound(const fa_net *net, int32_t l, float xmax, int32_t m)
{
    const fa_layer *ly = &net->layers[l];
    const float inmax = input_max(net, l, xmax);
    const double bound = (double)fa_layer_cols(ly, m) * (double)ly->dmax *
                         (inmax > 1.0f ? (double)inmax : 1.0);
    return bound < 3.0e38 ? (float)bound : INFINITY;
}

static float fmaxf2(float a, float b)
{
    return a > b ? a : b;
}

/* CHAIN: from the output down to the lowest layer with parameters. */
static void chain_errors(fa_net *net, int32_t rule, int32_t m, float *grad)
{
    const float slope = (float)net->hp[FA_HP_LEAKY_SLOPE];
    for (int32_t l = net->n_layers - 1; l >= net->first_param; l--) {
        fa_layer *ly = &net->layers[l];
        const fa_layer *up = &net->layers[l + 1];
        const float *B = up->w_rows > 0 ? fa_backward_matrix(net, rule, up) : NULL;
        /* delta_l = backward(B_{l+1}, delta_{l+1}) .* f'(A_l) .* mask_l */
        layer_backward(net, up, B, layer_error(net, l + 1), m, ly->delta);
        float *db = ly->w_rows > 0 ? grad + ly->b_off : NULL;
        if (db)
            memset(db, 0, (size_t)ly->w_rows * sizeof *db);
        ly->dmax = par_finish(net, ly->act, slope, 1, ly->delta, ly->out_c, ly->z,
                              pass_mask(ly), ly->delta, ly->out_c, fa_layer_cols(ly, m), db);
        ly->has_err = ly->w_rows > 0;
    }
}

/* DIRECT's finishing pass for an image layer: its rows of D are its
 * (out_c, pixels) blocks, one per sample, nd apart; samples [j0, j1) of
 * them, the bias gradient added into db. */
typedef struct direct_image_job {
    const fa_layer *ly;
    int32_t act, with_deriv, m;
    float slope;
    const float *src, *mask;
    int64_t nd;
    float *db, *tdb;
    float max[FA_MAX_THREADS];
} direct_image_job;

static float direct_image_block(const direct_image_job *j, int32_t j0, int32_t j1, float *db)
{
    const fa_layer *ly = j->ly;
    const int64_t pix = (int64_t)ly->out_h * ly->out_w;
    float mx = 0.0f;
    for (int32_t s = j0; s < j1; s++) {
        const size_t o = (size_t)s * (size_t)ly->n_out;
        mx = fmaxf2(mx, fa_delta_finish(j->act, j->slope, j->with_deriv,
                                        j->src + (size_t)s * (size_t)j->nd, ly->out_c, ly->z + o,
                                        j->mask ? j->mask + o : NULL, ly->delta + o, ly->out_c,
                                        pix, db));
    }
    return mx;
}

static void direct_image_part(void *ctx, int32_t part, int32_t nparts)
{
    direct_image_job *j = ctx;
    const int32_t j0 = (int32_t)((int64_t)j->m * part / nparts);
    const int32_t j1 = (int32_t)((int64_t)j->m * (part + 1) / nparts);
    float *db = j->tdb + (size_t)part * (size_t)j->ly->out_c;
    memset(db, 0, (size_t)j->ly->out_c * sizeof *db);
    j->max[part] = direct_image_block(j, j0, j1, db);
}

/* The samples shared among the threads as par_finish shares columns: one
 * bias-gradient partial per part, added in order. */
static float par_direct_image(fa_net *net, direct_image_job *j)
{
    int32_t parts = net->tdb ? parts_for(net, (int64_t)j->ly->n_out * j->m) : 1;
    parts = parts < j->m ? parts : 1;
    if (parts == 1)
        return direct_image_block(j, 0, j->m, j->db);
    fa_pool_run(net, parts, direct_image_part, j);
    float mx = 0.0f;
    for (int32_t k = 0; k < parts; k++) {
        mx = fmaxf2(mx, j->max[k]);
        const float *pt = net->tdb + (size_t)k * (size_t)j->ly->out_c;
        for (int32_t i = 0; i < j->ly->out_c; i++)
            j->db[i] += pt[i];
    }
    return mx;
}

/* DIRECT: one GEMM for every hidden error, then independent layers. */
static void direct_errors(fa_net *net, int32_t rule, const float *t, int32_t ldt, int32_t m,
                          float *grad)
{
    const fa_rule_desc *r = fa_rule_table[rule];
    const int32_t L = net->n_layers, nL = net->sizes[L], nd = net->n_direct;
    const float slope = (float)net->hp[FA_HP_LEAKY_SLOPE];
    /* where the signal enters (fa_dfa_variant): the same for every direct rule */
    const int with_deriv = net->dfa_variant == FA_DFA_AFTER_ACTIVATION;
    const float *s = r->signal(net, net->e, t, ldt, m, net->sig);
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
            ly->dmax = par_finish(net, ly->act, slope, with_deriv, src, nd, ly->z,
                                  pass_mask(ly), ly->delta, ly->out_c, m, db);
        } else {
            direct_image_job j = {ly, ly->act, with_deriv, m, slope, src, pass_mask(ly), nd,
                                  db, net->tdb, {0}};
            ly->dmax = par_direct_image(net, &j);
        }
        ly->has_err = 1;
    }
}

float fa_compute_errors(fa_net *net, int32_t rule, const float *x, int32_t ldx, float xmax,
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

    const int solo = solo_begin(net, batch);
    fa_forward_pass(net, x, ldx, batch, xmax, train);

    /* e = dL/dA_L = dL/dY .* f_L'(A_L); the loss divides by the batch */
    *loss = fa_loss_compute(net->loss, out->z, nL, t, ldt, nL, batch, net->e, nL);
    memset(grad + out->b_off, 0, (size_t)out->w_rows * sizeof *grad);
    out->dmax = par_finish(net, out->act, (float)net->hp[FA_HP_LEAKY_SLOPE], 1, net->e,
                           out->out_c, out->z, NULL, net->e, out->out_c,
                           fa_layer_cols(out, batch), grad + out->b_off);
    for (int32_t l = 1; l < L; l++)
        net->layers[l].has_err = 0;
    out->has_err = 1;
    if (L > 1) {
        switch (r->hidden) {
        case FA_HIDDEN_DIRECT:
            direct_errors(net, rule, t, ldt, batch, grad);
            break;
        case FA_HIDDEN_NONE:
            /* the hidden layers' parameters all come before the last layer's */
            memset(grad, 0, (size_t)out->w_off * sizeof *grad);
            break;
        default:
            chain_errors(net, rule, batch, grad);
            break;
        }
    }
    solo_leave(net, solo);
    float gmax = 0.0f;
    for (int32_t l = 1; l <= L; l++)
        if (net->layers[l].has_err)
            gmax = fmaxf2(gmax, grad_bound(net, l, xmax, batch));
    return gmax;
}

/* dW_l of one layer into dst's W block. */
static void layer_weight_grad(const fa_net *net, int32_t l, const float *x, int32_t ldx,
                              int32_t batch, float alpha, float beta, float *dst)
{
    const fa_layer *ly = &net->layers[l];
    int32_t ldin;
    const float *in = layer_input(net, l, x, ldx, &ldin);
    ly->ops->weight_grad(ly, in, ldin, ly->col, layer_error(net, l), batch, alpha, beta,
                         dst + ly->w_off);
}

typedef struct wg_job {
    fa_net *net;
    const float *x;
    int32_t ldx, batch;
    float alpha, beta;
    float *dst;
} wg_job;

static void wg_part(void *ctx, int32_t part, int32_t nparts)
{
    wg_job *j = ctx;
    (void)nparts;
    for (int32_t l = 1; l <= j->net->n_layers; l++)
        if (j->net->layers[l].has_err && j->net->layers[l].part == part)
            layer_weight_grad(j->net, l, j->x, j->ldx, j->batch, j->alpha, j->beta, j->dst);
}

/* The multiply-adds of weight GEMMs whose inner dimension (the sum over
 * pixels and samples) is at least 4x their larger output dimension:
 * OpenBLAS splits a GEMM by its output, so a small output over a long sum
 * (a convolution's weight gradient) gains little from a second thread and
 * is better run whole on one core beside another layer's. */
static double long_sums(const fa_net *net, int32_t batch)
{
    double work = 0;
    for (int32_t l = 1; l <= net->n_layers; l++) {
        const fa_layer *ly = &net->layers[l];
        const double inner = (double)fa_layer_cols(ly, batch);
        const double out = ly->w_rows > ly->w_cols ? ly->w_rows : ly->w_cols;
        if (ly->has_err && inner >= 4.0 * out)
            work += (double)ly->w_rows * ly->w_cols * inner;
    }
    return work;
}

/* Assign the layers' weight GEMMs to `parts` threads, each layer to the
 * least loaded so far (by its multiply-adds).  Worth it when the loads come
 * out even, or when most of the work is long sums (above): then each thread runs its GEMMs on one core, which for the
 * small GEMMs of a deep narrow network beats giving every GEMM all threads
 * in turn (OpenBLAS's threads synchronise per call).  For one dominant
 * layer (a wide network) it is not, and OpenBLAS threads each GEMM. */
static int plan_layers(fa_net *net, int32_t parts, int32_t batch)
{
    double load[FA_MAX_THREADS] = {0}, total = 0;
    for (int32_t l = 1; l <= net->n_layers; l++) {
        fa_layer *ly = &net->layers[l];
        if (!ly->has_err)
            continue;
        const double cost = (double)ly->w_rows * ly->w_cols * (double)fa_layer_cols(ly, batch);
        int32_t best = 0;
        for (int32_t k = 1; k < parts; k++)
            best = load[k] < load[best] ? k : best;
        ly->part = best;
        load[best] += cost;
        total += cost;
    }
    double worst = 0;
    for (int32_t k = 0; k < parts; k++)
        worst = load[k] > worst ? load[k] : worst;
    return worst <= 1.15 * total / parts || long_sums(net, batch) > 0.5 * total;
}

void fa_weight_grads(fa_net *net, const float *x, int32_t ldx, int32_t batch, float alpha,
                     float beta, float *dst)
{
    const int32_t parts = net->nthreads;
    const int solo = solo_begin(net, batch);
    /* plan_layers assigns the layers to the threads in any case; with
     * OpenBLAS on one thread for the phase, side by side is never slower */
    if (parts > 1 && net->layer_parallel != FA_LAYER_PARALLEL_NEVER &&
        (plan_layers(net, parts, batch) || net->blas_solo ||
         net->layer_parallel == FA_LAYER_PARALLEL_ALWAYS)) {
        wg_job j = {net, x, ldx, batch, alpha, beta, dst};
        /* each thread's GEMMs on its own core */
        const int one = solo_enter(net);
        fa_pool_run(net, parts, wg_part, &j);
        solo_leave(net, one);
    } else {
        for (int32_t l = 1; l <= net->n_layers; l++)
            if (net->layers[l].has_err)
                layer_weight_grad(net, l, x, ldx, batch, alpha, beta, dst);
    }
    solo_leave(net, solo);
}

float fa_compute_grad(fa_net *net, int32_t rule, const float *x, int32_t ldx, float xmax,
                      const float *t, int32_t ldt, int32_t batch, int train, float *grad,
                      double *loss)
{
    float gmax = fa_compute_errors(net, rule, x, ldx, xmax, t, ldt, batch, train, grad, loss);
    fa_weight_grads(net, x, ldx, batch, 1.0f, 0.0f, grad);
    return gmax;
}

/* The bounds check every applied step starts with; nothing is written. */
static int check_step(fa_net *net, float gmax, fa_step_bounds *b, const char *fn)
{
    const fa_rule_desc *r = fa_rule_table[net->rule];
    if (!fa_optimizer_bounds(net, gmax, b))
        return fa_fail(FA_ERR_NONFINITE, fn, "the optimiser step could leave the float range "
                       "(max |update| %g, max |parameter| %g, learning rate %g); nothing was "
                       "changed", (double)gmax, b->p_old, net->hp[FA_HP_LR]);
    return r->check_commit ? r->check_commit(net, b, fn) : FA_OK;
}

int fa_apply_step(fa_net *net, const float *grad, float gmax, const char *fn)
{
    const fa_rule_desc *r = fa_rule_table[net->rule];
    fa_step_bounds b;
    int rc = check_step(net, gmax, &b, fn);
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

/* Whether every weight GEMM sums few enough terms for the fused SGD update.
 * A GEMM with beta != 0 adds its product into W one block of the inner
 * dimension at a time, rounding W after each block; with one block (an
 * inner dimension of at most a few hundred: a dense layer's batch) that is
 * the single rounding the optimiser's own SGD makes, but a convolution sums
 * over every output pixel of the batch (P = H_out W_out m), and W would be
 * rounded P/256 times.  Those steps go through the gradient block. */
#define FUSED_SGD_MAX_TERMS 256

static int short_sums(const fa_net *net, int32_t batch)
{
    for (int32_t l = 1; l <= net->n_layers; l++)
        if (net->layers[l].has_err && fa_layer_cols(&net->layers[l], batch) > FUSED_SGD_MAX_TERMS)
            return 0;
    return 1;
}

/* Plain SGD applied inside the weight GEMMs: W <- (1 - lr wd) W - lr dW is
 * one GEMM with alpha = -lr and beta = 1 - lr wd, so a train_step under
 * SGD needs neither the update buffer nor a pass over the parameters (the
 * biases, from the bias gradients the error passes summed, are a pass over
 * n_l values per layer).  The same arithmetic as the optimiser's SGD up to
 * the rounding of the fused product. */
static int commit_sgd_fused(fa_net *net, const float *x, int32_t ldx, int32_t batch,
                            float gmax, const char *fn)
{
    const fa_rule_desc *r = fa_rule_table[net->rule];
    fa_step_bounds b;
    int rc = check_step(net, gmax, &b, fn);
    if (rc)
        return rc;
    const float lr = (float)net->hp[FA_HP_LR], wd = (float)net->hp[FA_HP_WEIGHT_DECAY];
    if (r->before_commit)
        r->before_commit(net);
    fa_weight_grads(net, x, ldx, batch, -lr, 1.0f - lr * wd, net->params);
    for (int32_t l = 1; l <= net->n_layers; l++) {
        const fa_layer *ly = &net->layers[l];
        if (!ly->has_err)
            continue;
        float *bias = net->params + ly->b_off;
        const float *db = net->grad + ly->b_off;
        for (int32_t i = 0; i < ly->w_rows; i++)
            bias[i] -= lr * db[i];
    }
    fa_optimizer_fused_done(net, &b);
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
    start_threads(net);
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

/* Forward, loss and the rule's errors (bias gradients into grad), with the
 * checks every training entry point shares; *gmax receives a bound on
 * max |update|.  Nothing but the workspace, grad and the dropout stream is
 * written; a failure puts the stream back as *saved had it. */
static int errors_into(fa_net *net, const float *x, int32_t ldx, float xmax, const float *t,
                       int32_t ldt, int32_t batch, float *grad, double *loss, float *gmax,
                       fa_rng *saved, const char *fn)
{
    int rc = fa_net_ensure_workspace(net, batch, fn);
    if (rc || (rc = fa_feedback_ensure(net, net->rule, fn)))
        return rc;
    start_threads(net);
    *saved = net->rng_drop;
    *gmax = fa_compute_errors(net, net->rule, x, ldx, xmax, t, ldt, batch, 1, grad, loss);
    if ((rc = check_loss(*loss, fn)))
        net->rng_drop = *saved;
    return rc;
}

/* The weight gradients into grad after errors_into; when the cheap bound
 * says nothing (non-finite values), the update itself is looked at. */
static int weights_into(fa_net *net, const float *x, int32_t ldx, int32_t batch, float *grad,
                        float *gmax, const fa_rng *saved, const char *fn)
{
    fa_weight_grads(net, x, ldx, batch, 1.0f, 0.0f, grad);
    if (!((double)*gmax < FA_VALUE_LIMIT)) {
        *gmax = fa_absmax(grad, net->n_params);
        if (!isfinite(*gmax)) {
            net->rng_drop = *saved;
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
    fa_rng saved;
    int rc = check_batch_io(net, x, ldx, t, ldt, 1, batch, &xmax, fn);
    if (rc || (rc = errors_into(net, x, ldx, xmax, t, ldt, batch, net->grad, &l, &gmax, &saved,
                                fn)))
        return rc;
    if (net->optimizer == FA_OPT_SGD && (double)gmax < FA_VALUE_LIMIT && short_sums(net, batch)) {
        rc = commit_sgd_fused(net, x, ldx, batch, gmax, fn);
    } else if ((rc = weights_into(net, x, ldx, batch, net->grad, &gmax, &saved, fn)) == FA_OK) {
        rc = fa_apply_step(net, net->grad, gmax, fn);
    }
    if (rc) {
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
    fa_rng saved;
    int rc = check_batch_io(net, x, ldx, t, ldt, 1, batch, &xmax, fn);
    if (rc || (rc = fa_check_flat(net, grad, "grad", n, 0, fn)) ||
        (rc = errors_into(net, x, ldx, xmax, t, ldt, batch, grad, &l, &gmax, &saved, fn)) ||
        (rc = weights_into(net, x, ldx, batch, grad, &gmax, &saved, fn)))
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
    start_threads(net);
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
    start_threads(net);
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
