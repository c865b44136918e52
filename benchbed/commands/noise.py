"""``benchbed noise``: calibrate this machine. Run a matrix as K interleaved A/A passes (or read
runs already made), and say per case and metric how much it moves between repetitions, the
smallest change the gate can see with 1, 3 and 5 passes, and the threshold to gate it at; write
those thresholds as a file ``compare`` and ``history`` take (``--thresholds FILE``)."""

from __future__ import annotations

import argparse
from typing import Any

from ..atomic import write_text_atomic
from ..spec import SpecError
from ..validate import arg, output_file
from .common import EXIT_OK, EXIT_UNJUDGED, load, out

__all__ = ["add_parser", "main"]


def add_parser(sub: Any) -> None:
    from .run import add_run_options

    p = sub.add_parser("noise", help="calibrate this machine: A/A passes, each case's spread, the change the gate "
                                     "can see, and thresholds to gate at",
                       description="Run the matrix (the run options below) as --passes A/A repetitions (default: 5) "
                                   "into --results, or read --from RESULTS, then print per case and metric (median "
                                   "latency, latency / host yardstick, ratio to the reference) the spread between "
                                   "repetitions, the minimum detectable change at 95%% power with 1, 3 and 5 passes, "
                                   "and a recommended threshold; write the thresholds to --write FILE for compare "
                                   "--thresholds. Exit 3 when no case has 3 repetitions.")
    add_run_options(p)
    p.set_defaults(passes=5)
    for action in p._actions:  # the run's own help says its default of 1
        if action.dest == "passes":
            action.help = "A/A repetitions: every case measured in N interleaved passes (default: 5; at least 3)"
    p.add_argument("--from", dest="from_results", action="append", metavar="RESULTS",
                   help="analyse these records instead of running (a run of 3+ passes, or 3+ runs of the same "
                        "cases); repeatable")
    p.add_argument("--write", metavar="FILE", default="benchbed-thresholds.txt", type=arg(output_file, "--write"),
                   help="thresholds file to write (default: benchbed-thresholds.txt)")


def main(args: argparse.Namespace) -> int:
    from ..regress.noise import MIN_REPEATS, noise_table, thresholds_text

    if args.from_results:
        df, source = load(args.from_results, "results"), ", ".join(args.from_results)
    else:
        if args.passes < MIN_REPEATS:
            raise SpecError(f"noise needs --passes {MIN_REPEATS} or more (A/A repetitions), got {args.passes}")
        from .plan import make_plan
        from .run import run_plan

        _, run_dir = run_plan(make_plan(args), args.results, quiet=args.quiet, launcher_args=args)
        df, source = load([run_dir], "results"), run_dir
    table = noise_table(df)
    if table.empty:
        out(f"noise: no case has {MIN_REPEATS} or more usable repetitions in {source}: nothing to calibrate")
        return EXIT_UNJUDGED
    out(_console(table))
    write_text_atomic(args.write, thresholds_text(table, source))
    out(f"\nthresholds for {table['label'].nunique()} cases written to {args.write} (compare --thresholds "
        f"{args.write})")
    return EXIT_OK


def _console(table: Any) -> str:
    head = ("case", "metric", "reps", "spread", "MDE 1 pass", "MDE 3", "MDE 5", "threshold")
    names = {"median": "latency", "host": "latency/host", "ratio": "ratio"}
    body = [(r["label"], names[r["metric"]], str(r["repeats"]), f"{100 * r['spread']:.2f}%",
             f"{100 * r['mde_1']:.1f}%", f"{100 * r['mde_3']:.1f}%", f"{100 * r['mde_5']:.1f}%",
             f"{100 * r['threshold']:.1f}%") for _, r in table.iterrows()]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    line = lambda cells: "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    return "\n".join([line(head), line(tuple("-" * w for w in widths))] + [line(b) for b in body]
                     + ["", "spread: sd of the log of each repetition's value; MDE: the smallest change detected with "
                            "95% power at alpha 0.05 with that many passes a side"])
