import numpy as np
import pytest

from benchbed.measure import PeakRSS


@pytest.mark.parametrize("mib", [64, 256])
def test_peak_rss_reports_a_known_allocation(mib):
    with PeakRSS() as rss:
        block = np.ones(mib * 2**20, dtype=np.uint8)  # touched pages, really resident
        del block
    assert rss.delta_bytes / 2**20 == pytest.approx(mib, rel=0.05)


def test_peak_is_per_block_not_per_process():
    big = np.ones(300 * 2**20, dtype=np.uint8)
    del big  # the process high-water mark is now >= 300 MiB
    with PeakRSS() as rss:
        small = np.ones(32 * 2**20, dtype=np.uint8)
        del small
    assert rss.delta_bytes / 2**20 == pytest.approx(32, rel=0.1)
