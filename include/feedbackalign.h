/*
 * feedbackalign.h -- the whole public contract of libfeedbackalign.
 *
 * Dense multilayer networks trained by exact backpropagation (BP), random
 * feedback alignment (FA, Lillicrap et al. 2016) and direct feedback
 * alignment (DFA, Nokland 2016).
 *
 * Conventions that hold for every function below
 * -----------------------------------------------
 * - Matrices are column-major.  A shape is written (rows, cols), as Julia's
 *   size() prints it.  A data buffer with a leading dimension `ld` holds
 *   element (i, j) at p[i + j*ld]; `ld` must be >= rows.  Data is
 *   (features, batch): one sample per column, which is also "one sample per
 *   row" of a C array float x[batch][features] with ld = features.
 * - Layers are numbered as in the maths: a network has L weight layers,
 *   layer l (1 <= l <= L) maps n_{l-1} inputs to n_l outputs with W_l of
 *   shape (n_l, n_{l-1}) and b_l of shape (n_l, 1).  n_0 is the input width.
 * - Every fallible function returns int: FA_OK (0) or a negative fa_status.
 *   On failure fa_last_error() describes which argument was wrong and what
 *   was expected, and no output or state has been changed unless the
 *   function's block says otherwise.
 * - Caller buffers are borrowed for the duration of one call only; the
 *   library never keeps a caller pointer.  Pointers the library hands out
 *   (fa_net_params_data, fa_last_error, fa_version_string, fa_status_string)
 *   say how long they live.
 * - A handle may be used by one thread at a time; different handles may be
 *   used concurrently.  The library has no global mutable state except the
 *   thread-local error message.  It never prints, aborts or exits.
 * - Determinism: the handle's RNG (weights, feedback, dropout) is seeded by
 *   the caller; the same seed, inputs, OpenBLAS thread count and platform
 *   (libm, OpenBLAS build) give bitwise-equal results.
 * - Every enum below has fixed, documented values that are part of the ABI
 *   and are never renumbered; callers without this header (Julia's ccall) may
 *   use the numbers directly.
 */
#ifndef FEEDBACKALIGN_H
#define FEEDBACKALIGN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(FA_BUILDING_LIBRARY) && defined(__GNUC__)
#define FA_API __attribute__((visibility("default")))
#else
#define FA_API
#endif

/* ---------------------------------------------------------------- version */

#define FA_VERSION_MAJOR 0
#define FA_VERSION_MINOR 1
#define FA_VERSION_PATCH 0
/** MAJOR*10000 + MINOR*100 + PATCH. */
#define FA_VERSION_NUMBER \
    (FA_VERSION_MAJOR * 10000 + FA_VERSION_MINOR * 100 + FA_VERSION_PATCH)

/** Runtime twin of FA_VERSION_NUMBER: the version of the library actually
 *  loaded.  Never fails. */
FA_API int32_t fa_version_number(void);

/** The loaded library's version as "MAJOR.MINOR.PATCH".  The string is
 *  static: valid for the life of the process, never freed by the caller. */
FA_API const char *fa_version_string(void);

/* ------------------------------------------------------------------ errors */

/** Status codes.  Values are ABI and append-only. */
typedef enum fa_status {
    FA_OK = 0,
    FA_ERR_NULL = -1,      /**< a required pointer argument was NULL */
    FA_ERR_ARG = -2,       /**< an argument value is out of range, or an unknown enum value */
    FA_ERR_SIZE = -3,      /**< a size, leading dimension or buffer length is wrong, or overflows */
    FA_ERR_NOMEM = -4,     /**< memory allocation failed */
    FA_ERR_NONFINITE = -5, /**< NaN or infinity in an input, or a step's loss/update is not finite */
    FA_ERR_IO = -6,        /**< the operating system refused a file operation */
    FA_ERR_FORMAT = -7,    /**< a model file is corrupt, truncated, foreign or of an unknown version */
    FA_ERR_STATE = -8      /**< the call does not fit the handle's current state */
} fa_status;

/** A static English name-and-meaning for a status code, e.g.
 *  "FA_ERR_SIZE: wrong size or length".  Unknown codes give
 *  "unknown status".  Never NULL; valid for the life of the process. */
FA_API const char *fa_status_string(int32_t status);

/** Detail message of the last failing call made on this thread, naming the
 *  function, the argument and what was expected; "" if no call has failed.
 *  Thread-local; the pointer stays valid on this thread until the next
 *  library call on the same thread.  Never NULL.  Successful calls do not
 *  clear it. */
FA_API const char *fa_last_error(void);

/* ------------------------------------------------------------------- enums */

/** Activation functions f applied element-wise after each layer. */
typedef enum fa_activation {
    FA_ACT_IDENTITY = 0,
    FA_ACT_TANH = 1,
    FA_ACT_SIGMOID = 2,   /**< 1 / (1 + exp(-a)) */
    FA_ACT_RELU = 3,
    FA_ACT_LEAKY_RELU = 4 /**< a > 0 ? a : slope*a, slope from FA_HP_LEAKY_SLOPE */
} fa_activation;

/** Losses.  Each divides by the batch size: the 1/batch factor lives in the
 *  loss and nowhere else, so every gradient in the library is a batch mean.
 *  With Y the network output (n, batch) and T the target (n, batch):
 *  - FA_LOSS_MSE:          L = 1/(2 batch) * sum_ij (Y_ij - T_ij)^2,
 *                          dL/dY = (Y - T) / batch.  (Lillicrap's 1/2 e'e.)
 *  - FA_LOSS_SOFTMAX_CE:   Y are logits; P = softmax of each column;
 *                          L = -1/batch * sum_ij T_ij log P_ij,
 *                          dL/dY = (P - T) / batch (each target column is
 *                          expected to sum to 1, e.g. one-hot).
 *                          Evaluated with the log-sum-exp shift: stable for
 *                          any finite logits.
 *  - FA_LOSS_SIGMOID_BCE:  Y are logits; P = sigmoid(Y);
 *                          L = -1/batch * sum_ij [T log P + (1-T) log(1-P)],
 *                          dL/dY = (P - T) / batch, evaluated stably as
 *                          max(y,0) - y t + log(1 + exp(-|y|)).
 *  A network whose loss is FA_LOSS_SOFTMAX_CE or FA_LOSS_SIGMOID_BCE must
 *  have FA_ACT_IDENTITY on its last layer (the loss is fused with its link
 *  function); fa_net_forward then returns probabilities P, not logits. */
typedef enum fa_loss {
    FA_LOSS_MSE = 0,
    FA_LOSS_SOFTMAX_CE = 1,
    FA_LOSS_SIGMOID_BCE = 2
} fa_loss;

/** Learning rules: how the output error reaches the hidden layers.
 *  For every rule dW_l = delta_l H_{l-1}^T and db_l = delta_l 1, with
 *  e = delta_L = dL/dA_L; the rules differ in the hidden errors delta_l:
 *  - FA_RULE_BP:  delta_l = (W_{l+1}^T delta_{l+1}) .* f'(A_l)
 *  - FA_RULE_FA:  delta_l = (F_{l+1}^T delta_{l+1}) .* f'(A_l),
 *                 F_{l+1} a fixed random (n_{l+1}, n_l) matrix
 *  - FA_RULE_DFA: delta_l = (G_l^T e) .* f'(A_l),
 *                 G_l a fixed random (n_L, n_l) matrix (direct l <- L path)
 *  Feedback matrices are stored in the orientation of the forward matrix
 *  they stand in for and always applied transposed. */
typedef enum fa_rule {
    FA_RULE_BP = 0,
    FA_RULE_FA = 1,
    FA_RULE_DFA = 2
} fa_rule;

/** Where DFA injects the projected error G_l^T e. */
typedef enum fa_dfa_variant {
    /** delta_l = (G_l^T e) .* f'(A_l)  (Nokland 2016; the default) */
    FA_DFA_AFTER_ACTIVATION = 0,
    /** delta_l = G_l^T e, without the f' factor (Breloff's variant, as in
     *  Transformations.jl: the error enters before the activation) */
    FA_DFA_BEFORE_ACTIVATION = 1
} fa_dfa_variant;

/** Distributions for random feedback matrices, given a scale s > 0. */
typedef enum fa_distribution {
    FA_DIST_UNIFORM = 0,  /**< U[-s, s] */
    FA_DIST_GAUSSIAN = 1, /**< N(0, s^2) */
    FA_DIST_SIGN = 2      /**< +s or -s with equal probability */
} fa_distribution;

/** Scale value meaning "1/sqrt(n) with n the width of the receiving layer"
 *  (the layer whose error the matrix produces: n_l for F_{l+1} and G_l), as
 *  in Nokland's reference code. */
#define FA_SCALE_AUTO 0.0

/** Forward-weight initialisations; biases always start at zero.
 *  fan_in = n_{l-1}, fan_out = n_l. */
typedef enum fa_init {
    /** He uniform for ReLU / leaky ReLU layers, Xavier uniform otherwise
     *  (what fa_net_create uses). */
    FA_INIT_DEFAULT = 0,
    FA_INIT_XAVIER_UNIFORM = 1, /**< U[-r, r], r = sqrt(6 / (fan_in + fan_out)) */
    FA_INIT_XAVIER_NORMAL = 2,  /**< N(0, 2 / (fan_in + fan_out)) */
    FA_INIT_HE_UNIFORM = 3,     /**< U[-r, r], r = sqrt(6 / fan_in) */
    FA_INIT_HE_NORMAL = 4,      /**< N(0, 2 / fan_in) */
    FA_INIT_ZERO = 5            /**< all weights 0: Nokland's zero initial
                                     condition for FA/DFA (BP cannot leave it) */
} fa_init;

/** Optimisers.  g is the update direction for a parameter (the rule's
 *  gradient, plus weight decay), lr the learning rate.
 *  - FA_OPT_SGD:      p -= lr g
 *  - FA_OPT_MOMENTUM: v = mu v + g;            p -= lr v
 *  - FA_OPT_NESTEROV: v = mu v + g;            p -= lr (g + mu v)
 *  - FA_OPT_ADAM:     m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
 *                     p -= lr m_hat / (sqrt(v_hat) + eps), with the bias
 *                     corrections m_hat = m/(1-b1^t), v_hat = v/(1-b2^t)
 *  - FA_OPT_RMSPROP:  s = rho s + (1-rho) g^2; p -= lr g / (sqrt(s) + eps)
 *  Weight decay is the classic L2 kind, applied to weights only (not
 *  biases) and added to the gradient before the optimiser:
 *  g = dW + weight_decay * W  (as PyTorch's weight_decay argument). */
typedef enum fa_optimizer {
    FA_OPT_SGD = 0,
    FA_OPT_MOMENTUM = 1,
    FA_OPT_NESTEROV = 2,
    FA_OPT_ADAM = 3,
    FA_OPT_RMSPROP = 4
} fa_optimizer;

/** Hyperparameters, settable at any time between steps (a caller may run a
 *  schedule).  Defaults in brackets.  Values are judged as the floats the
 *  optimiser computes with: "> 0" means at least FLT_MIN (1.2e-38), every
 *  bound above is at most FLT_MAX (3.4e38), and "[0,1)" means below 1 even
 *  after rounding to float (0.9999999999 is refused: it would round to 1). */
typedef enum fa_hparam {
    FA_HP_LR = 0,           /**< learning rate, > 0            [0.01]  */
    FA_HP_MOMENTUM = 1,     /**< mu of MOMENTUM/NESTEROV, [0,1) [0.9]   */
    FA_HP_BETA1 = 2,        /**< Adam b1, [0,1)                [0.9]   */
    FA_HP_BETA2 = 3,        /**< Adam b2, [0,1)                [0.999] */
    FA_HP_EPSILON = 4,      /**< Adam/RMSprop eps, > 0         [1e-8]  */
    FA_HP_WEIGHT_DECAY = 5, /**< L2 coefficient, >= 0          [0]     */
    FA_HP_RMS_DECAY = 6,    /**< RMSprop rho, [0,1)            [0.9]   */
    FA_HP_LEAKY_SLOPE = 7   /**< slope of FA_ACT_LEAKY_RELU for a < 0,
                                 in [0, 1]                     [0.01]  */
} fa_hparam;

/* --------------------------------------------------------------- the handle */

/** Opaque network handle.  Owns the parameters [W_1|b_1|W_2|b_2|...], the
 *  gradients, the feedback matrices, optimiser state, RNG state and
 *  workspaces. */
typedef struct fa_net fa_net;

/** Create a network.
 *  out          receives the new handle (set to NULL on failure); free it
 *               with fa_net_free.
 *  n_layers     L, the number of weight layers, 1 <= L <= 100000.
 *  sizes        (L+1) entries n_0..n_L, each >= 1; read during the call only.
 *  activations  L entries (fa_activation) for layers 1..L; read only.
 *  loss         fa_loss; SOFTMAX_CE and SIGMOID_BCE need FA_ACT_IDENTITY on
 *               layer L.
 *  seed         seeds the handle's RNG (weights, feedback, dropout).
 *  The new network has rule FA_RULE_BP, optimiser FA_OPT_SGD, default
 *  hyperparameters, no dropout, weights from FA_INIT_DEFAULT and feedback
 *  initialisation (FA_DIST_UNIFORM, FA_SCALE_AUTO).
 *  Errors: FA_ERR_NULL, FA_ERR_ARG (unknown enum, bad loss/activation
 *  pair), FA_ERR_SIZE (L out of range, a size < 1, more than 2^40
 *  parameters), FA_ERR_NOMEM. */
FA_API int fa_net_create(fa_net **out, int32_t n_layers, const int32_t *sizes,
                         const int32_t *activations, int32_t loss,
                         uint64_t seed);

/** Free a network and everything it owns.  NULL is a no-op.  Borrowed
 *  pointers from fa_net_params_data die with it. */
FA_API void fa_net_free(fa_net *net);

/** Number of weight layers L.  Errors: FA_ERR_NULL. */
FA_API int fa_net_num_layers(const fa_net *net, int32_t *n_layers);

/** Copy the layer widths n_0..n_L into sizes, which has n == L+1 entries.
 *  Errors: FA_ERR_NULL, FA_ERR_SIZE (n != L+1). */
FA_API int fa_net_get_sizes(const fa_net *net, int32_t *sizes, int64_t n);

/** Activation (fa_activation) of layer l, 1 <= l <= L.
 *  Errors: FA_ERR_NULL, FA_ERR_ARG (layer out of range). */
FA_API int fa_net_get_activation(const fa_net *net, int32_t layer,
                                 int32_t *activation);

/** The network's loss (fa_loss).  Errors: FA_ERR_NULL. */
FA_API int fa_net_get_loss(const fa_net *net, int32_t *loss);

/** Pre-size the workspaces for batches up to max_batch, so that no later
 *  step allocates.  (They also grow on their own the first time a larger
 *  batch arrives; they never shrink.)
 *  Errors: FA_ERR_NULL, FA_ERR_SIZE (max_batch < 1 or overflow),
 *  FA_ERR_NOMEM (the network is unchanged). */
FA_API int fa_net_reserve(fa_net *net, int32_t max_batch);

/* ------------------------------------------------------------------ rules */

/** Switch the learning rule; allowed at any time, also between steps of a
 *  running training.  Switching to FA or DFA the first time draws that
 *  rule's feedback matrices from the handle's RNG with the current feedback
 *  initialisation (unless the caller already set them with
 *  fa_net_set_feedback).  Feedback matrices, once drawn, are kept when the
 *  rule changes, so switching back reuses them.
 *  Errors: FA_ERR_NULL, FA_ERR_ARG (unknown rule), FA_ERR_NOMEM (the rule is
 *  unchanged). */
FA_API int fa_net_set_rule(fa_net *net, int32_t rule);

/** Current rule (fa_rule).  Errors: FA_ERR_NULL. */
FA_API int fa_net_get_rule(const fa_net *net, int32_t *rule);

/** Choose how feedback matrices are drawn from now on: distribution
 *  (fa_distribution) and scale s (a float in [FLT_MIN, FLT_MAX], or
 *  FA_SCALE_AUTO == 0 for 1/sqrt(width of the receiving layer)).  Matrices already drawn are
 *  redrawn with the new setting (so this also serves to resample them);
 *  matrices not yet needed are drawn later, when their rule is first set.
 *  Errors: FA_ERR_NULL, FA_ERR_ARG (unknown distribution, scale < 0 or not
 *  finite). */
FA_API int fa_net_set_feedback_init(fa_net *net, int32_t distribution,
                                    double scale);

/** Choose where DFA injects the error (fa_dfa_variant).
 *  Errors: FA_ERR_NULL, FA_ERR_ARG. */
FA_API int fa_net_set_dfa_variant(fa_net *net, int32_t variant);

/** Current DFA variant.  Errors: FA_ERR_NULL. */
FA_API int fa_net_get_dfa_variant(const fa_net *net, int32_t *variant);

/** Shape of a feedback matrix.
 *  rule FA_RULE_FA,  2 <= layer <= L:     F_layer, (n_layer, n_{layer-1})
 *  rule FA_RULE_DFA, 1 <= layer <= L-1:   G_layer, (n_L, n_layer)
 *  Errors: FA_ERR_NULL, FA_ERR_ARG (rule without feedback, layer outside
 *  the range above). */
FA_API int fa_net_feedback_shape(const fa_net *net, int32_t rule, int32_t layer,
                                 int32_t *rows, int32_t *cols);

/** Copy a feedback matrix out into buf, (rows, cols) as given by
 *  fa_net_feedback_shape, column-major, n == rows*cols elements.  Draws the
 *  rule's matrices first if they were never drawn.
 *  Errors: FA_ERR_NULL, FA_ERR_ARG (rule/layer), FA_ERR_SIZE (n),
 *  FA_ERR_NOMEM. */
FA_API int fa_net_get_feedback(fa_net *net, int32_t rule, int32_t layer,
                               float *buf, int64_t n);

/** Replace a feedback matrix with the caller's values (copied; buf is
 *  borrowed for this call only).  Shapes and n as in fa_net_get_feedback.
 *  The library itself never modifies feedback matrices under FA or DFA.
 *  Errors: FA_ERR_NULL, FA_ERR_ARG, FA_ERR_SIZE, FA_ERR_NONFINITE (NaN or
 *  infinity in buf; nothing is changed), FA_ERR_NOMEM. */
FA_API int fa_net_set_feedback(fa_net *net, int32_t rule, int32_t layer,
                               const float *buf, int64_t n);

/* ----------------------------------------------------- weights and dropout */

/** Re-initialise all forward weights with scheme (fa_init) from the
 *  handle's RNG; biases set to zero.  Optimiser state is reset.
 *  Errors: FA_ERR_NULL, FA_ERR_ARG (unknown scheme). */
FA_API int fa_net_init_weights(fa_net *net, int32_t scheme);

/** Inverted dropout on the output of hidden layer l (1 <= l <= L-1) with
 *  drop probability p in [0, 1): during training steps each unit is kept
 *  with probability 1-p and scaled by 1/(1-p); inference is unaffected.
 *  p = 0 disables it.  The mask is drawn from the handle's RNG.
 *  Errors: FA_ERR_NULL, FA_ERR_ARG (layer out of range, p outside [0,1)). */
FA_API int fa_net_set_dropout(fa_net *net, int32_t layer, double p);

/** Dropout probability of hidden layer l.  Errors: FA_ERR_NULL, FA_ERR_ARG. */
FA_API int fa_net_get_dropout(const fa_net *net, int32_t layer, double *p);

/* ---------------------------------------------------------------- optimiser */

/** Choose the optimiser (fa_optimizer); its state (velocities, moments,
 *  step count) starts from zero.  Hyperparameters are kept.
 *  Errors: FA_ERR_NULL, FA_ERR_ARG, FA_ERR_NOMEM (unchanged). */
FA_API int fa_net_set_optimizer(fa_net *net, int32_t optimizer);

/** Current optimiser.  Errors: FA_ERR_NULL. */
FA_API int fa_net_get_optimizer(const fa_net *net, int32_t *optimizer);

/** Set a hyperparameter (fa_hparam); the ranges are listed at the enum.
 *  Errors: FA_ERR_NULL, FA_ERR_ARG (unknown hparam, value out of range or
 *  not finite). */
FA_API int fa_net_set_hparam(fa_net *net, int32_t hparam, double value);

/** Read a hyperparameter.  Errors: FA_ERR_NULL, FA_ERR_ARG. */
FA_API int fa_net_get_hparam(const fa_net *net, int32_t hparam, double *value);

/** Reset the optimiser state (velocities, moments, step count) to zero.
 *  Errors: FA_ERR_NULL. */
FA_API int fa_net_reset_optimizer(fa_net *net);

/* ------------------------------------------------------- forward and train */

/** Inference (no dropout).
 *  x  (n_0, batch) with leading dimension ldx >= n_0; read only.
 *  y  (n_L, batch) with leading dimension ldy >= n_L; written.  For the
 *     fused losses y holds probabilities (softmax / sigmoid of the logits).
 *  x and y must not overlap.  May grow the workspaces (see fa_net_reserve).
 *  Errors: FA_ERR_NULL, FA_ERR_SIZE (batch < 1, ld too small),
 *  FA_ERR_NONFINITE (NaN or infinity in x, the message gives its row and
 *  column; or a non-finite network output from diverged parameters, y
 *  then unchanged), FA_ERR_NOMEM. */
FA_API int fa_net_forward(fa_net *net, const float *x, int32_t ldx,
                          int32_t batch, float *y, int32_t ldy);

/** Mean loss of the network on a batch (no dropout, nothing updated).
 *  x (n_0, batch) with ldx; t the target (n_L, batch) with ldt.
 *  Errors: as fa_net_forward; FA_ERR_NONFINITE also for NaN/inf in t. */
FA_API int fa_net_loss(fa_net *net, const float *x, int32_t ldx,
                       const float *t, int32_t ldt, int32_t batch,
                       float *loss);

/** One training step: forward (with dropout), the current rule's update,
 *  and the optimiser step on the parameters.
 *  x (n_0, batch) with ldx; t the target (n_L, batch) with ldt; both read
 *  only, and must be finite (checked).  loss (may be NULL) receives the
 *  batch's mean loss before the update.
 *  If the loss or any gradient entry is not finite the step returns
 *  FA_ERR_NONFINITE and leaves the parameters, the optimiser state and the
 *  RNG exactly as they were.  One failure can only be seen after the fact:
 *  if the gradient is finite but the optimiser step itself overflows the
 *  float range (a learning rate or weight decay far too large), the step
 *  returns FA_ERR_NONFINITE with parameters that are no longer finite; the
 *  message says so, and fa_net_set_params or fa_net_load restores them.
 *  Allocates nothing once the workspaces are large enough for batch.
 *  Errors: FA_ERR_NULL, FA_ERR_SIZE, FA_ERR_NONFINITE, FA_ERR_NOMEM. */
FA_API int fa_net_train_step(fa_net *net, const float *x, int32_t ldx,
                             const float *t, int32_t ldt, int32_t batch,
                             float *loss);

/** The first half of fa_net_train_step: forward (with dropout) and the
 *  current rule's update, written as a flat vector into grad, which has
 *  n == fa_net_param_count entries in the parameter layout
 *  [W_1|b_1|...|W_L|b_L].  Under BP it is the exact gradient of the mean
 *  loss; weight decay is not included (fa_net_apply_update adds it).
 *  Parameters and optimiser state are not touched.
 *  Errors: FA_ERR_NULL, FA_ERR_SIZE (n, batch, ld), FA_ERR_NONFINITE (the
 *  loss or the update is not finite; grad then holds unspecified values),
 *  FA_ERR_NOMEM. */
FA_API int fa_net_compute_update(fa_net *net, const float *x, int32_t ldx,
                                 const float *t, int32_t ldt, int32_t batch,
                                 float *grad, int64_t n, float *loss);

/** The second half: one optimiser step using grad (n == param count
 *  entries, layout as fa_net_compute_update; read only) as the update
 *  direction.  Weight decay is added here.
 *  Errors: FA_ERR_NULL, FA_ERR_SIZE (n), FA_ERR_NONFINITE (grad holds NaN
 *  or infinity: nothing changes; or the step overflowed, as described at
 *  fa_net_train_step). */
FA_API int fa_net_apply_update(fa_net *net, const float *grad, int64_t n);

/* --------------------------------------------------------------- parameters */

/** Total number of parameters, sum over l of n_l*n_{l-1} + n_l.
 *  Errors: FA_ERR_NULL. */
FA_API int fa_net_param_count(const fa_net *net, int64_t *count);

/** Copy all parameters into buf (n == param count), layout
 *  [W_1|b_1|...|W_L|b_L], each W_l (n_l, n_{l-1}) column-major.
 *  Errors: FA_ERR_NULL, FA_ERR_SIZE. */
FA_API int fa_net_get_params(const fa_net *net, float *buf, int64_t n);

/** Replace all parameters from buf (copied; layout as fa_net_get_params).
 *  Optimiser state is kept.
 *  Errors: FA_ERR_NULL, FA_ERR_SIZE, FA_ERR_NONFINITE (nothing changed). */
FA_API int fa_net_set_params(fa_net *net, const float *buf, int64_t n);

/** Borrowed read-only pointer to the parameter block (layout as
 *  fa_net_get_params), for zero-copy views.  Valid until fa_net_free; the
 *  values change in place with every training step, fa_net_set_params,
 *  fa_net_init_weights and never move.  Do not write through it.
 *  Errors: FA_ERR_NULL. */
FA_API int fa_net_params_data(const fa_net *net, const float **data);

/** Offsets (in floats, from the start of the parameter block) of W_l and
 *  b_l for layer 1 <= l <= L.
 *  Errors: FA_ERR_NULL, FA_ERR_ARG (layer out of range). */
FA_API int fa_net_layer_offsets(const fa_net *net, int32_t layer,
                                int64_t *w_offset, int64_t *b_offset);

/* -------------------------------------------------------------- diagnostics */

/** Alignment of the current rule with backprop on one batch (dropout off;
 *  parameters, optimiser and RNG untouched).  For each hidden layer
 *  l = 1..L-1, angles[l-1] receives the angle in degrees (0..180) between
 *  the rule's weight update dW_l and the exact BP gradient dW_l: the
 *  quantity Lillicrap et al. plot.  Under BP every angle is 0.  An angle
 *  involving a zero matrix is reported as 90.
 *  x (n_0, batch) with ldx, t (n_L, batch) with ldt; angles has
 *  n == L-1 entries (L == 1 needs n == 0 and angles may be NULL).
 *  Errors: FA_ERR_NULL, FA_ERR_SIZE, FA_ERR_NONFINITE, FA_ERR_NOMEM. */
FA_API int fa_net_alignment(fa_net *net, const float *x, int32_t ldx,
                            const float *t, int32_t ldt, int32_t batch,
                            float *angles, int64_t n);

/** Angles in degrees between forward weights and the feedback that stands
 *  in for them, n == L-1 entries:
 *  rule FA_RULE_FA:  angles[l-2] = angle(W_l, F_l) for l = 2..L;
 *  rule FA_RULE_DFA: angles[l-1] = angle(W_L W_{L-1} ... W_{l+1}, G_l) for
 *                    l = 1..L-1 (the linear path that G_l replaces).
 *  Draws the rule's feedback matrices if they were never drawn.
 *  Errors: FA_ERR_NULL, FA_ERR_ARG (rule BP or unknown), FA_ERR_SIZE (n),
 *  FA_ERR_NOMEM. */
FA_API int fa_net_feedback_angles(fa_net *net, int32_t rule, float *angles,
                                  int64_t n);

/* -------------------------------------------------------------- model files */

/** Save the whole network to path: architecture, rule and DFA variant,
 *  feedback initialisation and matrices, optimiser, hyperparameters and
 *  optimiser state, dropout rates, parameters and RNG state, so that a
 *  loaded network continues training bit-for-bit.  Versioned binary format
 *  with a CRC-32 (docs/ARCHITECTURE.md describes it).  Writes a temporary
 *  file in the same directory, flushes it to disk and renames it over path:
 *  an existing file at path is either replaced whole or left untouched.
 *  path is borrowed for the call.
 *  Errors: FA_ERR_NULL, FA_ERR_IO (empty path, or the system refused an
 *  operation; the message names the path and the system error),
 *  FA_ERR_NOMEM. */
FA_API int fa_net_save(const fa_net *net, const char *path);

/** Load a network saved by fa_net_save into a new handle (*out, NULL on
 *  failure; free with fa_net_free).
 *  Errors: FA_ERR_NULL, FA_ERR_IO (cannot open or read), FA_ERR_FORMAT (not
 *  a model file, unknown format version, other endianness, truncated,
 *  checksum mismatch, inconsistent sizes or values -- the message says
 *  which), FA_ERR_NOMEM. */
FA_API int fa_net_load(fa_net **out, const char *path);

/* ------------------------------------------------------------ losses alone */

/** Evaluate a loss (fa_loss) on its own.
 *  y   (n, batch) with ldy >= n: network outputs (logits for the fused
 *      losses); read only.
 *  t   (n, batch) with ldt >= n: targets; read only.
 *  value receives the mean loss (may be NULL).
 *  dy  (n, batch) with lddy >= n receives dL/dy, already divided by batch;
 *      may be NULL (then lddy is ignored).  dy may not overlap y or t.
 *  Errors: FA_ERR_ARG (unknown loss), FA_ERR_NULL (y or t), FA_ERR_SIZE
 *  (n or batch < 1, ld too small). */
FA_API int fa_loss_eval(int32_t loss, const float *y, int32_t ldy,
                        const float *t, int32_t ldt, int32_t n, int32_t batch,
                        float *value, float *dy, int32_t lddy);

#ifdef __cplusplus
}
#endif

#endif /* FEEDBACKALIGN_H */
