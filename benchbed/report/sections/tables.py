"""The report's reference tables: problems, environment, runs, efficiency, the largest batch that
fit, and devices (compilation, GPU memory, energy)."""

from __future__ import annotations

from typing import Any

from ...record import COLUMNS
from ..data import problems
from ..html import esc, fmt_ms, fmt_num, sig3, table

__all__ = ["problems_table", "environment", "runs", "efficiency_table", "largest_fit", "device_table", "ENV_COLUMNS"]


#: Environment columns, derived from the record's schema (so a new env_* key shows without an edit here).
ENV_COLUMNS = [name for name, _ in COLUMNS if name.startswith("env_")]


def problems_table(df: Any, limit: int = 300) -> str:
    bad = problems(df)
    if bad.empty:
        return "<p>Every case ran, and every runner agreed with the reference everywhere.</p>"
    rows = [[esc(r["status"] if r["status"] != "ok" else "parity mismatch"), esc(r["task"]), esc(r["model"]),
             esc(r["runner"]), esc(r["device"]), esc(r["dtype"]), esc(r["batch_size"]), esc(r["seq_len"]),
             esc(r["message"] if isinstance(r["message"], str) else r["parity_detail"])]
            for _, r in bad.head(limit).iterrows()]
    note = f'<p class="note">{len(bad) - limit} more not shown.</p>' if len(bad) > limit else ""
    return table(["status", "task", "model", "runner", "device", "dtype", "batch", "seq", "reason"], rows) + note


def environment(df: Any) -> str:
    rows = []
    for col in ENV_COLUMNS:
        if col in df.columns:
            values = sorted({str(v) for v in df[col].dropna().unique()})
            rows.append([esc(col.removeprefix("env_")), esc(", ".join(values) if values else "–")])
    return table(["key", "value(s)"], rows)


def runs(df: Any, limit: int = 30) -> str:
    g = df.groupby("run_id", sort=False).agg(
        started=("started_at", "min"), suite=("suite", "first"), cases=("case_id", "count"),
        ok=("status", lambda s: int((s == "ok").sum())), threads=("threads", "first"),
        warmup=("warmup", "max"), n_min=("n_samples", "min"), n_max=("n_samples", "max"),
        measure=("measure_s", "sum"),
    ).sort_values("started")
    rows = [[esc(run), esc(r["started"]), esc(r["suite"]), esc(r["cases"]), esc(r["ok"]), esc(r["threads"]),
             esc(r["warmup"]), f"{esc(r['n_min'])}–{esc(r['n_max'])}", fmt_num(r["measure"], 0)]
            for run, r in g.tail(limit).iterrows()]
    note = f'<p class="note">{len(g)} runs; the newest {limit} shown.</p>' if len(g) > limit else ""
    return table(["run", "started (UTC)", "suite", "cases", "ok", "threads", "warm-up calls", "samples per case",
                  "timed seconds"], rows, numeric={3, 4, 5, 6, 8}) + note


def efficiency_table(latest: Any, limit: int = 200) -> str:
    ok = latest[(latest["status"] == "ok") & latest["achieved_tflops"].notna()]
    if ok.empty:
        return ""
    rows = []
    for _, r in ok.head(limit).iterrows():
        rows.append([esc(r["task"]), esc(r["model"]), esc(r["runner"]), esc(r["device"]), esc(r["dtype"]),
                     esc(r["batch_size"]), esc(r["seq_len"]), sig3(r["flops_per_call"] / 1e9),
                     sig3(r["achieved_tflops"]), sig3(r.get("peak_tflops")),
                     esc(None if r.get("peak_fraction") is None or r["peak_fraction"] != r["peak_fraction"]
                         else f"{100 * r['peak_fraction']:.1f}%"), esc(r.get("peak_probe"))])
    return table(["task", "model", "runner", "device", "dtype", "batch", "seq", "GFLOP/call", "TFLOP/s",
                  "peak TFLOP/s", "of peak", "peak probe"], rows, numeric={5, 6, 7, 8, 9, 10})


def largest_fit(latest: Any) -> str:
    """The largest batch that ran and the first that ran out of memory, per runner and shape."""
    from ...summary import largest_fit as fits_of

    fits = fits_of(latest.to_dict("records"))
    if not fits:
        return ""
    rows = [[esc(r["task"]), esc(r["model"]), esc(r["runner"]), esc(r["device"]), esc(r["dtype"]),
             esc(r["seq_len"]), esc(fit if fit is not None else "none"), esc(oom)] for r, fit, oom in fits]
    return table(["task", "model", "runner", "device", "dtype", "seq", "largest batch that ran", "first out of memory"],
                 rows, numeric={5, 6, 7})


_DEVICE_COLS = [("compile_s", "compile s"), ("gpu_alloc_peak_mb", "GPU own peak MB"),
                ("gpu_reserved_peak_mb", "GPU reserved MB"), ("gpu_nvml_used_peak_mb", "NVML used MB"),
                ("gpu_util_mean_pct", "GPU util %"), ("gpu_power_mean_w", "power W"),
                ("energy_j_per_item", "J/item"), ("cuda_event_median_s", "CUDA-event median ms")]


def device_table(latest: Any, limit: int = 300) -> str:
    present = [(c, h) for c, h in _DEVICE_COLS if c in latest.columns and latest[c].notna().any()]
    if not present:
        return ""
    ok = latest[latest["status"] == "ok"]
    ok = ok[ok[[c for c, _ in present]].notna().any(axis=1)]
    rows = []
    for _, r in ok.head(limit).iterrows():
        row = [esc(r["task"]), esc(r["model"]), esc(r["runner"]), esc(r["device"]), esc(r["dtype"]),
               esc(r["batch_size"]), esc(r["seq_len"]), fmt_ms(r["lat_median_s"])]
        for c, _ in present:
            v = r[c]
            row.append(fmt_ms(v) if c == "cuda_event_median_s" else sig3(v))
        rows.append(row)
    note = "" if len(ok) <= limit else f"<p>showing {limit} of {len(ok)} records</p>"
    return table(["task", "model", "runner", "device", "dtype", "batch", "seq", "median ms"] + [h for _, h in present],
                 rows, numeric=set(range(5, 8 + len(present)))) + note
