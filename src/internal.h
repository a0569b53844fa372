/*
 * internal.h -- private declarations shared by the library's source files
 * and its unit tests (which link the internal static library).  Nothing here
 * is exported from libfeedbackalign.so.
 */
#ifndef FA_INTERNAL_H
#define FA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "feedbackalign.h"

#define FA_N_HPARAMS 8
#define FA_N_ACTIVATIONS 5
#define FA_N_LOSSES 3
#define FA_N_RULES 3
#define FA_N_OPTIMIZERS 5
#define FA_N_DISTRIBUTIONS 3
#define FA_N_INITS 6

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
 * state alone determines the stream). */
float fa_rng_normal(fa_rng *rng);

/* ------------------------------------------------------------------- blas.c */

/* The only wrappers around CBLAS; all column-major with standard semantics.
 * C (m, n) = alpha * op(A) * op(B) + beta * C, op(A) (m, k), op(B) (k, n).
 * trans_a / trans_b: 0 = as stored, 1 = transposed. */
void fa_gemm(int trans_a, int trans_b, int32_t m, int32_t n, int32_t k,
             float alpha, const float *a, int32_t lda, const float *b,
             int32_t ldb, float beta, float *c, int32_t ldc);
/* y (m or n) = alpha * op(A) x + beta * y, A (m, n) with lda. */
void fa_gemv(int trans_a, int32_t m, int32_t n, float alpha, const float *a,
             int32_t lda, const float *x, float beta, float *y);
/* Dot product and 2-norm of length-n vectors (contiguous). */
double fa_dot(int64_t n, const float *x, const float *y);
double fa_nrm2(int64_t n, const float *x);

/* ------------------------------------------------------------- activation.c */

/* z (n, batch) with ld: z = f(z) in place. */
void fa_act_forward(int32_t act, float slope, float *z, int32_t n,
                    int32_t batch, int32_t ld);
/* delta (n, batch) with lddelta *= f'(a), where f'(a) is computed from the
 * stored activation output z = f(a) (n, batch) with ldz: tanh 1-z^2, sigmoid
 * z(1-z), relu [z>0], leaky z>0 ? 1 : slope, identity 1.  Storing f(a)
 * rather than a saves re-evaluating tanh/sigmoid on the backward pass. */
void fa_act_deriv_mul(int32_t act, float slope, const float *z, int32_t ldz,
                      float *delta, int32_t lddelta, int32_t n, int32_t batch);

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

void fa_init_weights_layer(fa_rng *rng, int32_t scheme, int32_t act,
                           float *w, int32_t rows, int32_t cols);
/* Fill count floats from dist with scale s (> 0). */
void fa_fill_random(fa_rng *rng, int32_t dist, double scale, float *p,
                    int64_t count);

/* ----------------------------------------------------------------- the net */

struct fa_net {
    int32_t n_layers;    /* L */
    int32_t *sizes;      /* n_0..n_L, L+1 entries */
    int32_t *act;        /* act[l] for l = 1..L (act[0] unused), L+1 entries */
    int32_t loss;

    int32_t rule;
    int32_t dfa_variant;
    int32_t fb_dist;
    double fb_scale;     /* 0 = FA_SCALE_AUTO */

    int32_t optimizer;
    double hp[FA_N_HPARAMS];
    double *dropout;     /* dropout[l], l = 1..L-1 used; L+1 entries */

    /* Parameters [W_1|b_1|...|W_L|b_L] and gradients in the same layout. */
    int64_t n_params;
    int64_t *w_off;      /* w_off[l], b_off[l] for l = 1..L */
    int64_t *b_off;
    float *params;
    float *grad;

    /* FA feedback F_l (n_l, n_{l-1}) for l = 2..L, one block; F_l starts at
     * fa_off[l].  NULL until first needed. */
    float *fb_fa;
    int64_t fb_fa_len;
    int64_t *fa_off;
    /* DFA feedback: G_1..G_{L-1} stacked side by side into one
     * (n_L, n_hidden) matrix, G_l occupying columns hid_off[l] .. +n_l.
     * Then every hidden error comes from one GEMM, D = G^T e, and delta_l is
     * rows hid_off[l].. of D.  NULL until first needed. */
    float *fb_dfa;
    int64_t fb_dfa_len;
    int32_t n_hidden;    /* sum of n_1..n_{L-1} */
    int32_t *hid_off;    /* hid_off[l] for l = 1..L-1 */

    /* Optimiser state: two vectors of n_params (velocity / first moment,
     * second moment), and Adam's step count. */
    float *opt_state;
    int64_t opt_step;

    fa_rng rng;

    /* Workspaces for batches up to ws_batch, one allocation (ws). */
    int32_t ws_batch;
    float *ws;
    float **z;       /* z[l] = f(A_l), (n_l, ws_batch), l = 1..L */
    float **h;       /* h[l]: the layer's output as the next layer sees it:
                        z[l], or hbuf[l] when dropout ran in this pass */
    float **hbuf;    /* hbuf[l] (n_l, ws_batch) = z[l] .* mask[l], hidden l */
    float **mask;    /* mask[l] (n_l, ws_batch): 0 or 1/(1-p), hidden l */
    float *e;        /* output error (n_L, ws_batch) */
    float *delta;    /* stacked hidden errors (n_hidden, ws_batch) */
    float *ones;     /* (ws_batch) ones, for db = delta 1 */
    float *grad_aux; /* second gradient for fa_net_alignment; lazily */
};

/* net.c helpers used by io.c and rules.c.  `func` names the public
 * function for error messages.
 * fa_net_alloc: validates sizes/activations/loss exactly as fa_net_create,
 *   allocates the struct, sizes/act/dropout/offset arrays, params, grad and
 *   opt_state (2*n_params floats), all zero; sets the defaults (rule BP,
 *   DFA after activation, uniform feedback with auto scale, SGD, default
 *   hparams, no dropout, opt_step 0).  Does not seed the RNG, draw weights,
 *   allocate feedback or workspaces.
 * fa_net_alloc_feedback: allocates rule's feedback block (zero-filled) if it
 *   is NULL; no drawing.  Returns FA_OK for BP (nothing to do).
 * fa_net_ensure_feedback: alloc_feedback, and if the block was newly
 *   allocated, draw it from the RNG (fa_net_draw_feedback).
 * fa_net_ensure_workspace: grow workspaces to hold batch (no-op if big
 *   enough). */
int fa_net_alloc(fa_net **out, int32_t n_layers, const int32_t *sizes,
                 const int32_t *activations, int32_t loss, const char *func);
int fa_net_alloc_feedback(fa_net *net, int32_t rule, const char *func);
int fa_net_ensure_feedback(fa_net *net, int32_t rule, const char *func);
void fa_net_draw_feedback(fa_net *net, int32_t rule);
int fa_net_ensure_workspace(fa_net *net, int32_t batch, const char *func);

/* rules.c: the shared forward pass and the three backward rules.
 * fa_forward_pass fills z/h for a batch (x (n_0, batch) with ldx); dropout
 * only if train.  fa_compute_grad runs forward + loss + the given rule's
 * backward, writing the update into grad (n_params, layout as params) and
 * the mean loss into *loss.  Inputs are assumed validated. */
void fa_forward_pass(fa_net *net, const float *x, int32_t ldx, int32_t batch,
                     int train);
void fa_compute_grad(fa_net *net, int32_t rule, const float *x, int32_t ldx,
                     const float *t, int32_t ldt, int32_t batch, int train,
                     float *grad, double *loss);

/* optimizer.c: one step of the net's optimiser with direction grad.
 * Returns nonzero if the step overflowed: some parameter is no longer
 * finite (the gradient was finite, so only a huge learning rate or weight
 * decay gets here). */
int fa_optimizer_step(fa_net *net, const float *grad);
int64_t fa_optimizer_state_len(const fa_net *net); /* floats used in opt_state */

/* net.c: the valid hyperparameter values and feedback scales (judged as
 * the floats the library computes with); *want describes the range. */
int fa_hparam_valid(int32_t hparam, double value, const char **want);
const char *fa_hparam_name(int32_t hparam);
int fa_scale_valid(double scale);

/* net.c: check count floats for NaN/inf; index of the first bad one or -1. */
int64_t fa_find_nonfinite(const float *p, int64_t count);

/* io.c */
uint32_t fa_crc32(uint32_t crc, const void *data, size_t len);

#endif /* FA_INTERNAL_H */
