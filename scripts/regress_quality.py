"""Quality of the regression gate, measured on this machine with real runs (a benchmark, not a test).

Each trial takes one cell of the quick matrix (bert-tiny, both paths timed interleaved) and
measures it in PASSES short passes as "baseline" and PASSES passes as "current", either alternating
B C B C ... (slow drift of the host hits both sides alike) or in blocks B B B B C C C C (as two
nights are). Each pass counts as a run (as nights do in `benchbed compare`); `compare_frames` gives
the verdict with the default settings (alpha 0.05, prediction interval over the runs).

Every trial is judged three ways from the same records: raw latency (``--normalize none``, 5%),
latency ÷ the host yardstick timed in the same blocks (``--normalize host``, 5%), and each
runner's per-block ratio to the reference (``--metric ratio``, 3%).

A/A    — current is the same code: every flag is a false alarm.
Power  — current carries a real injected slowdown (`--inject-slowdown`: extra tensor work worth a
         fraction of each call's own duration, inside the timed call): on every runner for the
         latency sizes (the ratio does not move), on the pipeline alone for the ratio sizes.
MDE    — each judged case states the smallest change it could detect with 95% power; of the trials
         whose MDE was below the injected change, the fraction detected.
Nights — ``--nights N``: one cell measured N times in a row, the pipeline 5% slower from night
         ``--step-night``; `history --metric ratio`'s verdict after each night.

    python scripts/regress_quality.py --json quality.json                  # about 25 minutes on 2 cores
    python scripts/regress_quality.py --order blocks --json blocks.json
    python scripts/regress_quality.py --nights 30 --aa-trials 0 --power-trials 0 --json nights.json

What alternation removes, and what nightly comparisons still face on a drifting host, is written
down in docs/regression-quality.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import pandas as pd

from benchbed import QUICK_MATRIX
from benchbed.engine import EngineConfig, Session, cells_of_cases, derive
from benchbed.measure import StopRule
from benchbed.record import to_table
from benchbed.regress import CompareSettings, compare_frames
from benchbed.regress.thresholds import Thresholds


class MemoryStore:
    """Records kept in memory: the script measures, it does not need files."""

    def __init__(self) -> None:
        self.records: list[dict] = []

    def write(self, record: dict) -> str:
        self.records.append(record)
        return "memory"


def measure_pass(session: Session, cell: list, run_id: str) -> list[dict]:
    # a session of its own run id and store, sharing the cached models
    return [r.record for r in derive(session, run_id=run_id, store=MemoryStore()).run_cell(cell)]


#: The three ways every trial is judged: (name, settings, latency or ratio sizes it is powered by).
WAYS = {"none": CompareSettings(normalize="none"), "host": CompareSettings(normalize="host"),
        "ratio": CompareSettings(metric="ratio", thresholds=Thresholds(0.03))}


def trial(base: Session, cur: Session, cell: list, passes: int, tag: str, order: str = "alternate",
          ) -> dict[str, list[pd.Series]]:
    """One trial, judged every way from the same records. `order` "alternate" measures B C B C ...;
    "blocks" measures B B B B, then C C C C, as two nights are (nothing cancels drift between them)."""
    b_recs, c_recs = [], []
    if order == "blocks":
        for p in range(passes):
            b_recs += measure_pass(base, cell, f"{tag}-base{p}")
        for p in range(passes):
            c_recs += measure_pass(cur, cell, f"{tag}-cur{p}")
    for p in range(passes if order == "alternate" else 0):
        b_recs += measure_pass(base, cell, f"{tag}-base{p}")
        c_recs += measure_pass(cur, cell, f"{tag}-cur{p}")
    b, c = to_table(b_recs).to_pandas(), to_table(c_recs).to_pandas()
    out = {}
    for way, settings in WAYS.items():
        frame = compare_frames(b, c, settings)
        out[way] = [row for _, row in frame.iterrows()]
    return out


def _row(row: pd.Series) -> dict:
    return {"case": row["label"], "change": row.get("change"), "verdict": row["verdict"], "mde": row.get("mde"),
            "reason": row.get("reason")}


def figures(aa: list[dict], power: dict[float, list[dict]]) -> dict:
    """The gate's quality from the trials' rows of one way of judging."""
    judged = [r for r in aa if r["verdict"] != "unjudged"]
    false_alarms = [r for r in judged if r["verdict"] in ("regression", "improvement")]
    pw = {}
    for s, rows in power.items():
        rows = [r for r in rows if r["verdict"] != "unjudged"]
        flagged = sum(r["verdict"] == "regression" for r in rows)
        powered = [r for r in rows if r["mde"] is not None and r["mde"] == r["mde"] and r["mde"] < s]
        pw[f"{s:.2f}"] = {"flagged": flagged, "trials": len(rows), "rate": flagged / len(rows) if rows else None,
                          "median_measured_change": float(pd.Series([r["change"] for r in rows]).median())
                          if rows else None,
                          "mde_below_size": len(powered),
                          "detected_when_mde_below_size": (sum(r["verdict"] == "regression" for r in powered)
                                                           / len(powered)) if powered else None}
    detected = [float(s) for s, v in sorted(pw.items()) if v["rate"] is not None and v["rate"] >= 0.95]
    return {"aa_trials": len(judged), "aa_unjudged": len(aa) - len(judged), "aa_false_alarms": len(false_alarms),
            "aa_false_alarm_rate": len(false_alarms) / len(judged) if judged else None,
            "aa_underpowered": sum(r["verdict"] == "underpowered" for r in judged),
            "aa_false_alarm_cases": false_alarms,
            "aa_abs_change_p95": float(pd.Series([abs(r["change"]) for r in judged]).quantile(0.95)) if judged else None,
            "power": pw, "smallest_change_detected_95pct": min(detected) if detected else None}


def nights(base: Session, cell: list, n: int, step: int, size: float) -> dict:
    """`n` nights of one cell, the pipeline `size` slower from night `step` (1-based); after each
    night, `history --metric ratio`'s gate (a confirmed regression starting in the newest 2 runs)."""
    from benchbed.regress.history import HistorySettings, find_change_points

    slowed = derive(base, inject_slowdown=size, inject_runner="pipeline")
    recs: list[dict] = []
    verdicts = []
    for night in range(1, n + 1):
        recs += measure_pass(slowed if night >= step else base, cell, f"night{night:02d}")
        df = to_table(recs).to_pandas()
        points, _, runs = find_change_points(df, HistorySettings(metric="ratio", thresholds=Thresholds(0.03)))
        gating = [p for p in points if p.kind == "regression" and p.index >= len(runs) - 2]
        verdicts.append({"night": night, "alarm": bool(gating),
                         "change_points": [{"run_index": p.index + 1, "change": p.change} for p in points]})
    first = next((v["night"] for v in verdicts if v["alarm"]), None)
    return {"nights": n, "step_night": step, "size": size, "first_alarm_night": first,
            "alarms_before_step": sum(v["alarm"] for v in verdicts if v["night"] < step), "by_night": verdicts}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--aa-trials", type=int, default=3, help="A/A trials per cell (default: 3, so 48 in all)")
    ap.add_argument("--power-trials", type=int, default=1, help="trials per cell and size (default: 1)")
    ap.add_argument("--slowdowns", default="0.05,0.10", help="latency slowdowns, every runner (default: 0.05,0.10)")
    ap.add_argument("--ratio-changes", default="0.02,0.03,0.05",
                    help="ratio changes, the pipeline alone (default: 0.02,0.03,0.05)")
    ap.add_argument("--passes", type=int, default=4, help="passes per side in a trial (default: 4)")
    ap.add_argument("--pass-time", type=float, default=0.1, help="timed seconds per runner and pass (default: 0.1)")
    ap.add_argument("--order", choices=["alternate", "blocks"], default="alternate",
                    help="alternate: B C B C per trial (default); blocks: all baseline passes, then all current ones")
    ap.add_argument("--nights", type=int, default=0, help="also simulate N nights of one cell (default: 0)")
    ap.add_argument("--step-night", type=int, default=20, help="the first slowed night (default: 20)")
    ap.add_argument("--cells", type=int, default=16, help="cells of the quick matrix to use (default: all 16)")
    ap.add_argument("--json", help="write the figures as JSON here")
    args = ap.parse_args()

    rule = StopRule(warmup=2, min_samples=5, min_time_s=args.pass_time, max_time_s=2 * args.pass_time + 0.5)
    base = Session("unused", EngineConfig(rule=rule, phase_calls=0), store=MemoryStore())
    cells = cells_of_cases(QUICK_MATRIX.cases())[:args.cells]
    start = time.perf_counter()

    def log(text: str) -> None:
        print(f"{text} ({time.perf_counter() - start:.0f}s)", file=sys.stderr, flush=True)

    aa: dict[str, list[dict]] = {w: [] for w in WAYS}
    for k in range(args.aa_trials):
        for cell in cells:
            for way, rows in trial(base, base, cell, args.passes, f"aa{k}", args.order).items():
                aa[way] += [_row(r) for r in rows]
        log(f"A/A {k + 1}/{args.aa_trials}: flags so far " + ", ".join(
            f"{w}: {sum(r['verdict'] in ('regression', 'improvement') for r in aa[w])}" for w in WAYS))
    power: dict[str, dict[float, list[dict]]] = {w: {} for w in WAYS}
    sizes = [(float(x), None) for x in args.slowdowns.split(",") if x] + \
            [(float(x), "pipeline") for x in args.ratio_changes.split(",") if x]
    for size, runner in sizes:
        slowed = derive(base, inject_slowdown=size, inject_runner=runner)
        ways = ("ratio",) if runner else ("none", "host")
        for k in range(args.power_trials):
            for cell in cells:
                rows = trial(base, slowed, cell, args.passes, f"p{size}-{runner}-{k}", args.order)
                for way in ways:
                    power[way].setdefault(size, []).extend(_row(r) for r in rows[way]
                                                           if runner is None or r["runner"] == runner)
        log(f"{'ratio' if runner else 'latency'} change {size:.0%}: flagged " + ", ".join(
            f"{w}: {sum(r['verdict'] == 'regression' for r in power[w][size])}/{len(power[w][size])}" for w in ways))
    out = {
        "cells": len(cells), "passes_per_side": args.passes, "pass_time_s": args.pass_time, "order": args.order,
        "by_way": {w: figures(aa[w], power[w]) for w in WAYS if aa[w] or power[w]},
    }
    if args.nights:
        out["nights"] = nights(base, cells[0], args.nights, args.step_night, 0.05)
        log(f"nights: first alarm at night {out['nights']['first_alarm_night']}, "
            f"{out['nights']['alarms_before_step']} before night {args.step_night}")
    out["wall_s"] = time.perf_counter() - start
    print(json.dumps(out, indent=2, default=str))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
