# plots.gp -- the gnuplot template of `fa-train --compare`.
#
# fa-train compiles this file in (see tools/meson.build), writes it to
# OUT/plots.gp after a few definitions, and runs gnuplot with OUT as its
# working directory.  So every file named here is relative to OUT, and no
# path from the command line ever appears in gnuplot's input: the
# definitions hold only fa-train's own rule names and numbers.
#
#   rules         rules with a file curve-<rule>.dat, e.g. "bp fa dfa"
#   titles        their names in the legends, e.g. "BP FA DFA"
#   align_rules   the rules whose angles to the BP update are plotted
#                 (all but bp, whose angle is 0 by definition)
#   align_titles  their names in the legend
#   n_align       hidden layers: columns 6 .. 5+n_align of a curve file
#
# Columns of curve-<rule>.dat (written by tools/plots.c):
#   epoch train_loss test_acc val_acc epoch_s align_l1 ... align_l<n_align>
# To redraw by hand: cd OUT && gnuplot plots.gp

set terminal pngcairo size 900,560 noenhanced
set grid
set key bottom right
set xlabel 'epoch'

set output 'accuracy.png'
set title 'Test accuracy per epoch'
set ylabel 'test accuracy (%)'
set xtics 1
# Epoch 0 (the untrained network, about 10%) is left out: it would squash
# the range where the rules differ.
plot for [i = 1:words(rules)] 'curve-'.word(rules, i).'.dat' \
     every ::1 using 1:3 with linespoints title word(titles, i)

if (words(align_rules) > 0 && n_align > 0) {
    set output 'alignment.png'
    set title "Angle between the rule's hidden-layer update and the backprop gradient"
    set ylabel 'angle (degrees)'
    set key top right
    set yrange [0:*]
    # 90 degrees: the update is orthogonal to the gradient
    set arrow from graph 0, first 90 to graph 1, first 90 nohead dashtype 2
    plot for [i = 1:words(align_rules)] for [l = 1:n_align] \
         'curve-'.word(align_rules, i).'.dat' using 1:(column(5 + l)) \
         with linespoints title sprintf('%s layer %d', word(align_titles, i), l)
}
