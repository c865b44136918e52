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
which other processes hold the cell's GPU (benchbed's own parent and children are not "other") and
how far its cumulative throttle counters advanced (heat, a power brake) during the window.
"""

from __future__ import annotations

import glob
import os
import resource
import time
from dataclasses import dataclass, replace
from typing import Any

__all__ = ["Interference", "InterferenceReading", "GpuReading", "OTHERS_CORES_LIMIT", "STEAL_CORES_LIMIT",
           "GPU_THROTTLE_MARKS", "cpu_snapshot", "family_pids", "gpu_snapshot", "other_gpu_processes",
           "throttle_names", "violation_counters"]

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


def _proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of live process `pid` (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def cpu_snapshot(helpers: tuple[int, ...] = ()) -> _Snapshot:
    """System and own CPU time now; `helpers` are live processes working for this one (the workers
    of other environments), whose CPU is this cell's own, not another process's."""
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
    helping = sum(_proc_cpu_s(pid) for pid in helpers)
    return _Snapshot(time.perf_counter(), busy, steal, own.ru_utime + own.ru_stime + helping,
                     kids.ru_utime + kids.ru_stime)


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
GPU_THROTTLE_MARKS = ("hw_slowdown", "sw_thermal", "hw_thermal", "hw_power_brake", "thermal", "board_limit",
                      "reliability")
#: Cumulative throttle-time counters (nanoseconds since the driver loaded), read at both ends of a
#: window: a brake *during* the window shows as an advance even when the GPU is idle or just
#: synchronised at the two ends, which is all the current-reasons bitmask can see.
#: ``nvmlDeviceGetViolationStatus`` policies (power = the software power cap, recorded only) ...
GPU_VIOLATION_POLICIES = {0: "power_cap", 1: "thermal", 3: "board_limit", 5: "reliability"}
#: ... and NVML field values (driver 535+) for the hardware brakes.
GPU_VIOLATION_FIELDS = {269: "sw_thermal", 270: "hw_thermal", 271: "hw_power_brake"}
#: Share of the window a marking counter must advance by to mark the cell (a few milliseconds of
#: brake in a ten-second window changes no median).
GPU_VIOLATION_MARK = 0.01


@dataclass(frozen=True)
class GpuReading:
    """Other processes on the cell's GPU and the clock brakes seen during the window."""

    device: str
    other_pids: tuple[int, ...]
    throttle: tuple[str, ...]
    #: seconds each throttle counter advanced during the window
    violations: tuple[tuple[str, float], ...] = ()
    window_s: float = 0.0
    #: other processes counted where their pids are not ours to name (NVML in a container lists host pids)
    unnamed_others: int = 0

    @property
    def others(self) -> int:
        return len(self.other_pids) + self.unnamed_others

    @property
    def braked(self) -> list[str]:
        """Brakes that mark the window: a marking counter that advanced by a share of the window, or
        a marking reason bit set at either end."""
        share = max(self.window_s, 1e-9) * GPU_VIOLATION_MARK
        out = [f"{name} {secs:.3f}s of {self.window_s:.1f}s" for name, secs in self.violations
               if name in GPU_THROTTLE_MARKS and secs > share]
        named = {v.split()[0] for v in out}
        return out + [t for t in self.throttle if t in GPU_THROTTLE_MARKS and t not in named]

    @property
    def reason(self) -> str | None:
        parts = []
        if self.other_pids:
            pids = ", ".join(map(str, self.other_pids[:5]))
            parts.append(f"{self.others} other process(es) on {self.device} (pid {pids})")
        elif self.unnamed_others:
            parts.append(f"{self.unnamed_others} other process(es) on {self.device} (host pids, in a container)")
        slowed = self.braked
        if slowed:
            parts.append(f"{self.device} clocks held down: {', '.join(slowed)}")
        return "; ".join(parts) or None

    def columns(self) -> dict[str, Any]:
        named = [f"{n}={s:.3f}s" for n, s in self.violations if s > 0]
        return {"gpu_other_processes": self.others,
                "gpu_throttle": ",".join(dict.fromkeys([*self.throttle, *named])) or None}


def throttle_names(bits: int) -> tuple[str, ...]:
    """Names of the NVML clock-event reason bits set in `bits`."""
    return tuple(name for bit, name in GPU_THROTTLE_BITS.items() if bits & bit)


def violation_counters(handle: Any, nv: Any) -> dict[str, int]:
    """Cumulative throttle nanoseconds by name, for the counters this device has (see
    `GPU_VIOLATION_POLICIES`); a counter NVML does not support is left out, not read as zero."""
    out: dict[str, int] = {}
    for policy, name in GPU_VIOLATION_POLICIES.items():
        try:
            out[name] = int(nv.nvmlDeviceGetViolationStatus(handle, policy).violationTime)
        except Exception:
            continue
    try:
        values = nv.nvmlDeviceGetFieldValues(handle, list(GPU_VIOLATION_FIELDS))
        for v in values:
            if int(getattr(v, "nvmlReturn", 1)) == 0:
                out[GPU_VIOLATION_FIELDS[int(v.fieldId)]] = int(v.value.ullVal)
    except Exception:
        pass
    return out


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


def _parent(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def family_pids() -> set[int]:
    """This process, its ancestors and its descendants: benchbed's own processes around a cell (the
    launcher that started an isolated child, the GPU check's driver, pytest, workers it started).
    Their CUDA contexts are benchbed's, not a competitor's; they wait while the cell is timed."""
    me = os.getpid()
    out, pid = {me}, _parent(me)
    while pid and pid not in out:
        out.add(pid)
        pid = _parent(pid)
    try:
        import psutil

        out |= {c.pid for c in psutil.Process(me).children(recursive=True)}
    except Exception:
        pass
    return out


def holds_cuda(pid: int) -> bool:
    """Whether process `pid` has the CUDA driver library mapped (it holds, or is creating, a context)."""
    try:
        with open(f"/proc/{pid}/maps", encoding="ascii", errors="replace") as fh:
            return any("libcuda.so" in line for line in fh)
    except OSError:
        return False


def other_gpu_processes(seen: set[int], family: set[int]) -> tuple[tuple[int, ...], int]:
    """(other pids by name, other processes counted but not named) among the pids NVML listed.

    NVML lists pids in the host's namespace. Where ours is among them, the others are the listed
    pids outside benchbed's family. Where it is not (a container), no listed pid can be matched to
    ours, so the count is what NVML listed minus the family processes that hold CUDA."""
    if not seen:
        return (), 0
    if os.getpid() in seen:
        return tuple(sorted(seen - family)), 0
    ours = sum(1 for pid in family if holds_cuda(pid))
    return (), max(0, len(seen) - ours)


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

    def __init__(self, threads: int | None = None, device: str = "cpu", helpers: tuple[int, ...] = ()) -> None:
        self.threads = threads
        self.device = device
        self.helpers = tuple(helpers)
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
        self._violations = violation_counters(self._handle, self._nv) if self._nv is not None else {}
        self._mhz = _cpu_mhz()
        self._start = cpu_snapshot(self.helpers)
        return self

    def __exit__(self, *exc: Any) -> None:
        end = cpu_snapshot(self.helpers)
        assert self._start is not None
        mhz = _cpu_mhz()
        both = [m for m in (self._mhz, mhz) if m is not None]
        self.reading = reading(self._start, end, self.threads, min(both) if both else None)
        if self._gpu_start is not None:
            pids, bits = gpu_snapshot(self._handle, self._nv)
            after = violation_counters(self._handle, self._nv)
            advanced = tuple((name, (after[name] - before) / 1e9) for name, before in self._violations.items()
                             if name in after and after[name] >= before)
            named, unnamed = other_gpu_processes(pids | self._gpu_start[0], family_pids())
            self.reading = replace(self.reading, gpu=GpuReading(
                self.device, named, throttle_names(bits | self._gpu_start[1]), advanced, self.reading.seconds,
                unnamed))
