"""The dataset scenario's part of the report: examples per second end to end, padding waste, and
the first result's time, per runner."""

from __future__ import annotations

import math
from typing import Any

from ..charts import Chart, finish_bars, number, panel_title, plain, style, laid_out, workload_panels
from ..html import esc, figure, fmt_ms, fmt_num, missing, table

__all__ = ["section", "dataset_throughput"]


def section(data: Any) -> str:
    """The ok dataset-scenario records of a run, as report HTML."""
    from ...summary import scenario_of

    out = []
    out.append(figure(dataset_throughput(data), "Examples per second over the whole dataset, end to end; "
                                                     "numbers on the bars are padding waste"))
    rows_html = []
    for _, r in data.sort_values(["task", "model", "batch_size", "runner"]).iterrows():
        rows_html.append([esc(r["task"]), esc(r["model"]), esc(r["runner"]), esc(scenario_of(r.to_dict())),
                          esc(r["batch_size"]), fmt_num(r["examples_per_s"]), fmt_num(r["tokens_per_s"], 0),
                          fmt_ms(r["first_result_s"]), fmt_num(100 * r["padding_waste"]) + "%"
                          if not missing(r.get("padding_waste")) else "–",
                          fmt_num(r["cpu_rss_peak_delta_mb"]),
                          "✓" if r["parity_ok"] is True else "✗" if r["parity_ok"] is False else "–"])
    out.append(table(["task", "model", "runner", "dataset", "batch", "examples/s", "tokens/s", "first result ms",
                      "padding waste", "peak RSS +MB", "parity"], rows_html, numeric=set(range(4, 10))))
    return "".join(out)


def dataset_throughput(latest: Any) -> Chart:
    """Examples per second over a whole dataset, every runner side by side per batch size and
    DataLoader workers, with each bar's padding waste written on it."""
    panels = workload_panels(latest, "dataset", "examples_per_s", 4.2)
    if panels is None:
        return None
    fig, runners, pairs, note = panels
    width = 0.8 / len(runners)
    for ax, (key, grp) in pairs:
        points = sorted({(int(b), int(number(w))) for b, w in zip(grp["batch_size"], grp["workers"])})[:8]
        for j, runner in enumerate(runners):
            for i, (b, w) in enumerate(points):
                r = grp[(grp["batch_size"] == b) & (grp["workers"].fillna(0) == w) & (grp["runner"] == runner)]
                if r.empty:
                    continue
                v = float(r.iloc[0]["examples_per_s"])
                ax.bar(i + width * j, v, width=width, color=style(runners, runner)["color"],
                       label=plain(runner) if i == 0 else None)
                waste = r.iloc[0].get("padding_waste")
                if waste is not None and not (isinstance(waste, float) and math.isnan(waste)):
                    ax.text(i + width * j, v, f"{100 * float(waste):.0f}%", ha="center", va="bottom", fontsize=5)
        finish_bars(ax, [f"b{b} w{w}" for b, w in points], width, "examples/s (labels: padding waste)",
                    panel_title(key))
    return laid_out(fig), note
