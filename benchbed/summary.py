"""Console output: a progress line per case and the torch-vs-pipeline comparison table.

Works on plain record dicts (from a live session or read back from parquet), so the table a
run prints and the one rebuilt from its files are the same.
"""

from __future__ import annotations

import sys
from typing import Any, Iterable, TextIO

from .measure import ratio_ci

__all__ = ["Pair", "pair_records", "format_table", "progress_line", "format_ms", "variant", "largest_fit"]

_KEY = ("task", "model", "device", "dtype", "batch_size", "seq_len")


def variant(rec: dict[str, Any], attn: bool = True) -> str:
    """The variant axes of a record (``attn=eager compiled``); `attn` False leaves the attention
    implementation out (a run that does not vary it need not repeat it on every line)."""
    parts = []
    if attn and isinstance(rec.get("attn_impl"), str):
        parts.append(f"attn={rec['attn_impl']}")
    if rec.get("compiled") is True or rec.get("compiled") == 1:
        parts.append("compiled")
    return " ".join(parts)


def _cell(rec: dict[str, Any]) -> tuple:
    # pair_id names the cell exactly (every parameter but the runner, variants included)
    return (rec["pair_id"],) if isinstance(rec.get("pair_id"), str) else tuple(rec[k] for k in _KEY)


def largest_fit(records: Iterable[dict[str, Any]]) -> list[tuple[dict[str, Any], int | None, int]]:
    """For each path of each cell whose batch-size sweep ran out of memory: (a record of it, the
    largest batch size that ran, the smallest that did not fit)."""
    sweeps: dict[tuple, dict[str, Any]] = {}
    for rec in records:
        key = tuple(rec[k] for k in ("task", "model", "device", "dtype", "seq_len", "runner")) + (variant(rec),)
        s = sweeps.setdefault(key, {"rec": rec, "ok": [], "oom": []})
        if rec["status"] == "ok":
            s["ok"].append(rec["batch_size"])
        elif rec["status"] == "oom":
            s["oom"].append(rec["batch_size"])
    out = []
    for s in sweeps.values():
        if s["oom"]:
            first_oom = min(s["oom"])
            fits = [b for b in s["ok"] if b < first_oom]
            out.append((s["rec"], max(fits) if fits else None, first_oom))
    return out


def format_ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    ms = seconds * 1e3
    return f"{ms:.3g}" if ms < 100 else f"{ms:.0f}"


class Pair:
    """The torch and pipeline records of one cell, and the pipeline ÷ torch latency ratio."""

    def __init__(self, torch_rec: dict[str, Any] | None, pipe_rec: dict[str, Any] | None) -> None:
        self.torch = torch_rec
        self.pipe = pipe_rec

    @property
    def any(self) -> dict[str, Any]:
        return self.torch or self.pipe  # type: ignore[return-value]

    def ratio(self) -> tuple[float, float, float] | None:
        t, p = self.torch, self.pipe
        if not t or not p or t["status"] != "ok" or p["status"] != "ok":
            return None
        return ratio_ci(list(p["samples_s"]), list(t["samples_s"]))


def pair_records(records: Iterable[dict[str, Any]]) -> list[Pair]:
    """Group records by cell, keeping first-seen order."""
    groups: dict[tuple, dict[str, dict[str, Any]]] = {}
    for rec in records:
        groups.setdefault(_cell(rec), {})[rec["runner"]] = rec
    return [Pair(g.get("torch"), g.get("pipeline")) for g in groups.values()]


def _lat(rec: dict[str, Any] | None) -> str:
    if rec is None:
        return "-"
    if rec["status"] != "ok":
        return rec["status"]
    return format_ms(rec["lat_median_s"])


def _ips(rec: dict[str, Any] | None) -> str:
    if rec is None or rec["status"] != "ok" or not rec.get("items_per_s"):
        return "-"
    return f"{rec['items_per_s']:.1f}"


def _parity(pair: Pair) -> str:
    recs = [r for r in (pair.torch, pair.pipe) if r is not None and r.get("parity_ok") is not None]
    if not recs:
        return "-"
    return "ok" if all(r["parity_ok"] for r in recs) else "MISMATCH"


def format_table(records: Iterable[dict[str, Any]]) -> str:
    """The comparison table: one row per cell, medians in ms, ratio with its 95% CI."""
    records = list(records)
    attn = len({r.get("attn_impl") for r in records if isinstance(r.get("attn_impl"), str)}) > 1
    header = ("task", "model", "device", "dtype", "variant", "batch", "seq", "torch ms", "pipeline ms",
              "torch items/s", "pipe items/s", "pipe/torch [95% CI]", "parity")
    rows = []
    for pair in pair_records(records):
        rec = pair.any
        r = pair.ratio()
        ratio = f"{r[0]:.2f}x [{r[1]:.2f}, {r[2]:.2f}]" if r else "-"
        rows.append((rec["task"], rec["model"], rec["device"], rec["dtype"], variant(rec, attn) or "-", str(rec["batch_size"]),
                     str(rec["seq_len"]), _lat(pair.torch), _lat(pair.pipe), _ips(pair.torch), _ips(pair.pipe),
                     ratio, _parity(pair)))
    if all(row[4] == "-" for row in rows):  # no variant axes in this run: keep the table narrow
        header = header[:4] + header[5:]
        rows = [row[:4] + row[5:] for row in rows]
        right = {4, 5, 6, 7, 8, 9}
    else:
        right = {5, 6, 7, 8, 9, 10}
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(header)]

    def fmt(row: tuple[str, ...]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()

    lines = [fmt(header), fmt(tuple("-" * w for w in widths))] + [fmt(row) for row in rows]
    fits = largest_fit(records)
    if fits:
        lines.append("")
        lines.append("largest batch that fit in memory:")
        for rec, fit, oom in fits:
            what = f"batch {fit}" if fit is not None else "none"
            lines.append(f"  {rec['task']} {rec['model']} {rec['runner']} {rec['device']} {rec['dtype']} "
                         f"{variant(rec, attn)} s{rec['seq_len']}: {what} (batch {oom} ran out of memory)"
                         .replace("  s", " s"))
    notes = _notes(records)
    return "\n".join(lines + notes)


def _notes(records: Iterable[dict[str, Any]]) -> list[str]:
    out = []
    for rec in records:
        if rec["status"] in ("skipped", "error", "oom", "timeout"):
            out.append(f"  {rec['status']}: {rec['task']} {rec['model']} {rec['runner']} {rec['device']} {rec['dtype']} "
                       f"b{rec['batch_size']} s{rec['seq_len']}: {rec['message']}")
        elif rec.get("parity_ok") is False and rec["runner"] == "torch":
            out.append(f"  PARITY MISMATCH: {rec['task']} {rec['model']} {rec['dtype']} b{rec['batch_size']} "
                       f"s{rec['seq_len']}: {rec['parity_detail']}")
    return ([""] if out else []) + out


def progress_line(index: int, total: int, rec: dict[str, Any], elapsed_s: float) -> str:
    """``[ 3/64] fill-mask minilm torch cpu fp32 b8 s128: 12.3 ms (n=41, parity ok) 35s``."""
    label = (f"{rec['task']} {rec['model']} {rec['runner']} {rec['device']} {rec['dtype']} "
             f"{variant(rec, False) + ' ' if variant(rec, False) else ''}b{rec['batch_size']} s{rec['seq_len']}")
    if rec.get("pass_index"):
        label += f" (pass {rec['pass_index'] + 1})"
    if rec["status"] == "ok":
        parity = "parity ok" if rec.get("parity_ok") else "PARITY MISMATCH"
        what = f"{format_ms(rec['lat_median_s'])} ms (n={rec['n_samples']}, {parity})"
        if rec.get("compile_s"):
            what += f", compiled in {rec['compile_s']:.1f}s"
    else:
        what = f"{rec['status']}: {rec['message']}"
    width = len(str(total))
    return f"[{index:>{width}}/{total}] {label}: {what}  {elapsed_s:.0f}s"


def print_progress(index: int, total: int, rec: dict[str, Any], elapsed_s: float, stream: TextIO = sys.stderr) -> None:
    from .display import clip, console_safe

    print(console_safe(clip(progress_line(index, total, rec, elapsed_s), 400), keep_newlines=False), file=stream,
          flush=True)
