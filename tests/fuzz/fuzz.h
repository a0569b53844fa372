/*
 * fuzz.h -- what every harness of tests/fuzz shares: the libFuzzer entry
 * point (declared here because the project builds with
 * -Wmissing-prototypes) and small helpers for the private temporary
 * directory that file-based harnesses use.
 *
 * A harness is one file fuzz_<target>.c defining LLVMFuzzerTestOneInput.
 * The same object is linked two ways: with libFuzzer's main
 * (-fsanitize=fuzzer, the fuzz build) and with replay.c's main (every
 * build with tests, to replay the corpus and the crash inputs).  So a
 * harness must not depend on which main it has: no global state that
 * survives an input except the temporary directory, no output unless
 * something is wrong.
 */
#ifndef FA_FUZZ_H
#define FA_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* libFuzzer's entry point: called once per input.  Returns 0; a finding is
 * reported by crashing (sanitizer report or fuzz_check's abort). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Enough for any temporary path built by fuzz_path. */
#define FUZZ_PATH_MAX 4096

/* Write into buf the path of `name` inside this process's private
 * temporary directory, which is created on first use and removed at exit.
 * The directory is made under $TMPDIR, else /dev/shm (fa_net_save fsyncs,
 * which on a disk would dominate the run time), else /tmp.  Aborts if that
 * fails: without it no input can be tested. */
void fuzz_path(char *buf, size_t len, const char *name);

/* Write size bytes to path, replacing it.  Aborts on failure (an
 * environment problem, not a finding, but nothing can go on without it). */
void fuzz_write_file(const char *path, const void *data, size_t size);

/* Read the whole of path into a new buffer (free it); aborts on failure. */
void *fuzz_read_file(const char *path, size_t *size);

/* An invariant of the code under test: if cond is false, print the message
 * and abort, which libFuzzer records as a crash with the input.  The
 * message's text up to its first ':' names the invariant and nothing else
 * (details after it): tools/run-tests.sh recognises a known open bug found
 * again by that part of the message. */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void fuzz_check(int cond, const char *fmt, ...);

#endif /* FA_FUZZ_H */
