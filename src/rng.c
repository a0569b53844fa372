/* rng.c -- xoshiro256** (Blackman & Vigna), seeded by splitmix64.  The state
 * lives in the handle: no globals, and a saved model carries it. */
#include <math.h>

#include "internal.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void fa_rng_seed(fa_rng *rng, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t fa_rng_next(fa_rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float fa_rng_uniform(fa_rng *rng)
{
    /* top 24 bits: every value k/2^24 is an exact float in [0, 1) */
    return (float)(fa_rng_next(rng) >> 40) * (1.0f / 16777216.0f);
}

float fa_rng_normal(fa_rng *rng)
{
    /* Box-Muller in double; u1 in (0, 1] so log() is finite */
    double u1 = ((double)(fa_rng_next(rng) >> 11) + 1.0) * (1.0 / 9007199254740992.0);
    double u2 = (double)(fa_rng_next(rng) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}
