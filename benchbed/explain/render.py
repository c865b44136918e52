"""An explanation as console lines: the gap, then a waterfall of the named functions by stage and
the unexplained rest (bars add up to the gap), then the operators that moved."""

from __future__ import annotations

from .attribute import Explanation

__all__ = ["explanation_lines"]

BAR = 24


def _ms(s: float) -> str:
    return f"{s * 1e3:+.3f} ms"


def _short(name: str, width: int = 72) -> str:
    return name if len(name) <= width else "…" + name[-(width - 1):]


def explanation_lines(e: Explanation) -> list[str]:
    head = f"why {e.runner} vs {e.reference}: {e.cell}"
    if e.gap_s is None:
        return [head, f"  not explained: {e.reason}"]
    ci = f" [{e.ratio_low:.2f}, {e.ratio_high:.2f}]" if e.ratio_low is not None and e.ratio_high is not None else ""
    lines = [head, f"  measured gap {_ms(e.gap_s)} per call ({e.ratio:.3f}x{ci} of {e.reference_median_s * 1e3:.3f} ms)"]
    if e.verdict == "refused":
        return lines + [f"  not attributed: {e.reason}"]
    over = ", ".join(f"{k} x{v:.2f}" for k, v in e.overhead.items())
    lines.append("  stages (clock, scaled to the timed medians): "
                 + ", ".join(f"{s} {_ms(d)}" for s, d in e.stages) + f"; sampling overhead {over}")
    for name, d in e.devices.items():
        if d.get("busy_fraction") is not None:
            median = d.get("gap_median")
            gaps = f", {d['gaps']} launch gaps, median {median * 1e6:.0f} µs" if median is not None else ""
            lines.append(f"  device: {name} busy {d['busy_fraction']:.0%} of its calls ({d['bound']}-bound{gaps})")
    if e.verdict == "no gap":
        return lines + [f"  nothing named: {e.reason}"]
    shown = e.shown_parts()
    scale = max([abs(d) for _, _, d in shown] + [abs(e.unexplained_s or 0.0), 1e-12])
    lines.append("  waterfall (named functions, by stage; they and 'unexplained' add up to the gap):")
    for stage, label, delta in shown:
        bar = "█" * max(1, round(BAR * abs(delta) / scale))
        lines.append(f"    {stage:<11} {_ms(delta):>13}  {bar:<{BAR}}  {_short(label, 90)}")
    frac = e.unexplained_fraction
    share = f" ({frac:.0%} of the gap)" if frac is not None else ""
    bar = "░" * max(1, round(BAR * abs(e.unexplained_s or 0.0) / scale))
    lines.append(f"    {'unexplained':<11} {_ms(e.unexplained_s or 0.0):>13}  {bar:<{BAR}}  what no named function accounts for{share}")
    if e.operators:
        lines.append("  operators (own time, scaled; by name and input shapes):")
        for o in e.operators[:8]:
            only = f"  only in {o.only_in}" if o.only_in else ""
            lines.append(f"    {o.stage:<11} {_ms(o.delta_s):>13}  {_short(o.name + ' ' + o.shapes, 60)}{only}")
    return lines
