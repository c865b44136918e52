import numpy as np
import pytest

from benchbed.measure import bootstrap_median_ci, median_ci_order, noise_warning, ratio_ci, summarize


def test_summary_matches_hand_computed_values():
    s = summarize([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    assert s.n == 10
    assert s.min == 1 and s.max == 10
    assert s.median == 5.5
    assert s.mean == 5.5
    # type-7 quantiles: position (n-1)p + 1
    assert s.p90 == pytest.approx(9.1)
    assert s.p95 == pytest.approx(9.55)
    assert s.p99 == pytest.approx(9.91)
    assert s.iqr == pytest.approx(7.75 - 3.25)
    assert s.std == pytest.approx(3.0276503540974917)  # sample stdev, ddof=1


def test_summary_of_odd_count_and_single_sample():
    assert summarize([3, 1, 2]).median == 2
    one = summarize([0.25])
    assert (one.median, one.std, one.median_ci_low, one.median_ci_high) == (0.25, 0.0, 0.25, 0.25)


def test_bootstrap_ci_is_seeded_and_brackets_the_median():
    rng = np.random.default_rng(1)
    x = rng.normal(10.0, 1.0, 400)
    lo, hi = bootstrap_median_ci(x, seed=3)
    assert (lo, hi) == bootstrap_median_ci(x, seed=3)
    assert lo < np.median(x) < hi
    # for a normal sample the median's standard error is about 1.2533 * sigma / sqrt(n)
    se = 1.2533 / np.sqrt(400)
    assert hi - lo == pytest.approx(2 * 1.96 * se, rel=0.35)


def test_order_statistic_ci_indices():
    x = list(range(100))  # order statistics of 0..99
    lo, hi = median_ci_order(x)
    # n/2 -+ 1.96*sqrt(n)/2 = 50 -+ 9.8 -> floor 40, ceil 60
    assert (lo, hi) == (40.0, 60.0)


def test_ratio_ci_of_exactly_scaled_samples():
    b = np.linspace(1.0, 1.1, 50)
    point, lo, hi = ratio_ci(2 * b, b)
    assert point == pytest.approx(2.0)
    assert lo <= 2.0 <= hi and hi - lo < 0.1


def test_noise_warning_threshold():
    assert noise_warning(summarize([1.0, 1.0, 1.01, 1.0])) is None
    assert "IQR" in noise_warning(summarize([1.0, 2.0, 3.0, 4.0]))
