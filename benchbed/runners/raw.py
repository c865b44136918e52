"""The raw-PyTorch path: the task's own preprocess, module call under ``torch.inference_mode``,
and postprocess in torch, in one process, with nothing in between."""

from __future__ import annotations

from typing import Any

from .base import StagedRunner

__all__ = ["TorchRunner"]


class TorchRunner(StagedRunner):
    NAME = "torch"
    DESCRIPTION = "raw module call: task preprocess -> module(**inputs) under torch.inference_mode -> postprocess in torch"

    def forward(self, encoded: Any) -> Any:
        if self.task.streams and self.streamer is not None:
            return self.task.forward(self.bundle, encoded, streamer=self.streamer)
        return self.task.forward(self.bundle, encoded)
