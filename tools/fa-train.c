/*
 * fa-train -- train a dense network on an IDX data set (MNIST, Fashion-MNIST)
 * with backprop, feedback alignment or direct feedback alignment, through
 * the public API of libfeedbackalign only.  `fa-train --help` lists every
 * option.  `--compare bp,fa,dfa` trains the same network from the same seed
 * under each rule and prints a table and gnuplot PNGs.
 *
 * This file is main: it checks the output files, then runs one training or
 * the --compare series.  The modules are listed in fa-train.h.
 *
 * Exit status: 0 success, 1 runtime failure (unreadable or corrupt data,
 * unwritable --save, library error, divergence), 2 bad command line,
 * 128 + signal number (130, 143) after SIGINT or SIGTERM stopped the
 * training (the network is saved first, with --save).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "fa-train.h"

volatile sig_atomic_t stop_signal = 0;

/* Only records the signal: the training loop looks at stop_signal after
 * every batch, then saves and reports outside the handler. */
static void
on_stop_signal(int sig)
{
    stop_signal = sig;
}

/* SIGINT and SIGTERM ask the training to stop after the current batch.
 * SA_RESETHAND: a second signal takes the default action at once, for a
 * user who means it (the save replaces FILE atomically, so that cannot
 * leave a half-written model).  SA_RESTART: reads and writes in progress
 * go on.  A signal that was ignored when fa-train started (nohup, a
 * background job of a script) stays ignored, as the caller wanted. */
static void
install_stop_handlers(void)
{
    static const int sigs[] = {SIGINT, SIGTERM};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction old, sa;
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN)
            continue;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_stop_signal;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESETHAND | SA_RESTART;
        sigaction(sigs[i], &sa, NULL);
    }
}

/* --save is tried before any work, so that a mistyped directory does not
 * cost a whole training: the path must not be a directory, and a file
 * named like the save's temporary file (FILE.tmp.XXXXXX, which is then
 * renamed over FILE) must be creatable next to it; the probe is removed at
 * once.  False after a message. */
static bool
check_save_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        report_error("--save %s: is a directory, expected a file name", path);
        return false;
    }
    static const char suffix[] = ".tmp.XXXXXX";
    size_t len = strlen(path);
    char *probe = malloc(len + sizeof suffix);
    if (probe == NULL) {
        report_error("--save %s: out of memory", path);
        return false;
    }
    memcpy(probe, path, len);
    memcpy(probe + len, suffix, sizeof suffix);
    int fd = mkstemp(probe);
    if (fd < 0) {
        int err = errno;
        /* The directory, for the message: up to the last '/'. */
        const char *slash = strrchr(path, '/');
        int dlen = slash == NULL ? 1 : slash == path ? 1 : (int)(slash - path);
        report_error("--save %s: cannot create a file in %.*s: %s", path, dlen,
                     slash == NULL ? "." : path, strerror(err));
        free(probe);
        return false;
    }
    close(fd);
    unlink(probe);
    free(probe);
    return true;
}

static bool
mkdir_p(const char *dir)
{
    char buf[4096];
    if (strlen(dir) >= sizeof buf) {
        report_error("--out: path too long");
        return false;
    }
    strcpy(buf, dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
            report_error("--out %s: cannot create %s: %s", dir, buf,
                         strerror(errno));
            return false;
        }
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
        report_error("--out %s: cannot create it: %s", dir, strerror(errno));
        return false;
    }
    return true;
}

/* One network under --rule (or the rule of --load).  Returns the exit
 * status. */
static int
run_single(const config *c, const data *d, csv_log *log)
{
    run r;
    int32_t rule = c->rule;
    if (c->load && !c->set[O_RULE])
        rule = FA_RULE_BP; /* placeholder: train() keeps the file's rule */
    run_status st = train(c, d, rule, log, &r);
    if (st != RUN_FAILED)
        report_final(&r);
    free_run(&r);
    if (st == RUN_INTERRUPTED)
        return 128 + stop_signal;
    return st == RUN_OK ? 0 : 1;
}

/* The same network under each rule of --compare, then the table and the
 * plots.  Returns the exit status. */
static int
run_compare(const config *c, const data *d, csv_log *log)
{
    run runs[MAX_RULES];
    int done = 0, status = 0;
    for (int i = 0; i < c->n_compare && stop_signal == 0; i++) {
        run_status st = train(c, d, c->compare[i], log, &runs[done]);
        if (st != RUN_OK)
            status = 1;
        if (st == RUN_FAILED && runs[done].test_acc == NULL) {
            /* Nothing to show for it: the network could not be set up. */
            free_run(&runs[done]);
            break;
        }
        if (st != RUN_FAILED)
            report_final(&runs[done]);
        done++;
    }
    /* Stopped by a signal: the table of what was done, but no plots (the
     * user asked to stop, and gnuplot got the terminal's SIGINT too). */
    if (done > 0)
        compare_table(runs, done);
    if (done > 0 && stop_signal == 0)
        plots(c, runs, done);
    for (int i = 0; i < done; i++)
        free_run(&runs[i]);
    return stop_signal != 0 ? 128 + stop_signal : status;
}

/* The BLAS line of the header, and a warning when OpenBLAS runs kernels
 * far below what the CPU can do (it falls back to them on CPUs it does not
 * recognise, such as some virtual ones). */
static void
report_blas(void)
{
    char info[512];
    int32_t generic = 0;
    if (fa_blas_info(info, sizeof info, &generic) != FA_OK)
        return;
    printf("blas: %s\n", info);
    if (generic)
        fprintf(stderr, PROG ": warning: OpenBLAS runs generic kernels on a CPU with "
                "AVX2/AVX-512; setting OPENBLAS_CORETYPE (e.g. Haswell, SkylakeX or Zen) "
                "in the environment may make training several times faster\n");
}

/* Everything after the command line; returns the exit status. */
static int
run_program(const config *c)
{
    if (c->threads > 0 && fa_set_threads(c->threads) != FA_OK) {
        lib_error("fa_set_threads (--threads)", FA_ERR_ARG);
        return EXIT_USAGE;
    }
    if (c->save && !check_save_path(c->save))
        return 1;
    char log_path[4200];
    const char *logp = c->log;
    if (c->n_compare > 0) {
        if (!mkdir_p(c->out))
            return 1;
        if (logp == NULL) {
            snprintf(log_path, sizeof log_path, "%s/log.csv", c->out);
            logp = log_path;
        }
    }
    csv_log log = {NULL, false};
    if (logp) {
        log.f = fopen(logp, "w");
        if (log.f == NULL) {
            report_error("--log %s: cannot open for writing: %s", logp,
                         strerror(errno));
            return 1;
        }
    }
    report_blas();
    data d;
    int status = 1;
    if (load_data(c, &d)) {
        printf("data: %s: %d training, %d validation, %d test samples of %d "
               "features\n", c->data_dir, d.train.n, d.val.n, d.test.n,
               d.features);
        /* From here on a signal stops the training cleanly; before, during
         * the data load, it ends the program at once as usual. */
        install_stop_handlers();
        status = c->n_compare > 0 ? run_compare(c, &d, &log)
                                  : run_single(c, &d, &log);
    }
    free_data(&d);
    if (log.f && fclose(log.f) != 0) {
        report_error("--log %s: write failed: %s", logp, strerror(errno));
        status = 1;
    }
    return status;
}

int
main(int argc, char **argv)
{
    /* Line-buffered so that a log redirected to a file follows the
     * training epoch by epoch. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    config c;
    int status;
    if (!parse_args(argc, argv, &c))
        status = EXIT_USAGE;
    else if (c.help)
        print_help(), status = 0;
    else if (c.help_rules)
        print_help_rules(), status = 0;
    else
        status = run_program(&c);
    config_free(&c);
    return status;
}
