/*
 * plots.c -- the files of --compare in --out: one curve-<rule>.dat per
 * rule, the gnuplot script plots.gp, and the PNGs gnuplot draws from them.
 *
 * The script is the template tools/plots.gp (compiled in: plots-gp.h)
 * after a few definitions made of fa-train's own rule names and numbers.
 * gnuplot runs with --out as its working directory, so the script names
 * only fixed relative files and no user-supplied path ever reaches
 * gnuplot, whose input is line-oriented and would otherwise run whatever
 * followed a newline in the path.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fa-train.h"
#include "plots-gp.h"

#define SCRIPT "plots.gp"

static bool
write_curve(const char *out, const run *r)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/curve-%s.dat", out,
             enum_name(NK_RULE, r->rule));
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        report_error("%s: cannot write: %s", path, strerror(errno));
        return false;
    }
    fprintf(f, "# epoch train_loss test_acc val_acc epoch_s");
    for (int32_t l = 1; l < r->n_layers; l++)
        fprintf(f, " align_l%d", l);
    fprintf(f, "\n");
    for (int32_t e = 0; e <= r->epochs; e++) {
        fprintf(f, "%d %.6f %.4f %.4f %.4f", e,
                e > 0 ? r->train_loss[e] : (double)NAN, r->test_acc[e],
                r->val_acc[e], r->epoch_s[e]);
        for (int32_t l = 0; l < r->n_layers - 1; l++)
            fprintf(f, " %.3f",
                    (double)r->angles[(size_t)e * (size_t)(r->n_layers - 1) +
                                      (size_t)l]);
        fprintf(f, "\n");
    }
    if (fclose(f) != 0) {
        report_error("%s: cannot write: %s", path, strerror(errno));
        return false;
    }
    return true;
}

/* Append the names (or titles) of the runs' rules to f as one gnuplot
 * string of words, e.g. "bp fa dfa".  Only the alignment rules when
 * align_only.  The words come from fa-train's rule table, never from the
 * command line. */
static void
rule_words(FILE *f, const run *runs, int n, bool titles, bool align_only)
{
    fputc('"', f);
    bool first = true;
    for (int i = 0; i < n; i++) {
        if (align_only && runs[i].rule == FA_RULE_BP)
            continue;
        char title[16];
        rule_title(runs[i].rule, title, sizeof title);
        fprintf(f, "%s%s", first ? "" : " ",
                titles ? title : enum_name(NK_RULE, runs[i].rule));
        first = false;
    }
    fputs("\"\n", f);
}

/* OUT/plots.gp: the definitions the template expects, then the template.
 * n_align is 0 when no run has hidden layers, which skips the alignment
 * plot. */
static bool
write_script(const char *out, const run *runs, int n, bool any_angle)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/" SCRIPT, out);
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        report_error("%s: cannot write: %s", path, strerror(errno));
        return false;
    }
    fputs("# Plots of an fa-train --compare run: cd to this directory and "
          "run gnuplot " SCRIPT "\n", f);
    fputs("rules = ", f);
    rule_words(f, runs, n, false, false);
    fputs("titles = ", f);
    rule_words(f, runs, n, true, false);
    fputs("align_rules = ", f);
    rule_words(f, runs, n, false, true);
    fputs("align_titles = ", f);
    rule_words(f, runs, n, true, true);
    fprintf(f, "n_align = %d\n\n", any_angle ? runs[0].n_layers - 1 : 0);
    for (int i = 0; plots_gp_template[i] != NULL; i++)
        fputs(plots_gp_template[i], f);
    if (fclose(f) != 0) {
        report_error("%s: cannot write: %s", path, strerror(errno));
        return false;
    }
    return true;
}

/* The first executable `name` in $PATH, like execvp would find it; looked
 * up before fork because execvp is not async-signal-safe. */
static bool
find_in_path(const char *name, char *buf, size_t len)
{
    const char *path = getenv("PATH");
    if (path == NULL || *path == '\0')
        path = "/usr/bin:/bin";
    while (*path) {
        size_t dirlen = strcspn(path, ":");
        /* An empty entry means the current directory. */
        int n = dirlen ? snprintf(buf, len, "%.*s/%s", (int)dirlen, path, name)
                       : snprintf(buf, len, "./%s", name);
        if (n > 0 && (size_t)n < len && access(buf, X_OK) == 0)
            return true;
        path += dirlen + (path[dirlen] == ':');
    }
    return false;
}

/* Run gnuplot SCRIPT in directory dir; false (with a message) when it is
 * missing or fails, which costs the plots but not the results. */
static bool
run_gnuplot(const char *dir)
{
    char exe[4200];
    if (!find_in_path("gnuplot", exe, sizeof exe)) {
        report_error("cannot run gnuplot (not found in PATH): plots skipped; "
                     "install gnuplot-nox, then run gnuplot " SCRIPT " in %s",
                     dir);
        return false;
    }
    char *argv[] = {(char[]){"gnuplot"}, (char[]){SCRIPT}, NULL};
    /* Our buffered output must not be written twice (by the child too). */
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        report_error("cannot run gnuplot: fork: %s", strerror(errno));
        return false;
    }
    if (pid == 0) {
        /* The child does only async-signal-safe calls (OpenBLAS threads may
         * hold locks in the parent): chdir, execv, _exit. */
        if (chdir(dir) != 0)
            _exit(126);
        execv(exe, argv);
        _exit(127);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) {
            report_error("gnuplot: %s", strerror(errno));
            return false;
        }
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        report_error("gnuplot %s in %s failed (%s %d): plots may be missing",
                     SCRIPT, dir, WIFEXITED(st) ? "exit status" : "signal",
                     WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
        return false;
    }
    return true;
}

void
plots(const config *c, const run *runs, int n)
{
    for (int i = 0; i < n; i++)
        if (!write_curve(c->out, &runs[i]))
            return;
    bool any_angle = false;
    for (int i = 0; i < n; i++)
        if (runs[i].rule != FA_RULE_BP && runs[i].n_layers > 1)
            any_angle = true;
    if (!write_script(c->out, runs, n, any_angle))
        return;
    if (run_gnuplot(c->out)) {
        printf("plot: %s/accuracy.png\n", c->out);
        if (any_angle)
            printf("plot: %s/alignment.png\n", c->out);
    }
    printf("data: %s/curve-*.dat, gnuplot script: %s/" SCRIPT "\n", c->out,
           c->out);
}
