"""Zero-shot classification, raw NLI pairing + softmax vs the zero-shot pipeline.

Run:  pytest suites/test_zero_shot.py --benchmark -m quick
"""

import pytest

from benchbed import ZERO_SHOT_FULL, ZERO_SHOT_QUICK
from benchbed.pytest_plugin import parametrize

#: What ``benchbed run --suite suites/test_zero_shot.py`` runs.
MATRIX = ZERO_SHOT_QUICK


@parametrize(ZERO_SHOT_QUICK, pytest.mark.quick)
def test_zero_shot_quick(case, benchbed):
    benchbed.run(case)


@parametrize(ZERO_SHOT_FULL, pytest.mark.full)
def test_zero_shot_full(case, benchbed):
    benchbed.run(case)
