"""The self-contained HTML page: inline CSS, charts as base64 SVG images, no script, no network.

Every string that comes from results or model metadata goes through `esc` (html.escape with
quotes), so a model or label named ``<script>alert(1)</script>`` shows as text.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
from typing import Any, Iterable

import numpy as np

from ..display import console_safe
from ..display import fmt_ms as _fmt_ms

__all__ = ["esc", "render_page", "ratio_class", "fmt_ms"]

CSS = """
body{font:14px/1.45 -apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;margin:0;color:#222;background:#fafafa}
main{max-width:1200px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:15px;margin:20px 0 4px}.sub{color:#666;margin:0 0 16px}
table{border-collapse:collapse;margin:6px 0 12px;background:#fff;font-size:13px}
th,td{border:1px solid #e2e2e2;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f0f0f0}td.n{text-align:right;font-variant-numeric:tabular-nums}
.ns{color:#666}.bad1{background:#fde8e8}.bad2{background:#f9c4c4}.bad3{background:#f28b8b}
.good{background:#dff3e0}.ok{color:#1a7f37}.fail{color:#c62828;font-weight:bold}
.sentence{margin:2px 0 6px;color:#333}.note{color:#777;font-size:12px}
figure{margin:8px 0 18px;background:#fff;border:1px solid #e2e2e2;padding:8px}
figure img{max-width:100%;height:auto;display:block}figcaption{color:#555;font-size:12px;margin-top:4px}
.legend span{display:inline-block;padding:1px 6px;margin-right:6px;border:1px solid #ddd}
"""


def esc(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    return html.escape(console_safe(value), quote=True)  # terminal escapes and control bytes are dropped


def fmt_ms(seconds: Any) -> str:
    return _fmt_ms(seconds, missing="–")


def fmt_num(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    return f"{float(value):.{digits}f}"


def ratio_class(ratio: Any, significant: bool) -> str:
    """Colour by size and significance: red shades for a slower pipeline, green for a faster one."""
    if ratio is None or (isinstance(ratio, float) and np.isnan(ratio)) or not significant:
        return "ns"
    if ratio < 1:
        return "good"
    return "bad3" if ratio >= 1.25 else "bad2" if ratio >= 1.10 else "bad1"


def table(headers: Iterable[str], rows: Iterable[Iterable[str]], numeric: set[int] | None = None) -> str:
    """Rows are already-escaped HTML cell contents (a cell may be a (html, css class) pair)."""
    numeric = numeric or set()
    out = ["<table><thead><tr>", "".join(f"<th>{esc(h)}</th>" for h in headers), "</tr></thead><tbody>"]
    for row in rows:
        out.append("<tr>")
        for i, cell in enumerate(row):
            content, cls = cell if isinstance(cell, tuple) else (cell, "")
            classes = " ".join(c for c in (cls, "n" if i in numeric else "") if c)
            out.append(f"<td class=\"{classes}\">{content}</td>" if classes else f"<td>{content}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def figure(chart: tuple[bytes, str] | None, caption: str) -> str:
    if chart is None:
        return ""
    svg, note = chart
    data = base64.b64encode(svg).decode("ascii")
    extra = f" ({esc(note)})" if note else ""
    return (f'<figure><img alt="{esc(caption)}" src="data:image/svg+xml;base64,{data}">'
            f"<figcaption>{esc(caption)}{extra}</figcaption></figure>")


def render_page(title: str, sections: list[tuple[str, str]], subtitle: str) -> str:
    """Sections are (heading, inner HTML); headings are escaped here."""
    generated = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = "".join(f"<section><h2>{esc(h)}</h2>{inner}</section>" for h, inner in sections)
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body><main>"
            f"<h1>{esc(title)}</h1><p class=\"sub\">{esc(subtitle)} · generated {generated} by benchbed</p>"
            f"{body}</main></body></html>")


def missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def sig3(value: Any) -> str:
    """Three significant digits; a dash for a missing value."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    return f"{float(value):.3g}"
