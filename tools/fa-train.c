/*
 * fa-train -- train a dense network on an IDX data set (MNIST, Fashion-MNIST)
 * with backprop, feedback alignment or direct feedback alignment, through
 * the public API of libfeedbackalign only.  `fa-train --help` lists every
 * option.  `--compare bp,fa,dfa` trains the same network from the same seed
 * under each rule and prints a table and gnuplot PNGs.
 *
 * Exit status: 0 success, 1 runtime failure (unreadable or corrupt data,
 * library error, divergence), 2 bad command line.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <math.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "feedbackalign.h"
#include "idx.h"

#ifdef FA_HAVE_OPENBLAS_SET_NUM_THREADS
/* Not in our header on purpose: the library does not expose BLAS threading.
 * OpenBLAS reads OPENBLAS_NUM_THREADS in a constructor that runs before
 * main, so setenv() from here would come too late; the runtime call does
 * not. */
extern void openblas_set_num_threads(int num_threads);
#endif

#define PROG "fa-train"
#define MAX_LAYERS 16
#define MAX_RULES 8
#define EVAL_CHUNK 1000
#define EXIT_USAGE 2

extern char **environ;

/* ------------------------------------------------------------- messages */

#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
static void
die_msg(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs(PROG ": ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* A failing library call: its status name and the library's detail. */
static void
lib_error(const char *what, int rc)
{
    die_msg("%s failed: %s: %s", what, fa_status_string(rc), fa_last_error());
}

/* ------------------------------------------------------------- options */

enum opt_id {
    O_DATA, O_VAL, O_LIMIT_TRAIN, O_LIMIT_TEST, O_INPUT_NORM,
    O_ARCH, O_ACT, O_OUT_ACT, O_LOSS, O_DROPOUT, O_INIT,
    O_RULE, O_FB_DIST, O_FB_SCALE, O_DFA_VARIANT,
    O_OPT, O_LR, O_LR_DECAY, O_LR_EVERY, O_MOMENTUM, O_WD,
    O_EPOCHS, O_BATCH, O_SEED, O_THREADS,
    O_SAVE, O_LOAD, O_LOG, O_COMPARE, O_OUT, O_ALIGN_BATCH, O_PROGRESS,
    O_HELP,
    O_COUNT
};

typedef struct optdef {
    const char *group; /* printed as a heading when it changes */
    const char *name;
    const char *meta;  /* NULL: a flag without a value */
    const char *def;   /* default as text; NULL: none */
    const char *help;
} optdef;

/* The enum name lists are in the order of the library's enum values, which
 * are fixed ABI, so a name's index is its value. */
static const char *const act_names[] = {"identity", "tanh", "sigmoid", "relu",
                                        "leaky-relu", NULL};
static const char *const loss_names[] = {"mse", "softmax-ce", "sigmoid-bce",
                                         NULL};
static const char *const rule_names[] = {"bp", "fa", "dfa", NULL};
static const char *const rule_titles[] = {"BP", "FA", "DFA"};
static const char *const dist_names[] = {"uniform", "gaussian", "sign", NULL};
static const char *const variant_names[] = {"after", "before", NULL};
static const char *const init_names[] = {"default", "xavier-uniform",
                                         "xavier-normal", "he-uniform",
                                         "he-normal", "zero", NULL};
static const char *const opt_names[] = {"sgd", "momentum", "nesterov", "adam",
                                        "rmsprop", NULL};
enum { NORM_NONE, NORM_CENTER, NORM_STANDARDIZE };
static const char *const norm_names[] = {"none", "center", "standardize",
                                         NULL};
enum { PROGRESS_AUTO, PROGRESS_ON, PROGRESS_OFF };
static const char *const progress_names[] = {"auto", "on", "off", NULL};

static const optdef opts[O_COUNT] = {
    [O_DATA] = {"Data", "data", "DIR", "/usr/share/datasets/fashion-mnist",
                "directory with train-images-idx3-ubyte, train-labels-idx1-ubyte, "
                "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (each .gz or plain)"},
    [O_VAL] = {"Data", "val", "N", "0",
               "hold out the last N training samples for validation"},
    [O_LIMIT_TRAIN] = {"Data", "limit-train", "N", "0",
                       "use only the first N samples of the training file (0: all)"},
    [O_LIMIT_TEST] = {"Data", "limit-test", "N", "0",
                      "use only the first N test samples (0: all)"},
    [O_INPUT_NORM] = {"Data", "input-norm", "none|center|standardize", "none",
                      "subtract the training set's mean pixel (and divide by its "
                      "standard deviation); pass the same value with --load"},
    [O_ARCH] = {"Model", "arch", "N0-N1-...-NL", "784-1000-10",
                "layer widths: input, hidden layers, output"},
    [O_ACT] = {"Model", "act", "identity|tanh|sigmoid|relu|leaky-relu", "tanh",
               "activation of the hidden layers"},
    [O_OUT_ACT] = {"Model", "out-act", "NAME", "identity",
                   "activation of the output layer (must be identity with "
                   "softmax-ce and sigmoid-bce)"},
    [O_LOSS] = {"Model", "loss", "softmax-ce|mse|sigmoid-bce", "softmax-ce",
                "loss on one-hot targets"},
    [O_DROPOUT] = {"Model", "dropout", "P", "0",
                   "dropout probability on every hidden layer, in [0, 1)"},
    [O_INIT] = {"Model", "init",
                "default|xavier-uniform|xavier-normal|he-uniform|he-normal|zero",
                "default", "forward weight initialisation (default: He for ReLU "
                "layers, Xavier otherwise)"},
    [O_RULE] = {"Learning rule", "rule", "bp|fa|dfa", "bp",
                "backprop, feedback alignment, direct feedback alignment"},
    [O_FB_DIST] = {"Learning rule", "fb-dist", "uniform|gaussian|sign",
                   "uniform", "distribution of the random feedback matrices"},
    [O_FB_SCALE] = {"Learning rule", "fb-scale", "S", "0",
                    "scale of the feedback distribution (0: 1/sqrt(width of "
                    "the receiving layer))"},
    [O_DFA_VARIANT] = {"Learning rule", "dfa-variant", "after|before", "after",
                       "DFA injects G'e after the activation (times f', Nokland) "
                       "or before it (without f')"},
    [O_OPT] = {"Optimiser", "opt", "sgd|momentum|nesterov|adam|rmsprop",
               "adam", "optimiser"},
    [O_LR] = {"Optimiser", "lr", "X", "0.001", "learning rate"},
    [O_LR_DECAY] = {"Optimiser", "lr-decay", "F", "1",
                    "multiply the learning rate by F every --lr-every epochs"},
    [O_LR_EVERY] = {"Optimiser", "lr-every", "K", "1",
                    "epochs between learning-rate decays"},
    [O_MOMENTUM] = {"Optimiser", "momentum", "MU", "0.9",
                    "momentum of momentum and nesterov, in [0, 1)"},
    [O_WD] = {"Optimiser", "wd", "X", "0", "L2 weight decay on the weights"},
    [O_EPOCHS] = {"Training", "epochs", "N", "10",
                  "epochs to train (0 with --load: only evaluate)"},
    [O_BATCH] = {"Training", "batch", "N", "128", "mini-batch size"},
    [O_SEED] = {"Training", "seed", "N", "1",
                "seed of the weights, feedback, dropout and shuffling"},
    [O_THREADS] = {"Training", "threads", "N", "0",
                   "OpenBLAS threads (0: OpenBLAS's own choice)"},
    [O_SAVE] = {"Files", "save", "FILE", NULL,
                "save the trained network to FILE"},
    [O_LOAD] = {"Files", "load", "FILE", NULL,
                "start from a saved network (architecture, rule, optimiser "
                "state); options given explicitly override its settings"},
    [O_LOG] = {"Files", "log", "FILE.csv", NULL,
               "write one CSV row per epoch (with --compare: OUT/log.csv)"},
    [O_COMPARE] = {"Output", "compare", "RULES", NULL,
                   "train the same network and seed under each rule of a "
                   "comma-separated list (e.g. bp,fa,dfa), print a table and "
                   "write plots to --out"},
    [O_OUT] = {"Output", "out", "DIR", "results",
               "directory for the --compare table data and plots"},
    [O_ALIGN_BATCH] = {"Output", "align-batch", "N", "512",
                       "training samples on which the alignment angles are "
                       "measured each epoch (0: off)"},
    [O_PROGRESS] = {"Output", "progress", "auto|on|off", "auto",
                    "progress bar on stderr (auto: when stderr is a terminal)"},
    [O_HELP] = {"Output", "help", NULL, NULL, "print this help and exit"},
};

typedef struct config {
    const char *data_dir;
    int32_t val, limit_train, limit_test, input_norm;
    int32_t n_layers;
    int32_t sizes[MAX_LAYERS + 1];
    int32_t act, out_act, loss, init;
    double dropout;
    int32_t rule, fb_dist, dfa_variant;
    double fb_scale;
    int32_t opt;
    double lr, lr_decay, momentum, wd;
    int32_t lr_every, epochs, batch, threads, align_batch, progress;
    uint64_t seed;
    const char *save, *load, *log, *out;
    int32_t compare[MAX_RULES];
    int n_compare;
    bool help;
    bool set[O_COUNT]; /* given on the command line */
} config;

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

static void
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
        char head[128];
        snprintf(head, sizeof head, "--%s%s%s", o->name, o->meta ? " " : "",
                 o->meta ? o->meta : "");
        char text[512];
        snprintf(text, sizeof text, "%s [%s]", o->help,
                 o->def ? o->def : (o->meta ? "none" : "off"));
        printf("  %s\n", head);
        print_wrapped(text, 6, 78);
    }
    printf("\nExample: " PROG " --rule dfa --epochs 20 --lr 0.0003\n"
           "         " PROG " --compare bp,fa,dfa --epochs 3 --out results\n");
}

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
        die_msg("--%s: expected an integer in %ld..%ld, got '%s'", opt, lo, hi,
                s);
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
        die_msg("--%s: expected a number in [%g, %g%c, got '%s'", opt, lo, hi,
                hi_open ? ')' : ']', s);
        return false;
    }
    *out = v;
    return true;
}

static bool
parse_enum(const char *opt, const char *s, const char *const *names,
           int32_t *out)
{
    for (int i = 0; names[i] != NULL; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = i;
            return true;
        }
    }
    char list[256] = "";
    for (int i = 0; names[i] != NULL; i++) {
        strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
        strncat(list, names[i], sizeof list - strlen(list) - 1);
    }
    die_msg("--%s: unknown value '%s', expected one of %s", opt, s, list);
    return false;
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
            die_msg("--arch: expected widths like 784-1000-10 (2 to %d "
                    "numbers in 1..1000000), got '%s'", MAX_LAYERS + 1, s);
            return false;
        }
        c->sizes[n++] = (int32_t)v;
        p = *end == '-' ? end + 1 : end;
        if (*end == '-' && *p == '\0')
            n = 0; /* trailing '-': reject below */
    }
    if (n < 2) {
        die_msg("--arch: expected widths like 784-1000-10 (at least input "
                "and output), got '%s'", s);
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
        die_msg("--compare: list too long: '%s'", s);
        return false;
    }
    strcpy(buf, s);
    c->n_compare = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        int32_t r = 0;
        if (!parse_enum("compare", tok, rule_names, &r))
            return false;
        for (int i = 0; i < c->n_compare; i++) {
            if (c->compare[i] == r) {
                die_msg("--compare: rule '%s' listed twice", tok);
                return false;
            }
        }
        if (c->n_compare == MAX_RULES)
            return false;
        c->compare[c->n_compare++] = r;
    }
    if (c->n_compare == 0) {
        die_msg("--compare: expected a comma-separated list of bp, fa, dfa, "
                "got '%s'", s);
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
    case O_INPUT_NORM: return parse_enum(n, v, norm_names, &c->input_norm);
    case O_ARCH: return parse_arch(v, c);
    case O_ACT: return parse_enum(n, v, act_names, &c->act);
    case O_OUT_ACT: return parse_enum(n, v, act_names, &c->out_act);
    case O_LOSS: return parse_enum(n, v, loss_names, &c->loss);
    case O_DROPOUT: return parse_real(n, v, 0.0, 1.0, true, &c->dropout);
    case O_INIT: return parse_enum(n, v, init_names, &c->init);
    case O_RULE: return parse_enum(n, v, rule_names, &c->rule);
    case O_FB_DIST: return parse_enum(n, v, dist_names, &c->fb_dist);
    case O_FB_SCALE: return parse_real(n, v, 0.0, 1e6, false, &c->fb_scale);
    case O_DFA_VARIANT: return parse_enum(n, v, variant_names, &c->dfa_variant);
    case O_OPT: return parse_enum(n, v, opt_names, &c->opt);
    case O_LR:
        if (!parse_real(n, v, 0.0, 1e3, false, &c->lr))
            return false;
        if (c->lr <= 0.0) {
            die_msg("--lr: expected a number > 0, got '%s'", v);
            return false;
        }
        return true;
    case O_LR_DECAY:
        if (!parse_real(n, v, 0.0, 1.0, false, &c->lr_decay))
            return false;
        if (c->lr_decay <= 0.0) {
            die_msg("--lr-decay: expected a factor in (0, 1], got '%s'", v);
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
            die_msg("--seed: expected a non-negative integer, got '%s'", v);
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
    case O_PROGRESS: return parse_enum(n, v, progress_names, &c->progress);
    case O_HELP: c->help = true; return true;
    default: return false;
    }
}

static bool
parse_args(int argc, char **argv, config *c)
{
    const char *text[O_COUNT];
    memset(c, 0, sizeof *c);
    for (int i = 0; i < O_COUNT; i++)
        text[i] = opts[i].def;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            die_msg("unexpected argument '%s' (options start with --; see "
                    "--help)", a);
            return false;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        int id = find_option(name, len);
        if (id < 0) {
            die_msg("unknown option '%.*s' (see --help)", (int)len + 2, a);
            return false;
        }
        if (opts[id].meta == NULL) {
            if (eq) {
                die_msg("--%s takes no value", opts[id].name);
                return false;
            }
            text[id] = "1";
        } else if (eq) {
            text[id] = eq + 1;
        } else {
            if (i + 1 >= argc) {
                die_msg("--%s needs a value (%s)", opts[id].name,
                        opts[id].meta);
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
    /* Combinations that cannot work, refused before any data is read. */
    if (c->load) {
        static const int model_opts[] = {O_ARCH, O_ACT, O_OUT_ACT, O_LOSS,
                                         O_INIT};
        for (size_t k = 0; k < sizeof model_opts / sizeof model_opts[0]; k++) {
            if (c->set[model_opts[k]]) {
                die_msg("--%s cannot be combined with --load (the model file "
                        "fixes the network)", opts[model_opts[k]].name);
                return false;
            }
        }
    }
    if (c->n_compare > 0 && (c->load || c->save)) {
        die_msg("--compare trains fresh networks: it cannot be combined with "
                "--%s", c->load ? "load" : "save");
        return false;
    }
    if (c->n_compare > 0 && c->set[O_RULE]) {
        die_msg("--rule and --compare exclude each other");
        return false;
    }
    if (c->load == NULL && (c->loss == FA_LOSS_SOFTMAX_CE ||
                            c->loss == FA_LOSS_SIGMOID_BCE) &&
        c->out_act != FA_ACT_IDENTITY) {
        die_msg("--out-act: the %s loss needs the identity output activation "
                "(it applies its own link), got '%s'", loss_names[c->loss],
                act_names[c->out_act]);
        return false;
    }
    if (c->load == NULL && c->dropout > 0.0 && c->n_layers < 2) {
        die_msg("--dropout needs at least one hidden layer in --arch");
        return false;
    }
    return true;
}

/* ------------------------------------------------------------ utilities */

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* splitmix64: the tool's own shuffling stream, seeded from --seed; kept
 * apart from the network's RNG so every rule sees the same batch order. */
static uint64_t
mix_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void
shuffle(int32_t *perm, int32_t n, uint64_t *state)
{
    /* Fisher-Yates; the modulo bias of a 64-bit draw over n <= 2^31 is
     * below 2^-32 and irrelevant here. */
    for (int32_t i = n - 1; i > 0; i--) {
        int32_t j = (int32_t)(mix_next(state) % (uint64_t)(i + 1));
        int32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

static bool
mkdir_p(const char *dir)
{
    char buf[4096];
    if (strlen(dir) >= sizeof buf) {
        die_msg("--out: path too long");
        return false;
    }
    strcpy(buf, dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
            die_msg("--out %s: cannot create %s: %s", dir, buf,
                    strerror(errno));
            return false;
        }
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
        die_msg("--out %s: cannot create it: %s", dir, strerror(errno));
        return false;
    }
    return true;
}

/* -------------------------------------------------------------- data */

typedef struct split {
    const float *x; /* (features, n), ld = features */
    const uint8_t *y;
    int32_t n;
} split;

typedef struct data {
    idx_images train_img, test_img;
    idx_labels train_lab, test_lab;
    int32_t features;
    int32_t max_label;
    split train, val, test;
    char train_path[4096], test_path[4096];
} data;

static bool
load_pair(const char *dir, const char *img_base, const char *lab_base,
          idx_images *img, idx_labels *lab, char *img_path, size_t pathlen)
{
    char err[1024], lab_path[4096];
    if (idx_find_file(dir, img_base, img_path, pathlen, err, sizeof err) != 0 ||
        idx_find_file(dir, lab_base, lab_path, sizeof lab_path, err,
                      sizeof err) != 0 ||
        idx_read_pair(img_path, lab_path, img, lab, err, sizeof err) != 0) {
        die_msg("%s", err);
        return false;
    }
    return true;
}

static void
normalize(float *x, size_t count, int mode, double mean, double sd)
{
    float m = (float)mean;
    float inv = mode == NORM_STANDARDIZE ? (float)(1.0 / sd) : 1.0f;
    for (size_t i = 0; i < count; i++)
        x[i] = (x[i] - m) * inv;
}

static bool
load_data(const config *c, data *d)
{
    memset(d, 0, sizeof *d);
    if (!load_pair(c->data_dir, "train-images-idx3-ubyte",
                   "train-labels-idx1-ubyte", &d->train_img, &d->train_lab,
                   d->train_path, sizeof d->train_path) ||
        !load_pair(c->data_dir, "t10k-images-idx3-ubyte",
                   "t10k-labels-idx1-ubyte", &d->test_img, &d->test_lab,
                   d->test_path, sizeof d->test_path))
        return false;
    if (d->test_img.features != d->train_img.features) {
        die_msg("%s: images of %dx%d pixels, but the training images (%s) "
                "are %dx%d", d->test_path, d->test_img.rows, d->test_img.cols,
                d->train_path, d->train_img.rows, d->train_img.cols);
        return false;
    }
    d->features = d->train_img.features;
    int32_t ntrain = d->train_img.n;
    if (c->limit_train > 0 && c->limit_train < ntrain)
        ntrain = c->limit_train;
    if (c->val >= ntrain) {
        die_msg("--val %d: leaves no training samples (the training set has "
                "%d)", c->val, ntrain);
        return false;
    }
    int32_t ntest = d->test_img.n;
    if (c->limit_test > 0 && c->limit_test < ntest)
        ntest = c->limit_test;
    size_t f = (size_t)d->features;
    d->train = (split){d->train_img.x, d->train_lab.y, ntrain - c->val};
    d->val = (split){d->train_img.x + f * (size_t)(ntrain - c->val),
                     d->train_lab.y + (ntrain - c->val), c->val};
    d->test = (split){d->test_img.x, d->test_lab.y, ntest};
    d->max_label = 0;
    for (int32_t i = 0; i < ntrain; i++)
        if (d->train_lab.y[i] > d->max_label)
            d->max_label = d->train_lab.y[i];
    for (int32_t i = 0; i < ntest; i++)
        if (d->test_lab.y[i] > d->max_label)
            d->max_label = d->test_lab.y[i];
    if (c->input_norm != NORM_NONE) {
        /* Statistics of the training split only: the validation and test
         * samples must not leak into the preprocessing. */
        double sum = 0.0, sq = 0.0;
        size_t cnt = f * (size_t)d->train.n;
        for (size_t i = 0; i < cnt; i++) {
            sum += (double)d->train.x[i];
            sq += (double)d->train.x[i] * (double)d->train.x[i];
        }
        double mean = sum / (double)cnt;
        double var = sq / (double)cnt - mean * mean;
        double sd = var > 1e-12 ? sqrt(var) : 1.0;
        normalize(d->train_img.x, f * (size_t)ntrain, c->input_norm, mean, sd);
        normalize(d->test_img.x, f * (size_t)ntest, c->input_norm, mean, sd);
    }
    return true;
}

static void
free_data(data *d)
{
    idx_images_free(&d->train_img);
    idx_images_free(&d->test_img);
    idx_labels_free(&d->train_lab);
    idx_labels_free(&d->test_lab);
}

/* ------------------------------------------------------------ training */

typedef struct run {
    int32_t rule;
    int32_t n_layers; /* L */
    int32_t epochs;   /* epochs completed */
    int status;       /* 0 ok, 1 diverged, -1 error */
    /* Per epoch 0..epochs (0 = before training): */
    double *test_acc, *val_acc, *train_loss, *epoch_s;
    float *angles; /* (L-1) per epoch */
} run;

static void
free_run(run *r)
{
    free(r->test_acc);
    free(r->val_acc);
    free(r->train_loss);
    free(r->epoch_s);
    free(r->angles);
}

typedef struct work {
    float *xb, *tb, *yb, *ta; /* batch inputs, batch targets, eval outputs,
                                 alignment targets */
    int32_t *perm;
    int32_t n_out;
    int32_t align_n;
} work;

static void
one_hot(float *t, int32_t n_out, const uint8_t *y, const int32_t *idx,
        int32_t batch)
{
    memset(t, 0, sizeof *t * (size_t)n_out * (size_t)batch);
    for (int32_t j = 0; j < batch; j++) {
        uint8_t label = idx ? y[idx[j]] : y[j];
        t[(size_t)j * (size_t)n_out + label] = 1.0f;
    }
}

/* Accuracy in % over a split, by argmax of the outputs in chunks. */
static int
accuracy(fa_net *net, const split *s, int32_t features, work *w, double *acc)
{
    int64_t correct = 0;
    for (int32_t start = 0; start < s->n; start += EVAL_CHUNK) {
        int32_t m = s->n - start < EVAL_CHUNK ? s->n - start : EVAL_CHUNK;
        int rc = fa_net_forward(net, s->x + (size_t)start * (size_t)features,
                                features, m, w->yb, w->n_out);
        if (rc != FA_OK) {
            lib_error("fa_net_forward", rc);
            return rc;
        }
        for (int32_t j = 0; j < m; j++) {
            const float *y = w->yb + (size_t)j * (size_t)w->n_out;
            int32_t best = 0;
            for (int32_t k = 1; k < w->n_out; k++)
                if (y[k] > y[best])
                    best = k;
            correct += best == s->y[start + j];
        }
    }
    *acc = s->n > 0 ? 100.0 * (double)correct / (double)s->n : (double)NAN;
    return FA_OK;
}

static void
progress_bar(int32_t done, int32_t total, int64_t examples, double elapsed,
             double loss)
{
    enum { WIDTH = 28 };
    int fill = (int)((int64_t)WIDTH * done / total);
    char bar[WIDTH + 1];
    for (int i = 0; i < WIDTH; i++)
        bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
    bar[WIDTH] = '\0';
    double rate = elapsed > 0 ? (double)examples / elapsed : 0.0;
    double eta = done > 0 ? elapsed * (double)(total - done) / done : 0.0;
    fprintf(stderr, "\r  [%s] %d/%d batches  %.0f ex/s  loss %.4f  ETA %.0fs ",
            bar, done, total, rate, loss, eta);
    fflush(stderr);
}

static void
format_angles(char *buf, size_t len, const float *a, int32_t n)
{
    buf[0] = '\0';
    for (int32_t i = 0; i < n; i++) {
        size_t used = strlen(buf);
        if (isnan(a[i])) /* not measured (--align-batch 0) */
            snprintf(buf + used, len - used, "%s-", i ? " " : "");
        else
            snprintf(buf + used, len - used, "%s%.1f", i ? " " : "",
                     (double)a[i]);
    }
    if (n == 0)
        snprintf(buf, len, "-");
}

static void
log_row(FILE *log, const run *r, int32_t e, double lr, int32_t n_train)
{
    if (log == NULL)
        return;
    double es = r->epoch_s[e];
    fprintf(log, "%s,%d,%g,", rule_names[r->rule], e, lr);
    if (e > 0)
        fprintf(log, "%.6f", r->train_loss[e]);
    fprintf(log, ",");
    if (!isnan(r->val_acc[e]))
        fprintf(log, "%.4f", r->val_acc[e]);
    fprintf(log, ",%.4f,%.4f,%.1f", r->test_acc[e], es,
            es > 0 ? (double)n_train / es : 0.0);
    for (int32_t l = 0; l < r->n_layers - 1; l++) {
        float a = r->angles[(size_t)e * (size_t)(r->n_layers - 1) + (size_t)l];
        fprintf(log, ",");
        if (!isnan(a))
            fprintf(log, "%.3f", (double)a);
    }
    fprintf(log, "\n");
    fflush(log);
}

static void
log_header(FILE *log, int32_t n_layers)
{
    if (log == NULL)
        return;
    fprintf(log, "rule,epoch,lr,train_loss,val_acc,test_acc,epoch_s,"
                 "examples_per_s");
    for (int32_t l = 1; l < n_layers; l++)
        fprintf(log, ",align_l%d", l);
    fprintf(log, "\n");
}

/* Create (or load) the network and apply the options. */
static int
make_net(const config *c, int32_t rule, fa_net **out)
{
    fa_net *net = NULL;
    int rc;
    const char *what = "";
    *out = NULL;
    if (c->load) {
        rc = fa_net_load(&net, c->load);
        if (rc != FA_OK) {
            die_msg("--load %s: %s: %s", c->load, fa_status_string(rc),
                    fa_last_error());
            return rc;
        }
    } else {
        int32_t acts[MAX_LAYERS];
        for (int32_t l = 0; l < c->n_layers; l++)
            acts[l] = l == c->n_layers - 1 ? c->out_act : c->act;
        what = "fa_net_create";
        rc = fa_net_create(&net, c->n_layers, c->sizes, acts, c->loss, c->seed);
        if (rc != FA_OK)
            goto fail;
        /* Same RNG draws in the same order for every rule, so --compare
         * starts each rule from identical forward weights. */
        if (c->init != FA_INIT_DEFAULT) {
            what = "fa_net_init_weights (--init)";
            if ((rc = fa_net_init_weights(net, c->init)) != FA_OK)
                goto fail;
        }
    }
    /* With --load only the explicitly given options change the model;
     * otherwise every option applies (defaults included). */
    bool fresh = c->load == NULL;
    if (fresh || c->set[O_FB_DIST] || c->set[O_FB_SCALE]) {
        what = "fa_net_set_feedback_init (--fb-dist/--fb-scale)";
        if ((rc = fa_net_set_feedback_init(net, c->fb_dist, c->fb_scale)) != FA_OK)
            goto fail;
    }
    if (fresh || c->set[O_DFA_VARIANT]) {
        what = "fa_net_set_dfa_variant (--dfa-variant)";
        if ((rc = fa_net_set_dfa_variant(net, c->dfa_variant)) != FA_OK)
            goto fail;
    }
    if (fresh || c->set[O_RULE] || c->n_compare > 0) {
        what = "fa_net_set_rule (--rule)";
        if ((rc = fa_net_set_rule(net, rule)) != FA_OK)
            goto fail;
    }
    int32_t L = 0;
    fa_net_num_layers(net, &L);
    if (fresh || c->set[O_DROPOUT]) {
        what = "fa_net_set_dropout (--dropout)";
        for (int32_t l = 1; l < L; l++)
            if ((rc = fa_net_set_dropout(net, l, c->dropout)) != FA_OK)
                goto fail;
    }
    if (fresh || c->set[O_OPT]) {
        what = "fa_net_set_optimizer (--opt)";
        if ((rc = fa_net_set_optimizer(net, c->opt)) != FA_OK)
            goto fail;
    }
    if (fresh || c->set[O_LR]) {
        what = "fa_net_set_hparam (--lr)";
        if ((rc = fa_net_set_hparam(net, FA_HP_LR, c->lr)) != FA_OK)
            goto fail;
    }
    if (fresh || c->set[O_MOMENTUM]) {
        what = "fa_net_set_hparam (--momentum)";
        if ((rc = fa_net_set_hparam(net, FA_HP_MOMENTUM, c->momentum)) != FA_OK)
            goto fail;
    }
    if (fresh || c->set[O_WD]) {
        what = "fa_net_set_hparam (--wd)";
        if ((rc = fa_net_set_hparam(net, FA_HP_WEIGHT_DECAY, c->wd)) != FA_OK)
            goto fail;
    }
    *out = net;
    return FA_OK;
fail:
    lib_error(what, rc);
    fa_net_free(net);
    return rc;
}

/* Check the network fits the data: input width and output classes. */
static bool
check_fit(const config *c, fa_net *net, const data *d, int32_t *n_out,
          int32_t *L)
{
    int32_t sizes[MAX_LAYERS + 1];
    fa_net_num_layers(net, L);
    if (*L > MAX_LAYERS || fa_net_get_sizes(net, sizes, *L + 1) != FA_OK) {
        die_msg("%s: networks of more than %d layers are not supported",
                c->load ? c->load : "--arch", MAX_LAYERS);
        return false;
    }
    const char *src = c->load ? c->load : "--arch";
    if (sizes[0] != d->features) {
        die_msg("%s: input width %d does not match the %d pixels per image "
                "of %s", src, sizes[0], d->features, d->train_path);
        return false;
    }
    *n_out = sizes[*L];
    if (*n_out <= d->max_label) {
        die_msg("%s: output width %d cannot represent label %d of %s", src,
                *n_out, d->max_label, d->train_path);
        return false;
    }
    return true;
}

static void
describe_net(const config *c, fa_net *net, int32_t rule, int32_t L)
{
    int32_t sizes[MAX_LAYERS + 1], act = 0, loss = 0, opt = 0;
    double lr = 0;
    fa_net_get_sizes(net, sizes, L + 1);
    fa_net_get_activation(net, 1, &act);
    fa_net_get_loss(net, &loss);
    fa_net_get_optimizer(net, &opt);
    fa_net_get_hparam(net, FA_HP_LR, &lr);
    char arch[256] = "";
    for (int32_t l = 0; l <= L; l++) {
        size_t u = strlen(arch);
        snprintf(arch + u, sizeof arch - u, "%s%d", l ? "-" : "", sizes[l]);
    }
    printf("%s%s%snet: %s %s, %s loss, rule %s, %s lr %g, batch %d, "
           "%d epoch%s, seed %llu\n", c->n_compare ? "[" : "",
           c->n_compare ? rule_names[rule] : "", c->n_compare ? "] " : "",
           arch,
           L > 1 ? act_names[act] : "", loss_names[loss], rule_names[rule],
           opt_names[opt], lr, c->batch, c->epochs, c->epochs == 1 ? "" : "s",
           (unsigned long long)c->seed);
}

/* Train one network under one rule; fills r.  Returns 0, or 1 when the
 * training diverged, or -1 on any other error (already reported). */
static int
train(const config *c, const data *d, int32_t rule, FILE *log, run *r)
{
    memset(r, 0, sizeof *r);
    r->rule = rule;
    fa_net *net = NULL;
    work w = {0};
    int status = -1;
    if (make_net(c, rule, &net) != FA_OK)
        return -1;
    int32_t n_out = 0, L = 0;
    if (!check_fit(c, net, d, &n_out, &L))
        goto done;
    if (c->load)
        fa_net_get_rule(net, &rule);
    r->rule = rule;
    r->n_layers = L;
    size_t ep = (size_t)c->epochs + 1, na = (size_t)(L - 1);
    r->test_acc = calloc(ep, sizeof *r->test_acc);
    r->val_acc = calloc(ep, sizeof *r->val_acc);
    r->train_loss = calloc(ep, sizeof *r->train_loss);
    r->epoch_s = calloc(ep, sizeof *r->epoch_s);
    r->angles = calloc(ep * (na ? na : 1), sizeof *r->angles);
    int32_t bmax = c->batch < d->train.n ? c->batch : d->train.n;
    w.n_out = n_out;
    w.align_n = c->align_batch < d->train.n ? c->align_batch : d->train.n;
    size_t f = (size_t)d->features;
    w.xb = malloc(sizeof *w.xb * f * (size_t)bmax);
    w.tb = malloc(sizeof *w.tb * (size_t)n_out * (size_t)bmax);
    w.yb = malloc(sizeof *w.yb * (size_t)n_out * EVAL_CHUNK);
    w.ta = malloc(sizeof *w.ta * (size_t)n_out * (size_t)(w.align_n ? w.align_n : 1));
    w.perm = malloc(sizeof *w.perm * (size_t)d->train.n);
    if (!r->test_acc || !r->val_acc || !r->train_loss || !r->epoch_s ||
        !r->angles || !w.xb || !w.tb || !w.yb || !w.ta || !w.perm) {
        die_msg("out of memory");
        goto done;
    }
    int32_t reserve = bmax > EVAL_CHUNK ? bmax : EVAL_CHUNK;
    if (w.align_n > reserve)
        reserve = w.align_n;
    int rc = fa_net_reserve(net, reserve);
    if (rc != FA_OK) {
        lib_error("fa_net_reserve", rc);
        goto done;
    }
    for (int32_t i = 0; i < d->train.n; i++)
        w.perm[i] = i;
    /* The alignment batch is fixed (the first training samples), so the
     * angles of successive epochs are comparable. */
    if (w.align_n > 0)
        one_hot(w.ta, n_out, d->train.y, NULL, w.align_n);

    describe_net(c, net, rule, L);
    bool bar = c->progress == PROGRESS_ON ||
               (c->progress == PROGRESS_AUTO && isatty(STDERR_FILENO));
    uint64_t shuffle_state = c->seed;
    double lr = 0.0;
    fa_net_get_hparam(net, FA_HP_LR, &lr);
    const double base_lr = lr;
    int32_t nb = (d->train.n + bmax - 1) / bmax;
    const char *tag = c->n_compare ? rule_names[rule] : NULL;

    for (int32_t e = 0; e <= c->epochs; e++) {
        if (e > 0) {
            /* Schedule: lr = base * decay^floor((e-1)/every). */
            lr = base_lr * pow(c->lr_decay, (double)((e - 1) / c->lr_every));
            if ((rc = fa_net_set_hparam(net, FA_HP_LR, lr)) != FA_OK) {
                lib_error("fa_net_set_hparam (learning-rate schedule)", rc);
                goto done;
            }
            shuffle(w.perm, d->train.n, &shuffle_state);
            double t0 = now_s(), last_draw = 0.0, loss_sum = 0.0;
            int64_t seen = 0;
            for (int32_t b = 0; b < nb; b++) {
                int32_t start = b * bmax;
                int32_t m = d->train.n - start < bmax ? d->train.n - start : bmax;
                for (int32_t j = 0; j < m; j++)
                    memcpy(w.xb + (size_t)j * f,
                           d->train.x + (size_t)w.perm[start + j] * f,
                           sizeof *w.xb * f);
                one_hot(w.tb, n_out, d->train.y, w.perm + start, m);
                float loss = 0.0f;
                rc = fa_net_train_step(net, w.xb, (int32_t)f, w.tb, n_out, m,
                                       &loss);
                if (rc == FA_ERR_NONFINITE) {
                    if (bar)
                        fprintf(stderr, "\r\033[K");
                    die_msg("rule %s diverged in epoch %d, batch %d (the loss "
                            "or update is not finite); try a smaller --lr",
                            rule_names[rule], e, b + 1);
                    r->epochs = e - 1;
                    status = 1;
                    goto done;
                }
                if (rc != FA_OK) {
                    lib_error("fa_net_train_step", rc);
                    goto done;
                }
                loss_sum += (double)loss * m;
                seen += m;
                if (bar) {
                    double t = now_s() - t0;
                    if (t - last_draw > 0.1 || b == nb - 1) {
                        progress_bar(b + 1, nb, seen, t, loss_sum / (double)seen);
                        last_draw = t;
                    }
                }
            }
            r->epoch_s[e] = now_s() - t0;
            r->train_loss[e] = loss_sum / (double)seen;
            if (bar)
                fprintf(stderr, "\r\033[K");
        }
        if (accuracy(net, &d->test, d->features, &w, &r->test_acc[e]) != FA_OK)
            goto done;
        r->val_acc[e] = NAN;
        if (d->val.n > 0 &&
            accuracy(net, &d->val, d->features, &w, &r->val_acc[e]) != FA_OK)
            goto done;
        float *ang = r->angles + (size_t)e * na;
        if (na > 0) {
            if (w.align_n > 0) {
                rc = fa_net_alignment(net, d->train.x, (int32_t)f, w.ta, n_out,
                                      w.align_n, ang, (int64_t)na);
                if (rc != FA_OK) {
                    lib_error("fa_net_alignment", rc);
                    goto done;
                }
            } else {
                for (size_t l = 0; l < na; l++)
                    ang[l] = NAN;
            }
        }
        r->epochs = e;
        char angles[256], val[32], loss[32];
        format_angles(angles, sizeof angles, ang, (int32_t)na);
        if (d->val.n > 0)
            snprintf(val, sizeof val, "%6.2f%%", r->val_acc[e]);
        else
            snprintf(val, sizeof val, "     -");
        if (e > 0)
            snprintf(loss, sizeof loss, "%.4f", r->train_loss[e]);
        else
            snprintf(loss, sizeof loss, "     -");
        printf("%s%s%sepoch %3d/%d  loss %s  val %s  test %6.2f%%  time "
               "%6.2fs  align %s\n", tag ? "[" : "", tag ? tag : "",
               tag ? "] " : "", e, c->epochs, loss, val, r->test_acc[e],
               r->epoch_s[e], angles);
        log_row(log, r, e, lr, d->train.n);
    }
    if (c->save) {
        rc = fa_net_save(net, c->save);
        if (rc != FA_OK) {
            die_msg("--save %s: %s: %s", c->save, fa_status_string(rc),
                    fa_last_error());
            goto done;
        }
        printf("saved %s\n", c->save);
    }
    status = 0;
done:
    r->status = status;
    free(w.xb);
    free(w.tb);
    free(w.yb);
    free(w.ta);
    free(w.perm);
    fa_net_free(net);
    return status;
}

static double
mean_epoch_s(const run *r)
{
    double s = 0.0;
    for (int32_t e = 1; e <= r->epochs; e++)
        s += r->epoch_s[e];
    return r->epochs > 0 ? s / r->epochs : 0.0;
}

static double
best_val(const run *r)
{
    double b = NAN;
    for (int32_t e = 0; e <= r->epochs; e++)
        if (!isnan(r->val_acc[e]) && (isnan(b) || r->val_acc[e] > b))
            b = r->val_acc[e];
    return b;
}

static void
print_final(const run *r)
{
    int32_t e = r->epochs;
    char angles[256];
    format_angles(angles, sizeof angles,
                  r->angles + (size_t)e * (size_t)(r->n_layers - 1),
                  r->n_layers - 1);
    char val[32] = "-";
    if (!isnan(best_val(r)))
        snprintf(val, sizeof val, "%.2f", best_val(r));
    printf("final: rule=%s epochs=%d test_acc=%.2f best_val_acc=%s "
           "mean_epoch_s=%.3f align=%s\n", rule_names[r->rule], e,
           r->test_acc[e], val, mean_epoch_s(r), angles);
}

/* ------------------------------------------------------------ --compare */

/* Write s as a gnuplot single-quoted string ('' stands for a quote). */
static void
gp_quote(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'')
            fputc('\'', f);
        fputc(*s, f);
    }
    fputc('\'', f);
}

static bool
write_curve(const char *out, const run *r, char *path, size_t len)
{
    snprintf(path, len, "%s/curve-%s.dat", out, rule_names[r->rule]);
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        die_msg("%s: cannot write: %s", path, strerror(errno));
        return false;
    }
    fprintf(f, "# epoch train_loss test_acc val_acc epoch_s");
    for (int32_t l = 1; l < r->n_layers; l++)
        fprintf(f, " align_l%d", l);
    fprintf(f, "\n");
    for (int32_t e = 0; e <= r->epochs; e++) {
        fprintf(f, "%d %.6f %.4f %.4f %.4f", e,
                e > 0 ? r->train_loss[e] : (double)NAN, r->test_acc[e], r->val_acc[e],
                r->epoch_s[e]);
        for (int32_t l = 0; l < r->n_layers - 1; l++)
            fprintf(f, " %.3f",
                    (double)r->angles[(size_t)e * (size_t)(r->n_layers - 1) + (size_t)l]);
        fprintf(f, "\n");
    }
    if (fclose(f) != 0) {
        die_msg("%s: cannot write: %s", path, strerror(errno));
        return false;
    }
    return true;
}

/* Run gnuplot on the script; false (with a message) when it is missing or
 * fails, which costs the plots but not the results. */
static bool
run_gnuplot(const char *script)
{
    char *argv[] = {(char[]){"gnuplot"}, NULL, NULL};
    char sbuf[4200];
    snprintf(sbuf, sizeof sbuf, "%s", script);
    argv[1] = sbuf;
    pid_t pid;
    int rc = posix_spawnp(&pid, "gnuplot", NULL, NULL, argv, environ);
    if (rc != 0) {
        die_msg("cannot run gnuplot (%s): plots skipped; install gnuplot-nox, "
                "then run: gnuplot %s", strerror(rc), script);
        return false;
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) {
            die_msg("gnuplot: %s", strerror(errno));
            return false;
        }
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        die_msg("gnuplot %s failed (%s %d): plots may be missing", script,
                WIFEXITED(st) ? "exit status" : "signal",
                WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
        return false;
    }
    return true;
}

static void
plots(const config *c, const run *runs, int n)
{
    char curve[MAX_RULES][4200], script[4200], acc_png[4200], ali_png[4200];
    for (int i = 0; i < n; i++)
        if (!write_curve(c->out, &runs[i], curve[i], sizeof curve[i]))
            return;
    snprintf(script, sizeof script, "%s/plots.gp", c->out);
    snprintf(acc_png, sizeof acc_png, "%s/accuracy.png", c->out);
    snprintf(ali_png, sizeof ali_png, "%s/alignment.png", c->out);
    FILE *f = fopen(script, "w");
    if (f == NULL) {
        die_msg("%s: cannot write: %s", script, strerror(errno));
        return;
    }
    fprintf(f, "# Plots of an fa-train --compare run; gnuplot this file.\n"
               "set terminal pngcairo size 900,560 noenhanced\n"
               "set grid\nset key bottom right\nset xlabel 'epoch'\n"
               "set output ");
    gp_quote(f, acc_png);
    fprintf(f, "\nset title 'Test accuracy per epoch'\n"
               "set ylabel 'test accuracy (%%)'\n"
               "set xtics 1\nplot ");
    /* Epoch 0 (the untrained network, ~10%) is left out: it would squash
     * the range where the rules differ. */
    for (int i = 0; i < n; i++) {
        fprintf(f, "%s", i ? ", \\\n     " : "");
        gp_quote(f, curve[i]);
        fprintf(f, " every ::1 using 1:3 with linespoints title '%s'",
                rule_titles[runs[i].rule]);
    }
    fprintf(f, "\n");
    bool any_angle = false;
    for (int i = 0; i < n; i++)
        if (runs[i].rule != FA_RULE_BP && runs[i].n_layers > 1)
            any_angle = true;
    if (any_angle) {
        fprintf(f, "set output ");
        gp_quote(f, ali_png);
        fprintf(f, "\nset title 'Angle between the rule''s hidden-layer "
                   "update and the backprop gradient'\n"
                   "set ylabel 'angle (degrees)'\nset key top right\n"
                   "set yrange [0:*]\n"
                   "# 90 degrees: the update is orthogonal to the gradient\n"
                   "set arrow from graph 0, first 90 to graph 1, first 90 "
                   "nohead dashtype 2\nplot ");
        bool first = true;
        for (int i = 0; i < n; i++) {
            if (runs[i].rule == FA_RULE_BP)
                continue;
            for (int32_t l = 1; l < runs[i].n_layers; l++) {
                fprintf(f, "%s", first ? "" : ", \\\n     ");
                first = false;
                gp_quote(f, curve[i]);
                fprintf(f, " using 1:%d with linespoints title '%s layer %d'",
                        5 + l, rule_titles[runs[i].rule], l);
            }
        }
        fprintf(f, "\n");
    }
    if (fclose(f) != 0) {
        die_msg("%s: cannot write: %s", script, strerror(errno));
        return;
    }
    if (run_gnuplot(script)) {
        printf("plot: %s\n", acc_png);
        if (any_angle)
            printf("plot: %s\n", ali_png);
    }
    printf("data: %s/curve-*.dat, gnuplot script: %s\n", c->out, script);
}

static void
compare_table(const run *runs, int n)
{
    /* Times are relative to BP when BP ran, else to the first rule. */
    int ref = 0;
    for (int i = 0; i < n; i++)
        if (runs[i].rule == FA_RULE_BP && runs[i].status == 0)
            ref = i;
    double tref = mean_epoch_s(&runs[ref]);
    printf("\n%-5s %10s %10s %12s %8s   %s\n", "rule", "test acc", "best val",
           "epoch time", "vs BP", "final alignment (deg, layer 1..L-1)");
    for (int i = 0; i < n; i++) {
        const run *r = &runs[i];
        if (r->status != 0 && r->epochs <= 0) {
            printf("%-5s %10s\n", rule_titles[r->rule],
                   r->status == 1 ? "diverged" : "failed");
            continue;
        }
        char val[32], angles[256];
        double bv = best_val(r);
        if (isnan(bv))
            snprintf(val, sizeof val, "-");
        else
            snprintf(val, sizeof val, "%.2f %%", bv);
        format_angles(angles, sizeof angles,
                      r->angles + (size_t)r->epochs * (size_t)(r->n_layers - 1),
                      r->n_layers - 1);
        double t = mean_epoch_s(r);
        printf("%-5s %8.2f %% %10s %10.2f s %8.2f   %s%s\n",
               rule_titles[r->rule], r->test_acc[r->epochs], val, t,
               tref > 0 ? t / tref : (double)NAN, angles,
               r->status == 1 ? "  (diverged)" : "");
    }
    if (runs[ref].rule != FA_RULE_BP)
        printf("(times relative to %s: BP was not run)\n",
               rule_titles[runs[ref].rule]);
    printf("\n");
}

/* ------------------------------------------------------------------ main */

int
main(int argc, char **argv)
{
    /* Line-buffered so that a log redirected to a file follows the
     * training epoch by epoch. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    config c;
    if (!parse_args(argc, argv, &c))
        return EXIT_USAGE;
    if (c.help) {
        print_help();
        return 0;
    }
    if (c.threads > 0) {
#ifdef FA_HAVE_OPENBLAS_SET_NUM_THREADS
        openblas_set_num_threads(c.threads);
#else
        die_msg("--threads: this build cannot set the BLAS thread count; set "
                "OPENBLAS_NUM_THREADS in the environment instead");
        return EXIT_USAGE;
#endif
    }
    char log_path[4200];
    const char *logp = c.log;
    if (c.n_compare > 0) {
        if (!mkdir_p(c.out))
            return 1;
        if (logp == NULL) {
            snprintf(log_path, sizeof log_path, "%s/log.csv", c.out);
            logp = log_path;
        }
    }
    FILE *log = NULL;
    if (logp) {
        log = fopen(logp, "w");
        if (log == NULL) {
            die_msg("--log %s: cannot open for writing: %s", logp,
                    strerror(errno));
            return 1;
        }
    }
    data d;
    int status = 1;
    if (!load_data(&c, &d))
        goto out;
    printf("data: %s: %d training, %d validation, %d test samples of %d "
           "features\n", c.data_dir, d.train.n, d.val.n, d.test.n, d.features);
    if (c.n_compare == 0) {
        run r;
        int32_t rule = c.rule;
        if (c.set[O_LOAD] && !c.set[O_RULE])
            rule = -1; /* keep the file's rule; train() reads it back */
        /* The header needs L: from --arch or, with --load, from a peek at
         * the model file (train() reports any problem with it). */
        if (log) {
            int32_t L = c.n_layers;
            if (c.load) {
                fa_net *peek = NULL;
                if (fa_net_load(&peek, c.load) == FA_OK)
                    fa_net_num_layers(peek, &L);
                fa_net_free(peek);
            }
            log_header(log, L);
        }
        int rs = train(&c, &d, rule < 0 ? FA_RULE_BP : rule, log, &r);
        if (rs >= 0 && r.test_acc != NULL)
            print_final(&r);
        status = rs == 0 ? 0 : 1;
        free_run(&r);
    } else {
        run runs[MAX_RULES];
        int done = 0;
        if (log)
            log_header(log, c.n_layers);
        status = 0;
        for (int i = 0; i < c.n_compare; i++) {
            int rs = train(&c, &d, c.compare[i], log, &runs[done]);
            if (rs < 0 && runs[done].test_acc == NULL) {
                free_run(&runs[done]);
                status = 1;
                break;
            }
            if (rs != 0)
                status = 1;
            if (runs[done].test_acc != NULL)
                print_final(&runs[done]);
            done++;
        }
        if (done > 0) {
            compare_table(runs, done);
            plots(&c, runs, done);
        }
        for (int i = 0; i < done; i++)
            free_run(&runs[i]);
    }
out:
    free_data(&d);
    if (log && fclose(log) != 0) {
        die_msg("--log %s: write failed: %s", logp, strerror(errno));
        status = 1;
    }
    return status;
}
