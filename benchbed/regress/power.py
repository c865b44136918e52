"""What the gate could have seen: each judged case's minimum detectable change (MDE) at `POWER`,
from the baseline's own spread, and what would bring it within the threshold when it does not (an
underpowered case: neither a pass nor a regression)."""

from __future__ import annotations

import numpy as np

__all__ = ["POWER", "MIN_RUNS_FOR_SPREAD", "minimum_detectable", "power_advice"]

#: Baseline runs from which a case's run-to-run spread is estimated (the prediction interval's too).
MIN_RUNS_FOR_SPREAD = 3
#: The power the gate states each case's minimum detectable change at.
POWER = 0.95


def minimum_detectable(run_medians: np.ndarray, current_runs: int, ci: tuple[float, float], alpha: float,
                       ) -> tuple[float, str, float]:
    """(MDE, basis, spread): the smallest relative change the gate detects with `POWER` at `alpha`
    (two-sided), and what it rests on. With three or more baseline runs: their own spread (sd of
    log medians, `s`), so MDE = exp((t(1-alpha/2) + t(POWER)) · s · sqrt(1/m + 1/k)) - 1 over k-1
    degrees of freedom, m current runs, k baseline runs; the same spread the prediction interval
    uses. With fewer: the change's own bootstrap CI (within-run noise only, an optimistic bound),
    its half-width on the log scale taken as 1.96 standard errors."""
    from scipy.stats import norm
    from scipy.stats import t as student_t

    k, m = len(run_medians), max(1, current_runs)
    if k >= MIN_RUNS_FOR_SPREAD:
        s = max(float(np.std(np.log(run_medians), ddof=1)), 0.002)
        q = float(student_t.ppf(1 - alpha / 2, k - 1) + student_t.ppf(POWER, k - 1))
        return float(np.expm1(q * s * np.sqrt(1 / m + 1 / k))), "runs", s
    lo, hi = ci
    se = max((np.log1p(hi) - np.log1p(lo)) / (2 * 1.96), 1e-6)
    return float(np.expm1(float(norm.ppf(1 - alpha / 2) + norm.ppf(POWER)) * se)), "samples", float(se)


def power_advice(mde: float, basis: str, spread: float, threshold: float, baseline_runs: int, current_runs: int,
                 alpha: float) -> str:
    """What would bring a case's MDE within its threshold, computed from the spread measured."""
    from scipy.stats import norm
    from scipy.stats import t as student_t

    target = np.log1p(threshold)
    if basis == "samples":
        longer = (np.log1p(mde) / target) ** 2
        return (f"its samples alone cannot see {100 * threshold:.0f}%: measure about {longer:.1f}x longer "
                f"(--min-time), or keep 3 or more baseline runs so the gate knows the run-to-run spread")
    k = baseline_runs
    q = float(student_t.ppf(1 - alpha / 2, k - 1) + student_t.ppf(POWER, k - 1))
    x = (target / (q * spread)) ** 2  # 1/m + 1/k must be at most this
    if x > 1 / k:
        m = int(np.ceil(1 / (x - 1 / k)))
        return (f"its baseline runs spread by {100 * spread:.1f}%: measure the current side in {m} passes "
                f"(--passes {m}), or raise its threshold to {100 * mde:.1f}%")
    need = int(np.ceil(1 / x)) + 1
    z = float(norm.ppf(1 - alpha / 2) + norm.ppf(POWER))
    return (f"its baseline runs spread by {100 * spread:.1f}%: even many passes need at least {need} baseline runs, "
            f"or a quieter machine (the spread must fall below {100 * target / z:.1f}%), or a threshold of "
            f"{100 * mde:.1f}%")
