"""Coverage of the paired ratio's CI under the ratio stop rule, by A/A simulation on a fake clock.

Two identical runners (10 ms calls, lognormal noise, 3% of calls 1.5x slower, and a host whose
speed drifts as a random walk shared by both) are timed by `measure_interleaved` until the ratio
rule stops them; an A/A cell's true ratio is 1, so the share of reported 95% CIs holding 1 is
the coverage. Usage::

    python scripts/stop_rule_coverage.py --cells 1000 [--ratio-ci 0.02] [--sigma 0.05]

prints the coverage, the median blocks and half-width reached, and the stop reasons. The test
suite runs the same function (tests/test_ratio_stop.py).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from typing import Any

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from benchbed.measure.paired import measure_interleaved, paired_ratio_ci, ratio_half_width  # noqa: E402
from benchbed.measure.timer import StopRule  # noqa: E402


def simulate_aa(cells: int, ratio_ci: float = 0.02, sigma: float = 0.05, drift: float = 0.003,
                max_time_s: float = 10.0, seed: int = 0) -> dict[str, Any]:
    """Run `cells` simulated A/A cells; their coverage, blocks, half-widths and stop reasons."""
    covered, blocks, halves, reasons = 0, [], [], {}
    for c in range(cells):
        rng = np.random.default_rng(seed + c)
        now, level = [0.0], [1.0]

        def call() -> None:
            level[0] *= math.exp(rng.normal(0, drift))
            spike = 1.5 if rng.random() < 0.03 else 1.0
            now[0] += 0.010 * level[0] * math.exp(rng.normal(0, sigma)) * spike

        rule = StopRule(warmup=1, min_samples=5, min_time_s=0.1, max_time_s=max_time_s, ratio_ci=ratio_ci)
        pt = measure_interleaved({"a": call, "b": call}, rule, reference="a", clock=lambda: now[0], seed=seed + c)
        a, b = pt.timings["a"], pt.timings["b"]
        point, lo, hi = paired_ratio_ci(b.samples, pt.blocks["b"], a.samples, pt.blocks["a"])
        covered += lo <= 1.0 <= hi
        blocks.append(max(pt.blocks["a"]) + 1)
        halves.append(ratio_half_width(point, lo, hi))
        reasons[a.stop_reason] = reasons.get(a.stop_reason, 0) + 1
    return {"cells": cells, "coverage": covered / cells, "blocks_median": float(np.median(blocks)),
            "half_median": float(np.median(halves)), "half_max": float(np.max(halves)), "reasons": reasons}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", type=int, default=1000)
    p.add_argument("--ratio-ci", type=float, default=0.02)
    p.add_argument("--sigma", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    out = simulate_aa(a.cells, a.ratio_ci, a.sigma, seed=a.seed)
    print(f"{out['cells']} A/A cells, target ±{a.ratio_ci:.1%}: coverage {out['coverage']:.1%} (nominal 95%), "
          f"median {out['blocks_median']:g} blocks, half-width median ±{out['half_median']:.2%} "
          f"max ±{out['half_max']:.2%}, stop reasons {out['reasons']}")


if __name__ == "__main__":
    main()
