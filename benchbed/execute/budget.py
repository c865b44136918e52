"""How a run's budget is spent (``--budget``): what each job may time, and which cell gets the
next extra pass.

A first pass times each runner for its fair share of the time left, after the fixed costs
(loading, parity, warm-up, the per-runner passes: their mean so far) of the first passes still
to come; a cell stops sooner when its ratio is precise, and what it leaves goes to the cells
after it and to the extra passes. The extra passes go to the cells short of their ratio target
**cheapest first**: the timing a cell still needs is estimated from its pooled blocks (a CI's
half-width shrinks with the square root of the blocks), and a cell that can reach its target in
the time left goes before one that cannot, the least timing first, so the time buys as many
precise ratios as it can; cells out of reach then get what is left, the furthest from their
target first. Each extra pass is sized to what its cell needs (and to the time left), so a cell
of fast calls does not pay a slow cell's pass. docs/precision.md gives the measurements behind
this (`scripts/budget_policy.py`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ..measure.paired import blocks_factor, blocks_half_width
from ..measure.timer import StopRule

__all__ = ["FIRST_SHARE", "MIN_CAP_S", "CellNeed", "capped", "first_rule", "fitted_first_rule", "cell_need", "extra_rule",
           "reachable"]

#: the budget's share for the first passes' timing, split between every runner of the matrix (and
#: shrunk by `fitted_first_rule`); 1.0 did as well as 0.5-0.7 or better on the fake clock at every
#: budget tried, and ends an ample budget sooner (docs/precision.md)
FIRST_SHARE = 1.0
#: no runner's cap is below this (a window of a few calls of a millisecond model)
MIN_CAP_S = 0.2
#: timing asked for over the estimate (the estimate is a square-root law on a noisy half-width)
MARGIN = 1.25


def capped(rule: StopRule, cap_s: float) -> StopRule:
    """`rule` with each runner's timing capped at `cap_s` (and its floor at most half of that)."""
    return replace(rule, max_time_s=cap_s, min_time_s=min(rule.min_time_s, cap_s / 2))


def first_rule(rule: StopRule, budget_s: float, runners: int) -> StopRule:
    """The rule of a first pass: each runner's timing capped at its share of `FIRST_SHARE` of the
    budget, never longer than the rule's own cap."""
    return capped(rule, max(MIN_CAP_S, min(rule.max_time_s, FIRST_SHARE * budget_s / max(1, runners))))


#: what a first pass costs beyond its timing window, until one has been measured (seconds a cell)
FIXED_GUESS_S = 1.0


def fitted_first_rule(first: StopRule, left_s: float, cells_left: int, runners_left: int,
                      fixed_s: float | None) -> StopRule:
    """`first`, its cap shrunk where the time left would not otherwise hold every first pass still
    to come: each costs `fixed_s` (the mean so far) beyond its window, and the windows share the
    rest. So a budget whose fixed costs are heavier than planned still measures every cell."""
    fixed = FIXED_GUESS_S if fixed_s is None else fixed_s
    fit = (left_s - fixed * cells_left) / max(1, runners_left)
    if fit >= first.max_time_s:
        return first
    return capped(first, max(MIN_CAP_S, fit))


@dataclass(frozen=True)
class CellNeed:
    """How far a cell's pooled ratios are from their target, and what reaching it would cost."""

    #: the widest runner's half-width over its target (inf: too few blocks for a CI, or interfered)
    short: float
    #: timing window (seconds, all runners together) estimated to reach the target
    window_s: float
    #: what a pass costs beyond its timing window (warm-up, parity, passes), from the last one
    fixed_s: float
    #: the cell's runners (a window is shared by all of them)
    runners: int


def cell_need(pooled: dict[str, list[float]], target: float, windows_s: list[float], fixed_s: float,
              runners: int, busy: bool) -> CellNeed | None:
    """The need of a cell whose runners' pooled per-block ratios are `pooled`, after passes whose
    timing windows were `windows_s`; None when it has reached its target. A pass measured on a
    busy machine (`busy`) asks for a pass like it again, before any other."""
    short = max((blocks_half_width(b) / target for b in pooled.values()), default=0.0)
    factor = max([1.0] + [blocks_factor(b, target) for b in pooled.values()])
    if busy:
        return CellNeed(short=math.inf, window_s=windows_s[-1] if windows_s else 0.0, fixed_s=fixed_s,
                        runners=runners)
    if short <= 1.0:
        return None
    return CellNeed(short=short, window_s=sum(windows_s) * (factor - 1.0) * MARGIN, fixed_s=fixed_s,
                    runners=runners)


def extra_rule(rule: StopRule, need: CellNeed, left_s: float) -> StopRule | None:
    """The rule of an extra pass for `need`, sized to what it needs and to the time left; None
    when the time left holds no useful pass."""
    window = min(need.window_s, left_s - need.fixed_s, rule.max_time_s * need.runners)
    if window < MIN_CAP_S * need.runners:
        return None
    return capped(rule, window / need.runners)


def reachable(need: CellNeed, left_s: float) -> bool:
    """Whether the cell can reach its target within the time left (in one pass, or in several
    where a pass's cap is shorter than its need)."""
    return need.window_s + need.fixed_s <= left_s

