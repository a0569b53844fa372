# scaling.gp -- plots of bench_scaling's CSVs (run-scaling.sh calls it).
#   gnuplot -e "dir='results/scaling'; threads='1 2'" benchmarks/scaling.gp
# Reads DIR/width.csv, depth.csv, batch.csv; writes DIR/scaling-*.png.
# Columns: 1 study, 2 arch, 3 x, 4 rule, 5 optimizer, 6 threads, 7 batch,
# 8 ms_per_step, 9 epoch_s, 10 limit_ms, 11 limit_epoch_s,
# 12 fraction_of_limit, 13 gflops, 14 flops, 15 dfa_over_bp,
# 16 dfa_over_bp_pred.

if (!exists("dir")) dir = "results/scaling"
if (!exists("threads")) threads = "1 2"
rules = "bp fa dfa"

set datafile separator ","
set datafile missing "nan"
set terminal pngcairo size 1400,560 font ",10"
set key left top font ",9"
set grid
color(r) = r eq "bp" ? "#1f77b4" : r eq "fa" ? "#2ca02c" : "#d62728"
dash(t) = t == 1 ? 1 : 2
sel(r, t, v) = (strcol(4) eq r && $6 == t) ? v : NaN

# Two panels for one study: epoch time with the limit, and the fraction.
# xcol: the x column; xlabel_ and title_ from the caller; filter extra
# (for the batch study, the network) through arch_sel.
arch_ok(a) = (arch_sel eq "" || strcol(2) eq arch_sel)

exists_file(f) = system(sprintf("[ -r '%s' ] && echo 1 || echo 0", f)) + 0

do for [study in "width depth"] {
    file = sprintf("%s/%s.csv", dir, study)
    if (!exists_file(file)) { continue }
    set output sprintf("%s/scaling-%s.png", dir, study)
    arch_sel = ""
    set multiplot layout 1,2 title (study eq "width" ? \
        "784-W-10 (one hidden layer), batch 128, SGD" : \
        "784-240xD-10 (D hidden layers of 240), batch 128, SGD")
    set logscale xy
    set xlabel (study eq "width" ? "hidden width W" : "hidden layers D")
    set ylabel "epoch time (s, 60000 samples)"
    set title "step (solid / dashed: 1 / 2 threads) and its GEMM limit (points)"
    plot for [r in rules] for [t in threads] file \
            using 3:(sel(r, t+0, $9)) smooth unique with linespoints lc rgb color(r) dt dash(t+0) pt 7 ps 0.6 \
            title sprintf("%s, %s thr", r, t), \
         for [r in "bp dfa"] for [t in threads] file \
            using 3:(sel(r, t+0, $11)) with points lc rgb color(r) pt 6 ps 1.2 \
            title sprintf("limit %s, %s thr", r eq "bp" ? "bp/fa" : r, t)
    unset logscale y
    set ylabel "fraction of the GEMM limit (limit / step)"
    set title "1.0 = the step costs only its GEMMs"
    set yrange [0:1.5]
    plot for [r in rules] for [t in threads] file \
            using 3:(sel(r, t+0, $12)) smooth unique with linespoints lc rgb color(r) dt dash(t+0) pt 7 ps 0.6 \
            title sprintf("%s, %s thr", r, t), 1 with lines lc rgb "black" dt 3 notitle
    set autoscale y
    unset logscale
    unset multiplot
}

# batch: both networks, epoch time and fraction
file = sprintf("%s/batch.csv", dir)
if (exists_file(file)) {
set terminal pngcairo size 1400,1000 font ",10"
set output sprintf("%s/scaling-batch.png", dir)
set multiplot layout 2,2 title "batch size, SGD (epoch = 60000 samples)"
do for [net in "784-1000-10 784-240x7-10"] {
    arch_sel = net
    set logscale xy
    set xrange [10:1500]
    set xlabel "batch"
    set ylabel "epoch time (s)"
    set title sprintf("%s: step (lines) and GEMM limit (points)", net)
    plot for [r in rules] for [t in threads] file \
            using 3:((arch_ok(0) ? sel(r, t+0, $9) : NaN)) smooth unique with linespoints lc rgb color(r) \
            dt dash(t+0) pt 7 ps 0.6 title sprintf("%s, %s thr", r, t), \
         for [r in "bp dfa"] for [t in threads] file \
            using 3:((arch_ok(0) ? sel(r, t+0, $11) : NaN)) with points lc rgb color(r) pt 6 \
            ps 1.2 title sprintf("limit %s, %s thr", r eq "bp" ? "bp/fa" : r, t)
    unset logscale y
    set ylabel "fraction of the GEMM limit"
    set title sprintf("%s: limit / step", net)
    set yrange [0:1.5]
    plot for [r in rules] for [t in threads] file \
            using 3:((arch_ok(0) ? sel(r, t+0, $12) : NaN)) smooth unique with linespoints lc rgb color(r) \
            dt dash(t+0) pt 7 ps 0.6 title sprintf("%s, %s thr", r, t), \
         1 with lines lc rgb "black" dt 3 notitle
    set autoscale y
    unset logscale
}
unset multiplot
set autoscale x
}

# DFA/BP against depth, beside the FLOP-count prediction
file = sprintf("%s/depth.csv", dir)
if (exists_file(file)) {
set terminal pngcairo size 900,600 font ",10"
set output sprintf("%s/scaling-dfa-bp.png", dir)
set logscale x
set xlabel "hidden layers D (784-240xD-10, batch 128)"
set ylabel "DFA step / BP step"
set title "DFA/BP: measured (median of per-repeat ratios) and the FLOP prediction"
set yrange [0:1.3]
set key right top
plot for [t in threads] file using 3:(sel("dfa", t+0, $15)) smooth unique with linespoints \
        lc rgb "#d62728" dt dash(t+0) pt 7 title sprintf("measured, %s thread(s)", t), \
     file using 3:(strcol(4) eq "dfa" && $6 == (word(threads, 1)+0) ? $16 : NaN) \
        smooth unique with lines lc rgb "black" lw 2 title "FLOP prediction"
unset output
}
