"""The pipeline path: ``transformers.pipeline(task, model=<the same module object>, tokenizer=...)``
called on the same inputs with ``batch_size``.

Phase times come from wrapping the pipeline instance's own ``preprocess`` / ``forward`` /
``postprocess`` for one call; what is left of the total is the pipeline's plumbing (batching,
collation, DataLoader). The wrappers exist only inside `call_with_phases`, never in timed calls.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

from ..measure.profile import clocked_iter
from ..scratch import contain_multiprocessing
from .base import PhaseTimes, Runner

__all__ = ["PipelineRunner", "build_pipeline"]


def build_pipeline(task: Any, bundle: Any, device: str) -> Any:
    """A pipeline over the bundle's module object. The module is already cast: ``dtype=`` given to
    ``pipeline()`` together with a model object does not cast it."""
    import torch
    from transformers import pipeline

    if task.modality == "audio":
        tokenizer, feature_extractor = bundle.tokenizer
        return pipeline(task.pipeline_task, model=bundle.module, tokenizer=tokenizer,
                        feature_extractor=feature_extractor, device=torch.device(device))
    if task.modality == "image":
        return pipeline(task.pipeline_task, model=bundle.module, image_processor=bundle.tokenizer,
                        device=torch.device(device))
    return pipeline(task.pipeline_task, model=bundle.module, tokenizer=bundle.tokenizer,
                    device=torch.device(device))


class PipelineRunner(Runner):
    NAME = "pipeline"
    DESCRIPTION = "transformers.pipeline(task, model=<same module object>, tokenizer=...) called with batch_size"
    SUPERSET_OF = "torch"

    def __init__(self, *args: Any, pipe: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # one pipeline per module object and task for the run (the bundle is cached for the run too)
        self.pipe = pipe if pipe is not None else self.cache(
            ("pipeline", id(self.bundle), self.task.name, self.device),
            lambda: build_pipeline(self.task, self.bundle, self.device))
        self.kwargs = self.task.pipeline_kwargs(self.bundle.tokenizer)

    @classmethod
    def unavailable(cls, task: Any, case: Any) -> str | None:
        if not task.pipeline_available():
            import transformers

            return (f"transformers {transformers.__version__} has no {task.pipeline_task!r} pipeline "
                    f"(removed in 5.0; transformers 4.x has it)")
        return None

    def __call__(self) -> list[Any]:
        extra = {"streamer": self.streamer} if self.streamer is not None else {}
        out = self.pipe(list(self.inputs), batch_size=self.batch_size, **self.kwargs, **extra)
        return self.task.normalize_pipeline(out, len(self.inputs))

    def run_examples(self, examples: list[Any]) -> list[Any]:
        """The pipeline over a dataset, the way its documentation says to feed one: a map-style
        torch Dataset, the pipeline's own batching (a DataLoader with `workers` workers, padding
        per batch), results streamed as they come."""
        from torch.utils.data import Dataset

        class _Examples(Dataset):  # type: ignore[type-arg]
            def __len__(self) -> int:
                return len(examples)

            def __getitem__(self, i: int) -> Any:
                return examples[i]

        if self.workers:
            contain_multiprocessing()
        start = self.clock()
        self.first_result_s = None
        out = []
        for result in self.pipe(_Examples(), batch_size=self.batch_size, num_workers=self.workers, **self.kwargs):
            if self.first_result_s is None:
                self.first_result_s = self.clock() - start
            out.append(result)
        return self.task.normalize_pipeline(out, len(examples))

    def call_with_phases(self) -> tuple[list[Any], PhaseTimes]:
        times = {"pre": 0.0, "fwd": 0.0, "post": 0.0}
        pipe = self.pipe
        originals = {"pre": pipe.preprocess, "fwd": pipe.forward, "post": pipe.postprocess}
        names = {"pre": "preprocess", "fwd": "forward", "post": "postprocess"}
        try:
            for key, fn in originals.items():
                setattr(pipe, names[key], self._timed(fn, key, times))
            result = self()
        finally:
            for key in originals:
                pipe.__dict__.pop(names[key], None)
        return result, times

    def call_in_stages(self, stage: Callable[..., Any]) -> list[Any]:
        """The pipeline's own ``preprocess`` / ``forward`` / ``postprocess`` as stages; its
        batching, collation and padding between them are the stage ``other``."""
        pipe = self.pipe
        names = ("preprocess", "forward", "postprocess")
        originals = {n: getattr(pipe, n) for n in names}
        try:
            for n, fn in originals.items():
                setattr(pipe, n, functools.partial(stage, n, fn))
            return self()
        finally:
            for n in names:
                pipe.__dict__.pop(n, None)

    def _timed(self, fn: Callable[..., Any], key: str, times: dict[str, float]) -> Callable[..., Any]:
        clock, sync = self.clock, self.sync

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = clock()
            out = fn(*args, **kwargs)
            sync()
            times[key] += clock() - t0
            if inspect.isgenerator(out):  # ChunkPipeline.preprocess yields chunks lazily
                return clocked_iter(out, key, times, clock)
            return out

        return wrapper
