"""The run that the CLI, the pytest plugin and the Python API all drive.

A `Session` is one run: an id, an environment fingerprint, a store, the run-wide settings and a
workbench of cached models. `Session.run` groups cases into cells (cases that differ only in the
runner), measures each cell with `benchbed.execute.measure_cell` through a launcher (this process,
or a fresh one when the cell is isolated), stores one record per runner, and goes on whatever a
cell does: failures are records.
"""

from __future__ import annotations

import datetime as _dt
import os
import secrets
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from .execute import (
    ISOLATE_MODES,
    PAIRINGS,
    EngineConfig,
    RunContext,
    Workbench,
    unavailable_reason,
)
from .execute.cell import base_record
from .execute.launch import run_here, run_isolated
from .execute.workbench import setup_process
from .spec import Case

__all__ = ["EngineConfig", "Session", "CaseResult", "ISOLATE_MODES", "PAIRINGS", "new_run_id", "unavailable_reason",
           "cells_of_cases"]


@dataclass
class CaseResult:
    """A finished case: its record, where it was stored, and the raw samples for callers."""

    case: Case
    record: dict[str, Any]
    path: str | None = None
    samples: tuple[float, ...] = field(default=())

    @property
    def status(self) -> str:
        return self.record["status"]


def new_run_id(now: _dt.datetime | None = None) -> str:
    now = now or _dt.datetime.now(_dt.timezone.utc)
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


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


def _sweep_key(case: Case) -> str:
    """Id of a case's batch-size sweep: the case with its batch size left out."""
    return replace(case, batch_size=1).case_id


class Session:
    """One benchmark run writing records under the folder `results` (see `benchbed.store`)."""

    def __init__(self, results: str = "results", config: EngineConfig = EngineConfig(), run_id: str | None = None,
                 store: Any = None) -> None:
        from .env import collect_env
        from .store import open_store
        from .validate import check_run_id

        # CI shards of one nightly run share an id through the environment, so their records join.
        from_env = os.environ.get("BENCHBED_RUN_ID") or None
        run_id = run_id or from_env
        if run_id is not None:
            check_run_id(run_id, "BENCHBED_RUN_ID" if run_id == from_env else "run id")
        self.config = config
        self.results_root = str(results)
        setup_process(config)
        self.ctx = RunContext(run_id=run_id or new_run_id(), started_at=_dt.datetime.now(_dt.timezone.utc),
                              env=collect_env(), results=self.results_root)
        self.store = store if store is not None else open_store(results, self.ctx.run_id)
        self.workbench = Workbench(config.seed, config.trust_remote_code)
        #: every finished case of this session, in order
        self.finished: list[CaseResult] = []

    @property
    def run_id(self) -> str:
        return self.ctx.run_id

    @property
    def started_at(self) -> _dt.datetime:
        return self.ctx.started_at

    @property
    def env(self) -> dict[str, Any]:
        return self.ctx.env

    @property
    def results(self) -> list[CaseResult]:
        """Alias of `finished` (kept for callers of earlier versions)."""
        return self.finished

    def derive(self, run_id: str | None = None, store: Any = None, **config_changes: Any) -> "Session":
        """A session sharing this one's workbench (models are cached for the seed, so they stay
        valid) with another run id, store or settings — e.g. an injected slowdown."""
        if "seed" in config_changes and config_changes["seed"] != self.config.seed:
            raise ValueError("a derived session must keep the seed: its cached models depend on it")
        other = object.__new__(Session)
        other.config = replace(self.config, **config_changes)
        other.results_root = self.results_root
        other.ctx = replace(self.ctx, run_id=run_id) if run_id else self.ctx
        other.store = store if store is not None else self.store
        other.workbench = self.workbench
        other.finished = []
        return other

    def with_config(self, **changes: Any) -> "Session":
        return self.derive(**changes)

    def close(self) -> str | None:
        """Compact this run's per-case files into one (see `benchbed.store.compact_run`)."""
        from .store import compact_run

        run_dir = getattr(self.store, "run_dir", None)
        if not isinstance(run_dir, os.PathLike) or not os.path.isdir(run_dir):
            return None  # remote stores stay one file per case; `benchbed merge` compacts them
        if os.environ.get("BENCHBED_RUN_ID"):
            return None  # other shards may still be writing into this run
        return compact_run(run_dir)

    def isolates(self, case: Case) -> bool:
        """Whether the cell of `case` runs in a fresh subprocess under this session's settings."""
        mode = self.config.isolate
        if mode == "auto" and self.config.case_timeout_s is not None:
            return True  # a timeout is enforced by killing the cell's process
        return mode == "always" or (mode == "auto" and case.device.startswith("cuda"))

    def run(self, cases: list[Case], progress: Callable[[int, int, CaseResult], None] | None = None,
            cluster: Any = None, done: set[tuple[str, int]] | None = None) -> list[CaseResult]:
        """All cells, `config.passes` times over, interleaved (pass 1 of every cell, then pass 2,
        ...), so a slow drift of the machine's speed spreads over every cell instead of hitting a few.

        Batch-size sweeps stop at memory: once a batch size runs out of memory, the larger batch
        sizes of the same runner and cell are recorded as skipped rather than tried (in this
        process; a cluster measures every cell at once, so it tries them all).

        `cluster` (a `benchbed.execute.cluster.RayCluster`) measures the cells there instead, one
        task per cell; `done` holds (case id, pass) pairs already recorded (a resumed run), which
        are not measured again."""
        cells = cells_of_cases([c.canonical() for c in cases])
        done = done or set()
        if cluster is not None:
            return self._run_cluster(cells, cluster, progress, done)
        total = sum(1 for p in range(self.config.passes) for cell in cells for c in cell if (c.case_id, p) not in done)
        out: list[CaseResult] = []
        oom_at: dict[str, int] = {}
        for p in range(self.config.passes):
            for cell in cells:
                todo = []
                for case in cell:
                    if (case.case_id, p) in done:
                        continue  # recorded by the run this one resumes
                    sweep = _sweep_key(case)
                    if sweep in oom_at and case.batch_size > oom_at[sweep]:
                        out.append(self.skip_case(case, f"not run: batch size {oom_at[sweep]} already ran out of "
                                                        f"memory on this path", pass_index=p))
                        if progress is not None:
                            progress(len(out), total, out[-1])
                    else:
                        todo.append(case)
                for result in self.run_cell(todo, pass_index=p) if todo else []:
                    if result.status == "oom":
                        sweep = _sweep_key(result.case)
                        oom_at[sweep] = min(result.case.batch_size, oom_at.get(sweep, result.case.batch_size))
                    out.append(result)
                    if progress is not None:
                        progress(len(out), total, out[-1])
        return out

    def _run_cluster(self, cells: list[list[Case]], cluster: Any, progress: Any,
                     done: set[tuple[str, int]]) -> list[CaseResult]:
        """Every (cell, pass) not yet recorded, as tasks on the cluster; records stored as they arrive."""
        work = [([c for c in cell if (c.case_id, p) not in done], p)
                for p in range(self.config.passes) for cell in cells]
        work = [(cell, p) for cell, p in work if cell]
        total = sum(len(cell) for cell, _ in work)
        out: list[CaseResult] = []

        def on_cell(results: list[Any]) -> None:
            for case, rec, samples in results:
                out.append(self._keep(case, rec, samples, store=True))
                if progress is not None:
                    progress(len(out), total, out[-1])

        cluster.run(work, self.config, self.ctx, on_cell)
        return out

    def run_cell(self, cases: list[Case], pass_index: int = 0) -> list[CaseResult]:
        """The runners of one cell, in a fresh subprocess or in this one as `isolates` decides (a
        cell this machine cannot run is recorded as skipped here: no process is started to find that out)."""
        cases = [c.canonical() for c in cases]
        retry = self.config.on_interference == "retry"
        for attempt in range(self.config.interference_retries + 1 if retry else 1):
            if attempt:
                time.sleep(self.config.interference_pause_s)  # let whatever was running finish
            if self.isolates(cases[0]) and unavailable_reason(cases[0]) is None:
                results, stored = run_isolated(cases, self.config, self.ctx, pass_index, child_stores=not retry)
            else:
                results, stored = run_here(cases, self.workbench, self.config, self.ctx, pass_index), False
            busy = [rec for _, rec, _ in results if rec.get("interfered") is True]
            if not busy:
                break
            if retry and attempt == self.config.interference_retries:
                for rec in busy:
                    rec["interference"] = f"{rec['interference']} (still after {attempt} retries)"
        return [self._keep(case, rec, samples, store=not stored) for case, rec, samples in results]

    def run_one(self, case: Case, pass_index: int = 0) -> CaseResult:
        """One case alone (a cell of one runner)."""
        return self.run_cell([case], pass_index)[0]

    def run_case(self, case: Case, pass_index: int = 0) -> CaseResult:
        """One case alone, in this process whatever the isolation setting."""
        case = case.canonical()
        (result,) = run_here([case], self.workbench, self.config, self.ctx, pass_index)
        return self._keep(*result, store=True)

    def skip_case(self, case: Case, message: str, pass_index: int = 0, status: str = "skipped",
                  **columns: Any) -> CaseResult:
        """Store a record for a case that was not measured (status, message and any `columns`)."""
        rec = base_record(case, self.ctx, self.config, pass_index)
        rec.update(status=status, message=message, **columns)
        return self._keep(case, rec, (), store=True)

    def _keep(self, case: Case, rec: dict[str, Any], samples: tuple[float, ...], store: bool) -> CaseResult:
        path = self.store.write(rec) if store else None
        result = CaseResult(case=case, record=rec, path=path, samples=samples)
        self.finished.append(result)
        return result
