/*
 * internal.h -- private declarations shared by the library's source files
 * and its unit tests (which link the internal static library).  Nothing here
 * is exported from libfeedbackalign.so.
 *
 * The network is a stack of layers (fa_layer) whose kinds are described by
 * fa_layer_ops tables (src/layers/), trained by a rule described by an
 * fa_rule_desc table (src/rules/).  The core (net.c, train.c, feedback.c,
 * io.c) only ever reads those tables: a new layer kind or rule is one file
 * plus one row in src/layers/list.h or src/rules/list.h.
 */
#ifndef FA_INTERNAL_H
#define FA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "feedbackalign.h"

#define FA_N_ACTIVATIONS 5
#define FA_N_LOSSES 3
#define FA_N_RULES 11
#define FA_N_DFA_VARIANTS 2
#define FA_N_OPTIMIZERS 5
#define FA_N_DISTRIBUTIONS 3
#define FA_N_INITS 6
#define FA_N_HPARAMS 13
#define FA_N_LAYER_KINDS 4
#define FA_N_FEEDBACK_KINDS 3

/* Largest parameter count accepted: 2^40 floats (4 TiB) keeps every byte
 * count far from int64/size_t overflow. */
#define FA_MAX_PARAMS ((int64_t)1 << 40)

/* Values the training step may produce: a step whose results could exceed
 * this magnitude is refused before anything is written.  2^126 leaves a
 * factor 4 to FLT_MAX for the rounding of the float arithmetic that the
 * bounds (computed in double) do not see. */
#define FA_VALUE_LIMIT 8.507059173023462e37

/* The element-wise kernels are compiled for the baseline x86-64 (4 floats
 * per SSE vector) and, chosen at load time by the CPU (an ifunc), for AVX2
 * and AVX-512 (8 and 16 floats): the library stays one binary for every
 * x86-64 while the passes that bound a step's speed use the whole vector
 * width.  (Without FMA contraction: -std=c11 keeps each a*b+c rounded
 * twice, so the clones compute the same values.)  Only static functions
 * carry it: GCC gives the ifunc of an external function default visibility,
 * which would export it, so the shared kernels are thin wrappers around a
 * static clone. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define FA_KERNEL __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define FA_KERNEL
#endif

/* Most threads a handle uses (threads.c). */
#define FA_MAX_THREADS 64

/* When the weight GEMMs of the layers run side by side (train.c): when the
 * loads come out even (the default), never, or always -- the last two for
 * the benchmarks that measure the choice (benchmarks/, linked against the
 * internal library, set net->layer_parallel). */
enum { FA_LAYER_PARALLEL_AUTO = 0, FA_LAYER_PARALLEL_NEVER = 1, FA_LAYER_PARALLEL_ALWAYS = 2 };

typedef struct fa_net fa_net;
typedef struct fa_image_writer fa_image_writer;
typedef struct fa_pool fa_pool;

/* |x| as the bits of a non-negative float: they order like the magnitudes
 * (NaN and infinity above every finite value), so an unsigned max over them
 * is a max over |x| that vectorises with the loop it sits in.  The
 * element-wise passes fold it in to give the step its overflow bounds. */
static inline uint32_t fa_mag_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u & 0x7fffffffu;
}

/* The magnitude whose bits are m (infinity for the bits of NaN). */
static inline float fa_bits_mag(uint32_t m)
{
    float f;
    if (m > 0x7f800000u)
        m = 0x7f800000u;
    memcpy(&f, &m, sizeof f);
    return f;
}

/* ------------------------------------------------------------------ error.c */

/* Record the thread-local detail message ("function: text") and return
 * status, so a validation failure reads `return fa_fail(FA_ERR_ARG, ...)`. */
int fa_fail(int status, const char *func, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* -------------------------------------------------------------------- rng.c */

/* xoshiro256** seeded through splitmix64: fast, 256 bits of state that the
 * model file stores, identical streams on every platform. */
typedef struct fa_rng {
    uint64_t s[4];
} fa_rng;

void fa_rng_seed(fa_rng *rng, uint64_t seed);
uint64_t fa_rng_next(fa_rng *rng);
/* Uniform in [0, 1) with 24 random bits (exactly representable floats). */
float fa_rng_uniform(fa_rng *rng);
/* Standard normal by Box-Muller (one draw per call; no cached spare, so the
 * state alone determines the stream).  |draw| < 8.58 always. */
float fa_rng_normal(fa_rng *rng);

/* ------------------------------------------------------------------- blas.c */

/* The only wrappers around CBLAS; all column-major with standard semantics.
 * C (m, n) = alpha * op(A) * op(B) + beta * C, op(A) (m, k), op(B) (k, n).
 * trans_a / trans_b: 0 = as stored, 1 = transposed.  m, n, k may be 0. */
void fa_gemm(int trans_a, int trans_b, int32_t m, int32_t n, int32_t k,
             float alpha, const float *a, int32_t lda, const float *b,
             int32_t ldb, float beta, float *c, int32_t ldc);
/* y (m or n) = alpha * op(A) x + beta * y, A (m, n) with lda. */
void fa_gemv(int trans_a, int32_t m, int32_t n, float alpha, const float *a,
             int32_t lda, const float *x, float beta, float *y);
/* Dot product and 2-norm of length-n vectors (contiguous), in double. */
double fa_dot(int64_t n, const float *x, const float *y);
double fa_nrm2(int64_t n, const float *x);
/* OpenBLAS's thread count (1 for another BLAS), and setting it. */
int32_t fa_blas_threads(void);
void fa_blas_set_threads(int32_t n);

/* ------------------------------------------------------------- activation.c */

/* z (n, batch) with ld: z = f(z) in place. */
void fa_act_forward(int32_t act, float slope, float *z, int32_t n,
                    int32_t batch, int32_t ld);
/* z (rows, cols), contiguous: z = f(z + b), b (rows) broadcast along the
 * columns (b may be NULL: no bias).  The forward pass's one element-wise
 * pass after the GEMM.  Returns max |z| (infinity if any is NaN/inf). */
float fa_bias_act(int32_t act, float slope, float *z, const float *b,
                  int32_t rows, int64_t cols);
/* delta (n, batch) with lddelta *= f'(a), where f'(a) is computed from the
 * stored activation output z = f(a) (n, batch) with ldz: tanh 1-z^2, sigmoid
 * z(1-z), relu [z>0], leaky z>0 ? 1 : slope, identity 1.  Storing f(a)
 * rather than a saves re-evaluating tanh/sigmoid on the backward pass. */
void fa_act_deriv_mul(int32_t act, float slope, const float *z, int32_t ldz,
                      float *delta, int32_t lddelta, int32_t n, int32_t batch);
/* The backward pass's one element-wise pass for a layer: for the (rows,
 * cols) contiguous error d,
 *   d[:, j] = src[:, j] .* f'(z[:, j]) (if with_deriv) .* mask[:, j] (if mask)
 * and, if db != NULL, db += sum_j d[:, j] (the caller zeroes it first).
 * src has leading dimension ldsrc and may equal d (ldsrc == rows).  z, mask
 * are (rows, cols) contiguous.  Returns max |d| (infinity for NaN/inf). */
float fa_delta_finish(int32_t act, float slope, int with_deriv, const float *src,
                      int64_t ldsrc, const float *z, const float *mask, float *d,
                      int32_t rows, int64_t cols, float *db);

/* ------------------------------------------------------------------- loss.c */

/* Loss value (mean over batch, double accumulation) and, if dy != NULL,
 * dL/dy divided by batch.  For fused losses y are logits.  No validation:
 * fa_loss_eval in loss.c validates and then calls this. */
double fa_loss_compute(int32_t loss, const float *y, int32_t ldy,
                       const float *t, int32_t ldt, int32_t n, int32_t batch,
                       float *dy, int32_t lddy);
/* The loss's link applied in place to logits (softmax per column, sigmoid),
 * identity for MSE. */
void fa_loss_link(int32_t loss, float *y, int32_t n, int32_t batch, int32_t ld);

/* ------------------------------------------------------------------- init.c */

/* Fill w (count floats) by scheme for a layer with the given fans. */
void fa_init_weights_fill(fa_rng *rng, int32_t scheme, int32_t act, float *w,
                          int64_t count, double fan_in, double fan_out);
/* Fill count floats from dist with scale s (> 0). */
void fa_fill_random(fa_rng *rng, int32_t dist, double scale, float *p,
                    int64_t count);
/* The scales fa_net_set_feedback_init accepts for dist (0 = auto, or a
 * float whose draws cannot overflow). */
int fa_scale_valid(int32_t dist, double scale);

/* ------------------------------------------------------------- the layers */

/* One layer of a network, resolved from its spec: shapes, where its
 * parameters sit in the flat block, and its workspace views. */
typedef struct fa_layer {
    const struct fa_layer_ops *ops;
    int32_t kind;           /* fa_layer_kind */
    int32_t act;            /* fa_activation (identity for pooling) */
    int32_t units;          /* spec: dense outputs / conv out channels */
    int32_t kh, kw, stride, pad;
    int32_t in_c, in_h, in_w;    /* input image (dense: (n_in, 1, 1)) */
    int32_t out_c, out_h, out_w; /* output image */
    int32_t n_in, n_out;    /* features: c*h*w of input and output */
    int32_t w_rows, w_cols; /* W's shape, (0, 0) without parameters */
    int64_t w_off, b_off;   /* offsets of W and b in the parameter block */
    int64_t fb_off;         /* LAYER-kind feedback: offset of B_l, or -1 */
    int32_t dir_off;        /* DIRECT feedback: first column of G_l, or -1 */
    double dropout;         /* on this layer's output (hidden layers) */
    /* Bounds the last pass left: max |h| of the output the next layer saw,
     * max |delta| of the error (for the step's overflow bounds). */
    float hmax, dmax;
    int has_err;            /* the last pass computed this layer's error */
    int32_t part;           /* the thread its weight GEMM runs on (train.c) */

    /* Workspace views, valid for batches up to net->ws_batch. */
    float *z;       /* f(A) (n_out, m) */
    float *h;       /* the output as the next layer sees it: z, or hbuf */
    float *hbuf;    /* z .* mask when dropout ran in this pass */
    float *mask;    /* dropout mask (n_out, m): 0 or 1/(1-p) */
    float *delta;   /* this layer's error (n_out, m) */
    float *col;     /* the layer's lowering of its input (ops->col_floats) */
    int32_t *idx;   /* per-output indices kept by the layer (ops->idx_count) */
} fa_layer;

/* A layer kind (src/layers/): everything the core needs to build, run and
 * train it.  All data are column-major; an image batch of C channels is the
 * (C, H*W*m) matrix whose columns are pixels, which is the (C*H*W, m)
 * matrix of the public layout.  Hooks may be NULL where noted. */
typedef struct fa_layer_ops {
    const char *name;         /* fa_enum_name(FA_ENUM_LAYER, kind) */
    const char *description;
    int has_params;           /* W and b (then an activation applies) */
    /* From ly's spec fields (units, kh, kw, stride, pad, act) and input
     * shape, fill the output shape and w_rows/w_cols; refuse (with a
     * message through fa_fail naming `what`, e.g. "layer 3") what cannot be
     * built.  Never allocates. */
    int (*setup)(fa_layer *ly, const char *fn, const char *what);
    /* fan_in, fan_out for weight initialisation. */
    void (*fans)(const fa_layer *ly, double *fan_in, double *fan_out);
    /* Workspace this layer keeps per sample: floats for ly->col, int32 for
     * ly->idx; and floats of scratch its backward needs per sample.
     * forward and backward must be column-separable: sample j's part of
     * every buffer they write (z or dx, col, idx, scratch) starts at j
     * times its per-sample size and depends on sample j's input alone.
     * train.c calls them on blocks of samples, concurrently on the
     * handle's threads, for layers whose input is an image. */
    int64_t (*col_floats)(const fa_layer *ly);
    int64_t (*idx_count)(const fa_layer *ly);
    int64_t (*scratch_floats)(const fa_layer *ly);
    /* The layer before bias and activation: z (n_out, m) = W lower(x) for
     * layers with parameters, the pooling itself otherwise.  x (n_in, m)
     * with ldx.  col / idx: the layer's buffers (may be written). */
    void (*forward)(const fa_layer *ly, const float *w, const float *x,
                    int32_t ldx, int32_t m, float *z, float *col, int32_t *idx);
    /* The error of the input: dx (n_in, m) contiguous = J^T dz, through B
     * (W_l, or the rule's matrix of W_l's shape; NULL for pooling).  Uses
     * ly->idx from the forward pass; scratch as scratch_floats. */
    void (*backward)(const fa_layer *ly, const float *B, const float *dz,
                     int32_t m, float *dx, float *scratch, const int32_t *idx);
    /* dW (w_rows, w_cols) = alpha dz lower(x)^T + beta dW, from the input
     * x (ldx) or its lowering col as forward left it (beta = 0: dW need not
     * be initialised; the step folds plain SGD into alpha and beta).  NULL
     * for pooling. */
    void (*weight_grad)(const fa_layer *ly, const float *x, int32_t ldx,
                        const float *col, const float *dz, int32_t m, float alpha,
                        float beta, float *dw);
} fa_layer_ops;

/* The kinds, indexed by fa_layer_kind (src/layers/list.h). */
extern const fa_layer_ops *const fa_layer_table[FA_N_LAYER_KINDS];

/* Columns of a layer's output as a (out_c, cols) matrix for a batch of m:
 * out_h * out_w * m. */
static inline int64_t fa_layer_cols(const fa_layer *ly, int32_t m)
{
    return (int64_t)ly->out_h * ly->out_w * m;
}

/* ------------------------------------------------------------------ spec.c */

typedef struct fa_layer_spec {
    int32_t kind, units, kh, kw, stride, pad, act;
} fa_layer_spec;

struct fa_spec {
    int32_t in_c, in_h, in_w;
    int32_t n;          /* layers */
    int32_t cap;
    fa_layer_spec *layers;
    int32_t *shape;     /* 3 * (n + 1): output shape of each layer, 0 = input */
    int64_t n_params;
};

/* Resolve spec layer i (1-based) on input shape (c, h, w) into ly (no
 * workspace); the checks of fa_spec_add_*. */
int fa_layer_resolve(fa_layer *ly, const fa_layer_spec *s, int32_t c,
                     int32_t h, int32_t w, const char *fn, const char *what);
/* Append a resolved layer to a spec (shared by the builders, the parser
 * and the model-file loader). */
int fa_spec_append(fa_spec *spec, const fa_layer_spec *s, const char *fn);

/* ------------------------------------------------------------- the rules */

/* How a rule produces the hidden errors: fa_hidden_mode (public). */
#define FA_N_HIDDEN_MODES 3

/* Which matrix a CHAIN rule sends the error back through. */
enum {
    FA_BACK_WEIGHTS = 0,  /* W_l itself (BP) */
    FA_BACK_STORED = 1,   /* the rule's stored block (FA, KP, WM) */
    FA_BACK_DERIVED = 2   /* computed by derive() into net->fb_eff (USF, ...) */
};

/* A rule-specific hyperparameter (or a core one, see optimizer.c). */
typedef struct fa_hparam_desc {
    int32_t id;           /* fa_hparam */
    const char *name;     /* fa_enum_name, e.g. "kp_decay" */
    const char *description;
    double def;           /* default */
    int32_t range;        /* FA_RANGE_* */
} fa_hparam_desc;

enum {
    FA_RANGE_POSITIVE = 0,  /* float >= FLT_MIN, <= FLT_MAX */
    FA_RANGE_NONNEG = 1,    /* float >= 0, <= FLT_MAX */
    FA_RANGE_UNIT_OPEN = 2, /* [0, 1) as a float */
    FA_RANGE_UNIT = 3,      /* [0, 1] */
    FA_RANGE_COUNT = 4      /* integer in [1, 65536] */
};

/* Bounds on the magnitudes an optimiser step can produce (optimizer.c),
 * handed to the rules' check_commit. */
typedef struct fa_step_bounds {
    double p_old;   /* max |parameter| before the step */
    double p_new;   /* bound on max |parameter| after the step */
} fa_step_bounds;

/* A learning rule (src/rules/): one descriptor, one file. */
typedef struct fa_rule_desc {
    const char *name;         /* fa_enum_name(FA_ENUM_RULE, rule) */
    const char *description;
    int32_t feedback;         /* fa_feedback_kind */
    int stored;               /* keeps a stored block per rule (net->fb[]) */
    int learns;               /* the library changes the stored block */
    int32_t hidden;           /* FA_HIDDEN_* */
    int32_t back;             /* FA_BACK_* (CHAIN rules) */
    int trains_hidden;        /* 0: the optimiser skips hidden layers */
    /* DERIVED: write the backward matrix of layer l (W-shaped) into dst. */
    void (*derive)(const fa_net *net, const fa_layer *ly, float *dst);
    /* DIRECT: the (n_L, m) signal the hidden errors are projected from,
     * with leading dimension n_L: e itself, or written into buf. */
    const float *(*signal)(const fa_net *net, const float *e, const float *t,
                           int32_t ldt, int32_t m, float *buf);
    /* Floats of private scratch the rule needs (NULL: none). */
    int64_t (*scratch_floats)(const fa_net *net);
    /* Around the optimiser's commit of an applied step (NULL: nothing).
     * check_commit refuses (FA_ERR_NONFINITE through fa_fail) a step whose
     * feedback update could overflow; it runs before anything is written.
     * before_commit and after_commit cannot fail. */
    int (*check_commit)(fa_net *net, const fa_step_bounds *b, const char *fn);
    void (*before_commit)(fa_net *net);
    void (*after_commit)(fa_net *net);
    /* Rule-specific hyperparameters. */
    const fa_hparam_desc *hparams;
    int32_t n_hparams;
} fa_rule_desc;

/* The rules, indexed by fa_rule (src/rules/list.h). */
extern const fa_rule_desc *const fa_rule_table[FA_N_RULES];

/* ---------------------------------------------------------------- the net */

struct fa_net {
    int32_t n_layers;    /* L */
    fa_layer *layers;    /* layers[l] for l = 1..L; layers[0] unused */
    int32_t *sizes;      /* n_0..n_L, L+1 entries */
    int32_t in_c, in_h, in_w;
    int32_t loss;
    int32_t first_param; /* lowest layer with parameters */

    int32_t rule;
    int32_t dfa_variant;
    int32_t fb_dist;
    double fb_scale;     /* 0 = FA_SCALE_AUTO */

    int32_t optimizer;
    double hp[FA_N_HPARAMS];

    /* Parameters [W_1|b_1|...|W_L|b_L] and gradients in the same layout. */
    int64_t n_params;
    float *params;
    float *grad;

    /* Feedback.  LAYER kind: B_l for every layer l >= 2 with parameters,
     * back to back (layer->fb_off), fb_layer_len floats.  DIRECT kind: G_l
     * for every hidden layer with parameters side by side as one
     * (n_L, n_direct) matrix (G_l from column layer->dir_off), so that one
     * GEMM, D = G^T s, gives every hidden error at once.  fb[rule] is the
     * rule's stored block, NULL until first needed. */
    int64_t fb_layer_len;
    int32_t n_direct;
    int64_t fb_direct_len;
    float *fb[FA_N_RULES];
    float fb_absmax[FA_N_RULES]; /* max |fb[rule]|, or < 0 when not known */
    float *fb_eff;       /* DERIVED rules' backward matrices (LAYER layout) */
    float *rule_scratch[FA_N_RULES];
    int64_t rule_scratch_len[FA_N_RULES];

    /* Optimiser state: two vectors of n_params (velocity / first moment,
     * second moment), and the step count. */
    float *opt_state;
    int64_t opt_step;
    /* Largest magnitudes of the parameters and the optimiser state, kept by
     * the optimiser for its overflow bounds; bounds_valid = 0 after anyone
     * else writes them (then the next step scans). */
    int bounds_valid;
    float absmax_p, absmax_s1, absmax_s2;

    fa_pool *pool;       /* worker threads (threads.c), NULL until needed */
    int32_t layer_parallel; /* FA_LAYER_PARALLEL_*: the benchmarks compare */
    int32_t nthreads;    /* threads of the step under way */
    int blas_solo;       /* OpenBLAS on one thread for the section under
                            way (train.c: the handle's threads run the
                            GEMMs side by side) */
    int32_t blas_threads; /* OpenBLAS's count when the step began, restored
                            after such a section */
    float *tdb;          /* per-thread bias-gradient partials: tdb_threads x
                            the widest layer's rows */
    int32_t tdb_threads;

    fa_rng rng;          /* model stream: weights, feedback, noise */
    fa_rng rng_drop;     /* dropout masks */

    /* Workspaces for batches up to ws_batch, one allocation (ws). */
    int32_t ws_batch;
    int ws_stale;        /* the layout changed (dropout turned on): rebuild */
    float *ws;
    float *e;            /* output error (n_L, ws_batch) */
    float *sig;          /* DIRECT signal buffer (n_L, ws_batch) */
    float *dstack;       /* stacked direct errors (n_direct, ws_batch) */
    float *scratch;      /* the layers' backward scratch */
    float *ones;         /* ones, for GEMV row sums */
    float *grad_aux;     /* second gradient for fa_net_alignment; lazily */
};

/* Layer l's parameters and their offsets. */
static inline const float *fa_w(const fa_net *net, const fa_layer *ly)
{
    return net->params + ly->w_off;
}

/* threads.c: the handle's pool.  fa_net_threads: the threads of this step
 * (OpenBLAS's count, at most FA_MAX_THREADS), starting or restarting the
 * pool when the count changed; 1 if threads cannot be started.
 * fa_pool_run: fn(ctx, part, nparts) for part = 0..nparts-1 (at most the
 * pool's size), part 0 on the caller; returns when all are done. */
typedef void (*fa_pool_fn)(void *ctx, int32_t part, int32_t nparts);
int32_t fa_net_threads(fa_net *net);
void fa_pool_run(fa_net *net, int32_t nparts, fa_pool_fn fn, void *ctx);
void fa_pool_free(fa_pool *pool);

/* net.c: building, workspaces, shared validation.  fa_check_net: the
 * handle is not NULL.  fa_check_flat: a caller's buffer in the parameter
 * layout, n == n_params floats, all finite if need_finite. */
int fa_check_net(const fa_net *net, const char *fn);
int fa_check_flat(const fa_net *net, const float *buf, const char *name, int64_t n,
                  int need_finite, const char *fn);
int fa_net_build(fa_net **out, const fa_spec *spec, int32_t loss, const char *fn);
int fa_net_ensure_workspace(fa_net *net, int32_t batch, const char *fn);
/* Index of the first NaN/inf in p (count floats), or -1. */
int64_t fa_find_nonfinite(const float *p, int64_t count);
/* max |p_i| over count floats (inf if any is NaN or infinite); 0 if empty. */
float fa_absmax(const float *p, int64_t count);

/* feedback.c: storage and drawing through the rule table. */
int fa_feedback_ensure(fa_net *net, int32_t rule, const char *fn);
void fa_feedback_draw(fa_net *net, int32_t rule);
int64_t fa_feedback_len(const fa_net *net, int32_t rule);
/* The matrix layer l sends its error back through under rule (W, stored or
 * derived into net->fb_eff); the rule's feedback must be ensured. */
const float *fa_backward_matrix(const fa_net *net, int32_t rule, const fa_layer *ly);
/* Scale of the draw for a feedback matrix with `cols` columns. */
double fa_feedback_scale(const fa_net *net, int32_t cols);
/* max |entry| of rule's stored block (kept, or scanned when unknown). */
float fa_feedback_absmax(fa_net *net, int32_t rule);

/* train.c: the forward pass and the rule-driven update. */
/* The forward pass; xmax = max |x| (a bound is enough). */
void fa_forward_pass(fa_net *net, const float *x, int32_t ldx, int32_t batch,
                     float xmax, int train);
/* A step in two phases.  fa_compute_errors: forward, loss, every layer's
 * error and bias gradient (into grad's b blocks); returns a bound on
 * max |grad| from the magnitudes the passes saw (infinity if anything was
 * not finite), so that no pass over the update is needed.  fa_weight_grads:
 * dst's W blocks = alpha * dW + beta * dst for every layer that has an error.
 * Keeping the two apart lets a plain SGD step write W in the GEMM itself.
 * fa_compute_grad: both, into grad. */
float fa_compute_errors(fa_net *net, int32_t rule, const float *x, int32_t ldx,
                        float xmax, const float *t, int32_t ldt, int32_t batch,
                        int train, float *grad, double *loss);
void fa_weight_grads(fa_net *net, const float *x, int32_t ldx, int32_t batch,
                     float alpha, float beta, float *dst);
float fa_compute_grad(fa_net *net, int32_t rule, const float *x, int32_t ldx,
                      float xmax, const float *t, int32_t ldt, int32_t batch,
                      int train, float *grad, double *loss);
/* The applied step: bounds check, rule hooks, optimiser commit. */
int fa_apply_step(fa_net *net, const float *grad, float gmax, const char *fn);

/* optimizer.c */
int64_t fa_optimizer_state_len(const fa_net *net); /* floats used in opt_state */
/* Bounds for a step with max |grad| = gmax; 0 if the step could overflow. */
int fa_optimizer_bounds(fa_net *net, float gmax, fa_step_bounds *b);
/* The step itself (after fa_optimizer_bounds said yes); updates the kept
 * magnitudes. */
void fa_optimizer_commit(fa_net *net, const float *grad);
void fa_optimizer_reset(fa_net *net);
/* The bookkeeping of an SGD step that train.c applied inside its GEMMs
 * (step count, the bound on the parameters). */
void fa_optimizer_fused_done(fa_net *net, const fa_step_bounds *b);
/* The hyperparameter table: core entries and the rules'.  NULL if unknown. */
const fa_hparam_desc *fa_hparam_find(int32_t id);
int fa_hparam_valid(int32_t hparam, double value, const char **want);

/* names.c: "name0, name1, ..." of an enum into buf (len bytes). */
void fa_enum_names(int32_t type, char *buf, size_t len);

/* feedback.c: angle in degrees between two vectors, 90 if either is 0. */
float fa_angle_deg(int64_t n, const float *a, const float *b);

/* crc32.c */
uint32_t fa_crc32(uint32_t crc, const void *data, size_t len);

/* image.c: the model image, for io.c's files.  fa_image_size: bytes of the
 * image; fa_image_write_file: write it to f (0 or the errno of the first
 * failed write); fa_image_check_magic: the magic on the first bytes of an
 * image of `size` bytes (enough of them: min(size, 8)); fa_image_parse:
 * check and load a whole image. */
int64_t fa_image_size(const fa_net *net);
int fa_image_write_file(const fa_net *net, FILE *f);
int fa_image_check_magic(const unsigned char *p, size_t size, const char *fn);
int fa_image_parse(const unsigned char *buf, size_t size, fa_net **out, const char *fn);

/* Aligned allocation of count floats (64-byte aligned, zeroed); free with
 * free().  NULL on failure or count < 0. */
float *fa_alloc_floats(int64_t count);

#endif /* FA_INTERNAL_H */
