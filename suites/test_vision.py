"""Image classification (ViT), raw processor + module vs the image-classification pipeline.
seq_len is the input image side in pixels.

Run:  pytest suites/test_vision.py --benchmark -m quick
"""

import pytest

from benchbed import VISION_FULL, VISION_QUICK
from benchbed.pytest_plugin import parametrize

#: What ``benchbed run --suite suites/test_vision.py`` runs.
MATRIX = VISION_QUICK


@parametrize(VISION_QUICK, pytest.mark.quick)
def test_vision_quick(case, benchbed):
    benchbed.run(case)


@parametrize(VISION_FULL, pytest.mark.full)
def test_vision_full(case, benchbed):
    benchbed.run(case)
