"""Benchmark (not a test): how long `benchbed report` takes over many records.

Writes RUNS synthetic nightly runs x CASES cases (both runners, 4 tasks, 2 dtypes, batch and length
sweeps, 20 raw samples each) as compacted parquet files, then times `benchbed report` on them.

    python scripts/report_scale.py            # 100 runs x 500 cases = 50,000 records
    python scripts/report_scale.py --runs 10 --out /tmp/scale
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from benchbed.record import empty_record, to_table
from benchbed.spec import Case


def synthetic_runs(root: str, runs: int, cases: int, seed: int = 0) -> int:
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    tasks = ["text-classification", "feature-extraction", "fill-mask", "token-classification"]
    grid = list(itertools.product(tasks, ["synthetic:bert-base-uncased", "minilm"], ["fp32", "bf16"],
                                  [1, 2, 4, 8, 16, 32, 64, 128], [32, 64, 128, 256], ["torch", "pipeline"]))
    grid = grid[:cases]
    t0 = dt.datetime(2026, 8, 1, 2, 0, tzinfo=dt.timezone.utc)
    total = 0
    for r in range(runs):
        run_id = f"night{r:03d}"
        recs = []
        for task, model, dtype, bs, sl, runner in grid:
            case = Case(task, model, runner=runner, dtype=dtype, batch_size=bs, seq_len=sl)
            base = 1e-3 * (1 + 0.05 * bs * sl / 32) * (1.1 if runner == "pipeline" else 1.0)
            samples = base * (1 + 0.02 * rng.standard_normal(20))
            rec = empty_record()
            rec.update(run_id=run_id, case_id=case.case_id, pair_id=case.pair_id, started_at=t0 + dt.timedelta(days=r),
                       suite="scale", task=task, model=model, runner=runner, device="cpu", dtype=dtype,
                       batch_size=bs, seq_len=sl, status="ok", parity_ok=True, parity_detail="equal",
                       samples_s=samples.tolist(), n_samples=20, warmup=2, lat_median_s=float(np.median(samples)),
                       lat_min_s=float(samples.min()), lat_max_s=float(samples.max()),
                       items_per_s=bs / float(np.median(samples)), pre_s=base * 0.1, fwd_s=base * 0.8,
                       post_s=base * 0.05, cpu_rss_peak_delta_mb=float(bs * sl / 64), threads=2, measure_s=1.0,
                       env_cpu="synthetic", env_torch="2.13.0", env_transformers="5.24.0")
            recs.append(rec)
        os.makedirs(os.path.join(root, run_id), exist_ok=True)
        pq.write_table(to_table(recs), os.path.join(root, run_id, f"run-{run_id}.parquet"))
        total += len(recs)
    return total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--cases", type=int, default=500)
    ap.add_argument("--out", default=None, help="folder for the synthetic results (default: a temp folder)")
    args = ap.parse_args()
    root = args.out or tempfile.mkdtemp(prefix="benchbed-scale-")
    n = synthetic_runs(os.path.join(root, "results"), args.runs, args.cases)
    html = os.path.join(root, "report.html")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "benchbed.cli", "report", os.path.join(root, "results"), "-o", html],
                   check=True)
    wall = time.perf_counter() - start
    print(f"{n} records -> {html}: {wall:.1f}s wall (including interpreter start), "
          f"{os.path.getsize(html) / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
