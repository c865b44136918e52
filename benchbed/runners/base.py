"""How a task is invoked. A runner turns (task, bundle, inputs) into a callable that returns the
task's outputs, plus a phase-timed variant used in a separate, untimed-loop pass."""

from __future__ import annotations

import time
from typing import Any, Callable, ClassVar

__all__ = ["Runner", "PhaseTimes"]

PhaseTimes = dict[str, float]


class Runner:
    """Base of every runner; `NAME` is the value of the ``runner`` axis."""

    NAME: ClassVar[str]

    def __init__(self, task: Any, bundle: Any, inputs: list[Any], device: str, batch_size: int,
                 sync: Callable[[], None], clock: Callable[[], float] = time.perf_counter) -> None:
        self.task = task
        self.bundle = bundle
        self.inputs = inputs
        self.device = device
        self.batch_size = batch_size
        self.sync = sync
        self.clock = clock

    #: A per-step streamer handed to generation calls (set by the engine for streaming tasks).
    streamer: Any = None

    def __call__(self) -> list[Any]:
        """One call over all inputs; returns one output per input."""
        raise NotImplementedError

    def call_with_phases(self) -> tuple[list[Any], PhaseTimes]:
        """One call, also returning seconds spent in preprocess / forward / postprocess."""
        raise NotImplementedError
