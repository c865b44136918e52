"""Timing the runners of one cell in the same time window, and the ratio that pairing allows.

A machine whose speed changes (a VM host, turbo and thermal limits, a neighbour's load) makes two
runners timed one after the other a ratio of two weathers: on a 2-core VM the same cell measured
six times that way gave ratios from 0.78 to 1.13; in alternating blocks of 5 calls, random order
per block, ratio = median of per-block ratios, 1.05 to 1.09. So, after each runner's warm-up::

    block b = 0, 1, ...:
        for runner in shuffled(runners):          # a fresh random order every block
            time `block_calls` calls of runner    # each sample keeps its block index
        at looks whose block counts grow by a quarter each, once every runner has min_samples
        and min_time has passed (per runner): stop when every runner's paired ratio to the
        reference has a CI within ±ratio_ci of itself (the ratio rule: a 97% CI, so that
        the reported 95% one keeps its coverage although it is looked at again and again); a runner alone:
        when its median's CI is narrower than rel_ci_width (the latency rule); or at
        max_time / max_samples

The ratio of runner r to the reference is the median over blocks of (median of r's calls in the
block ÷ median of the reference's calls in the block); its CI comes from the order statistics of
the per-block ratios (binomial, distribution-free): slow drift and intermittent contention hit
both sides of a block alike and cancel.

Looking at a CI again and again while sampling shrinks its coverage. Measured on a fake clock
with a drifting host (scripts/stop_rule_coverage.py, 1,000 A/A cells, ±2% target): the bootstrap
CI this replaced, checked every fifth block, covered 86-87% for a nominal 95% (and 92.6% at a
fixed 8 blocks); the exact CI at a fixed number of blocks covers 94.5-95.3%; stopped when the 95%
CI reaches the target, 92.9-94.4%; stopped when a 97% CI does (this rule), 94.0-94.8%, for 25%
more blocks. docs/precision.md has the figures.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

from .timer import StopRule, Timing, measure, no_sync

__all__ = ["PairedTiming", "measure_interleaved", "measure_sequential", "paired_ratio_ci", "block_ratios",
           "block_median_ci", "ratio_half_width", "blocks_half_width", "blocks_factor", "MIN_CI_BLOCKS", "FIRST_LOOK_BLOCKS", "ratio_columns"]


@dataclass(frozen=True)
class PairedTiming:
    """Per runner: its raw samples (a `Timing`) and the block index of each sample (empty when the
    runners were timed one after the other)."""

    timings: dict[str, Timing]
    blocks: dict[str, tuple[int, ...]]
    pairing: str
    #: the host yardstick's samples, timed in the same blocks (empty when it was not measured)
    host: tuple[float, ...] = ()
    host_blocks: tuple[int, ...] = ()


def block_ratios(num: Sequence[float], num_blocks: Sequence[int], den: Sequence[float],
                 den_blocks: Sequence[int]) -> np.ndarray:
    """num ÷ den per block both ran: the median of num's samples in the block over den's (what the
    paired ratio and the ratio gate are made of); ValueError when no block holds both."""
    a, ab = np.asarray(num, dtype=float), np.asarray(num_blocks)
    b, bb = np.asarray(den, dtype=float), np.asarray(den_blocks)
    common = np.intersect1d(np.unique(ab), np.unique(bb))
    if common.size == 0:
        raise ValueError("no block holds both runners")
    return np.array([np.median(a[ab == k]) / np.median(b[bb == k]) for k in common])


def paired_ratio_ci(num: Sequence[float], num_blocks: Sequence[int], den: Sequence[float],
                    den_blocks: Sequence[int], confidence: float = 0.95, seed: int = 0,
                    resamples: int = 2000) -> tuple[float, float, float]:
    """(point, low, high) of num ÷ den from paired blocks: per-block ratio of medians, median over
    blocks, CI by resampling blocks."""
    return block_median_ci(block_ratios(num, num_blocks, den, den_blocks), confidence, seed, resamples)


def block_median_ci(per_block: Sequence[float], confidence: float = 0.95, seed: int = 0,
                    resamples: int = 2000) -> tuple[float, float, float]:
    """(median, low, high) of per-block ratios; the CI from their order statistics (exact binomial,
    distribution-free; (min, max) below 6 blocks, whose coverage is then 1 - 2^(1-n)). `seed` and
    `resamples` are accepted for callers of the bootstrap this replaced, and unused."""
    del seed, resamples
    per_block = np.sort(np.asarray(per_block, dtype=float))
    point = float(np.median(per_block))
    if per_block.size == 1:
        return point, point, point
    k = _order_index(per_block.size, confidence)
    return point, float(per_block[k]), float(per_block[per_block.size - 1 - k])


def _order_index(n: int, confidence: float) -> int:
    """The largest 0-based k with 2 · P(B <= k) <= 1 - confidence, B ~ Binomial(n, 1/2): the sorted
    (x[k], x[n-1-k]) then covers the median unless B, the count below it, is <= k or >= n-k, so
    with at least that probability. 0 (min, max) where no k is enough (fewer than 6 values at 95%)."""
    from fractions import Fraction

    # exact, in integers: 2 · Σ_{i<=k} C(n, i) <= alpha · 2^n (no scipy: this runs inside a cell,
    # where a memory cap may forbid loading a library's shared objects)
    alpha = Fraction(1.0 - confidence).limit_denominator(10**9)
    bound = alpha.numerator << n
    total, c, k = 0, 1, -1
    for i in range(n // 2 + 1):
        total += c
        if 2 * total * alpha.denominator > bound:
            break
        k = i
        c = c * (n - i) // (i + 1)
    return max(0, min(k, (n - 1) // 2))


def ratio_half_width(point: float, low: float, high: float) -> float:
    """A ratio CI's half-width relative to its point: max(point - low, high - point) / point."""
    return max(point - low, high - point) / point if point > 0 else math.inf


#: The fewest per-block ratios whose order statistics make a 95% CI of their median (2 · 2^-n <=
#: 5%). Below it the interval shown is (min, max), which covers only 1 - 2^(1-n) (50% of 2 blocks):
#: its width says nothing about reaching a target.
MIN_CI_BLOCKS = 6


def blocks_half_width(per_block: Sequence[float]) -> float:
    """The 95% CI half-width of the median of per-block ratios, relative to it; inf below
    `MIN_CI_BLOCKS` blocks (no 95% CI yet, so no target is reached)."""
    if len(per_block) < MIN_CI_BLOCKS:
        return math.inf
    return ratio_half_width(*block_median_ci(per_block))


#: The blocks the ratio rule has before its first look (`measure_interleaved`'s `min_blocks`).
FIRST_LOOK_BLOCKS = 8


def blocks_factor(per_block: Sequence[float], target: float) -> float:
    """About how many times its blocks a ratio needs for a CI half-width of `target`: the width
    shrinks with the square root of the blocks; below `MIN_CI_BLOCKS`, enough for the rule's
    first look at least."""
    half = blocks_half_width(per_block)
    if half == math.inf:
        return FIRST_LOOK_BLOCKS / max(1, len(per_block))
    return (half / target) ** 2


def measure_sequential(fns: Mapping[str, Callable[[], object]], rule: StopRule = StopRule(),
                       syncs: Mapping[str, Callable[[], None]] | None = None,
                       clock: Callable[[], float] = time.perf_counter, events: Mapping[str, object] | None = None,
                       ) -> PairedTiming:
    """Each runner in its own time window, one after the other (``--pairing sequential``)."""
    syncs = syncs or {}
    timings = {name: measure(fn, rule, sync=syncs.get(name, no_sync), clock=clock,
                             events=(events or {}).get(name)) for name, fn in fns.items()}
    return PairedTiming(timings, {name: () for name in fns}, "sequential")


def measure_interleaved(fns: Mapping[str, Callable[[], object]], rule: StopRule = StopRule(),
                        reference: str | None = None, syncs: Mapping[str, Callable[[], None]] | None = None,
                        clock: Callable[[], float] = time.perf_counter, block_calls: int | None = None,
                        seed: int = 0, events: Mapping[str, object] | None = None,
                        min_blocks: int = FIRST_LOOK_BLOCKS,
                        block_s: float = 0.025, yardstick: Callable[[], object] | None = None,
                        yardstick_share: float = 0.12,
                        remote: Mapping[str, Callable[[int], Sequence[float]]] | None = None) -> PairedTiming:
    """Time the runners in alternating blocks (see the module docstring); `rule`'s times are per
    runner, so a cell of k runners takes about k times as long as one runner alone. `block_calls`
    None sizes blocks to about `block_s` of the slowest runner (3 to 50 calls), one call when the
    slowest takes `SLOW_CALL_S` or more; the last warm-up call measures it (at least one warm-up
    call is made, and warm-up ends after `WARMUP_S` of a runner's calls).

    `yardstick` (see `yardstick.host_yardstick`) takes part in every block, in the shuffled order,
    with calls worth about `yardstick_share` of one runner's block (2 at least); it does not count
    towards the stop rule. A single runner with a yardstick is still measured in blocks.

    `remote` maps runners timed in another process (another environment's worker) to a function
    running `n` calls there and returning their seconds by that process's clock: their blocks take
    their turn in the same shuffled order, so they are paired like any other."""
    remote = remote or {}
    names = list(fns)
    syncs = syncs or {}
    events = events or {}
    reference = reference if reference in fns else names[0]
    slowest = 0.0
    warmed: dict[str, int] = {}
    for name in names:
        if name in remote:
            last = list(remote[name](max(rule.warmup, 1)))[-1]
            slowest = max(slowest, last)
            warmed[name] = max(rule.warmup, 1)
            continue
        spent = 0.0
        warmed[name] = 0
        while warmed[name] < max(rule.warmup, 1):
            t0 = clock()
            fns[name]()
            syncs.get(name, no_sync)()
            last = clock() - t0
            spent += last
            warmed[name] += 1
            if spent >= WARMUP_S:  # slow calls: the first call paid the one-off costs (parity ran one before)
                break
        slowest = max(slowest, last)
    if block_calls is None:
        # blocks of about `block_s` each: long enough that a block's median is steady, short
        # enough that the machine's speed barely moves within a round of blocks; one call of a
        # slow runner (a block per call pairs adjacent calls, the narrowest ratio CI per second
        # measured for slow calls: docs/precision.md)
        if slowest >= SLOW_CALL_S:
            block_calls = 1
        else:
            block_calls = int(min(50, max(3, math.ceil(block_s / slowest)))) if slowest > 0 else 5
    host: list[float] = []
    host_blocks: list[int] = []
    host_calls = 0
    if yardstick is not None:
        yardstick()
        t0 = clock()
        yardstick()
        cost = clock() - t0
        host_calls = int(min(20, max(2, round(yardstick_share * block_calls * slowest / cost)))) if cost > 0 else 2
        names_and_host = names + ["\0host"]
    else:
        names_and_host = names
    samples: dict[str, list[float]] = {n: [] for n in names}
    blocks: dict[str, list[int]] = {n: [] for n in names}
    rng = random.Random(seed)
    k = len(names)
    start = clock()
    block = 0
    next_check = min_blocks
    reason = "max_samples"
    while True:
        order = names_and_host[:]
        rng.shuffle(order)
        for name in order:
            if name == "\0host":
                for _ in range(host_calls):
                    t0 = clock()
                    yardstick()  # type: ignore[misc]
                    host.append(clock() - t0)
                    host_blocks.append(block)
                continue
            if name in remote:
                got = list(remote[name](block_calls))
                samples[name].extend(got)
                blocks[name].extend([block] * len(got))
                continue
            fn, sync, ev = fns[name], syncs.get(name, no_sync), events.get(name)
            for _ in range(block_calls):
                if ev is not None:
                    ev.start()  # type: ignore[attr-defined]
                t0 = clock()
                fn()
                if ev is not None:
                    ev.stop()  # type: ignore[attr-defined]
                sync()
                t1 = clock()
                samples[name].append(t1 - t0)
                blocks[name].append(block)
                if ev is not None:
                    ev.collect()  # type: ignore[attr-defined]
        block += 1
        elapsed = clock() - start
        n = min(len(s) for s in samples.values())
        if n >= rule.max_samples:
            break
        if elapsed >= rule.max_time_s * k:
            reason = "max_time"
            break
        if n >= rule.min_samples and elapsed >= rule.min_time_s * k and block >= next_check:
            next_check = max(block + 1, math.ceil(block * LOOK_GROWTH))
            if _precise(samples, blocks, reference, rule):
                reason = "precise"
                break
    timings = {n: Timing(samples=tuple(samples[n]), warmup=warmed[n], stop_reason=reason, total_s=clock() - start)
               for n in names}
    return PairedTiming(timings, {n: tuple(blocks[n]) for n in names}, "interleaved", tuple(host), tuple(host_blocks))


#: a runner this slow gets one call a block: measured (scripts/slow_blocks.py, docs/precision.md), one call a block
#: gave the narrowest ratio CI in a fixed time at 15 ms calls (±1.09% median over 6 runs, ±3.36% with the 3 calls
#: it had) and at 0.25 s calls (±4.6% against ±11.5%); shorter calls keep blocks of about `block_s` (3 to 50 calls)
SLOW_CALL_S = 0.010
#: warm-up stops after this many seconds of a runner's calls (at least one call, at most the rule's count)
WARMUP_S = 1.0
#: how much the block count grows from one look of the ratio rule to the next
LOOK_GROWTH = 1.25
#: the confidence of the ratio rule's check: above the reported 95%, the margin that pays for looking again and
#: again (A/A coverage under the rule 94.0-94.8% where a 95% check gave 92.9-94.4%)
STOP_CONFIDENCE = 0.97


def _precise(samples: dict[str, list[float]], blocks: dict[str, list[int]], reference: str, rule: StopRule) -> bool:
    """Whether every runner's paired ratio to the reference is known to within ±``rule.ratio_ci``
    (95% CI, the ratio rule); a runner alone: whether its median's CI is
    narrower than ``rule.rel_ci_width`` of it (the latency rule)."""
    from .stats import median_ci_order

    others = [n for n in samples if n != reference]
    if not others:
        x = samples[reference]
        lo, hi = median_ci_order(x)
        med = float(np.median(x))
        return med > 0 and (hi - lo) / med <= rule.rel_ci_width
    for name in others:
        per_block = block_ratios(samples[name], blocks[name], samples[reference], blocks[reference])
        if ratio_half_width(*block_median_ci(per_block, STOP_CONFIDENCE)) > rule.ratio_ci:
            return False
    return True


def ratio_columns(timing: PairedTiming, name: str, reference: str, target: float, seed: int = 0) -> dict[str, object]:
    """`name`'s record columns about its ratio to `reference` and the rule that stopped the timing:
    ``ref_ratio`` with its CI and half-width (paired blocks when interleaved, independent samples
    otherwise), ``ratio_samples`` (the per-block ratios), ``stop_rule`` and ``ratio_ci_target``."""
    from .stats import ratio_ci

    out: dict[str, object] = {}
    t = timing.timings[name]
    if name != reference and reference in timing.timings:
        ref = timing.timings[reference]
        if timing.pairing == "interleaved":
            point, lo, hi = paired_ratio_ci(t.samples, timing.blocks[name], ref.samples, timing.blocks[reference])
            out["ratio_samples"] = block_ratios(t.samples, timing.blocks[name], ref.samples,
                                                timing.blocks[reference]).tolist()
            half = blocks_half_width(out["ratio_samples"])
        else:
            point, lo, hi = ratio_ci(t.samples, ref.samples, seed=seed)
            half = ratio_half_width(point, lo, hi)
        out.update(ref_ratio=point, ref_ratio_low=lo, ref_ratio_high=hi, ratio_ci_half=half)
    if timing.pairing == "interleaved":
        out.update(stop_rule="ratio" if len(timing.timings) > 1 else "latency", ratio_ci_target=target)
    else:  # one after the other: each on its own median; served rounds: a fixed number of requests
        out["stop_rule"] = "requests" if timing.pairing == "rounds" else "latency"
    return out
