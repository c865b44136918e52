"""The noise floor of a machine: how much each case's metric moves between A/A repetitions of the
same code, the smallest change the gate can then see, and the threshold to gate it at.

Each repetition is one record of a case (a pass of a run, or a run): for every case and metric
(median latency, latency ÷ the host yardstick, and each runner's ratio to its reference) the spread
is the standard deviation of the log of the repetitions' values. With `n` passes on each side of a
nightly comparison, the minimum detectable change at `alpha` (two-sided) and `POWER` is
exp((z(1-alpha/2) + z(POWER)) · s · sqrt(2/n)) - 1; the recommended threshold is the one for 3
passes, rounded up to half a percent (at least 1%). `benchbed noise` writes those thresholds as
rules ``compare`` and ``history`` take (``--thresholds FILE``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .compare import case_label, ratio_label, ratio_records, sample_problem, without_yardstick
from .power import POWER
from .thresholds import MAX_THRESHOLD

__all__ = ["noise_table", "thresholds_text", "MIN_REPEATS", "PASSES"]

#: Repetitions of a case below which its spread is not estimated.
MIN_REPEATS = 3
#: The pass counts the MDE is stated for.
PASSES = (1, 3, 5)


def _mde(spread: float, passes: int, alpha: float) -> float:
    from scipy.stats import norm

    return float(math.expm1((norm.ppf(1 - alpha / 2) + norm.ppf(POWER)) * spread * math.sqrt(2 / passes)))


def recommended(spread: float, alpha: float = 0.05) -> float:
    """The threshold to gate a case at with 3 passes a night: its MDE, rounded up to 0.5%, at least 1%."""
    return max(0.01, math.ceil(_mde(spread, 3, alpha) * 200 - 1e-9) / 200)


def _values(df: Any, metric: str) -> Any:
    """(label, one value per repetition) per case for `metric`: median latency, host-normalised
    latency, or the median per-block ratio to the reference."""
    ok = df[(df["status"] == "ok")]
    if "interfered" in ok.columns:
        ok = ok[~ok["interfered"].fillna(False).astype(bool)]
    if metric == "ratio":
        ok = ratio_records(ok)
        col = "ratio_samples"
    else:
        col = "samples_s"
    if col not in ok.columns:
        return {}
    ok = ok[ok[col].map(sample_problem).isna()]
    if metric == "host":
        ok = ok[~without_yardstick(ok)]
    out: dict[str, tuple[str, list[float]]] = {}
    for case_id, g in ok.groupby("case_id", sort=False):
        label = ratio_label(g.iloc[-1]) if metric == "ratio" else case_label(g.iloc[-1])
        vals = [float(np.median(s)) for s in g[col]]
        if metric == "host":
            vals = [v / float(h) for v, h in zip(vals, g["host_median_s"])]
        out[case_id] = (label, vals)
    return out


def noise_table(df: Any, alpha: float = 0.05) -> Any:
    """One row per case and metric with at least `MIN_REPEATS` repetitions: the metric's name as the
    gate knows it (``median`` for latency and host-normalised latency, ``ratio``), the spread, the
    MDE for 1, 3 and 5 passes, and the recommended threshold."""
    import pandas as pd

    rows: list[dict] = []
    if df.empty or df["case_id"].value_counts().max() < MIN_REPEATS:
        return pd.DataFrame(rows)  # no case repeated enough: skip the per-metric passes (a report's common case)
    for metric, gate_metric in (("median", "median"), ("host", "median"), ("ratio", "ratio")):
        for case_id, (label, vals) in _values(df, metric).items():
            if len(vals) < MIN_REPEATS:
                continue
            spread = float(np.std(np.log(vals), ddof=1))
            rows.append({"case_id": case_id, "label": label, "metric": metric, "gate_metric": gate_metric,
                         "repeats": len(vals), "spread": spread,
                         **{f"mde_{n}": _mde(spread, n, alpha) for n in PASSES},
                         "threshold": recommended(spread, alpha)})
    return pd.DataFrame(rows)


def thresholds_text(table: Any, source: str) -> str:
    """The recommended thresholds as rules ``compare --thresholds`` reads, one per line, with a
    header saying where they come from. Host-normalised latency shares the gate's ``median`` rules:
    where both exist, the looser of the two is kept (a rule must hold for the metric it names)."""
    lines = [f"# benchbed noise thresholds: {source}",
             "# one rule a line: METRIC:PATTERN=VALUE (see `benchbed compare --help`); '#' starts a comment"]
    best: dict[tuple[str, str], float] = {}
    for _, r in table.iterrows():
        key = (r["gate_metric"], r["label"])
        best[key] = max(best.get(key, 0.0), float(r["threshold"]))
    for (metric, label), value in best.items():
        rule = f"{metric}:{_pattern(label)}={100 * value:.1f}%"
        if value >= MAX_THRESHOLD:  # what compare would refuse: said, not written as a rule
            lines.append(f"# not gateable here: {rule} (its A/A runs spread too much for any threshold below "
                         f"{100 * MAX_THRESHOLD:.0f}%; measure on a quieter machine or with more passes)")
        else:
            lines.append(rule)
    return "\n".join(lines) + "\n"


def _pattern(label: str) -> str:
    """A case label as an fnmatch pattern matching it alone ([, ], *, ? escaped)."""
    return "".join(f"[{c}]" if c in "[]*?" else c for c in label)
