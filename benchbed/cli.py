"""The ``benchbed`` command: ``run``, ``report``, ``compare``, ``history``, ``merge`` and ``list``.

Bad input — an unknown task, model, runner, dtype or device, a malformed suite, an empty or
non-finite value, a run id that is not a plain name, an output path that is a folder, an
unwritable results folder — is one line on stderr naming the valid choices, exit code 2, and
nothing written (every value goes through `benchbed.validate` before anything runs).

Exit codes: 0 ok; 1 a case failed (error, timeout, parity mismatch) or a regression was found;
2 bad input; 3 the regression gate could not judge (a case without finite samples, a case that
did not finish, no case in common, an environment change); 4 a file could not be written (disk
full, file-size limit, I/O error); 130 interrupted (SIGINT); 143 terminated (SIGTERM). On 130 and
143 every finished case is saved and the run is compacted.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from typing import Any, Sequence

from .atomic import WriteFailed, write_text_atomic
from .display import clip, console_safe
from .spec import ATTN_IMPLS, DTYPES, RUNNERS, Matrix, SpecError, parse_shard
from .validate import (arg, check_run_id, csv_values, existing_path, finite_float, non_negative_float, output_file,
                       positive_float, positive_int)

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_FAILED", "EXIT_USAGE", "EXIT_UNJUDGED", "EXIT_WRITE",
           "EXIT_INTERRUPTED", "EXIT_TERMINATED"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNJUDGED, EXIT_WRITE = 0, 1, 2, 3, 4
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143


class Terminated(KeyboardInterrupt):
    """SIGTERM (a CI cancel, ``kill``): unwinds exactly like Ctrl-C, so finished cases are saved."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated()


def _csv(option: str) -> Any:
    return arg(csv_values, option)


def _out(text: str) -> None:
    """Print to the console with terminal escape sequences removed (strings come from records)."""
    print(console_safe(text))


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like argparse but without the usage dump
        import re

        m = re.match(r"argument ([^:]+): (.*)$", message, re.S)
        if m and any(m.group(2).startswith(o) for o in m.group(1).split("/")):
            message = m.group(2)  # our checks name the option themselves
        self.exit(EXIT_USAGE, console_safe(f"{self.prog}: error: {clip(message, 500)}", keep_newlines=False) + "\n")


def _axis_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("matrix axes (comma-separated values; each replaces that axis of the suite)")
    g.add_argument("--task", type=_csv("--task"), help="tasks, e.g. text-classification,fill-mask (see `benchbed list`)")
    g.add_argument("--model", type=_csv("--model"), help="models: synthetic:<preset>, packaged:<name>, hf:<id-or-dir>, or an alias")
    g.add_argument("--runner", type=_csv("--runner"), help=f"runners: {', '.join(RUNNERS)} (default: both)")
    g.add_argument("--device", type=_csv("--device"), help="devices: cpu, cuda, cuda:N, mps (default: cpu)")
    g.add_argument("--dtype", type=_csv("--dtype"), help=f"precisions: {', '.join(DTYPES)} (int8: torchao int8 quantisation "
                                              "of the linear layers)")
    g.add_argument("--attn-impl", type=_csv("--attn-impl"), help=f"attention implementations: default, {', '.join(ATTN_IMPLS)} "
                                                  "(default: the model's own)")
    g.add_argument("--compiled", type=_csv("--compiled"), help="torch.compile the module both paths call: false, true, or "
                                                 "false,true for both (default: false)")
    g.add_argument("--batch-size", type=_csv("--batch-size"), help="inputs per call, e.g. 1,8,32")
    g.add_argument("--seq-len", type=_csv("--seq-len"), help="tokens per input including special tokens, e.g. 32,128")
    g.add_argument("--new-tokens", type=arg(positive_int, "--new-tokens"), help="tokens to generate (text-generation; default 16)")


def _non_negative_int(text: Any, what: str) -> int:
    return 0 if str(text).strip() == "0" else positive_int(text, what)


def _json_target(text: Any, what: str) -> str:
    return "-" if str(text) == "-" else output_file(text, what)


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
    t.add_argument("--warmup", type=arg(_non_negative_int, "--warmup"), default=2, help="untimed calls before timing (default: 2)")
    t.add_argument("--min-samples", type=arg(positive_int, "--min-samples"), default=5, help="timed calls at least (default: 5)")
    t.add_argument("--min-time", type=arg(non_negative_float, "--min-time"), default=1.0, help="seconds of timed calls at least (default: 1)")
    t.add_argument("--max-time", type=arg(positive_float, "--max-time"), default=10.0, help="per-case cap on timed seconds (default: 10)")
    t.add_argument("--ci-width", type=arg(non_negative_float, "--ci-width"), default=0.05,
                   help="stop once the median's 95%% CI is narrower than this fraction of it (default: 0.05)")
    t.add_argument("--passes", type=arg(positive_int, "--passes"), default=1, metavar="N",
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
    gpu.add_argument("--memory-cap", type=arg(positive_float, "--memory-cap"), metavar="MB",
                     help="memory a case may allocate beyond what the process holds when it starts; more is an "
                          "oom record (CPU: address-space limit; CUDA: caching-allocator fraction)")
    gpu.add_argument("--case-timeout", type=arg(positive_float, "--case-timeout"), metavar="S",
                     help="a case still running after S seconds is killed and recorded as timeout; cases then run "
                          "in subprocesses (a hung call cannot be stopped in-process), so not with --no-isolate")
    run.add_argument("--threads", type=arg(positive_int, "--threads"), help="torch intra-op threads (default: torch's own choice)")
    run.add_argument("--seed", type=arg(_non_negative_int, "--seed"), default=0, help="seed for weights and inputs (default: 0)")
    run.add_argument("--trust-remote-code", action="store_true", help="allow hf: models to run their own code")
    run.add_argument("--run-id", type=arg(check_run_id, "--run-id"),
                     help="id of this run: letters, digits, '.', '_', '-' (default: new; env BENCHBED_RUN_ID lets CI "
                          "shards share one)")
    run.add_argument("--inject-slowdown", type=arg(finite_float, "--inject-slowdown"), default=0.0, metavar="FRACTION",
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
                     type=arg(output_file, "report -o"),
                     help="HTML file to write (default: reports/benchbed-report.html)")
    rep.add_argument("--baseline", metavar="RESULTS", help="baseline run(s): folder or parquet file")
    rep.add_argument("--current", metavar="RESULTS", help="current run(s) to compare with --baseline")
    rep.add_argument("--title", default="benchbed report", help="page title (default: benchbed report)")

    def regress_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--threshold", action="append", metavar="[METRIC:][PATTERN=]VALUE",
                       help="regression threshold (default 5%%); repeat to override per metric or per case pattern, "
                            "e.g. --threshold 5%% --threshold 'fill-mask*=8%%' --threshold p99:10%%")
        p.add_argument("--alpha", type=arg(finite_float, "--alpha"), default=0.05, help="significance level (default: 0.05)")
        p.add_argument("--markdown", metavar="FILE", type=arg(output_file, "--markdown"), help="also write GitHub markdown (e.g. $GITHUB_STEP_SUMMARY; "
                                                           "appended to)")
        p.add_argument("--json", metavar="FILE", type=arg(_json_target, "--json"), help="also write JSON ('-' for stdout instead of the table)")

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
    cmp.add_argument("--baseline-runs", type=arg(positive_int, "--baseline-runs"), default=5, metavar="N",
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
    hist.add_argument("--window", type=arg(positive_int, "--window"), default=2,
                      help="gate on regressions starting in the newest N runs (default: 2: the one confirmed "
                           "by tonight's run)")
    regress_options(hist)

    merge = sub.add_parser("merge", help="join records (e.g. CI shards) into one run, one parquet file",
                           description="Read records from RESULTS, give them one run id and write them as one "
                                       "compacted parquet file under OUTPUT/<run-id>/.")
    merge.add_argument("results", nargs="+", metavar="RESULTS", help="results folders or files")
    merge.add_argument("-o", "--output", required=True, metavar="DIR", help="results folder to write into")
    merge.add_argument("--run-id", type=arg(check_run_id, "--run-id"),
                       help="id of the merged run: letters, digits, '.', '_', '-' (default: new)")

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
    from .models import check_model_source
    from .store import check_writable

    env_id = os.environ.get("BENCHBED_RUN_ID")
    if env_id and not args.run_id:
        check_run_id(env_id, "BENCHBED_RUN_ID")
    matrix, cases = _matrix(args)
    for model in matrix.model:
        check_model_source(model)
    rule = _rule(args)
    problem = check_writable(args.results)
    if problem:
        raise SpecError(problem)
    if not cases:
        raise SpecError("the matrix (after --shard) has no cases")
    if not 0 <= args.inject_slowdown < 10:
        raise SpecError(f"--inject-slowdown must be a fraction between 0 and 10, got {args.inject_slowdown}")
    if args.case_timeout is not None and args.isolate == "never":
        raise SpecError("--case-timeout needs cases in subprocesses (a hung call cannot be stopped in-process); "
                        "drop --no-isolate")

    from .engine import EngineConfig, Session
    from .record import pool_records
    from .summary import format_table, print_progress

    config = EngineConfig(rule=rule, seed=args.seed, threads=args.threads, trust_remote_code=args.trust_remote_code,
                          suite=args.suite or ("quick" if args.quick else "default"),
                          inject_slowdown=args.inject_slowdown, passes=args.passes,
                          isolate=args.isolate or "auto", memory_cap_mb=args.memory_cap,
                          case_timeout_s=args.case_timeout,
                          tf32=None if args.tf32 is None else args.tf32 == "on")
    session = Session(args.results, config, run_id=args.run_id)
    if not args.quiet:
        note = " (each in a subprocess: --case-timeout)" if args.case_timeout and not args.isolate else ""
        print(f"benchbed run {session.run_id}: {len(cases)} cases x {args.passes} pass(es) -> {session.store.run_dir}"
              f"{note}", file=sys.stderr)
    start = time.perf_counter()

    def progress(i: int, total: int, result: Any) -> None:
        if not args.quiet:
            print_progress(i, total, result.record, time.perf_counter() - start)

    try:
        session.run(cases, progress)
    finally:
        # interrupted (SIGINT/SIGTERM) or not, what finished is compacted into the run's file
        try:
            session.close()
        except OSError as exc:
            print(f"benchbed: warning: run left as per-case files ({exc})", file=sys.stderr)
    records = [r.record for r in session.results]
    _out(format_table(pool_records(records)))
    print(f"\n{len(records)} records in {session.store.run_dir} ({time.perf_counter() - start:.0f}s)")
    # An out-of-memory case is an answer (the batch does not fit), not a failure of the run.
    failed = [r for r in records if r["status"] in ("error", "timeout") or r.get("parity_ok") is False]
    return EXIT_FAILED if failed else EXIT_OK


def _load(paths: Sequence[str], what: str) -> Any:
    """Records under `paths`; a missing path or no records at all is a usage error."""
    import warnings

    from .store import read_results

    for p in paths:
        existing_path(p, what)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = read_results(*paths)
    for w in caught:
        print(console_safe(f"benchbed: warning: {w.message}", keep_newlines=False), file=sys.stderr)
    if df.empty:
        raise SpecError(f"no benchbed records in {', '.join(repr(p) for p in paths)}")
    return df


def _load_table(paths: Sequence[str]) -> Any:
    import warnings

    from .store import read_table

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # already said by _load
        return read_table(*paths)


def cmd_report(args: argparse.Namespace) -> int:
    if bool(args.baseline) != bool(args.current):
        raise SpecError("--baseline and --current go together")
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
        _out(console)
        if args.json:
            write_text_atomic(args.json, to_json(data))
    if args.markdown:
        write_text_atomic(args.markdown, markdown, append=True)


def _gate(found: int, unjudged: int, compared: int) -> int:
    """The regression gate's exit code: 1 on a regression; else 3 when anything could not be judged
    or nothing was compared (a gate fails closed); else 0."""
    if found:
        return EXIT_FAILED
    if unjudged or not compared:
        return EXIT_UNJUDGED
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    from .regress import CompareSettings, compare_runs, newest_against_earlier
    from .regress.output import comparison_console, comparison_dict, comparison_markdown

    settings = CompareSettings(metric=args.metric, thresholds=_thresholds(args), alpha=args.alpha,
                               allow_env_change=args.allow_env_change)
    if args.current:
        baseline, current = _load([args.baseline], "baseline"), _load([args.current], "current")
    else:
        baseline, current = newest_against_earlier(_load([args.baseline], "results"), args.baseline_runs)
        if baseline is None:
            raise SpecError(f"{args.baseline!r} holds 1 run; compare needs two (or pass CURRENT)")
    result = compare_runs(baseline, current, settings)
    data = comparison_dict(result)
    _emit(args, data, comparison_console(data), comparison_markdown(data))
    return _gate(result.regressions, result.unjudged, result.judged)


def cmd_history(args: argparse.Namespace) -> int:
    from .regress.history import HistorySettings, find_change_points, unjudged_cases
    from .regress.output import history_console, history_dict, history_markdown

    settings = HistorySettings(thresholds=_thresholds(args), alpha=args.alpha)
    df = _load(args.results, "results")
    points, envs, runs = find_change_points(df, settings)
    gating = [p for p in points if p.kind == "regression" and p.index >= len(runs) - args.window]
    unjudged = unjudged_cases(df, args.window)
    data = history_dict(points, gating, envs, runs, int(df["case_id"].nunique()), unjudged)
    _emit(args, data, history_console(data), history_markdown(data))
    return _gate(len(gating), len(unjudged), len(runs))


def cmd_merge(args: argparse.Namespace) -> int:
    from .engine import new_run_id
    from .store import check_writable, merge_runs

    problem = check_writable(args.output)
    if problem:
        raise SpecError(problem)
    df = _load(args.results, "results")
    run_id = args.run_id or new_run_id()
    path, kept, dropped = merge_runs(_load_table(args.results), args.output, run_id)
    if dropped:
        print(f"benchbed: warning: {dropped} record(s) measured the same case and pass as another input's; "
              f"keeping the first", file=sys.stderr)
    print(f"merged {kept} records from {df['run_id'].nunique()} input run(s) into run {run_id}: {path}")
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
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if _main_thread() else None
    try:
        return handlers[args.command](args)
    except SpecError as exc:
        print(console_safe(f"benchbed: error: {clip(exc, 500)}", keep_newlines=False), file=sys.stderr)
        return EXIT_USAGE
    except WriteFailed as exc:
        print(console_safe(f"benchbed: error: {exc}; finished cases before it are saved", keep_newlines=False),
              file=sys.stderr)
        return EXIT_WRITE
    except Terminated:
        print("benchbed: terminated (SIGTERM); finished cases are saved", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("benchbed: interrupted; finished cases are saved", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
