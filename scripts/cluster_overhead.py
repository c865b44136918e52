"""What going through Ray costs and whether a Ray node disturbs measurements (issue: a matrix over
a fleet). Runs a quick matrix (fill-mask and text-classification on bert-tiny at 2 batch sizes and
2 lengths: 8 cells, 16 records) three ways, each `--repeats` times: locally, through a one-node
local Ray cluster, and through a two-node local Ray cluster (both nodes on this machine), and prints:

  - wall time of each way (mean over repeats) and the overhead per cell against local;
  - the A/A spread of each cell's torch median over the repeats (max/min - 1), local vs Ray;
  - how many records the interference columns marked, per way.

    python scripts/cluster_overhead.py --repeats 3 --json docs/cluster-overhead-2026-11-30.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import pandas as pd

MATRIX = ["--quick", "--task", "fill-mask,text-classification", "--batch-size", "1,4", "--seq-len", "16,64",
          "--min-time", "0.3", "--max-time", "2", "-q"]


def run(results: str, env: dict | None, extra: list[str]) -> float:
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "benchbed.cli", "run", *MATRIX, *extra, "--results", results],
                       capture_output=True, text=True, env=dict(os.environ, **(env or {})))
    if p.returncode not in (0, 1):
        raise SystemExit(p.stderr[-2000:])
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args()
    from ray.cluster_utils import Cluster

    out: dict = {"ways": {}}
    with tempfile.TemporaryDirectory() as tmp:
        ways = {"local": (None, []), "ray-1-node": ("one", ["--cluster", "ray"]),
                "ray-2-nodes": ("two", ["--cluster", "ray"])}
        for way, (nodes, extra) in ways.items():
            cluster = None
            env = {"RAY_ADDRESS": ""}
            if nodes:
                cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "resources": {"benchbed_slot": 1}})
                if nodes == "two":
                    cluster.add_node(num_cpus=1, resources={"benchbed_slot": 1})
                cluster.wait_for_nodes()
                env = {"RAY_ADDRESS": cluster.address}
            try:
                walls = [run(os.path.join(tmp, way), env, extra) for _ in range(args.repeats)]
            finally:
                if cluster is not None:
                    cluster.shutdown()
            df = pd.read_parquet(os.path.join(tmp, way))
            torch = df[(df["runner"] == "torch") & (df["status"] == "ok")]
            spread = torch.groupby("case_id")["lat_median_s"].agg(lambda s: s.max() / s.min() - 1)
            out["ways"][way] = {"wall_s": walls, "mean_wall_s": sum(walls) / len(walls), "records": len(df),
                                "interfered": int(df["interfered"].fillna(False).sum()),
                                "aa_spread_median": float(spread.median()), "aa_spread_max": float(spread.max()),
                                "others_cpu_cores_median": float(df["others_cpu_cores"].median())}
            print(way, json.dumps(out["ways"][way]), file=sys.stderr)
    cells = 8
    local = out["ways"]["local"]["mean_wall_s"]
    for way, v in out["ways"].items():
        v["overhead_per_cell_s"] = (v["mean_wall_s"] - local) / cells
    print(json.dumps(out, indent=2))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(out, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
