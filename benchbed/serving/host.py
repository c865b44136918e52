"""A runner inside a server process: built from a spec the parent wrote (the case, the batch it is
built with, the run's settings, plug-in sources), exactly as the cell builds it in-process, and one
request served through it with its parts timed (decoding the JSON body, the runner's call,
encoding the answer). The uvicorn app and the Ray Serve deployment both serve through here."""

from __future__ import annotations

import json
import os
import time
from typing import Any

__all__ = ["build_runner", "handle", "SERVICE_HEADER", "die_with_parent"]

#: Response header with the server's own timings: ``service=S;decode=S;encode=S;queue=S`` (seconds).
SERVICE_HEADER = "x-benchbed-timing"


def die_with_parent() -> None:
    """Ask Linux to kill this process when its parent dies (a server outlives nothing it serves)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def build_runner(spec: dict[str, Any]) -> Any:
    """The spec's runner, built and prepared in this process (its model loaded here)."""
    from ..runners.build import ModelCache, build_runner, setup_process

    config = spec["config"]
    setup_process(config, spec.get("threads"))
    run = build_runner(spec["case"], spec["inputs"], ModelCache(config.seed, config.trust_remote_code),
                       spec.get("sources", ()))
    run.prepare()
    run()  # the first call's one-off work (lazy init, allocator growth) is not a request's
    run.sync()
    return run


def handle(run: Any, body: bytes, queued_s: float = 0.0) -> tuple[int, bytes, str]:
    """One request: ``{"inputs": [...]}`` in, ``{"outputs": [...]}`` out; (status, body, timing
    header). A bad body is a 400 with the reason; a runner that raises is a 500 with its message."""
    from .codec import CodecError, decode, dumps

    t0 = time.perf_counter()
    try:
        inputs = decode(json.loads(body)["inputs"])
        if not isinstance(inputs, list) or not inputs:
            raise ValueError("'inputs' must be a non-empty list")
    except (ValueError, KeyError, TypeError, CodecError) as exc:
        return 400, json.dumps({"error": f"bad request: {exc}"}).encode(), ""
    t1 = time.perf_counter()
    try:
        run.inputs = inputs
        out = run()
        run.sync()
    except Exception as exc:  # the client records it as the request's error
        return 500, json.dumps({"error": f"{type(exc).__name__}: {exc}"[:500]}).encode(), ""
    t2 = time.perf_counter()
    payload = dumps({"outputs": out})
    t3 = time.perf_counter()
    return 200, payload, f"service={t2 - t1:.9f};decode={t1 - t0:.9f};encode={t3 - t2:.9f};queue={queued_s:.9f}"


def parse_timing(header: str | None) -> dict[str, float]:
    """The timing header's parts, by name."""
    out: dict[str, float] = {}
    for part in (header or "").split(";"):
        name, _, value = part.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            continue
    return out


def read_spec(path: str | None = None) -> dict[str, Any]:
    import pickle

    with open(path or os.environ["BENCHBED_SERVE_SPEC"], "rb") as f:
        return pickle.load(f)
