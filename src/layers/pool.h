/* pool.h -- what the two pooling kinds share: the window geometry. */
#ifndef FA_POOL_H
#define FA_POOL_H

#include "internal.h"

/* Output shape of size x size windows (ly->kh) moved by ly->stride, no
 * padding; the output must cover the input exactly. */
int fa_pool_setup(fa_layer *ly, const char *fn, const char *what);
void fa_pool_fans(const fa_layer *ly, double *fan_in, double *fan_out);
int64_t fa_pool_none(const fa_layer *ly);

#endif
