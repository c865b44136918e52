"""The measurement passes of a cell, each a small function over already-built runners: compile
warm-up, memory, phases, FLOPs and the device-counter (NVML) pass. Timing itself is
`benchbed.measure.paired` (runners interleaved in blocks) and `benchbed.measure.timer`.
Each pass returns record columns; none of them times anything the others time."""

from __future__ import annotations

from dataclasses import dataclass, replace

import time
from typing import Any, Callable

import numpy as np

from ..measure import CudaPeak, PeakRSS, trim_heap
from ..measure.memory import own_peak_bytes
from ..runners.build import release

__all__ = ["PASS_S", "PassPlan", "StepTimer", "pass_calls", "runner_passes", "compile_warmup", "flop_key", "flops_columns", "graph_count", "memory_columns",
           "nvml_columns", "phase_columns", "resource_columns", "slowed", "tf32_cudnn_enabled", "tf32_enabled",
           "with_steps"]


def tf32_enabled() -> bool:
    """Whether fp32 matmuls may run as TF32 (the flag, or a float32 matmul precision below "highest")."""
    import torch

    return bool(torch.backends.cuda.matmul.allow_tf32 or torch.get_float32_matmul_precision() != "highest")


def tf32_cudnn_enabled() -> bool:
    """Whether cuDNN convolutions may run as TF32 (``torch.backends.cudnn.allow_tf32``, on by default)."""
    import torch

    return bool(torch.backends.cudnn.allow_tf32)


def graph_count() -> int:
    try:
        from torch._dynamo.utils import counters

        return int(counters["stats"]["unique_graphs"])
    except Exception:
        return 0


def compile_warmup(run: Any, max_calls: int = 8) -> tuple[float, int]:
    """Call `run` until a call compiles nothing new; returns (seconds of the calls that compiled,
    graphs compiled). 0 seconds means the graphs were already compiled, by another runner of the
    cell (parity runs them all) or an earlier case of the same shapes."""
    seconds, graphs = 0.0, 0
    for _ in range(max_calls):
        before = graph_count()
        t0 = time.perf_counter()
        run()
        run.sync()
        dt = time.perf_counter() - t0
        new = graph_count() - before
        if new <= 0:
            break
        seconds += dt
        graphs += new
    return seconds, graphs


class StepTimer:
    """A generation streamer that timestamps every new token (`generate` hands it the prompt first,
    then each step's tokens, after they reach the host, so device work is finished)."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.start = 0.0
        self.times: list[float] = []
        self._prompt = True

    def reset(self) -> None:
        self.start = self.clock()
        self.times = []
        self._prompt = True

    def put(self, value: Any) -> None:
        if self._prompt:
            self._prompt = False
            return
        self.times.append(self.clock())

    def end(self) -> None:
        pass

    def first_and_per_token(self) -> tuple[float, float] | None:
        """(seconds from `reset` to the first new token, seconds per later token) of the last
        call, from the per-step timestamps; None when no token came."""
        t = self.times
        if not t:
            return None
        return t[0] - self.start, (t[-1] - t[0]) / (len(t) - 1) if len(t) > 1 else 0.0


def with_steps(run: Any, steps: list[tuple[float, float]]) -> Callable[[], Any]:
    """`run` that also appends (time to first token, time per later token) of each call, measured
    from per-step timestamps rather than by subtraction."""
    timer = run.streamer

    def call() -> Any:
        timer.reset()
        out = run()
        got = timer.first_and_per_token()
        if got is not None:
            steps.append(got)
        return out

    return call


def slowed(fn: Callable[[], Any], fraction: float) -> Callable[[], Any]:
    """`fn` followed by extra tensor work lasting `fraction` of fn's own duration: a real,
    proportional slowdown for checking that regressions are detected (not a number written into a
    record). The work is small torch matmuls, not a Python spin, so torch's worker threads stay as
    busy as in the model call; a spin let them fall asleep and slowed the next call as well, which
    tripled the effective slowdown."""
    import torch

    a = torch.randn(32, 32)

    def call() -> Any:
        t0 = time.perf_counter()
        out = fn()
        end = time.perf_counter() + (time.perf_counter() - t0) * fraction
        while time.perf_counter() < end:
            torch.mm(a, a)
        return out

    return call


def memory_columns(run: Any, device: str, calls: int = 3, state_bytes: int | None = None,
                   torch_allocator: bool = True) -> dict[str, Any]:
    """Peak resident (and CUDA allocator) memory of one call of one runner, the median over
    `calls` calls each measured on its own after what earlier work freed was handed back. Its own
    pass, so timing never runs beside a sampler and runners timed in the same window still get a
    figure each; a median of single calls, so a transient elsewhere in the process during one of
    them does not become the figure.

    On CUDA ``gpu_alloc_peak_mb`` is the runner's own peak (`state_bytes`, what it holds between
    calls, plus the increase over a call, ``gpu_alloc_call_mb``); ``gpu_alloc_base_mb`` is all the
    process had allocated when the call began. A runner whose memory is outside torch's allocator
    (`torch_allocator` false: ONNX Runtime's arena) gets no allocator figures."""
    rss_mb, call_mb, base_mb, reserved_mb, method = [], [], [], [], ""
    for _ in range(calls):  # the cell's full collection ran before timing; what timing left is young
        release(device, young=True)
        trim_heap()
        with PeakRSS() as rss, CudaPeak(device) as gpu:
            run()
            run.sync()
        rss_mb.append(rss.delta_bytes / 2**20)
        method = rss.method
        if gpu.increase is not None:
            call_mb.append(gpu.increase / 2**20)
            base_mb.append(gpu.base / 2**20)
            reserved_mb.append(gpu.reserved / 2**20)
    out: dict[str, Any] = {"cpu_rss_peak_delta_mb": float(np.median(rss_mb)), "cpu_rss_method": method}
    if call_mb and torch_allocator:
        call = float(np.median(call_mb))
        out.update(gpu_alloc_peak_mb=own_peak_bytes(state_bytes, int(call * 2**20)) / 2**20, gpu_alloc_call_mb=call,
                   gpu_alloc_state_mb=None if state_bytes is None else state_bytes / 2**20,
                   gpu_alloc_base_mb=float(np.median(base_mb)), gpu_reserved_peak_mb=float(np.median(reserved_mb)))
    return out


def phase_columns(run: Any, calls: int) -> dict[str, Any]:
    """Median seconds of each phase the runner reports, over `calls` phase-timed calls (inference:
    ``pre``, ``fwd``, ``post``; training: ``data``, ``fwd``, ``bwd``, ``optim``, ``after``)."""
    phases = [run.call_with_phases()[1] for _ in range(calls)]
    phases = [p for p in phases if p]
    if not phases:
        return {}
    return {f"{key}_s": float(np.median([p[key] for p in phases])) for key in phases[0]
            if all(key in p for p in phases)}


def flops_columns(run: Any, median_s: float, device: str, dtype: str) -> dict[str, Any]:
    """FLOPs of one call against the device's measured matmul peak."""
    from ..measure.flops import count_flops, matmul_peak_tflops
    from ..models.precision import base_dtype

    flops = run.cache(("flops", flop_key(run.case)), lambda: count_flops(run))  # the run's cache: once a shape
    if not flops or median_s <= 0:
        return {}
    out: dict[str, Any] = {"flops_per_call": float(flops), "achieved_tflops": flops / median_s / 1e12}
    peak = matmul_peak_tflops(device, dtype, fallback=base_dtype(dtype, device))
    if peak:
        out["peak_tflops"], out["peak_probe"] = peak
        out["peak_fraction"] = out["achieved_tflops"] / peak[0]
    return out


def flop_key(case: Any) -> Any:
    """What a call's FLOPs depend on: its case, the floating precision aside (the same shapes do the
    same arithmetic in fp32, bf16 and fp16; the counts were equal on every cell of the default
    matrix), so a run counts each runner's call once per model and shape (a counted call of a slow
    cell costs more than the call). int8 keeps its own count (its quantized matmuls are other
    operators)."""
    from ..values import TORCH_DTYPES

    return replace(case, dtype="fp32") if case.dtype in TORCH_DTYPES else case


def resource_columns(run: Any, device: str, items_per_call: int, seconds: float) -> dict[str, Any]:
    """Device counters (NVML memory used, utilisation, power, energy) in their own pass of calls: a
    sampler thread is a second workload, so it never runs beside timed calls. Energy per item
    divides by every item a call processed (`items_per_call`: batch × accumulation in training).
    NVML's memory is device-wide: ``gpu_nvml_used_peak_mb`` is the peak, and
    ``gpu_nvml_increase_mb`` the rise over what the device held when the pass began (which is
    what this runner added, not what another runner's cached session holds)."""
    from ..measure.gpu import NvmlSampler, nvml_handle

    handle = nvml_handle(device) if device.startswith("cuda") else None
    if handle is None:
        return {}
    calls = 0
    with NvmlSampler(handle) as sampler:
        end = time.perf_counter() + seconds
        while calls < 3 or time.perf_counter() < end:
            run()
            run.sync()
            calls += 1
    return nvml_columns(sampler, calls * items_per_call)


#: about how long a phase or memory pass may take: a pass needs calls enough for a steady median of
#: millisecond calls, and one call of a slow one (the default matrix's bf16 b8 s128 cells call for
#: 1.5 s; five phase and three memory calls of each runner cost 24 s, more than their timing)
PASS_S = 0.5


def pass_calls(most: int, median_s: float, seconds: float = PASS_S) -> int:
    """Calls of a phase or memory pass: as many as fit in `seconds` at the timed median, at least
    one and at most `most` (0 stays 0: that pass is off)."""
    if most <= 0:
        return 0
    if median_s <= 0 or not np.isfinite(median_s):
        return most
    return int(max(1, min(most, seconds // median_s)))


@dataclass(frozen=True)
class PassPlan:
    """Which of a runner's own passes run after its timing, and their sizes."""

    per_call: bool  # phases (and FLOPs) mean something for this scenario's samples, on the first pass
    flops: bool
    phase_calls: int
    memory_calls: int
    items_per_call: int
    resource_pass_s: float


def runner_passes(run: Any, memory_call: Any, median_s: float, plan: PassPlan) -> dict[str, Any]:
    """A runner's passes after timing — phases, FLOPs, memory, device counters — as record columns
    (the cell's runners and an environment worker's alike), each with its own seconds
    (``cost_phases_s``, ``cost_flops_s``, ``cost_memory_s``, ``cost_resource_s``); a pass sized 0
    is not run and costs nothing."""
    case = run.case
    out: dict[str, Any] = {}

    def timed(part: str, columns: Callable[[], dict[str, Any]]) -> None:
        t = time.perf_counter()
        out.update(columns())
        out[f"cost_{part}_s"] = time.perf_counter() - t

    if plan.per_call:
        timed("phases", lambda: phase_columns(run, plan.phase_calls))
        if plan.flops:
            timed("flops", lambda: flops_columns(run, median_s, case.device, case.dtype))
    if plan.memory_calls:
        timed("memory", lambda: memory_columns(memory_call, case.device, calls=plan.memory_calls,
                                               state_bytes=run.state_bytes() if case.device.startswith("cuda") else None,
                                               torch_allocator=run.TORCH_ALLOCATOR))
    if plan.resource_pass_s > 0:
        timed("resource", lambda: resource_columns(run, case.device, plan.items_per_call, plan.resource_pass_s))
    return out


def nvml_columns(sampler: Any, items: int) -> dict[str, Any]:
    """Record columns of a finished `NvmlSampler` pass over `items` items."""
    used, start = sampler.peak_used_bytes, sampler.start_used_bytes
    return {"gpu_nvml_used_peak_mb": None if used is None else used / 2**20,
            "gpu_nvml_increase_mb": None if used is None or start is None else max(0, used - start) / 2**20,
            "gpu_util_mean_pct": sampler.mean_util_pct, "gpu_power_mean_w": sampler.mean_power_w,
            "energy_method": sampler.energy_method,
            "energy_j_per_item": sampler.energy_j / items if sampler.energy_j is not None and items > 0 else None,
            "gpu_counters_unavailable": sampler.unavailable}
