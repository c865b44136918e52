"""The raw-PyTorch path: the task's own preprocess, module call under ``torch.inference_mode``,
and postprocess in torch, in one process, with nothing in between."""

from __future__ import annotations

from typing import Any

from .base import PhaseTimes, Runner

__all__ = ["TorchRunner"]


class TorchRunner(Runner):
    NAME = "torch"

    def __call__(self) -> list[Any]:
        import torch

        task, bundle = self.task, self.bundle
        with torch.inference_mode():
            enc = task.preprocess(bundle, self.inputs, self.device)
            out = task.forward(bundle, enc, streamer=self.streamer) if task.streams else task.forward(bundle, enc)
            return task.postprocess(bundle, enc, out)

    def call_with_phases(self) -> tuple[list[Any], PhaseTimes]:
        import torch

        task, bundle, clock, sync = self.task, self.bundle, self.clock, self.sync
        with torch.inference_mode():
            t0 = clock()
            enc = task.preprocess(bundle, self.inputs, self.device)
            sync()
            t1 = clock()
            out = task.forward(bundle, enc)
            sync()
            t2 = clock()
            result = task.postprocess(bundle, enc, out)
            sync()
            t3 = clock()
        return result, {"pre": t1 - t0, "fwd": t2 - t1, "post": t3 - t2}
