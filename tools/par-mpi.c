/*
 * par-mpi.c -- fa-train-mpi's processes: the ranks of MPI_COMM_WORLD,
 * training one network data-parallel.
 *
 * Every rank holds the same network (same options, same --seed or the same
 * --load file: identical weights, feedback, model RNG stream).  Each step,
 * rank r takes its contiguous shard of the global batch, computes the
 * update of that shard (a mean over it), weights it by shard / batch, and
 * one MPI_Allreduce sums the weighted updates: every rank then holds the
 * update of the whole batch and applies it (fa_net_apply_update), which
 * keeps the networks bitwise identical, feedback included (KP, WM and
 * BRSF change their feedback only there, from the model RNG stream).  Only
 * the dropout stream differs per rank (fa_net_seed_dropout).  A 64-bit
 * hash of the parameters, and at epoch ends of the whole model image, is
 * compared across ranks; a difference stops the job.
 *
 * Failures.  Whatever can fail on one rank alone (reading the data or the
 * --load file, a step whose update is not finite, anything rank 0 does
 * alone) is followed by an agreement (par_agree): one small MPI_Allreduce
 * of the ranks' statuses, before any other collective, so that no rank
 * waits in a collective that another rank will never enter.  Messages are
 * not printed where they arise: each rank keeps them until the next
 * agreement, where rank 0 gathers and prints them, naming the ranks.  A
 * rank that dies (killed, or exits without MPI_Finalize) is detected by
 * mpirun (Open MPI's ORTE), which then ends the other ranks and exits
 * non-zero; MPI errors use MPI_ERRORS_ARE_FATAL (the default), which
 * aborts the whole job.  So the job never hangs on a failed rank.
 *
 * Test hooks: the environment variable FA_TRAIN_MPI_TEST holds
 * comma-separated items, used by tests/mpi/test-mpi.sh only:
 *   fault=KIND:RANK:STEP  rank RANK simulates a failure at global step
 *                         STEP (from 1): nan (a NaN in its shard's input:
 *                         the library refuses the step), kill (SIGKILL to
 *                         itself), exit (exit(1) without MPI_Finalize),
 *                         perturb (its parameters move by one ulp after the
 *                         step: the processes drift apart)
 *   save-ranks=PREFIX     every rank saves its network to PREFIX.rankK.fa
 *                         at the end of the training
 */
#define _POSIX_C_SOURCE 200809L

#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "fa-train.h"

const bool par_mpi = true;

static int rank_ = 0, size_ = 1;
static bool live = false;   /* between MPI_Init and MPI_Finalize */
static int agreed_stop = 0; /* stop signal agreed at the last agreement */

/* Messages since the last agreement: texts, each ending in '\0'.  Capped;
 * what does not fit is counted. */
enum { PENDING_CAP = 1 << 16 };
static char *pending;
static int pending_len;
static int pending_dropped;

static void *xmalloc(size_t n);

/* Test hooks. */
static par_fault_kind fault_kind = FAULT_NONE;
static int fault_rank = -1;
static int64_t fault_step = -1;
static const char *save_prefix;

/* --------------------------------------------------------------- hooks */

static void
hook_error(const char *item)
{
    if (rank_ == 0)
        fprintf(stderr, PROG ": FA_TRAIN_MPI_TEST: cannot read '%s' (expected "
                "fault=nan|kill|exit|perturb:RANK:STEP or save-ranks=PREFIX)\n", item);
    MPI_Abort(MPI_COMM_WORLD, 2);
}

static void
read_hooks(void)
{
    const char *env = getenv("FA_TRAIN_MPI_TEST");
    if (env == NULL || *env == '\0')
        return;
    static char buf[4096];
    if (strlen(env) >= sizeof buf)
        hook_error(env);
    strcpy(buf, env);
    char *save = NULL;
    for (char *item = strtok_r(buf, ",", &save); item != NULL;
         item = strtok_r(NULL, ",", &save)) {
        if (strncmp(item, "save-ranks=", 11) == 0 && item[11] != '\0') {
            save_prefix = item + 11;
        } else if (strncmp(item, "fault=", 6) == 0) {
            static const char *const kinds[] = {"", "nan", "kill", "exit", "perturb"};
            char kind[16];
            int r = -1;
            long long s = -1;
            if (sscanf(item + 6, "%15[a-z]:%d:%lld", kind, &r, &s) != 3 || r < 0 || s < 1)
                hook_error(item);
            fault_kind = FAULT_NONE;
            for (int k = 1; k < 5; k++)
                if (strcmp(kind, kinds[k]) == 0)
                    fault_kind = (par_fault_kind)k;
            if (fault_kind == FAULT_NONE)
                hook_error(item);
            fault_rank = r;
            fault_step = s;
        } else {
            hook_error(item);
        }
    }
}

par_fault_kind
par_fault(int64_t step)
{
    return rank_ == fault_rank && step == fault_step ? fault_kind : FAULT_NONE;
}

const char *
par_rank_save_prefix(void)
{
    return save_prefix;
}

/* ---------------------------------------------------------- start, end */

void
par_init(int *argc, char ***argv)
{
    if (MPI_Init(argc, argv) != MPI_SUCCESS) {
        fprintf(stderr, PROG ": MPI_Init failed\n");
        exit(1);
    }
    live = true;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    pending = xmalloc(PENDING_CAP);
    read_hooks();
}

int
par_rank(void)
{
    return rank_;
}

int
par_size(void)
{
    return size_;
}

bool
par_root(void)
{
    return rank_ == 0;
}

int
par_stop_signal(void)
{
    return agreed_stop;
}

bool
par_take_message(const char *msg)
{
    if (!live)
        return false;
    int len = (int)strnlen(msg, PENDING_CAP) + 1;
    if (pending_len + len > PENDING_CAP) {
        pending_dropped++;
        return true;
    }
    memcpy(pending + pending_len, msg, (size_t)len - 1);
    pending[pending_len + len - 1] = '\0';
    pending_len += len;
    return true;
}

/* ---------------------------------------------------------- agreement */

/* How bad a status is: the job takes the worst. */
static int
severity(run_status st)
{
    switch (st) {
    case RUN_OK: return 0;
    case RUN_INTERRUPTED: return 1;
    case RUN_DIVERGED: return 2;
    default: return 3;
    }
}

static run_status
from_severity(int s)
{
    static const run_status st[] = {RUN_OK, RUN_INTERRUPTED, RUN_DIVERGED, RUN_FAILED};
    return st[s < 0 ? 0 : s > 3 ? 3 : s];
}

/* "rank 2", "ranks 1, 3-5" into buf: the ranks r with mark[r]. */
static void
rank_list(const bool *mark, char *buf, size_t len)
{
    int count = 0;
    for (int r = 0; r < size_; r++)
        count += mark[r];
    size_t used = (size_t)snprintf(buf, len, "rank%s", count == 1 ? "" : "s");
    bool first = true;
    for (int r = 0; r < size_ && used < len; r++) {
        if (!mark[r])
            continue;
        int end = r;
        while (end + 1 < size_ && mark[end + 1])
            end++;
        if (end > r + 1)
            used += (size_t)snprintf(buf + used, len - used, "%s %d-%d", first ? "" : ",", r, end);
        else if (end == r + 1)
            used += (size_t)snprintf(buf + used, len - used, "%s %d, %d", first ? "" : ",", r, end);
        else
            used += (size_t)snprintf(buf + used, len - used, "%s %d", first ? "" : ",", r);
        first = false;
        r = end;
    }
    if (used < len)
        snprintf(buf + used, len - used, " of %d", size_);
}

/* Memory for the bookkeeping of the ranks (a few bytes per rank, and the
 * messages): without it the job cannot coordinate, so it ends at once. */
static void *
xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL) {
        fprintf(stderr, PROG ": rank %d: out of memory (%zu bytes)\n", rank_, n);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    return p;
}

/* The message at text + off, and the offset of the next one. */
static int
next_message(const char *text, int off)
{
    return off + (int)strlen(text + off) + 1;
}

/* COLLECTIVE (called when some rank has messages or failed): rank 0
 * gathers every rank's messages and severity and prints each distinct
 * message once -- unprefixed when every rank reported it or only rank 0
 * did, else prefixed with the ranks -- then, when some but not all ranks
 * failed, which ones. */
static void
flush(int mine, const char *where)
{
    progress_hide();
    int info[3] = {mine, pending_len, pending_dropped};
    int *all = NULL, *lens = NULL, *displs = NULL;
    char *text = NULL;
    if (rank_ == 0) {
        all = xmalloc(sizeof *all * 3 * (size_t)size_);
        lens = xmalloc(sizeof *lens * (size_t)size_);
        displs = xmalloc(sizeof *displs * (size_t)size_);
    }
    MPI_Gather(info, 3, MPI_INT, all, 3, MPI_INT, 0, MPI_COMM_WORLD);
    int total = 0;
    if (rank_ == 0) {
        for (int r = 0; r < size_; r++) {
            lens[r] = all[3 * r + 1];
            displs[r] = total;
            total += lens[r];
        }
        text = xmalloc((size_t)total);
    }
    MPI_Gatherv(pending, pending_len, MPI_CHAR, text, lens, displs, MPI_CHAR, 0,
                MPI_COMM_WORLD);
    pending_len = 0;
    pending_dropped = 0;
    if (rank_ != 0)
        return;
    bool *mark = xmalloc(sizeof *mark * (size_t)size_);
    bool *done = xmalloc(sizeof *done * (size_t)total);
    memset(done, 0, sizeof *done * (size_t)total);
    char ranks[512];
    /* Each distinct message, in the order of the first rank that reported
     * it; a rank that reported it twice counts once. */
    for (int r = 0; r < size_; r++) {
        for (int off = displs[r]; off < displs[r] + lens[r]; off = next_message(text, off)) {
            if (done[off])
                continue;
            const char *m = text + off;
            int count = 0;
            memset(mark, 0, sizeof *mark * (size_t)size_);
            for (int q = r; q < size_; q++) {
                for (int o = displs[q]; o < displs[q] + lens[q]; o = next_message(text, o)) {
                    if (!done[o] && strcmp(text + o, m) == 0) {
                        done[o] = true;
                        count += !mark[q];
                        mark[q] = true;
                    }
                }
            }
            if (count == size_ || (count == 1 && mark[0])) {
                fprintf(stderr, PROG ": %s\n", m);
            } else {
                rank_list(mark, ranks, sizeof ranks);
                fprintf(stderr, PROG ": %s: %s\n", ranks, m);
            }
        }
    }
    int failed = 0, dropped = 0;
    for (int r = 0; r < size_; r++) {
        mark[r] = all[3 * r] >= severity(RUN_DIVERGED);
        failed += mark[r];
        dropped += all[3 * r + 2];
    }
    if (dropped > 0)
        fprintf(stderr, PROG ": (%d further messages did not fit and were dropped)\n",
                dropped);
    if (failed > 0 && failed < size_) {
        rank_list(mark, ranks, sizeof ranks);
        fprintf(stderr, PROG ": %s failed %s: stopping all %d processes\n", ranks, where,
                size_);
    }
    free(mark);
    free(done);
    free(all);
    free(lens);
    free(displs);
    free(text);
}

run_status
par_agree(run_status mine, const char *where)
{
    /* {severity, stop signal, has messages}: the maximum of each */
    int in[3] = {severity(mine), (int)stop_signal, pending_len > 0 || pending_dropped > 0};
    int out[3] = {0, 0, 0};
    MPI_Allreduce(in, out, 3, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    agreed_stop = out[1];
    if (out[2] || out[0] >= severity(RUN_DIVERGED))
        flush(in[0], where);
    return from_severity(out[0]);
}

int
par_finalize(int status)
{
    if (!live)
        return status;
    /* The job's exit status: the highest of the ranks' (1 failure, 2 bad
     * command line, 128 + signal), returned by rank 0 (mpirun exits with
     * the first non-zero status; the other ranks return 0), after the last
     * messages. */
    int job = status;
    MPI_Allreduce(&status, &job, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    int any = pending_len > 0 || pending_dropped > 0, some = 0;
    MPI_Allreduce(&any, &some, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (some)
        flush(severity(status != 0 ? RUN_FAILED : RUN_OK), "at the end");
    MPI_Finalize();
    live = false;
    free(pending);
    pending = NULL;
    return rank_ == 0 ? job : 0; /* rank 0 reports; mpirun passes it on */
}

/* ------------------------------------------------------------- the step */

void
par_shard(int32_t m, int32_t *lo, int32_t *count)
{
    int64_t a = (int64_t)m * rank_ / size_, b = (int64_t)m * (rank_ + 1) / size_;
    *lo = (int32_t)a;
    *count = (int32_t)(b - a);
}

bool
par_sum(float *buf, int64_t n)
{
    /* MPI counts are int: pieces of at most 2^30 floats.  MPI errors are
     * fatal (the default handler aborts the job), so this cannot fail. */
    for (int64_t off = 0; off < n; off += (int64_t)1 << 30) {
        int count = (int)(n - off < ((int64_t)1 << 30) ? n - off : (int64_t)1 << 30);
        MPI_Allreduce(MPI_IN_PLACE, buf + off, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    }
    return true;
}

/* --------------------------------------------------------------- checks */

static uint64_t
rotl(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

/* A 64-bit hash of len bytes (four lanes of multiply-rotate, as xxHash64;
 * about a byte per cycle or better).  Not cryptographic: it guards against
 * drift, not against an adversary. */
static uint64_t
hash64(const void *p, size_t len)
{
    static const uint64_t P1 = 0x9E3779B185EBCA87ull, P2 = 0xC2B2AE3D27D4EB4Full,
                          P3 = 0x165667B19E3779F9ull;
    const unsigned char *b = p;
    uint64_t v[4] = {P1 + P2, P2, 0, (uint64_t)0 - P1};
    size_t i = 0;
    for (; i + 32 <= len; i += 32) {
        for (int k = 0; k < 4; k++) {
            uint64_t w;
            memcpy(&w, b + i + 8 * (size_t)k, 8);
            v[k] = rotl(v[k] + w * P2, 31) * P1;
        }
    }
    uint64_t h = rotl(v[0], 1) + rotl(v[1], 7) + rotl(v[2], 12) + rotl(v[3], 18) +
                 (uint64_t)len;
    for (; i < len; i++)
        h = rotl(h ^ (b[i] * P3), 11) * P1;
    h ^= h >> 33;
    h *= P2;
    h ^= h >> 29;
    h *= P3;
    h ^= h >> 32;
    return h;
}

run_status
par_same(const void *p, size_t len, const char *what, const char *where)
{
    uint64_t h = hash64(p, len);
    uint64_t *all = xmalloc(sizeof *all * (size_t)size_);
    bool *mark = xmalloc(sizeof *mark * (size_t)size_);
    mark[0] = false;
    MPI_Allgather(&h, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, MPI_COMM_WORLD);
    int differ = 0, first = -1;
    for (int r = 1; r < size_; r++) {
        mark[r] = all[r] != all[0];
        differ += mark[r];
        if (mark[r] && first < 0)
            first = r;
    }
    run_status st = RUN_OK;
    if (differ > 0) {
        /* Every rank knows the hashes, so every rank reports the same text
         * and rank 0 prints it once. */
        char ranks[512];
        rank_list(mark, ranks, sizeof ranks);
        report_error("%s differ between the processes %s: %s hold%s other values than "
                     "rank 0 (64-bit hash %016llx, rank 0 %016llx); every rank must "
                     "start from the same network (same options and --seed, or the "
                     "same --load file) and apply the same updates",
                     what, where, ranks, differ == 1 ? "s" : "",
                     (unsigned long long)all[first], (unsigned long long)all[0]);
        st = RUN_FAILED;
    }
    free(all);
    free(mark);
    return par_agree(st, where);
}

/* ---------------------------------------------------------------- help */

void
par_help(void)
{
    printf("\nfa-train-mpi trains one network data-parallel over MPI processes:\n"
           "  mpirun -np P " PROG " [OPTION VALUE]...\n"
           "Each process reads the data (and --load) itself; each takes its "
           "share of every\nbatch (--batch is the global batch), the "
           "updates are summed with one\nMPI_Allreduce and every process "
           "applies the same sum.  Rank 0 alone prints,\nlogs, evaluates, "
           "plots and saves.  Give each process its threads with --threads\n"
           "(processes x threads <= cores).  A failure on any rank stops "
           "the whole job\nwith a message naming the rank.\n");
}

/* COLLECTIVE: the "mpi:" line of the header, with every rank's host and
 * thread count. */
void
par_report(const config *c)
{
    enum { NAME = MPI_MAX_PROCESSOR_NAME };
    char name[NAME];
    int nlen = 0;
    memset(name, 0, sizeof name);
    MPI_Get_processor_name(name, &nlen);
    int threads = fa_get_threads();
    char *names = rank_ == 0 ? xmalloc((size_t)NAME * (size_t)size_) : NULL;
    int *thr = rank_ == 0 ? xmalloc(sizeof *thr * (size_t)size_) : NULL;
    MPI_Gather(name, NAME, MPI_CHAR, names, NAME, MPI_CHAR, 0, MPI_COMM_WORLD);
    MPI_Gather(&threads, 1, MPI_INT, thr, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (rank_ == 0) {
        int hosts = 0, tmin = thr[0], tmax = thr[0];
        for (int r = 0; r < size_; r++) {
            bool seen = false;
            for (int q = 0; q < r && !seen; q++)
                seen = strncmp(names + (size_t)q * NAME, names + (size_t)r * NAME, NAME) == 0;
            hosts += !seen;
            tmin = thr[r] < tmin ? thr[r] : tmin;
            tmax = thr[r] > tmax ? thr[r] : tmax;
        }
        char lib[MPI_MAX_LIBRARY_VERSION_STRING];
        int llen = 0;
        MPI_Get_library_version(lib, &llen);
        lib[strcspn(lib, ",\n")] = '\0';
        int32_t bmin = c->batch / size_, bmax = (c->batch + size_ - 1) / size_;
        char shards[64], threads_s[32];
        if (bmin == bmax)
            snprintf(shards, sizeof shards, "%d", bmin);
        else
            snprintf(shards, sizeof shards, "%d-%d", bmin, bmax);
        if (tmin == tmax)
            snprintf(threads_s, sizeof threads_s, "%d", tmin);
        else
            snprintf(threads_s, sizeof threads_s, "%d-%d", tmin, tmax);
        char check[64] = "at epoch ends";
        if (c->check_every > 0)
            snprintf(check, sizeof check, "every %d step%s and at epoch ends",
                     c->check_every, c->check_every == 1 ? "" : "s");
        printf("mpi: %d process%s on %d host%s (%s), %s BLAS thread%s each; batch %d "
               "in shards of %s; parameters compared %s\n", size_, size_ == 1 ? "" : "es",
               hosts, hosts == 1 ? "" : "s", lib, threads_s, tmax == 1 ? "" : "s", c->batch,
               shards, check);
    }
    free(names);
    free(thr);
}
