"""The ``ray`` launcher: one Ray task per cell, placed so that measurements never share a
machine's cores or a GPU, retried when a worker dies, with records sent back to the driver. The
schedule's policies hold here as in a local run: a larger batch waits for the smaller ones of its
sweep and is skipped after an out-of-memory, and a cell measured beside another process is sent
again under ``--on-interference retry``.

Placement. A CPU cell asks for one ``benchbed_slot`` — a custom resource each node advertises
once (``ray start ... --resources='{"benchbed_slot": 1}'``) — and no Ray CPUs, so a node measures
one CPU cell at a time whatever its core count. On a cluster started the plain way (``ray start
--head``, no node advertising a slot) each CPU cell is pinned to one node, in turn, and asks for
all of that node's CPUs, which holds the node just as a slot would; the run says which it did. A CUDA cell asks for one GPU (``num_gpus=1``), so
two measurements never share a GPU. ``--cluster-select KEY=VALUE`` adds a sliver of the resource
``KEY:VALUE`` (Ray's own ``accelerator_type:H200`` naming) or, for a bare NAME, of ``NAME``: only
nodes advertising it take the cells.

Faults. A worker that dies mid-cell (node lost, process killed, OOM-killed) is retried by Ray up to
``retries`` times; after that the cell's records are ``error`` records naming the cause. Records
are written by the driver as each cell's arrive, so an interrupted driver keeps every record it
received and a resumed run (``--resume RUN_ID``) skips the cells already recorded.

Code and environment. Workers run the benchbed installed on them (the usual GPU pool), or the
driver's working tree shipped by Ray's runtime environment (``--cluster-ship-code``). Before any
cell is submitted, every node reports its benchbed, torch and transformers versions; a difference
from the driver's is one line and exit 2 unless ``--allow-env-change``. Every record carries the
node's own environment fingerprint and host name.
"""

from __future__ import annotations

import os
from typing import Any

from ...spec import Case, SpecError
from ..schedule import Job, Schedule
from ..wire import failure_results, from_wire, payload, to_wire, unpack
from ...serving.ray_auth import init_failure, token_in_memory
from .base import Launcher, OnResults, register_launcher

__all__ = ["RayCluster", "SLOT", "select_resource", "VERSION_KEYS"]

#: The custom resource every node advertises once: one CPU measurement per node at a time.
SLOT = "benchbed_slot"
#: Environment keys that must match between driver and workers (what a record's numbers depend on).
VERSION_KEYS = ("env_benchbed", "env_torch", "env_transformers")
_SLIVER = 0.001


def _reachable(address: str, timeout_s: float = 5.0) -> None:
    """A `SpecError` unless something accepts a TCP connection at the cluster address."""
    import socket

    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s):
            return
    except (OSError, ValueError) as exc:
        raise SpecError(f"cannot reach the Ray cluster at {address!r}: {exc.__class__.__name__}: {exc} "
                        f"(start it with `ray start --head`, or leave RAY_ADDRESS unset for a local one)") from None


def select_resource(text: str) -> str:
    """The Ray resource named by ``--cluster-select``: ``KEY=VALUE`` is ``KEY:VALUE``."""
    key, sep, value = text.partition("=")
    if not key or (sep and not value):
        raise SpecError(f"--cluster-select {text!r} must be NAME or KEY=VALUE (e.g. accelerator_type=H200)")
    return f"{key}:{value}" if sep else key


_WORKBENCHES: dict[tuple, Any] = {}


def _measure_remote(data: dict[str, Any]) -> list[dict[str, Any]]:
    """In a Ray worker: measure one cell with the engine, return its records as plain dicts. The
    worker keeps its workbench between cells, so a model loads once per worker process."""
    from ..cell import measure_cell
    from ..workbench import Workbench

    cases, config, ctx = unpack(data)
    if not config.threads:
        # Ray sets OMP_NUM_THREADS=1 in a worker that asked for no CPUs; the cell holds the whole
        # node (its measurement slot), so torch gets what it takes in a plain process: the physical cores
        import psutil
        import torch

        torch.set_num_threads(psutil.cpu_count(logical=False) or os.cpu_count() or 1)
    key = (config.seed, config.trust_remote_code)
    workbench = _WORKBENCHES.setdefault(key, Workbench(config.seed, config.trust_remote_code))
    import ray

    node = ray.get_runtime_context().get_node_id()
    out = []
    for _, rec, _ in measure_cell(cases, workbench, config, ctx, data["pass_index"]):
        rec["cluster_node"] = node
        out.append(to_wire(rec))
    return out


def _node_versions() -> dict[str, Any]:
    import socket

    from ...env import collect_env

    env = collect_env()
    return {"host": socket.gethostname(), **{k: env.get(k) for k in VERSION_KEYS}}


@register_launcher
class RayCluster(Launcher):
    """Submit cells to a Ray cluster and hand each cell's records back as they arrive."""

    NAME = "ray"
    description = "a Ray cluster: the one at $RAY_ADDRESS (--cluster ray://HOST:PORT), else a local one"

    def __init__(self, address: str | None = None, select: list[str] | None = None, retries: int = 2,
                 ship_code: bool = False) -> None:
        try:
            import ray
        except ImportError:
            raise SpecError("--cluster ray needs the ray package (pip install 'benchbed[ray]')") from None
        self.ray = ray
        self.retries = retries
        self.select = [select_resource(s) for s in (select or [])]
        runtime_env = None
        if ship_code:
            root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
            runtime_env = {"working_dir": root, "excludes": [".venv", ".git", "results", "reports"]}
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "runtime_env": runtime_env,
                                  "ignore_reinit_error": True}
        if address in (None, "", "local-cluster"):
            address = os.environ.get("RAY_ADDRESS") or None
        if address is None:  # a cluster of this machine alone, advertising its one measurement slot
            kwargs.update(resources={SLOT: 1})
            token_in_memory()
        elif address != "auto":
            _reachable(address)  # ray.init waits minutes on an address nobody answers at
        try:
            ray.init(address=address, **kwargs)
        except Exception as exc:  # noqa: BLE001 - ray raises its own classes here, by version
            raise SpecError(init_failure(address, exc)) from None
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        slots = [n for n in nodes if n.get("Resources", {}).get(SLOT)]
        #: Without slots: CPU cells go to these nodes in turn, each asking for all the node's CPUs.
        self.whole_nodes = [] if slots else [n for n in nodes if n.get("Resources", {}).get("CPU", 0) >= 1]
        self._turn = 0
        if not slots and not self.whole_nodes:
            raise SpecError(f"no node of the Ray cluster has a CPU or advertises the {SLOT!r} resource")
        self.placement = (f"each CPU cell holds one {SLOT!r} ({len(slots)} node(s) advertise it)" if slots else
                          f"no node advertises {SLOT!r}: each CPU cell is pinned to one of {len(self.whole_nodes)} "
                          f"node(s) in turn and reserves all its CPUs")
        for name in self.select:
            if not any(n.get("Resources", {}).get(name) for n in nodes):
                raise SpecError(f"--cluster-select: no node advertises the resource {name!r} "
                                f"(valid: {', '.join(sorted({r for n in nodes for r in n.get('Resources', {})}))})")
        self.nodes = nodes

    def worker_versions(self) -> list[dict[str, Any]]:
        """benchbed / torch / transformers versions on every alive node (one task pinned per node)."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        probe = self.ray.remote(num_cpus=0)(_node_versions)
        refs = [probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote()
                for n in self.nodes]
        return self.ray.get(refs, timeout=300)

    def check_versions(self, driver_env: dict[str, Any], allow_change: bool) -> list[str]:
        """Lines naming each node whose versions differ from the driver's; a `SpecError` unless allowed."""
        diffs = []
        for node in self.worker_versions():
            bad = [f"{k[4:]} {node.get(k)} (driver {driver_env.get(k)})" for k in VERSION_KEYS
                   if node.get(k) != driver_env.get(k)]
            if bad:
                diffs.append(f"{node['host']}: {', '.join(bad)}")
        if diffs and not allow_change:
            raise SpecError(f"workers differ from the driver: {'; '.join(diffs)} (install the same versions, or pass "
                            f"--allow-env-change)")
        return diffs

    def _options(self, cases: list[Case]) -> dict[str, Any]:
        resources = {name: _SLIVER for name in self.select}
        if cases[0].device.startswith("cuda"):
            return {"num_gpus": 1, "num_cpus": 0, "resources": resources, "max_retries": self.retries}
        if self.whole_nodes:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            node = self.whole_nodes[self._turn % len(self.whole_nodes)]
            self._turn += 1
            return {"num_cpus": node["Resources"]["CPU"], "resources": resources, "max_retries": self.retries,
                    "scheduling_strategy": NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)}
        return {"num_cpus": 0, "resources": {SLOT: 1, **resources}, "max_retries": self.retries}

    def notes(self) -> list[str]:
        lines = [f"cluster: {self.placement}"]
        if self.config.case_timeout_s is not None:
            lines.append("the ray launcher does not enforce --case-timeout (a hung worker is not killed)")
        return lines

    def _submit(self, remote: Any, job: Job, inflight: dict[Any, Job]) -> None:
        data = payload(job.cases, job.config_for(self.config), self.ctx, job.pass_index)
        data["config"]["threads"] = self.config.threads  # a worker sizes its own threads to its node
        inflight[remote.options(**self._options(job.cases)).remote(data)] = job

    def run(self, schedule: Schedule, on_results: OnResults) -> None:
        """Every ready job at once; as each finishes, its records are handed back (a dead worker's
        cell, after its retries, gives ``error`` records naming the cause) and the jobs it made
        ready are submitted."""
        remote = self.ray.remote(_measure_remote)
        inflight: dict[Any, Job] = {}

        def submit_ready() -> None:
            for job, skipped in schedule.ready():
                if skipped:
                    on_results(skipped, False)
                if job.cases:
                    self._submit(remote, job, inflight)

        submit_ready()
        try:
            while inflight:
                done, _ = self.ray.wait(list(inflight), num_returns=1)
                job = inflight.pop(done[0])
                try:
                    results = from_wire(self.ray.get(done[0]), job.cases, self.ctx)
                except Exception as exc:  # the worker died more times than it was retried
                    message = (f"cluster worker failed after {self.retries} retries: "
                               f"{exc.__class__.__name__}: {str(exc).splitlines()[0][:300]}")
                    schedule.abandon(job)
                    on_results(failure_results(job.cases, self.config, self.ctx, job.pass_index, "error", message),
                               False)
                    submit_ready()
                    continue
                if schedule.finish(job, results):
                    self._submit(remote, job, inflight)  # measured beside another process: again
                else:
                    on_results(results, False)
                submit_ready()
        finally:
            for ref in inflight:  # interrupted: what is still running is not wanted any more
                self.ray.cancel(ref, force=True)

    def close(self) -> None:
        self.ray.shutdown()
