/*
 * train.c -- fa-train's training of one network under one rule: build (or
 * load) the network, then epoch by epoch run the steps, evaluate, measure
 * the alignment angles and report.
 *
 * In fa-train-mpi every process runs this with its own identical network:
 * each step is shared (shared_step: shard, compute, agree, all-reduce,
 * apply), rank 0 alone evaluates, reports and saves, and the networks are
 * compared across the processes (check_same).  In fa-train a step is one
 * fa_net_train_step, and every par_* call is trivial.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fa-train.h"

#define EVAL_CHUNK 1000

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void
free_run(run *r)
{
    free(r->test_acc);
    free(r->val_acc);
    free(r->train_loss);
    free(r->epoch_s);
    free(r->lr);
    free(r->angles);
}

/* ------------------------------------------------------------ the network */

/* The dropout seed of rank r > 0: splitmix64 of the seed and the rank. */
static uint64_t
dropout_seed(uint64_t seed, int rank)
{
    uint64_t z = seed + 0x9E3779B97F4A7C15ull * ((uint64_t)rank + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Create (or load) the network and apply the options. */
static int
make_net(const config *c, int32_t rule, fa_net **out)
{
    fa_net *net = NULL;
    int rc;
    const char *what = "";
    *out = NULL;
    if (c->load) {
        rc = fa_net_load(&net, c->load);
        if (rc != FA_OK) {
            report_error("--load %s: %s: %s", c->load, fa_status_string(rc),
                         fa_last_error());
            return rc;
        }
    } else {
        what = "fa_net_create_from_spec (--arch)";
        rc = fa_net_create_from_spec(&net, c->spec, c->loss, c->seed);
        if (rc != FA_OK)
            goto fail;
        /* Same RNG draws in the same order for every rule, so --compare
         * starts each rule from identical forward weights. */
        if (c->init != FA_INIT_DEFAULT) {
            what = "fa_net_init_weights (--init)";
            if ((rc = fa_net_init_weights(net, c->init)) != FA_OK)
                goto fail;
        }
    }
    /* With --load only the explicitly given options change the model;
     * otherwise every option applies (defaults included). */
    bool fresh = c->load == NULL;
    if (fresh || c->set[O_FB_DIST] || c->set[O_FB_SCALE]) {
        what = "fa_net_set_feedback_init (--fb-dist/--fb-scale)";
        if ((rc = fa_net_set_feedback_init(net, c->fb_dist, c->fb_scale)) != FA_OK)
            goto fail;
    }
    if (fresh || c->set[O_DFA_VARIANT]) {
        what = "fa_net_set_dfa_variant (--dfa-variant)";
        if ((rc = fa_net_set_dfa_variant(net, c->dfa_variant)) != FA_OK)
            goto fail;
    }
    if (fresh || c->set[O_RULE] || c->n_compare > 0) {
        what = "fa_net_set_rule (--rule)";
        if ((rc = fa_net_set_rule(net, rule)) != FA_OK)
            goto fail;
    }
    int32_t L = 0;
    fa_net_num_layers(net, &L);
    if (fresh || c->set[O_DROPOUT]) {
        what = "fa_net_set_dropout (--dropout)";
        for (int32_t l = 1; l < L; l++)
            if ((rc = fa_net_set_dropout(net, l, c->dropout)) != FA_OK)
                goto fail;
    }
    if (fresh || c->set[O_OPT]) {
        what = "fa_net_set_optimizer (--opt)";
        if ((rc = fa_net_set_optimizer(net, c->opt)) != FA_OK)
            goto fail;
    }
    if (fresh || c->set[O_LR]) {
        what = "fa_net_set_hparam (--lr)";
        if ((rc = fa_net_set_hparam(net, FA_HP_LR, c->lr)) != FA_OK)
            goto fail;
    }
    if (fresh || c->set[O_MOMENTUM]) {
        what = "fa_net_set_hparam (--momentum)";
        if ((rc = fa_net_set_hparam(net, FA_HP_MOMENTUM, c->momentum)) != FA_OK)
            goto fail;
    }
    if (fresh || c->set[O_WD]) {
        what = "fa_net_set_hparam (--wd)";
        if ((rc = fa_net_set_hparam(net, FA_HP_WEIGHT_DECAY, c->wd)) != FA_OK)
            goto fail;
    }
    for (int i = 0; i < c->n_hparams; i++) {
        what = "fa_net_set_hparam (--hparam)";
        if ((rc = fa_net_set_hparam(net, c->hparam_id[i], c->hparam_value[i])) != FA_OK)
            goto fail;
    }
    /* Data parallel: every process draws its own dropout masks (rank 0
     * keeps the network's stream, so one process trains as fa-train does);
     * the model stream, and so the feedback, stays the same everywhere. */
    if (par_rank() > 0) {
        what = "fa_net_seed_dropout";
        if ((rc = fa_net_seed_dropout(net, dropout_seed(c->seed, par_rank()))) != FA_OK)
            goto fail;
    }
    *out = net;
    return FA_OK;
fail:
    lib_error(what, rc);
    fa_net_free(net);
    return rc;
}

/* Check the network fits the data: input width (and, for an image input,
 * its shape) and output classes. */
static bool
check_fit(const config *c, fa_net *net, const data *d, int32_t *n_out,
          int32_t *L)
{
    const char *src = c->load ? c->load : "--arch";
    fa_spec *spec = NULL;
    int32_t ch = 0, h = 0, w = 0;
    fa_net_num_layers(net, L);
    if (fa_net_get_spec(net, &spec) != FA_OK) {
        lib_error("fa_net_get_spec", FA_ERR_NOMEM);
        return false;
    }
    fa_spec_shape(spec, 0, &ch, &h, &w);
    fa_spec_shape(spec, *L, n_out, NULL, NULL);
    fa_spec_free(spec);
    if ((int64_t)ch * h * w != d->features) {
        report_error("%s: input of %d features does not match the %d pixels per "
                     "image of %s", src, ch * h * w, d->features, d->train_path);
        return false;
    }
    /* an image input must be the images' shape, not just their size */
    if ((h > 1 || w > 1) && (ch != 1 || h != d->train_img.rows || w != d->train_img.cols)) {
        report_error("%s: input shape %dx%dx%d does not match the 1x%dx%d images of %s",
                     src, ch, h, w, d->train_img.rows, d->train_img.cols, d->train_path);
        return false;
    }
    if (*n_out <= d->max_label) {
        report_error("%s: output width %d cannot represent label %d of %s",
                     src, *n_out, d->max_label, d->train_path);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------- one run */

/* Everything one run needs between its epochs. */
typedef struct trainer {
    const config *c;
    const data *d;
    fa_net *net;
    run *r;
    csv_log *log;
    int32_t L, n_out;
    int32_t bmax;    /* largest batch */
    int32_t nb;      /* batches per epoch */
    int32_t align_n; /* samples of the alignment batch (0: off) */
    double base_lr;
    int32_t batches_done; /* in the epoch under way, for an early stop */
    uint64_t shuffle_state;
    bool bar;
    /* Buffers: batch inputs, batch targets, evaluation outputs, alignment
     * targets, the sample order. */
    float *xb, *tb, *yb, *ta;
    int32_t *perm;
    /* Shared steps (fa-train-mpi): the update and, after it, the weighted
     * loss (n_params + 1 floats); the steps taken; the failure of the last
     * fa_net_apply_update, reported at the next agreement; the buffer of
     * the model image compared at epoch ends. */
    float *update;
    int64_t n_params;
    int64_t steps;
    run_status pending;
    unsigned char *image;
    int64_t image_len;
} trainer;

/* Per-epoch records and buffers; false after a message. */
static bool
setup(trainer *t)
{
    const data *d = t->d;
    run *r = t->r;
    size_t ep = (size_t)t->c->epochs + 1, na = (size_t)(t->L - 1);
    r->test_acc = calloc(ep, sizeof *r->test_acc);
    r->val_acc = calloc(ep, sizeof *r->val_acc);
    r->train_loss = calloc(ep, sizeof *r->train_loss);
    r->epoch_s = calloc(ep, sizeof *r->epoch_s);
    r->lr = calloc(ep, sizeof *r->lr);
    r->angles = calloc(ep * (na ? na : 1), sizeof *r->angles);
    t->bmax = t->c->batch < d->train.n ? t->c->batch : d->train.n;
    t->nb = (d->train.n + t->bmax - 1) / t->bmax;
    t->align_n = t->c->align_batch < d->train.n ? t->c->align_batch : d->train.n;
    size_t f = (size_t)d->features, n_out = (size_t)t->n_out;
    t->xb = malloc(sizeof *t->xb * f * (size_t)t->bmax);
    t->tb = malloc(sizeof *t->tb * n_out * (size_t)t->bmax);
    t->yb = malloc(sizeof *t->yb * n_out * EVAL_CHUNK);
    t->ta = malloc(sizeof *t->ta * n_out * (size_t)(t->align_n ? t->align_n : 1));
    t->perm = malloc(sizeof *t->perm * (size_t)d->train.n);
    fa_net_param_count(t->net, &t->n_params);
    if (par_mpi)
        t->update = malloc(sizeof *t->update * (size_t)(t->n_params + 1));
    if (!r->test_acc || !r->val_acc || !r->train_loss || !r->epoch_s ||
        !r->lr || !r->angles || !t->xb || !t->tb || !t->yb || !t->ta ||
        !t->perm || (par_mpi && !t->update)) {
        report_error("out of memory");
        return false;
    }
    /* One workspace for the largest batch any call will pass, so the loop
     * never reallocates. */
    int32_t reserve = t->bmax > EVAL_CHUNK ? t->bmax : EVAL_CHUNK;
    if (t->align_n > reserve)
        reserve = t->align_n;
    int rc = fa_net_reserve(t->net, reserve);
    if (rc != FA_OK) {
        lib_error("fa_net_reserve", rc);
        return false;
    }
    for (int32_t i = 0; i < d->train.n; i++)
        t->perm[i] = i;
    /* The alignment batch is fixed (the first training samples), so the
     * angles of successive epochs are comparable. */
    if (t->align_n > 0)
        one_hot(t->ta, t->n_out, d->train.y, NULL, t->align_n);
    t->bar = par_root() &&
             (t->c->progress == PROGRESS_ON ||
              (t->c->progress == PROGRESS_AUTO && isatty(STDERR_FILENO)));
    t->shuffle_state = t->c->seed;
    fa_net_get_hparam(t->net, FA_HP_LR, &t->base_lr);
    r->lr[0] = t->base_lr;
    return true;
}

static void
release(trainer *t)
{
    free(t->xb);
    free(t->tb);
    free(t->yb);
    free(t->ta);
    free(t->perm);
    free(t->update);
    free(t->image);
    fa_net_free(t->net);
    t->net = NULL;
}

/* The learning rate of epoch e >= 1: base * decay^floor((e-1)/every), but
 * not below --lr-min (nor below base when base is smaller: the floor never
 * raises the rate).  Without the floor a long decay reaches rates the
 * library refuses (below FLT_MIN), which stopped the training. */
static double
schedule_lr(const config *c, double base, int32_t e)
{
    double lr = base * pow(c->lr_decay, (double)((e - 1) / c->lr_every));
    return fmax(lr, fmin(c->lr_min, base));
}

/* The outcome of a step's library call rc (fn), reported. */
static run_status
step_failure(const trainer *t, int rc, int32_t e, int32_t b, const char *fn)
{
    if (rc == FA_OK)
        return RUN_OK;
    if (rc == FA_ERR_NONFINITE) {
        report_error("rule %s diverged in epoch %d, batch %d (%s); try a smaller --lr",
                     enum_name(NK_RULE, t->r->rule), e, b + 1, fa_last_error());
        return RUN_DIVERGED;
    }
    lib_error(fn, rc);
    return RUN_FAILED;
}

/* One fa-train step: the whole batch perm[start .. start+m) here. */
static run_status
local_step(trainer *t, int32_t e, int32_t b, int32_t start, int32_t m, double *loss)
{
    const data *d = t->d;
    gather_batch(&d->train, d->features, t->perm + start, m, t->n_out, t->xb, t->tb);
    float l = 0.0f;
    int rc = fa_net_train_step(t->net, t->xb, d->features, t->tb, t->n_out, m, &l);
    if (rc == FA_ERR_NONFINITE) {
        report_error("rule %s diverged in epoch %d, batch %d (the loss or "
                     "update is not finite); try a smaller --lr",
                     enum_name(NK_RULE, t->r->rule), e, b + 1);
        return RUN_DIVERGED;
    }
    if (rc != FA_OK) {
        lib_error("fa_net_train_step", rc);
        return RUN_FAILED;
    }
    *loss = l;
    return RUN_OK;
}

/* Whether every process holds the same network: the parameters (a hash of
 * the borrowed block, cheap), and with image also everything else, through
 * the model image of a copy whose dropout stream -- the one thing that
 * differs by design -- is reseeded alike on every process.  COLLECTIVE. */
static run_status
check_same(trainer *t, bool image, const char *where)
{
    if (par_size() == 1)
        return RUN_OK;
    const float *p = NULL;
    fa_net_params_data(t->net, &p);
    run_status st = par_same(p, sizeof *p * (size_t)t->n_params, "the parameters", where);
    if (st != RUN_OK || !image)
        return st;
    fa_net *copy = NULL;
    int64_t need = 0;
    int rc = fa_net_clone(&copy, t->net);
    if (rc == FA_OK)
        rc = fa_net_seed_dropout(copy, 0);
    if (rc == FA_OK)
        rc = fa_net_save_image(copy, NULL, 0, &need);
    if (rc == FA_OK && need > t->image_len) {
        unsigned char *grown = realloc(t->image, (size_t)need);
        if (grown == NULL)
            rc = FA_ERR_NOMEM;
        else
            t->image = grown, t->image_len = need;
    }
    if (rc == FA_OK)
        rc = fa_net_save_image(copy, t->image, t->image_len, &need);
    fa_net_free(copy);
    if (rc != FA_OK)
        lib_error("the model image for the check across processes", rc);
    if ((st = par_agree(rc == FA_OK ? RUN_OK : RUN_FAILED, where)) != RUN_OK)
        return st;
    return par_same(t->image, (size_t)need,
                    "the networks (model images: feedback, optimiser state, model RNG)",
                    where);
}

/* Test hook: move one parameter of this process by one ulp. */
static void
perturb(trainer *t)
{
    float *p = malloc(sizeof *p * (size_t)t->n_params);
    if (p == NULL || fa_net_get_params(t->net, p, t->n_params) != FA_OK) {
        free(p);
        return;
    }
    p[0] = nextafterf(p[0], INFINITY);
    fa_net_set_params(t->net, p, t->n_params);
    free(p);
}

/* One fa-train-mpi step of the global batch perm[start .. start+m):
 * this process's shard (a mean over it), the agreement on every shard's
 * outcome before the all-reduce that all must enter, the sum of the
 * updates weighted by shard / m (the mean over the whole batch), and the
 * same fa_net_apply_update on every process.  That call sees the same
 * network and update everywhere, so it fails everywhere or nowhere; its
 * failure is reported at the next agreement (t->pending), which also
 * covers a process on which it alone failed. */
static run_status
shared_step(trainer *t, int32_t e, int32_t b, int32_t start, int32_t m, double *loss)
{
    const data *d = t->d;
    const int64_t n = t->n_params;
    int32_t lo = 0, count = 0;
    par_shard(m, &lo, &count);
    par_fault_kind fault = par_fault(++t->steps);
    run_status mine = t->pending;
    t->pending = RUN_OK;
    float l = 0.0f;
    if (mine == RUN_OK && count > 0) {
        gather_batch(&d->train, d->features, t->perm + start + lo, count, t->n_out,
                     t->xb, t->tb);
        if (fault == FAULT_NAN)
            t->xb[0] = NAN;
        int rc = fa_net_compute_update(t->net, t->xb, d->features, t->tb, t->n_out,
                                       count, t->update, n, &l);
        mine = step_failure(t, rc, e, b, "fa_net_compute_update");
    } else if (mine == RUN_OK) {
        /* fewer samples than processes: this shard is empty, adds nothing */
        memset(t->update, 0, sizeof *t->update * (size_t)n);
    }
    if (fault == FAULT_KILL)
        raise(SIGKILL);
    if (fault == FAULT_EXIT)
        exit(1);
    char where[64];
    snprintf(where, sizeof where, "in epoch %d, batch %d", e, b + 1);
    run_status st = par_agree(mine, where);
    if (st != RUN_OK)
        return st;
    if (par_stop_signal() != 0)
        return RUN_INTERRUPTED; /* this batch is not applied */
    float w = (float)((double)count / (double)m);
    if (w != 1.0f)
        for (int64_t i = 0; i < n; i++)
            t->update[i] *= w;
    t->update[n] = l * w;
    par_sum(t->update, n + 1);
    *loss = t->update[n];
    int rc = fa_net_apply_update(t->net, t->update, n);
    t->pending = step_failure(t, rc, e, b, "fa_net_apply_update");
    if (fault == FAULT_PERTURB)
        perturb(t);
    if (t->c->check_every > 0 && t->steps % t->c->check_every == 0) {
        snprintf(where, sizeof where, "after epoch %d, batch %d", e, b + 1);
        return check_same(t, false, where);
    }
    return RUN_OK;
}

/* Epoch e >= 1: the schedule's learning rate, then one pass over the
 * shuffled training split.  Fills the epoch's loss and time. */
static run_status
run_epoch(trainer *t, int32_t e)
{
    const data *d = t->d;
    run *r = t->r;
    double lr = schedule_lr(t->c, t->base_lr, e);
    int rc = fa_net_set_hparam(t->net, FA_HP_LR, lr);
    if (rc != FA_OK) {
        lib_error("fa_net_set_hparam (learning-rate schedule)", rc);
        return RUN_FAILED;
    }
    r->lr[e] = lr;
    t->batches_done = 0;
    shuffle(t->perm, d->train.n, &t->shuffle_state);
    double t0 = now_s(), last_draw = 0.0, loss_sum = 0.0;
    int64_t seen = 0;
    for (int32_t b = 0; b < t->nb; b++) {
        int32_t start = b * t->bmax;
        int32_t m = d->train.n - start < t->bmax ? d->train.n - start : t->bmax;
        double loss = 0.0;
        run_status st = par_mpi ? shared_step(t, e, b, start, m, &loss)
                                : local_step(t, e, b, start, m, &loss);
        if (st != RUN_OK) {
            if (t->bar)
                progress_clear();
            return st;
        }
        if (t->pending != RUN_OK)
            continue; /* not applied: reported at the next agreement */
        t->batches_done = b + 1;
        loss_sum += loss * m;
        seen += m;
        if (t->bar && (!par_mpi || stop_signal == 0)) {
            double el = now_s() - t0;
            if (el - last_draw > 0.1 || b == t->nb - 1) {
                progress_bar(b + 1, t->nb, seen, el, loss_sum / (double)seen);
                last_draw = el;
            }
        }
        /* A stop signal takes effect here, between two steps, so that the
         * network saved afterwards is the state after a whole batch.  (In
         * fa-train-mpi the processes agree on it in the next step.) */
        if (!par_mpi && stop_signal != 0 && b + 1 < t->nb) {
            if (t->bar)
                progress_clear();
            return RUN_INTERRUPTED;
        }
    }
    r->epoch_s[e] = now_s() - t0;
    r->train_loss[e] = seen > 0 ? loss_sum / (double)seen : (double)NAN;
    /* the epoch is whole (an early stop is after it) unless its last step
     * was refused (t->pending, reported at the evaluation's agreement) */
    if (t->pending == RUN_OK)
        t->batches_done = 0;
    if (t->bar)
        progress_clear();
    return RUN_OK;
}

/* Accuracy in % over a split, by argmax of the outputs in chunks. */
static int
accuracy(trainer *t, const split *s, double *acc)
{
    int32_t features = t->d->features, n_out = t->n_out;
    int64_t correct = 0;
    for (int32_t start = 0; start < s->n; start += EVAL_CHUNK) {
        int32_t m = s->n - start < EVAL_CHUNK ? s->n - start : EVAL_CHUNK;
        int rc = fa_net_forward(t->net, s->x + (size_t)start * (size_t)features,
                                features, m, t->yb, n_out);
        if (rc != FA_OK) {
            lib_error("fa_net_forward", rc);
            return rc;
        }
        for (int32_t j = 0; j < m; j++) {
            const float *y = t->yb + (size_t)j * (size_t)n_out;
            int32_t best = 0;
            for (int32_t k = 1; k < n_out; k++)
                if (y[k] > y[best])
                    best = k;
            correct += best == s->y[start + j];
        }
    }
    *acc = s->n > 0 ? 100.0 * (double)correct / (double)s->n : (double)NAN;
    return FA_OK;
}

/* Test and validation accuracy after epoch e. */
static run_status
evaluate(trainer *t, int32_t e)
{
    run *r = t->r;
    if (accuracy(t, &t->d->test, &r->test_acc[e]) != FA_OK)
        return RUN_FAILED;
    r->val_acc[e] = NAN;
    if (t->d->val.n > 0 && accuracy(t, &t->d->val, &r->val_acc[e]) != FA_OK)
        return RUN_FAILED;
    return RUN_OK;
}

/* Angles of the hidden updates to the BP gradient after epoch e, on the
 * fixed alignment batch (NaN: not measured). */
static run_status
measure_alignment(trainer *t, int32_t e)
{
    size_t na = (size_t)(t->L - 1);
    float *ang = t->r->angles + (size_t)e * na;
    if (na == 0)
        return RUN_OK;
    if (t->align_n == 0) {
        for (size_t l = 0; l < na; l++)
            ang[l] = NAN;
        return RUN_OK;
    }
    int rc = fa_net_alignment(t->net, t->d->train.x, t->d->features, t->ta,
                              t->n_out, t->align_n, ang, (int64_t)na);
    if (rc != FA_OK) {
        lib_error("fa_net_alignment", rc);
        return RUN_FAILED;
    }
    return RUN_OK;
}

static const char *
signal_name(int sig)
{
    return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "a signal";
}

/* Where the training stopped, for the messages of an early stop. */
static void
describe_stop(const trainer *t, run_status st, char *buf, size_t len)
{
    const run *r = t->r;
    if (st == RUN_OK || t->batches_done == 0)
        snprintf(buf, len, "after epoch %d", r->epochs);
    else
        snprintf(buf, len, "after batch %d/%d of epoch %d", t->batches_done,
                 t->nb, r->epochs + 1);
}

/* Save the network to --save.  After an early stop this is the state when
 * the training stopped (a diverging step changes nothing, so it is the
 * state before it), said on stderr; but parameters that are no longer
 * finite (a step that overflowed after the fact) are not saved: such a
 * model could not even be loaded, and it would replace FILE. */
static bool
save_net(const trainer *t, run_status st)
{
    const char *path = t->c->save;
    char where[96];
    describe_stop(t, st, where, sizeof where);
    if (st != RUN_OK) {
        const float *p = NULL;
        int64_t n = 0;
        if (fa_net_params_data(t->net, &p) == FA_OK &&
            fa_net_param_count(t->net, &n) == FA_OK) {
            for (int64_t i = 0; i < n; i++) {
                if (!isfinite(p[i])) {
                    report_error("--save %s: not saved: the parameters are "
                                 "no longer finite", path);
                    return false;
                }
            }
        }
    }
    int rc = fa_net_save(t->net, path);
    if (rc != FA_OK) {
        report_error("--save %s: %s: %s", path, fa_status_string(rc),
                     fa_last_error());
        return false;
    }
    if (st == RUN_OK)
        printf("saved %s\n", path);
    else
        report_error("training stopped early: saved the network as it was "
                     "%s to %s", where, path);
    return true;
}

/* Forget the per-epoch records of a run that never started, alike on
 * every process (run_compare stops at such a run). */
static void
drop_records(run *r)
{
    free_run(r);
    r->test_acc = r->val_acc = r->train_loss = r->epoch_s = r->lr = NULL;
    r->angles = NULL;
}

run_status
train(const config *c, const data *d, int32_t rule, csv_log *log, run *r)
{
    memset(r, 0, sizeof *r);
    r->rule = rule;
    r->status = RUN_FAILED;
    trainer t = {.c = c, .d = d, .r = r, .log = log, .pending = RUN_OK};
    run_status st = RUN_FAILED;
    if (make_net(c, rule, &t.net) == FA_OK && check_fit(c, t.net, d, &t.n_out, &t.L)) {
        if (c->load)
            fa_net_get_rule(t.net, &r->rule);
        r->n_layers = t.L;
        if (setup(&t))
            st = RUN_OK;
    }
    /* Every process has its network, and they are the same one. */
    if ((st = par_agree(st, "while setting up the network")) != RUN_OK ||
        (st = check_same(&t, true, "before training")) != RUN_OK) {
        drop_records(r);
        goto done;
    }
    if (!log->header_done)
        log_header(log, t.L);
    if (par_root())
        report_net(c, t.net, r->rule, t.L);

    char where[96];
    for (int32_t e = 0; e <= c->epochs && st == RUN_OK; e++) {
        /* A signal during an evaluation is seen before the next epoch. */
        if (e > 0 && par_stop_signal() != 0) {
            st = RUN_INTERRUPTED;
            break;
        }
        if (e > 0 && (st = run_epoch(&t, e)) != RUN_OK)
            break;
        /* Rank 0 evaluates; a failed step it has not reported yet (a
         * refused fa_net_apply_update in the last batch) comes first. */
        run_status mine = t.pending;
        t.pending = RUN_OK;
        if (mine == RUN_OK && par_root() && (mine = evaluate(&t, e)) == RUN_OK)
            mine = measure_alignment(&t, e);
        snprintf(where, sizeof where, "while evaluating after epoch %d", e);
        if ((st = par_agree(mine, where)) != RUN_OK)
            break;
        snprintf(where, sizeof where, "after epoch %d", e);
        if (e > 0 && (st = check_same(&t, true, where)) != RUN_OK)
            break;
        r->epochs = e;
        if (par_root()) {
            /* fa-train-mpi after a stop signal: nothing on the terminal
             * until the network is saved (see install_stop_handlers). */
            if (!par_mpi || stop_signal == 0)
                report_epoch(c, r, e, d->val.n > 0);
            log_row(log, r, e, d->train.n);
        }
    }
    if (st == RUN_INTERRUPTED && par_root()) {
        describe_stop(&t, st, where, sizeof where);
        report_error("%s: stopped %s", signal_name(par_stop_signal()), where);
    }
    /* Saved in every case, so that an early stop keeps what was learnt;
     * by rank 0 alone (the networks are the same). */
    run_status saved = st;
    if (c->save && par_root() && !save_net(&t, st) && st == RUN_OK)
        saved = RUN_FAILED;
    const char *prefix = par_rank_save_prefix();
    if (prefix) {
        char path[4200];
        snprintf(path, sizeof path, "%s.rank%d.fa", prefix, par_rank());
        int rc = fa_net_save(t.net, path);
        if (rc != FA_OK) {
            report_error("%s: %s: %s", path, fa_status_string(rc), fa_last_error());
            saved = RUN_FAILED;
        }
    }
    r->status = par_agree(saved, "while saving the network");
done:
    release(&t);
    return r->status;
}
