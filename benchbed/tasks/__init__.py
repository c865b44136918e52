"""Task registry: built-in tasks plus any registered through the ``benchbed.tasks`` entry point."""

from __future__ import annotations

from ..plugins import EntryPoints
from .base import Parity, Task, TextTask, Tolerance, tolerance
from .feature_extraction import FeatureExtraction
from .fill_mask import FillMask
from .image_classification import ImageClassification
from .question_answering import QuestionAnswering
from .speech_recognition import SpeechRecognition
from .summarization import Summarization, Text2TextGeneration
from .text_classification import TextClassification
from .text_generation import TextGeneration
from .token_classification import TokenClassification
from .training import TrainCausalLM, TrainTextClassification
from .zero_shot import ZeroShotClassification

__all__ = ["Parity", "Task", "TextTask", "Tolerance", "tolerance", "get_task", "register_task", "task_names"]

_REGISTRY: dict[str, type[Task]] = {
    t.name: t for t in (TextClassification, FeatureExtraction, FillMask, TokenClassification, TextGeneration,
                                 ZeroShotClassification, ImageClassification,
                                 SpeechRecognition, QuestionAnswering, Summarization, Text2TextGeneration,
                                 TrainTextClassification, TrainCausalLM)
}


def register_task(cls: type[Task]) -> type[Task]:
    """Register a task class under its `name` (usable as a decorator). A training task's name
    starts with ``train-`` (and only a training task's), so matrices can tell them apart."""
    from ..spec import TRAINING_PREFIX, is_training_task

    if bool(getattr(cls, "trains", False)) != is_training_task(cls.name):
        raise ValueError(f"task {cls.name!r}: training tasks, and only they, are named {TRAINING_PREFIX}...")
    _REGISTRY[cls.name] = cls
    return cls


_load_plugins = EntryPoints("benchbed.tasks", register_task).load


def task_names() -> list[str]:
    _load_plugins()
    return sorted(_REGISTRY)


def get_task(name: str) -> Task:
    _load_plugins()
    return _REGISTRY[name]()
