"""FLOPs of a call (torch's own FLOP counter) and the device's matrix-multiply peak, measured by a
probe in the same run and cached per device and dtype, so achieved TFLOP/s has a ceiling to be
read against."""

from __future__ import annotations

import time
from typing import Any, Callable

from .timer import device_sync

__all__ = ["count_flops", "known_peaks", "matmul_peak_tflops", "remember_peaks"]

_PEAKS: dict[tuple[str, str], tuple[float, str]] = {}


def count_flops(fn: Callable[[], Any]) -> int | None:
    """FLOPs torch dispatches in one call of `fn` (matmuls, convolutions, attention), or None when
    the counter cannot follow the call. A compiled module runs eagerly for the count: the
    arithmetic is the same, and a compiled graph hides its operators from the counter."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    try:
        stance = torch.compiler.set_stance("force_eager")
    except (AttributeError, TypeError):
        stance = None
    try:
        if stance is not None:
            with stance, counter:
                fn()
        else:
            with counter:
                fn()
    except Exception:
        return None
    total = int(counter.get_total_flops())
    return total or None


def _probe_once(device: str, dtype: str, n: int, reps: int, budget_s: float = 1.0) -> float:
    import torch

    dev = torch.device(device)
    if dtype == "int8":
        a = torch.randint(-127, 127, (n, n), dtype=torch.int8, device=dev)
        b = torch.randint(-127, 127, (n, n), dtype=torch.int8, device=dev)

        def op() -> Any:
            return torch._int_mm(a, b)
    else:
        from ..spec import TORCH_DTYPES

        t = getattr(torch, TORCH_DTYPES[dtype])
        a = torch.randn(n, n, device=dev).to(t)
        b = torch.randn(n, n, device=dev).to(t)

        def op() -> Any:
            return a @ b

    sync = device_sync(device)
    op()
    sync()
    best = float("inf")
    deadline = time.perf_counter() + budget_s
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(4):
            op()
        sync()
        best = min(best, (time.perf_counter() - t0) / 4)
        if time.perf_counter() > deadline:
            break
    return 2.0 * n**3 / best / 1e12


def _probe(device: str, dtype: str) -> tuple[float, int]:
    """GPUs: 8192-square operands. CPUs: 1024, or 256 where a dtype has no fast kernel (fp16 on
    many CPUs runs at a few GFLOP/s), so the probe stays under a couple of seconds."""
    if device.startswith("cuda"):
        return _probe_once(device, dtype, 8192, reps=10), 8192
    quick = _probe_once(device, dtype, 256, reps=2, budget_s=0.2)
    if 2.0 * 1024**3 / (quick * 1e12) > 0.05:  # a 1024 multiply would take over 50 ms
        return quick, 256
    return _probe_once(device, dtype, 1024, reps=5), 1024


def matmul_peak_tflops(device: str, dtype: str, fallback: str | None = None) -> tuple[float, str] | None:
    """Best TFLOP/s of a square matrix multiply on `device` at `dtype` (int8: ``torch._int_mm``),
    probing `fallback` instead where the device has no such matmul, with what was probed. Cached
    for the process, so each device and dtype is probed once per run."""
    key = (device, dtype)
    if key in _PEAKS:
        return _PEAKS[key]
    probe = dtype
    try:
        value, n = _probe(device, dtype)
    except Exception:
        if fallback is None or fallback == dtype:
            return None
        probe = fallback
        try:
            value, n = _probe(device, probe)
        except Exception:
            return None
    _PEAKS[key] = (value, f"{probe} matmul {n}x{n}")
    return _PEAKS[key]


def known_peaks() -> list[list[Any]]:
    """The probes cached so far, as JSON-able ``[device, dtype, tflops, probe]`` rows."""
    return [[d, t, v, probe] for (d, t), (v, probe) in _PEAKS.items()]


def remember_peaks(rows: list[list[Any]]) -> None:
    """Cache probes another process measured (rows from `known_peaks`), keeping our own."""
    for d, t, v, probe in rows:
        _PEAKS.setdefault((d, t), (v, probe))
