/*
 * par-serial.c -- fa-train's processes: just this one.  Every function of
 * the "processes" section of fa-train.h is trivial here, so that the
 * training loop reads the same in fa-train and fa-train-mpi and fa-train
 * behaves exactly as before MPI existed (it does not link MPI).
 */
#include "fa-train.h"

const bool par_mpi = false;

void
par_init(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
}

int
par_finalize(int status)
{
    return status;
}

int
par_rank(void)
{
    return 0;
}

int
par_size(void)
{
    return 1;
}

bool
par_root(void)
{
    return true;
}

run_status
par_agree(run_status mine, const char *where)
{
    (void)where;
    return mine;
}

int
par_stop_signal(void)
{
    return stop_signal;
}

void
par_shard(int32_t m, int32_t *lo, int32_t *count)
{
    *lo = 0;
    *count = m;
}

bool
par_sum(float *buf, int64_t n)
{
    (void)buf;
    (void)n;
    return true;
}

run_status
par_same(const void *p, size_t len, const char *what, const char *where)
{
    (void)p;
    (void)len;
    (void)what;
    (void)where;
    return RUN_OK;
}

bool
par_take_message(const char *msg)
{
    (void)msg;
    return false;
}

void
par_help(void)
{
}

void
par_report(const config *c)
{
    (void)c;
}

par_fault_kind
par_fault(int64_t step)
{
    (void)step;
    return FAULT_NONE;
}

const char *
par_rank_save_prefix(void)
{
    return NULL;
}
