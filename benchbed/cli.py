"""The ``benchbed`` command: ``run``, ``report`` and ``list``.

Bad input — an unknown task, model, runner, dtype or device, a malformed suite, a non-positive
size, an unwritable results folder — is one line on stderr naming the valid choices, exit code 2,
and nothing written.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, Sequence

from .spec import DTYPES, RUNNERS, Matrix, SpecError, parse_shard

__all__ = ["main", "build_parser"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _csv(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like argparse but without the usage dump
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _axis_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("matrix axes (comma-separated values; each replaces that axis of the suite)")
    g.add_argument("--task", type=_csv, help="tasks, e.g. text-classification,fill-mask (see `benchbed list`)")
    g.add_argument("--model", type=_csv, help="models: synthetic:<preset>, packaged:<name>, hf:<id-or-dir>, or an alias")
    g.add_argument("--runner", type=_csv, help=f"runners: {', '.join(RUNNERS)} (default: both)")
    g.add_argument("--device", type=_csv, help="devices: cpu, cuda, cuda:N, mps (default: cpu)")
    g.add_argument("--dtype", type=_csv, help=f"precisions: {', '.join(DTYPES)}")
    g.add_argument("--batch-size", type=_csv, help="inputs per call, e.g. 1,8,32")
    g.add_argument("--seq-len", type=_csv, help="tokens per input including special tokens, e.g. 32,128")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="benchbed", description="Raw PyTorch module calls vs Hugging Face pipelines: "
                     "latency, throughput, memory and output parity, saved as parquet.")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"benchbed {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    run = sub.add_parser("run", help="run a benchmark matrix and save one parquet record per case",
                         description="Run a benchmark matrix (the built-in default, a --suite file, narrowed by "
                                     "the axis options) and save one parquet record per case under --results.")
    run.add_argument("--suite", metavar="FILE", help="suite file: a pytest suite module defining MATRIX, or a TOML "
                                                     "file with a [matrix] table")
    run.add_argument("--quick", action="store_true", help="start from the tiny quick matrix (bert-tiny) instead of "
                                                          "the default matrix")
    _axis_options(run)
    run.add_argument("--results", metavar="DIR", default="results", help="results folder (default: results/)")
    run.add_argument("--shard", metavar="I/N", help="run only shard I of N (1-based), split by cell")
    t = run.add_argument_group("timing")
    t.add_argument("--warmup", type=int, default=2, help="untimed calls before timing (default: 2)")
    t.add_argument("--min-samples", type=int, default=5, help="timed calls at least (default: 5)")
    t.add_argument("--min-time", type=float, default=1.0, help="seconds of timed calls at least (default: 1)")
    t.add_argument("--max-time", type=float, default=10.0, help="per-case cap on timed seconds (default: 10)")
    t.add_argument("--ci-width", type=float, default=0.05,
                   help="stop once the median's 95%% CI is narrower than this fraction of it (default: 0.05)")
    run.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's own choice)")
    run.add_argument("--seed", type=int, default=0, help="seed for weights and inputs (default: 0)")
    run.add_argument("--trust-remote-code", action="store_true", help="allow hf: models to run their own code")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress lines")

    rep = sub.add_parser("report", help="turn runs into one self-contained HTML report",
                         description="Turn one or more runs into a single self-contained HTML file (inline CSS, "
                                     "charts embedded, no network, no JavaScript). The newest run leads; several "
                                     "runs add a history section; --baseline/--current add a side-by-side "
                                     "comparison.")
    rep.add_argument("results", nargs="*", metavar="RESULTS", help="results folders or parquet files "
                                                                   "(default: results/, or --current)")
    rep.add_argument("-o", "--output", metavar="FILE", default="reports/benchbed-report.html",
                     help="HTML file to write (default: reports/benchbed-report.html)")
    rep.add_argument("--baseline", metavar="RESULTS", help="baseline run(s): folder or parquet file")
    rep.add_argument("--current", metavar="RESULTS", help="current run(s) to compare with --baseline")
    rep.add_argument("--title", default="benchbed report", help="page title (default: benchbed report)")

    sub.add_parser("list", help="list tasks, models, runners, precisions and devices",
                   description="List the tasks, models, runners, precisions and devices benchbed knows.")
    return parser


def _matrix(args: argparse.Namespace) -> tuple[Matrix, list[Any]]:
    from .defaults import DEFAULT_MATRIX, QUICK_MATRIX
    from .models import check_model
    from .suite import load_suite
    from .tasks import task_names

    matrix = load_suite(args.suite) if args.suite else (QUICK_MATRIX if args.quick else DEFAULT_MATRIX)
    matrix = matrix.narrow(task=args.task, model=args.model, runner=args.runner, device=args.device,
                           dtype=args.dtype, batch_size=args.batch_size, seq_len=args.seq_len)
    matrix = matrix.validate(task_names(), check_model)
    if args.shard:
        i, n = parse_shard(args.shard)
        return matrix, matrix.shard(i, n)
    return matrix, matrix.cases()


def _rule(args: argparse.Namespace) -> Any:
    from .measure import StopRule

    try:
        return StopRule(warmup=args.warmup, min_samples=args.min_samples, min_time_s=args.min_time,
                        max_time_s=args.max_time, rel_ci_width=args.ci_width,
                        max_samples=max(10_000, args.min_samples))
    except ValueError as exc:
        raise SpecError(f"timing options: {exc}") from None


def cmd_run(args: argparse.Namespace) -> int:
    from .store import check_writable

    _, cases = _matrix(args)
    rule = _rule(args)
    if args.threads is not None and args.threads <= 0:
        raise SpecError(f"--threads must be a positive integer, got {args.threads}")
    problem = check_writable(args.results)
    if problem:
        raise SpecError(problem)
    if not cases:
        raise SpecError("the matrix (after --shard) has no cases")

    from .engine import EngineConfig, Session
    from .summary import format_table, print_progress

    config = EngineConfig(rule=rule, seed=args.seed, threads=args.threads, trust_remote_code=args.trust_remote_code,
                          suite=args.suite or ("quick" if args.quick else "default"))
    session = Session(args.results, config)
    if not args.quiet:
        print(f"benchbed run {session.run_id}: {len(cases)} cases -> {session.store.run_dir}", file=sys.stderr)
    start = time.perf_counter()
    for i, case in enumerate(cases, 1):
        result = session.run_case(case)
        if not args.quiet:
            print_progress(i, len(cases), result.record, time.perf_counter() - start)
    session.close()
    records = [r.record for r in session.results]
    print(format_table(records))
    print(f"\n{len(records)} records in {session.store.run_dir} ({time.perf_counter() - start:.0f}s)")
    failed = [r for r in records if r["status"] in ("error", "oom", "timeout") or r.get("parity_ok") is False]
    return EXIT_FAILED if failed else EXIT_OK


def _load(paths: Sequence[str], what: str) -> Any:
    """Records under `paths`; a missing path or no records at all is a usage error."""
    import warnings

    from .store import read_results

    for p in paths:
        if not os.path.exists(p):
            raise SpecError(f"{what} {p!r} does not exist")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = read_results(*paths)
    for w in caught:
        print(f"benchbed: warning: {w.message}", file=sys.stderr)
    if df.empty:
        raise SpecError(f"no benchbed records in {', '.join(repr(p) for p in paths)}")
    return df


def cmd_report(args: argparse.Namespace) -> int:
    from .store import check_writable

    if bool(args.baseline) != bool(args.current):
        raise SpecError("--baseline and --current go together")
    out_dir = os.path.dirname(os.path.abspath(args.output))
    problem = check_writable(out_dir)
    if problem:
        raise SpecError(problem.replace("results folder", "output folder"))
    paths = args.results or ([args.current] if args.current else ["results"])
    df = _load(paths, "results")
    baseline = _load([args.baseline], "baseline") if args.baseline else None
    current = _load([args.current], "current") if args.current else None

    from .report import build_report, write_report

    start = time.perf_counter()
    page = build_report(df, title=args.title, baseline=baseline, current=current)
    path = write_report(page, args.output)
    print(f"report: {path} ({len(df)} records, {len(page) / 1e6:.1f} MB, {time.perf_counter() - start:.1f}s)")
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    from .models import describe_models
    from .runners import RUNNER_DESCRIPTIONS
    from .tasks import get_task, task_names

    print("tasks:")
    for name in task_names():
        print(f"  {name:<24} {get_task(name).description}")
    print("models:")
    for name, desc in describe_models():
        print(f"  {name:<34} {desc}")
    print("runners:")
    for name, desc in RUNNER_DESCRIPTIONS.items():
        print(f"  {name:<10} {desc}")
    print(f"dtypes: {', '.join(DTYPES)}")
    print("devices: cpu, cuda, cuda:N, mps (a device this machine lacks gives skipped records)")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {"run": cmd_run, "report": cmd_report, "list": cmd_list}
    if args.command not in handlers:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return handlers[args.command](args)
    except SpecError as exc:
        print(f"benchbed: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("benchbed: interrupted; finished cases are saved", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
