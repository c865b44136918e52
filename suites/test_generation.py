"""Text generation, raw ``model.generate`` vs the text-generation pipeline: time to first token,
time per output token, tokens/s and end-to-end latency, greedy and of fixed length.

Run:  pytest suites/test_generation.py --benchmark -m quick
"""

import pytest

from benchbed import GENERATION_FULL, GENERATION_QUICK
from benchbed.pytest_plugin import parametrize

#: What ``benchbed run --suite suites/test_generation.py`` runs.
MATRIX = GENERATION_QUICK


@parametrize(GENERATION_QUICK, pytest.mark.quick)
def test_generation_quick(case, benchbed):
    benchbed.run(case)


@parametrize(GENERATION_FULL, pytest.mark.full)
def test_generation_full(case, benchbed):
    benchbed.run(case)
