import mmap

import pytest

from benchbed.measure import PeakRSS

PAGE = mmap.PAGESIZE


def _touch(mib):
    """Fresh anonymous pages, every one written: resident memory whatever the allocator's state
    (glibc may serve a numpy array from freed heap pages that are already resident)."""
    block = mmap.mmap(-1, mib * 2**20)
    for off in range(0, len(block), PAGE):
        block[off] = 1
    return block


@pytest.mark.parametrize("mib", [64, 256])
def test_peak_rss_reports_a_known_allocation(mib):
    with PeakRSS() as rss:
        block = _touch(mib)
        block.close()
    assert rss.method == "vmhwm"
    assert rss.delta_bytes / 2**20 == pytest.approx(mib, rel=0.05)


def test_peak_is_per_block_not_per_process():
    big = _touch(300)
    big.close()  # the process high-water mark is now >= 300 MiB above this block's baseline
    with PeakRSS() as rss:
        small = _touch(48)
        small.close()
    assert rss.delta_bytes / 2**20 == pytest.approx(48, rel=0.1)
