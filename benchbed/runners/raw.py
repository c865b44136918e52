"""The raw-PyTorch path: the task's own preprocess, module call under ``torch.inference_mode``,
and postprocess in torch, in one process, with nothing in between."""

from __future__ import annotations

from typing import Any

from .base import StagedRunner

__all__ = ["TorchRunner", "BucketedTorchRunner"]


class TorchRunner(StagedRunner):
    NAME = "torch"
    DESCRIPTION = "raw module call: task preprocess -> module(**inputs) under torch.inference_mode -> postprocess in torch"

    def forward(self, encoded: Any) -> Any:
        if self.task.streams and self.streamer is not None:
            return self.task.forward(self.bundle, encoded, streamer=self.streamer)
        return self.task.forward(self.bundle, encoded)


class BucketedTorchRunner(TorchRunner):
    """The raw loop a careful engineer writes for a dataset: examples sorted by length (longest
    first) and batched in that order, so each batch pads little; outputs are put back in the
    examples' order. Sorting is by characters (for text) — cheap, and what such loops do without
    tokenising twice; the record's ``padding_waste`` is computed on tokens."""

    NAME = "torch-bucketed"
    DESCRIPTION = "raw module over length-sorted batches (dataset scenario only): a careful raw loop's bucketing"
    SUPERSET_OF = None

    @classmethod
    def unavailable(cls, task: Any, case: Any) -> str | None:
        from ..scenarios import get_scenario

        if get_scenario(case.scenario).sample != "pass":
            return ("torch-bucketed sorts a dataset by length; it runs where a sample is a pass over the examples "
                    "(--scenario dataset)")
        if task.modality != "text":
            return f"torch-bucketed sorts texts by length; {task.name} takes {task.modality} inputs"
        return None

    def example_batches(self, examples: list[Any], batch_size: int) -> list[list[int]]:
        from ..workloads.sampler import sorted_batches

        return sorted_batches([len(x) for x in examples], batch_size)
