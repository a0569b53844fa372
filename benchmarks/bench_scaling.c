/*
 * bench_scaling.c -- how the cost of a step grows with width, depth and
 * batch, for BP, FA and DFA, against the GEMM limit (bench_util.h).
 *
 * Studies (tanh hidden layers, softmax CE, SGD unless --opt):
 *   width   784-W-10, one hidden layer, W = 256 ... 4096, batch 128
 *   depth   784-240xD-10, D = 1 ... 100 hidden layers (Nokland's deep
 *           net), batch 128
 *   batch   784-1000-10 and 784-240x7-10, batch 16 ... 1024
 * At every point each rule's step and its limit are timed back to back,
 * the rules interleaved (the order rotating from repeat to repeat), so the
 * DFA/BP ratio is taken between steps milliseconds apart.
 *
 * Output: one CSV per study in --out DIR (width.csv, depth.csv,
 * batch.csv), columns
 *   study,arch,x,rule,optimizer,threads,batch,ms_per_step,epoch_s,limit_ms,
 *   limit_epoch_s,fraction_of_limit,gflops,flops,dfa_over_bp,dfa_over_bp_pred
 * with x the width, depth or batch; epoch_s = ms_per_step * 60000/batch
 * (an epoch of MNIST-sized data); fraction_of_limit the median over repeats
 * of limit/step; dfa_over_bp (DFA rows) the median over repeats of DFA's
 * step over BP's, dfa_over_bp_pred the ratio of their GEMM FLOPs (forward
 * sum 2 m n_l n_{l-1}, weight gradients the same, BP's hidden errors the same
 * less the first layer, DFA's 2 m c sum n_l instead); NaN where not
 * applicable.  scaling.gp plots them; run-scaling.sh does both.
 *
 * Usage: bench_scaling [--quick] [--out DIR] [--studies width,depth,batch]
 *                      [--rules bp,fa,dfa] [--opt NAME] [--threads 1,2]
 *                      [--repeats N] [--steps N]
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench_util.h"

#define MAX_LIST 32
#define EPOCH 60000.0

typedef struct cfg {
    int repeats, steps;
    int n_rules;
    int32_t rules[MAX_LIST];
    int32_t opt;
    int n_threads;
    int threads[MAX_LIST];
} cfg;

static int lookup(int32_t type, const char *name)
{
    int32_t v = 0;
    if (fa_enum_lookup(type, name, &v) != FA_OK) {
        fprintf(stderr, "bench_scaling: %s\n", fa_last_error());
        exit(2);
    }
    return v;
}

/* Rows of one study, written sorted (threads, arch, rule, x) at its end so
 * that every series is contiguous in the file (gnuplot breaks a line at
 * every row a filter leaves out). */
typedef struct out_row {
    int threads, rule_index;
    char arch[64]; /* sort key: the network in the batch study, else "" */
    double x;
    char line[400];
} out_row;

static out_row *rows_buf;
static int n_rows, cap_rows;

static int cmp_row(const void *pa, const void *pb)
{
    const out_row *a = pa, *b = pb;
    int c = strcmp(a->arch, b->arch);
    if (a->threads != b->threads)
        return a->threads - b->threads;
    if (c)
        return c;
    if (a->rule_index != b->rule_index)
        return a->rule_index - b->rule_index;
    return (a->x > b->x) - (a->x < b->x);
}

static out_row *new_row(void)
{
    if (n_rows == cap_rows) {
        cap_rows = cap_rows ? 2 * cap_rows : 256;
        out_row *nr = realloc(rows_buf, sizeof *nr * (size_t)cap_rows);
        if (!nr) {
            fprintf(stderr, "bench_scaling: out of memory\n");
            exit(2);
        }
        rows_buf = nr;
    }
    return &rows_buf[n_rows++];
}

static void flush_rows(FILE *f)
{
    qsort(rows_buf, (size_t)n_rows, sizeof *rows_buf, cmp_row);
    for (int i = 0; i < n_rows; i++)
        fputs(rows_buf[i].line, f);
    n_rows = 0;
}

/* One point: every rule's step and limit, interleaved; rows kept for the
 * study's file. */
static void point(const char *study, const char *spec, double xval, int32_t m, int threads,
                  const cfg *c)
{
    bu_arch *a = bu_malloc(sizeof *a);
    bu_arch_parse(a, NULL, spec);
    bu_must(fa_set_threads(threads), "fa_set_threads");
    const int64_t n0 = bu_arch_n(a, 0), nc = bu_arch_n(a, a->L);
    float *x = bu_malloc(sizeof *x * (size_t)(n0 * m));
    float *t = bu_malloc(sizeof *t * (size_t)(nc * m));
    bu_make_batch(x, n0, t, (int32_t)nc, m);

    const int n = 2 * c->n_rules;
    bu_step_ctx *sc = bu_malloc(sizeof *sc * (size_t)c->n_rules);
    bu_plan *plan = bu_malloc(sizeof *plan * (size_t)c->n_rules);
    int *hidden = bu_malloc(sizeof *hidden * (size_t)c->n_rules);
    bu_fn *fn = bu_malloc(sizeof *fn * (size_t)n);
    void **ctx = bu_malloc(sizeof *ctx * (size_t)n);
    double **times = bu_malloc(sizeof *times * (size_t)n);
    for (int r = 0; r < c->n_rules; r++) {
        hidden[r] = bu_rule_hidden(c->rules[r]);
        sc[r] = (bu_step_ctx){bu_net(a, c->rules[r], c->opt, 42u), x, t, (int32_t)n0,
                              (int32_t)nc, m};
        bu_must(fa_net_reserve(sc[r].net, m), "fa_net_reserve");
        bu_plan_build(&plan[r], a, hidden[r], bu_rule_back_w(c->rules[r]),
                      c->opt == FA_OPT_SGD, m);
        fn[2 * r] = bu_train_step;
        ctx[2 * r] = &sc[r];
        fn[2 * r + 1] = bu_plan_fn;
        ctx[2 * r + 1] = &plan[r];
        times[2 * r] = bu_malloc(sizeof(double) * (size_t)c->repeats);
        times[2 * r + 1] = bu_malloc(sizeof(double) * (size_t)c->repeats);
        for (int w = 0; w < 2; w++) {
            bu_train_step(&sc[r]);
            bu_plan_run(&plan[r]);
        }
    }
    bu_time_interleaved(n, fn, ctx, 2, c->repeats, c->steps, times);

    int ib = -1;
    for (int r = 0; r < c->n_rules; r++)
        ib = c->rules[r] == FA_RULE_BP ? r : ib;
    double *v = bu_malloc(sizeof(double) * (size_t)c->repeats);
    for (int r = 0; r < c->n_rules; r++) {
        for (int k = 0; k < c->repeats; k++)
            v[k] = times[2 * r + 1][k] / times[2 * r][k];
        const double frac = bu_median(v, c->repeats);
        double dfa_bp = NAN, pred = NAN;
        if (ib >= 0 && hidden[r] == BU_HIDDEN_DIRECT) {
            for (int k = 0; k < c->repeats; k++)
                v[k] = times[2 * r][k] / times[2 * ib][k];
            dfa_bp = bu_median(v, c->repeats);
            pred = plan[r].flops / plan[ib].flops;
        }
        memcpy(v, times[2 * r], sizeof(double) * (size_t)c->repeats);
        const double ms = 1e3 * bu_median(v, c->repeats);
        memcpy(v, times[2 * r + 1], sizeof(double) * (size_t)c->repeats);
        const double lim = 1e3 * bu_median(v, c->repeats);
        out_row *w = new_row();
        w->threads = threads;
        w->rule_index = r;
        w->x = xval;
        /* the batch study has two networks: a series is (threads, arch,
         * rule); elsewhere the arch changes along the series */
        snprintf(w->arch, sizeof w->arch, "%s", strcmp(study, "batch") == 0 ? a->name : "");
        snprintf(w->line, sizeof w->line,
                 "%s,%s,%g,%s,%s,%d,%d,%.4f,%.4f,%.4f,%.4f,%.4f,%.2f,%.6g,%.4f,%.4f\n", study,
                a->name, xval, fa_enum_name(FA_ENUM_RULE, c->rules[r]),
                fa_enum_name(FA_ENUM_OPTIMIZER, c->opt), threads, (int)m, ms,
                ms * 1e-3 * EPOCH / m, lim, lim * 1e-3 * EPOCH / m, frac,
                plan[r].flops / (ms * 1e6), plan[r].flops, dfa_bp, pred);
        fprintf(stderr, "  %-6s %-16s x=%-5g %-4s thr %d batch %4d: %8.3f ms, limit %8.3f ms, "
                        "fraction %.2f%s\n", study, a->name, xval,
                fa_enum_name(FA_ENUM_RULE, c->rules[r]), threads, (int)m, ms, lim, frac,
                isnan(dfa_bp) ? "" : "  (DFA/BP measured vs FLOPs below)");
        if (!isnan(dfa_bp))
            fprintf(stderr, "         DFA/BP %.3f, FLOP prediction %.3f\n", dfa_bp, pred);
    }
    free(v);
    for (int r = 0; r < c->n_rules; r++) {
        fa_net_free(sc[r].net);
        bu_plan_free(&plan[r]);
        free(times[2 * r]);
        free(times[2 * r + 1]);
    }
    free(sc);
    free(plan);
    free(hidden);
    free(fn);
    free(ctx);
    free(times);
    free(x);
    free(t);
    free(a);
}

static FILE *open_csv(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.csv", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "bench_scaling: cannot write %s: %s\n", path, strerror(errno));
        exit(2);
    }
    fprintf(f, "study,arch,x,rule,optimizer,threads,batch,ms_per_step,epoch_s,limit_ms,"
               "limit_epoch_s,fraction_of_limit,gflops,flops,dfa_over_bp,dfa_over_bp_pred\n");
    fprintf(stderr, "# writing %s\n", path);
    return f;
}

int main(int argc, char **argv)
{
    int quick = 0, repeats = -1, steps = -1;
    const char *out = "results/scaling";
    char *studies_s = NULL, *rules_s = NULL, *opt_s = NULL, *thr_s = NULL;
    for (int i = 1; i < argc; i++) {
        const int more = i + 1 < argc;
        if (strcmp(argv[i], "--quick") == 0)
            quick = 1;
        else if (more && strcmp(argv[i], "--out") == 0)
            out = argv[++i];
        else if (more && strcmp(argv[i], "--studies") == 0)
            studies_s = argv[++i];
        else if (more && strcmp(argv[i], "--rules") == 0)
            rules_s = argv[++i];
        else if (more && strcmp(argv[i], "--opt") == 0)
            opt_s = argv[++i];
        else if (more && strcmp(argv[i], "--threads") == 0)
            thr_s = argv[++i];
        else if (more && strcmp(argv[i], "--repeats") == 0)
            repeats = atoi(argv[++i]);
        else if (more && strcmp(argv[i], "--steps") == 0)
            steps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--quick] [--out DIR] [--studies width,depth,batch] "
                            "[--rules LIST] [--opt NAME] [--threads LIST] [--repeats N] "
                            "[--steps N]\n", argv[0]);
            return 2;
        }
    }
    cfg c;
    memset(&c, 0, sizeof c);
    c.repeats = repeats >= 0 ? repeats : quick ? 3 : 21;
    c.steps = steps >= 0 ? steps : quick ? 1 : 2;
    char def_rules[] = "bp,fa,dfa", def_thr1[] = "1", def_thr[] = "1,2",
         def_studies[] = "width,depth,batch";
    char *item[MAX_LIST];
    c.n_rules = bu_split(rules_s ? rules_s : def_rules, item, MAX_LIST);
    for (int i = 0; i < c.n_rules; i++)
        c.rules[i] = lookup(FA_ENUM_RULE, item[i]);
    c.opt = opt_s ? lookup(FA_ENUM_OPTIMIZER, opt_s) : FA_OPT_SGD;
    c.n_threads = bu_split(thr_s ? thr_s : quick ? def_thr1 : def_thr, item, MAX_LIST);
    for (int i = 0; i < c.n_threads; i++)
        c.threads[i] = atoi(item[i]);
    if (c.repeats < 1 || c.steps < 1) {
        fprintf(stderr, "bench_scaling: repeats and steps >= 1\n");
        return 2;
    }
    for (int i = 0; i < c.n_threads; i++)
        if (c.threads[i] < 1) {
            fprintf(stderr, "bench_scaling: threads >= 1\n");
            return 2;
        }
    if (mkdir(out, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "bench_scaling: cannot create %s: %s\n", out, strerror(errno));
        return 2;
    }
    static const int widths[] = {256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096};
    static const int widths_q[] = {256, 1024, 4096};
    static const int depths[] = {1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100};
    static const int depths_q[] = {1, 3, 10, 30, 100};
    static const int batches[] = {16, 32, 64, 128, 256, 512, 1024};
    static const int batches_q[] = {16, 128, 1024};

    bu_print_setup("bench_scaling");
    fprintf(stderr, "# %d repeats of %d steps; %s\n", c.repeats, c.steps,
            quick ? "quick" : "full");
    char *studies[8];
    const int ns = bu_split(studies_s ? studies_s : def_studies, studies, 8);
    const double t0 = bu_now();
    for (int si = 0; si < ns; si++) {
        FILE *f = open_csv(out, studies[si]);
        char spec[64];
        for (int ti = 0; ti < c.n_threads; ti++) {
            const int thr = c.threads[ti];
            if (strcmp(studies[si], "width") == 0) {
                const int *v = quick ? widths_q : widths;
                const int n = quick ? 3 : (int)(sizeof widths / sizeof *widths);
                for (int i = 0; i < n; i++) {
                    snprintf(spec, sizeof spec, "784-%d-10", v[i]);
                    point("width", spec, v[i], 128, thr, &c);
                }
            } else if (strcmp(studies[si], "depth") == 0) {
                const int *v = quick ? depths_q : depths;
                const int n = quick ? 5 : (int)(sizeof depths / sizeof *depths);
                for (int i = 0; i < n; i++) {
                    snprintf(spec, sizeof spec, "784-240x%d-10", v[i]);
                    point("depth", spec, v[i], 128, thr, &c);
                }
            } else if (strcmp(studies[si], "batch") == 0) {
                const int *v = quick ? batches_q : batches;
                const int n = quick ? 3 : (int)(sizeof batches / sizeof *batches);
                static const char *const nets[2] = {"784-1000-10", "784-240x7-10"};
                for (int k = 0; k < 2; k++)
                    for (int i = 0; i < n; i++)
                        point("batch", nets[k], v[i], v[i], thr, &c);
            } else {
                fprintf(stderr, "bench_scaling: unknown study '%s' (width, depth, batch)\n",
                        studies[si]);
                return 2;
            }
        }
        flush_rows(f);
        fclose(f);
    }
    fprintf(stderr, "# done in %.0f s\n", bu_now() - t0);
    return 0;
}
