"""The ``benchbed`` command: ``run``, ``report``, ``compare``, ``history``, ``merge`` and ``list``.

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

from .spec import ATTN_IMPLS, DTYPES, RUNNERS, Matrix, SpecError, parse_shard

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
    g.add_argument("--dtype", type=_csv, help=f"precisions: {', '.join(DTYPES)} (int8: torchao int8 quantisation "
                                              "of the linear layers)")
    g.add_argument("--attn-impl", type=_csv, help=f"attention implementations: default, {', '.join(ATTN_IMPLS)} "
                                                  "(default: the model's own)")
    g.add_argument("--compiled", type=_csv, help="torch.compile the module both paths call: false, true, or "
                                                 "false,true for both (default: false)")
    g.add_argument("--batch-size", type=_csv, help="inputs per call, e.g. 1,8,32")
    g.add_argument("--seq-len", type=_csv, help="tokens per input including special tokens, e.g. 32,128")
    g.add_argument("--new-tokens", type=int, help="tokens to generate (text-generation; default 16)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="benchbed", description="Raw PyTorch module calls vs Hugging Face pipelines: "
                     "latency, throughput, memory and output parity, saved as parquet.")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"benchbed {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    run = sub.add_parser("run", help="run a benchmark matrix and save one parquet record per case (and pass)",
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
    t.add_argument("--passes", type=int, default=1, metavar="N",
                   help="measure every case in N interleaved passes over the matrix, one record each (default: 1); "
                        "each pass times --min-time seconds; for nightly runs on shared or virtual machines, whose "
                        "speed drifts, 3 or more let `benchbed compare` see the run-to-run spread")
    gpu = run.add_argument_group("devices, compilation and memory")
    gpu.add_argument("--compile-backend", metavar="NAME",
                     help="torch.compile backend for --compiled true cases (default: inductor)")
    gpu.add_argument("--compile-mode", metavar="MODE", help="torch.compile mode, e.g. reduce-overhead, max-autotune")
    gpu.add_argument("--int8-method", choices=["dynamic", "weight-only"],
                     help="torchao int8 config: dynamic (Int8DynamicActivationInt8WeightConfig, default) or "
                          "weight-only (Int8WeightOnlyConfig)")
    gpu.add_argument("--tf32", choices=["on", "off"], help="allow TF32 matmuls on CUDA (default: torch's setting, "
                                                           "off); recorded either way")
    iso = gpu.add_mutually_exclusive_group()
    iso.add_argument("--isolate", dest="isolate", action="store_const", const="always",
                     help="run every case in a fresh subprocess (default: only CUDA cases, whose device-memory "
                          "figures would otherwise carry earlier cases' state)")
    iso.add_argument("--no-isolate", dest="isolate", action="store_const", const="never",
                     help="run every case in this process")
    gpu.add_argument("--memory-cap", type=float, metavar="MB",
                     help="memory a case may allocate beyond what the process holds when it starts; more is an "
                          "oom record (CPU: address-space limit; CUDA: caching-allocator fraction)")
    gpu.add_argument("--case-timeout", type=float, metavar="S", help="kill an isolated case after S seconds "
                                                                       "(a timeout record)")
    run.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's own choice)")
    run.add_argument("--seed", type=int, default=0, help="seed for weights and inputs (default: 0)")
    run.add_argument("--trust-remote-code", action="store_true", help="allow hf: models to run their own code")
    run.add_argument("--run-id", help="id of this run (default: new; env BENCHBED_RUN_ID lets CI shards share one)")
    run.add_argument("--inject-slowdown", type=float, default=0.0, metavar="FRACTION",
                     help="testing aid: add real busy work worth FRACTION of each call's duration inside the timed "
                          "call (e.g. 0.1), to check that a regression gate catches it")
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

    def regress_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--threshold", action="append", metavar="[METRIC:][PATTERN=]VALUE",
                       help="regression threshold (default 5%%); repeat to override per metric or per case pattern, "
                            "e.g. --threshold 5%% --threshold 'fill-mask*=8%%' --threshold p99:10%%")
        p.add_argument("--alpha", type=float, default=0.05, help="significance level (default: 0.05)")
        p.add_argument("--markdown", metavar="FILE", help="also write GitHub markdown (e.g. $GITHUB_STEP_SUMMARY; "
                                                           "appended to)")
        p.add_argument("--json", metavar="FILE", help="also write JSON ('-' for stdout instead of the table)")

    cmp = sub.add_parser("compare", help="compare two runs case by case; exit 1 on a regression",
                         description="Per case: relative change of the latency statistic with a bootstrap 95% CI "
                                     "and a Mann-Whitney U test on the raw samples. A regression needs a change above "
                                     "the threshold that is significant. With one RESULTS folder, its newest run is "
                                     "compared with the run before it. Exit 1 on any regression, 0 otherwise, 2 on "
                                     "bad input.")
    cmp.add_argument("baseline", metavar="BASELINE", help="baseline results (folder, parquet file or URI); alone: a "
                                                          "folder whose newest run is compared with the one before")
    cmp.add_argument("current", metavar="CURRENT", nargs="?", help="current results")
    cmp.add_argument("--metric", default="median", choices=["median", "mean", "p90", "p95", "p99"],
                     help="latency statistic to compare (default: median)")
    cmp.add_argument("--baseline-runs", type=int, default=5, metavar="N",
                     help="with one RESULTS folder: how many earlier comparable runs form the baseline (default: 5; "
                          "with 3 or more, a regression must also exceed 3x the run-to-run spread)")
    cmp.add_argument("--allow-env-change", action="store_true",
                     help="compare even when hardware or library versions differ (the differences are named)")
    regress_options(cmp)

    hist = sub.add_parser("history", help="find confirmed change points in each case's nightly series; exit 1 on a "
                                          "new regression",
                          description="Change points per case over all runs in RESULTS (ruptures PELT on log "
                                      "medians), confirmed only when the shift holds for two consecutive runs, "
                                      "exceeds the threshold and is significant. Exit 1 when a confirmed regression "
                                      "starts within the newest --window runs, 0 otherwise, 2 on bad input.")
    hist.add_argument("results", nargs="+", metavar="RESULTS", help="results folders, files or URIs")
    hist.add_argument("--window", type=int, default=2,
                      help="gate on regressions starting in the newest N runs (default: 2: the one confirmed "
                           "by tonight's run)")
    regress_options(hist)

    merge = sub.add_parser("merge", help="join records (e.g. CI shards) into one run, one parquet file",
                           description="Read records from RESULTS, give them one run id and write them as one "
                                       "compacted parquet file under OUTPUT/<run-id>/.")
    merge.add_argument("results", nargs="+", metavar="RESULTS", help="results folders or files")
    merge.add_argument("-o", "--output", required=True, metavar="DIR", help="results folder to write into")
    merge.add_argument("--run-id", help="id of the merged run (default: new)")

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
                           dtype=args.dtype, batch_size=args.batch_size, seq_len=args.seq_len,
                           attn_impl=getattr(args, "attn_impl", None), compiled=getattr(args, "compiled", None))
    extra = {k: v for k, v in (("compile_backend", getattr(args, "compile_backend", None)),
                               ("compile_mode", getattr(args, "compile_mode", None)),
                               ("int8", getattr(args, "int8_method", None))) if v}
    if extra:
        from dataclasses import replace

        matrix = replace(matrix, options=tuple(sorted({**dict(matrix.options), **extra}.items())))
    if getattr(args, "new_tokens", None) is not None:
        from dataclasses import replace

        matrix = replace(matrix, new_tokens=args.new_tokens)
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
    from .record import pool_records
    from .summary import format_table, print_progress

    if not 0 <= args.inject_slowdown < 10:
        raise SpecError(f"--inject-slowdown must be a fraction between 0 and 10, got {args.inject_slowdown}")
    if args.passes < 1:
        raise SpecError(f"--passes must be a positive integer, got {args.passes}")
    if args.memory_cap is not None and args.memory_cap <= 0:
        raise SpecError(f"--memory-cap must be a positive number of MB, got {args.memory_cap:g}")
    if args.case_timeout is not None and args.case_timeout <= 0:
        raise SpecError(f"--case-timeout must be a positive number of seconds, got {args.case_timeout:g}")
    config = EngineConfig(rule=rule, seed=args.seed, threads=args.threads, trust_remote_code=args.trust_remote_code,
                          suite=args.suite or ("quick" if args.quick else "default"),
                          inject_slowdown=args.inject_slowdown, passes=args.passes,
                          isolate=args.isolate or "auto", memory_cap_mb=args.memory_cap,
                          case_timeout_s=args.case_timeout,
                          tf32=None if args.tf32 is None else args.tf32 == "on")
    session = Session(args.results, config, run_id=args.run_id)
    if not args.quiet:
        print(f"benchbed run {session.run_id}: {len(cases)} cases x {args.passes} pass(es) -> {session.store.run_dir}",
              file=sys.stderr)
    start = time.perf_counter()

    def progress(i: int, total: int, result: Any) -> None:
        if not args.quiet:
            print_progress(i, total, result.record, time.perf_counter() - start)

    session.run(cases, progress)
    session.close()
    records = [r.record for r in session.results]
    print(format_table(pool_records(records)))
    print(f"\n{len(records)} records in {session.store.run_dir} ({time.perf_counter() - start:.0f}s)")
    # An out-of-memory case is an answer (the batch does not fit), not a failure of the run.
    failed = [r for r in records if r["status"] in ("error", "timeout") or r.get("parity_ok") is False]
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


def _thresholds(args: argparse.Namespace) -> Any:
    from .regress import Thresholds

    if not 0 < args.alpha < 1:
        raise SpecError(f"--alpha must be between 0 and 1, got {args.alpha}")
    return Thresholds.parse(args.threshold)


def _emit(args: argparse.Namespace, data: dict[str, Any], console: str, markdown: str) -> None:
    from .regress.output import to_json

    if args.json == "-":
        print(to_json(data))
    else:
        print(console)
        if args.json:
            with open(args.json, "w", encoding="utf-8") as fh:
                fh.write(to_json(data))
    if args.markdown:
        with open(args.markdown, "a", encoding="utf-8") as fh:
            fh.write(markdown)


def _check_outputs(args: argparse.Namespace) -> None:
    from .store import check_writable

    for path in (args.json, args.markdown):
        if path and path != "-":
            problem = check_writable(os.path.dirname(os.path.abspath(path)))
            if problem:
                raise SpecError(problem.replace("results folder", "output folder"))


def cmd_compare(args: argparse.Namespace) -> int:
    from .regress import CompareSettings, compare_runs
    from .regress.history import run_order
    from .regress.output import comparison_console, comparison_dict, comparison_markdown

    if args.baseline_runs < 1:
        raise SpecError(f"--baseline-runs must be a positive integer, got {args.baseline_runs}")
    settings = CompareSettings(metric=args.metric, thresholds=_thresholds(args), alpha=args.alpha,
                               allow_env_change=args.allow_env_change)
    _check_outputs(args)
    if args.current:
        baseline, current = _load([args.baseline], "baseline"), _load([args.current], "current")
    else:
        df = _load([args.baseline], "results")
        runs = run_order(df)
        if len(runs) < 2:
            raise SpecError(f"{args.baseline!r} holds {len(runs)} run; compare needs two (or pass CURRENT)")
        current = df[df["run_id"] == runs[-1]]
        # the newest earlier run of the same environment, else (with --allow-env-change) the one before
        from .regress import env_fingerprint

        fp = env_fingerprint(current)
        same = [r for r in runs[:-1] if env_fingerprint(df[df["run_id"] == r]) == fp]
        base_runs = (same or runs[:-1])[-args.baseline_runs:]
        baseline = df[df["run_id"].isin(base_runs)]
    result = compare_runs(baseline, current, settings)
    data = comparison_dict(result)
    _emit(args, data, comparison_console(data), comparison_markdown(data))
    return EXIT_FAILED if result.regressions else EXIT_OK


def cmd_history(args: argparse.Namespace) -> int:
    from .regress.history import HistorySettings, find_change_points
    from .regress.output import history_console, history_dict, history_markdown

    if args.window < 1:
        raise SpecError(f"--window must be a positive integer, got {args.window}")
    settings = HistorySettings(thresholds=_thresholds(args), alpha=args.alpha)
    _check_outputs(args)
    df = _load(args.results, "results")
    points, envs, runs = find_change_points(df, settings)
    gating = [p for p in points if p.kind == "regression" and p.index >= len(runs) - args.window]
    data = history_dict(points, gating, envs, runs, int(df["case_id"].nunique()))
    _emit(args, data, history_console(data), history_markdown(data))
    return EXIT_FAILED if gating else EXIT_OK


def cmd_merge(args: argparse.Namespace) -> int:
    from .engine import new_run_id
    from .store import check_writable, open_store, compact_run

    problem = check_writable(args.output)
    if problem:
        raise SpecError(problem)
    df = _load(args.results, "results")
    run_id = args.run_id or new_run_id()
    dupes = df[df.duplicated("case_id", keep="first")]
    if not dupes.empty:
        print(f"benchbed: warning: {len(dupes)} case(s) appear in more than one input; keeping the first",
              file=sys.stderr)
        df = df.drop_duplicates("case_id", keep="first")
    from .record import COLUMNS

    store = open_store(args.output, run_id)
    names = [n for n, _ in COLUMNS]
    for rec in df.to_dict("records"):
        rec = {k: (None if _isnan(v) else v) for k, v in rec.items() if k in names}
        rec["run_id"] = run_id
        store.write(rec)
    path = compact_run(store.run_dir) if hasattr(store.run_dir, "exists") else None
    print(f"merged {len(df)} records from {df['run_id'].nunique() if 'run_id' in df else 0} input run(s) into run "
          f"{run_id}: {path or store.run_dir}")
    return EXIT_OK


def _isnan(v: Any) -> bool:
    return isinstance(v, float) and v != v


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
    print(f"attn_impl: default, {', '.join(ATTN_IMPLS)} (those needing a package not installed give skipped records)")
    print("compiled: false, true (torch.compile; compile time recorded apart from latency)")
    print("devices: cpu, cuda, cuda:N, mps (a device this machine lacks gives skipped records)")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {"run": cmd_run, "report": cmd_report, "compare": cmd_compare, "history": cmd_history,
                "merge": cmd_merge, "list": cmd_list}
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
