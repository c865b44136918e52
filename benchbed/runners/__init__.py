"""Runner registry: built-ins (``torch``, ``pipeline``, ``onnxruntime``, ``torch-bucketed``; for
training tasks ``torch`` and ``trainer``) and any registered through `register_runner` or the
``benchbed.runners`` entry point, all the same way. Runners are registered per family
(``inference`` or ``training``, the class's ``FAMILY``), so ``torch`` names the raw module call for
inference tasks and the hand-written loop for training tasks."""

from __future__ import annotations

import re
from typing import Any, Iterable

from ..plugins import EntryPoints
from ..spec import TRAINING_RUNNERS
from .base import Cache, PhaseTimes, Runner, RunnerUnavailable, StagedRunner, no_cache
from .onnx import OnnxRuntimeRunner
from .pipeline import PipelineRunner, build_pipeline
from .raw import BucketedTorchRunner, TorchRunner
from .training import TrainerRunner, TrainLoopRunner

__all__ = ["Cache", "PhaseTimes", "Runner", "RunnerUnavailable", "StagedRunner", "PipelineRunner", "TorchRunner",
           "OnnxRuntimeRunner", "TrainLoopRunner", "TrainerRunner", "build_pipeline", "get_runner", "make_runner", "no_cache",
           "register_runner", "runner_descriptions", "runner_names", "check_runner_families",
           "FAMILIES", "TRAINING_RUNNERS"]

#: What a runner serves: inference tasks, or training tasks (a runner is registered per family).
FAMILIES = ("inference", "training")

_REGISTRY: dict[str, dict[str, type[Runner]]] = {family: {} for family in FAMILIES}
_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")


def register_runner(cls: type[Runner]) -> type[Runner]:
    """Register a runner class under its `NAME` in its `FAMILY` (usable as a decorator)."""
    name = getattr(cls, "NAME", None)
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"runner NAME must be 1-32 of a-z 0-9 _ - starting with a letter, got {name!r}")
    family = getattr(cls, "FAMILY", "inference")
    if family not in _REGISTRY:
        raise ValueError(f"runner FAMILY must be one of {', '.join(FAMILIES)}, got {family!r}")
    _REGISTRY[family][name] = cls
    return cls


for _cls in (TorchRunner, PipelineRunner, OnnxRuntimeRunner, BucketedTorchRunner, TrainLoopRunner, TrainerRunner):
    register_runner(_cls)


_load_plugins = EntryPoints("benchbed.runners", register_runner).load


def runner_names(family: str | None = None) -> list[str]:
    """Registered runner names, of one family or of all."""
    _load_plugins()
    families = [family] if family else list(FAMILIES)
    return list(dict.fromkeys(n for f in families for n in _REGISTRY[f]))


def _family(task: str | None) -> str:
    from ..spec import is_training_task

    return "training" if task is not None and is_training_task(task) else "inference"


def get_runner(name: str, task: str | None = None) -> type[Runner]:
    """The runner class registered as `name` for `task`'s family (inference when no task is given);
    an unknown name is a `SpecError`, never a fallback."""
    from ..spec import SpecError

    _load_plugins()
    family = _family(task)
    if name not in _REGISTRY[family]:
        raise SpecError(_wrong_family(name, task, family) if name in runner_names()
                        else f"unknown runner {name!r} (valid: {', '.join(runner_names())})")
    return _REGISTRY[family][name]


def make_runner(case: Any, task: Any, bundle: Any, inputs: list[Any], sync: Any, cache: Cache = no_cache,
                seed: int = 0) -> Runner:
    """The runner of `case` built on `bundle` and `inputs` (not prepared yet); `RunnerUnavailable`
    with the runner's own reason when it cannot serve the case. The cell and an environment's
    worker build runners through this one function."""
    cls = get_runner(case.runner, case.task)
    reason = cls.unavailable(task, case)
    if reason:
        raise RunnerUnavailable(reason)
    return cls(case, task, bundle, inputs, sync, cache=cache, seed=seed)


def _wrong_family(name: str, task: str | None, family: str) -> str:
    valid = ", ".join(runner_names(family))
    if family == "training":
        return f"runner {name!r} is not a training runner (valid for {task}: {valid})"
    return f"runner {name!r} serves training tasks only (valid for {task or 'inference tasks'}: {valid})"


def check_runner_families(pairs: Iterable[tuple[str, str]]) -> None:
    """A `SpecError` (one line) for the first (task, runner) whose runner does not serve the task's
    family: ``trainer`` for an inference task, ``pipeline`` for a training task."""
    for task, runner in pairs:
        get_runner(runner, task)


def runner_descriptions(family: str = "inference") -> dict[str, str]:
    """One line per runner of `family`, by name (``benchbed list``)."""
    _load_plugins()
    return {name: cls.DESCRIPTION for name, cls in _REGISTRY[family].items()}
