"""Runners in other environments (``RUNNER@ENV``) and bisections: each environment's ratio to the
reference with its CI, per cell, in version order (commits in the order they were measured), with
what each environment held."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..charts import Chart, grid, panel_title, plain, laid_out
from ..html import esc, figure, fmt_num, table

__all__ = ["section", "environment_ratios"]

_CELL = ["task", "model", "device", "dtype", "batch_size", "seq_len"]


def _points(latest: Any) -> Any:
    """One row per (cell, environment): the ratio pooled over its passes (median of its per-block
    ratios, CI from its records' CIs' extremes when the blocks are missing)."""
    import pandas as pd

    if "env_name" not in latest.columns:
        return pd.DataFrame()
    ok = latest[(latest["status"] == "ok") & latest["env_name"].notna() & latest["ref_ratio"].notna()]
    rows = []
    for key, grp in ok.groupby(_CELL + ["env_name"], dropna=False, sort=False):
        blocks = [float(x) for s in grp["ratio_samples"] if s is not None for x in s] if "ratio_samples" in grp else []
        if blocks:
            from ...regress.bisect import pooled_ratio

            point, lo, hi = pooled_ratio(blocks)
        else:
            point, lo, hi = float(grp["ref_ratio"].median()), float(grp["ref_ratio_low"].min()), \
                float(grp["ref_ratio_high"].max())
        first = grp.iloc[0]
        rows.append({**dict(zip(_CELL, key[:-1])), "env": key[-1], "spec": first.get("env_spec"),
                     "runner": first["runner"], "reference": first.get("reference"), "ratio": point, "low": lo,
                     "high": hi, "blocks": len(blocks), "parity": first.get("parity_ok"),
                     "digest": first.get("env_packages_digest"), "started": grp["cell_started_at"].min()})
    return pd.DataFrame(rows)


def _order(points: Any) -> list[str]:
    """Environment names in version order when they are versions, else in the order measured."""
    from packaging.version import InvalidVersion, Version

    names = list(dict.fromkeys(points.sort_values("started")["env"]))
    try:
        return sorted(names, key=Version)
    except InvalidVersion:
        return names


def environment_ratios(points: Any) -> Chart:
    """Ratio to the reference with its 95% CI per environment, one panel per cell."""
    if points.empty:
        return None
    cells = list(points.groupby(_CELL, sort=False))
    fig, axes = grid(min(len(cells), 6), width=4.2, height=2.6)
    for ax, (key, grp) in zip(axes, cells):
        order = _order(grp)
        g = grp.set_index("env").loc[order]
        x = np.arange(len(order))
        ax.errorbar(x, g["ratio"], yerr=[g["ratio"] - g["low"], g["high"] - g["ratio"]], fmt="o-", capsize=2,
                    color="#1f77b4")
        ax.axhline(1.0, ls=":", color="grey")
        ax.set_xticks(x, [plain(n) for n in order], rotation=45 if len(order) > 4 else 0, ha="right"
                      if len(order) > 4 else "center", fontsize=6)
        ax.set_ylabel(plain(f"÷ {grp['reference'].iloc[0]}"))
        ax.set_title(panel_title(key))
    note = f"{len(cells) - 6} more cell(s) in the table" if len(cells) > 6 else ""
    return laid_out(fig), note


def section(latest: Any) -> str:
    points = _points(latest)
    if points.empty:
        return ""
    rows = []
    for key, grp in points.groupby(_CELL, sort=False):
        for name in _order(grp):
            r = grp[grp["env"] == name].iloc[0]
            rows.append([esc(" ".join(str(k) for k in key)), esc(r["runner"]), esc(r["spec"]),
                         f"{fmt_num(r['ratio'], 3)} [{fmt_num(r['low'], 3)}, {fmt_num(r['high'], 3)}]",
                         esc(r["blocks"] or "–"), "✓" if r["parity"] == True else "✗" if r["parity"] == False else "–",  # noqa: E712
                         esc(r["digest"])])
    return (figure(environment_ratios(points), "Each environment's runner against the reference, paired in one "
                                               "window; bars are 95% CIs over blocks")
            + table(["cell", "runner", "environment", "ratio [95% CI]", "blocks", "parity", "packages"], rows,
                    numeric={3, 4}))
