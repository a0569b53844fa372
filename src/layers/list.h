/* list.h -- the layer kinds: one row each, in fa_layer_kind order.
 * FA_LAYER_KIND(enum value, descriptor defined in src/layers/<file>.c)
 * A new kind is its own file plus one row here (and its value in
 * include/feedbackalign.h). */
FA_LAYER_KIND(FA_LAYER_DENSE, fa_layer_dense)
FA_LAYER_KIND(FA_LAYER_CONV2D, fa_layer_conv2d)
FA_LAYER_KIND(FA_LAYER_MAXPOOL, fa_layer_maxpool)
FA_LAYER_KIND(FA_LAYER_AVGPOOL, fa_layer_avgpool)
