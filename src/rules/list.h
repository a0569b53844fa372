/* list.h -- the learning rules: one row each, in fa_rule order.
 * FA_RULE(enum value, descriptor defined in src/rules/<file>.c)
 * A new rule is its own file plus one row here (and its value and doc in
 * include/feedbackalign.h). */
FA_RULE(FA_RULE_BP, fa_rule_bp)
FA_RULE(FA_RULE_FA, fa_rule_fa)
FA_RULE(FA_RULE_DFA, fa_rule_dfa)
FA_RULE(FA_RULE_USF, fa_rule_usf)
FA_RULE(FA_RULE_BRSF, fa_rule_brsf)
FA_RULE(FA_RULE_FRSF, fa_rule_frsf)
FA_RULE(FA_RULE_KP, fa_rule_kp)
FA_RULE(FA_RULE_WM, fa_rule_wm)
FA_RULE(FA_RULE_DRTP, fa_rule_drtp)
FA_RULE(FA_RULE_SDFA, fa_rule_sdfa)
FA_RULE(FA_RULE_SHALLOW, fa_rule_shallow)
