"""The headline: per group, one sentence per runner and the table of every cell with each runner's
ratio to the reference and its CI (a batch x length grid first when there are many cells)."""

from __future__ import annotations

from typing import Any

from ..data import GROUP_KEY, overhead_sentence
from ..html import esc, fmt_ms, fmt_num, missing, ratio_class, table

__all__ = ["headline", "interference_banner", "PIVOT_ABOVE"]


PIVOT_ABOVE = 12


def headline(cells: Any) -> str:
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
                if missing(r.get(f"{name}_ratio")):
                    ratios.append("–")
                else:
                    suspect = r.get(f"{name}_suspect")
                    warn = (f' <span class="fail" title="{esc(busy)}">⚠ interfered</span>' if isinstance(busy, str)
                            else f' <span class="fail" title="{esc(suspect)}">⚠ suspect</span>'
                            if isinstance(suspect, str) else "")
                    ratios.append((f"{r[f'{name}_ratio']:.2f}× [{r[f'{name}_ratio_low']:.2f}, "
                                   f"{r[f'{name}_ratio_high']:.2f}]{warn}",
                                   "ns" if warn else ratio_class(r[f"{name}_ratio"], bool(r[f"{name}_significant"]))))
            if missing(r["parity_ok"]):
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


def _ratio_grid(g: Any, name: str, reference: str) -> str:
    seqs = sorted(g["seq_len"].unique())
    rows = []
    for b, gb in g.groupby("batch_size", sort=True):
        row: list[Any] = [esc(b)]
        for sl in seqs:
            r = gb[gb["seq_len"] == sl]
            if r.empty or missing(r.iloc[0][f"{name}_ratio"]):
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


def interference_banner(latest: Any) -> str:
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
