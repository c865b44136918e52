"""Compare two sets of runs case by case: relative change of a latency statistic (median by
default) with a bootstrap CI, and a Mann-Whitney U test on the raw samples.

A case is a regression only when the change exceeds its threshold *and* is significant (p below
alpha and the CI excluding zero, and — when the baseline holds three or more runs of the case —
outside the prediction interval of the baseline runs' medians), so noise alone raises nothing. Samples of several runs of the
same case on one side are concatenated (merging runs concatenates samples). Only runs of a
comparable environment (same hardware and library versions) are compared unless the caller
allows otherwise; the differences are always named.

The gate fails closed: a case that cannot be judged — the current side has no finished record of
it (error, timeout, oom), or either side's samples are empty or not all finite — gets the verdict
``unjudged`` with the reason, and `Comparison.unjudged` counts them, so the caller can refuse to
pass. A case only one side has is listed as ``missing``, not judged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..env import COMPARABLE_KEYS
from ..measure.stats import STATISTICS, ratio_ci
from .power import MIN_RUNS_FOR_SPREAD, minimum_detectable, power_advice
from .thresholds import RATIO, Thresholds

__all__ = ["NORMALIZE", "CompareSettings", "Comparison", "compare_frames", "compare_runs", "env_differences", "case_label",
           "env_fingerprint", "fingerprint_differences", "same_env", "newest_against_earlier", "run_order", "sample_problem"]


#: Values of `CompareSettings.normalize`: judge raw latency, or latency ÷ the record's host yardstick.
NORMALIZE = ("none", "host")


@dataclass(frozen=True)
class CompareSettings:
    metric: str = "median"
    #: "host": each record's samples are divided by its ``host_median_s`` (the yardstick timed in the
    #: same blocks) before judging, so a machine that ran slower as a whole does not read as a
    #: regression; "none": raw latency.
    normalize: str = "none"
    thresholds: Thresholds = field(default_factory=Thresholds)
    alpha: float = 0.05
    resamples: int = 1000
    seed: int = 0
    allow_env_change: bool = False


@dataclass(frozen=True)
class Comparison:
    """The outcome: per-case rows (a DataFrame), named environment changes, whether compared."""

    cases: Any
    env_changes: list[str]
    compared: bool
    baseline_runs: list[str]
    current_runs: list[str]
    metric: str
    normalize: str = "none"

    def count(self, verdict: str) -> int:
        """Cases with this verdict."""
        return 0 if self.cases.empty else int((self.cases["verdict"] == verdict).sum())

    regressions = property(lambda self: self.count("regression"))
    improvements = property(lambda self: self.count("improvement"))
    #: Cases judged unchanged whose minimum detectable change exceeds their threshold.
    underpowered = property(lambda self: self.count("underpowered"))
    #: Cases present on both sides that could not be judged (see the module docstring).
    unjudged = property(lambda self: self.count("unjudged"))
    #: Cases given a verdict (regression, improvement, unchanged or underpowered).
    judged = property(lambda self: 0 if self.cases.empty else len(self.cases) - self.count("unjudged"))


def case_label(row: Any) -> str:
    return (f"{row['task']} {row['model']} {row['runner']} {row['device']} {row['dtype']} "
            f"b{row['batch_size']} s{row['seq_len']}")


def env_fingerprint(df: Any, keys: tuple[str, ...] = COMPARABLE_KEYS) -> dict[str, tuple[str, ...]]:
    """Each comparable key's values in `df`; a key no record holds (older records: null) is left out."""
    fp = {k: tuple(sorted({str(v) for v in df[k].dropna().unique()})) for k in keys if k in df.columns}
    return {k: v for k, v in fp.items() if v}


def fingerprint_differences(a: dict[str, tuple[str, ...]], b: dict[str, tuple[str, ...]],
                            keys: tuple[str, ...] = COMPARABLE_KEYS) -> list[str]:
    """Human lines naming each key whose values differ; a key one side does not hold (a record
    written before the key existed) is unknown, never a difference."""
    return [f"{k}: {', '.join(a[k])} -> {', '.join(b[k])}" for k in keys if k in a and k in b and a[k] != b[k]]


def same_env(a: dict[str, tuple[str, ...]], b: dict[str, tuple[str, ...]]) -> bool:
    return not fingerprint_differences(a, b)


def env_differences(baseline: Any, current: Any, keys: tuple[str, ...] = COMPARABLE_KEYS) -> list[str]:
    """Human lines naming each comparable environment key whose values differ between the sides."""
    return fingerprint_differences(env_fingerprint(baseline, keys), env_fingerprint(current, keys), keys)


#: The longest time a sample may claim (a year): 1e308 seconds is a corrupt value, not a measurement,
#: and statistics of it overflow.
MAX_SAMPLE_S = 3.2e7


def sample_problem(samples: Any) -> str | None:
    """Why a record's samples cannot be judged (empty, null, NaN, infinite, not positive, over a
    year), or None."""
    if samples is None or (isinstance(samples, float) and samples != samples):
        return "no samples"
    try:
        x = np.asarray(samples, dtype=float)
    except (TypeError, ValueError):
        return "samples are not numbers"
    if x.size == 0:
        return "no samples"
    bad = int((~np.isfinite(x)).sum())
    if bad:
        return f"{bad} of {x.size} samples are NaN or infinite"
    if (x <= 0).any():
        return f"{int((x <= 0).sum())} of {x.size} samples are zero or negative"
    if (x > MAX_SAMPLE_S).any():
        return f"{int((x > MAX_SAMPLE_S).sum())} of {x.size} samples are over a year (corrupt, not a measurement)"
    return None


#: What makes two hosts the same kind of machine for a comparison (a cluster run may mix them).
TESTBED_KEYS = ("env_cpu", "env_cores", "env_gpu", "env_cpu_id", "env_cpu_isa", "env_torch_cpu_capability",
                "env_physical_cores", "env_memory_gib")


def testbed_keys(*frames: Any) -> list[Any]:
    """Per frame, the key a case is compared under: its case id, or — when the frames hold records
    of more than one kind of host (a fleet of mixed hardware) — case id @ host class, so a case is
    only ever compared with itself on the same hardware."""
    import pandas as pd

    # a key some record lacks (written before the key existed) cannot tell hosts apart
    usable = [c for c in TESTBED_KEYS if all(c in df.columns and (df[c].notna().all() or c in ("env_gpu",))
                                             for df in frames)]

    def host(df: Any) -> Any:
        cols = usable
        text = ["|".join("" if pd.isna(v) else str(v) for v in row) for row in df[cols].itertuples(index=False)]
        return pd.Series(text, index=df.index, dtype=object)

    hosts = [host(df) for df in frames]
    mixed = len(set().union(*(set(h) for h in hosts))) > 1
    return [df["case_id"] + ("@" + h if mixed else "") for df, h in zip(frames, hosts)]


#: Why a record cannot be normalised by its host yardstick (it has none).
NO_YARDSTICK = ("no host yardstick in a record (measured with --pairing sequential, in the server scenario, "
                "or before schema 6)")


def without_yardstick(df: Any) -> Any:
    """Per record, whether it lacks a usable host yardstick median (compare and history alike)."""
    import pandas as pd

    if "host_median_s" not in df.columns:
        return pd.Series(True, index=df.index)
    h = pd.to_numeric(df["host_median_s"], errors="coerce")
    return h.isna() | (h <= 0)


def _host_problem(ok: Any) -> str | None:
    """Why the records in `ok` cannot be normalised by their host yardstick, or None."""
    if without_yardstick(ok).any():
        return NO_YARDSTICK
    if "host_yardstick" in ok.columns and ok["host_yardstick"].nunique(dropna=False) > 1:
        return "records measured with different host yardstick versions"
    return None


#: Why a non-reference record cannot be judged on the ratio.
NO_RATIOS = ("no block ratios (recorded before schema 9, with --pairing sequential, in the server scenario, or "
             "without its reference in the cell)")


def ratio_records(df: Any) -> Any:
    """The records the ratio gate judges: every runner but its cell's reference."""
    return df[df["runner"] != df["reference"]] if "reference" in df.columns else df.iloc[0:0]


def metric_column(metric: str) -> str:
    """The list column a metric's samples come from."""
    return "ratio_samples" if metric == RATIO else "samples_s"


def _samples_by_case(df: Any, normalize: str = "none", column: str = "samples_s",
                     ) -> dict[str, tuple[np.ndarray | None, Any, np.ndarray, str | None, np.ndarray | None]]:
    """case id -> (all samples concatenated — divided by each record's host yardstick when
    `normalize` is "host" —, the newest record, each run's median of those, why it cannot be judged,
    the raw samples concatenated). A case with no ok record, or with a record whose samples are
    unusable, has a reason."""
    out: dict[str, tuple[np.ndarray | None, Any, np.ndarray, str | None, np.ndarray | None]] = {}
    for case_id, group in df.groupby("_key" if "_key" in df.columns else "case_id", sort=False):
        ok = group[group["status"] == "ok"]
        if "interfered" in ok.columns:  # a busy machine's numbers never make or confirm a verdict
            busy = ok["interfered"].fillna(False).astype(bool)
            if busy.all() and not ok.empty:
                why = ok["interference"].dropna()
                out[case_id] = (None, ok.iloc[-1], np.array([]),
                                f"interfered: {why.iloc[0] if not why.empty else 'the machine was busy'}", None)
                continue
            ok = ok[~busy]
        if ok.empty:
            statuses = ", ".join(sorted({str(s) for s in group["status"]}))
            out[case_id] = (None, group.iloc[-1], np.array([]), f"no finished record (status {statuses})", None)
            continue
        problems = [sample_problem(s) for s in ok[column]] if column in ok.columns else ["no samples"]
        bad = next((p for p in problems if p), None)
        if bad == "no samples" and column == "ratio_samples":
            bad = NO_RATIOS
        if not bad and normalize == "host":
            bad = _host_problem(ok)
        if bad:
            out[case_id] = (None, ok.iloc[-1], np.array([]), bad, None)
            continue
        raw = [np.asarray(s, dtype=float) for s in ok[column]]
        runs = raw
        if normalize == "host":
            runs = [r / float(h) for r, h in zip(raw, ok["host_median_s"])]
        out[case_id] = (np.concatenate(runs), ok.iloc[-1], np.array([np.median(r) for r in runs]), None,
                        np.concatenate(raw))
    return out


def outside_prediction_interval(run_medians: np.ndarray, current_medians: np.ndarray, alpha: float) -> bool | None:
    """Whether the current runs' mean log median lies outside the (1 - alpha) prediction interval
    built from the baseline runs' medians: mean ± t(k-1) · s · sqrt(1/m + 1/k) on the log scale,
    with k baseline runs and m current runs (m = 1 on a nightly compare). None below three
    baseline runs.

    Within-run samples cannot see run-to-run noise: two runs of the same code differ by more than
    their own samples' CIs suggest (the host's speed drifts, memory layout, a neighbour's load),
    which is what makes naive A/A comparisons cry wolf. The interval widens by itself when there
    are few runs.
    """
    from scipy.stats import t as student_t

    k, m = len(run_medians), max(1, len(current_medians))
    if k < MIN_RUNS_FOR_SPREAD:
        return None
    logs = np.log(run_medians)
    s = max(float(np.std(logs, ddof=1)), 0.002)  # identical medians would make any change "significant"
    half = float(student_t.ppf(1 - alpha / 2, k - 1)) * s * np.sqrt(1 / m + 1 / k)
    return bool(abs(float(np.mean(np.log(current_medians))) - logs.mean()) > half)


def between_run_sd(run_medians: np.ndarray) -> float | None:
    """Relative spread of a case's median from run to run (sd of log medians), or None below three runs."""
    if len(run_medians) < MIN_RUNS_FOR_SPREAD:
        return None
    return float(np.std(np.log(run_medians), ddof=1))


def ratio_label(row: Any) -> str:
    """A ratio case: the runner over its reference."""
    return (f"{row['task']} {row['model']} {row['runner']}/{row['reference']} {row['device']} {row['dtype']} "
            f"b{row['batch_size']} s{row['seq_len']}")


def compare_frames(baseline: Any, current: Any, settings: CompareSettings = CompareSettings()) -> Any:
    """One row per case present (status ok) on both sides, worst regressions first."""
    import pandas as pd
    from scipy.stats import mannwhitneyu

    ratio = settings.metric == RATIO
    if settings.normalize not in NORMALIZE:
        raise ValueError(f"normalize must be one of {', '.join(NORMALIZE)}, got {settings.normalize!r}")
    if ratio:  # a ratio is already relative to its reference, timed in the same blocks
        if settings.normalize != "none":
            raise ValueError("the ratio needs no host normalisation: it is relative to the reference timed in "
                             "the same blocks")
        baseline, current = ratio_records(baseline), ratio_records(current)
    stat = STATISTICS["median" if ratio else settings.metric]
    column = metric_column(settings.metric)
    kb, kc = testbed_keys(baseline, current)
    base = _samples_by_case(baseline.assign(_key=kb), settings.normalize, column)
    cur = _samples_by_case(current.assign(_key=kc), settings.normalize, column)
    rows = []
    for case_id in [c for c in cur if c in base]:
        a, row, run_medians, base_problem, a_raw = base[case_id]
        b, cur_row, cur_medians, cur_problem, b_raw = cur[case_id]
        if not (base_problem or cur_problem) and settings.normalize == "host" and \
                row.get("host_yardstick") != cur_row.get("host_yardstick"):
            cur_problem = "the two sides were measured with different host yardstick versions"
        label = (ratio_label(row) if ratio else case_label(row)) + (f" @ {case_id.split('@', 1)[1].split('|')[0]}" if "@" in case_id else "")
        if base_problem and base_problem.startswith("no finished record"):
            continue  # never measured on the baseline side: nothing to hold the current run to
        if base_problem or cur_problem:
            why = f"current: {cur_problem}" if cur_problem else f"baseline: {base_problem}"
            rows.append({**_identity(case_id, label, cur_row), "threshold": settings.thresholds.for_case(
                settings.metric, label), "baseline_runs": int(len(run_medians)), "significant": False,
                "verdict": "unjudged", "reason": why})
            continue
        spread = between_run_sd(run_medians)
        threshold = settings.thresholds.for_case(settings.metric, label)
        point, lo, hi = ratio_ci(b, a, seed=settings.seed, resamples=settings.resamples,
                                 statistic="median" if ratio else settings.metric)
        p = float(mannwhitneyu(a, b, alternative="two-sided").pvalue) if len(a) > 1 and len(b) > 1 else 1.0
        change, lo, hi = point - 1, lo - 1, hi - 1
        significant = p < settings.alpha and (lo > 0 or hi < 0)
        outside = outside_prediction_interval(run_medians, cur_medians, settings.alpha)
        if outside is not None:  # and beyond what the baseline's own runs vary by
            significant = significant and outside
        mde, basis, sd = minimum_detectable(run_medians, len(cur_medians), (lo, hi), settings.alpha)
        reason = None
        if significant and change > threshold:
            verdict = "regression"
        elif significant and change < -threshold:
            verdict = "improvement"
        elif mde > threshold:  # a pass that could not have failed is not a pass
            verdict = "underpowered"
            beyond = ""
            if p < settings.alpha and (lo > threshold or hi < -threshold):  # said, though not confirmed
                beyond = (f"changed by {100 * change:+.1f}% [{100 * lo:+.1f}, {100 * hi:+.1f}], wholly "
                          f"{'above' if lo > threshold else 'below'} the threshold, but the baseline's own runs "
                          f"vary by as much; ")
            reason = (beyond + f"could detect only changes of {100 * mde:.1f}% or more (threshold "
                      f"{100 * threshold:.0f}%); "
                      + power_advice(mde, basis, sd, threshold, len(run_medians), len(cur_medians), settings.alpha))
        else:
            verdict = "unchanged"
        rows.append({
            **_identity(case_id, label, row),
            "base_s": float(stat(a_raw)), "cur_s": float(stat(b_raw)), "base_n": int(len(a)), "cur_n": int(len(b)),
            "normalize": settings.normalize,
            "change": change, "change_ci_low": lo, "change_ci_high": hi, "p_value": p, "threshold": threshold,
            "baseline_runs": int(len(run_medians)), "between_run_sd": spread, "mde": mde, "mde_basis": basis,
            "significant": bool(significant), "verdict": verdict, "reason": reason,
        })
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    if "change" not in frame.columns:
        frame["change"] = np.nan
    # cases that could not be judged first, then the worst regressions
    order = frame.assign(_u=frame["verdict"] != "unjudged").sort_values(["_u", "change"], ascending=[True, False],
                                                                         kind="stable", na_position="first")
    return order.drop(columns="_u").reset_index(drop=True)


def _identity(case_id: str, label: str, row: Any) -> dict[str, Any]:
    return {"case_id": row["case_id"], "label": label, "task": row["task"], "model": row["model"],
            "runner": row["runner"], "device": row["device"], "dtype": row["dtype"],
            "batch_size": int(row["batch_size"]), "seq_len": int(row["seq_len"])}


def run_order(df: Any) -> list[str]:
    """Run ids, oldest first (by start time, then id)."""
    return list(df.groupby("run_id")["started_at"].min().sort_values(kind="stable").index)


def newest_against_earlier(df: Any, baseline_runs: int) -> tuple[Any, Any]:
    """(baseline, current) from one results table: the newest run against the up to
    `baseline_runs` runs before it of the same environment (else, for `compare_runs` to name the
    change, the runs before it). (None, newest) when there is only one run."""
    runs = run_order(df)
    current = df[df["run_id"] == runs[-1]]
    if len(runs) < 2:
        return None, current
    fp = env_fingerprint(current)
    same = [r for r in runs[:-1] if same_env(env_fingerprint(df[df["run_id"] == r]), fp)]
    return df[df["run_id"].isin((same or runs[:-1])[-baseline_runs:])], current


def compare_runs(baseline: Any, current: Any, settings: CompareSettings = CompareSettings()) -> Comparison:
    """Compare within a comparable environment: baseline runs whose fingerprint matches the current
    side are used; if none match, nothing is compared unless `allow_env_change`."""
    import pandas as pd

    cur_fp = env_fingerprint(current)
    matching = [run for run, g in baseline.groupby("run_id", sort=False) if same_env(env_fingerprint(g), cur_fp)]
    changes = env_differences(baseline, current)
    if matching and not settings.allow_env_change:
        base = baseline[baseline["run_id"].isin(matching)]
        changes = env_differences(base, current)
    elif settings.allow_env_change:
        base = baseline
    else:
        return Comparison(pd.DataFrame(), changes, False, sorted(baseline["run_id"].unique()),
                          sorted(current["run_id"].unique()), settings.metric, settings.normalize)
    return Comparison(compare_frames(base, current, settings), changes, True, sorted(base["run_id"].unique()),
                      sorted(current["run_id"].unique()), settings.metric, settings.normalize)
