"""Compare two sets of runs case by case: relative change of the median with a bootstrap CI and a
Mann-Whitney U test on the raw samples.

A case is a regression only when the change exceeds the threshold *and* is significant (p below
alpha and the CI excluding zero), so noise alone raises nothing. Samples of several runs of the
same case on one side are concatenated (merging runs concatenates samples).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..env import COMPARABLE_KEYS
from ..measure.stats import ratio_ci

__all__ = ["CompareSettings", "compare_frames", "env_differences", "case_label"]


@dataclass(frozen=True)
class CompareSettings:
    threshold: float = 0.05
    alpha: float = 0.05
    resamples: int = 1000
    seed: int = 0


def case_label(row: Any) -> str:
    return (f"{row['task']} {row['model']} {row['runner']} {row['device']} {row['dtype']} "
            f"b{row['batch_size']} s{row['seq_len']}")


def _samples_by_case(df: Any) -> dict[str, tuple[np.ndarray, Any]]:
    ok = df[df["status"] == "ok"]
    out: dict[str, tuple[np.ndarray, Any]] = {}
    for case_id, group in ok.groupby("case_id", sort=False):
        samples = np.concatenate([np.asarray(s, dtype=float) for s in group["samples_s"]])
        out[case_id] = (samples, group.iloc[-1])
    return out


def compare_frames(baseline: Any, current: Any, settings: CompareSettings = CompareSettings()) -> Any:
    """One row per case present (status ok) on both sides, worst regressions first."""
    import pandas as pd
    from scipy.stats import mannwhitneyu

    base, cur = _samples_by_case(baseline), _samples_by_case(current)
    rows = []
    for case_id in [c for c in cur if c in base]:
        a, row = base[case_id]
        b = cur[case_id][0]
        point, lo, hi = ratio_ci(b, a, seed=settings.seed, resamples=settings.resamples)
        p = float(mannwhitneyu(a, b, alternative="two-sided").pvalue) if len(a) > 1 and len(b) > 1 else 1.0
        change, lo, hi = point - 1, lo - 1, hi - 1
        significant = p < settings.alpha and (lo > 0 or hi < 0)
        if significant and change > settings.threshold:
            verdict = "regression"
        elif significant and change < -settings.threshold:
            verdict = "improvement"
        else:
            verdict = "unchanged"
        rows.append({
            "case_id": case_id, "label": case_label(row), "task": row["task"], "model": row["model"],
            "runner": row["runner"], "device": row["device"], "dtype": row["dtype"],
            "batch_size": int(row["batch_size"]), "seq_len": int(row["seq_len"]),
            "base_median_s": float(np.median(a)), "cur_median_s": float(np.median(b)),
            "base_n": int(len(a)), "cur_n": int(len(b)),
            "change": change, "change_ci_low": lo, "change_ci_high": hi, "p_value": p,
            "significant": bool(significant), "verdict": verdict,
        })
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    return frame.sort_values("change", ascending=False, kind="stable").reset_index(drop=True)


def env_differences(baseline: Any, current: Any, keys: tuple[str, ...] = COMPARABLE_KEYS) -> list[str]:
    """Human lines naming each comparable environment key whose values differ between the sides."""
    out = []
    for key in keys:
        if key not in baseline.columns or key not in current.columns:
            continue
        a = sorted({str(v) for v in baseline[key].dropna().unique()})
        b = sorted({str(v) for v in current[key].dropna().unique()})
        if a != b:
            out.append(f"{key}: {', '.join(a) or '-'} -> {', '.join(b) or '-'}")
    return out
