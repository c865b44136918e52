"""The training part of the report: step time and its ratio, throughput, memory, the loss curves
overlaid and time to the target loss, per training cell."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..charts import MAX_PANELS, Chart, finish_panel, grid, legend, number, panel_title, plain, runners_of, style, laid_out
from ..html import esc, figure, fmt_ms, fmt_num, missing, sig3, table

__all__ = ["section", "loss_curves", "training_phases"]


def section(latest: Any) -> str:
    """Step time and its ratio, throughput, memory, the loss curves overlaid and time to the target
    loss, per training cell; empty when the run trained nothing."""
    if "train_steps" not in latest.columns:
        return ""
    ok = with_optimizer(latest[(latest["status"] == "ok") & latest["train_steps"].notna()])
    if ok.empty:
        return ""
    rows = []
    for _, r in ok.sort_values(["task", "model", "dtype", "batch_size", "seq_len", "grad_accum", "optimizer",
                                "runner"]).iterrows():
        ratio = "reference" if r["runner"] == r.get("reference") else (
            f"{r['ref_ratio']:.2f}× [{r['ref_ratio_low']:.2f}, {r['ref_ratio_high']:.2f}]"
            if not missing(r.get("ref_ratio")) else "–")
        rows.append([esc(r["task"]), esc(r["model"]), esc(r["dtype"]), esc(r["batch_size"]), esc(r["seq_len"]),
                     esc(int(r["grad_accum"]) if not missing(r.get("grad_accum")) else 1), esc(r["optimizer"]),
                     esc(r["runner"]), fmt_ms(r["lat_median_s"]), esc(ratio), fmt_ms(r.get("optim_s")),
                     fmt_num(r.get("optimizer_state_mb")), fmt_num(r["items_per_s"]), fmt_num(r["tokens_per_s"], 0),
                     fmt_num(r["cpu_rss_peak_delta_mb"]),
                     f"{sig3(r['loss_first'])} → {sig3(r['loss_last'])}", sig3(r.get("loss_max_diff")),
                     sig3(r.get("time_to_loss_s")), esc(int(r["train_steps"])),
                     "✓" if r["parity_ok"] is True else "✗" if r["parity_ok"] is False else "–"])
    out = [table(["task", "model", "dtype", "batch", "seq", "accum", "optimizer", "runner", "step ms",
                  "÷ reference [95% CI]", "optimizer step ms", "optimizer state MB", "samples/s", "tokens/s",
                  "peak RSS +MB", "loss first → last", "max |Δloss|", "time to loss s", "steps", "parity"], rows,
                 numeric={3, 4, 5, 8, 10, 11, 12, 13, 14, 16, 17, 18})]
    curves = loss_curves(ok)
    if curves:
        out.append(figure(curves, "Loss at every optimizer step, both paths overlaid (one line where they agree); "
                                  "steps left of the dotted line are the parity steps, the rest were timed"))
    phases = training_phases(ok)
    if phases:
        out.append(figure(phases, "Median phases of a step: data (fetch, collate, the loop's own work before the "
                                  "forward), forward, backward with clipping, optimizer step, after (zero_grad, "
                                  "scheduler, callbacks)"))
    return "".join(out)


TRAINING_KEY = ["task", "model", "device", "dtype", "batch_size", "seq_len", "grad_accum", "optimizer"]


def with_optimizer(df: Any) -> Any:
    """`df` with an ``optimizer`` for every record: records of before the axis trained with AdamW."""
    if "optimizer" not in df.columns:
        return df.assign(optimizer="adamw")
    return df.assign(optimizer=df["optimizer"].fillna("adamw"))


#: Training phases in step order, with their colours.
TRAINING_PHASES = {"data": "#8c564b", "fwd": "#2ca02c", "bwd": "#1f77b4", "optim": "#ff7f0e", "after": "#9467bd"}


def _training_groups(latest: Any) -> tuple[list[tuple[tuple, Any]], str]:
    if "loss_curve" not in latest.columns:
        return [], ""
    g = with_optimizer(latest[(latest["status"] == "ok") & latest["loss_curve"].map(
        lambda v: v is not None and not isinstance(v, float) and len(v) > 0)])
    groups = list(g.groupby(TRAINING_KEY, sort=True, dropna=False))
    note = f"showing {MAX_PANELS} of {len(groups)} training cells" if len(groups) > MAX_PANELS else ""
    return groups[:MAX_PANELS], note


def _training_title(key: tuple) -> str:
    task, model, device, dtype, bs, sl, ga, optimizer = key
    accum = f" accum={int(ga)}" if ga == ga and ga not in (None, 1) else ""
    opt = f" {optimizer}" if optimizer != "adamw" else ""
    return panel_title((task, model, device, dtype, f"b{bs} s{sl}{accum}{opt}"))


def loss_curves(latest: Any, parity_steps: int = 6) -> Chart:
    """Every training runner's loss at each optimizer step, overlaid per cell (lines that lie on
    each other are parity at a glance); the dotted line ends the parity steps."""
    groups, note = _training_groups(latest)
    if not groups:
        return None
    fig, axes = grid(len(groups), width=3.6, height=2.6)
    for ax, (key, grp) in zip(axes, groups):
        runners = runners_of(grp)
        for runner in runners:
            r = grp[grp["runner"] == runner]
            if r.empty:
                continue
            curve = np.asarray(r.iloc[0]["loss_curve"], dtype=float)
            st = style(runners, runner)
            ax.plot(np.arange(1, len(curve) + 1), curve, color=st["color"], ls=st["ls"], lw=1.2, label=plain(runner))
        ax.axvline(parity_steps + 0.5, color="black", ls=":", lw=0.8)
        diffs = grp["loss_max_diff"].dropna() if "loss_max_diff" in grp.columns else []
        if len(diffs):
            ax.text(0.98, 0.95, f"max |Δloss| {float(max(diffs)):.2g}", transform=ax.transAxes, ha="right", va="top",
                    fontsize=6)
        finish_panel(ax, "optimizer step", "loss", _training_title(key))
    return laid_out(fig), note


def training_phases(latest: Any) -> Chart:
    """Where a training step's time goes, each runner's median phases stacked: data (fetch and
    collate, and what the loop does before the forward), forward, backward (with clipping),
    optimizer step, after (zero_grad, scheduler, callbacks)."""
    groups, note = _training_groups(latest)
    groups = [(k, g) for k, g in groups if "fwd_s" in g.columns and g["fwd_s"].notna().any()]
    if not groups:
        return None
    fig, axes = grid(len(groups), width=3.0, height=2.6)
    for ax, (key, grp) in zip(axes, groups):
        runners = runners_of(grp)
        labels = []
        for j, runner in enumerate(runners):
            r = grp[grp["runner"] == runner]
            if r.empty:
                continue
            row, bottom = r.iloc[0], 0.0
            for phase, color in TRAINING_PHASES.items():
                v = number(row.get(f"{phase}_s")) * 1e3
                ax.bar(j, v, bottom=bottom, color=color, width=0.6, label=phase if j == 0 else None)
                bottom += v
            labels.append(plain(runner))
        ax.set_xticks(range(len(labels)), labels, fontsize=7)
        ax.set_ylabel("ms per step (median phases)")
        ax.set_title(_training_title(key))
        legend(ax)
    return laid_out(fig), note
