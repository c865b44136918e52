"""The timer-signal sampler behind explain's Python view: what it counts must add up to the time
the calls took, whatever part of a call the last tick fell in (a fixed-phase sampler lost each
call's tail after its last tick: about 40% of a 0.6 ms call at 0.5 ms ticks)."""

from __future__ import annotations

import time

from benchbed.measure.sampler import signal_profile


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
    # (then it is measured once more, and must hold or be marked busy again)
    from benchbed.measure.interference import Interference

    for _ in range(2):
        with Interference() as watch:
            view = signal_profile(_call, 400, interval_s=0.0005)
        problem = _split_problem(view)
        if problem is None:
            return
        busy = watch.reading.reason if watch.reading else None
        assert busy, f"{problem}, and the interference reading does not say the machine was busy"
