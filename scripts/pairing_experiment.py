"""How much a cell's ratio moves from run to run, measured sequentially and interleaved, on a quiet
machine and with a real competing process switching on and off (issue: numbers that hold on a
shared machine).

For each cell and condition the script measures the cell `--repeats` times back to back and
reports the ratio (runner ÷ reference, from the records' own paired or independent CI), its
spread over the repeats ((max − min) / median), how many records were marked interfered, and the
wall time. Conditions:

  quiet-sequential   nothing else running, runners one after the other
  quiet-interleaved  nothing else running, runners in alternating blocks (benchbed's default)
  busy-sequential    a CPU-bound competitor on for ~1 s, off for ~1 s, runners one after the other
  busy-interleaved   the same competitor, runners interleaved

Run it on an otherwise idle machine (it checks /proc/stat first and refuses when another process
is busy, unless --force):

    python scripts/pairing_experiment.py --repeats 6 --json docs/pairing-2026-11-30.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

from benchbed.engine import EngineConfig, Session, derive
from benchbed.measure import StopRule
from benchbed.measure.interference import cpu_snapshot, reading
from benchbed.spec import Case

COMPETITOR = r"""
import time, sys
end = time.time() + float(sys.argv[1])
while time.time() < end:
    t = time.time() + 1.0
    while time.time() < t:      # on: one core busy for a second
        pass
    time.sleep(1.0)             # off: a second of quiet
"""

CELLS = [
    ("text-classification", "synthetic:bert-tiny", 1, 16),
    ("fill-mask", "synthetic:bert-tiny", 4, 64),
    ("feature-extraction", "synthetic:bert-tiny", 4, 16),
    ("text-classification", "packaged:all-minilm-l6-v2", 1, 32),
]


def quiet_check(seconds: float = 2.0) -> float:
    """Cores other processes used over `seconds` (this script sleeping meanwhile)."""
    a = cpu_snapshot()
    time.sleep(seconds)
    return reading(a, cpu_snapshot()).others_cpu_cores or 0.0


def measure(session: Session, cells: list[tuple], pairing: str, repeats: int) -> dict:
    out = {}
    for task, model, bs, sl in cells:
        case = Case(task, model, runner="torch", batch_size=bs, seq_len=sl)
        ratios, busy, walls, medians, others = [], 0, [], [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            torch_r, pipe_r = derive(session, pairing=pairing).run_cell([case, case.pair("pipeline")])
            walls.append(time.perf_counter() - t0)
            rec = pipe_r.record
            if rec["status"] != "ok" or torch_r.record["status"] != "ok":
                continue
            ratios.append(rec["ref_ratio"])
            others.append(rec.get("others_cpu_cores"))
            medians.append((torch_r.record["lat_median_s"], rec["lat_median_s"]))
            busy += int(bool(rec.get("interfered"))) + int(bool(torch_r.record.get("interfered")))
        r = np.asarray(ratios)
        out[f"{task} {model} b{bs} s{sl}"] = {
            "ratios": [float(x) for x in r], "median_ratio": float(np.median(r)) if r.size else None,
            "spread": float((r.max() - r.min()) / np.median(r)) if r.size else None,
            "interfered_records": busy, "records": 2 * len(ratios), "wall_s": float(sum(walls)),
            "torch_median_ms": [1e3 * t for t, _ in medians], "others_cpu_cores": others,
        }
        print(f"  {pairing:<11} {task} {model} b{bs} s{sl}: ratio {np.median(r):.3f} spread "
              f"{100 * out[list(out)[-1]]['spread']:.1f}% interfered {busy}/{2 * len(ratios)}", file=sys.stderr)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=6, help="back-to-back measurements of each cell (default: 6)")
    ap.add_argument("--min-time", type=float, default=0.5, help="timed seconds per runner (default: 0.5)")
    ap.add_argument("--cells", type=int, default=len(CELLS), help=f"how many of the {len(CELLS)} cells (default: all)")
    ap.add_argument("--conditions", default="quiet-sequential,quiet-interleaved,busy-sequential,busy-interleaved")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--force", action="store_true", help="run even when the machine is not quiet")
    args = ap.parse_args()

    others = quiet_check()
    if others > 0.1 and not args.force:
        print(f"another process uses {others:.2f} cores: not a quiet machine (use --force to run anyway)",
              file=sys.stderr)
        return 2
    rule = StopRule(warmup=2, min_samples=5, min_time_s=args.min_time, max_time_s=4 * args.min_time + 2)
    session = Session("unused", EngineConfig(rule=rule, phase_calls=0), store=_Memory())
    cells = CELLS[: args.cells]
    results: dict = {"host": os.uname().nodename, "cores": os.cpu_count(), "quiet_check_cores": others,
                     "repeats": args.repeats, "min_time_s": args.min_time, "conditions": {}}
    for condition in args.conditions.split(","):
        load, pairing = condition.split("-")
        competitor = None
        if load == "busy":
            competitor = subprocess.Popen([sys.executable, "-c", COMPETITOR, "3600"])
        t0 = time.perf_counter()
        try:
            print(condition, file=sys.stderr)
            results["conditions"][condition] = {"cells": measure(session, cells, pairing, args.repeats)}
        finally:
            if competitor is not None:
                competitor.kill()
                competitor.wait()
        results["conditions"][condition]["wall_s"] = time.perf_counter() - t0
    quiet = results["conditions"].get("quiet-interleaved", {}).get("cells", {})
    for condition, data in results["conditions"].items():
        for cell, v in data["cells"].items():
            if cell in quiet and quiet[cell]["median_ratio"] and v["median_ratio"]:
                v["vs_quiet_interleaved"] = v["median_ratio"] / quiet[cell]["median_ratio"] - 1
    print(json.dumps(results, indent=2))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(results, fh, indent=2)
    return 0


class _Memory:
    def write(self, record: dict) -> str:
        return "memory"


if __name__ == "__main__":
    sys.exit(main())
