/* bench_util.c -- see bench_util.h. */
#define _POSIX_C_SOURCE 200809L

#include "bench_util.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------ small helpers */

double bu_now(void)
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

double bu_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double quantile_sorted(const double *s, int n, double q)
{
    if (n == 1)
        return s[0];
    double pos = q * (double)(n - 1);
    int i = (int)pos;
    if (i >= n - 1)
        return s[n - 1];
    return s[i] + (pos - (double)i) * (s[i + 1] - s[i]);
}

void bu_quartiles(const double *v, int n, double *q1, double *med, double *q3)
{
    double *s = bu_malloc(sizeof *s * (size_t)n);
    memcpy(s, v, sizeof *s * (size_t)n);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    if (q1)
        *q1 = quantile_sorted(s, n, 0.25);
    if (med)
        *med = quantile_sorted(s, n, 0.5);
    if (q3)
        *q3 = quantile_sorted(s, n, 0.75);
    free(s);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

void bu_seed(uint64_t seed)
{
    rng_state = seed ? seed : 0x9e3779b97f4a7c15u;
}

float bu_uniform(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)(rng_state >> 40) * (1.0f / 16777216.0f);
}

void *bu_malloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "benchmark: out of memory (%zu bytes)\n", bytes);
        exit(2);
    }
    return p;
}

void bu_must(int rc, const char *what)
{
    if (rc != FA_OK) {
        fprintf(stderr, "benchmark: %s failed: %s (%s)\n", what, fa_status_string(rc),
                fa_last_error());
        exit(2);
    }
}

void bu_make_batch(float *x, int64_t n0, float *t, int32_t c, int32_t batch)
{
    for (int64_t i = 0; i < n0 * batch; i++)
        x[i] = bu_uniform();
    memset(t, 0, sizeof(float) * (size_t)c * (size_t)batch);
    for (int32_t s = 0; s < batch; s++) {
        int32_t k = (int32_t)(bu_uniform() * (float)c);
        t[(k < c ? k : c - 1) + (int64_t)s * c] = 1.0f;
    }
}

int bu_split(char *list, char **item, int max)
{
    int n = 0;
    for (char *s = strtok(list, ","); s && n < max; s = strtok(NULL, ","))
        item[n++] = s;
    return n;
}

/* ------------------------------------------------------------ architectures */

void bu_arch_parse(bu_arch *a, const char *name, const char *spec)
{
    fa_spec *s = NULL;
    memset(a, 0, sizeof *a);
    if (strlen(spec) >= sizeof a->spec) {
        fprintf(stderr, "benchmark: spec too long: %s\n", spec);
        exit(2);
    }
    int rc = fa_spec_parse(&s, spec, FA_ACT_TANH, FA_ACT_IDENTITY);
    if (rc != FA_OK) {
        fprintf(stderr, "benchmark: bad network spec '%s': %s\n", spec, fa_last_error());
        exit(2);
    }
    strcpy(a->spec, spec);
    snprintf(a->name, sizeof a->name, "%s", name ? name : spec);
    bu_must(fa_spec_num_layers(s, &a->L), "fa_spec_num_layers");
    if (a->L > BU_MAX_LAYERS) {
        fprintf(stderr, "benchmark: %d layers, at most %d\n", (int)a->L, BU_MAX_LAYERS);
        exit(2);
    }
    for (int32_t l = 1; l <= a->L; l++) {
        bu_layer *ly = &a->layer[l];
        bu_must(fa_spec_layer(s, l, &ly->kind, &ly->units, &ly->kh, &ly->kw, &ly->stride,
                              &ly->pad, &ly->act), "fa_spec_layer");
        bu_must(fa_spec_shape(s, l - 1, &ly->in_c, &ly->in_h, &ly->in_w), "fa_spec_shape");
        bu_must(fa_spec_shape(s, l, &ly->out_c, &ly->out_h, &ly->out_w), "fa_spec_shape");
        ly->n_in = (int64_t)ly->in_c * ly->in_h * ly->in_w;
        ly->n_out = (int64_t)ly->out_c * ly->out_h * ly->out_w;
        if (ly->kind == FA_LAYER_DENSE) {
            ly->w_rows = ly->units;
            ly->w_cols = (int32_t)ly->n_in;
        } else if (ly->kind == FA_LAYER_CONV2D) {
            ly->w_rows = ly->units;
            ly->w_cols = ly->in_c * ly->kh * ly->kw;
        }
    }
    fa_spec_free(s);
}

int64_t bu_arch_n(const bu_arch *a, int32_t l)
{
    return l == 0 ? a->layer[1].n_in : a->layer[l].n_out;
}

int32_t bu_arch_first_param(const bu_arch *a)
{
    for (int32_t l = 1; l <= a->L; l++)
        if (a->layer[l].w_rows > 0)
            return l;
    return a->L;
}

int64_t bu_cols(const bu_layer *ly, int32_t m)
{
    return (int64_t)ly->out_h * ly->out_w * m;
}

fa_net *bu_net(const bu_arch *a, int32_t rule, int32_t opt, uint64_t seed)
{
    fa_spec *s = NULL;
    fa_net *net = NULL;
    bu_must(fa_spec_parse(&s, a->spec, FA_ACT_TANH, FA_ACT_IDENTITY), "fa_spec_parse");
    bu_must(fa_net_create_from_spec(&net, s, FA_LOSS_SOFTMAX_CE, seed),
            "fa_net_create_from_spec");
    fa_spec_free(s);
    bu_must(fa_net_set_rule(net, rule), "fa_net_set_rule");
    bu_must(fa_net_set_optimizer(net, opt), "fa_net_set_optimizer");
    return net;
}

/* ------------------------------------------------------------------- rules */

int bu_rule_hidden(int32_t rule)
{
    int32_t mode = 0;
    bu_must(fa_rule_hidden(rule, &mode), "fa_rule_hidden");
    return mode;
}

int bu_rule_back_w(int32_t rule)
{
    int32_t kind = 0;
    bu_must(fa_rule_info(rule, &kind, NULL, NULL, NULL), "fa_rule_info");
    return kind == FA_FEEDBACK_NONE && bu_rule_hidden(rule) == BU_HIDDEN_CHAIN;
}

const char *bu_hidden_name(int hidden)
{
    const char *name = fa_enum_name(FA_ENUM_HIDDEN_MODE, hidden);
    return name ? name : "?";
}

/* ---------------------------------------------------------------- the limit */

static float *plan_buffer(bu_plan *p, int64_t floats, int fill)
{
    if (p->n_buf == p->buf_cap) {
        p->buf_cap = p->buf_cap ? 2 * p->buf_cap : 64;
        float **nb = realloc(p->buf, sizeof *nb * (size_t)p->buf_cap);
        if (!nb) {
            fprintf(stderr, "benchmark: out of memory\n");
            exit(2);
        }
        p->buf = nb;
    }
    float *b = NULL;
    if (posix_memalign((void **)&b, 64, sizeof(float) * (size_t)(floats ? floats : 1))) {
        fprintf(stderr, "benchmark: out of memory (%lld floats)\n", (long long)floats);
        exit(2);
    }
    for (int64_t i = 0; i < floats; i++)
        b[i] = fill ? 0.01f * (bu_uniform() - 0.5f) : 0.0f;
    p->buf[p->n_buf++] = b;
    return b;
}

static void plan_add(bu_plan *p, int ta, int tb, int64_t m, int64_t n, int64_t k,
                     float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                     float beta, float *c, int64_t ldc)
{
    if (p->n_ops == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 64;
        bu_gemm *no = realloc(p->op, sizeof *no * (size_t)p->cap);
        if (!no) {
            fprintf(stderr, "benchmark: out of memory\n");
            exit(2);
        }
        p->op = no;
    }
    if (m > INT32_MAX || n > INT32_MAX || k > INT32_MAX) {
        fprintf(stderr, "benchmark: GEMM dimension beyond int\n");
        exit(2);
    }
    bu_gemm *o = &p->op[p->n_ops++];
    o->ta = ta;
    o->tb = tb;
    o->m = (int)m;
    o->n = (int)n;
    o->k = (int)k;
    o->a = a;
    o->lda = (int)lda;
    o->b = b;
    o->ldb = (int)ldb;
    o->c = c;
    o->ldc = (int)ldc;
    o->alpha = alpha;
    o->beta = beta;
    p->flops += 2.0 * (double)m * (double)n * (double)k;
}

void bu_plan_build(bu_plan *p, const bu_arch *a, int hidden, int back_w, int sgd,
                   int32_t m)
{
    memset(p, 0, sizeof *p);
    const int32_t L = a->L, first = bu_arch_first_param(a);
    float *W[BU_MAX_LAYERS + 1] = {0}, *X[BU_MAX_LAYERS + 1] = {0};
    float *dA[BU_MAX_LAYERS + 1] = {0};
    /* forward, in layer order */
    for (int32_t l = 1; l <= L; l++) {
        const bu_layer *ly = &a->layer[l];
        if (ly->w_rows == 0)
            continue;
        const int64_t R = ly->w_rows, K = ly->w_cols, P = bu_cols(ly, m);
        W[l] = plan_buffer(p, R * K, 1);
        X[l] = plan_buffer(p, K * P, 1);
        float *A = plan_buffer(p, R * P, 0);
        dA[l] = plan_buffer(p, R * P, 1);
        plan_add(p, 0, 0, R, P, K, 1.0f, W[l], R, X[l], K, 0.0f, A, R);
    }
    /* the hidden errors */
    if (hidden == BU_HIDDEN_CHAIN) {
        for (int32_t l = L; l > first; l--) {
            const bu_layer *ly = &a->layer[l];
            if (ly->w_rows == 0)
                continue;
            const int64_t R = ly->w_rows, K = ly->w_cols, P = bu_cols(ly, m);
            float *B = back_w ? W[l] : plan_buffer(p, R * K, 1);
            float *dX = plan_buffer(p, K * P, 0);
            plan_add(p, 1, 0, K, P, R, 1.0f, B, R, dA[l], R, 0.0f, dX, K);
        }
    } else if (hidden == BU_HIDDEN_DIRECT) {
        int64_t nd = 0;
        const int64_t c = a->layer[L].n_out;
        for (int32_t l = 1; l < L; l++)
            if (a->layer[l].w_rows > 0)
                nd += a->layer[l].n_out;
        if (nd > 0) {
            float *G = plan_buffer(p, c * nd, 1), *D = plan_buffer(p, nd * m, 0);
            plan_add(p, 1, 0, nd, m, c, 1.0f, G, c, dA[L], c, 0.0f, D, nd);
        }
    }
    /* the weight gradients, in layer order (as the library) */
    for (int32_t l = hidden == BU_HIDDEN_NONE ? L : 1; l <= L; l++) {
        const bu_layer *ly = &a->layer[l];
        if (ly->w_rows == 0)
            continue;
        const int64_t R = ly->w_rows, K = ly->w_cols, P = bu_cols(ly, m);
        /* under plain SGD the library's GEMM updates W in place; lr small
         * enough that W stays where it is over any number of runs */
        if (sgd)
            plan_add(p, 0, 1, R, K, P, -1e-3f, dA[l], R, X[l], K, 1.0f, W[l], R);
        else
            plan_add(p, 0, 1, R, K, P, 1.0f, dA[l], R, X[l], K, 0.0f, plan_buffer(p, R * K, 0), R);
    }
    double f = bu_step_flops(a, hidden, m);
    if (p->flops < f * (1 - 1e-12) || p->flops > f * (1 + 1e-12)) {
        fprintf(stderr, "benchmark: GEMM plan FLOPs %.0f != cost model %.0f\n", p->flops, f);
        exit(2);
    }
}

void bu_plan_run(const bu_plan *p)
{
    for (int i = 0; i < p->n_ops; i++) {
        const bu_gemm *o = &p->op[i];
        cblas_sgemm(CblasColMajor, o->ta ? CblasTrans : CblasNoTrans,
                    o->tb ? CblasTrans : CblasNoTrans, o->m, o->n, o->k, o->alpha, o->a,
                    o->lda, o->b, o->ldb, o->beta, o->c, o->ldc);
    }
}

void bu_plan_free(bu_plan *p)
{
    for (int i = 0; i < p->n_buf; i++)
        free(p->buf[i]);
    free(p->buf);
    free(p->op);
    memset(p, 0, sizeof *p);
}

double bu_step_flops(const bu_arch *a, int hidden, int32_t m)
{
    const int32_t L = a->L, first = bu_arch_first_param(a);
    double f = 0.0, nd = 0.0;
    for (int32_t l = 1; l <= L; l++) {
        const bu_layer *ly = &a->layer[l];
        if (ly->w_rows == 0)
            continue;
        const double one = 2.0 * ly->w_rows * (double)ly->w_cols * (double)bu_cols(ly, m);
        f += one;                                       /* forward */
        if (hidden != BU_HIDDEN_NONE || l == L)
            f += one;                                   /* weight gradient */
        if (hidden == BU_HIDDEN_CHAIN && l > first)
            f += one;                                   /* input error */
        if (l < L)
            nd += (double)ly->n_out;
    }
    if (hidden == BU_HIDDEN_DIRECT)
        f += 2.0 * (double)a->layer[L].n_out * nd * m;
    return f;
}

/* --------------------------------------------------------------- timing */

void bu_time_interleaved(int n, bu_fn const *fn, void *const *ctx, int group,
                         int repeats, int calls, double *const *times)
{
    const int groups = n / group;
    for (int rep = 0; rep < repeats; rep++)
        for (int g = 0; g < groups; g++) {
            const int gi = (rep + g) % groups;
            for (int c = gi * group; c < (gi + 1) * group; c++) {
                double t0 = bu_now();
                for (int i = 0; i < calls; i++)
                    fn[c](ctx[c]);
                times[c][rep] = (bu_now() - t0) / calls;
            }
        }
}

void bu_train_step(void *ctx)
{
    bu_step_ctx *s = ctx;
    bu_must(fa_net_train_step(s->net, s->x, s->ldx, s->t, s->ldt, s->m, NULL),
            "fa_net_train_step");
}

void bu_plan_fn(void *ctx)
{
    bu_plan_run(ctx);
}

void bu_quiet_blas_workers(char **argv)
{
    if (getenv("OPENBLAS_THREAD_TIMEOUT"))
        return;
    if (setenv("OPENBLAS_THREAD_TIMEOUT", "4", 1) == 0)
        execv("/proc/self/exe", argv);
    /* still here: run as we are; bu_print_setup says so */
}

void bu_print_setup(const char *prog)
{
    char info[512];
    int32_t generic = 0;
    bu_must(fa_blas_info(info, sizeof info, &generic), "fa_blas_info");
    fprintf(stderr, "# %s: libfeedbackalign %s; BLAS: %s%s\n", prog, fa_version_string(), info,
            generic ? " (GENERIC kernels on an AVX2/AVX-512 CPU: slow, see fa_blas_info)" : "");
    FILE *f = fopen("/proc/loadavg", "r");
    char load[128] = "";
    if (f) {
        if (!fgets(load, sizeof load, f))
            load[0] = '\0';
        fclose(f);
        load[strcspn(load, "\n")] = '\0';
        fprintf(stderr, "# load average at start: %s\n", load);
    }
    const char *tmo = getenv("OPENBLAS_THREAD_TIMEOUT");
    fprintf(stderr, "# OPENBLAS_THREAD_TIMEOUT=%s%s\n", tmo ? tmo : "(unset)",
            tmo && strcmp(tmo, "4") == 0 ? " (OpenBLAS's idle threads sleep at once)" : "");
}
