/* blas.c -- the only file that includes <cblas.h>.  Column-major, standard
 * CBLAS semantics; the rest of the library calls these wrappers.  Also what
 * the library says about the BLAS it runs on, and the thread knob. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cblas.h>

#include "internal.h"

void fa_gemm(int trans_a, int trans_b, int32_t m, int32_t n, int32_t k, float alpha,
             const float *a, int32_t lda, const float *b, int32_t ldb, float beta, float *c,
             int32_t ldc)
{
    /* C (m, n) = alpha op(A) (m, k) op(B) (k, n) + beta C */
    if (m == 0 || n == 0)
        return;
    cblas_sgemm(CblasColMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c,
                ldc);
}

void fa_gemv(int trans_a, int32_t m, int32_t n, float alpha, const float *a, int32_t lda,
             const float *x, float beta, float *y)
{
    /* y = alpha op(A) x + beta y, A (m, n) */
    cblas_sgemv(CblasColMajor, trans_a ? CblasTrans : CblasNoTrans, m, n, alpha, a, lda, x, 1,
                beta, y, 1);
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

/* ------------------------------------------------------- the BLAS itself */

int32_t fa_blas_threads(void)
{
    int n = openblas_get_num_threads();
    return n > 0 ? n : 1;
}

void fa_blas_set_threads(int32_t n)
{
    openblas_set_num_threads(n);
}

FA_API int fa_set_threads(int32_t n)
{
    if (n < 1 || n > 1024)
        return fa_fail(FA_ERR_ARG, "fa_set_threads", "n = %d, expected 1..1024", (int)n);
    openblas_set_num_threads(n);
    return FA_OK;
}

FA_API int32_t fa_get_threads(void)
{
    return fa_blas_threads();
}

/* OpenBLAS's kernel sets that predate AVX2: on a CPU with AVX2 or AVX-512
 * they leave most of its speed unused (OpenBLAS falls back to them when it
 * does not recognise a virtual CPU). */
static int generic_core(const char *core)
{
    static const char *const old[] = {
        "Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Sandybridge", "Atom",
        "Nano", "Opteron", "Opteron_SSE3", "Barcelona", "Bobcat", "Bulldozer", "Piledriver",
        "Katmai", "Coppermine", "Northwood", "Banias", "Athlon", "Generic", "Unknown",
    };
    for (size_t i = 0; i < sizeof old / sizeof old[0]; i++)
        if (strcmp(core, old[i]) == 0)
            return 1;
    return 0;
}

static int cpu_has_avx2(void)
{
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") || __builtin_cpu_supports("avx512f");
#else
    return 0;
#endif
}

FA_API int fa_blas_info(char *buf, int64_t len, int32_t *generic)
{
    static const char fn[] = "fa_blas_info";
    if (!buf)
        return fa_fail(FA_ERR_NULL, fn, "buf is NULL (expected a text buffer)");
    if (len < 1)
        return fa_fail(FA_ERR_SIZE, fn, "len = %lld, expected >= 1", (long long)len);
    const char *config = openblas_get_config();
    const char *core = openblas_get_corename();
    const int par = openblas_get_parallel();
    const int32_t threads = fa_blas_threads();
    /* OpenBLAS 0.3 starts its configuration with "OpenBLAS <version>";
     * older ones give only the build options. */
    const char *name = config && strncmp(config, "OpenBLAS ", 9) == 0 ? "" : "OpenBLAS ";
    snprintf(buf, (size_t)(len > 4096 ? 4096 : len), "%s%s, core %s, %d thread%s, %s",
             name, config ? config : "?", core ? core : "?", (int)threads, threads == 1 ? "" : "s",
             par == 0 ? "sequential" : par == 2 ? "OpenMP" : "pthreads");
    if (generic)
        *generic = core && generic_core(core) && cpu_has_avx2();
    return FA_OK;
}
