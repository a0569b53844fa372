/*
 * gen-synth -- write a small synthetic 10-class image data set in IDX form,
 * the way fa-train expects it, for the end-to-end tests:
 *   gen-synth DIR N_TRAIN N_TEST [SEED]
 * Each class has a random 8x8 prototype; a sample is its prototype plus
 * noise.  Separable but not trivially (noise is large), so a network that
 * learns is clearly above the 10% of chance and one that does not is not.
 * The training files are gzip-compressed and the test files plain, so one
 * run exercises both readers.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#define SIDE 8
#define PIX (SIDE * SIDE)
#define CLASSES 10

static uint64_t
next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double
uniform(uint64_t *s)
{
    return (double)(next(s) >> 11) * 0x1.0p-53;
}

static void
header(unsigned char *h, int ndims, const uint32_t *dims)
{
    h[0] = 0;
    h[1] = 0;
    h[2] = 0x08;
    h[3] = (unsigned char)ndims;
    for (int i = 0; i < ndims; i++) {
        h[4 + 4 * i] = (unsigned char)(dims[i] >> 24);
        h[5 + 4 * i] = (unsigned char)(dims[i] >> 16);
        h[6 + 4 * i] = (unsigned char)(dims[i] >> 8);
        h[7 + 4 * i] = (unsigned char)dims[i];
    }
}

static int
put(const char *path, int gz, const unsigned char *a, size_t na,
    const unsigned char *b, size_t nb)
{
    if (gz) {
        gzFile f = gzopen(path, "wb");
        if (f == NULL || gzwrite(f, a, (unsigned)na) != (int)na ||
            gzwrite(f, b, (unsigned)nb) != (int)nb || gzclose(f) != Z_OK) {
            fprintf(stderr, "gen-synth: cannot write %s\n", path);
            return 1;
        }
        return 0;
    }
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(a, 1, na, f) != na || fwrite(b, 1, nb, f) != nb ||
        fclose(f) != 0) {
        fprintf(stderr, "gen-synth: cannot write %s\n", path);
        return 1;
    }
    return 0;
}

static int
write_set(const char *dir, const char *prefix, int gz, uint32_t n,
          double proto[CLASSES][PIX], uint64_t *rng)
{
    unsigned char *img = malloc((size_t)n * PIX), *lab = malloc(n);
    if (img == NULL || lab == NULL) {
        fprintf(stderr, "gen-synth: out of memory\n");
        return 1;
    }
    for (uint32_t i = 0; i < n; i++) {
        int c = (int)(next(rng) % CLASSES);
        lab[i] = (unsigned char)c;
        for (int k = 0; k < PIX; k++) {
            /* Noise: sum of 4 uniforms, roughly normal, sd about 0.35. */
            double noise = uniform(rng) + uniform(rng) + uniform(rng) +
                           uniform(rng) - 2.0;
            double v = proto[c][k] + 0.6 * noise;
            v = v < 0 ? 0 : (v > 1 ? 1 : v);
            img[(size_t)i * PIX + (size_t)k] = (unsigned char)(v * 255.0 + 0.5);
        }
    }
    char path[4096];
    unsigned char h[16];
    uint32_t idims[3] = {n, SIDE, SIDE};
    int rc = 0;
    header(h, 3, idims);
    snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte%s", dir, prefix,
             gz ? ".gz" : "");
    rc |= put(path, gz, h, 16, img, (size_t)n * PIX);
    header(h, 1, &n);
    snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte%s", dir, prefix,
             gz ? ".gz" : "");
    rc |= put(path, gz, h, 8, lab, n);
    free(img);
    free(lab);
    return rc;
}

int
main(int argc, char **argv)
{
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: gen-synth DIR N_TRAIN N_TEST [SEED]\n");
        return 2;
    }
    long ntr = strtol(argv[2], NULL, 10), nte = strtol(argv[3], NULL, 10);
    uint64_t seed = argc == 5 ? strtoull(argv[4], NULL, 10) : 7;
    if (ntr < 1 || nte < 1 || ntr > 1000000 || nte > 1000000) {
        fprintf(stderr, "gen-synth: counts must be in 1..1000000\n");
        return 2;
    }
    double proto[CLASSES][PIX];
    uint64_t rng = seed;
    for (int c = 0; c < CLASSES; c++)
        for (int k = 0; k < PIX; k++)
            proto[c][k] = uniform(&rng);
    if (write_set(argv[1], "train", 1, (uint32_t)ntr, proto, &rng) ||
        write_set(argv[1], "t10k", 0, (uint32_t)nte, proto, &rng))
        return 1;
    return 0;
}
