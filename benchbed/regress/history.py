"""Change points in each case's nightly series, confirmed only when the shift persists.

Detection: ruptures' PELT (exact optimal partitioning under a penalty; a maintained library, so
the segmentation is not ours to get wrong; run through its C KernelCPD with the linear kernel,
which is PELT with the l2 cost) on the log of each run's median, with an l2 cost, a
minimum segment of two runs and a BIC-like penalty scaled by the series' own noise (a robust
estimate from the median absolute successive difference).

Confirmation, so that a single noisy night raises nothing:
  * the new level holds for at least two consecutive runs: each of the first two runs after the
    change point differs from the level before by more than the threshold, in the same direction,
    and each of the last two runs before it differs from the new level likewise (so a spike that
    PELT folds into a short segment is not mistaken for a step back);
  * the segment means differ by more than the threshold;
  * the raw samples of the runs before and after differ by a Mann-Whitney U test (p < alpha).
An environment change (library versions, hardware) between two runs is named beside any change
point at that run.

Fail closed: records whose samples are empty or not all finite are left out of the series, and
`unjudged_cases` names every case of the newest runs that could not be judged (unusable samples,
no finished record, or missing from the newest run while the run before had it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..measure.stats import STATISTICS
from .compare import (NO_RATIOS, NO_YARDSTICK, case_label, env_fingerprint, fingerprint_differences, metric_column,
                      ratio_label, ratio_records, run_order, same_env, sample_problem, testbed_keys,
                      without_yardstick)
from .thresholds import RATIO, Thresholds

__all__ = ["ChangePoint", "HistorySettings", "detect", "find_change_points", "run_order", "unjudged_cases",
           "underpowered_cases"]


@dataclass(frozen=True)
class HistorySettings:
    thresholds: Thresholds = Thresholds()
    alpha: float = 0.05
    penalty: float = 3.0
    min_noise: float = 0.005
    #: "host": each run's samples divided by its record's host yardstick (`compare.NORMALIZE`)
    normalize: str = "none"
    #: A latency statistic of each run's samples, or "ratio": the median of its per-block ratios to
    #: the reference (the records of every runner but the reference).
    metric: str = "median"


@dataclass(frozen=True)
class ChangePoint:
    """A confirmed shift of one case starting at run `run_id` (index `index` in run order)."""

    case_id: str
    label: str
    index: int
    run_id: str
    before_s: float
    after_s: float
    change: float
    p_value: float
    kind: str  # "regression" | "improvement"
    env_change: str

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _noise(logs: np.ndarray, floor: float) -> float:
    if len(logs) < 3:
        return floor
    d = np.abs(np.diff(logs))
    sigma = float(np.median(d)) / (0.6745 * np.sqrt(2))  # successive differences: sigma*sqrt(2) spread
    return max(sigma, floor)


def detect(logs: np.ndarray, penalty: float = 3.0, min_noise: float = 0.005) -> list[int]:
    """Candidate change points (indices of the first run of each new segment) in a log series."""
    import ruptures

    n = len(logs)
    if n < 4:
        return []
    sigma = _noise(logs, min_noise)
    # KernelCPD with the linear kernel is PELT under the l2 cost, in C: the same segmentation as
    # ruptures.Pelt(model="l2") (checked on 200 random series) about 200x faster, which keeps a
    # 500-case x 100-night history inside a report's time budget.
    algo = ruptures.KernelCPD(kernel="linear", min_size=2, jump=1).fit(logs.reshape(-1, 1))
    ends = algo.predict(pen=penalty * sigma**2 * np.log(n))
    return [int(e) for e in ends if e < n]


def _env_changes(df: Any, runs: list[str]) -> dict[int, str]:
    """Index of each run whose comparable environment differs from the run before it -> description."""
    out: dict[int, str] = {}
    prev = None
    for i, run in enumerate(runs):
        fp = env_fingerprint(df[df["run_id"] == run])
        if prev is not None and not same_env(prev, fp):
            out[i] = "; ".join(fingerprint_differences(prev, fp))
        prev = {**(prev or {}), **fp}  # a key this run lacks keeps the last known value
    return out


def _series(df: Any, settings: HistorySettings) -> Any:
    """Each case's usable series, one point per run: (case id, label, its rows in run order, raw
    samples, samples as judged, medians, log statistics, threshold, the run order, environment
    changes by run index)."""
    import pandas as pd

    from ..record import pool_records

    ratio = settings.metric == RATIO
    column = metric_column(settings.metric)
    stat = STATISTICS["median" if ratio else settings.metric]
    if ratio:
        df = ratio_records(df)
    if column not in df.columns:
        return
    ok = df[(df["status"] == "ok") & df[column].map(sample_problem).isna() & ~_interfered(df)]
    if settings.normalize == "host":  # records without a yardstick cannot be put on the same scale
        ok = ok[~without_yardstick(ok)]
    if ok.duplicated(["run_id", "case_id"]).any():  # runs made in passes: one point per run and case
        ok = pd.DataFrame(pool_records(ok.to_dict("records")))
    runs = run_order(ok)
    index = {r: i for i, r in enumerate(runs)}
    envs = _env_changes(ok, runs)
    (keys,) = testbed_keys(ok)
    for key, g in ok.assign(_key=keys).groupby("_key", sort=False):
        g = g.assign(_i=g["run_id"].map(index)).sort_values("_i")
        raw = [np.asarray(s, dtype=float) for s in g[column]]
        per_run = raw
        if settings.normalize == "host":
            per_run = [s / float(h) for s, h in zip(raw, g["host_median_s"])]
        medians = np.array([float(stat(s)) for s in raw])  # what before_s / after_s report
        logs = np.log(np.array([float(stat(s)) for s in per_run]))
        label = ratio_label(g.iloc[-1]) if ratio else case_label(g.iloc[-1])
        threshold = settings.thresholds.for_case(settings.metric, label)
        yield g["case_id"].iloc[0], label, g, raw, per_run, medians, logs, threshold, runs, envs


def underpowered_cases(df: Any, settings: HistorySettings, window: int, points: list[ChangePoint]) -> list[dict[str, Any]]:
    """Cases the history could not have confirmed a change of their threshold in: the runs before
    the newest `window`, since the last change point, spread so much (their log medians' sd, `power.minimum_detectable` with one
    current run, as the confirmation holds each run after a change to the threshold) that the
    minimum detectable change exceeds the threshold, or fewer than 3 such runs tell the spread.
    A case with a confirmed change in the window (`points`) is judged already."""
    from .power import MIN_RUNS_FOR_SPREAD, minimum_detectable, power_advice

    out = []
    for case_id, label, g, _, _, _, logs, threshold, runs, _ in _series(df, settings):
        changes = [p.index for p in points if p.case_id == case_id]
        newest = len(runs) - window
        if g["_i"].iloc[-1] < newest or any(i >= newest for i in changes):
            continue  # the window holds no run of it, or a confirmed change there judges it
        positions = g["_i"].to_numpy()
        end = int(np.searchsorted(positions, newest))
        start = int(np.searchsorted(positions, max(changes, default=0)))
        base = logs[start:end]  # the current level: the runs since the last confirmed change
        if len(base) < MIN_RUNS_FOR_SPREAD:
            reason = (f"underpowered: {len(base)} run(s) before the newest {window}; the history needs "
                      f"{MIN_RUNS_FOR_SPREAD} to know its run-to-run spread")
        else:
            mde, basis, sd = minimum_detectable(np.exp(base), 1, (0.0, 0.0), settings.alpha)
            if mde <= threshold:
                continue
            reason = (f"underpowered: could confirm only changes of {100 * mde:.1f}% or more (threshold "
                      f"{100 * threshold:.0f}%); " + power_advice(mde, basis, sd, threshold, len(base), 1,
                                                                   settings.alpha))
        out.append({"case_id": case_id, "label": label, "run_id": runs[-1], "reason": reason})
    return out


def find_change_points(df: Any, settings: HistorySettings = HistorySettings()) -> tuple[list[ChangePoint], dict[int, str], list[str]]:
    """Confirmed change points of every case, environment changes by run index, and run order."""
    from scipy.stats import mannwhitneyu

    found: list[ChangePoint] = []
    runs: list[str] = []
    envs: dict[int, str] = {}
    for case_id, label, g, _, per_run, medians, logs, threshold, runs, envs in _series(df, settings):
        bounds = [0] + detect(logs, settings.penalty, settings.min_noise) + [len(logs)]
        for j in range(1, len(bounds) - 1):
            start, k, end = bounds[j - 1], bounds[j], bounds[j + 1]
            before, after = logs[start:k], logs[k:end]
            level = before.mean()
            change = float(np.exp(after.mean() - level) - 1)
            # both levels must hold for two runs on their side of the change: the first two runs after
            # it differ from the old level, and the last two before it from the new level, each by more
            # than the threshold (a spike inside the old segment fails the second test)
            firsts = np.exp(after[:2] - level) - 1
            lasts = np.exp(after.mean() - before[-2:]) - 1
            up = bool(np.all(firsts > threshold)) and bool(np.all(lasts > threshold))
            down = bool(np.all(firsts < -threshold)) and bool(np.all(lasts < -threshold))
            persistent = len(after) >= 2 and len(before) >= 2 and (up or down)
            if not persistent or abs(change) <= threshold:
                continue
            a = np.concatenate(per_run[start:k])
            b = np.concatenate(per_run[k:end])
            p = float(mannwhitneyu(a, b, alternative="two-sided").pvalue)
            if p >= settings.alpha:
                continue
            run_i = int(g["_i"].iloc[k])
            found.append(ChangePoint(case_id=case_id, label=label, index=run_i, run_id=runs[run_i],
                                     before_s=float(np.median(medians[start:k])), after_s=float(np.median(medians[k:end])),
                                     change=change, p_value=p, kind="regression" if change > 0 else "improvement",
                                     env_change=envs.get(run_i, "")))
    found.sort(key=lambda c: (-c.index, -c.change))
    return found, envs, runs


def unjudged_cases(df: Any, window: int, normalize: str = "none", metric: str = "median") -> list[dict[str, Any]]:
    """Cases of the newest `window` runs the history cannot judge, each with the reason: a record
    without usable samples or without a finished status (for a case earlier runs measured), one
    without a host yardstick when `normalize` is "host", and a case the run before the newest had
    that the newest run lacks (a run killed half-way)."""
    if metric == RATIO:
        df = ratio_records(df)
    order = run_order(df)
    if not order:
        return []
    column = metric_column(metric)
    problem = df[column].map(sample_problem) if column in df.columns else df["samples_s"].map(lambda _: "no samples")
    if metric == RATIO:
        problem = problem.where(problem != "no samples", NO_RATIOS)
    if normalize == "host":
        problem = problem.where(~without_yardstick(df) | problem.notna(), NO_YARDSTICK)
    busy = _interfered(df)
    problem = problem.where(~busy | problem.notna(), "interfered: " + df["interference"].fillna("the machine was busy")
                            if "interference" in df.columns else "interfered")
    usable = df[(df["status"] == "ok") & problem.isna()]
    if usable.empty and metric == RATIO:  # no block ratio anywhere: every ratio case of the newest run is unjudged
        newest = df[df["run_id"] == order[-1]].drop_duplicates("case_id")
        return [{"case_id": r["case_id"], "label": ratio_label(r), "run_id": order[-1],
                 "reason": problem[i] if isinstance(problem[i], str) else NO_RATIOS} for i, r in newest.iterrows()]
    usable_keys = set(zip(usable["run_id"], usable["case_id"]))
    out: list[dict[str, Any]] = []
    for run in order[-window:]:
        sub = df[df["run_id"] == run]
        for case_id, g in sub.groupby("case_id", sort=False):
            if (run, case_id) in usable_keys:
                continue
            if not ((usable["case_id"] == case_id) & (usable["run_id"] != run)).any():
                continue  # never measured elsewhere: nothing to hold it to
            ok = g[g["status"] == "ok"]
            reason = (problem[ok.index].dropna().iloc[0] if not ok.empty
                      else f"no finished record (status {', '.join(sorted({str(x) for x in g['status']}))})")
            out.append({"case_id": case_id, "label": case_label(g.iloc[-1]), "run_id": run, "reason": reason})
    if len(order) >= 2:
        last, prev = order[-1], order[-2]
        have = set(df.loc[df["run_id"] == last, "case_id"])
        before = usable[usable["run_id"] == prev]
        for case_id, g in before.groupby("case_id", sort=False):
            if case_id not in have:
                out.append({"case_id": case_id, "label": case_label(g.iloc[-1]), "run_id": last,
                            "reason": f"missing from the newest run (run {prev} had it)"})
    return out


def _interfered(df: Any) -> Any:
    """Records measured while the machine was busy (they never make or confirm a verdict)."""
    import pandas as pd

    if "interfered" not in df.columns:
        return pd.Series(False, index=df.index)
    return df["interfered"].fillna(False).astype(bool)
