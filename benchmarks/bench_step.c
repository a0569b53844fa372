/*
 * bench_step.c -- cost of one training step, against the machine's limit.
 *
 * First checks one SGD step of each rule (BP, FA, DFA) on a small tanh /
 * softmax-CE net against a naive reference written here (triple loops,
 * double accumulation); if any rule disagrees it refuses to time, because a
 * fast wrong step is worth nothing.  Then times fa_net_train_step for
 * 784-1000-10 and 784-240x7-10 at batch 128 with 1 and 2 OpenBLAS threads,
 * and the same step's GEMMs called directly through cblas_sgemm (same
 * shapes, same transposes, same run): that is the limit no implementation
 * built on this BLAS can beat.
 *
 * Output: CSV on stdout
 *   arch,rule,threads,batch,ms_per_step,gflops,limit_ms,fraction_of_limit
 * (times are medians over repeats; the fraction is the median over repeats
 * of limit time / step time, each pair measured back to back)
 * and notes (check results, BLAS configuration) on stderr.
 *
 * Usage: bench_step [--check-only] [--quick]
 *   --check-only  run the reference check only (exit 0 agree, 1 disagree)
 *   --quick       fewer repeats (a smoke run, numbers noisier)
 */
#define _POSIX_C_SOURCE 199309L

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "feedbackalign.h"

/* Declared here as well as in OpenBLAS's cblas.h: the benchmark relies on
 * OpenBLAS specifically (thread count control), not on any CBLAS. */
extern void openblas_set_num_threads(int);

#define MAX_LAYERS 16

static const char *const rule_names[3] = {"BP", "FA", "DFA"};

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Deterministic inputs without touching the library's RNG. */
static uint64_t bench_rng = 0x9e3779b97f4a7c15u;
static float uniform01(void)
{
    bench_rng ^= bench_rng << 13;
    bench_rng ^= bench_rng >> 7;
    bench_rng ^= bench_rng << 17;
    return (float)(bench_rng >> 40) * (1.0f / 16777216.0f);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "bench_step: out of memory (%zu bytes)\n", n);
        exit(2);
    }
    return p;
}

/* x (n0, batch) uniform in [0, 1); t (c, batch) one-hot. */
static void make_batch(float *x, int32_t n0, float *t, int32_t c, int32_t batch)
{
    for (int64_t i = 0; i < (int64_t)n0 * batch; i++)
        x[i] = uniform01();
    memset(t, 0, sizeof(float) * (size_t)c * (size_t)batch);
    for (int32_t s = 0; s < batch; s++) {
        int32_t k = (int32_t)(uniform01() * (float)c);
        t[(k < c ? k : c - 1) + (int64_t)s * c] = 1.0f;
    }
}

/* A failing library call outside the checks is a broken benchmark, not a
 * result: say which call and stop. */
static void must(int rc, const char *what)
{
    if (rc != FA_OK) {
        fprintf(stderr, "bench_step: %s failed: %s (%s)\n", what,
                fa_status_string(rc), fa_last_error());
        exit(2);
    }
}

static fa_net *make_net(int32_t L, const int32_t *sizes, int32_t rule,
                        uint64_t seed)
{
    int32_t act[MAX_LAYERS];
    fa_net *net = NULL;
    for (int32_t l = 0; l < L; l++)
        act[l] = l + 1 < L ? FA_ACT_TANH : FA_ACT_IDENTITY;
    must(fa_net_create(&net, L, sizes, act, FA_LOSS_SOFTMAX_CE, seed), "fa_net_create");
    must(fa_net_set_rule(net, rule), "fa_net_set_rule");
    must(fa_net_set_optimizer(net, FA_OPT_SGD), "fa_net_set_optimizer");
    return net;
}

/* ------------------------------------------------------------------------
 * The naive reference: one SGD step of a tanh / softmax-CE net, written from
 * the maths (design.md) with no BLAS and double accumulation.
 * Parameters p use the library's layout [W_1|b_1|...], W_l (n_l, n_{l-1})
 * column-major; fb[l] is F_l (n_l, n_{l-1}) for FA (l >= 2) or G_l
 * (n_L, n_l) for DFA (l <= L-1), both applied transposed.
 * ---------------------------------------------------------------------- */
static void reference_step(int32_t rule, int32_t L, const int32_t *n,
                           const int64_t *w_off, const int64_t *b_off,
                           double *p, int64_t n_params, double *const *fb,
                           const float *x, const float *t, int32_t m,
                           double lr)
{
    double *h[MAX_LAYERS + 1], *d[MAX_LAYERS + 1];
    double *g = xmalloc(sizeof(double) * (size_t)n_params);
    double *hx = xmalloc(sizeof(double) * (size_t)n[0] * (size_t)m);
    h[0] = hx;
    for (int64_t i = 0; i < (int64_t)n[0] * m; i++)
        hx[i] = x[i];
    for (int32_t l = 1; l <= L; l++) {
        h[l] = xmalloc(sizeof(double) * (size_t)n[l] * (size_t)m);
        d[l] = xmalloc(sizeof(double) * (size_t)n[l] * (size_t)m);
    }

    /* Forward: a_l = W_l h_{l-1} + b_l; h_l = tanh(a_l), the last layer
     * stays logits. */
    for (int32_t l = 1; l <= L; l++) {
        const double *w = p + w_off[l], *b = p + b_off[l];
        for (int32_t s = 0; s < m; s++)
            for (int32_t i = 0; i < n[l]; i++) {
                double acc = b[i];
                for (int32_t j = 0; j < n[l - 1]; j++)
                    acc += w[i + (int64_t)j * n[l]] * h[l - 1][j + (int64_t)s * n[l - 1]];
                h[l][i + (int64_t)s * n[l]] = l < L ? tanh(acc) : acc;
            }
    }

    /* Output error e = (softmax(a_L) - t) / m, one column per sample. */
    int32_t c = n[L];
    for (int32_t s = 0; s < m; s++) {
        const double *a = h[L] + (int64_t)s * c;
        double mx = a[0], z = 0.0;
        for (int32_t k = 1; k < c; k++)
            mx = a[k] > mx ? a[k] : mx;
        for (int32_t k = 0; k < c; k++)
            z += exp(a[k] - mx);
        for (int32_t k = 0; k < c; k++)
            d[L][k + (int64_t)s * c] =
                (exp(a[k] - mx) / z - (double)t[k + (int64_t)s * c]) / m;
    }

    /* Hidden errors, top down (DFA would not need the order). */
    for (int32_t l = L - 1; l >= 1; l--) {
        for (int32_t s = 0; s < m; s++)
            for (int32_t i = 0; i < n[l]; i++) {
                double acc = 0.0;
                if (rule == FA_RULE_DFA) {
                    for (int32_t k = 0; k < c; k++)  /* G_l^T e */
                        acc += fb[l][k + (int64_t)i * c] * d[L][k + (int64_t)s * c];
                } else {
                    const double *b = rule == FA_RULE_BP ? p + w_off[l + 1] : fb[l + 1];
                    for (int32_t k = 0; k < n[l + 1]; k++)  /* B_{l+1}^T d_{l+1} */
                        acc += b[k + (int64_t)i * n[l + 1]] * d[l + 1][k + (int64_t)s * n[l + 1]];
                }
                double z = h[l][i + (int64_t)s * n[l]];
                d[l][i + (int64_t)s * n[l]] = acc * (1.0 - z * z);
            }
    }

    /* dW_l = d_l h_{l-1}^T, db_l = d_l 1, then p -= lr g. */
    for (int32_t l = 1; l <= L; l++) {
        for (int32_t i = 0; i < n[l]; i++) {
            for (int32_t j = 0; j < n[l - 1]; j++) {
                double acc = 0.0;
                for (int32_t s = 0; s < m; s++)
                    acc += d[l][i + (int64_t)s * n[l]] * h[l - 1][j + (int64_t)s * n[l - 1]];
                g[w_off[l] + i + (int64_t)j * n[l]] = acc;
            }
            double acc = 0.0;
            for (int32_t s = 0; s < m; s++)
                acc += d[l][i + (int64_t)s * n[l]];
            g[b_off[l] + i] = acc;
        }
    }
    for (int64_t i = 0; i < n_params; i++)
        p[i] -= lr * g[i];

    for (int32_t l = 1; l <= L; l++) {
        free(h[l]);
        free(d[l]);
    }
    free(hx);
    free(g);
}

/* One library step against the reference for one rule.  Returns 0 if the
 * parameters agree (max |diff| <= 1e-4 * max |p|) and the updates agree
 * (||du|| <= 1e-4 ||u||, a much finer test: the update is small next to
 * the parameters; float32 rounding alone gives about 1e-6, while an f'
 * off by 0.1 % already gives 4e-4). */
static int check_rule(int32_t rule)
{
    enum { L = 3, M = 7, N0 = 20, C = 5 };
    const int32_t n[L + 1] = {N0, 16, 12, C};
    const double lr = 0.1;
    fa_net *net = make_net(L, n, rule, 1234u + (uint64_t)rule);
    must(fa_net_set_hparam(net, FA_HP_LR, lr), "fa_net_set_hparam");

    int64_t np_ = 0, w_off[L + 1] = {0}, b_off[L + 1] = {0};
    must(fa_net_param_count(net, &np_), "fa_net_param_count");
    for (int32_t l = 1; l <= L; l++)
        must(fa_net_layer_offsets(net, l, &w_off[l], &b_off[l]), "fa_net_layer_offsets");

    /* Non-zero biases, so the bias path is exercised too. */
    float *p0 = xmalloc(sizeof(float) * (size_t)np_);
    float *p1 = xmalloc(sizeof(float) * (size_t)np_);
    double *pr = xmalloc(sizeof(double) * (size_t)np_);
    double *p0d = xmalloc(sizeof(double) * (size_t)np_);
    must(fa_net_get_params(net, p0, np_), "fa_net_get_params");
    for (int32_t l = 1; l <= L; l++)
        for (int32_t i = 0; i < n[l]; i++)
            p0[b_off[l] + i] = 0.2f * (uniform01() - 0.5f);
    must(fa_net_set_params(net, p0, np_), "fa_net_set_params");

    /* The rule's feedback matrices as the library holds them. */
    double *fb[L + 1] = {NULL};
    for (int32_t l = 1; l <= L && rule != FA_RULE_BP; l++) {
        if ((rule == FA_RULE_FA && l < 2) || (rule == FA_RULE_DFA && l > L - 1))
            continue;
        int32_t r = 0, cc = 0;
        must(fa_net_feedback_shape(net, rule, l, &r, &cc), "fa_net_feedback_shape");
        float *buf = xmalloc(sizeof(float) * (size_t)r * (size_t)cc);
        must(fa_net_get_feedback(net, rule, l, buf, (int64_t)r * cc), "fa_net_get_feedback");
        fb[l] = xmalloc(sizeof(double) * (size_t)r * (size_t)cc);
        for (int64_t i = 0; i < (int64_t)r * cc; i++)
            fb[l][i] = buf[i];
        free(buf);
    }

    float x[N0 * M], t[C * M];
    make_batch(x, n[0], t, n[L], M);
    for (int64_t i = 0; i < np_; i++)
        pr[i] = p0d[i] = p0[i];
    reference_step(rule, L, n, w_off, b_off, pr, np_, fb, x, t, M, lr);

    float loss = 0.0f;
    must(fa_net_train_step(net, x, n[0], t, n[L], M, &loss), "fa_net_train_step");
    must(fa_net_get_params(net, p1, np_), "fa_net_get_params");

    double max_diff = 0.0, max_p = 0.0, du2 = 0.0, u2 = 0.0;
    for (int64_t i = 0; i < np_; i++) {
        double diff = fabs((double)p1[i] - pr[i]);
        max_diff = diff > max_diff ? diff : max_diff;
        max_p = fabs(pr[i]) > max_p ? fabs(pr[i]) : max_p;
        double u = pr[i] - p0d[i], ul = (double)p1[i] - p0d[i];
        du2 += (ul - u) * (ul - u);
        u2 += u * u;
    }
    double rel_p = max_diff / max_p, rel_u = sqrt(du2 / u2);
    int ok = rel_p <= 1e-4 && rel_u <= 1e-4 && u2 > 0.0;
    fprintf(stderr,
            "# check %-3s 20-16-12-5 tanh/softmax-CE batch %d SGD: "
            "max|dp|/max|p| = %.2e, ||du||/||u|| = %.2e  %s\n",
            rule_names[rule], M, rel_p, rel_u, ok ? "ok" : "DISAGREES");

    for (int32_t l = 0; l <= L; l++)
        free(fb[l]);
    free(p0);
    free(p1);
    free(pr);
    free(p0d);
    fa_net_free(net);
    return ok ? 0 : 1;
}

/* ------------------------------------------------------------------------
 * The limit: the step's GEMMs, exactly as the maths needs them, called
 * directly on buffers laid out like the library's.
 * ---------------------------------------------------------------------- */
typedef struct gemm_op {
    enum CBLAS_TRANSPOSE ta, tb;
    int m, n, k, lda, ldb, ldc;
    const float *a, *b;
    float *c;
} gemm_op;

typedef struct gemm_plan {
    gemm_op op[3 * MAX_LAYERS];
    int n_ops;
    double flops;
    float *block; /* every buffer, one allocation */
} gemm_plan;

static void plan_add(gemm_plan *pl, enum CBLAS_TRANSPOSE ta,
                     enum CBLAS_TRANSPOSE tb, int m, int n, int k,
                     const float *a, int lda, const float *b, int ldb,
                     float *c, int ldc)
{
    gemm_op *o = &pl->op[pl->n_ops++];
    o->ta = ta; o->tb = tb; o->m = m; o->n = n; o->k = k;
    o->a = a; o->lda = lda; o->b = b; o->ldb = ldb; o->c = c; o->ldc = ldc;
    pl->flops += 2.0 * m * n * k;
}

/* Shapes (rows, cols), m = batch, c = n_L:
 *   forward   A_l (n_l, m)       = W_l (n_l, n_{l-1}) H_{l-1}          NN
 *   gradient  dW_l (n_l, n_{l-1}) = D_l (n_l, m) H_{l-1}^T             NT
 *   BP / FA   D_l (n_l, m)       = B_{l+1}^T D_{l+1}, l = L-1..1        TN
 *   DFA       D (sum n_l, m)     = G^T e, G = [G_1|...|G_{L-1}] (c, .)  TN
 * which gives the FLOP count of anchors.md term by term. */
static void plan_build(gemm_plan *pl, int32_t rule, int32_t L, const int32_t *n,
                       int32_t m)
{
    int64_t total = 0, n_hidden = 0;
    for (int32_t l = 1; l <= L; l++)
        total += 3 * (int64_t)n[l] * n[l - 1] + 2 * (int64_t)n[l] * m;
    for (int32_t l = 1; l < L; l++)
        n_hidden += n[l];
    total += (int64_t)n[0] * m + n_hidden * m + (int64_t)n[L] * n_hidden;
    memset(pl, 0, sizeof *pl);
    pl->block = xmalloc(sizeof(float) * (size_t)total);
    for (int64_t i = 0; i < total; i++)
        pl->block[i] = 0.01f * (uniform01() - 0.5f);

    float *w[MAX_LAYERS + 1], *dw[MAX_LAYERS + 1], *fb[MAX_LAYERS + 1];
    float *h[MAX_LAYERS + 1], *d[MAX_LAYERS + 1];
    float *q = pl->block;
    h[0] = q; q += (int64_t)n[0] * m;
    for (int32_t l = 1; l <= L; l++) {
        w[l] = q; q += (int64_t)n[l] * n[l - 1];
        dw[l] = q; q += (int64_t)n[l] * n[l - 1];
        fb[l] = q; q += (int64_t)n[l] * n[l - 1];
        h[l] = q; q += (int64_t)n[l] * m;
        d[l] = q; q += (int64_t)n[l] * m;
    }
    float *dstack = q; q += n_hidden * m;
    float *g = q;

    for (int32_t l = 1; l <= L; l++)
        plan_add(pl, CblasNoTrans, CblasNoTrans, n[l], m, n[l - 1],
                 w[l], n[l], h[l - 1], n[l - 1], h[l], n[l]);
    if (rule == FA_RULE_DFA && L > 1)
        plan_add(pl, CblasTrans, CblasNoTrans, (int)n_hidden, m, n[L],
                 g, n[L], d[L], n[L], dstack, (int)n_hidden);
    for (int32_t l = L; l >= 1; l--) {
        plan_add(pl, CblasNoTrans, CblasTrans, n[l], n[l - 1], m,
                 d[l], n[l], h[l - 1], n[l - 1], dw[l], n[l]);
        if (l >= 2 && rule != FA_RULE_DFA)
            plan_add(pl, CblasTrans, CblasNoTrans, n[l - 1], m, n[l],
                     rule == FA_RULE_BP ? w[l] : fb[l], n[l], d[l], n[l],
                     d[l - 1], n[l - 1]);
    }
}

static void plan_run(const gemm_plan *pl)
{
    for (int i = 0; i < pl->n_ops; i++) {
        const gemm_op *o = &pl->op[i];
        cblas_sgemm(CblasColMajor, o->ta, o->tb, o->m, o->n, o->k, 1.0f,
                    o->a, o->lda, o->b, o->ldb, 0.0f, o->c, o->ldc);
    }
}

/* The anchors.md formula, independently of the plan, as a cross-check. */
static double step_flops(int32_t rule, int32_t L, const int32_t *n, int32_t m)
{
    double f = 0.0, hidden = 0.0;
    for (int32_t l = 1; l <= L; l++)
        f += 2.0 * 2.0 * m * n[l] * n[l - 1]; /* forward + weight gradient */
    for (int32_t l = 2; l <= L; l++)
        f += rule == FA_RULE_DFA ? 0.0 : 2.0 * m * n[l] * n[l - 1];
    for (int32_t l = 1; l < L; l++)
        hidden += n[l];
    if (rule == FA_RULE_DFA)
        f += 2.0 * m * n[L] * hidden;
    return f;
}

/* ------------------------------------------------------------------------ */

typedef struct arch {
    const char *name;
    int32_t L;
    int32_t n[MAX_LAYERS + 1];
} arch;

static void bench_arch(const arch *a, int threads, int32_t batch, int repeats,
                       int steps)
{
    const int32_t *n = a->n;
    int32_t L = a->L;
    float *x = xmalloc(sizeof(float) * (size_t)n[0] * (size_t)batch);
    float *t = xmalloc(sizeof(float) * (size_t)n[L] * (size_t)batch);
    make_batch(x, n[0], t, n[L], batch);

    fa_net *net[3];
    gemm_plan plan[3];
    double *t_step[3], *t_gemm[3];
    for (int32_t r = 0; r < 3; r++) {
        net[r] = make_net(L, n, r, 42u);
        must(fa_net_reserve(net[r], batch), "fa_net_reserve");
        plan_build(&plan[r], r, L, n, batch);
        if (fabs(plan[r].flops - step_flops(r, L, n, batch)) > 0.5) {
            fprintf(stderr, "bench_step: GEMM plan FLOPs %.0f != formula %.0f\n",
                    plan[r].flops, step_flops(r, L, n, batch));
            exit(2);
        }
        t_step[r] = xmalloc(sizeof(double) * (size_t)repeats);
        t_gemm[r] = xmalloc(sizeof(double) * (size_t)repeats);
        /* Warm-up: workspaces touched, OpenBLAS threads started. */
        for (int i = 0; i < 5; i++) {
            must(fa_net_train_step(net[r], x, n[0], t, n[L], batch, NULL), "fa_net_train_step");
            plan_run(&plan[r]);
        }
    }

    /* Interleave rules and the GEMM limit within each repeat, so that a
     * burst of load from other processes hits all of them alike. */
    for (int rep = 0; rep < repeats; rep++)
        for (int32_t r = 0; r < 3; r++) {
            double t0 = now_seconds();
            for (int i = 0; i < steps; i++)
                must(fa_net_train_step(net[r], x, n[0], t, n[L], batch, NULL), "fa_net_train_step");
            double t1 = now_seconds();
            for (int i = 0; i < steps; i++)
                plan_run(&plan[r]);
            double t2 = now_seconds();
            t_step[r][rep] = (t1 - t0) / steps;
            t_gemm[r][rep] = (t2 - t1) / steps;
        }

    double *ratio = xmalloc(sizeof(double) * (size_t)repeats);
    for (int32_t r = 0; r < 3; r++) {
        /* The fraction is the median of the per-repeat ratios: a step and
         * its GEMM list timed a few milliseconds apart see the same load,
         * which a ratio of two separate medians would not guarantee. */
        for (int rep = 0; rep < repeats; rep++)
            ratio[rep] = t_gemm[r][rep] / t_step[r][rep];
        double frac = median(ratio, repeats);
        double ms = 1e3 * median(t_step[r], repeats);
        double lim = 1e3 * median(t_gemm[r], repeats);
        printf("%s,%s,%d,%d,%.4f,%.2f,%.4f,%.3f\n", a->name, rule_names[r],
               threads, batch, ms, plan[r].flops / (ms * 1e6), lim, frac);
        fflush(stdout);
        fa_net_free(net[r]);
        free(plan[r].block);
        free(t_step[r]);
        free(t_gemm[r]);
    }
    free(ratio);
    free(x);
    free(t);
}

int main(int argc, char **argv)
{
    int check_only = 0, quick = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--check-only") == 0)
            check_only = 1;
        else if (strcmp(argv[i], "--quick") == 0)
            quick = 1;
        else {
            fprintf(stderr, "usage: %s [--check-only] [--quick]\n", argv[0]);
            return 2;
        }
    }

    int bad = 0;
    for (int32_t r = 0; r < 3; r++)
        bad += check_rule(r);
    if (bad) {
        fprintf(stderr, "bench_step: %d rule(s) disagree with the reference; "
                        "not timing\n", bad);
        return 1;
    }
    if (check_only)
        return 0;

    fprintf(stderr, "# OpenBLAS: %s (core %s)\n", openblas_get_config(),
            openblas_get_corename());
    static const arch archs[2] = {
        {"784-1000-10", 2, {784, 1000, 10}},
        {"784-240x7-10", 8, {784, 240, 240, 240, 240, 240, 240, 240, 10}},
    };
    /* Short blocks, many repeats: other processes' load changes within
     * tens of milliseconds on a shared machine. */
    const int repeats = quick ? 5 : 41, steps = quick ? 1 : 2;
    printf("arch,rule,threads,batch,ms_per_step,gflops,limit_ms,fraction_of_limit\n");
    for (int threads = 1; threads <= 2; threads++) {
        openblas_set_num_threads(threads);
        for (int i = 0; i < 2; i++)
            bench_arch(&archs[i], threads, 128, repeats, steps);
    }
    return 0;
}
