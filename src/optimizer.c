/* optimizer.c -- parameter updates from an update direction g, the
 * hyperparameter table, and the bounds that make a step all-or-nothing.
 * Weight decay is the L2 kind, on weights only: g = dW + wd * W.
 *
 * Why bounds: a step must either succeed with every parameter and moment
 * finite, or fail having written nothing.  Checking the results after
 * writing them would need a copy of the old values (a second pass over all
 * state per step).  Instead the optimiser keeps the largest magnitudes of
 * the parameters and of its moments (computed in the same pass that writes
 * them, at no extra memory traffic) and, before a step, bounds what the step
 * can produce from those and from max |g|.  The bounds are loose, but they
 * only refuse steps whose values approach 1e37, or whose squared gradients
 * overflow (|g| near 1e19 under Adam or RMSprop) -- diverged runs, which
 * then fail cleanly instead of writing infinities. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

/* ------------------------------------------------------- hyperparameters */

static const fa_hparam_desc core_hparams[] = {
    {FA_HP_LR, "lr", "learning rate", 0.01, FA_RANGE_POSITIVE},
    {FA_HP_MOMENTUM, "momentum", "momentum mu of the momentum and nesterov optimisers", 0.9,
     FA_RANGE_UNIT_OPEN},
    {FA_HP_BETA1, "beta1", "Adam's decay of the first moment", 0.9, FA_RANGE_UNIT_OPEN},
    {FA_HP_BETA2, "beta2", "Adam's decay of the second moment", 0.999, FA_RANGE_UNIT_OPEN},
    {FA_HP_EPSILON, "epsilon", "epsilon of Adam and RMSprop", 1e-8, FA_RANGE_POSITIVE},
    {FA_HP_WEIGHT_DECAY, "weight_decay", "L2 weight decay on the weights", 0.0,
     FA_RANGE_NONNEG},
    {FA_HP_RMS_DECAY, "rms_decay", "RMSprop's decay rho of the squared gradient", 0.9,
     FA_RANGE_UNIT_OPEN},
    {FA_HP_LEAKY_SLOPE, "leaky_slope", "slope of leaky_relu for negative inputs", 0.01,
     FA_RANGE_UNIT},
};

const fa_hparam_desc *fa_hparam_find(int32_t id)
{
    for (size_t i = 0; i < sizeof core_hparams / sizeof core_hparams[0]; i++)
        if (core_hparams[i].id == id)
            return &core_hparams[i];
    for (int32_t r = 0; r < FA_N_RULES; r++) {
        const fa_rule_desc *d = fa_rule_table[r];
        for (int32_t i = 0; i < d->n_hparams; i++)
            if (d->hparams[i].id == id)
                return &d->hparams[i];
    }
    return NULL;
}

/* The one definition of the valid hyperparameter values, for
 * fa_net_set_hparam and for model files.  Values are judged after the
 * conversion to float that the library computes in: 1e-50 is not a usable
 * learning rate (it becomes 0), nor 1e39 (inf), nor 0.9999999999 a usable
 * beta2 (it rounds to 1, and 1 - beta2 to 0). */
int fa_hparam_valid(int32_t hparam, double value, const char **want)
{
    const fa_hparam_desc *h = fa_hparam_find(hparam);
    const float f = (float)value;
    const int fin = isfinite(value) && isfinite(f);
    *want = "a known hyperparameter";
    if (!h)
        return 0;
    switch (h->range) {
    case FA_RANGE_POSITIVE:
        *want = "a float >= 1.2e-38 (FLT_MIN) and <= 3.4e38 (FLT_MAX)";
        return fin && f >= FLT_MIN;
    case FA_RANGE_NONNEG:
        *want = "a float >= 0 and <= 3.4e38 (FLT_MAX)";
        return fin && value >= 0;
    case FA_RANGE_UNIT:
        *want = "a value in [0, 1]";
        return value >= 0 && value <= 1;
    case FA_RANGE_COUNT:
        *want = "an integer in [1, 65536]";
        return value >= 1 && value <= 65536 && value == floor(value);
    default: /* FA_RANGE_UNIT_OPEN */
        *want = "a value in [0, 1) that stays below 1 as a float";
        return value >= 0 && f < 1.0f;
    }
}

/* ------------------------------------------------------------ the state */

int64_t fa_optimizer_state_len(const fa_net *net)
{
    switch (net->optimizer) {
    case FA_OPT_MOMENTUM:
    case FA_OPT_NESTEROV:
    case FA_OPT_RMSPROP:
        return net->n_params;
    case FA_OPT_ADAM:
        return 2 * net->n_params;
    default:
        return 0;
    }
}

void fa_optimizer_reset(fa_net *net)
{
    memset(net->opt_state, 0, 2 * (size_t)net->n_params * sizeof *net->opt_state);
    net->opt_step = 0;
    net->bounds_valid = 0;
}

/* Adam's bias corrections for the coming step. */
static void adam_corrections(const fa_net *net, double *bc1, double *bc2)
{
    const double t = net->opt_step < INT64_MAX ? (double)(net->opt_step + 1) : (double)INT64_MAX;
    *bc1 = 1.0 - pow(net->hp[FA_HP_BETA1], t);
    *bc2 = 1.0 - pow(net->hp[FA_HP_BETA2], t);
}

int fa_optimizer_bounds(fa_net *net, float gmax, fa_step_bounds *b)
{
    if (!net->bounds_valid) {
        const int64_t n = net->n_params;
        net->absmax_p = fa_absmax(net->params, n);
        net->absmax_s1 = fa_absmax(net->opt_state, n);
        net->absmax_s2 = fa_absmax(net->opt_state + n, n);
        net->bounds_valid = 1;
    }
    const double P = net->absmax_p, S1 = net->absmax_s1, S2 = net->absmax_s2;
    const double lr = (float)net->hp[FA_HP_LR], wd = (float)net->hp[FA_HP_WEIGHT_DECAY];
    const double eps = (float)net->hp[FA_HP_EPSILON];
    const double gi = (double)gmax + wd * P; /* |g + wd p| */
    double pn = 0, s1 = 0, s2 = 0, extra = 0;
    switch (net->optimizer) {
    case FA_OPT_MOMENTUM:
        s1 = net->hp[FA_HP_MOMENTUM] * S1 + gi;
        pn = P + lr * s1;
        break;
    case FA_OPT_NESTEROV:
        s1 = net->hp[FA_HP_MOMENTUM] * S1 + gi;
        pn = P + lr * (gi + net->hp[FA_HP_MOMENTUM] * s1);
        break;
    case FA_OPT_ADAM: {
        double bc1, bc2;
        adam_corrections(net, &bc1, &bc2);
        s1 = net->hp[FA_HP_BETA1] * S1 + (1.0 - net->hp[FA_HP_BETA1]) * gi;
        s2 = net->hp[FA_HP_BETA2] * S2 + (1.0 - net->hp[FA_HP_BETA2]) * gi * gi;
        extra = gi * gi > s2 / bc2 ? gi * gi : s2 / bc2;  /* g^2 and v_hat */
        pn = P + lr * (s1 / bc1) / eps; /* sqrt(v_hat) + eps >= eps */
        extra = extra > s1 / bc1 ? extra : s1 / bc1;
        break;
    }
    case FA_OPT_RMSPROP:
        s1 = net->hp[FA_HP_RMS_DECAY] * S1 + (1.0 - net->hp[FA_HP_RMS_DECAY]) * gi * gi;
        extra = gi * gi;
        pn = P + lr * gi / eps;
        break;
    default: /* SGD */
        pn = P + lr * gi;
        break;
    }
    b->p_old = P;
    b->p_new = pn;
    return gi < FA_VALUE_LIMIT && pn < FA_VALUE_LIMIT && s1 < FA_VALUE_LIMIT &&
           s2 < FA_VALUE_LIMIT && extra < FA_VALUE_LIMIT;
}

/* ------------------------------------------------------------ the step */

typedef struct seg_max {
    uint32_t p, s1, s2;
} seg_max;

/* One optimiser update of count parameters p with direction g (plus
 * wd * p), state vectors s1, s2 (velocity/first moment, second moment);
 * folds the new magnitudes into mx. */
FA_KERNEL static void update_segment(const fa_net *net, float *restrict p, const float *restrict g,
                           float *restrict s1, float *restrict s2, int64_t count, float wd,
                           float bc1, float bc2, seg_max *mx)
{
    const float lr = (float)net->hp[FA_HP_LR];
    const float mu = (float)net->hp[FA_HP_MOMENTUM];
    const float b1 = (float)net->hp[FA_HP_BETA1];
    const float b2 = (float)net->hp[FA_HP_BETA2];
    const float eps = (float)net->hp[FA_HP_EPSILON];
    const float rho = (float)net->hp[FA_HP_RMS_DECAY];
    const float step1 = lr / bc1, inv2 = 1.0f / bc2;
    uint32_t mp = mx->p, m1 = mx->s1, m2 = mx->s2;

    switch (net->optimizer) {
    case FA_OPT_MOMENTUM:
        for (int64_t i = 0; i < count; i++) {
            float gi = g[i] + wd * p[i];
            s1[i] = mu * s1[i] + gi;
            p[i] -= lr * s1[i];
            uint32_t a = fa_mag_bits(p[i]), c = fa_mag_bits(s1[i]);
            mp = a > mp ? a : mp;
            m1 = c > m1 ? c : m1;
        }
        break;
    case FA_OPT_NESTEROV:
        for (int64_t i = 0; i < count; i++) {
            float gi = g[i] + wd * p[i];
            s1[i] = mu * s1[i] + gi;
            p[i] -= lr * (gi + mu * s1[i]);
            uint32_t a = fa_mag_bits(p[i]), c = fa_mag_bits(s1[i]);
            mp = a > mp ? a : mp;
            m1 = c > m1 ? c : m1;
        }
        break;
    case FA_OPT_ADAM:
        for (int64_t i = 0; i < count; i++) {
            float gi = g[i] + wd * p[i];
            s1[i] = b1 * s1[i] + (1.0f - b1) * gi;
            s2[i] = b2 * s2[i] + (1.0f - b2) * gi * gi;
            /* one division: the bias corrections as multipliers */
            p[i] -= step1 * s1[i] / (sqrtf(s2[i] * inv2) + eps);
            uint32_t a = fa_mag_bits(p[i]), c = fa_mag_bits(s1[i]), d = fa_mag_bits(s2[i]);
            mp = a > mp ? a : mp;
            m1 = c > m1 ? c : m1;
            m2 = d > m2 ? d : m2;
        }
        break;
    case FA_OPT_RMSPROP:
        for (int64_t i = 0; i < count; i++) {
            float gi = g[i] + wd * p[i];
            s1[i] = rho * s1[i] + (1.0f - rho) * gi * gi;
            p[i] -= lr * gi / (sqrtf(s1[i]) + eps);
            uint32_t a = fa_mag_bits(p[i]), c = fa_mag_bits(s1[i]);
            mp = a > mp ? a : mp;
            m1 = c > m1 ? c : m1;
        }
        break;
    default: /* FA_OPT_SGD */
        for (int64_t i = 0; i < count; i++) {
            p[i] -= lr * (g[i] + wd * p[i]);
            uint32_t a = fa_mag_bits(p[i]);
            mp = a > mp ? a : mp;
        }
        break;
    }
    mx->p = mp;
    mx->s1 = m1;
    mx->s2 = m2;
}

/* The commit as parts of one range: the segments (each layer's W, with
 * weight decay, and b, without) laid end to end and cut into nparts equal
 * pieces, so that threads share the work whatever the layer sizes. */
typedef struct commit_job {
    fa_net *net;
    const float *grad;
    float bc1, bc2;
    int32_t n_seg;
    int64_t total;
    struct {
        int64_t off, len; /* in the parameter block */
        float wd;
    } seg[2 * 64];
    seg_max mx[FA_MAX_THREADS];
} commit_job;

/* Denormals flushed to zero (MXCSR's FTZ and DAZ bits) for the calling
 * thread while it runs the update.  Once a run has converged on its data
 * the moments decay geometrically through the denormal range, where every
 * multiply takes a microcode assist: a 784-1000-10 Adam step trained on one
 * batch went from 3.8 to 8.6 ms after about 700 steps, and stays at 3.9
 * with the flush.  Values that small contribute nothing the update could
 * represent.  Returns the mode to restore; a no-op off x86. */
static unsigned flush_denormals(void)
{
#if defined(__x86_64__) || defined(__i386__)
    const unsigned old = _mm_getcsr();
    _mm_setcsr(old | 0x8040u); /* FTZ (bit 15) | DAZ (bit 6) */
    return old;
#else
    return 0;
#endif
}

static void restore_fp_mode(unsigned old)
{
#if defined(__x86_64__) || defined(__i386__)
    /* the control bits as they were; the sticky exception flags (bits
     * 0-5) as the update left them */
    _mm_setcsr((old & ~0x3fu) | (_mm_getcsr() & 0x3fu));
#else
    (void)old;
#endif
}

static void commit_part(void *ctx, int32_t part, int32_t nparts)
{
    commit_job *j = ctx;
    const unsigned fp_mode = flush_denormals();
    fa_net *net = j->net;
    float *s1 = net->opt_state, *s2 = net->opt_state + net->n_params;
    const int64_t lo = j->total * part / nparts, hi = j->total * (part + 1) / nparts;
    seg_max mx = {0, 0, 0};
    int64_t pos = 0;
    for (int32_t k = 0; k < j->n_seg && pos < hi; k++) {
        const int64_t a = lo > pos ? lo - pos : 0;
        const int64_t b = hi - pos < j->seg[k].len ? hi - pos : j->seg[k].len;
        if (a < b) {
            const int64_t o = j->seg[k].off + a;
            update_segment(net, net->params + o, j->grad + o, s1 + o, s2 + o, b - a,
                           j->seg[k].wd, j->bc1, j->bc2, &mx);
        }
        pos += j->seg[k].len;
    }
    j->mx[part] = mx;
    restore_fp_mode(fp_mode);
}

/* Elements below which one thread does the commit alone: the hand-over to
 * a sleeping thread costs about as much as this many updates. */
#define PAR_COMMIT_MIN 65536

void fa_optimizer_commit(fa_net *net, const float *grad)
{
    const float wd = (float)net->hp[FA_HP_WEIGHT_DECAY];
    const int trains_hidden = fa_rule_table[net->rule]->trains_hidden;
    double bc1 = 1.0, bc2 = 1.0;
    if (net->optimizer == FA_OPT_ADAM)
        adam_corrections(net, &bc1, &bc2);
    if (net->opt_step < INT64_MAX)
        net->opt_step++;
    commit_job j;
    j.net = net;
    j.grad = grad;
    j.bc1 = (float)bc1;
    j.bc2 = (float)bc2;
    int skipped = 0;
    int32_t parts = net->nthreads > 1 ? net->nthreads : 1;
    seg_max all = {0, 0, 0};
    for (int32_t l = 1; l <= net->n_layers;) {
        /* at most 64 layers a round: the job's segment table */
        j.n_seg = 0;
        j.total = 0;
        for (; l <= net->n_layers && j.n_seg < 2 * 64; l++) {
            const fa_layer *ly = &net->layers[l];
            if (ly->w_rows == 0)
                continue;
            if (!trains_hidden && l < net->n_layers) {
                skipped = 1; /* SHALLOW: hidden parameters and their state stay */
                continue;
            }
            const int64_t nw = (int64_t)ly->w_rows * ly->w_cols;
            j.seg[j.n_seg].off = ly->w_off;
            j.seg[j.n_seg].len = nw;
            j.seg[j.n_seg++].wd = wd;
            j.seg[j.n_seg].off = ly->b_off;
            j.seg[j.n_seg].len = ly->w_rows;
            j.seg[j.n_seg++].wd = 0.0f;
            j.total += nw + ly->w_rows;
        }
        const int32_t p = j.total >= (int64_t)parts * PAR_COMMIT_MIN ? parts : 1;
        fa_pool_run(net, p, commit_part, &j);
        for (int32_t k = 0; k < p; k++) {
            all.p = j.mx[k].p > all.p ? j.mx[k].p : all.p;
            all.s1 = j.mx[k].s1 > all.s1 ? j.mx[k].s1 : all.s1;
            all.s2 = j.mx[k].s2 > all.s2 ? j.mx[k].s2 : all.s2;
        }
    }
    /* The kept magnitudes bound every value; segments not written keep
     * their old bounds. */
    float p = fa_bits_mag(all.p), a = fa_bits_mag(all.s1), c = fa_bits_mag(all.s2);
    if (skipped) {
        p = p > net->absmax_p ? p : net->absmax_p;
        a = a > net->absmax_s1 ? a : net->absmax_s1;
        c = c > net->absmax_s2 ? c : net->absmax_s2;
    }
    net->absmax_p = p;
    /* an optimiser that does not use a moment leaves it zero */
    net->absmax_s1 = net->optimizer == FA_OPT_SGD ? net->absmax_s1 : a;
    net->absmax_s2 = net->optimizer == FA_OPT_ADAM ? c : net->absmax_s2;
}

void fa_optimizer_fused_done(fa_net *net, const fa_step_bounds *b)
{
    if (net->opt_step < INT64_MAX)
        net->opt_step++;
    /* the parameters were written by GEMMs: keep the step's bound on them */
    net->absmax_p = b->p_new < 3.0e38 ? (float)b->p_new : INFINITY;
}
