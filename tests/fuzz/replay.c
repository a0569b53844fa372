/*
 * replay.c -- a main for the harnesses without libFuzzer: feeds each file
 * named on the command line, or each file in each directory named there,
 * once through LLVMFuzzerTestOneInput.
 *
 *   replay_<target> DIR_OR_FILE...          replay; a finding aborts
 *   replay_<target> --open DIR...           the open crash inputs only
 *
 * Linked with each harness by the ordinary compiler, so the plain,
 * sanitizer and valgrind runs of the test suite all replay the seed corpus
 * and every input that once crashed.  A finding aborts the process (the
 * input's path is printed first), which fails the test.  Directory entries
 * are replayed in name order, so a run is reproducible; names starting with
 * '.' and README files are documentation, not inputs.
 *
 * Open crash inputs: a file named open-* in a directory is an input that
 * still crashes the current library (a bug reported, not yet fixed).  The
 * normal mode skips it, naming it, so that the suite stays green; --open
 * replays only those, each in a child process, and fails if one of them
 * no longer crashes: the bug is fixed, and the file should lose its open-
 * prefix to become an ordinary regression input.  Only a sanitizer build
 * can tell (most such bugs do nothing visible without one), so meson
 * registers the --open test in sanitizer builds only.
 */
#define _XOPEN_SOURCE 700 /* nftw */

#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* In a build with UndefinedBehaviorSanitizer, make undefined behaviour a
 * failure even when UBSAN_OPTIONS does not say so: by default UBSan prints
 * and carries on, and the test would pass.  (A hook the sanitizer runtime
 * looks up; in other builds nothing calls it.) */
const char *__ubsan_default_options(void);
const char *__ubsan_default_options(void)
{
    return "halt_on_error=1:print_stacktrace=1";
}

static int remove_entry(const char *path, const struct stat *st, int flag,
                        struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) != 0 && errno != ENOENT;
}

/* A crashing child leaves its temporary files behind (it never reaches its
 * cleanup), so in --open mode each child gets $TMPDIR set to a directory of
 * the parent's, removed whole after the child ends. */
static char *child_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    struct stat st;
    char *dir;
    size_t len;

    if (base == NULL || base[0] == '\0')
        base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
    len = strlen(base) + sizeof "/fa-replay.XXXXXX";
    dir = malloc(len);
    if (dir == NULL)
        return NULL;
    snprintf(dir, len, "%s/fa-replay.XXXXXX", base);
    if (mkdtemp(dir) == NULL) {
        free(dir);
        return NULL;
    }
    return dir;
}

static int open_mode;   /* --open */
static int skipped;     /* open inputs left out in the normal mode */

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long end;
    size_t size;

    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (end = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "replay: cannot read %s: %s\n", path, strerror(errno));
        if (f != NULL)
            fclose(f);
        return 1;
    }
    size = (size_t)end;
    /* Exactly size bytes (at least one, so that an empty input is not a
     * NULL pointer): AddressSanitizer then catches a read past the end. */
    buf = malloc(size > 0 ? size : 1);
    if (buf == NULL || fread(buf, 1, size, f) != size) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        free(buf);
        fclose(f);
        return 1;
    }
    fclose(f);
    /* Printed before the call: if the input crashes, this is the last line. */
    fprintf(stderr, "replay: %s (%zu bytes)\n", path, size);
    fflush(stderr);
    if (!open_mode) {
        LLVMFuzzerTestOneInput(buf, size);
        free(buf);
        return 0;
    }
    /* An open input is expected to crash: run it in a child and judge how
     * the child ended.  The child exits through exit() so that
     * LeakSanitizer still checks it. */
    char *tmp = child_tmpdir();
    if (tmp == NULL) {
        fprintf(stderr, "replay: cannot create a temporary directory: %s\n",
                strerror(errno));
        free(buf);
        return 1;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        if (setenv("TMPDIR", tmp, 1) != 0)
            _exit(2);
        LLVMFuzzerTestOneInput(buf, size);
        free(buf);
        free(tmp);
        exit(0);
    }
    free(buf);
    int st = 0;
    int waited = pid > 0 && waitpid(pid, &st, 0) == pid;
    int err = errno;
    (void)nftw(tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(tmp);
    if (!waited) {
        fprintf(stderr, "replay: cannot run a child for %s: %s\n", path,
                strerror(err));
        return 1;
    }
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        fprintf(stderr, "replay: %s no longer crashes: the bug is fixed; rename "
                "the file without its open- prefix (tests/fuzz/README.md)\n", path);
        return 1;
    }
    fprintf(stderr, "replay: %s still crashes (%s %d), as expected until it is fixed\n",
            path, WIFSIGNALED(st) ? "signal" : "exit status",
            WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
    return 0;
}

static int is_input(const char *name)
{
    return name[0] != '.' && strncmp(name, "README", 6) != 0;
}

static int is_open(const char *name)
{
    return strncmp(name, "open-", 5) == 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Replays the files of dir in name order; *count receives how many. */
static int replay_dir(const char *dir, int *count)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0, cap = 0;
    int bad = 0;

    if (d == NULL) {
        fprintf(stderr, "replay: cannot open %s: %s\n", dir, strerror(errno));
        return 1;
    }
    while ((e = readdir(d)) != NULL) {
        if (!is_input(e->d_name) || is_open(e->d_name) != open_mode) {
            if (!open_mode && is_input(e->d_name)) {
                fprintf(stderr, "replay: %s/%s skipped: an open crash input "
                        "(replayed by --open in sanitizer builds)\n", dir, e->d_name);
                skipped++;
            }
            continue;
        }
        if (n == cap) {
            cap = cap == 0 ? 64 : 2 * cap;
            char **nn = realloc(names, cap * sizeof *nn);
            if (nn == NULL) {
                fprintf(stderr, "replay: out of memory\n");
                bad = 1;
                break;
            }
            names = nn;
        }
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        names[n] = malloc(len);
        if (names[n] == NULL) {
            fprintf(stderr, "replay: out of memory\n");
            bad = 1;
            break;
        }
        snprintf(names[n], len, "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(d);
    if (n > 0)
        qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        /* Only regular files: a subdirectory is not an input. */
        if (!bad && stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
            bad |= replay_file(names[i]);
            ++*count;
        }
        free(names[i]);
    }
    free(names);
    return bad;
}

int main(int argc, char **argv)
{
    int bad = 0, count = 0, first = 1;

    if (argc > 1 && strcmp(argv[1], "--open") == 0) {
        open_mode = 1;
        first = 2;
    }
    if (argc <= first) {
        fprintf(stderr, "usage: %s [--open] DIR_OR_FILE...\n", argv[0]);
        return 2;
    }
    for (int i = first; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            bad = 1;
        } else if (S_ISDIR(st.st_mode)) {
            bad |= replay_dir(argv[i], &count);
        } else {
            bad |= replay_file(argv[i]);
            count++;
        }
    }
    printf("replay: %d %sinput%s replayed", count, open_mode ? "open " : "",
           count == 1 ? "" : "s");
    if (skipped > 0)
        printf(", %d open input%s skipped", skipped, skipped == 1 ? "" : "s");
    printf("%s\n", bad ? ", with errors" : "");
    return bad;
}
