"""Where a run's cells spent their time, from its records' ``cost_*_s`` columns (#31: non-timing work
≤ 20% of a default run): per pass, the cells' wall time, the timed windows, warm-up (the timing
step less its window), parity, loading and the runners' own passes, and the share that is not
the timed windows.

    python scripts/cost_share.py results/RUN_ID
"""

from __future__ import annotations

import argparse
import sys


def shares(results: str):
    """A frame of seconds per pass index (a cell's figures counted once, its runners' passes summed),
    and the non-timing share of the cells' time. Records of schema 15 and later split the
    runners' passes into phases, FLOPs, memory and device counters, and carry warm-up."""
    import pandas as pd

    df = pd.read_parquet(results)
    df = df[df["cell_s"].notna()]
    for col in ("cost_warmup_s", "cost_phases_s", "cost_flops_s", "cost_memory_s", "cost_resource_s"):
        if col not in df:
            df[col] = float("nan")
    per_cell = df.groupby(["pair_id", "pass_index"]).agg(
        cells=("cell_s", "first"), windows=("measure_s", "first"), timing=("cost_timing_s", "first"),
        warmup=("cost_warmup_s", "first"), parity=("cost_parity_s", "first"), loading=("cost_load_s", "first"),
        passes=("cost_passes_s", "sum"), phases=("cost_phases_s", "sum"), flops=("cost_flops_s", "sum"),
        memory=("cost_memory_s", "sum"), resource=("cost_resource_s", "sum"))
    per_cell["warmup"] = per_cell["warmup"].fillna(per_cell["timing"] - per_cell["windows"])
    by_pass = per_cell.groupby(level="pass_index").sum().drop(columns="timing")
    if not df["cost_phases_s"].notna().any():  # older records: the passes in one sum
        by_pass = by_pass.drop(columns=["phases", "flops", "memory", "resource"])
    total = by_pass.sum()
    return by_pass, 1.0 - total["windows"] / total["cells"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", help="a run's folder (or a folder of runs)")
    args = ap.parse_args()
    by_pass, share = shares(args.results)
    print(by_pass.round(1).to_string())
    print(by_pass.sum().round(1).to_frame("all passes").T.to_string())
    print(f"non-timing work: {share:.1%} of the cells' time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
