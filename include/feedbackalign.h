/*
 * feedbackalign.h -- the whole public contract of libfeedbackalign.
 *
 * Networks of dense, convolutional and pooling layers trained by exact
 * backpropagation (BP) and by the feedback-alignment family: random
 * feedback alignment (FA, Lillicrap et al. 2016), direct feedback alignment
 * (DFA, Nokland 2016), sign-concordant feedback (USF, BRSF, FRSF), Kolen-
 * Pollack (KP), weight mirrors (WM), direct random target projection (DRTP),
 * sign-error DFA (SDFA) and shallow learning.
 *
 * Conventions that hold for every function below
 * -----------------------------------------------
 * - Matrices are column-major.  A shape is written (rows, cols), as Julia's
 *   size() prints it.  A data buffer with a leading dimension `ld` holds
 *   element (i, j) at p[i + j*ld]; `ld` must be >= rows.  Data is
 *   (features, batch): one sample per column, which is also "one sample per
 *   row" of a C array float x[batch][features] with ld = features.
 * - Images are samples too: an image of C channels, H rows and W columns is
 *   a column of C*H*W features, channel fastest, then column, then row:
 *   feature c + C*(x + W*y) is channel c of pixel (row y, column x).  This is
 *   the C array float img[H][W][C] ("HWC"), or a Julia array of size
 *   (C, W, H, batch); for one channel it is the plain row-major image.
 * - Layers are numbered as in the maths: a network has L layers, layer l
 *   (1 <= l <= L) maps n_{l-1} input features to n_l output features; n_0 is
 *   the input width.  A dense layer has W_l of shape (n_l, n_{l-1}) and b_l
 *   of shape (n_l, 1); fa_layer_kind gives the other kinds' shapes.
 * - Every fallible function returns int: FA_OK (0) or a negative fa_status.
 *   On failure fa_last_error() describes which argument was wrong and what
 *   was expected, and no output or state has been changed unless the
 *   function's block says otherwise.
 * - The invariant of every handle: a call that returns FA_OK leaves a
 *   network whose parameters, feedback and optimiser state are all finite,
 *   so that fa_net_save writes a file that fa_net_load accepts.  A training
 *   step that would break it fails with FA_ERR_NONFINITE and changes
 *   nothing.
 * - Caller buffers are borrowed for the duration of one call only; the
 *   library never keeps a caller pointer.  Pointers the library hands out
 *   (fa_net_params_data, fa_last_error, fa_version_string, fa_status_string,
 *   fa_enum_name, fa_enum_description) say how long they live.
 * - A handle may be used by one thread at a time; different handles may be
 *   used concurrently.  The library has no global mutable state except the
 *   thread-local error message.  It never prints, aborts or exits.
 * - Determinism: the handle's RNG (weights, feedback, noise, dropout) is
 *   seeded by the caller; the same seed, inputs, thread count and platform
 *   (libm, OpenBLAS build) give bitwise-equal results.
 * - Every enum below has fixed, documented values that are part of the ABI
 *   and are never renumbered; callers without this header (Julia's ccall) may
 *   use the numbers directly, or ask fa_enum_name / fa_enum_lookup.
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
#define FA_VERSION_MINOR 2
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
    FA_ERR_NONFINITE = -5, /**< NaN or infinity in an input, or a step's loss/update/result is not finite */
    FA_ERR_IO = -6,        /**< the operating system refused a file operation */
    FA_ERR_FORMAT = -7,    /**< a model file or image is corrupt, truncated, foreign or of an unknown version */
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
 *  function); fa_net_forward then returns probabilities P, not logits.
 *  A loss whose value is finite in double precision but beyond the float
 *  range is reported as FA_ERR_NONFINITE, never returned as infinity. */
typedef enum fa_loss {
    FA_LOSS_MSE = 0,
    FA_LOSS_SOFTMAX_CE = 1,
    FA_LOSS_SIGMOID_BCE = 2
} fa_loss;

/** Learning rules: how the error reaches the hidden layers.
 *  For every rule dW_l = delta_l H_{l-1}^T and db_l = delta_l 1 (for a
 *  convolution the same through its lowering, see fa_layer_kind), with
 *  e = delta_L = dL/dA_L; the rules differ in the hidden errors delta_l and
 *  in the feedback they keep.  Below, B_l is the matrix that stands in for
 *  W_l on the way back: stored in W_l's shape and applied transposed through
 *  the layer's own backward pass (pooling layers pass errors back exactly,
 *  under every rule).  G_l is an (n_L, n_l) matrix from the output to the
 *  output of hidden layer l; m is the batch size and f' the derivative of
 *  layer l's activation.  Each rule's feedback kind (fa_rule_info) is
 *  LAYER (one B_l per layer with parameters from layer 2 on), DIRECT (one
 *  G_l per hidden layer with parameters) or NONE.
 *  - FA_RULE_BP:   delta_l = (W_{l+1}^T delta_{l+1}) .* f'(A_l).  NONE.
 *  - FA_RULE_FA:   B_l = F_l, fixed random (Lillicrap et al. 2016).  LAYER.
 *  - FA_RULE_DFA:  delta_l = (G_l^T e) .* f'(A_l), G_l fixed random
 *                  (Nokland 2016); FA_DFA_BEFORE_ACTIVATION drops f'.
 *                  DIRECT.  All hidden errors come from one GEMM against the
 *                  stacked [G_1 | G_2 | ...]; no hidden error waits for
 *                  another.
 *  - FA_RULE_USF:  uniform sign-concordant feedback, B_l = s_l sign(W_l),
 *                  recomputed from W_l at every step, with the fixed layer
 *                  scale s_l = sqrt(2 / (fan_in + fan_out)), the Xavier-normal
 *                  deviation (Liao, Leibo & Poggio 2016; BioTorch's scaling).
 *                  LAYER, nothing stored: fa_net_get_feedback returns
 *                  s_l sign(W_l) and fa_net_set_feedback is refused.
 *  - FA_RULE_BRSF: batchwise random-magnitude sign-concordant feedback,
 *                  B_l = |M_l| .* sign(W_l), M_l drawn from the feedback
 *                  initialisation and redrawn after every applied step.
 *                  LAYER, stores M_l.
 *  - FA_RULE_FRSF: fixed random-magnitude sign-concordant feedback,
 *                  B_l = |M_l| .* sign(W_l), M_l drawn once.  LAYER, stores M_l.
 *  - FA_RULE_KP:   Kolen-Pollack (Akrout et al. 2019): B_l starts random and,
 *                  after every applied optimiser step, receives the same
 *                  change as W_l while their difference decays:
 *                  B_l <- B_l + (W_l,new - W_l,old) - k (B_l - W_l,old),
 *                  k = FA_HP_KP_DECAY; so B_l - W_l shrinks by (1 - k) per
 *                  step whatever the optimiser (the change of W_l includes
 *                  the optimiser's weight decay).  Under plain SGD with weight
 *                  decay wd and k = lr * wd this is exactly Akrout et al.'s
 *                  rule: both matrices take -lr delta H^T and decay by lr wd.
 *                  LAYER, stores B_l.
 *  - FA_RULE_WM:   weight mirrors (Akrout et al. 2019): B_l starts random and,
 *                  after every applied step, learns from the layer's response
 *                  to noise.  With X a (fan_in, k) matrix of N(0, sigma^2)
 *                  noise fed to the layer's linear part, Y = W_l X (no bias,
 *                  no activation; for a convolution through its lowering):
 *                  B_l <- B_l + eta (1/k) Y X^T - lambda B_l, with
 *                  k = FA_HP_WM_BATCH, sigma = FA_HP_WM_NOISE, eta = FA_HP_WM_LR,
 *                  lambda = FA_HP_WM_DECAY.  In expectation B_l tends to
 *                  (eta sigma^2 / lambda) W_l, which is W_l at the defaults.
 *                  LAYER, stores B_l.
 *  - FA_RULE_DRTP: direct random target projection (Frenkel, Lefebvre & Bol
 *                  2021): delta_l = (G_l^T T / m) .* f'(A_l): the targets T
 *                  in place of the error, with the reference code's sign
 *                  (+T).  No hidden update depends on the network's output.
 *                  DIRECT.
 *  - FA_RULE_SDFA: DFA with the sign of the error (Frenkel et al.):
 *                  delta_l = (G_l^T sign(e) / m) .* f'(A_l).  DIRECT.
 *  - FA_RULE_SHALLOW: only the last layer learns: hidden updates are zero,
 *                  and the optimiser leaves every hidden parameter and its
 *                  optimiser state untouched (weight decay too).  NONE.
 *  The 1/m of DRTP and SDFA keeps every rule's update a batch mean, like e;
 *  FA_DFA_BEFORE_ACTIVATION drops the f' of all three DIRECT rules alike.
 *  FA, DFA, FRSF, DRTP and SDFA never modify their feedback; BRSF, KP and WM
 *  do, and only when a step is applied (fa_net_train_step,
 *  fa_net_apply_update), never in fa_net_compute_update.  Each rule keeps
 *  its own matrices, drawn the first time they are needed: switching rules
 *  keeps everything drawn so far.  Names, descriptions and properties of the
 *  rules come from fa_enum_name, fa_enum_description and fa_rule_info. */
typedef enum fa_rule {
    FA_RULE_BP = 0,
    FA_RULE_FA = 1,
    FA_RULE_DFA = 2,
    FA_RULE_USF = 3,
    FA_RULE_BRSF = 4,
    FA_RULE_FRSF = 5,
    FA_RULE_KP = 6,
    FA_RULE_WM = 7,
    FA_RULE_DRTP = 8,
    FA_RULE_SDFA = 9,
    FA_RULE_SHALLOW = 10
} fa_rule;

/** The feedback a rule keeps (fa_rule_info). */
typedef enum fa_feedback_kind {
    FA_FEEDBACK_NONE = 0,   /**< no feedback matrices */
    FA_FEEDBACK_LAYER = 1,  /**< B_l in W_l's shape, layers 2..L with parameters */
    FA_FEEDBACK_DIRECT = 2  /**< G_l (n_L, n_l), hidden layers 1..L-1 with parameters */
} fa_feedback_kind;

/** How a rule produces the hidden layers' errors (fa_rule_hidden). */
typedef enum fa_hidden_mode {
    FA_HIDDEN_CHAIN = 0,  /**< layer by layer from the output down, each through
                               the layer above's W_l or B_l (BP, FA, the sign
                               rules, KP, WM) */
    FA_HIDDEN_DIRECT = 1, /**< every hidden layer at once from the output
                               signal through its G_l (DFA, DRTP, SDFA) */
    FA_HIDDEN_NONE = 2    /**< none: the hidden layers do not learn (SHALLOW) */
} fa_hidden_mode;

/** Where the direct rules (DFA, and likewise SDFA and DRTP) inject their
 *  projected signal G_l^T s. */
typedef enum fa_dfa_variant {
    /** delta_l = (G_l^T e) .* f'(A_l)  (Nokland 2016; the default) */
    FA_DFA_AFTER_ACTIVATION = 0,
    /** delta_l = G_l^T e, without the f' factor (Breloff's variant, as in
     *  Transformations.jl: the error enters before the activation) */
    FA_DFA_BEFORE_ACTIVATION = 1
} fa_dfa_variant;

/** Distributions for random feedback matrices, given a scale s > 0.  A
 *  scale is accepted only if no draw can overflow a float: s <= FLT_MAX for
 *  UNIFORM and SIGN, s <= 3.9e37 for GAUSSIAN (its draws stay within 8.6
 *  standard deviations). */
typedef enum fa_distribution {
    FA_DIST_UNIFORM = 0,  /**< U[-s, s] */
    FA_DIST_GAUSSIAN = 1, /**< N(0, s^2) */
    FA_DIST_SIGN = 2      /**< +s or -s with equal probability */
} fa_distribution;

/** Scale value meaning "1/sqrt(n) with n the number of columns of the
 *  feedback matrix": the width of the layer whose error the matrix produces
 *  (n_{l-1} for a dense B_l and n_l for G_l, as in Nokland's reference
 *  code; channels_in * kernel_h * kernel_w for a convolution's B_l). */
#define FA_SCALE_AUTO 0.0

/** Forward-weight initialisations; biases always start at zero.  For a
 *  dense layer fan_in = n_{l-1}, fan_out = n_l; for a convolution
 *  fan_in = channels_in * kh * kw, fan_out = channels_out * kh * kw. */
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
 *  g = dW + weight_decay * W  (as PyTorch's weight_decay argument).
 *  The step count t saturates at INT64_MAX (where 1 - b^t is 1 anyway).
 *  On x86 the update runs with denormals flushed to zero: a g, p, m, v or
 *  s below FLT_MIN (1.2e-38) in magnitude is read as 0 and a result below
 *  it is written as 0 (what the moments of a converged run decay to, and
 *  where each operation would otherwise cost a microcode assist).  The
 *  calling thread's floating-point mode is restored before the call
 *  returns. */
typedef enum fa_optimizer {
    FA_OPT_SGD = 0,
    FA_OPT_MOMENTUM = 1,
    FA_OPT_NESTEROV = 2,
    FA_OPT_ADAM = 3,
    FA_OPT_RMSPROP = 4
} fa_optimizer;

/** Hyperparameters, settable at any time between steps (a caller may run a
 *  schedule).  Defaults in brackets.  Values are judged as the floats the
 *  library computes with: "> 0" means at least FLT_MIN (1.2e-38), every
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
    FA_HP_LEAKY_SLOPE = 7,  /**< slope of FA_ACT_LEAKY_RELU for a < 0,
                                 in [0, 1]                     [0.01]  */
    FA_HP_KP_DECAY = 8,     /**< KP: fraction of B - W removed per step,
                                 [0, 1)                        [0.001] */
    FA_HP_WM_LR = 9,        /**< WM: mirror learning rate eta, >= 0 [0.01] */
    FA_HP_WM_DECAY = 10,    /**< WM: decay lambda of B, [0, 1) [0.01]  */
    FA_HP_WM_NOISE = 11,    /**< WM: noise deviation sigma, > 0 [1]    */
    FA_HP_WM_BATCH = 12     /**< WM: noise samples per mirror step, an
                                 integer in [1, 65536]         [64]    */
} fa_hparam;

/** Layer kinds.  Shapes are (channels, height, width); a dense layer's input
 *  and output are (n, 1, 1) and any image flattens into a dense layer's
 *  input for free (the feature order is the image layout above).
 *  - FA_LAYER_DENSE:   A = W x + b, W (n_out, n_in), b (n_out, 1).
 *  - FA_LAYER_CONV2D:  C_out kernels of C_in x kh x kw with stride s and zero
 *                      padding p; output size (H + 2p - kh)/s + 1 by
 *                      (W + 2p - kw)/s + 1, which must divide exactly.
 *                      W is (C_out, C_in*kh*kw), its column c + C_in*(kx +
 *                      kw*ky) holding the weight of input channel c at kernel
 *                      position (row ky, column kx); b is (C_out, 1).
 *                      Computed by lowering (im2col) onto one SGEMM for the
 *                      whole batch: A (C_out, H_out*W_out*batch) =
 *                      W (C_out, K) * X_col (K, H_out*W_out*batch), which is
 *                      exactly the output images in the layout above.
 *  - FA_LAYER_MAXPOOL: maximum over size x size windows with a stride
 *                      (default: the size); no parameters, no activation.
 *                      The error goes back to the window's maximum (the first
 *                      one on ties).
 *  - FA_LAYER_AVGPOOL: mean over the windows; the error is shared equally.
 *  The last layer of a network must have parameters (dense or conv2d). */
typedef enum fa_layer_kind {
    FA_LAYER_DENSE = 0,
    FA_LAYER_CONV2D = 1,
    FA_LAYER_MAXPOOL = 2,
    FA_LAYER_AVGPOOL = 3
} fa_layer_kind;

/* ------------------------------------------------------------ enum names */

/** The enums that have names, for fa_enum_count / fa_enum_name /
 *  fa_enum_lookup. */
typedef enum fa_enum_type {
    FA_ENUM_ACTIVATION = 0,
    FA_ENUM_LOSS = 1,
    FA_ENUM_RULE = 2,
    FA_ENUM_DFA_VARIANT = 3,
    FA_ENUM_DISTRIBUTION = 4,
    FA_ENUM_INIT = 5,
    FA_ENUM_OPTIMIZER = 6,
    FA_ENUM_HPARAM = 7,
    FA_ENUM_LAYER = 8,
    FA_ENUM_FEEDBACK_KIND = 9,
    FA_ENUM_HIDDEN_MODE = 10
} fa_enum_type;

/** Number of values of an enum (its values are 0..count-1), or FA_ERR_ARG
 *  for an unknown type.  Never sets fa_last_error. */
FA_API int32_t fa_enum_count(int32_t type);

/** Short lower-case name of an enum value, e.g. "dfa", "leaky_relu",
 *  "softmax_ce", "xavier_uniform", "lr", "conv2d" (words joined by '_').
 *  NULL for an unknown type or value.  Static: valid for the life of the
 *  process. */
FA_API const char *fa_enum_name(int32_t type, int32_t value);

/** One-line English description of an enum value, e.g. "direct feedback
 *  alignment (Nokland 2016)".  NULL for an unknown type or value.  Static. */
FA_API const char *fa_enum_description(int32_t type, int32_t value);

/** The value whose name is `name` (compared ignoring case, with '-' and '_'
 *  equivalent: "leaky-relu" finds FA_ACT_LEAKY_RELU).
 *  Errors: FA_ERR_NULL, FA_ERR_ARG (unknown type or name; the message lists
 *  the valid names). */
FA_API int fa_enum_lookup(int32_t type, const char *name, int32_t *value);

/** Describe a rule; each out-pointer may be NULL.
 *  kind      its fa_feedback_kind;
 *  stored    1 if it keeps stored matrices (fa_net_get/set_feedback work on
 *            them), else 0;
 *  learns    1 if the library changes its stored matrices (BRSF, KP, WM);
 *  parallel  1 if its hidden errors do not wait on each other (DFA, DRTP,
 *            SDFA), so the layers' updates are independent.
 *  Errors: FA_ERR_ARG (unknown rule). */
FA_API int fa_rule_info(int32_t rule, int32_t *kind, int32_t *stored,
                        int32_t *learns, int32_t *parallel);

/** How a rule produces the hidden errors: *mode receives its
 *  fa_hidden_mode (CHAIN, DIRECT or NONE).  Tells apart the two rules
 *  without feedback matrices: BP (CHAIN) and SHALLOW (NONE).
 *  Errors: FA_ERR_ARG (unknown rule), FA_ERR_NULL (mode). */
FA_API int fa_rule_hidden(int32_t rule, int32_t *mode);

/* ------------------------------------------------------------ BLAS, threads */

/** A one-line description of the BLAS in use, e.g.
 *  "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Zen MAX_THREADS=64, core Zen,
 *  2 threads, pthreads", written into buf (len bytes, always
 *  NUL-terminated, truncated if short).  *generic (may be NULL) receives 1
 *  when OpenBLAS runs its generic kernels (Prescott, Core2, ...) on a CPU
 *  that has AVX2 or AVX-512, where setting OPENBLAS_CORETYPE (e.g. Haswell,
 *  SkylakeX, Zen) in the environment would be several times faster; else 0.
 *  Errors: FA_ERR_NULL (buf), FA_ERR_SIZE (len < 1). */
FA_API int fa_blas_info(char *buf, int64_t len, int32_t *generic);

/** Set the number of threads for everything the library computes, in this
 *  process: OpenBLAS's thread count (process-wide, as
 *  openblas_set_num_threads), which each handle's own threads follow for
 *  the work OpenBLAS does not thread (the element-wise passes, the
 *  optimiser, and the weight GEMMs of networks whose layers can run side by
 *  side, each on one core, while OpenBLAS is set to one thread for that
 *  section).  One knob: a handle never runs more threads than this (at most
 *  64 of its own), and its threads sleep while OpenBLAS's run a GEMM.
 *  A network with convolution or pooling layers runs those layers in blocks
 *  of samples, one per thread, with OpenBLAS on one thread for the whole
 *  forward, error and weight-gradient phases.  OpenBLAS's own idle threads
 *  spin for a while after a threaded call made elsewhere in the process;
 *  OPENBLAS_THREAD_TIMEOUT=4 in the environment (read when OpenBLAS loads)
 *  makes them sleep at once.
 *  n >= 1.
 *  Errors: FA_ERR_ARG (n < 1 or above 1024). */
FA_API int fa_set_threads(int32_t n);

/** The thread count in effect (OpenBLAS's, which OPENBLAS_NUM_THREADS sets
 *  at start-up).  Never fails. */
FA_API int32_t fa_get_threads(void);

/* ------------------------------------------------------------ network spec */

/** Opaque builder of a network's layer stack: the input shape, then layers
 *  in order.  Each add checks the layer against the shape so far, so a bad
 *  layer is refused at once, naming it. */
typedef struct fa_spec fa_spec;

/** New spec with input shape (channels, height, width), each >= 1 (a flat
 *  input of n features is (n, 1, 1)); *out NULL on failure; free with
 *  fa_spec_free.  Errors: FA_ERR_NULL, FA_ERR_SIZE (a size < 1, or more than
 *  2^31-1 features), FA_ERR_NOMEM. */
FA_API int fa_spec_create(fa_spec **out, int32_t channels, int32_t height,
                          int32_t width);

/** Free a spec.  NULL is a no-op. */
FA_API void fa_spec_free(fa_spec *spec);

/** Append a dense layer of `units` outputs and activation (fa_activation).
 *  Errors: FA_ERR_NULL, FA_ERR_SIZE (units < 1, parameter count beyond
 *  2^40), FA_ERR_ARG (activation), FA_ERR_NOMEM (spec unchanged). */
FA_API int fa_spec_add_dense(fa_spec *spec, int32_t units, int32_t activation);

/** Append a convolution: `channels` output channels, kernel kernel_h x
 *  kernel_w, stride >= 1, zero padding pad >= 0 on every side, activation.
 *  Errors: FA_ERR_NULL, FA_ERR_SIZE (channels/kernel/stride < 1, pad < 0 or
 *  >= the kernel size, a kernel larger than the padded input, an output
 *  size that is not an integer, counts that overflow), FA_ERR_ARG
 *  (activation), FA_ERR_NOMEM. */
FA_API int fa_spec_add_conv2d(fa_spec *spec, int32_t channels, int32_t kernel_h,
                              int32_t kernel_w, int32_t stride, int32_t pad,
                              int32_t activation);

/** Append a pooling layer: kind FA_LAYER_MAXPOOL or FA_LAYER_AVGPOOL,
 *  size x size windows, stride >= 1 (0 means stride = size).
 *  Errors: FA_ERR_NULL, FA_ERR_ARG (kind), FA_ERR_SIZE (size < 1, a window
 *  larger than the input, an output size that is not an integer),
 *  FA_ERR_NOMEM. */
FA_API int fa_spec_add_pool(fa_spec *spec, int32_t kind, int32_t size,
                            int32_t stride);

/** Parse the text form of a spec: '-'-separated tokens, the first the input,
 *  "N" (N features) or "CxHxW"; then one token per layer:
 *    N         dense layer of N units
 *    cNkK      convolution, N channels, K x K kernel (kH,W for a kernel of
 *              H rows and W columns); optional sK (stride, default 1) and
 *              pK (padding, default 0) in that order: "c6k5p2",
 *              "c16k3s2p1", "c8k5,3"
 *    mK, aK    max / average pooling over K x K windows, optional sK stride
 *              (default K): "m2", "a3s2"
 *  Any layer token may end in "xR" to repeat it R times ("240x100" is 100
 *  dense layers of 240) and then in ":NAME" to give its activation
 *  ("120:relu", "c6k5:tanh"); without one a layer takes hidden_activation,
 *  the last layer output_activation (both fa_activation; pooling layers have
 *  none).  Example: LeNet on 28x28 images,
 *  "1x28x28-c6k5p2-m2-c16k5-m2-c120k5-84-10".  Numbers are decimal without
 *  sign or spaces; nothing may follow the last token.
 *  Errors: FA_ERR_NULL, FA_ERR_ARG (syntax, unknown layer or activation
 *  name, bad activations; the message gives the token and its position),
 *  FA_ERR_SIZE (as the fa_spec_add_* functions), FA_ERR_NOMEM. */
FA_API int fa_spec_parse(fa_spec **out, const char *text,
                         int32_t hidden_activation, int32_t output_activation);

/** The text form of a spec (as fa_spec_parse reads it, every activation
 *  written out) into buf of len bytes, NUL included.  *needed (may be NULL)
 *  receives the bytes required.  buf may be NULL with len 0 to query.
 *  Errors: FA_ERR_NULL (spec; buf with len > 0), FA_ERR_SIZE (len too small:
 *  buf then holds "" if len >= 1). */
FA_API int fa_spec_format(const fa_spec *spec, char *buf, int64_t len,
                          int64_t *needed);

/** Number of layers in the spec.  Errors: FA_ERR_NULL. */
FA_API int fa_spec_num_layers(const fa_spec *spec, int32_t *n_layers);

/** Layer `layer` (1..n_layers) of the spec; each out-pointer may be NULL.
 *  kind (fa_layer_kind); units (dense outputs or conv output channels, 0 for
 *  pooling); kernel_h, kernel_w (pool: the window; dense: 0), stride and pad
 *  (dense: 0), activation (pooling: FA_ACT_IDENTITY).
 *  Errors: FA_ERR_NULL (spec), FA_ERR_ARG (layer out of range). */
FA_API int fa_spec_layer(const fa_spec *spec, int32_t layer, int32_t *kind,
                         int32_t *units, int32_t *kernel_h, int32_t *kernel_w,
                         int32_t *stride, int32_t *pad, int32_t *activation);

/** Output shape of layer `layer` (0 = the input, 1..n_layers); each
 *  out-pointer may be NULL.  Errors: FA_ERR_NULL (spec), FA_ERR_ARG. */
FA_API int fa_spec_shape(const fa_spec *spec, int32_t layer, int32_t *channels,
                         int32_t *height, int32_t *width);

/* --------------------------------------------------------------- the handle */

/** Opaque network handle.  Owns the parameters [W_1|b_1|W_2|b_2|...], the
 *  gradients, the feedback matrices, optimiser state, RNG state and
 *  workspaces. */
typedef struct fa_net fa_net;

/** Create a dense network (the same as a spec of (n_0, 1, 1) and L dense
 *  layers).
 *  out          receives the new handle (set to NULL on failure); free it
 *               with fa_net_free.
 *  n_layers     L, the number of weight layers, 1 <= L <= 100000.
 *  sizes        (L+1) entries n_0..n_L, each >= 1; read during the call only.
 *  activations  L entries (fa_activation) for layers 1..L; read only.
 *  loss         fa_loss; SOFTMAX_CE and SIGMOID_BCE need FA_ACT_IDENTITY on
 *               layer L.
 *  seed         seeds the handle's RNG (weights, feedback, noise, dropout).
 *  The new network has rule FA_RULE_BP, optimiser FA_OPT_SGD, default
 *  hyperparameters, no dropout, weights from FA_INIT_DEFAULT and feedback
 *  initialisation (FA_DIST_UNIFORM, FA_SCALE_AUTO).
 *  Errors: FA_ERR_NULL, FA_ERR_ARG (unknown enum, bad loss/activation
 *  pair), FA_ERR_SIZE (L out of range, a size < 1, more than 2^40
 *  parameters), FA_ERR_NOMEM. */
FA_API int fa_net_create(fa_net **out, int32_t n_layers, const int32_t *sizes,
                         const int32_t *activations, int32_t loss,
                         uint64_t seed);

/** Create a network from a spec (read during the call only; the caller
 *  still owns and frees it).  Defaults and seed as fa_net_create.
 *  Errors: FA_ERR_NULL, FA_ERR_ARG (loss; a fused loss without an identity
 *  last layer; a spec without layers or whose last layer is a pooling
 *  layer), FA_ERR_SIZE (more than 2^40 parameters), FA_ERR_NOMEM. */
FA_API int fa_net_create_from_spec(fa_net **out, const fa_spec *spec,
                                   int32_t loss, uint64_t seed);

/** A new spec describing the network's layers (free it with fa_spec_free).
 *  Errors: FA_ERR_NULL, FA_ERR_NOMEM. */
FA_API int fa_net_get_spec(const fa_net *net, fa_spec **out);

/** A deep copy of the network: parameters, feedback, optimiser state,
 *  hyperparameters, rule and RNG state, everything a model file holds (the
 *  copy is what fa_net_load would give for a file saved from net now, and
 *  trains on bit-for-bit alike).  *out NULL on failure; free with
 *  fa_net_free.  Errors: FA_ERR_NULL, FA_ERR_NOMEM. */
FA_API int fa_net_clone(fa_net **out, const fa_net *net);

/** Free a network and everything it owns.  NULL is a no-op.  Borrowed
 *  pointers from fa_net_params_data die with it. */
FA_API void fa_net_free(fa_net *net);

/** Number of layers L.  Errors: FA_ERR_NULL. */
FA_API int fa_net_num_layers(const fa_net *net, int32_t *n_layers);

/** Copy the layer widths (feature counts) n_0..n_L into sizes, which has
 *  n == L+1 entries.  Errors: FA_ERR_NULL, FA_ERR_SIZE (n != L+1). */
FA_API int fa_net_get_sizes(const fa_net *net, int32_t *sizes, int64_t n);

/** Activation (fa_activation) of layer l, 1 <= l <= L (pooling layers:
 *  FA_ACT_IDENTITY).  Errors: FA_ERR_NULL, FA_ERR_ARG (layer out of range). */
FA_API int fa_net_get_activation(const fa_net *net, int32_t layer,
                                 int32_t *activation);

/** Kind (fa_layer_kind) of layer l, 1 <= l <= L.
 *  Errors: FA_ERR_NULL, FA_ERR_ARG (layer out of range). */
FA_API int fa_net_layer_kind(const fa_net *net, int32_t layer, int32_t *kind);

/** Shape of W_l: (rows, cols), (0, 0) for a layer without parameters; the
 *  bias b_l then has `rows` entries.  Errors: FA_ERR_NULL, FA_ERR_ARG. */
FA_API int fa_net_weight_shape(const fa_net *net, int32_t layer, int32_t *rows,
                               int32_t *cols);

/** The network's loss (fa_loss).  Errors: FA_ERR_NULL. */
FA_API int fa_net_get_loss(const fa_net *net, int32_t *loss);

/** Pre-size the workspaces for batches up to max_batch, so that no later
 *  step allocates.  (They also grow on their own the first time a larger
 *  batch arrives; they never shrink.)  Also allocates what the current rule
 *  needs (feedback, WM's noise buffers).
 *  Errors: FA_ERR_NULL, FA_ERR_SIZE (max_batch < 1 or overflow),
 *  FA_ERR_NOMEM (the network is unchanged). */
FA_API int fa_net_reserve(fa_net *net, int32_t max_batch);

/* ------------------------------------------------------------------ rules */

/** Switch the learning rule (fa_rule); allowed at any time, also between
 *  steps of a running training.  Switching to a rule with stored feedback
 *  the first time draws its matrices from the handle's RNG with the
 *  current feedback initialisation (unless the caller already set them with
 *  fa_net_set_feedback).
 *  Errors: FA_ERR_NULL, FA_ERR_ARG (unknown rule), FA_ERR_NOMEM (the rule is
 *  unchanged). */
FA_API int fa_net_set_rule(fa_net *net, int32_t rule);

/** Current rule (fa_rule).  Errors: FA_ERR_NULL. */
FA_API int fa_net_get_rule(const fa_net *net, int32_t *rule);

/** Choose how feedback matrices are drawn from now on: distribution
 *  (fa_distribution) and scale s (a float the distribution cannot overflow
 *  with, see fa_distribution, or FA_SCALE_AUTO == 0).  Every stored matrix
 *  already drawn, of every rule, is redrawn with the new setting (so this
 *  also serves to resample them, learned ones included); matrices not yet
 *  needed are drawn later, when their rule is first set.
 *  Errors: FA_ERR_NULL, FA_ERR_ARG (unknown distribution, scale < 0, not
 *  finite or too large for the distribution). */
FA_API int fa_net_set_feedback_init(fa_net *net, int32_t distribution,
                                    double scale);

/** Choose where DFA injects the error (fa_dfa_variant).
 *  Errors: FA_ERR_NULL, FA_ERR_ARG. */
FA_API int fa_net_set_dfa_variant(fa_net *net, int32_t variant);

/** Current DFA variant.  Errors: FA_ERR_NULL. */
FA_API int fa_net_get_dfa_variant(const fa_net *net, int32_t *variant);

/** Shape of a feedback matrix of `rule` at `layer`:
 *  LAYER kind:  layers 2..L that have parameters, W_layer's shape;
 *  DIRECT kind: layers 1..L-1 that have parameters, (n_L, n_layer).
 *  Errors: FA_ERR_NULL, FA_ERR_ARG (unknown rule, rule without feedback,
 *  layer outside the range above or without parameters). */
FA_API int fa_net_feedback_shape(const fa_net *net, int32_t rule, int32_t layer,
                                 int32_t *rows, int32_t *cols);

/** Copy a feedback matrix out into buf, (rows, cols) as given by
 *  fa_net_feedback_shape, column-major, n == rows*cols elements: the stored
 *  matrix (F_l, M_l of BRSF/FRSF, B_l of KP/WM, G_l), drawing the rule's
 *  matrices first if they were never drawn; for USF the derived
 *  s_l sign(W_l).
 *  Errors: FA_ERR_NULL, FA_ERR_ARG (rule/layer), FA_ERR_SIZE (n),
 *  FA_ERR_NOMEM. */
FA_API int fa_net_get_feedback(fa_net *net, int32_t rule, int32_t layer,
                               float *buf, int64_t n);

/** Replace a stored feedback matrix with the caller's values (copied; buf is
 *  borrowed for this call only).  Shapes and n as in fa_net_get_feedback.
 *  Errors: FA_ERR_NULL, FA_ERR_ARG (rule/layer, or a rule that stores
 *  nothing: USF), FA_ERR_SIZE, FA_ERR_NONFINITE (NaN or infinity in buf;
 *  nothing is changed), FA_ERR_NOMEM. */
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
 *  p = 0 disables it.  The masks are drawn from the handle's dropout RNG
 *  stream (see fa_net_seed_dropout).
 *  Errors: FA_ERR_NULL, FA_ERR_ARG (layer out of range, p outside [0,1)). */
FA_API int fa_net_set_dropout(fa_net *net, int32_t layer, double p);

/** Dropout probability of hidden layer l.  Errors: FA_ERR_NULL, FA_ERR_ARG. */
FA_API int fa_net_get_dropout(const fa_net *net, int32_t layer, double *p);

/** Reseed the stream that draws dropout masks, and only it.  The handle
 *  has two streams, both seeded from the creation seed: the model stream
 *  (weights, feedback, BRSF's redraws, WM's noise) and the dropout stream.
 *  Data-parallel training gives each process its own dropout seed while
 *  their model streams, and so their feedback, stay identical.
 *  Errors: FA_ERR_NULL. */
FA_API int fa_net_seed_dropout(fa_net *net, uint64_t seed);

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
 *  column; or a non-finite network output from huge parameters, y then
 *  unchanged), FA_ERR_NOMEM. */
FA_API int fa_net_forward(fa_net *net, const float *x, int32_t ldx,
                          int32_t batch, float *y, int32_t ldy);

/** Mean loss of the network on a batch (no dropout, nothing updated).
 *  x (n_0, batch) with ldx; t the target (n_L, batch) with ldt.
 *  Errors: as fa_net_forward; FA_ERR_NONFINITE also for NaN/inf in t and
 *  for a loss beyond the float range. */
FA_API int fa_net_loss(fa_net *net, const float *x, int32_t ldx,
                       const float *t, int32_t ldt, int32_t batch,
                       float *loss);

/** One training step: forward (with dropout), the current rule's update,
 *  the optimiser step on the parameters, and the rule's own step on its
 *  feedback (BRSF, KP, WM).
 *  x (n_0, batch) with ldx; t the target (n_L, batch) with ldt; both read
 *  only, and must be finite (checked).  loss (may be NULL) receives the
 *  batch's mean loss before the update.
 *  A step fails with FA_ERR_NONFINITE, leaving the parameters, feedback,
 *  optimiser state and RNG exactly as they were, if the loss is not finite
 *  as a float, if any update entry is not finite, or if the step could take
 *  a parameter, optimiser moment or feedback entry out of the float range
 *  (judged before anything is written, from bounds on the values; steps
 *  are refused only for values near 1e37 or for absurd gradients such as
 *  1e20 under Adam, whose squares overflow).
 *  It is the same step as fa_net_compute_update followed by
 *  fa_net_apply_update: bitwise, except under plain SGD when every weight
 *  GEMM sums at most 256 terms (a dense layer's batch), where the update is
 *  applied inside the weight GEMMs and the two agree to float rounding.
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
 *  Parameters, feedback and optimiser state are not touched.
 *  Errors: FA_ERR_NULL, FA_ERR_SIZE (n, batch, ld), FA_ERR_NONFINITE (the
 *  loss or the update is not finite; grad then holds unspecified values),
 *  FA_ERR_NOMEM. */
FA_API int fa_net_compute_update(fa_net *net, const float *x, int32_t ldx,
                                 const float *t, int32_t ldt, int32_t batch,
                                 float *grad, int64_t n, float *loss);

/** The second half: one optimiser step using grad (n == param count
 *  entries, layout as fa_net_compute_update; read only) as the update
 *  direction, then the rule's own step on its feedback.  Weight decay is
 *  added here.  Processes that apply the same grad to identical networks
 *  stay bitwise identical (feedback included).
 *  Errors: FA_ERR_NULL, FA_ERR_SIZE (n), FA_ERR_NONFINITE (grad holds NaN
 *  or infinity, or the step would leave the float range, as described at
 *  fa_net_train_step: nothing changes), FA_ERR_NOMEM. */
FA_API int fa_net_apply_update(fa_net *net, const float *grad, int64_t n);

/* --------------------------------------------------------------- parameters */

/** Total number of parameters, the sum over layers of the sizes of W_l and
 *  b_l.  Errors: FA_ERR_NULL. */
FA_API int fa_net_param_count(const fa_net *net, int64_t *count);

/** Copy all parameters into buf (n == param count), layout
 *  [W_1|b_1|...|W_L|b_L], each W_l column-major in the shape of
 *  fa_net_weight_shape (layers without parameters take no space).
 *  Errors: FA_ERR_NULL, FA_ERR_SIZE. */
FA_API int fa_net_get_params(const fa_net *net, float *buf, int64_t n);

/** Replace all parameters from buf (copied; layout as fa_net_get_params).
 *  Optimiser state is kept.
 *  Errors: FA_ERR_NULL, FA_ERR_SIZE, FA_ERR_NONFINITE (nothing changed). */
FA_API int fa_net_set_params(fa_net *net, const float *buf, int64_t n);

/** Borrowed read-only pointer to the parameter block (layout as
 *  fa_net_get_params), for zero-copy views.  Valid until fa_net_free; the
 *  values change in place with every training step, fa_net_set_params,
 *  fa_net_init_weights and never move.  The block is 64-byte aligned.  Do
 *  not write through it.
 *  Errors: FA_ERR_NULL. */
FA_API int fa_net_params_data(const fa_net *net, const float **data);

/** Offsets (in floats, from the start of the parameter block) of W_l and
 *  b_l for layer 1 <= l <= L.  For a layer without parameters both are the
 *  offset where the next layer's parameters start (empty ranges).
 *  Errors: FA_ERR_NULL, FA_ERR_ARG (layer out of range). */
FA_API int fa_net_layer_offsets(const fa_net *net, int32_t layer,
                                int64_t *w_offset, int64_t *b_offset);

/* -------------------------------------------------------------- diagnostics */

/** Alignment of the current rule with backprop on one batch (dropout off;
 *  parameters, feedback, optimiser and RNG untouched).  For each hidden
 *  layer l = 1..L-1, angles[l-1] receives the angle in degrees (0..180)
 *  between the rule's weight update dW_l and the exact BP gradient dW_l:
 *  the quantity Lillicrap et al. plot.  Under BP every angle is 0.  An angle
 *  involving a zero matrix is reported as 90 (so SHALLOW gives 90); a layer
 *  without parameters gets NaN.
 *  x (n_0, batch) with ldx, t (n_L, batch) with ldt; angles has
 *  n == L-1 entries (L == 1 needs n == 0 and angles may be NULL).
 *  Errors: FA_ERR_NULL, FA_ERR_SIZE, FA_ERR_NONFINITE, FA_ERR_NOMEM. */
FA_API int fa_net_alignment(fa_net *net, const float *x, int32_t ldx,
                            const float *t, int32_t ldt, int32_t batch,
                            float *angles, int64_t n);

/** Angles in degrees between forward weights and the feedback that stands
 *  in for them, n == L-1 entries:
 *  LAYER rules:  angles[l-2] = angle(W_l, B_l) for l = 2..L, with B_l the
 *                matrix the rule uses on the way back (s sign(W) for USF,
 *                |M| .* sign(W) for BRSF and FRSF);
 *  DIRECT rules: angles[l-1] = angle(W_L W_{L-1} ... W_{l+1}, G_l) for
 *                l = 1..L-1 (the linear path that G_l replaces).
 *  Entries that have no meaning (a layer without parameters; a DIRECT
 *  angle whose path crosses a convolution or pooling layer) are NaN.
 *  Draws the rule's feedback matrices if they were never drawn.
 *  Errors: FA_ERR_NULL, FA_ERR_ARG (unknown rule or a rule without
 *  feedback), FA_ERR_SIZE (n), FA_ERR_NOMEM. */
FA_API int fa_net_feedback_angles(fa_net *net, int32_t rule, float *angles,
                                  int64_t n);

/* ----------------------------------------------------- model files, images */

/** The model image: everything about a network as bytes.  Architecture
 *  (the spec), rule and DFA variant, feedback initialisation and every
 *  drawn feedback matrix of every rule, optimiser, hyperparameters and
 *  optimiser state, dropout rates, parameters and both RNG streams, so that
 *  a loaded network continues training bit-for-bit.  Versioned binary
 *  format with a CRC-32 (docs/ARCHITECTURE.md describes it; the library
 *  writes format 2 and reads formats 1 and 2).
 *  Write it into buf of len bytes; *needed (may be NULL) receives the image
 *  size, also when len is too small.  buf may be NULL with len 0 to query
 *  the size.
 *  Errors: FA_ERR_NULL (net; buf with len > 0), FA_ERR_SIZE (len too small:
 *  nothing written). */
FA_API int fa_net_save_image(const fa_net *net, void *buf, int64_t len,
                             int64_t *needed);

/** Load a network from an image (buf, len bytes; borrowed for the call) into
 *  a new handle (*out, NULL on failure; free with fa_net_free).  The same
 *  checks as fa_net_load.
 *  Errors: FA_ERR_NULL, FA_ERR_FORMAT (not an image, unknown format version,
 *  other endianness, truncated, trailing bytes, checksum mismatch,
 *  inconsistent sizes or values -- the message says which), FA_ERR_NOMEM. */
FA_API int fa_net_load_image(fa_net **out, const void *buf, int64_t len);

/** Save the network's image to path.  Writes a temporary file in the same
 *  directory, named "<name>.fa-tmp-<unique>" (or a shorter name when the
 *  target's name is long), flushes it to disk and renames it over path: an
 *  existing file at path is either replaced whole or left untouched.  A
 *  temporary left behind by a save that was killed is removed by the next
 *  save of the same path.  If path is a symbolic link the link is followed:
 *  its target is replaced and the link kept.  path is borrowed for the
 *  call.
 *  Errors: FA_ERR_NULL, FA_ERR_IO (empty path, or the system refused an
 *  operation; the message names the path and the system error),
 *  FA_ERR_NOMEM. */
FA_API int fa_net_save(const fa_net *net, const char *path);

/** Load a network saved by fa_net_save (or any image written to a file)
 *  into a new handle (*out, NULL on failure; free with fa_net_free).
 *  Errors: FA_ERR_NULL, FA_ERR_IO (cannot open or read), FA_ERR_FORMAT (as
 *  fa_net_load_image), FA_ERR_NOMEM. */
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
 *  (n or batch < 1, ld too small), FA_ERR_NONFINITE (the loss is beyond
 *  the float range). */
FA_API int fa_loss_eval(int32_t loss, const float *y, int32_t ldy,
                        const float *t, int32_t ldt, int32_t n, int32_t batch,
                        float *value, float *dy, int32_t lddy);

#ifdef __cplusplus
}
#endif

#endif /* FEEDBACKALIGN_H */
