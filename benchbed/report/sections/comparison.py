"""Baseline vs current: per-case change, worst regressions first, with CI, p-value and a mark."""

from __future__ import annotations

from typing import Any

from ..html import esc, fmt_ms, table

__all__ = ["comparison_section"]


def comparison_section(cmp: Any, env_diff: list[str], limit: int = 200, metric: str = "median") -> str:
    """Per-case change, worst regressions first, with CI, p-value and a mark."""
    out = []
    if env_diff:
        out.append("<p class=\"fail\">The environments differ; changes may come from these, not the code:</p><ul>")
        out += [f"<li>{esc(d)}</li>" for d in env_diff]
        out.append("</ul>")
    if cmp.empty:
        return "".join(out) + "<p>No case was measured on both sides.</p>"
    counts = cmp["verdict"].value_counts().to_dict()
    what = "ratio to the reference" if metric == "ratio" else f"{metric} latency"
    out.append(f"<p>{len(cmp)} cases matched, judged on the {esc(what)}: {counts.get('regression', 0)} regressions, "
               f"{counts.get('improvement', 0)} improvements, {counts.get('unchanged', 0)} unchanged"
               + (f", {counts['underpowered']} underpowered (could not have seen a change of their threshold)"
                  if counts.get("underpowered") else "") + ".</p>")
    marks = {"regression": ("▲ regression", "bad2"), "improvement": ("▼ improvement", "good"),
             "unchanged": ("· unchanged", "ns"), "underpowered": ("○ underpowered", "ns")}
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
                      f"{100 * r['change_ci_high']:+.1f}]", cls), f"{r['p_value']:.3g}",
                     f"{100 * r['mde']:.1f}%" if r.get("mde") == r.get("mde") and r.get("mde") is not None else "–",
                     (mark, cls)])
    out.append(table(["case", "baseline ms", "current ms", "change [95% CI]", "p (Mann-Whitney U)",
                      "detectable at 95% power", "verdict"], rows, numeric={1, 2, 3, 4, 5}))
    if len(cmp) > limit:
        out.append(f'<p class="note">{len(cmp) - limit} more cases not shown.</p>')
    out.append('<p class="note">* significant: p &lt; 0.05 and the CI excludes 0. A regression needs a '
               "significant change above the threshold; a case whose detectable change exceeds its threshold is "
               "underpowered, neither a pass nor a regression.</p>")
    return "".join(out)
