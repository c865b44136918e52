"""What else used the machine while a cell was timed, and whether that makes its numbers suspect.

Another busy process is not noise, it is a different machine: on a 2-core VM, one other CPU-bound
process made a 2-thread MiniLM forward 7× slower with a *tight* spread (OpenMP threads wait for a
descheduled peer), so spread-based warnings stay silent. What does see it is the kernel's own
accounting: system-wide busy time from ``/proc/stat`` minus this process's own CPU time
(``getrusage``), over the same wall-clock window, is the CPU other processes used, in cores. Steal
time (a VM host running someone else) comes from the same line. Load average, the CPU frequency
where ``/sys`` exposes it, and torch's thread count against the cores available are recorded
beside, for the reader.

`Interference` is a context manager around the timed calls: it takes two snapshots and no
sampler (a sampler would itself be a second workload). On CUDA it also asks NVML, at both ends,
which other processes hold the cell's GPU and why its clocks are held down (heat, a power brake).
"""

from __future__ import annotations

import glob
import os
import resource
import time
from dataclasses import dataclass, replace
from typing import Any

__all__ = ["Interference", "InterferenceReading", "GpuReading", "OTHERS_CORES_LIMIT", "STEAL_CORES_LIMIT",
           "GPU_THROTTLE_MARKS", "cpu_snapshot", "gpu_snapshot", "throttle_names"]

#: Other processes' average CPU use (in cores) above which a cell is marked interfered. Measured on
#: the 2-core VM with scripts/pairing_experiment.py (docs/pairing-2026-11-30.json): 48 quiet cell
#: windows read 0.00-0.09 cores (the shell, the journal); 48 windows beside a competitor busy one
#: second in two read 0.07-0.58 (a window that fell mostly into its idle seconds reads low, and
#: was barely disturbed). 0.25 leaves the quiet readings a margin of almost 3x, and a quarter of a
#: core already changes a 2-thread forward's time measurably.
OTHERS_CORES_LIMIT = 0.25
#: Steal time (cores the hypervisor gave to someone else) above which a cell is marked interfered.
STEAL_CORES_LIMIT = 0.1


@dataclass(frozen=True)
class _Snapshot:
    wall: float
    busy_s: float | None  # system-wide non-idle CPU seconds
    steal_s: float | None
    own_s: float  # this process's user + system CPU seconds (all threads)
    children_s: float  # finished children's (an isolated cell measures in its own process)


def cpu_snapshot() -> _Snapshot:
    busy = steal = None
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
        tick = os.sysconf("SC_CLK_TCK")
        # user nice system idle iowait irq softirq steal guest guest_nice; guest time is already in user
        user, nice, system, idle, iowait, irq, softirq = fields[:7]
        steal_t = fields[7] if len(fields) > 7 else 0
        busy = (user + nice + system + irq + softirq) / tick
        steal = steal_t / tick
    except (OSError, ValueError, IndexError):
        pass
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return _Snapshot(time.perf_counter(), busy, steal, own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime)


def _cpu_mhz() -> float | None:
    """Mean current frequency of the CPUs, where cpufreq is exposed (often not on VMs)."""
    values = []
    for path in glob.glob("/sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_cur_freq"):
        try:
            with open(path, encoding="ascii") as fh:
                values.append(int(fh.read().strip()) / 1000)
        except (OSError, ValueError):
            continue
    return sum(values) / len(values) if values else None


#: NVML clock-event ("throttle") reasons that mean the GPU was slowed by something other than the
#: work itself: heat, a power brake, a hardware slowdown. ``sw_power_cap`` (the board at its power
#: limit under full load) and idle / application-clock settings are recorded but do not mark a cell:
#: a GPU running flat out sits at its power cap by design.
GPU_THROTTLE_BITS = {0x1: "gpu_idle", 0x2: "applications_clocks", 0x4: "sw_power_cap", 0x8: "hw_slowdown",
                     0x20: "sw_thermal", 0x40: "hw_thermal", 0x80: "hw_power_brake", 0x100: "display_clocks"}
GPU_THROTTLE_MARKS = ("hw_slowdown", "sw_thermal", "hw_thermal", "hw_power_brake")


@dataclass(frozen=True)
class GpuReading:
    """Other processes on the cell's GPU and the clock-event reasons seen during the window."""

    device: str
    other_pids: tuple[int, ...]
    throttle: tuple[str, ...]

    @property
    def reason(self) -> str | None:
        parts = []
        if self.other_pids:
            pids = ", ".join(map(str, self.other_pids[:5]))
            parts.append(f"{len(self.other_pids)} other process(es) on {self.device} (pid {pids})")
        slowed = [t for t in self.throttle if t in GPU_THROTTLE_MARKS]
        if slowed:
            parts.append(f"{self.device} clocks held down: {', '.join(slowed)}")
        return "; ".join(parts) or None

    def columns(self) -> dict[str, Any]:
        return {"gpu_other_processes": len(self.other_pids), "gpu_throttle": ",".join(self.throttle) or None}


def throttle_names(bits: int) -> tuple[str, ...]:
    """Names of the NVML clock-event reason bits set in `bits`."""
    return tuple(name for bit, name in GPU_THROTTLE_BITS.items() if bits & bit)


def gpu_snapshot(handle: Any, nv: Any) -> tuple[set[int], int]:
    """(pids of processes using the GPU, clock-event reason bits) now; empty / 0 where NVML cannot say."""
    pids: set[int] = set()
    for name in ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses"):
        try:
            pids |= {int(p.pid) for p in getattr(nv, name)(handle)}
        except Exception:  # not supported (MIG, some drivers): unknown, not "none"
            continue
    bits = 0
    for name in ("nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons"):
        try:
            bits = int(getattr(nv, name)(handle))
            break
        except Exception:
            continue
    return pids, bits


@dataclass(frozen=True)
class InterferenceReading:
    """Record columns for one timed window."""

    others_cpu_cores: float | None
    steal_cores: float | None
    load_avg_1m: float | None
    cpu_mhz: float | None
    cores: int
    threads: int | None
    seconds: float
    gpu: GpuReading | None = None

    @property
    def reason(self) -> str | None:
        """One line when the window was not quiet enough to trust, else None."""
        parts = [self.gpu.reason] if self.gpu is not None and self.gpu.reason else []
        if self.others_cpu_cores is not None and self.others_cpu_cores > OTHERS_CORES_LIMIT:
            parts.append(f"other processes used {self.others_cpu_cores:.2f} of {self.cores} cores during this case")
        if self.steal_cores is not None and self.steal_cores > STEAL_CORES_LIMIT:
            parts.append(f"the VM host took {self.steal_cores:.2f} cores (steal time)")
        return "; ".join(parts) or None

    def columns(self) -> dict[str, Any]:
        reason = self.reason
        return {"interfered": reason is not None, "interference": reason, "others_cpu_cores": self.others_cpu_cores,
                "steal_cores": self.steal_cores, "load_avg_1m": self.load_avg_1m, "cpu_mhz": self.cpu_mhz,
                "cores_available": self.cores, **(self.gpu.columns() if self.gpu is not None else {})}


def reading(start: _Snapshot, end: _Snapshot, threads: int | None = None, cpu_mhz: float | None = None) -> InterferenceReading:
    """What other processes used between two snapshots."""
    wall = max(end.wall - start.wall, 1e-9)
    cores = os.cpu_count() or 1
    others = steal = None
    if start.busy_s is not None and end.busy_s is not None:
        ours = (end.own_s - start.own_s) + (end.children_s - start.children_s)
        # jiffies are coarse (10 ms): never report less than zero for rounding
        others = max(0.0, ((end.busy_s - start.busy_s) - ours) / wall)
    if start.steal_s is not None and end.steal_s is not None:
        steal = max(0.0, (end.steal_s - start.steal_s) / wall)
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    return InterferenceReading(others, steal, load, cpu_mhz, cores, threads, wall)


class Interference:
    """``with Interference() as i: <timed calls>`` then ``i.reading`` (see the module docstring)."""

    def __init__(self, threads: int | None = None, device: str = "cpu") -> None:
        self.threads = threads
        self.device = device
        self._start: _Snapshot | None = None
        self.reading: InterferenceReading | None = None
        self._nv: Any = None
        self._handle: Any = None

    def __enter__(self) -> "Interference":
        if self.device.startswith("cuda"):
            from .gpu import _nvml, nvml_handle

            self._handle = nvml_handle(self.device)
            self._nv = _nvml() if self._handle is not None else None
        self._gpu_start = gpu_snapshot(self._handle, self._nv) if self._nv is not None else None
        self._mhz = _cpu_mhz()
        self._start = cpu_snapshot()
        return self

    def __exit__(self, *exc: Any) -> None:
        end = cpu_snapshot()
        assert self._start is not None
        mhz = _cpu_mhz()
        both = [m for m in (self._mhz, mhz) if m is not None]
        self.reading = reading(self._start, end, self.threads, min(both) if both else None)
        if self._gpu_start is not None:
            pids, bits = gpu_snapshot(self._handle, self._nv)
            seen, mine = pids | self._gpu_start[0], os.getpid()
            if mine in seen or not seen:
                others = tuple(sorted(seen - {mine}))
            else:  # NVML lists the host's pids (a container): ours is one of them, which one cannot be told
                others = tuple(sorted(seen))[1:]
            self.reading = replace(self.reading, gpu=GpuReading(self.device, others,
                                                                throttle_names(bits | self._gpu_start[1])))
