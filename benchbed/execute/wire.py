"""One wire format for every launcher: what a process that measures a cell for another (an isolated
child, a Ray worker, a worker of another environment) is sent, and what it sends back.

A payload holds the cell's cases, the run's settings and context, the pass, and where the plugins
the cell needs come from (a task, runner or scenario registered by a suite module or a test file is loaded
again on the other side). Records travel as JSON-safe dicts (timestamps as ISO text) and come back
as the same `CellResult` tuples a cell measured in this process gives. A cell whose process died
becomes failure records built here, the same way for every launcher.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import asdict
from typing import Any, Iterable

from ..runners.build import load_sources, setup_process, source_of
from ..spec import Case, Endpoint
from .records import CellResult, base_record
from .config import EngineConfig, RunContext

__all__ = ["payload", "unpack", "to_wire", "from_wire", "failure_results"]

_TIMES = ("started_at", "cell_started_at")


def payload(cases: list[Case], config: EngineConfig, ctx: RunContext, pass_index: int) -> dict[str, Any]:
    """The cell as the other process needs it (JSON-safe)."""
    import torch

    from ..envs import split_runner
    from ..measure.flops import known_peaks
    from ..runners import get_runner
    from ..scenarios import get_scenario
    from ..tasks import _REGISTRY

    cfg = asdict(config)
    cfg["threads"] = config.threads or torch.get_num_threads()
    sources = [source_of(_REGISTRY.get(cases[0].task), "benchbed.tasks")]
    sources += [source_of(get_runner(split_runner(name)[0], cases[0].task), "benchbed.runners")
                for name in {c.runner for c in cases} | {config.reference} if not name.startswith("endpoint:")]
    sources.append(source_of(get_scenario(cases[0].scenario).driver_class(), "benchbed.execute.drivers"))
    return {
        "cases": [{**c.params(), "options": list(map(list, c.options))} for c in cases],
        "config": cfg, "results": ctx.results, "run_id": ctx.run_id, "started_at": ctx.started_at.isoformat(),
        "pass_index": pass_index, "sources": [s for s in sources if s], "peaks": known_peaks(),
    }


def unpack(data: dict[str, Any]) -> tuple[list[Case], EngineConfig, RunContext]:
    """On the other side: load the plugins the cell needs, rebuild its cases, settings and run
    context, and set the process up as the run's settings say."""
    from ..env import collect_env
    from ..measure import StopRule

    load_sources(data.get("sources", []))
    cfg = dict(data["config"])
    cfg["rule"] = StopRule(**cfg["rule"])
    cfg["envs"] = tuple(_built_env(e) for e in cfg.get("envs") or ())
    cfg["endpoints"] = tuple(Endpoint(**e) for e in cfg.get("endpoints") or ())
    config = EngineConfig(**cfg)
    setup_process(config)
    cases = []
    for c in data["cases"]:
        c = dict(c)
        c["options"] = tuple(tuple(x) for x in c.get("options", []))
        cases.append(Case(**c))
    ctx = RunContext(run_id=data["run_id"], started_at=_dt.datetime.fromisoformat(data["started_at"]),
                     env=collect_env(), results=data.get("results", ""), in_child=True)
    return cases, config, ctx


def _built_env(data: dict[str, Any]) -> Any:
    from ..envs import BuiltEnv, EnvSpec

    spec = dict(data["spec"])
    spec["requirements"] = tuple(spec.get("requirements") or ())
    spec["install_args"] = tuple(spec.get("install_args") or ())
    return BuiltEnv(**{**data, "spec": EnvSpec(**spec)})


def to_wire(rec: dict[str, Any]) -> dict[str, Any]:
    """A record as JSON holds it."""
    return {k: (v.isoformat() if isinstance(v, _dt.datetime) else v) for k, v in rec.items()}


def from_wire(records: Iterable[dict[str, Any]], cases: list[Case], ctx: RunContext) -> list[CellResult]:
    """Records sent back, as `CellResult` tuples of the cell's own cases (the run's start time is
    the driver's, whatever clock the other side had)."""
    by_runner = {c.runner: c for c in cases}
    out = []
    for rec in records:
        rec = dict(rec)
        rec["started_at"] = ctx.started_at
        if isinstance(rec.get("cell_started_at"), str):
            rec["cell_started_at"] = _dt.datetime.fromisoformat(rec["cell_started_at"])
        out.append((by_runner[rec["runner"]], rec, tuple(rec.get("samples_s") or ())))
    return out


def failure_results(cases: list[Case], config: EngineConfig, ctx: RunContext, pass_index: int, status: str,
                    message: str, **columns: Any) -> list[CellResult]:
    """One record per case of a cell whose process died or overran: `status` and `message`."""
    out = []
    for case in cases:
        rec = base_record(case, ctx, config, pass_index)
        rec.update(status=status, message=message[:2000], **columns)
        out.append((case, rec, ()))
    return out
