/*
 * report.c -- what fa-train prints and logs: messages, the network and
 * epoch lines, the progress bar, the CSV log and the --compare table.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "fa-train.h"

/* ------------------------------------------------------------- messages */

/* One line on stderr; in fa-train-mpi kept until the next agreement,
 * where rank 0 prints the messages of every rank (par-mpi.c). */
void
report_error(const char *fmt, ...)
{
    char msg[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (par_take_message(msg))
        return;
    progress_hide();
    fprintf(stderr, PROG ": %s\n", msg);
}

void
lib_error(const char *what, int rc)
{
    report_error("%s failed: %s: %s", what, fa_status_string(rc),
                 fa_last_error());
}

/* ------------------------------------------------------------- summaries */

double
mean_epoch_s(const run *r)
{
    double s = 0.0;
    for (int32_t e = 1; e <= r->epochs; e++)
        s += r->epoch_s[e];
    return r->epochs > 0 ? s / r->epochs : 0.0;
}

double
best_val(const run *r)
{
    double b = NAN;
    for (int32_t e = 0; e <= r->epochs; e++)
        if (!isnan(r->val_acc[e]) && (isnan(b) || r->val_acc[e] > b))
            b = r->val_acc[e];
    return b;
}

void
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

static const float *
angles_of(const run *r, int32_t e)
{
    return r->angles + (size_t)e * (size_t)(r->n_layers - 1);
}

/* ---------------------------------------------------------------- console */

void
report_net(const config *c, fa_net *net, int32_t rule, int32_t L)
{
    int32_t loss = 0, opt = 0;
    double lr = 0;
    (void)L;
    fa_net_get_loss(net, &loss);
    fa_net_get_optimizer(net, &opt);
    fa_net_get_hparam(net, FA_HP_LR, &lr);
    /* the library's text of the spec, activations included */
    char arch[512] = "?";
    fa_spec *spec = NULL;
    int64_t need = 0;
    if (fa_net_get_spec(net, &spec) == FA_OK &&
        fa_spec_format(spec, NULL, 0, &need) == FA_OK && need <= (int64_t)sizeof arch)
        fa_spec_format(spec, arch, sizeof arch, NULL);
    else if (need > (int64_t)sizeof arch)
        snprintf(arch, sizeof arch, "(a spec of %lld characters)", (long long)need);
    fa_spec_free(spec);
    printf("%s%s%snet: %s, %s loss, rule %s, %s lr %g, batch %d, "
           "%d epoch%s, seed %llu\n", c->n_compare ? "[" : "",
           c->n_compare ? enum_name(NK_RULE, rule) : "",
           c->n_compare ? "] " : "", arch, enum_name(NK_LOSS, loss),
           enum_name(NK_RULE, rule), enum_name(NK_OPT, opt), lr, c->batch,
           c->epochs, c->epochs == 1 ? "" : "s", (unsigned long long)c->seed);
}

void
report_epoch(const config *c, const run *r, int32_t e, bool have_val)
{
    const char *tag = c->n_compare ? enum_name(NK_RULE, r->rule) : NULL;
    char angles[256], val[32], loss[32];
    format_angles(angles, sizeof angles, angles_of(r, e), r->n_layers - 1);
    if (have_val)
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
}

void
report_final(const run *r)
{
    int32_t e = r->epochs;
    char angles[256];
    format_angles(angles, sizeof angles, angles_of(r, e), r->n_layers - 1);
    char val[32] = "-";
    if (!isnan(best_val(r)))
        snprintf(val, sizeof val, "%.2f", best_val(r));
    printf("final: rule=%s epochs=%d test_acc=%.2f best_val_acc=%s "
           "mean_epoch_s=%.3f align=%s\n", enum_name(NK_RULE, r->rule), e,
           r->test_acc[e], val, mean_epoch_s(r), angles);
}

static bool progress_shown; /* a bar is on the terminal's last line */

void
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
    progress_shown = true;
}

void
progress_clear(void)
{
    fprintf(stderr, "\r\033[K");
    progress_shown = false;
}

void
progress_hide(void)
{
    if (progress_shown)
        progress_clear();
}

/* ----------------------------------------------------------------- CSV */

void
log_header(csv_log *log, int32_t n_layers)
{
    if (log->f == NULL || log->header_done)
        return;
    fprintf(log->f, "rule,epoch,lr,train_loss,val_acc,test_acc,epoch_s,"
                    "examples_per_s");
    for (int32_t l = 1; l < n_layers; l++)
        fprintf(log->f, ",align_l%d", l);
    fprintf(log->f, "\n");
    log->header_done = true;
}

void
log_row(csv_log *log, const run *r, int32_t e, int32_t n_train)
{
    if (log->f == NULL)
        return;
    FILE *f = log->f;
    double es = r->epoch_s[e];
    fprintf(f, "%s,%d,%g,", enum_name(NK_RULE, r->rule), e, r->lr[e]);
    if (e > 0)
        fprintf(f, "%.6f", r->train_loss[e]);
    fprintf(f, ",");
    if (!isnan(r->val_acc[e]))
        fprintf(f, "%.4f", r->val_acc[e]);
    fprintf(f, ",%.4f,%.4f,%.1f", r->test_acc[e], es,
            es > 0 ? (double)n_train / es : 0.0);
    const float *a = angles_of(r, e);
    for (int32_t l = 0; l < r->n_layers - 1; l++) {
        fprintf(f, ",");
        if (!isnan(a[l]))
            fprintf(f, "%.3f", (double)a[l]);
    }
    fprintf(f, "\n");
    /* Flushed per row so that a log followed during training is current. */
    fflush(f);
}

/* ------------------------------------------------------------ --compare */

void
compare_table(const run *runs, int n)
{
    /* Times are relative to BP when BP ran, else to the first rule. */
    int ref = 0;
    for (int i = 0; i < n; i++)
        if (runs[i].rule == FA_RULE_BP && runs[i].status == RUN_OK)
            ref = i;
    double tref = mean_epoch_s(&runs[ref]);
    /* the rule column as wide as the longest rule name shown */
    int w = 5;
    for (int i = 0; i < n; i++) {
        char title[16];
        rule_title(runs[i].rule, title, sizeof title);
        w = (int)strlen(title) > w ? (int)strlen(title) : w;
    }
    printf("\n%-*s %10s %10s %12s %8s   %s\n", w, "rule", "test acc", "best val",
           "epoch time", "vs BP", "final alignment (deg, layer 1..L-1)");
    for (int i = 0; i < n; i++) {
        const run *r = &runs[i];
        char title[16];
        rule_title(r->rule, title, sizeof title);
        const char *how = r->status == RUN_DIVERGED      ? "diverged"
                          : r->status == RUN_INTERRUPTED ? "interrupted"
                                                         : "failed";
        if (r->status != RUN_OK && r->epochs <= 0) {
            printf("%-*s %10s\n", w, title, how);
            continue;
        }
        char val[32], angles[256];
        double bv = best_val(r);
        if (isnan(bv))
            snprintf(val, sizeof val, "-");
        else
            snprintf(val, sizeof val, "%.2f %%", bv);
        format_angles(angles, sizeof angles, angles_of(r, r->epochs),
                      r->n_layers - 1);
        char note[32] = "";
        if (r->status != RUN_OK)
            snprintf(note, sizeof note, "  (%s)", how);
        double t = mean_epoch_s(r);
        printf("%-*s %8.2f %% %10s %10.2f s %8.2f   %s%s\n", w, title,
               r->test_acc[r->epochs], val, t,
               tref > 0 ? t / tref : (double)NAN, angles, note);
    }
    if (runs[ref].rule != FA_RULE_BP) {
        char title[16];
        rule_title(runs[ref].rule, title, sizeof title);
        printf("(times relative to %s: BP was not run)\n", title);
    }
    printf("\n");
}
