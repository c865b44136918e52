"""How a task is invoked. A runner turns (task, bundle, inputs) into a callable that returns the
task's outputs, plus a phase-timed variant used in a separate, untimed-loop pass.

Runners are plugins, like tasks: each is a subclass with a `NAME` (the value of the ``runner``
axis), registered by name (`benchbed.runners.register_runner` or the ``benchbed.runners`` entry
point). The engine builds one per case with the same module object and the same inputs as every
other runner of the cell, asks `unavailable` first (a reason becomes a ``skipped`` record), calls
`prepare` once outside any timed call (an export, a session; its seconds are recorded as
``setup_s``), then times `__call__`.
"""

from __future__ import annotations

import time
from typing import Any, Callable, ClassVar

__all__ = ["Runner", "StagedRunner", "PhaseTimes", "Cache", "no_cache", "RunnerUnavailable", "tensor_bytes"]

PhaseTimes = dict[str, float]
#: ``cache(key, factory)``: the object cached under `key` for the run, made by `factory` once.
Cache = Callable[[tuple, Callable[[], Any]], Any]


def tensor_bytes(*groups: Any) -> int:
    """Bytes of the distinct storages behind the tensors in `groups` (a tied weight counts once)."""
    seen: dict[int, int] = {}
    for group in groups:
        for t in group:
            if t is None:
                continue
            storage = t.untyped_storage()
            seen[storage.data_ptr() or id(storage)] = storage.nbytes()
    return sum(seen.values())


def no_cache(key: tuple, factory: Callable[[], Any]) -> Any:
    return factory()


class Runner:
    """Base of every runner; `NAME` is the value of the ``runner`` axis."""

    NAME: ClassVar[str]
    #: One line for ``benchbed list``.
    DESCRIPTION: ClassVar[str] = ""
    #: The runner whose work this one does and then some (the pipeline calls the raw module plus
    #: its plumbing): measured far faster than that runner, with the same answers, is implausible.
    SUPERSET_OF: ClassVar[str | None] = None
    #: Which tasks the runner serves: ``inference`` tasks, or ``training`` tasks (see
    #: `benchbed.runners.training`); one name may exist in both families (``torch``).
    FAMILY: ClassVar[str] = "inference"

    def __init__(self, case: Any, task: Any, bundle: Any, inputs: list[Any], sync: Callable[[], None],
                 clock: Callable[[], float] = time.perf_counter, cache: Cache = no_cache, seed: int = 0) -> None:
        #: The case this runner measures: device, batch size, precision and options are read from it.
        self.case = case
        self.task = task
        self.bundle = bundle
        self.inputs = inputs
        self.device = case.device
        self.batch_size = case.batch_size
        self.dtype = case.dtype
        #: DataLoader workers (the ``workers`` option; the dataset scenario and training tasks).
        self.workers = int(case.option("workers", 0))
        self.sync = sync
        self.clock = clock
        self.cache = cache
        #: The run's seed (training steps draw their dropout from it).
        self.seed = seed

    #: A per-step streamer handed to generation calls (set by the engine for streaming tasks).
    streamer: Any = None
    #: Whether this runner's device memory lives in torch's caching allocator (ONNX Runtime's arena
    #: does not: its allocator peaks would read zero, so they are left empty rather than wrong).
    TORCH_ALLOCATOR: ClassVar[bool] = True

    def state_bytes(self) -> int | None:
        """Bytes of device tensors this runner holds between calls and needs for them: the module's
        parameters and buffers (shared with the other inference runners of the cell, which call the
        same module). Its own allocator peak is this plus the increase over one call."""
        module = getattr(self.bundle, "module", None)
        return tensor_bytes(module.parameters(), module.buffers()) if module is not None else None

    @classmethod
    def unavailable(cls, task: Any, case: Any) -> str | None:
        """Why this runner cannot serve `case` of `task` here (a ``skipped`` record), or None."""
        return None

    def prepare(self) -> float:
        """One-off work before the first call (export, session creation); returns the seconds it
        took that were not already spent by an earlier case (cached work costs 0)."""
        return 0.0

    def __call__(self) -> list[Any]:
        """One call over all inputs; returns one output per input."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the runner holds beyond its module (a thread, a temporary folder); called
        once the cell is measured."""

    def call_with_phases(self) -> tuple[list[Any], PhaseTimes]:
        """One call, also returning seconds spent in preprocess / forward / postprocess (a runner
        that cannot split its call returns no phases)."""
        return self(), {}

    def call_in_stages(self, stage: Callable[..., Any]) -> list[Any]:
        """One call whose stages run through ``stage(NAME, fn, *args)`` (``preprocess``,
        ``forward``, ``postprocess``), which runs ``fn(*args)`` and returns its result; `benchbed
        explain` profiles the call this way. A runner that cannot split its call runs it whole: all
        of it is the stage ``other``."""
        return self()

    #: Seconds from the start of the last `run_examples` call to its first result.
    first_result_s: float | None = None

    def example_batches(self, examples: list[Any], batch_size: int) -> list[list[int]]:
        """How this runner groups `examples` into batches in the dataset scenario: consecutive
        positions, as a plain loop and a DataLoader do (a runner that buckets says so here, and
        its padding waste is computed from it)."""
        from ..workloads.sampler import batches_of

        return batches_of(len(examples), batch_size)

    def run_examples(self, examples: list[Any]) -> list[Any]:
        """Every example end to end (the dataset scenario): a loop over `example_batches`, one call
        per batch; returns one output per example, in the examples' order."""
        out: list[Any] = [None] * len(examples)
        start = self.clock()
        self.first_result_s = None
        for batch in self.example_batches(examples, self.batch_size):
            self.inputs = [examples[i] for i in batch]
            for i, result in zip(batch, self()):
                out[i] = result
            if self.first_result_s is None:
                self.first_result_s = self.clock() - start
        return out


class RunnerUnavailable(Exception):
    """Raised by `Runner.prepare` when the runner finds it cannot serve the case after all (an
    export that fails on this architecture): a ``skipped`` record with the reason."""


class StagedRunner(Runner):
    """A runner made of the task's own preprocess and postprocess around a forward of its own
    (the raw module call, an exported graph...): subclasses implement `forward` only."""

    def forward(self, encoded: Any) -> Any:
        raise NotImplementedError

    def __call__(self) -> list[Any]:
        import torch

        with torch.inference_mode():
            enc = self.task.preprocess(self.bundle, self.inputs, self.device)
            return self.task.postprocess(self.bundle, enc, self.forward(enc))

    def call_in_stages(self, stage: Callable[..., Any]) -> list[Any]:
        import torch

        with torch.inference_mode():
            enc = stage("preprocess", self.task.preprocess, self.bundle, self.inputs, self.device)
            out = stage("forward", self.forward, enc)
            return stage("postprocess", self.task.postprocess, self.bundle, enc, out)

    def call_with_phases(self) -> tuple[list[Any], PhaseTimes]:
        import torch

        clock, sync = self.clock, self.sync
        with torch.inference_mode():
            t0 = clock()
            enc = self.task.preprocess(self.bundle, self.inputs, self.device)
            sync()
            t1 = clock()
            out = self.forward(enc)
            sync()
            t2 = clock()
            result = self.task.postprocess(self.bundle, enc, out)
            sync()
            t3 = clock()
        return result, {"pre": t1 - t0, "fwd": t2 - t1, "post": t3 - t2}
