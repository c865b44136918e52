"""Quality of the regression gate, measured on this machine with real runs (a benchmark, not a test).

Each trial takes one case of the quick matrix (32 cases, both paths) and measures it in PASSES
short passes as "baseline" and PASSES passes as "current", alternating B C B C ..., so slow drift
of the host hits both sides alike. Each pass counts as a run (as nights do in `benchbed
compare`); `compare_frames` gives the verdict with the default settings (5% threshold, alpha
0.05, prediction interval over the runs' medians).

Every trial is judged twice from the same records: on raw latency (``--normalize none``) and on
latency ÷ the host yardstick timed in the same blocks (``--normalize host``).

A/A   — current is the same code: every flag is a false alarm.
Power — current carries a real injected slowdown (`--inject-slowdown`: extra tensor work worth a
        fraction of each call's own duration, inside the timed call); the fraction of trials
        flagged as a regression, per size, and the smallest size flagged in >= 95% of trials.

    python scripts/regress_quality.py                    # about 20 minutes on 2 cores
    python scripts/regress_quality.py --json quality.json

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
from benchbed.engine import EngineConfig, Session, derive
from benchbed.measure import StopRule
from benchbed.record import to_table
from benchbed.regress import CompareSettings, compare_frames


class MemoryStore:
    """Records kept in memory: the script measures, it does not need files."""

    def __init__(self) -> None:
        self.records: list[dict] = []

    def write(self, record: dict) -> str:
        self.records.append(record)
        return "memory"


def measure_pass(session: Session, case, run_id: str) -> dict:
    # a session of its own run id and store, sharing the cached models
    return derive(session, run_id=run_id, store=MemoryStore()).run_case(case).record


NORMS = ("none", "host")


def trial(base: Session, cur: Session, case, passes: int, tag: str, order: str = "alternate") -> dict[str, pd.Series]:
    """One trial, judged both ways from the same records: raw latency and ÷ the host yardstick.
    `order` "alternate" measures B C B C ...; "blocks" measures B B B B, then C C C C, as two
    nights are (nothing cancels drift between the sides)."""
    b_recs, c_recs = [], []
    if order == "blocks":
        b_recs = [measure_pass(base, case, f"{tag}-base{p}") for p in range(passes)]
        c_recs = [measure_pass(cur, case, f"{tag}-cur{p}") for p in range(passes)]
    for p in range(passes if order == "alternate" else 0):
        b_recs.append(measure_pass(base, case, f"{tag}-base{p}"))
        c_recs.append(measure_pass(cur, case, f"{tag}-cur{p}"))
    b, c = to_table(b_recs).to_pandas(), to_table(c_recs).to_pandas()
    return {n: compare_frames(b, c, CompareSettings(normalize=n)).iloc[0] for n in NORMS}


def figures(aa: list[dict], power: dict[float, list[dict]]) -> dict:
    """The gate's quality from the trials' rows of one way of judging."""
    false_alarms = [r for r in aa if r["verdict"] != "unchanged"]
    pw = {}
    for s, rows in power.items():
        flagged = sum(r["verdict"] == "regression" for r in rows)
        pw[f"{s:.2f}"] = {"flagged": flagged, "trials": len(rows), "rate": flagged / len(rows),
                          "median_measured_change": float(pd.Series([r["change"] for r in rows]).median())}
    detected = [float(s) for s, v in sorted(pw.items()) if v["rate"] >= 0.95]
    return {"aa_trials": len(aa), "aa_false_alarms": len(false_alarms), "aa_false_alarm_rate": len(false_alarms) / len(aa),
            "aa_false_alarm_cases": false_alarms,
            "aa_abs_change_p95": float(pd.Series([abs(r["change"]) for r in aa]).quantile(0.95)),
            "power": pw, "smallest_slowdown_detected_95pct": min(detected) if detected else None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--aa-trials", type=int, default=4, help="A/A trials per case (default: 4, so 128 in all)")
    ap.add_argument("--power-trials", type=int, default=2, help="trials per case and slowdown (default: 2)")
    ap.add_argument("--slowdowns", default="0.03,0.05,0.07,0.10", help="injected slowdowns to test")
    ap.add_argument("--passes", type=int, default=4, help="passes per side in a trial (default: 4)")
    ap.add_argument("--pass-time", type=float, default=0.1, help="timed seconds per pass (default: 0.1)")
    ap.add_argument("--order", choices=["alternate", "blocks"], default="alternate",
                    help="alternate: B C B C per trial (default); blocks: all baseline passes, then all current ones")
    ap.add_argument("--json", help="write the figures as JSON here")
    args = ap.parse_args()

    rule = StopRule(warmup=2, min_samples=5, min_time_s=args.pass_time, max_time_s=2 * args.pass_time + 0.5)
    base = Session("unused", EngineConfig(rule=rule, phase_calls=0), store=MemoryStore())
    cases = QUICK_MATRIX.cases()
    start = time.perf_counter()

    aa: dict[str, list[dict]] = {n: [] for n in NORMS}
    for k in range(args.aa_trials):
        for case in cases:
            rows = trial(base, base, case, args.passes, f"aa{k}", args.order)
            for n, row in rows.items():
                aa[n].append({"case": row["label"], "change": row["change"], "verdict": row["verdict"]})
        print(f"A/A {k + 1}/{args.aa_trials}: flags so far "
              + ", ".join(f"{n}: {sum(r['verdict'] != 'unchanged' for r in aa[n])}" for n in NORMS)
              + f" ({time.perf_counter() - start:.0f}s)", file=sys.stderr)
    power: dict[str, dict[float, list[dict]]] = {n: {} for n in NORMS}
    for s in [float(x) for x in args.slowdowns.split(",")]:
        slowed = derive(base, inject_slowdown=s)
        for k in range(args.power_trials):
            for case in cases:
                for n, row in trial(base, slowed, case, args.passes, f"p{s}-{k}", args.order).items():
                    power[n].setdefault(s, []).append({"change": row["change"], "verdict": row["verdict"]})
        print(f"slowdown {s:.0%}: flagged "
              + ", ".join(f"{n}: {sum(r['verdict'] == 'regression' for r in power[n][s])}/{len(power[n][s])}"
                          for n in NORMS) + f" ({time.perf_counter() - start:.0f}s)", file=sys.stderr)

    out = {
        "cases": len(cases), "passes_per_side": args.passes, "pass_time_s": args.pass_time, "order": args.order,
        "by_normalize": {n: figures(aa[n], power[n]) for n in NORMS},
        "wall_s": time.perf_counter() - start,
    }
    print(json.dumps(out, indent=2))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
