/* blas.c -- the only file that includes <cblas.h>.  Column-major, standard
 * CBLAS semantics; the rest of the library calls these wrappers. */
#include <math.h>

#include <cblas.h>

#include "internal.h"

void fa_gemm(int trans_a, int trans_b, int32_t m, int32_t n, int32_t k,
             float alpha, const float *a, int32_t lda, const float *b,
             int32_t ldb, float beta, float *c, int32_t ldc)
{
    /* C (m, n) = alpha op(A) (m, k) op(B) (k, n) + beta C */
    cblas_sgemm(CblasColMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda,
                b, ldb, beta, c, ldc);
}

void fa_gemv(int trans_a, int32_t m, int32_t n, float alpha, const float *a,
             int32_t lda, const float *x, float beta, float *y)
{
    /* y = alpha op(A) x + beta y, A (m, n) */
    cblas_sgemv(CblasColMajor, trans_a ? CblasTrans : CblasNoTrans, m, n,
                alpha, a, lda, x, 1, beta, y, 1);
}

double fa_dot(int64_t n, const float *x, const float *y)
{
    /* double accumulation: the angle diagnostics compare large sums */
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += (double)x[i] * (double)y[i];
    return s;
}

double fa_nrm2(int64_t n, const float *x)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += (double)x[i] * (double)x[i];
    return sqrt(s);
}
