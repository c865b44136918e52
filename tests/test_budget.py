"""A run with a budget (issue #31): every cell's first pass first, then more passes to the ratios
furthest from their target while time is left, and cells the budget cannot reach said as skipped
records; the policy on a fake clock, the whole run through the CLI, and bad input."""

from __future__ import annotations

import time

import pandas as pd
import pytest

from benchbed.defaults import DEFAULT_BUDGET_S
from benchbed.execute.config import EngineConfig, RunContext
from benchbed.execute.schedule import EXTRA_PASSES, Schedule
from benchbed.spec import Case
from benchbed.summary import precision_lines
from conftest import run_cli

import datetime as _dt

CTX = RunContext("r", _dt.datetime.now(_dt.timezone.utc))


def _cases(n):
    return [Case(task="text-classification", model="synthetic:bert-tiny", batch_size=1, seq_len=16 * (i + 1),
                 runner=r) for i in range(n) for r in ("torch", "pipeline")]


def _results(job, blocks, window=None):
    """Records of a job whose pipeline ratio has the per-block ratios `blocks`, timed for `window`
    seconds (by default: the job's cap, both runners)."""
    if window is None:
        window = job.rule.max_time_s * len(job.cases)
    out = []
    for case in job.cases:
        rec = {"status": "ok", "ratio_ci_target": 0.02, "measure_s": window}
        if case.runner == "pipeline":
            rec["ratio_samples"] = list(blocks)
        out.append((case, rec, ()))
    return out


def _spread(half, n=12):
    """`n` evenly spread per-block ratios around 1 whose 95% CI half-width is `half`."""
    k = {12: 2, 24: 6}[n]  # the order statistic of the exact 95% CI of a median of n
    return [1.0 + half * (2 * i / (n - 1) - 1) * (n - 1) / (n - 1 - 2 * k) for i in range(n)]


def _run(sched, now, blocks_of, fixed=1.0):
    """Drive `sched` on the fake clock: each job costs `fixed` plus its timing window."""
    seen = []
    while sched:
        ready = sched.ready(limit=1)
        if not ready:
            break
        (job, _), = ready
        res = _results(job, blocks_of(job))
        now[0] += fixed + res[0][1]["measure_s"]
        seen.append((job.cases[0].seq_len, job.extra, job.rule.max_time_s))
        sched.finish(job, res)
    return seen


def test_first_passes_come_first_then_the_short_cell_gets_more_within_the_budget():
    now = [0.0]
    sched = Schedule(_cases(3), EngineConfig(budget_s=200.0), CTX, clock=lambda: now[0])
    seen = _run(sched, now, lambda job: _spread(0.2 if job.cases[0].seq_len == 32 else 0.005))
    assert [s for s, extra, _ in seen if not extra] == [16, 32, 48]  # every first pass, in order, before any extra
    assert [s for s, extra, _ in seen if extra] == [32] * EXTRA_PASSES  # only the short cell, at most EXTRA_PASSES
    assert now[0] <= 200.0 + 1.0  # within the budget, but for a pass's fixed cost


def test_extra_passes_go_to_the_cells_that_can_reach_their_target_cheapest_first_sized_to_their_need():
    now = [0.0]
    sched = Schedule(_cases(3), EngineConfig(budget_s=200.0), CTX, clock=lambda: now[0])
    # s16 is nearly there (±2.4%), s32 needs 25x its blocks (out of reach), s48 ±3% (2.25x)
    half = {16: 0.024, 32: 0.10, 48: 0.03}
    passes = {16: 0, 32: 0, 48: 0}

    def blocks(job):
        seq = job.cases[0].seq_len
        passes[seq] += 1
        # an extra pass sized to the need brings the cell within its target
        return _spread(half[seq] if passes[seq] == 1 else 0.005, 24)

    seen = _run(sched, now, blocks)
    extras = [(s, cap) for s, extra, cap in seen if extra]
    assert [s for s, _ in extras][:2] == [16, 48], extras  # reachable ones first, the cheapest first
    first_cap = next(cap for s, extra, cap in seen if not extra)
    cap16, cap48 = extras[0][1], extras[1][1]
    assert cap16 < cap48  # each sized to its own need: (0.024/0.02)^2 - 1 = 0.44 vs 1.25 of the first window
    assert cap16 == pytest.approx(first_cap * 0.44 * 1.25, rel=0.05)
    assert now[0] <= 200.0 + 1.0


def test_first_passes_shrink_when_their_fixed_costs_would_crowd_the_last_cells_out_of_the_budget():
    now = [0.0]
    sched = Schedule(_cases(6), EngineConfig(budget_s=30.0), CTX, clock=lambda: now[0])
    # 6 cells, 4 s of fixed cost each: 24 s, so the windows have 6 s, not the half of 30 s planned
    # (without the fitting, the sixth cell would start after the budget and be skipped)
    seen = _run(sched, now, lambda job: _spread(0.005), fixed=4.0)
    firsts = [(s, cap) for s, extra, cap in seen if not extra]
    assert [s for s, _ in firsts] == [16, 32, 48, 64, 80, 96]  # every cell measured
    assert firsts[-1][1] < firsts[0][1]  # the later ones with less
    assert now[0] <= 30.0 + 4.0


def test_a_ratio_of_too_few_blocks_for_a_95_ci_is_short_of_its_target_and_gets_another_pass():
    # two blocks that agree to 0.1% are (min, max) = a 50% interval, not a ±0.1% 95% CI
    now = [0.0]
    sched = Schedule(_cases(1), EngineConfig(budget_s=100.0), CTX, clock=lambda: now[0])
    seen = _run(sched, now, lambda job: [1.000, 1.001] if not job.extra else [1.0 + 0.001 * (i % 2) for i in range(8)])
    assert [extra for _, extra, _ in seen] == [False, True]  # once pooled to 10 blocks within ±2%, no further pass
    lines = precision_lines([{"task": "t", "model": "m", "dtype": "fp32", "batch_size": 8, "seq_len": 128,
                              "runner": "pipeline", "stop_rule": "ratio", "ratio_ci_target": 0.02,
                              "ratio_samples": [1.000, 1.001], "stop_reason": "max_time", "measure_s": 1.5},
                             {"task": "t", "model": "m", "dtype": "fp32", "batch_size": 1, "seq_len": 32,
                              "runner": "pipeline", "stop_rule": "ratio", "ratio_ci_target": 0.02,
                              "ratio_samples": [1.0 + 0.001 * (i % 3) for i in range(9)]}])
    assert lines[0].startswith("ratio precision: 1 of 2 ratios within ±2%") and "1 with fewer than 6 blocks" in lines[0]
    assert "b8 s128 pipeline: 2 blocks, too few for a 95% CI (max_time); would need at least 4.0x the blocks, " \
           "about 6s of timing" in lines[1]


def test_a_budget_too_small_for_every_first_pass_says_which_cells_it_could_not_measure():
    now = [0.0]
    sched = Schedule(_cases(3), EngineConfig(budget_s=8.0), CTX, clock=lambda: now[0])
    skipped_all = []
    while sched:
        (job, skipped), = sched.ready(limit=1)
        skipped_all += skipped
        if job.cases:
            now[0] += 5.0
            sched.finish(job, _results(job, [1.0] * 12))
    assert len(skipped_all) == 2 * 1  # the third cell's two runners (5 s + 5 s > 8 s)
    assert all(rec["status"] == "skipped" and "budget of 8s was spent" in rec["message"]
               for _, rec, _ in skipped_all)


@pytest.mark.parametrize("argv, budget", [
    ([], DEFAULT_BUDGET_S),                                  # the README's first command: bounded
    (["--budget", "off"], None),                             # said: none
    (["--budget", "90s"], 90.0),
    (["--quick"], None),                                     # another matrix: as asked
    (["--task", "fill-mask"], None),
    (["--max-time", "30"], None),                            # timing taken in hand: as asked
    (["--passes", "3"], None),
])
def test_a_plain_run_of_the_default_matrix_has_a_default_budget_and_nothing_else_does(tmp_path, argv, budget):
    from benchbed.cli import build_parser
    from benchbed.commands.plan import make_plan

    args = build_parser().parse_args(["run", "--results", str(tmp_path / "r"), *argv])
    assert make_plan(args).config.budget_s == budget


@pytest.mark.parametrize("value", ["0", "-5", "nan", "inf", "abc", "8d", "700000", "", "1e400"])
def test_a_bad_budget_is_one_line_exit_2_and_nothing_written(tmp_path, value):
    p = run_cli("run", "--quick", "--budget", value, "--results", str(tmp_path / "r"))
    assert p.returncode == 2 and "--budget" in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert not (tmp_path / "r").exists()


def test_a_budgeted_quick_run_ends_near_its_budget_and_names_what_fell_short(tmp_path):
    t0 = time.monotonic()
    p = run_cli("run", "--quick", "--task", "text-classification,fill-mask", "--budget", "30s",
                "--results", str(tmp_path / "r"), "--run-id", "b")
    took = time.monotonic() - t0
    assert p.returncode == 0, p.stderr[-2000:]
    df = pd.read_parquet(tmp_path / "r" / "b")
    assert set(df["status"]) <= {"ok", "skipped"}
    assert "ratio precision:" in p.stdout and "s left)" in p.stderr
    # the budget counts from the first cell; the process's own start (imports, the model) is outside it
    assert took < 30 * 1.1 + 25, took
