"""Text tasks, raw PyTorch vs pipeline: the default matrix (real MiniLM weights) and the quick one.

Run:  pytest suites --benchmark            (everything here)
      pytest suites --benchmark -m quick   (every suite's tiny matrix; add --benchbed-budget 90s for a smoke test)
Copy this file to start a suite of your own: a matrix, a parametrized test, ``benchbed.run(case)``.
"""

import pytest

from benchbed import DEFAULT_MATRIX, QUICK_MATRIX, Matrix, TEXT_TASKS
from benchbed.pytest_plugin import parametrize

#: What ``benchbed run --suite suites/test_text.py`` runs.
MATRIX = DEFAULT_MATRIX

#: Real-size synthetic presets; long on a laptop CPU, meant for GPUs and nightly runs.
FULL = Matrix(task=TEXT_TASKS, model=("synthetic:bert-base-uncased", "synthetic:distilbert-base-uncased"),
              dtype=("fp32", "bf16"), batch_size=(1, 8, 32), seq_len=(128, 512))


@parametrize(QUICK_MATRIX, pytest.mark.quick)
def test_quick(case, benchbed):
    benchbed.run(case)


@parametrize(MATRIX)
def test_default(case, benchbed):
    benchbed.run(case)


@parametrize(FULL, pytest.mark.full)
def test_full(case, benchbed):
    benchbed.run(case)
