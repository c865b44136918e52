"""The ``local`` launcher (the default): each cell in this process, or in a fresh subprocess when
the run's isolation setting says so — always (``--isolate``), never (``--no-isolate``), or ``auto``:
CUDA cells, and every cell when ``--case-timeout`` is set (a hung call is stopped by killing its
process). A cell this machine cannot run is recorded as skipped here: no process is started to
find that out."""

from __future__ import annotations

from ...spec import Case
from ..records import CellResult
from ..config import EngineConfig
from ...runners.failures import unavailable_reason
from ..schedule import Job
from .base import Launcher, register_launcher
from .in_process import InProcess
from .isolated import Subprocess

__all__ = ["Local", "isolates"]


def isolates(config: EngineConfig, case: Case) -> bool:
    """Whether the cell of `case` runs in a fresh subprocess under `config`."""
    mode = config.isolate
    if mode == "auto" and config.case_timeout_s is not None:
        return True  # a timeout is enforced by killing the cell's process
    return mode == "always" or (mode == "auto" and case.device.startswith("cuda"))


@register_launcher
class Local(Launcher):
    NAME = "local"
    description = "this process, or a subprocess for CUDA cells, --isolate and --case-timeout (the default)"

    def bind(self, *args, **kwargs) -> "Local":  # type: ignore[no-untyped-def]
        super().bind(*args, **kwargs)
        self.here = InProcess().bind(*args, **kwargs)
        self.child = Subprocess().bind(*args, **kwargs)
        return self

    def measure(self, job: Job) -> tuple[list[CellResult], bool]:
        case = job.cases[0]
        if isolates(self.config, case) and unavailable_reason(case) is None:
            return self.child.measure(job)
        return self.here.measure(job)
