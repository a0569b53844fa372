/* init.c -- forward-weight and feedback-matrix initialisation, drawn from
 * the handle's RNG. */
#include <math.h>

#include "internal.h"

void fa_fill_random(fa_rng *rng, int32_t dist, double scale, float *p,
                    int64_t count)
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

void fa_init_weights_layer(fa_rng *rng, int32_t scheme, int32_t act,
                           float *w, int32_t rows, int32_t cols)
{
    /* w is (rows, cols) = (fan_out, fan_in) */
    const double fan_in = cols, fan_out = rows;
    const int64_t count = (int64_t)rows * cols;
    if (scheme == FA_INIT_DEFAULT)
        scheme = (act == FA_ACT_RELU || act == FA_ACT_LEAKY_RELU)
                     ? FA_INIT_HE_UNIFORM : FA_INIT_XAVIER_UNIFORM;
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
