"""explain's naming A/A (#33): how many functions the noise gate names where there is nothing to name,
and what each gate leaves unexplained where there is.

Two runners running the same code under two names (``torch`` and ``torch-twin``, ``pipeline`` and
``pipeline-twin``: tests/plugins/suite_injected_runner.py) are profiled on the cells given. Each
twin is then taken apart against its original *as if* its measured gap were real (the no-gap gates
bypassed), so every function it names is named from noise; the same records give pipeline ÷ torch's
unexplained share, and each stage's differences in both (where the unexplained sits). Both are computed for several noise gates (`rollup.Z`, standard errors of the
sampling) and floors (`attribute.NAME_FLOOR`, a fraction of the reference's call): the figures
behind explain's settings (docs/explain.md).

    python scripts/explain_aa.py --results DIR                     # the default matrix's axes, measured
    python scripts/explain_aa.py --results DIR --seq-len 32        # narrower (any benchbed explain axis)
    python scripts/explain_aa.py --from DIR                        # read what DIR holds, measure nothing
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SUITE = REPO / "tests" / "plugins" / "suite_injected_runner.py"
DEFAULT_AXES = ["--task", "text-classification,feature-extraction,fill-mask,token-classification",
                "--model", "minilm", "--dtype", "fp32,bf16", "--batch-size", "1,8", "--seq-len", "32,128"]
#: (Z, floor) of each gate compared: `rollup.Z`, `attribute.NAME_FLOOR`
GATES = [(4.0, 0.005), (3.5, 0.005), (3.0, 0.005), (3.0, 0.0), (2.0, 0.005), (1.0, 0.0)]
TWINS = {"torch-twin": "torch", "pipeline-twin": "pipeline"}


def measure(results: str, axes: list[str]) -> None:
    cmd = [sys.executable, "-m", "benchbed.cli", "explain", "--suite", str(SUITE), *axes,
           "--runner", "torch,torch-twin,pipeline,pipeline-twin", "--results", results]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=REPO, stdout=subprocess.DEVNULL)


def read(results: str) -> list[dict]:
    import pandas as pd

    df = pd.read_parquet(results)
    return [r for r in df.to_dict("records") if not r.get("pass_index")]


def analyse(records: list[dict]) -> list[dict]:
    import benchbed.explain.attribute as attribute
    import benchbed.explain.rollup as rollup
    from benchbed.explain import explain_pair
    from benchbed.explain.attribute import clean_record

    cells: dict[str, dict[str, dict]] = {}
    for r in map(clean_record, records):
        if r.get("status") == "ok" and r.get("explain_status") == "ok":
            cells.setdefault(r["pair_id"], {})[r["runner"]] = r
    saved = rollup.Z, attribute.NAME_FLOOR, attribute.MIN_GAP, attribute.CI_CLEARANCE
    rows = []
    try:
        for z, floor in GATES:
            rollup.Z, attribute.NAME_FLOOR = z, floor
            named, named_cells, twins, fractions = [], 0, 0, []
            for runners in cells.values():
                attribute.MIN_GAP, attribute.CI_CLEARANCE = saved[2], saved[3]
                if "pipeline" in runners and "torch" in runners:
                    e = explain_pair(runners["pipeline"], runners["torch"])
                    if e.verdict == "explained":
                        fractions.append(e.unexplained_fraction)
                attribute.MIN_GAP, attribute.CI_CLEARANCE = -1.0, -1.0  # every twin is taken apart
                for twin, original in TWINS.items():
                    a, b = runners.get(twin), runners.get(original)
                    if a is None or b is None or not a.get("ref_ratio"):
                        continue
                    # the twin against its original: the ratios to the run's reference divided
                    # (the reference's own ratio is 1)
                    forced = dict(a, reference=original, ref_ratio=a["ref_ratio"] / (b.get("ref_ratio") or 1.0),
                                  ref_ratio_low=None, ref_ratio_high=None)
                    e = explain_pair(forced, b)
                    twins += 1
                    named += [abs(p.delta_s) / e.reference_median_s for p in e.parts]
                    named_cells += bool(e.parts)
            rows.append({"z": z, "floor": floor, "twins": twins, "twins_naming": named_cells, "named": len(named),
                         "named_median_pct": 100 * statistics.median(named) if named else None,
                         "explained": len(fractions), "unexplained_le_10pct": sum(f <= 0.10 for f in fractions),
                         "unexplained_median_pct": 100 * statistics.median(fractions) if fractions else None})
    finally:
        rollup.Z, attribute.NAME_FLOOR, attribute.MIN_GAP, attribute.CI_CLEARANCE = saved
    return rows


def stages(records: list[dict]) -> list[dict]:
    """Each stage's difference, % of the reference's call, over the twins (noise: the twin's ratio
    to its original, its stage clock against its original's) and over pipeline ÷ torch (real), and
    the real pairs' unexplained seconds by stage (the stage's difference less what was named in
    it), at the gates in force: where a gap that is not named sits."""
    from benchbed.explain import explain_pair
    from benchbed.explain.attribute import STAGES, clean_record

    cells: dict[str, dict[str, dict]] = {}
    for r in map(clean_record, records):
        if r.get("status") == "ok" and r.get("explain_status") == "ok":
            cells.setdefault(r["pair_id"], {})[r["runner"]] = r
    diffs: dict[str, dict[str, list[float]]] = {k: {s: [] for s in STAGES} for k in ("twin", "real")}
    left = dict.fromkeys(STAGES, 0.0)
    for runners in cells.values():
        pairs = [("twin", dict(runners[t], reference=o, ref_ratio=runners[t]["ref_ratio"] / (runners[o].get("ref_ratio") or 1.0),
                               ref_ratio_low=None, ref_ratio_high=None), runners[o])
                 for t, o in TWINS.items() if t in runners and o in runners and runners[t].get("ref_ratio")]
        if "pipeline" in runners and "torch" in runners:
            pairs.append(("real", runners["pipeline"], runners["torch"]))
        for kind, a, b in pairs:
            e = explain_pair(a, b)
            if e.reference_median_s is None or not e.stages:
                continue
            for stage, delta in e.stages:
                diffs[kind][stage].append(100 * delta / e.reference_median_s)
            if kind == "real" and e.verdict == "explained":
                for stage, delta in e.stages:
                    left[stage] += abs(delta - sum(p.delta_s for p in e.parts if p.stage == stage))
    total = sum(left.values()) or 1.0
    return [{"stage": s, **{f"{k}_median": statistics.median(v[s]) if v[s] else None for k, v in diffs.items()},
             **{f"{k}_sd": statistics.pstdev(v[s]) if len(v[s]) > 1 else None for k, v in diffs.items()},
             "n_twin": len(diffs["twin"][s]), "n_real": len(diffs["real"][s]), "unexplained_share": left[s] / total}
            for s in STAGES]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--results", help="measure into this folder, then read it")
    where.add_argument("--from", dest="source", help="read this folder only")
    args, axes = ap.parse_known_args()
    if args.results:
        measure(args.results, [*DEFAULT_AXES, *axes])  # an option given again replaces the default's
    rows = analyse(read(args.results or args.source))
    print("| gate Z | floor | twins naming anything | functions named from noise (median, % of call) "
          "| pipeline ÷ torch: unexplained ≤ 10% | median unexplained |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        med = "—" if r["named_median_pct"] is None else f"{r['named_median_pct']:.2f}%"
        un = "—" if r["unexplained_median_pct"] is None else f"{r['unexplained_median_pct']:.1f}%"
        print(f"| {r['z']:g} | {r['floor']:.1%} | {r['twins_naming']} of {r['twins']} | {r['named']} ({med}) "
              f"| {r['unexplained_le_10pct']} of {r['explained']} | {un} |")
    print()
    print("| stage | twins: difference, % of the call (median, sd) | pipeline ÷ torch (median, sd) "
          "| share of the unexplained (explained cells, gate in force) |")
    print("| --- | --- | --- | --- |")
    for r in stages(read(args.results or args.source)):
        def cell(kind):
            if r[f"{kind}_median"] is None:
                return "—"
            return f"{r[f'{kind}_median']:+.2f}%, {r[f'{kind}_sd'] or 0:.2f}% (n {r[f'n_{kind}']})"
        print(f"| {r['stage']} | {cell('twin')} | {cell('real')} | {r['unexplained_share']:.0%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
