/*
 * bench_step.c -- the cost of one training step of every rule and
 * optimiser, against the machine's limit.
 *
 * 1. Check (refuses to time if anything disagrees: a fast wrong step is
 *    worth nothing).  Against a naive reference written from the header's
 *    maths (bench_reference.c: loops, double accumulation, no BLAS):
 *    - every rule the library lists, one SGD step through
 *      fa_net_train_step, on a dense net (20-16-12-5, batch 7), a small
 *      conv net with padding, stride, max and overlapping average pooling
 *      (2x10x10-c3k3p1-m2-c4k3s2p1-a2s1-6-5, batch 3) and LeNet (batch 2),
 *      tanh / softmax CE, non-zero biases, the library's own feedback:
 *      BP; FA, KP, WM through their stored B; USF as s sign(W) from its
 *      definition; FRSF, BRSF as |M| .* sign(W); DFA, SDFA, DRTP through
 *      G with e, sign(e)/m, T/m; SHALLOW: hidden parameters bitwise
 *      unchanged.  Required for every tensor (each W_l and b_l apart):
 *      ||u_lib - u_ref|| <= 1e-4 ||u_ref||, u the update; and
 *      max |p_lib - p_ref| <= 1e-4 max |p|.  KP's new feedback must be
 *      W_new + (1 - k)(B_old - W_old).  (WM's mirror and BRSF's redraw use
 *      the library's noise: only the step they take is checked.)
 *    - every optimiser, two steps of BP on the dense and the conv net,
 *      against the header's formulas (Adam and RMSprop: coordinates with
 *      0 < |g| < 3e-7, where rounding decides the step's size, left out).
 *    - the header's exact identities: FRSF with |M| = |W| is BP; KP with
 *      B = W is BP and keeps B = W; DFA on one hidden layer with G_1 = W_2
 *      is BP.
 * 2. Time fa_net_train_step for every rule x optimiser on 784-1000-10 and
 *    784-240x7-10 (batch 128) and LeNet (batch 64 and 128), at 1 and 2
 *    threads, each back to back with its GEMM limit (bench_util.h): the
 *    step's products called directly through cblas_sgemm with the shapes
 *    of the library's lowering.  Rules and optimisers come from the
 *    library (fa_enum_count, fa_enum_name, fa_rule_info).
 *
 * Output: CSV on stdout
 *   arch,rule,optimizer,threads,batch,hidden,ms_per_step,gflops,limit_ms,
 *   fraction_of_limit,step_over_limit
 * ms_per_step and limit_ms are medians over repeats; fraction_of_limit is
 * the median over repeats of limit/step (each pair timed back to back),
 * step_over_limit the median of step/limit; gflops is the limit's FLOPs
 * over ms_per_step.  Check results, the BLAS and a summary against the
 * aims on stderr.
 *
 * Usage: bench_step [--check-only | --self-test] [--quick] [--arch LIST] [--rules LIST]
 *                   [--opts LIST] [--threads LIST] [--batch LIST]
 *                   [--repeats N] [--steps N]
 *        bench_step --loop ARCH,RULE,OPT,THREADS,BATCH,SECONDS [--limit]
 *   --arch     wide, deep, lenet or spec texts [wide,deep,lenet]
 *   --rules    rule names [all the library lists]
 *   --opts     optimiser names [all]
 *   --batch    batch sizes for every arch [128 for dense nets, 64,128 LeNet]
 *   --loop     no check, no CSV: train steps (or with --limit the GEMM
 *              limit) for SECONDS, for perf record
 * Exit: 0, 1 (a check failed: nothing timed), 2 (usage, setup).
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_reference.h"
#include "bench_util.h"

#define MAX_RULES 32
#define MAX_OPTS 16
#define MAX_LIST 16

static const struct {
    const char *name, *spec;
} named_archs[] = {
    {"wide", "784-1000-10"},
    {"deep", "784-240x7-10"},
    {"lenet", "1x28x28-c6k5p2-m2-c16k5-m2-c120k5-84-10"},
};

static const char *arch_spec(const char *name)
{
    for (size_t i = 0; i < sizeof named_archs / sizeof *named_archs; i++)
        if (strcmp(name, named_archs[i].name) == 0)
            return named_archs[i].spec;
    return name;
}

static const char *arch_label(const char *name)
{
    const char *spec = arch_spec(name);
    if (strcmp(name, "lenet") == 0)
        return "lenet";
    return spec;
}

static int is_conv(const bu_arch *a)
{
    for (int32_t l = 1; l <= a->L; l++)
        if (a->layer[l].kind != FA_LAYER_DENSE)
            return 1;
    return 0;
}

static int lookup(int32_t type, const char *name, const char *what)
{
    int32_t v = 0;
    if (fa_enum_lookup(type, name, &v) != FA_OK) {
        fprintf(stderr, "bench_step: unknown %s '%s': %s\n", what, name, fa_last_error());
        exit(2);
    }
    return v;
}

/* ================================================================ checks */

#define TOL 1e-4
#define ADAM_MASK 3e-7

static int quiet = 0; /* the self-test's checks print nothing */

typedef struct check_net {
    bu_arch a;
    ref_layout lay;
    fa_net *net;
} check_net;

static void check_net_make(check_net *c, const char *spec, int32_t rule, int32_t opt,
                           double lr, uint64_t seed)
{
    bu_arch_parse(&c->a, NULL, spec);
    c->net = bu_net(&c->a, rule, opt, seed);
    bu_must(fa_net_set_hparam(c->net, FA_HP_LR, lr), "fa_net_set_hparam");
    bu_must(fa_net_param_count(c->net, &c->lay.n_params), "fa_net_param_count");
    for (int32_t l = 1; l <= c->a.L; l++)
        bu_must(fa_net_layer_offsets(c->net, l, &c->lay.w_off[l], &c->lay.b_off[l]),
                "fa_net_layer_offsets");
    /* non-zero biases, so the bias paths are exercised too */
    float *p = bu_malloc(sizeof *p * (size_t)c->lay.n_params);
    bu_must(fa_net_get_params(c->net, p, c->lay.n_params), "fa_net_get_params");
    for (int32_t l = 1; l <= c->a.L; l++)
        for (int32_t i = 0; i < c->a.layer[l].w_rows; i++)
            p[c->lay.b_off[l] + i] = 0.2f * (bu_uniform() - 0.5f);
    bu_must(fa_net_set_params(c->net, p, c->lay.n_params), "fa_net_set_params");
    free(p);
}

static float *get_params(const check_net *c)
{
    float *p = bu_malloc(sizeof *p * (size_t)c->lay.n_params);
    bu_must(fa_net_get_params(c->net, p, c->lay.n_params), "fa_net_get_params");
    return p;
}

/* A feedback matrix of the library, in double (NULL where the rule has none). */
static double *get_feedback(fa_net *net, int32_t rule, int32_t l, int64_t *count)
{
    int32_t r = 0, cc = 0;
    if (fa_net_feedback_shape(net, rule, l, &r, &cc) != FA_OK)
        return NULL;
    float *buf = bu_malloc(sizeof *buf * (size_t)r * (size_t)cc);
    bu_must(fa_net_get_feedback(net, rule, l, buf, (int64_t)r * cc), "fa_net_get_feedback");
    double *d = bu_malloc(sizeof *d * (size_t)r * (size_t)cc);
    for (int64_t i = 0; i < (int64_t)r * cc; i++)
        d[i] = buf[i];
    free(buf);
    if (count)
        *count = (int64_t)r * cc;
    return d;
}

/* Per tensor: ||u_lib - u_ref|| / ||u_ref|| (u = p - p0) over the kept
 * coordinates; a tensor the reference leaves unchanged must be bitwise
 * unchanged.  Returns 1 if all agree; *worst, *which and *rel_p report. */
static int compare_tensors(const check_net *c, const float *p0, const float *p1,
                           const double *pref, const unsigned char *keep, double *worst,
                           char *which, size_t which_len, double *rel_p)
{
    int ok = 1;
    double max_dp = 0.0, max_p = 0.0;
    *worst = 0.0;
    snprintf(which, which_len, "-");
    for (int64_t i = 0; i < c->lay.n_params; i++) {
        if (keep && !keep[i])
            continue;
        const double dp = fabs((double)p1[i] - pref[i]);
        max_dp = dp > max_dp ? dp : max_dp;
        max_p = fabs(pref[i]) > max_p ? fabs(pref[i]) : max_p;
    }
    *rel_p = max_dp / max_p;
    ok &= *rel_p <= TOL;
    for (int32_t l = 1; l <= c->a.L; l++) {
        const bu_layer *ly = &c->a.layer[l];
        if (ly->w_rows == 0)
            continue;
        const int64_t lo[2] = {c->lay.w_off[l], c->lay.b_off[l]};
        const int64_t hi[2] = {c->lay.b_off[l], c->lay.b_off[l] + ly->w_rows};
        for (int k = 0; k < 2; k++) {
            double nu = 0.0, ndu = 0.0;
            int moved = 0;
            for (int64_t i = lo[k]; i < hi[k]; i++) {
                if (keep && !keep[i])
                    continue;
                const double u = pref[i] - (double)p0[i];
                const double ul = (double)p1[i] - (double)p0[i];
                nu += u * u;
                ndu += (ul - u) * (ul - u);
                moved |= p1[i] != p0[i];
            }
            double rel;
            if (nu == 0.0)
                rel = moved ? INFINITY : 0.0;
            else
                rel = sqrt(ndu / nu);
            if (rel >= *worst) {
                *worst = rel;
                snprintf(which, which_len, "%c%d", "Wb"[k], (int)l);
            }
            ok &= rel <= TOL;
        }
    }
    return ok;
}

/* The header's definition of each rule, for the reference. */
typedef struct rule_ref {
    int mode;         /* REF_* */
    int fb_from;      /* 0 none, 1 stored, 2 s sign(W), 3 |M| .* sign(W) */
} rule_ref;

static int rule_reference(int32_t rule, rule_ref *rr)
{
    switch (rule) {
    case FA_RULE_BP: *rr = (rule_ref){REF_BP, 0}; return 1;
    case FA_RULE_FA:
    case FA_RULE_KP:
    case FA_RULE_WM: *rr = (rule_ref){REF_CHAIN_B, 1}; return 1;
    case FA_RULE_USF: *rr = (rule_ref){REF_CHAIN_B, 2}; return 1;
    case FA_RULE_FRSF:
    case FA_RULE_BRSF: *rr = (rule_ref){REF_CHAIN_B, 3}; return 1;
    case FA_RULE_DFA: *rr = (rule_ref){REF_DIRECT_E, 1}; return 1;
    case FA_RULE_SDFA: *rr = (rule_ref){REF_DIRECT_SIGN, 1}; return 1;
    case FA_RULE_DRTP: *rr = (rule_ref){REF_DIRECT_T, 1}; return 1;
    case FA_RULE_SHALLOW: *rr = (rule_ref){REF_SHALLOW, 0}; return 1;
    default: return 0;
    }
}

/* The rule's feedback as the reference needs it, from the library's
 * stored matrices and W (p0). */
static void reference_feedback(check_net *c, int32_t rule, const rule_ref *rr, const float *p0,
                               double **fb)
{
    for (int32_t l = 0; l <= c->a.L; l++)
        fb[l] = NULL;
    if (rr->fb_from == 0)
        return;
    for (int32_t l = 1; l <= c->a.L; l++) {
        const bu_layer *ly = &c->a.layer[l];
        if (ly->w_rows == 0)
            continue;
        if (rr->fb_from == 2) {
            if (l < 2)
                continue;
            /* USF: s sign(W), s = sqrt(2 / (fan_in + fan_out)) */
            const double kk = ly->kind == FA_LAYER_CONV2D ? (double)ly->kh * ly->kw : 1.0;
            const double fan_in = ly->kind == FA_LAYER_CONV2D ? ly->in_c * kk : (double)ly->n_in;
            const double fan_out = ly->kind == FA_LAYER_CONV2D ? ly->out_c * kk
                                                               : (double)ly->n_out;
            const double s = (float)sqrt(2.0 / (fan_in + fan_out));
            const int64_t n = (int64_t)ly->w_rows * ly->w_cols;
            fb[l] = bu_malloc(sizeof(double) * (size_t)n);
            for (int64_t i = 0; i < n; i++) {
                const float w = p0[c->lay.w_off[l] + i];
                fb[l][i] = w > 0 ? s : w < 0 ? -s : 0.0;
            }
            continue;
        }
        fb[l] = get_feedback(c->net, rule, l, NULL);
        if (fb[l] && rr->fb_from == 3) {
            const int64_t n = (int64_t)ly->w_rows * ly->w_cols;
            for (int64_t i = 0; i < n; i++) {
                const float w = p0[c->lay.w_off[l] + i];
                fb[l][i] = w > 0 ? fabs(fb[l][i]) : w < 0 ? -fabs(fb[l][i]) : 0.0;
            }
        }
    }
}

static const char *rule_name(int32_t r)
{
    return fa_enum_name(FA_ENUM_RULE, r);
}

static const char *opt_name(int32_t o)
{
    return fa_enum_name(FA_ENUM_OPTIMIZER, o);
}

/* One SGD step of `rule` on a check net, against the reference. */
static int check_rule(const char *spec, int32_t m, int32_t rule)
{
    rule_ref rr;
    if (!rule_reference(rule, &rr)) {
        fprintf(stderr, "# check %-7s %s: no reference for this rule (new?); not checked\n",
                rule_name(rule), spec);
        return 0;
    }
    const double lr = 0.1;
    check_net c;
    check_net_make(&c, spec, rule, FA_OPT_SGD, lr, 1234u + (uint64_t)rule);
    const int64_t np_ = c.lay.n_params, n0 = bu_arch_n(&c.a, 0), nc = bu_arch_n(&c.a, c.a.L);
    float *p0 = get_params(&c);
    double *fb[BU_MAX_LAYERS + 1];
    reference_feedback(&c, rule, &rr, p0, fb);
    double *fb_kp_old[BU_MAX_LAYERS + 1] = {0};
    if (rule == FA_RULE_KP)
        for (int32_t l = 1; l <= c.a.L; l++)
            fb_kp_old[l] = fb[l];

    float *x = bu_malloc(sizeof *x * (size_t)(n0 * m)), *t = bu_malloc(sizeof *t * (size_t)(nc * m));
    bu_make_batch(x, n0, t, (int32_t)nc, m);
    double *pd = bu_malloc(sizeof *pd * (size_t)np_), *g = bu_malloc(sizeof *g * (size_t)np_);
    for (int64_t i = 0; i < np_; i++)
        pd[i] = p0[i];
    const double loss_ref = ref_update(&c.a, &c.lay, pd, rr.mode, fb, x, t, m, g);
    for (int64_t i = 0; i < np_; i++)
        pd[i] -= lr * g[i];

    float loss = 0.0f;
    bu_must(fa_net_train_step(c.net, x, (int32_t)n0, t, (int32_t)nc, m, &loss),
            "fa_net_train_step");
    float *p1 = get_params(&c);
    double worst = 0, rel_p = 0;
    char which[16];
    int ok = compare_tensors(&c, p0, p1, pd, NULL, &worst, which, sizeof which, &rel_p);
    const double rel_loss = fabs((double)loss - loss_ref) / fabs(loss_ref);
    ok &= rel_loss <= 1e-5;

    /* KP: B_new = W_new + (1 - k)(B_old - W_old) */
    double kp_rel = -1.0;
    if (rule == FA_RULE_KP) {
        double k = 0;
        bu_must(fa_net_get_hparam(c.net, FA_HP_KP_DECAY, &k), "fa_net_get_hparam");
        double num = 0, den = 0;
        for (int32_t l = 2; l <= c.a.L; l++) {
            if (!fb_kp_old[l])
                continue;
            int64_t n = 0;
            double *bn = get_feedback(c.net, rule, l, &n);
            for (int64_t i = 0; i < n; i++) {
                const int64_t wi = c.lay.w_off[l] + i;
                const double want = (double)p1[wi] + (1.0 - (float)k) *
                                                         (fb_kp_old[l][i] - (double)p0[wi]);
                num += (bn[i] - want) * (bn[i] - want);
                den += want * want;
            }
            free(bn);
        }
        kp_rel = sqrt(num / den);
        ok &= kp_rel <= 1e-6;
    }

    if (!quiet)
        fprintf(stderr, "# check %-7s %-40s m=%d sgd: loss %.1e, max|dp|/max|p| %.1e, "
                        "worst ||du||/||u|| %.1e (%s)  %s\n",
                rule_name(rule), spec, (int)m, rel_loss, rel_p, worst, which,
                ok ? "ok" : "DISAGREES");
    if (kp_rel >= 0 && !quiet)
        fprintf(stderr, "#       kp feedback after the step: ||B - (W_new + (1-k)(B_old - "
                        "W_old))|| / ||.|| = %.1e\n", kp_rel);

    for (int32_t l = 0; l <= c.a.L; l++)
        free(fb[l]);
    free(p0);
    free(p1);
    free(pd);
    free(g);
    free(x);
    free(t);
    fa_net_free(c.net);
    return ok ? 0 : 1;
}

/* Two steps of BP under `opt`, against the header's formulas. */
static int check_optimizer(const char *spec, int32_t m, int32_t opt)
{
    const double lr = opt == FA_OPT_SGD || opt == FA_OPT_MOMENTUM || opt == FA_OPT_NESTEROV
                          ? 0.1 : 0.01;
    check_net c;
    check_net_make(&c, spec, FA_RULE_BP, opt, lr, 99u + (uint64_t)opt);
    double hp[FA_HP_RMS_DECAY + 1];
    for (int32_t h = 0; h <= FA_HP_RMS_DECAY; h++)
        bu_must(fa_net_get_hparam(c.net, h, &hp[h]), "fa_net_get_hparam");
    /* the library computes with the float values of its hyperparameters */
    const double mu = (float)hp[FA_HP_MOMENTUM], b1 = (float)hp[FA_HP_BETA1],
                 b2 = (float)hp[FA_HP_BETA2], eps = (float)hp[FA_HP_EPSILON],
                 rho = (float)hp[FA_HP_RMS_DECAY], lrf = (float)lr;
    const int64_t np_ = c.lay.n_params, n0 = bu_arch_n(&c.a, 0), nc = bu_arch_n(&c.a, c.a.L);
    float *p0 = get_params(&c);
    double *pd = bu_malloc(sizeof *pd * (size_t)np_), *g = bu_malloc(sizeof *g * (size_t)np_);
    double *s1 = calloc((size_t)np_, sizeof *s1), *s2 = calloc((size_t)np_, sizeof *s2);
    unsigned char *keep = bu_malloc((size_t)np_);
    memset(keep, 1, (size_t)np_);
    for (int64_t i = 0; i < np_; i++)
        pd[i] = p0[i];
    float *x = bu_malloc(sizeof *x * (size_t)(n0 * m)), *t = bu_malloc(sizeof *t * (size_t)(nc * m));
    double *fb[BU_MAX_LAYERS + 1] = {0};
    int ok = 1;
    for (int step = 1; step <= 2; step++) {
        bu_make_batch(x, n0, t, (int32_t)nc, m);
        ref_update(&c.a, &c.lay, pd, REF_BP, fb, x, t, m, g);
        for (int64_t i = 0; i < np_; i++) {
            const double gi = g[i];
            if ((opt == FA_OPT_ADAM || opt == FA_OPT_RMSPROP) && gi != 0.0 &&
                fabs(gi) < ADAM_MASK)
                keep[i] = 0;
            switch (opt) {
            case FA_OPT_SGD: pd[i] -= lrf * gi; break;
            case FA_OPT_MOMENTUM: s1[i] = mu * s1[i] + gi; pd[i] -= lrf * s1[i]; break;
            case FA_OPT_NESTEROV:
                s1[i] = mu * s1[i] + gi;
                pd[i] -= lrf * (gi + mu * s1[i]);
                break;
            case FA_OPT_ADAM: {
                s1[i] = b1 * s1[i] + (1 - b1) * gi;
                s2[i] = b2 * s2[i] + (1 - b2) * gi * gi;
                const double mh = s1[i] / (1 - pow(b1, step)), vh = s2[i] / (1 - pow(b2, step));
                pd[i] -= lrf * mh / (sqrt(vh) + eps);
                break;
            }
            case FA_OPT_RMSPROP:
                s1[i] = rho * s1[i] + (1 - rho) * gi * gi;
                pd[i] -= lrf * gi / (sqrt(s1[i]) + eps);
                break;
            default:
                fprintf(stderr, "# check optimiser %s: no reference (new?); not checked\n",
                        opt_name(opt));
                goto done;
            }
        }
        bu_must(fa_net_train_step(c.net, x, (int32_t)n0, t, (int32_t)nc, m, NULL),
                "fa_net_train_step");
        float *p1 = get_params(&c);
        double worst = 0, rel_p = 0;
        char which[16];
        int64_t left = 0;
        for (int64_t i = 0; i < np_; i++)
            left += !keep[i];
        int good = compare_tensors(&c, p0, p1, pd, keep, &worst, which, sizeof which, &rel_p);
        ok &= good;
        fprintf(stderr, "# check bp      %-40s m=%d %-8s step %d: max|dp|/max|p| %.1e, "
                        "worst ||du||/||u|| %.1e (%s), left out %lld  %s\n",
                spec, (int)m, opt_name(opt), step, rel_p, worst, which, (long long)left,
                good ? "ok" : "DISAGREES");
        free(p1);
    }
done:
    free(p0);
    free(pd);
    free(g);
    free(s1);
    free(s2);
    free(keep);
    free(x);
    free(t);
    fa_net_free(c.net);
    return ok ? 0 : 1;
}

/* Parameter (and optionally feedback) agreement of two nets after one
 * step each on the same batch: the header's exact identities. */
static int identity_step(const char *what, const char *spec, int32_t m, int32_t rule,
                         void (*prepare)(check_net *c, const float *p))
{
    check_net bp, other;
    check_net_make(&bp, spec, FA_RULE_BP, FA_OPT_SGD, 0.1, 555u);
    check_net_make(&other, spec, rule, FA_OPT_SGD, 0.1, 777u);
    float *p = get_params(&bp);
    bu_must(fa_net_set_params(other.net, p, bp.lay.n_params), "fa_net_set_params");
    prepare(&other, p);
    const int64_t n0 = bu_arch_n(&bp.a, 0), nc = bu_arch_n(&bp.a, bp.a.L);
    float *x = bu_malloc(sizeof *x * (size_t)(n0 * m)), *t = bu_malloc(sizeof *t * (size_t)(nc * m));
    bu_make_batch(x, n0, t, (int32_t)nc, m);
    bu_must(fa_net_train_step(bp.net, x, (int32_t)n0, t, (int32_t)nc, m, NULL), "train_step");
    bu_must(fa_net_train_step(other.net, x, (int32_t)n0, t, (int32_t)nc, m, NULL), "train_step");
    float *p1 = get_params(&bp), *p2 = get_params(&other);
    double max_d = 0, max_p = 0, max_u = 0;
    for (int64_t i = 0; i < bp.lay.n_params; i++) {
        max_d = fmax(max_d, fabs((double)p1[i] - p2[i]));
        max_p = fmax(max_p, fabs((double)p1[i]));
        max_u = fmax(max_u, fabs((double)p1[i] - p[i]));
    }
    int ok = max_d <= 1e-6 * max_u && max_u > 0;
    /* KP keeps B = W */
    double fb_d = -1;
    if (rule == FA_RULE_KP) {
        fb_d = 0;
        for (int32_t l = 2; l <= other.a.L; l++) {
            int64_t n = 0;
            double *b = get_feedback(other.net, rule, l, &n);
            for (int64_t i = 0; b && i < n; i++)
                fb_d = fmax(fb_d, fabs(b[i] - p2[other.lay.w_off[l] + i]));
            free(b);
        }
        ok &= fb_d <= 1e-6 * max_p;
    }
    fprintf(stderr, "# check identity %-34s %s: max|p - p_bp| = %.1e (%s)%s  %s\n", what, spec,
            max_d, max_d == 0 ? "bitwise" : "of max|u|", fb_d >= 0 ? ", B stays W" : "",
            ok ? "ok" : "DISAGREES");
    free(p);
    free(p1);
    free(p2);
    free(x);
    free(t);
    fa_net_free(bp.net);
    fa_net_free(other.net);
    return ok ? 0 : 1;
}

/* Set the rule's W-shaped feedback of every layer >= 2 to W. */
static void feedback_is_w(check_net *c, const float *p)
{
    int32_t rule = 0;
    bu_must(fa_net_get_rule(c->net, &rule), "fa_net_get_rule");
    for (int32_t l = 2; l <= c->a.L; l++) {
        const bu_layer *ly = &c->a.layer[l];
        if (ly->w_rows == 0)
            continue;
        bu_must(fa_net_set_feedback(c->net, rule, l, p + c->lay.w_off[l],
                                    (int64_t)ly->w_rows * ly->w_cols), "fa_net_set_feedback");
    }
}

/* DFA on one hidden layer: G_1 := W_2 (both (c, n_1)). */
static void g1_is_w2(check_net *c, const float *p)
{
    const bu_layer *ly = &c->a.layer[2];
    bu_must(fa_net_set_feedback(c->net, FA_RULE_DFA, 1, p + c->lay.w_off[2],
                                (int64_t)ly->w_rows * ly->w_cols), "fa_net_set_feedback");
}

/* --self-test: each deliberate mistake in the reference must make the
 * check fail (it runs quietly; one line per mistake). */
static int self_test(void)
{
    static const struct {
        int mistake;
        const char *what, *spec, *rule;
        int32_t m;
    } cases[] = {
        {REF_MISTAKE_KERNEL_T, "conv kernel read transposed (ky, kx swapped)",
         "2x10x10-c3k3p1-m2-c4k3s2p1-a2s1-6-5", "bp", 3},
        {REF_MISTAKE_CHW, "images read channel-first (CHW)",
         "2x10x10-c3k3p1-m2-c4k3s2p1-a2s1-6-5", "bp", 3},
        {REF_MISTAKE_NO_FPRIME, "hidden errors without f'", "20-16-12-5", "bp", 7},
        {REF_MISTAKE_NO_FPRIME, "direct errors without f'", "20-16-12-5", "dfa", 7},
        {REF_MISTAKE_POOL_FIRST, "max pooling error to the window's first input",
         "1x28x28-c6k5p2-m2-c16k5-m2-c120k5-84-10", "bp", 2},
        {REF_MISTAKE_AVG_SCALE, "average pooling error not divided by the window",
         "2x10x10-c3k3p1-m2-c4k3s2p1-a2s1-6-5", "fa", 3},
        {REF_MISTAKE_SIGNAL, "drtp with -T/m", "20-16-12-5", "drtp", 7},
        {REF_MISTAKE_SIGNAL, "sdfa without 1/m", "2x10x10-c3k3p1-m2-c4k3s2p1-a2s1-6-5", "sdfa", 3},
    };
    int missed = 0;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ref_mistake = cases[i].mistake;
        quiet = 1;
        const int caught = check_rule(cases[i].spec, cases[i].m,
                                      lookup(FA_ENUM_RULE, cases[i].rule, "rule")) != 0;
        quiet = 0;
        ref_mistake = REF_MISTAKE_NONE;
        missed += !caught;
        fprintf(stderr, "self-test %-50s (%s, %s): %s\n", cases[i].what, cases[i].rule,
                cases[i].spec, caught ? "caught" : "MISSED");
    }
    /* and the unchanged reference still agrees on the same cases */
    int bad = 0;
    quiet = 1;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        bad += check_rule(cases[i].spec, cases[i].m,
                          lookup(FA_ENUM_RULE, cases[i].rule, "rule"));
    quiet = 0;
    fprintf(stderr, "self-test without mistakes: %s\n", bad ? "DISAGREES" : "agrees");
    fprintf(stderr, "%s\n", missed || bad ? "the self-test FAILED" : "the check caught every mistake");
    return missed || bad ? 1 : 0;
}

static int run_checks(void)
{
    static const struct {
        const char *spec;
        int32_t m;
    } nets[] = {
        {"20-16-12-5", 7},
        {"2x10x10-c3k3p1-m2-c4k3s2p1-a2s1-6-5", 3},
        {"1x28x28-c6k5p2-m2-c16k5-m2-c120k5-84-10", 2},
    };
    int bad = 0;
    const int32_t n_rules = fa_enum_count(FA_ENUM_RULE), n_opts = fa_enum_count(FA_ENUM_OPTIMIZER);
    for (size_t k = 0; k < sizeof nets / sizeof *nets; k++)
        for (int32_t r = 0; r < n_rules; r++)
            bad += check_rule(nets[k].spec, nets[k].m, r);
    for (size_t k = 0; k < 2; k++)
        for (int32_t o = 0; o < n_opts; o++)
            bad += check_optimizer(nets[k].spec, nets[k].m, o);
    bad += identity_step("frsf with |M| = |W| is bp", nets[0].spec, 7, FA_RULE_FRSF,
                         feedback_is_w);
    bad += identity_step("frsf with |M| = |W| is bp", nets[1].spec, 3, FA_RULE_FRSF,
                         feedback_is_w);
    bad += identity_step("kp with B = W is bp", nets[1].spec, 3, FA_RULE_KP, feedback_is_w);
    bad += identity_step("fa with F = W is bp", nets[2].spec, 2, FA_RULE_FA, feedback_is_w);
    bad += identity_step("dfa with G_1 = W_2 is bp", "20-16-5", 7, FA_RULE_DFA, g1_is_w2);
    return bad;
}

/* ================================================================ timing */

typedef struct opts {
    int quick, repeats, steps;
    int n_arch, n_rules, n_opts, n_threads, n_batch;
    char *arch[MAX_LIST];
    int32_t rules[MAX_RULES], optims[MAX_OPTS];
    int threads[MAX_LIST], batch[MAX_LIST];
} opts;

typedef struct row {
    double ms, gflops, limit_ms, frac, over;
} row;

/* One arch, batch and thread count: for each optimiser, every rule's step
 * and its limit timed interleaved.  Appends the worst step/limit to *worst. */
static void bench_config(const bu_arch *a, int32_t batch, int threads, const opts *o,
                         double *worst, double *best)
{
    const int64_t n0 = bu_arch_n(a, 0), nc = bu_arch_n(a, a->L);
    float *x = bu_malloc(sizeof *x * (size_t)(n0 * batch));
    float *t = bu_malloc(sizeof *t * (size_t)(nc * batch));
    bu_make_batch(x, n0, t, (int32_t)nc, batch);
    bu_must(fa_set_threads(threads), "fa_set_threads");

    /* one limit per (hidden mode, backward through W or not), built for
     * each optimiser (plain SGD updates W inside the weight GEMMs) */
    bu_plan plan[6];
    int have_plan[6] = {0};
    int hidden[MAX_RULES], back_w[MAX_RULES], pk[MAX_RULES];
    for (int r = 0; r < o->n_rules; r++) {
        hidden[r] = bu_rule_hidden(o->rules[r]);
        back_w[r] = bu_rule_back_w(o->rules[r]);
        pk[r] = hidden[r] + 3 * back_w[r];
    }
    const int n = 2 * o->n_rules;
    bu_fn *fn = bu_malloc(sizeof *fn * (size_t)n);
    void **ctx = bu_malloc(sizeof *ctx * (size_t)n);
    double **times = bu_malloc(sizeof *times * (size_t)n);
    bu_step_ctx *sc = bu_malloc(sizeof *sc * (size_t)o->n_rules);
    for (int i = 0; i < n; i++)
        times[i] = bu_malloc(sizeof(double) * (size_t)o->repeats);
    double *ratio = bu_malloc(sizeof(double) * (size_t)o->repeats);

    for (int k = 0; k < o->n_opts; k++) {
        for (int r = 0; r < o->n_rules; r++)
            if (!have_plan[pk[r]]) {
                bu_plan_build(&plan[pk[r]], a, hidden[r], back_w[r],
                              o->optims[k] == FA_OPT_SGD, batch);
                have_plan[pk[r]] = 1;
            }
        for (int r = 0; r < o->n_rules; r++) {
            sc[r] = (bu_step_ctx){bu_net(a, o->rules[r], o->optims[k], 42u), x, t,
                                  (int32_t)n0, (int32_t)nc, batch};
            bu_must(fa_net_reserve(sc[r].net, batch), "fa_net_reserve");
            fn[2 * r] = bu_train_step;
            ctx[2 * r] = &sc[r];
            fn[2 * r + 1] = bu_plan_fn;
            ctx[2 * r + 1] = &plan[pk[r]];
            for (int i = 0; i < 3; i++) { /* warm-up: pages, threads, feedback */
                bu_train_step(&sc[r]);
                bu_plan_run(&plan[pk[r]]);
            }
        }
        bu_time_interleaved(n, fn, ctx, 2, o->repeats, o->steps, times);
        for (int r = 0; r < o->n_rules; r++) {
            row w;
            for (int i = 0; i < o->repeats; i++)
                ratio[i] = times[2 * r + 1][i] / times[2 * r][i];
            w.frac = bu_median(ratio, o->repeats);
            for (int i = 0; i < o->repeats; i++)
                ratio[i] = times[2 * r][i] / times[2 * r + 1][i];
            w.over = bu_median(ratio, o->repeats);
            w.ms = 1e3 * bu_median(times[2 * r], o->repeats);
            w.limit_ms = 1e3 * bu_median(times[2 * r + 1], o->repeats);
            w.gflops = plan[pk[r]].flops / (w.ms * 1e6);
            printf("%s,%s,%s,%d,%d,%s,%.4f,%.2f,%.4f,%.3f,%.3f\n", a->name,
                   rule_name(o->rules[r]), opt_name(o->optims[k]), threads, (int)batch,
                   bu_hidden_name(hidden[r]), w.ms, w.gflops, w.limit_ms, w.frac, w.over);
            fflush(stdout);
            *worst = fmax(*worst, w.over);
            *best = fmin(*best, w.over);
            fa_net_free(sc[r].net);
        }
        for (int h = 0; h < 6; h++)
            if (have_plan[h]) {
                bu_plan_free(&plan[h]);
                have_plan[h] = 0;
            }
    }
    for (int i = 0; i < n; i++)
        free(times[i]);
    free(times);
    free(ratio);
    free(fn);
    free(ctx);
    free(sc);
    free(x);
    free(t);
}

/* --loop: train steps (or the limit) for perf record. */
static int loop_mode(char *spec, int limit)
{
    char *f[8];
    int n = bu_split(spec, f, 8);
    if (n != 6) {
        fprintf(stderr, "bench_step: --loop ARCH,RULE,OPT,THREADS,BATCH,SECONDS\n");
        return 2;
    }
    bu_arch a;
    bu_arch_parse(&a, arch_label(f[0]), arch_spec(f[0]));
    const int32_t rule = lookup(FA_ENUM_RULE, f[1], "rule");
    const int32_t opt = lookup(FA_ENUM_OPTIMIZER, f[2], "optimizer");
    const int threads = atoi(f[3]);
    const int32_t batch = atoi(f[4]);
    const double seconds = atof(f[5]);
    if (threads < 1 || batch < 1 || !(seconds > 0)) {
        fprintf(stderr, "bench_step: --loop: threads, batch >= 1, seconds > 0\n");
        return 2;
    }
    bu_must(fa_set_threads(threads), "fa_set_threads");
    const int64_t n0 = bu_arch_n(&a, 0), nc = bu_arch_n(&a, a.L);
    float *x = bu_malloc(sizeof *x * (size_t)(n0 * batch));
    float *t = bu_malloc(sizeof *t * (size_t)(nc * batch));
    bu_make_batch(x, n0, t, (int32_t)nc, batch);
    bu_step_ctx sc = {bu_net(&a, rule, opt, 42u), x, t, (int32_t)n0, (int32_t)nc, batch};
    bu_must(fa_net_reserve(sc.net, batch), "fa_net_reserve");
    bu_plan plan;
    bu_plan_build(&plan, &a, bu_rule_hidden(rule), bu_rule_back_w(rule), opt == FA_OPT_SGD,
                  batch);
    long calls = 0;
    const double t0 = bu_now();
    while (bu_now() - t0 < seconds) {
        if (limit)
            bu_plan_run(&plan);
        else
            bu_train_step(&sc);
        calls++;
    }
    const double el = bu_now() - t0;
    fprintf(stderr, "# loop %s %s %s threads %d batch %d: %ld %s, %.3f ms each\n", a.name,
            f[1], f[2], threads, (int)batch, calls, limit ? "limit runs" : "steps",
            1e3 * el / (double)calls);
    /* the limit's GEMMs one by one: which products the limit is made of */
    fprintf(stderr, "# the limit's GEMMs (column-major, C (m, n) = op(A) op(B), inner k), "
                    "median of 21 calls each:\n");
    double total = 0;
    for (int i = 0; i < plan.n_ops; i++) {
        bu_plan one = plan;
        one.op = &plan.op[i];
        one.n_ops = 1;
        double tt[21];
        bu_plan_run(&one);
        for (int k = 0; k < 21; k++) {
            const double s0 = bu_now();
            bu_plan_run(&one);
            tt[k] = bu_now() - s0;
        }
        const bu_gemm *o = &plan.op[i];
        const double ms = 1e3 * bu_median(tt, 21);
        total += ms;
        fprintf(stderr, "#   %s%s m=%-6d n=%-6d k=%-6d beta %g %8.3f ms %7.1f GFLOP/s\n",
                o->ta ? "T" : "N", o->tb ? "T" : "N", o->m, o->n, o->k, (double)o->beta, ms,
                2.0 * o->m * (double)o->n * o->k / (ms * 1e6));
    }
    fprintf(stderr, "#   sum %.3f ms\n", total);
    bu_plan_free(&plan);
    fa_net_free(sc.net);
    free(x);
    free(t);
    return 0;
}

static void usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s [--check-only | --self-test] [--quick] [--arch LIST] [--rules LIST]\n"
            "          [--opts LIST]\n"
            "          [--threads LIST] [--batch LIST] [--repeats N] [--steps N]\n"
            "       %s --loop ARCH,RULE,OPT,THREADS,BATCH,SECONDS [--limit]\n", prog, prog);
}

int main(int argc, char **argv)
{
    int check_only = 0, limit = 0, self = 0;
    char *loop = NULL, *arch = NULL, *rules = NULL, *optl = NULL, *thr = NULL, *bat = NULL;
    opts o;
    memset(&o, 0, sizeof o);
    o.repeats = -1;
    o.steps = -1;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        int more = i + 1 < argc;
        if (strcmp(s, "--check-only") == 0)
            check_only = 1;
        else if (strcmp(s, "--self-test") == 0)
            self = 1;
        else if (strcmp(s, "--quick") == 0)
            o.quick = 1;
        else if (strcmp(s, "--limit") == 0)
            limit = 1;
        else if (more && strcmp(s, "--loop") == 0)
            loop = argv[++i];
        else if (more && strcmp(s, "--arch") == 0)
            arch = argv[++i];
        else if (more && strcmp(s, "--rules") == 0)
            rules = argv[++i];
        else if (more && strcmp(s, "--opts") == 0)
            optl = argv[++i];
        else if (more && strcmp(s, "--threads") == 0)
            thr = argv[++i];
        else if (more && strcmp(s, "--batch") == 0)
            bat = argv[++i];
        else if (more && strcmp(s, "--repeats") == 0)
            o.repeats = atoi(argv[++i]);
        else if (more && strcmp(s, "--steps") == 0)
            o.steps = atoi(argv[++i]);
        else {
            usage(argv[0]);
            return 2;
        }
    }
    if (loop)
        return loop_mode(loop, limit);
    if (self)
        return self_test();
    if (!check_only)
        bu_quiet_blas_workers(argv); /* timing follows (not under valgrind) */

    int bad = run_checks();
    if (bad) {
        fprintf(stderr, "bench_step: %d check(s) disagree with the reference; not timing\n", bad);
        return 1;
    }
    fprintf(stderr, "# all checks agree\n");
    if (check_only)
        return 0;

    /* what to time */
    char def_arch[] = "wide,deep,lenet", def_thr[] = "1,2";
    o.n_arch = bu_split(arch ? arch : def_arch, o.arch, MAX_LIST);
    char *item[MAX_RULES];
    if (rules) {
        int n = bu_split(rules, item, MAX_RULES);
        for (int i = 0; i < n; i++)
            o.rules[o.n_rules++] = lookup(FA_ENUM_RULE, item[i], "rule");
    } else {
        for (int32_t r = 0; r < fa_enum_count(FA_ENUM_RULE) && r < MAX_RULES; r++)
            o.rules[o.n_rules++] = r;
    }
    if (optl) {
        int n = bu_split(optl, item, MAX_OPTS);
        for (int i = 0; i < n; i++)
            o.optims[o.n_opts++] = lookup(FA_ENUM_OPTIMIZER, item[i], "optimizer");
    } else {
        for (int32_t k = 0; k < fa_enum_count(FA_ENUM_OPTIMIZER) && k < MAX_OPTS; k++)
            o.optims[o.n_opts++] = k;
    }
    int nt = bu_split(thr ? thr : def_thr, item, MAX_LIST);
    for (int i = 0; i < nt; i++)
        o.threads[o.n_threads++] = atoi(item[i]);
    if (bat) {
        int nb = bu_split(bat, item, MAX_LIST);
        for (int i = 0; i < nb; i++)
            o.batch[o.n_batch++] = atoi(item[i]);
    }
    if (o.repeats < 0)
        o.repeats = o.quick ? 5 : 21;
    if (o.steps < 0)
        o.steps = o.quick ? 1 : 2;
    if (o.repeats < 1 || o.steps < 1) {
        usage(argv[0]);
        return 2;
    }
    for (int i = 0; i < o.n_threads; i++)
        if (o.threads[i] < 1) {
            usage(argv[0]);
            return 2;
        }
    for (int i = 0; i < o.n_batch; i++)
        if (o.batch[i] < 1) {
            usage(argv[0]);
            return 2;
        }

    bu_print_setup("bench_step");
    fprintf(stderr, "# %d repeats of %d steps each; step and limit back to back\n", o.repeats,
            o.steps);
    printf("arch,rule,optimizer,threads,batch,hidden,ms_per_step,gflops,limit_ms,"
           "fraction_of_limit,step_over_limit\n");
    bu_arch *a = bu_malloc(sizeof *a);
    char summary[4096] = "";
    size_t used = 0;
    for (int th = 0; th < o.n_threads; th++)
        for (int i = 0; i < o.n_arch; i++) {
            bu_arch_parse(a, arch_label(o.arch[i]), arch_spec(o.arch[i]));
            const int conv = is_conv(a);
            int32_t batches[MAX_LIST];
            int nb = 0;
            if (o.n_batch) {
                for (int b = 0; b < o.n_batch; b++)
                    batches[nb++] = o.batch[b];
            } else if (conv) {
                batches[nb++] = 64;
                batches[nb++] = 128;
            } else {
                batches[nb++] = 128;
            }
            for (int b = 0; b < nb; b++) {
                double worst = 0, best = INFINITY;
                bench_config(a, batches[b], o.threads[th], &o, &worst, &best);
                const double aim = conv ? 1.3 : o.threads[th] == 1 ? 1.05 : 1.10;
                if (used < sizeof summary)
                    used += (size_t)snprintf(summary + used, sizeof summary - used,
                                             "# %-14s batch %4d, %d thread(s): step/limit "
                                             "%.2f-%.2f, aim %.2f\n",
                                             a->name, (int)batches[b], o.threads[th], best,
                                             worst, aim);
            }
        }
    fprintf(stderr, "# summary (over the rules and optimisers timed; provisional if the "
                    "machine was busy):\n%s", summary);
    free(a);
    return 0;
}
