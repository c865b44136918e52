"""Renderings of a comparison and of a history: console table, GitHub markdown, JSON.

All three are built from the same plain dict (`comparison_dict` / `history_dict`), so the
markdown in ``$GITHUB_STEP_SUMMARY`` shows exactly the numbers the JSON holds. Strings from
records reach markdown only through `md_code` / `md_text` (no raw HTML, no broken tables) and the
console only clipped (the CLI strips escape sequences from everything it prints).
"""

from __future__ import annotations

import json
from typing import Any

from ..display import clip, fmt_ms, json_value, md_code, md_text
from .compare import Comparison
from .history import ChangePoint

__all__ = ["comparison_dict", "comparison_console", "comparison_markdown", "history_dict", "history_console",
           "history_markdown", "to_json", "pct", "ms"]

SCHEMA_VERSION = 1
MARK = {"regression": "🔴 regression", "improvement": "🟢 improvement", "unchanged": "unchanged",
        "unjudged": "⚠️ not judged", "underpowered": "⚪ underpowered"}


def pct(x: float) -> str:
    return f"{100 * x:+.1f}%"


def ms(seconds: float) -> str:
    return fmt_ms(seconds)


def value(x: float, metric: str) -> str:
    """A judged value as its metric reads: a ratio (``1.083x``), else milliseconds."""
    return f"{x:.4g}x" if metric == "ratio" else fmt_ms(x)


def unit(metric: str) -> str:
    return "ratio" if metric == "ratio" else "ms"


def mde(r: dict[str, Any]) -> str:
    return f"{100 * r['mde']:.1f}%" if r.get("mde") is not None else "-"


def comparison_dict(c: Comparison) -> dict[str, Any]:
    cases = [] if c.cases.empty else [
        {k: json_value(v) for k, v in row.items()} for row in c.cases.to_dict("records")]
    return {
        "schema_version": SCHEMA_VERSION, "kind": "compare", "metric": c.metric, "normalize": c.normalize,
        "compared": c.compared,
        "baseline_runs": c.baseline_runs, "current_runs": c.current_runs, "env_changes": c.env_changes,
        "summary": {"cases": c.judged, "regressions": c.regressions, "improvements": c.improvements,
                    "unchanged": c.judged - c.regressions - c.improvements - c.underpowered,
                    "underpowered": c.underpowered, "unjudged": c.unjudged},
        "cases": cases,
    }


def _status_line(d: dict[str, Any]) -> str:
    s = d["summary"]
    if not d["compared"]:
        return ("NOT COMPARED: the environment changed and --allow-env-change was not given "
                f"({'; '.join(clip(e) for e in d['env_changes'])})")
    scale = " (normalised by the host yardstick)" if d.get("normalize") == "host" else ""
    what = "ratio to the reference (per-block)" if d["metric"] == "ratio" else f"{d['metric']} latency"
    line = (f"{s['cases']} cases compared on the {what}{scale}: {s['regressions']} regressions, "
            f"{s['improvements']} improvements, {s['unchanged']} unchanged")
    if s.get("underpowered"):
        line += f", {s['underpowered']} UNDERPOWERED (could not have seen a change of their threshold)"
    if s.get("unjudged"):
        line += f"; {s['unjudged']} NOT JUDGED (see below)"
    if not s["cases"] and not s.get("unjudged"):
        line = "NO CASE IN COMMON: nothing was compared (different models, matrices or a partial run?)"
    return line


def _judged(d: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in d["cases"] if r["verdict"] != "unjudged"]


def _unjudged(d: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in d["cases"] if r["verdict"] == "unjudged"]


def comparison_console(d: dict[str, Any], limit: int | None = None) -> str:
    lines = [_status_line(d)]
    if d["env_changes"] and d["compared"]:
        lines += ["environment changed (compared anyway):"] + [f"  {clip(e)}" for e in d["env_changes"]]
    for r in _unjudged(d):
        lines.append(f"  not judged: {clip(r['label'])}: {clip(r['reason'])}")
    for r in d["cases"]:
        if r["verdict"] == "underpowered":
            lines.append(f"  underpowered: {clip(r['label'])}: {clip(r['reason'], 400)}")
    rows = _judged(d) if limit is None else _judged(d)[:limit]
    if rows:
        u = unit(d["metric"])
        head = ("case", f"baseline {u}", f"current {u}", "change", "95% CI", "p", "threshold", "MDE", "verdict")
        body = [(clip(r["label"]), value(r["base_s"], d["metric"]), value(r["cur_s"], d["metric"]), pct(r["change"]),
                 f"[{pct(r['change_ci_low'])}, {pct(r['change_ci_high'])}]", f"{r['p_value']:.3g}",
                 f"{100 * r['threshold']:.0f}%", mde(r),
                 r["verdict"].upper() if r["verdict"] == "regression" else r["verdict"])
                for r in rows]
        widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
        fmt = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
        lines += ["", fmt(head), fmt(tuple("-" * w for w in widths))] + [fmt(b) for b in body]
    return "\n".join(lines)


def comparison_markdown(d: dict[str, Any], limit: int = 100) -> str:
    lines = ["## benchbed compare", "", md_text(_status_line(d), 2000) + ".", ""]
    if d["env_changes"]:
        lines += ["**Environment changed:**", ""] + [f"- {md_code(e)}" for e in d["env_changes"]] + [""]
    if _unjudged(d):
        lines += ["**Not judged** (the gate fails on these):", ""] + [
            f"- {md_code(r['label'])}: {md_text(r['reason'])}" for r in _unjudged(d)[:limit]] + [""]
    under = [r for r in d["cases"] if r["verdict"] == "underpowered"]
    if under:
        lines += ["**Underpowered** (a pass that could not have failed):", ""] + [
            f"- {md_code(r['label'])}: {md_text(r['reason'])}" for r in under[:limit]] + [""]
    rows = _judged(d)
    if rows:
        u = unit(d["metric"])
        lines += [f"| case | baseline {u} | current {u} | change | 95% CI | p | threshold | MDE | verdict |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
        for r in rows[:limit]:
            lines.append(f"| {md_code(r['label'])} | {value(r['base_s'], d['metric'])} | "
                         f"{value(r['cur_s'], d['metric'])} | {pct(r['change'])} | "
                         f"[{pct(r['change_ci_low'])}, {pct(r['change_ci_high'])}] | {r['p_value']:.3g} | "
                         f"{100 * r['threshold']:.0f}% | {mde(r)} | {MARK[r['verdict']]} |")
        if len(rows) > limit:
            lines.append(f"\n{len(rows) - limit} more cases in the JSON output.")
    return "\n".join(lines) + "\n"


def history_dict(points: list[ChangePoint], gating: list[ChangePoint], envs: dict[int, str], runs: list[str],
                 cases: int, unjudged: list[dict[str, Any]] | None = None, metric: str = "median") -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION, "kind": "history", "metric": metric, "runs": runs, "cases": cases,
        "env_changes": [{"index": i, "run_id": runs[i], "change": text} for i, text in sorted(envs.items())],
        "change_points": [p.as_dict() for p in points],
        "new_regressions": [p.as_dict() for p in gating],
        "unjudged": list(unjudged or []),
    }


def history_console(d: dict[str, Any]) -> str:
    unjudged = d.get("unjudged") or []
    metric = d.get("metric", "median")
    what = "the ratio to the reference" if metric == "ratio" else f"the {metric} latency"
    lines = [f"{len(d['runs'])} runs, {d['cases']} cases on {what}, {len(d['change_points'])} confirmed change points, "
             f"{len(d['new_regressions'])} new regressions"
             + (f", {len(unjudged)} NOT JUDGED" if unjudged else "")
             + ("; NO RUN WITH USABLE RECORDS" if not d["runs"] else "")]
    for u in unjudged:
        lines.append(f"  not judged: {clip(u['label'])} in run {clip(u['run_id'])}: {clip(u['reason'])}")
    for e in d["env_changes"]:
        lines.append(f"environment change at run {e['index']} ({clip(e['run_id'])}): {clip(e['change'])}")
    for p in d["change_points"]:
        env = f" [at environment change: {clip(p['env_change'])}]" if p["env_change"] else ""
        lines.append(f"  {p['kind']:<11} {pct(p['change']):>7} at run {p['index']} ({clip(p['run_id'])}): {clip(p['label'])} "
                     f"{value(p['before_s'], metric)} -> {value(p['after_s'], metric)}"
                     f"{'' if metric == 'ratio' else ' ms'}, p={p['p_value']:.2g}{env}")
    return "\n".join(lines)


def history_markdown(d: dict[str, Any], limit: int = 100) -> str:
    lines = ["## benchbed history", "", md_text(history_console(d).splitlines()[0], 2000) + ".", ""]
    if d.get("unjudged"):
        lines += ["**Not judged** (the gate fails on these):", ""] + [
            f"- {md_code(u['label'])} in run {md_code(u['run_id'])}: {md_text(u['reason'])}"
            for u in d["unjudged"][:limit]] + [""]
    if d["env_changes"]:
        lines += [f"- environment change at run {e['index']} ({md_code(e['run_id'])}): {md_code(e['change'])}"
                  for e in d["env_changes"]] + [""]
    if d["change_points"]:
        u = unit(d.get("metric", "median"))
        lines += [f"| case | run | change | before {u} | after {u} | p | kind |", "|---|---|---:|---:|---:|---:|---|"]
        for p in d["change_points"][:limit]:
            lines.append(f"| {md_code(p['label'])} | {p['index']} ({md_code(p['run_id'])}) | {pct(p['change'])} | "
                         f"{value(p['before_s'], d.get('metric', 'median'))} | "
                         f"{value(p['after_s'], d.get('metric', 'median'))} | {p['p_value']:.2g} | {MARK[p['kind']]} |")
    return "\n".join(lines) + "\n"


def to_json(d: dict[str, Any]) -> str:
    return json.dumps(d, indent=2, default=str)
