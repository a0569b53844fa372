/* pool.c -- window geometry shared by maxpool.c and avgpool.c. */
#include "pool.h"

int fa_pool_setup(fa_layer *ly, const char *fn, const char *what)
{
    const int32_t k = ly->kh, s = ly->stride;
    if (ly->units != 0 || ly->pad != 0 || ly->kw != k)
        return fa_fail(FA_ERR_ARG, fn, "%s: a pooling layer has square windows, no units "
                       "and no padding (got units %d, window %dx%d, padding %d)", what,
                       (int)ly->units, (int)k, (int)ly->kw, (int)ly->pad);
    if (k < 1)
        return fa_fail(FA_ERR_SIZE, fn, "%s: pooling window %d, expected >= 1", what, (int)k);
    if (s < 1)
        return fa_fail(FA_ERR_SIZE, fn, "%s: pooling stride %d, expected >= 1", what, (int)s);
    if (k > ly->in_h || k > ly->in_w)
        return fa_fail(FA_ERR_SIZE, fn, "%s: pooling window %d is larger than the input "
                       "%dx%d", what, (int)k, (int)ly->in_h, (int)ly->in_w);
    if ((ly->in_h - k) % s != 0 || (ly->in_w - k) % s != 0)
        return fa_fail(FA_ERR_SIZE, fn, "%s: windows of %d with stride %d do not tile the "
                       "input %dx%d exactly (the output size would not be an integer)", what,
                       (int)k, (int)s, (int)ly->in_h, (int)ly->in_w);
    ly->out_c = ly->in_c;
    ly->out_h = (ly->in_h - k) / s + 1;
    ly->out_w = (ly->in_w - k) / s + 1;
    ly->w_rows = 0;
    ly->w_cols = 0;
    return FA_OK;
}

void fa_pool_fans(const fa_layer *ly, double *fan_in, double *fan_out)
{
    (void)ly;
    *fan_in = 0;
    *fan_out = 0;
}

int64_t fa_pool_none(const fa_layer *ly)
{
    (void)ly;
    return 0;
}
