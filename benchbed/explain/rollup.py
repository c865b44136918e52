"""Naming the functions that make a gap from two runners' sampled call stacks, by rolling small
differences up to their callers.

A function is named where the runners' time in it differs by at least the floor, and by more than
the sampling's noise (`Z` standard errors). Time whose leaf function moved by less is handed up
its own call stack, a frame per round, and counts towards the
caller: forty helpers of a pipeline's post-processing that each moved by 0.02 ms become their
caller's 0.8 ms, named as that caller "and its smaller calls". Only what reaches the top of its
stage without ever meeting a function that moved enough is unexplained. Functions are matched by
qualified name, not by path, so a model's ``Linear.forward`` reached through a pipeline and through
the raw call are the same function; what both runners spend in a function cancels there, and only
the excess goes up, along the stacks of the runner that spent it.

Pure functions over folded stacks (outermost frame first, seconds per call, already scaled to the
timed medians)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

__all__ = ["Rolled", "roll_up"]

Stack = tuple[tuple[str, ...], float]


@dataclass(frozen=True)
class Rolled:
    """A named function: its seconds per call in each runner (its own time, and its callees' where
    they did not move enough to be named) and how many distinct callees were rolled into it."""

    name: str
    runner_s: float
    reference_s: float
    callees: int

    @property
    def delta_s(self) -> float:
        return self.runner_s - self.reference_s


#: a difference is named only when it is this many standard errors of the sampling. A stage tests a
#: hundred functions or more: at 3, twins of the same code named a function from noise in 16 of 128
#: cells (three A/A runs of the default matrix's cells, scripts/explain_aa.py), at 3.5 in 4 of 128,
#: with the same unexplained share on the real pairs (docs/explain.md)
Z = 3.5


def roll_up(runner: list[Stack], reference: list[Stack], floor: float, tick_runner: float = 0.0,
            tick_reference: float = 0.0) -> tuple[list[Rolled], float]:
    """The functions named, the largest difference first, and the unexplained seconds (what no
    named function takes: the differences that reached the top of the stage still small).

    Rounds go up from the leaves, so the same function reached at different depths (a model's
    layers under a pipeline and under the raw call) is compared at once. Time handed up through a
    function in several rounds can add up past the floor there without any one round doing so:
    such a function is named too and the rounds are run again, until nothing more is named (and
    one whose share then falls under the floor is dropped, for good).

    `tick_runner` / `tick_reference`: each sample's seconds per call (the sampling interval ÷ the
    calls profiled). A function's sampled time t has a variance of about t × tick (its ticks
    are counts), so a difference within `Z` standard errors is noise, not named: a model's
    3 ms of ``Linear.forward`` sampled over 100 calls at 0.5 ms is ±0.12 ms. What is handed up
    keeps the variance of the times it is the excess of: 3.05 ms against 3.00 ms of
    ``Linear.forward`` sends 0.05 ms up with the ±0.12 ms of the 6 ms it came from, not the
    ±0.005 ms of 0.05 ms sampled (without that, callers such as ``Module._call_impl``, where the
    excess of every module's call meets, were named from noise: two runners of the same code
    named a function in 61 of 64 cells; scripts/explain_aa.py, docs/explain.md)."""
    def moved(net: float, variance: float) -> bool:
        return abs(net) >= max(floor, Z * variance ** 0.5)

    known: set[str] = set()
    banned: set[str] = set()
    while True:
        named, passed, unexplained = _rounds(runner, reference, moved, known, tick_runner, tick_reference)
        more = {n for n, (net, variance) in passed.items() if moved(net, variance) and n != "(rest)"} - known - banned
        # one named that way whose own share ended up under the floor (its callees were named
        # since) is not named after all: its time goes up to its callers
        small = {n for n in known if n in named and abs(named[n][0] - named[n][1]) < floor}
        if not more and not small:
            break
        known = (known | more) - small
        banned |= small
    out = [Rolled(n, a, b, len(callees)) for n, (a, b, callees) in named.items()]
    out.sort(key=lambda r: -abs(r.delta_s))
    return out, unexplained


def _rounds(runner: list[Stack], reference: list[Stack], moved: Callable[[float, float], bool],
            known: set[str], tick_runner: float, tick_reference: float
            ) -> tuple[dict[str, list], dict[str, list[float]], float]:
    # each entry: frames, position (the frame it stands at), seconds in the runner, in the
    # reference, and the variance of those seconds (a count of ticks; then what it was handed up with)
    active = [[frames, len(frames) - 1, s, 0.0, s * tick_runner] for frames, s in runner if frames] + \
             [[frames, len(frames) - 1, 0.0, s, s * tick_reference] for frames, s in reference if frames]
    named: dict[str, list] = {n: [0.0, 0.0, set()] for n in known}
    passed: dict[str, list[float]] = {}  # what was handed up through each function: net seconds, variance
    unexplained = 0.0
    while active:
        here: dict[str, list[list]] = {}
        for entry in active:
            here.setdefault(entry[0][entry[1]], []).append(entry)
        still = []
        for name, entries in here.items():
            a, b = sum(e[2] for e in entries), sum(e[3] for e in entries)
            variance = sum(e[4] for e in entries)
            if name not in named and moved(a - b, variance) and name != "(rest)":
                named[name] = [0.0, 0.0, set()]
            if name in named:
                slot = named[name]
                slot[0] += a
                slot[1] += b
                for frames, pos, _, _, _ in entries:
                    slot[2].update(f for f in frames[pos + 1:] if f != name)
                continue
            # what both runners spend here cancels here; only the excess goes up, on its side,
            # with the variance of all that arrived here
            through = passed.setdefault(name, [0.0, 0.0])
            through[0] += a - b
            through[1] += variance
            going = []
            for e in entries:
                e[2], e[3] = (e[2] * (a - b) / a, 0.0) if a > b else (0.0, e[3] * (b - a) / b if b else 0.0)
                if e[2] or e[3]:
                    going.append(e)
            excess = sum(e[2] + e[3] for e in going)
            for e in going:
                e[4] = variance * (e[2] + e[3]) / excess
                if e[1] == 0:
                    unexplained += e[2] - e[3]
                else:
                    e[1] -= 1
                    still.append(e)
        active = still
    return {n: v for n, v in named.items() if v[0] or v[1]}, passed, unexplained
