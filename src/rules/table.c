/* table.c -- the table of learning rules, built from list.h. */
#include "internal.h"

#define FA_RULE(value, desc) extern const fa_rule_desc desc;
#include "list.h"
#undef FA_RULE

const fa_rule_desc *const fa_rule_table[FA_N_RULES] = {
#define FA_RULE(value, desc) [value] = &desc,
#include "list.h"
#undef FA_RULE
};
