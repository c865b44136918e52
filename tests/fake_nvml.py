"""A stand-in for the ``pynvml`` module: what a real GPU's NVML would show, without a GPU.

The same idea as the fake clock of the timing tests. A test installs it with `install`
(``sys.modules["pynvml"]`` replaced through pytest's monkeypatch, so it is gone after the test);
everything else in benchbed and every other test uses the real module. It covers what issue #25
names: MIG handles without utilisation, power or energy; throttle (violation) counters that
advance while a window runs; other processes in the device's list, including a container's host
pids; a device with no energy counter. Counters that advance do so with the real clock, so a
window of real seconds sees them move.
"""

from __future__ import annotations

import sys
import time
import types
from dataclasses import dataclass, field
from typing import Any

NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NOT_FOUND = 6


class NVMLError(Exception):
    def __init__(self, value: int) -> None:
        super().__init__({3: "Not Supported", 6: "Not Found"}.get(value, f"NVML error {value}"))
        self.value = value


class NVMLError_NotSupported(NVMLError):  # noqa: N801 - the real module's name
    def __init__(self) -> None:
        super().__init__(NVML_ERROR_NOT_SUPPORTED)


class NVMLError_NotFound(NVMLError):  # noqa: N801
    def __init__(self) -> None:
        super().__init__(NVML_ERROR_NOT_FOUND)


@dataclass
class FakeGpu:
    """One NVML device (or MIG instance) and what its counters read."""

    uuid: str = "GPU-00000000-fake-0000-0000-000000000000"
    name: str = "NVIDIA H200"
    total_bytes: int = 141 * 2**30
    used_bytes: int = 600 * 2**20
    util_pct: int | None = 87              # None: not supported (MIG)
    power_w: float | None = 450.0          # None: not supported
    energy_w: float | None = 450.0         # watts the energy counter accrues at; None: no counter
    mig: bool = False
    pids: list[int] = field(default_factory=list)
    reasons: int = 0                       # current clock-event reason bits
    #: violation counters (name → seconds of throttle per second of real time while installed)
    violation_rates: dict[str, float] = field(default_factory=dict)

    def violation_ns(self, name: str, since: float) -> int:
        return int(self.violation_rates.get(name, 0.0) * (time.perf_counter() - since) * 1e9)


_POLICIES = {0: "power_cap", 1: "thermal", 3: "board_limit", 5: "reliability"}
_FIELDS = {269: "sw_thermal", 270: "hw_thermal", 271: "hw_power_brake"}


class _Obj(types.SimpleNamespace):
    pass


def make_module(devices: list[FakeGpu]) -> types.ModuleType:
    """A module with the pynvml functions benchbed calls, over `devices` (index = NVML index)."""
    nv = types.ModuleType("pynvml")
    t0 = time.perf_counter()
    nv.NVMLError = NVMLError
    nv.NVMLError_NotSupported = NVMLError_NotSupported
    nv.NVMLError_NotFound = NVMLError_NotFound
    nv.NVML_ERROR_NOT_SUPPORTED = NVML_ERROR_NOT_SUPPORTED
    nv.devices = devices
    nv.calls = []

    def h(handle: Any) -> FakeGpu:
        if not isinstance(handle, FakeGpu):
            raise NVMLError(2)
        return handle

    def log(name: str) -> None:
        nv.calls.append(name)

    nv.nvmlInit = lambda: None
    nv.nvmlShutdown = lambda: None
    nv.nvmlSystemGetDriverVersion = lambda: "570.00-fake"
    nv.nvmlDeviceGetCount = lambda: len([d for d in devices if not d.mig])

    def by_index(i: int) -> FakeGpu:
        full = [d for d in devices if not d.mig]
        if not 0 <= i < len(full):
            raise NVMLError(2)
        return full[i]

    def by_uuid(uuid: Any) -> FakeGpu:
        uuid = uuid.decode() if isinstance(uuid, bytes) else str(uuid)
        for d in devices:
            if d.uuid == uuid:
                return d
        raise NVMLError_NotFound()

    def migs(handle: Any) -> list[FakeGpu]:  # MIG instances belong to the first full GPU here
        return [d for d in devices if d.mig] if h(handle) is by_index(0) else []

    def mig_by_index(handle: Any, j: int) -> FakeGpu:
        found = migs(handle)
        if not 0 <= j < len(found):
            raise NVMLError_NotFound()
        return found[j]

    nv.nvmlDeviceGetMaxMigDeviceCount = lambda handle: len(migs(handle))
    nv.nvmlDeviceGetMigDeviceHandleByIndex = mig_by_index
    nv.nvmlDeviceGetHandleByIndex = by_index
    nv.nvmlDeviceGetHandleByUUID = by_uuid
    nv.nvmlDeviceGetUUID = lambda handle: h(handle).uuid
    nv.nvmlDeviceGetName = lambda handle: h(handle).name
    nv.nvmlDeviceIsMigDeviceHandle = lambda handle: int(h(handle).mig)

    def memory(handle: Any) -> Any:
        d = h(handle)
        log("memory")
        return _Obj(total=d.total_bytes, used=d.used_bytes, free=d.total_bytes - d.used_bytes)

    def utilisation(handle: Any) -> Any:
        d = h(handle)
        if d.util_pct is None:
            raise NVMLError_NotSupported()
        return _Obj(gpu=d.util_pct, memory=d.util_pct // 2)

    def power(handle: Any) -> int:
        d = h(handle)
        if d.power_w is None:
            raise NVMLError_NotSupported()
        return int(d.power_w * 1000)

    def energy(handle: Any) -> int:
        d = h(handle)
        if d.energy_w is None:
            raise NVMLError_NotSupported()
        return int(d.energy_w * (time.perf_counter() - t0) * 1000)  # millijoules since "boot"

    def processes(handle: Any) -> list[Any]:
        d = h(handle)
        if d.mig and not d.pids:
            raise NVMLError_NotSupported()
        return [_Obj(pid=p, usedGpuMemory=256 * 2**20) for p in d.pids]

    def violation(handle: Any, policy: int) -> Any:
        d = h(handle)
        if d.mig or policy not in _POLICIES:
            raise NVMLError_NotSupported()
        return _Obj(referenceTime=int(time.time() * 1e6), violationTime=d.violation_ns(_POLICIES[policy], t0))

    def fields(handle: Any, ids: list[int]) -> list[Any]:
        d = h(handle)
        out = []
        for fid in ids:
            name = _FIELDS.get(fid)
            ok = name is not None and not d.mig
            out.append(_Obj(fieldId=fid, nvmlReturn=0 if ok else NVML_ERROR_NOT_SUPPORTED,
                            value=_Obj(ullVal=d.violation_ns(name, t0) if ok else 0)))
        return out

    def reasons(handle: Any) -> int:
        d = h(handle)
        if d.mig:
            raise NVMLError_NotSupported()
        return d.reasons

    nv.nvmlDeviceGetMemoryInfo = memory
    nv.nvmlDeviceGetUtilizationRates = utilisation
    nv.nvmlDeviceGetPowerUsage = power
    nv.nvmlDeviceGetTotalEnergyConsumption = energy
    nv.nvmlDeviceGetComputeRunningProcesses = processes
    nv.nvmlDeviceGetGraphicsRunningProcesses = lambda handle: []
    nv.nvmlDeviceGetViolationStatus = violation
    nv.nvmlDeviceGetFieldValues = fields
    nv.nvmlDeviceGetCurrentClocksEventReasons = reasons
    return nv


def install(monkeypatch: Any, *devices: FakeGpu) -> types.ModuleType:
    """Make ``import pynvml`` give a fake over `devices` for the rest of the test."""
    nv = make_module(list(devices))
    monkeypatch.setitem(sys.modules, "pynvml", nv)
    return nv
