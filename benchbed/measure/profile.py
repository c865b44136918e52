"""Profiles of one runner's calls for `benchbed explain`, taken outside every timed window: the
stages' clock times, a sampling profile of the Python functions (pyinstrument here, the fallback;
the timer-signal sampler, which explain uses, is `sampler`), and the operators (torch.profiler,
keyed by name and input shapes), each split by benchbed's stages.

A runner marks its stages through `Runner.call_in_stages(stage)`: ``stage(NAME, fn, *args)`` runs
``fn`` inside a marker function of its own (``benchbed_stage_<NAME>``, so the sampling profile's
frames say which stage they are in) and a ``torch.profiler.record_function("benchbed::<NAME>")``
range (so the operators do). Time in the call outside every stage is the stage ``other`` (the
pipeline's batching, collation and glue)."""

from __future__ import annotations

import contextlib
import inspect
import os
import statistics
import sys
import time
from typing import Any, Callable, Iterator

__all__ = ["STAGES", "ProfilerMissing", "clocked_iter", "stage_clock", "python_profile", "operator_profile", "check_profilers",
           "module_of"]

#: benchbed's stages of an inference call, in call order; ``other`` is the call outside them.
STAGES = ("preprocess", "forward", "postprocess", "other")
#: how many functions (per stage) and operators a profile keeps: the rest is summed as ``(rest)``
KEEP_FUNCTIONS = 25
KEEP_OPERATORS = 40
#: pyinstrument's sampling interval (seconds): fine enough for calls of a few milliseconds; its
#: overhead is per Python call, and measured x1.8 at 0.5-1 ms against x2.4 at 0.2 ms (docs/explain.md)
INTERVAL_S = 0.0005

StageFn = Callable[..., Any]


class ProfilerMissing(RuntimeError):
    """A profiler explain needs is not installed (the message says which, and how to get it)."""


def check_profilers() -> None:
    """Raise `ProfilerMissing` when pyinstrument is not importable (torch.profiler ships with torch)."""
    try:
        import pyinstrument  # noqa: F401  (imported to see that it is there)
    except ImportError:
        raise ProfilerMissing("explain needs pyinstrument (pip install pyinstrument, or benchbed's core install)") \
            from None


def _annotation(name: str) -> Any:
    from torch.profiler import record_function

    return record_function(f"benchbed::{name}")


def benchbed_stage_preprocess(fn: Any, args: tuple, kwargs: dict) -> Any:
    with _annotation("preprocess"):
        return fn(*args, **kwargs)


def benchbed_stage_forward(fn: Any, args: tuple, kwargs: dict) -> Any:
    with _annotation("forward"):
        return fn(*args, **kwargs)


def benchbed_stage_postprocess(fn: Any, args: tuple, kwargs: dict) -> Any:
    with _annotation("postprocess"):
        return fn(*args, **kwargs)


def benchbed_call(call_in_stages: Callable[[StageFn], Any], stage: StageFn) -> Any:
    with _annotation("call"):
        return call_in_stages(stage)


_MARKERS = {"preprocess": benchbed_stage_preprocess, "forward": benchbed_stage_forward,
            "postprocess": benchbed_stage_postprocess}
_MARKER_STAGE = {f.__name__: name for name, f in _MARKERS.items()}
#: frames of the markers' own instrumentation (not in the unprofiled stage clock)
_INSTRUMENTS = (f"{__name__}:_annotation", "torch.autograd.profiler:record_function")


def _marked(name: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args)`` inside stage `name`'s markers; a generator (a chunk pipeline's preprocess) is
    advanced inside them item by item."""
    marker = _MARKERS[name]
    out = marker(fn, args, kwargs)
    if inspect.isgenerator(out):
        return _marked_iter(marker, out)
    return out


def _marked_iter(marker: Any, gen: Iterator[Any]) -> Iterator[Any]:
    done = object()
    while True:
        item = marker(next, (gen, done), {})
        if item is done:
            return
        yield item


def stage_clock(runs: dict[str, Any], calls: int, clock: Callable[[], float] = time.perf_counter
                ) -> dict[str, dict[str, float]]:
    """Median seconds per call of each stage, and of ``other`` (the call less its stages), for
    each of `runs` (name -> runner), over `calls` calls each without a profiler, the runners'
    calls alternating (so the machine's drift falls on all of them alike)."""
    rows: dict[str, list[dict[str, float]]] = {n: [] for n in runs}
    order = list(runs)
    for i in range(calls):
        for name in order if i % 2 == 0 else order[::-1]:
            rows[name].append(_clocked_call(runs[name], clock))
    return {n: {s: statistics.median(r[s] for r in rs) for s in STAGES} for n, rs in rows.items()}


def _clocked_call(run: Any, clock: Callable[[], float]) -> dict[str, float]:
    times = dict.fromkeys(STAGES[:-1], 0.0)
    sync = run.sync

    def stage(name: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        t0 = clock()
        out = fn(*args, **kwargs)
        sync()
        times[name] += clock() - t0
        if inspect.isgenerator(out):
            return clocked_iter(out, name, times, clock)
        return out

    t0 = clock()
    run.call_in_stages(stage)
    sync()
    total = clock() - t0
    times["other"] = max(0.0, total - sum(times.values()))
    return times


def clocked_iter(gen: Iterator[Any], name: str, times: dict[str, float], clock: Callable[[], float]) -> Iterator[Any]:
    """`gen`'s items, the seconds spent producing each added to ``times[name]`` (a chunk pipeline's
    lazy preprocess is timed as it is consumed)."""
    while True:
        t0 = clock()
        try:
            item = next(gen)
        except StopIteration:
            times[name] += clock() - t0
            return
        times[name] += clock() - t0
        yield item


def _loaded_modules() -> dict[str, str]:
    """Source file -> dotted name of every module loaded now (editable installs have no
    `sys.path` entry to find their names from)."""
    out = {}
    for name, mod in list(sys.modules.items()):
        path = getattr(mod, "__file__", None)
        if isinstance(path, str):
            out[os.path.abspath(path)] = name
    return out


def module_of(path: str, loaded: dict[str, str] | None = None) -> str:
    """A source file's dotted module name (``transformers.pipelines.base``): the loaded module's
    own name, else from the longest `sys.path` entry holding it, else the file's base name."""
    if not path or path.startswith("<"):
        return path or "?"
    path = os.path.abspath(path)
    if loaded and path in loaded:
        return loaded[path]
    best = ""
    for entry in sys.path:
        entry = os.path.abspath(entry or ".")
        if path.startswith(entry + os.sep) and len(entry) > len(best):
            best = entry
    rel = path[len(best) + 1:] if best else os.path.basename(path)
    rel = rel[:-3] if rel.endswith(".py") else rel
    return rel.replace(os.sep, ".").removesuffix(".__init__")


def python_profile(call_in_stages: Callable[[StageFn], Any], calls: int,
                   interval_s: float = INTERVAL_S) -> dict[str, Any]:
    """A sampling profile of `calls` calls: seconds per call of each Python function by stage, a
    function's own time counting the C code it calls directly (a tokenizer's Rust, a matmul), so
    the functions of a stage add up to the stage. Also the profiled seconds per call (``wall_s``)."""
    from pyinstrument import Profiler

    prof = Profiler(interval=interval_s, async_mode="disabled")
    t0 = time.perf_counter()
    prof.start()
    try:
        for _ in range(calls):
            benchbed_call(call_in_stages, _marked)
    finally:
        prof.stop()
    wall = (time.perf_counter() - t0) / calls
    session = prof.last_session
    functions: dict[str, dict[str, float]] = {s: {} for s in STAGES}
    loaded = _loaded_modules()
    stack = [(session.root_frame(trim_stem=False), None)]
    while stack:
        frame, stage = stack.pop()
        if frame is None:
            continue
        name = frame.function
        if name == "benchbed_call" and stage is None:
            stage = "other"
        elif name in _MARKER_STAGE:
            stage = _MARKER_STAGE[name]
        python_children = [c for c in frame.children if not c.is_synthetic and c.file_path != "<built-in>"]
        if stage is not None and name not in _MARKER_STAGE and name != "benchbed_call" \
                and not frame.is_synthetic and frame.file_path != "<built-in>":
            own = frame.time - sum(c.time for c in python_children)
            key = f"{module_of(frame.file_path, loaded)}:{frame.class_name + '.' if frame.class_name else ''}{name}"
            functions[stage][key] = functions[stage].get(key, 0.0) + own / calls
        stack.extend((c, stage) for c in python_children)
    return _view_of("pyinstrument", wall, calls, interval_s, functions)


def _view_of(profiler: str, wall: float, calls: int, interval_s: float,
             functions: dict[str, dict[str, float]]) -> dict[str, Any]:
    """A Python view as a profile keeps it: each stage's total, and its functions (the largest)."""
    return {"profiler": profiler, "wall_s": wall, "calls": calls, "interval_s": interval_s,
            "stage_s": {s: sum(f.values()) for s, f in functions.items()},
            "functions": {s: _top(f, KEEP_FUNCTIONS) for s, f in functions.items()}}


def _top(values: dict[str, float], keep: int) -> dict[str, float]:
    ranked = sorted(values.items(), key=lambda kv: -abs(kv[1]))
    out = dict(ranked[:keep])
    rest = sum(v for _, v in ranked[keep:])
    if rest:
        out["(rest)"] = rest
    return out


def operator_profile(call_in_stages: Callable[[StageFn], Any], calls: int, cuda: bool = False) -> dict[str, Any]:
    """torch.profiler over `calls` calls: each operator's own CPU time per call (and its device time
    on CUDA), keyed by stage, name and input shapes; each stage's profiled seconds per call."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    t0 = time.perf_counter()
    with _quiet_fd2(), profile(activities=activities, record_shapes=True) as prof:
        for _ in range(calls):
            benchbed_call(call_in_stages, _marked)
    wall = (time.perf_counter() - t0) / calls
    events = prof.events()
    device = _device_view(events) if cuda else None
    ops: dict[tuple[str, str, str], list[float]] = {}
    stage_s = dict.fromkeys(STAGES, 0.0)
    call_s = 0.0
    for evt in events:
        if evt.name.startswith("benchbed::"):
            stage = evt.name.split("::", 1)[1]
            if stage == "call":
                call_s += evt.cpu_time_total / 1e6 / calls
            elif stage in stage_s:
                stage_s[stage] += evt.cpu_time_total / 1e6 / calls
            continue
        stage = _op_stage(evt)
        if stage is None:
            continue
        key = (stage, evt.name, str(evt.input_shapes)[:120] if evt.input_shapes else "")
        row = ops.setdefault(key, [0.0, 0.0, 0.0])
        row[0] += evt.self_cpu_time_total / 1e6 / calls
        row[1] += getattr(evt, "self_device_time_total", 0.0) / 1e6 / calls if cuda else 0.0
        row[2] += 1 / calls
    stage_s["other"] = max(0.0, call_s - sum(stage_s.values()))
    ranked = sorted(ops.items(), key=lambda kv: -kv[1][0] - kv[1][1])
    return {"wall_s": wall, "calls": calls, "stage_s": stage_s, "device": device,
            "operators": [[s, n, shapes, cpu, dev, count] for (s, n, shapes), (cpu, dev, count) in
                          ranked[:KEEP_OPERATORS]]}


def _device_view(events: Any) -> dict[str, Any]:
    """Kernel busy time and launch gaps within the profiled calls (`device_trace.device_timeline`;
    not yet run on a GPU: docs/explain.md)."""
    from torch.autograd import DeviceType

    from .device_trace import device_timeline

    windows = [(e.time_range.start, e.time_range.end) for e in events if e.name == "benchbed::call"]
    kernels = [(e.time_range.start, e.time_range.end) for e in events
               if getattr(e, "device_type", None) == DeviceType.CUDA]
    out = device_timeline(kernels, windows)
    return {k: (v / 1e6 if isinstance(v, float) and k in ("busy", "wall", "gap_median", "gap_total") else v)
            for k, v in out.items()}


@contextlib.contextmanager
def _quiet_fd2() -> Iterator[None]:
    """File descriptor 2 to /dev/null while the profiler starts and stops: kineto writes a
    ``USDT: ... profiler_start`` line there that no setting turns off."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _op_stage(evt: Any) -> str | None:
    """The benchbed stage an operator event ran in (None: outside the profiled call)."""
    parent = evt.cpu_parent
    while parent is not None:
        if parent.name.startswith("benchbed::"):
            stage = parent.name.split("::", 1)[1]
            return "other" if stage == "call" else stage
        parent = parent.cpu_parent
    return None
