#!/usr/bin/env python3
"""Tables of cross-environment measurements (docs/environments.md): the A/A runs (the same SPEC as
two environments) and the pipeline's overhead per transformers release, from records made with
RUNNER@ENV runners. Each release's run holds torch@V, pipeline@V and pipeline@<first release>
interleaved in one window, so both ratios are paired: pipeline@V ÷ torch@V (from the per-block
samples) and pipeline@V ÷ pipeline@first (the record's own ratio).

    python scripts/env_releases_table.py RESULTS --aa 'aa*' --releases 'rel-*' --json out.json [--svg chart.svg]
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import sys
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def main() -> int:
    import numpy as np

    from benchbed.measure.paired import paired_ratio_ci
    from benchbed.store import read_results

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results")
    ap.add_argument("--aa", default="aa*")
    ap.add_argument("--releases", default="rel-*")
    ap.add_argument("--json")
    ap.add_argument("--svg")
    ap.add_argument("--markdown", help="write the releases as a markdown table to this file")
    args = ap.parse_args()
    df = read_results(args.results)
    out: dict = {"aa": [], "releases": []}
    aa = df[df["run_id"].map(lambda r: fnmatch.fnmatch(r, args.aa)) & df["ref_ratio"].notna()]
    for r in aa.sort_values("run_id").itertuples():
        out["aa"].append({"run": r.run_id, "ratio": r.ref_ratio, "low": r.ref_ratio_low, "high": r.ref_ratio_high,
                          "blocks": len(r.ratio_samples) if r.ratio_samples is not None else 0,
                          "interfered": bool(r.interfered)})
    rel = df[df["run_id"].map(lambda r: fnmatch.fnmatch(r, args.releases)) & (df["status"] == "ok")]
    for (run, b, s), g in rel.groupby(["run_id", "batch_size", "seq_len"]):
        g = g.set_index("runner")
        pipes = [n for n in g.index if n.startswith("pipeline@") and n != g["reference"].iloc[0]] or \
            [g["reference"].iloc[0]]
        pipe = pipes[0]
        torch_name = "torch@" + pipe.split("@")[1]
        version = g.loc[pipe, "env_transformers"]
        if torch_name not in g.index:
            continue
        p, t = g.loc[pipe], g.loc[torch_name]
        own = paired_ratio_ci(p["samples_s"], p["sample_blocks"], t["samples_s"], t["sample_blocks"])
        vs_first = (1.0, 1.0, 1.0) if pipe == g["reference"].iloc[0] else (p["ref_ratio"], p["ref_ratio_low"],
                                                                            p["ref_ratio_high"])
        out["releases"].append({"transformers": version, "batch": int(b), "seq": int(s), "run": run,
                                "pipeline_ms": 1e3 * p["lat_median_s"], "torch_ms": 1e3 * t["lat_median_s"],
                                "pipeline_over_torch": own, "pipeline_over_first": list(vs_first),
                                "blocks": len(p["sample_blocks"]), "interfered": bool(g["interfered"].any())})
    from packaging.version import Version

    out["releases"].sort(key=lambda r: (r["batch"], Version(r["transformers"])))
    for a in out["aa"]:
        print(f"A/A {a['run']}: {a['ratio']:.3f} [{a['low']:.3f}, {a['high']:.3f}] over {a['blocks']} blocks"
              + ("  interfered" if a["interfered"] else ""))
    print(f"{'transformers':<13} {'cell':<9} {'pipe ms':>8} {'torch ms':>8}  {'pipeline ÷ torch':<22} "
          f"{'pipeline ÷ pipeline@first':<26}")
    for r in out["releases"]:
        o, f = r["pipeline_over_torch"], r["pipeline_over_first"]
        print(f"{r['transformers']:<13} b{r['batch']} s{r['seq']:<5} {r['pipeline_ms']:>8.2f} {r['torch_ms']:>8.2f}  "
              f"{o[0]:.3f} [{o[1]:.3f}, {o[2]:.3f}]    {f[0]:.3f} [{f[1]:.3f}, {f[2]:.3f}]"
              + ("  interfered" if r["interfered"] else ""))
    if args.markdown:
        by = {}
        for r in out["releases"]:
            by.setdefault(r["transformers"], {})[(r["batch"], r["seq"])] = r

        def cell(r: Any, key: str) -> str:
            if r is None:
                return "–"
            v = r[key]
            return "1" if key == "pipeline_over_first" and v[0] == v[1] == v[2] == 1.0 else \
                f"{v[0]:.3f} [{v[1]:.3f}, {v[2]:.3f}]"

        lines = ["| transformers | b1 s32 pipeline ÷ torch | b1 s32 pipeline ÷ pipeline@first | b8 s128 pipeline ÷ "
                 "torch | b8 s128 pipeline ÷ pipeline@first |", "| --- | --- | --- | --- | --- |"]
        for version in sorted(by, key=Version):
            a, b = by[version].get((1, 32)), by[version].get((8, 128))
            lines.append(f"| {version} | {cell(a, 'pipeline_over_torch')} | {cell(a, 'pipeline_over_first')} | "
                         f"{cell(b, 'pipeline_over_torch')} | {cell(b, 'pipeline_over_first')} |")
        with open(args.markdown, "w") as fh:
            fh.write("\n".join(lines) + "\n")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1, default=float)
    if args.svg and out["releases"]:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6.5, 3))
        for (b, s), marker in (((1, 32), "o"), ((8, 128), "s")):
            rows = [r for r in out["releases"] if (r["batch"], r["seq"]) == (b, s)]
            x = np.arange(len(rows))
            y = np.array([r["pipeline_over_torch"] for r in rows])
            ax.errorbar(x, y[:, 0], yerr=[y[:, 0] - y[:, 1], y[:, 2] - y[:, 0]], marker=marker, capsize=2,
                        label=f"b{b} s{s}")
            ax.set_xticks(x, [r["transformers"] for r in rows], rotation=30, fontsize=7)
        ax.axhline(1, ls=":", color="grey")
        ax.set_ylabel("pipeline ÷ torch (same release)")
        ax.set_title("MiniLM text-classification, fp32, 2-core VM; 95% CIs over paired blocks", fontsize=8)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(args.svg, format="svg", metadata={"Date": None})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
