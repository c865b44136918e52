"""The ``http`` scenario: the server scenario's open-loop load, sent over real sockets to a real
HTTP server per runner, so what serving adds on top of the model is measured, not assumed.

For each runner of the cell benchbed starts a server on the loopback address that builds the
same runner in each of its workers (uvicorn with ``server_workers`` processes; or a Ray Serve
application with ``replicas``, ``serve="ray"``), and stops it when the cell is done, whatever
happens. An ``endpoint:NAME`` runner is driven where it already runs. The answers each server
gives to the parity batch are checked against the reference runner's direct, in-process outputs
(the reference's own server included). Each sample is one request's client latency, from its
scheduled arrival to its last byte; the server's own timing header splits it into queue, service
and serialisation. A request that fails (refused, a status other than 200, a malformed answer, no
answer within ``--http-timeout``) makes the runner's record an ``error`` with the first message,
its measured columns kept.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, Mapping

import numpy as np

from ...scenarios import Scenario, register_scenario
from ...runners.failures import Skip
from .server import ServerDriver, _label as _server_label, _variants as _server_variants

__all__ = ["HttpDriver", "SCENARIO"]


class HttpDriver(ServerDriver):
    """Requests over HTTP to one server per runner; the in-process reference checks the answers."""

    #: Parity compares every runner's HTTP answers, the reference's too, with the reference's
    #: direct outputs.
    checks_reference = True
    per_call_passes = False
    local_passes = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if getattr(self.task, "trains", False):
            raise Skip("the http scenario serves inference tasks (a training task has no request to answer)")
        if getattr(self.task, "modality", "text") != "text":
            raise Skip(f"the http scenario serves text tasks; {self.task.name} takes {self.task.modality}, which has "
                       f"no JSON form here yet")
        opt = self.case.option
        self.backend = str(opt("serve", "uvicorn"))
        self.workers = int(opt("server_workers", 1))
        self.replicas = int(opt("replicas", 1)) if self.backend == "ray" else None
        self.parallel = self.replicas or self.workers
        self.settings = replace(self.settings, max_batch=1, max_wait_s=0.0)
        self.hard_timeout_s = float(getattr(self.config, "http_timeout_s", 30.0))
        self.servers: dict[str, Any] = {}
        self.targets: dict[str, Any] = {}
        self.callers: dict[str, Callable[[list[Any]], list[Any]]] = {}
        self.start_s: dict[str, float] = {}

    def prepare(self) -> list[Any]:
        batch = super().prepare()
        own = "ray" if self.backend == "ray" else "uvicorn"  # what serves the cell's runners
        self.columns.update(max_batch=1, max_wait_ms=0.0, serve_backend=own,
                            server_workers=self.workers if own == "uvicorn" else None,
                            replicas=self.replicas)
        return batch

    # -- servers ---------------------------------------------------------------------------------
    def _example(self, i: int) -> Any:
        return self.examples[i % len(self.examples)]

    def _start(self, run: Any) -> None:
        """The runner's server, started once (an endpoint runner is already served)."""
        from ...serving.client import Connection, RequestFailed, Target
        from ...serving.protocols import BenchbedProtocol, CodecError

        name = run.case.runner
        if name in self.targets:
            return
        if not getattr(run, "LOCAL", True) and hasattr(run, "target"):
            self.targets[name] = run.target(self._example)
            if getattr(run, "start_s", None) is not None:  # a server its runner started
                self.start_s[name] = run.start_s

            def direct(inputs: list[Any]) -> list[Any]:
                run.inputs = inputs
                return run()

            self.callers[name] = direct
            return
        if getattr(run, "remote", False):
            raise Skip("RUNNER@ENV runners are not served over HTTP yet")
        spec = self._spec(run)
        if self.backend == "ray":
            from ...serving.ray_serve import RayServeApp

            server = RayServeApp(spec, self.replicas or 1, name)
        else:
            from ...serving.server import HttpServer

            server = HttpServer(spec, self.workers)
        self.servers[name] = server
        server.start()
        self.start_s[name] = server.start_s
        proto = BenchbedProtocol(server.url, self.task, run.case.model)
        path = proto.request([self._example(0)])[0]
        self.targets[name] = Target(url=proto.url, path=path, body=lambda i: proto.request([self._example(i)])[1],
                                    parse=lambda status, body, headers: proto.parse(status, body, 1))
        conn = Connection(proto.url, self.hard_timeout_s)

        def call(inputs: list[Any]) -> list[Any]:
            path, body = proto.request(inputs)
            status, answer, _ = conn.request("POST", path, body, (("content-type", "application/json"),))
            try:
                return proto.parse(status, answer, len(inputs))
            except CodecError as exc:
                raise RequestFailed(f"{name} over HTTP: {exc}") from None

        self.callers[name] = call
        server.conn = conn

    def _spec(self, run: Any) -> dict[str, Any]:
        """What a server's worker builds the runner from: the case, the batch it is built with,
        the run's settings, this process's thread count, and where plug-ins come from."""
        import torch

        from ...runners.build import plugin_sources

        return {"case": run.case, "inputs": list(self.batch), "config": self.config,
                "threads": self.config.threads or torch.get_num_threads(),
                "sources": plugin_sources(run.case.task, run.case.runner)}

    @property
    def load_type(self) -> type:
        from ...serving.client import HttpLoad

        return HttpLoad

    def helpers(self) -> tuple[int, ...]:
        return tuple(pid for server in self.servers.values() for pid in server.helper_pids())

    def close(self) -> None:
        """Stop every server this cell started (and close its connection)."""
        servers, self.servers = self.servers, {}
        for server in servers.values():
            conn = getattr(server, "conn", None)
            if conn is not None:
                conn.close()
            server.stop()

    # -- parity and timing -----------------------------------------------------------------------
    def reference_outputs(self, run: Any, view: Any = None) -> list[Any]:
        """The reference's direct, in-process outputs (what every server's answers must match)."""
        run.inputs = self.batch if view is None else view(list(self.batch))
        try:
            return run()
        finally:
            run.inputs = self.batch

    def outputs(self, run: Any) -> list[Any]:
        """The runner's answers over HTTP for the parity batch."""
        self._start(run)
        return self.callers[run.case.runner](list(self.batch))

    def call_of(self, run: Any) -> Callable[[list[int]], Any]:
        self._start(run)
        call = self.callers[run.case.runner]
        return lambda batch: call([self._example(i) for i in batch])

    def _serve_one(self, name: str, handle: Any, settings: Any, offset: int = 0) -> Any:
        """One load level of open-loop requests over HTTP."""
        from ...serving.client import drive
        from ...workloads.server import poisson_arrivals

        target = self.targets[name]
        if offset:
            base = target.body
            target = replace(target, body=lambda i: base(i + offset))
        arrivals = poisson_arrivals(settings.rate, settings.requests, settings.seed, settings.max_duration_s)
        return drive(target, arrivals, self.hard_timeout_s, settings.timeout_s, max_in_flight=settings.queue_limit)

    def met(self, load: Any) -> bool:
        """The server scenario's rule, with failed requests counted as lost."""
        lost = load.dropped + load.timed_out + getattr(load, "errors", 0)
        if not load.latencies:
            return False
        p99 = float(np.percentile(load.latencies, 99))
        return bool(p99 * 1000.0 <= self.config.slo_ms and lost <= 0.01 * (load.completed + lost))

    def failure(self, name: str) -> str | None:
        """Why this runner's record is an error: requests that got no usable answer."""
        load = self.loads.get(name)
        if load is None or not load.errors:
            return None
        server = self.servers.get(name)
        gone = " (its server is no longer running)" if server is not None and not server.alive() else ""
        return f"{load.errors} of {load.offered} requests failed over HTTP{gone}: {load.first_error}"

    def runner_columns(self, name: str, run: Any, stats: Any) -> dict[str, Any]:
        out = super().runner_columns(name, run, stats)
        load = self.loads[name]

        def med(xs: list[float]) -> float | None:
            return float(np.median(xs)) if xs else None

        server = self.servers.get(name)
        backend = getattr(run, "SERVE_BACKEND", None)
        if backend is not None:  # a runner that brings its own server (transformers serve)
            out.update(serve_backend=backend, server_workers=None, replicas=None)
        out.update(service_median_s=med(load.service), server_queue_median_s=med(load.server_queue),
                   serialize_median_s=med(load.serialize), client_decode_median_s=med(load.client_decode),
                   client_lag_p99_s=float(np.percentile(load.lags, 99)) if load.lags else None,
                   http_errors=load.errors, http_first_error=load.first_error,
                   server_start_s=self.start_s.get(name),
                   server_pids=",".join(map(str, _server_pids(server, run))) or None)
        if load.itl:
            out.update(itl_median_s=float(np.median(load.itl)), itl_p99_s=float(np.percentile(load.itl, 99)))
        rss = _rss_mb(_server_pids(server, run))
        if rss is not None:
            out["server_rss_mb"] = rss
        if server is not None and getattr(server, "replica_names", None):
            out["serve_replicas"] = ",".join(server.replica_names)
        return out


def _server_pids(server: Any, run: Any) -> list[int]:
    """The processes serving a runner: the server benchbed started for it, or the one its runner
    started itself (none for an endpoint elsewhere)."""
    if server is not None:
        return list(getattr(server, "worker_pids", None) or [])
    if getattr(run, "SERVE_BACKEND", None) is not None:
        return list(run.helpers())
    return []


def _rss_mb(pids: list[int]) -> float | None:
    """Resident memory of the server's processes together, in MiB (None when none is left)."""
    import psutil

    total, seen = 0, 0
    for pid in pids:
        try:
            total += psutil.Process(pid).memory_info().rss
            seen += 1
        except psutil.Error:
            continue
    return total / 2**20 if seen else None


def _variants(w: Any) -> list[tuple[tuple[str, Any], ...]]:
    """The server scenario's rates (one request per call: no batching options) by workers, or by
    replicas under Ray Serve."""
    out = []
    for opts in _server_variants(w):
        keep = tuple(kv for kv in opts if kv[0] not in ("max_batch", "max_wait_ms"))
        if w.serve == "ray":
            out += [keep + (("replicas", int(r)), ("serve", "ray")) for r in w.replicas]
        else:
            out += [keep + (("server_workers", int(n)),) for n in w.server_workers]
    return out


def _label(opts: Mapping[str, Any]) -> str:
    rate = _server_label(opts).replace("server", "http", 1)
    if opts.get("serve") == "ray":
        return f"{rate} ray x{opts.get('replicas', 1)}"
    return f"{rate} x{opts.get('server_workers', 1)}"


def _summary(rec: Mapping[str, Any], parity: str) -> str:
    from ...display import fmt_ms

    errors = rec.get("http_errors") or 0
    return (f"p50 {fmt_ms(rec['lat_median_s'])} ms, p99 {fmt_ms(rec['lat_p99_s'])} ms, "
            f"{rec.get('achieved_rate') or 0:.1f} req/s over HTTP, service {fmt_ms(rec.get('service_median_s'))} ms"
            f"{f', {errors} failed' if errors else ''} ({parity})")


SCENARIO = register_scenario(Scenario(
    name="http", description="the server scenario's open-loop load over real HTTP to a server per runner "
                             "(uvicorn workers, or Ray Serve replicas; --serve transformers adds the model behind "
                             "transformers serve)",
    driver=HttpDriver, sample="request",
    options=("rate", "requests", "queue", "timeout_ms", "server_workers", "serve", "replicas"), variants=_variants,
    columns=(("serve_backend", "string"), ("server_workers", "int64"), ("replicas", "int64"),
             ("serve_replicas", "string"), ("server_pids", "string"),
             ("server_queue_median_s", "float64"), ("serialize_median_s", "float64"),
             ("client_decode_median_s", "float64"), ("client_lag_p99_s", "float64"), ("http_errors", "int64"),
             ("http_first_error", "string"), ("server_start_s", "float64"), ("server_rss_mb", "float64")),
    label=_label, summary=_summary, section="benchbed.report.sections.http:section"))
