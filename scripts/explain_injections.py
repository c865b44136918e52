"""explain's proof by injection, measured: N random delays (a stage of the three, 0.5-5 ms) spent in
a named function of ``torch-injected`` (tests/plugins/suite_injected_runner.py); for each, whether
`benchbed explain` ranks that function first and how its attributed time compares with the
injection. Writes one JSON line per injection and a summary.

    python scripts/explain_injections.py --n 20 --seed 0 --out docs/explain-injections-DATE.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NAMES = {"preprocess": "injected_tokenise_delay", "forward": "injected_forward_delay",
         "postprocess": "injected_postprocess_delay"}


def one(stage: str, ms: float, results: str) -> dict:
    p = subprocess.run([sys.executable, "-m", "benchbed.cli", "explain", "--suite",
                        str(REPO / "tests/plugins/suite_injected_runner.py"), "--runner", "torch,torch-injected",
                        "--min-time", "0.1", "--max-time", "2", "--results", results, "--json", "-"],
                       capture_output=True, text=True, cwd=REPO, timeout=600,
                       env=dict(os.environ, BENCHBED_TEST_INJECT=f"{stage}={ms}"))
    if p.returncode != 0:
        return {"stage": stage, "ms": ms, "error": p.stderr[-300:]}
    e = json.loads(p.stdout)["explanations"][0]
    parts = sorted(e["parts"], key=lambda x: -abs(x["delta_s"]))
    top = parts[0] if parts else None
    mine = [x for x in parts if x["name"].endswith(":" + NAMES[stage])]
    return {"stage": stage, "ms": ms, "verdict": e["verdict"], "gap_ms": e["gap_s"] * 1e3 if e["gap_s"] else None,
            "top": top["name"] if top else None, "ranked_first": bool(top and top["name"].endswith(":" + NAMES[stage])),
            "attributed_ms": mine[0]["delta_s"] * 1e3 if mine else 0.0,
            "unexplained_fraction": e.get("unexplained_fraction"), "reason": e.get("reason")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="JSON file for the rows and the summary")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    rows = []
    with tempfile.TemporaryDirectory(prefix="benchbed-injections-") as tmp:
        for i in range(args.n):
            stage, ms = rng.choice(list(NAMES)), round(rng.uniform(0.5, 5.0), 2)
            row = one(stage, ms, os.path.join(tmp, f"r{i}"))
            rows.append(row)
            print(json.dumps(row), flush=True)
    ok = [r for r in rows if "error" not in r and r.get("verdict") == "explained"]
    within = [r for r in ok if abs(r["attributed_ms"] - r["ms"]) <= 0.2 * r["ms"]]
    summary = {"n": len(rows), "explained": len(ok), "ranked_first": sum(r["ranked_first"] for r in ok),
               "within_20pct": len(within),
               "attributed_over_injected": sorted(round(r["attributed_ms"] / r["ms"], 3) for r in ok)}
    print(json.dumps(summary))
    if args.out:
        Path(args.out).write_text(json.dumps({"rows": rows, "summary": summary}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
