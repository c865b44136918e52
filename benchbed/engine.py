"""The run that the CLI, the pytest plugin and the Python API all drive.

A `Session` is one run: an id, an environment fingerprint, a store, the run-wide settings and a
workbench of cached models. `Session.run` hands its cases, as a `Schedule` of cells and passes, to
a launcher (`benchbed.execute.launchers`: this process, a fresh one per cell, a Ray cluster…), and
stores one record per runner as each cell's arrive: failures are records, and the run goes on.
"""

from __future__ import annotations

import datetime as _dt
import os
import secrets
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
from .execute.cell import base_record, measure_cell
from .execute.launchers import Launcher, get_launcher
from .execute.launchers.local import isolates
from .execute.schedule import Schedule, cells_of_cases
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
        return isolates(self.config, case)

    def run(self, cases: list[Case], progress: Callable[[int, int, CaseResult], None] | None = None,
            cluster: Launcher | None = None, done: set[tuple[str, int]] | None = None,
            launcher: Launcher | None = None) -> list[CaseResult]:
        """Every cell, `config.passes` times over, through a launcher (`benchbed.execute.launchers`:
        the default ``local``, or `cluster` / `launcher`), under the schedule's policies
        (`benchbed.execute.schedule`: resume from `done`, the out-of-memory sweep, interference
        retry), storing each record as it arrives."""
        launcher = (launcher or cluster or get_launcher("local")).bind(self.config, self.ctx, self.workbench)
        schedule = Schedule(cases, self.config, self.ctx, done)
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
        schedule = Schedule(cases, self.config, self.ctx, passes=[pass_index])
        out: list[CaseResult] = []
        get_launcher("local").bind(self.config, self.ctx, self.workbench).run(
            schedule, lambda results, stored: out.extend(self._keep(c, r, s, store=not stored) for c, r, s in results))
        return out

    def run_case(self, case: Case, pass_index: int = 0) -> CaseResult:
        """One case alone, in this process whatever the isolation setting."""
        case = case.canonical()
        (result,) = measure_cell([case], self.workbench, self.config, self.ctx, pass_index)
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
