"""``benchbed report``: records in, one self-contained HTML page out. A report never runs a model."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import write_text_atomic
from ..record import COLUMNS
from ..spec import TRAINING_PREFIX
from . import charts
from .data import (
    GROUP_KEY,
    cells_of,
    displayable,
    label_variants,
    latest_run,
    overhead_sentence,
    problems,
)
from .html import esc, figure, fmt_ms, fmt_num, ratio_class, render_page, table

__all__ = ["build_report", "write_report", "comparison_section"]

#: Environment columns, derived from the record's schema (so a new env_* key shows without an edit here).
ENV_COLUMNS = [name for name, _ in COLUMNS if name.startswith("env_")]


def _headline(cells: Any) -> str:
    if cells.empty:
        return "<p>No case finished.</p>"
    runners, reference = cells.attrs["runners"], cells.attrs["reference"]
    others = runners[1:]
    out = [f'<p class="legend">runner ÷ {esc(reference)}: <span class="bad3">≥1.25×</span><span class="bad2">≥1.10×'
           f'</span><span class="bad1">&gt;1×</span><span class="good">&lt;1× (faster than {esc(reference)})</span>'
           '<span class="ns">not significant (95% CI includes 1)</span></p>']
    for key, g in cells.groupby(GROUP_KEY, sort=True):
        out.append(f"<h3>{' · '.join(esc(k) for k in key)}</h3>")
        for name in others:
            out.append(f'<p class="sentence">{esc(overhead_sentence(g, name, reference))}.</p>')
        rows = []
        for _, r in g.sort_values(["seq_len", "batch_size"]).iterrows():
            ratios = []
            busy = r.get("interfered")
            for name in others:
                if _missing(r.get(f"{name}_ratio")):
                    ratios.append("–")
                else:
                    suspect = r.get(f"{name}_suspect")
                    warn = (f' <span class="fail" title="{esc(busy)}">⚠ interfered</span>' if isinstance(busy, str)
                            else f' <span class="fail" title="{esc(suspect)}">⚠ suspect</span>'
                            if isinstance(suspect, str) else "")
                    ratios.append((f"{r[f'{name}_ratio']:.2f}× [{r[f'{name}_ratio_low']:.2f}, "
                                   f"{r[f'{name}_ratio_high']:.2f}]{warn}",
                                   "ns" if warn else ratio_class(r[f"{name}_ratio"], bool(r[f"{name}_significant"]))))
            if _missing(r["parity_ok"]):
                parity = "–"
            elif r["parity_ok"]:
                parity = (f'<span class="ok" title="{esc(r["parity_detail"])}">✓ same answers</span>', "")
            else:
                parity = (f'<span class="fail">✗ MISMATCH</span> {esc(r["parity_detail"])}', "")
            rows.append([esc(r["batch_size"]), esc(r["seq_len"])]
                        + [fmt_ms(r[f"{n}_median_s"]) for n in runners]
                        + [fmt_num(r[f"{n}_items_per_s"]) for n in runners] + ratios + [parity])
        k = len(runners)
        full = table(["batch", "seq"] + [f"{esc(n)} ms" for n in runners] + [f"{esc(n)} items/s" for n in runners]
                     + [f"{esc(n)} ÷ {esc(reference)} [95% CI]" for n in others] + ["parity"], rows,
                     numeric=set(range(0, 2 + 2 * k + len(others))))
        if len(g) > PIVOT_ABOVE:
            # many cells: a batch x length grid of ratios per runner first, the full table one click away
            out += [_ratio_grid(g, name, reference) for name in others]
            out.append(f"<details><summary>all {len(g)} cells</summary>{full}</details>")
        else:
            out.append(full)
    return "".join(out)


def _interference_banner(latest: Any) -> str:
    """A warning on top when records of the newest run were measured while the machine was busy."""
    if "interfered" not in latest.columns:
        return ""
    busy = latest[latest["interfered"].fillna(False).astype(bool)]
    if busy.empty:
        return ""
    reasons = sorted({str(x) for x in busy["interference"].dropna()})[:3]
    return (f'<p class="fail"><strong>⚠ {len(busy)} of {len(latest)} records were measured while other processes '
            f"used the machine</strong> ({esc('; '.join(reasons))}). Their cells are marked ⚠, and no sentence "
            f"above is drawn from them: measure again on a quiet machine.</p>")


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


PIVOT_ABOVE = 12


def _ratio_grid(g: Any, name: str, reference: str) -> str:
    seqs = sorted(g["seq_len"].unique())
    rows = []
    for b, gb in g.groupby("batch_size", sort=True):
        row: list[Any] = [esc(b)]
        for sl in seqs:
            r = gb[gb["seq_len"] == sl]
            if r.empty or _missing(r.iloc[0][f"{name}_ratio"]):
                row.append("–")
            else:
                r = r.iloc[0]
                mark = "" if r["parity_ok"] in (True, None) else " ✗"
                row.append((f"{r[f'{name}_ratio']:.2f}×{mark}", ratio_class(r[f"{name}_ratio"],
                                                                             bool(r[f"{name}_significant"]))))
        rows.append(row)
    mismatches = int((g["parity_ok"] == False).sum())  # noqa: E712
    parity = ("✓ every runner gave the reference's answers in every cell" if mismatches == 0
              else f"✗ {mismatches} cell(s) with a parity MISMATCH (marked ✗)")
    return (table([f"{esc(name)} ÷ {esc(reference)} (rows: batch, columns: seq)"] + [esc(sl) for sl in seqs], rows,
                  numeric=set(range(1, len(seqs) + 1))) + f'<p class="note">{esc(parity)}</p>')


def comparison_section(cmp: Any, env_diff: list[str], limit: int = 200) -> str:
    """Per-case change, worst regressions first, with CI, p-value and a mark."""
    out = []
    if env_diff:
        out.append("<p class=\"fail\">The environments differ; changes may come from these, not the code:</p><ul>")
        out += [f"<li>{esc(d)}</li>" for d in env_diff]
        out.append("</ul>")
    if cmp.empty:
        return "".join(out) + "<p>No case was measured on both sides.</p>"
    counts = cmp["verdict"].value_counts().to_dict()
    out.append(f"<p>{len(cmp)} cases matched: {counts.get('regression', 0)} regressions, "
               f"{counts.get('improvement', 0)} improvements, {counts.get('unchanged', 0)} unchanged.</p>")
    marks = {"regression": ("▲ regression", "bad2"), "improvement": ("▼ improvement", "good"),
             "unchanged": ("· unchanged", "ns")}
    rows = []
    unjudged = cmp[cmp["verdict"] == "unjudged"]
    if not unjudged.empty:
        out.append(f'<p class="fail">{len(unjudged)} case(s) could not be judged:</p><ul>')
        out += [f"<li>{esc(r['label'])}: {esc(r['reason'])}</li>" for _, r in unjudged.head(limit).iterrows()]
        out.append("</ul>")
        cmp = cmp[cmp["verdict"] != "unjudged"]
    for _, r in cmp.head(limit).iterrows():
        mark, cls = marks[r["verdict"]]
        sig = "*" if r["significant"] else ""
        rows.append([esc(r["label"]), fmt_ms(r["base_s"]), fmt_ms(r["cur_s"]),
                     (f"{100 * r['change']:+.1f}%{sig} [{100 * r['change_ci_low']:+.1f}, "
                      f"{100 * r['change_ci_high']:+.1f}]", cls), f"{r['p_value']:.3g}", (mark, cls)])
    out.append(table(["case", "baseline ms", "current ms", "change [95% CI]", "p (Mann-Whitney U)", "verdict"],
                     rows, numeric={1, 2, 3, 4}))
    if len(cmp) > limit:
        out.append(f'<p class="note">{len(cmp) - limit} more cases not shown.</p>')
    out.append('<p class="note">* significant: p &lt; 0.05 and the CI excludes 0. A regression needs a '
               "significant change above the threshold.</p>")
    return "".join(out)


def _problems(df: Any, limit: int = 300) -> str:
    bad = problems(df)
    if bad.empty:
        return "<p>Every case ran, and every runner agreed with the reference everywhere.</p>"
    rows = [[esc(r["status"] if r["status"] != "ok" else "parity mismatch"), esc(r["task"]), esc(r["model"]),
             esc(r["runner"]), esc(r["device"]), esc(r["dtype"]), esc(r["batch_size"]), esc(r["seq_len"]),
             esc(r["message"] if isinstance(r["message"], str) else r["parity_detail"])]
            for _, r in bad.head(limit).iterrows()]
    note = f'<p class="note">{len(bad) - limit} more not shown.</p>' if len(bad) > limit else ""
    return table(["status", "task", "model", "runner", "device", "dtype", "batch", "seq", "reason"], rows) + note


def _environment(df: Any) -> str:
    rows = []
    for col in ENV_COLUMNS:
        if col in df.columns:
            values = sorted({str(v) for v in df[col].dropna().unique()})
            rows.append([esc(col.removeprefix("env_")), esc(", ".join(values) if values else "–")])
    return table(["key", "value(s)"], rows)


def _runs(df: Any, limit: int = 30) -> str:
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


def build_report(df: Any, title: str = "benchbed report", baseline: Any = None, current: Any = None,
                 change_points: dict[tuple, list[Any]] | None = None, resamples: int = 1000) -> str:
    """The page for records `df` (its newest run leads); with `baseline` and `current`, a side-by-side
    comparison section too."""
    df, baseline, current = (label_variants(displayable(x)) for x in (df, baseline, current))
    latest = latest_run(df)
    per_call = latest[_scenario(latest) == "latency"]  # dataset passes and served requests have their own section
    cells = cells_of(per_call, resamples=resamples)
    runs = df["run_id"].nunique()
    subtitle = (f"{len(df)} records from {runs} run(s); headline and charts from the newest run "
                f"{latest['run_id'].iloc[0] if len(latest) else '–'}")
    heading = (" vs ".join(cells.attrs["runners"]) if not cells.empty else "Runners") + " (ratios against the reference)"
    headline = _headline(cells) if not (cells.empty and len(per_call) < len(latest)) else (
        "<p>No per-call (latency scenario) case in this run: see the workloads section.</p>")
    sections: list[tuple[str, str]] = [(heading, _interference_banner(latest) + headline)]
    if baseline is not None and current is not None:
        from ..regress import CompareSettings, compare_runs

        # the user named both sides, so they are compared even across an environment change, named
        cmp = compare_runs(baseline, current, CompareSettings(allow_env_change=True))
        sections.append(("Baseline vs current", comparison_section(cmp.cases, cmp.env_changes)))
    if not cells.empty:
        sections.append(("Latency and throughput vs batch size",
                         figure(charts.latency_vs_batch(cells), "Median latency per call, every runner")
                         + figure(charts.throughput_vs_batch(cells), "Throughput (items/s), every runner")))
        sections.append(("Noise: latency distributions",
                         figure(charts.distributions(per_call), "Raw per-call samples, box = IQR, whiskers 1.5×IQR")))
        inference = cells[~cells["task"].astype(str).str.startswith(TRAINING_PREFIX)]
        sections.append(("Where the time goes",
                         figure(charts.phase_breakdown(inference),
                                "Median preprocess / forward / postprocess; 'other' is the rest of the call "
                                "(pipeline plumbing: batching, collation; a runner that cannot split its call "
                                "shows one bar)")))
        prec = charts.precision_comparison(cells)
        if prec:
            sections.append(("Precision", figure(prec, "Geometric-mean latency over a group's cells by precision")))
        mem = charts.memory_vs_batch(cells)
        if mem:
            sections.append(("Memory", figure(mem, "Peak memory increase during the timed calls")))
    train = _training(latest)
    if train:
        sections.append(("Training: the hand-written loop vs transformers.Trainer", train))
    work = _workloads(latest)
    if work:
        sections.append(("Workloads: real inputs, datasets and servers under load", work))
    gen = charts.generation_latency(per_call)
    if gen:
        sections.append(("Generation", figure(gen, "Time to first token and per output token")))
    eff = charts.efficiency(latest)
    if eff:
        sections.append(("Efficiency", figure(eff, "Achieved TFLOP/s per cell, runners side by side; the dotted "
                                                   "line is the device's measured matmul peak")
                         + _efficiency_table(latest)))
    fits = _largest_fit(latest)
    if fits:
        sections.append(("Largest batch that fit", fits))
    dev = _device_table(latest)
    if dev:
        sections.append(("Devices, compilation and energy", dev))
    if change_points is None and df["run_id"].nunique() >= 4:
        change_points = _change_points_by_group(df)
    hist = charts.history_trend(df, change_points)
    if hist:
        sections.append(("History", figure(hist, "Geometric mean of case medians per run; dotted lines mark "
                                                 "confirmed change points")))
    sections.append(("Skipped, failed and mismatched cases", _problems(latest)))
    sections.append(("Environment", _environment(latest)))
    sections.append(("Runs", _runs(df)))
    return render_page(title, sections, subtitle)


def _scenario(df: Any) -> Any:
    """Each record's scenario; records older than the column are ``latency``."""
    import pandas as pd

    if "scenario" not in df.columns:
        return pd.Series("latency", index=df.index)
    col = df["scenario"].astype(object)
    return col.where(col.notna(), "latency")


def _workloads(latest: Any) -> str:
    """Server sweeps (sustainable rate at the SLO, the hockey stick), dataset throughput and padding,
    and the lengths of real inputs; empty when the run has none of them."""
    from ..summary import goodput, scenario_of

    scen = _scenario(latest)
    ok = latest[latest["status"] == "ok"]
    out = []
    served = ok[scen[ok.index] == "server"]
    if not served.empty:
        rows = goodput(served.to_dict("records"))
        by_cell: dict[tuple, list[dict[str, Any]]] = {}
        for g in rows:
            r = g["rec"]
            by_cell.setdefault((r["task"], r["model"], r["device"], r["dtype"], f"b{r['batch_size']}",
                                f"s{r['seq_len']}"), []).append(g)
        for key, gs in by_cell.items():
            ref = next((g for g in gs if g["runner"] == g["rec"].get("reference")), None)
            parts = []
            for g in gs:
                rate = g["sustainable_rate"]
                text = f"{esc(g['runner'])} sustains {rate:.4g} req/s" if rate is not None else \
                    f"{esc(g['runner'])} meets it at none of the rates tried"
                if ref is not None and g is not ref and rate and ref["sustainable_rate"]:
                    text += f" ({rate / ref['sustainable_rate']:.2f}× {esc(ref['runner'])}'s)"
                parts.append(text)
            slo = gs[0]["slo_ms"]
            out.append(f'<p class="sentence">{" · ".join(esc(k) for k in key)}: at p99 ≤ {slo:g} ms, '
                       f'{"; ".join(parts)} (of rates {", ".join(f"{r:.4g}" for r in gs[0]["rates"])}).</p>')
        out.append(figure(charts.server_load(ok), "Request latency vs offered load (open-loop Poisson arrivals): "
                                                  "p99 thick, p50 dotted; the dashed line is the SLO"))
        rows_html = []
        for _, r in served.sort_values(["task", "model", "offered_rate", "runner"]).iterrows():
            rows_html.append([esc(r["task"]), esc(r["model"]), esc(r["runner"]), fmt_num(r["offered_rate"]),
                              fmt_num(r["achieved_rate"]), fmt_ms(r["lat_median_s"]), fmt_ms(r["lat_p99_s"]),
                              fmt_ms(r["queue_median_s"]), fmt_ms(r["service_median_s"]), fmt_num(r["batch_mean"]),
                              esc(int(r["dropped"] or 0)), "✓" if r["slo_met"] is True else "✗"])
        out.append("<details><summary>every load level</summary>" + table(
            ["task", "model", "runner", "offered req/s", "served req/s", "p50 ms", "p99 ms", "queue p50 ms",
             "service p50 ms", "mean batch", "dropped", "SLO met"], rows_html, numeric=set(range(3, 11)))
            + "</details>")
    data = ok[scen[ok.index] == "dataset"]
    if not data.empty:
        out.append(figure(charts.dataset_throughput(ok), "Examples per second over the whole dataset, end to end; "
                                                         "numbers on the bars are padding waste"))
        rows_html = []
        for _, r in data.sort_values(["task", "model", "batch_size", "runner"]).iterrows():
            rows_html.append([esc(r["task"]), esc(r["model"]), esc(r["runner"]), esc(scenario_of(r.to_dict())),
                              esc(r["batch_size"]), fmt_num(r["examples_per_s"]), fmt_num(r["tokens_per_s"], 0),
                              fmt_ms(r["first_result_s"]), fmt_num(100 * r["padding_waste"]) + "%"
                              if not _missing(r.get("padding_waste")) else "–",
                              fmt_num(r["cpu_rss_peak_delta_mb"]),
                              "✓" if r["parity_ok"] is True else "✗" if r["parity_ok"] is False else "–"])
        out.append(table(["task", "model", "runner", "dataset", "batch", "examples/s", "tokens/s", "first result ms",
                          "padding waste", "peak RSS +MB", "parity"], rows_html, numeric=set(range(4, 10))))
    lens = charts.input_lengths(latest)
    if lens:
        out.append(figure(lens, "Lengths of the examples measured (tokens, after truncation to the case's seq_len)"))
    return "".join(out)


def _training(latest: Any) -> str:
    """Step time and its ratio, throughput, memory, the loss curves overlaid and time to the target
    loss, per training cell; empty when the run trained nothing."""
    if "train_steps" not in latest.columns:
        return ""
    ok = latest[(latest["status"] == "ok") & latest["train_steps"].notna()]
    if ok.empty:
        return ""
    rows = []
    for _, r in ok.sort_values(["task", "model", "dtype", "batch_size", "seq_len", "grad_accum", "runner"]).iterrows():
        ratio = "reference" if r["runner"] == r.get("reference") else (
            f"{r['ref_ratio']:.2f}× [{r['ref_ratio_low']:.2f}, {r['ref_ratio_high']:.2f}]"
            if not _missing(r.get("ref_ratio")) else "–")
        rows.append([esc(r["task"]), esc(r["model"]), esc(r["dtype"]), esc(r["batch_size"]), esc(r["seq_len"]),
                     esc(int(r["grad_accum"]) if not _missing(r.get("grad_accum")) else 1), esc(r["runner"]),
                     fmt_ms(r["lat_median_s"]), esc(ratio), fmt_num(r["items_per_s"]), fmt_num(r["tokens_per_s"], 0),
                     fmt_num(r["cpu_rss_peak_delta_mb"]),
                     f"{_g(r['loss_first'])} → {_g(r['loss_last'])}", _g(r.get("loss_max_diff")),
                     _g(r.get("time_to_loss_s")), esc(int(r["train_steps"])),
                     "✓" if r["parity_ok"] is True else "✗" if r["parity_ok"] is False else "–"])
    out = [table(["task", "model", "dtype", "batch", "seq", "accum", "runner", "step ms", "÷ reference [95% CI]",
                  "samples/s", "tokens/s", "peak RSS +MB", "loss first → last", "max |Δloss|", "time to loss s",
                  "steps", "parity"], rows, numeric={3, 4, 5, 7, 9, 10, 11, 13, 14, 15})]
    curves = charts.loss_curves(ok)
    if curves:
        out.append(figure(curves, "Loss at every optimizer step, both paths overlaid (one line where they agree); "
                                  "steps left of the dotted line are the parity steps, the rest were timed"))
    phases = charts.training_phases(ok)
    if phases:
        out.append(figure(phases, "Median phases of a step: data (fetch, collate, the loop's own work before the "
                                  "forward), forward, backward with clipping, optimizer step, after (zero_grad, "
                                  "scheduler, callbacks)"))
    return "".join(out)


def _g(value: Any) -> str:
    """Three significant digits; a dash for a missing value."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    return f"{float(value):.3g}"


def _efficiency_table(latest: Any, limit: int = 200) -> str:
    ok = latest[(latest["status"] == "ok") & latest["achieved_tflops"].notna()]
    if ok.empty:
        return ""
    rows = []
    for _, r in ok.head(limit).iterrows():
        rows.append([esc(r["task"]), esc(r["model"]), esc(r["runner"]), esc(r["device"]), esc(r["dtype"]),
                     esc(r["batch_size"]), esc(r["seq_len"]), _g(r["flops_per_call"] / 1e9),
                     _g(r["achieved_tflops"]), _g(r.get("peak_tflops")),
                     esc(None if r.get("peak_fraction") is None or r["peak_fraction"] != r["peak_fraction"]
                         else f"{100 * r['peak_fraction']:.1f}%"), esc(r.get("peak_probe"))])
    return table(["task", "model", "runner", "device", "dtype", "batch", "seq", "GFLOP/call", "TFLOP/s",
                  "peak TFLOP/s", "of peak", "peak probe"], rows, numeric={5, 6, 7, 8, 9, 10})


def _largest_fit(latest: Any) -> str:
    from ..summary import largest_fit

    fits = largest_fit(latest.to_dict("records"))
    if not fits:
        return ""
    rows = [[esc(r["task"]), esc(r["model"]), esc(r["runner"]), esc(r["device"]), esc(r["dtype"]),
             esc(r["seq_len"]), esc(fit if fit is not None else "none"), esc(oom)] for r, fit, oom in fits]
    return table(["task", "model", "runner", "device", "dtype", "seq", "largest batch that ran", "first out of memory"],
                 rows, numeric={5, 6, 7})


_DEVICE_COLS = [("compile_s", "compile s"), ("gpu_alloc_peak_mb", "GPU alloc MB"),
                ("gpu_reserved_peak_mb", "GPU reserved MB"), ("gpu_nvml_used_peak_mb", "NVML used MB"),
                ("gpu_util_mean_pct", "GPU util %"), ("gpu_power_mean_w", "power W"),
                ("energy_j_per_item", "J/item"), ("cuda_event_median_s", "CUDA-event median ms")]


def _device_table(latest: Any, limit: int = 300) -> str:
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
            row.append(fmt_ms(v) if c == "cuda_event_median_s" else _g(v))
        rows.append(row)
    note = "" if len(ok) <= limit else f"<p>showing {limit} of {len(ok)} records</p>"
    return table(["task", "model", "runner", "device", "dtype", "batch", "seq", "median ms"] + [h for _, h in present],
                 rows, numeric=set(range(5, 8 + len(present)))) + note


def _change_points_by_group(df: Any) -> dict[tuple, list[Any]]:
    """Confirmed change points (as in `benchbed history`) keyed by headline group, for the trend chart."""
    from ..regress.history import find_change_points

    points, _, _ = find_change_points(df)
    key_of = df.drop_duplicates("case_id").set_index("case_id")[GROUP_KEY]
    out: dict[tuple, list[Any]] = {}
    for p in points:
        key = tuple(key_of.loc[p.case_id])
        if p.run_id not in out.setdefault(key, []):
            out[key].append(p.run_id)
    return out


def write_report(page: str, out: str | os.PathLike[str]) -> str:
    """Write atomically: a report is either the old file or the whole new one."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(path, page)
