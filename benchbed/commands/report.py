"""``benchbed report``: records in, one self-contained HTML page out."""

from __future__ import annotations

import argparse
import time
from typing import Any

from ..spec import SpecError
from ..validate import arg, output_file
from .common import EXIT_OK, load

__all__ = ["add_parser", "main"]


def add_parser(sub: Any) -> None:
    rep = sub.add_parser("report", help="turn runs into one self-contained HTML report",
                         description="Turn one or more runs into a single self-contained HTML file (inline CSS, "
                                     "charts embedded, no network, no JavaScript). The newest run leads; several "
                                     "runs add a history section; --baseline/--current add a side-by-side "
                                     "comparison.")
    rep.add_argument("results", nargs="*", metavar="RESULTS", help="results folders or parquet files "
                                                                   "(default: results/, or --current)")
    rep.add_argument("-o", "--output", metavar="FILE", default="reports/benchbed-report.html",
                     type=arg(output_file, "report -o"),
                     help="HTML file to write (default: reports/benchbed-report.html)")
    rep.add_argument("--baseline", metavar="RESULTS", help="baseline run(s): folder or parquet file")
    rep.add_argument("--current", metavar="RESULTS", help="current run(s) to compare with --baseline")
    rep.add_argument("--title", default="benchbed report", help="page title (default: benchbed report)")
    rep.add_argument("--suite", metavar="FILE", action="append", default=[],
                     help="load the plug-ins a suite file registers, for the sections they add (a plug-in "
                          "scenario's own section; installed plug-ins load by their entry point); repeatable")



def main(args: argparse.Namespace) -> int:
    if bool(args.baseline) != bool(args.current):
        raise SpecError("--baseline and --current go together")
    from ..suite import load_suite

    for suite in args.suite:
        load_suite(suite)
    paths = args.results or ([args.current] if args.current else ["results"])
    df = load(paths, "results")
    baseline = load([args.baseline], "baseline") if args.baseline else None
    current = load([args.current], "current") if args.current else None

    from ..report import build_report, write_report

    start = time.perf_counter()
    page = build_report(df, title=args.title, baseline=baseline, current=current)
    path = write_report(page, args.output)
    print(f"report: {path} ({len(df)} records, {len(page) / 1e6:.1f} MB, {time.perf_counter() - start:.1f}s)")
    return EXIT_OK


