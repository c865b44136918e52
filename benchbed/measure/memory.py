"""Memory trackers as stackable context managers.

CPU: the kernel's own high-water mark. Writing ``5`` to ``/proc/self/clear_refs`` resets VmHWM
(Linux >= 4.0), so the peak over a block is exact and costs nothing while the block runs; no
sampler thread competes with the workload for one of two cores. Where that file is not writable,
a 5 ms psutil sampler is the fallback, and the record says which method ran.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["PeakRSS", "CudaPeak", "MemoryCap", "own_peak_bytes", "rss_bytes", "trim_heap"]

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
    """Peak torch.cuda allocated / reserved bytes over the block, on one device, with what was
    allocated when it began (`base`), so the block's own increase is ``allocated - base``;
    inert without CUDA."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.base: int | None = None
        self.allocated: int | None = None
        self.reserved: int | None = None

    def __enter__(self) -> "CudaPeak":
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize(self.device)
            self.allocated = torch.cuda.max_memory_allocated(self.device)
            self.reserved = torch.cuda.max_memory_reserved(self.device)

    @property
    def increase(self) -> int | None:
        """Peak allocated bytes above what was allocated when the block began."""
        return None if self.allocated is None or self.base is None else max(0, self.allocated - self.base)


def own_peak_bytes(state: int | None, increase: int | None) -> int | None:
    """A runner's own peak: the tensors it holds between calls (`state`: its weights; in training
    its copy's weights, gradients and optimizer state) plus the increase over one call. Not the
    allocator's absolute peak, which also counts every other runner's copy and what the process
    cached: in a training cell that made both paths read alike, at about twice what either needs."""
    if increase is None:
        return None
    return (state or 0) + increase


def trim_heap() -> bool:
    """Hand memory the C heap holds but no longer uses back to the kernel (glibc ``malloc_trim``),
    so a case's RSS increase is not hidden by what earlier cases freed. False where unavailable."""
    try:
        import ctypes

        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0) or True)
    except (OSError, AttributeError):
        return False


def _vm_size() -> int | None:
    kb = _status_kb("VmSize")
    return None if kb is None else kb * 1024


def _start_thread_pools() -> None:
    """Have torch's intra-op (OpenMP) and BLAS worker threads running before an address-space cap:
    a thread's stack is address space, and libgomp that cannot create its pool under the cap ends
    the whole process ("Thread creation failed"), where an allocation past it is a catchable error."""
    import torch

    x = torch.empty(1 << 20)
    x.fill_(1.0)  # large enough for at::parallel_for to use every intra-op thread
    a = torch.ones(128, 128)
    torch.mm(a, a)
    del x, a


class MemoryCap:
    """Limit the memory a block may add on top of what the process holds when it starts.

    CPU: the soft ``RLIMIT_AS`` is set to the current virtual size plus `cap_bytes`, so an
    allocation past it fails inside the allocator (a real ``can't allocate memory`` error, not the
    kernel's OOM killer). CUDA: the caching allocator's per-process fraction is set to what is
    reserved now plus `cap_bytes`. Both are restored on exit. Inert when `cap_bytes` is None."""

    def __init__(self, cap_bytes: int | None, device: str) -> None:
        self.cap_bytes = cap_bytes
        self.device = device
        self._old: Any = None

    def __enter__(self) -> "MemoryCap":
        if self.cap_bytes is None:
            return self
        if self.device.startswith("cuda"):
            import torch

            total = torch.cuda.get_device_properties(self.device).total_memory
            held = torch.cuda.memory_reserved(self.device)
            torch.cuda.set_per_process_memory_fraction(min(1.0, (held + self.cap_bytes) / total), self.device)
            self._old = "cuda"
        elif self.device == "cpu":
            import resource

            _start_thread_pools()
            size = _vm_size()
            if size is not None:
                self._old = resource.getrlimit(resource.RLIMIT_AS)
                hard = self._old[1]
                soft = size + self.cap_bytes
                if hard != resource.RLIM_INFINITY:
                    soft = min(soft, hard)
                resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._old is None:
            return
        if self._old == "cuda":
            import torch

            torch.cuda.set_per_process_memory_fraction(1.0, self.device)
        else:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, self._old)
        self._old = None
