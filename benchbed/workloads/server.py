"""The server scenario's serving loop: requests arrive open-loop, one worker serves them.

Arrival times are drawn before the load starts (seeded Poisson: exponential gaps at the offered
rate), so arrivals never wait for the worker — the definition of an open-loop load, which a
closed loop (send the next request when the last returns) hides: it slows its own arrivals down
exactly when the server is slow. One worker takes requests from a bounded FIFO queue and serves
them in batches (dynamic batching): a batch leaves when it holds `max_batch` requests, or when its
oldest request has waited `max_wait_s`, or when no more requests will arrive. A request arriving
to a full queue is dropped; one that waited longer than `timeout_s` before its batch started is
timed out. Both are counted, never silently lost. The load stops by itself: after `requests`
arrivals or `max_duration_s` of arrivals, whichever comes first, once the queue is empty.

The loop runs on any clock: `clock()` and `sleep(seconds)` are parameters, so a test drives it on
a fake clock with a stub service of known duration and checks it against queueing theory
(M/D/1: mean wait = ρ / (2 μ (1 − ρ))).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

__all__ = ["ServerSettings", "ServedLoad", "poisson_arrivals", "serve"]

#: Times closer than this count as equal: sleeping exactly up to a deadline can land one rounding
#: step short of it, and a loop waiting for `now >= deadline` would then sleep zero seconds forever.
EPS = 1e-9


@dataclass(frozen=True)
class ServerSettings:
    """One load level: offered `rate` (requests/s) and how the worker batches and queues."""

    rate: float
    requests: int = 200
    max_batch: int = 1
    max_wait_s: float = 0.0
    queue_limit: int = 64
    max_duration_s: float = 30.0
    timeout_s: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError(f"rate must be > 0, got {self.rate}")
        if self.max_batch < 1 or self.queue_limit < 1 or self.requests < 1:
            raise ValueError("max_batch, queue_limit and requests must be >= 1")


@dataclass
class ServedLoad:
    """What happened at one load level: per served request its latency (arrival to result), queue
    wait (arrival to its batch's start) and service time (its batch's duration); and counts."""

    offered: int = 0
    latencies: list[float] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)
    service: list[float] = field(default_factory=list)
    batch_sizes: list[int] = field(default_factory=list)
    dropped: int = 0
    timed_out: int = 0
    max_queue: int = 0
    duration_s: float = 0.0
    first_arrival_s: float = 0.0
    #: Generation: per served request, its time to first token (arrival to the first new token of
    #: its batch) and its batch's time per later token; filled by the caller that streams tokens.
    ttft: list[float] = field(default_factory=list)
    tpot: list[float] = field(default_factory=list)

    def add(self, other: "ServedLoad") -> None:
        """Pool another load level of the same rate into this one (counts add, samples concatenate)."""
        self.offered += other.offered
        self.latencies += other.latencies
        self.waits += other.waits
        self.service += other.service
        self.batch_sizes += other.batch_sizes
        self.ttft += other.ttft
        self.tpot += other.tpot
        self.dropped += other.dropped
        self.timed_out += other.timed_out
        self.max_queue = max(self.max_queue, other.max_queue)
        self.duration_s += other.duration_s

    @property
    def completed(self) -> int:
        return len(self.latencies)

    @property
    def achieved_rate(self) -> float:
        """Completed requests per second over the load's span (first arrival to last result)."""
        return self.completed / self.duration_s if self.duration_s > 0 else 0.0


def poisson_arrivals(rate: float, n: int, seed: int, max_duration_s: float = float("inf")) -> list[float]:
    """Arrival times (s from the start) of up to `n` requests at `rate` per second, seeded; none
    after `max_duration_s`."""
    gaps = np.random.default_rng(seed).exponential(1.0 / rate, size=n)
    times = np.cumsum(gaps)
    return [float(t) for t in times if t <= max_duration_s]


def serve(handle: Callable[[Sequence[int]], object], settings: ServerSettings,
          clock: Callable[[], float] = time.perf_counter, sleep: Callable[[float], None] = time.sleep,
          arrivals: Sequence[float] | None = None) -> ServedLoad:
    """Run one load level: `handle(indices)` serves a batch of requests (their indices in arrival
    order) and returns when their results are ready."""
    times = list(arrivals) if arrivals is not None else poisson_arrivals(
        settings.rate, settings.requests, settings.seed, settings.max_duration_s)
    load = ServedLoad(offered=len(times))
    queue: deque[int] = deque()
    nxt = 0
    t0 = clock()
    last_done = 0.0
    while nxt < len(times) or queue:
        now = clock() - t0
        while nxt < len(times) and times[nxt] <= now + EPS:  # admit everything that has arrived by now
            if len(queue) >= settings.queue_limit:
                load.dropped += 1
            else:
                queue.append(nxt)
                load.max_queue = max(load.max_queue, len(queue))
            nxt += 1
        if settings.timeout_s is not None:
            while queue and now - times[queue[0]] > settings.timeout_s + EPS:
                queue.popleft()
                load.timed_out += 1
        if not queue:
            if nxt < len(times):
                sleep(max(0.0, times[nxt] - now))
            continue
        more_coming = nxt < len(times)
        full = len(queue) >= settings.max_batch
        deadline = times[queue[0]] + settings.max_wait_s
        if not full and more_coming and now + EPS < deadline:
            sleep(max(0.0, min(times[nxt], deadline) - now))
            continue
        batch = [queue.popleft() for _ in range(min(settings.max_batch, len(queue)))]
        start = clock() - t0
        handle(batch)
        done = clock() - t0
        for i in batch:
            load.latencies.append(done - times[i])
            load.waits.append(start - times[i])
            load.service.append(done - start)
        load.batch_sizes.append(len(batch))
        last_done = done
    if times:
        load.first_arrival_s = times[0]
        load.duration_s = max(last_done, times[-1]) - times[0]
    return load
