"""Launchers: where a cell is measured. In this process (`run_here`), or in a fresh subprocess
(`run_isolated`, ``--isolate``) so its memory figures owe nothing to earlier cells and a hung or
dying cell cannot take the run with it.

The parent sends the cell, the run's settings and where to store to ``python -m
benchbed.execute.launch`` on stdin and blocks in ``wait`` until the child exits: no polling, no
sampling, nothing competing with the child for a core. The child gets the parent's thread count
and tokenizer setting, measures the cell with the same `measure_cell`, writes its records to the
run's store itself (so a parent killed half-way loses nothing), and prints them as one JSON line.
A child that dies or overruns its timeout becomes ``error`` / ``oom`` / ``timeout`` records that
the caller stores. Tasks and runners registered outside benchbed (a suite module, a plugin, a test
file) are loaded in the child from the module or file that registered them.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import signal
import subprocess
import sys
from dataclasses import asdict
from typing import Any

from ..spec import Case
from .cell import CellResult, base_record, measure_cell
from .config import EngineConfig, RunContext
from .failures import subprocess_status
from .workbench import Workbench, setup_process

__all__ = ["run_here", "run_isolated", "child_main"]

_MARK = "BENCHBED-RECORDS "


def run_here(cases: list[Case], workbench: Workbench, config: EngineConfig, ctx: RunContext,
             pass_index: int) -> list[CellResult]:
    """Measure the cell in this process; the caller stores the records."""
    return measure_cell(cases, workbench, config, ctx, pass_index)


def _source(cls: Any, builtin: str) -> dict[str, str] | None:
    """Where a class registered outside benchbed comes from: its module name and file."""
    module = getattr(cls, "__module__", "") or ""
    if not cls or module.startswith(builtin):
        return None
    mod = sys.modules.get(module)
    return {"module": module, "file": getattr(mod, "__file__", None) or ""}


def _payload(cases: list[Case], config: EngineConfig, ctx: RunContext, pass_index: int) -> dict[str, Any]:
    import torch

    from ..measure.flops import known_peaks
    from ..runners import get_runner
    from ..tasks import _REGISTRY

    cfg = asdict(config)
    cfg["threads"] = config.threads or torch.get_num_threads()
    sources = [_source(_REGISTRY.get(cases[0].task), "benchbed.tasks")]
    sources += [_source(get_runner(name, cases[0].task), "benchbed.runners") for name in {c.runner for c in cases} | {config.reference}]
    return {
        "cases": [{**c.params(), "options": list(map(list, c.options))} for c in cases],
        "config": cfg, "results": ctx.results, "run_id": ctx.run_id, "started_at": ctx.started_at.isoformat(),
        "pass_index": pass_index, "sources": [s for s in sources if s], "peaks": known_peaks(),
    }


def run_isolated(cases: list[Case], config: EngineConfig, ctx: RunContext,
                 pass_index: int, child_stores: bool = True) -> tuple[list[CellResult], bool]:
    """Measure the cell in a child process. Returns (results, stored): True when the child stored
    the records itself, False when it died and the results are failure records for the caller to store."""
    from ..measure.flops import remember_peaks

    payload = json.dumps({**_payload(cases, config, ctx, pass_index), "store": child_stores})
    env = dict(os.environ, TOKENIZERS_PARALLELISM=os.environ.get("TOKENIZERS_PARALLELISM", "false"),
               BENCHBED_PARENT_PID=str(os.getpid()))
    cmd = [sys.executable, "-m", "benchbed.execute.launch"]
    timeout = config.case_timeout_s

    def failed(status: str, message: str) -> tuple[list[CellResult], bool]:
        out = []
        for case in cases:
            rec = base_record(case, ctx, config, pass_index)
            rec.update(status=status, message=message[:2000], isolated=True)
            out.append((case, rec, ()))
        return out, False

    try:
        proc = subprocess.run(cmd, input=payload, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return failed("timeout", f"isolated case exceeded {timeout:g} s and was killed")
    if proc.stderr:
        sys.stderr.write(proc.stderr)
    line = next((ln for ln in reversed(proc.stdout.splitlines()) if ln.startswith(_MARK)), None)
    if line is None:
        if proc.returncode < 0:
            sig = signal.Signals(-proc.returncode).name
            why = f"isolated case process was killed by {sig}"
            if sig == "SIGKILL":
                why += " (the kernel's OOM killer sends SIGKILL when memory runs out)"
        else:
            tail = (proc.stderr or "").strip().splitlines()[-1:] or ["no output"]
            why = f"isolated case process exited with code {proc.returncode}: {tail[0]}"
        return failed(subprocess_status(proc.stderr, config.memory_cap_mb is not None), why)
    data = json.loads(line[len(_MARK):])
    remember_peaks(data.get("peaks", []))
    by_runner = {c.runner: c for c in cases}
    out = []
    for rec in data["records"]:
        rec["started_at"] = ctx.started_at
        if rec.get("cell_started_at"):
            rec["cell_started_at"] = _dt.datetime.fromisoformat(rec["cell_started_at"])
        out.append((by_runner[rec["runner"]], rec, tuple(rec.get("samples_s") or ())))
    return out, child_stores


def _load_source(source: dict[str, str]) -> None:
    import importlib
    import importlib.util

    try:
        importlib.import_module(source["module"])
        return
    except ImportError:
        if not source.get("file"):
            raise
    spec = importlib.util.spec_from_file_location(source["module"].replace(".", "_"), source["file"])
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[spec.name] = module  # type: ignore[union-attr]
    spec.loader.exec_module(module)  # type: ignore[union-attr]


def unpack(payload: dict[str, Any]) -> tuple[list[Case], EngineConfig, RunContext]:
    """In a process that measures a cell for another (an isolated child, a cluster worker): load
    the plugins the cell needs, rebuild its cases, settings and run context, set the process up."""
    from ..env import collect_env
    from ..measure import StopRule

    for source in payload.get("sources", []):
        if not source.get("file") or os.path.exists(source["file"]):
            _load_source(source)
    cfg = dict(payload["config"])
    cfg["rule"] = StopRule(**cfg["rule"])
    config = EngineConfig(**cfg)
    setup_process(config)
    cases = []
    for c in payload["cases"]:
        c = dict(c)
        c["options"] = tuple(tuple(x) for x in c.get("options", []))
        cases.append(Case(**c))
    ctx = RunContext(run_id=payload["run_id"], started_at=_dt.datetime.fromisoformat(payload["started_at"]),
                     env=collect_env(), results=payload.get("results", ""), in_child=True)
    return cases, config, ctx


def die_with_parent() -> None:
    """Make this child die when the process that started it dies (SIGKILL included): Linux's
    ``PR_SET_PDEATHSIG``, and a check that the parent did not die before it was set. A child that
    outlived its parent would go on measuring, and store records into a run nobody finishes."""
    parent = os.environ.get("BENCHBED_PARENT_PID")
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
        except (OSError, AttributeError):
            pass
    if parent and str(os.getppid()) != parent:
        os._exit(1)


def _parent_alive() -> bool:
    parent = os.environ.get("BENCHBED_PARENT_PID")
    return not parent or str(os.getppid()) == parent


def child_main() -> int:
    """Entry of the child process: read the payload, measure the cell, store, print the records."""
    die_with_parent()
    payload = json.loads(sys.stdin.read())
    from ..measure.flops import known_peaks, remember_peaks
    from ..store import open_store

    cases, config, ctx = unpack(payload)
    remember_peaks(payload.get("peaks", []))
    results = measure_cell(cases, Workbench(config.seed, config.trust_remote_code), config, ctx,
                           payload["pass_index"])
    store = open_store(ctx.results, ctx.run_id) if payload.get("store", True) else None
    records = []
    for _, rec, _ in results:
        if not _parent_alive():
            return 1
        if store is not None:
            store.write(rec)
        records.append({k: (v.isoformat() if isinstance(v, _dt.datetime) else v) for k, v in rec.items()})
    sys.stdout.write(_MARK + json.dumps({"records": records, "peaks": known_peaks()}) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(child_main())
