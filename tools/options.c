/*
 * options.c -- fa-train's command line: the option table (which is also
 * --help), the enum name lists, and the conversion of each option's text.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fa-train.h"

/* ------------------------------------------------------------ enum names */

/* The only copy of the names the command line accepts.  The library enum
 * lists are in the order of the library's values (fixed ABI), so a name's
 * index is its value.  When the library offers its own name tables, these
 * become calls to it in enum_name and parse_enum, and nowhere else. */
static const char *const act_names[] = {"identity", "tanh", "sigmoid", "relu",
                                        "leaky-relu", NULL};
static const char *const loss_names[] = {"mse", "softmax-ce", "sigmoid-bce",
                                         NULL};
static const char *const rule_names[] = {"bp", "fa", "dfa", NULL};
static const char *const dist_names[] = {"uniform", "gaussian", "sign", NULL};
static const char *const variant_names[] = {"after", "before", NULL};
static const char *const init_names[] = {"default", "xavier-uniform",
                                         "xavier-normal", "he-uniform",
                                         "he-normal", "zero", NULL};
static const char *const opt_names[] = {"sgd", "momentum", "nesterov", "adam",
                                        "rmsprop", NULL};
/* The tool's own choices (not library enums). */
static const char *const norm_names[] = {"none", "center", "standardize",
                                         NULL};
static const char *const progress_names[] = {"auto", "on", "off", NULL};

static const char *const *const name_lists[NK_COUNT] = {
    [NK_ACT] = act_names,         [NK_LOSS] = loss_names,
    [NK_RULE] = rule_names,       [NK_DIST] = dist_names,
    [NK_VARIANT] = variant_names, [NK_INIT] = init_names,
    [NK_OPT] = opt_names,         [NK_NORM] = norm_names,
    [NK_PROGRESS] = progress_names,
};

static int32_t
enum_count(name_kind kind)
{
    int32_t n = 0;
    while (name_lists[kind][n] != NULL)
        n++;
    return n;
}

const char *
enum_name(name_kind kind, int32_t value)
{
    if ((unsigned)kind >= NK_COUNT || value < 0 || value >= enum_count(kind))
        return "?";
    return name_lists[kind][value];
}

/* names joined by sep, truncated to the buffer. */
static void
join_names(name_kind kind, const char *sep, char *buf, size_t len)
{
    buf[0] = '\0';
    for (int32_t i = 0; i < enum_count(kind); i++) {
        size_t used = strlen(buf);
        snprintf(buf + used, len - used, "%s%s", i ? sep : "",
                 enum_name(kind, i));
    }
}

bool
parse_enum(const char *option, const char *text, name_kind kind,
           int32_t *out)
{
    for (int32_t i = 0; i < enum_count(kind); i++) {
        if (strcmp(text, enum_name(kind, i)) == 0) {
            *out = i;
            return true;
        }
    }
    char list[256];
    join_names(kind, ", ", list, sizeof list);
    report_error("--%s: unknown value '%s', expected one of %s", option, text,
                 list);
    return false;
}

void
rule_title(int32_t rule, char *buf, size_t len)
{
    snprintf(buf, len, "%s", enum_name(NK_RULE, rule));
    for (char *p = buf; *p; p++)
        if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 'a' + 'A');
}

/* ------------------------------------------------------------ the table */

typedef struct optdef {
    const char *group; /* printed as a heading when it changes */
    const char *name;
    const char *meta;  /* NULL: a flag without a value, or an enum option */
    int kind;          /* name_kind of an enum option, else -1 */
    const char *def;   /* default as text; NULL: none */
    const char *help;
} optdef;

#define NO_ENUM (-1)

static const optdef opts[O_COUNT] = {
    [O_DATA] = {"Data", "data", "DIR", NO_ENUM,
                "/usr/share/datasets/fashion-mnist",
                "directory with train-images-idx3-ubyte, train-labels-idx1-ubyte, "
                "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (each .gz or plain)"},
    [O_VAL] = {"Data", "val", "N", NO_ENUM, "0",
               "hold out the last N training samples for validation"},
    [O_LIMIT_TRAIN] = {"Data", "limit-train", "N", NO_ENUM, "0",
                       "use only the first N samples of the training file (0: all)"},
    [O_LIMIT_TEST] = {"Data", "limit-test", "N", NO_ENUM, "0",
                      "use only the first N test samples (0: all)"},
    [O_INPUT_NORM] = {"Data", "input-norm", NULL, NK_NORM, "none",
                      "subtract the training set's mean pixel (and divide by its "
                      "standard deviation); pass the same value with --load"},
    [O_ARCH] = {"Model", "arch", "N0-N1-...-NL", NO_ENUM, "784-1000-10",
                "layer widths: input, hidden layers, output"},
    [O_ACT] = {"Model", "act", NULL, NK_ACT, "tanh",
               "activation of the hidden layers"},
    [O_OUT_ACT] = {"Model", "out-act", NULL, NK_ACT, "identity",
                   "activation of the output layer (must be identity with "
                   "softmax-ce and sigmoid-bce)"},
    [O_LOSS] = {"Model", "loss", NULL, NK_LOSS, "softmax-ce",
                "loss on one-hot targets"},
    [O_DROPOUT] = {"Model", "dropout", "P", NO_ENUM, "0",
                   "dropout probability on every hidden layer, in [0, 1)"},
    [O_INIT] = {"Model", "init", NULL, NK_INIT, "default",
                "forward weight initialisation (default: He for ReLU "
                "layers, Xavier otherwise)"},
    [O_RULE] = {"Learning rule", "rule", NULL, NK_RULE, "bp",
                "backprop, feedback alignment, direct feedback alignment"},
    [O_FB_DIST] = {"Learning rule", "fb-dist", NULL, NK_DIST, "uniform",
                   "distribution of the random feedback matrices"},
    [O_FB_SCALE] = {"Learning rule", "fb-scale", "S", NO_ENUM, "0",
                    "scale of the feedback distribution (0: 1/sqrt(width of "
                    "the receiving layer))"},
    [O_DFA_VARIANT] = {"Learning rule", "dfa-variant", NULL, NK_VARIANT,
                       "after",
                       "DFA injects G'e after the activation (times f', Nokland) "
                       "or before it (without f')"},
    [O_OPT] = {"Optimiser", "opt", NULL, NK_OPT, "adam", "optimiser"},
    [O_LR] = {"Optimiser", "lr", "X", NO_ENUM, "0.001", "learning rate"},
    [O_LR_DECAY] = {"Optimiser", "lr-decay", "F", NO_ENUM, "1",
                    "multiply the learning rate by F every --lr-every epochs"},
    [O_LR_EVERY] = {"Optimiser", "lr-every", "K", NO_ENUM, "1",
                    "epochs between learning-rate decays"},
    [O_MOMENTUM] = {"Optimiser", "momentum", "MU", NO_ENUM, "0.9",
                    "momentum of momentum and nesterov, in [0, 1)"},
    [O_WD] = {"Optimiser", "wd", "X", NO_ENUM, "0",
              "L2 weight decay on the weights"},
    [O_EPOCHS] = {"Training", "epochs", "N", NO_ENUM, "10",
                  "epochs to train (0 with --load: only evaluate)"},
    [O_BATCH] = {"Training", "batch", "N", NO_ENUM, "128", "mini-batch size"},
    [O_SEED] = {"Training", "seed", "N", NO_ENUM, "1",
                "seed of the weights, feedback, dropout and shuffling"},
    [O_THREADS] = {"Training", "threads", "N", NO_ENUM, "0",
                   "OpenBLAS threads (0: OpenBLAS's own choice)"},
    [O_SAVE] = {"Files", "save", "FILE", NO_ENUM, NULL,
                "save the trained network to FILE"},
    [O_LOAD] = {"Files", "load", "FILE", NO_ENUM, NULL,
                "start from a saved network (architecture, rule, optimiser "
                "state); options given explicitly override its settings"},
    [O_LOG] = {"Files", "log", "FILE.csv", NO_ENUM, NULL,
               "write one CSV row per epoch (with --compare: OUT/log.csv)"},
    [O_COMPARE] = {"Output", "compare", "RULES", NO_ENUM, NULL,
                   "train the same network and seed under each rule of a "
                   "comma-separated list (e.g. bp,fa,dfa), print a table and "
                   "write plots to --out"},
    [O_OUT] = {"Output", "out", "DIR", NO_ENUM, "results",
               "directory for the --compare table data and plots"},
    [O_ALIGN_BATCH] = {"Output", "align-batch", "N", NO_ENUM, "512",
                       "training samples on which the alignment angles are "
                       "measured each epoch (0: off)"},
    [O_PROGRESS] = {"Output", "progress", NULL, NK_PROGRESS, "auto",
                    "progress bar on stderr (auto: when stderr is a terminal)"},
    [O_HELP] = {"Output", "help", NULL, NO_ENUM, NULL,
                "print this help and exit"},
};

static bool
takes_value(const optdef *o)
{
    return o->meta != NULL || o->kind != NO_ENUM;
}

/* What an option's value looks like, for --help and messages: its meta
 * word, or an enum option's names joined by '|'. */
static void
option_meta(const optdef *o, char *buf, size_t len)
{
    if (o->kind != NO_ENUM)
        join_names((name_kind)o->kind, "|", buf, len);
    else
        snprintf(buf, len, "%s", o->meta ? o->meta : "");
}

/* ----------------------------------------------------------------- help */

/* Print text word-wrapped to width columns, each line indented. */
static void
print_wrapped(const char *text, int indent, int width)
{
    const char *p = text;
    while (*p) {
        int avail = width - indent;
        int len = (int)strlen(p);
        int cut = len;
        if (len > avail) {
            cut = avail;
            while (cut > 0 && p[cut] != ' ')
                cut--;
            if (cut == 0) /* one long word: break it at the space after */
                for (cut = avail; p[cut] && p[cut] != ' '; cut++)
                    ;
        }
        printf("%*s%.*s\n", indent, "", cut, p);
        p += cut;
        while (*p == ' ')
            p++;
    }
}

void
print_help(void)
{
    printf("Usage: " PROG " [OPTION VALUE]...\n"
           "Train a dense network on an IDX data set (MNIST format) with "
           "backprop (bp),\nfeedback alignment (fa) or direct feedback "
           "alignment (dfa).  Options take their\nvalue as --opt VALUE or "
           "--opt=VALUE; defaults in brackets.\n");
    const char *group = "";
    for (int i = 0; i < O_COUNT; i++) {
        const optdef *o = &opts[i];
        if (strcmp(group, o->group) != 0) {
            group = o->group;
            printf("\n%s:\n", group);
        }
        char meta[256];
        option_meta(o, meta, sizeof meta);
        printf("  --%s%s%s\n", o->name, takes_value(o) ? " " : "", meta);
        char text[512];
        snprintf(text, sizeof text, "%s [%s]", o->help,
                 o->def ? o->def : (takes_value(o) ? "none" : "off"));
        print_wrapped(text, 6, 78);
    }
    printf("\nExample: " PROG " --rule dfa --epochs 20 --lr 0.0003\n"
           "         " PROG " --compare bp,fa,dfa --epochs 3 --out results\n");
}

/* -------------------------------------------------------------- values */

static int
find_option(const char *name, size_t len)
{
    for (int i = 0; i < O_COUNT; i++)
        if (strlen(opts[i].name) == len && strncmp(opts[i].name, name, len) == 0)
            return i;
    return -1;
}

static bool
parse_long(const char *opt, const char *s, long lo, long hi, int32_t *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno != 0 || v < lo || v > hi) {
        report_error("--%s: expected an integer in %ld..%ld, got '%s'", opt,
                     lo, hi, s);
        return false;
    }
    *out = (int32_t)v;
    return true;
}

/* Real in [lo, hi], or [lo, hi) when hi_open. */
static bool
parse_real(const char *opt, const char *s, double lo, double hi, bool hi_open,
           double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (*s == '\0' || *end != '\0' || errno != 0 || !isfinite(v) || v < lo ||
        v > hi || (hi_open && v >= hi)) {
        report_error("--%s: expected a number in [%g, %g%c, got '%s'", opt, lo,
                     hi, hi_open ? ')' : ']', s);
        return false;
    }
    *out = v;
    return true;
}

static bool
parse_arch(const char *s, config *c)
{
    const char *p = s;
    int n = 0;
    while (*p != '\0') {
        char *end = NULL;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno != 0 || v < 1 || v > 1000000 ||
            (*end != '-' && *end != '\0') || n > MAX_LAYERS) {
            report_error("--arch: expected widths like 784-1000-10 (2 to %d "
                         "numbers in 1..1000000), got '%s'", MAX_LAYERS + 1, s);
            return false;
        }
        c->sizes[n++] = (int32_t)v;
        p = *end == '-' ? end + 1 : end;
        if (*end == '-' && *p == '\0')
            n = 0; /* trailing '-': reject below */
    }
    if (n < 2) {
        report_error("--arch: expected widths like 784-1000-10 (at least "
                     "input and output), got '%s'", s);
        return false;
    }
    c->n_layers = n - 1;
    return true;
}

static bool
parse_rules(const char *s, config *c)
{
    char buf[128];
    if (strlen(s) >= sizeof buf) {
        report_error("--compare: list too long: '%s'", s);
        return false;
    }
    strcpy(buf, s);
    c->n_compare = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        int32_t r = 0;
        if (!parse_enum("compare", tok, NK_RULE, &r))
            return false;
        for (int i = 0; i < c->n_compare; i++) {
            if (c->compare[i] == r) {
                report_error("--compare: rule '%s' listed twice", tok);
                return false;
            }
        }
        if (c->n_compare == MAX_RULES)
            return false;
        c->compare[c->n_compare++] = r;
    }
    if (c->n_compare == 0) {
        report_error("--compare: expected a comma-separated list of bp, fa, "
                     "dfa, got '%s'", s);
        return false;
    }
    return true;
}

/* Convert one option's text (given or default) into the config. */
static bool
convert(int id, const char *v, config *c)
{
    const char *n = opts[id].name;
    switch (id) {
    case O_DATA: c->data_dir = v; return true;
    case O_VAL: return parse_long(n, v, 0, INT32_MAX, &c->val);
    case O_LIMIT_TRAIN: return parse_long(n, v, 0, INT32_MAX, &c->limit_train);
    case O_LIMIT_TEST: return parse_long(n, v, 0, INT32_MAX, &c->limit_test);
    case O_INPUT_NORM: return parse_enum(n, v, NK_NORM, &c->input_norm);
    case O_ARCH: return parse_arch(v, c);
    case O_ACT: return parse_enum(n, v, NK_ACT, &c->act);
    case O_OUT_ACT: return parse_enum(n, v, NK_ACT, &c->out_act);
    case O_LOSS: return parse_enum(n, v, NK_LOSS, &c->loss);
    case O_DROPOUT: return parse_real(n, v, 0.0, 1.0, true, &c->dropout);
    case O_INIT: return parse_enum(n, v, NK_INIT, &c->init);
    case O_RULE: return parse_enum(n, v, NK_RULE, &c->rule);
    case O_FB_DIST: return parse_enum(n, v, NK_DIST, &c->fb_dist);
    case O_FB_SCALE: return parse_real(n, v, 0.0, 1e6, false, &c->fb_scale);
    case O_DFA_VARIANT: return parse_enum(n, v, NK_VARIANT, &c->dfa_variant);
    case O_OPT: return parse_enum(n, v, NK_OPT, &c->opt);
    case O_LR:
        if (!parse_real(n, v, 0.0, 1e3, false, &c->lr))
            return false;
        if (c->lr <= 0.0) {
            report_error("--lr: expected a number > 0, got '%s'", v);
            return false;
        }
        return true;
    case O_LR_DECAY:
        if (!parse_real(n, v, 0.0, 1.0, false, &c->lr_decay))
            return false;
        if (c->lr_decay <= 0.0) {
            report_error("--lr-decay: expected a factor in (0, 1], got '%s'",
                         v);
            return false;
        }
        return true;
    case O_LR_EVERY: return parse_long(n, v, 1, 1000000, &c->lr_every);
    case O_MOMENTUM: return parse_real(n, v, 0.0, 1.0, true, &c->momentum);
    case O_WD: return parse_real(n, v, 0.0, 1e3, false, &c->wd);
    case O_EPOCHS: return parse_long(n, v, 0, 1000000, &c->epochs);
    case O_BATCH: return parse_long(n, v, 1, 1 << 20, &c->batch);
    case O_SEED: {
        char *end = NULL;
        errno = 0;
        unsigned long long s = strtoull(v, &end, 10);
        if (*v == '\0' || *v == '-' || *end != '\0' || errno != 0) {
            report_error("--seed: expected a non-negative integer, got '%s'",
                         v);
            return false;
        }
        c->seed = (uint64_t)s;
        return true;
    }
    case O_THREADS: return parse_long(n, v, 0, 1024, &c->threads);
    case O_SAVE: c->save = v; return true;
    case O_LOAD: c->load = v; return true;
    case O_LOG: c->log = v; return true;
    case O_COMPARE: return parse_rules(v, c);
    case O_OUT: c->out = v; return true;
    case O_ALIGN_BATCH:
        return parse_long(n, v, 0, 1000000, &c->align_batch);
    case O_PROGRESS: return parse_enum(n, v, NK_PROGRESS, &c->progress);
    case O_HELP: c->help = true; return true;
    default: return false;
    }
}

/* Combinations that cannot work, refused before any data is read. */
static bool
check_combinations(const config *c)
{
    if (c->load) {
        static const int model_opts[] = {O_ARCH, O_ACT, O_OUT_ACT, O_LOSS,
                                         O_INIT};
        for (size_t k = 0; k < sizeof model_opts / sizeof model_opts[0]; k++) {
            if (c->set[model_opts[k]]) {
                report_error("--%s cannot be combined with --load (the model "
                             "file fixes the network)",
                             opts[model_opts[k]].name);
                return false;
            }
        }
    }
    if (c->n_compare > 0 && (c->load || c->save)) {
        report_error("--compare trains fresh networks: it cannot be combined "
                     "with --%s", c->load ? "load" : "save");
        return false;
    }
    if (c->n_compare > 0 && c->set[O_RULE]) {
        report_error("--rule and --compare exclude each other");
        return false;
    }
    if (c->load == NULL && (c->loss == FA_LOSS_SOFTMAX_CE ||
                            c->loss == FA_LOSS_SIGMOID_BCE) &&
        c->out_act != FA_ACT_IDENTITY) {
        report_error("--out-act: the %s loss needs the identity output "
                     "activation (it applies its own link), got '%s'",
                     enum_name(NK_LOSS, c->loss),
                     enum_name(NK_ACT, c->out_act));
        return false;
    }
    if (c->load == NULL && c->dropout > 0.0 && c->n_layers < 2) {
        report_error("--dropout needs at least one hidden layer in --arch");
        return false;
    }
    return true;
}

bool
parse_args(int argc, char **argv, config *c)
{
    const char *text[O_COUNT];
    memset(c, 0, sizeof *c);
    for (int i = 0; i < O_COUNT; i++)
        text[i] = opts[i].def;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            report_error("unexpected argument '%s' (options start with --; "
                         "see --help)", a);
            return false;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        int id = find_option(name, len);
        if (id < 0) {
            report_error("unknown option '%.*s' (see --help)", (int)len + 2,
                         a);
            return false;
        }
        if (!takes_value(&opts[id])) {
            if (eq) {
                report_error("--%s takes no value", opts[id].name);
                return false;
            }
            text[id] = "1";
        } else if (eq) {
            text[id] = eq + 1;
        } else {
            if (i + 1 >= argc) {
                char meta[256];
                option_meta(&opts[id], meta, sizeof meta);
                report_error("--%s needs a value (%s)", opts[id].name, meta);
                return false;
            }
            text[id] = argv[++i];
        }
        c->set[id] = true;
    }
    for (int i = 0; i < O_COUNT; i++) {
        if (text[i] == NULL)
            continue;
        if (!convert(i, text[i], c))
            return false;
    }
    return check_combinations(c);
}
