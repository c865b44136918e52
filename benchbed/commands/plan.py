"""``benchbed run``'s plan: the command line turned into what a run needs (the matrix and its cases,
the engine settings, the launcher's name, what a resumed run already holds), every rule between
options checked on the way, so a bad command line is one line and exit 2 before anything is
written. `commands.run` parses, asks for the plan, and runs it."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, replace
from typing import Any

from ..execute.config import EngineConfig
from ..spec import AUTO_RATE, HF_SERVE_RUNNER, Case, Matrix, SpecError, parse_shard
from ..validate import check_run_id, positive_float, positive_int
from ..values import OPTIMIZERS
from .budget import run_budget
from .common import non_negative_int

__all__ = ["RunPlan", "make_plan"]


@dataclass(frozen=True)
class RunPlan:
    """A checked run: what to measure, under which settings, where, and what is done already."""

    matrix: Matrix
    cases: tuple[Case, ...]
    config: EngineConfig
    #: A registered launcher's name, or ``ray`` with `cluster` saying which cluster.
    launcher: str
    cluster: str | None
    #: (case id, pass) already recorded in the run being resumed; None for a new run.
    done: frozenset[tuple[str, int]] | None
    run_id: str | None


def make_plan(args: argparse.Namespace) -> RunPlan:
    """The plan of `args`, or a `SpecError` naming the first problem."""
    from ..execute.launchers import check_launcher
    from ..models import check_model_source
    from ..store import check_writable, recorded_cases

    env_id = os.environ.get("BENCHBED_RUN_ID")
    if env_id and not args.run_id:
        check_run_id(env_id, "BENCHBED_RUN_ID")
    matrix, cases = _matrix(args)
    for model in matrix.model:
        check_model_source(model)
    from ..measure.gpu import check_devices

    problem = check_devices(list(matrix.device))
    if problem:
        raise SpecError(problem)
    rule = _rule(args)
    problem = check_writable(args.results)
    if problem:
        raise SpecError(problem)
    if not cases:
        raise SpecError("the matrix (after --shard) has no cases")
    config = _config(args, matrix, rule)
    if config.explain != "off":
        from ..measure.profile import ProfilerMissing, check_profilers

        try:
            check_profilers()
        except ProfilerMissing as exc:
            raise SpecError(str(exc)) from None
    budget = run_budget(args, matrix, rule)
    if budget is not None:  # the schedule sizes each job's timing within it (execute.budget)
        config = replace(config, budget_s=budget)
    endpoints = endpoint_specs(args)
    config = replace(config, endpoints=tuple(endpoints),
                     http_timeout_s=float(getattr(args, "http_timeout", None) or config.http_timeout_s))
    if getattr(args, "serve_address", None):
        config = replace(config, serve_address=args.serve_address)
    serve_options = serve_option_specs(args, matrix)
    if serve_options:
        config = replace(config, serve_options=serve_options)
    if config.inject_runner is not None:
        from ..runners import runner_names

        if config.inject_runner not in runner_names():
            raise SpecError(f"--inject-slowdown: unknown runner {config.inject_runner!r} "
                            f"(valid: {', '.join(runner_names())})")
    launcher, cluster = check_launcher(args.launcher, args.cluster, bool(args.cluster_select or args.cluster_ship_code))
    check_env_cells(matrix, args, launcher, cluster)
    envs = used_envs(env_specs(args, matrix), matrix)
    if envs:
        config = replace(config, envs=build_envs(args, envs))
    if args.resume and args.run_id and args.resume != args.run_id:
        raise SpecError("--resume names the run to continue; it cannot be combined with another --run-id")
    done = frozenset(recorded_cases(args.results, args.resume)) if args.resume else None
    return RunPlan(matrix, tuple(cases), config, launcher, cluster, done, args.resume or args.run_id)


def slowdown(text: str, what: str = "--inject-slowdown") -> tuple[float, str | None]:
    """``--inject-slowdown``: ``FRACTION`` (every runner) or ``RUNNER=FRACTION`` (that runner only);
    the runner's name is checked against the registry once suites have loaded (`make_plan`)."""
    from ..validate import finite_float

    runner, sep, value = str(text).rpartition("=")
    if sep and not runner.strip():
        raise SpecError(f"{what} must be FRACTION or RUNNER=FRACTION (e.g. pipeline=0.05), got {text!r}")
    try:
        fraction = finite_float(value.strip(), what)
    except SpecError:
        raise SpecError(f"{what} must be FRACTION or RUNNER=FRACTION (e.g. pipeline=0.05), got {text!r}") from None
    return fraction, runner.strip() or None


def _config(args: argparse.Namespace, matrix: Matrix, rule: Any) -> EngineConfig:
    try:
        return EngineConfig(rule=rule, seed=args.seed, threads=args.threads, trust_remote_code=args.trust_remote_code,
                            suite=args.suite or ("quick" if args.quick else "default"),
                            inject_slowdown=args.inject_slowdown[0], inject_runner=args.inject_slowdown[1],
                            passes=args.passes,
                            isolate=args.isolate or "auto", memory_cap_mb=args.memory_cap,
                            case_timeout_s=args.case_timeout, reference=matrix.reference, pairing=args.pairing,
                            on_interference=args.on_interference, slo_ms=args.slo_ms,
                            tf32=None if args.tf32 is None else args.tf32 == "on",
                            explain=getattr(args, "explain", "off"))
    except ValueError as exc:
        raise SpecError(str(exc)) from None


def _workload(args: argparse.Namespace, matrix: Matrix) -> Matrix:
    """The matrix with the scenario, inputs and workload settings of the command line."""
    from ..spec import Workload

    w = matrix.workload
    changes: dict[str, Any] = {}
    for name in ("examples", "requests", "max_batch", "max_wait_ms", "queue", "timeout_ms", "serve"):
        value = getattr(args, name, None)
        if value is not None and value != getattr(Workload(), name):
            changes[name] = value
    for name in ("server_workers", "replicas"):
        if getattr(args, name, None):
            changes[name] = tuple(positive_int(v, "--" + name.replace("_", "-")) for v in getattr(args, name))
    if getattr(args, "workers", None):
        changes["workers"] = tuple(int(non_negative_int(v, "--workers")) for v in args.workers)
    if getattr(args, "grad_accum", None):
        changes["grad_accum"] = tuple(positive_int(v, "--grad-accum") for v in args.grad_accum)
    if getattr(args, "optimizer", None):
        bad = [o for o in args.optimizer if o not in OPTIMIZERS]
        if bad:
            raise SpecError(f"--optimizer: unknown optimizer {bad[0][:40]!r} (valid: {', '.join(OPTIMIZERS)})")
        changes["optimizers"] = tuple(dict.fromkeys(args.optimizer))
    if getattr(args, "rate", None):
        if AUTO_RATE in args.rate:
            if len(args.rate) > 1:
                raise SpecError(f"--rate auto searches each runner's knee; it takes no other rates, got "
                                f"{','.join(args.rate)}")
            changes["rates"] = (AUTO_RATE,)
        else:
            changes["rates"] = tuple(positive_float(v, "--rate") for v in args.rate)
    if (changes.get("replicas") or getattr(args, "serve_address", None)) and \
            changes.get("serve", w.serve) != "ray":
        raise SpecError("--replicas and --serve-address apply to Ray Serve (valid with: --serve ray)")
    matrix = replace(matrix, workload=replace(w, **changes))
    if getattr(args, "scenario", None):
        matrix = replace(matrix, scenario=tuple(args.scenario))
    from ..spec import check_scenario_options

    given = [{"rates": "rate"}.get(k, k) for k in changes if k not in ("grad_accum", "optimizers")]
    check_scenario_options(given, [str(s) for s in matrix.scenario], [str(t) for t in matrix.task])
    if getattr(args, "inputs", None) is not None:
        matrix = replace(matrix, inputs=args.inputs)
    return matrix


def _matrix(args: argparse.Namespace) -> tuple[Matrix, list[Any]]:
    """The matrix to run and its cases (of this shard). Anything a suite's own code raises while
    the matrix is built and expanded (a ``cases()`` of its own, a field of the wrong kind) is one
    line naming the suite."""
    try:
        return _build_matrix(args)
    except SpecError:
        raise
    except Exception as exc:
        if not args.suite:
            raise
        raise SpecError(f"suite {args.suite!r}: its matrix cannot be expanded: {exc.__class__.__name__}: "
                        f"{str(exc)[:200]}") from None


def _build_matrix(args: argparse.Namespace) -> tuple[Matrix, list[Any]]:
    from ..defaults import DEFAULT_MATRIX, QUICK_MATRIX
    from ..models import check_model
    from ..runners import check_runner_families, runner_names
    from ..suite import load_suite
    from ..tasks import task_names

    matrix = load_suite(args.suite) if args.suite else (QUICK_MATRIX if args.quick else DEFAULT_MATRIX)
    matrix = matrix.narrow(task=args.task, model=args.model, runner=args.runner, device=args.device,
                           dtype=args.dtype, batch_size=args.batch_size, seq_len=args.seq_len,
                           attn_impl=getattr(args, "attn_impl", None), compiled=getattr(args, "compiled", None))
    extra = {k: v for k, v in (("compile_backend", getattr(args, "compile_backend", None)),
                               ("compile_mode", getattr(args, "compile_mode", None)),
                               ("int8", getattr(args, "int8_method", None)),
                               ("target_loss", getattr(args, "target_loss", None)),
                               ("learning_rate", getattr(args, "learning_rate", None)),
                               ("momentum", getattr(args, "momentum", None))) if v is not None}
    if extra:
        matrix = replace(matrix, options=tuple(sorted({**dict(matrix.options), **extra}.items())))
    if getattr(args, "new_tokens", None) is not None:
        matrix = replace(matrix, new_tokens=args.new_tokens)
    if getattr(args, "reference", None):
        matrix = replace(matrix, reference=args.reference)
    matrix = _workload(args, matrix)
    envs = env_specs(args, matrix)
    endpoints = endpoint_specs(args)
    check_endpoint_names(matrix, endpoints)
    if endpoints:  # each endpoint is a runner of every cell
        added = tuple(e.runner for e in endpoints if e.runner not in matrix.runner)
        matrix = replace(matrix, runner=tuple(matrix.runner) + added)
    served = matrix.workload.serve == "transformers"
    if served:  # the model behind transformers serve is one more runner of every cell
        from ..serving.hf_serve import check_serve_available

        check_serve_available()
        if HF_SERVE_RUNNER not in matrix.runner:
            matrix = replace(matrix, runner=tuple(matrix.runner) + (HF_SERVE_RUNNER,))
    valid = runner_names() + [f"{r}@{e.name}" for e in envs for r in runner_names()] + [e.runner for e in endpoints] \
        + ([HF_SERVE_RUNNER] if served else [])
    matrix = matrix.validate(task_names(), check_model, valid)
    from ..envs import split_runner

    check_runner_families((c.task, split_runner(c.runner)[0]) for c in matrix.cases()
                          if not c.runner.startswith("endpoint:") and c.runner != HF_SERVE_RUNNER)
    check_serving(matrix, endpoints)
    if matrix.inputs is not None:
        from ..execute.drivers import check_inputs

        check_inputs(matrix.inputs, list(matrix.task))
    if args.shard:
        i, n = parse_shard(args.shard)
        return matrix, matrix.shard(i, n)
    return matrix, matrix.cases()


def endpoint_specs(args: argparse.Namespace) -> list[Any]:
    """The ``--endpoint`` services, checked (scheme, protocol, names); probed in `check_serving`."""
    from ..endpoints import parse_endpoint
    from ..serving.protocols import protocol_names

    given = list(getattr(args, "endpoint", None) or [])
    protocol = getattr(args, "endpoint_protocol", None)
    if not given:
        if protocol:
            raise SpecError("--endpoint-protocol applies to --endpoint NAME=URL services; none was given")
        return []
    if not protocol:
        raise SpecError(f"--endpoint needs --endpoint-protocol (valid: {', '.join(protocol_names())})")
    endpoints = [parse_endpoint(t, protocol) for t in given]
    names = [e.name for e in endpoints]
    if len(set(names)) != len(names):
        raise SpecError(f"--endpoint: {next(n for n in names if names.count(n) > 1)!r} is defined twice")
    return endpoints


def serve_option_specs(args: argparse.Namespace, matrix: Matrix) -> tuple[str, ...]:
    """``--serve-option`` values, checked; they apply to ``--serve transformers`` alone."""
    given = list(getattr(args, "serve_option", None) or [])
    if not given:
        return ()
    if matrix.workload.serve != "transformers":
        raise SpecError("--serve-option applies to --serve transformers (valid with: --serve transformers)")
    from ..serving.hf_serve import parse_serve_options

    return parse_serve_options(given)


def check_endpoint_names(matrix: Matrix, endpoints: list[Any]) -> None:
    """A `SpecError` for an ``endpoint:NAME`` runner or reference whose NAME no --endpoint defines."""
    from ..endpoints import endpoint_name

    defined = {e.name for e in endpoints}
    for r in (str(r) for r in (*matrix.runner, matrix.reference)):
        name = endpoint_name(r)
        if name is not None and name not in defined:
            raise SpecError(f"runner {r!r} names an endpoint that is not defined (defined: "
                            f"{', '.join(sorted(defined)) or 'none'}; define it with --endpoint {name}=URL)")


def check_serving(matrix: Matrix, endpoints: list[Any]) -> None:
    """What serving cannot do, refused in one line before anything runs; then every endpoint is
    probed (an unreachable one is one line, exit 2)."""
    from ..tasks import get_task

    http = any(str(s) == "http" for s in matrix.scenario)
    for name in matrix.task:
        task = get_task(str(name))
        if getattr(task, "trains", False) and http:
            raise SpecError(f"--scenario http serves inference tasks; {name} is a training task "
                            f"(valid for it: --scenario latency)")
        if getattr(task, "trains", False) and endpoints:
            raise SpecError(f"--endpoint serves inference tasks; {name} is a training task")
    for e in endpoints:
        from ..endpoints import probe

        probe(e)


def env_specs(args: argparse.Namespace, matrix: Matrix) -> list[Any]:
    """The ``--env`` environments, and a `SpecError` for a ``RUNNER@ENV`` naming one not defined."""
    from ..envs import parse_env, split_runner

    given = [parse_env(t) for t in (getattr(args, "env", None) or [])]
    names = [e.name for e in given]
    if len(set(names)) != len(names):
        raise SpecError(f"--env: environment {next(n for n in names if names.count(n) > 1)!r} is defined twice")
    suite = getattr(args, "suite", None)
    if suite:  # the suite's own [envs]; --env of the same name wins
        from ..suite import load_suite_envs

        base = os.path.dirname(os.path.abspath(suite))
        given = [parse_env(f"{k}={v}", base) for k, v in load_suite_envs(suite).items() if k not in names] + given
    envs = given
    names = [e.name for e in envs]
    for runner in (*matrix.runner, matrix.reference):
        env = split_runner(str(runner))[1]
        if env is not None and env not in names:
            raise SpecError(f"runner {runner!r} names environment {env!r}, which is not defined (defined: "
                            f"{', '.join(names) or 'none'}; define it with --env {env}=SPEC)")
    return envs


def used_envs(envs: list[Any], matrix: Matrix) -> list[Any]:
    """The environments some runner of the matrix is measured in (``RUNNER@ENV``): one that no
    runner names is not built, so neither its time nor its failure costs the run."""
    from ..envs import split_runner

    named = {split_runner(str(r))[1] for r in (*matrix.runner, matrix.reference)}
    return [e for e in envs if e.name in named]


def check_env_cells(matrix: Matrix, args: argparse.Namespace, launcher: str, cluster: str | None) -> None:
    """What ``RUNNER@ENV`` runners do not measure yet, refused in one line before anything runs."""
    from ..envs import split_runner
    from ..tasks import get_task

    if not any(split_runner(str(r))[1] for r in (*matrix.runner, matrix.reference)):
        return
    if any(str(s) != "latency" for s in matrix.scenario):
        raise SpecError("RUNNER@ENV runners are measured in the latency scenario (valid: --scenario latency)")
    if matrix.inputs is not None:
        raise SpecError("RUNNER@ENV runners take the seeded synthetic inputs; --inputs is not supported with them yet")
    if args.pairing != "interleaved":
        raise SpecError("RUNNER@ENV runners are timed interleaved (their blocks alternate across environments); "
                        "--pairing sequential is not supported with them")
    from ..spec import parse_bool

    if any(parse_bool("compiled", c) for c in matrix.compiled):
        raise SpecError("RUNNER@ENV runners are measured eager (a compiled module's warm-up is counted in its own "
                        "process); use --compiled false")
    if cluster is not None or launcher == "ray":
        raise SpecError("--env with --cluster: environments are built on this machine only; run without --cluster")
    for name in matrix.task:
        task = get_task(str(name))
        if getattr(task, "trains", False) or getattr(task, "streams", False):
            raise SpecError(f"RUNNER@ENV runners serve single-call inference tasks; {name} is "
                            f"{'a training' if getattr(task, 'trains', False) else 'a generation'} task")


def build_envs(args: argparse.Namespace, envs: list[Any]) -> tuple[Any, ...]:
    """Each environment built (or taken from the cache), with progress on stderr."""
    import sys

    from ..envs import build_env

    def progress(line: str) -> None:
        print(f"benchbed: {line}", file=sys.stderr, flush=True)

    return tuple(build_env(e, tuple(getattr(args, "find_links", None) or ()), bool(getattr(args, "no_index", False)),
                           progress=progress) for e in envs)


def _rule(args: argparse.Namespace) -> Any:
    from ..measure import StopRule

    try:
        return StopRule(warmup=args.warmup, min_samples=args.min_samples, min_time_s=args.min_time,
                        max_time_s=args.max_time, rel_ci_width=args.ci_width,
                        ratio_ci=getattr(args, "ratio_ci", StopRule.ratio_ci),
                        max_samples=max(10_000, args.min_samples))
    except ValueError as exc:
        raise SpecError(f"timing options: {exc}") from None
