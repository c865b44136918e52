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

__all__ = ["EventTimer", "NvmlSample", "NvmlSampler", "check_devices", "energy_mj", "is_mig", "nvml_handle",
           "present_devices", "visible_entry"]


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
    util_pct: float | None  # None where the device has no utilisation counter (a MIG instance)
    power_w: float | None


def is_mig(handle: Any) -> bool:
    """Whether `handle` is a MIG instance (no utilisation, power or energy counters of its own)."""
    try:
        import pynvml

        return bool(pynvml.nvmlDeviceIsMigDeviceHandle(handle))
    except Exception:
        return False


class NvmlSampler:
    """Samples memory used, utilisation and power every `interval_s` in a thread while the block
    runs, and reads the energy counter at both ends. Used only in a separate pass, never while
    latency samples are taken: a sampler is a second workload.

    Each counter is read on its own: a MIG instance has memory but no utilisation, power or energy
    (NVML answers "not supported"), and its memory samples are still kept. What could not be read is
    named in `unavailable`, so a record says why a figure is empty instead of leaving it blank.
    Mean power is energy ÷ time where the energy counter exists: ``nvmlDeviceGetPowerUsage`` is a
    one-second trailing average on recent GPUs, so over a one-second pass it mostly reports the
    work before it."""

    def __init__(self, handle: Any, interval_s: float = 0.02) -> None:
        self.handle = handle
        self.interval_s = interval_s
        self.samples: list[NvmlSample] = []
        self.energy_j: float | None = None
        self.energy_method: str | None = None
        self.seconds = 0.0
        self.missing: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._e0: int | None = None
        self._t0 = 0.0

    def _read(self) -> None:
        import pynvml

        h = self.handle
        try:
            used = int(pynvml.nvmlDeviceGetMemoryInfo(h).used)
        except Exception:
            self.missing.add("memory")
            return
        try:
            util: float | None = float(pynvml.nvmlDeviceGetUtilizationRates(h).gpu)
        except Exception:
            util = None
            self.missing.add("utilisation")
        try:
            power: float | None = pynvml.nvmlDeviceGetPowerUsage(h) / 1000.0
        except Exception:
            power = None
            self.missing.add("power")
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
            self.missing.add("energy counter")
            powered = [s for s in self.samples if s.power_w is not None]
            if len(powered) >= 2:
                # trapezoids over the sampled (trailing-average) power
                joules = sum((b.t - a.t) * (a.power_w + b.power_w) / 2 for a, b in zip(powered, powered[1:]))
                self.energy_j, self.energy_method = joules, "nvml-power-sampling"

    @property
    def peak_used_bytes(self) -> int | None:
        return max((s.used_bytes for s in self.samples), default=None)

    @property
    def start_used_bytes(self) -> int | None:
        return self.samples[0].used_bytes if self.samples else None

    @property
    def mean_util_pct(self) -> float | None:
        utils = [s.util_pct for s in self.samples if s.util_pct is not None]
        return sum(utils) / len(utils) if utils else None

    @property
    def mean_power_w(self) -> float | None:
        """Energy ÷ time when the energy counter was read; else the mean of the power samples."""
        if self.energy_method == "nvml-energy-counter" and self.seconds > 0 and self.energy_j is not None:
            return self.energy_j / self.seconds
        powers = [s.power_w for s in self.samples if s.power_w is not None]
        return sum(powers) / len(powers) if powers else None

    @property
    def unavailable(self) -> str | None:
        """The counters this device could not give, with why (None when all were there)."""
        if self.handle is None or not self.missing:
            return None
        where = "a MIG instance" if is_mig(self.handle) else "this device or driver"
        order = ["memory", "utilisation", "power", "energy counter"]
        return f"{', '.join(m for m in order if m in self.missing)}: not supported on {where}"


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


def present_devices() -> list[str]:
    """The devices torch sees here: ``cpu``, then ``cuda:N (name)`` for each visible GPU."""
    out = ["cpu"]
    try:
        import torch

        if torch.cuda.is_available():
            out += [f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]
    except Exception:
        pass
    return out


def check_devices(devices: list[str], cuda_count: int | None = None, visible: str | None = None) -> str | None:
    """Why the CUDA devices of a run cannot be the ones meant, in one line, or None.

    Where CUDA works, ``cuda:N`` beyond the GPUs torch sees is a typo, not a case to skip (the
    line names the devices present). A ``GPU-``/``MIG-`` UUID in ``CUDA_VISIBLE_DEVICES`` that NVML
    does not know hides every GPU after it from the CUDA runtime: named with the UUIDs NVML has.
    Where CUDA is absent altogether, CUDA cases stay per-case ``skipped`` records, so one suite runs
    on CPU-only and GPU hosts alike. `cuda_count` and `visible` default to what this host has."""
    from ..values import device_index

    wanted = [d for d in devices if d.startswith("cuda")]
    if not wanted:
        return None
    if visible is None:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    uuids = [e.strip() for e in (visible or "").split(",") if e.strip().startswith(("GPU-", "MIG-"))]
    nv = _nvml() if uuids else None
    if nv is not None:
        for uuid in uuids:
            try:
                nv.nvmlDeviceGetHandleByUUID(uuid)
            except Exception:
                return (f"CUDA_VISIBLE_DEVICES names {uuid}, which this host does not have "
                        f"(present: {', '.join(_nvml_uuids(nv)) or 'none'})")
    if cuda_count is None:
        try:
            import torch

            cuda_count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        except Exception:
            cuda_count = 0
    if cuda_count == 0:
        return None
    for device in wanted:
        if device_index(device) >= cuda_count:
            return f"--device {device}: this host has {', '.join(present_devices()[:1 + cuda_count])}"
    return None


def _nvml_uuids(nv: Any) -> list[str]:
    """UUIDs of the GPUs and their MIG instances NVML lists."""
    out: list[str] = []
    try:
        for i in range(nv.nvmlDeviceGetCount()):
            handle = nv.nvmlDeviceGetHandleByIndex(i)
            out.append(_text(nv.nvmlDeviceGetUUID(handle)))
            try:
                for j in range(nv.nvmlDeviceGetMaxMigDeviceCount(handle)):
                    try:
                        out.append(_text(nv.nvmlDeviceGetUUID(nv.nvmlDeviceGetMigDeviceHandleByIndex(handle, j))))
                    except Exception:
                        continue
            except Exception:
                pass
    except Exception:
        pass
    return out


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
