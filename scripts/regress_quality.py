"""Quality of the regression gate, measured on this machine with real runs (a benchmark, not a test).

A/A   — the same code on the same machine, run ROUNDS times over the quick matrix (32 cases);
        each round from the fourth on is compared with the rounds before it, as `benchbed compare`
        does night after night. Every flag is a false alarm.
Power — rounds with a real injected slowdown (`--inject-slowdown`: busy work worth a fraction of
        each call's own duration, inside the timed call) at several sizes, each compared with the
        A/A rounds as baseline. Reports the fraction of cases flagged per size and the smallest
        size flagged in at least 95% of cases.

    python scripts/regress_quality.py                  # about 6 minutes on 2 cores
    python scripts/regress_quality.py --json quality.json

Run it on a quiet machine: a second workload on one of two cores is exactly the kind of
between-run noise the gate must survive, but it is not the machine's own noise.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import pandas as pd

from benchbed import QUICK_MATRIX
from benchbed.engine import EngineConfig, Session
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


def run_round(session: Session, cases, tag: str) -> pd.DataFrame:
    store = MemoryStore()
    session.store = store
    session.run_id = tag
    for case in cases:
        session.run_case(case)
    return to_table(store.records).to_pandas()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7, help="A/A rounds (default: 7)")
    ap.add_argument("--slowdowns", default="0.03,0.05,0.07,0.10,0.15", help="injected slowdowns to test")
    ap.add_argument("--repeats", type=int, default=2, help="rounds per slowdown (default: 2)")
    ap.add_argument("--min-time", type=float, default=0.3, help="timed seconds per case (default: 0.3)")
    ap.add_argument("--json", help="write the figures as JSON here")
    args = ap.parse_args()

    rule = StopRule(warmup=2, min_samples=5, min_time_s=args.min_time, max_time_s=2 * args.min_time + 0.5)
    base_session = Session("unused", EngineConfig(rule=rule, phase_calls=0), store=MemoryStore())
    cases = QUICK_MATRIX.cases()
    settings = CompareSettings()
    start = time.perf_counter()

    rounds = []
    for r in range(args.rounds):
        rounds.append(run_round(base_session, cases, f"aa{r}"))
        print(f"A/A round {r + 1}/{args.rounds} done ({time.perf_counter() - start:.0f}s)", file=sys.stderr)
    aa_checks, aa_flags, aa_flags_single = 0, 0, 0
    aa_details: list[dict] = []
    for r in range(3, args.rounds):
        history = pd.concat(rounds[max(0, r - 5):r])
        cmp = compare_frames(history, rounds[r], settings)
        aa_checks += len(cmp)
        aa_flags += int((cmp["verdict"] != "unchanged").sum())
        for _, row in cmp[cmp["verdict"] != "unchanged"].iterrows():
            aa_details.append({"round": r, "case": row["label"], "change": row["change"], "p": row["p_value"],
                               "between_run_sd": row["between_run_sd"], "baseline_runs": row["baseline_runs"]})
        single = compare_frames(rounds[r - 1], rounds[r], settings)  # one-night baseline, for contrast
        aa_flags_single += int((single["verdict"] != "unchanged").sum())

    baseline = pd.concat(rounds[-5:])
    power = {}
    for s in [float(x) for x in args.slowdowns.split(",")]:
        slowed = base_session.with_config(inject_slowdown=s)
        flagged, total, changes = 0, 0, []
        for k in range(args.repeats):
            cur = run_round(slowed, cases, f"slow{s}-{k}")
            cmp = compare_frames(baseline, cur, settings)
            flagged += int((cmp["verdict"] == "regression").sum())
            total += len(cmp)
            changes += list(cmp["change"])
        power[s] = {"flagged": flagged, "cases": total, "rate": flagged / total,
                    "median_measured_change": float(pd.Series(changes).median())}
        print(f"slowdown {s:.0%}: {flagged}/{total} flagged ({time.perf_counter() - start:.0f}s)", file=sys.stderr)

    detected = [s for s, v in sorted(power.items()) if v["rate"] >= 0.95]
    out = {
        "machine_note": "figures from this machine; rerun the script to reproduce",
        "cases_per_round": len(cases), "aa_rounds": args.rounds,
        "aa_comparisons": aa_checks, "aa_false_alarms": aa_flags, "aa_false_alarm_rate": aa_flags / max(1, aa_checks),
        "aa_false_alarms_one_night_baseline": aa_flags_single, "aa_false_alarm_cases": aa_details,
        "power": {f"{s:.2f}": v for s, v in power.items()},
        "smallest_slowdown_detected_95pct": min(detected) if detected else None,
        "wall_s": time.perf_counter() - start,
    }
    print(json.dumps(out, indent=2))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
