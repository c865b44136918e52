"""The timing loop: warm-up, then timed calls until an adaptive stopping rule holds.

Every call is bracketed by the device's synchronise, so asynchronous GPU work is counted in the
call that queued it. The clock is a parameter, so tests drive the loop with a seeded fake clock.

Algorithm::

    run `warmup` calls, untimed
    repeat:
        t0 = clock(); fn(); sync(); t1 = clock(); keep t1 - t0
        stop at max_samples or max_time_s (the per-case cap)
        once min_samples and min_time_s are reached: stop when the median's 95% CI
        (order statistics) is narrower than rel_ci_width × median
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from .stats import median_ci_order

__all__ = ["StopRule", "Timing", "device_sync", "measure", "no_sync"]


def no_sync() -> None:
    """The synchronise of a device that computes synchronously (the CPU)."""


def device_sync(device: str) -> Callable[[], None]:
    """The call that waits for `device` to finish queued work (a no-op on the CPU)."""
    if device.startswith("cuda"):
        import torch

        return lambda: torch.cuda.synchronize(device)
    if device == "mps":
        import torch

        return torch.mps.synchronize
    return no_sync


@dataclass(frozen=True)
class StopRule:
    """When to stop timing a case. Defaults suit millisecond-scale model calls."""

    warmup: int = 2
    min_samples: int = 5
    min_time_s: float = 1.0
    max_time_s: float = 10.0
    max_samples: int = 10_000
    rel_ci_width: float = 0.05
    #: the ratio rule (a cell of two or more runners): stop once every runner's paired ratio to
    #: the reference is known to within ± this fraction of itself (``--ratio-ci``)
    ratio_ci: float = 0.02

    def __post_init__(self) -> None:
        if self.warmup < 0 or self.min_samples < 1 or self.max_samples < self.min_samples:
            raise ValueError("need warmup >= 0 and 1 <= min_samples <= max_samples")
        if self.min_time_s < 0 or self.max_time_s <= 0 or self.rel_ci_width <= 0:
            raise ValueError("need min_time_s >= 0, max_time_s > 0 and rel_ci_width > 0")
        if not 0 < self.ratio_ci < 1:
            raise ValueError(f"--ratio-ci must be above 0% and below 100%, got {self.ratio_ci * 100:g}%")


@dataclass(frozen=True)
class Timing:
    """Raw per-call seconds and why the loop stopped."""

    samples: tuple[float, ...]
    warmup: int
    stop_reason: str
    total_s: float = field(default=0.0)


def measure(fn: Callable[[], object], rule: StopRule = StopRule(), sync: Callable[[], None] = no_sync,
            clock: Callable[[], float] = time.perf_counter, events: Any = None) -> Timing:
    """Time `fn` under `rule`; `sync` is called after each call, inside the timed region.

    `events` (a `benchbed.measure.gpu.EventTimer`) also times each call on the device's own clock:
    started before the call, stopped before the synchronise, read after it, outside the
    wall-clock interval's arithmetic."""
    for _ in range(rule.warmup):
        fn()
        sync()
    samples: list[float] = []
    next_check = rule.min_samples
    start = clock()
    reason = "max_samples"
    while True:
        if events is not None:
            events.start()
        t0 = clock()
        fn()
        if events is not None:
            events.stop()
        sync()
        t1 = clock()
        samples.append(t1 - t0)
        if events is not None:
            events.collect()
        n = len(samples)
        elapsed = t1 - start
        if n >= rule.max_samples:
            reason = "max_samples"
            break
        if elapsed >= rule.max_time_s:
            reason = "max_time"
            break
        if n >= rule.min_samples and elapsed >= rule.min_time_s and n >= next_check:
            # Checking every call would cost O(n^2 log n) for micro-second functions.
            next_check = n + max(1, n // 10)
            lo, hi = median_ci_order(samples)
            med = sorted(samples)[n // 2]
            if med > 0 and (hi - lo) / med <= rule.rel_ci_width:
                reason = "precise"
                break
    return Timing(samples=tuple(samples), warmup=rule.warmup, stop_reason=reason, total_s=clock() - start)
