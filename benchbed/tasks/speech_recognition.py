"""automatic-speech-recognition with a CTC model (wav2vec2): seeded synthetic audio, the model's
feature extractor, argmax over characters and CTC decoding (repeats merged, blanks dropped), as the
pipeline does.

For audio tasks the ``seq_len`` axis is the clip length in milliseconds at 16 kHz.
"""

from __future__ import annotations

from typing import Any

from .base import Parity, Task, exact_match

__all__ = ["SpeechRecognition", "make_audio", "SAMPLING_RATE"]

SAMPLING_RATE = 16_000


def make_audio(count: int, millis: int, seed: int = 0) -> list[Any]:
    """`count` seeded clips: a few drifting tones under noise, float32 in [-1, 1]."""
    import numpy as np

    n = max(1, SAMPLING_RATE * millis // 1000)
    t = np.arange(n) / SAMPLING_RATE
    out = []
    for i in range(count):
        rng = np.random.default_rng([seed, i, millis])
        wave = sum(rng.uniform(0.05, 0.2) * np.sin(2 * np.pi * (rng.uniform(100, 800) + 50 * t) * t)
                   for _ in range(3))
        wave = wave + rng.normal(0, 0.02, n)
        out.append(np.clip(wave, -1, 1).astype("float32"))
    return out


class SpeechRecognition(Task):
    name = "automatic-speech-recognition"
    pipeline_task = "automatic-speech-recognition"
    head = "ctc"
    modality = "audio"
    description = "CTC speech recognition (wav2vec2) of seeded synthetic audio (seq_len = clip ms at 16 kHz)"

    def make_inputs(self, tokenizer: Any, batch_size: int, seq_len: int, seed: int) -> list[Any]:
        return make_audio(batch_size, seq_len, seed)

    def preprocess(self, bundle: Any, inputs: list[Any], device: Any) -> Any:
        _, fe = bundle.tokenizer
        return fe(inputs, sampling_rate=SAMPLING_RATE, return_tensors="pt", padding=True).to(device)

    def forward(self, bundle: Any, encoded: Any) -> Any:
        return bundle.module(input_values=encoded["input_values"].to(bundle.module.dtype))

    def postprocess(self, bundle: Any, encoded: Any, outputs: Any) -> list[Any]:
        tok, _ = bundle.tokenizer
        return tok.batch_decode(outputs.logits.argmax(dim=-1))

    def normalize_pipeline(self, outputs: Any, n: int) -> list[Any]:
        items = [outputs] if isinstance(outputs, dict) else list(outputs)
        return [item["text"] for item in items]

    def compare(self, raw: list[Any], piped: list[Any], dtype: str) -> Parity:
        return exact_match(raw, piped, "transcription")
