"""Tables a report is built from: cells (every runner of one matrix point, against the reference
runner) of the latest run, run metadata, problem cases, history. Pure pandas, no plotting, so it
is tested on its own."""

from __future__ import annotations

from typing import Any

import numpy as np


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
        if col.endswith("_json"):  # data read by a section (profile_json), never laid out as it is
            continue
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
    """One row per cell: every runner's median, items/s, phases and memory as ``<runner>_*``
    columns, and each runner's ratio to the reference runner (``<runner>_ratio`` with its CI,
    ``<runner>_significant`` when the CI excludes 1, ``<runner>_overhead_s``). The runners in
    display order (reference first) are in ``attrs["runners"]``, the reference in ``attrs["reference"]``."""

    import pandas as pd

    from ..ratios import group_cells, runner_order
    from ..record import pool_records

    ok = df[df["status"] == "ok"]
    records = ok.to_dict("records")
    if not ok.empty and ok.duplicated(["run_id", "case_id"]).any():  # passes: one pooled record per case
        records = pool_records(records)
    cells = group_cells(records)
    reference, runners = runner_order(cells)
    rows = []
    for cell in cells:
        first = cell.any
        row = {k: first[k] for k in CELL_KEY}
        for name in runners:
            rec = cell.records.get(name)
            row[f"{name}_median_s"] = None if rec is None else rec["lat_median_s"]
            row[f"{name}_items_per_s"] = None if rec is None else rec["items_per_s"]
            for ph in ("pre_s", "fwd_s", "post_s"):
                row[f"{name}_{ph}"] = None if rec is None else rec.get(ph)
            row[f"{name}_rss_mb"] = None if rec is None else rec.get("cpu_rss_peak_delta_mb")
            row[f"{name}_gpu_mb"] = None if rec is None else rec.get("gpu_alloc_peak_mb")
        row["parity_ok"], row["parity_detail"] = cell.parity()
        row["interfered"] = cell.interfered
        for name in runners[1:]:
            q = cell.ratio(name, resamples=resamples) if cell.reference == reference else None
            if q is None:
                row.update({f"{name}_ratio": None, f"{name}_ratio_low": None, f"{name}_ratio_high": None,
                            f"{name}_significant": False, f"{name}_overhead_s": None})
            else:
                row[f"{name}_suspect"] = cell.suspect(name, q)
                row.update({f"{name}_ratio": q[0], f"{name}_ratio_low": q[1], f"{name}_ratio_high": q[2],
                            f"{name}_significant": bool(q[1] > 1 or q[2] < 1),
                            f"{name}_overhead_s": cell.records[name]["lat_median_s"]
                            - cell.records[reference]["lat_median_s"]})
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame.attrs["runners"], frame.attrs["reference"] = runners, reference
    return frame


def overhead_sentence(cells: Any, runner: str, reference: str) -> str:
    """One sentence per runner for a headline group, e.g. "pipeline adds 0.21 ms per call at batch 1
    (+18%); within 5% from batch 8"."""
    col = f"{runner}_ratio"
    if col not in cells.columns:
        return f"{runner}: not measured with {reference} here"
    c = cells.dropna(subset=[col])
    if "interfered" in c.columns:  # a busy machine's ratio makes no sentence
        c = c[c["interfered"].isna()]
    if f"{runner}_suspect" in c.columns:
        c = c[c[f"{runner}_suspect"].isna()]
    if c.empty:
        return f"no cell has both {runner} and {reference} measured on a quiet machine"
    by_batch = c.groupby("batch_size").agg(overhead=(f"{runner}_overhead_s", "median"), ratio=(col, "median"))
    first_b = by_batch.index[0]
    first = by_batch.iloc[0]
    if first["ratio"] < 1:
        lead = f"{runner} is {100 * (1 - first['ratio']):.0f}% faster than {reference} at batch {first_b}"
    else:
        lead = (f"{runner} adds {first['overhead'] * 1e3:.2f} ms per call to {reference} at batch {first_b} "
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
