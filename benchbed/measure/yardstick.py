"""The host yardstick: a fixed workload timed in the blocks of every cell, so a record carries the
speed its machine had while it was measured.

Nights cannot be interleaved with each other, but each can carry its own yardstick: the runners of
a cell and this workload alternate in the same blocks, and ``benchbed compare --normalize host``
judges latency ÷ the yardstick's median of the same record, which cancels what slowed both (a VM
host that switched speed, a thermal limit) and keeps what slowed only the code. On CPU it mixes
the two things model calls spend time on — small torch matmuls on torch's threads and pure Python
— in about a millisecond. On CUDA it is the host's side of GPU work: a chain of tiny kernels, each
launched by torch's dispatcher (which, not the device, bounds small-batch GPU latency), plus the
same pure Python, synchronised once. Version 1 on CUDA was an fp32 2048² matmul chain: it timed
the GPU (and TF32's switch), so ``--normalize host`` cancelled nothing of the host.
"""

from __future__ import annotations

from typing import Callable

__all__ = ["host_yardstick", "yardstick_version", "YARDSTICK_VERSION"]

#: bumped whenever a workload changes: normalised figures of different versions are not comparable
YARDSTICK_VERSION = 1
#: the CUDA workload's version (2: launch-bound host work)
CUDA_YARDSTICK_VERSION = 2


def yardstick_version(device: str) -> int:
    """The version of the yardstick `host_yardstick(device)` runs."""
    return CUDA_YARDSTICK_VERSION if device.startswith("cuda") else YARDSTICK_VERSION


def host_yardstick(device: str = "cpu") -> Callable[[], float]:
    """A call doing the same fixed work every time on `device` (returns a number so nothing is
    optimised away)."""
    import torch

    gen = torch.Generator().manual_seed(1234)
    if device.startswith("cuda"):
        one = torch.zeros(16, device=device)

        def gpu_call() -> float:
            x = one
            for _ in range(100):  # 100 tiny kernels: the dispatcher and the launch path, not the device
                x = x + 1.0
            s = 0
            for i in range(3000):
                s += i * i
            torch.cuda.synchronize(device)
            return float(s)

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
