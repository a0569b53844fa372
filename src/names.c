/* names.c -- names and descriptions of every enum value, so that callers
 * (the trainer, the Julia package, the benchmarks, the tests) ask the
 * library instead of keeping lists.  Rules, layer kinds and hyperparameters
 * carry their own names in their descriptors (src/rules/, src/layers/,
 * optimizer.c); the small fixed enums are listed here. */
#include <ctype.h>
#include <string.h>

#include "internal.h"

typedef struct named {
    const char *name;
    const char *description;
} named;

static const named activations[FA_N_ACTIVATIONS] = {
    [FA_ACT_IDENTITY] = {"identity", "f(a) = a"},
    [FA_ACT_TANH] = {"tanh", "hyperbolic tangent"},
    [FA_ACT_SIGMOID] = {"sigmoid", "logistic function 1 / (1 + exp(-a))"},
    [FA_ACT_RELU] = {"relu", "rectified linear unit max(a, 0)"},
    [FA_ACT_LEAKY_RELU] = {"leaky_relu", "a > 0 ? a : slope a (slope: hyperparameter "
                                         "leaky_slope)"},
};

static const named losses[FA_N_LOSSES] = {
    [FA_LOSS_MSE] = {"mse", "mean squared error, 1/2 |y - t|^2 per sample"},
    [FA_LOSS_SOFTMAX_CE] = {"softmax_ce", "softmax cross-entropy on logits"},
    [FA_LOSS_SIGMOID_BCE] = {"sigmoid_bce", "binary cross-entropy on sigmoid logits"},
};

static const named variants[FA_N_DFA_VARIANTS] = {
    [FA_DFA_AFTER_ACTIVATION] = {"after_activation",
                                 "direct error injected after the activation, times f' "
                                 "(Nokland)"},
    [FA_DFA_BEFORE_ACTIVATION] = {"before_activation",
                                  "direct error injected before the activation, without f'"},
};

static const named distributions[FA_N_DISTRIBUTIONS] = {
    [FA_DIST_UNIFORM] = {"uniform", "uniform on [-s, s]"},
    [FA_DIST_GAUSSIAN] = {"gaussian", "normal with deviation s"},
    [FA_DIST_SIGN] = {"sign", "+s or -s with equal probability"},
};

static const named inits[FA_N_INITS] = {
    [FA_INIT_DEFAULT] = {"default", "He uniform for ReLU layers, Xavier uniform otherwise"},
    [FA_INIT_XAVIER_UNIFORM] = {"xavier_uniform", "U[-r, r], r = sqrt(6/(fan_in+fan_out))"},
    [FA_INIT_XAVIER_NORMAL] = {"xavier_normal", "N(0, 2/(fan_in+fan_out))"},
    [FA_INIT_HE_UNIFORM] = {"he_uniform", "U[-r, r], r = sqrt(6/fan_in)"},
    [FA_INIT_HE_NORMAL] = {"he_normal", "N(0, 2/fan_in)"},
    [FA_INIT_ZERO] = {"zero", "all weights zero (Nokland's initial condition for FA/DFA)"},
};

static const named optimizers[FA_N_OPTIMIZERS] = {
    [FA_OPT_SGD] = {"sgd", "plain stochastic gradient descent"},
    [FA_OPT_MOMENTUM] = {"momentum", "SGD with heavy-ball momentum"},
    [FA_OPT_NESTEROV] = {"nesterov", "SGD with Nesterov momentum"},
    [FA_OPT_ADAM] = {"adam", "Adam (Kingma & Ba) with bias correction"},
    [FA_OPT_RMSPROP] = {"rmsprop", "RMSprop"},
};

static const named feedback_kinds[FA_N_FEEDBACK_KINDS] = {
    [FA_FEEDBACK_NONE] = {"none", "no feedback matrices"},
    [FA_FEEDBACK_LAYER] = {"layer", "one matrix of W's shape per layer from layer 2"},
    [FA_FEEDBACK_DIRECT] = {"direct", "one (n_L, n_l) matrix per hidden layer"},
};

static const named hidden_modes[FA_N_HIDDEN_MODES] = {
    [FA_HIDDEN_CHAIN] = {"chain", "layer by layer from the output down"},
    [FA_HIDDEN_DIRECT] = {"direct", "every hidden layer at once from the output"},
    [FA_HIDDEN_NONE] = {"none", "the hidden layers do not learn"},
};

static const char *const type_names[] = {
    [FA_ENUM_ACTIVATION] = "fa_activation", [FA_ENUM_LOSS] = "fa_loss",
    [FA_ENUM_RULE] = "fa_rule",             [FA_ENUM_DFA_VARIANT] = "fa_dfa_variant",
    [FA_ENUM_DISTRIBUTION] = "fa_distribution", [FA_ENUM_INIT] = "fa_init",
    [FA_ENUM_OPTIMIZER] = "fa_optimizer",   [FA_ENUM_HPARAM] = "fa_hparam",
    [FA_ENUM_LAYER] = "fa_layer_kind",      [FA_ENUM_FEEDBACK_KIND] = "fa_feedback_kind",
    [FA_ENUM_HIDDEN_MODE] = "fa_hidden_mode",
};
#define N_TYPES ((int32_t)(sizeof type_names / sizeof type_names[0]))

/* Name and description of (type, value); 0 if there is none. */
static int entry(int32_t type, int32_t value, const char **name, const char **desc)
{
    const named *table = NULL;
    int32_t n = 0;
    switch (type) {
    case FA_ENUM_ACTIVATION: table = activations; n = FA_N_ACTIVATIONS; break;
    case FA_ENUM_LOSS: table = losses; n = FA_N_LOSSES; break;
    case FA_ENUM_DFA_VARIANT: table = variants; n = FA_N_DFA_VARIANTS; break;
    case FA_ENUM_DISTRIBUTION: table = distributions; n = FA_N_DISTRIBUTIONS; break;
    case FA_ENUM_INIT: table = inits; n = FA_N_INITS; break;
    case FA_ENUM_OPTIMIZER: table = optimizers; n = FA_N_OPTIMIZERS; break;
    case FA_ENUM_FEEDBACK_KIND: table = feedback_kinds; n = FA_N_FEEDBACK_KINDS; break;
    case FA_ENUM_HIDDEN_MODE: table = hidden_modes; n = FA_N_HIDDEN_MODES; break;
    case FA_ENUM_RULE:
        if (value < 0 || value >= FA_N_RULES)
            return 0;
        *name = fa_rule_table[value]->name;
        *desc = fa_rule_table[value]->description;
        return 1;
    case FA_ENUM_LAYER:
        if (value < 0 || value >= FA_N_LAYER_KINDS)
            return 0;
        *name = fa_layer_table[value]->name;
        *desc = fa_layer_table[value]->description;
        return 1;
    case FA_ENUM_HPARAM: {
        const fa_hparam_desc *h = fa_hparam_find(value);
        if (!h)
            return 0;
        *name = h->name;
        *desc = h->description;
        return 1;
    }
    default:
        return 0;
    }
    if (value < 0 || value >= n)
        return 0;
    *name = table[value].name;
    *desc = table[value].description;
    return 1;
}

FA_API int32_t fa_enum_count(int32_t type)
{
    switch (type) {
    case FA_ENUM_ACTIVATION: return FA_N_ACTIVATIONS;
    case FA_ENUM_LOSS: return FA_N_LOSSES;
    case FA_ENUM_RULE: return FA_N_RULES;
    case FA_ENUM_DFA_VARIANT: return FA_N_DFA_VARIANTS;
    case FA_ENUM_DISTRIBUTION: return FA_N_DISTRIBUTIONS;
    case FA_ENUM_INIT: return FA_N_INITS;
    case FA_ENUM_OPTIMIZER: return FA_N_OPTIMIZERS;
    case FA_ENUM_HPARAM: return FA_N_HPARAMS;
    case FA_ENUM_LAYER: return FA_N_LAYER_KINDS;
    case FA_ENUM_FEEDBACK_KIND: return FA_N_FEEDBACK_KINDS;
    case FA_ENUM_HIDDEN_MODE: return FA_N_HIDDEN_MODES;
    default: return FA_ERR_ARG;
    }
}

FA_API const char *fa_enum_name(int32_t type, int32_t value)
{
    const char *name = NULL, *desc = NULL;
    return entry(type, value, &name, &desc) ? name : NULL;
}

FA_API const char *fa_enum_description(int32_t type, int32_t value)
{
    const char *name = NULL, *desc = NULL;
    return entry(type, value, &name, &desc) ? desc : NULL;
}

/* Names compare ignoring case, with '-' and '_' the same. */
static int same_name(const char *a, const char *b)
{
    for (;; a++, b++) {
        int ca = *a == '-' ? '_' : tolower((unsigned char)*a);
        int cb = *b == '-' ? '_' : tolower((unsigned char)*b);
        if (ca != cb)
            return 0;
        if (ca == '\0')
            return 1;
    }
}

FA_API int fa_enum_lookup(int32_t type, const char *name, int32_t *value)
{
    static const char fn[] = "fa_enum_lookup";
    if (type < 0 || type >= N_TYPES)
        return fa_fail(FA_ERR_ARG, fn, "type = %d is not a fa_enum_type (expected 0..%d)",
                       (int)type, (int)N_TYPES - 1);
    if (!name)
        return fa_fail(FA_ERR_NULL, fn, "name is NULL");
    if (!value)
        return fa_fail(FA_ERR_NULL, fn, "value is NULL");
    const int32_t n = fa_enum_count(type);
    for (int32_t v = 0; v < n; v++) {
        const char *nm = NULL, *desc = NULL;
        if (entry(type, v, &nm, &desc) && same_name(name, nm)) {
            *value = v;
            return FA_OK;
        }
    }
    char list[512];
    fa_enum_names(type, list, sizeof list);
    return fa_fail(FA_ERR_ARG, fn, "'%.64s' is not a %s; expected one of: %s", name,
                   type_names[type], list);
}

FA_API int fa_rule_info(int32_t rule, int32_t *kind, int32_t *stored, int32_t *learns,
                        int32_t *parallel)
{
    if (rule < 0 || rule >= FA_N_RULES)
        return fa_fail(FA_ERR_ARG, "fa_rule_info", "rule = %d is not a fa_rule (expected "
                       "0..%d)", (int)rule, FA_N_RULES - 1);
    const fa_rule_desc *r = fa_rule_table[rule];
    if (kind)
        *kind = r->feedback;
    if (stored)
        *stored = r->stored;
    if (learns)
        *learns = r->learns;
    if (parallel)
        *parallel = r->hidden == FA_HIDDEN_DIRECT;
    return FA_OK;
}

FA_API int fa_rule_hidden(int32_t rule, int32_t *mode)
{
    if (rule < 0 || rule >= FA_N_RULES)
        return fa_fail(FA_ERR_ARG, "fa_rule_hidden", "rule = %d is not a fa_rule (expected "
                       "0..%d)", (int)rule, FA_N_RULES - 1);
    if (!mode)
        return fa_fail(FA_ERR_NULL, "fa_rule_hidden", "mode is NULL (expected an int32_t to "
                       "receive the fa_hidden_mode)");
    *mode = fa_rule_table[rule]->hidden;
    return FA_OK;
}

void fa_enum_names(int32_t type, char *buf, size_t len)
{
    const int32_t n = fa_enum_count(type);
    size_t used = 0;
    buf[0] = '\0';
    for (int32_t v = 0; v < n; v++) {
        const char *nm = fa_enum_name(type, v);
        size_t k = strlen(nm);
        if (used + k + 3 >= len)
            break;
        if (v) {
            memcpy(buf + used, ", ", 2);
            used += 2;
        }
        memcpy(buf + used, nm, k + 1);
        used += k;
    }
}
