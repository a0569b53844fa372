/*
 * model-diff -- compare model files written by fa-train / fa-train-mpi,
 * through the public ABI only.  For tests/mpi/test-mpi.sh.
 *
 *   model-diff --exact REF FILE...
 *       every FILE holds exactly REF's network: the model images are
 *       byte-for-byte equal (parameters, feedback of every rule, optimiser
 *       state, hyperparameters, model RNG) once the dropout stream -- the
 *       one part that differs between the ranks by design -- is reseeded
 *       alike in both (fa_net_seed_dropout on a loaded copy).
 *
 *   model-diff --tol X --init INIT REF FILE...
 *       every FILE is REF up to float rounding: for the parameters, and for
 *       the feedback of REF's rule when the rule learns it (KP, WM, BRSF),
 *           max |v_FILE - v_REF|  <=  X * max |v_REF - v_INIT|
 *       i.e. the difference is judged against what training changed (the
 *       values alone would hide a wrong update, small next to them).  Fixed
 *       feedback must be bitwise equal (same seed, same draws).
 *
 * Prints one line per FILE with the measured ratios.  Exit status 0 if all
 * pass, 1 if one does not, 2 on bad usage or an unreadable file.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feedbackalign.h"

#define PROG "model-diff"

static fa_net *
load(const char *path)
{
    fa_net *net = NULL;
    int rc = fa_net_load(&net, path);
    if (rc != FA_OK) {
        fprintf(stderr, PROG ": %s: %s: %s\n", path, fa_status_string(rc), fa_last_error());
        exit(2);
    }
    return net;
}

static void *
xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL) {
        fprintf(stderr, PROG ": out of memory\n");
        exit(2);
    }
    return p;
}

/* The model image of net with its dropout stream reseeded to 0. */
static unsigned char *
image(fa_net *net, int64_t *len)
{
    if (fa_net_seed_dropout(net, 0) != FA_OK ||
        fa_net_save_image(net, NULL, 0, len) != FA_OK) {
        fprintf(stderr, PROG ": image: %s\n", fa_last_error());
        exit(2);
    }
    unsigned char *buf = xmalloc((size_t)*len);
    if (fa_net_save_image(net, buf, *len, NULL) != FA_OK) {
        fprintf(stderr, PROG ": image: %s\n", fa_last_error());
        exit(2);
    }
    return buf;
}

/* All of the current rule's feedback of net, layer after layer, in a new
 * buffer (*n floats; NULL and 0 for a rule without feedback). */
static float *
feedback(fa_net *net, int64_t *n)
{
    int32_t rule = 0, L = 0, stored = 0;
    fa_net_get_rule(net, &rule);
    fa_net_num_layers(net, &L);
    fa_rule_info(rule, NULL, &stored, NULL, NULL);
    *n = 0;
    if (!stored)
        return NULL;
    int64_t total = 0;
    for (int32_t l = 1; l <= L; l++) {
        int32_t rows = 0, cols = 0;
        if (fa_net_feedback_shape(net, rule, l, &rows, &cols) == FA_OK)
            total += (int64_t)rows * cols;
    }
    float *buf = xmalloc(sizeof *buf * (size_t)total);
    int64_t off = 0;
    for (int32_t l = 1; l <= L; l++) {
        int32_t rows = 0, cols = 0;
        if (fa_net_feedback_shape(net, rule, l, &rows, &cols) != FA_OK)
            continue;
        if (fa_net_get_feedback(net, rule, l, buf + off, (int64_t)rows * cols) != FA_OK) {
            fprintf(stderr, PROG ": feedback of layer %d: %s\n", l, fa_last_error());
            exit(2);
        }
        off += (int64_t)rows * cols;
    }
    *n = total;
    return buf;
}

static float *
params(fa_net *net, int64_t *n)
{
    fa_net_param_count(net, n);
    float *buf = xmalloc(sizeof *buf * (size_t)*n);
    fa_net_get_params(net, buf, *n);
    return buf;
}

/* max |a - b| */
static double
maxdiff(const float *a, const float *b, int64_t n)
{
    double m = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > m)
            m = d;
    }
    return m;
}

static int
exact(int nfiles, char **files)
{
    fa_net *ref = load(files[0]);
    int64_t rlen = 0;
    unsigned char *rimg = image(ref, &rlen);
    int bad = 0;
    for (int i = 1; i < nfiles; i++) {
        fa_net *net = load(files[i]);
        int64_t len = 0;
        unsigned char *img = image(net, &len);
        int64_t first = -1;
        for (int64_t k = 0; k < (len < rlen ? len : rlen) && first < 0; k++)
            if (img[k] != rimg[k])
                first = k;
        if (len == rlen && first < 0) {
            printf("%s: identical to %s (%lld-byte images)\n", files[i], files[0],
                   (long long)len);
        } else {
            printf("%s: differs from %s: images of %lld and %lld bytes, first "
                   "difference at byte %lld\n", files[i], files[0], (long long)len,
                   (long long)rlen, (long long)(first < 0 ? (len < rlen ? len : rlen) : first));
            bad = 1;
        }
        free(img);
        fa_net_free(net);
    }
    free(rimg);
    fa_net_free(ref);
    return bad;
}

static int
tolerance(double tol, const char *init_path, int nfiles, char **files)
{
    fa_net *init = load(init_path), *ref = load(files[0]);
    int32_t rule = 0, learns = 0;
    fa_net_get_rule(ref, &rule);
    fa_rule_info(rule, NULL, NULL, &learns, NULL);
    /* INIT is the same network before training: read its feedback under
     * REF's rule (the rule's matrices as first drawn). */
    if (fa_net_set_rule(init, rule) != FA_OK) {
        fprintf(stderr, PROG ": %s: %s\n", init_path, fa_last_error());
        return 2;
    }
    int64_t np = 0, np0 = 0, nf = 0, nf0 = 0;
    float *p_ref = params(ref, &np), *p_init = params(init, &np0);
    float *f_ref = feedback(ref, &nf), *f_init = feedback(init, &nf0);
    if (np != np0 || nf != nf0) {
        fprintf(stderr, PROG ": %s and %s are different networks\n", init_path, files[0]);
        return 2;
    }
    double p_change = maxdiff(p_ref, p_init, np), f_change = maxdiff(f_ref, f_init, nf);
    int bad = 0;
    for (int i = 1; i < nfiles; i++) {
        fa_net *net = load(files[i]);
        int32_t r2 = 0;
        fa_net_get_rule(net, &r2);
        int64_t n = 0, m = 0;
        float *p = params(net, &n), *f = feedback(net, &m);
        if (r2 != rule || n != np || m != nf) {
            printf("%s: not the network of %s (rule or sizes differ)\n", files[i], files[0]);
            bad = 1;
        } else {
            double pr = maxdiff(p, p_ref, np) / p_change;
            double fd = maxdiff(f, f_ref, nf);
            bool p_ok = pr <= tol, f_ok;
            char ftext[128];
            if (nf == 0) {
                f_ok = true;
                snprintf(ftext, sizeof ftext, "no feedback");
            } else if (learns) {
                double fr = fd / f_change;
                f_ok = fr <= tol;
                snprintf(ftext, sizeof ftext, "learned feedback %.3g", fr);
            } else {
                f_ok = fd == 0.0;
                snprintf(ftext, sizeof ftext, "fixed feedback %s",
                         f_ok ? "bitwise equal" : "DIFFERS");
            }
            printf("%s vs %s: max|dp| / max|p_ref - p_init| = %.3g (parameters "
                   "changed by up to %.3g), %s; tolerance %.3g: %s\n", files[i], files[0],
                   pr, p_change, ftext, tol, p_ok && f_ok ? "ok" : "EXCEEDED");
            bad |= !(p_ok && f_ok);
        }
        free(p);
        free(f);
        fa_net_free(net);
    }
    free(p_ref);
    free(p_init);
    free(f_ref);
    free(f_init);
    fa_net_free(ref);
    fa_net_free(init);
    return bad;
}

int
main(int argc, char **argv)
{
    if (argc >= 4 && strcmp(argv[1], "--exact") == 0)
        return exact(argc - 2, argv + 2);
    if (argc >= 7 && strcmp(argv[1], "--tol") == 0 && strcmp(argv[3], "--init") == 0) {
        char *end = NULL;
        double tol = strtod(argv[2], &end);
        if (end != argv[2] && *end == '\0' && tol > 0)
            return tolerance(tol, argv[4], argc - 5, argv + 5);
    }
    fprintf(stderr, "usage: " PROG " --exact REF FILE...\n"
                    "       " PROG " --tol X --init INIT REF FILE...\n");
    return 2;
}
