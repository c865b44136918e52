"""Compare ways of spending a run's budget (``--budget``) on a fake clock, with cells modelled on
real records: the real `Schedule` and the real interleaved timer (`measure_interleaved`, its
warm-up, blocks and ratio rule) drive runners whose calls advance a fake clock by the cell's
measured medians, each block's ratio drawn from the cell's own measured per-block ratios, and
each pass pays the cell's measured costs outside its timing (loading, parity, the per-runner
passes on a first pass; parity on a later one). Deterministic for a seed.

    python scripts/budget_policy.py RESULTS_DIR [RESULTS_DIR ...] --budget 90 --budget 150 --seeds 20

Policies: ``new`` (execute.budget as it is), ``old`` (the rule until 2026-12-07: 40% of the
budget for first passes, extra passes the size of a first pass, the furthest from its target
first), ``none`` (no budget: every cell one pass, to its ratio target or --max-time), ``new@S``
(execute.budget with FIRST_SHARE = S) and ``new@S,furthest`` (the same, but
the extra passes go to the furthest from their target first).
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import math
import random
import statistics
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from benchbed.execute import budget as B
from benchbed.execute import schedule as S
from benchbed.execute.config import EngineConfig, RunContext
from benchbed.measure.paired import blocks_half_width, measure_interleaved, ratio_columns
from benchbed.spec import Case

CTX = RunContext("sim", dt.datetime.now(dt.timezone.utc))


@dataclass
class CellModel:
    torch_s: float
    pipe_s: float
    log_resid: np.ndarray  # per-block log ratios less their median
    first_fixed_s: float
    extra_fixed_s: float
    load_s: float


def load_cells(dirs: list[str]) -> list[CellModel]:
    """One model per cell of the default matrix, pooled over every run given."""
    frames = [pd.read_parquet(f) for d in dirs for f in glob.glob(f"{d}/*") if not f.endswith(".json")]
    df = pd.concat(frames)
    df = df[df.status == "ok"]
    cells = []
    ranks = df[df.pass_index == 0].assign(t=lambda d: pd.to_datetime(d.cell_started_at)).groupby(
        ["run_id", "pair_id"]).t.min().groupby(level=0).rank().groupby(level=1).median()
    for pid in ranks.sort_values().index:  # matrix order: the first cell pays the process's first model load
        g = df[df.pair_id == pid]
        t, p = g[g.runner == "torch"], g[g.runner == "pipeline"]
        if t.empty or p.empty:
            continue
        logs = np.log(np.concatenate([np.asarray(x, float) for x in p.ratio_samples if x is not None]))
        firsts = g[g.pass_index == 0].groupby("run_id").agg(load=("cost_load_s", "first"), parity=(
            "cost_parity_s", "first"), passes=("cost_passes_s", "sum"))
        later = g[g.pass_index > 0].drop_duplicates(["run_id", "pass_index"])
        first_fixed = float((firsts.load.fillna(0) + firsts.parity.fillna(0) + firsts.passes.fillna(0)).median())
        extra_fixed = float(later.cost_parity_s.median()) if len(later) else float(firsts.parity.median())
        cells.append(CellModel(float(t.lat_median_s.median()), float(p.lat_median_s.median()),
                               logs - np.median(logs), first_fixed, extra_fixed, float(firsts.load.median())))
    return cells


def simulate(cells: list[CellModel], budget: float, policy: str, seed: int, target: float = 0.02) -> dict:
    """One budgeted run of `cells` under `policy`: how many ratios end within `target`."""
    rng = random.Random(seed)
    now = [0.0]
    clock = lambda: now[0]  # noqa: E731
    cases = [Case(task="text-classification", model="synthetic:bert-tiny", batch_size=1, seq_len=8 + i, runner=r)
             for i in range(len(cells)) for r in ("torch", "pipeline")]
    model = {8 + i: c for i, c in enumerate(cells)}
    saved = (B.FIRST_SHARE, S.extra_rule, S.Schedule._order_extras, S.fitted_first_rule)
    try:
        if policy.startswith("new@"):
            B.FIRST_SHARE = float(policy[4:].split(",")[0])
            if policy.endswith(",furthest"):  # need-sized passes, but the furthest from its target first
                S.Schedule._order_extras = lambda self: setattr(self, "pending", [
                    j for j in self.pending if not j.extra] + sorted((j for j in self.pending if j.extra),
                                                                     key=lambda j: -j.need.short))
        elif policy == "old":
            B.FIRST_SHARE = 0.4
            first = {}

            def same_size(rule, need, left):  # a pass like the first, while the time left holds one
                cap = first["rule"].max_time_s
                return replace(rule, max_time_s=cap, min_time_s=first["rule"].min_time_s) \
                    if left >= need.fixed_s + cap * need.runners else None

            def furthest(self):
                self.pending = [j for j in self.pending if not j.extra] + sorted(
                    (j for j in self.pending if j.extra), key=lambda j: -j.need.short)
            S.extra_rule, S.Schedule._order_extras = same_size, furthest
            S.fitted_first_rule = lambda first, *_: first  # no fitting of first passes to the time left
        sched = S.Schedule(cases, EngineConfig(budget_s=None if policy == "none" else budget), CTX, clock=clock)
        if policy == "old":
            first["rule"] = sched.first
        pooled: dict[int, list[float]] = {}
        while sched:
            ready = sched.ready(limit=1)
            if not ready:
                break
            (job, _), = ready
            if not job.cases:
                continue
            cell = model[job.cases[0].seq_len]
            now[0] += cell.first_fixed_s if not job.extra else cell.extra_fixed_s
            resid = cell.log_resid

            def torch_call():
                now[0] += cell.torch_s

            def pipe_call():
                now[0] += cell.pipe_s * math.exp(rng.choice(resid))

            rule = job.config_for(sched.config).rule
            timing = measure_interleaved({"torch": torch_call, "pipeline": pipe_call}, rule, reference="torch",
                                         seed=rng.randrange(1 << 30), clock=clock)
            results = []
            for case in job.cases:
                rec = {"status": "ok", "measure_s": timing.timings[case.runner].total_s,
                       "cost_load_s": 0.0 if job.extra else cell.load_s}
                rec.update(ratio_columns(timing, case.runner, "torch", target))
                results.append((case, rec, ()))
                if case.runner == "pipeline":
                    pooled.setdefault(case.seq_len, []).extend(rec["ratio_samples"])
            sched.finish(job, results)
    finally:
        B.FIRST_SHARE, S.extra_rule, S.Schedule._order_extras, S.fitted_first_rule = saved
    halves = sorted(blocks_half_width(pooled.get(8 + i, [])) for i in range(len(cells)))
    return {"within": sum(h <= target * 1.0001 for h in halves), "median": halves[len(halves) // 2],
            "wall": now[0], "measured": len(pooled)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", nargs="+", help="run folders of the default matrix (their records model the cells)")
    ap.add_argument("--budget", type=float, action="append", required=True)
    ap.add_argument("--policy", action="append", default=None)
    ap.add_argument("--seeds", type=int, default=20)
    args = ap.parse_args()
    cells = load_cells(args.results)
    print(f"{len(cells)} cells; first-pass fixed cost {sum(c.first_fixed_s for c in cells):.0f}s in all")
    for budget in args.budget:
        for policy in args.policy or ["old", "new"]:
            runs = [simulate(cells, budget, policy, seed) for seed in range(args.seeds)]
            w = [r["within"] for r in runs]
            print(f"budget {budget:g}s {policy:9s}: within ±2% median {statistics.median(w):g} "
                  f"(range {min(w)}-{max(w)}) of {len(cells)}, half-width median "
                  f"±{100 * statistics.median(r['median'] for r in runs):.2f}%, "
                  f"wall {statistics.median(r['wall'] for r in runs):.0f}s, measured {min(r['measured'] for r in runs)}")


if __name__ == "__main__":
    main()
