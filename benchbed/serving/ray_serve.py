"""``--serve ray``: the runner as a Ray Serve application with N replicas, driven over HTTP through
Serve's proxy exactly like benchbed's own server (the same handler, `host.handle`, the same
``/v1/run`` route under the application's prefix). Deployed on the cluster ``--serve-address``
names (or ``RAY_ADDRESS``), else on a local Ray started for the cell and shut down after it; the
proxy listens on the loopback address. The application is deleted and Serve shut down when the
cell is done, whatever happens. Records name the replicas (their Ray actor ids)."""

from __future__ import annotations

import os
import pickle
import socket
import time
from typing import Any

__all__ = ["RayServeApp"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Replica:
    """One replica: builds the runner at start, answers ``POST .../v1/run`` and ``GET .../health``."""

    def __init__(self, spec: bytes) -> None:
        from .host import build_runner

        self.run = build_runner(pickle.loads(spec))

    async def __call__(self, request: Any) -> Any:
        from starlette.responses import Response

        from .host import handle

        if request.url.path.endswith("/health"):
            return Response(b'{"ready": true}', media_type="application/json")
        arrived = time.perf_counter()
        body = await request.body()
        status, payload, timing = handle(self.run, body, time.perf_counter() - arrived)
        headers = {"x-benchbed-timing": timing} if timing else {}
        return Response(payload, status_code=status, media_type="application/json", headers=headers)


class RayServeApp:
    """``start()`` deploys, ``url`` is where to send requests, ``stop()`` removes everything."""

    def __init__(self, spec: dict[str, Any], replicas: int, runner: str, address: str | None = None) -> None:
        self.spec, self.replicas = spec, int(replicas)
        self.name = "benchbed-" + "".join(c if c.isalnum() else "-" for c in runner)
        self.address = address if address is not None else getattr(spec.get("config"), "serve_address", None)
        self.url: str | None = None
        self.start_s: float | None = None
        self.started_ray = False
        self.worker_pids: list[int] = []
        self.replica_names: list[str] = []

    def start(self) -> str:
        try:
            import ray
            from ray import serve
        except ImportError:
            raise RuntimeError("--serve ray needs Ray Serve (pip install 'benchbed[serve-ray]')") from None
        t0 = time.perf_counter()
        if not ray.is_initialized():
            from .ray_auth import init_failure, token_in_memory

            address = self.address or os.environ.get("RAY_ADDRESS") or None
            if address is None:
                token_in_memory()
            import logging

            for name in ("ray", "ray.serve"):  # Ray's startup chatter is not the run's news
                logging.getLogger(name).setLevel(logging.ERROR)
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
            except Exception as exc:  # noqa: BLE001 - ray raises its own classes, by version
                raise RuntimeError(init_failure(address, exc)) from None
            self.started_ray = True
        port = _free_port()
        try:
            serve.start(http_options={"host": "127.0.0.1", "port": port})
            deployment = serve.deployment(_Replica, name="runner", num_replicas=self.replicas,
                                          ray_actor_options={"num_cpus": 0}, max_ongoing_requests=1,
                                          health_check_period_s=2)
            serve.run(deployment.bind(pickle.dumps(self.spec)), name=self.name, route_prefix=f"/{self.name}")
        except BaseException:
            self.stop()
            raise
        self.url = f"http://127.0.0.1:{port}/{self.name}"
        self.start_s = time.perf_counter() - t0
        self._replicas()
        return self.url

    def _replicas(self) -> None:
        """The replicas' names (Serve's ``app#deployment#id``) and process ids."""
        import ray

        try:
            actors = [a for a in ray.util.list_named_actors(all_namespaces=True)
                      if a["name"].startswith(f"SERVE_REPLICA::{self.name}#")]
            self.replica_names = sorted(a["name"].split("::", 1)[1] for a in actors)
            handles = [ray.get_actor(a["name"], namespace=a["namespace"]) for a in actors]
            self.worker_pids = list(ray.get([h.__ray_call__.remote(lambda self: os.getpid()) for h in handles],
                                            timeout=30))
        except Exception:  # naming the replicas is optional to the measurement
            pass

    def helper_pids(self) -> list[int]:
        """Processes working for this measurement: the replicas; with a Ray started here, every
        process of it (proxy, controller, raylet), all descendants of this process."""
        if not self.started_ray:
            return list(self.worker_pids)
        import psutil

        return [c.pid for c in psutil.Process().children(recursive=True)]

    def alive(self) -> bool:
        try:
            from ray import serve

            status = serve.status().applications.get(self.name)
            return status is not None and str(status.status).endswith("RUNNING")
        except Exception:
            return False

    def stop(self) -> None:
        try:
            import ray
            from ray import serve
        except ImportError:
            return
        if ray.is_initialized():
            try:
                serve.delete(self.name)
            except Exception:
                pass
            try:
                serve.shutdown()
            except Exception:
                pass
            if self.started_ray:
                ray.shutdown()
                self.started_ray = False
