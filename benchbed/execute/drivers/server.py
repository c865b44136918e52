"""The ``server`` scenario: requests arrive open-loop at the case's rate (`workloads.server`); each
runner serves the same arrival sequences behind the same loop, in two rounds in a shuffled order;
each sample is one request's latency. ``--rate auto`` searches each runner's knee instead."""

from __future__ import annotations

import math
import random
import time
from typing import Any, Callable, Mapping

import numpy as np

from ...scenarios import Scenario, register_scenario
from ...spec import AUTO_RATE
from .base import Driver

__all__ = ["ServerDriver", "SCENARIO", "SERVER_MAX_S", "AUTO_PROBE_S"]

#: A served load level stops taking arrivals after this many seconds, whatever its request count.
SERVER_MAX_S = 60.0
#: the most distinct inputs a load builds (seeded draws, reused in order past it)
POOL_MAX = 4096
#: A probe of the knee search stops taking arrivals after this many seconds.
AUTO_PROBE_S = 20.0


class ServerDriver(Driver):
    """Requests arrive open-loop; every runner serves the same arrivals behind the same loop."""

    per_call_passes = False
    serves = True
    spread_is_noise = False  # queueing spreads request latency by design
    #: Requests served at once (the HTTP scenario's workers or replicas): the knee search starts
    #: from this many times one worker's capacity.
    parallel = 1
    #: What one load level's record is (`workloads.server.ServedLoad`, or the HTTP client's).
    @property
    def load_type(self) -> type:
        from ...workloads.server import ServedLoad

        return ServedLoad

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from ...workloads.server import ServerSettings

        opt = self.case.option
        #: ``--rate auto``: each runner's knee is searched for (`workloads.knee`) instead of one rate.
        self.auto = opt("rate") == AUTO_RATE
        self.searches: dict[str, Any] = {}
        self.steps: dict[str, list[tuple[float, float]]] = {}  # per runner, per batch served
        self.settings = ServerSettings(rate=1.0 if self.auto else float(opt("rate", 10.0)),
                                       requests=int(opt("requests", 200)),
                                       max_batch=int(opt("max_batch", 1)),
                                       max_wait_s=float(opt("max_wait_ms", 0.0)) / 1000.0,
                                       queue_limit=int(opt("queue", 64)), max_duration_s=SERVER_MAX_S, seed=self.seed,
                                       timeout_s=float(opt("timeout_ms")) / 1000.0 if opt("timeout_ms") else None)
        self.loads: dict[str, Any] = {}

    def prepare(self) -> list[Any]:
        self.examples = self.draw(self.pool_size())
        self.measure_lengths(self.examples)
        s = self.settings
        self.columns.update(offered_rate=None if self.auto else s.rate, requests=s.requests, max_batch=s.max_batch,
                            max_wait_ms=s.max_wait_s * 1000.0)
        return self.examples[: self.case.batch_size]

    def pool_size(self) -> int:
        """How many distinct inputs to build: the arrivals that can happen within the window (the
        rate times `SERVER_MAX_S`), at most the requests asked for and `POOL_MAX`; requests past
        them reuse the pool in order. ``--requests 10000000`` no longer tokenises ten million
        inputs before the first arrival."""
        s = self.settings
        window = POOL_MAX if self.auto else math.ceil(s.rate * SERVER_MAX_S)
        return max(self.case.batch_size, min(s.requests, window, POOL_MAX))

    def call_of(self, run: Any) -> Callable[[], Any]:
        """The handler of a batch of requests; for generation it streams, and keeps per batch the
        first new token's time from the batch's start and the time per later token."""
        examples = self.examples
        steps = self.steps.setdefault(run.case.runner, [])
        timer = None
        if self.task.streams:
            from ..passes import StepTimer

            timer = run.streamer = StepTimer()

        def handle(batch: list[int]) -> Any:
            run.inputs = [examples[i % len(examples)] for i in batch]
            if timer is not None:
                timer.reset()
            out = run()
            run.sync()
            if timer is not None:
                steps.append(timer.first_and_per_token() or (float("nan"), float("nan")))
            return out

        return handle

    def _serve_one(self, name: str, handle: Callable[[list[int]], Any], settings: Any, offset: int = 0) -> Any:
        """One load level through `serve` (request i takes example ``i + offset``); for
        generation, each request's time to first token is its queue wait plus its batch's
        first-token time, and its time per token its batch's."""
        from ...workloads.server import serve

        steps = self.steps.setdefault(name, [])
        steps.clear()
        if offset:
            handle = (lambda call: lambda batch: call([i + offset for i in batch]))(handle)
        load = serve(handle, settings)
        if self.task.streams and len(steps) == len(load.batch_sizes):
            k = 0
            for (first, tpot), size in zip(steps, load.batch_sizes):
                for wait in load.waits[k:k + size]:
                    load.ttft.append(wait + first)
                    load.tpot.append(tpot)
                k += size
        return load

    def met(self, load: Any) -> bool:
        """Whether a load level met the SLO: p99 within it and at most 1% of the requests dropped
        or timed out."""
        lost = load.dropped + load.timed_out
        if not load.latencies:
            return False
        p99 = float(np.percentile(load.latencies, 99))
        return bool(p99 * 1000.0 <= self.config.slo_ms and lost <= 0.01 * (load.completed + lost))

    def serve(self, calls: dict[str, Any]) -> Any:
        """Every runner's samples: the latencies of its requests, at the case's rate or, with
        ``--rate auto``, at the knee its search found."""
        from ...measure.paired import PairedTiming
        from ...measure.timer import Timing

        warm: dict[str, list[float]] = {}
        for name in calls:  # warm-up: a few full batches, outside any load (timed: the capacity estimate)
            warm[name] = []
            for _ in range(3):
                t0 = time.perf_counter()
                calls[name](list(range(self.settings.max_batch)))
                warm[name].append(time.perf_counter() - t0)
        self.loads = self._auto(calls, warm) if self.auto else self._listed(calls)
        timings = {n: Timing(samples=tuple(self.loads[n].latencies), warmup=3, stop_reason="requests",
                             total_s=self.loads[n].duration_s) for n in calls}
        return PairedTiming(timings, {n: () for n in calls}, "rounds")

    def _auto(self, calls: dict[str, Any], warm: dict[str, list[float]]) -> dict[str, Any]:
        """Each runner's knee search (`workloads.knee`), advanced in lockstep: round k serves every
        runner's k-th probe, in a shuffled order. A probe serves `requests` arrivals (at most
        `AUTO_PROBE_S` seconds of them). Each runner's samples are its load at the knee (at the
        lowest rate probed when none met the SLO)."""
        from dataclasses import replace

        from ...workloads.knee import knee_search

        rng = random.Random(self.seed)
        searches, rates, probes = {}, {}, {n: [] for n in calls}
        for name, times in warm.items():
            capacity = self.settings.max_batch * self.parallel / max(float(np.median(times[1:])), 1e-6)
            searches[name] = knee_search(capacity)
            rates[name] = next(searches[name])
        done: dict[str, Any] = {}
        rnd = 0
        while rates:
            order = list(rates)
            rng.shuffle(order)
            for name in order:
                settings = replace(self.settings, rate=rates[name], seed=self.seed * 7919 + rnd,
                                   max_duration_s=AUTO_PROBE_S)
                load = self._serve_one(name, calls[name], settings)
                probes[name].append((rates[name], load))
                try:
                    rates[name] = searches[name].send(self.met(load))
                except StopIteration as stop:
                    done[name] = stop.value
                    del rates[name]
            rnd += 1
        chosen = {}
        for name, search in done.items():
            knee = search.knee
            at = [load for rate, load in probes[name] if rate == knee] if knee is not None else []
            chosen[name] = at[-1] if at else min(probes[name], key=lambda p: p[0])[1]
            self.searches[name] = (search, probes[name])
        return chosen

    def _listed(self, calls: dict[str, Any]) -> dict[str, Any]:
        """Two rounds; in each, every runner (shuffled order) serves the same arrival sequence."""
        from dataclasses import replace

        rng = random.Random(self.seed)
        names = list(calls)
        half = max(1, self.settings.requests // 2)
        loads = {n: self.load_type() for n in names}
        for rnd in range(2):
            order = names[:]
            rng.shuffle(order)
            settings = replace(self.settings, requests=half, seed=self.seed * 7919 + rnd)
            for name in order:  # round 2 serves the next examples, at its own arrival times
                loads[name].add(self._serve_one(name, calls[name], settings, offset=rnd * half))
        return loads

    def runner_columns(self, name: str, run: Any, stats: Any) -> dict[str, Any]:
        """Load-level columns, and whether the SLO was met: p99 within it and at most 1% of the
        requests dropped or timed out."""
        load = self.loads[name]
        waits = np.asarray(load.waits or [np.nan])
        out: dict[str, Any] = {}
        if name in self.searches:
            search, probes = self.searches[name]
            out.update(offered_rate=next(r for r, got in probes if got is load), sustainable_rate=search.knee,
                       capacity_rate=search.capacity, probe_rates=[r for r, _ in probes],
                       probe_p99_s=[float(np.percentile(got.latencies, 99)) if got.latencies else None
                                    for _, got in probes],
                       probe_met=[ok for _, ok in search.probes])
        if load.ttft:
            out.update(ttft_s=float(np.median(load.ttft)), ttft_p99_s=float(np.percentile(load.ttft, 99)),
                       tpot_s=float(np.median(load.tpot)))
        return {**out, "slo_ms": self.config.slo_ms, "slo_met": self.met(load),
                "achieved_rate": load.achieved_rate, "completed": load.completed, "dropped": load.dropped,
                "timed_out": load.timed_out, "queue_median_s": float(np.median(waits)),
                "queue_p99_s": float(np.percentile(waits, 99)),
                "service_median_s": float(np.median(load.service)) if load.service else None,
                "service_p99_s": float(np.percentile(load.service, 99)) if load.service else None,
                "batch_mean": float(np.mean(load.batch_sizes)) if load.batch_sizes else None,
                "items_per_s": load.achieved_rate, "tokens_per_s": None}


def _variants(w: Any) -> list[tuple[tuple[str, Any], ...]]:
    timeout = (("timeout_ms", w.timeout_ms),) if w.timeout_ms else ()
    return [(("max_batch", w.max_batch), ("max_wait_ms", w.max_wait_ms), ("queue", w.queue), ("rate", r),
             ("requests", w.requests)) + timeout for r in w.rates]


def _label(opts: Mapping[str, Any]) -> str:
    rate = opts.get("rate")
    return f"server {rate:g}/s" if isinstance(rate, (int, float)) else f"server {rate}" if rate else "server"


def _summary(rec: Mapping[str, Any], parity: str) -> str:
    from ...display import fmt_ms

    return (f"p50 {fmt_ms(rec['lat_median_s'])} ms, p99 {fmt_ms(rec['lat_p99_s'])} ms, "
            f"{rec.get('achieved_rate') or 0:.1f} req/s served, {rec.get('dropped') or 0} dropped ({parity})")


SCENARIO = register_scenario(Scenario(
    name="server", description="open-loop Poisson requests at each --rate, served with dynamic batching",
    driver=ServerDriver, sample="request",
    options=("rate", "requests", "max_batch", "max_wait_ms", "queue", "timeout_ms"), variants=_variants,
    label=_label, summary=_summary, section="benchbed.report.sections.server:section"))
