"""The timer-signal sampler behind explain's Python view (`signal_profile`): a wall-clock timer
signal, its grid started at a random phase each call, each tick's folded call stack kept by stage.
It needs no per-call hook, so Python-heavy code is not inflated the way pyinstrument's hook
inflates it (docs/explain.md). The stage markers it reads are `profile`'s."""

from __future__ import annotations

import math
import random
import time
from typing import Any, Callable

from .profile import _INSTRUMENTS, _MARKER_STAGE, INTERVAL_S, STAGES, ProfilerMissing, StageFn, _marked, _view_of, \
    benchbed_call

__all__ = ["KEEP_STACKS", "signal_profile", "signal_profiles"]

#: how many call stacks (per stage) the timer-signal sampler keeps, the largest first
KEEP_STACKS = 600


def signal_profile(call_in_stages: Callable[[StageFn], Any], calls: int,
                   interval_s: float = INTERVAL_S, seed: int = 0, seconds: float | None = None,
                   min_calls: int = 3) -> dict[str, Any]:
    """One runner's sampling profile: `signal_profiles` of it alone."""
    return signal_profiles({"": call_in_stages}, calls, interval_s, seed, seconds, min_calls)[""]


def signal_profiles(runs: dict[str, Callable[[StageFn], Any]], calls: int, interval_s: float = INTERVAL_S,
                    seed: int = 0, seconds: float | None = None, min_calls: int = 3) -> dict[str, dict[str, Any]]:
    """Sampling profiles of `runs` (name -> a runner's ``call_in_stages``), their calls alternating
    (ABBA), so that the machine's drift while they are sampled falls on all of them alike, as in
    the timing: profiled one after the other, two runs of the same code differed in a large
    operator by 2-4% of the call (GELU, layer_norm, SDPA), and explain named that noise.

    Each call is sampled by a wall-clock timer signal (``ITIMER_REAL``) whose grid starts at a
    random phase; at each tick the interrupted Python frame gets one interval per grid point passed
    since the last tick, so time in C code (a matmul, the Rust tokenizer) is its caller's, a tick
    held back by a long C call still carries its whole time, and every instant of a call is counted
    with the same expectation: the seconds since the previous tick (what this sampler gave before)
    lost each call's tail after its last tick, about half an interval a call, 40% of a 0.6 ms call
    (docs/explain.md). No per-call hook: Python-heavy code is not inflated (pyinstrument's hook
    is), only a stack walk per tick, the same everywhere. Needs the main thread and an unused
    SIGALRM; `ProfilerMissing` otherwise. `calls` is each run's most; with `seconds` (all runs
    together) calls stop once they have passed and each run made `min_calls`."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        raise ProfilerMissing("the timer-signal sampler needs the main thread on a POSIX system")
    if signal.getsignal(signal.SIGALRM) not in (signal.SIG_DFL, None) or signal.getitimer(signal.ITIMER_REAL)[0]:
        raise ProfilerMissing("SIGALRM is in use by someone else")
    order = list(runs)
    every: dict[str, dict[str, dict[tuple[Any, ...], float]]] = {n: {s: {} for s in STAGES} for n in order}
    stacks = every[order[0]]  # the stacks of the run whose call is sampled now
    names: dict[Any, str] = {}
    clock = time.perf_counter
    grid = [clock(), 0]  # this call's first grid point, and how many grid points ticks have counted
    phases = random.Random(seed)
    skip = {"benchbed_call", "_marked", "_marked_iter", *_MARKER_STAGE}

    def tick(signum: int, frame: Any) -> None:
        passed = math.floor((clock() - grid[0]) / interval_s) + 1
        count = max(1, passed - grid[1])
        grid[1] += count
        dt = count * interval_s
        f, stage, codes = frame, None, []
        while f is not None:
            code = f.f_code
            name = code.co_name
            if name in _MARKER_STAGE:
                stage = _MARKER_STAGE[name]
                break
            if name == "benchbed_call":
                stage = "other"
                break
            if code not in names:
                names[code] = f"{f.f_globals.get('__name__', '?')}:{getattr(code, 'co_qualname', name)}"
            codes.append(code)
            f = f.f_back
        if stage is None or frame is None or frame.f_code.co_name in skip or frame.f_code is tick.__code__:
            return  # (a tick that interrupted the previous tick's handler is the sampler's own time)
        key = tuple(reversed([c for c in codes if c.co_name not in skip]))
        if key and names[key[0]].startswith(_INSTRUMENTS):
            return  # the stage marker's own record_function: the profile's cost, not the runner's
        bucket = stacks[stage]
        bucket[key] = bucket.get(key, 0.0) + dt

    previous = signal.signal(signal.SIGALRM, tick)
    t0 = clock()
    made = 0
    spent = dict.fromkeys(order, 0.0)
    try:
        while made < calls and (seconds is None or made < min_calls or clock() - t0 < seconds):
            for name in order if made % 2 == 0 else order[::-1]:
                stacks = every[name]
                first = max(1e-6, phases.random() * interval_s)
                t = clock()
                grid[0], grid[1] = t + first, 0
                signal.setitimer(signal.ITIMER_REAL, first, interval_s)
                benchbed_call(runs[name], _marked)
                signal.setitimer(signal.ITIMER_REAL, 0)
                spent[name] += clock() - t
            made += 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    return {name: _view(every[name], names, made, spent[name] / made, interval_s) for name in order}


def _view(stacks: dict[str, dict[tuple[Any, ...], float]], names: dict[Any, str], calls: int, wall: float,
          interval_s: float) -> dict[str, Any]:
    """One run's view: each stage's leaf functions (seconds per call) and its folded stacks."""
    functions: dict[str, dict[str, float]] = {s: {} for s in STAGES}
    for stage, bucket in stacks.items():
        for key, seconds in bucket.items():
            leaf = names[key[-1]]
            functions[stage][leaf] = functions[stage].get(leaf, 0.0) + seconds / calls
    view = _view_of("timer-signal", wall, calls, interval_s, functions)
    view["frames"], view["stacks"] = _folded(stacks, names, calls)
    return view


def _folded(stacks: dict[str, dict[tuple[Any, ...], float]], names: dict[Any, str], calls: int
            ) -> tuple[list[str], dict[str, list[list[Any]]]]:
    """The sampled call stacks (outermost frame first, seconds per call), the largest
    `KEEP_STACKS` per stage, frames as indices into one list of names; the rest of a stage's time
    is one stack of the frame ``(rest)``, so a stage's stacks still add up to its time."""
    index: dict[str, int] = {}
    out: dict[str, list[list[Any]]] = {}
    for stage, bucket in stacks.items():
        ranked = sorted(bucket.items(), key=lambda kv: -kv[1])
        rows = [[[index.setdefault(names[c], len(index)) for c in key], seconds / calls]
                for key, seconds in ranked[:KEEP_STACKS]]
        rest = sum(seconds for _, seconds in ranked[KEEP_STACKS:])
        if rest:
            rows.append([[index.setdefault("(rest)", len(index))], rest / calls])
        out[stage] = rows
    return list(index), out
