"""Pooled passes: a case measured in N passes pools into one record whose every statistic is the
one a single record of the concatenated samples would have."""

import numpy as np
import pytest

from benchbed.measure.stats import summarize
from benchbed.record import empty_record, pool_records


def _pass(samples, p, blocks=None):
    rec = empty_record()
    s = summarize(samples)
    rec.update(run_id="r", case_id="c", pair_id="p", runner="torch", batch_size=4, seq_len=16, status="ok",
               pass_index=p, samples_s=list(samples), n_samples=len(samples), items_per_s=4 / s.median,
               tokens_per_s=64 / s.median, sample_blocks=blocks, pairing="interleaved" if blocks else "sequential",
               **s.as_columns())
    return rec


def test_a_pooled_record_equals_one_made_from_the_concatenated_samples_column_by_column():
    rng = np.random.default_rng(0)
    passes = [list(1e-3 * (1 + 0.1 * rng.standard_normal(40)) + 1e-4 * p) for p in range(3)]
    (pooled,) = pool_records([_pass(x, p) for p, x in enumerate(passes)])
    x = np.concatenate(passes)
    single = summarize(x).as_columns()
    for column, value in single.items():  # median, p90, p95, p99, stdev, IQR, CI... not only the median
        assert pooled[column] == pytest.approx(value, rel=1e-12), column
    assert pooled["n_samples"] == 120 and pooled["samples_s"] == list(x)
    assert pooled["items_per_s"] == pytest.approx(4 / single["lat_median_s"])
    assert pooled["tokens_per_s"] == pytest.approx(64 / single["lat_median_s"])


def test_pooled_blocks_of_different_passes_never_pair():
    a = _pass([1.0, 1.0, 2.0, 2.0], 0, blocks=[0, 0, 1, 1])
    b = _pass([3.0, 3.0], 1, blocks=[0, 0])
    (pooled,) = pool_records([a, b])
    assert pooled["sample_blocks"] == [0, 0, 1, 1, 2, 2]
