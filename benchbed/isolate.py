"""Each case in a fresh subprocess (``--isolate``), so its memory figures owe nothing to earlier cases.

The parent sends the case, the run's settings and where to store to ``python -m benchbed.isolate``
on stdin and blocks in ``wait`` until the child exits: no polling, no sampling, nothing competing
with the child for a core. The child gets the parent's thread count and tokenizer setting, measures
the case with the same engine, writes its record to the run's store itself (so a parent killed
half-way loses nothing), and prints the record as one JSON line. A child that dies or overruns
``case_timeout_s`` becomes an ``error`` / ``oom`` / ``timeout`` record written by the parent.
Tasks registered outside benchbed (a suite module, a plugin) are loaded in the child from the
module or file that registered them.
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

__all__ = ["run_isolated", "child_main"]

_MARK = "BENCHBED-RECORD "


def _task_source(name: str) -> dict[str, str] | None:
    """Where a task registered outside benchbed comes from: its module name and file."""
    from .tasks import _REGISTRY

    cls = _REGISTRY.get(name)
    module = getattr(cls, "__module__", "") or ""
    if not cls or module.startswith("benchbed.tasks"):
        return None
    mod = sys.modules.get(module)
    return {"module": module, "file": getattr(mod, "__file__", None) or ""}


def _payload(session: Any, case: Any, pass_index: int) -> dict[str, Any]:
    import torch

    from .measure.flops import known_peaks

    config = asdict(session.config)
    config["threads"] = session.config.threads or torch.get_num_threads()
    return {
        "case": {**case.params(), "options": list(map(list, case.options))},
        "config": config,
        "results": session.results_root,
        "run_id": session.run_id,
        "started_at": session.started_at.isoformat(),
        "pass_index": pass_index,
        "task_source": _task_source(case.task),
        "peaks": known_peaks(),
    }


def run_isolated(session: Any, case: Any, pass_index: int = 0) -> Any:
    """Run `case` in a child process; returns the `CaseResult` (the child stored the record)."""
    from .engine import CaseResult
    from .measure.flops import remember_peaks

    payload = json.dumps(_payload(session, case, pass_index))
    env = dict(os.environ, TOKENIZERS_PARALLELISM=os.environ.get("TOKENIZERS_PARALLELISM", "false"))
    cmd = [sys.executable, "-m", "benchbed.isolate"]
    timeout = session.config.case_timeout_s
    try:
        proc = subprocess.run(cmd, input=payload, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return session.skip_case(case, f"isolated case exceeded {timeout:g} s and was killed",
                                 pass_index=pass_index, status="timeout", isolated=True)
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
        # libgomp that cannot start its threads under a memory cap ends the process itself: an oom
        text = (proc.stderr or "").lower()
        oom = session.config.memory_cap_mb is not None and any(
            s in text for s in ("thread creation failed", "cannot allocate memory", "out of memory"))
        return session.skip_case(case, why[:2000], pass_index=pass_index, status="oom" if oom else "error",
                                 isolated=True)
    data = json.loads(line[len(_MARK):])
    rec = data["record"]
    rec["started_at"] = session.started_at
    remember_peaks(data.get("peaks", []))
    result = CaseResult(case=case, record=rec, path=data.get("path"), samples=tuple(rec.get("samples_s") or ()))
    session.results.append(result)
    return result


def _load_task(source: dict[str, str] | None) -> None:
    if not source:
        return
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


def child_main() -> int:
    """Entry of the child process: read the payload, measure, store, print the record."""
    payload = json.loads(sys.stdin.read())
    from .engine import EngineConfig, Session
    from .measure import StopRule
    from .measure.flops import known_peaks, remember_peaks
    from .spec import Case

    _load_task(payload.get("task_source"))
    cfg = dict(payload["config"])
    cfg["rule"] = StopRule(**cfg["rule"])
    config = EngineConfig(**cfg)
    remember_peaks(payload.get("peaks", []))
    c = dict(payload["case"])
    c["options"] = tuple(tuple(x) for x in c.get("options", []))
    case = Case(**c)
    session = Session(payload["results"], config, run_id=payload["run_id"])
    session.started_at = _dt.datetime.fromisoformat(payload["started_at"])
    session.in_child = True
    result = session.run_case(case, pass_index=payload["pass_index"])
    rec = {k: (v.isoformat() if isinstance(v, _dt.datetime) else v) for k, v in result.record.items()}
    out = {"record": rec, "path": str(result.path) if result.path else None,
           "peaks": known_peaks()}
    sys.stdout.write(_MARK + json.dumps(out) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(child_main())
