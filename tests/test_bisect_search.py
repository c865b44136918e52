"""The bisection search and its verdicts (`benchbed.regress.bisect`), with points measured by a
table instead of a machine: every branch of the search, exactly."""

from __future__ import annotations

import math

import pytest

from benchbed.regress.bisect import CHANGED, SKIPPED, UNCHANGED, UNDECIDED, Point, bisect, judge


def _table(ratios, spread=0.01, broken=()):
    """measure(i) -> 20 per-block ratios around ratios[i] (or a string for a broken point)."""
    calls = []

    def measure(i, earlier):
        calls.append(i)
        if i in broken:
            return "did not install: not a wheel"
        return [ratios[i] * (1 + spread * ((k % 5) - 2) / 2) for k in range(20)]

    return measure, calls


@pytest.mark.parametrize("point, direction, verdict", [
    (Point(1.20, 1.15, 1.25, 10), 0, CHANGED),
    (Point(0.80, 0.75, 0.85, 10), 0, CHANGED),
    (Point(1.01, 0.99, 1.02, 10), 1, UNCHANGED),
    (Point(1.04, 0.90, 1.20, 10), 1, UNDECIDED),     # wide: neither
    (Point(1.02, 1.01, 1.025, 10), 1, UNCHANGED),     # significant but below the threshold, inside the band
    (Point(0.80, 0.75, 0.85, 10), 1, UNCHANGED),     # faster, while the ends were slower: not this change
])
def test_each_step_is_judged_by_the_gates_rule(point, direction, verdict):
    assert judge(point, 0.03, direction) == verdict


def test_the_first_slow_release_is_found_in_log2_steps_plus_the_ends():
    ratios = [1, 1, 1, 1, 1, 2, 2, 2]
    measure, calls = _table(ratios)
    out = bisect([f"1.{i}" for i in range(8)], measure)
    assert out.culprit == "1.5" and out.direction == 1 and out.kind == "regression (slower)"
    assert len(out.steps) <= math.ceil(math.log2(8)) + 2 and calls[0] == 7


def test_an_improvement_is_bisected_and_said_to_be_one():
    out = bisect(["a", "b", "c", "d"], _table([1, 1, 0.5, 0.5])[0])
    assert out.culprit == "c" and out.kind == "improvement (faster)"


def test_a_point_that_will_not_install_is_stepped_around():
    out = bisect([f"1.{i}" for i in range(8)], _table([1, 1, 1, 1, 1, 2, 2, 2], broken={3})[0])
    assert out.culprit == "1.5" and any(s.verdict == SKIPPED and s.label == "1.3" for s in out.steps)


def test_when_the_culprits_neighbour_cannot_be_installed_the_answer_is_the_range():
    out = bisect([f"1.{i}" for i in range(8)], _table([1, 1, 1, 1, 1, 2, 2, 2], broken={4})[0])
    assert out.culprit is None and out.candidates == ["1.4", "1.5"] and "1.4 could not be installed" in out.reason


def test_no_change_between_the_ends_is_said_and_nothing_is_bisected():
    measure, calls = _table([1, 1, 1, 1])
    out = bisect(["a", "b", "c", "d"], measure)
    assert out.culprit is None and "nothing to bisect" in out.reason and calls == [3]


def test_an_undecided_step_is_measured_again_within_a_bound_then_stops_without_guessing():
    measure, calls = _table([1, 1.04, 2, 2], spread=0.3)  # the first middle point: a noisy 4%
    out = bisect(["a", "b", "c", "d"], measure, max_rounds=3)
    undecided = [s for s in out.steps if s.verdict == UNDECIDED]
    assert out.culprit is None and undecided and undecided[0].rounds == 3 and "not guessed" in out.reason
    assert calls.count(1) == 3
