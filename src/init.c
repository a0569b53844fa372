/* init.c -- forward-weight and feedback-matrix initialisation, drawn from
 * the handle's RNG. */
#include <float.h>
#include <math.h>

#include "internal.h"

void fa_fill_random(fa_rng *rng, int32_t dist, double scale, float *p, int64_t count)
{
    const float s = (float)scale;
    for (int64_t i = 0; i < count; i++) {
        switch (dist) {
        case FA_DIST_GAUSSIAN:
            p[i] = s * fa_rng_normal(rng);
            break;
        case FA_DIST_SIGN:
            p[i] = (fa_rng_next(rng) >> 63) ? s : -s;
            break;
        default: /* FA_DIST_UNIFORM: U[-s, s] */
            p[i] = s * (2.0f * fa_rng_uniform(rng) - 1.0f);
            break;
        }
    }
}

/* A Box-Muller draw is sqrt(-2 ln u1) cos(.) with u1 >= 2^-53, so its
 * magnitude stays below sqrt(2 * 53 ln 2) = 8.5717; the scale times that
 * must be a float. */
#define FA_GAUSS_MAX 8.58

int fa_scale_valid(int32_t dist, double scale)
{
    const float f = (float)scale;
    if (scale == 0.0)
        return 1;
    if (!(isfinite(scale) && isfinite(f) && f >= FLT_MIN))
        return 0;
    return dist != FA_DIST_GAUSSIAN || (double)f * FA_GAUSS_MAX <= (double)FLT_MAX;
}

void fa_init_weights_fill(fa_rng *rng, int32_t scheme, int32_t act, float *w, int64_t count,
                          double fan_in, double fan_out)
{
    if (scheme == FA_INIT_DEFAULT)
        scheme = (act == FA_ACT_RELU || act == FA_ACT_LEAKY_RELU) ? FA_INIT_HE_UNIFORM
                                                                   : FA_INIT_XAVIER_UNIFORM;
    switch (scheme) {
    case FA_INIT_XAVIER_UNIFORM:
        fa_fill_random(rng, FA_DIST_UNIFORM, sqrt(6.0 / (fan_in + fan_out)), w, count);
        break;
    case FA_INIT_XAVIER_NORMAL:
        fa_fill_random(rng, FA_DIST_GAUSSIAN, sqrt(2.0 / (fan_in + fan_out)), w, count);
        break;
    case FA_INIT_HE_UNIFORM:
        fa_fill_random(rng, FA_DIST_UNIFORM, sqrt(6.0 / fan_in), w, count);
        break;
    case FA_INIT_HE_NORMAL:
        fa_fill_random(rng, FA_DIST_GAUSSIAN, sqrt(2.0 / fan_in), w, count);
        break;
    default: /* FA_INIT_ZERO */
        for (int64_t i = 0; i < count; i++)
            w[i] = 0.0f;
        break;
    }
}
