"""Charts as self-contained SVG images (matplotlib, Agg), small multiples with a panel cap so a
report over hundreds of cases stays a page, not a wall.

Each function returns ``(svg_bytes, note)`` or None when the data has nothing to show; `note`
says what was left out, if anything.
"""

from __future__ import annotations

import io
import math
from typing import Any, Callable

import numpy as np

__all__ = ["MAX_PANELS", "latency_vs_batch", "throughput_vs_batch", "distributions", "phase_breakdown",
           "precision_comparison", "memory_vs_batch", "history_trend", "generation_latency", "efficiency"]

MAX_PANELS = 12
GROUP_KEY = ["task", "model", "device", "dtype"]
RUNNER_STYLE = {"torch": dict(color="#1f77b4", ls="-", marker="o"), "pipe": dict(color="#d62728", ls="--", marker="s")}
Chart = tuple[bytes, str] | None


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "benchbed", "font.size": 8,
                         "axes.titlesize": 8, "figure.dpi": 100})
    return plt


def _t(text: Any) -> str:
    """Text for matplotlib: `$` would start mathtext, so a model called "a$b$" is shown as typed."""
    return str(text).replace("\\", "\\\\").replace("$", r"\$")


def _svg(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    _plt().close(fig)
    return buf.getvalue()


def _grid(n: int, width: float = 3.4, height: float = 2.5) -> tuple[Any, list[Any]]:
    plt = _plt()
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _groups(cells: Any) -> tuple[list[tuple[tuple, Any]], str]:
    groups = list(cells.groupby(GROUP_KEY, sort=True))
    note = ""
    if len(groups) > MAX_PANELS:
        note = f"showing {MAX_PANELS} of {len(groups)} task/model/device/dtype groups"
        groups = groups[:MAX_PANELS]
    return groups, note


def _title(key: tuple) -> str:
    return _t(" · ".join(str(k) for k in key))


def _per_batch(cells: Any, column: Callable[[str], str], ylabel: str, log: bool = True) -> Chart:
    groups, note = _groups(cells)
    if not groups:
        return None
    fig, axes = _grid(len(groups))
    for ax, (key, g) in zip(axes, groups):
        seqs = sorted(g["seq_len"].unique())
        for runner, style in RUNNER_STYLE.items():
            col = column(runner)
            for k, seq in enumerate(seqs):
                s = g[g["seq_len"] == seq].sort_values("batch_size").dropna(subset=[col])
                if s.empty:
                    continue
                label = f"{'torch' if runner == 'torch' else 'pipeline'} s{seq}" if len(seqs) > 1 else (
                    "torch" if runner == "torch" else "pipeline")
                ax.plot(s["batch_size"], s[col], label=label, alpha=1.0 - 0.45 * k / max(1, len(seqs) - 1),
                        **style)
        ax.set_xscale("log", base=2)
        if log:
            ax.set_yscale("log")
        ax.set_title(_title(key))
        ax.set_xlabel("batch size")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6)
    fig.tight_layout()
    return _svg(fig), note


def latency_vs_batch(cells: Any) -> Chart:
    return _per_batch(cells.assign(torch_ms=cells["torch_median_s"] * 1e3, pipe_ms=cells["pipe_median_s"] * 1e3),
                      lambda r: f"{r}_ms", "median latency (ms)")


def throughput_vs_batch(cells: Any) -> Chart:
    return _per_batch(cells, lambda r: f"{r}_items_per_s", "items / s")


def memory_vs_batch(cells: Any) -> Chart:
    gpu = cells["torch_gpu_mb"].notna().any() or cells["pipe_gpu_mb"].notna().any()
    col, label = (("gpu_mb", "peak GPU allocated (MB)") if gpu else ("rss_mb", "peak CPU RSS increase (MB)"))
    if cells[f"torch_{col}"].isna().all() and cells[f"pipe_{col}"].isna().all():
        return None
    return _per_batch(cells, lambda r: f"{r}_{col}", label, log=False)


def distributions(latest: Any) -> Chart:
    """Box plots of the raw samples, both paths side by side for each cell of a group."""
    ok = latest[latest["status"] == "ok"]
    if ok.empty:
        return None
    groups = list(ok.groupby(GROUP_KEY, sort=True))
    note = ""
    if len(groups) > MAX_PANELS:
        note = f"showing {MAX_PANELS} of {len(groups)} groups"
        groups = groups[:MAX_PANELS]
    fig, axes = _grid(len(groups), width=4.2)
    for ax, (key, g) in zip(axes, groups):
        cells = sorted({(b, s) for b, s in zip(g["batch_size"], g["seq_len"])})[:8]
        data, pos, colors, ticks = [], [], [], []
        for i, (b, s) in enumerate(cells):
            for j, runner in enumerate(("torch", "pipeline")):
                r = g[(g["batch_size"] == b) & (g["seq_len"] == s) & (g["runner"] == runner)]
                if r.empty:
                    continue
                data.append(np.asarray(r.iloc[0]["samples_s"]) * 1e3)
                pos.append(3 * i + j)
                colors.append(RUNNER_STYLE["torch" if runner == "torch" else "pipe"]["color"])
            ticks.append((3 * i + 0.5, f"b{b} s{s}"))
        if data:
            bp = ax.boxplot(data, positions=pos, widths=0.8, showfliers=True, patch_artist=True,
                            flierprops={"markersize": 2})
            for patch, c in zip(bp["boxes"], colors):
                patch.set_facecolor(c)
                patch.set_alpha(0.5)
        ax.set_xticks([t[0] for t in ticks], [t[1] for t in ticks], rotation=45, fontsize=6)
        ax.set_yscale("log")
        ax.set_ylabel("latency per call (ms)")
        ax.set_title(_title(key) + "  (blue torch, red pipeline)")
        ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    return _svg(fig), note


def phase_breakdown(cells: Any) -> Chart:
    """Stacked preprocess / forward / postprocess / other bars for both paths of each cell."""
    groups, note = _groups(cells)
    if not groups:
        return None
    fig, axes = _grid(len(groups), width=4.2)
    colors = {"pre": "#8c564b", "fwd": "#2ca02c", "post": "#9467bd", "other": "#bbbbbb"}
    for ax, (key, g) in zip(axes, groups):
        g = g.sort_values(["seq_len", "batch_size"]).head(8)
        x, labels = [], []
        for i, (_, row) in enumerate(g.iterrows()):
            for j, runner in enumerate(("torch", "pipe")):
                total = row[f"{runner}_median_s"]
                if total is None or (isinstance(total, float) and np.isnan(total)):
                    continue
                parts = {p: (row[f"{runner}_{p}_s"] or 0.0) * 1e3 for p in ("pre", "fwd", "post")}
                parts["other"] = max(0.0, total * 1e3 - sum(parts.values()))
                bottom = 0.0
                for p, v in parts.items():
                    ax.bar(3 * i + j, v, bottom=bottom, color=colors[p], width=0.8,
                           label=p if (i, j) == (0, 0) else None)
                    bottom += v
                x.append(3 * i + j)
                labels.append(f"{'T' if runner == 'torch' else 'P'} b{row['batch_size']} s{row['seq_len']}")
        ax.set_xticks(x, labels, rotation=60, fontsize=6)
        ax.set_ylabel("ms per call (median)")
        ax.set_title(_title(key) + "  (T torch, P pipeline)")
        ax.legend(fontsize=6)
    fig.tight_layout()
    return _svg(fig), note


def precision_comparison(cells: Any) -> Chart:
    """Geometric-mean latency over a group's cells, per precision and path."""
    if cells["dtype"].nunique() < 2:
        return None
    key = ["task", "model", "device"]
    groups = list(cells.groupby(key, sort=True))[:MAX_PANELS]
    fig, axes = _grid(len(groups))
    for ax, (k, g) in zip(axes, groups):
        dtypes = sorted(g["dtype"].unique())
        for j, runner in enumerate(("torch", "pipe")):
            vals = []
            for d in dtypes:
                v = g[g["dtype"] == d][f"{runner}_median_s"].dropna().astype(float)
                vals.append(float(np.exp(np.log(v * 1e3).mean())) if len(v) else 0.0)
            ax.bar(np.arange(len(dtypes)) + 0.4 * j, vals, width=0.4, color=RUNNER_STYLE[runner]["color"],
                   label="torch" if runner == "torch" else "pipeline")
        ax.set_xticks(np.arange(len(dtypes)) + 0.2, dtypes)
        ax.set_ylabel("geo-mean median latency (ms)")
        ax.set_title(_title(k))
        ax.legend(fontsize=6)
    fig.tight_layout()
    return _svg(fig), "" if len(list(cells.groupby(key))) <= MAX_PANELS else f"showing {MAX_PANELS} groups"


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
    fig, axes = _grid(len(groups), width=4.2)
    for ax, (key, g) in zip(axes, groups):
        for runner, style in (("torch", RUNNER_STYLE["torch"]), ("pipeline", RUNNER_STYLE["pipe"])):
            s = g[g["runner"] == runner].groupby("run_index")["log_med"].mean()
            if not s.empty:
                ax.plot(s.index, np.exp(s.values), label=runner, markersize=2, **style)
        for cp in (change_points or {}).get(key, []):
            ax.axvline(index.get(cp, cp), color="black", ls=":", lw=1)
        ax.set_title(_title(key))
        ax.set_xlabel("run (oldest → newest)")
        ax.set_ylabel("geo-mean median (ms)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6)
    fig.tight_layout()
    return _svg(fig), note


def generation_latency(latest: Any) -> Chart:
    """Time to first token and per output token vs batch size, both paths, one pair of panels per
    model / device / dtype / prompt length, where generation cases exist."""
    g = latest[(latest["status"] == "ok") & latest["ttft_s"].notna()]
    if g.empty:
        return None
    groups = list(g.groupby(["model", "device", "dtype", "seq_len"], sort=True))
    note = f"showing {MAX_PANELS // 2} of {len(groups)} groups" if len(groups) > MAX_PANELS // 2 else ""
    groups = groups[: MAX_PANELS // 2]
    plt = _plt()
    fig, axes = plt.subplots(len(groups), 2, figsize=(7.0, 2.5 * len(groups)), squeeze=False)
    for row, (key, grp) in zip(axes, groups):
        for ax, col, label in ((row[0], "ttft_s", "time to first token (ms)"),
                               (row[1], "tpot_s", "time per output token (ms)")):
            for runner in ("torch", "pipeline"):
                s = grp[grp["runner"] == runner].sort_values("batch_size")
                ax.plot(s["batch_size"], s[col] * 1e3, label=runner,
                        **RUNNER_STYLE["torch" if runner == "torch" else "pipe"])
            ax.set_xscale("log", base=2)
            ax.set_xlabel("batch size")
            ax.set_ylabel(label)
            ax.set_title(_t(f"{key[0]} · {key[1]} · {key[2]} · prompt {key[3]}"))
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=6)
    fig.tight_layout()
    return _svg(fig), note


def efficiency(latest: Any) -> Chart:
    """Achieved TFLOP/s per case, where FLOPs were counted."""
    g = latest[(latest["status"] == "ok") & latest["achieved_tflops"].notna()]
    if g.empty:
        return None
    fig, axes = _grid(1, width=6)
    ax = axes[0]
    for runner in ("torch", "pipeline"):
        s = g[g["runner"] == runner].sort_values("batch_size")
        ax.plot(s["batch_size"], s["achieved_tflops"], label=runner,
                **RUNNER_STYLE["torch" if runner == "torch" else "pipe"])
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch size")
    ax.set_ylabel("achieved TFLOP/s")
    ax.legend(fontsize=6)
    fig.tight_layout()
    return _svg(fig), ""
