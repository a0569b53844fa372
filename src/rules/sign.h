/* sign.h -- the sign-concordant feedback shared by USF, BRSF and FRSF:
 * a backward matrix with the signs of W and magnitudes of its own. */
#ifndef FA_RULES_SIGN_H
#define FA_RULES_SIGN_H

#include "internal.h"

/* dst = |mag| .* sign(w) (mag != NULL) or s * sign(w), sign(0) = 0, for the
 * n entries of one layer. */
static inline void fa_sign_concordant(const float *w, const float *mag, float s, float *dst,
                                      int64_t n)
{
    if (mag) {
        for (int64_t i = 0; i < n; i++) {
            const float a = mag[i] < 0.0f ? -mag[i] : mag[i];
            dst[i] = w[i] > 0.0f ? a : (w[i] < 0.0f ? -a : 0.0f);
        }
    } else {
        for (int64_t i = 0; i < n; i++)
            dst[i] = w[i] > 0.0f ? s : (w[i] < 0.0f ? -s : 0.0f);
    }
}

#endif
