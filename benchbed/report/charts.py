"""Charts as self-contained SVG images (matplotlib, Agg), small multiples with a panel cap so a
report over hundreds of cases stays a page, not a wall.

Each function returns ``(svg_bytes, note)`` or None when the data has nothing to show; `note`
says what was left out, if anything.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .figures import _plt, grid, laid_out, plain_log, to_svg

__all__ = ["MAX_PANELS", "Chart", "latency_vs_batch", "throughput_vs_batch", "distributions", "phase_breakdown",
           "precision_comparison", "memory_vs_batch", "history_trend", "generation_latency", "efficiency",
           "grid", "to_svg", "plain", "panel_title", "finish_panel", "legend", "number", "runners_of",
           "style", "workload_panels", "finish_bars", "laid_out", "plain_log"]

MAX_PANELS = 12
GROUP_KEY = ["task", "model", "device", "dtype"]
#: Line and bar styles by a runner's position (the reference first); colour-blind-safe palette.
_PALETTE = [("#1f77b4", "-", "o"), ("#d62728", "--", "s"), ("#2ca02c", "-.", "^"), ("#9467bd", ":", "D"),
            ("#ff7f0e", "-", "v"), ("#8c564b", "--", "P")]
Chart = tuple[bytes, str] | None


def runners_of(frame: Any) -> list[str]:
    """Runners in display order: the reference first, then as first seen."""
    if "runners" in getattr(frame, "attrs", {}):
        return list(frame.attrs["runners"])
    seen = list(dict.fromkeys(frame["runner"])) if "runner" in frame.columns else []
    ref = frame["reference"].dropna().iloc[0] if "reference" in frame.columns and frame["reference"].notna().any() else None
    return ([ref] if ref in seen else []) + [r for r in seen if r != ref]


def style(runners: list[str], runner: str) -> dict[str, Any]:
    color, ls, marker = _PALETTE[runners.index(runner) % len(_PALETTE)] if runner in runners else _PALETTE[-1]
    return {"color": color, "ls": ls, "marker": marker}


def plain(text: Any) -> str:
    """Text for matplotlib: `$` would start mathtext, so a model called "a$b$" is shown as typed."""
    return str(text).replace("\\", "\\\\").replace("$", r"\$")


def _groups(cells: Any) -> tuple[list[tuple[tuple, Any]], str]:
    groups = list(cells.groupby(GROUP_KEY, sort=True))
    note = ""
    if len(groups) > MAX_PANELS:
        note = f"showing {MAX_PANELS} of {len(groups)} task/model/device/dtype groups"
        groups = groups[:MAX_PANELS]
    return groups, note


def panel_title(key: tuple, width: int = 38) -> str:
    """A panel title wrapped to its panel's width, so titles of neighbouring panels never run into
    each other (they did at three panels per row)."""
    import textwrap

    return plain("\n".join(textwrap.wrap(" · ".join(str(k) for k in key), width, break_long_words=True)[:3]))


def _per_batch(cells: Any, column: Callable[[str], str], ylabel: str, log: bool = True) -> Chart:
    groups, note = _groups(cells)
    if not groups:
        return None
    fig, axes = grid(len(groups))
    runners = runners_of(cells)
    for ax, (key, g) in zip(axes, groups):
        seqs = sorted(g["seq_len"].unique())
        for runner in runners:
            col = column(runner)
            if col not in g.columns:
                continue
            for k, seq in enumerate(seqs):
                s = g[g["seq_len"] == seq].sort_values("batch_size").dropna(subset=[col])
                if s.empty:
                    continue
                label = f"{runner} s{seq}" if len(seqs) > 1 else runner
                ax.plot(s["batch_size"], s[col], label=plain(label), alpha=1.0 - 0.45 * k / max(1, len(seqs) - 1),
                        **style(runners, runner))
        plain_log(ax, "x", base=2)
        if log:
            plain_log(ax)
        ax.set_title(panel_title(key))
        ax.set_xlabel("batch size")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        legend(ax)
    return laid_out(fig), note


def latency_vs_batch(cells: Any) -> Chart:
    ms = cells.assign(**{f"{r}_ms": cells[f"{r}_median_s"] * 1e3 for r in runners_of(cells)})
    ms.attrs = dict(cells.attrs)
    return _per_batch(ms, lambda r: f"{r}_ms", "median latency (ms)")


def throughput_vs_batch(cells: Any) -> Chart:
    return _per_batch(cells, lambda r: f"{r}_items_per_s", "items / s")


def memory_vs_batch(cells: Any) -> Chart:
    runners = runners_of(cells)
    gpu = any(cells[f"{r}_gpu_mb"].notna().any() for r in runners)
    col, label = (("gpu_mb", "peak GPU allocated (MB)") if gpu else ("rss_mb", "peak CPU RSS increase (MB)"))
    if all(cells[f"{r}_{col}"].isna().all() for r in runners):
        return None
    return _per_batch(cells, lambda r: f"{r}_{col}", label, log=False)


def distributions(latest: Any) -> Chart:
    """Box plots of the raw samples, every runner side by side for each cell of a group."""
    ok = latest[latest["status"] == "ok"]
    if ok.empty:
        return None
    runners = runners_of(ok)
    step = len(runners) + 1
    groups = list(ok.groupby(GROUP_KEY, sort=True))
    note = ""
    if len(groups) > MAX_PANELS:
        note = f"showing {MAX_PANELS} of {len(groups)} groups"
        groups = groups[:MAX_PANELS]
    fig, axes = grid(len(groups), width=4.2)
    for ax, (key, g) in zip(axes, groups):
        cells = sorted({(b, s) for b, s in zip(g["batch_size"], g["seq_len"])})[:8]
        samples = _first_by(g, ["batch_size", "seq_len", "runner"], "samples_s")
        data, pos, colors, ticks = [], [], [], []
        for i, (b, s) in enumerate(cells):
            for j, runner in enumerate(runners):
                if (b, s, runner) not in samples:
                    continue
                data.append(np.asarray(samples[(b, s, runner)]) * 1e3)
                pos.append(step * i + j)
                colors.append(style(runners, runner)["color"])
            ticks.append((step * i + (len(runners) - 1) / 2, f"b{b} s{s}"))
        if data:
            bp = ax.boxplot(data, positions=pos, widths=0.8, showfliers=True, patch_artist=True,
                            flierprops={"markersize": 2})
            for patch, c in zip(bp["boxes"], colors):
                patch.set_facecolor(c)
                patch.set_alpha(0.5)
        ax.set_xticks([t[0] for t in ticks], [t[1] for t in ticks], rotation=45, fontsize=6)
        plain_log(ax)
        ax.set_ylabel("latency per call (ms)")
        ax.set_title(panel_title(key))
        ax.grid(True, axis="y", alpha=0.3)
        _runner_legend(ax, runners)
    return laid_out(fig), note


def phase_breakdown(cells: Any) -> Chart:
    """Stacked preprocess / forward / postprocess / other bars for every runner of each cell."""
    groups, note = _groups(cells)
    if not groups:
        return None
    runners = runners_of(cells)
    step = len(runners) + 1
    fig, axes = grid(len(groups), width=4.2)
    colors = {"pre": "#8c564b", "fwd": "#2ca02c", "post": "#9467bd", "other": "#bbbbbb"}
    for ax, (key, g) in zip(axes, groups):
        g = g.sort_values(["seq_len", "batch_size"]).head(8)
        x, labels, stacks = [], [], []
        for i, (_, row) in enumerate(g.iterrows()):
            for j, runner in enumerate(runners):
                total = row[f"{runner}_median_s"]
                if total is None or (isinstance(total, float) and np.isnan(total)):
                    continue
                parts = {p: number(row[f"{runner}_{p}_s"]) * 1e3 for p in ("pre", "fwd", "post")}
                parts["other"] = max(0.0, total * 1e3 - sum(parts.values()))
                stacks.append(parts)
                x.append(step * i + j)
                labels.append(plain(f"{runner} b{row['batch_size']} s{row['seq_len']}"))
        bottom = np.zeros(len(x))
        for p, color in colors.items():  # one bar call a part: hundreds of single bars were a third of the chart
            heights = np.array([parts[p] for parts in stacks])
            if len(x):
                ax.bar(x, heights, bottom=bottom, color=color, width=0.8, label=p)
            bottom = bottom + heights
        ax.set_xticks(x, labels, rotation=60, fontsize=6)
        ax.set_ylabel("ms per call (median)")
        ax.set_title(panel_title(key))
        legend(ax)
    return laid_out(fig), note


def precision_comparison(cells: Any) -> Chart:
    """Geometric-mean latency over a group's cells, per precision and path."""
    if cells["dtype"].nunique() < 2:
        return None
    key = ["task", "model", "device"]
    groups = list(cells.groupby(key, sort=True))[:MAX_PANELS]
    fig, axes = grid(len(groups))
    for ax, (k, g) in zip(axes, groups):
        dtypes = sorted(g["dtype"].unique())
        runners = runners_of(cells)
        width = 0.8 / len(runners)
        for j, runner in enumerate(runners):
            vals = []
            for d in dtypes:
                v = g[g["dtype"] == d][f"{runner}_median_s"].dropna().astype(float)
                vals.append(float(np.exp(np.log(v * 1e3).mean())) if len(v) else 0.0)
            ax.bar(np.arange(len(dtypes)) + width * j, vals, width=width, color=style(runners, runner)["color"],
                   label=plain(runner))
        ax.set_xticks(np.arange(len(dtypes)) + 0.4 - width / 2, dtypes)
        ax.set_ylabel("geo-mean median latency (ms)")
        ax.set_title(panel_title(k))
        legend(ax)
    return laid_out(fig), "" if len(list(cells.groupby(key))) <= MAX_PANELS else f"showing {MAX_PANELS} groups"


def history_trend(df: Any, change_points: dict[tuple, list[Any]] | None = None) -> Chart:
    """Per group and path, the geometric mean of case medians in each run, in run order; confirmed
    change points (from `benchbed history`) are marked."""
    ok = df[df["status"] == "ok"]
    if ok["run_id"].nunique() < 2:
        return None
    run_order = ok.groupby("run_id")["started_at"].min().sort_values(kind="stable")
    index = {r: i for i, r in enumerate(run_order.index)}
    ok = ok.assign(run_index=ok["run_id"].map(index), log_med=np.log(ok["lat_median_s"].astype(float) * 1e3))
    groups = list(ok.groupby(GROUP_KEY, sort=True))
    note = f"showing {MAX_PANELS} of {len(groups)} groups" if len(groups) > MAX_PANELS else ""
    groups = groups[:MAX_PANELS]
    fig, axes = grid(len(groups), width=4.2)
    runners = runners_of(ok)
    for ax, (key, g) in zip(axes, groups):
        for runner in runners:
            s = g[g["runner"] == runner].groupby("run_index")["log_med"].mean()
            if not s.empty:
                ax.plot(s.index, np.exp(s.values), label=plain(runner), markersize=2, **style(runners, runner))
        for cp in (change_points or {}).get(key, []):
            ax.axvline(index.get(cp, cp), color="black", ls=":", lw=1)
        finish_panel(ax, "run (oldest → newest)", "geo-mean median (ms)", panel_title(key))
    return laid_out(fig), note


def generation_latency(latest: Any) -> Chart:
    """Time to first token and per output token vs batch size, both paths, one pair of panels per
    model / device / dtype / prompt length, where generation cases exist."""
    g = latest[(latest["status"] == "ok") & latest["ttft_s"].notna()]
    if g.empty:
        return None
    groups = list(g.groupby(["model", "device", "dtype", "seq_len"], sort=True))
    note = f"showing {MAX_PANELS // 2} of {len(groups)} groups" if len(groups) > MAX_PANELS // 2 else ""
    groups = groups[: MAX_PANELS // 2]
    runners = runners_of(g)
    plt = _plt()
    fig, axes = plt.subplots(len(groups), 2, figsize=(7.0, 2.5 * len(groups)), squeeze=False)
    for row, (key, grp) in zip(axes, groups):
        for ax, col, label in ((row[0], "ttft_s", "time to first token (ms)"),
                               (row[1], "tpot_s", "time per output token (ms)")):
            for runner in runners:
                s = grp[grp["runner"] == runner].sort_values("batch_size")
                if not s.empty:
                    ax.plot(s["batch_size"], s[col] * 1e3, label=plain(runner), **style(runners, runner))
            plain_log(ax, "x", base=2)
            ax.set_xlabel("batch size")
            ax.set_ylabel(label)
            ax.set_title(plain(f"{key[0]} · {key[1]} · {key[2]} · prompt {key[3]}"))
            ax.grid(True, alpha=0.3)
            legend(ax)
    return laid_out(fig), note


def efficiency(latest: Any) -> Chart:
    """Achieved TFLOP/s as bars, every runner side by side for each cell of a group, with the
    device's measured matmul peak as a line where known: which runner uses the hardware better,
    and how far all are from it, at a glance."""
    g = latest[(latest["status"] == "ok") & latest["achieved_tflops"].notna()]
    if g.empty:
        return None
    runners = runners_of(g)
    groups = list(g.groupby(GROUP_KEY, sort=True))
    note = f"showing {MAX_PANELS} of {len(groups)} groups" if len(groups) > MAX_PANELS else ""
    groups = groups[:MAX_PANELS]
    fig, axes = grid(len(groups), width=4.2)
    width = 0.8 / len(runners)
    for ax, (key, grp) in zip(axes, groups):
        cells = sorted({(b, s) for b, s in zip(grp["batch_size"], grp["seq_len"])})[:8]
        tflops = _first_by(grp, ["batch_size", "seq_len", "runner"], "achieved_tflops")
        for j, runner in enumerate(runners):
            vals = [float(tflops.get((b, sl, runner), 0.0)) for b, sl in cells]
            ax.bar(np.arange(len(cells)) + width * j, vals, width=width, color=style(runners, runner)["color"],
                   label=plain(runner))
        peak = grp["peak_tflops"].dropna()
        if not peak.empty:
            ax.axhline(float(peak.iloc[0]), color="black", ls=":", lw=1, label="measured matmul peak")
        finish_bars(ax, [f"b{b} s{sl}" for b, sl in cells], width, "achieved TFLOP/s", panel_title(key), rotation=45)
    return laid_out(fig), note


def finish_bars(ax: Any, labels: list[str], width: float, ylabel: str, title: str, rotation: int = 0) -> None:
    """Ticks under groups of side-by-side bars (`width` each, groups one apart), the axis label,
    the panel's title, a light horizontal grid and the legend."""
    ax.set_xticks(np.arange(len(labels)) + 0.4 - width / 2, labels, rotation=rotation, fontsize=6)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.3)
    legend(ax)


WORKLOAD_KEY = ["task", "model", "device", "dtype", "seq_len"]


def workload_panels(latest: Any, scenario: str, column: str, width: float) -> tuple[Any, list[str], list, str] | None:
    """(figure, runners, [(axis, (key, group))], note) for the ok records of one scenario that have
    `column`, one panel per task / model / device / dtype / length; None when there are none."""
    g = latest[(latest["status"] == "ok") & (latest["scenario"] == scenario) & latest[column].notna()]
    if g.empty:
        return None
    groups = list(g.groupby(WORKLOAD_KEY, sort=True))
    note = f"showing {MAX_PANELS} of {len(groups)} groups" if len(groups) > MAX_PANELS else ""
    groups = groups[:MAX_PANELS]
    fig, axes = grid(len(groups), width=width, height=2.8)
    return fig, runners_of(g), list(zip(axes, groups)), note


def _first_by(frame: Any, keys: list[str], column: str) -> dict[tuple, Any]:
    """The first row's `column` for each combination of `keys`: one pass, where a boolean filter
    per combination cost a pandas copy each."""
    out: dict[tuple, Any] = {}
    for *key, value in zip(*(frame[k] for k in keys), frame[column]):
        out.setdefault(tuple(key), value)
    return out


def number(value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return 0.0
    return 0.0 if np.isnan(v) else v


def _runner_legend(ax: Any, runners: list[str]) -> None:
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color=style(runners, r)["color"], alpha=0.5, label=plain(r)) for r in runners], fontsize=6)


def finish_panel(ax: Any, xlabel: str, ylabel: str, title: str) -> None:
    """Axis labels, the panel's title, a light grid and the legend of a line panel."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    legend(ax)


def legend(ax: Any) -> None:
    """A legend where the panel has labelled lines or bars (an empty one only warns)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6)


