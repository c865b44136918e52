"""Which block size gives the narrowest ratio CI per second for slow calls (issue #31, item 4).

A cell of calls around half a second (MiniLM b8 s128 on 2 cores) is timed for a fixed time with
blocks of K calls per runner (K = 1, 2, 3), alternating the K values round by round so the host's
drift falls on all of them alike; each run reports the pipeline ÷ torch ratio's 95% CI half-width.
Usage::

    python scripts/slow_blocks.py --rounds 3 --seconds 12 [--task feature-extraction] [--json out.json]

Nothing else may run on the machine (check /proc/stat): the figures are what the block size buys.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=12.0, help="timed seconds per runner and run")
    p.add_argument("--task", default="feature-extraction")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--sizes", default="1,2,3")
    p.add_argument("--json", default=None)
    a = p.parse_args()

    from benchbed import Case, EngineConfig, Session, StopRule
    from benchbed.execute.drivers.latency import LatencyDriver
    from benchbed.measure.paired import ratio_half_width

    sizes = [int(x) for x in a.sizes.split(",")]
    # a fixed time (an unreachable target): every block size gets the same seconds
    rule = StopRule(min_time_s=a.seconds, max_time_s=a.seconds, ratio_ci=1e-6)
    rows = []
    with tempfile.TemporaryDirectory(prefix="benchbed-slow-blocks-") as tmp:
        session = Session(tmp, EngineConfig(rule=rule, phase_calls=1))
        cases = [Case(task=a.task, model="minilm", batch_size=a.batch_size, seq_len=a.seq_len, runner=r)
                 for r in ("torch", "pipeline")]
        for rnd in range(a.rounds):
            for k in (sizes if rnd % 2 == 0 else sizes[::-1]):
                LatencyDriver.block_calls = k
                out = session.run([c.canonical() for c in cases], passes=[rnd * len(sizes) + sizes.index(k)])
                rec = next(r.record for r in out if r.case.runner == "pipeline")
                half = ratio_half_width(rec["ref_ratio"], rec["ref_ratio_low"], rec["ref_ratio_high"])
                blocks = len(rec.get("ratio_samples") or [])
                rows.append({"round": rnd, "block_calls": k, "ratio": rec["ref_ratio"], "half": half,
                             "blocks": blocks, "measure_s": rec["measure_s"], "interfered": rec.get("interfered")})
                print(f"round {rnd} K={k}: ratio {rec['ref_ratio']:.3f} ±{100 * half:.2f}% over {blocks} blocks "
                      f"in {rec['measure_s']:.1f}s{'  INTERFERED' if rec.get('interfered') else ''}", flush=True)
        session.close()
    for k in sizes:
        hs = sorted(r["half"] for r in rows if r["block_calls"] == k)
        print(f"K={k}: half-width median ±{100 * hs[len(hs) // 2]:.2f}% (runs: "
              f"{', '.join(f'{100 * h:.2f}' for h in hs)})")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
