"""`measure_cell`: every runner of one cell on the same module object and the same inputs, timed in
the same window, each turned into a record.

Order of work, each step over all runners of the cell: load (cached) -> inputs -> build runners
(a runner that cannot serve the case is a ``skipped`` record) -> prepare (export; ``setup_s``)
-> compile warm-up -> parity of every runner against the reference runner -> timing (interleaved
blocks, or one runner after the other) -> phases -> FLOPs -> memory -> device counters. A failure
of one runner becomes its record and the others go on; a failure of the cell (the model does not
load) becomes a record for each runner.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any

import numpy as np

from ..measure import MemoryCap, noise_warning, summarize
from ..measure.interference import Interference
from ..measure.paired import PairedTiming, measure_interleaved, measure_sequential, ratio_columns
from ..measure.timer import StopRule, device_sync
from ..spec import HF_SERVE_RUNNER, Case
from .config import EngineConfig, RunContext
from ..runners.failures import Skip, attn_unsupported, classify, head_missing, unavailable_reason
from .passes import (
    PassPlan,
    StepTimer,
    compile_warmup,
    graph_count,
    pass_calls,
    runner_passes,
    slowed,
    with_steps,
)
from .drivers import make_driver
from .explain_pass import explain_cell
from .parity import check_parity
from .records import CellResult, base_record
from .workbench import Workbench, release

__all__ = ["measure_cell", "base_record", "CellResult"]  # the last two from .records

class _RunnerFailed(Exception):
    def __init__(self, name: str, exc: BaseException) -> None:
        super().__init__(name)
        self.name = name
        self.exc = exc


def _guard(name: str, fn: Any) -> Any:
    """`fn` whose exceptions name the runner that raised them (timing runs runners together)."""

    def call(*args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as exc:
            raise _RunnerFailed(name, exc) from exc

    return call


class _Cell:
    """The state of one cell while it is measured: its records, by runner."""

    def __init__(self, cases: list[Case], ctx: RunContext, config: EngineConfig, pass_index: int) -> None:
        self.cases = {c.runner: c for c in cases}
        self.recs = {c.runner: base_record(c, ctx, config, pass_index) for c in cases}
        self.samples: dict[str, tuple[float, ...]] = {}
        self.config = config
        self.seed = config.seed
        #: per streaming runner, (time to first token, time per token) of each timed call
        self.steps: dict[str, list[tuple[float, float]]] = {}
        self.graphs_before = 0
        self.events: dict[str, Any] | None = None
        #: what else used the machine while the runners were timed (the same window for all)
        self.interference: dict[str, Any] = {}
        #: how the runners are driven (`drivers.Driver`), set once the model is loaded
        self.driver: Any = None
        #: every runner built for the cell (closed when it is done)
        self.built: list[Any] = []
        #: seconds the cell spent on each part of its work (the ``cost_*_s`` columns)
        self.costs: dict[str, float] = {}
        #: marks this cell's shapes as timed on this model object in this process (`warm_rule`)
        self.warm: dict[str, bool] = {}

    def open(self) -> list[str]:
        """Runners whose record has no outcome yet."""
        return [n for n, r in self.recs.items() if r["status"] is None]

    def close(self, names: list[str] | None, status: str, message: str, **columns: Any) -> None:
        """Give these runners' records (all open ones when None) an outcome; a runner built only
        for parity (the reference, not measured here) has no record and is passed over."""
        for n in names if names is not None else self.open():
            if n in self.recs and self.recs[n]["status"] is None:
                self.recs[n].update(status=status, message=message, **columns)

    def fail(self, name: str, exc: BaseException) -> None:
        status, message = classify(exc, self.config.memory_cap_mb is not None)
        self.close([name], status, message)

    def results(self) -> list[CellResult]:
        return [(self.cases[n], self.recs[n], self.samples.get(n, ())) for n in self.recs]


def measure_cell(cases: list[Case], workbench: Workbench, config: EngineConfig, ctx: RunContext,
                 pass_index: int = 0) -> list[CellResult]:
    """Measure the runners of one cell (cases that differ only in ``runner``); one result each."""
    import datetime as _dt

    from ..tasks import get_task

    cell = _Cell(cases, ctx, config, pass_index)
    first = cases[0]
    began, t0 = _dt.datetime.now(_dt.timezone.utc), time.perf_counter()
    try:
        reason = unavailable_reason(first)
        if reason:
            raise Skip(reason)
        task = get_task(first.task).configure(first)
        t_load = time.perf_counter()
        try:
            bundle = workbench.bundle(first, task)
        except Exception as exc:
            if first.attn_impl and attn_unsupported(exc):
                raise Skip(f"attn_impl {first.attn_impl}: {exc}".strip()[:500]) from None
            missing = head_missing(exc)
            if missing:
                raise Skip(f"{first.model} has no {task.head} head for {task.name} ({missing})") from None
            raise
        info = {"model_params": bundle.params, "model_config": bundle.config_name, "model_weights": bundle.weights,
                "attn_impl": getattr(bundle.module.config, "_attn_implementation", None),
                "quant_method": bundle.extra.get("quant_method")}
        recorded = task.recorded_options(bundle)  # e.g. the image preprocessing backend: it changes the cost
        if recorded:
            info["options"] = json.dumps({**json.loads(cell.recs[first.runner]["options"]), **recorded},
                                         sort_keys=True)
        for rec in cell.recs.values():
            rec.update(info)
        if bundle.max_positions and first.seq_len > bundle.max_positions:
            raise Skip(f"seq_len {first.seq_len} exceeds the model's {bundle.max_positions} positions")
        cell.warm = workbench.cache(("timed", id(bundle), first.pair_id), dict)
        cell.driver = make_driver(first, task, bundle, config, workbench.cache)
        inputs = cell.driver.inputs()
        cell.costs["load"] = time.perf_counter() - t_load
        for rec in cell.recs.values():
            rec.update(cell.driver.columns)
        cap = None if config.memory_cap_mb is None else int(config.memory_cap_mb * 2**20)
        with MemoryCap(cap, first.device):
            _measure_runners(cell, task, bundle, inputs, workbench, config, pass_index)
    except Skip as skip:
        cell.close(None, "skipped", str(skip))
    except Exception as exc:  # failures are data
        status, message = classify(exc, config.memory_cap_mb is not None)
        cell.close(None, status, message)
        release(first.device)
    for rec in cell.recs.values():
        rec.update(cell_started_at=began, cell_s=time.perf_counter() - t0,
                   **{f"cost_{part}_s": cell.costs[part] for part in ("load", "parity", "timing", "warmup")
                      if part in cell.costs})
    return cell.results()


def _build(cell: _Cell, name: str, case: Case, task: Any, bundle: Any, inputs: list[Any], workbench: Workbench) -> Any:
    from ..endpoints import endpoint_name
    from ..envs import split_runner
    from ..runners import RunnerUnavailable, make_runner

    t = time.perf_counter()
    try:
        if endpoint_name(name) is not None:  # endpoint:NAME: a service running elsewhere
            from ..serving.endpoint import EndpointRunner

            endpoint = cell.config.endpoint(endpoint_name(name))
            run = EndpointRunner(case, task, bundle, inputs, None, endpoint, cell.config.http_timeout_s,
                                 cache=workbench.cache, seed=cell.seed)
            if name in cell.recs:
                cell.recs[name].update(endpoint_url=endpoint.url, endpoint_protocol=endpoint.protocol)
        elif name == HF_SERVE_RUNNER:  # --serve transformers: the model behind Hugging Face's server
            from ..serving.hf_serve import TransformersServeRunner

            run = TransformersServeRunner(case, task, bundle, inputs, cell.config.serve_options,
                                          cell.config.http_timeout_s, cache=workbench.cache, seed=cell.seed)
            if name in cell.recs:
                cell.recs[name].update(endpoint_url=run.endpoint.url, endpoint_protocol=run.endpoint.protocol)
        elif split_runner(name)[1] is not None:  # RUNNER@ENV: built in that environment's worker
            run = workbench.env_workers(cell.config).runner(name, case, inputs)
        else:
            run = make_runner(case, task, bundle, inputs, device_sync(case.device), workbench.cache, cell.seed)
    except RunnerUnavailable as exc:
        cell.close([name], "skipped", str(exc))
        return None
    cell.built.append(run)
    try:
        setup = run.prepare()
    except RunnerUnavailable as exc:
        cell.close([name], "skipped", str(exc))
        return None
    if name in cell.recs:
        cell.recs[name]["cost_build_s"] = time.perf_counter() - t
        if setup:
            cell.recs[name]["setup_s"] = setup
    return run


def _measure_runners(cell: _Cell, task: Any, bundle: Any, inputs: list[Any], workbench: Workbench,
                     config: EngineConfig, pass_index: int) -> None:
    """Build, check and time the runners of the cell, then close every runner built."""
    try:
        _measure_built(cell, task, bundle, inputs, workbench, config, pass_index)
    finally:
        try:
            cell.driver.close()  # servers it started stop here, whatever happened
        except Exception:
            pass
        for run in cell.built:
            try:
                run.close()
            except Exception:  # a runner that cannot let go must not cost the cell its records
                pass


def _measure_built(cell: _Cell, task: Any, bundle: Any, inputs: list[Any], workbench: Workbench,
                   config: EngineConfig, pass_index: int) -> None:
    first = next(iter(cell.cases.values()))
    reference = config.reference
    runners: dict[str, Any] = {}
    for name, case in cell.cases.items():
        try:
            run = _build(cell, name, case, task, bundle, inputs, workbench)
        except Exception as exc:
            cell.fail(name, exc)
            continue
        if run is not None:
            runners[name] = run
    if not runners:
        return
    if first.compiled:  # compilation happens in the first calls; timed here, apart from the samples
        for name, run in runners.items():
            try:
                cell.recs[name]["compile_s"], cell.recs[name]["compile_graphs"] = compile_warmup(run)
            except Exception as exc:
                cell.fail(name, exc)
    t = time.perf_counter()
    checked = check_parity(cell, task, runners,
                           lambda case: _build(cell, reference, case, task, bundle, inputs, workbench), reference)
    cell.costs["parity"] = time.perf_counter() - t
    runners = {n: r for n, r in runners.items() if cell.recs[n]["status"] is None}
    t = time.perf_counter()
    warm = bool(cell.warm) and not cell.driver.serves and all(
        getattr(r, "LOCAL", True) and not getattr(r, "remote", False) for r in runners.values())
    rule = warm_rule(config.rule, warm, parity_called=set(runners) <= checked)
    timing = _time(cell, task, runners, replace(config, rule=rule), reference)
    cell.costs["timing"] = time.perf_counter() - t
    if timing is None:
        return
    windows = [tm.total_s for tm in timing.timings.values()]  # one shared window, or one a runner
    cell.costs["warmup"] = max(0.0, cell.costs["timing"] - (max(windows) if timing.pairing == "interleaved"
                                                           else sum(windows)))
    cell.warm["timed"] = True
    for name, run in runners.items():
        if cell.recs[name]["status"] is not None:
            continue
        try:
            _finish(cell, name, run, timing, task, config, pass_index, reference)
        except Exception as exc:
            cell.fail(name, exc)
    if pass_index == 0 or config.explain == "all":  # after the timed windows, profiled (--explain)
        explain_cell(cell.recs, runners, config.explain, reference, cell.driver.per_call_passes)


def warm_rule(rule: StopRule, warm: bool, parity_called: bool = False) -> StopRule:
    """`rule`'s warm-up for this cell. Parity's call of a runner is its first warm-up call, so a
    first pass makes `rule.warmup` - 1 more (one at least) where parity called every runner timed:
    measured on the default matrix, the call after parity's carries what one-off cost is left, the
    calls after it drift down by a few percent alike for both runners (docs/precision.md). A cell whose shapes this process has already timed on the same model
    object, its runners all in this process (a budget's extra pass, ``--passes``), makes one (the
    one-off costs of new shapes are paid by then; a server started for the cell is cold, and
    keeps its warm-up)."""
    if warm:
        return replace(rule, warmup=min(rule.warmup, 1))
    return replace(rule, warmup=max(1, rule.warmup - 1)) if parity_called and rule.warmup > 1 else rule


def _time(cell: _Cell, task: Any, runners: dict[str, Any], config: EngineConfig,
          reference: str) -> PairedTiming | None:
    """Time the runners together (retrying without a runner that fails mid-way)."""
    from ..measure.gpu import EventTimer

    device = next(iter(cell.cases.values())).device
    driver = cell.driver
    for run in runners.values():
        driver.after_parity(run)
    serving = driver.serves
    while runners:
        calls: dict[str, Any] = {}
        cell.steps = {}
        for name, run in runners.items():
            call = driver.call_of(run)
            if serving:
                calls[name] = _guard(name, call)
                continue
            if task.streams:
                run.streamer = StepTimer()
                cell.steps[name] = []
                call = with_steps(run, cell.steps[name])
            if config.inject_slowdown and config.inject_runner in (None, name):
                call = slowed(call, config.inject_slowdown)
            calls[name] = _guard(name, call)
        cuda = device.startswith("cuda")
        remote = {n: _guard(n, r.block) for n, r in runners.items() if getattr(r, "remote", False)}
        events = {n: EventTimer(device) for n in runners if n not in remote} if cuda else None
        syncs = {n: r.sync for n, r in runners.items()}
        cell.graphs_before = graph_count()
        release(device)
        try:
            import torch

            from ..measure.yardstick import host_yardstick

            yardstick = (host_yardstick(device if cuda else "cpu")
                         if config.yardstick and config.pairing == "interleaved" and not serving else None)
            helpers = tuple(r.pid for r in runners.values() if getattr(r, "remote", False)) + driver.helpers() + \
                tuple(p for r in runners.values() if hasattr(r, "helpers") for p in r.helpers())
            with Interference(torch.get_num_threads(), device, helpers) as watch:
                if serving:
                    timing = driver.serve(calls)
                elif config.pairing == "interleaved" and (len(calls) > 1 or yardstick is not None or remote):
                    timing = measure_interleaved(calls, driver.rule(config.rule), reference=reference, syncs=syncs,
                                                 seed=config.seed, events=events, yardstick=yardstick,
                                                 block_calls=driver.block_calls, remote=remote)
                else:
                    timing = measure_sequential(calls, driver.rule(config.rule), syncs=syncs, events=events)
        except _RunnerFailed as failed:
            cell.fail(failed.name, failed.exc)
            release(device)
            runners = {n: r for n, r in runners.items() if n != failed.name}
            continue
        cell.events = events
        cell.interference = watch.reading.columns() if watch.reading is not None else {}
        return timing
    return None


def _finish(cell: _Cell, name: str, run: Any, timing: PairedTiming, task: Any, config: EngineConfig,
            pass_index: int, reference: str) -> None:
    """The record of one runner from its samples and its own passes."""
    case = cell.cases[name]
    rec = cell.recs[name]
    t = timing.timings[name]
    stats = summarize(t.samples, seed=config.seed)
    steps = cell.steps.get(name)
    if steps:
        timed = steps[-len(t.samples):]  # warm-up calls came first
        rec["ttft_s"] = float(np.median([s for s, _ in timed]))
        rec["tpot_s"] = float(np.median([p for _, p in timed]))
    service = getattr(run, "service_columns", None)
    if service is not None:  # a service: inter-token gaps of its streams, the tokens it reported
        rec.update(service())
    noise = noise_warning(stats) if cell.driver.spread_is_noise else None
    if case.compiled and graph_count() != cell.graphs_before:
        noise = "; ".join(x for x in (noise, "recompiled during timing") if x)
    rec.update(stats.as_columns())
    units = task.new_tokens if task.streams else case.seq_len
    rec.update(status="ok", samples_s=list(t.samples), n_samples=stats.n, warmup=t.warmup,
               sample_blocks=list(timing.blocks[name]) or None, pairing=timing.pairing,
               stop_reason=t.stop_reason, measure_s=t.total_s, noise=noise or None,
               items_per_s=case.batch_size / stats.median if stats.median > 0 else None,
               tokens_per_s=(case.batch_size * units / stats.median
                             if stats.median > 0 and task.modality == "text" else None))
    cell.samples[name] = t.samples
    if timing.host:
        from ..measure.yardstick import yardstick_version

        rec.update(host_median_s=float(np.median(timing.host)), host_samples_s=list(timing.host),
                   host_yardstick=yardstick_version(case.device))
    rec.update(cell.interference)
    events = cell.events
    if events and name in events and events[name].samples:
        rec["event_samples_s"] = list(events[name].samples)
        rec["cuda_event_median_s"] = float(np.median(events[name].samples))
    rec.update(ratio_columns(timing, name, reference, config.rule.ratio_ci, config.seed))
    driver = cell.driver
    rec.update(driver.runner_columns(name, run, stats))
    first = pass_index == 0  # later passes only time: readers take a case's passes' other figures from its first
    plan = PassPlan(per_call=first and driver.per_call_passes, flops=driver.flops_pass,
                    phase_calls=pass_calls(config.phase_calls, stats.median),
                    memory_calls=(pass_calls(3, stats.median) if driver.per_call_passes else 1) if first else 0,
                    items_per_call=driver.items_per_call, resource_pass_s=config.resource_pass_s if first else 0.0)
    t = time.perf_counter()
    if getattr(run, "remote", False):  # its passes run in its own environment's worker
        rec.update(run.finish(stats.median, plan))
    elif getattr(run, "LOCAL", True) and driver.local_passes:  # served or an endpoint: the work is elsewhere
        rec.update(runner_passes(run, driver.memory_call(run), stats.median, plan))
    rec["cost_passes_s"] = time.perf_counter() - t
    problem = driver.failure(name)
    if problem:
        rec.update(status="error", message=problem)
