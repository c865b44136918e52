"""benchbed: raw PyTorch module calls vs Hugging Face pipelines, measured, verified and stored.

The public API: describe cases with `Matrix` / `Case`, run them with a `Session`, read results
back with `read_results`.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .defaults import (
    DEFAULT_MATRIX,
    GENERATION_FULL,
    GENERATION_QUICK,
    QUICK_MATRIX,
    SPEECH_FULL,
    SPEECH_QUICK,
    TEXT_TASKS,
    VISION_FULL,
    VISION_QUICK,
    ZERO_SHOT_FULL,
    ZERO_SHOT_QUICK,
)
from .measure import StopRule
from .spec import Case, Matrix, SpecError
from .store import read_results

try:
    __version__ = version("benchbed")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "Case", "Matrix", "SpecError", "StopRule", "Session", "EngineConfig", "read_results",
    "DEFAULT_MATRIX", "QUICK_MATRIX", "TEXT_TASKS", "GENERATION_QUICK", "GENERATION_FULL", "ZERO_SHOT_QUICK",
    "ZERO_SHOT_FULL", "VISION_QUICK", "VISION_FULL", "SPEECH_QUICK", "SPEECH_FULL", "__version__",
]


def __getattr__(name: str):  # the engine imports torch; load it only when asked for
    if name in ("Session", "EngineConfig"):
        from . import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'benchbed' has no attribute {name!r}")
