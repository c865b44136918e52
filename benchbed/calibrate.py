"""A calibration task with a known cost, for checking the measurement itself.

``memory-calibration`` allocates exactly ``alloc_mb`` MiB per input (``alloc_mb × batch_size``
per call) on the case's device (float32, every page written) and returns the sum, so the memory a case reports can be checked against the
bytes it really held. Options ``crash=true`` (the process kills itself with SIGKILL mid-call) and
``sleep_s`` exercise isolation and timeouts with real process deaths. It has no pipeline, so only
the ``torch`` runner measures it. Not among the built-in tasks: importing this module registers
it (isolated children import it too, as they import any module that registered a task).
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from .spec import OPTION_KEYS
from .tasks import register_task
from .tasks.base import Parity, Task

OPTION_KEYS.update({"alloc_mb", "crash", "sleep_s"})

__all__ = ["MemoryCalibration"]


@register_task
class MemoryCalibration(Task):
    name = "memory-calibration"
    pipeline_task = "memory-calibration"
    head = "base"
    description = "allocates options.alloc_mb MiB per input on the device (checks memory figures)"

    alloc_mb: float = 64.0
    crash: bool = False
    sleep_s: float = 0.0

    def configure(self, case: Any) -> "MemoryCalibration":
        self.alloc_mb = float(case.option("alloc_mb", 64))
        self.crash = str(case.option("crash", "false")).lower() == "true"
        self.sleep_s = float(case.option("sleep_s", 0))
        return self

    def pipeline_available(self) -> bool:
        return False

    def make_inputs(self, tokenizer: Any, batch_size: int, seq_len: int, seed: int) -> list[Any]:
        return list(range(batch_size))

    def preprocess(self, bundle: Any, inputs: list[Any], device: Any) -> Any:
        return device, len(inputs)

    def forward(self, bundle: Any, encoded: Any) -> Any:
        import torch

        if self.crash:
            os.kill(os.getpid(), signal.SIGKILL)
        if self.sleep_s:
            time.sleep(self.sleep_s)
        device, n = encoded
        block = torch.ones(int(self.alloc_mb * 2**20) * n // 4, dtype=torch.float32, device=device)
        return block.sum()

    def postprocess(self, bundle: Any, encoded: Any, outputs: Any) -> list[Any]:
        return [float(outputs)]

    def compare(self, raw: list[Any], piped: list[Any], dtype: str) -> Parity:
        return Parity(raw == piped, "calibration")

