/* bp.c -- exact backpropagation: the error goes back through W itself. */
#include "internal.h"

const fa_rule_desc fa_rule_bp = {
    .name = "bp",
    .description = "backpropagation: errors return through the transposed forward weights",
    .feedback = FA_FEEDBACK_NONE,
    .hidden = FA_HIDDEN_CHAIN,
    .back = FA_BACK_WEIGHTS,
    .trains_hidden = 1,
};
