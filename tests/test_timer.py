import time

import pytest

from benchbed.measure import StopRule, measure


class FakeClock:
    """A clock that a fake workload advances: deterministic timing-loop tests, no sleeping."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_warmup_is_untimed_and_sync_runs_inside_each_timed_call():
    clock = FakeClock()
    events = []
    durations = iter([5.0, 5.0] + [0.010] * 1000)  # two slow warm-up calls, then steady

    def fn():
        events.append("call")
        clock.now += next(durations)

    def sync():
        events.append("sync")
        clock.now += 0.001  # device work finishing is part of the call

    t = measure(fn, StopRule(warmup=2, min_samples=5, min_time_s=0.1, max_time_s=100), sync=sync, clock=clock)
    assert t.warmup == 2
    assert max(t.samples) == pytest.approx(0.011)  # warm-up's 5 s never reaches the samples
    assert t.stop_reason == "precise"
    assert len(t.samples) >= 10  # min_time 0.1 s of 11 ms calls
    assert events[:4] == ["call", "sync", "call", "sync"]


def test_stops_at_the_per_case_cap_when_noise_never_settles():
    clock = FakeClock()
    k = [0]

    def fn():  # alternating 1 ms / 100 ms: the median's CI never narrows to 5%
        k[0] += 1
        clock.now += 0.001 if k[0] % 2 else 0.1

    t = measure(fn, StopRule(warmup=0, min_samples=3, min_time_s=0.0, max_time_s=2.0), clock=clock)
    assert t.stop_reason == "max_time"
    assert sum(t.samples) == pytest.approx(2.0, abs=0.11)


def test_minimums_hold_before_adaptive_stop():
    clock = FakeClock()

    def fn():
        clock.now += 0.5

    t = measure(fn, StopRule(warmup=0, min_samples=7, min_time_s=0.0, max_time_s=100), clock=clock)
    assert len(t.samples) == 7 and t.stop_reason == "precise"
    t = measure(fn, StopRule(warmup=0, min_samples=1, min_time_s=3.0, max_time_s=100), clock=clock)
    assert len(t.samples) == 6


def test_max_samples():
    clock = FakeClock()
    t = measure(lambda: None, StopRule(warmup=0, min_samples=1, max_samples=20, min_time_s=1.0), clock=clock)
    assert len(t.samples) == 20 and t.stop_reason == "max_samples"


def _busy_cpu(seconds: float) -> None:
    """Spin until this thread has used `seconds` of CPU time: a known workload measured on an
    independent clock (CLOCK_THREAD_CPUTIME_ID), not on the timer's own."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_real_timer_against_a_known_busy_wait():
    from conftest import on_a_quiet_machine

    t = on_a_quiet_machine(lambda: measure(lambda: _busy_cpu(0.02),
                                           StopRule(warmup=1, min_samples=15, min_time_s=0.3, max_time_s=3)))
    median = sorted(t.samples)[len(t.samples) // 2]
    assert median == pytest.approx(0.02, rel=0.02)


def test_rule_validation():
    with pytest.raises(ValueError):
        StopRule(min_samples=0)
    with pytest.raises(ValueError):
        StopRule(max_time_s=0)
