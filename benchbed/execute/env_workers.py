"""Runners in other environments (``RUNNER@ENV``): one worker process per environment, started
once per run with that environment's interpreter and kept for the run (its models stay cached),
and a proxy per runner that the cell treats like a local runner.

The proxy's calls go to its worker; its timed samples come from the worker's own clock, one block
of calls at a time (`block`), so `measure_interleaved` alternates blocks across processes exactly
as it alternates runners of one process: a version-vs-version ratio is paired like a
runner-vs-runner one. Parity compares the worker's answers with the reference's in this process.
The frame round trip is outside every timed call.
"""

from __future__ import annotations

import subprocess
import tempfile
import threading
from typing import Any

from ..envs import BuiltEnv, split_runner
from .env_worker import read_frame, write_frame

__all__ = ["EnvWorkers", "EnvRunner", "WorkerFailed"]


class WorkerFailed(RuntimeError):
    """The worker answered with an error, or died (its last stderr line says why)."""


class _Worker:
    def __init__(self, env: BuiltEnv, config: Any) -> None:
        import torch

        self.env = env
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([env.python, "-m", "benchbed.execute.env_worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log)
        self.lock = threading.Lock()
        self.versions = self.request("hello", {"config": config, "threads": torch.get_num_threads()})

    def request(self, command: str, payload: Any = None) -> Any:
        with self.lock:
            try:
                write_frame(self.proc.stdin, (command, payload))
                kind, value = read_frame(self.proc.stdout)
            except (EOFError, BrokenPipeError, OSError):
                try:  # the pipe closes a moment before the process is reaped
                    code = self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    code = None
                how = (f"killed by signal {-code}" if code is not None and code < 0
                       else f"exit {code}" if code is not None else "still running, its pipe closed")
                raise WorkerFailed(f"the worker of environment {self.env.spec.name} died ({how}): "
                                   f"{self._last_line()}") from None
        if kind == "error":
            raise WorkerFailed(value)
        return value

    def _last_line(self) -> str:
        self.proc.poll()
        self.log.seek(0)
        lines = [ln for ln in self.log.read().decode(errors="replace").splitlines() if ln.strip()]
        return lines[-1][:500] if lines else "no message"

    def close(self) -> None:
        try:
            if self.proc.stdin:
                self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except Exception:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


class EnvWorkers:
    """The workers of a run, by environment name, started on first use; `close` ends them all."""

    def __init__(self, envs: dict[str, BuiltEnv], config: Any) -> None:
        self.envs = envs
        self.config = config
        self._workers: dict[str, _Worker] = {}
        self._count = 0

    def worker(self, name: str) -> _Worker:
        if name not in self._workers:
            self._workers[name] = _Worker(self.envs[name], self.config)
        return self._workers[name]

    def runner(self, name: str, case: Any, inputs: list[Any]) -> "EnvRunner":
        """The proxy of runner ``RUNNER@ENV`` (`name`) for `case`."""
        runner, env = split_runner(name)
        self._count += 1
        from dataclasses import replace

        return EnvRunner(self.worker(env), replace(case, runner=runner), inputs, f"{name}#{self._count}")

    def close(self) -> None:
        for w in self._workers.values():
            w.close()
        self._workers.clear()


class EnvRunner:
    """A runner living in another environment's worker (see the module docstring)."""

    TORCH_ALLOCATOR = True
    remote = True

    def __init__(self, worker: _Worker, case: Any, inputs: list[Any], key: str) -> None:
        self.worker, self.case, self.inputs, self.key = worker, case, inputs, key

    def prepare(self) -> float:
        from ..runners import RunnerUnavailable

        from ..runners.build import plugin_sources

        answer = self.worker.request("build", {"case": self.case, "key": self.key, "inputs": self.inputs,
                                               "sources": plugin_sources(self.case.task, self.case.runner)})
        if "skipped" in answer:
            raise RunnerUnavailable(f"in environment {self.worker.env.spec.name}: {answer['skipped']}")
        return float(answer["setup_s"] or 0.0)

    def __call__(self) -> Any:
        return self.worker.request("call", {"key": self.key})

    def sync(self) -> None:
        """Each block synchronises in the worker; nothing is queued here."""

    def block(self, n: int) -> list[float]:
        return self.worker.request("block", {"key": self.key, "n": n})

    def finish(self, median_s: float, plan: Any) -> dict[str, Any]:
        """The runner's passes (`passes.PassPlan`), measured in its worker, and its environment's columns."""
        out = self.worker.request("finish", {"key": self.key, "median_s": median_s, "plan": plan})
        return {**out, **self.worker.versions, **self.worker.env.columns()}

    def explain(self, rec: dict[str, Any]) -> dict[str, Any]:
        """The runner's explain pass, in its worker (its profile is of its own environment's code)."""
        keep = {k: rec.get(k) for k in ("lat_median_s", "measure_s", "device")}
        return self.worker.request("explain", {"key": self.key, "rec": keep})

    def state_bytes(self) -> int | None:
        return None

    @property
    def pid(self) -> int:
        """The worker's process id (its CPU is this cell's own, for interference accounting)."""
        return self.worker.proc.pid

    def close(self) -> None:
        if self.worker.proc.poll() is None:
            try:
                self.worker.request("close", {"key": self.key})
            except WorkerFailed:
                pass
