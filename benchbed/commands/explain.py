"""``benchbed explain``: why a runner is slower (or faster) than its reference, cell by cell: the
cell is timed as ``run`` times it, then each runner is profiled outside the timed window, and the
measured gap is taken apart into stages, functions and operators (`benchbed.explain`). A case
already measured with ``--explain`` is explained from its records, without measuring again."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from typing import Any

from ..spec import SpecError
from ..validate import arg
from .common import EXIT_OK, json_target, load_table, out
from .run import add_run_options, run_plan

__all__ = ["add_parser", "main"]


def add_parser(sub: Any) -> None:
    p = sub.add_parser("explain", help="why a runner is slower than its reference: the measured gap taken apart "
                                       "into stages, functions and operators",
                       description="Time the cell(s) the options give as `run` does, then profile each runner "
                                   "outside the timed window (stage clock times, a sampling profile of the Python "
                                   "functions, torch.profiler operators) and take the measured gap apart: stages, "
                                   "the functions and operators that moved, and what stays unexplained. With "
                                   "--case ID --from RESULTS, a case already measured (with --explain) is explained "
                                   "from its records; one measured without it is measured again. docs/explain.md")
    src = p.add_argument_group("a case already measured")
    src.add_argument("--case", metavar="ID", help="its case_id (any runner's) or pair_id")
    src.add_argument("--from", dest="source", metavar="RESULTS", help="the results folder or file holding --case")
    p.add_argument("--json", type=arg(json_target, "--json"), metavar="FILE",
                   help="write the explanations as JSON to FILE (- for stdout, instead of the console lines)")
    add_run_options(p, explain_flag=False)
    p.set_defaults(explain="all")


def _recorded(case: str, source: str) -> list[dict[str, Any]]:
    """The records of `case`'s cell in the newest run of `source` that holds it."""
    table = load_table([source], "--from").to_pandas()
    hits = table[(table["case_id"] == case) | (table["pair_id"] == case)]
    if hits.empty:
        raise SpecError(f"--case {case!r} is not in {source!r} (it holds {table['case_id'].nunique()} cases)")
    newest = hits.sort_values("started_at").iloc[-1]
    cell = table[(table["run_id"] == newest["run_id"]) & (table["pair_id"] == newest["pair_id"])]
    from ..explain import clean_record

    return [clean_record(r) for r in cell.to_dict("records")]


def _axes_from(records: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """`args` narrowed to the recorded cell: its task, model, device, precision, shape and runners."""
    rec = records[0]
    scenario = rec.get("scenario") or "latency"
    if scenario != "latency":
        raise SpecError(f"--case {rec['case_id']}: explain measures single calls (the latency scenario); this case's "
                        f"scenario is {scenario}")
    args.task, args.model, args.device, args.dtype = (rec["task"],), (rec["model"],), (rec["device"],), (rec["dtype"],)
    args.batch_size, args.seq_len = (str(rec["batch_size"]),), (str(rec["seq_len"]),)
    args.runner = tuple(sorted({str(r["runner"]) for r in records}))
    args.reference = rec.get("reference") or args.reference
    if rec.get("new_tokens"):
        args.new_tokens = int(rec["new_tokens"])


def main(args: argparse.Namespace) -> int:
    from ..explain import explain_records, explanation_lines

    if (args.case is None) != (args.source is None):
        raise SpecError("--case and --from go together: the case to explain, and the results that hold it")
    code = EXIT_OK
    records: list[dict[str, Any]] | None = None
    if args.case:
        recorded = _recorded(args.case, args.source)
        if any(r.get("explain_status") for r in recorded):
            records = recorded
            if args.json != "-":
                for e in explain_records(records):
                    out("\n".join(explanation_lines(e)))
        else:
            _axes_from(recorded, args)
    if records is None:
        from ..store import read_results
        from .plan import make_plan

        plan = make_plan(args)
        quiet = args.quiet or args.json == "-"
        with contextlib.redirect_stdout(sys.stderr) if args.json == "-" else contextlib.nullcontext():
            code, run_dir = run_plan(plan, args.results, quiet=quiet, launcher_args=args)
        frame = read_results(run_dir)
        records = frame.to_dict("records")  # explain_records takes them as pandas gives them
    if args.json:
        data = {"explanations": [e.as_dict() for e in explain_records(records)]}
        text = json.dumps(data, indent=2, default=str)
        if args.json == "-":
            print(text)
        else:
            from ..atomic import write_text_atomic

            write_text_atomic(args.json, text + "\n")
    return code
