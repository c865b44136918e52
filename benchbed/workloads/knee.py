"""``--rate auto``: find the knee — the highest offered rate a runner sustains within the SLO —
instead of sweeping a list of rates by hand.

The search starts at half the runner's capacity (``max_batch`` ÷ the measured service time of a
full batch, so every runner starts where its own knee is likely to be), goes up by 1.5× while
rates are met and down by 2× while they are not, then bisects geometrically between the highest
met and the lowest missed rate until they are within `resolution` of each other (or `max_probes`
load levels were served). A rate is *met* when its p99 is within the SLO and at most 1% of its
requests were dropped or timed out — the same rule as a listed rate.

It is a generator, so the caller decides how to serve each probe: the server driver advances the
searches of all runners of a cell in lockstep (round k serves each runner's k-th probe, in a
shuffled order), keeping them in the same time window; a test drives it with a stub.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Generator

__all__ = ["KneeSearch", "knee_search", "RESOLUTION", "MAX_PROBES"]

#: Stop when the highest met and lowest missed rates are within this ratio of each other.
RESOLUTION = 1.1
#: Load levels served per runner at most.
MAX_PROBES = 8
#: Below this fraction of capacity a runner that still misses the SLO is said to sustain nothing.
FLOOR = 1 / 64


@dataclass
class KneeSearch:
    """The probes of one search: (rate, met) in the order served, and the knee found."""

    capacity: float
    probes: list[tuple[float, bool]] = field(default_factory=list)

    @property
    def knee(self) -> float | None:
        """The highest met rate with no missed rate at or below it (None: none met)."""
        missed = [r for r, ok in self.probes if not ok]
        lowest_miss = min(missed) if missed else math.inf
        met = [r for r, ok in self.probes if ok and r < lowest_miss]
        return max(met) if met else None


def knee_search(capacity: float, resolution: float = RESOLUTION,
                max_probes: int = MAX_PROBES) -> Generator[float, bool, KneeSearch]:
    """Yields the next rate to serve; send whether it met the SLO; returns the `KneeSearch`."""
    if not capacity > 0 or not math.isfinite(capacity):
        raise ValueError(f"capacity must be a positive number of requests/s, got {capacity}")
    search = KneeSearch(capacity)
    rate = capacity / 2
    while len(search.probes) < max_probes:
        met = yield rate
        search.probes.append((rate, bool(met)))
        lo = search.knee
        missed = [r for r, ok in search.probes if not ok]
        hi = min(missed) if missed else None
        if lo is None:
            if rate <= capacity * FLOOR:
                break
            rate = rate / 2
        elif hi is None:
            rate = rate * 1.5
        else:
            if hi / lo <= resolution:
                break
            rate = math.sqrt(lo * hi)
    return search
