/* threads.c -- the handle's worker threads, for the work OpenBLAS does not
 * thread: the element-wise passes (bias and activation, derivative and
 * bias gradient, the optimiser) and, for networks of many similar layers,
 * the per-layer weight-gradient GEMMs run side by side.
 *
 * One knob: the thread count is OpenBLAS's (fa_set_threads or
 * OPENBLAS_NUM_THREADS).  The pool holds that many threads minus one (the
 * caller is the first), is created the first time a step runs with more
 * than one thread and again only when the count changes, and sleeps on a
 * condition variable between jobs, so it never competes with OpenBLAS's own
 * threads while they run a GEMM.  Each handle has its own pool: handles
 * stay independent, and there is no global state. */
#include <pthread.h>
#include <stdlib.h>

#include "internal.h"

struct fa_pool {
    int32_t n;              /* threads, the caller included */
    pthread_t *tid;         /* n - 1 workers */
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    uint64_t gen;           /* job number: workers run each once */
    int32_t nparts;
    int32_t pending;        /* workers still running the job */
    int quit;
    fa_pool_fn fn;
    void *ctx;
};

typedef struct worker_arg {
    fa_pool *pool;
    int32_t part;
} worker_arg;

static void *worker(void *p)
{
    worker_arg *a = p;
    fa_pool *pool = a->pool;
    const int32_t part = a->part;
    free(a);
    uint64_t seen = 0;
    pthread_mutex_lock(&pool->mu);
    for (;;) {
        while (!pool->quit && pool->gen == seen)
            pthread_cond_wait(&pool->go, &pool->mu);
        if (pool->quit)
            break;
        seen = pool->gen;
        const int32_t nparts = pool->nparts;
        fa_pool_fn fn = pool->fn;
        void *ctx = pool->ctx;
        pthread_mutex_unlock(&pool->mu);
        if (part < nparts)
            fn(ctx, part, nparts);
        pthread_mutex_lock(&pool->mu);
        if (--pool->pending == 0)
            pthread_cond_signal(&pool->done);
    }
    pthread_mutex_unlock(&pool->mu);
    return NULL;
}

void fa_pool_free(fa_pool *pool)
{
    if (!pool)
        return;
    pthread_mutex_lock(&pool->mu);
    pool->quit = 1;
    pthread_cond_broadcast(&pool->go);
    pthread_mutex_unlock(&pool->mu);
    for (int32_t i = 0; i < pool->n - 1; i++)
        pthread_join(pool->tid[i], NULL);
    pthread_mutex_destroy(&pool->mu);
    pthread_cond_destroy(&pool->go);
    pthread_cond_destroy(&pool->done);
    free(pool->tid);
    free(pool);
}

/* A pool of n threads (caller included), or NULL when that fails. */
static fa_pool *pool_new(int32_t n)
{
    fa_pool *pool = calloc(1, sizeof *pool);
    if (!pool)
        return NULL;
    pool->tid = calloc((size_t)n, sizeof *pool->tid);
    if (!pool->tid || pthread_mutex_init(&pool->mu, NULL) != 0) {
        free(pool->tid);
        free(pool);
        return NULL;
    }
    pthread_cond_init(&pool->go, NULL);
    pthread_cond_init(&pool->done, NULL);
    for (int32_t i = 0; i < n - 1; i++) {
        worker_arg *a = malloc(sizeof *a);
        if (a) {
            a->pool = pool;
            a->part = i + 1;
        }
        if (!a || pthread_create(&pool->tid[i], NULL, worker, a) != 0) {
            free(a);
            pool->n = i + 1; /* the workers started so far */
            fa_pool_free(pool);
            return NULL;
        }
    }
    pool->n = n;
    return pool;
}

int32_t fa_net_threads(fa_net *net)
{
    int32_t want = fa_blas_threads();
    want = want > FA_MAX_THREADS ? FA_MAX_THREADS : want;
    if (want <= 1)
        return 1;
    if (net->pool && net->pool->n == want)
        return want;
    fa_pool_free(net->pool);
    /* Without a pool the work runs on the caller: slower, never wrong, so a
     * failure to start threads is not an error. */
    net->pool = pool_new(want);
    return net->pool ? want : 1;
}

void fa_pool_run(fa_net *net, int32_t nparts, fa_pool_fn fn, void *ctx)
{
    fa_pool *pool = net->pool;
    if (nparts <= 1 || !pool) {
        fn(ctx, 0, 1);
        return;
    }
    if (nparts > pool->n)
        nparts = pool->n;
    pthread_mutex_lock(&pool->mu);
    pool->fn = fn;
    pool->ctx = ctx;
    pool->nparts = nparts;
    pool->pending = pool->n - 1;
    pool->gen++;
    pthread_cond_broadcast(&pool->go);
    pthread_mutex_unlock(&pool->mu);
    fn(ctx, 0, nparts);
    pthread_mutex_lock(&pool->mu);
    while (pool->pending > 0)
        pthread_cond_wait(&pool->done, &pool->mu);
    pthread_mutex_unlock(&pool->mu);
}
