/*
 * bench_layer_parallel.c -- are layer-parallel weight GEMMs worth it?
 *
 * After the error phase of a step the layers' weight-gradient GEMMs are
 * independent.  With n > 1 threads the library either gives each GEMM all
 * n OpenBLAS threads in turn ("BLAS-threaded"), or sets OpenBLAS to one
 * thread and runs the layers side by side on its own pool, each layer on
 * one core ("layer-parallel").  plan_layers in src/train.c decides (AUTO):
 * layer-parallel when a greedy assignment of the layers to the threads by
 * multiply-adds comes out even (the busiest thread within 1.15x of its
 * share), or when most of the multiply-adds are long sums (see
 * reduction_share below).  The internal field net->layer_parallel forces either, so this
 * program links the internal static library (fa_internal_dep).
 *
 * For each network (784-1000-10, 784-240xD-10 for D = 1, 3, 7, 15, LeNet at
 * batch 64 and 128) and rule (BP, DFA), three identical networks -- NEVER,
 * ALWAYS, AUTO -- train interleaved (every repeat runs each for a block of
 * steps, the order rotating), at 2 threads.
 *
 * Output: CSV on stdout
 *   arch,rule,optimizer,threads,batch,never_ms,always_ms,auto_ms,
 *   always_over_never,q1,q3,winner,auto_plan,auto_right,reduction_share,
 *   balance_plan,balance_right
 * always_over_never is the median over repeats of the per-repeat ratio
 * (q1, q3 its quartiles); winner is "always" or "never" when the
 * interquartile range excludes 1, else "tie"; auto_plan is what AUTO
 * chooses (plan_layers' criterion, recomputed here from the shapes) and
 * auto_right says whether that is the winner (a tie counts as right);
 * reduction_share is the long sums' share of the multiply-adds, and
 * balance_plan and balance_right do the same as auto_plan and auto_right
 * for the balance test alone (the rule before long sums were counted).
 * Then on stderr DFA/BP per mode on each network against the FLOP
 * prediction.
 *
 * Usage: bench_layer_parallel [--quick] [--threads N] [--rules LIST]
 *                             [--opts LIST] [--arch LIST] [--repeats N]
 *                             [--steps N] [--batch N]
 * (--batch: every network at that batch instead of 128, and LeNet's 64
 * and 128)
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "internal.h"

#define MAX_LIST 16

static const char *const default_archs[] = {
    "784-1000-10", "784-240-10", "784-240x3-10", "784-240x7-10", "784-240x15-10", "lenet",
};
static const char lenet_spec[] = "1x28x28-c6k5p2-m2-c16k5-m2-c120k5-84-10";

static const char *const mode_name[3] = {"auto", "never", "always"};

/* plan_layers' balance test (src/train.c), recomputed from the shapes:
 * every layer with parameters has an error under BP and DFA. */
static int balanced(const bu_arch *a, int parts, int32_t m)
{
    double load[64] = {0}, total = 0;
    for (int32_t l = 1; l <= a->L; l++) {
        const bu_layer *ly = &a->layer[l];
        if (ly->w_rows == 0)
            continue;
        const double cost = (double)ly->w_rows * ly->w_cols * (double)bu_cols(ly, m);
        int best = 0;
        for (int k = 1; k < parts; k++)
            best = load[k] < load[best] ? k : best;
        load[best] += cost;
        total += cost;
    }
    double worst = 0;
    for (int k = 0; k < parts; k++)
        worst = load[k] > worst ? load[k] : worst;
    return worst <= 1.15 * total / parts;
}

/* plan_layers' second test (long_sums in src/train.c): layer-parallel also
 * when the weight GEMMs are reduction-dominated -- most of their
 * multiply-adds in layers whose GEMM dW (m, n) = dA (m, k) X^T has
 * k >= 4 max(m, n), as a convolution's k = H_out W_out batch.  OpenBLAS divides a GEMM among its
 * threads by m and n, so a small output with a long k (LeNet's first layer:
 * 6 x 25 with k = 100352 at batch 128) gains nothing from more threads,
 * while two such GEMMs side by side use both cores.  Returns the share of
 * the multiply-adds in such layers. */
static double reduction_share(const bu_arch *a, int32_t m)
{
    double red = 0, total = 0;
    for (int32_t l = 1; l <= a->L; l++) {
        const bu_layer *ly = &a->layer[l];
        if (ly->w_rows == 0)
            continue;
        const double k = (double)bu_cols(ly, m);
        const double cost = (double)ly->w_rows * ly->w_cols * k;
        const double mn = ly->w_rows > ly->w_cols ? ly->w_rows : ly->w_cols;
        total += cost;
        if (k >= 4.0 * mn)
            red += cost;
    }
    return total > 0 ? red / total : 0;
}

static int lookup(int32_t type, const char *name)
{
    int32_t v = 0;
    if (fa_enum_lookup(type, name, &v) != FA_OK) {
        fprintf(stderr, "bench_layer_parallel: %s\n", fa_last_error());
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    int quick = 0, threads = 2, repeats = -1, steps = -1, batch = 0;
    char *rules_s = NULL, *opts_s = NULL, *arch_s = NULL;
    for (int i = 1; i < argc; i++) {
        const int more = i + 1 < argc;
        if (strcmp(argv[i], "--quick") == 0)
            quick = 1;
        else if (more && strcmp(argv[i], "--threads") == 0)
            threads = atoi(argv[++i]);
        else if (more && strcmp(argv[i], "--rules") == 0)
            rules_s = argv[++i];
        else if (more && strcmp(argv[i], "--opts") == 0)
            opts_s = argv[++i];
        else if (more && strcmp(argv[i], "--arch") == 0)
            arch_s = argv[++i];
        else if (more && strcmp(argv[i], "--repeats") == 0)
            repeats = atoi(argv[++i]);
        else if (more && strcmp(argv[i], "--steps") == 0)
            steps = atoi(argv[++i]);
        else if (more && strcmp(argv[i], "--batch") == 0)
            batch = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--quick] [--threads N] [--rules LIST] [--opts LIST] "
                            "[--arch LIST] [--repeats N] [--steps N] [--batch N]\n", argv[0]);
            return 2;
        }
    }
    if (repeats < 0)
        repeats = quick ? 7 : 31;
    if (steps < 0)
        steps = quick ? 2 : 4;
    if (threads < 2 || threads > 64 || repeats < 1 || steps < 1 || batch < 0 || batch > 65536) {
        fprintf(stderr, "bench_layer_parallel: threads in 2..64, repeats and steps >= 1, "
                        "batch in 1..65536\n");
        return 2;
    }
    char def_rules[] = "bp,dfa", def_opts[] = "sgd";
    char *item[MAX_LIST], *archs[MAX_LIST];
    int32_t rules[MAX_LIST], optims[MAX_LIST];
    int n_rules = bu_split(rules_s ? rules_s : def_rules, item, MAX_LIST);
    for (int i = 0; i < n_rules; i++)
        rules[i] = lookup(FA_ENUM_RULE, item[i]);
    int n_opts = bu_split(opts_s ? opts_s : def_opts, item, MAX_LIST);
    for (int i = 0; i < n_opts; i++)
        optims[i] = lookup(FA_ENUM_OPTIMIZER, item[i]);
    int n_arch = 0;
    if (arch_s) {
        n_arch = bu_split(arch_s, archs, MAX_LIST);
    } else {
        for (size_t i = 0; i < sizeof default_archs / sizeof *default_archs; i++)
            archs[n_arch++] = (char *)(uintptr_t)default_archs[i];
    }

    bu_print_setup("bench_layer_parallel");
    fprintf(stderr, "# %d threads; %d repeats of %d steps; NEVER, ALWAYS, AUTO interleaved\n",
            threads, repeats, steps);
    bu_must(fa_set_threads(threads), "fa_set_threads");
    printf("arch,rule,optimizer,threads,batch,never_ms,always_ms,auto_ms,always_over_never,"
           "q1,q3,winner,auto_plan,auto_right,reduction_share,balance_plan,balance_right\n");

    char dfa_bp[8192] = "";
    size_t used = 0;
    int wrong = 0, rows = 0, bal_wrong = 0;
    bu_arch *a = bu_malloc(sizeof *a);
    for (int ai = 0; ai < n_arch; ai++) {
        const int lenet = strcmp(archs[ai], "lenet") == 0;
        bu_arch_parse(a, lenet ? "lenet" : archs[ai], lenet ? lenet_spec : archs[ai]);
        const int32_t batches[2] = {64, 128};
        const int nb = lenet && batch == 0 ? 2 : 1;
        for (int bi = 0; bi < nb; bi++) {
            const int32_t m = batch > 0 ? batch : lenet ? batches[bi] : 128;
            const int64_t n0 = bu_arch_n(a, 0), nc = bu_arch_n(a, a->L);
            float *x = bu_malloc(sizeof *x * (size_t)(n0 * m));
            float *t = bu_malloc(sizeof *t * (size_t)(nc * m));
            bu_make_batch(x, n0, t, (int32_t)nc, m);
            const int bal_par = balanced(a, threads, m);
            const double red = reduction_share(a, m);
            const int auto_par = bal_par || red > 0.5;
            for (int oi = 0; oi < n_opts; oi++) {
                /* every rule x mode in one rotation */
                const int n = 3 * n_rules;
                bu_step_ctx *sc = bu_malloc(sizeof *sc * (size_t)n);
                bu_fn *fn = bu_malloc(sizeof *fn * (size_t)n);
                void **ctx = bu_malloc(sizeof *ctx * (size_t)n);
                double **times = bu_malloc(sizeof *times * (size_t)n);
                for (int r = 0; r < n_rules; r++)
                    for (int mo = 0; mo < 3; mo++) {
                        const int i = 3 * r + mo;
                        fa_net *net = bu_net(a, rules[r], optims[oi], 42u);
                        net->layer_parallel = mo == 0   ? FA_LAYER_PARALLEL_AUTO
                                              : mo == 1 ? FA_LAYER_PARALLEL_NEVER
                                                        : FA_LAYER_PARALLEL_ALWAYS;
                        bu_must(fa_net_reserve(net, m), "fa_net_reserve");
                        sc[i] = (bu_step_ctx){net, x, t, (int32_t)n0, (int32_t)nc, m};
                        fn[i] = bu_train_step;
                        ctx[i] = &sc[i];
                        times[i] = bu_malloc(sizeof(double) * (size_t)repeats);
                        for (int w = 0; w < 3; w++)
                            bu_train_step(&sc[i]);
                    }
                bu_time_interleaved(n, fn, ctx, 1, repeats, steps, times);
                double *ratio = bu_malloc(sizeof(double) * (size_t)repeats);
                for (int r = 0; r < n_rules; r++) {
                    double *ta = times[3 * r], *tn = times[3 * r + 1], *tl = times[3 * r + 2];
                    for (int k = 0; k < repeats; k++)
                        ratio[k] = tl[k] / tn[k];
                    double q1, med, q3;
                    bu_quartiles(ratio, repeats, &q1, &med, &q3);
                    const char *winner = q3 < 1.0 ? "always" : q1 > 1.0 ? "never" : "tie";
                    const int right = strcmp(winner, "tie") == 0 ||
                                      (strcmp(winner, "always") == 0) == auto_par;
                    const int bal_right = strcmp(winner, "tie") == 0 ||
                                          (strcmp(winner, "always") == 0) == bal_par;
                    wrong += !right;
                    bal_wrong += !bal_right;
                    rows++;
                    double ms[3];
                    for (int mo = 0; mo < 3; mo++) {
                        double *v = bu_malloc(sizeof(double) * (size_t)repeats);
                        memcpy(v, times[3 * r + mo], sizeof(double) * (size_t)repeats);
                        ms[mo] = 1e3 * bu_median(v, repeats);
                        free(v);
                    }
                    (void)ta;
                    printf("%s,%s,%s,%d,%d,%.4f,%.4f,%.4f,%.3f,%.3f,%.3f,%s,%s,%s,%.2f,%s,%s\n",
                           a->name, fa_enum_name(FA_ENUM_RULE, rules[r]),
                           fa_enum_name(FA_ENUM_OPTIMIZER, optims[oi]), threads, (int)m, ms[1],
                           ms[2], ms[0], med, q1, q3, winner,
                           auto_par ? "layer-parallel" : "blas-threaded", right ? "yes" : "no",
                           red, bal_par ? "layer-parallel" : "blas-threaded",
                           bal_right ? "yes" : "no");
                    fflush(stdout);
                }
                /* DFA/BP per mode, if both ran */
                int ib = -1, id = -1;
                for (int r = 0; r < n_rules; r++) {
                    ib = rules[r] == FA_RULE_BP ? r : ib;
                    id = rules[r] == FA_RULE_DFA ? r : id;
                }
                if (ib >= 0 && id >= 0 && used < sizeof dfa_bp) {
                    const double pred = bu_step_flops(a, BU_HIDDEN_DIRECT, m) /
                                        bu_step_flops(a, BU_HIDDEN_CHAIN, m);
                    used += (size_t)snprintf(dfa_bp + used, sizeof dfa_bp - used,
                                             "# %-14s batch %3d %-7s", a->name, (int)m,
                                             fa_enum_name(FA_ENUM_OPTIMIZER, optims[oi]));
                    for (int mo = 0; mo < 3 && used < sizeof dfa_bp; mo++) {
                        for (int k = 0; k < repeats; k++)
                            ratio[k] = times[3 * id + mo][k] / times[3 * ib + mo][k];
                        double q1, med, q3;
                        bu_quartiles(ratio, repeats, &q1, &med, &q3);
                        used += (size_t)snprintf(dfa_bp + used, sizeof dfa_bp - used,
                                                 "  %s %.2f (%.2f-%.2f)", mode_name[mo], med,
                                                 q1, q3);
                    }
                    if (used < sizeof dfa_bp)
                        used += (size_t)snprintf(dfa_bp + used, sizeof dfa_bp - used,
                                                 "  FLOP prediction %.2f\n", pred);
                }
                free(ratio);
                for (int i = 0; i < n; i++) {
                    fa_net_free(sc[i].net);
                    free(times[i]);
                }
                free(sc);
                free(fn);
                free(ctx);
                free(times);
            }
            free(x);
            free(t);
        }
    }
    fprintf(stderr, "# DFA/BP step time per mode (median of per-repeat ratios, quartiles):\n%s",
            dfa_bp);
    fprintf(stderr, "# AUTO picked the winner (or a tie) in %d of %d rows; the balance test alone "
                    "in %d\n", rows - wrong, rows, rows - bal_wrong);
    free(a);
    return 0;
}
