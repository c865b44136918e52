"""The host yardstick: a fixed workload timed in the blocks of every cell, so a record carries the
speed its machine had while it was measured.

Nights cannot be interleaved with each other, but each can carry its own yardstick: the runners of
a cell and this workload alternate in the same blocks, and ``benchbed compare --normalize host``
judges latency ÷ the yardstick's median of the same record, which cancels what slowed both (a VM
host that switched speed, a thermal limit) and keeps what slowed only the code. On CPU it mixes
the two things model calls spend time on — small torch matmuls on torch's threads and pure Python
— in about a millisecond; on CUDA it is a fixed matmul chain on the device, synchronised.
"""

from __future__ import annotations

from typing import Callable

__all__ = ["host_yardstick", "YARDSTICK_VERSION"]

#: bumped whenever the workload changes: normalised figures of different versions are not comparable
YARDSTICK_VERSION = 1


def host_yardstick(device: str = "cpu") -> Callable[[], float]:
    """A call doing the same fixed work every time on `device` (returns a number so nothing is
    optimised away)."""
    import torch

    gen = torch.Generator().manual_seed(1234)
    if device.startswith("cuda"):
        a = (torch.randn(2048, 2048, generator=gen) / 2048 ** 0.5).to(device)

        def gpu_call() -> float:
            x = a
            for _ in range(8):
                x = torch.mm(x, a)
            torch.cuda.synchronize(device)
            return 0.0

        return gpu_call
    a = torch.randn(192, 192, generator=gen) / 192 ** 0.5

    def cpu_call() -> float:
        x = a
        for _ in range(6):
            x = torch.mm(x, a)
        s = 0
        for i in range(6000):
            s += i * i
        return float(x[0, 0]) + s

    return cpu_call
