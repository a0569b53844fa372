/*
 * bench_util.h -- shared by the C benchmarks (bench_step, bench_scaling,
 * bench_layer_parallel): networks from the library's spec text, the GEMM
 * limit of a step, interleaved timing, small helpers.
 *
 * The GEMM limit
 * --------------
 * A step's matrix products, called directly through cblas_sgemm with the
 * shapes and transposes the library's lowering uses, on buffers of the same
 * sizes: what no implementation on this BLAS can beat.  Per layer with
 * parameters, with K = w_cols (n_{l-1} for a dense layer, C_in*kh*kw for a
 * convolution), R = w_rows (n_l, or C_out) and P = H_out*W_out*m columns
 * (m for a dense layer):
 *   forward       A  (R, P) = W (R, K)   X (K, P)          NN
 *   weight grad   dW (R, K) = dA (R, P)  X^T (P, K)         NT
 *   input error   dX (K, P) = B^T (K, R) dA (R, P)          TN   (CHAIN)
 * where X is the layer's input or its lowering (im2col).  How the hidden
 * errors arise decides which products a rule needs:
 *   CHAIN   (BP and every LAYER-kind rule): all three, the input error for
 *           every layer with parameters above the lowest one;
 *   DIRECT  (DFA, DRTP, SDFA): forward and weight gradients, and instead of
 *           the input errors one product D (n_direct, m) = G^T (n_direct, c)
 *           s (c, m) against the stacked G of every hidden layer with
 *           parameters (n_direct the sum of their output features);
 *   NONE    (shallow): the forward products and the last layer's weight
 *           gradient.
 * Everything else a step does -- im2col and col2im, pooling, bias and
 * activation, the loss, f', the optimiser, a derived rule's sign pass, a
 * learned rule's own step (KP's passes, WM's mirror products, BRSF's
 * redraw) -- is not in the limit and counts against the step.
 */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "feedbackalign.h"

/* Deepest network the benchmarks build: 100 hidden layers and the output
 * (the depth study), with room to spare. */
#define BU_MAX_LAYERS 128

/* ------------------------------------------------------------ small helpers */

double bu_now(void);
/* Median of v[0..n-1]; sorts v. */
double bu_median(double *v, int n);
/* Quartiles (linear interpolation) and median of v, which is not changed. */
void bu_quartiles(const double *v, int n, double *q1, double *med, double *q3);
/* Deterministic uniform [0, 1) without touching the library's RNG. */
float bu_uniform(void);
void bu_seed(uint64_t seed);
void *bu_malloc(size_t bytes);
/* A failing library call outside a check is a broken benchmark: name the
 * call, print the library's message, exit 2. */
void bu_must(int rc, const char *what);
/* x (n0, batch) uniform in [0, 1); t (c, batch) one-hot. */
void bu_make_batch(float *x, int64_t n0, float *t, int32_t c, int32_t batch);
/* Split a comma-separated list in place; returns the count (<= max). */
int bu_split(char *list, char **item, int max);

/* ------------------------------------------------------------ architectures */

typedef struct bu_layer {
    int32_t kind, act, units, kh, kw, stride, pad;
    int32_t in_c, in_h, in_w, out_c, out_h, out_w;
    int64_t n_in, n_out;     /* features of input and output */
    int32_t w_rows, w_cols;  /* W's shape; 0, 0 for pooling */
} bu_layer;

typedef struct bu_arch {
    char name[64];   /* as printed, e.g. "784-240x7-10" or "lenet" */
    char spec[512];  /* the text form fa_spec_parse reads */
    int32_t L;
    bu_layer layer[BU_MAX_LAYERS + 1]; /* 1..L */
} bu_arch;

/* Resolve spec text (hidden layers tanh, the last identity) through the
 * library's parser; name may be NULL (then the spec is the name).  Exits 2
 * on a bad spec. */
void bu_arch_parse(bu_arch *a, const char *name, const char *spec);
/* Widths n_0 ... n_L (features). */
int64_t bu_arch_n(const bu_arch *a, int32_t l);
/* Lowest layer with parameters. */
int32_t bu_arch_first_param(const bu_arch *a);
/* Columns of layer l's output matrix for a batch of m: H_out*W_out*m. */
int64_t bu_cols(const bu_layer *ly, int32_t m);

/* A network of the architecture with softmax cross-entropy, the given rule
 * and optimiser, default hyperparameters. */
fa_net *bu_net(const bu_arch *a, int32_t rule, int32_t opt, uint64_t seed);

/* ------------------------------------------------------------------- rules */

enum {
    BU_HIDDEN_CHAIN = FA_HIDDEN_CHAIN,
    BU_HIDDEN_DIRECT = FA_HIDDEN_DIRECT,
    BU_HIDDEN_NONE = FA_HIDDEN_NONE
};

/* How `rule` produces its hidden errors (above): fa_rule_hidden. */
int bu_rule_hidden(int32_t rule);
/* "chain", "direct" or "none": the library's name of the fa_hidden_mode. */
const char *bu_hidden_name(int hidden);
/* 1 if the rule sends its errors back through W itself (exact backprop: a
 * CHAIN rule without feedback), so that its limit reads W, not a separate
 * matrix of W's shape, in the input-error products. */
int bu_rule_back_w(int32_t rule);

/* ---------------------------------------------------------------- the limit */

typedef struct bu_gemm {
    int ta, tb;          /* 0 as stored, 1 transposed */
    int m, n, k, lda, ldb, ldc;
    float alpha, beta;
    const float *a, *b;
    float *c;
} bu_gemm;

typedef struct bu_plan {
    bu_gemm *op;
    int n_ops, cap;
    double flops;
    float **buf;         /* every buffer, freed by bu_plan_free */
    int n_buf, buf_cap;
} bu_plan;

/* The products of one step of a rule with this hidden mode at batch m
 * (back_w: the input errors go through W itself, as under BP; else through
 * a separate matrix of W's shape, as FA's F or a derived rule's B; sgd:
 * the weight gradients update W in place, W <- W - lr dW with GEMM alpha =
 * -lr and beta = 1, as the library's fused plain-SGD step does, else they
 * are written to a separate buffer with beta = 0).  The same calls the
 * library makes, so that memory-bound products (small batches) move the
 * same bytes.
 * Cross-checks the plan's FLOPs against bu_step_flops (exit 2 if they
 * differ).  Operands are buffers filled once with small random values that
 * no product writes, outputs separate, so no product ever sees
 * denormals. */
void bu_plan_build(bu_plan *p, const bu_arch *a, int hidden, int back_w, int sgd,
                   int32_t m);
void bu_plan_run(const bu_plan *p);
void bu_plan_free(bu_plan *p);
/* The step's GEMM FLOPs by the cost model, independently of the plan:
 * forward sum 2 R K P, weight gradients the same, CHAIN's input errors the
 * same less the lowest parameter layer, DIRECT's product 2 c n_direct m,
 * NONE forward and the last layer's gradient only. */
double bu_step_flops(const bu_arch *a, int hidden, int32_t m);

/* --------------------------------------------------------------- timing */

/* Candidates timed interleaved: in every repeat each runs `calls` times back
 * to back and its seconds per call are recorded, in an order that rotates
 * by groups of `group` consecutive candidates from repeat to repeat (so a
 * step and its limit, group 2, stay back to back and none always follows
 * the same other).  times[c][rep]. */
typedef void (*bu_fn)(void *ctx);
void bu_time_interleaved(int n, bu_fn const *fn, void *const *ctx, int group,
                         int repeats, int calls, double *const *times);

/* One fa_net_train_step on a fixed batch (a bu_fn). */
typedef struct bu_step_ctx {
    fa_net *net;
    const float *x, *t;
    int32_t ldx, ldt, m;
} bu_step_ctx;
void bu_train_step(void *ctx);
/* bu_plan_run as a bu_fn. */
void bu_plan_fn(void *ctx);

/* OpenBLAS's idle worker threads spin (sched_yield) for 2^OPENBLAS_THREAD_TIMEOUT
 * cycles after a threaded GEMM before they sleep; a benchmark that times a
 * BLAS-threaded limit next to a step whose own threads do the work (a
 * convolutional network at 2+ threads) would time the step against those
 * spinners.  Unless the variable is set, re-run this program with it at 4
 * (sleep at once), which OpenBLAS reads only when it loads.  Returns only
 * if the variable was set already or the re-run failed. */
void bu_quiet_blas_workers(char **argv);

/* Print the BLAS and the load average (stderr, '#' lines). */
void bu_print_setup(const char *prog);

#endif
