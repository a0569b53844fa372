/*
 * test_blas.c -- the CBLAS wrappers of blas.c against naive loops in double.
 * Every case pads the leading dimensions beyond the row count and checks that
 * the padding of C is left alone: the library passes views with ld > rows
 * (caller data, stacked DFA matrices), so a wrapper that confused rows with
 * ld would corrupt neighbouring memory.
 */
#include "internal.h"
#include "testutil.h"

#define SENTINEL 12345.0f

typedef struct gemm_case {
    int ta, tb;
    int32_t m, n, k;
    int32_t pad_a, pad_b, pad_c; /* ld = rows + pad */
    float alpha, beta;
} gemm_case;

static const gemm_case gemm_cases[] = {
    {0, 0, 3, 4, 5, 0, 0, 0, 1.0f, 0.0f},
    {1, 0, 3, 4, 5, 2, 1, 3, 1.0f, 0.0f},
    {0, 1, 3, 4, 5, 1, 2, 1, 0.5f, 1.0f},
    {1, 1, 3, 4, 5, 3, 3, 2, -2.0f, 0.25f},
    {0, 0, 7, 2, 9, 4, 0, 5, 1.5f, -1.0f},
    {1, 0, 1, 6, 3, 0, 2, 0, 1.0f, 1.0f},
    {0, 1, 6, 1, 4, 2, 0, 1, 1.0f, 0.0f},
    {1, 1, 17, 13, 11, 1, 5, 3, 0.75f, 0.5f},
    {0, 0, 33, 20, 40, 7, 3, 1, 1.0f, 0.0f}, /* past OpenBLAS's small-size paths */
};

/* op(X)(i, j) for X stored (rows, cols) with ld: transposed reads X(j, i). */
static double at(const float *x, int32_t ld, int trans, int32_t i, int32_t j)
{
    return trans ? (double)x[j + (int64_t)i * ld] : (double)x[i + (int64_t)j * ld];
}

START_TEST(test_gemm)
{
    const gemm_case *c = &gemm_cases[_i];
    /* Stored shapes: A is (m, k) or (k, m) if transposed; B (k, n) or (n, k). */
    int32_t ar = c->ta ? c->k : c->m, ac = c->ta ? c->m : c->k;
    int32_t br = c->tb ? c->n : c->k, bc = c->tb ? c->k : c->n;
    int32_t lda = ar + c->pad_a, ldb = br + c->pad_b, ldc = c->m + c->pad_c;
    size_t na = (size_t)lda * ac, nb = (size_t)ldb * bc, nc = (size_t)ldc * c->n;
    float *a = malloc(na * sizeof *a), *b = malloc(nb * sizeof *b);
    float *cm = malloc(nc * sizeof *cm), *c0 = malloc(nc * sizeof *c0);
    ck_assert(a && b && cm && c0);
    tu_lcg g = {(uint64_t)_i + 1};
    tu_fill(&g, a, (int64_t)na, 1.0f);
    tu_fill(&g, b, (int64_t)nb, 1.0f);
    for (size_t i = 0; i < nc; i++)
        c0[i] = SENTINEL;
    for (int32_t j = 0; j < c->n; j++)
        for (int32_t i = 0; i < c->m; i++)
            c0[i + (size_t)j * ldc] = tu_uniform(&g);
    /* beta == 0 must not read C (standard BLAS semantics): a NaN there must
     * not leak into the result.  The library relies on this for workspaces
     * it has not initialised. */
    if (c->beta == 0.0f)
        c0[0] = NAN;
    memcpy(cm, c0, nc * sizeof *cm);

    fa_gemm(c->ta, c->tb, c->m, c->n, c->k, c->alpha, a, lda, b, ldb, c->beta,
            cm, ldc);

    for (int32_t j = 0; j < c->n; j++) {
        for (int32_t i = 0; i < c->m; i++) {
            double s = 0.0;
            for (int32_t p = 0; p < c->k; p++)
                s += at(a, lda, c->ta, i, p) * at(b, ldb, c->tb, p, j);
            double want = c->alpha * s;
            if (c->beta != 0.0f)
                want += c->beta * (double)c0[i + (size_t)j * ldc];
            double got = cm[i + (size_t)j * ldc];
            ck_assert_msg(fabs(got - want) <= 1e-5 * (1.0 + fabs(want)) * c->k,
                          "case %d C(%d,%d) = %.9g, want %.9g", _i, i, j, got,
                          want);
        }
        for (int32_t i = c->m; i < ldc; i++)
            ck_assert_msg(cm[i + (size_t)j * ldc] == SENTINEL,
                          "case %d: padding of C written at (%d,%d)", _i, i, j);
    }
    free(a);
    free(b);
    free(cm);
    free(c0);
}
END_TEST

typedef struct gemv_case {
    int ta;
    int32_t m, n, pad;
    float alpha, beta;
} gemv_case;

static const gemv_case gemv_cases[] = {
    {0, 4, 3, 0, 1.0f, 0.0f}, {1, 4, 3, 2, 1.0f, 0.0f},
    {0, 5, 7, 3, -0.5f, 2.0f}, {1, 5, 7, 1, 2.0f, 1.0f},
    {0, 1, 9, 0, 1.0f, 0.5f},  {1, 9, 1, 4, 1.0f, 0.0f},
};

START_TEST(test_gemv)
{
    const gemv_case *c = &gemv_cases[_i];
    int32_t lda = c->m + c->pad;
    int32_t nx = c->ta ? c->m : c->n, ny = c->ta ? c->n : c->m;
    float *a = malloc((size_t)lda * c->n * sizeof *a);
    float x[16], y[16], y0[16];
    ck_assert_ptr_nonnull(a);
    tu_lcg g = {(uint64_t)_i + 100};
    tu_fill(&g, a, (int64_t)lda * c->n, 1.0f);
    tu_fill(&g, x, nx, 1.0f);
    tu_fill(&g, y0, ny, 1.0f);
    y0[ny] = SENTINEL;
    memcpy(y, y0, sizeof y);

    fa_gemv(c->ta, c->m, c->n, c->alpha, a, lda, x, c->beta, y);

    for (int32_t i = 0; i < ny; i++) {
        double s = 0.0;
        for (int32_t p = 0; p < nx; p++)
            s += (c->ta ? (double)a[p + (size_t)i * lda]
                        : (double)a[i + (size_t)p * lda]) * x[p];
        double want = c->alpha * s + c->beta * (double)y0[i];
        ck_assert_msg(fabs(y[i] - want) <= 1e-5 * (1.0 + fabs(want)) * nx,
                      "case %d y[%d] = %.9g, want %.9g", _i, i, y[i], want);
    }
    ck_assert_msg(y[ny] == SENTINEL, "case %d: y written past its end", _i);
    free(a);
}
END_TEST

START_TEST(test_dot_nrm2)
{
    static const int64_t lens[] = {1, 2, 7, 100, 1001};
    float x[1001], y[1001];
    tu_lcg g = {7};
    for (size_t t = 0; t < sizeof lens / sizeof lens[0]; t++) {
        int64_t n = lens[t];
        tu_fill(&g, x, n, 3.0f);
        tu_fill(&g, y, n, 0.5f);
        double d = 0.0, q = 0.0;
        for (int64_t i = 0; i < n; i++) {
            d += (double)x[i] * y[i];
            q += (double)x[i] * x[i];
        }
        double gd = fa_dot(n, x, y), gn = fa_nrm2(n, x);
        ck_assert_msg(fabs(gd - d) <= 1e-5 * (1.0 + fabs(d)) * sqrt((double)n),
                      "dot n=%lld: %.9g vs %.9g", (long long)n, gd, d);
        ck_assert_msg(fabs(gn - sqrt(q)) <= 1e-5 * sqrt(q),
                      "nrm2 n=%lld: %.9g vs %.9g", (long long)n, gn, sqrt(q));
    }
    /* A norm of values whose squares overflow float must stay finite: the
     * alignment angles divide by these norms. */
    for (int i = 0; i < 4; i++)
        x[i] = 1e30f;
    ck_assert_msg(fabs(fa_nrm2(4, x) / 2e30 - 1.0) < 1e-5, "nrm2 overflowed: %g",
                  fa_nrm2(4, x));
}
END_TEST

static Suite *blas_suite(void)
{
    Suite *s = suite_create("blas");
    TCase *tc = tcase_create("wrappers");
    tcase_add_loop_test(tc, test_gemm, 0,
                        (int)(sizeof gemm_cases / sizeof gemm_cases[0]));
    tcase_add_loop_test(tc, test_gemv, 0,
                        (int)(sizeof gemv_cases / sizeof gemv_cases[0]));
    tcase_add_test(tc, test_dot_nrm2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(blas_suite());
}
