/*
 * plots.c -- the files of --compare in --out: one curve-<rule>.dat per
 * rule, the gnuplot script plots.gp, and the PNGs gnuplot draws from them.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <math.h>
#include <spawn.h>
#include <stdbool.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "fa-train.h"

extern char **environ;

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
    snprintf(path, len, "%s/curve-%s.dat", out, enum_name(NK_RULE, r->rule));
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
                e > 0 ? r->train_loss[e] : (double)NAN, r->test_acc[e], r->val_acc[e],
                r->epoch_s[e]);
        for (int32_t l = 0; l < r->n_layers - 1; l++)
            fprintf(f, " %.3f",
                    (double)r->angles[(size_t)e * (size_t)(r->n_layers - 1) + (size_t)l]);
        fprintf(f, "\n");
    }
    if (fclose(f) != 0) {
        report_error("%s: cannot write: %s", path, strerror(errno));
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
        report_error("cannot run gnuplot (%s): plots skipped; install "
                     "gnuplot-nox, then run: gnuplot %s", strerror(rc), script);
        return false;
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) {
            report_error("gnuplot: %s", strerror(errno));
            return false;
        }
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        report_error("gnuplot %s failed (%s %d): plots may be missing", script,
                     WIFEXITED(st) ? "exit status" : "signal",
                     WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
        return false;
    }
    return true;
}

void
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
        report_error("%s: cannot write: %s", script, strerror(errno));
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
        char title[16];
        rule_title(runs[i].rule, title, sizeof title);
        fprintf(f, "%s", i ? ", \\\n     " : "");
        gp_quote(f, curve[i]);
        fprintf(f, " every ::1 using 1:3 with linespoints title '%s'", title);
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
            char title[16];
            rule_title(runs[i].rule, title, sizeof title);
            for (int32_t l = 1; l < runs[i].n_layers; l++) {
                fprintf(f, "%s", first ? "" : ", \\\n     ");
                first = false;
                gp_quote(f, curve[i]);
                fprintf(f, " using 1:%d with linespoints title '%s layer %d'",
                        5 + l, title, l);
            }
        }
        fprintf(f, "\n");
    }
    if (fclose(f) != 0) {
        report_error("%s: cannot write: %s", script, strerror(errno));
        return;
    }
    if (run_gnuplot(script)) {
        printf("plot: %s\n", acc_png);
        if (any_angle)
            printf("plot: %s\n", ali_png);
    }
    printf("data: %s/curve-*.dat, gnuplot script: %s\n", c->out, script);
}
