"""The report page: records in, one self-contained HTML page out, assembled from the sections in
`benchbed.report.sections` (a scenario's own section comes from its declaration). A report never
runs a model."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..atomic import write_text_atomic
from ..scenarios import DEFAULT_SCENARIO, get_scenario
from ..spec import TRAINING_PREFIX
from . import charts
from .data import GROUP_KEY, cells_of, displayable, label_variants, latest_run
from .html import figure, render_page
from .parallel import ChartPool
from .sections.comparison import comparison_section
from .sections.headline import headline as headline_html
from .sections.headline import interference_banner
from .sections.history import noise_section, ratio_history_section
from .sections.inputs import input_lengths
from .sections import tables
from .sections.environments import section as environments_section
from .sections.training import section as training_section
from .sections.why import section as why_section

__all__ = ["build_report", "write_report"]


def build_report(df: Any, title: str = "benchbed report", baseline: Any = None, current: Any = None,
                 change_points: dict[tuple, list[Any]] | None = None, resamples: int = 1000,
                 workers: int | None = None) -> str:
    """The page for records `df` (its newest run leads); with `baseline` and `current`, a side-by-side
    comparison section too. Charts are drawn by `workers` processes (default: up to 4; 1 draws
    them here)."""
    df, baseline, current = (label_variants(displayable(x)) for x in (df, baseline, current))
    latest = latest_run(df)
    per_call = latest[_scenario(latest).map(_per_call)]  # dataset passes and served requests have their own section
    cells = cells_of(per_call, resamples=resamples)
    runs = df["run_id"].nunique()
    subtitle = (f"{len(df)} records from {runs} run(s); headline and charts from the newest run "
                f"{latest['run_id'].iloc[0] if len(latest) else '–'}")
    heading = (" vs ".join(cells.attrs["runners"]) if not cells.empty else "Runners") + " (ratios against the reference)"
    headline = headline_html(cells) if not (cells.empty and len(per_call) < len(latest)) else (
        "<p>No per-call (latency scenario) case in this run: see the workloads section.</p>")
    if change_points is None and df["run_id"].nunique() >= 4:
        change_points = _change_points_by_group(df)
    with ChartPool(workers) as pool:
        drawn = _start_charts(pool, df, per_call, cells, latest, change_points)
        sections = _sections(df, latest, cells, heading, headline, baseline, current, drawn)
    return render_page(title, sections, subtitle)


def _start_charts(pool: ChartPool, df: Any, per_call: Any, cells: Any, latest: Any,
                  change_points: dict[tuple, list[Any]] | None) -> dict[str, Any]:
    """The page's own charts, started in the pool before the tables are built (each a callable
    that gives the chart when its section is written)."""
    drawn: dict[str, Any] = {}
    if not cells.empty:
        inference = cells[~cells["task"].astype(str).str.startswith(TRAINING_PREFIX)]
        drawn.update(latency=pool.submit(charts.latency_vs_batch, cells),
                     throughput=pool.submit(charts.throughput_vs_batch, cells),
                     distributions=pool.submit(charts.distributions, per_call),
                     phases=pool.submit(charts.phase_breakdown, inference),
                     precision=pool.submit(charts.precision_comparison, cells),
                     memory=pool.submit(charts.memory_vs_batch, cells))
    drawn.update(generation=pool.submit(charts.generation_latency, per_call),
                 efficiency=pool.submit(charts.efficiency, latest),
                 history=pool.submit(charts.history_trend, df, change_points))
    return drawn


def _sections(df: Any, latest: Any, cells: Any, heading: str, headline: str, baseline: Any, current: Any,
              drawn: dict[str, Any]) -> list[tuple[str, str]]:
    """(heading, HTML) of every section, in the page's order."""
    sections: list[tuple[str, str]] = [(heading, interference_banner(latest) + headline)]
    if baseline is not None and current is not None:
        from ..regress import CompareSettings, compare_runs

        # the user named both sides, so they are compared even across an environment change, named
        cmp = compare_runs(baseline, current, CompareSettings(allow_env_change=True))
        sections.append(("Baseline vs current", comparison_section(cmp.cases, cmp.env_changes, metric=cmp.metric)))
    if not cells.empty:
        sections.append(("Latency and throughput vs batch size",
                         figure(drawn["latency"](), "Median latency per call, every runner")
                         + figure(drawn["throughput"](), "Throughput (items/s), every runner")))
        sections.append(("Noise: latency distributions",
                         figure(drawn["distributions"](), "Raw per-call samples, box = IQR, whiskers 1.5×IQR")))
        sections.append(("Where the time goes",
                         figure(drawn["phases"](),
                                "Median preprocess / forward / postprocess; 'other' is the rest of the call "
                                "(pipeline plumbing: batching, collation; a runner that cannot split its call "
                                "shows one bar)")))
        prec = drawn["precision"]()
        if prec:
            sections.append(("Precision", figure(prec, "Geometric-mean latency over a group's cells by precision")))
        mem = drawn["memory"]()
        if mem:
            sections.append(("Memory", figure(mem, "Peak memory increase during the timed calls")))

    def add(title: str, html: str) -> None:
        if html:
            sections.append((title, html))

    add("Why: each explained gap taken apart", why_section(latest))
    add("Training: the hand-written loop vs transformers.Trainer", training_section(latest))
    add("Environments and bisection: each version against the reference", environments_section(latest))
    add("Workloads: real inputs, datasets and servers under load", _workloads(latest))
    gen = drawn["generation"]()
    add("Generation", figure(gen, "Time to first token and per output token") if gen else "")
    eff = drawn["efficiency"]()
    add("Efficiency", figure(eff, "Achieved TFLOP/s per cell, runners side by side; the dotted line is the device's "
                                  "measured matmul peak") + tables.efficiency_table(latest) if eff else "")
    add("Largest batch that fit", tables.largest_fit(latest))
    add("Devices, compilation and energy", tables.device_table(latest))
    hist = drawn["history"]()
    add("History", figure(hist, "Geometric mean of case medians per run; dotted lines mark confirmed change points")
        if hist else "")
    add("Ratio history", ratio_history_section(df))
    add("Noise floor", noise_section(latest))
    sections.append(("Skipped, failed and mismatched cases", tables.problems_table(latest)))
    sections.append(("Environment", tables.environment(latest)))
    sections.append(("Runs", tables.runs(df)))
    return sections



def _scenario(df: Any) -> Any:
    """Each record's scenario; records older than the column are the default one."""
    import pandas as pd

    if "scenario" not in df.columns:
        return pd.Series(DEFAULT_SCENARIO, index=df.index)
    col = df["scenario"].astype(object)
    return col.where(col.notna(), DEFAULT_SCENARIO)


def _per_call(name: str) -> bool:
    """Whether a scenario's samples are per-call latencies (the headline's; dataset passes and
    served requests have their own section). A scenario not registered here: only the default."""
    try:
        return get_scenario(name).sample == "call"
    except KeyError:
        return name == DEFAULT_SCENARIO


def _workloads(latest: Any) -> str:
    """Each scenario's own section (the server's sweeps, the dataset's throughput and padding, a
    plugin's), in the order scenarios are registered, and the lengths of real inputs; empty when
    the run has none of them. Records of a scenario not registered here get no section."""
    scen = _scenario(latest)
    ok = latest[latest["status"] == "ok"]
    out = []
    for name in dict.fromkeys(scen[ok.index]):
        try:
            builder = get_scenario(name).section_builder()
        except KeyError:
            continue
        own = ok[scen[ok.index] == name]
        own.attrs["latest"] = ok  # a section may set its records beside another scenario's (http vs server)
        if builder is not None and not own.empty:
            out.append(builder(own))
    lens = input_lengths(latest)
    if lens:
        out.append(figure(lens, "Lengths of the examples measured (tokens, after truncation to the case's seq_len)"))
    return "".join(out)


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
