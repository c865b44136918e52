"""The ratio's history and the noise floor: each cell's runner ÷ reference over the runs, with the
change points `history --metric ratio` confirms, and, for a run of three or more passes, how much
each case moves between them (what `benchbed noise` reports)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..charts import MAX_PANELS, Chart, finish_panel, grid, panel_title, plain, laid_out
from ..html import esc, figure, table

__all__ = ["ratio_history", "ratio_history_section", "noise_section"]

#: A cell's ratio series per panel, at most (the rest is named in the note).
MAX_LINES = 8


def ratio_history(df: Any) -> Chart:
    """Per task / model / device / dtype, each cell's median per-block ratio in every run, one line
    per runner and shape, with confirmed ratio change points marked."""
    from ...regress.compare import ratio_records, run_order, sample_problem
    from ...regress.history import HistorySettings, find_change_points
    from ...regress.thresholds import RATIO_THRESHOLD, Thresholds

    if "ratio_samples" not in df.columns:
        return None
    ok = ratio_records(df[df["status"] == "ok"])
    ok = ok[ok["ratio_samples"].map(sample_problem).isna()]
    if ok["run_id"].nunique() < 2:
        return None
    index = {r: i for i, r in enumerate(run_order(ok))}
    ok = ok.assign(run_index=ok["run_id"].map(index), ratio=ok["ratio_samples"].map(lambda s: float(np.median(s))))
    settings = HistorySettings(metric="ratio", thresholds=Thresholds(RATIO_THRESHOLD))
    points = find_change_points(df, settings)[0] if len(index) >= 4 else []
    marks = {(p.case_id, p.index) for p in points}
    groups = list(ok.groupby(["task", "model", "device", "dtype"], sort=True))
    notes = [f"showing {MAX_PANELS} of {len(groups)} groups"] if len(groups) > MAX_PANELS else []
    fig, axes = grid(min(len(groups), MAX_PANELS), width=4.2)
    for ax, (key, g) in zip(axes, groups[:MAX_PANELS]):
        cells = list(g.groupby(["runner", "reference", "batch_size", "seq_len"], sort=True))
        if len(cells) > MAX_LINES:
            notes.append(f"{panel_title(key)}: {MAX_LINES} of {len(cells)} cells")
        for (runner, ref, b, sl), c in cells[:MAX_LINES]:
            s = c.groupby("run_index")["ratio"].median()
            line = ax.plot(s.index, s.values, marker="o", markersize=2, label=plain(f"{runner}/{ref} b{b} s{sl}"))[0]
            hit = [i for i in s.index if (c["case_id"].iloc[0], i) in marks]
            if hit:
                ax.plot(hit, s.loc[hit].values, "D", color=line.get_color(), markersize=6)
        finish_panel(ax, "run (oldest → newest)", "runner ÷ reference (median of blocks)", panel_title(key))
    return laid_out(fig), "; ".join(notes)


def ratio_history_section(df: Any) -> str:
    chart = ratio_history(df)
    return figure(chart, "Each cell's ratio to its reference per run (median of its per-block ratios); diamonds "
                         "mark the run where a change point confirmed by history --metric ratio starts") if chart else ""


def noise_section(latest: Any) -> str:
    """For cases the newest run measured in three or more passes: the spread between passes and
    the change the gate can see with 1, 3 and 5 passes (`benchbed noise`)."""
    from ...regress.noise import noise_table

    t = noise_table(latest)
    if t.empty:
        return ""
    names = {"median": "latency", "host": "latency ÷ host", "ratio": "ratio"}
    rows = [[esc(r["label"]), esc(names[r["metric"]]), esc(r["repeats"]), f"{100 * r['spread']:.2f}%",
             f"{100 * r['mde_1']:.1f}%", f"{100 * r['mde_3']:.1f}%", f"{100 * r['mde_5']:.1f}%",
             f"{100 * r['threshold']:.1f}%"] for _, r in t.iterrows()]
    return table(["case", "metric", "passes", "spread between passes", "detectable with 1 pass", "3 passes",
                  "5 passes", "threshold to gate at"], rows, numeric={2, 3, 4, 5, 6, 7}) + (
        '<p class="note">Detectable: the smallest change seen with 95% power at alpha 0.05 with that many passes '
        "a side; the threshold is the one for 3 passes (benchbed noise writes these as a thresholds file).</p>")
