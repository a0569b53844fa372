/* fa.c -- feedback alignment (Lillicrap et al. 2016): the error goes back
 * layer by layer through fixed random matrices F_l of W_l's shape. */
#include "internal.h"

const fa_rule_desc fa_rule_fa = {
    .name = "fa",
    .description = "feedback alignment (Lillicrap et al. 2016): fixed random matrices in "
                   "place of W^T",
    .feedback = FA_FEEDBACK_LAYER,
    .stored = 1,
    .hidden = FA_HIDDEN_CHAIN,
    .back = FA_BACK_STORED,
    .trains_hidden = 1,
};
