"""explain's roll-up of small differences to their callers (`benchbed.explain.rollup`): what moved
is named where it moved, many small moves are named at their common caller, a function reached at
different depths is still one function, and the named parts and the unexplained rest always add
up to the difference."""

from __future__ import annotations

import json
import random

import pytest

from benchbed.explain import explain_pair
from benchbed.explain.rollup import roll_up

MS = 1e-3


def test_a_function_that_moved_is_named_alone_and_its_caller_is_not():
    runner = [(("pipe:call", "pipe:post", "pipe:slow"), 2 * MS), (("pipe:call", "pipe:post"), 0.01 * MS)]
    named, unexplained = roll_up(runner, [], floor=0.1 * MS)
    assert [(r.name, r.callees) for r in named] == [("pipe:slow", 0)]
    assert named[0].delta_s == pytest.approx(2 * MS)
    assert unexplained == pytest.approx(0.01 * MS)


def test_many_small_moves_are_named_at_their_common_caller_with_how_many_they_were():
    runner = [(("pipe:call", "pipe:post", f"helpers:h{i}"), 0.02 * MS) for i in range(40)]
    named, unexplained = roll_up(runner, [], floor=0.1 * MS)
    assert [(r.name, r.callees) for r in named] == [("pipe:post", 40)]
    assert named[0].delta_s == pytest.approx(0.8 * MS) and unexplained == pytest.approx(0.0)


def test_the_same_function_at_different_depths_is_compared_as_one_and_names_nothing():
    """A model's layers under a pipeline sit two frames deeper than under the raw call."""
    layers = [("m:Bert.forward", "m:Layer.forward", "m:Linear.forward"), ("m:Bert.forward", "m:Layer.forward")]
    runner = [(("pipe:call", "pipe:forward") + f, 1 * MS) for f in layers]
    reference = [(("raw:forward",) + f, 1 * MS) for f in layers]
    named, unexplained = roll_up(runner, reference, floor=0.1 * MS)
    assert named == [] and unexplained == pytest.approx(0.0)


def test_moves_reaching_a_caller_in_different_rounds_add_up_there():
    """Small moves arriving at `pipe:call` from leaves one, two and three frames below it: no round
    alone passes the floor, together they do."""
    runner = [(("pipe:call", "a"), 0.06 * MS), (("pipe:call", "b", "c"), 0.06 * MS),
              (("pipe:call", "d", "e", "f"), 0.06 * MS)]
    named, unexplained = roll_up(runner, [], floor=0.1 * MS)
    assert [(r.name, r.callees) for r in named] == [("pipe:call", 6)] and unexplained == pytest.approx(0.0)


@pytest.mark.parametrize("seed", range(30))
def test_named_parts_and_the_unexplained_rest_add_up_to_the_difference(seed):
    rng = random.Random(seed)
    names = [f"mod:f{i}" for i in range(12)]

    def stacks(n):
        return [(tuple(rng.choice(names) for _ in range(rng.randint(1, 6))), rng.uniform(0, 0.5) * MS)
                for _ in range(n)]

    runner, reference = stacks(rng.randint(0, 40)), stacks(rng.randint(0, 40))
    floor = rng.uniform(0.01, 1.0) * MS
    named, unexplained = roll_up(runner, reference, floor)
    total = sum(s for _, s in runner) - sum(s for _, s in reference)
    assert sum(r.delta_s for r in named) + unexplained == pytest.approx(total, abs=1e-12)
    assert all(abs(r.delta_s) > 0 for r in named)


def _profile(stage_s, stacks, frames):
    return json.dumps({"version": 1, "timed_median_s": sum(stage_s.values()), "stage_clock_s": stage_s,
                       "python": {"wall_s": 0.01, "calls": 10, "stage_s": stage_s, "functions": {},
                                  "frames": frames, "stacks": stacks},
                       "operators": {"wall_s": 0.01, "calls": 10, "stage_s": {}, "operators": []}})


def test_a_pipeline_whose_extra_cost_is_forty_small_helpers_is_explained_not_left_unexplained():
    """Profiles with call stacks are attributed by the roll-up: the 40 helpers of 0.05 ms that a
    flat per-function view leaves unexplained (each under 3% of the 2 ms gap) are their caller's."""
    frames = ["pipe:call", "pipe:post", "model:forward", "raw:call", "glue:batch"] + [f"helpers:h{i}" for i in range(40)]
    ref_stages = {"preprocess": 0.0, "forward": 0.004, "postprocess": 0.0, "other": 0.001}
    run_stages = dict(ref_stages, postprocess=0.002)
    ref_stacks = {"forward": [[[2], 0.004]], "other": [[[3, 4], 0.001]]}
    run_stacks = {"forward": [[[2], 0.004]], "other": [[[0, 4], 0.001]],
                  "postprocess": [[[1, 5 + i], 0.00005] for i in range(40)]}
    base = {"run_id": "r", "pair_id": "p", "pass_index": 0, "reference": "torch", "explain_status": "ok"}
    ref = dict(base, runner="torch", lat_median_s=0.005, profile_json=_profile(ref_stages, ref_stacks, frames))
    run = dict(base, runner="pipeline", lat_median_s=0.007, ref_ratio=1.4, ref_ratio_low=1.35, ref_ratio_high=1.45,
               profile_json=_profile(run_stages, run_stacks, frames))
    e = explain_pair(run, ref)
    assert e.verdict == "explained" and e.unexplained_fraction == pytest.approx(0.0, abs=1e-9)
    assert [(p.stage, p.label) for p in e.parts] == [("postprocess", "pipe:post (and 40 smaller calls)")]
    assert e.parts[0].delta_s == pytest.approx(0.002)


def test_a_difference_within_the_sampling_noise_is_not_named_and_one_past_it_is():
    """3 ms of a model's Linear.forward sampled over 100 calls at 0.5 ms ticks is ±0.17 ms: two
    runners 0.15 ms apart there is noise (it stays unexplained); 1 ms apart is not."""
    tick = 0.0005 / 100
    noisy, unexplained = roll_up([(("m:Linear.forward",), 3.15 * MS)], [(("m:Linear.forward",), 3.0 * MS)],
                                 floor=0.03 * MS, tick_runner=tick, tick_reference=tick)
    assert noisy == [] and unexplained == pytest.approx(0.15 * MS)
    moved, _ = roll_up([(("m:Linear.forward",), 4.0 * MS)], [(("m:Linear.forward",), 3.0 * MS)],
                       floor=0.03 * MS, tick_runner=tick, tick_reference=tick)
    assert [r.name for r in moved] == ["m:Linear.forward"]
    ungated, _ = roll_up([(("m:Linear.forward",), 3.15 * MS)], [(("m:Linear.forward",), 3.0 * MS)], floor=0.03 * MS)
    assert [r.name for r in ungated] == ["m:Linear.forward"]  # without the sampling's noise, the floor alone


def test_what_is_handed_up_keeps_the_noise_of_the_times_it_is_the_excess_of():
    """Forty modules, each 1 ms sampled over 100 calls at 0.5 ms ticks (±0.1 ms apart by chance),
    each 0.03 ms slower in the runner: their excesses meet at the caller every module call goes
    through (``Module._call_impl``), 1.2 ms, within the noise of the 80 ms they came from (±0.63
    ms): not named, where the variance of 1.2 ms sampled (±0.08 ms) named it. Twins named a
    function from noise in 61 of 64 cells that way (scripts/explain_aa.py). 0.1 ms each (4 ms)
    is past the noise, and named there."""
    tick = 0.0005 / 100

    def stacks(each_ms):
        return [(("p:Pipeline.forward", "t:Module._call_impl", f"m:Layer{i}.forward"), each_ms * MS) for i in range(40)]

    noise, unexplained = roll_up(stacks(1.03), stacks(1.0), floor=0.01 * MS, tick_runner=tick, tick_reference=tick)
    assert noise == [] and unexplained == pytest.approx(1.2 * MS)
    moved, _ = roll_up(stacks(1.1), stacks(1.0), floor=0.01 * MS, tick_runner=tick, tick_reference=tick)
    assert [(r.name, r.callees) for r in moved] == [("t:Module._call_impl", 40)]
    assert moved[0].delta_s == pytest.approx(4.0 * MS)
