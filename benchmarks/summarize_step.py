#!/usr/bin/python3
"""Tables of bench_step's CSV: for each network, batch and thread count, a
rule x optimiser table of step/limit (or another column), and the rows that
miss the aims.

  benchmarks/summarize_step.py results/bench_step.csv [--column step_over_limit]
  build/benchmarks/bench_step | benchmarks/summarize_step.py -

Aims (benchmarks/README.md): step within 1.05x of the GEMM limit for dense
networks at 1 thread, 1.10x at 2, and 1.3x for the conv (LeNet) step.
Plain Python, no NumPy.
"""

import argparse
import csv
import sys


def aim(arch, threads):
    if "x28" in arch or arch == "lenet" or "c" in arch.split("-")[1:2][0]:
        return 1.3
    return 1.05 if threads == 1 else 1.10


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("csv", help="bench_step's CSV, or - for stdin")
    ap.add_argument("--column", default="step_over_limit",
                    help="ms_per_step, gflops, limit_ms, fraction_of_limit or "
                         "step_over_limit [step_over_limit]")
    args = ap.parse_args()
    f = sys.stdin if args.csv == "-" else open(args.csv)
    rows = list(csv.DictReader(f))
    if not rows:
        print("no rows")
        return 1
    groups = {}
    for r in rows:
        key = (r["arch"], int(r["threads"]), int(r["batch"]))
        groups.setdefault(key, []).append(r)
    for (arch, threads, batch), rs in groups.items():
        rules = list(dict.fromkeys(r["rule"] for r in rs))
        opts = list(dict.fromkeys(r["optimizer"] for r in rs))
        cell = {(r["rule"], r["optimizer"]): float(r[args.column]) for r in rs}
        a = aim(arch, threads)
        print("%s, batch %d, %d thread(s): %s%s" % (
            arch, batch, threads, args.column,
            "  (aim <= %.2f; * misses it)" % a if args.column == "step_over_limit"
            else ""))
        print("  %-8s %-6s" % ("rule", "hidden") +
              "".join("%10s" % o for o in opts))
        hidden = {r["rule"]: r["hidden"] for r in rs}
        for rule in rules:
            line = "  %-8s %-6s" % (rule, hidden[rule])
            for o in opts:
                v = cell.get((rule, o))
                if v is None:
                    line += "%10s" % "-"
                else:
                    mark = "*" if args.column == "step_over_limit" and v > a else " "
                    line += "%9.2f%s" % (v, mark)
            print(line)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
