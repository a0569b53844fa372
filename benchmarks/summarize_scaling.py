#!/usr/bin/python3
"""A text summary of bench_scaling's CSVs: per study, thread count and
point, the fraction of the GEMM limit of BP / FA / DFA, their epoch
seconds with the limit's (BP, DFA) beside, and DFA/BP measured against the
FLOP prediction.  run-scaling.sh prints it after the plots.

  benchmarks/summarize_scaling.py results/scaling
Plain Python, no NumPy.
"""

import csv
import os
import sys


def main():
    if len(sys.argv) != 2:
        print("usage: %s DIR (with width.csv, depth.csv, batch.csv)" % sys.argv[0])
        return 2
    for study in ("width", "depth", "batch"):
        path = os.path.join(sys.argv[1], study + ".csv")
        if not os.path.exists(path):
            continue
        rows = list(csv.DictReader(open(path)))
        d = {(r["arch"], r["x"], r["rule"], r["threads"]): r for r in rows}
        print("== %s: fraction of limit bp/fa/dfa | epoch s bp/fa/dfa (limit bp, dfa)"
              " | DFA/BP measured (FLOP prediction)" % study)
        keys = sorted({(r["arch"], r["x"], r["threads"]) for r in rows},
                      key=lambda k: (int(k[2]), k[0] if study == "batch" else "",
                                     float(k[1])))
        for a, x, t in keys:
            def g(rule, col):
                r = d.get((a, x, rule, t))
                return float(r[col]) if r and r[col] not in ("", "nan") else float("nan")
            print("  thr %s %-15s x=%-5s  %.2f %.2f %.2f | %7.3f %7.3f %7.3f (%7.3f %7.3f)"
                  " | %.3f (%.3f)" % (
                      t, a, x, g("bp", "fraction_of_limit"), g("fa", "fraction_of_limit"),
                      g("dfa", "fraction_of_limit"), g("bp", "epoch_s"), g("fa", "epoch_s"),
                      g("dfa", "epoch_s"), g("bp", "limit_epoch_s"),
                      g("dfa", "limit_epoch_s"), g("dfa", "dfa_over_bp"),
                      g("dfa", "dfa_over_bp_pred")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
