"""Memory trackers as stackable context managers.

CPU: the kernel's own high-water mark. Writing ``5`` to ``/proc/self/clear_refs`` resets VmHWM
(Linux >= 4.0), so the peak over a block is exact and costs nothing while the block runs; no
sampler thread competes with the workload for one of two cores. Where that file is not writable,
a 5 ms psutil sampler is the fallback, and the record says which method ran.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["PeakRSS", "CudaPeak", "rss_bytes"]

_STATUS = "/proc/self/status"
_CLEAR_REFS = "/proc/self/clear_refs"


def _status_kb(key: str) -> int | None:
    try:
        with open(_STATUS) as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_bytes() -> int:
    """Current resident set size of this process."""
    kb = _status_kb("VmRSS")
    if kb is not None:
        return kb * 1024
    import psutil

    return psutil.Process().memory_info().rss


def _reset_hwm() -> bool:
    try:
        with open(_CLEAR_REFS, "w") as fh:
            fh.write("5")
        return _status_kb("VmHWM") is not None
    except OSError:
        return False


class PeakRSS:
    """Peak increase of resident memory over the block, in bytes (`delta_bytes`)."""

    def __init__(self, interval_s: float = 0.005) -> None:
        self.interval_s = interval_s
        self.baseline = 0
        self.peak = 0
        self.method = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "PeakRSS":
        self.baseline = rss_bytes()
        if _reset_hwm():
            self.method = "vmhwm"
        else:
            self.method = "sampler"
            self.peak = self.baseline
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak = max(self.peak, rss_bytes())

    def __exit__(self, *exc: Any) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, rss_bytes())
        else:
            self.peak = (_status_kb("VmHWM") or 0) * 1024

    @property
    def delta_bytes(self) -> int:
        return max(0, self.peak - self.baseline)


class CudaPeak:
    """Peak torch.cuda allocated / reserved bytes over the block, on one device; inert without CUDA."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.allocated: int | None = None
        self.reserved: int | None = None

    def __enter__(self) -> "CudaPeak":
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize(self.device)
            self.allocated = torch.cuda.max_memory_allocated(self.device)
            self.reserved = torch.cuda.max_memory_reserved(self.device)
