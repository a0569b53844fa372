/* shallow.c -- shallow learning: only the last layer learns, on top of
 * the fixed random features of the hidden layers (the baseline every
 * feedback-alignment paper reports). */
#include "internal.h"

const fa_rule_desc fa_rule_shallow = {
    .name = "shallow",
    .description = "only the output layer learns; hidden layers stay as initialised",
    .feedback = FA_FEEDBACK_NONE,
    .hidden = FA_HIDDEN_NONE,
    .trains_hidden = 0,
};
