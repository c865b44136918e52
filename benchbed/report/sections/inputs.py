"""The lengths of real inputs (``--inputs``): a histogram per source, as the model sees them."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..charts import MAX_PANELS, Chart, grid, legend, panel_title, laid_out

__all__ = ["input_lengths"]


def input_lengths(latest: Any) -> Chart:
    """Histogram of the examples' lengths (tokens as the model sees them), per input source."""
    if "input_lens" not in latest.columns:
        return None
    g = latest[latest["input_lens"].map(lambda v: v is not None and not isinstance(v, float) and len(v) > 0)]
    if g.empty:
        return None
    groups = list(g.groupby(["inputs_source", "seq_len"], sort=True, dropna=False))[:MAX_PANELS]
    fig, axes = grid(len(groups), width=3.4, height=2.3)
    for ax, (key, grp) in zip(axes, groups):
        lens = np.asarray(max(grp["input_lens"], key=len), dtype=float)
        ax.hist(lens, bins=min(40, max(5, int(np.sqrt(len(lens))))), color="#1f77b4", alpha=0.8)
        ax.axvline(float(np.median(lens)), color="black", ls=":", lw=1, label=f"median {np.median(lens):g}")
        ax.set_xlabel("tokens per example (after truncation)")
        ax.set_ylabel("examples")
        ax.set_title(panel_title((key[0] if isinstance(key[0], str) else "synthetic", f"limit {key[1]}")))
        legend(ax)
    return laid_out(fig), ""
