/*
 * fa-train -- train a dense network on an IDX data set (MNIST, Fashion-MNIST)
 * with backprop, feedback alignment or direct feedback alignment, through
 * the public API of libfeedbackalign only.  `fa-train --help` lists every
 * option.  `--compare bp,fa,dfa` trains the same network from the same seed
 * under each rule and prints a table and gnuplot PNGs.
 *
 * This file is main: it checks the output files, then runs one training or
 * the --compare series.  The modules are listed in fa-train.h.  Built with
 * par-mpi.c instead of par-serial.c it is fa-train-mpi, the same trainer
 * run by every process of an MPI job (par-mpi.c describes how).
 *
 * Exit status: 0 success, 1 runtime failure (unreadable or corrupt data,
 * unwritable --save, library error, divergence), 2 bad command line,
 * 128 + signal number (130, 143) after SIGINT or SIGTERM stopped the
 * training (the network is saved first, with --save).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "fa-train.h"

volatile sig_atomic_t stop_signal = 0;

/* The file status flags of stdout and stderr before on_stop_signal made
 * them non-blocking (fa-train-mpi), put back before the program ends: a
 * process started without mpirun shares them with the user's shell. */
static int output_flags[3] = {-1, -1, -1};

/* Only records the signal: the training loop looks at stop_signal after
 * every batch, then saves and reports outside the handler. */
static void
on_stop_signal(int sig)
{
    stop_signal = sig;
    /* fa-train-mpi: from now on output that mpirun no longer reads is
     * dropped rather than waited for (see install_stop_handlers).  fcntl
     * is async-signal-safe; errno is the interrupted code's. */
    if (par_mpi) {
        int saved = errno;
        for (int fd = 1; fd <= 2; fd++) {
            int fl = fcntl(fd, F_GETFL);
            if (fl >= 0)
                fcntl(fd, F_SETFL, fl | O_NONBLOCK);
        }
        errno = saved;
    }
}

/* SIGINT and SIGTERM ask the training to stop after the current batch.
 * SA_RESETHAND: a second signal takes the default action at once, for a
 * user who means it (the save replaces FILE atomically, so that cannot
 * leave a half-written model).  SA_RESTART: reads and writes in progress
 * go on.  A signal that was ignored when fa-train started (nohup, a
 * background job of a script) stays ignored, as the caller wanted.
 *
 * fa-train-mpi: mpirun, told to stop (Ctrl-C, SIGTERM), stops reading the
 * ranks' output and sends them SIGCONT, SIGTERM and a second later
 * SIGKILL.  Rank 0 may then be blocked writing a line to a full terminal
 * buffer that nobody reads: without SA_RESTART the signal ends that write
 * (EINTR; the line is lost), the handler makes stdout and stderr
 * non-blocking (what does not fit is dropped), and train.c prints no
 * epoch line before the save; so the ranks reach their agreement, rank 0
 * saves in time and all end.  (The save writes a regular file, which
 * signals do not interrupt.) */
static void
install_stop_handlers(void)
{
    static const int sigs[] = {SIGINT, SIGTERM};
    for (int fd = 1; fd <= 2; fd++)
        output_flags[fd] = fcntl(fd, F_GETFL);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction old, sa;
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN)
            continue;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_stop_signal;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESETHAND | (par_mpi ? 0 : SA_RESTART);
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
    if (st != RUN_FAILED && par_root())
        report_final(&r);
    free_run(&r);
    if (st == RUN_INTERRUPTED)
        return 128 + par_stop_signal();
    return st == RUN_OK ? 0 : 1;
}

/* The same network under each rule of --compare, then the table and the
 * plots.  Returns the exit status.  Every status here is agreed between
 * the processes (train), so they all take the same turns. */
static int
run_compare(const config *c, const data *d, csv_log *log)
{
    run runs[MAX_RULES];
    int done = 0, status = 0;
    for (int i = 0; i < c->n_compare && par_stop_signal() == 0; i++) {
        run_status st = train(c, d, c->compare[i], log, &runs[done]);
        if (st != RUN_OK)
            status = 1;
        if (st == RUN_FAILED && runs[done].test_acc == NULL) {
            /* Nothing to show for it: the network could not be set up. */
            free_run(&runs[done]);
            break;
        }
        if (st != RUN_FAILED && par_root())
            report_final(&runs[done]);
        done++;
    }
    /* Stopped by a signal: the table of what was done, but no plots (the
     * user asked to stop, and gnuplot got the terminal's SIGINT too). */
    if (done > 0 && par_root())
        compare_table(runs, done);
    if (done > 0 && par_stop_signal() == 0 && par_root())
        plots(c, runs, done);
    for (int i = 0; i < done; i++)
        free_run(&runs[i]);
    return par_stop_signal() != 0 ? 128 + par_stop_signal() : status;
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

/* Rank 0's output files: --save probed, --out created, --log opened.
 * False after a message. */
static bool
open_outputs(const config *c, csv_log *log, char *log_path, size_t len)
{
    const char *logp = c->log;
    if (c->save && !check_save_path(c->save))
        return false;
    if (c->n_compare > 0) {
        if (!mkdir_p(c->out))
            return false;
        if (logp == NULL) {
            snprintf(log_path, len, "%s/log.csv", c->out);
            logp = log_path;
        }
    }
    if (logp) {
        if (logp != log_path)
            snprintf(log_path, len, "%s", logp);
        log->f = fopen(logp, "w");
        if (log->f == NULL) {
            report_error("--log %s: cannot open for writing: %s", logp,
                         strerror(errno));
            return false;
        }
    }
    return true;
}

/* Everything after the command line; returns the exit status.  In
 * fa-train-mpi every process runs it: each sets its threads and reads the
 * data, rank 0 alone writes; every place where one process alone can fail
 * ends in an agreement (par_agree), so all go on or all stop. */
static int
run_program(const config *c)
{
    char log_path[4200] = "";
    csv_log log = {NULL, false};
    run_status st = RUN_OK;
    int status = 1;
    if (c->threads > 0 && fa_set_threads(c->threads) != FA_OK) {
        lib_error("fa_set_threads (--threads)", FA_ERR_ARG);
        st = RUN_FAILED;
        status = EXIT_USAGE;
    } else if (par_root()) {
        if (!open_outputs(c, &log, log_path, sizeof log_path))
            st = RUN_FAILED;
        else
            report_blas();
    }
    st = par_agree(st, "while opening the output files");
    data d;
    memset(&d, 0, sizeof d);
    if (st == RUN_OK)
        st = par_agree(load_data(c, &d) ? RUN_OK : RUN_FAILED, "while loading the data");
    if (st == RUN_OK) {
        if (par_root())
            printf("data: %s: %d training, %d validation, %d test samples of %d "
                   "features\n", c->data_dir, d.train.n, d.val.n, d.test.n,
                   d.features);
        par_report(c);
        /* From here on a signal stops the training cleanly; before, during
         * the data load, it ends the program at once as usual. */
        install_stop_handlers();
        status = c->n_compare > 0 ? run_compare(c, &d, &log)
                                  : run_single(c, &d, &log);
    }
    free_data(&d);
    if (log.f && fclose(log.f) != 0) {
        report_error("--log %s: write failed: %s", log_path, strerror(errno));
        status = 1;
    }
    return status;
}

int
main(int argc, char **argv)
{
    par_init(&argc, &argv);
    /* Line-buffered so that a log redirected to a file follows the
     * training epoch by epoch. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    config c;
    int status;
    bool parsed = parse_args(argc, argv, &c);
    if (par_agree(parsed ? RUN_OK : RUN_FAILED, "while reading the command line") != RUN_OK)
        status = EXIT_USAGE;
    else if (c.help || c.help_rules) {
        if (par_root())
            c.help ? print_help() : print_help_rules();
        status = 0;
    } else
        status = run_program(&c);
    config_free(&c);
    if (stop_signal != 0)
        for (int fd = 1; fd <= 2; fd++)
            if (output_flags[fd] >= 0)
                fcntl(fd, F_SETFL, output_flags[fd]);
    /* fa-train-mpi: the highest status of all the processes. */
    return par_finalize(status);
}
