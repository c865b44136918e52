"""The explain pass (``--explain``, `benchbed explain`): after a cell's timing and its runners'
other passes, each runner's calls are profiled once more — the stages' clock times, a sampling
profile of the Python functions, the operators — outside every timed window, and the profile is
kept in the runner's record (``profile_json``). What it means, the gap taken apart, is computed
from two records' profiles by `benchbed.explain` (the report, the console, compare)."""

from __future__ import annotations

import json
import math
import time
from typing import Any

from ..measure.profile import ProfilerMissing, operator_profile, python_profile, stage_clock
from ..measure.sampler import signal_profiles

__all__ = ["EXPLAIN_MODES", "explain_cell", "profile_runners", "profile_columns", "gap_runners"]

#: Values of `EngineConfig.explain`: no pass; the cells where a runner's ratio CI excludes 1; every cell.
EXPLAIN_MODES = ("off", "gap", "all")
#: An explain pass's share of the cell's timing window (the issue's goal: an explain pass costs
#: no more than the cell's timing), split between the runners profiled, and each runner's share
#: between the stage clock, the sampling profile and the operator view
BUDGET_SHARE = 0.8
CLOCK_SHARE, PYTHON_SHARE, OPERATOR_SHARE = 0.2, 0.55, 0.25
#: Seconds a runner's pass may take, at least (its views need a few calls) and at most
RUNNER_MIN_S, RUNNER_MAX_S = 0.3, 4.0
#: Calls of the stage clock and of the sampling profile, at least and at most.
CALLS_MIN, CALLS_MAX = 3, 400
#: The operator view's most calls. torch.profiler's cost is in building its event tree after the
#: calls, per event: 0.05-0.5 s a call of MiniLM (a token-classification pipeline's aggregation
#: is thousands of small operators), so one profiled call first measures what a call costs, and
#: a second profile with more calls is taken only where they fit the view's share
OPERATOR_CALLS_MAX = 10


def gap_runners(recs: dict[str, dict[str, Any]], reference: str) -> list[str]:
    """The runners whose ratio to the reference has a CI that excludes 1."""
    out = []
    for name, rec in recs.items():
        low, high = rec.get("ref_ratio_low"), rec.get("ref_ratio_high")
        if name != reference and rec.get("status") == "ok" and low is not None and high is not None \
                and (low > 1 or high < 1):
            out.append(name)
    return out


def explain_cell(recs: dict[str, dict[str, Any]], runners: dict[str, Any], mode: str, reference: str,
                 per_call: bool) -> None:
    """Profile the cell's runners (mode ``all``), or the reference and the runners whose ratio CI
    excludes 1 (mode ``gap``), into their records."""
    if mode == "off":
        return
    names = [n for n in recs if recs[n].get("status") == "ok"]
    if mode == "gap":
        targets = gap_runners(recs, reference)
        names = [n for n in names if n in targets or (targets and n == reference)]
    local: dict[str, Any] = {}
    for name in names:
        rec, run = recs[name], runners.get(name)
        if run is None:
            continue
        if not per_call:
            rec.update(explain_status="skipped", explain_message=f"explain profiles single calls; the "
                       f"{rec.get('scenario') or 'this'} scenario's samples are not one call each")
        elif getattr(run, "remote", False):  # RUNNER@ENV: profiled in its environment's worker
            try:
                rec.update(run.explain(rec))
            except Exception as exc:
                rec.update(_failed(exc, 0.0))
        elif not getattr(run, "LOCAL", True):
            rec.update(explain_status="skipped", explain_message="the runner's calls run in a server or behind an "
                       "endpoint: not profiled here")
        else:
            local[name] = run
    if local:
        for name, columns in profile_runners(local, recs).items():
            recs[name].update(columns)


def _calls(seconds: float, median_s: float) -> int:
    if median_s <= 0:
        return CALLS_MIN
    return max(CALLS_MIN, min(CALLS_MAX, math.ceil(seconds / median_s)))


def profile_runners(runs: dict[str, Any], recs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each runner's profile as record columns: the stage clock pass alternates the runners' calls;
    then each runner's sampling and operator profiles, all within `BUDGET_SHARE` of the cell's
    timing window. A profiler that fails is that record's ``explain_status`` ``failed`` with the
    reason, never the loss of its timed figures."""
    medians = {n: recs[n].get("lat_median_s") or 0.0 for n in runs}
    timing = min(recs[n].get("measure_s") or 0.0 for n in runs)
    budget = max(RUNNER_MIN_S, min(RUNNER_MAX_S, BUDGET_SHARE * timing / len(runs)))
    t0 = time.perf_counter()
    try:
        clocks = stage_clock(runs, _calls(CLOCK_SHARE * budget * len(runs), sum(medians.values())))
        pythons = _python_views(runs, PYTHON_SHARE * budget * len(runs), sum(medians.values()))
    except Exception as exc:
        return {n: _failed(exc, time.perf_counter() - t0) for n in runs}
    share = (time.perf_counter() - t0) / len(runs)
    return {n: profile_columns(run, medians[n], clocks[n], budget, recs[n]["device"].startswith("cuda"), share,
                               pythons[n])
            for n, run in runs.items()}


def _python_views(runs: dict[str, Any], seconds: float, median_s: float) -> dict[str, dict[str, Any]]:
    """The runners' Python views in one window, their calls alternating (`signal_profiles`: the
    machine's drift falls on all alike); pyinstrument, one runner after the other, where the
    timer-signal sampler cannot run (not the main thread, SIGALRM in use), saying so."""
    try:
        return signal_profiles({n: run.call_in_stages for n, run in runs.items()}, CALLS_MAX, seconds=seconds,
                               min_calls=CALLS_MIN)
    except ProfilerMissing as exc:
        out = {}
        for name, run in runs.items():
            # its hook slows a call about twofold (docs/explain.md): half the calls fill the time
            python = python_profile(run.call_in_stages, _calls(seconds / len(runs) / 2, median_s / len(runs)))
            python["fallback"] = str(exc)
            out[name] = python
        return out


def _operator_view(run: Any, seconds: float, cuda: bool) -> dict[str, Any]:
    """torch.profiler over one call, then over as many more (up to `OPERATOR_CALLS_MAX`) as that
    call's cost says fit in what is left of `seconds`."""
    t0 = time.perf_counter()
    operators = operator_profile(run.call_in_stages, 1, cuda)
    cost = time.perf_counter() - t0
    more = int((seconds - cost) / cost) if cost > 0 else 0
    if more >= 2:
        operators = operator_profile(run.call_in_stages, min(OPERATOR_CALLS_MAX, more), cuda)
    return operators


def _failed(exc: BaseException, seconds: float) -> dict[str, Any]:
    return {"explain_status": "failed", "explain_message": f"{type(exc).__name__}: {exc}"[:500], "explain_s": seconds}


def profile_columns(run: Any, median_s: float, stages: dict[str, float], budget: float, cuda: bool,
                    spent_s: float = 0.0, python: dict[str, Any] | None = None) -> dict[str, Any]:
    """One runner's operator profile (and its sampling profile, unless `python` was taken with the
    other runners') beside its stage clock times, as columns, in about `budget` seconds with what
    `spent_s` says was spent on it already."""
    t0 = time.perf_counter()
    total = sum(stages.values()) or median_s
    try:
        if python is None:
            python = _python_views({"": run}, PYTHON_SHARE * budget, total)[""]
            left = (PYTHON_SHARE + OPERATOR_SHARE) * budget - (time.perf_counter() - t0)
        else:
            left = OPERATOR_SHARE * budget
        operators = _operator_view(run, left, cuda)  # what the sampling profile left (one call at least)
    except Exception as exc:  # a failed explanation is data; the timed record stands
        return _failed(exc, spent_s + time.perf_counter() - t0)
    profile = {"version": 1, "timed_median_s": median_s, "stage_clock_s": stages, "python": python,
               "operators": operators}
    return {"explain_status": "ok", "explain_message": None, "explain_s": spent_s + time.perf_counter() - t0,
            "explain_overhead": python["wall_s"] / median_s if median_s > 0 else None,
            "profile_json": json.dumps(profile, separators=(",", ":"))}
