/*
 * testutil.h -- small helpers shared by the Check test programs: running a
 * suite, comparing float results against float64 references, building the
 * known-answer networks of known_answers.h, and a deterministic data
 * generator that does not depend on the library's RNG (so a bug there cannot
 * hide itself in the test data).
 */
#ifndef FA_TESTUTIL_H
#define FA_TESTUTIL_H

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feedbackalign.h"

/* Run every test case of s; the process exit status is the result. */
static inline int tu_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* An assertion for loops over many elements: Check's ck_assert records
 * every passing assertion (a write to its pipe when tests fork), which under
 * valgrind made a loop of 1e5 draws take minutes; this one costs nothing
 * until it fails. */
#define TU_CHECK(cond, ...)              \
    do {                                 \
        if (!(cond))                     \
            ck_abort_msg(__VA_ARGS__);   \
    } while (0)

/* |got - want| <= atol + rtol*|want| elementwise; on the first mismatch fail
 * with the index, both values and `what`. */
static inline void tu_assert_close_f(const float *got, const double *want,
                                     int64_t n, double rtol, double atol,
                                     const char *what)
{
    for (int64_t i = 0; i < n; i++) {
        double g = (double)got[i], w = want[i];
        TU_CHECK(isfinite(g) && fabs(g - w) <= atol + rtol * fabs(w),
                      "%s[%lld]: got %.9g, want %.9g (rtol %g, atol %g)", what,
                      (long long)i, g, w, rtol, atol);
    }
}

static inline void tu_assert_close_ff(const float *got, const float *want,
                                      int64_t n, double rtol, double atol,
                                      const char *what)
{
    for (int64_t i = 0; i < n; i++) {
        double g = (double)got[i], w = (double)want[i];
        TU_CHECK(isfinite(g) && fabs(g - w) <= atol + rtol * fabs(w),
                      "%s[%lld]: got %.9g, want %.9g (rtol %g, atol %g)", what,
                      (long long)i, g, w, rtol, atol);
    }
}

/* The call must succeed; otherwise fail with the library's message. */
#define TU_OK(call)                                                        \
    do {                                                                   \
        int tu_rc_ = (call);                                               \
        TU_CHECK(tu_rc_ == FA_OK, "%s returned %d (%s): %s", #call,        \
                      tu_rc_, fa_status_string(tu_rc_), fa_last_error());  \
    } while (0)

/* Deterministic test data independent of the library: a 64-bit LCG
 * (Knuth's MMIX constants), high bits to a float in [-1, 1). */
typedef struct tu_lcg {
    uint64_t s;
} tu_lcg;

static inline float tu_uniform(tu_lcg *g)
{
    g->s = g->s * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
    return (float)((double)(g->s >> 40) / 16777216.0 * 2.0 - 1.0);
}

static inline void tu_fill(tu_lcg *g, float *p, int64_t n, float scale)
{
    for (int64_t i = 0; i < n; i++)
        p[i] = scale * tu_uniform(g);
}

/* Create a network and stop the test on failure. */
static inline fa_net *tu_net(int32_t n_layers, const int32_t *sizes,
                             const int32_t *acts, int32_t loss, uint64_t seed)
{
    fa_net *net = NULL;
    TU_OK(fa_net_create(&net, n_layers, sizes, acts, loss, seed));
    ck_assert_ptr_nonnull(net);
    return net;
}

static inline int64_t tu_param_count(const fa_net *net)
{
    int64_t n = 0;
    TU_OK(fa_net_param_count(net, &n));
    return n;
}

/* Copy of the parameters, malloc'd; the caller frees it. */
static inline float *tu_params(const fa_net *net)
{
    int64_t n = tu_param_count(net);
    float *p = malloc((size_t)n * sizeof *p);
    ck_assert_ptr_nonnull(p);
    TU_OK(fa_net_get_params(net, p, n));
    return p;
}

#ifdef KNOWN_ANSWERS_H
/* Build the network of a known-answer case with its hand-set weights and
 * both kinds of hand-set feedback matrices. */
static inline fa_net *tu_case_net(const ka_net_case *c)
{
    fa_net *net = tu_net(c->n_layers, c->sizes, c->acts, c->loss, 1);
    TU_OK(fa_net_set_params(net, c->params, c->n_params));
    const int32_t *n = c->sizes;
    int32_t L = c->n_layers;
    int64_t off = 0;
    for (int32_t l = 2; l <= L; l++) {
        int64_t len = (int64_t)n[l] * n[l - 1];
        TU_OK(fa_net_set_feedback(net, FA_RULE_FA, l, c->fb_fa + off, len));
        off += len;
    }
    off = 0;
    for (int32_t l = 1; l <= L - 1; l++) {
        int64_t len = (int64_t)n[L] * n[l];
        TU_OK(fa_net_set_feedback(net, FA_RULE_DFA, l, c->fb_dfa + off, len));
        off += len;
    }
    return net;
}

/* Build the network of a rule case (known_answers.h) with its hand-set
 * weights and hand-set feedback for every rule that stores some: fb_layer
 * for the LAYER rules (F of FA, M of BRSF and FRSF, B of KP and WM),
 * fb_direct for the DIRECT rules (G of DFA, DRTP and SDFA). */
static inline fa_net *tu_rule_case_net(const ka_rule_case *c)
{
    fa_net *net = tu_net(c->n_layers, c->sizes, c->acts, c->loss, 1);
    TU_OK(fa_net_set_params(net, c->params, c->n_params));
    const int32_t *n = c->sizes;
    const int32_t L = c->n_layers;
    for (int32_t rule = 0; rule < fa_enum_count(FA_ENUM_RULE); rule++) {
        int32_t kind = 0, stored = 0;
        TU_OK(fa_rule_info(rule, &kind, &stored, NULL, NULL));
        if (!stored)
            continue;
        int64_t off = 0;
        if (kind == FA_FEEDBACK_LAYER) {
            for (int32_t l = 2; l <= L; l++) {
                int64_t len = (int64_t)n[l] * n[l - 1];
                TU_OK(fa_net_set_feedback(net, rule, l, c->fb_layer + off, len));
                off += len;
            }
        } else {
            for (int32_t l = 1; l <= L - 1; l++) {
                int64_t len = (int64_t)n[L] * n[l];
                TU_OK(fa_net_set_feedback(net, rule, l, c->fb_direct + off, len));
                off += len;
            }
        }
    }
    return net;
}
#endif

#endif /* FA_TESTUTIL_H */
