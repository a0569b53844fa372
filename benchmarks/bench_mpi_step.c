/*
 * bench_mpi_step -- where the time of a data-parallel step goes, and
 * whether splitting its all-reduce pays.  Run under mpirun:
 *
 *   mpirun -np 2 build/benchmarks/bench_mpi_step [options]
 *
 * A step of fa-train-mpi is: fa_net_compute_update on this rank's shard of
 * the global batch, an agreement (a 3-int MPI_Allreduce), the weighting
 * pass (update *= shard / batch), the all-reduce of the update, and
 * fa_net_apply_update.  The all-reduce is done in one of these ways:
 *
 *   blocking    one MPI_Allreduce of the whole update (what fa-train-mpi
 *               does)
 *   chunks-K    K contiguous chunks: each chunk is weighted and its
 *               MPI_Iallreduce posted at once, the next chunk weighted
 *               while it is in flight (MPI_Testall between chunks drives
 *               progress), then MPI_Waitall -- the only computation there
 *               is to overlap the reduction with, since the library
 *               computes the whole update in one call
 *
 * Before anything is timed, every variant's summed update is checked
 * against the update one process computes on the whole batch
 * (||u_sum - u_one|| <= 1e-5 ||u_one||: the same terms summed in another
 * order; float rounding gives about 1e-7); a disagreement stops the
 * program with status 1 and nothing is timed.
 *
 * Then, per architecture and variant, blocks of --steps steps are timed,
 * --repeats times, the variants interleaved (so that load from other
 * processes falls on all alike); each phase is timed on rank 0 and the
 * median over blocks is reported in ms per step.  The step applies the
 * summed update, as training does, so the network moves on.
 *
 * With -np 1 it also times fa_net_train_step on the whole batch (the
 * one-process step) and fa_net_compute_update at shard sizes batch/P for
 * P = 1, 2, 4, 8, 16, 32 (--model): the compute side of the scaling model in
 * benchmarks/README.md.
 *
 * Options: --arch wide|deep|all (784-1000-10, 784-240x7-10), --batch 128,
 * --rule bp|fa|dfa|..., --opt adam|sgd|..., --chunks 4,16,64, --steps 8,
 * --repeats 15, --check-only, --model.  Synthetic data of Fashion-MNIST's
 * shape (784 inputs in [0, 1), 10 one-hot classes).  Output: a table on
 * stdout (rank 0), the check on stderr.  Exit: 0, 1 (check failed),
 * 2 (usage or set-up).
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "feedbackalign.h"

#define PROG "bench_mpi_step"
#define MAX_VARIANTS 16
#define MAX_REPEATS 1000

static int rank_, size_;

static double
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return 1e3 * (double)ts.tv_sec + 1e-6 * (double)ts.tv_nsec;
}

static void
die(const char *what)
{
    fprintf(stderr, PROG ": rank %d: %s: %s\n", rank_, what, fa_last_error());
    MPI_Abort(MPI_COMM_WORLD, 2);
}

static void *
xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL) {
        fprintf(stderr, PROG ": rank %d: out of memory\n", rank_);
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    return p;
}

static uint64_t
mix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double
median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

typedef struct options {
    const char *arch;
    int32_t batch, rule, opt, steps, repeats;
    int chunks[MAX_VARIANTS];
    int n_chunks;
    int check_only, model;
} options;

/* One network and the batch: identical on every rank (same seed). */
typedef struct bench {
    fa_net *net;
    int64_t n;         /* parameters */
    int32_t lo, count; /* this rank's shard */
    float *x, *t;      /* the whole batch */
    float *u;          /* the update (n) */
} bench;

static void
make_bench(const options *o, const char *spec_text, bench *b)
{
    fa_spec *spec = NULL;
    if (fa_spec_parse(&spec, spec_text, FA_ACT_TANH, FA_ACT_IDENTITY) != FA_OK)
        die("fa_spec_parse");
    if (fa_net_create_from_spec(&b->net, spec, FA_LOSS_SOFTMAX_CE, 1) != FA_OK)
        die("fa_net_create_from_spec");
    fa_spec_free(spec);
    if (fa_net_set_rule(b->net, o->rule) != FA_OK ||
        fa_net_set_optimizer(b->net, o->opt) != FA_OK ||
        fa_net_set_hparam(b->net, FA_HP_LR, 1e-4) != FA_OK ||
        fa_net_reserve(b->net, o->batch) != FA_OK)
        die("set-up");
    fa_net_param_count(b->net, &b->n);
    int64_t a = (int64_t)o->batch * rank_ / size_, e = (int64_t)o->batch * (rank_ + 1) / size_;
    b->lo = (int32_t)a;
    b->count = (int32_t)(e - a);
    b->x = xmalloc(sizeof *b->x * 784 * (size_t)o->batch);
    b->t = xmalloc(sizeof *b->t * 10 * (size_t)o->batch);
    b->u = xmalloc(sizeof *b->u * (size_t)b->n);
    uint64_t s = 42;
    for (size_t i = 0; i < 784 * (size_t)o->batch; i++)
        b->x[i] = (float)(mix(&s) >> 40) * 0x1.0p-24f;
    memset(b->t, 0, sizeof *b->t * 10 * (size_t)o->batch);
    for (int32_t j = 0; j < o->batch; j++)
        b->t[10 * (size_t)j + mix(&s) % 10] = 1.0f;
}

static void
free_bench(bench *b)
{
    fa_net_free(b->net);
    free(b->x);
    free(b->t);
    free(b->u);
}

/* The shard's update, weighted and summed with variant v (0: blocking,
 * else v chunks).  Phase times in ms: [0] compute, [1] agreement, [2]
 * weighting + all-reduce. */
static void
shared_update(const options *o, bench *b, int chunks, double *ph)
{
    double t0 = now_ms();
    float loss = 0.0f;
    if (b->count > 0) {
        if (fa_net_compute_update(b->net, b->x + 784 * (size_t)b->lo, 784,
                                  b->t + 10 * (size_t)b->lo, 10, b->count, b->u, b->n,
                                  &loss) != FA_OK)
            die("fa_net_compute_update");
    } else {
        memset(b->u, 0, sizeof *b->u * (size_t)b->n);
    }
    double t1 = now_ms();
    int in[3] = {0, 0, 0}, out[3];
    MPI_Allreduce(in, out, 3, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    double t2 = now_ms();
    const float w = (float)((double)b->count / (double)o->batch);
    if (chunks <= 1) {
        for (int64_t i = 0; i < b->n; i++)
            b->u[i] *= w;
        MPI_Allreduce(MPI_IN_PLACE, b->u, (int)b->n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    } else {
        MPI_Request req[256];
        int k = chunks > 256 ? 256 : chunks;
        for (int c = 0; c < k; c++) {
            int64_t a = b->n * c / k, e = b->n * (c + 1) / k;
            for (int64_t i = a; i < e; i++)
                b->u[i] *= w;
            MPI_Iallreduce(MPI_IN_PLACE, b->u + a, (int)(e - a), MPI_FLOAT, MPI_SUM,
                           MPI_COMM_WORLD, &req[c]);
            int done = 0;
            MPI_Testall(c + 1, req, &done, MPI_STATUSES_IGNORE);
        }
        MPI_Waitall(k, req, MPI_STATUSES_IGNORE);
    }
    double t3 = now_ms();
    ph[0] = t1 - t0;
    ph[1] = t2 - t1;
    ph[2] = t3 - t2;
}

/* The check: each variant's sum against one process's update of the whole
 * batch, on copies of the network (nothing applied).  True if all agree. */
static int
check(const options *o, bench *b, const char *arch)
{
    float *one = xmalloc(sizeof *one * (size_t)b->n);
    if (fa_net_compute_update(b->net, b->x, 784, b->t, 10, o->batch, one, b->n, NULL) != FA_OK)
        die("fa_net_compute_update (whole batch)");
    double nref = 0.0;
    for (int64_t i = 0; i < b->n; i++)
        nref += (double)one[i] * (double)one[i];
    int ok = 1;
    for (int v = 0; v <= o->n_chunks; v++) {
        int chunks = v == 0 ? 1 : o->chunks[v - 1];
        double ph[3];
        shared_update(o, b, chunks, ph);
        double d = 0.0;
        for (int64_t i = 0; i < b->n; i++)
            d += ((double)b->u[i] - (double)one[i]) * ((double)b->u[i] - (double)one[i]);
        double rel = sqrt(d / nref);
        /* every rank must hold the same sum: the same error against the
         * same reference, to the last bit */
        double mx = rel, mn = rel;
        MPI_Allreduce(MPI_IN_PLACE, &mx, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        MPI_Allreduce(MPI_IN_PLACE, &mn, 1, MPI_DOUBLE, MPI_MIN, MPI_COMM_WORLD);
        int good = mx <= 1e-5 && mx == mn;
        if (rank_ == 0)
            fprintf(stderr, "# check %s %s, %d ranks, %s: ||u_sum - u_one|| / ||u_one|| = %.2e%s%s\n",
                    arch, fa_enum_name(FA_ENUM_RULE, o->rule), size_,
                    chunks <= 1 ? "blocking" : "chunks", mx,
                    mx == mn ? "" : " (differs between ranks)", good ? "  ok" : "  FAILED");
        ok &= good;
    }
    free(one);
    return ok;
}

static void
run_arch(const options *o, const char *name, const char *spec)
{
    bench b;
    memset(&b, 0, sizeof b);
    make_bench(o, spec, &b);
    if (!check(o, &b, name)) {
        if (rank_ == 0)
            fprintf(stderr, PROG ": the summed update disagrees with one process's: nothing timed\n");
        MPI_Finalize();
        exit(1);
    }
    if (o->check_only) {
        free_bench(&b);
        return;
    }
    int nv = 1 + o->n_chunks;
    /* per variant and block: ms per step of each phase, and the total */
    enum { COMPUTE, AGREE, REDUCE, APPLY, TOTAL, NPH };
    static double t[MAX_VARIANTS][NPH][MAX_REPEATS];
    for (int r = 0; r < o->repeats; r++) {
        for (int v = 0; v < nv; v++) {
            int chunks = v == 0 ? 1 : o->chunks[v - 1];
            double sum[NPH] = {0};
            MPI_Barrier(MPI_COMM_WORLD);
            double s0 = now_ms();
            for (int k = 0; k < o->steps; k++) {
                double ph[3];
                shared_update(o, &b, chunks, ph);
                double a0 = now_ms();
                if (fa_net_apply_update(b.net, b.u, b.n) != FA_OK)
                    die("fa_net_apply_update");
                sum[APPLY] += now_ms() - a0;
                sum[COMPUTE] += ph[0];
                sum[AGREE] += ph[1];
                sum[REDUCE] += ph[2];
            }
            sum[TOTAL] = now_ms() - s0;
            for (int p = 0; p < NPH; p++)
                t[v][p][r] = sum[p] / o->steps;
        }
    }
    double one_step = NAN;
    if (size_ == 1) {
        double *ts = xmalloc(sizeof *ts * (size_t)o->repeats);
        for (int r = 0; r < o->repeats; r++) {
            double s0 = now_ms();
            for (int k = 0; k < o->steps; k++)
                if (fa_net_train_step(b.net, b.x, 784, b.t, 10, o->batch, NULL) != FA_OK)
                    die("fa_net_train_step");
            ts[r] = (now_ms() - s0) / o->steps;
        }
        one_step = median(ts, o->repeats);
        free(ts);
    }
    if (rank_ == 0) {
        printf("%-13s %5s %5s %-10s %9s %9s %9s %9s %9s %8s\n", "arch", "ranks", "shard",
               "all-reduce", "step ms", "compute", "agree", "reduce", "apply", "reduce %");
        for (int v = 0; v < nv; v++) {
            double m[NPH];
            for (int p = 0; p < NPH; p++)
                m[p] = median(t[v][p], o->repeats);
            char var[16];
            if (v == 0)
                snprintf(var, sizeof var, "blocking");
            else
                snprintf(var, sizeof var, "chunks-%d", o->chunks[v - 1]);
            printf("%-13s %5d %5d %-10s %9.3f %9.3f %9.3f %9.3f %9.3f %7.1f%%\n", name, size_,
                   b.count, var, m[TOTAL], m[COMPUTE], m[AGREE], m[REDUCE], m[APPLY],
                   100.0 * m[REDUCE] / m[TOTAL]);
        }
        printf("# %s: %lld parameters, all-reduce of %.2f MB per step\n", name,
               (long long)b.n, 4e-6 * (double)b.n);
        if (size_ == 1)
            printf("# %s: fa_net_train_step on the whole batch of %d: %.3f ms\n", name,
                   o->batch, one_step);
    }
    if (size_ == 1 && o->model && rank_ == 0) {
        /* compute_update at the shard of P processes, and apply */
        printf("# %s: compute per step at shard batch/P (one process, ms):", name);
        for (int p = 1; p <= 32 && o->batch / p >= 1; p *= 2) {
            int32_t m = o->batch / p;
            double *ts = xmalloc(sizeof *ts * (size_t)o->repeats);
            for (int r = 0; r < o->repeats; r++) {
                double s0 = now_ms();
                for (int k = 0; k < o->steps; k++)
                    if (fa_net_compute_update(b.net, b.x, 784, b.t, 10, m, b.u, b.n, NULL) != FA_OK)
                        die("fa_net_compute_update");
                ts[r] = (now_ms() - s0) / o->steps;
            }
            printf(" P=%d (%d): %.3f%s", p, m, median(ts, o->repeats), p < 32 && o->batch / (2 * p) >= 1 ? "," : "\n");
            free(ts);
        }
    }
    free_bench(&b);
}

static int
parse_options(int argc, char **argv, options *o)
{
    o->arch = "all";
    o->batch = 128;
    o->rule = FA_RULE_BP;
    o->opt = FA_OPT_ADAM;
    o->steps = 8;
    o->repeats = 15;
    o->chunks[0] = 4, o->chunks[1] = 16, o->chunks[2] = 64;
    o->n_chunks = 3;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--check-only") == 0) {
            o->check_only = 1;
        } else if (strcmp(a, "--model") == 0) {
            o->model = 1;
        } else if (v == NULL) {
            return 0;
        } else if (strcmp(a, "--arch") == 0) {
            o->arch = v, i++;
        } else if (strcmp(a, "--batch") == 0) {
            o->batch = atoi(v), i++;
        } else if (strcmp(a, "--steps") == 0) {
            o->steps = atoi(v), i++;
        } else if (strcmp(a, "--repeats") == 0) {
            o->repeats = atoi(v), i++;
        } else if (strcmp(a, "--rule") == 0) {
            if (fa_enum_lookup(FA_ENUM_RULE, v, &o->rule) != FA_OK)
                return 0;
            i++;
        } else if (strcmp(a, "--opt") == 0) {
            if (fa_enum_lookup(FA_ENUM_OPTIMIZER, v, &o->opt) != FA_OK)
                return 0;
            i++;
        } else if (strcmp(a, "--chunks") == 0) {
            o->n_chunks = 0;
            char buf[256];
            snprintf(buf, sizeof buf, "%s", v);
            for (char *s = strtok(buf, ","); s && o->n_chunks < MAX_VARIANTS - 1; s = strtok(NULL, ","))
                if (atoi(s) > 1)
                    o->chunks[o->n_chunks++] = atoi(s) > 256 ? 256 : atoi(s);
            i++;
        } else {
            return 0;
        }
    }
    return o->batch >= 1 && o->steps >= 1 && o->repeats >= 1 && o->repeats <= MAX_REPEATS;
}

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    options o;
    memset(&o, 0, sizeof o);
    if (!parse_options(argc, argv, &o)) {
        if (rank_ == 0)
            fprintf(stderr, "usage: mpirun -np P " PROG " [--arch wide|deep|all] [--batch N] "
                    "[--rule R] [--opt O] [--chunks K,K,...] [--steps N] [--repeats N] "
                    "[--check-only] [--model]\n");
        MPI_Finalize();
        return 2;
    }
    if (rank_ == 0 && !o.check_only) {
        char info[512];
        fa_blas_info(info, sizeof info, NULL);
        char lib[MPI_MAX_LIBRARY_VERSION_STRING];
        int len = 0;
        MPI_Get_library_version(lib, &len);
        lib[strcspn(lib, ",\n")] = '\0';
        printf("# %s; %s; %d ranks, batch %d, rule %s, optimiser %s, %d steps x %d repeats\n",
               info, lib, size_, o.batch, fa_enum_name(FA_ENUM_RULE, o.rule),
               fa_enum_name(FA_ENUM_OPTIMIZER, o.opt), o.steps, o.repeats);
    }
    if (strcmp(o.arch, "wide") == 0 || strcmp(o.arch, "all") == 0)
        run_arch(&o, "784-1000-10", "784-1000-10");
    if (strcmp(o.arch, "deep") == 0 || strcmp(o.arch, "all") == 0)
        run_arch(&o, "784-240x7-10", "784-240x7-10");
    MPI_Finalize();
    return 0;
}
