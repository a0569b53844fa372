/*
 * options.c -- fa-train's command line: the option table (which is also
 * --help), the enum name lists, and the conversion of each option's text.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fa-train.h"

/* ------------------------------------------------------------ enum names */

/* The library's enumerations are named by the library (fa_enum_name,
 * fa_enum_lookup), so a rule or activation added there is accepted here
 * with no change.  On the command line its words are joined by '-'
 * ("softmax-ce"); the library accepts either.  Only the tool's own two
 * choices are listed here. */
static const int library_type[NK_COUNT] = {
    [NK_ACT] = FA_ENUM_ACTIVATION, [NK_LOSS] = FA_ENUM_LOSS,
    [NK_RULE] = FA_ENUM_RULE,       [NK_DIST] = FA_ENUM_DISTRIBUTION,
    [NK_VARIANT] = FA_ENUM_DFA_VARIANT, [NK_INIT] = FA_ENUM_INIT,
    [NK_OPT] = FA_ENUM_OPTIMIZER,   [NK_HPARAM] = FA_ENUM_HPARAM,
    [NK_NORM] = -1,                 [NK_PROGRESS] = -1,
};
static const char *const norm_names[] = {"none", "center", "standardize"};
static const char *const progress_names[] = {"auto", "on", "off"};

static int32_t
enum_count(name_kind kind)
{
    if (kind == NK_NORM)
        return 3;
    if (kind == NK_PROGRESS)
        return 3;
    int32_t n = fa_enum_count(library_type[kind]);
    return n > 0 ? n : 0;
}

const char *
enum_name(name_kind kind, int32_t value)
{
    /* the library's names with '-' for '_', made once per value */
    static char shown[NK_COUNT][64][32];
    if ((unsigned)kind >= NK_COUNT || value < 0 || value >= enum_count(kind) ||
        value >= 64)
        return "?";
    if (kind == NK_NORM)
        return norm_names[value];
    if (kind == NK_PROGRESS)
        return progress_names[value];
    char *out = shown[kind][value];
    if (out[0] == '\0') {
        const char *n = fa_enum_name(library_type[kind], value);
        snprintf(out, sizeof shown[kind][value], "%s", n ? n : "?");
        for (char *p = out; *p; p++)
            if (*p == '_')
                *p = '-';
    }
    return out;
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
    /* the exact name ('-' or '_'), else an unambiguous prefix
     * ("before" for before-activation) */
    int32_t found = -1, matches = 0;
    const size_t len = strlen(text);
    for (int32_t i = 0; i < enum_count(kind) && len > 0; i++) {
        const char *name = enum_name(kind, i);
        bool same = strlen(name) == len, prefix = true;
        for (size_t k = 0; k < len && prefix; k++) {
            char a = text[k] == '_' ? '-' : text[k];
            if (name[k] == '\0' || a != name[k])
                prefix = same = false;
        }
        if (same) {
            *out = i;
            return true;
        }
        if (prefix) {
            found = i;
            matches++;
        }
    }
    if (matches == 1) {
        *out = found;
        return true;
    }
    char list[512];
    join_names(kind, ", ", list, sizeof list);
    report_error("--%s: %s value '%s', expected one of %s", option,
                 matches > 1 ? "ambiguous" : "unknown", text, list);
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
    bool mpi_only;     /* fa-train-mpi's: unknown to fa-train */
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
    [O_ARCH] = {"Model", "arch", "SPEC", NO_ENUM, "784-1000-10",
                "the layers, '-'-separated: the input (N features, or CxHxW for "
                "images: 1x28x28), then a width N (dense), cNkK[sS][pP] "
                "(convolution: N channels, KxK kernel, stride, padding), mK or aK "
                "(max or average pooling over KxK), each optionally followed by "
                "xR (repeat R times) and :ACT (its activation); e.g. "
                "784-240x7-10 or 1x28x28-c6k5p2-m2-c16k5-m2-c120k5-84-10"},
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
                "the learning rule (the library's list; see --help-rules)"},
    [O_HPARAM] = {"Learning rule", "hparam", "NAME=VALUE", NO_ENUM, NULL,
                  "set any of the library's hyperparameters by name, e.g. "
                  "kp-decay=0.01 or wm-batch=32 (repeatable; see --help-rules)"},
    [O_FB_DIST] = {"Learning rule", "fb-dist", NULL, NK_DIST, "uniform",
                   "distribution of the random feedback matrices"},
    [O_FB_SCALE] = {"Learning rule", "fb-scale", "S", NO_ENUM, "0",
                    "scale of the feedback distribution (0: 1/sqrt(width of "
                    "the receiving layer))"},
    [O_DFA_VARIANT] = {"Learning rule", "dfa-variant", NULL, NK_VARIANT,
                       "after-activation",
                       "DFA injects G'e after the activation (times f', Nokland) "
                       "or before it (without f')"},
    [O_OPT] = {"Optimiser", "opt", NULL, NK_OPT, "adam", "optimiser"},
    [O_LR] = {"Optimiser", "lr", "X", NO_ENUM, "0.001",
              "learning rate, in [1.2e-38, 1000]"},
    [O_LR_DECAY] = {"Optimiser", "lr-decay", "F", NO_ENUM, "1",
                    "multiply the learning rate by F, in (0, 1], every "
                    "--lr-every epochs"},
    [O_LR_EVERY] = {"Optimiser", "lr-every", "K", NO_ENUM, "1",
                    "epochs between learning-rate decays"},
    [O_LR_MIN] = {"Optimiser", "lr-min", "X", NO_ENUM, "1e-08",
                  "floor of the decaying learning rate, in [1.2e-38, 1000]: "
                  "--lr-decay never takes it below X (nor below a starting "
                  "rate smaller than X, which then stays constant); the "
                  "library refuses rates below 1.2e-38"},
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
                   "threads for everything the library computes (its "
                   "fa_set_threads; 0: OpenBLAS's own choice, "
                   "OPENBLAS_NUM_THREADS)"},
    [O_SAVE] = {"Files", "save", "FILE", NO_ENUM, NULL,
                "save the trained network to FILE; its directory is checked "
                "before training, and the network is also saved when the "
                "training stops early (divergence, error, SIGINT/SIGTERM)"},
    [O_LOAD] = {"Files", "load", "FILE", NO_ENUM, NULL,
                "start from a saved network (architecture, rule, optimiser "
                "state); options given explicitly override its settings"},
    [O_LOG] = {"Files", "log", "FILE.csv", NO_ENUM, NULL,
               "write one CSV row per epoch (with --compare: OUT/log.csv)"},
    [O_COMPARE] = {"Output", "compare", "RULES", NO_ENUM, NULL,
                   "train the same network and seed under each rule of a "
                   "comma-separated list (e.g. bp,fa,dfa; all: every rule), "
                   "print a table and write plots to --out"},
    [O_OUT] = {"Output", "out", "DIR", NO_ENUM, "results",
               "directory for the --compare table data and plots (no control "
               "characters)"},
    [O_ALIGN_BATCH] = {"Output", "align-batch", "N", NO_ENUM, "512",
                       "training samples on which the alignment angles are "
                       "measured each epoch (0: off)"},
    [O_PROGRESS] = {"Output", "progress", NULL, NK_PROGRESS, "auto",
                    "progress bar on stderr (auto: when stderr is a terminal)"},
    [O_HELP] = {"Output", "help", NULL, NO_ENUM, NULL,
                "print this help and exit"},
    [O_HELP_RULES] = {"Output", "help-rules", NULL, NO_ENUM, NULL,
                      "list the library's rules and hyperparameters with their "
                      "descriptions and exit"},
    [O_CHECK_EVERY] = {"Processes", "check-every", "N", NO_ENUM, "100",
                       "compare a 64-bit hash of the parameters across the "
                       "processes every N steps (0: only at epoch ends, where "
                       "the whole model image is compared too); a difference "
                       "stops the training", true},
};

/* Whether this program has option o (fa-train lacks the MPI ones). */
static bool
available(const optdef *o)
{
    return par_mpi || !o->mpi_only;
}

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
           "Train a dense or convolutional network on an IDX data set "
           "(MNIST format) with\nbackprop or any rule of the "
           "feedback-alignment family (--help-rules lists them).\nOptions "
           "take their value as --opt VALUE or --opt=VALUE; defaults in "
           "brackets.\n");
    const char *group = "";
    for (int i = 0; i < O_COUNT; i++) {
        const optdef *o = &opts[i];
        if (!available(o))
            continue;
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
    printf("\nNumbers are plain decimals (no sign, spaces, inf or nan); "
           "ranges are checked\nbefore any work.\n"
           "\nSIGINT or SIGTERM stops the training after the current batch "
           "(with --save, the\nnetwork is saved first); a second one ends "
           "the program at once.\n"
           "\nExit status: 0 success, 1 runtime failure (data, model file, "
           "library error,\ndivergence), 2 bad command line, 130 or 143 "
           "after SIGINT or SIGTERM.\n"
           "\nExample: " PROG " --rule dfa --epochs 20 --lr 0.0003\n"
           "         " PROG " --compare bp,fa,dfa --epochs 3 --out results\n"
           "         " PROG " --arch 1x28x28-c6k5p2-m2-c16k5-m2-c120k5-84-10 "
           "--rule kp\n");
    par_help();
}

void
print_help_rules(void)
{
    printf("Learning rules (--rule, --compare), from the library:\n");
    for (int32_t r = 0; r < enum_count(NK_RULE); r++) {
        printf("  %s\n", enum_name(NK_RULE, r));
        print_wrapped(fa_enum_description(FA_ENUM_RULE, r), 6, 78);
    }
    printf("\nHyperparameters (--hparam NAME=VALUE; --lr, --momentum and --wd "
           "set three of them):\n");
    for (int32_t h = 0; h < enum_count(NK_HPARAM); h++) {
        printf("  %s\n", enum_name(NK_HPARAM, h));
        print_wrapped(fa_enum_description(FA_ENUM_HPARAM, h), 6, 78);
    }
}

void
config_free(config *c)
{
    fa_spec_free(c->spec);
    c->spec = NULL;
}

/* -------------------------------------------------------------- values */

static int
find_option(const char *name, size_t len)
{
    for (int i = 0; i < O_COUNT; i++)
        if (available(&opts[i]) && strlen(opts[i].name) == len &&
            strncmp(opts[i].name, name, len) == 0)
            return i;
    return -1;
}

/* Numbers are read strictly: strtol, strtoull and strtod skip leading
 * spaces and take a sign (strtoull turns " -1" into 2^64-1), and strtod
 * also takes "inf", "nan" and hexadecimal; none of that is a sensible
 * value for an option, so the text is checked character by character first
 * and the conversion only computes the value. */

static bool
is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

/* One or more digits and nothing else. */
static bool
all_digits(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++)
        if (!is_digit(*s))
            return false;
    return true;
}

/* A decimal number without sign: digits with at most one '.', at least one
 * digit, then optionally an exponent (e or E, an optional sign, digits). */
static bool
is_decimal(const char *s)
{
    int digits = 0;
    while (is_digit(*s))
        s++, digits++;
    if (*s == '.')
        for (s++; is_digit(*s); s++)
            digits++;
    if (digits == 0)
        return false;
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            s++;
        if (!is_digit(*s))
            return false;
        while (is_digit(*s))
            s++;
    }
    return *s == '\0';
}

/* An integer in lo..hi (lo >= 0: no sign is ever needed). */
static bool
parse_int(const char *opt, const char *s, long lo, long hi, int32_t *out)
{
    bool syntax = all_digits(s);
    long v = -1;
    errno = 0;
    if (syntax)
        v = strtol(s, NULL, 10);
    if (!syntax || errno != 0 || v < lo || v > hi) {
        report_error("--%s: expected an integer in %ld..%ld, got '%s'", opt,
                     lo, hi, s);
        return false;
    }
    *out = (int32_t)v;
    return true;
}

/* How parse_real judges a value besides lo <= v <= hi. */
enum {
    R_LO_OPEN = 1,    /* v > lo */
    R_HI_OPEN = 2,    /* v < hi, also once rounded to float (the library
                         computes in float: 0.99999999999 would be 1) */
    R_FLOAT_MIN = 4,  /* lo is FLT_MIN: at least FLT_MIN once rounded to
                         float, the smallest rate the library accepts */
    R_ZERO_OK = 8,    /* 0 too, besides the range (a special value) */
};

static bool
parse_real(const char *opt, const char *s, double lo, double hi, int flags,
           double *out)
{
    bool syntax = is_decimal(s);
    double v = 0.0;
    if (syntax)
        v = strtod(s, NULL);
    /* errno is not consulted: an overflow is HUGE_VAL, refused as not
     * finite, and an underflow is a tiny value the range judges.  Every
     * bound is far inside the float range, so once v <= hi holds the
     * conversions to float below are defined. */
    bool ok = syntax && isfinite(v) && v <= hi &&
              ((flags & R_FLOAT_MIN) ? (float)v >= FLT_MIN : v >= lo) &&
              (!(flags & R_LO_OPEN) || v > lo) &&
              (!(flags & R_HI_OPEN) || (v < hi && (float)v < (float)hi));
    if ((flags & R_ZERO_OK) && syntax && v == 0.0)
        ok = true;
    if (!ok) {
        char los[32];
        if (flags & R_FLOAT_MIN)
            snprintf(los, sizeof los, "1.2e-38");
        else
            snprintf(los, sizeof los, "%g", lo);
        report_error("--%s: expected %sa number in %c%s, %g%c, got '%s'", opt,
                     (flags & R_ZERO_OK) ? "0 or " : "",
                     (flags & R_LO_OPEN) ? '(' : '[', los, hi,
                     (flags & R_HI_OPEN) ? ')' : ']', s);
        return false;
    }
    *out = v;
    return true;
}

/* --arch is the library's spec text (fa_spec_parse), parsed once --act and
 * --out-act are known; here only what the library cannot see: no spaces,
 * signs or control characters sneak through as part of a number. */
static bool
parse_arch(const char *s, config *c)
{
    for (const char *p = s; *p; p++) {
        if (!(is_digit(*p) || (*p >= 'a' && *p <= 'z') || *p == '-' || *p == 'x' ||
              *p == ':' || *p == ',' || *p == '_')) {
            report_error("--arch: unexpected character '%c' at byte %d of '%s' "
                         "(expected a spec such as 784-1000-10 or "
                         "1x28x28-c6k5p2-m2-c16k5-m2-120-84-10)",
                         *p, (int)(p - s) + 1, s);
            return false;
        }
    }
    c->arch = s;
    return true;
}

/* The network spec from --arch, --act and --out-act. */
static bool
build_spec(config *c)
{
    fa_spec_free(c->spec);
    c->spec = NULL;
    if (fa_spec_parse(&c->spec, c->arch, c->act, c->out_act) != FA_OK) {
        const char *m = fa_last_error();
        const char *colon = strstr(m, ": ");
        report_error("--arch: %s", colon ? colon + 2 : m);
        return false;
    }
    fa_spec_num_layers(c->spec, &c->n_layers);
    return true;
}

/* --hparam NAME=VALUE: any of the library's hyperparameters by name, judged
 * by the library itself on a one-layer probe network (its ranges are the
 * library's, not a copy). */
static bool
parse_hparam(const char *s, config *c)
{
    const char *eq = strchr(s, '=');
    char name[64];
    int32_t id = 0;
    if (!eq || eq == s || (size_t)(eq - s) >= sizeof name) {
        report_error("--hparam: expected NAME=VALUE (e.g. kp_decay=0.01), got '%s'", s);
        return false;
    }
    memcpy(name, s, (size_t)(eq - s));
    name[eq - s] = '\0';
    if (!parse_enum("hparam", name, NK_HPARAM, &id))
        return false;
    double v = 0;
    if (!parse_real("hparam", eq + 1, 0.0, 3.4e38, 0, &v))
        return false;
    const int32_t sizes[] = {1, 1}, acts[] = {FA_ACT_IDENTITY};
    fa_net *probe = NULL;
    int rc = fa_net_create(&probe, 1, sizes, acts, FA_LOSS_MSE, 1);
    if (rc == FA_OK)
        rc = fa_net_set_hparam(probe, id, v);
    fa_net_free(probe);
    if (rc != FA_OK) {
        const char *m = fa_last_error();
        const char *colon = strstr(m, ": ");
        report_error("--hparam: %s", colon ? colon + 2 : m);
        return false;
    }
    if (c->n_hparams == MAX_HPARAMS) {
        report_error("--hparam: at most %d settings", MAX_HPARAMS);
        return false;
    }
    c->hparam_id[c->n_hparams] = id;
    c->hparam_value[c->n_hparams++] = v;
    return true;
}

/* A comma-separated list of distinct rule names, without empty items, or
 * "all": every rule of the library, in its order. */
static bool
parse_rules(const char *s, config *c)
{
    if (strcmp(s, "all") == 0) {
        c->n_compare = 0;
        for (int32_t r = 0; r < enum_count(NK_RULE) && r < MAX_RULES; r++)
            c->compare[c->n_compare++] = r;
        return true;
    }
    char buf[128];
    if (strlen(s) >= sizeof buf) {
        report_error("--compare: list too long: '%s'", s);
        return false;
    }
    c->n_compare = 0;
    const char *p = s;
    for (;;) {
        size_t len = strcspn(p, ",");
        memcpy(buf, p, len);
        buf[len] = '\0';
        int32_t r = 0;
        if (len == 0) {
            char list[128];
            join_names(NK_RULE, ", ", list, sizeof list);
            report_error("--compare: expected a comma-separated list of %s "
                         "without empty items, got '%s'", list, s);
            return false;
        }
        if (!parse_enum("compare", buf, NK_RULE, &r))
            return false;
        for (int i = 0; i < c->n_compare; i++) {
            if (c->compare[i] == r) {
                report_error("--compare: rule '%s' listed twice", buf);
                return false;
            }
        }
        /* Distinct rules cannot outnumber the library's; kept as a guard. */
        if (c->n_compare == MAX_RULES)
            return false;
        c->compare[c->n_compare++] = r;
        if (p[len] == '\0')
            break;
        p += len + 1;
    }
    return true;
}

/* A path: anything but empty (the empty string names no file). */
static bool
parse_path(const char *opt, const char *what, const char *s, const char **out)
{
    if (*s == '\0') {
        report_error("--%s: expected %s, got an empty string", opt, what);
        return false;
    }
    *out = s;
    return true;
}

/* --out: also no control characters.  Its files are drawn by gnuplot, run
 * in that directory so that the path never enters gnuplot's input (see
 * plots.c); refusing a newline or an escape here as well keeps the path
 * out of reach even of a future script change, and keeps the one-line
 * messages and the "plot: PATH" lines that name it one line each. */
static bool
parse_out(const char *s, const char **out)
{
    for (const char *p = s; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch < 0x20 || ch == 0x7f) {
            report_error("--out: expected a directory name without control "
                         "characters, got one (0x%02x) at byte %d", ch,
                         (int)(p - s) + 1);
            return false;
        }
    }
    return parse_path("out", "a directory", s, out);
}

static bool
parse_seed(const char *s, uint64_t *out)
{
    bool syntax = all_digits(s);
    unsigned long long v = 0;
    errno = 0;
    if (syntax)
        v = strtoull(s, NULL, 10);
    if (!syntax || errno != 0 || v > UINT64_MAX) {
        report_error("--seed: expected an integer in 0..%llu, got '%s'",
                     (unsigned long long)UINT64_MAX, s);
        return false;
    }
    *out = (uint64_t)v;
    return true;
}

/* Convert one option's text (given or default) into the config. */
static bool
convert(int id, const char *v, config *c)
{
    const char *n = opts[id].name;
    switch (id) {
    case O_DATA: return parse_path(n, "a directory", v, &c->data_dir);
    case O_VAL: return parse_int(n, v, 0, INT32_MAX, &c->val);
    case O_LIMIT_TRAIN: return parse_int(n, v, 0, INT32_MAX, &c->limit_train);
    case O_LIMIT_TEST: return parse_int(n, v, 0, INT32_MAX, &c->limit_test);
    case O_INPUT_NORM: return parse_enum(n, v, NK_NORM, &c->input_norm);
    case O_ARCH: return parse_arch(v, c);
    case O_ACT: return parse_enum(n, v, NK_ACT, &c->act);
    case O_OUT_ACT: return parse_enum(n, v, NK_ACT, &c->out_act);
    case O_LOSS: return parse_enum(n, v, NK_LOSS, &c->loss);
    case O_DROPOUT: return parse_real(n, v, 0.0, 1.0, R_HI_OPEN, &c->dropout);
    case O_INIT: return parse_enum(n, v, NK_INIT, &c->init);
    case O_RULE: return parse_enum(n, v, NK_RULE, &c->rule);
    case O_FB_DIST: return parse_enum(n, v, NK_DIST, &c->fb_dist);
    case O_FB_SCALE:
        return parse_real(n, v, FLT_MIN, 1e6, R_FLOAT_MIN | R_ZERO_OK,
                          &c->fb_scale);
    case O_DFA_VARIANT: return parse_enum(n, v, NK_VARIANT, &c->dfa_variant);
    case O_OPT: return parse_enum(n, v, NK_OPT, &c->opt);
    case O_LR: return parse_real(n, v, FLT_MIN, 1e3, R_FLOAT_MIN, &c->lr);
    case O_LR_DECAY:
        return parse_real(n, v, 0.0, 1.0, R_LO_OPEN, &c->lr_decay);
    case O_LR_EVERY: return parse_int(n, v, 1, 1000000, &c->lr_every);
    case O_LR_MIN:
        return parse_real(n, v, FLT_MIN, 1e3, R_FLOAT_MIN, &c->lr_min);
    case O_MOMENTUM:
        return parse_real(n, v, 0.0, 1.0, R_HI_OPEN, &c->momentum);
    case O_WD: return parse_real(n, v, 0.0, 1e3, 0, &c->wd);
    case O_EPOCHS: return parse_int(n, v, 0, 1000000, &c->epochs);
    case O_BATCH: return parse_int(n, v, 1, 1 << 20, &c->batch);
    case O_SEED: return parse_seed(v, &c->seed);
    case O_THREADS: return parse_int(n, v, 0, 1024, &c->threads);
    case O_SAVE: return parse_path(n, "a file name", v, &c->save);
    case O_LOAD: return parse_path(n, "a file name", v, &c->load);
    case O_LOG: return parse_path(n, "a file name", v, &c->log);
    case O_COMPARE: return parse_rules(v, c);
    case O_OUT: return parse_out(v, &c->out);
    case O_ALIGN_BATCH: return parse_int(n, v, 0, 1000000, &c->align_batch);
    case O_PROGRESS: return parse_enum(n, v, NK_PROGRESS, &c->progress);
    case O_CHECK_EVERY: return parse_int(n, v, 0, INT32_MAX, &c->check_every);
    case O_HPARAM: return true; /* collected as they come (parse_args) */
    case O_HELP: c->help = true; return true;
    case O_HELP_RULES: c->help_rules = true; return true;
    default: return false;
    }
}

/* Combinations that cannot work, refused before any data is read. */
static bool
check_combinations(config *c)
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
    /* Only a floor given explicitly is checked: the default must not
     * turn a small --lr into an error.  With --load and no --lr the
     * starting rate is the file's, unknown here.  In both cases the
     * schedule floors at the smaller of the two (train.c). */
    if (c->set[O_LR_MIN] && (c->load == NULL || c->set[O_LR]) &&
        c->lr_min > c->lr) {
        report_error("--lr-min: expected a floor at most the learning rate "
                     "(--lr %g), got %g", c->lr, c->lr_min);
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
        /* repeatable: every occurrence counts, in order */
        if (id == O_HPARAM && !parse_hparam(text[id], c))
            return false;
    }
    for (int i = 0; i < O_COUNT; i++) {
        if (text[i] == NULL)
            continue;
        if (!convert(i, text[i], c))
            return false;
    }
    if (c->help || c->help_rules)
        return true;
    if (c->load == NULL && !build_spec(c))
        return false;
    return check_combinations(c);
}
