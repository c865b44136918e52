"""Console output: a progress line per case and the comparison table (every runner of a cell
against its reference runner).

Works on plain record dicts (from a live session or read back from parquet), so the table a
run prints and the one rebuilt from its files are the same.
"""

from __future__ import annotations

import sys
from typing import Any, Iterable, TextIO

from .ratios import group_cells, runner_order
from .display import fmt_ms
from .scenarios import DEFAULT_SCENARIO, get_scenario, scenario_of_record

__all__ = ["precision_lines", "format_table", "progress_line", "print_progress", "variant", "largest_fit", "scenario_of",
           "goodput", "goodput_lines"]


def scenario_of(rec: dict[str, Any]) -> str:
    """``latency`` (also for records older than the scenario column), or the scenario's own tag
    (``dataset n1000 w0``, ``server 10/s``); a scenario not registered here is its name."""
    import json

    name = scenario_of_record(rec)
    try:
        opts = json.loads(rec.get("options") or "{}")
    except (TypeError, ValueError):
        opts = {}
    scenario = _declared(name)
    return scenario.tag(opts if isinstance(opts, dict) else {}) if scenario is not None else name


def _declared(name: str) -> Any:
    """The registered scenario `name`, or None (records of a plugin that is not loaded)."""
    try:
        return get_scenario(name)
    except KeyError:
        return None


def variant(rec: dict[str, Any], attn: bool = True) -> str:
    """The variant axes of a record (``attn=eager compiled``, ``accum=2 workers=1`` for training); `attn` False leaves the attention
    implementation out (a run that does not vary it need not repeat it on every line)."""
    parts = []
    if attn and isinstance(rec.get("attn_impl"), str):
        parts.append(f"attn={rec['attn_impl']}")
    if rec.get("compiled") is True or rec.get("compiled") == 1:
        parts.append("compiled")
    if isinstance(rec.get("grad_accum"), (int, float)) and rec["grad_accum"] == rec["grad_accum"]:  # training
        if rec["grad_accum"] != 1:
            parts.append(f"accum={int(rec['grad_accum'])}")
        if rec.get("workers"):
            parts.append(f"workers={int(rec['workers'])}")
    return " ".join(parts)


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


def _lat(rec: dict[str, Any] | None) -> str:
    if rec is None:
        return "-"
    if rec["status"] != "ok":
        return rec["status"]
    return fmt_ms(rec["lat_median_s"])


def format_table(records: Iterable[dict[str, Any]]) -> str:
    """The comparison table: one row per cell, every runner's median in ms, and each runner's
    ratio to the reference runner with its 95% CI (from paired blocks when timed interleaved)."""
    records = list(records)
    attn = len({r.get("attn_impl") for r in records if isinstance(r.get("attn_impl"), str)}) > 1
    cells = group_cells(records)
    reference, runners = runner_order(cells)
    scenarios = any(scenario_of_record(r) != DEFAULT_SCENARIO for r in records)
    others = [r for r in runners if r != reference]
    header = (("task", "model", "device", "dtype", "variant", "batch", "seq") + tuple(f"{r} ms" for r in runners)
              + tuple(f"{_short(r)}/{_short(reference)} [95% CI]" for r in others) + ("parity",))
    rows = []
    for cell in cells:
        rec = cell.any
        ratios = []
        for r in others:
            q = cell.ratio(r) if cell.reference == reference else None
            mark = " suspect" if cell.suspect(r, q) else ""
            ratios.append(f"{q[0]:.2f}x [{q[1]:.2f}, {q[2]:.2f}]{mark}" if q else "-")
        ok, _ = cell.parity()
        parity = "-" if ok is None else ("ok" if ok else "MISMATCH")
        if any(r.get("interfered") is True for r in cell.records.values()):
            parity += "  ! interfered"
        what = " ".join(x for x in (variant(rec, attn), scenario_of(rec) if scenarios else "") if x)
        rows.append((rec["task"], rec["model"], rec["device"], rec["dtype"], what or "-",
                     str(rec["batch_size"]), str(rec["seq_len"]), *(_lat(cell.records.get(r)) for r in runners),
                     *ratios, parity))
    keep = [i for i in range(len(header)) if i != 4 or any(row[4] != "-" for row in rows)]
    header = tuple(header[i] for i in keep)  # no variant axes in this run: keep the table narrow
    rows = [tuple(row[i] for i in keep) for row in rows]
    left = {0, 1, 2, 3} | ({4} if "variant" in header else set())
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(header)]

    def fmt(row: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) if i in left or i == len(row) - 1 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(row, widths))).rstrip()

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
    lines += goodput_lines(records)
    notes = _notes(records)
    return "\n".join(lines + notes)


def goodput(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per runner of each server-scenario sweep (same task, model, device, dtype, batching): the
    highest offered rate that met the SLO (``slo_met``), and the rates tried."""
    import json

    sweeps: dict[tuple, dict[str, Any]] = {}
    for rec in records:
        scenario = _declared(scenario_of_record(rec))
        if scenario is None or scenario.sample != "request" or rec.get("status") != "ok":
            continue
        opts = json.loads(rec.get("options") or "{}")
        source = rec.get("inputs_source")
        key = (rec["task"], rec["model"], rec["device"], rec["dtype"], int(rec["seq_len"]), int(rec["batch_size"]),
               opts.get("max_batch"),
               opts.get("max_wait_ms"), source if isinstance(source, str) else None, rec["runner"], scenario.name,
               opts.get("server_workers"), opts.get("serve"), opts.get("replicas"))
        where = "" if scenario.name == "server" else " " + scenario.tag({k: v for k, v in opts.items() if k != "rate"})
        s = sweeps.setdefault(key, {"rec": rec, "rates": [], "met": [], "slo_ms": rec.get("slo_ms"), "where": where})
        probes = rec.get("probe_rates")
        if probes is not None and not isinstance(probes, float) and len(probes):  # --rate auto: the search's probes
            s["rates"] += [float(r) for r in probes]
            s["met"] += [float(r) for r, ok in zip(probes, rec["probe_met"]) if ok]
            continue
        s["rates"].append(rec["offered_rate"])
        if rec.get("slo_met") is True:
            s["met"].append(rec["offered_rate"])
    out = []
    for s in sweeps.values():
        rates = sorted(s["rates"])
        # sustainable: the highest rate met with every lower rate met too (a lucky high point
        # above a missed one is not a sustainable rate)
        best = None
        for r in rates:
            if r not in s["met"]:
                break
            best = r
        out.append({"rec": s["rec"], "runner": s["rec"]["runner"], "sustainable_rate": best, "rates": rates,
                    "slo_ms": s["slo_ms"], "where": s["where"]})
    return out


def goodput_lines(records: Iterable[dict[str, Any]]) -> list[str]:
    rows = goodput(records)
    if not rows:
        return []
    names = sorted({g["where"].split()[0] if g["where"] else "server" for g in rows}, key=lambda n: n != "server")
    lines = ["", f"{' and '.join(names)} scenario{'s' if len(names) > 1 else ''}: highest offered rate whose p99 met the "
                 f"SLO (every lower rate met it too):"]
    for g in rows:
        rec = g["rec"]
        rate = f"{g['sustainable_rate']:.4g} req/s" if g["sustainable_rate"] is not None else "none of the rates"
        lines.append(f"  {rec['task']} {rec['model']} {rec['device']} {rec['dtype']} b{rec['batch_size']} "
                     f"s{rec['seq_len']} {g['runner']}{g['where']}: {rate} (p99 <= {g['slo_ms']:g} ms; tried "
                     f"{', '.join(f'{r:.4g}' for r in g['rates'])})")
        tail = rec.get("service_p99_s")
        if tail is not None and tail == tail and g["slo_ms"] and tail * 1000.0 > 0.5 * g["slo_ms"]:
            lines.append(f"    ! the service time alone has p99 {tail * 1000.0:.3g} ms, over half the SLO: whether a rate "
                         f"meets it is decided by a few slow calls as much as by load (a probe of few requests more so)")
    return lines


def _short(runner: str) -> str:
    """Column-friendly runner names (the table keeps pipeline ÷ torch as ``pipe/torch``)."""
    return {"pipeline": "pipe", "onnxruntime": "ort"}.get(runner, runner)


def _notes(records: Iterable[dict[str, Any]]) -> list[str]:
    out = []
    records = list(records)
    hit = {r.get("interference") for r in records if r.get("interfered") is True}
    if hit:
        out.append(f"  ! {len([r for r in records if r.get('interfered') is True])} record(s) measured while the "
                   f"machine was busy; their times and ratios are not to be trusted: {'; '.join(sorted(hit))[:300]}")
    for rec in records:
        if rec["status"] in ("skipped", "error", "oom", "timeout"):
            out.append(f"  {rec['status']}: {rec['task']} {rec['model']} {rec['runner']} {rec['device']} {rec['dtype']} "
                       f"b{rec['batch_size']} s{rec['seq_len']}: {rec['message']}")
        elif rec.get("parity_ok") is False:
            out.append(f"  PARITY MISMATCH: {rec['task']} {rec['model']} {rec['runner']} {rec['dtype']} "
                       f"b{rec['batch_size']} s{rec['seq_len']}: {rec['parity_detail']}")
    return ([""] if out else []) + out


def progress_line(index: int, total: int, rec: dict[str, Any], elapsed_s: float) -> str:
    """``[ 3/64] fill-mask minilm torch cpu fp32 b8 s128: 12.3 ms (n=41, parity ok) 35s``."""
    label = (f"{rec['task']} {rec['model']} {rec['runner']} {rec['device']} {rec['dtype']} "
             f"{variant(rec, False) + ' ' if variant(rec, False) else ''}b{rec['batch_size']} s{rec['seq_len']}")
    if scenario_of_record(rec) != DEFAULT_SCENARIO:
        label += f" {scenario_of(rec)}"
    if rec.get("pass_index"):
        label += f" (pass {rec['pass_index'] + 1})"
    if rec["status"] == "ok":
        parity = ("reference" if rec.get("parity_ok") is None and rec.get("runner") == rec.get("reference")
                  else "parity not checked" if rec.get("parity_ok") is None
                  else "parity ok" if rec.get("parity_ok") else "PARITY MISMATCH")
        what = f"{fmt_ms(rec['lat_median_s'])} ms (n={rec['n_samples']}, {parity})"
        scenario = _declared(scenario_of_record(rec))
        own = scenario.summary(rec, parity) if scenario is not None and scenario.summary is not None else None
        what = own or what
        if rec.get("compile_s"):
            what += f", compiled in {rec['compile_s']:.1f}s"
    else:
        what = f"{rec['status']}: {rec['message']}"
    if rec.get("interfered") is True:
        what += f"  INTERFERED: {rec.get('interference')}"
    width = len(str(total))
    return f"[{index:>{width}}/{total}] {label}: {what}  {elapsed_s:.0f}s"


def print_progress(index: int, total: int, rec: dict[str, Any], elapsed_s: float, stream: TextIO = sys.stderr,
                   suffix: str = "") -> None:
    from .display import clip, console_safe

    print(console_safe(clip(progress_line(index, total, rec, elapsed_s) + suffix, 400), keep_newlines=False),
          file=stream, flush=True)


def _pct(half: float) -> str:
    """A half-width as ``±1.2%``, or ``no 95% CI`` where there were too few blocks for one."""
    return f"±{100 * half:.1f}%" if half != float("inf") else "no 95% CI"


def precision_lines(pooled: Iterable[dict[str, Any]], shown: int = 8) -> list[str]:
    """What the ratio rule reached, from records pooled over a case's passes (`pool_records`, as
    the table takes them): each ratio's CI half-width against its target, and the ratios
    that fell short with about how much longer they would need (the half-width shrinks with the
    square root of the blocks)."""
    from .measure.paired import MIN_CI_BLOCKS, blocks_factor, blocks_half_width

    def number(v: Any) -> float | None:
        return float(v) if isinstance(v, (int, float)) and v == v else None

    rows = []
    for r in pooled:
        blocks = r.get("ratio_samples")
        if r.get("stop_rule") == "ratio" and blocks is not None and len(blocks) and \
                number(r.get("ratio_ci_target")) is not None:
            rows.append({**r, "ratio_ci_half": blocks_half_width(list(blocks)), "n_blocks": len(blocks)})
    if not rows:
        return []
    halves = sorted(float(r["ratio_ci_half"]) for r in rows)
    short = [r for r in rows if float(r["ratio_ci_half"]) > float(r["ratio_ci_target"]) * 1.0001]
    target = float(rows[0]["ratio_ci_target"])
    finite = [h for h in halves if h != float("inf")]
    few = len(halves) - len(finite)
    lines = [f"ratio precision: {len(rows) - len(short)} of {len(rows)} ratios within ±{100 * target:g}% "
             f"(half-width median {_pct(halves[len(halves) // 2])}"
             + (f", widest ±{100 * finite[-1]:.1f}%" if finite else "")
             + (f"; {few} with fewer than {MIN_CI_BLOCKS} blocks, too few for a 95% CI" if few else "") + ")"]
    for r in sorted(short, key=lambda r: -float(r["ratio_ci_half"]))[:shown]:
        half, n = float(r["ratio_ci_half"]), int(r["n_blocks"])
        need = blocks_factor(list(r["ratio_samples"]), float(r["ratio_ci_target"]))
        took = number(r.get("measure_s"))
        more = f", about {need * took:.0f}s of timing (--max-time, --budget)" if took else ""
        reached = f"{n} blocks, too few for a 95% CI" if half == float("inf") else _pct(half)
        what = (f"would need {'at least' if half == float('inf') else 'about'} {need:.1f}x the blocks{more}"
                if need <= 100 else
                "out of reach here: over 100x the blocks (a busy or drifting machine?)")
        lines.append(f"  short: {r['task']} {r['model']} {r['dtype']} b{r['batch_size']} s{r['seq_len']} "
                     f"{r['runner']}: {reached} ({r.get('stop_reason')}); {what}")
    if len(short) > shown:
        lines.append(f"  … and {len(short) - shown} more")
    return lines
