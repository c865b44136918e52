"""``benchbed run``: parse the command line, plan the run (`commands.plan`), run the plan: measure
every cell through its launcher and save one record per runner and pass."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from ..spec import ATTN_IMPLS, DTYPES, RUNNERS, TRAINING_RUNNERS
from ..defaults import DEFAULT_BUDGET_S
from ..measure.timer import StopRule
from ..validate import (
    arg,
    check_run_id,
    duration,
    duration_or_off,
    finite_float,
    percent,
    non_negative_float,
    positive_float,
    positive_int,
    unit_interval,
)
from .common import EXIT_FAILED, EXIT_OK, csv_option, non_negative_int, out
from .plan import slowdown

__all__ = ["add_parser", "main"]


def add_parser(sub: Any) -> None:
    run = sub.add_parser("run", help="run a benchmark matrix and save one parquet record per case (and pass)",
                         description="Run a benchmark matrix (the built-in default, a --suite file, narrowed by "
                                     "the axis options) and save one parquet record per case under --results.")
    add_run_options(run)


def _env_options(run: argparse.ArgumentParser) -> None:
    e = run.add_argument_group("environments", "runners in other package versions, paired in the same window: "
                                               "--env old=transformers==4.57.6 --runner pipeline@old,pipeline "
                                               "--reference pipeline@old")
    e.add_argument("--env", action="append", metavar="NAME=SPEC",
                   help="an environment: this one plus SPEC (requirement specifiers, or -r FILE), built once with uv "
                        "(else pip) and cached; address a runner in it as RUNNER@NAME. Repeatable")
    e.add_argument("--find-links", action="append", metavar="DIR", default=[],
                   help="a folder of wheels the environments install from (repeatable)")
    e.add_argument("--no-index", action="store_true", help="install environments from --find-links only")


def add_run_options(run: argparse.ArgumentParser, explain_flag: bool = True) -> None:
    """Every option of a run (``benchbed noise`` runs with the same ones)."""
    run.add_argument("--suite", metavar="FILE", help="suite file: a pytest suite module defining MATRIX, or a TOML "
                                                     "file with a [matrix] table")
    run.add_argument("--quick", action="store_true", help="start from the tiny quick matrix (bert-tiny) instead of "
                                                          "the default matrix")
    _axis_options(run)
    run.add_argument("--reference", metavar="RUNNER",
                     help="the runner every other runner of a cell is compared with: parity and every ratio are "
                          "against it (default: the suite's, else torch)")
    run.add_argument("--pairing", choices=["interleaved", "sequential"], default="interleaved",
                     help="interleaved (default): the runners of a cell are timed in alternating blocks of calls, "
                          "random order per block, in the same time window, and ratios come from the paired blocks; "
                          "sequential: one runner after the other, each in its own window")
    run.add_argument("--on-interference", choices=["warn", "retry", "fail"], default="warn",
                     help="a cell measured while other processes used the CPU: warn (default: mark its records "
                          "interfered and go on), retry (measure it again after a pause, up to 2 times), fail "
                          "(mark them, and exit 1)")
    _workload_options(run)
    _training_options(run)
    _env_options(run)
    run.add_argument("--results", metavar="DIR", default="results", help="results folder (default: results/)")
    run.add_argument("--shard", metavar="I/N", help="run only shard I of N (1-based), split by cell")
    t = run.add_argument_group("timing")
    d = StopRule()  # one home for the defaults: the timer's own
    t.add_argument("--warmup", type=arg(non_negative_int, "--warmup"), default=d.warmup,
                   help=f"untimed calls per runner before timing, the parity check's call counted as one "
                        f"(default: {d.warmup})")
    t.add_argument("--min-samples", type=arg(positive_int, "--min-samples"), default=d.min_samples,
                   help=f"timed calls per runner at least (default: {d.min_samples})")
    t.add_argument("--min-time", type=arg(non_negative_float, "--min-time"), default=d.min_time_s,
                   help=f"timed seconds per runner at least (default: {d.min_time_s:g})")
    t.add_argument("--max-time", type=arg(positive_float, "--max-time"), default=d.max_time_s,
                   help=f"cap on timed seconds per runner (default: {d.max_time_s:g}); a cell of k runners "
                        f"timed interleaved takes up to k times this")
    t.add_argument("--ratio-ci", type=arg(percent, "--ratio-ci"), default=d.ratio_ci, metavar="PCT",
                   help="a cell of two or more runners stops once every runner's ratio to the reference is known "
                        f"within ± this percentage (default: {d.ratio_ci * 100:g}; checked on a 97%% CI so the "
                        "reported 95%% CI keeps its coverage); records say ratio_ci_half and stop_reason")
    t.add_argument("--budget", type=arg(duration_or_off, "--budget"), metavar="TIME",
                   help="the run's wall-clock budget (90s, 2m, 1.5h), loading and parity included: every cell gets "
                        "a first pass, then more passes go to the ratios short of --ratio-ci that the time left "
                        "can bring there, the cheapest first; cells it cannot reach are skipped records that say "
                        f"so (default: {DEFAULT_BUDGET_S:g}s for a plain `benchbed run` of the default matrix with "
                        "the default timing options, none otherwise; 'off': none)")
    t.add_argument("--ci-width", type=arg(positive_float, "--ci-width"), default=d.rel_ci_width,
                   help="a runner alone stops once its median's 95%% CI is narrower than this fraction of it "
                        f"(default: {d.rel_ci_width:g})")
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
    run.add_argument("--seed", type=arg(non_negative_int, "--seed"), default=0, help="seed for weights and inputs (default: 0)")
    run.add_argument("--trust-remote-code", action="store_true", help="allow hf: models to run their own code")
    run.add_argument("--run-id", type=arg(check_run_id, "--run-id"),
                     help="id of this run: letters, digits, '.', '_', '-' (default: new; env BENCHBED_RUN_ID lets CI "
                          "shards share one)")
    fleet = run.add_argument_group("fleets and resuming")
    fleet.add_argument("--cluster", metavar="WHERE", default="local",
                       help="local (default: this process), ray (the cluster at $RAY_ADDRESS, else a new one of this "
                            "machine alone) or ray://HOST:PORT; one Ray task per cell, records written here as they "
                            "arrive (docs/cluster.md)")
    fleet.add_argument("--launcher", metavar="NAME",
                       help="where cells are measured: local (default: this process, a subprocess for CUDA cells, "
                            "--isolate and --case-timeout), in-process, subprocess, ray, or a launcher a suite "
                            "registers (docs/engine.md)")
    fleet.add_argument("--cluster-select", action="append", metavar="KEY=VALUE",
                       help="only nodes advertising this Ray resource take cells: KEY=VALUE means KEY:VALUE (e.g. "
                            "accelerator_type=H200), a bare NAME means NAME; repeatable")
    fleet.add_argument("--retries", type=arg(non_negative_int, "--retries"), default=2,
                       help="on a cluster: how many times a cell whose worker died is tried again before its records "
                            "are errors (default: 2)")
    fleet.add_argument("--cluster-ship-code", action="store_true",
                       help="on a cluster: ship this working tree to the workers through Ray's runtime environment "
                            "(default: workers use the benchbed installed on them)")
    fleet.add_argument("--allow-env-change", action="store_true",
                       help="on a cluster: measure even when workers' benchbed, torch or transformers versions differ "
                            "from this machine's (each record carries its node's own versions)")
    fleet.add_argument("--resume", metavar="RUN_ID", type=arg(check_run_id, "--resume"),
                       help="continue run RUN_ID in --results: cells and passes it already recorded are skipped")
    run.add_argument("--inject-slowdown", type=arg(slowdown, "--inject-slowdown"), default=(0.0, None),
                     metavar="[RUNNER=]FRACTION",
                     help="testing aid: add real busy work worth FRACTION of each call's duration inside the timed "
                          "call (e.g. 0.1), to check that a regression gate catches it; RUNNER=FRACTION slows that "
                          "runner only (a ratio regression, e.g. pipeline=0.05)")
    if explain_flag:  # `benchbed explain` explains every cell it times: the flag would only confuse its --help
        run.add_argument("--explain", action="store_const", const="gap", default="off",
                         help="after timing, profile the runners of every cell whose ratio CI excludes 1 (outside "
                              "the timed window) and say why they differ: stages, functions, operators "
                              "(docs/explain.md)")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress lines")



def _workload_options(p: argparse.ArgumentParser) -> None:
    from ..spec import Workload, scenario_names

    w = Workload()
    g = p.add_argument_group("workloads: real inputs and scenarios (docs/workloads.md)")
    g.add_argument("--scenario", type=csv_option("--scenario"),
                   help=f"how runners are driven: {', '.join(scenario_names())} (comma-separated; default: latency, one "
                        "call at a time; dataset: N examples end to end; server: open-loop Poisson requests at "
                        "each --rate)")
    g.add_argument("--inputs", metavar="SOURCE",
                   help="real inputs instead of synthetic ones: corpus:python-docs (offline real text), a .jsonl/"
                        ".csv/.parquet/.txt file (FILE#column picks a column), a folder of images or .wav files (speech), or "
                        "hf:NAME[:SPLIT]#column (the datasets library); --seq-len becomes the truncation limit")
    g.add_argument("--examples", type=arg(positive_int, "--examples"), default=w.examples, metavar="N",
                   help=f"dataset scenario: examples per pass (default: {w.examples})")
    g.add_argument("--workers", type=csv_option("--workers"), metavar="W1,W2",
                   help="DataLoader workers, an axis: the pipeline's in the dataset scenario, both training paths' "
                        "for training tasks (default: 0)")
    g.add_argument("--rate", type=csv_option("--rate"), metavar="R1,R2",
                   help=f"server scenario: offered request rates per second, an axis (default: "
                        f"{','.join(f'{r:g}' for r in w.rates)}); auto: search each runner's knee, the highest "
                        f"rate whose p99 meets --slo-ms (docs/workloads.md)")
    g.add_argument("--requests", type=arg(positive_int, "--requests"), default=w.requests, metavar="N",
                   help=f"server scenario: requests per rate and runner (default: {w.requests}; arrivals also stop "
                        f"after 60 s)")
    g.add_argument("--max-batch", type=arg(positive_int, "--max-batch"), default=w.max_batch, metavar="N",
                   help=f"server scenario: dynamic batching, at most N requests per call (default: {w.max_batch})")
    g.add_argument("--max-wait-ms", type=arg(non_negative_float, "--max-wait-ms"), default=w.max_wait_ms, metavar="MS",
                   help="server scenario: a batch leaves when its oldest request has waited MS (default: 0)")
    g.add_argument("--queue", type=arg(positive_int, "--queue"), default=w.queue, metavar="N",
                   help=f"server scenario: requests the queue holds; more are dropped and counted (default: {w.queue})")
    g.add_argument("--timeout-ms", type=arg(non_negative_float, "--timeout-ms"), default=0.0, metavar="MS",
                   help="server scenario: a request still queued after MS is dropped as timed out and counted "
                        "(default: 0, never)")
    g.add_argument("--slo-ms", type=arg(positive_float, "--slo-ms"), default=100.0, metavar="MS",
                   help="server scenario: latency objective; a rate meets it when its p99 is within MS and at most 1%% "
                        "of requests were dropped (default: 100)")

    _serving_options(p)


def _serving_options(p: argparse.ArgumentParser) -> None:
    from ..serving.client import HTTP_TIMEOUT_S
    from ..workload import SERVE_BACKENDS

    g = p.add_argument_group("serving: real HTTP servers and endpoints (docs/serving.md)")
    g.add_argument("--server-workers", type=csv_option("--server-workers"), metavar="N1,N2",
                   help="http scenario: uvicorn worker processes per server, each with its own copy of the model, "
                        "an axis (default: 1)")
    g.add_argument("--serve", choices=SERVE_BACKENDS, default=None,
                   help="http scenario: what serves each runner: uvicorn (benchbed's server, default), ray "
                        "(a Ray Serve application; pip install 'benchbed[serve-ray]'), or transformers (the runners "
                        "on uvicorn, and the model behind Hugging Face's `transformers serve` as the runner "
                        "transformers-serve; pip install 'transformers[serving]')")
    g.add_argument("--serve-option", action="append", metavar="KEY[=VALUE]", default=[],
                   help="--serve transformers: continuous-batching, attn-implementation=IMPL, compile (passed to "
                        "transformers serve), or chat (drive it through /v1/chat/completions); repeatable")
    g.add_argument("--replicas", type=csv_option("--replicas"), metavar="N1,N2",
                   help="http scenario with --serve ray: Ray Serve replicas, an axis (default: 1)")
    g.add_argument("--serve-address", metavar="ADDRESS",
                   help="--serve ray: the Ray cluster to deploy on (default: a local cluster started for the run, "
                        "or RAY_ADDRESS)")
    g.add_argument("--endpoint", action="append", metavar="NAME=URL", default=[],
                   help="measure a running service as the runner endpoint:NAME (repeatable); its answers are "
                        "compared with the reference's (--reference endpoint:NAME makes it the reference)")
    g.add_argument("--endpoint-protocol", metavar="NAME",
                   help="how the endpoints speak: benchbed, hf-inference, openai, openai-chat, tgi, kserve-v2 "
                        "(or a plug-in's)")
    g.add_argument("--http-timeout", type=arg(positive_float, "--http-timeout"), default=HTTP_TIMEOUT_S, metavar="S",
                   help=f"the most one HTTP request may take before it is a failed request (default: {HTTP_TIMEOUT_S:g})")


def _training_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("training tasks (train-*: docs/training.md)")
    g.add_argument("--grad-accum", type=csv_option("--grad-accum"), metavar="G1,G2",
                   help="micro-batches per optimizer step, an axis (default: 1); one timed sample is one optimizer step")
    g.add_argument("--optimizer", type=csv_option("--optimizer"), metavar="O1,O2",
                   help="the optimizer both paths step, an axis: sgd (lr 0.01, the loop most PyTorch users write "
                        "first), adam, adamw (lr 5e-5, weight decay 0.01: the Trainer's default; the default)")
    g.add_argument("--learning-rate", type=arg(positive_float, "--learning-rate"), metavar="LR",
                   help="learning rate of every optimizer (default: sgd 0.01, adam and adamw 5e-5)")
    g.add_argument("--momentum", type=arg(unit_interval, "--momentum"), metavar="M",
                   help="SGD's momentum, from 0 up to (not including) 1 (default: 0)")
    g.add_argument("--target-loss", type=arg(finite_float, "--target-loss"), metavar="LOSS",
                   help="time_to_loss_s is the time until a step's loss first reaches LOSS (default: halfway from the "
                        "reference's first loss to the lowest it reached)")


def _axis_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("matrix axes (comma-separated values; each replaces that axis of the suite)")
    g.add_argument("--task", type=csv_option("--task"), help="tasks, e.g. text-classification,fill-mask (see `benchbed list`)")
    g.add_argument("--model", type=csv_option("--model"), help="models: synthetic:<preset>, packaged:<name>, hf:<id-or-dir>, or an alias")
    from ..runners import runner_names

    g.add_argument("--runner", type=csv_option("--runner"),
                   help=f"runners: {', '.join(runner_names('inference'))}; for training tasks "
                        f"{', '.join(runner_names('training'))} (default: {','.join(RUNNERS)}; for training tasks "
                        f"{','.join(TRAINING_RUNNERS)})")
    g.add_argument("--device", type=csv_option("--device"), help="devices: cpu, cuda, cuda:N, mps (default: cpu)")
    g.add_argument("--dtype", type=csv_option("--dtype"), help=f"precisions: {', '.join(DTYPES)} (int8: torchao int8 quantisation "
                                              "of the linear layers)")
    g.add_argument("--attn-impl", type=csv_option("--attn-impl"), help=f"attention implementations: default, {', '.join(ATTN_IMPLS)} "
                                                  "(default: the model's own)")
    g.add_argument("--compiled", type=csv_option("--compiled"), help="torch.compile the module both paths call: false, true, or "
                                                 "false,true for both (default: false)")
    g.add_argument("--batch-size", type=csv_option("--batch-size"), help="inputs per call, e.g. 1,8,32")
    g.add_argument("--seq-len", type=csv_option("--seq-len"), help="tokens per input including special tokens, e.g. 32,128")
    g.add_argument("--new-tokens", type=arg(positive_int, "--new-tokens"), help="tokens to generate (text-generation; default 16)")


def main(args: argparse.Namespace) -> int:
    from .plan import make_plan

    plan = make_plan(args)
    return run_plan(plan, args.results, quiet=args.quiet, launcher_args=args)[0]


def _launcher(plan: Any, args: argparse.Namespace) -> Any:
    """The plan's launcher, made; a cluster's version check is said as warnings."""
    from ..execute.launchers import get_launcher

    if plan.launcher != "ray":
        return get_launcher(plan.launcher)
    from ..env import collect_env
    from ..execute.launchers.ray_cluster import RayCluster

    launcher = RayCluster(plan.cluster, args.cluster_select, args.retries, args.cluster_ship_code)
    for line in launcher.check_versions(collect_env(), args.allow_env_change):
        print(f"benchbed: warning: {line}", file=sys.stderr)
    return launcher


def run_plan(plan: Any, results: str, quiet: bool, launcher_args: argparse.Namespace) -> tuple[int, str]:
    """Measure the plan's cases and print the table: (exit code, 1 when anything failed; the run's
    folder)."""
    from ..engine import Session
    from ..record import pool_records
    from ..summary import format_table, precision_lines, print_progress

    launcher = _launcher(plan, launcher_args)
    session = Session(results, plan.config, run_id=plan.run_id)
    launcher.bind(plan.config, session.ctx, session.workbench)
    for line in launcher.notes() if not quiet else []:
        print(f"benchbed: {line}", file=sys.stderr)
    if not quiet:
        note = " (each in a subprocess: --case-timeout)" if plan.config.case_timeout_s and \
            plan.config.isolate == "auto" else ""
        if plan.config.budget_s is not None:
            note += f"; budget {plan.config.budget_s:g}s" + (
                " (a plain run's default; --budget TIME or --budget off to change it)"
                if getattr(launcher_args, "budget", None) is None else "")
        print(f"benchbed run {session.run_id}: {len(plan.cases)} cases x {plan.config.passes} pass(es) -> "
              f"{session.store.run_dir}{note}", file=sys.stderr)
    start = time.perf_counter()

    budget = plan.config.budget_s

    def progress(i: int, total: int, result: Any) -> None:
        if not quiet:
            elapsed = time.perf_counter() - start
            left = f" of {budget:.0f}s ({max(0.0, budget - elapsed):.0f}s left)" if budget else ""
            print_progress(i, total, result.record, elapsed, suffix=left)

    try:
        session.run(list(plan.cases), progress, launcher=launcher, done=set(plan.done) if plan.done else None)
    finally:
        launcher.close()
        # interrupted (SIGINT/SIGTERM) or not, what finished is compacted into the run's file
        try:
            session.close()
        except OSError as exc:
            print(f"benchbed: warning: run left as per-case files ({exc})", file=sys.stderr)
    records = [r.record for r in session.finished]
    pooled = pool_records(records)  # a case's passes as one, for the table and the precision lines
    out(format_table(pooled))
    for line in precision_lines(pooled):
        out(line)
    if plan.config.explain != "off" and not getattr(launcher_args, "json", None) == "-":
        from ..explain import explain_records, explanation_lines

        for e in explain_records(records):
            out("\n" + "\n".join(explanation_lines(e)))
    print(f"\n{len(records)} records in {session.store.run_dir} ({time.perf_counter() - start:.0f}s)")
    # An out-of-memory case is an answer (the batch does not fit), not a failure of the run.
    failed = [r for r in records if r["status"] in ("error", "timeout") or r.get("parity_ok") is False
              or (plan.config.on_interference == "fail" and r.get("interfered") is True)]
    return (EXIT_FAILED if failed else EXIT_OK), str(session.store.run_dir)
