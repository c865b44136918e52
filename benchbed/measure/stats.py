"""Statistics derived from raw per-call samples; nothing here is cached, so nothing goes stale.

Quantiles use linear interpolation between order statistics (Hyndman & Fan type 7, numpy's
default), the convention pytest-benchmark and pandas users already read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = ["STATISTICS", "Summary", "summarize", "bootstrap_median_ci", "median_ci_order", "ratio_ci", "noise_warning"]

#: IQR/median above this gets a warning, as torch.utils.benchmark does at 10%.
NOISY_IQR_RATIO = 0.10


@dataclass(frozen=True)
class Summary:
    """Latency statistics in seconds for one sample set."""

    n: int
    min: float
    median: float
    mean: float
    p90: float
    p95: float
    p99: float
    max: float
    std: float
    iqr: float
    median_ci_low: float
    median_ci_high: float

    def as_columns(self, prefix: str = "lat_") -> dict[str, float]:
        """Flat record columns, units in the names."""
        return {
            f"{prefix}min_s": self.min,
            f"{prefix}median_s": self.median,
            f"{prefix}mean_s": self.mean,
            f"{prefix}p90_s": self.p90,
            f"{prefix}p95_s": self.p95,
            f"{prefix}p99_s": self.p99,
            f"{prefix}max_s": self.max,
            f"{prefix}std_s": self.std,
            f"{prefix}iqr_s": self.iqr,
            f"{prefix}median_ci_low_s": self.median_ci_low,
            f"{prefix}median_ci_high_s": self.median_ci_high,
        }


def summarize(samples: Sequence[float], seed: int = 0, resamples: int = 2000) -> Summary:
    """Summary of `samples`; the median's 95% CI is a seeded percentile bootstrap."""
    x = np.asarray(samples, dtype=np.float64)
    if x.size == 0:
        raise ValueError("no samples to summarize")
    q25, q50, q75, q90, q95, q99 = np.percentile(x, [25, 50, 75, 90, 95, 99])
    lo, hi = bootstrap_median_ci(x, seed=seed, resamples=resamples)
    return Summary(
        n=int(x.size),
        min=float(x.min()),
        median=float(q50),
        mean=float(x.mean()),
        p90=float(q90),
        p95=float(q95),
        p99=float(q99),
        max=float(x.max()),
        std=float(x.std(ddof=1)) if x.size > 1 else 0.0,
        iqr=float(q75 - q25),
        median_ci_low=lo,
        median_ci_high=hi,
    )


def _bootstrap(x: np.ndarray, rng: np.random.Generator, resamples: int, stat=lambda y: np.median(y, axis=-1)) -> np.ndarray:
    """`stat` of `resamples` resamples of `x` (with replacement), vectorised over the last axis."""
    return stat(x[rng.integers(0, x.size, size=(resamples, x.size))])


def bootstrap_median_ci(samples: Sequence[float], confidence: float = 0.95, seed: int = 0,
                        resamples: int = 2000) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the median (seeded, so reports are reproducible)."""
    x = np.asarray(samples, dtype=np.float64)
    if x.size == 1:
        return float(x[0]), float(x[0])
    meds = _bootstrap(x, np.random.default_rng(seed), resamples)
    a = (1 - confidence) / 2
    lo, hi = np.quantile(meds, [a, 1 - a])
    return float(lo), float(hi)


def median_ci_order(samples: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free CI of the median from order statistics (normal approximation to the
    binomial). Cheap enough to evaluate after every call in the adaptive stopping rule."""
    x = np.sort(np.asarray(samples, dtype=np.float64))
    n = x.size
    if n < 3:
        return float(x[0]), float(x[-1])
    z = 1.959963984540054 if confidence == 0.95 else _z(confidence)
    half = z * math.sqrt(n) / 2
    lo = max(int(math.floor(n / 2 - half)), 0)
    hi = min(int(math.ceil(n / 2 + half)), n - 1)
    return float(x[lo]), float(x[hi])


def _z(confidence: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + confidence / 2))


#: Statistics a comparison can be made on, each vectorised over the last axis.
STATISTICS = {
    "median": lambda x: np.median(x, axis=-1),
    "mean": lambda x: np.mean(x, axis=-1),
    "p90": lambda x: np.percentile(x, 90, axis=-1),
    "p95": lambda x: np.percentile(x, 95, axis=-1),
    "p99": lambda x: np.percentile(x, 99, axis=-1),
}


def ratio_ci(numerator: Sequence[float], denominator: Sequence[float], confidence: float = 0.95,
             seed: int = 0, resamples: int = 2000, statistic: str = "median") -> tuple[float, float, float]:
    """Ratio of a statistic (median by default) of numerator over denominator, with a percentile-
    bootstrap CI; both sample sets are resampled independently, as they come from independent
    timed loops."""
    a = np.asarray(numerator, dtype=np.float64)
    b = np.asarray(denominator, dtype=np.float64)
    stat = STATISTICS[statistic]
    point = float(stat(a) / stat(b))
    rng = np.random.default_rng(seed)
    ratios = _bootstrap(a, rng, resamples, stat) / _bootstrap(b, rng, resamples, stat)
    q = (1 - confidence) / 2
    lo, hi = np.quantile(ratios, [q, 1 - q])
    return point, float(lo), float(hi)


def noise_warning(summary: Summary) -> str | None:
    """A sentence when the spread is large enough that the median should be read with care."""
    if summary.median > 0 and summary.iqr / summary.median > NOISY_IQR_RATIO:
        return f"noisy: IQR is {100 * summary.iqr / summary.median:.0f}% of the median"
    return None
