"""Matplotlib plumbing for the report's charts: the backend, a grid of panels, plain log ticks,
and SVG out with margins computed from the panels' own text (a report renders dozens of panels,
and measuring their text for a layout cost more than drawing them)."""

from __future__ import annotations

import io
import math
from typing import Any

__all__ = ["fit_margins", "grid", "laid_out", "plain_log", "to_svg"]


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "benchbed", "font.size": 8,
                         "axes.titlesize": 8, "figure.dpi": 100})
    return plt


def to_svg(fig: Any, tight: bool = True) -> bytes:
    """The figure as SVG bytes; `tight` crops to the drawn extent (a text-layout pass of its own,
    so figures laid out by `laid_out` skip it)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", bbox_inches="tight" if tight else None, metadata={"Date": None})
    _plt().close(fig)
    return buf.getvalue()


#: inches at 8-point text: a line of a title or label, and one character of a tick label
_LINE_IN, _CHAR_IN = 0.15, 0.055


def laid_out(fig: Any) -> bytes:
    """A grid of panels as SVG with `fit_margins`, and no tight crop (it would measure again)."""
    return to_svg(fig, tight=not fit_margins(fig))


def fit_margins(fig: Any) -> bool:
    """Margins computed from the panels' own text (title lines, tick label lengths and rotation)
    rather than measured by rendering: `tight_layout` and a tight bounding box each lay out every
    tick label once more, and were two thirds of a report's time (docs/design-notes.md, "The
    report in seconds"). False where the figure is not a grid of subplots (left as it is)."""
    axes = [ax for ax in fig.axes if ax.get_visible() and ax.get_subplotspec() is not None]
    if not axes:
        return False
    rows, cols = axes[0].get_subplotspec().get_gridspec().get_geometry()
    width, height = fig.get_size_inches()
    top = max(ax.get_title().count("\n") + 1 for ax in axes) * _LINE_IN + 0.1
    bottom = max(_below(ax) for ax in axes) + 0.08
    left = max(_beside(ax) for ax in axes) + 0.08
    right = 0.12
    cell_w, cell_h = width / cols, height / rows
    fig.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height, top=1 - top / height,
                        wspace=(left + right) / max(cell_w - left - right, 0.5),
                        hspace=(top + bottom) / max(cell_h - top - bottom, 0.5))
    return True


def _below(ax: Any) -> float:
    """Inches under a panel: its x tick labels (rotated ones by their length) and x label."""
    labels = [t for t in ax.get_xticklabels() if t.get_text()]
    ticks = 0.0
    for t in labels:
        size = t.get_fontsize() / 8.0
        rot = math.radians(t.get_rotation() % 180)
        ticks = max(ticks, size * (_LINE_IN * math.cos(rot) + len(t.get_text()) * _CHAR_IN * math.sin(rot)))
    return max(ticks, _LINE_IN) + (_LINE_IN if ax.get_xlabel() else 0.0) + 0.05


def _beside(ax: Any) -> float:
    """Inches left of a panel: its widest y tick label and its y label."""
    chars = max((len(t.get_text()) for t in ax.get_yticklabels()), default=3)
    return max(chars, 3) * _CHAR_IN + (_LINE_IN if ax.get_ylabel() else 0.0) + 0.1


def plain_log(ax: Any, axis: str = "y", base: int = 10) -> None:
    """A log scale whose ticks read as plain numbers (1, 10, 100; 1, 2, 4, 8): mathtext exponents
    cost a parse per label and read worse at this size."""
    from matplotlib import ticker

    getattr(ax, f"set_{axis}scale")("log", base=base)
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_formatter(ticker.LogFormatter(base=base, labelOnlyBase=False))
    if base == 10:  # labels its minors on spans under a decade (2, 3, 5…)
        target.set_minor_formatter(ticker.LogFormatter(base=base, labelOnlyBase=False))
    else:  # base 2's majors are every doubling: minor ticks would only cost (each is a tick object)
        target.set_minor_locator(ticker.NullLocator())


def grid(n: int, width: float = 3.4, height: float = 2.5) -> tuple[Any, list[Any]]:
    plt = _plt()
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]
