"""``benchbed merge``: records of many inputs (CI shards) as one run in one file."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..spec import SpecError
from ..validate import arg, check_run_id
from .common import EXIT_OK, load_table

__all__ = ["add_parser", "main"]


def add_parser(sub: Any) -> None:
    merge = sub.add_parser("merge", help="join records (e.g. CI shards) into one run, one parquet file",
                           description="Read records from RESULTS, give them one run id and write them as one "
                                       "compacted parquet file under OUTPUT/<run-id>/.")
    merge.add_argument("results", nargs="+", metavar="RESULTS", help="results folders or files")
    merge.add_argument("-o", "--output", required=True, metavar="DIR", help="results folder to write into")
    merge.add_argument("--run-id", type=arg(check_run_id, "--run-id"),
                       help="id of the merged run: letters, digits, '.', '_', '-' (default: new)")



def main(args: argparse.Namespace) -> int:
    from ..engine import new_run_id
    from ..store import check_writable, merge_runs

    problem = check_writable(args.output)
    if problem:
        raise SpecError(problem)
    table = load_table(args.results, "results")
    runs = len(set(table.column("run_id").to_pylist()))
    run_id = args.run_id or new_run_id()
    path, kept, dropped = merge_runs(table, args.output, run_id)
    if dropped:
        print(f"benchbed: warning: {dropped} record(s) measured the same case and pass as another input's; "
              f"keeping the first", file=sys.stderr)
    print(f"merged {kept} records from {runs} input run(s) into run {run_id}: {path}")
    return EXIT_OK


