"""Bisection to the release or commit that changed a cell: the search and its verdicts, apart from
how a point is installed and measured (`commands/bisect.py` does that, one interleaved cell per
step: the candidate's runner against the good end's, in two environments, in one window).

Each step is judged by the gate's rule on the paired ratio candidate ÷ good: **changed** when the
change is above the threshold and its 95% CI excludes no change (on the side of the change the ends
showed); **unchanged** when the whole CI lies within ± threshold; otherwise **undecided**, and the
step measures again (its blocks pooled) up to a bound; no verdict comes from fewer than
`MIN_BLOCKS` blocks. A step still undecided stops the search
with that said: bisection never guesses. A point that will not install is skipped (the installer's
line recorded) and the search goes on around it; when the culprit's neighbour could not be
tested, the answer is the range, not a guess.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence


__all__ = ["Point", "Step", "Bisection", "judge", "bisect", "pooled_ratio", "CHANGED", "UNCHANGED", "UNDECIDED",
           "SKIPPED"]

CHANGED, UNCHANGED, UNDECIDED, SKIPPED = "changed", "unchanged", "undecided", "skipped"


@dataclass(frozen=True)
class Point:
    """One measurement of candidate ÷ good: the pooled per-block ratios and their CI."""

    ratio: float
    low: float
    high: float
    blocks: int
    seconds: float = 0.0


def pooled_ratio(samples: Sequence[float], seed: int = 0, resamples: int = 2000) -> tuple[float, float, float]:
    """(median, low, high) of per-block ratios with a 95% bootstrap CI over blocks (the paired
    ratio's own statistic, `measure.paired.block_median_ci`)."""
    from ..measure.paired import block_median_ci

    return block_median_ci(samples, 0.95, seed, resamples)


def judge(point: Point, threshold: float, direction: int = 0) -> str:
    """The gate's verdict on one point (see the module docstring); `direction` +1 (slower), -1
    (faster) or 0 (either: the ends themselves)."""
    up = point.ratio - 1 > threshold and point.low > 1
    down = 1 - point.ratio > threshold and point.high < 1
    if (up and direction >= 0) or (down and direction <= 0):
        return CHANGED
    if point.low > 1 - threshold and point.high < 1 + threshold:
        return UNCHANGED
    if up or down:  # significant, but the other way than the ends: not this change
        return UNCHANGED
    return UNDECIDED


@dataclass
class Step:
    """One candidate measured (or skipped): its verdict and the rounds it took."""

    label: str
    index: int
    verdict: str
    point: Point | None = None
    rounds: int = 0
    note: str = ""


@dataclass
class Bisection:
    """The search's outcome: `culprit` (first changed point), or why there is none."""

    labels: list[str]
    steps: list[Step] = field(default_factory=list)
    direction: int = 0
    culprit: str | None = None
    #: when the culprit is only known to be one of several points (untestable neighbours)
    candidates: list[str] = field(default_factory=list)
    reason: str = ""

    @property
    def kind(self) -> str:
        return {1: "regression (slower)", -1: "improvement (faster)"}.get(self.direction, "no change")


#: measure(index, previous rounds' ratio samples) → the ratio samples of one more round, or a
#: string (the installer's line: the point cannot be tested)
Measure = Callable[[int, list[float]], "list[float] | str"]


#: blocks a verdict needs: a CI from fewer paired blocks is a guess (a slow cell on a busy machine
#: gets two or three per measurement); below it a step measures again, within its rounds
MIN_BLOCKS = 6


def _decide(measure: Measure, index: int, label: str, threshold: float, direction: int, max_rounds: int,
            seed: int) -> Step:
    pooled: list[float] = []
    point = Point(float("nan"), float("nan"), float("nan"), 0)
    for rounds in range(1, max_rounds + 1):
        got = measure(index, pooled)
        if isinstance(got, str):
            return Step(label, index, SKIPPED, note=got, rounds=rounds)
        pooled = pooled + list(got)
        if not pooled:
            continue
        point = Point(*pooled_ratio(pooled, seed), blocks=len(pooled))
        verdict = judge(point, threshold, direction) if len(pooled) >= MIN_BLOCKS else UNDECIDED
        if verdict != UNDECIDED:
            return Step(label, index, verdict, point, rounds)
    return Step(label, index, UNDECIDED, point, max_rounds)


def bisect(labels: Sequence[str], measure: Measure, threshold: float = 0.03, max_rounds: int = 3,
           seed: int = 0) -> Bisection:
    """The first point of `labels` (ordered, good first, bad last) whose ratio to the good end
    changed the way the bad end did."""
    out = Bisection(list(labels))
    if len(labels) < 2:
        out.reason = "need a good and a bad point"
        return out
    last = len(labels) - 1
    ends = _decide(measure, last, labels[last], threshold, 0, max_rounds, seed)
    out.steps.append(ends)
    if ends.verdict == SKIPPED:
        out.reason = f"the bad end {labels[last]} cannot be tested: {ends.note}"
        return out
    if ends.verdict != CHANGED:
        out.reason = (f"{labels[last]} is not measurably different from {labels[0]} "
                      f"({ends.verdict}: ratio {ends.point.ratio:.3f} [{ends.point.low:.3f}, {ends.point.high:.3f}],"
                      f" threshold ±{threshold:.0%}): nothing to bisect")
        return out
    out.direction = 1 if ends.point.ratio > 1 else -1
    lo, hi = 0, last  # lo: known like good; hi: known changed
    untestable: set[int] = set()
    while hi - lo > 1:
        inside = [i for i in range(lo + 1, hi) if i not in untestable]
        if not inside:
            break
        mid = min(inside, key=lambda i: (abs(i - (lo + hi) / 2), i))
        step = _decide(measure, mid, labels[mid], threshold, out.direction, max_rounds, seed)
        out.steps.append(step)
        if step.verdict == SKIPPED:
            untestable.add(mid)
        elif step.verdict == CHANGED:
            hi = mid
        elif step.verdict == UNCHANGED:
            lo = mid
        else:
            out.reason = (f"{labels[mid]} stayed undecided after {step.rounds} round(s): ratio {step.point.ratio:.3f} "
                          f"[{step.point.low:.3f}, {step.point.high:.3f}] is neither within ±{threshold:.0%} of "
                          f"{labels[0]} nor a significant change; the culprit is between {labels[lo]} and "
                          f"{labels[hi]} (not guessed)")
            out.candidates = list(labels[lo + 1:hi + 1])
            return out
    between = [labels[i] for i in range(lo + 1, hi)]
    if between:  # all untestable: the change is in one of them or at hi
        out.candidates = between + [labels[hi]]
        out.reason = (f"the change is in one of {', '.join(out.candidates)}: "
                      f"{', '.join(between)} could not be installed")
        return out
    out.culprit = labels[hi]
    return out
