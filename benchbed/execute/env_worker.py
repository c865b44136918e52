"""The worker process of one environment (``python -m benchbed.execute.env_worker``, started with
that environment's interpreter by `env_workers.EnvWorkers`): it builds the runners of cells it is
handed, with its own versions of every package, keeps their models cached for the run, and times
blocks of calls on request by its own clock, so the engine can interleave them with the blocks of
runners in other environments exactly as it interleaves runners of one process.

Frames on stdin/stdout: a 4-byte big-endian length, then a pickle of ``(command, payload)``; the
answer is ``("ok", value)`` or ``("error", message)`` (the exception's class and text). The worker's own stdout is moved to
stderr first, so nothing a library prints can corrupt a frame. End of input: the worker exits.
"""

from __future__ import annotations

import os
import pickle
import struct
import sys
import time
from typing import Any, BinaryIO

__all__ = ["read_frame", "write_frame", "serve"]


def read_frame(stream: BinaryIO) -> Any:
    """One frame from `stream`; EOFError at its end."""
    head = stream.read(4)
    if len(head) < 4:
        raise EOFError
    (n,) = struct.unpack(">I", head)
    body = stream.read(n)
    if len(body) < n:
        raise EOFError
    return pickle.loads(body)


def write_frame(stream: BinaryIO, obj: Any) -> None:
    body = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack(">I", len(body)) + body)
    stream.flush()


class _State:
    """The worker's run: its workbench (models cached for the run) and the runners built, by key."""

    def __init__(self) -> None:
        self.workbench: Any = None
        self.runners: dict[str, Any] = {}

    def hello(self, payload: dict[str, Any]) -> dict[str, Any]:
        from ..env import collect_env
        from ..runners.build import ModelCache, setup_process

        config = payload["config"]
        setup_process(config, payload.get("threads"))  # the parent's threads: both sides use the same cores
        self.workbench = ModelCache(config.seed, config.trust_remote_code)
        self.config = config
        return {k: v for k, v in collect_env().items() if k.startswith("env_")}

    def build(self, payload: dict[str, Any]) -> dict[str, Any]:
        from ..runners import RunnerUnavailable
        from ..runners.build import build_runner

        try:
            run = build_runner(payload["case"], payload["inputs"], self.workbench, payload.get("sources", ()))
            setup = run.prepare()
        except RunnerUnavailable as exc:
            return {"skipped": str(exc)}
        self.runners[payload["key"]] = run
        return {"setup_s": setup}

    def call(self, payload: dict[str, Any]) -> Any:
        run = self.runners[payload["key"]]
        return run()

    def block(self, payload: dict[str, Any]) -> list[float]:
        """`n` calls, each timed by this process's clock with the device synchronised inside."""
        run = self.runners[payload["key"]]
        out = []
        for _ in range(payload["n"]):
            t0 = time.perf_counter()
            run()
            run.sync()
            out.append(time.perf_counter() - t0)
        return out

    def finish(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The runner's own passes (phases, FLOPs, memory, device counters), as in-process."""
        from .passes import runner_passes

        run = self.runners[payload["key"]]
        return runner_passes(run, run, payload["median_s"], payload["plan"])

    def explain(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The runner's explain pass (`explain_pass.profile_runners`) in this environment."""
        from .explain_pass import profile_runners

        return profile_runners({"run": self.runners[payload["key"]]}, {"run": payload["rec"]})["run"]

    def close(self, payload: dict[str, Any]) -> None:
        run = self.runners.pop(payload["key"], None)
        if run is not None:
            run.close()


def serve(inp: BinaryIO, out: BinaryIO) -> None:
    """Answer frames until the end of `inp`."""
    state = _State()
    while True:
        try:
            command, payload = read_frame(inp)
        except EOFError:
            return
        try:
            value = getattr(state, command)(payload)
            write_frame(out, ("ok", value))
        except Exception as exc:  # the parent turns it into the runner's record
            from ..runners.failures import classify

            write_frame(out, ("error", classify(exc)[1]))


def main() -> None:
    channel = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # whatever a library prints goes to stderr, never into a frame
    sys.stdout = sys.stderr
    serve(sys.stdin.buffer, channel)


if __name__ == "__main__":
    main()
