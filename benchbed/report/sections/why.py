"""The report's "Why" section: per explained cell (records with ``--explain`` profiles), a
waterfall whose bars — the named functions by stage, then the unexplained rest — add up to the
measured gap, and tables of those functions and of the operators that moved, Δ ms per call."""

from __future__ import annotations

from typing import Any

from ...explain import Explanation, explain_records
from ..charts import Chart, _plt, plain, to_svg
from ...display import clip
from ..html import esc, figure, fmt_ms, table

__all__ = ["section", "waterfall"]

#: explained cells drawn, at most (the largest gaps first); the rest are listed in a table
MAX_CELLS = 12


def section(latest: Any) -> str:
    """Empty when no record of the run asked for an explanation."""
    if "explain_status" not in latest.columns or latest["explain_status"].isna().all():
        return ""
    found = explain_records(latest.to_dict("records"))
    if not found:
        return ""
    found.sort(key=lambda e: -abs(e.gap_s or 0.0))
    out = ['<div id="why"><p>The measured gap per call (from the timed, paired pass) taken apart by a profiled '
           'pass outside the timed window: stages by their clock times, then the functions that moved, scaled '
           'stage by stage to the timed medians. What no named function accounts for is shown as unexplained, '
           'never spread over the rest (docs/explain.md).</p>']
    for e in found[:MAX_CELLS]:
        out.append(_cell(e))
    rest = found[MAX_CELLS:]
    if rest:
        out.append(table(["runner", "reference", "cell", "gap ms", "verdict"],
                         [[esc(e.runner), esc(e.reference), esc(e.cell), fmt_ms(e.gap_s), esc(e.verdict)]
                          for e in rest], numeric={3}))
    out.append("</div>")
    return "".join(out)


def _cell(e: Explanation) -> str:
    head = f"<h3>{esc(e.runner)} vs {esc(e.reference)}: {esc(e.cell)}</h3>"
    if e.gap_s is None or e.verdict == "refused":
        return head + f"<p>Not attributed: {esc(e.reason)}</p>"
    gap = (f"<p>Measured gap {fmt_ms(e.gap_s)} ms per call ({e.ratio:.3f}× of {fmt_ms(e.reference_median_s)} ms). "
           "Stages: " + ", ".join(f"{esc(s)} {d * 1e3:+.3f} ms" for s, d in e.stages) + ".</p>")
    if e.verdict != "explained":
        return head + gap + f"<p>Nothing named: {esc(e.reason)}.</p>"
    rows = [[esc(p.stage), esc(clip(p.label, 200)), f"{p.delta_s * 1e3:+.3f}", fmt_ms(p.runner_s), fmt_ms(p.reference_s)]
            for p in sorted(e.parts, key=lambda p: -abs(p.delta_s))]
    share = e.unexplained_fraction
    rows.append([esc("–"), esc("unexplained" + (f" ({share:.0%} of the gap)" if share is not None else "")),
                 f"{(e.unexplained_s or 0.0) * 1e3:+.3f}", "", ""])
    ops = [[esc(o.stage), esc(clip(f"{o.name} {o.shapes}", 200)), f"{o.delta_s * 1e3:+.3f}", fmt_ms(o.runner_s),
            fmt_ms(o.reference_s), esc(f"only in {o.only_in}" if o.only_in else "")] for o in e.operators]
    return (head + gap + figure(waterfall(e), f"Waterfall: {e.runner} minus {e.reference}, ms per call; the bars "
                                              "add up to the measured gap")
            + table(["stage", "function", "Δ ms", f"{e.runner} ms", f"{e.reference} ms"], rows, numeric={2, 3, 4})
            + (table(["stage", "operator and input shapes", "Δ ms", f"{e.runner} ms", f"{e.reference} ms", ""], ops,
                     numeric={2, 3, 4}) if ops else ""))


def waterfall(e: Explanation) -> Chart:
    """Bars from 0: each named function's difference, then the unexplained rest, ending at the
    measured gap (drawn last, in full)."""
    plt = _plt()
    steps = [(f"{stage}: {label.split(':', 1)[-1]}", delta) for stage, label, delta in e.shown_parts()]
    steps.append(("unexplained", e.unexplained_s or 0.0))
    fig, ax = plt.subplots(figsize=(6.4, 0.28 * (len(steps) + 1) + 0.8))
    level = 0.0
    for i, (label, delta) in enumerate(steps):
        color = "#bbbbbb" if label == "unexplained" else "#c0392b" if delta > 0 else "#27ae60"
        ax.barh(i, delta * 1e3, left=level * 1e3, color=color)
        level += delta
    ax.barh(len(steps), (e.gap_s or 0.0) * 1e3, color="#34495e")
    ax.set_yticks(range(len(steps) + 1), [plain(s[0][:60]) for s in steps] + ["measured gap"])
    ax.invert_yaxis()
    ax.axvline(0, color="black", lw=0.6)
    ax.set_xlabel(plain(f"ms per call ({e.runner} − {e.reference})"))
    return to_svg(fig), ""
