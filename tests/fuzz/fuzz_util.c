/*
 * fuzz_util.c -- the helpers of fuzz.h, linked into every harness (and so
 * into both its libFuzzer and its replay executable).
 */
#define _POSIX_C_SOURCE 200809L

#include "fuzz.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The one piece of state that outlives an input: created once, so that an
 * input costs no mkdtemp/rmdir, and private to the process, so that
 * parallel fuzzing jobs (-jobs=N) and concurrent test runs never share
 * files. */
static char tmpdir[FUZZ_PATH_MAX];

static void remove_tmpdir(void)
{
    /* Harnesses unlink their files after each input, so the directory is
     * empty unless an input crashed (then nothing here runs anyway). */
    if (tmpdir[0] != '\0')
        (void)rmdir(tmpdir);
}

static void make_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    struct stat st;
    int n;

    if (base == NULL || base[0] == '\0')
        base = (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) &&
                access("/dev/shm", W_OK | X_OK) == 0)
                   ? "/dev/shm"
                   : "/tmp";
    n = snprintf(tmpdir, sizeof tmpdir, "%s/fa-fuzz.XXXXXX", base);
    if (n < 0 || (size_t)n >= sizeof tmpdir || mkdtemp(tmpdir) == NULL) {
        fprintf(stderr, "fuzz: cannot create a temporary directory under %s: %s\n",
                base, strerror(errno));
        abort();
    }
    atexit(remove_tmpdir);
}

void fuzz_path(char *buf, size_t len, const char *name)
{
    int n;

    if (tmpdir[0] == '\0')
        make_tmpdir();
    n = snprintf(buf, len, "%s/%s", tmpdir, name);
    if (n < 0 || (size_t)n >= len) {
        fprintf(stderr, "fuzz: temporary path too long\n");
        abort();
    }
}

void fuzz_write_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");

    if (f == NULL || (size > 0 && fwrite(data, 1, size, f) != size) ||
        fclose(f) != 0) {
        fprintf(stderr, "fuzz: cannot write %s: %s\n", path, strerror(errno));
        abort();
    }
}

void *fuzz_read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    size_t cap = 0, len = 0;

    if (f == NULL) {
        fprintf(stderr, "fuzz: cannot open %s: %s\n", path, strerror(errno));
        abort();
    }
    for (;;) {
        if (len == cap) {
            cap = cap == 0 ? 4096 : 2 * cap;
            unsigned char *nb = realloc(buf, cap);
            if (nb == NULL) {
                fprintf(stderr, "fuzz: out of memory reading %s\n", path);
                abort();
            }
            buf = nb;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        fprintf(stderr, "fuzz: cannot read %s\n", path);
        abort();
    }
    fclose(f);
    *size = len;
    return buf;
}

void fuzz_check(int cond, const char *fmt, ...)
{
    va_list ap;

    if (cond)
        return;
    fputs("fuzz: invariant violated: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}
