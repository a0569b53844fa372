/*
 * fa-train.h -- private header of the fa-train command-line trainer: the
 * structures its modules share and the functions each one offers.
 *
 *   fa-train.c  main: file checks, signals, one run or --compare
 *   options.c   option table, parsing, --help, the enum name lists
 *   data.c      IDX loading, input normalisation, batches
 *   train.c     the network and the training loop, epoch by epoch
 *   report.c    console lines, progress bar, CSV log, --compare table
 *   plots.c     --compare curves and gnuplot plots (template plots.gp)
 *   par-serial.c  the processes of a training: one (fa-train), or
 *   par-mpi.c     MPI ranks training data-parallel (fa-train-mpi)
 *
 * The same modules make both programs; they differ only in the par-*.c
 * they link (and PROG).  Only the public ABI of libfeedbackalign is used.
 * Helpers report a problem with one line on stderr and return a status;
 * only main chooses the exit status (0 success, 1 runtime failure, 2 bad
 * command line).
 */
#ifndef FA_TOOLS_FA_TRAIN_H
#define FA_TOOLS_FA_TRAIN_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "feedbackalign.h"
#include "idx.h"

#ifndef PROG
#define PROG "fa-train" /* fa-train-mpi: -DPROG=... in meson.build */
#endif
#define MAX_RULES 32   /* distinct rules in --compare (the library has 11) */
#define MAX_HPARAMS 32 /* --hparam settings */
#define EXIT_USAGE 2

/* ------------------------------------------------------------- options */

enum opt_id {
    O_DATA, O_VAL, O_LIMIT_TRAIN, O_LIMIT_TEST, O_INPUT_NORM,
    O_ARCH, O_ACT, O_OUT_ACT, O_LOSS, O_DROPOUT, O_INIT,
    O_RULE, O_FB_DIST, O_FB_SCALE, O_DFA_VARIANT,
    O_HPARAM,
    O_OPT, O_LR, O_LR_DECAY, O_LR_EVERY, O_LR_MIN, O_MOMENTUM, O_WD,
    O_EPOCHS, O_BATCH, O_SEED, O_THREADS,
    O_SAVE, O_LOAD, O_LOG, O_COMPARE, O_OUT, O_ALIGN_BATCH, O_PROGRESS,
    O_HELP, O_HELP_RULES,
    O_CHECK_EVERY, /* fa-train-mpi only */
    O_COUNT
};

/* The enumerations the command line names.  All but the last two are the
 * library's, named by the library (fa_enum_name); the rest of the program
 * asks enum_name() and parse_enum(). */
typedef enum name_kind {
    NK_ACT, NK_LOSS, NK_RULE, NK_DIST, NK_VARIANT, NK_INIT, NK_OPT, NK_HPARAM,
    NK_NORM, NK_PROGRESS,
    NK_COUNT
} name_kind;

enum { NORM_NONE, NORM_CENTER, NORM_STANDARDIZE };
enum { PROGRESS_AUTO, PROGRESS_ON, PROGRESS_OFF };

typedef struct config {
    const char *data_dir;
    int32_t val, limit_train, limit_test, input_norm;
    const char *arch;  /* --arch text */
    fa_spec *spec;     /* parsed from it (NULL with --load); config_free */
    int32_t n_layers;
    int32_t act, out_act, loss, init;
    double dropout;
    int32_t rule, fb_dist, dfa_variant;
    double fb_scale;
    int32_t opt;
    double lr, lr_decay, lr_min, momentum, wd;
    int32_t lr_every, epochs, batch, threads, align_batch, progress;
    int32_t check_every; /* fa-train-mpi: steps between parameter checks */
    uint64_t seed;
    const char *save, *load, *log, *out;
    int32_t compare[MAX_RULES];
    int n_compare;
    int32_t hparam_id[MAX_HPARAMS];
    double hparam_value[MAX_HPARAMS];
    int n_hparams;
    bool help, help_rules;
    bool set[O_COUNT]; /* given on the command line */
} config;

/* Parse argv into c (defaults for what is not given); false after a
 * message on stderr. */
bool parse_args(int argc, char **argv, config *c);
void config_free(config *c);
void print_help(void);
void print_help_rules(void);

/* The command-line name of a value of an enumeration; "?" when out of
 * range. */
const char *enum_name(name_kind kind, int32_t value);
/* The value named text, or false after a message naming the option and
 * the accepted names. */
bool parse_enum(const char *option, const char *text, name_kind kind,
                int32_t *out);
/* A rule's title in tables and plots: its name in capitals ("DFA"). */
void rule_title(int32_t rule, char *buf, size_t len);

/* ---------------------------------------------------------------- data */

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

bool load_data(const config *c, data *d);
void free_data(data *d);
/* The tool's own shuffling stream (splitmix64 seeded from --seed), kept
 * apart from the network's RNG so that every rule sees the same batches. */
void shuffle(int32_t *perm, int32_t n, uint64_t *state);
/* Copy samples idx[0..m-1] of s into x (features, m) and their one-hot
 * targets into t (n_out, m); idx NULL: samples 0..m-1. */
void gather_batch(const split *s, int32_t features, const int32_t *idx,
                  int32_t m, int32_t n_out, float *x, float *t);
void one_hot(float *t, int32_t n_out, const uint8_t *y, const int32_t *idx,
             int32_t batch);

/* ------------------------------------------------------------ training */

/* How a run ended. */
typedef enum run_status {
    RUN_OK = 0,
    RUN_DIVERGED,    /* a step's loss or update was not finite */
    RUN_FAILED,      /* any other error, already reported */
    RUN_INTERRUPTED, /* SIGINT or SIGTERM: stopped after a batch */
} run_status;

/* The signal (SIGINT, SIGTERM) that asked the training to stop after the
 * current batch, or 0.  Set by main's handler only. */
extern volatile sig_atomic_t stop_signal;

typedef struct run {
    int32_t rule;
    int32_t n_layers; /* L */
    int32_t epochs;   /* epochs completed */
    run_status status;
    /* Per epoch 0..epochs (0 = before training): */
    double *test_acc, *val_acc, *train_loss, *epoch_s, *lr;
    float *angles; /* (L-1) per epoch */
} run;

/* The CSV log (--log, or OUT/log.csv with --compare): its header needs the
 * layer count, so it is written by the first run that knows it. */
typedef struct csv_log {
    FILE *f; /* NULL: no log */
    bool header_done;
} csv_log;

/* Train one network under one rule and fill r (free it with free_run even
 * on failure).  Returns r->status.  With --save the network is saved at
 * the end, and also when the training stops early (divergence, any other
 * failure, a stop signal), as it was when it stopped. */
run_status train(const config *c, const data *d, int32_t rule, csv_log *log,
                 run *r);
void free_run(run *r);

/* ------------------------------------------------------------ reporting */

#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
void report_error(const char *fmt, ...);
/* A failing library call: its status name and the library's detail. */
void lib_error(const char *what, int rc);

void report_net(const config *c, fa_net *net, int32_t rule, int32_t L);
void report_epoch(const config *c, const run *r, int32_t e, bool have_val);
void report_final(const run *r);
void progress_bar(int32_t done, int32_t total, int64_t examples,
                  double elapsed, double loss);
void progress_clear(void);
/* progress_clear if a bar is shown (before messages of other ranks). */
void progress_hide(void);
void log_header(csv_log *log, int32_t n_layers);
void log_row(csv_log *log, const run *r, int32_t e, int32_t n_train);
void compare_table(const run *runs, int n);

double mean_epoch_s(const run *r);
double best_val(const run *r);
void format_angles(char *buf, size_t len, const float *a, int32_t n);

/* ---------------------------------------------------------------- plots */

/* Write OUT/curve-<rule>.dat and OUT/plots.gp and run gnuplot in OUT.
 * Failures cost the plots, not the results: they are reported only. */
void plots(const config *c, const run *runs, int n);

/* ------------------------------------------------------------ processes */

/* The processes that train one network together.  par-serial.c (fa-train):
 * one process, and every function below is trivial.  par-mpi.c
 * (fa-train-mpi): the ranks of MPI_COMM_WORLD, each holding an identical
 * network; each computes the update of its shard of every batch, the
 * updates are summed, and every rank applies the same sum.
 *
 * Functions marked COLLECTIVE must be called by every process at the same
 * point of the program, in the same order, or the job hangs: the program
 * reaches them on every rank from the same agreed statuses. */

/* True in fa-train-mpi (the par-mpi.c build). */
extern const bool par_mpi;

/* Start (MPI_Init) and end (flush pending messages, MPI_Finalize); returns
 * status.  par_init exits with a message if MPI cannot start. */
void par_init(int *argc, char ***argv);
int par_finalize(int status);
int par_rank(void); /* 0 .. par_size()-1 */
int par_size(void);
/* Rank 0: the only process that prints, logs, evaluates, plots and saves. */
bool par_root(void);

/* COLLECTIVE.  An agreement point: every process passes the status of its
 * own work since the last agreement (RUN_INTERRUPTED if it saw a stop
 * signal), and all get the job's: the worst of them (failed, diverged,
 * interrupted, ok).  Messages reported since the last agreement are
 * printed by rank 0, once per distinct text, prefixed with the ranks that
 * reported it unless all did; after a failure rank 0 says which ranks
 * failed, `where`.  Serial: returns mine. */
run_status par_agree(run_status mine, const char *where);
/* The stop signal agreed at the last agreement (serial: stop_signal). */
int par_stop_signal(void);

/* This process's shard [*lo, *lo + *count) of a global batch of m samples:
 * contiguous, sizes differing by at most one (0 when m < size). */
void par_shard(int32_t m, int32_t *lo, int32_t *count);

/* COLLECTIVE.  buf[0..n) <- its sum over the processes, the same bits on
 * every process.  False (with a message) if MPI reports an error. */
bool par_sum(float *buf, int64_t n);

/* COLLECTIVE.  Whether every process holds the same len bytes at p
 * (compared by a 64-bit hash); a mismatch is RUN_FAILED on every process,
 * with a message from rank 0 naming the ranks that differ, `what` and
 * `where`.  Serial: RUN_OK. */
run_status par_same(const void *p, size_t len, const char *what,
                    const char *where);

/* report_error's hook: true if the message was taken to be printed at the
 * next agreement (fa-train-mpi), false to print it now (fa-train). */
bool par_take_message(const char *msg);

/* fa-train-mpi's own lines of --help, and its line in the header. */
void par_help(void);
void par_report(const config *c);

/* Test hooks of fa-train-mpi, from the environment variable
 * FA_TRAIN_MPI_TEST (par-mpi.c documents it); serial: none.
 * par_fault: what this process must simulate before global step `step`
 * (counted from 1 over the whole run). */
typedef enum par_fault_kind {
    FAULT_NONE, FAULT_NAN, FAULT_KILL, FAULT_EXIT, FAULT_PERTURB
} par_fault_kind;
par_fault_kind par_fault(int64_t step);
/* Non-NULL: every rank saves its network to PREFIX.rankK.fa at the end. */
const char *par_rank_save_prefix(void);

#endif /* FA_TOOLS_FA_TRAIN_H */
