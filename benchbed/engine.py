"""The run that the CLI, the pytest plugin and the Python API all drive.

A `Session` is one run: its identity (`RunContext`: id, start, environment), its store, the
run-wide settings and a workbench of cached models. `Session.run` hands its cases, as a `Schedule`
of cells and passes (resume, the out-of-memory sweep, interference retry), to a launcher
(`benchbed.execute.launchers`: this process, a fresh one per cell, a Ray cluster...), and stores
one record per runner as each cell's arrive: failures are records, and the run goes on.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any, Callable

from .execute import ISOLATE_MODES, PAIRINGS, EngineConfig, Workbench, unavailable_reason
from .execute.cell import measure_cell
from .execute.config import CaseResult, new_run_id, start_run
from .execute.launchers import Launcher, get_launcher
from .execute.schedule import Schedule, cells_of_cases
from .runners.build import setup_process
from .spec import Case

__all__ = ["EngineConfig", "Session", "CaseResult", "ISOLATE_MODES", "PAIRINGS", "new_run_id", "unavailable_reason",
           "cells_of_cases", "derive"]


class Session:
    """One benchmark run writing records under the folder `results` (see `benchbed.store`)."""

    def __init__(self, results: str = "results", config: EngineConfig = EngineConfig(), run_id: str | None = None,
                 store: Any = None) -> None:
        from .store import open_store

        self.config = config
        setup_process(config)
        self.ctx = start_run(str(results), run_id)
        self.store = store if store is not None else open_store(results, self.ctx.run_id)
        self.workbench = Workbench(config.seed, config.trust_remote_code)
        #: every finished case of this session, in order
        self.finished: list[CaseResult] = []

    @property
    def run_id(self) -> str:
        return self.ctx.run_id

    @property
    def env(self) -> dict[str, Any]:
        return self.ctx.env

    def run(self, cases: list[Case], progress: Callable[[int, int, CaseResult], None] | None = None,
            done: set[tuple[str, int]] | None = None, launcher: Launcher | None = None,
            passes: list[int] | None = None) -> list[CaseResult]:
        """Every cell, `config.passes` times over (or the `passes` given), through `launcher` (the
        default ``local``), under the schedule's policies, storing each record as it arrives."""
        launcher = (launcher or get_launcher("local")).bind(self.config, self.ctx, self.workbench)
        schedule = Schedule(cases, self.config, self.ctx, done, passes=passes)
        out: list[CaseResult] = []

        def on_results(results: list[Any], stored: bool) -> None:
            for case, rec, samples in results:
                out.append(self._keep(case, rec, samples, store=not stored))
                if progress is not None:
                    progress(len(out), schedule.total, out[-1])

        launcher.run(schedule, on_results)
        return out

    def run_cell(self, cases: list[Case], pass_index: int = 0) -> list[CaseResult]:
        """The runners of one cell, through the default launcher (pass `pass_index`)."""
        return self.run(cases, passes=[pass_index])

    def run_case(self, case: Case, pass_index: int = 0) -> CaseResult:
        """One case alone, in this process whatever the isolation setting."""
        case = case.canonical()
        (result,) = measure_cell([case], self.workbench, self.config, self.ctx, pass_index)
        return self._keep(*result, store=True)

    def close(self) -> str | None:
        """End the run's environment workers; compact this run's per-case files into one (see
        `benchbed.store.compact_run`)."""
        from .store import compact_run

        self.workbench.close()
        run_dir = getattr(self.store, "run_dir", None)
        if not isinstance(run_dir, os.PathLike) or not os.path.isdir(run_dir):
            return None  # remote stores stay one file per case; `benchbed merge` compacts them
        if os.environ.get("BENCHBED_RUN_ID"):
            return None  # other shards may still be writing into this run
        return compact_run(run_dir)

    def _keep(self, case: Case, rec: dict[str, Any], samples: tuple[float, ...], store: bool) -> CaseResult:
        path = self.store.write(rec) if store else None
        result = CaseResult(case=case, record=rec, path=path, samples=samples)
        self.finished.append(result)
        return result


def derive(session: Session, run_id: str | None = None, store: Any = None, **config_changes: Any) -> Session:
    """A session sharing `session`'s workbench (models are cached for the seed, so they stay valid)
    with another run id, store or settings (an injected slowdown, another pairing)."""
    if "seed" in config_changes and config_changes["seed"] != session.config.seed:
        raise ValueError("a derived session must keep the seed: its cached models depend on it")
    other = object.__new__(Session)
    other.config = replace(session.config, **config_changes)
    other.ctx = replace(session.ctx, run_id=run_id) if run_id else session.ctx
    other.store = store if store is not None else session.store
    other.workbench = session.workbench
    other.finished = []
    return other
