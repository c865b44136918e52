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


def _is_seq2seq(model: str) -> bool:
    """Whisper-style encoder-decoder (generate) rather than CTC, from the model's config."""
    from ..models import resolve

    kind, arg = resolve(model)
    if kind == "synthetic":
        from ..models.synthetic import PRESETS

        return PRESETS[arg].config_class == "WhisperConfig"
    try:
        from transformers import AutoConfig

        from ..models.packaged import packaged_path

        source = packaged_path(arg) if kind == "packaged" else arg
        return bool(getattr(AutoConfig.from_pretrained(source), "is_encoder_decoder", False))
    except Exception:
        return False


class SpeechRecognition(Task):
    name = "automatic-speech-recognition"
    pipeline_task = "automatic-speech-recognition"
    head = "ctc"
    modality = "audio"
    sampling_rate = SAMPLING_RATE
    single_forward = False  # CTC could be one call, but Whisper is a generate() loop: served by torch and pipeline
    description = ("speech recognition of seeded synthetic audio (seq_len = clip ms at 16 kHz): CTC (wav2vec2) "
                   "or encoder-decoder generate (Whisper, fixed length new_tokens, default 16)")
    seq2seq = False
    new_tokens = 16

    def configure(self, case: Any) -> "SpeechRecognition":
        self.seq2seq = _is_seq2seq(case.model)
        self.head = "speech-seq2seq" if self.seq2seq else "ctc"  # type: ignore[misc]
        self.new_tokens = case.new_tokens or 16
        return self

    def generate_kwargs(self) -> dict[str, Any]:
        return {"do_sample": False, "num_beams": 1, "max_new_tokens": self.new_tokens,
                "min_new_tokens": self.new_tokens, "language": "en", "task": "transcribe"}

    def pipeline_kwargs(self, tokenizer: Any = None) -> dict[str, Any]:
        return {"generate_kwargs": self.generate_kwargs()} if self.seq2seq else {}

    def make_inputs(self, tokenizer: Any, batch_size: int, seq_len: int, seed: int) -> list[Any]:
        return make_audio(batch_size, seq_len, seed)

    def preprocess(self, bundle: Any, inputs: list[Any], device: Any) -> Any:
        _, fe = bundle.tokenizer
        return fe(inputs, sampling_rate=SAMPLING_RATE, return_tensors="pt", padding=True).to(device)

    def forward(self, bundle: Any, encoded: Any) -> Any:
        if self.seq2seq:
            return bundle.module.generate(encoded["input_features"].to(bundle.module.dtype), **self.generate_kwargs())
        return bundle.module(input_values=encoded["input_values"].to(bundle.module.dtype))

    def postprocess(self, bundle: Any, encoded: Any, outputs: Any) -> list[Any]:
        tok, _ = bundle.tokenizer
        if self.seq2seq:
            return tok.batch_decode(outputs, skip_special_tokens=True)
        return tok.batch_decode(outputs.logits.argmax(dim=-1))

    def normalize_pipeline(self, outputs: Any, n: int) -> list[Any]:
        return [item["text"] for item in super().normalize_pipeline(outputs, n)]

    def compare(self, raw: list[Any], piped: list[Any], dtype: str) -> Parity:
        return exact_match(raw, piped, "transcription")
