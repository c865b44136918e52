"""Runner registry: built-ins (``torch``, ``pipeline``, ``onnxruntime``) and any registered
through `register_runner` or the ``benchbed.runners`` entry point, all the same way."""

from __future__ import annotations

import re
from importlib.metadata import entry_points

from .base import Cache, PhaseTimes, Runner, RunnerUnavailable, StagedRunner, no_cache
from .onnx import OnnxRuntimeRunner
from .pipeline import PipelineRunner, build_pipeline
from .raw import BucketedTorchRunner, TorchRunner

__all__ = ["Cache", "PhaseTimes", "Runner", "RunnerUnavailable", "StagedRunner", "PipelineRunner", "TorchRunner", "OnnxRuntimeRunner", "build_pipeline",
           "get_runner", "no_cache", "register_runner", "runner_descriptions", "runner_names", "DEFAULT_REFERENCE"]

#: The runner every other runner of a cell is compared with, unless a suite or --reference says otherwise.
DEFAULT_REFERENCE = "torch"

_REGISTRY: dict[str, type[Runner]] = {}
_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_loaded_plugins = False


def register_runner(cls: type[Runner]) -> type[Runner]:
    """Register a runner class under its `NAME` (usable as a decorator)."""
    name = getattr(cls, "NAME", None)
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"runner NAME must be 1-32 of a-z 0-9 _ - starting with a letter, got {name!r}")
    _REGISTRY[name] = cls
    return cls


for _cls in (TorchRunner, PipelineRunner, OnnxRuntimeRunner, BucketedTorchRunner):
    register_runner(_cls)


def _load_plugins() -> None:
    global _loaded_plugins
    if _loaded_plugins:
        return
    _loaded_plugins = True
    for ep in entry_points(group="benchbed.runners"):
        register_runner(ep.load())


def runner_names() -> list[str]:
    _load_plugins()
    return list(_REGISTRY)


def get_runner(name: str) -> type[Runner]:
    """The runner class registered as `name`; an unknown name is a `SpecError`, never a fallback."""
    from ..spec import SpecError

    _load_plugins()
    if name not in _REGISTRY:
        raise SpecError(f"unknown runner {name!r} (valid: {', '.join(_REGISTRY)})")
    return _REGISTRY[name]


def runner_descriptions() -> dict[str, str]:
    _load_plugins()
    return {name: cls.DESCRIPTION for name, cls in _REGISTRY.items()}
