"""The launcher base and registry (see the package's docstring)."""


from __future__ import annotations

import time
from typing import Any, Callable

from ...spec import SpecError
from ..records import CellResult
from ..config import EngineConfig, RunContext
from ..schedule import Job, Schedule
from ..workbench import Workbench

__all__ = ["Launcher", "OnResults", "register_launcher", "get_launcher", "launcher_names", "check_launcher",
           "BUILTIN_LAUNCHERS"]

#: Called with a finished job's results (one per case) and whether they were already stored.
OnResults = Callable[[list[CellResult], bool], None]


class Launcher:
    """Measures the jobs of a schedule. Subclasses set `NAME` and implement `measure`; one that
    measures several jobs at once overrides `run`."""

    NAME = ""
    description = ""

    def bind(self, config: EngineConfig, ctx: RunContext, workbench: Workbench) -> "Launcher":
        """The run this launcher serves: its settings, its context and this process's workbench."""
        self.config, self.ctx, self.workbench = config, ctx, workbench
        return self

    def notes(self) -> list[str]:
        """One line per policy this launcher cannot apply (said once at the start of a run)."""
        return []

    def measure(self, job: Job) -> tuple[list[CellResult], bool]:
        """Measure one job: (results, whether they were stored already)."""
        raise NotImplementedError

    def run(self, schedule: Schedule, on_results: OnResults) -> None:
        """One ready job at a time, in the schedule's order."""
        while schedule:
            ready = schedule.ready(limit=1)
            if not ready and not schedule:  # a spent budget dropped the extra passes left
                break
            if not ready:  # pragma: no cover - every sweep has a smallest batch, so something is ready
                raise RuntimeError("schedule has jobs but none is ready")
            job, skipped = ready[0]
            if skipped:
                on_results(skipped, False)
            while job.cases:
                if job.attempt:
                    time.sleep(self.config.interference_pause_s)  # let whatever was running finish
                results, stored, extra = self.contained(job)
                if not schedule.finish(job, results + extra):
                    on_results(results, stored)
                    if extra:
                        on_results(extra, False)
                    break

    def contained(self, job: Job) -> tuple[list[CellResult], bool, list[CellResult]]:
        """`measure(job)`, with a plug-in's failure kept to its job: an exception, a value that is
        not ``(results, stored)``, or results missing a case become error records naming the
        launcher, and the run goes on (a ``WriteFailed`` from storing still ends it). Returns
        (results, whether they were stored, error records of missing cases, never stored)."""
        from ...atomic import WriteFailed
        from ...display import clip, console_safe
        from ..wire import failure_results

        def failed(why: str, cases: list[Any]) -> list[CellResult]:
            return failure_results(cases, self.config, self.ctx, job.pass_index, "error",
                                   console_safe(f"launcher {self.NAME!r}: {clip(why, 500)}", keep_newlines=False))

        try:
            got = self.measure(job)
        except WriteFailed:
            raise
        except Exception as exc:
            return failed(f"measure raised {type(exc).__name__}: {exc}", job.cases), False, []
        if not (isinstance(got, tuple) and len(got) == 2 and isinstance(got[0], list)):
            return failed(f"measure returned {clip(repr(got), 120)}, not (results, stored)", job.cases), False, []
        results, stored = got
        wanted = {c.case_id: c for c in job.cases}
        good = [r for r in results if isinstance(r, tuple) and len(r) == 3 and isinstance(r[1], dict)
                and getattr(r[0], "case_id", None) in wanted]
        if len(good) < len(results):
            return failed(f"measure returned {len(results) - len(good)} result(s) that are not (case, record, "
                          f"samples) of this job's cases", job.cases), False, []
        missing = [c for cid, c in wanted.items() if cid not in {r[0].case_id for r in good}]
        extra = failed(f"measure returned no record for {len(missing)} of the job's {len(job.cases)} case(s)",
                       missing) if missing else []
        return good, bool(stored), extra

    def close(self) -> None:
        """Release what the launcher holds (a cluster connection)."""


_REGISTRY: dict[str, type[Launcher]] = {}


def _ours(cls: type) -> bool:
    """Whether `cls` is defined in this package's files (also when a module runs as ``__main__``)."""
    import inspect
    import os

    try:
        return os.path.dirname(os.path.abspath(inspect.getfile(cls))) == os.path.dirname(os.path.abspath(__file__))
    except (TypeError, OSError):
        return False


def register_launcher(cls: type[Launcher]) -> type[Launcher]:
    """Add a launcher class under its `NAME` (usable as a decorator)."""
    if not cls.NAME:
        raise ValueError(f"launcher {cls.__name__} has no NAME")
    if cls.NAME in BUILTIN_LAUNCHERS and not _ours(cls):
        raise SpecError(f"launcher {cls.__name__} takes the name {cls.NAME!r} of a built-in launcher; choose another "
                        f"(built-ins: {', '.join(BUILTIN_LAUNCHERS)})")
    _REGISTRY[cls.NAME] = cls
    return cls


def launcher_names() -> list[str]:
    _builtin()
    return list(_REGISTRY)


def get_launcher(name: str, *args: Any, **kwargs: Any) -> Launcher:
    """A new launcher of the registered `name`; `SpecError` naming the valid ones otherwise."""
    _builtin()
    if name not in _REGISTRY:
        raise SpecError(f"unknown launcher {name!r} (valid: {', '.join(_REGISTRY)})")
    return _REGISTRY[name](*args, **kwargs)


def check_launcher(launcher: str | None, cluster: str, cluster_options: bool) -> tuple[str, str | None]:
    """``--launcher`` and ``--cluster`` as (launcher name, cluster address or None); a `SpecError`
    for an unknown name, both given, or cluster-only options without a cluster. Called after a
    suite loaded: a suite may register a launcher."""
    if cluster not in ("local", "ray") and not str(cluster).startswith("ray://"):
        raise SpecError(f"--cluster {cluster!r} (valid: local, ray, ray://HOST:PORT)")
    if launcher is not None:
        if launcher not in launcher_names():
            raise SpecError(f"unknown launcher {launcher!r} (valid: {', '.join(launcher_names())})")
        if cluster != "local":
            raise SpecError("--launcher and --cluster both say where cells run; give one")
    if cluster == "local" and launcher != "ray" and cluster_options:
        raise SpecError("--cluster-select and --cluster-ship-code need --cluster ray")
    if cluster != "local" or launcher == "ray":
        return "ray", None if cluster in ("ray", "local") else cluster
    return launcher or "local", None


#: the built-in launchers' modules, each registering itself when loaded: found the way a plug-in's
#: module is, by name, so that this module imports none of them (they import it)
_BUILTIN_MODULES = tuple(f"benchbed.execute.launchers.{m}" for m in ("in_process", "isolated", "local", "ray_cluster"))
#: names a plug-in may not take (it would silently replace or be shadowed by a built-in)
BUILTIN_LAUNCHERS = ("in-process", "subprocess", "local", "ray")


def _builtin() -> None:
    import importlib

    for module in _BUILTIN_MODULES:
        importlib.import_module(module)
