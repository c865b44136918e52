"""The ASGI app of one uvicorn worker (``uvicorn benchbed.serving.app:make_app --factory``): its
runner is built at startup from the spec ``BENCHBED_SERVE_SPEC`` names, then it answers

- ``GET /health``: 200 once the runner is built;
- ``POST /v1/run``: ``{"inputs": [...]}`` -> ``{"outputs": [...]}`` (`codec`), with the server's
  own timings in the ``x-benchbed-timing`` header (queue, decode, service, encode).

Requests are served one at a time by one thread, in arrival order, while the event loop keeps
accepting, so a request's wait in this worker is measured (``queue``) and a second request never
runs beside the first on the same cores (the in-process server scenario does the same). A plain
ASGI app rather than FastAPI: two routes, no validation layer to time.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

__all__ = ["make_app"]


def make_app() -> Any:
    """The app; its runner is built in the lifespan startup (a failure stops the worker and is
    written beside the ready files for the parent to report)."""
    from .host import build_runner, die_with_parent, handle, read_spec

    state: dict[str, Any] = {}
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="benchbed-serve")
    ready_dir = os.environ.get("BENCHBED_SERVE_READY")

    def mark(kind: str, text: str = "") -> None:
        if ready_dir:
            with open(os.path.join(ready_dir, f"{kind}-{os.getpid()}"), "w") as f:
                f.write(text)

    async def lifespan(receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                die_with_parent()
                try:
                    loop = asyncio.get_running_loop()
                    state["run"] = await loop.run_in_executor(pool, build_runner, read_spec())
                except BaseException as exc:  # noqa: BLE001 - reported to the parent, then the worker stops
                    from ..runners.failures import classify

                    mark("failed", classify(exc)[1] if isinstance(exc, Exception) else repr(exc))
                    await send({"type": "lifespan.startup.failed", "message": str(exc)[:500]})
                    return
                mark("ready")
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                run = state.pop("run", None)
                if run is not None:
                    run.close()
                pool.shutdown(wait=False)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def reply(send: Any, status: int, body: bytes, timing: str = "") -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if timing:
            headers.append((b"x-benchbed-timing", timing.encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            return await lifespan(receive, send)
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path == "/health" and method == "GET":
            ok = "run" in state
            return await reply(send, 200 if ok else 503, json.dumps({"ready": ok, "pid": os.getpid()}).encode())
        if path != "/v1/run" or method != "POST":
            return await reply(send, 404, json.dumps({"error": f"no route {method} {path} (valid: GET /health, "
                                                                f"POST /v1/run)"}).encode())
        arrived = time.perf_counter()
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)

        def serve() -> tuple[int, bytes, str]:
            return handle(state["run"], body, time.perf_counter() - arrived)

        status, payload, timing = await asyncio.get_running_loop().run_in_executor(pool, serve)
        await reply(send, status, payload, timing)

    return app
