"""The ``subprocess`` launcher: each cell in a fresh interpreter (``--isolate``), so its memory
figures owe nothing to earlier cells and a hung or dying cell cannot take the run with it.

The parent sends the cell (`benchbed.execute.wire`) to ``python -m
benchbed.execute.launchers.isolated`` on stdin and blocks in ``wait`` until the child exits: no
polling, no sampling, nothing competing with the child for a core. The child gets the parent's
thread count and tokenizer setting, measures the cell with the same `measure_cell`, and prints its
records as one JSON line; the parent stores them, as every launcher's records are stored. The
child dies with its parent (``PR_SET_PDEATHSIG``), so a parent killed half-way leaves nothing
running. A child that dies or overruns ``--case-timeout`` becomes ``error`` / ``oom`` /
``timeout`` records.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from ..cell import measure_cell
from ..records import CellResult
from ...runners.failures import subprocess_status
from ..schedule import Job
from ..workbench import Workbench
from ..wire import failure_results, from_wire, payload, to_wire, unpack
from .base import Launcher, register_launcher

__all__ = ["Subprocess", "child_main", "die_with_parent"]

_MARK = "BENCHBED-RECORDS "


@register_launcher
class Subprocess(Launcher):
    NAME = "subprocess"
    description = "a fresh Python process per cell (memory figures of its own; hung cells killed at --case-timeout)"

    def measure(self, job: Job) -> tuple[list[CellResult], bool]:
        from ...measure.flops import remember_peaks

        cases, config, ctx = job.cases, job.config_for(self.config), self.ctx
        data = json.dumps(payload(cases, config, ctx, job.pass_index))
        env = dict(os.environ, TOKENIZERS_PARALLELISM=os.environ.get("TOKENIZERS_PARALLELISM", "false"),
                   BENCHBED_PARENT_PID=str(os.getpid()))
        cmd = [sys.executable, "-m", "benchbed.execute.launchers.isolated"]
        timeout = config.case_timeout_s

        def failed(status: str, message: str) -> tuple[list[CellResult], bool]:
            return failure_results(cases, config, ctx, job.pass_index, status, message, isolated=True), False

        try:
            proc = subprocess.run(cmd, input=data, capture_output=True, text=True, env=env, timeout=timeout)
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
        back = json.loads(line[len(_MARK):])
        remember_peaks(back.get("peaks", []))
        return from_wire(back["records"], cases, ctx), False


def die_with_parent() -> None:
    """Make this child die when the process that started it dies (SIGKILL included): Linux's
    ``PR_SET_PDEATHSIG``, and a check that the parent did not die before it was set. A child that
    outlived its parent would go on measuring for a run nobody finishes."""
    parent = os.environ.get("BENCHBED_PARENT_PID")
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
        except (OSError, AttributeError):
            pass
    if parent and str(os.getppid()) != parent:
        os._exit(1)


def child_main() -> int:
    """Entry of the child process: read the cell, measure it, print the records."""
    die_with_parent()
    data = json.loads(sys.stdin.read())
    from ...measure.flops import known_peaks, remember_peaks

    cases, config, ctx = unpack(data)
    remember_peaks(data.get("peaks", []))
    results = measure_cell(cases, Workbench(config.seed, config.trust_remote_code), config, ctx, data["pass_index"])
    records = [to_wire(rec) for _, rec, _ in results]
    sys.stdout.write(_MARK + json.dumps({"records": records, "peaks": known_peaks()}) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(child_main())
