"""Tables a report is built from: cells (torch/pipeline pairs) of the latest run, run metadata,
problem cases, history. Pure pandas, no plotting, so it is tested on its own."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..measure.stats import ratio_ci

__all__ = ["CELL_KEY", "GROUP_KEY", "cells_of", "label_variants", "latest_run", "overhead_sentence", "problems",
           "displayable"]

#: What identifies a cell (a torch/pipeline pair) and a headline group.
CELL_KEY = ["task", "model", "device", "dtype", "batch_size", "seq_len"]
GROUP_KEY = ["task", "model", "device", "dtype"]


def displayable(df: Any, limit: int = 200) -> Any:
    """Records as a report may show them: every string clipped to `limit` characters (a 200,000-
    character model name would otherwise be laid out in every table and chart), non-finite
    statistics as missing, and an ``ok`` record whose samples are empty or not all finite turned
    into an ``invalid`` one that the problems table names instead of a chart plotting it."""
    import pandas as pd

    from ..display import clip
    from ..regress.compare import sample_problem

    if df is None or df.empty:
        return df
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col].dtype):
            out[col] = out[col].map(lambda v: clip(v, limit) if isinstance(v, str) and len(v) > limit else v)
    num = [c for c in out.columns if c.endswith(("_s", "_mb", "_per_s", "_tflops", "_fraction", "_w", "_pct"))
           and out[c].dtype.kind == "f"]
    if num:
        out[num] = out[num].where(np.isfinite(out[num]))
    if "samples_s" in out.columns and "status" in out.columns:
        why = out["samples_s"].map(sample_problem)
        bad = (out["status"] == "ok") & why.notna()
        if bad.any():
            out["message"] = out["message"].astype(object)  # all-null reads back as float
            out.loc[bad, "message"] = "unusable samples: " + why[bad]
            out.loc[bad, "status"] = "invalid"
    return out


def label_variants(df: Any) -> Any:
    """Fold the variant axes into the model label (``bert-tiny [attn=eager, compiled]``), so every
    table and chart keeps compiled and eager, or two attention implementations, apart. The
    attention implementation is named only where records differ in it."""
    if df is None or df.empty or "compiled" not in df.columns:
        return df
    attn = df["attn_impl"].dropna().nunique() > 1 if "attn_impl" in df.columns else False
    compiled = df["compiled"].fillna(False).astype(bool)
    if not attn and not compiled.any():
        return df
    out = df.copy()
    parts = []
    for a, c in zip(out["attn_impl"] if attn else [None] * len(out), compiled):
        tags = ([f"attn={a}"] if attn and isinstance(a, str) else []) + (["compiled"] if c else [])
        parts.append(f" [{', '.join(tags)}]" if tags else "")
    out["model"] = out["model"].astype(str) + parts
    return out


def latest_run(df: Any) -> Any:
    """Records of the most recent run (by start time, then run id)."""
    if df.empty:
        return df
    order = df.groupby("run_id")["started_at"].min().sort_values(kind="stable")
    return df[df["run_id"] == order.index[-1]]


def cells_of(df: Any, resamples: int = 1000) -> Any:
    """Pair torch and pipeline records of each cell; ratio = pipeline median ÷ torch median with a
    bootstrap CI on the raw samples; `significant` when the CI excludes 1."""

    import pandas as pd

    from ..record import pool_records

    ok = df[df["status"] == "ok"]
    if not ok.empty and ok.duplicated(["run_id", "case_id"]).any():  # passes: one pooled record per case
        ok = pd.DataFrame(pool_records(ok.to_dict("records")))
    rows = []
    for key, group in ok.groupby(CELL_KEY, sort=True, dropna=False):
        by = {r["runner"]: r for _, r in group.iterrows()}
        t, p = by.get("torch"), by.get("pipeline")
        row = dict(zip(CELL_KEY, key))
        for name, rec in (("torch", t), ("pipe", p)):
            row[f"{name}_median_s"] = None if rec is None else rec["lat_median_s"]
            row[f"{name}_items_per_s"] = None if rec is None else rec["items_per_s"]
            for ph in ("pre_s", "fwd_s", "post_s"):
                row[f"{name}_{ph}"] = None if rec is None else rec[ph]
            row[f"{name}_rss_mb"] = None if rec is None else rec["cpu_rss_peak_delta_mb"]
            row[f"{name}_gpu_mb"] = None if rec is None else rec["gpu_alloc_peak_mb"]
        parity = [bool(r["parity_ok"]) for r in (t, p) if r is not None and r["parity_ok"] is not None
                  and not pd.isna(r["parity_ok"])]
        row["parity_ok"] = all(parity) if parity else None
        row["parity_detail"] = next((r["parity_detail"] for r in (t, p) if r is not None and r["parity_detail"]), "")
        if t is not None and p is not None:
            point, lo, hi = ratio_ci(np.asarray(p["samples_s"]), np.asarray(t["samples_s"]), resamples=resamples)
            row.update(ratio=point, ratio_low=lo, ratio_high=hi, significant=bool(lo > 1 or hi < 1),
                       overhead_s=p["lat_median_s"] - t["lat_median_s"])
        else:
            row.update(ratio=None, ratio_low=None, ratio_high=None, significant=False, overhead_s=None)
        rows.append(row)
    return pd.DataFrame(rows)


def overhead_sentence(cells: Any) -> str:
    """One sentence for a headline group, e.g. "pipeline adds 0.21 ms per call at batch 1 (+18%);
    within 5% from batch 8"."""
    c = cells.dropna(subset=["ratio"])
    if c.empty:
        return "no cell has both paths measured"
    by_batch = c.groupby("batch_size").agg(overhead=("overhead_s", "median"), ratio=("ratio", "median"))
    first_b = by_batch.index[0]
    first = by_batch.iloc[0]
    if first["ratio"] < 1:
        lead = f"pipeline is {100 * (1 - first['ratio']):.0f}% faster at batch {first_b}"
    else:
        lead = (f"pipeline adds {first['overhead'] * 1e3:.2f} ms per call at batch {first_b} "
                f"(+{100 * (first['ratio'] - 1):.0f}%)")
    small = by_batch[(by_batch["ratio"] - 1).abs() <= 0.05]
    if len(by_batch) > 1:
        if not small.empty and small.index[0] != first_b:
            tail = f"; within 5% from batch {small.index[0]}"
        elif small.empty:
            tail = f"; still {100 * (by_batch.iloc[-1]['ratio'] - 1):+.0f}% at batch {by_batch.index[-1]}"
        else:
            tail = "; within 5% at every batch size"
        return lead + tail
    return lead


def problems(df: Any) -> Any:
    """Skipped, errored, OOM and timed-out cases, and parity mismatches, with their reasons."""
    bad = df[(df["status"] != "ok") | (df["parity_ok"] == False)]  # noqa: E712 - nullable column
    return bad[["status", "task", "model", "runner", "device", "dtype", "batch_size", "seq_len", "message",
                "parity_detail"]]
