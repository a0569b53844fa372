/*
 * io.c -- model files: fa_net_save and fa_net_load, thin wrappers that move
 * a model image (image.c) to and from the file system.
 *
 * A save never leaves a half-written model: it writes a temporary file in
 * the target's directory, flushes it to disk and renames it over the
 * target, so a reader sees the old file or the new one.  The temporary is
 * named "<name>.fa-tmp-<pid>-XXXXXX" -- or, when that would exceed the file
 * system's name limit, ".fa-tmp-<hash of name>-<pid>-XXXXXX" -- so that a
 * later save of the same target can recognise the temporaries of a save
 * that was killed (their process no longer exists) and remove them.  A
 * symbolic link at the target is followed: its target is replaced and the
 * link kept, which is what a user who keeps "latest.fanet -> run7.fanet"
 * expects.
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "internal.h"

/* Thread-safe strerror: the XSI strerror_r (what _POSIX_C_SOURCE selects). */
static void describe_errno(int err, char *buf, size_t len)
{
    if (strerror_r(err, buf, len) != 0)
        snprintf(buf, len, "error %d", err);
}

/* ------------------------------------------------------------- names */

/* The file a save writes: path, with symbolic links followed to their
 * final target (which need not exist yet).  malloc'd, or NULL with errno
 * ENOMEM, or ELOOP for a loop of links (more than 40 in a chain, the
 * kernel's limit): there is no file to replace, and renaming over the
 * last link reached would replace that link. */
static char *resolve_target(const char *path)
{
    char *cur = strdup(path);
    for (int depth = 0; cur; depth++) {
        struct stat st;
        if (lstat(cur, &st) != 0 || !S_ISLNK(st.st_mode))
            return cur;
        if (depth == 40) {
            free(cur);
            errno = ELOOP;
            return NULL;
        }
        char link[PATH_MAX];
        ssize_t n = readlink(cur, link, sizeof link - 1);
        if (n < 0)
            return cur; /* let the save itself report what is wrong */
        link[n] = '\0';
        char *next;
        const char *slash = strrchr(cur, '/');
        if (link[0] == '/' || !slash) {
            next = strdup(link);
        } else {
            /* relative to the directory holding the link */
            size_t dlen = (size_t)(slash - cur) + 1;
            next = malloc(dlen + (size_t)n + 1);
            if (next) {
                memcpy(next, cur, dlen);
                memcpy(next + dlen, link, (size_t)n + 1);
            }
        }
        free(cur);
        cur = next;
    }
    return NULL;
}

/* 64-bit FNV-1a: a short stand-in for a long file name. */
static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

/* The prefix of the temporaries of `base` (everything before the pid). */
static void tmp_prefix(const char *dir, const char *base, char *out, size_t len)
{
    long name_max = pathconf(dir, _PC_NAME_MAX);
    if (name_max <= 0)
        name_max = 255;
    /* ".fa-tmp-" + pid (<= 10 digits) + "-" + "XXXXXX" */
    if ((long)strlen(base) + 8 + 10 + 1 + 6 <= name_max)
        snprintf(out, len, "%s.fa-tmp-", base);
    else
        snprintf(out, len, ".fa-tmp-%016llx-", (unsigned long long)fnv1a(base));
}

/* Remove temporaries of `prefix` in dir whose process has died.  Best
 * effort: anything unexpected is left alone. */
static void remove_stale(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    const size_t plen = strlen(prefix);
    const struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, plen) != 0)
            continue;
        const char *p = e->d_name + plen;
        char *end = NULL;
        errno = 0;
        long pid = strtol(p, &end, 10);
        if (errno || end == p || *end != '-' || strlen(end + 1) != 6 || pid <= 0 ||
            pid == (long)getpid())
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue; /* alive (or not ours to judge) */
        char full[PATH_MAX];
        if ((size_t)snprintf(full, sizeof full, "%s/%s", dir, e->d_name) < sizeof full)
            (void)unlink(full);
    }
    closedir(d);
}

/* Make the rename itself durable by syncing the directory.  Best effort:
 * the new file is complete and in place already, and after a crash before
 * this reaches the disk the old file is what remains, also complete. */
static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

/* -------------------------------------------------------------------- save */

FA_API int fa_net_save(const fa_net *net, const char *path)
{
    static const char fn[] = "fa_net_save";
    const char *what = NULL;
    char *target = NULL, *dir = NULL, *tmp = NULL;
    FILE *f = NULL;
    int fd = -1, created = 0, err = 0;
    char msg[128];

    if (!net)
        return fa_fail(FA_ERR_NULL, fn, "net is NULL");
    if (!path)
        return fa_fail(FA_ERR_NULL, fn, "path is NULL");
    if (path[0] == '\0')
        return fa_fail(FA_ERR_IO, fn, "cannot save to an empty path");

    target = resolve_target(path);
    if (!target && errno == ELOOP) {
        err = ELOOP;
        what = "cannot save to";
        goto fail;
    }
    if (!target)
        return fa_fail(FA_ERR_NOMEM, fn, "no memory for the file name");
    const char *slash = strrchr(target, '/');
    const char *base = slash ? slash + 1 : target;
    dir = slash ? strndup(target, (size_t)(slash - target) + (slash == target)) : strdup(".");
    char prefix[64 + NAME_MAX];
    if (!dir || base[0] == '\0') {
        err = dir ? EISDIR : ENOMEM;
        what = "cannot save to";
        goto fail;
    }
    tmp_prefix(dir, base, prefix, sizeof prefix);
    remove_stale(dir, prefix);
    size_t tlen = strlen(dir) + 1 + strlen(prefix) + 32;
    tmp = malloc(tlen);
    if (!tmp) {
        err = ENOMEM;
        what = "cannot save to";
        goto fail;
    }
    snprintf(tmp, tlen, "%s/%s%ld-XXXXXX", dir, prefix, (long)getpid());

    /* The temporary sits next to the target so that rename() stays within
     * one file system and is atomic. */
    fd = mkstemp(tmp);
    if (fd < 0) {
        err = errno;
        what = "cannot create a temporary file to save";
        goto fail;
    }
    created = 1;
    /* mkstemp creates 0600; a model file is ordinary data, so give it the
     * mode of the file it replaces, or rw-r--r-- if it is new.  Best effort:
     * a file system without permissions does not make the save fail. */
    {
        struct stat st;
        mode_t mode = (stat(target, &st) == 0 && S_ISREG(st.st_mode))
                          ? (mode_t)(st.st_mode & 0777) : (mode_t)0644;
        (void)fchmod(fd, mode);
    }
    f = fdopen(fd, "wb");
    if (!f) {
        err = errno;
        what = "cannot write";
        goto fail;
    }
    fd = -1; /* now owned by f */
    if ((err = fa_image_write_file(net, f)) != 0) {
        what = "cannot write";
        goto fail;
    }
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        err = errno;
        what = "cannot write";
        goto fail;
    }
    if (fclose(f) != 0) {
        f = NULL; /* fclose releases the stream even when it fails */
        err = errno;
        what = "cannot write";
        goto fail;
    }
    f = NULL;
    if (rename(tmp, target) != 0) {
        err = errno;
        what = "cannot replace";
        goto fail;
    }
    sync_dir(dir);
    free(tmp);
    free(dir);
    free(target);
    return FA_OK;

fail:
    if (f)
        fclose(f);
    if (fd >= 0)
        close(fd);
    if (created)
        unlink(tmp);
    describe_errno(err != 0 ? err : EIO, msg, sizeof msg);
    int rc = fa_fail(FA_ERR_IO, fn, "%s '%s': %s", what, path, msg);
    free(tmp);
    free(dir);
    free(target);
    return rc;
}

/* -------------------------------------------------------------------- load */

FA_API int fa_net_load(fa_net **out, const char *path)
{
    static const char fn[] = "fa_net_load";
    unsigned char *buf = NULL;
    unsigned char magic[8];
    struct stat st;
    size_t size, have, prefix;
    int status;
    char msg[128];

    if (!out)
        return fa_fail(FA_ERR_NULL, fn, "out is NULL");
    *out = NULL;
    if (!path)
        return fa_fail(FA_ERR_NULL, fn, "path is NULL");
    /* O_NONBLOCK so that a FIFO without a writer is refused below instead
     * of blocking the caller forever; it has no effect on regular files. */
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    if (fd < 0) {
        describe_errno(errno, msg, sizeof msg);
        return fa_fail(FA_ERR_IO, fn, "cannot open '%s': %s", path, msg);
    }
    if (fstat(fd, &st) != 0) {
        describe_errno(errno, msg, sizeof msg);
        close(fd);
        return fa_fail(FA_ERR_IO, fn, "cannot stat '%s': %s", path, msg);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return fa_fail(FA_ERR_IO, fn, "'%s' is not a regular file", path);
    }
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        describe_errno(errno, msg, sizeof msg);
        close(fd);
        return fa_fail(FA_ERR_IO, fn, "cannot open '%s': %s", path, msg);
    }
    if (st.st_size < 0 || (uintmax_t)st.st_size > (uintmax_t)(SIZE_MAX / 2)) {
        status = fa_fail(FA_ERR_FORMAT, fn, "'%s' is too large to be a model file", path);
        goto done;
    }
    size = (size_t)st.st_size;

    /* Allocate a buffer the size of the file only once its first bytes look
     * like a model file: loading the wrong (large) file fails cheaply. */
    prefix = size < sizeof magic ? size : sizeof magic;
    have = fread(magic, 1, prefix, f);
    if (have != prefix) {
        describe_errno(ferror(f) ? errno : EIO, msg, sizeof msg);
        status = fa_fail(FA_ERR_IO, fn, "cannot read '%s': %s", path, msg);
        goto done;
    }
    if ((status = fa_image_check_magic(magic, size, fn)) != FA_OK)
        goto done;
    buf = malloc(size);
    if (!buf) {
        status = fa_fail(FA_ERR_NOMEM, fn, "no memory for a %zu-byte file", size);
        goto done;
    }
    memcpy(buf, magic, prefix);
    have += fread(buf + prefix, 1, size - prefix, f);
    if (have != size) {
        if (ferror(f)) {
            describe_errno(errno, msg, sizeof msg);
            status = fa_fail(FA_ERR_IO, fn, "cannot read '%s': %s", path, msg);
        } else {
            status = fa_fail(FA_ERR_IO, fn, "'%s' shrank while being read (%zu of %zu bytes)",
                             path, have, size);
        }
        goto done;
    }
    status = fa_image_parse(buf, size, out, fn);
done:
    free(buf);
    fclose(f);
    return status;
}
