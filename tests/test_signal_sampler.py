"""The timer-signal sampler behind explain's Python view: what it counts must add up to the time
the calls took, whatever part of a call the last tick fell in (a fixed-phase sampler lost each
call's tail after its last tick: about 40% of a 0.6 ms call at 0.5 ms ticks)."""

from __future__ import annotations

import time

from benchbed.measure.sampler import signal_profile

from conftest import holds_or_busy


def _spin(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _call(stage):
    stage("forward", _spin, 0.0003)
    stage("postprocess", _spin, 0.0003)


def _split_problem(view) -> str | None:
    """What is wrong with a profile of `_call` (None: the relation holds)."""
    per_call = {stage: sum(view["functions"][stage].values()) for stage in ("forward", "postprocess")}
    sampled = sum(per_call.values())
    # the calls' own 0.6 ms (a busy neighbour stretches the wall, not what the spins are worth)
    if not 0.0006 * 0.85 <= sampled <= view["wall_s"] * 1.1:
        return f"sampled {sampled:.6f} s a call against a wall of {view['wall_s']:.6f} s"
    # the second half of each call is counted like the first (it was the one that lost its tail)
    if not 0.75 <= per_call["postprocess"] / per_call["forward"] <= 1.33:
        return f"the halves split unfairly: {per_call}"
    spins = {stage: view["functions"][stage].get(f"{__name__}:_spin", 0.0) for stage in per_call}
    if not all(t > 0.0002 for t in spins.values()):
        return f"the spin function was not named in both halves: {spins}"
    return None


def test_sampled_time_adds_up_to_the_calls_and_splits_them_fairly():
    # a timing test: it holds, or benchbed's own interference reading says the machine was busy
    holds_or_busy(lambda: _split_problem(signal_profile(_call, 400, interval_s=0.0005)))


def _drift_problem() -> str | None:
    """Two runs of the same code sampled together on a machine that slows down while they are
    sampled; what is wrong (None: they come out alike, and the drift was real)."""
    from benchbed.measure.sampler import signal_profiles

    clock = {"start": time.perf_counter()}

    def drifting(stage):  # the same work, 30% slower after a second: the host's drift
        stage("forward", _spin, 0.002 * (1 + 0.3 * min(1.0, time.perf_counter() - clock["start"])))

    views = signal_profiles({"a": drifting, "b": drifting}, 400, interval_s=0.0005, seconds=1.5)
    if not views["a"]["calls"] == views["b"]["calls"] >= 100:
        return f"calls {views['a']['calls']} and {views['b']['calls']}"
    walls = {n: v["wall_s"] for n, v in views.items()}  # clocked per call: no sampling noise
    if abs(walls["a"] / walls["b"] - 1) >= 0.03:
        return f"walls apart: {walls}"
    sampled = {n: sum(v["functions"]["forward"].values()) for n, v in views.items()}
    if abs(sampled["a"] / sampled["b"] - 1) >= 0.15:  # ±4% of sampling noise a side
        return f"sampled apart: {sampled}"
    # the drift is real: one after the other, the later profile is the slower
    clock["start"] = time.perf_counter()
    first = signal_profiles({"a": drifting}, 400, interval_s=0.0005, seconds=0.75)["a"]["wall_s"]
    later = signal_profiles({"b": drifting}, 400, interval_s=0.0005, seconds=0.75)["b"]["wall_s"]
    return None if later / first > 1.1 else f"no drift one after the other: {first} then {later}"


def test_runners_sampled_together_share_the_machine_s_drift():
    """explain profiles a cell's runners in one window, their calls alternating: two runs of the
    same code come out alike on a drifting machine, where one after the other the later carries
    the drift. A timing test: it holds, or the interference reading says the machine was busy."""
    from benchbed.measure.sampler import signal_profiles

    signal_profiles({"warm": _call}, 1)  # the stage markers' first use imports torch's profiler
    holds_or_busy(_drift_problem)
