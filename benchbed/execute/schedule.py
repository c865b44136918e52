"""What to measure next, the same for every launcher: cells × passes, resume, the out-of-memory
sweep and the retry of a cell measured on a busy machine.

A launcher asks `Schedule.ready()` for the jobs it may start now and hands each job's results to
`Schedule.finish()`. A sequential launcher (this process, a subprocess) takes one ready job at a
time in matrix order, passes outermost, so a slow drift of the machine spreads over every cell; a
concurrent one (a Ray cluster) starts every ready job at once. Either way:

- **Resume:** (case id, pass) pairs already recorded are never measured again.
- **OOM sweep:** a job waits until the smaller batch sizes of its sweep (the same cell but for the
  batch size, same pass) have finished; once one of them ran out of memory, the cases of larger
  batch sizes are recorded as skipped, not tried. So a cluster skips exactly what a local run does.
- **Interference retry** (``--on-interference retry``): a cell whose records say another process
  used the machine is measured again, up to `EngineConfig.interference_retries` times; the last
  attempt's records are kept and say how many retries it took.
- **Budget** (``--budget``, `execute.budget`): every cell's first pass comes first, in matrix
  order, each runner capped at its share of the budget; then the cells short of their ratio
  target get extra passes (at most `EXTRA_PASSES` each), those that can reach it in the time left
  first, the cheapest first, each pass sized to what its cell needs. Readers pool a case's passes
  (their blocks concatenated), so each extra pass narrows the ratio it reports and spreads the
  cell over the run, de-correlating the host's drift. A job the budget cannot reach is a
  ``skipped`` record that says so. A job carries its own stop rule (`Job.config_for`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable

from ..measure.timer import StopRule
from ..spec import Case
from .budget import MIN_CAP_S, CellNeed, capped, cell_need, extra_rule, first_rule, fitted_first_rule, reachable
from .records import CellResult, base_record
from .config import EngineConfig, RunContext

__all__ = ["Job", "Schedule", "budget_rule", "cells_of_cases", "EXTRA_PASSES"]

#: The most extra passes a cell gets from a budget (a ratio that cannot reach its target on this
#: host does not take the whole budget).
EXTRA_PASSES = 4


def cells_of_cases(cases: list[Case]) -> list[list[Case]]:
    """Cases grouped into cells (same parameters but the runner), in first-seen order; a case
    given twice is measured twice, in a cell of its own."""
    cells: list[list[Case]] = []
    open_cell: dict[str, list[Case]] = {}
    for case in cases:
        cell = open_cell.get(case.pair_id)
        if cell is None or any(c.runner == case.runner for c in cell):
            cell = open_cell[case.pair_id] = []
            cells.append(cell)
        cell.append(case)
    return cells


def budget_rule(rule: StopRule, budget_s: float, cases: list[Case]) -> StopRule:
    """The stop rule of a pytest session with a budget (``--benchbed-budget``; its tests run in
    pytest's order, not through a `Schedule`): each runner's timing capped at its share of 40% of
    the budget (the rest pays for loading, parity and the per-runner passes), so every cell gets
    its pass; never longer than the rule's own cap."""
    return capped(rule, max(MIN_CAP_S, min(rule.max_time_s, 0.4 * budget_s / max(1, len(cases)))))


def _sweep_key(case: Case) -> str:
    """Id of a case's batch-size sweep: the case with its batch size left out."""
    return replace(case, batch_size=1).case_id


@dataclass
class Job:
    """One cell of one pass, and how many times it has been measured already."""

    cases: list[Case]
    pass_index: int
    attempt: int = 0
    order: int = 0
    sweeps: frozenset[str] = frozenset()
    #: The cell's batch size (kept when every case was skipped and `cases` is empty).
    batch_size: int = 1
    #: When the job started (the schedule's clock), and whether a budget added it.
    started: float | None = None
    extra: bool = False
    cells: list[Case] = field(default_factory=list)
    #: An extra pass's reason: how far its cell is from its target, and what it needs.
    need: CellNeed | None = None
    #: The stop rule of this job when it is not the run's (a budget sizes every job's timing).
    rule: StopRule | None = None

    def config_for(self, config: EngineConfig) -> EngineConfig:
        """The settings this job is measured with: the run's, with the job's own stop rule."""
        return config if self.rule is None else replace(config, rule=self.rule)


class Schedule:
    """The jobs of a run and the policies every launcher shares (see the module's note)."""

    def __init__(self, cases: list[Case], config: EngineConfig, ctx: RunContext,
                 done: set[tuple[str, int]] | None = None, passes: Iterable[int] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        passes = list(passes) if passes is not None else None
        self.config = config
        self.ctx = ctx
        self.clock = clock
        self.deadline = None if config.budget_s is None else clock() + config.budget_s
        #: per (pair id, runner): the per-block ratios of every pass so far (the budget's measure)
        self.ratios: dict[tuple[str, str], list[float]] = {}
        self.extra_passes: dict[str, int] = {}
        self.next_pass = (max(passes) + 1 if passes else 0) if passes is not None else config.passes
        done = done or set()
        cells = cells_of_cases([c.canonical() for c in cases])
        self.pending: list[Job] = []
        for p in (range(config.passes) if passes is None else passes):
            for cell in cells:
                todo = [c for c in cell if (c.case_id, p) not in done]
                if todo:
                    self.pending.append(Job(todo, p, order=len(self.pending), batch_size=todo[0].batch_size,
                                            sweeps=frozenset(_sweep_key(c) for c in todo), cells=list(cell)))
        self.total = sum(len(j.cases) for j in self.pending)
        #: per cell (pair id): its passes' timing windows (the budget's measure of what it has had)
        self.windows: dict[str, list[float]] = {}
        #: the budget's first-pass rule, and what first passes cost beyond their timing windows
        self.first = first_rule(config.rule, config.budget_s, self.total) if self.deadline is not None else None
        self.first_fixed: list[float] = []
        self.running: list[Job] = []
        self.oom_at: dict[tuple[str, int], int] = {}

    @property
    def retries(self) -> int:
        return self.config.interference_retries if self.config.on_interference == "retry" else 0

    def _waits(self, job: Job) -> bool:
        """Whether a smaller batch of the same sweep and pass has not finished yet."""
        return any(other is not job and other.pass_index == job.pass_index and other.batch_size < job.batch_size
                   and job.sweeps & other.sweeps for other in self.pending + self.running)

    def ready(self, limit: int | None = None) -> list[tuple[Job, list[CellResult]]]:
        """Jobs that may start now (at most `limit`), each with the skip records of its cases that a
        smaller batch's out-of-memory ruled out (a job all of whose cases are ruled out has nothing
        left to measure: its skip records are all there is)."""
        out = []
        spent = self.deadline is not None and self.clock() >= self.deadline
        if self.deadline is not None and not spent:
            self._order_extras()
        for job in list(self.pending):
            if limit is not None and len(out) >= limit:
                break
            if self._waits(job) and not spent:
                continue
            self.pending.remove(job)
            if spent:  # the budget is spent: an extra pass is dropped, a first pass is said
                if job.extra:
                    self.total -= len(job.cases)
                else:
                    said = [self._skip(c, job, f"not measured: the run's budget of {self.config.budget_s:g}s was "
                                               f"spent before it (a larger --budget measures it)") for c in job.cases]
                    out.append((_empty(job), said))
                continue
            if self.first is not None and not job.extra:
                firsts = [j for j in self.pending if not j.extra] + [job]
                job.rule = fitted_first_rule(self.first, self.deadline - self.clock(), len(firsts),
                                             sum(len(j.cases) for j in firsts),
                                             sum(self.first_fixed) / len(self.first_fixed)
                                             if self.first_fixed else None)
            if job.extra:
                assert job.need is not None and self.deadline is not None
                job.rule = extra_rule(self.config.rule, job.need, self.deadline - self.clock())
                if job.rule is None:  # the time left holds no useful pass of it
                    self.total -= len(job.cases)
                    continue
            job.started = self.clock()
            skipped, todo = [], []
            for case in job.cases:
                fit = self.oom_at.get((_sweep_key(case), job.pass_index))
                if fit is not None and case.batch_size > fit:
                    rec = base_record(case, self.ctx, self.config, job.pass_index)
                    rec.update(status="skipped", message=f"not run: batch size {fit} already ran out of memory "
                                                         f"on this path")
                    skipped.append((case, rec, ()))
                else:
                    todo.append(case)
            job.cases = todo
            if todo:
                self.running.append(job)
            out.append((job, skipped))
        return out

    def finish(self, job: Job, results: list[CellResult]) -> bool:
        """Take a job's results; True when the job is to be measured again (a retry) instead of kept."""
        busy = [rec for _, rec, _ in results if rec.get("interfered") is True]
        if busy and job.attempt < self.retries:
            job.attempt += 1
            return True
        if busy and self.retries:
            for rec in busy:
                rec["interference"] = f"{rec['interference']} (still after {job.attempt} retries)"
        if job in self.running:
            self.running.remove(job)
        for case, rec, _ in results:
            if rec.get("status") == "oom":
                key = (_sweep_key(case), job.pass_index)
                self.oom_at[key] = min(case.batch_size, self.oom_at.get(key, case.batch_size))
        if self.deadline is not None:
            self._spend(job, results)
        return False

    def _skip(self, case: Case, job: Job, message: str) -> CellResult:
        rec = base_record(case, self.ctx, self.config, job.pass_index)
        rec.update(status="skipped", message=message)
        return case, rec, ()

    def _spend(self, job: Job, results: list[CellResult]) -> None:
        """The budget's policy after a job: pool its ratios with the cell's earlier passes and, when
        the cell is short of its target (or was measured on a busy machine), queue another pass
        (`_order_extras` decides which goes next, `extra_rule` how long it times)."""
        busy, target, window, load = False, None, 0.0, 0.0
        pooled: dict[str, list[float]] = {}
        for case, rec, _ in results:
            busy = busy or rec.get("interfered") is True
            window = max(window, float(rec.get("measure_s") or 0.0))
            load = max(load, float(rec.get("cost_load_s") or 0.0))
            blocks = rec.get("ratio_samples")
            if not blocks or not isinstance(rec.get("ratio_ci_target"), (int, float)):
                continue
            target = float(rec["ratio_ci_target"])
            pooled[case.runner] = self.ratios.setdefault((case.pair_id, case.runner), [])
            pooled[case.runner].extend(float(b) for b in blocks)
        cell = job.cells or job.cases
        key = cell[0].pair_id if cell else ""
        windows = self.windows.setdefault(key, [])
        windows.append(window)
        cost = self.clock() - (job.started if job.started is not None else self.clock())
        if not job.extra:  # a model's loading is paid once (the first cell's includes the process's warm-up)
            self.first_fixed.append(max(0.0, cost - window - load))
        if not cell or target is None or self.extra_passes.get(key, 0) >= EXTRA_PASSES:
            return
        need = cell_need(pooled, target, windows, max(0.0, cost - window), len(cell), busy)
        if need is None:
            return
        self.extra_passes[key] = self.extra_passes.get(key, 0) + 1
        extra = Job(list(cell), self.next_pass, order=len(self.pending), batch_size=cell[0].batch_size,
                    sweeps=frozenset(_sweep_key(c) for c in cell), extra=True, cells=list(cell), need=need)
        self.next_pass += 1
        self.total += len(cell)
        self.pending.append(extra)

    def _order_extras(self) -> None:
        """First passes first; then the extra passes whose cells can reach their target in the time
        left, the least timing first (interfered ones before all), then the rest, the furthest
        from its target first."""
        assert self.deadline is not None
        left = self.deadline - self.clock()

        def key(j: Job) -> tuple:
            need = j.need
            assert need is not None
            if need.short == float("inf") and need.window_s > 0 and reachable(need, left):
                return (0, need.window_s)
            if reachable(need, left):
                return (1, need.window_s)
            return (2, -need.short)

        first = [j for j in self.pending if not j.extra]
        self.pending = first + sorted((j for j in self.pending if j.extra), key=key)

    def abandon(self, job: Job) -> None:
        """A job whose launcher gave up on it (its results are recorded as failures by the caller)."""
        if job in self.running:
            self.running.remove(job)

    def __bool__(self) -> bool:
        return bool(self.pending or self.running)


def _empty(job: Job) -> Job:
    """`job` with nothing left to measure (its cases were all skipped)."""
    job.cases = []
    return job
