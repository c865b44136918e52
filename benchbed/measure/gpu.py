"""NVIDIA device counters through NVML (``nvidia-ml-py``): device memory used, utilisation, power
and the energy counter, on the physical GPU behind a torch device index.

torch numbers devices after ``CUDA_VISIBLE_DEVICES`` has renumbered them; NVML numbers physical
devices. The handle is found by the device's UUID (exact under any ``CUDA_VISIBLE_DEVICES``,
including UUID and MIG entries), with the parsed variable as the fallback.
Everything here is inert (None) where NVML or a GPU is missing.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from ..spec import device_index

__all__ = ["EventTimer", "NvmlSample", "NvmlSampler", "energy_mj", "nvml_handle", "visible_entry"]


def visible_entry(torch_index: int, visible: str | None) -> int | str | None:
    """What ``CUDA_VISIBLE_DEVICES`` maps torch device `torch_index` to: a physical index, a UUID
    string (``GPU-...`` / ``MIG-...``), or None when the variable hides it. Unset: the same index.
    Like the CUDA runtime, the list ends at the first entry that is not valid."""
    if visible is None:
        return torch_index
    entries: list[int | str] = []
    for raw in visible.split(","):
        item = raw.strip()
        if item.lstrip("-").isdigit():
            if int(item) < 0:
                break
            entries.append(int(item))
        elif item.startswith(("GPU-", "MIG-")):
            entries.append(item)
        else:
            break
    return entries[torch_index] if torch_index < len(entries) else None


def _nvml() -> Any:
    try:
        import pynvml

        pynvml.nvmlInit()
        return pynvml
    except Exception:  # no library, no driver, no GPU: no NVML figures
        return None


def nvml_handle(device: str) -> Any:
    """The NVML handle of torch device `device` (``cuda`` / ``cuda:N``), or None."""
    if not device.startswith("cuda"):
        return None
    nv = _nvml()
    if nv is None:
        return None
    index = device_index(device)
    try:
        import torch

        uuid = str(torch.cuda.get_device_properties(index).uuid)
        for prefix in ("GPU-", "MIG-", ""):
            try:
                return nv.nvmlDeviceGetHandleByUUID(prefix + uuid)
            except Exception:
                continue
    except Exception:
        pass
    entry = visible_entry(index, os.environ.get("CUDA_VISIBLE_DEVICES"))
    try:
        if isinstance(entry, int):
            return nv.nvmlDeviceGetHandleByIndex(entry)
        if isinstance(entry, str):
            return nv.nvmlDeviceGetHandleByUUID(entry)
    except Exception:
        return None
    return None


def energy_mj(handle: Any) -> int | None:
    """The GPU's cumulative energy counter in millijoules (Volta and newer), or None."""
    if handle is None:
        return None
    try:
        import pynvml

        return int(pynvml.nvmlDeviceGetTotalEnergyConsumption(handle))
    except Exception:
        return None


@dataclass(frozen=True)
class NvmlSample:
    t: float
    used_bytes: int
    util_pct: float
    power_w: float | None


class NvmlSampler:
    """Samples memory used, utilisation and power every `interval_s` in a thread while the block
    runs, and reads the energy counter at both ends. Used only in a separate pass, never while
    latency samples are taken: a sampler is a second workload."""

    def __init__(self, handle: Any, interval_s: float = 0.02) -> None:
        self.handle = handle
        self.interval_s = interval_s
        self.samples: list[NvmlSample] = []
        self.energy_j: float | None = None
        self.energy_method: str | None = None
        self.seconds = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._e0: int | None = None
        self._t0 = 0.0

    def _read(self) -> None:
        import pynvml

        h = self.handle
        try:
            used = int(pynvml.nvmlDeviceGetMemoryInfo(h).used)
            util = float(pynvml.nvmlDeviceGetUtilizationRates(h).gpu)
        except Exception:
            return
        try:
            power = pynvml.nvmlDeviceGetPowerUsage(h) / 1000.0
        except Exception:
            power = None
        self.samples.append(NvmlSample(time.perf_counter(), used, util, power))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._read()

    def __enter__(self) -> "NvmlSampler":
        if self.handle is not None:
            self._e0 = energy_mj(self.handle)
            self._t0 = time.perf_counter()
            self._read()
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._read()
        self.seconds = time.perf_counter() - self._t0
        e1 = energy_mj(self.handle)
        if self._e0 is not None and e1 is not None and e1 > self._e0:
            self.energy_j, self.energy_method = (e1 - self._e0) / 1000.0, "nvml-energy-counter"
        else:
            powered = [s for s in self.samples if s.power_w is not None]
            if len(powered) >= 2:
                # trapezoids over the sampled power
                joules = sum((b.t - a.t) * (a.power_w + b.power_w) / 2 for a, b in zip(powered, powered[1:]))
                self.energy_j, self.energy_method = joules, "nvml-power-sampling"

    @property
    def peak_used_bytes(self) -> int | None:
        return max((s.used_bytes for s in self.samples), default=None)

    @property
    def mean_util_pct(self) -> float | None:
        return sum(s.util_pct for s in self.samples) / len(self.samples) if self.samples else None


class EventTimer:
    """CUDA events around each timed call: the device's own clock, for checking the wall-clock
    samples (which synchronise after every call) against it."""

    def __init__(self, device: str) -> None:
        import torch

        self._torch = torch
        self.device = device
        self.samples: list[float] = []
        self._start: Any = None
        self._end: Any = None

    def start(self) -> None:
        with self._torch.cuda.device(self.device):
            self._start = self._torch.cuda.Event(enable_timing=True)
            self._end = self._torch.cuda.Event(enable_timing=True)
            self._start.record()

    def stop(self) -> None:
        """Call after the work is queued and before the synchronise."""
        with self._torch.cuda.device(self.device):
            self._end.record()

    def collect(self) -> None:
        """Call after the synchronise; keeps the elapsed seconds."""
        self.samples.append(self._start.elapsed_time(self._end) / 1000.0)
