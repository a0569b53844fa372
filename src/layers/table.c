/* table.c -- the table of layer kinds, built from list.h. */
#include "internal.h"

#define FA_LAYER_KIND(value, desc) extern const fa_layer_ops desc;
#include "list.h"
#undef FA_LAYER_KIND

const fa_layer_ops *const fa_layer_table[FA_N_LAYER_KINDS] = {
#define FA_LAYER_KIND(value, desc) [value] = &desc,
#include "list.h"
#undef FA_LAYER_KIND
};
