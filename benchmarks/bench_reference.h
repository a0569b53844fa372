/*
 * bench_reference.h -- a naive reference for one update of any stack of
 * dense, conv2d and pooling layers, written from the maths of the header
 * (not from the library's code): loops over every index, double
 * accumulation, no BLAS, no lowering.  Used by bench_step's check.
 *
 * Layouts are the header's: an image sample is feature c + C*(x + W*y);
 * a dense W_l is (n_l, n_{l-1}) column-major; a conv W is (C_out,
 * C_in*kh*kw) with column c + C_in*(kx + kw*ky); parameters are the flat
 * block [W_1|b_1|...] at the library's offsets.  Hidden layers with
 * parameters are tanh, the last identity, the loss softmax cross-entropy.
 */
#ifndef BENCH_REFERENCE_H
#define BENCH_REFERENCE_H

#include <stdint.h>

#include "bench_util.h"

/* How the hidden errors arise in the reference. */
enum {
    REF_BP = 0,          /* delta_l = backward(W_{l+1}, delta_{l+1}) .* f' */
    REF_CHAIN_B = 1,     /* the same through fb[l+1] (W-shaped)           */
    REF_DIRECT_E = 2,    /* delta_l = (G_l^T e) .* f', fb[l] = G_l (c, n_l) */
    REF_DIRECT_SIGN = 3, /* G_l^T sign(e) / m                              */
    REF_DIRECT_T = 4,    /* G_l^T T / m                                    */
    REF_SHALLOW = 5      /* hidden updates zero                            */
};

/* Deliberate mistakes, for bench_step --self-test: the check must catch
 * each of them.  0 = none. */
enum {
    REF_MISTAKE_NONE = 0,
    REF_MISTAKE_KERNEL_T,   /* conv weight column c + C_in*(ky + kh*kx) */
    REF_MISTAKE_CHW,        /* images read channel-first (c*H*W + W*y + x) */
    REF_MISTAKE_NO_FPRIME,  /* hidden errors without f' */
    REF_MISTAKE_POOL_FIRST, /* max pooling's error to the window's first input */
    REF_MISTAKE_AVG_SCALE,  /* average pooling's error not divided by the window */
    REF_MISTAKE_SIGNAL      /* DRTP with -T / m, SDFA without 1/m */
};
extern int ref_mistake;

typedef struct ref_layout {
    int64_t n_params;
    int64_t w_off[BU_MAX_LAYERS + 1], b_off[BU_MAX_LAYERS + 1];
} ref_layout;

/* The update direction g (n_params, the library's layout; zero where a
 * layer does not learn) of one step from parameters p, and the loss.
 * x (n_0, m) and t (c, m) contiguous. */
double ref_update(const bu_arch *a, const ref_layout *lay, const double *p, int mode,
                  double *const *fb, const float *x, const float *t, int32_t m, double *g);

#endif
