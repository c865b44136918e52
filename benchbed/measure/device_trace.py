"""Host-bound or device-bound: from the kernels a profiled GPU pass ran, how much of the calls'
wall time the device was busy, and the gaps between kernels (launch gaps: the host not keeping the
device fed). Pure over (start, end) intervals, so it is tested on recorded intervals where no GPU
exists; on a GPU, `measure.profile.operator_profile` feeds it torch.profiler's kernel events."""

from __future__ import annotations

import statistics
from typing import Iterable

__all__ = ["device_timeline", "HOST_BOUND_BELOW"]

#: A window whose device is busy less than this fraction of its wall time is host-bound.
HOST_BOUND_BELOW = 0.5


def _union(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def device_timeline(kernels: Iterable[tuple[float, float]], windows: Iterable[tuple[float, float]]) -> dict[str, float | int | str | None]:
    """Kernel intervals clipped to the call windows (both in the same clock, any unit; results in
    that unit): ``busy`` (the union of kernels), ``wall``, ``busy_fraction``, ``gaps`` (idle spans
    between kernels inside a window), ``gap_median``, ``gap_total`` and ``bound`` (host or device)."""
    windows = _union([(a, b) for a, b in windows if b > a])
    kernels = list(kernels)
    busy = 0.0
    gaps: list[float] = []
    for w0, w1 in windows:
        inside = _union([(max(a, w0), min(b, w1)) for a, b in kernels if b > w0 and a < w1 and min(b, w1) > max(a, w0)])
        busy += sum(b - a for a, b in inside)
        for (_, end), (start, _) in zip(inside, inside[1:]):
            gaps.append(start - end)
    wall = sum(b - a for a, b in windows)
    fraction = busy / wall if wall > 0 else None
    return {"busy": busy, "wall": wall, "busy_fraction": fraction, "gaps": len(gaps),
            "gap_median": statistics.median(gaps) if gaps else None, "gap_total": sum(gaps),
            "bound": None if fraction is None else ("host" if fraction < HOST_BOUND_BELOW else "device")}
