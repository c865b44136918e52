"""The ``in-process`` launcher: the cell is measured in this process, with its cached models."""

from __future__ import annotations

from ..cell import measure_cell
from ..records import CellResult
from ..schedule import Job
from .base import Launcher, register_launcher

__all__ = ["InProcess"]


@register_launcher
class InProcess(Launcher):
    NAME = "in-process"
    description = "this process, with its cached models (fastest; a hung call cannot be stopped)"

    def notes(self) -> list[str]:
        if self.config.case_timeout_s is not None:
            return ["the in-process launcher cannot stop a hung call: --case-timeout is not enforced"]
        return []

    def measure(self, job: Job) -> tuple[list[CellResult], bool]:
        return measure_cell(job.cases, self.workbench, job.config_for(self.config), self.ctx, job.pass_index), False
